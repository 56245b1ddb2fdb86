//! Small read-only answers: fresh ICE servers for a script, the Prometheus page, and what the
//! start page and "My classes" need to know about this server.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::auth::{require_admin, require_key};
use super::ApiError;
use crate::accounts::caller::MaybeCaller;
use crate::app::{unix_millis, App};
use crate::protocol::IceServer;

#[derive(Debug, Serialize)]
pub struct IceServers {
    ice_servers: Vec<IceServer>,
}

/// `GET /api/v1/ice-servers`: fresh STUN/TURN entries for a script's own peer connection.
pub(super) async fn ice_servers(
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
    /// Whether this request carries a live staff session (then the start page creates classes
    /// with the session cookie and asks `GET /api/v1/session` for its CSRF token instead of
    /// asking for the key; probing the session directly would log a 401 for every student).
    signed_in: bool,
    /// Staff single sign-on, when configured: the button's text and where it goes.
    sso: Option<SsoInfo>,
    /// How many days attendance records are kept (`[attendance] retention_days`; 0: none are
    /// stored), which "My classes" tells teachers.
    attendance_retention_days: u32,
}

#[derive(Debug, Serialize)]
pub struct SsoInfo {
    label: String,
    url: &'static str,
}

/// `GET /api/v1/info`: what the start page and "My classes" need to know about this server.
pub(super) async fn info(
    State(app): State<Arc<App>>,
    caller: Result<MaybeCaller, ApiError>,
) -> Json<ServerInfo> {
    // A failed lookup (e.g. a wrong bearer key) just means "not signed in" here.
    let signed_in = matches!(caller, Ok(MaybeCaller(Some(c))) if c.account().is_some());
    Json(ServerInfo {
        open_class_creation: app.open_class_creation,
        signed_in,
        sso: app.sso.as_ref().map(|sso| SsoInfo {
            label: sso.button_label().to_string(),
            url: "/auth/oidc/start",
        }),
        attendance_retention_days: app.attendance_retention_days,
    })
}
