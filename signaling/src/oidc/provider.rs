//! Talking to the OpenID provider with the `openidconnect` crate: discovery, the authorization
//! URL (code flow with PKCE, `state` and `nonce`), and the code exchange with the ID token's
//! signature and claims checked (issuer, audience, expiry, nonce, signing algorithm).
//!
//! Discovery happens on the first sign-in, not at start (a provider that is down must not stop
//! Aula), and is repeated after [`DISCOVERY_TTL`] or when an ID token's signature does not
//! verify with the keys fetched earlier (the provider rotated its keys). Every URL the discovery
//! document names passes the same check as `issuer` (`https`, or `http` on loopback with
//! `allow_http_on_loopback`). The HTTP client follows no redirects (SSRF) and gives up after
//! [`HTTP_TIMEOUT`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use aula_config::settings::{check_oidc_url, OidcSettings};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};

use super::rules::Identity;

/// How long discovered metadata and keys are used before they are fetched again: an hour.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// The longest any one request to the provider may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Every claim of the ID token beyond the standard ones (groups, roles, custom claims), for the
/// teacher rules.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OtherClaims(serde_json::Map<String, serde_json::Value>);

impl AdditionalClaims for OtherClaims {}

type Fields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// The client `from_provider_metadata` makes: `CoreClient` with [`OtherClaims`].
type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<Fields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why talking to the provider failed. Logged for the operator; the person sees a page that
/// says the provider could not be reached or did not confirm the sign-in.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    #[error("the redirect URI {0:?} is not a URL")]
    RedirectUrl(String),
    #[error("discovery at {issuer} failed: {message}")]
    Discovery { issuer: String, message: String },
    #[error("the provider's discovery document names an unsafe URL: {0}")]
    UnsafeEndpoint(String),
    #[error("the provider's discovery document names no token endpoint")]
    NoTokenEndpoint,
    #[error("the code exchange failed: {0}")]
    Exchange(String),
    #[error("the provider sent no ID token")]
    NoIdToken,
    #[error("the ID token was refused: {0}")]
    IdToken(String),
}

/// What `/auth/oidc/start` needs to remember and where it sends the browser.
#[derive(Debug)]
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The provider as configured, with its discovered metadata cached.
pub struct Provider {
    issuer: String,
    allow_http_on_loopback: bool,
    client_id: String,
    client_secret: Option<String>,
    redirect_url: RedirectUrl,
    scopes: Vec<String>,
    http: reqwest::Client,
    discovered: tokio::sync::Mutex<Option<(Instant, Arc<OidcClient>)>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// The provider of `settings` (which passed validation, so `issuer` and `client_id` are set),
    /// for a server whose callback is `redirect_url`.
    pub fn new(
        settings: &OidcSettings,
        client_secret: Option<String>,
        redirect_url: &str,
    ) -> Result<Provider, ProviderError> {
        let issuer = settings.issuer.clone().unwrap_or_default();
        let mut http = reqwest::Client::builder()
            // Following redirects would let a response send this server's requests anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT);
        if settings.allow_http_on_loopback && issuer.starts_with("http://") {
            // A provider on this machine is never reached through a proxy.
            http = http.no_proxy();
        }
        let http = http
            .build()
            .map_err(|e| ProviderError::HttpClient(e.to_string()))?;
        let mut scopes = vec!["email".to_string(), "profile".to_string()];
        scopes.extend(settings.extra_scopes.iter().cloned());
        Ok(Provider {
            issuer,
            allow_http_on_loopback: settings.allow_http_on_loopback,
            client_id: settings.client_id.clone().unwrap_or_default(),
            client_secret,
            redirect_url: RedirectUrl::new(redirect_url.to_string())
                .map_err(|_| ProviderError::RedirectUrl(redirect_url.to_string()))?,
            scopes,
            http,
            discovered: tokio::sync::Mutex::new(None),
        })
    }

    /// The issuer's host, to name the provider on pages ("accounts.google.com").
    pub fn host(&self) -> &str {
        let rest = self.issuer.split_once("://").map_or("", |(_, r)| r);
        rest.split('/').next().unwrap_or(rest)
    }

    /// The client built from the discovery document, fetched when there is none yet, it is
    /// older than [`DISCOVERY_TTL`], or `refresh` asks for new keys.
    async fn client(&self, refresh: bool) -> Result<Arc<OidcClient>, ProviderError> {
        let mut cached = self.discovered.lock().await;
        if let Some((at, client)) = cached.as_ref() {
            if !refresh && at.elapsed() < DISCOVERY_TTL {
                return Ok(client.clone());
            }
        }
        let client = Arc::new(self.discover().await?);
        *cached = Some((Instant::now(), client.clone()));
        Ok(client)
    }

    async fn discover(&self) -> Result<OidcClient, ProviderError> {
        let failed = |message: String| ProviderError::Discovery {
            issuer: self.issuer.clone(),
            message,
        };
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| failed(e.to_string()))?;
        // Fetches the document, checks that it names this issuer, and fetches its keys.
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| failed(error_chain(&e)))?;
        let mut urls = vec![
            metadata.authorization_endpoint().as_str().to_string(),
            metadata.jwks_uri().as_str().to_string(),
        ];
        match metadata.token_endpoint() {
            Some(token) => urls.push(token.as_str().to_string()),
            None => return Err(ProviderError::NoTokenEndpoint),
        }
        for url in &urls {
            check_oidc_url(url, self.allow_http_on_loopback)
                .map_err(ProviderError::UnsafeEndpoint)?;
        }
        Ok(OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(self.client_id.clone()),
            self.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect_url.clone()))
    }

    /// A fresh authorization request: the URL to send the browser to, and its secrets.
    pub async fn authorize(&self) -> Result<Authorization, ProviderError> {
        let client = self.client(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges `code` (with the PKCE verifier) for tokens and returns what the verified ID
    /// token says about the person.
    pub async fn finish(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
    ) -> Result<Identity, ProviderError> {
        let client = self.client(false).await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|_| ProviderError::NoTokenEndpoint)?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| ProviderError::Exchange(error_chain(&e)))?;
        let id_token = tokens.id_token().ok_or(ProviderError::NoIdToken)?;
        let nonce = Nonce::new(nonce);
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => claims.clone(),
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                // Perhaps signed with a key published after the last discovery.
                let client = self.client(true).await?;
                let verifier = client.id_token_verifier();
                let claims = id_token
                    .claims(&verifier, &nonce)
                    .map_err(|e| ProviderError::IdToken(e.to_string()))?;
                claims.clone()
            }
            Err(e) => return Err(ProviderError::IdToken(e.to_string())),
        };
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_string())
            .or_else(|| {
                let given = claims.given_name().and_then(|n| n.get(None));
                let family = claims.family_name().and_then(|n| n.get(None));
                let parts: Vec<&str> = [given.map(|g| g.as_str()), family.map(|f| f.as_str())]
                    .into_iter()
                    .flatten()
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            });
        Ok(Identity {
            subject: claims.subject().as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_string()),
            email_verified: claims.email_verified(),
            name,
            claims: claims.additional_claims().0.clone(),
        })
    }
}

/// An error with its sources, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
