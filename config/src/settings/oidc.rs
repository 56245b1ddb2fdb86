//! The `[oidc]` section: staff sign-in through the school's OpenID Connect provider (Google
//! Workspace, Microsoft Entra ID, Keycloak, ...), and the rules that say who is a teacher.
//!
//! Single sign-on is off unless `issuer` is set. A person who signs in at the provider gets in
//! when their verified email is in one of `allowed_domains` (any domain when empty) **and** at
//! least one teacher rule matches: `teacher_emails`, `teacher_groups` (values of the
//! `groups_claim`), `teacher_claim` (optionally `teacher_claim_value`), or `all_teachers`.
//! Everyone else is refused with a page that says so.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{string_or_seq, SettingsError};

/// Longest `button_label`, in characters.
pub const MAX_BUTTON_LABEL: usize = 60;

/// The `[oidc]` section. `Debug` never shows the client secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OidcSettings {
    /// The provider's issuer URL, e.g. `https://accounts.google.com`; its discovery document is
    /// `<issuer>/.well-known/openid-configuration`. Must be `https` (plain `http` only on a
    /// loopback host with `allow_http_on_loopback`). Default: none, single sign-on off.
    pub issuer: Option<String>,
    /// Lets `issuer` (and the endpoints its discovery document names) be plain `http` on a
    /// loopback host (`127.0.0.0/8`, `[::1]`, `localhost`): for tests against a provider started
    /// on this machine. Any other `http` URL is still refused. Default `false`.
    pub allow_http_on_loopback: bool,
    /// The client ID Aula was registered with at the provider. Required with `issuer`.
    pub client_id: Option<String>,
    /// The client secret. Prefer `AULA_OIDC__CLIENT_SECRET` or `client_secret_file` to keeping it
    /// in the file. Default: none (then `client_secret_file`, else a public client).
    pub client_secret: Option<String>,
    /// A file holding the client secret (surrounding whitespace ignored), read at start when
    /// `client_secret` is unset. Default: none.
    pub client_secret_file: Option<PathBuf>,
    /// Email domains whose people may sign in, e.g. `["school.example"]`; a person's email must
    /// end in `@` and one of them exactly (no subdomains). Default empty: any domain.
    #[serde(deserialize_with = "string_or_seq")]
    pub allowed_domains: Vec<String>,
    /// Emails of people who are teachers. Default empty.
    #[serde(deserialize_with = "string_or_seq")]
    pub teacher_emails: Vec<String>,
    /// Groups whose members are teachers: values of the `groups_claim` claim of the ID token
    /// (group names, paths like `/staff`, or IDs, as the provider sends them). Default empty.
    #[serde(deserialize_with = "string_or_seq")]
    pub teacher_groups: Vec<String>,
    /// The ID-token claim that lists a person's groups. Default `groups`.
    pub groups_claim: String,
    /// A claim of the ID token that marks teachers, e.g. `aula_teacher`. Without
    /// `teacher_claim_value` a teacher's claim is `true` (or `"true"`, `"yes"`, `"1"`, `1`).
    /// Default: none.
    pub teacher_claim: Option<String>,
    /// With `teacher_claim`: the value that marks a teacher; the claim equals it, or is a list
    /// holding it (e.g. Entra ID's `roles` claim and `Teacher`). Default: none.
    pub teacher_claim_value: Option<String>,
    /// Refuse a person whose ID token does not say `email_verified: true`. Providers that never
    /// send the claim (Microsoft Entra ID) need `false`, with a tenant-specific `issuer` so that
    /// only the school's directory vouches for the email. Default `true`.
    pub require_verified_email: bool,
    /// Everyone who passes `allowed_domains` is a teacher (a domain only staff have). Needs
    /// `allowed_domains`. Default `false`.
    pub all_teachers: bool,
    /// Scopes requested besides `openid email profile`, e.g. `["groups"]` where the provider
    /// sends the groups claim only for that scope. Default empty.
    #[serde(deserialize_with = "string_or_seq")]
    pub extra_scopes: Vec<String>,
    /// The sign-in button's text on the sign-in page. Default `Sign in with your school account`.
    pub button_label: String,
}

impl Default for OidcSettings {
    fn default() -> Self {
        OidcSettings {
            issuer: None,
            allow_http_on_loopback: false,
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            allowed_domains: Vec::new(),
            teacher_emails: Vec::new(),
            teacher_groups: Vec::new(),
            groups_claim: "groups".into(),
            teacher_claim: None,
            teacher_claim_value: None,
            require_verified_email: true,
            all_teachers: false,
            extra_scopes: Vec::new(),
            button_label: "Sign in with your school account".into(),
        }
    }
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("allow_http_on_loopback", &self.allow_http_on_loopback)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_secret_file", &self.client_secret_file)
            .field("allowed_domains", &self.allowed_domains)
            .field("teacher_emails", &self.teacher_emails)
            .field("teacher_groups", &self.teacher_groups)
            .field("groups_claim", &self.groups_claim)
            .field("teacher_claim", &self.teacher_claim)
            .field("teacher_claim_value", &self.teacher_claim_value)
            .field("require_verified_email", &self.require_verified_email)
            .field("all_teachers", &self.all_teachers)
            .field("extra_scopes", &self.extra_scopes)
            .field("button_label", &self.button_label)
            .finish()
    }
}

/// The client secret could not be read from `client_secret_file`.
#[derive(Debug, thiserror::Error)]
#[error("cannot read oidc.client_secret_file {}", path.display())]
pub struct SecretFileError {
    path: PathBuf,
    source: std::io::Error,
}

