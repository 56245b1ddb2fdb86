//! Staff single sign-on with OpenID Connect (`[oidc]`): `GET /auth/oidc/start` sends the browser
//! to the school's provider, `GET /auth/oidc/callback` takes it back, checks everything, and
//! signs a teacher in with the same session cookie a password sign-in gets, landing on "My classes"
//! (`/classes`).
//!
//! - [`pending`]: sign-ins in progress by `state` (bounded, expiring, single use; sans-IO).
//! - [`rules`]: who gets in — email, `allowed_domains`, the teacher rules (pure functions).
//! - [`provider`]: discovery, the authorization URL, the code exchange and ID-token checks.
//! - `routes`: the two handlers and the browser-binding cookie; `page`: the refusal pages.

mod page;
pub mod pending;
pub mod provider;
mod routes;
pub mod rules;

use std::sync::Mutex;
use std::time::Duration;

use aula_config::settings::{OidcSettings, SecretFileError};

pub use routes::routes;

/// Sign-in starts one address may make per minute (a school behind one NAT address signs in
/// together in the morning; a flood beyond this is refused with 429).
pub const STARTS_PER_IP_PER_MIN: u32 = 60;

/// Why single sign-on could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Secret(#[from] SecretFileError),
    #[error("oidc: {0}")]
    Provider(#[from] provider::ProviderError),
}

/// Single sign-on as the server runs it: the provider, the rules, sign-ins in progress.
#[derive(Debug)]
pub struct Sso {
    pub(crate) settings: OidcSettings,
    pub(crate) provider: provider::Provider,
    pub(crate) pending: Mutex<pending::PendingLogins>,
    pub(crate) starts: crate::throttle::IpThrottle,
}

impl Sso {
    /// Single sign-on for `settings` (`None` when `[oidc]` is off) on a server reached at
    /// `public_url`. Reads the client secret file; talks to the provider only on the first
    /// sign-in.
    pub fn new(settings: &OidcSettings, public_url: &str) -> Result<Option<Sso>, SetupError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let secret = settings.client_secret()?;
        let redirect = format!("{}/auth/oidc/callback", public_url.trim_end_matches('/'));
        Ok(Some(Sso {
            settings: settings.clone(),
            provider: provider::Provider::new(settings, secret, &redirect)?,
            pending: Mutex::new(pending::PendingLogins::default()),
            starts: crate::throttle::IpThrottle::new(
                STARTS_PER_IP_PER_MIN,
                Duration::from_secs(60),
            ),
        }))
    }

    /// The sign-in button's text.
    pub fn button_label(&self) -> &str {
        self.settings.button_label.trim()
    }

    pub(crate) fn pending(&self) -> std::sync::MutexGuard<'_, pending::PendingLogins> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}
