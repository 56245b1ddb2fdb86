//! The REST API under `/api/v1`, plus `/metrics`: the routes, and what every handler shares
//! (errors, the admin-key check, minting class links).
//!
//! Every route but `info`, `join`, `join-info`, `invite` (a teacher's token instead) and open
//! class creation (when enabled) needs
//! `Authorization: Bearer <admin key>`; an address that sends a wrong key too often gets 429 for
//! a while. Errors are JSON: `{"error": {"code": "...", "message": "..."}}` with the codes listed
//! in [`ApiError`].
//!
//! - [`classes`]: create, list, read and delete classes; tokens for one person.
//! - [`students`]: class lists with personal links, and the shared-link setting.
//! - [`sessions`]: each ended lesson's attendance, as JSON and CSV, and deleting it.
//! - [`joining`]: what a student or teacher needs before joining (code lookup, link info, invite).
//! - [`info`]: ICE servers for scripts, the metrics page, what the start page needs to know.
//! - [`session`]: sign in with a password, who am I (with the CSRF token), sign out.
//! - [`accounts`]: staff accounts (admins only), and the setup link's calls.

mod accounts;
mod auth;
mod classes;
mod errors;
mod info;
mod joining;
mod session;
mod sessions;
mod students;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use serde::Serialize;

use crate::app::{unix_millis, App};
use crate::protocol::Role;
use crate::token::Claims;

pub use errors::ApiError;
pub use info::metrics;

/// Whether the request carries an `Authorization: Bearer` key.
pub(crate) fn has_bearer(headers: &axum::http::HeaderMap) -> bool {
    auth::bearer(headers).is_some()
}

/// Checks the bearer admin key (counting failures against `ip`), as the admin routes do.
pub(crate) fn check_admin_key(
    app: &App,
    headers: &axum::http::HeaderMap,
    ip: std::net::IpAddr,
) -> Result<(), ApiError> {
    auth::require_admin(app, headers, ip)
}

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/classes",
            post(classes::create_class).get(classes::list_classes),
        )
        .route(
            "/classes/{id}",
            get(classes::get_class)
                .patch(classes::rename_class)
                .delete(classes::delete_class),
        )
        .route("/classes/{id}/tokens", post(classes::create_token))
        .route(
            "/classes/{id}/students",
            post(students::add_students)
                .get(students::list_students)
                .layer(DefaultBodyLimit::max(students::MAX_BODY_BYTES)),
        )
        .route("/classes/{id}/students.csv", get(students::students_csv))
        .route(
            "/classes/{id}/students/{sid}",
            get(students::get_student).delete(students::delete_student),
        )
        .route(
            "/classes/{id}/sessions",
            get(sessions::list_sessions).delete(sessions::delete_sessions),
        )
        .route(
            "/classes/{id}/sessions/{sid}",
            delete(sessions::delete_session),
        )
        .route(
            "/classes/{id}/sessions/{sid}/attendance.csv",
            get(sessions::attendance_csv),
        )
        .route(
            "/classes/{id}/settings",
            get(students::get_settings).patch(students::patch_settings),
        )
        .route("/ice-servers", get(info::ice_servers))
        .route("/join", post(joining::join_by_code))
        .route("/join-info", post(joining::join_info))
        .route("/invite", post(joining::invite))
        .route("/info", get(info::info))
        .route(
            "/session",
            get(session::who_am_i)
                .post(session::sign_in)
                .delete(session::sign_out),
        )
        .route(
            "/accounts",
            post(accounts::create_account).get(accounts::list_accounts),
        )
        .route(
            "/accounts/{id}",
            get(accounts::get_account)
                .patch(accounts::patch_account)
                .delete(accounts::delete_account),
        )
        .route("/accounts/{id}/reset", post(accounts::reset_account))
        .route("/setup", post(accounts::choose_password))
        .route("/setup/info", post(accounts::setup_info))
}

/// A class link: its token, the URL that carries it, and when it expires (Unix seconds).
#[derive(Debug, Serialize)]
pub struct Link {
    token: String,
    url: String,
    expires_at: u64,
}

/// A class as other answers name it.
#[derive(Debug, Serialize)]
pub struct ClassRef {
    id: String,
    name: String,
}

/// A fresh class link for `role` in `class`, valid `ttl_secs` from now.
fn link(app: &App, class: &str, role: Role, name: Option<String>, ttl_secs: u64) -> Link {
    let now = unix_millis() / 1000;
    mint(
        app,
        Claims {
            class: class.to_string(),
            role,
            name: name.map(|n| n.trim().to_string()),
            student: None,
            iat: now,
            exp: now + ttl_secs,
        },
    )
}

/// The link that carries these claims.
fn mint(app: &App, claims: Claims) -> Link {
    let token = app.tokens.mint(&claims);
    Link {
        url: format!("{}/join#token={token}", app.public_url),
        token,
        expires_at: claims.exp,
    }
}

/// The class store; a panic elsewhere while holding it does not lock everyone out.
fn lock_store(app: &App) -> std::sync::MutexGuard<'_, crate::store::Store> {
    app.store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
