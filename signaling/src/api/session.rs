//! `/api/v1/session`: signing in and out. `POST` signs in with an email and password (throttled
//! per account and per address; the answer takes as long for an unknown email as for a wrong
//! password), `GET` says who is signed in and hands the page its CSRF token, `DELETE` signs out
//! (ends the session and clears the cookie).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::accounts::caller::Caller;
use crate::accounts::password::{self, MAX_PASSWORD_LEN};
use crate::accounts::session::{clear_cookie, start_session, SessionStart};
use crate::accounts::{normalise_email, Account, AccountRole};
use crate::app::App;

/// An account as the API shows it (never its password hash).
#[derive(Debug, Serialize)]
pub struct AccountView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: AccountRole,
    pub disabled: bool,
    /// Whether a password is set (an account without one signs in through its setup link or
    /// single sign-on).
    pub has_password: bool,
    pub created_at: u64,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            id: a.id.clone(),
            email: a.email.clone(),
            name: a.name.clone(),
            role: a.role,
            disabled: a.disabled,
            has_password: a.password_hash.is_some(),
            created_at: a.created_at,
        }
    }
}

/// The answer of `GET /api/v1/session` (and of a password sign-in).
#[derive(Debug, Serialize)]
pub struct SessionView {
    pub account: AccountView,
    /// Send it as `X-CSRF-Token` with every state change made with the session cookie.
    pub csrf_token: String,
    /// When the session ends, Unix seconds.
    pub expires_at: u64,
}

/// `GET /api/v1/session`: the signed-in account and its CSRF token; 401 when not signed in (the
/// admin key has no session: 400).
pub(super) async fn who_am_i(caller: Caller) -> Result<Json<SessionView>, ApiError> {
    match caller {
        Caller::AdminKey => Err(ApiError::BadRequest(
            "the admin key has no session; sign in with an account".into(),
        )),
        Caller::Account {
            account,
            csrf_token,
            expires_at,
            ..
        } => Ok(Json(SessionView {
            account: (&account).into(),
            csrf_token,
            expires_at,
        })),
    }
}

/// `DELETE /api/v1/session`: signs out: ends the session (needs the CSRF token like any state
/// change) and clears the cookie. 204.
pub(super) async fn sign_out(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let Caller::Account {
        session_hash,
        account,
        ..
    } = caller
    else {
        return Err(ApiError::BadRequest(
            "the admin key has no session to end".into(),
        ));
    };
    app.accounts.delete_session(&session_hash)?;
    tracing::info!(account = %account.id, "signed out");
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_cookie(app.secure_cookies))],
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    email: String,
    password: String,
}

/// `POST /api/v1/session`: signs in with `{"email", "password"}`. 200 with the session (as
/// `GET` gives it) and its cookie; 401 `invalid_credentials` for an unknown email or a wrong
/// password alike; 403 `account_disabled`; 429 `rate_limited` once the account or the address
/// has used its budget of failures. A browser's `Origin` must be this server's (against
/// signing someone into the attacker's account from another site).
pub(super) async fn sign_in(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<SignIn>, JsonRejection>,
) -> Result<Response, ApiError> {
    crate::ws::check_origin(&headers, &app.allowed_origins).map_err(ApiError::Csrf)?;
    let Json(req) = body?;
    let ip = peer.ip();
    let limited = |what| move |retry_after| ApiError::Throttled { what, retry_after };
    let now = Instant::now();
    // The throttle's key for the account: the email as given (normalised when it is one), so an
    // unknown email is throttled exactly like a real one.
    let email = normalise_email(&req.email).unwrap_or_else(|_| req.email.trim().to_lowercase());
    app.sign_in_per_ip
        .check(ip, now)
        .map_err(limited("too many failed sign-ins from this address"))?;
    app.sign_in_per_account
        .check(&email, now)
        .map_err(limited("too many failed sign-ins to this account"))?;

    let account = match req.password.chars().count() <= MAX_PASSWORD_LEN {
        true => app.accounts.account_by_email(&email)?,
        false => None,
    };
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let given = req.password;
    let matches =
        tokio::task::spawn_blocking(move || password::verify_or_pretend(&given, stored.as_deref()))
            .await
            .map_err(|e| ApiError::Internal(format!("password check failed: {e}")))?;
    let account = match (matches, account) {
        (true, Some(account)) => account,
        _ => {
            let now = Instant::now();
            let ip_spent = app.sign_in_per_ip.take(ip, now);
            let account_spent = app.sign_in_per_account.take(email, now);
            ip_spent.map_err(limited("too many failed sign-ins from this address"))?;
            account_spent.map_err(limited("too many failed sign-ins to this account"))?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    if account.disabled {
        return Err(ApiError::AccountDisabled);
    }
    let started = start_session(&app, &account.id)?;
    Ok(session_response(StatusCode::OK, &account, started))
}

/// A response that hands over a new session: its cookie, and the session as `GET` shows it.
pub(super) fn session_response(status: StatusCode, account: &Account, s: SessionStart) -> Response {
    let view = SessionView {
        account: account.into(),
        csrf_token: s.csrf_token,
        expires_at: s.expires_at,
    };
    (status, [(header::SET_COOKIE, s.set_cookie)], Json(view)).into_response()
}
