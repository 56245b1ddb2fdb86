//! `/api/v1/session`: the signed-in caller's session. `GET` says who is signed in and hands the
//! page its CSRF token; `DELETE` signs out (ends the session and clears the cookie).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::ApiError;
use crate::accounts::caller::Caller;
use crate::accounts::session::clear_cookie;
use crate::accounts::{Account, AccountRole};
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
