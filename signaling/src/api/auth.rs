//! Bearer-key checks: the admin key (and the metrics token), compared in constant time, with a
//! per-address budget of failures so a key cannot be guessed.

use std::net::IpAddr;
use std::time::Instant;

use axum::http::{header, HeaderMap};

use super::ApiError;
use crate::app::App;

/// Checks the bearer admin key in constant time; refuses an address with too many failures.
pub(crate) fn require_admin(app: &App, headers: &HeaderMap, ip: IpAddr) -> Result<(), ApiError> {
    require_key(app, headers, ip, &[&app.admin_key])
}

/// Passes when the bearer token is one of `keys`. Failures count against `ip`; once its budget
/// (`[http] auth_failures_per_min`) is spent, every attempt from it gets 429 without being
/// compared, so the key cannot be guessed faster than that budget.
pub(super) fn require_key(
    app: &App,
    headers: &HeaderMap,
    ip: IpAddr,
    keys: &[&str],
) -> Result<(), ApiError> {
    let now = Instant::now();
    let limited = |retry_after| ApiError::Throttled {
        what: "too many failed admin-key attempts from this address",
        retry_after,
    };
    // No key at all is not a guess (a start page opened without one): 401, not counted.
    let Some(given) = bearer(headers) else {
        return Err(ApiError::Unauthorized);
    };
    app.auth_failures.check(ip, now).map_err(limited)?;
    if keys.iter().any(|k| same_secret(given, k)) {
        return Ok(());
    }
    metrics::counter!(crate::metrics::ADMIN_AUTH_FAILURES).increment(1);
    app.auth_failures.take(ip, now).map_err(limited)?;
    Err(ApiError::Unauthorized)
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Compares in time that depends only on the lengths.
fn same_secret(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