impl OidcSettings {
    /// Whether single sign-on is on (`issuer` is set).
    pub fn enabled(&self) -> bool {
        self.issuer.is_some()
    }

    /// The client secret: `client_secret`, else the trimmed contents of `client_secret_file`,
    /// else none (a public client).
    pub fn client_secret(&self) -> Result<Option<String>, SecretFileError> {
        if let Some(secret) = &self.client_secret {
            return Ok(Some(secret.clone()));
        }
        match &self.client_secret_file {
            None => Ok(None),
            Some(path) => std::fs::read_to_string(path)
                .map(|s| Some(s.trim().to_string()).filter(|s| !s.is_empty()))
                .map_err(|source| SecretFileError {
                    path: path.clone(),
                    source,
                }),
        }
    }

    /// The section's checks (only when `issuer` is set); every error names its key.
    pub(crate) fn validate(&self) -> Result<(), SettingsError> {
        let Some(issuer) = &self.issuer else {
            return Ok(());
        };
        check_url(issuer, self.allow_http_on_loopback)
            .map_err(|m| SettingsError::invalid("oidc.issuer", m))?;
        if self
            .client_id
            .as_deref()
            .is_none_or(|id| id.trim().is_empty())
        {
            return Err(SettingsError::invalid(
                "oidc.client_id",
                "missing: give the client ID Aula was registered with at the provider",
            ));
        }
        if self
            .client_secret
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err(SettingsError::invalid(
                "oidc.client_secret",
                "must not be empty (leave it unset for a public client)",
            ));
        }
        for domain in &self.allowed_domains {
            let ok = !domain.is_empty()
                && domain.contains('.')
                && !domain.contains(['@', '/', ':', ' '])
                && !domain.starts_with('.');
            if !ok {
                return Err(SettingsError::invalid(
                    "oidc.allowed_domains",
                    format!("{domain:?} is not an email domain like school.example"),
                ));
            }
        }
        for email in &self.teacher_emails {
            let ok = email
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
            if !ok || email.contains(' ') {
                return Err(SettingsError::invalid(
                    "oidc.teacher_emails",
                    format!("{email:?} is not an email address"),
                ));
            }
        }
        if self.teacher_groups.iter().any(|g| g.trim().is_empty()) {
            return Err(SettingsError::invalid(
                "oidc.teacher_groups",
                "a group must not be empty",
            ));
        }
        if self.groups_claim.trim().is_empty() {
            return Err(SettingsError::invalid(
                "oidc.groups_claim",
                "must not be empty (the default is \"groups\")",
            ));
        }
        if self
            .teacher_claim
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return Err(SettingsError::invalid(
                "oidc.teacher_claim",
                "must not be empty (leave it unset)",
            ));
        }
        if self.teacher_claim_value.is_some() && self.teacher_claim.is_none() {
            return Err(SettingsError::invalid(
                "oidc.teacher_claim_value",
                "needs oidc.teacher_claim: the claim whose value it is",
            ));
        }
        if self.all_teachers && self.allowed_domains.is_empty() {
            return Err(SettingsError::invalid(
                "oidc.all_teachers",
                "needs oidc.allowed_domains: otherwise anyone with an account at the provider \
                 would be a teacher",
            ));
        }
        let any_rule = self.all_teachers
            || !self.teacher_emails.is_empty()
            || !self.teacher_groups.is_empty()
            || self.teacher_claim.is_some();
        if !any_rule {
            return Err(SettingsError::invalid(
                "oidc.teacher_emails",
                "no rule says who is a teacher: set oidc.teacher_emails, oidc.teacher_groups, \
                 oidc.teacher_claim, or oidc.all_teachers = true",
            ));
        }
        if let Some(scope) = self
            .extra_scopes
            .iter()
            .find(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(SettingsError::invalid(
                "oidc.extra_scopes",
                format!("{scope:?} is not one scope"),
            ));
        }
        let label = self.button_label.trim().chars().count();
        if label == 0 || label > MAX_BUTTON_LABEL {
            return Err(SettingsError::invalid(
                "oidc.button_label",
                format!("must have 1 to {MAX_BUTTON_LABEL} characters"),
            ));
        }
        Ok(())
    }
}

/// An issuer is an `https` URL without query or fragment; plain `http` only on a loopback host,
/// and only when `http_on_loopback` allows it.
///
/// The server applies the same rule to the endpoints a discovery document names.
pub fn check_url(issuer: &str, http_on_loopback: bool) -> Result<(), String> {
    let (rest, https) = match issuer.strip_prefix("https://") {
        Some(rest) => (rest, true),
        None => match issuer.strip_prefix("http://") {
            Some(rest) => (rest, false),
            None => return Err(format!("{issuer:?} must start with https://")),
        },
    };
    let host_port = rest.split('/').next().unwrap_or("");
    if host_port.is_empty() || issuer.contains(['?', '#', ' ']) {
        return Err(format!(
            "{issuer:?} is not an issuer URL like https://accounts.google.com"
        ));
    }
    if !https {
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!(
                "{issuer:?} must start with https:// (plain http only for a provider on this \
                 machine, with oidc.allow_http_on_loopback = true)"
            ));
        }
        if !http_on_loopback {
            return Err(format!(
                "{issuer:?} is plain http: set oidc.allow_http_on_loopback = true for a provider \
                 on this machine (tests), or use https"
            ));
        }
    }
    Ok(())
}
