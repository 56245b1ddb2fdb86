//! `GET /auth/oidc/start` and `GET /auth/oidc/callback`.
//!
//! The start makes a fresh authorization request (PKCE, `state`, `nonce`), remembers it in the
//! pending store, sets a short-lived `aula-oidc` cookie binding it to this browser, and redirects
//! to the provider. The callback accepts only a `state` that is pending, unexpired, used once and
//! started in this browser; exchanges the code; lets the verified identity through the rules; and
//! signs the teacher in (an account found or created by email, a session cookie), redirecting to
//! the start page. Every failure is a page saying why and what to do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::page::Page;
use super::pending::{PendingLogin, PENDING_TTL_MS};
use super::rules::{decide, Admitted};
use super::Sso;
use crate::accounts::session::start_session;
use crate::accounts::AccountRole;
use crate::app::{unix_millis, App};

/// The cookie that binds a sign-in in progress to the browser that started it.
pub const BINDING_COOKIE: &str = "aula-oidc";

/// Where a signed-in teacher lands: "My classes".
pub const AFTER_SIGN_IN: &str = "/classes";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/auth/oidc/start", get(start))
        .route("/auth/oidc/callback", get(callback))
}

fn not_configured() -> Page {
    Page::new(
        StatusCode::NOT_FOUND,
        "Single sign-on is not set up",
        "This Aula server has no single sign-on configured.".into(),
        "Sign in with your email and password, or ask your school's Aula administrator.",
    )
}

fn provider_unreachable(sso: &Sso) -> Page {
    Page::new(
        StatusCode::BAD_GATEWAY,
        "The sign-in service did not answer",
        format!(
            "Aula could not complete your sign-in with {}.",
            sso.provider.host()
        ),
        "Try again in a minute. If it keeps failing, tell your school's Aula administrator \
         (the server's log says what went wrong).",
    )
}

/// The start's query: `moved` marks a start already sent to `public_url`'s host.
#[derive(Debug, Deserialize)]
struct StartQuery {
    moved: Option<String>,
}

/// `GET /auth/oidc/start`: off to the provider.
async fn start(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<StartQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(sso) = app.sso.as_ref() else {
        return not_configured().into_response();
    };
    // The provider sends the browser back to `public_url`: the sign-in must start on that host
    // too, or the browser would not send its binding cookie there (once only: a proxy that
    // rewrites `Host` would otherwise loop).
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if query.moved.is_none() && host.is_some_and(|h| !same_host(&app.public_url, h)) {
        let to = format!("{}/auth/oidc/start?moved=1", app.public_url);
        return (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    }
    if sso.starts.take(peer.ip(), Instant::now()).is_err() {
        return Page::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ins from this network",
            "Many sign-ins were started from this network in the last minute.".into(),
            "Wait a minute, then try again.",
        )
        .into_response();
    }
    let authorization = match sso.provider.authorize().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("single sign-on: {e}");
            return provider_unreachable(sso).into_response();
        }
    };
    let browser = crate::secrets::generate();
    let login = PendingLogin {
        nonce: authorization.nonce,
        pkce_verifier: authorization.pkce_verifier,
        browser: browser.clone(),
        started_ms: unix_millis(),
    };
    if sso
        .pending()
        .insert(authorization.state, login, unix_millis())
        .is_err()
    {
        return Page::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many sign-ins at once",
            "The server is handling as many sign-ins as it can right now.".into(),
            "Wait a minute, then try again.",
        )
        .into_response();
    }
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, authorization.url)],
    )
        .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        binding_cookie(&browser, PENDING_TTL_MS / 1000, app.secure_cookies),
    );
    response
}

/// The callback's query: a code and state, or the provider's error.
#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/oidc/callback`: back from the provider.
async fn callback(
    State(app): State<Arc<App>>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(sso) = app.sso.as_ref() else {
        return not_configured().into_response();
    };
    let clear = clear_binding_cookie(app.secure_cookies);
    let outcome = finish(sso, query, &headers).await;
    let mut response = match outcome {
        Ok(admitted) => sign_in(&app, &admitted),
        Err(page) => page.into_response(),
    };
    response.headers_mut().append(header::SET_COOKIE, clear);
    response
}

