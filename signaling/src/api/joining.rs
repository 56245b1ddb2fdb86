//! Before joining: a class code's student link (`POST /join`), what a class link leads to
//! (`POST /join-info`), and a teacher's invite panel (`POST /invite`). None needs the admin key;
//! each is limited per address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{link, lock_store, ApiError, ClassRef, Link};
use crate::app::{unix_millis, App};
use crate::protocol::Role;
use crate::token::Claims;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinByCode {
    code: String,
}

/// The answer to a class code: `found` false for an unknown code (a lookup that says "no" is
/// not a failure; a typo on the start page should not look like a broken server).
#[derive(Debug, Serialize)]
pub struct CodeJoin {
    found: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    link: Option<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<ClassRef>,
}

/// Student tokens handed out for a class code live at most this long.
const CODE_TOKEN_TTL_SECS: u64 = 12 * 3600;

/// `POST /api/v1/join`: a student token for a class code (the class id), so a student can type
/// a short code instead of opening a link. No key: the code is as shareable as the student link.
pub(super) async fn join_by_code(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<JoinByCode>, JsonRejection>,
) -> Result<Json<CodeJoin>, ApiError> {
    // Sized for a school behind one address (see `[joining]`): it slows code guessing and
    // token farming, not a class typing its code.
    if !app.join_limits.allow_code_lookup(addr.ip()) {
        return Err(ApiError::RateLimited(
            "too many class-code lookups from your network; try again in a few seconds".into(),
        ));
    }
    let Json(req) = body?;
    let code = req.code.trim().to_ascii_lowercase();
    let Some(record) = lock_store(&app).get(&code)? else {
        return Ok(Json(CodeJoin {
            found: false,
            link: None,
            class: None,
        }));
    };
    if !lock_store(&app).shared_links(&record.id)? {
        return Err(ApiError::PersonalLinkRequired);
    }
    let ttl = app.token_ttl_secs.min(CODE_TOKEN_TTL_SECS);
    let link = link(&app, &record.id, Role::Student, None, ttl);
    Ok(Json(CodeJoin {
        found: true,
        link: Some(link),
        class: Some(ClassRef {
            id: record.id,
            name: record.name,
        }),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinInfoRequest {
    token: String,
}

/// What a class link leads to, before joining: the join form shows the class name.
#[derive(Debug, Serialize)]
pub struct JoinInfo {
    class: ClassRef,
    role: Role,
    /// The display name the token fixes, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    expires_at: u64,
}

/// Tokens are a few hundred bytes; anything much longer is not one.
const MAX_TOKEN_LEN: usize = 4096;

/// Class-link lookups share the per-address budget of class-code lookups (see `[joining]`).
fn allow_link_lookup(app: &App, ip: IpAddr) -> Result<(), ApiError> {
    if app.join_limits.allow_code_lookup(ip) {
        return Ok(());
    }
    Err(ApiError::RateLimited(
        "too many class-link lookups from your network; try again in a few seconds".into(),
    ))
}

/// The claims of a class link's token sent in a request body: forged, damaged, oversized or
/// expired tokens get the codes a `join` with them would (`invalid_token`, `token_expired`).
fn verify_link_token(app: &App, token: &str) -> Result<Claims, ApiError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::Token(crate::token::TokenError::Invalid));
    }
    app.tokens
        .verify(token.trim(), unix_millis() / 1000)
        .map_err(ApiError::Token)
}

/// `POST /api/v1/join-info`: the class name and role for a class link's token, without joining
/// (the join form shows them). The token travels in the body, never in a URL, and is never
/// logged. Forged or expired tokens get the codes a `join` would (`invalid_token`,
/// `token_expired`). Limited per address like class-code lookups.
pub(super) async fn join_info(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<JoinInfoRequest>, JsonRejection>,
) -> Result<Json<JoinInfo>, ApiError> {
    allow_link_lookup(&app, addr.ip())?;
    let Json(req) = body?;
    let claims = verify_link_token(&app, &req.token)?;
    let record = lock_store(&app)
        .get(&claims.class)?
        .ok_or(ApiError::ClassGone)?;
    Ok(Json(JoinInfo {
        class: ClassRef {
            id: record.id,
            name: record.name,
        },
        role: claims.role,
        name: claims.name,
        expires_at: claims.exp,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    token: String,
    /// The page's `location.origin`: links on the address the teacher reached the server by.
    #[serde(default)]
    origin: Option<String>,
}

/// `http(s)://host[:port]` and nothing else (no path, user info, spaces or controls).
pub(super) fn is_origin(o: &str) -> bool {
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"));
    match rest {
        Some(host) => {
            !host.is_empty()
                && host.len() <= 255
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        }
        None => false,
    }
}

/// The invite panel's content: the class code, a fresh student link and its QR code.
#[derive(Debug, Serialize)]
pub struct Invite {
    class: ClassRef,
    /// What students type on the start page (the class id).
    code: String,
    student: Link,
    /// The student link as a QR code, an SVG image.
    qr_svg: String,
    /// The QR version (size) used, 1–40.
    qr_version: i16,
    /// Whether the student link and class code let students in (a class setting); when false,
    /// only personal links from the class list do.
    shared_links: bool,
}

/// `POST /api/v1/invite`: for a teacher in the room (their class link's token in the body), the
/// class code and a fresh student link (valid for the server's token lifetime from now) with its
/// QR code. A student's token gets 403 `forbidden`; forged or expired ones the `join` codes.
/// Limited per address with the link lookups.
pub(super) async fn invite(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<InviteRequest>, JsonRejection>,
) -> Result<Json<Invite>, ApiError> {
    allow_link_lookup(&app, addr.ip())?;
    let Json(req) = body?;
    let origin = match req.origin.as_deref() {
        None => None,
        Some(o) if is_origin(o) => Some(o.to_string()),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "origin must be http(s)://host[:port], as the page's location.origin".into(),
            ))
        }
    };
    let claims = verify_link_token(&app, &req.token)?;
    if claims.role != Role::Teacher {
        return Err(ApiError::Forbidden);
    }
    let (record, shared_links) = {
        let store = lock_store(&app);
        let record = store.get(&claims.class)?.ok_or(ApiError::ClassGone)?;
        let shared_links = store.shared_links(&record.id)?;
        (record, shared_links)
    };
    let mut student = link(&app, &record.id, Role::Student, None, app.token_ttl_secs);
    if let Some(origin) = origin {
        // The address the teacher reached the server by, as the start page does: her students
        // reach it the same way (the server's own public URL may be a default like localhost).
        student.url = format!("{origin}/join#token={}", student.token);
    }
    let (qr_svg, qr_version) = crate::invite::qr_svg(&student.url)
        .map_err(|e| ApiError::Internal(format!("QR code: {e}")))?;
    Ok(Json(Invite {
        code: record.id.clone(),
        class: ClassRef {
            id: record.id,
            name: record.name,
        },
        student,
        qr_svg,
        qr_version,
        shared_links,
    }))
}
