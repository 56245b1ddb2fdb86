//! [`Caller`]: who sends an API request, as an axum extractor. Either the admin key
//! (`Authorization: Bearer <key>`, for scripts) or a signed-in account (the session cookie).
//!
//! A cookie is sent by the browser on its own, so a cookie-authenticated request that changes
//! something (any method but `GET`, `HEAD`, `OPTIONS`) must also pass the CSRF checks: an
//! `Origin`, when sent, of this server or of `allowed_origins`, and the session's CSRF token in
//! `X-CSRF-Token`. A request with a bearer key carries no ambient credential and needs neither.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};

use super::session::{cookie_token, csrf_token, same_secret, token_hash, CSRF_HEADER};
use super::{Account, AccountRole};
use crate::api::ApiError;
use crate::app::{unix_millis, App};
use crate::store::ClassRecord;

/// Who sends a request. Extracting it fails with 401 `unauthorized` when the request carries
/// neither a valid admin key nor a live session, and with 403 `csrf_failed` for a
/// cookie-authenticated state change that fails the CSRF checks.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The admin key: may do everything.
    AdminKey,
    /// A signed-in account.
    Account {
        account: Account,
        /// The hash of the session's token (to end it on sign-out).
        session_hash: String,
        /// The session's CSRF token (for `GET /api/v1/session` to hand to the page).
        csrf_token: String,
        /// When the session ends, Unix seconds.
        expires_at: u64,
    },
}

impl Caller {
    /// The caller of a request, or `None` when it carries no credentials at all (neither an
    /// `Authorization` header nor a live session cookie). A wrong admin key is an error (and
    /// counts against the address), as is a failed CSRF check.
    pub fn identify(
        app: &App,
        method: &Method,
        headers: &HeaderMap,
        ip: IpAddr,
    ) -> Result<Option<Caller>, ApiError> {
        if crate::api::has_bearer(headers) {
            crate::api::check_admin_key(app, headers, ip)?;
            return Ok(Some(Caller::AdminKey));
        }
        let Some(token) = cookie_token(headers) else {
            return Ok(None);
        };
        let now = unix_millis() / 1000;
        // An expired or revoked session is no credential: the page signs in again.
        let Some((session, account)) = app.accounts.session(&token_hash(token), now)? else {
            return Ok(None);
        };
        let csrf = csrf_token(token);
        if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            check_csrf(headers, &csrf, &app.allowed_origins)?;
        }
        Ok(Some(Caller::Account {
            account,
            session_hash: session.token_hash,
            csrf_token: csrf,
            expires_at: session.expires_at,
        }))
    }

    /// Whether the caller is an admin: the admin key, or an account with the admin role.
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::AdminKey => true,
            Caller::Account { account, .. } => account.role == AccountRole::Admin,
        }
    }

    /// Passes for admins; 403 `forbidden` for teachers.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.is_admin() {
            true => Ok(()),
            false => Err(ApiError::Denied("only an admin may do this")),
        }
    }

    /// The signed-in account, if the caller is one.
    pub fn account(&self) -> Option<&Account> {
        match self {
            Caller::AdminKey => None,
            Caller::Account { account, .. } => Some(account),
        }
    }

    /// Whether the caller may open, rename, delete and otherwise manage `class`: admins any
    /// class, a teacher the classes she owns.
    pub fn may_manage(&self, class: &ClassRecord) -> bool {
        self.is_admin()
            || self
                .account()
                .is_some_and(|a| class.owner.as_deref() == Some(a.id.as_str()))
    }

    /// Passes when the caller may manage `class` (see [`Caller::may_manage`]); 403 `forbidden`
    /// otherwise.
    pub fn require_manage(&self, class: &ClassRecord) -> Result<(), ApiError> {
        match self.may_manage(class) {
            true => Ok(()),
            false => Err(ApiError::Denied("this class belongs to another teacher")),
        }
    }
}

/// The CSRF checks of a cookie-authenticated state change: a browser's `Origin` must be this
/// server's (or allowed), and `X-CSRF-Token` must be the session's token.
fn check_csrf(headers: &HeaderMap, expected: &str, allowed: &[String]) -> Result<(), ApiError> {
    crate::ws::check_origin(headers, allowed).map_err(ApiError::Csrf)?;
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !same_secret(given, expected) {
        return Err(ApiError::Csrf(
            "missing or wrong X-CSRF-Token (get it from GET /api/v1/session)".into(),
        ));
    }
    Ok(())
}

/// The peer address axum recorded, for the admin key's failure budget.
fn peer_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        Caller::identify(app, &parts.method, &parts.headers, peer_ip(parts))?
            .ok_or(ApiError::Unauthorized)
    }
}

/// [`Caller`] or nobody: for routes that also serve callers without credentials (open class
/// creation). Wrong credentials still fail.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<Arc<App>> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        Caller::identify(app, &parts.method, &parts.headers, peer_ip(parts)).map(MaybeCaller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn csrf_needs_the_token_and_a_same_origin() {
        let expected = "t".repeat(64);
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "aula.example:8080".parse().unwrap());
        assert!(check_csrf(&h, &expected, &[]).is_err(), "no token");
        h.insert(CSRF_HEADER, expected.parse().unwrap());
        assert!(check_csrf(&h, &expected, &[]).is_ok());
        h.insert(header::ORIGIN, "http://aula.example:8080".parse().unwrap());
        assert!(check_csrf(&h, &expected, &[]).is_ok());
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(matches!(
            check_csrf(&h, &expected, &[]),
            Err(ApiError::Csrf(_))
        ));
        h.insert(header::ORIGIN, "http://aula.example:8080".parse().unwrap());
        h.insert(CSRF_HEADER, "u".repeat(64).parse().unwrap());
        assert!(check_csrf(&h, &expected, &[]).is_err(), "wrong token");
    }
}
