//! Class lists: `POST/GET /classes/{id}/students`, `GET /classes/{id}/students.csv`,
//! `GET/DELETE /classes/{id}/students/{sid}` (one student's link and its QR code, for a printed
//! sheet), and the class's shared-link setting (`GET/PATCH /classes/{id}/settings`).
//!
//! Each student gets a stable id and a personal link: a student token that fixes their name and
//! carries their id (see [`crate::token::Claims::student`]). Links are minted afresh on every
//! read, valid for the server's token lifetime; the id is what stays. Callers: the admin key, an
//! admin or the owning teacher signed in, or a teacher's class link token of this class as the
//! bearer token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::bearer;
use super::{lock_store, mint, ApiError, Link};
use crate::accounts::caller::Caller;
use crate::app::{unix_millis, App};
use crate::classlist::{parse_names, parse_pasted, ListLimits, NewStudent};
use crate::protocol::Role;
use crate::state::lock;
use crate::store::ClassRecord;
use crate::store::StudentRecord;
use crate::token::Claims;

/// The most students one class list holds.
pub const MAX_CLASS_LIST: usize = 500;
/// The most bytes of one pasted list.
pub const MAX_PASTE_BYTES: usize = 64 * 1024;
/// The most bytes of a request body on these routes (a pasted list, JSON-escaped).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddStudents {
    /// Names typed one by one.
    #[serde(default)]
    names: Vec<String>,
    /// A pasted list: one name per line, or CSV with a name and an optional email/id column.
    #[serde(default)]
    paste: Option<String>,
}

/// A student on the class list, with a fresh personal link.
#[derive(Debug, Serialize)]
pub struct Student {
    id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    created_at: u64,
    link: Link,
}

#[derive(Debug, Serialize)]
pub struct AddedStudents {
    students: Vec<Student>,
}

/// The query of `GET …/students/{sid}` and `GET …/students.csv`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentQuery {
    /// The page's `location.origin`: the link on the address the teacher reached the server by
    /// (as `POST /invite`), which the server's own public URL may not be.
    #[serde(default)]
    origin: Option<String>,
}

/// One student with a fresh personal link and that link as a QR code.
#[derive(Debug, Serialize)]
pub struct StudentCard {
    #[serde(flatten)]
    student: Student,
    /// The personal link as a QR code, an SVG image (error correction M, as the invite panel's).
    qr_svg: String,
}

/// A class's settings for who may join.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSettings {
    /// Students may join with the shared student link or the class code (default `true`); when
    /// `false`, only with their personal link (others get `personal_link_required`).
    shared_links: bool,
}

/// The class, when the caller may manage it: the admin key, an admin account, the account that
/// owns the class, or a teacher's class link token of this class as the bearer token (a teacher
/// in the room manages her class list from there). 404 for an unknown class.
pub(super) fn authorize(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    ip: std::net::IpAddr,
    id: &str,
) -> Result<ClassRecord, ApiError> {
    let class_link = bearer(headers)
        .and_then(|given| app.tokens.verify(given, unix_millis() / 1000).ok())
        .is_some_and(|claims| claims.role == Role::Teacher && claims.class == id);
    let caller = match class_link {
        true => None,
        false => Some(Caller::identify(app, method, headers, ip)?.ok_or(ApiError::Unauthorized)?),
    };
    let record = lock_store(app)
        .get(id)?
        .ok_or_else(|| ApiError::NotFound(id.to_string()))?;
    if let Some(caller) = caller {
        caller.require_manage(&record)?;
    }
    Ok(record)
}

fn limits(app: &App) -> ListLimits {
    ListLimits {
        max_bytes: MAX_PASTE_BYTES,
        max_students: MAX_CLASS_LIST,
        max_name_chars: lock(&app.core).hub.limits().max_name_len,
    }
}

/// The `origin` a query asks links to be on, checked: `http(s)://host[:port]` only.
fn origin(query: Result<Query<StudentQuery>, QueryRejection>) -> Result<Option<String>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    match query.origin {
        Some(o) if !super::joining::is_origin(&o) => Err(ApiError::BadRequest(
            "origin must be http(s)://host[:port], as the page's location.origin".into(),
        )),
        origin => Ok(origin),
    }
}

/// The student's link on `origin` (the address the teacher's page reached the server by), when
/// given, rather than the server's public URL.
fn on_origin(mut student: Student, origin: Option<&str>) -> Student {
    if let Some(origin) = origin {
        student.link.url = format!("{origin}/join#token={}", student.link.token);
    }
    student
}

/// The student with a fresh personal link.
fn with_link(app: &App, s: StudentRecord) -> Student {
    let now = unix_millis() / 1000;
    let link = mint(
        app,
        Claims {
            class: s.class_id.clone(),
            role: Role::Student,
            name: Some(s.name.clone()),
            student: Some(s.id.clone()),
            iat: now,
            exp: now + app.token_ttl_secs,
        },
    );
    Student {
        id: s.id,
        name: s.name,
        reference: s.reference,
        created_at: s.created_at,
        link,
    }
}