/// Everything from the callback's query to an admitted teacher, or the page saying why not.
async fn finish(sso: &Sso, query: CallbackQuery, headers: &HeaderMap) -> Result<Admitted, Page> {
    let expired = || {
        Page::new(
            StatusCode::BAD_REQUEST,
            "This sign-in cannot be completed",
            "The sign-in link is not valid here: it expired, was already used, was changed, or \
             was started in another browser."
                .into(),
            "Start again from Aula's start page, in this browser.",
        )
    };
    let pending = query
        .state
        .as_deref()
        .and_then(|state| sso.pending().take(state, unix_millis()))
        .ok_or_else(expired)?;
    let browser = cookie(headers, BINDING_COOKIE).unwrap_or("");
    if !same_secret(browser, &pending.browser) {
        return Err(expired());
    }
    if let Some(error) = query.error {
        tracing::info!(error = %error, "single sign-on: the provider refused the sign-in");
        return Err(Page::new(
            StatusCode::FORBIDDEN,
            "Sign-in was not completed",
            format!(
                "{} did not sign you in (it answered \"{}\").",
                sso.provider.host(),
                error.chars().take(64).collect::<String>()
            ),
            "If you cancelled, start again when you are ready.",
        ));
    }
    let Some(code) = query.code else {
        return Err(expired());
    };
    let identity = sso
        .provider
        .finish(code, pending.pkce_verifier, pending.nonce)
        .await
        .map_err(|e| {
            tracing::warn!("single sign-on: {e}");
            provider_unreachable(sso)
        })?;
    decide(&sso.settings, &identity).map_err(|refusal| {
        tracing::info!(subject = %identity.subject, "single sign-on refused: {refusal}");
        Page::new(
            StatusCode::FORBIDDEN,
            "You cannot sign in here",
            refusal.to_string(),
            refusal.advice(),
        )
    })
}

/// Whether `host` (a `Host` header) names the host and port of `public_url`.
fn same_host(public_url: &str, host: &str) -> bool {
    let authority = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or("");
    let default_port = if public_url.starts_with("https://") {
        ":443"
    } else {
        ":80"
    };
    let norm = |h: &str| {
        let h = h.trim().to_ascii_lowercase();
        h.strip_suffix(default_port)
            .map(str::to_string)
            .unwrap_or(h)
    };
    norm(authority) == norm(host)
}

/// Signs `admitted` in: the account with their email (created as a teacher on the first
/// sign-in; an existing one keeps its role), a new session, and off to [`AFTER_SIGN_IN`].
fn sign_in(app: &App, admitted: &Admitted) -> Response {
    let now = unix_millis() / 1000;
    let account = match app.accounts.find_or_create_external(
        &admitted.email,
        &admitted.name,
        AccountRole::Teacher,
        now,
    ) {
        Ok(account) => account,
        Err(e) => {
            tracing::warn!("single sign-on: cannot find or create the account: {e}");
            return server_trouble().into_response();
        }
    };
    if account.disabled {
        return Page::new(
            StatusCode::FORBIDDEN,
            "Your Aula account is disabled",
            format!("The Aula account of {} is disabled.", account.email),
            "Ask your school's Aula administrator to enable it.",
        )
        .into_response();
    }
    match start_session(app, &account.id) {
        Ok(session) => {
            tracing::info!(account = %account.id, "signed in with single sign-on");
            let mut response =
                (StatusCode::SEE_OTHER, [(header::LOCATION, AFTER_SIGN_IN)]).into_response();
            response
                .headers_mut()
                .append(header::SET_COOKIE, session.set_cookie);
            response
        }
        Err(e) => {
            tracing::warn!("single sign-on: cannot start a session: {e}");
            server_trouble().into_response()
        }
    }
}

fn server_trouble() -> Page {
    Page::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Aula could not sign you in",
        "Your school account was accepted, but this server could not start your session.".into(),
        "Try again in a minute. If it keeps failing, tell your school's Aula administrator.",
    )
}

/// `Set-Cookie` binding a sign-in to this browser: only sent back to `/auth/oidc`, not readable
/// by scripts, sent on the provider's top-level redirect back (`SameSite=Lax`).
fn binding_cookie(value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{BINDING_COOKIE}={value}; Path=/auth/oidc; Max-Age={max_age_secs}; HttpOnly; \
         SameSite=Lax{secure}"
    ))
    .expect("a hex value makes a valid header")
}

fn clear_binding_cookie(secure: bool) -> HeaderValue {
    binding_cookie("", 0, secure)
}

/// The value of the cookie `name` in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, v)| *n == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// Equal strings, compared in time that depends only on their lengths.
fn same_secret(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_the_public_url() {
        assert!(same_host("http://localhost:8080", "localhost:8080"));
        assert!(same_host(
            "https://Aula.School.example",
            "aula.school.example:443"
        ));
        assert!(same_host("http://aula.example:80/", "aula.example"));
        assert!(!same_host("http://localhost:8080", "127.0.0.1:8080"));
        assert!(!same_host("https://aula.example", "aula.example:8443"));
    }

    #[test]
    fn the_binding_cookie_is_read_and_compared_whole() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; aula-oidc=abc; aula-oidc_x=zzz"),
        );
        assert_eq!(cookie(&headers, BINDING_COOKIE), Some("abc"));
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc") && !same_secret("ab", "abc"));
        let set = binding_cookie("abc", 600, true);
        let set = set.to_str().unwrap();
        for part in [
            "Path=/auth/oidc",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Max-Age=600",
        ] {
            assert!(set.contains(part), "{set}");
        }
    }
}
