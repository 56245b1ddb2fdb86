//! [`ApiError`]: every way an API call fails, as JSON with a stable code and HTTP status.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An API failure, as JSON with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials, a wrong admin key, or a session that has ended (401 `unauthorized`).
    #[error("sign in, or send Authorization: Bearer <admin key> (missing or wrong credentials)")]
    Unauthorized,
    /// Signed in, but not allowed to do this (403 `forbidden`).
    #[error("{0}")]
    Denied(&'static str),
    /// A cookie-authenticated state change without the session's CSRF token, or from another
    /// site's page (403 `csrf_failed`).
    #[error("{0}")]
    Csrf(String),
    /// A sign-in with an unknown email or a wrong password (401 `invalid_credentials`).
    #[error("wrong email or password")]
    InvalidCredentials,
    /// A sign-in to a disabled account with its right password (403 `account_disabled`).
    #[error("this account is disabled; ask your school's Aula administrator")]
    AccountDisabled,
    /// A new password that breaks a rule (400 `weak_password`).
    #[error("{0}")]
    WeakPassword(crate::accounts::password::PasswordRuleError),
    /// A setup link that has expired, was used, or never existed (404 `setup_link_invalid`).
    #[error("this setup link has expired or was already used; ask your school's Aula administrator for a new one")]
    SetupLinkInvalid,
    /// Another account has this email (409 `email_taken`).
    #[error("an account with the email {0:?} already exists")]
    EmailTaken(String),
    #[error("no class with id {0:?}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    RateLimited(String),
    /// Too many failed admin-key attempts, or too many classes created, from this address
    /// (429 `rate_limited` with `Retry-After`).
    #[error("{what}; try again in {} s", retry_after.as_secs().max(1))]
    Throttled {
        what: &'static str,
        retry_after: Duration,
    },
    /// An `Idempotency-Key` reused for a different request.
    #[error("{0}")]
    Conflict(String),
    /// Open class creation has reached `[http] open_creation_max_classes`.
    #[error("this server already holds {0} classes, the most that can be created without the admin key; ask your school's Aula administrator")]
    ClassLimit(usize),
    /// A class link's token that is forged, damaged or expired (401 `invalid_token` /
    /// `token_expired`, the codes a `join` with it would get).
    #[error("{}", token_text(.0))]
    Token(crate::token::TokenError),
    /// A student's token where a teacher's is needed (403 `forbidden`).
    #[error("only a teacher can invite students")]
    Forbidden,
    /// A request or list over a documented size limit (413 `too_large`).
    #[error("{0}")]
    TooLarge(String),
    /// A class code for a class that admits students only with personal links (403
    /// `personal_link_required`, the code a `join` with a shared link gets).
    #[error(
        "this class lets students in only with their personal link; ask your teacher for yours"
    )]
    PersonalLinkRequired,
    /// A genuine token for a class that was deleted (404 `class_not_found`).
    #[error("this class no longer exists")]
    ClassGone,
    #[error("internal error: {0}")]
    Internal(String),
}

fn token_text(e: &crate::token::TokenError) -> &'static str {
    match e {
        crate::token::TokenError::Expired { .. } => {
            "this link has expired; ask your teacher for a new one"
        }
        crate::token::TokenError::Invalid => {
            "this link is not valid: it is damaged, or from another server"
        }
    }
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::RateLimited(_) | ApiError::Throttled { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            }
            ApiError::ClassLimit(_) => (StatusCode::FORBIDDEN, "class_limit"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Token(e) => (StatusCode::UNAUTHORIZED, e.code().as_str()),
            ApiError::ClassGone => (StatusCode::NOT_FOUND, "class_not_found"),
            ApiError::Forbidden | ApiError::Denied(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Csrf(_) => (StatusCode::FORBIDDEN, "csrf_failed"),
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            ApiError::AccountDisabled => (StatusCode::FORBIDDEN, "account_disabled"),
            ApiError::WeakPassword(_) => (StatusCode::BAD_REQUEST, "weak_password"),
            ApiError::SetupLinkInvalid => (StatusCode::NOT_FOUND, "setup_link_invalid"),
            ApiError::EmailTaken(_) => (StatusCode::CONFLICT, "email_taken"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::PersonalLinkRequired => (StatusCode::FORBIDDEN, "personal_link_required"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = serde_json::json!({"error": {"code": code, "message": self.to_string()}});
        let mut response = (status, Json(body)).into_response();
        if let ApiError::Throttled { retry_after, .. } = &self {
            let secs = retry_after.as_secs().max(1).to_string();
            if let Ok(value) = header::HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::TooLarge(rejection.body_text());
        }
        ApiError::BadRequest(rejection.body_text())
    }
}

/// An error and its causes, `: `-separated: each error's text says only its own part.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        let text = with_causes(&e);
        tracing::error!("class store: {text}");
        ApiError::Internal(text)
    }
}

impl From<crate::accounts::AccountError> for ApiError {
    fn from(e: crate::accounts::AccountError) -> Self {
        use crate::accounts::AccountError;
        match e {
            AccountError::DuplicateEmail(email) => ApiError::EmailTaken(email),
            AccountError::Invalid(message) => ApiError::BadRequest(message),
            AccountError::Store(message) => {
                tracing::error!("account store: {message}");
                ApiError::Internal(message)
            }
        }
    }
}
