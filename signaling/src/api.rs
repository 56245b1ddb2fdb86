//! The admin REST API under `/api/v1`, plus `/metrics`.
//!
//! Every route but `info`, `join`, `join-info`, `invite` (a teacher's token instead) and open
//! class creation (when enabled) needs
//! `Authorization: Bearer <admin key>`; an address that sends a wrong key too often gets 429 for
//! a while. Errors are JSON: `{"error": {"code": "...", "message": "..."}}` with the codes listed
//! in [`ApiError`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::app::{unix_millis, App};
use crate::protocol::{IceServer, PeerInfo, Role, Topology};
use crate::state::lock;
use crate::store::ClassRecord;
use crate::token::Claims;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/classes", post(create_class).get(list_classes))
        .route("/classes/{id}", get(get_class).delete(delete_class))
        .route("/classes/{id}/tokens", post(create_token))
        .route("/ice-servers", get(ice_servers))
        .route("/join", post(join_by_code))
        .route("/join-info", post(join_info))
        .route("/invite", post(invite))
        .route("/info", get(info))
}

/// An API failure, as JSON with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong admin key (send Authorization: Bearer <admin key>)")]
    Unauthorized,
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
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
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

/// Checks the bearer admin key in constant time; refuses an address with too many failures.
fn require_admin(app: &App, headers: &HeaderMap, ip: IpAddr) -> Result<(), ApiError> {
    require_key(app, headers, ip, &[&app.admin_key])
}

/// Passes when the bearer token is one of `keys`. Failures count against `ip`; once its budget
/// (`[http] auth_failures_per_min`) is spent, every attempt from it gets 429 without being
/// compared, so the key cannot be guessed faster than that budget.
pub(crate) fn require_key(
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

fn bearer(headers: &HeaderMap) -> Option<&str> {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClass {
    name: String,
    /// Absent: the server's `[sfu] default_topology`.
    #[serde(default)]
    topology: Option<Topology>,
}

#[derive(Debug, Serialize)]
pub struct Link {
    token: String,
    url: String,
    expires_at: u64,
}

#[derive(Debug, Serialize)]
pub struct CreatedClass {
    id: String,
    name: String,
    topology: Topology,
    created_at: u64,
    teacher: Link,
    student: Link,
}

#[derive(Debug, Serialize)]
pub struct ClassSummary {
    id: String,
    name: String,
    topology: Topology,
    created_at: u64,
    /// People in the class now (including those waiting to resume).
    peers: usize,
    locked: bool,
    /// The class's waiting room is on: new students wait to be let in.
    waiting_room: bool,
    /// The lesson ended and no teacher has started it again.
    ended: bool,
    /// People waiting to be let in (or for the lesson to start) now.
    waiting: usize,
}

#[derive(Debug, Serialize)]
pub struct ClassDetail {
    #[serde(flatten)]
    summary: ClassSummary,
    roster: Vec<PeerInfo>,
}

const MAX_CLASS_NAME: usize = 100;

/// `POST /api/v1/classes`: admin key required, unless open class creation is on and the request
/// carries no key (then the per-IP rate and the class cap apply).
async fn create_class(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<CreateClass>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedClass>), ApiError> {
    let open = app.open_class_creation && bearer(&headers).is_none();
    if !open {
        require_admin(&app, &headers, peer.ip())?;
    }
    let idempotency_key = idempotency_key(&headers)?;
    let Json(req) = body?;
    let name = req.name.trim().to_string();
    if name.is_empty()
        || name.chars().count() > MAX_CLASS_NAME
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::BadRequest(format!(
            "the class name must be 1 to {MAX_CLASS_NAME} characters, without control characters"
        )));
    }
    let now = unix_millis() / 1000;
    // The admin is one caller; each address is its own caller for open creation.
    let caller = match open {
        true => format!("ip:{}", peer.ip()),
        false => "admin".to_string(),
    };
    let keys_since = now.saturating_sub(app.idempotency.ttl_secs);
    let store = lock_store(&app);
    if let Some(key) = &idempotency_key {
        if let Some(earlier) = store.idempotent_class(&caller, key, keys_since)? {
            if earlier.name != name || req.topology.is_some_and(|t| t != earlier.topology) {
                return Err(ApiError::Conflict(
                    "this Idempotency-Key was used for a class with another name or topology"
                        .into(),
                ));
            }
            drop(store);
            // The same class again (links minted afresh), with 200 instead of 201.
            return Ok((StatusCode::OK, Json(created_answer(&app, earlier))));
        }
    }
    if open {
        let classes = lock(&app.core).hub.class_count();
        if classes >= app.open_creation_max_classes {
            return Err(ApiError::ClassLimit(classes));
        }
        app.open_creations
            .take(peer.ip(), Instant::now())
            .map_err(|retry_after| ApiError::Throttled {
                what: "too many classes created from this address",
                retry_after,
            })?;
    }
    let record = ClassRecord {
        id: new_class_id(),
        name,
        created_at: now,
        topology: req.topology.unwrap_or(app.default_topology),
    };
    match &idempotency_key {
        Some(key) => {
            store.insert_idempotent(&record, &caller, key, keys_since, app.idempotency.max_keys)?
        }
        None => store.insert(&record)?,
    }
    drop(store);
    lock(&app.core)
        .hub
        .add_class(record.id.clone(), record.name.clone(), record.topology);
    tracing::info!(class = %record.id, "class created");
    Ok((StatusCode::CREATED, Json(created_answer(&app, record))))
}

/// Longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// The request's `Idempotency-Key`: 1 to 128 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key)
            if !key.is_empty()
                && key.len() <= MAX_IDEMPOTENCY_KEY
                && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key.to_string()))
        }
        _ => Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        ))),
    }
}

/// The answer to a class creation: the class and fresh teacher and student links.
fn created_answer(app: &App, record: ClassRecord) -> CreatedClass {
    let teacher = link(app, &record.id, Role::Teacher, None, app.token_ttl_secs);
    let student = link(app, &record.id, Role::Student, None, app.token_ttl_secs);
    CreatedClass {
        id: record.id,
        name: record.name,
        topology: record.topology,
        created_at: record.created_at,
        teacher,
        student,
    }
}

async fn list_classes(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Vec<ClassSummary>>, ApiError> {
    require_admin(&app, &headers, peer.ip())?;
    let records = lock_store(&app).list()?;
    let core = lock(&app.core);
    Ok(Json(
        records.into_iter().map(|r| summary(&core.hub, r)).collect(),
    ))
}

async fn get_class(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ClassDetail>, ApiError> {
    require_admin(&app, &headers, peer.ip())?;
    let record = lock_store(&app)
        .get(&id)?
        .ok_or_else(|| ApiError::NotFound(id.clone()))?;
    let core = lock(&app.core);
    let roster = core.hub.roster(&id).unwrap_or_default();
    Ok(Json(ClassDetail {
        summary: summary(&core.hub, record),
        roster,
    }))
}

/// `DELETE /api/v1/classes/{id}`: ends the class for everyone in it and forgets it.
async fn delete_class(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(&app, &headers, peer.ip())?;
    let existed = lock_store(&app).delete(&id)?;
    let mut core = lock(&app.core);
    let live = core.hub.remove_class(&id);
    if !existed && live.is_none() {
        return Err(ApiError::NotFound(id));
    }
    app.apply(&mut core, live.unwrap_or_default());
    tracing::info!(class = %id, "class deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    role: Role,
    /// Fixes the display name of whoever joins with this token.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

/// `POST /api/v1/classes/{id}/tokens`: a token for one person, e.g. with a fixed name.
async fn create_token(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<CreateToken>, JsonRejection>,
) -> Result<(StatusCode, Json<Link>), ApiError> {
    require_admin(&app, &headers, peer.ip())?;
    let Json(req) = body?;
    lock_store(&app)
        .get(&id)?
        .ok_or_else(|| ApiError::NotFound(id.clone()))?;
    let ttl = req.ttl_secs.unwrap_or(app.token_ttl_secs);
    if ttl == 0 || ttl > 366 * 24 * 3600 {
        return Err(ApiError::BadRequest(
            "ttl_secs must be between 1 and one year".into(),
        ));
    }
    // The same rules as a name typed in `join`, so a token never fixes a name the hub refuses.
    let max_name = lock(&app.core).hub.limits().max_name_len;
    let name = req
        .name
        .map(|n| crate::text::display_name(&n, max_name))
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        Json(link(&app, &id, req.role, name, ttl)),
    ))
}

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

#[derive(Debug, Serialize)]
pub struct ClassRef {
    id: String,
    name: String,
}

/// Student tokens handed out for a class code live at most this long.
const CODE_TOKEN_TTL_SECS: u64 = 12 * 3600;

/// `POST /api/v1/join`: a student token for a class code (the class id), so a student can type
/// a short code instead of opening a link. No key: the code is as shareable as the student link.
async fn join_by_code(
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

/// `POST /api/v1/join-info`: the class name and role for a class link's token, without joining
/// (the join form shows them). The token travels in the body, never in a URL, and is never
/// logged. Forged or expired tokens get the codes a `join` would (`invalid_token`,
/// `token_expired`). Limited per address like class-code lookups.
async fn join_info(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<JoinInfoRequest>, JsonRejection>,
) -> Result<Json<JoinInfo>, ApiError> {
    if !app.join_limits.allow_code_lookup(addr.ip()) {
        return Err(ApiError::RateLimited(
            "too many class-link lookups from your network; try again in a few seconds".into(),
        ));
    }
    let Json(req) = body?;
    if req.token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::Token(crate::token::TokenError::Invalid));
    }
    let claims = app
        .tokens
        .verify(req.token.trim(), unix_millis() / 1000)
        .map_err(ApiError::Token)?;
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
fn is_origin(o: &str) -> bool {
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
}

/// `POST /api/v1/invite`: for a teacher in the room (their class link's token in the body), the
/// class code and a fresh student link (valid for the server's token lifetime from now) with its
/// QR code. A student's token gets 403 `forbidden`; forged or expired ones the `join` codes.
/// Limited per address with the link lookups.
async fn invite(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Result<Json<InviteRequest>, JsonRejection>,
) -> Result<Json<Invite>, ApiError> {
    if !app.join_limits.allow_code_lookup(addr.ip()) {
        return Err(ApiError::RateLimited(
            "too many class-link lookups from your network; try again in a few seconds".into(),
        ));
    }
    let Json(req) = body?;
    if req.token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::Token(crate::token::TokenError::Invalid));
    }
    let origin = match req.origin.as_deref() {
        None => None,
        Some(o) if is_origin(o) => Some(o.to_string()),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "origin must be http(s)://host[:port], as the page's location.origin".into(),
            ))
        }
    };
    let claims = app
        .tokens
        .verify(req.token.trim(), unix_millis() / 1000)
        .map_err(ApiError::Token)?;
    if claims.role != Role::Teacher {
        return Err(ApiError::Forbidden);
    }
    let record = lock_store(&app)
        .get(&claims.class)?
        .ok_or(ApiError::ClassGone)?;
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
    }))
}

