//! Names and helpers for the signaling service's Prometheus metrics (served at `/metrics`).

use crate::protocol::{ErrorCode, ServerMessage};

/// Open WebSocket connections (gauge).
pub const CONNECTIONS: &str = "aula_connections";
/// Classes known to the server (gauge).
pub const CLASSES: &str = "aula_classes";
/// Peers in classes, including those waiting to resume (gauge).
pub const PEERS: &str = "aula_peers";
/// Client messages received, by `type` (counter).
pub const MESSAGES_IN: &str = "aula_messages_in_total";
/// Server messages sent, by `type`, counted once per fan-out (counter).
pub const MESSAGES_OUT: &str = "aula_messages_out_total";
/// Errors sent to clients, by `code` (counter).
pub const ERRORS: &str = "aula_errors_total";
/// Connections dropped because their send queue was full (counter).
pub const SLOW_CONSUMER_DROPS: &str = "aula_slow_consumer_drops_total";
/// Successful joins, by `resumed` (counter).
pub const JOINS: &str = "aula_joins_total";
/// Admin API requests with a missing or wrong key (counter).
pub const ADMIN_AUTH_FAILURES: &str = "aula_admin_auth_failures_total";
/// TCP connections to the HTTP(S) listeners closed at once, by `reason`: `per_ip` or `total` (counter).
pub const HTTP_CONNECTIONS_REFUSED: &str = "aula_http_connections_refused_total";
/// Open TCP connections on the HTTP(S) listeners, WebSockets included (gauge).
pub const HTTP_CONNECTIONS: &str = "aula_http_connections";

/// Registers descriptions so `/metrics` explains each series.
pub fn describe() {
    metrics::describe_gauge!(CONNECTIONS, "Open WebSocket connections");
    metrics::describe_gauge!(CLASSES, "Classes known to the server");
    metrics::describe_gauge!(PEERS, "Peers in classes, including those waiting to resume");
    metrics::describe_counter!(MESSAGES_IN, "Client messages received, by type");
    metrics::describe_counter!(
        MESSAGES_OUT,
        "Server messages sent, by type (once per fan-out)"
    );
    metrics::describe_counter!(ERRORS, "Errors sent to clients, by code");
    metrics::describe_counter!(
        SLOW_CONSUMER_DROPS,
        "Connections dropped for a full send queue"
    );
    metrics::describe_counter!(JOINS, "Successful joins");
    metrics::describe_counter!(ADMIN_AUTH_FAILURES, "Admin API requests with a wrong key");
    metrics::describe_counter!(
        HTTP_CONNECTIONS_REFUSED,
        "HTTP(S) connections closed at once for a connection cap, by reason"
    );
    metrics::describe_gauge!(
        HTTP_CONNECTIONS,
        "Open HTTP(S) connections, WebSockets included"
    );
}

pub fn error_sent(code: ErrorCode) {
    metrics::counter!(ERRORS, "code" => code.as_str()).increment(1);
}

pub fn message_in(kind: &'static str) {
    metrics::counter!(MESSAGES_IN, "type" => kind).increment(1);
}

pub fn message_out(msg: &ServerMessage) {
    metrics::counter!(MESSAGES_OUT, "type" => msg.kind()).increment(1);
}