/// `POST /api/v1/classes/{id}/students`: adds names and/or a pasted list; 201 with the new
/// students and their links.
pub(super) async fn add_students(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<AddStudents>, JsonRejection>,
) -> Result<(StatusCode, Json<AddedStudents>), ApiError> {
    authorize(&app, &Method::POST, &headers, peer.ip(), &id)?;
    let Json(req) = body?;
    let limits = limits(&app);
    let bad = |e: crate::classlist::ListError| match e {
        crate::classlist::ListError::TooLarge { .. } => ApiError::TooLarge(e.to_string()),
        _ => ApiError::BadRequest(e.to_string()),
    };
    let mut new: Vec<NewStudent> = parse_names(&req.names, limits).map_err(bad)?;
    if let Some(paste) = &req.paste {
        new.extend(parse_pasted(paste, limits).map_err(bad)?);
    }
    if new.is_empty() {
        return Err(ApiError::BadRequest(
            "send names (a list of names) or paste (a pasted list)".into(),
        ));
    }
    let store = lock_store(&app);
    // Counted and added under the store's lock: two requests cannot both fill the last places.
    let had = store.student_count(&id)?;
    if had + new.len() > MAX_CLASS_LIST {
        return Err(ApiError::TooLarge(format!(
            "a class list holds at most {MAX_CLASS_LIST} students; this one has {had} and {} more were sent",
            new.len()
        )));
    }
    let now = unix_millis() / 1000;
    let records: Vec<StudentRecord> = new
        .into_iter()
        .map(|s| StudentRecord {
            id: new_student_id(),
            class_id: id.clone(),
            name: s.name,
            reference: s.reference,
            created_at: now,
        })
        .collect();
    store.add_students(&records)?;
    drop(store);
    tracing::info!(class = %id, added = records.len(), "students added to the class list");
    let students = records.into_iter().map(|s| with_link(&app, s)).collect();
    Ok((StatusCode::CREATED, Json(AddedStudents { students })))
}

/// The class's list.
fn class_list(app: &App, id: &str) -> Result<Vec<StudentRecord>, ApiError> {
    Ok(lock_store(app).students(id)?)
}

/// `GET /api/v1/classes/{id}/students`: the class list with fresh personal links.
pub(super) async fn list_students(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Vec<Student>>, ApiError> {
    authorize(&app, &Method::GET, &headers, peer.ip(), &id)?;
    let list = class_list(&app, &id)?;
    Ok(Json(list.into_iter().map(|s| with_link(&app, s)).collect()))
}

/// `GET /api/v1/classes/{id}/students.csv`: the class list as CSV (name, student id, reference,
/// link), to print or mail merge.
pub(super) async fn students_csv(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<StudentQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    authorize(&app, &Method::GET, &headers, peer.ip(), &id)?;
    let origin = origin(query)?;
    let students: Vec<Student> = class_list(&app, &id)?
        .into_iter()
        .map(|s| on_origin(with_link(&app, s), origin.as_deref()))
        .collect();
    let rows = students.iter().map(|s| {
        vec![
            s.name.as_str(),
            s.id.as_str(),
            s.reference.as_deref().unwrap_or(""),
            s.link.url.as_str(),
        ]
    });
    let csv = crate::classlist::to_csv(&["name", "student_id", "reference", "link"], rows)
        .map_err(|e| ApiError::Internal(format!("CSV: {e}")))?;
    Ok(csv_response(format!("class-{id}-students.csv"), csv))
}

/// A CSV download.
pub(super) fn csv_response(file_name: String, csv: String) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        csv,
    )
}

/// `DELETE /api/v1/classes/{id}/students/{sid}`: takes a student off the list; their personal
/// links stop working (`not_on_class_list`).
pub(super) async fn delete_student(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((id, sid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    authorize(&app, &Method::DELETE, &headers, peer.ip(), &id)?;
    if !lock_store(&app).delete_student(&id, &sid)? {
        return Err(ApiError::NotFound(format!("{id}/students/{sid}")));
    }
    tracing::info!(class = %id, "a student was taken off the class list");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/classes/{id}/students/{sid}`: one student with a fresh personal link and its QR
/// code, for a printed sheet (one call per student: a QR code is tens of KB of SVG).
pub(super) async fn get_student(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((id, sid)): Path<(String, String)>,
    query: Result<Query<StudentQuery>, QueryRejection>,
) -> Result<Json<StudentCard>, ApiError> {
    authorize(&app, &Method::GET, &headers, peer.ip(), &id)?;
    let origin = origin(query)?;
    let record = lock_store(&app)
        .student(&id, &sid)?
        .ok_or_else(|| ApiError::NotFound(format!("{id}/students/{sid}")))?;
    let student = on_origin(with_link(&app, record), origin.as_deref());
    let (qr_svg, _version) = crate::invite::qr_svg(&student.link.url)
        .map_err(|e| ApiError::Internal(format!("QR code: {e}")))?;
    Ok(Json(StudentCard { student, qr_svg }))
}

/// `GET /api/v1/classes/{id}/settings`.
pub(super) async fn get_settings(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ClassSettings>, ApiError> {
    authorize(&app, &Method::GET, &headers, peer.ip(), &id)?;
    Ok(Json(ClassSettings {
        shared_links: lock_store(&app).shared_links(&id)?,
    }))
}

/// `PATCH /api/v1/classes/{id}/settings`: `{"shared_links": false}` lets students in only with
/// their personal links (from the next join on; those in the class stay).
pub(super) async fn patch_settings(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<ClassSettings>, JsonRejection>,
) -> Result<Json<ClassSettings>, ApiError> {
    authorize(&app, &Method::PATCH, &headers, peer.ip(), &id)?;
    let Json(req) = body?;
    lock_store(&app).set_shared_links(&id, req.shared_links)?;
    lock(&app.core).hub.set_shared_links(&id, req.shared_links);
    tracing::info!(class = %id, shared_links = req.shared_links, "class settings changed");
    Ok(Json(req))
}

/// A student id: `st` and 12 characters from an alphabet without look-alikes.
fn new_student_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let tail: String = rand::random::<[u8; 12]>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("st{tail}")
}
