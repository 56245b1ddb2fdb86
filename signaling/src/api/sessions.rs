//! Attendance: `GET /classes/{id}/sessions` (each lesson a teacher ended, with who took part),
//! `GET /classes/{id}/sessions/{sid}/attendance.csv`, and `DELETE` of one session or all of a
//! class's. Records are kept `[attendance] retention_days` (the server deletes older ones).
//! Callers as for class lists ([`super::students::authorize`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use super::students::{authorize, csv_response};
use super::{lock_store, ApiError};
use crate::app::App;
use crate::protocol::{Attendance, Role};
use crate::store::LessonRecord;

/// One recorded lesson ("session"): a class run from its first join to a teacher's End.
#[derive(Debug, Serialize)]
pub struct Session {
    id: i64,
    /// Unix milliseconds.
    started: u64,
    ended: u64,
    attendance: Vec<Attendance>,
}

impl From<LessonRecord> for Session {
    fn from(r: LessonRecord) -> Self {
        Session {
            id: r.id,
            started: r.summary.started,
            ended: r.summary.ended,
            attendance: r.summary.attendance,
        }
    }
}

/// `GET /api/v1/classes/{id}/sessions`: the class's recorded lessons, newest first.
pub(super) async fn list_sessions(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Vec<Session>>, ApiError> {
    authorize(&app, &Method::GET, &headers, peer.ip(), &id)?;
    let lessons = lock_store(&app).lessons(&id)?;
    Ok(Json(lessons.into_iter().map(Session::from).collect()))
}

fn session_id(id: &str, sid: &str) -> Result<i64, ApiError> {
    sid.parse()
        .map_err(|_| ApiError::NotFound(format!("{id}/sessions/{sid}")))
}

/// `GET /api/v1/classes/{id}/sessions/{sid}/attendance.csv`: one row per person: name,
/// student id (personal links), role, joined and left (UTC, ISO 8601), minutes present,
/// reconnects.
pub(super) async fn attendance_csv(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((id, sid)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    authorize(&app, &Method::GET, &headers, peer.ip(), &id)?;
    let lesson = lock_store(&app)
        .lesson(&id, session_id(&id, &sid)?)?
        .ok_or_else(|| ApiError::NotFound(format!("{id}/sessions/{sid}")))?;
    let rows: Vec<[String; 7]> = lesson
        .summary
        .attendance
        .iter()
        .map(|a| {
            [
                a.name.clone(),
                a.student.clone().unwrap_or_default(),
                match a.role {
                    Role::Teacher => "teacher".into(),
                    Role::Student => "student".into(),
                },
                utc(a.joined),
                utc(a.left),
                (a.present_secs / 60).to_string(),
                a.reconnects.to_string(),
            ]
        })
        .collect();
    let header = [
        "name",
        "student_id",
        "role",
        "joined_utc",
        "left_utc",
        "minutes_present",
        "reconnects",
    ];
    let csv = crate::classlist::to_csv(
        &header,
        rows.iter().map(|r| r.iter().map(String::as_str).collect()),
    )
    .map_err(|e| ApiError::Internal(format!("CSV: {e}")))?;
    Ok(csv_response(
        format!("class-{id}-session-{}-attendance.csv", lesson.id),
        csv,
    ))
}

/// `DELETE /api/v1/classes/{id}/sessions/{sid}`: deletes one session's attendance.
pub(super) async fn delete_session(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((id, sid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    authorize(&app, &Method::DELETE, &headers, peer.ip(), &id)?;
    if !lock_store(&app).delete_lesson(&id, session_id(&id, &sid)?)? {
        return Err(ApiError::NotFound(format!("{id}/sessions/{sid}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/classes/{id}/sessions`: deletes the attendance of every session of the class.
pub(super) async fn delete_sessions(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorize(&app, &Method::DELETE, &headers, peer.ip(), &id)?;
    lock_store(&app).delete_lessons(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (the proleptic Gregorian calendar, UTC).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_times() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc(1_764_061_265_999), "2025-11-25T09:01:05Z");
    }
}
