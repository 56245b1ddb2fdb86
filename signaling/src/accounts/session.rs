//! Sign-in sessions: a random token in an `HttpOnly` cookie, of which the server stores only the
//! SHA-256 hash, with an expiry (`[accounts] session_lifetime_secs`); and the CSRF token bound to
//! it, which a page sends back in `X-CSRF-Token` with every state change.
//!
//! Every way of signing in (password, single sign-on) ends with [`start_session`]. A session ends
//! when it expires, on sign-out, and when its account is disabled, deleted or given a new
//! password (the store's contract, see [`AccountStore`](super::AccountStore)).

use axum::http::{header, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use super::StoredSession;
use crate::api::ApiError;
use crate::app::{unix_millis, App};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "aula-session";

/// The request header that carries the CSRF token of a cookie-authenticated state change.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A session just started: what the response must carry.
#[derive(Debug, Clone)]
pub struct SessionStart {
    /// The session token (the cookie's value). Secret: never logged.
    pub token: String,
    /// The CSRF token to send in `X-CSRF-Token` with state changes in this session.
    pub csrf_token: String,
    /// When the session ends, Unix seconds.
    pub expires_at: u64,
    /// The `Set-Cookie` header value that hands the session to the browser.
    pub set_cookie: HeaderValue,
}

/// Starts a session for the account `account_id` (which must exist and not be disabled): stores
/// it and returns the cookie to set. The OIDC callback and the password sign-in both call this.
pub fn start_session(app: &App, account_id: &str) -> Result<SessionStart, ApiError> {
    let account = app
        .accounts
        .account(account_id)?
        .ok_or_else(|| ApiError::NotFound(format!("account {account_id}")))?;
    if account.disabled {
        return Err(ApiError::Denied("this account is disabled"));
    }
    let now = unix_millis() / 1000;
    let lifetime = app.accounts_config.session_lifetime_secs;
    let token = crate::secrets::generate();
    let session = StoredSession {
        token_hash: token_hash(&token),
        account_id: account.id.clone(),
        created_at: now,
        expires_at: now.saturating_add(lifetime),
    };
    app.accounts.create_session(&session)?;
    tracing::info!(account = %account.id, "signed in");
    Ok(SessionStart {
        csrf_token: csrf_token(&token),
        set_cookie: session_cookie(&token, lifetime, app.secure_cookies),
        expires_at: session.expires_at,
        token,
    })
}

/// The stored form of a session or setup token: hex SHA-256. The tokens are 256 random bits, so
/// a fast hash is enough (nothing to brute-force).
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// The CSRF token of a session: derived from its secret token, so only someone who holds the
/// cookie's value (or was told it by `GET /api/v1/session`) knows it, and it needs no storage.
pub fn csrf_token(session_token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"aula-csrf\0");
    hasher.update(session_token.as_bytes());
    hex(&hasher.finalize())
}

/// `Set-Cookie` for a session: `HttpOnly` (no script reads it), `SameSite=Lax` (not sent with
/// other sites' sub-requests and form posts), `Secure` when the server is reached over HTTPS,
/// expiring with the session.
pub fn session_cookie(token: &str, lifetime_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={token}; Path=/; Max-Age={lifetime_secs}; HttpOnly; SameSite=Lax{secure}"
    ))
    .expect("a hex token makes a valid header")
}

/// `Set-Cookie` that removes the session cookie (signing out).
pub fn clear_cookie(secure: bool) -> HeaderValue {
    session_cookie("", 0, secure)
}

/// The session token in the request's `Cookie` headers, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE_NAME && !value.is_empty())
        .map(|(_, value)| value)
}

/// Equal strings, compared in time that depends only on their lengths.
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_differ_from_tokens_and_from_each_other() {
        let token = "ab".repeat(32);
        assert_eq!(token_hash(&token).len(), 64);
        assert_ne!(token_hash(&token), token);
        assert_ne!(csrf_token(&token), token_hash(&token));
        assert_eq!(csrf_token(&token), csrf_token(&token));
        assert_ne!(csrf_token(&token), csrf_token(&"cd".repeat(32)));
    }

    #[test]
    fn cookie_flags() {
        let c = session_cookie("abc", 3600, false);
        assert_eq!(
            c.to_str().unwrap(),
            "aula-session=abc; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"
        );
        let c = session_cookie("abc", 60, true);
        assert!(c.to_str().unwrap().ends_with("; Secure"));
        assert!(clear_cookie(false)
            .to_str()
            .unwrap()
            .starts_with("aula-session=; Path=/; Max-Age=0;"));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        assert_eq!(cookie_token(&h), None);
        h.append(
            header::COOKIE,
            "a=1; aula-session=tok; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_token(&h), Some("tok"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1".parse().unwrap());
        h.append(header::COOKIE, "aula-session=x".parse().unwrap());
        assert_eq!(cookie_token(&h), Some("x"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "aula-session=".parse().unwrap());
        assert_eq!(cookie_token(&h), None);
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
    }
}