#[derive(Debug, Serialize)]
pub struct IceServers {
    ice_servers: Vec<IceServer>,
}

/// `GET /api/v1/ice-servers`: fresh STUN/TURN entries for a script's own peer connection.
async fn ice_servers(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<IceServers>, ApiError> {
    require_admin(&app, &headers, peer.ip())?;
    let identity = format!("api/{}", &crate::secrets::generate()[..12]);
    Ok(Json(IceServers {
        ice_servers: app.ice.for_peer(&identity, unix_millis() / 1000),
    }))
}

/// `GET /metrics`: Prometheus text exposition, for the admin key or `metrics_token`.
pub async fn metrics(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let mut keys = vec![app.admin_key.as_str()];
    keys.extend(app.metrics_token.as_deref());
    if let Err(e) = require_key(&app, &headers, peer.ip(), &keys) {
        return e.into_response();
    }
    match &app.metrics {
        Some(render) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

#[derive(Debug, Serialize)]
pub struct ServerInfo {
    /// Whether `POST /api/v1/classes` works without the admin key (the start page asks for the
    /// key when it does not).
    open_class_creation: bool,
}

/// `GET /api/v1/info`: what the start page needs to know about this server.
async fn info(State(app): State<Arc<App>>) -> Json<ServerInfo> {
    Json(ServerInfo {
        open_class_creation: app.open_class_creation,
    })
}

fn summary(hub: &crate::hub::Hub, r: ClassRecord) -> ClassSummary {
    ClassSummary {
        peers: hub.roster(&r.id).map(|p| p.len()).unwrap_or(0),
        locked: hub.class_info(&r.id).map(|c| c.locked).unwrap_or(false),
        waiting_room: hub.class_info(&r.id).is_some_and(|c| c.waiting_room),
        ended: hub.class_info(&r.id).is_some_and(|c| c.ended),
        waiting: hub.waiting_in(&r.id),
        id: r.id,
        name: r.name,
        topology: r.topology,
        created_at: r.created_at,
    }
}

fn link(app: &App, class: &str, role: Role, name: Option<String>, ttl_secs: u64) -> Link {
    let now = unix_millis() / 1000;
    let claims = Claims {
        class: class.to_string(),
        role,
        name: name.map(|n| n.trim().to_string()),
        iat: now,
        exp: now + ttl_secs,
    };
    let token = app.tokens.mint(&claims);
    Link {
        url: format!("{}/join#token={token}", app.public_url),
        token,
        expires_at: claims.exp,
    }
}

fn lock_store(app: &App) -> std::sync::MutexGuard<'_, crate::store::Store> {
    app.store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A class id: 10 characters from an alphabet without look-alikes, easy to read out in class.
fn new_class_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    rand::random::<[u8; 10]>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}
