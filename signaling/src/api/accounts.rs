//! Staff accounts over the API (admins only: the admin key or an admin's session):
//! `POST/GET /accounts`, `GET/PATCH/DELETE /accounts/{id}`, `POST /accounts/{id}/reset` (a new
//! setup link); and the setup link's own calls, which need only its token: `POST /setup/info`
//! (whose link is it) and `POST /setup` (choose the password, which signs in).

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::session::{session_response, AccountView};
use super::ApiError;
use crate::accounts::caller::Caller;
use crate::accounts::session::{start_session, token_hash};
use crate::accounts::setup::{add_account, reset, SetupLink};
use crate::accounts::{normalise_name, password, AccountPatch, AccountRole, NewAccount};
use crate::app::{unix_millis, App};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    email: String,
    name: String,
    #[serde(default = "teacher")]
    role: AccountRole,
}

fn teacher() -> AccountRole {
    AccountRole::Teacher
}

/// An account with a fresh setup link (creation and reset).
#[derive(Debug, Serialize)]
pub struct AccountWithLink {
    #[serde(flatten)]
    account: AccountView,
    setup_url: String,
    setup_expires_at: u64,
}

fn with_link(account: &crate::accounts::Account, link: SetupLink) -> AccountWithLink {
    AccountWithLink {
        account: account.into(),
        setup_url: link.url,
        setup_expires_at: link.expires_at,
    }
}

fn now() -> u64 {
    unix_millis() / 1000
}

/// `POST /api/v1/accounts`: adds an account (`role` defaults to `teacher`); 201 with its
/// one-time `setup_url`. 409 `email_taken` when the email has an account.
pub(super) async fn create_account(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: Result<Json<CreateAccount>, JsonRejection>,
) -> Result<(StatusCode, Json<AccountWithLink>), ApiError> {
    caller.require_admin()?;
    let Json(req) = body?;
    let new = NewAccount {
        email: req.email,
        name: req.name,
        role: req.role,
    };
    let lifetime = app.accounts_config.setup_link_lifetime_secs;
    let (account, link) = add_account(&*app.accounts, &new, &app.public_url, now(), lifetime)?;
    tracing::info!(account = %account.id, role = account.role.as_str(), "account added");
    Ok((StatusCode::CREATED, Json(with_link(&account, link))))
}

/// `GET /api/v1/accounts`: every account, oldest first.
pub(super) async fn list_accounts(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    caller.require_admin()?;
    let accounts = app.accounts.accounts()?;
    Ok(Json(accounts.iter().map(AccountView::from).collect()))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("account {id}"))
}

/// `GET /api/v1/accounts/{id}`.
pub(super) async fn get_account(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    caller.require_admin()?;
    let account = app.accounts.account(&id)?.ok_or_else(|| not_found(&id))?;
    Ok(Json((&account).into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchAccount {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<AccountRole>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// `PATCH /api/v1/accounts/{id}`: changes `name`, `role` or `disabled` (disabling ends the
/// account's sessions at once).
pub(super) async fn patch_account(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<PatchAccount>, JsonRejection>,
) -> Result<Json<AccountView>, ApiError> {
    caller.require_admin()?;
    let Json(req) = body?;
    let patch = AccountPatch {
        name: req.name.as_deref().map(normalise_name).transpose()?,
        role: req.role,
        disabled: req.disabled,
    };
    let account = app
        .accounts
        .update_account(&id, &patch)?
        .ok_or_else(|| not_found(&id))?;
    tracing::info!(account = %id, disabled = account.disabled, "account changed");
    Ok(Json((&account).into()))
}

/// `DELETE /api/v1/accounts/{id}`: deletes the account with its sessions; its classes stay,
/// managed by admins. 204.
pub(super) async fn delete_account(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    if !app.accounts.delete_account(&id)? {
        return Err(not_found(&id));
    }
    tracing::info!(account = %id, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/accounts/{id}/reset`: clears the password (ending every session) and answers
/// with a new setup link (which replaces any earlier one).
pub(super) async fn reset_account(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AccountWithLink>, ApiError> {
    caller.require_admin()?;
    let lifetime = app.accounts_config.setup_link_lifetime_secs;
    let (account, link) = reset(&*app.accounts, &id, &app.public_url, now(), lifetime)?
        .ok_or_else(|| not_found(&id))?;
    tracing::info!(account = %id, "password reset");
    Ok(Json(with_link(&account, link)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupInfoRequest {
    token: String,
}

/// What the setup page shows before the password is chosen.
#[derive(Debug, Serialize)]
pub struct SetupInfo {
    email: String,
    name: String,
    password_min_length: usize,
}

/// `POST /api/v1/setup/info` with `{"token"}`: whose setup link this is; 404
/// `setup_link_invalid` when it expired or was used. (A `POST`, so the token stays out of URLs.)
pub(super) async fn setup_info(
    State(app): State<Arc<App>>,
    body: Result<Json<SetupInfoRequest>, JsonRejection>,
) -> Result<Json<SetupInfo>, ApiError> {
    let Json(req) = body?;
    let account = app
        .accounts
        .setup_token_account(&token_hash(&req.token), now())?
        .ok_or(ApiError::SetupLinkInvalid)?;
    Ok(Json(SetupInfo {
        email: account.email,
        name: account.name,
        password_min_length: app.accounts_config.password_min_length,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoosePassword {
    token: String,
    password: String,
}

/// `POST /api/v1/setup` with `{"token", "password"}`: sets the password (400 `weak_password`
/// when it breaks a rule), uses the link up, and signs in: 200 with the session and its cookie.
pub(super) async fn choose_password(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<ChoosePassword>, JsonRejection>,
) -> Result<Response, ApiError> {
    crate::ws::check_origin(&headers, &app.allowed_origins).map_err(ApiError::Csrf)?;
    let Json(req) = body?;
    let hash_of_token = token_hash(&req.token);
    let account = app
        .accounts
        .setup_token_account(&hash_of_token, now())?
        .ok_or(ApiError::SetupLinkInvalid)?;
    password::check_rules(
        &req.password,
        app.accounts_config.password_min_length,
        &account.email,
        &account.name,
    )
    .map_err(ApiError::WeakPassword)?;
    let given = req.password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&given))
        .await
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))?;
    // Used up first: of two requests racing with one link, only one sets the password.
    if !app.accounts.consume_setup_token(&hash_of_token, now())? {
        return Err(ApiError::SetupLinkInvalid);
    }
    app.accounts.set_password_hash(&account.id, Some(&hash))?;
    tracing::info!(account = %account.id, "password chosen");
    if account.disabled {
        return Err(ApiError::AccountDisabled);
    }
    let started = start_session(&app, &account.id)?;
    Ok(session_response(StatusCode::OK, &account, started))
}
