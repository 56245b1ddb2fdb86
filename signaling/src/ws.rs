//! One WebSocket connection: moves frames between the socket and the hub, and nothing else.
//!
//! The task reads frames, turns each into a [`ClientMessage`] (or a documented error), hands it to
//! the hub under the shared lock, and writes what the hub queued for this connection. It also
//! owns the connection's timers (join deadline, idle timeout, keepalive pings), its rate limit and
//! its close: on shutdown, kick, removal or timeout it sends a close frame with a documented code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tracing::Instrument;

use crate::app::{unix_millis, App};
use crate::hub::{ConnId, JoinRequest};
use crate::metrics as m;
use crate::protocol::{
    close_code, ClientMessage, ErrorCode, Role, ServerMessage, CLIENT_MESSAGE_TYPES,
};
use crate::ratelimit::RateLimiter;
use crate::state::{encode, lock, Outbound, Outbox};
use crate::websocket::{CloseFrame, Message, Socket as WebSocket, Upgrade, Utf8Bytes};

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub max_frame_bytes: usize,
    pub messages_per_sec: u32,
    pub burst: u32,
    /// Bytes queued for the client before it counts as a slow consumer.
    pub send_queue_bytes: usize,
    pub join_deadline: Duration,
    pub idle_timeout: Duration,
    pub ping_interval: Duration,
    /// How long a slow consumer's close frame may wait for the client to read what its socket
    /// already holds: a client that reads again within this finds close 4004 after those
    /// messages (its queued backlog is dropped at once, so only the socket's buffers wait).
    pub slow_consumer_close: Duration,
}

/// The read buffer every connection keeps for life: enough for a `join`. A larger incoming
/// frame grows it to that frame's size (tungstenite reserves whole frames), so a small start
/// costs nothing but a few more reads of a large frame.
const READ_BUFFER_BYTES: usize = 512;

/// How long a closing connection waits for its close frame to go out and for the client's reply.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Rejected messages in a row after which a flooding connection is closed.
const MAX_RATE_STRIKES: u32 = 100;

/// `GET /ws`: checks the Origin, then upgrades with small buffers and the frame size limit.
pub async fn upgrade(
    ws: Upgrade,
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(why) = check_origin(&headers, &app.allowed_origins) {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let limits = app.conn_limits.clone();
    // Every idle connection holds its read buffer for life, and a write buffer as large as the
    // largest frame it wrote (large messages bypass it, see `websocket`); writes go out at once.
    let config = tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(limits.max_frame_bytes.max(1 << 20))
        .max_message_size(Some(limits.max_frame_bytes))
        .max_frame_size(Some(limits.max_frame_bytes));
    ws.on_upgrade(config, move |socket| {
        let guard = app.tracker.token();
        let conn = app.next_conn_id();
        let span = tracing::info_span!(
            "conn",
            conn,
            %addr,
            class = tracing::field::Empty,
            peer = tracing::field::Empty
        );
        async move {
            // Boxed for the same reason as the socket: moved into `run`, it would take a
            // second slot in the task.
            Box::new(Connection::new(app, conn, limits, addr.ip()))
                .run(socket)
                .await;
            drop(guard);
        }
        .instrument(span)
    })
}

/// Browsers send `Origin`; scripts usually do not. A browser page may connect only from the
/// same host it was served from, or from an origin on the allow-list.
pub(crate) fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(format!(
        "origin {origin} is not allowed (see allowed_origins in the configuration)"
    ))
}

/// What reading one frame leads to.
enum Next {
    Continue,
    Close(u16, String),
}

struct Connection {
    app: Arc<App>,
    conn: ConnId,
    limits: ConnLimits,
    joined: bool,
    /// Waiting to be let in (the hub answered `join` with `waiting`): only `ping`, `leave` and a
    /// second `join` once admitted mean anything; the idle timeout applies, not the join deadline.
    waiting: bool,
    rate: RateLimiter,
    strikes: u32,
    /// The client's address, for the per-address join limit.
    ip: std::net::IpAddr,
    /// Once joined: the identity its TURN credentials are bound to (`class/peer`), and when
    /// they are next renewed.
    ice_renewal: Option<(String, tokio::time::Instant)>,
}

impl Connection {
    fn new(app: Arc<App>, conn: ConnId, limits: ConnLimits, ip: std::net::IpAddr) -> Self {
        let rate = RateLimiter::new(limits.messages_per_sec, limits.burst, Instant::now());
        Connection {
            app,
            conn,
            limits,
            joined: false,
            waiting: false,
            rate,
            strikes: 0,
            ip,
            ice_renewal: None,
        }
    }

    /// When the connection's timer must next wake: at `deadline`, or sooner for a renewal.
    fn next_wake(&self, deadline: tokio::time::Instant) -> tokio::time::Instant {
        match &self.ice_renewal {
            Some((_, at)) => deadline.min(*at),
            None => deadline,
        }
    }

    /// Sends fresh TURN credentials if they are due, while the peer is still in its class.
    fn renew_ice_if_due(&mut self, now: tokio::time::Instant) {
        let (Some((identity, at)), Some(every)) = (&self.ice_renewal, self.app.ice.renew_after())
        else {
            return;
        };
        if *at > now {
            return;
        }
        let ice_servers = self.app.ice.for_peer(identity, unix_millis() / 1000);
        self.ice_renewal = Some((identity.clone(), now + every));
        let mut core = lock(&self.app.core);
        if core.hub.peer_of(self.conn).is_some() {
            core.send(self.conn, &ServerMessage::IceServers { ice_servers });
        }
    }

    async fn run(mut self: Box<Self>, mut socket: WebSocket) {
        let outbox = Arc::new(Outbox::new(
            self.limits.send_queue_bytes,
            &self.app.shutdown,
        ));
        lock(&self.app.core)
            .outboxes
            .insert(self.conn, outbox.clone());
        metrics::gauge!(m::CONNECTIONS).increment(1);
        tracing::debug!("connected");

        // Futures that live across the loop are made once, not on every pass: fan-out to a
        // large class runs this loop once per message per student.
        let stop = outbox.kick.fired.clone();
        let stopped = stop.cancelled();
        tokio::pin!(stopped);
        let join_deadline = tokio::time::Instant::now() + self.limits.join_deadline;
        let timer = tokio::time::sleep_until(join_deadline);
        tokio::pin!(timer);
        let mut last_frame = tokio::time::Instant::now();
        let mut ping = tokio::time::interval(self.limits.ping_interval);
        ping.tick().await;

        let close = loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break Some(outbox.kick.reason()),
                out = outbox.pop() => match out {
                    Outbound::Text(text) => {
                        // A client that stops reading blocks this write; a kick or shutdown
                        // must still get through, so the write races them.
                        tokio::select! {
                            biased;
                            sent = socket.send(Message::Text(text)) => if sent.is_err() { break None },
                            _ = stop.cancelled() => break Some(outbox.kick.reason()),
                        }
                    }
                    Outbound::Close(code, reason) => break Some((code, reason)),
                },
                frame = socket.recv() => {
                    let frame = match frame {
                        None | Some(Ok(Message::Close(_))) => break None,
                        Some(Ok(frame)) => frame,
                        Some(Err(e)) => match read_failure(e) {
                            ReadFailure::TooBig => {
                                let message = format!("frames are limited to {} bytes", self.limits.max_frame_bytes);
                                Box::pin(self.send_error(&mut socket, ErrorCode::MessageTooLarge, message, None)).await;
                                break Some((close_code::MESSAGE_TOO_BIG, "message too big".into()));
                            }
                            ReadFailure::Malformed(code, reason) => break Some((code, reason.into())),
                            ReadFailure::Gone => break None,
                        },
                    };
                    // Any frame, pongs included, shows the client is alive.
                    last_frame = tokio::time::Instant::now();
                                        let was_joined = self.joined || self.waiting;
                    let next = match frame {
                        // Boxed: joins and errors are rare, and inlining them would make every
                        // idle connection's task bigger.
                        Message::Text(text) => Box::pin(self.on_text(&mut socket, text.as_str())).await,
                        Message::Binary(_) => {
                            let message = "binary frames are not part of the protocol; send JSON text frames";
                            Box::pin(self.send_error(&mut socket, ErrorCode::BinaryNotSupported, message, None)).await;
                            Next::Continue
                        }
                        _ => Next::Continue,
                    };
                                        if let Next::Close(code, reason) = next {
                        break Some((code, reason));
                    }
                    if (self.joined || self.waiting) && !was_joined {
                        timer.as_mut().reset(self.next_wake(last_frame + self.limits.idle_timeout));
                    }
                }
                _ = &mut timer => {
                    let now = tokio::time::Instant::now();
                    self.renew_ice_if_due(now);
                    // The timer is moved forward lazily, when it fires, rather than on every frame.
                    let deadline = if self.joined || self.waiting { last_frame + self.limits.idle_timeout } else { join_deadline };
                    if deadline > now {
                        timer.as_mut().reset(self.next_wake(deadline));
                        continue;
                    }
                    let (code, close, message) = if self.joined || self.waiting {
                        (ErrorCode::IdleTimeout, close_code::IDLE_TIMEOUT, "nothing received for too long")
                    } else {
                        (ErrorCode::JoinTimeout, close_code::JOIN_TIMEOUT, "no join within the join deadline")
                    };
                    Box::pin(self.send_error(&mut socket, code, message, None)).await;
                    break Some((close, message.to_string()));
                }
                _ = ping.tick() => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        break None;
                    }
                }
            }
        };

        // The class hears of the disconnect now, not after the close frame's wait below.
        {
            let mut core = lock(&self.app.core);
            core.outboxes.remove(&self.conn);
            let effects = core.hub.disconnected(self.conn, unix_millis());
            self.app.apply(&mut core, effects);
        }
        if let Some((code, reason)) = close {
            // Boxed: the closing wait is rare, and inlined it would make every task bigger.
            Box::pin(self.close(&mut socket, code, reason)).await;
        }
        metrics::gauge!(m::CONNECTIONS).decrement(1);
        tracing::debug!("disconnected");
    }

    /// Sends the close frame and waits a little for the client's reply.
    async fn close(&self, socket: &mut WebSocket, code: u16, reason: String) {
        tracing::debug!(code, %reason, "closing");
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        // A slow consumer's socket is full of messages the client has not read yet; the
        // close frame goes out after them, once the client reads.
        let linger = if code == close_code::SLOW_CONSUMER {
            self.limits.slow_consumer_close
        } else {
            CLOSE_LINGER
        };
        let sent = tokio::time::timeout(linger, socket.send(Message::Close(Some(frame)))).await;
        if matches!(sent, Ok(Ok(()))) {
            // Wait briefly for the client's close reply. Dropping a socket with unread data
            // makes the kernel send a reset, which can destroy our error and close frame
            // before the client reads them (e.g. after an oversized or malformed frame).
            let drained = tokio::time::timeout(linger, async {
                while let Some(Ok(_)) = socket.recv().await {}
            })
            .await;
            let bad_input = [
                close_code::MESSAGE_TOO_BIG,
                close_code::PROTOCOL_ERROR,
                close_code::INVALID_PAYLOAD,
            ];
            if drained.is_ok() && bad_input.contains(&code) {
                tokio::time::sleep(CLOSE_LINGER).await;
            }
        }
    }

    /// Parses and applies one text frame.
    async fn on_text(&mut self, socket: &mut WebSocket, text: &str) -> Next {
        if !self.rate.allow(Instant::now()) {
            self.strikes += 1;
            if self.strikes > MAX_RATE_STRIKES {
                return Next::Close(
                    close_code::RATE_LIMITED,
                    "far over the message rate limit".into(),
                );
            }
            let message = format!(
                "more than {} messages per second; retry in {} ms",
                self.limits.messages_per_sec,
                self.rate.retry_after().as_millis().max(1)
            );
            self.send_error(socket, ErrorCode::RateLimited, message, None)
                .await;
            return Next::Continue;
        }
        self.strikes = 0;

        let (msg, reference) = match parse(text) {
            Ok(parsed) => parsed,
            Err((code, message, reference)) => {
                self.send_error(socket, code, message, reference).await;
                return Next::Continue;
            }
        };
        m::message_in(msg.kind());

        let waiting_message = self.waiting && !matches!(msg, ClientMessage::Join { .. });
        if !self.joined && !waiting_message {
            return match msg {
                ClientMessage::Join {
                    token,
                    name,
                    resume,
                    browser,
                } => {
                    let request = JoinMessage {
                        token,
                        name,
                        resume,
                        browser,
                    };
                    self.join(socket, request, reference).await
                }
                _ => {
                    self.send_error(socket, ErrorCode::NotJoined, "send join first", reference)
                        .await;
                    Next::Continue
                }
            };
        }

        let refused = {
            let mut core = lock(&self.app.core);
            match core.hub.handle(self.conn, msg, unix_millis()) {
                Ok(effects) => {
                    self.app.apply_for(&mut core, effects, reference.clone());
                    None
                }
                Err(refusal) => Some(refusal),
            }
        };
        if let Some(r) = refused {
            self.send_error(socket, r.code, r.message, reference).await;
        }
        Next::Continue
    }

    /// Whether a personal link's student is still on the class's list (the teacher may have
    /// taken them off since the link was handed out).
    fn on_class_list(&self, class: &str, student: &str) -> Result<(), (ErrorCode, &'static str)> {
        let store = self.app.store.lock().unwrap_or_else(|p| p.into_inner());
        match store.student(class, student) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err((
                ErrorCode::NotOnClassList,
                "this personal link no longer works: the teacher took you off the class list",
            )),
            Err(e) => {
                tracing::error!("class store: {e}");
                Err((
                    ErrorCode::Internal,
                    "the server could not check the class list",
                ))
            }
        }
    }

    async fn join(
        &mut self,
        socket: &mut WebSocket,
        msg: JoinMessage,
        reference: Option<Value>,
    ) -> Next {
        let now = unix_millis();
        let claims = self.app.tokens.verify(&msg.token, now / 1000);
        // Teachers always get in, and a resume brings back someone already counted; every other
        // join (including bad tokens) takes from this address's bucket.
        let spared = match &claims {
            Ok(c) if c.role == Role::Teacher => true,
            Ok(c) => {
                let core = lock(&self.app.core);
                core.hub
                    .would_resume(&c.class, c.role, msg.resume.as_deref())
                    || core.hub.would_admit(self.conn)
            }
            Err(_) => false,
        };
        if !spared && !self.app.join_limits.allow_join(self.ip) {
            if let Ok(c) = &claims {
                let mut core = lock(&self.app.core);
                let name = c.name.as_deref().or(msg.name.as_deref());
                let effects = core
                    .hub
                    .join_refused(&c.class, name, ErrorCode::RateLimited, now);
                self.app.apply(&mut core, effects);
            }
            let message = "too many joins from your network right now; try again in a few seconds";
            self.send_error(socket, ErrorCode::RateLimited, message, reference)
                .await;
            return Next::Close(close_code::JOIN_REFUSED, "join refused".into());
        }
        let claims = match claims {
            Ok(claims) => claims,
            Err(e) => {
                self.send_error(socket, e.code(), e.to_string(), reference)
                    .await;
                return Next::Close(close_code::JOIN_REFUSED, "join refused".into());
            }
        };
        // A personal link from a class list works while its student is on the list.
        if let Some(student) = &claims.student {
            if let Err((code, message)) = self.on_class_list(&claims.class, student) {
                self.send_error(socket, code, message, reference).await;
                return Next::Close(close_code::JOIN_REFUSED, "join refused".into());
            }
        }
        // A token that fixes a name is one person's: a removal refuses that person. A class-list
        // student is named by their id (any of their links); another token by its signature
        // (without keeping the whole token).
        let personal_token = match &claims.student {
            Some(student) => Some(format!("student:{student}")),
            None => claims
                .name
                .as_ref()
                .and_then(|_| msg.token.rsplit('.').next())
                .map(str::to_string),
        };
        let request = JoinRequest {
            class: claims.class.clone(),
            role: claims.role,
            fixed_name: claims.name.clone(),
            name: msg.name.clone(),
            resume: msg.resume,
            new_resume_token: crate::secrets::generate(),
            browser: msg.browser,
            personal_token,
            student: claims.student.clone(),
            now_ms: now,
        };
        let ice = &self.app.ice;
        let result = {
            let mut core = lock(&self.app.core);
            let joined = core.hub.join(self.conn, request, |peer| {
                ice.for_peer(&format!("{}/{peer}", claims.class), now / 1000)
            });
            joined.map(|j| {
                self.app.apply(&mut core, j.effects);
                metrics::gauge!(m::PEERS).set(core.hub.peer_count() as f64);
                (j.peer, j.resumed, j.waiting)
            })
        };
        match result {
            Ok((_, _, true)) => {
                self.waiting = true;
                tracing::info!(role = ?claims.role, "waiting to be let in");
                Next::Continue
            }
            Ok((peer, resumed, false)) => {
                self.waiting = false;
                self.joined = true;
                if let Some(every) = self.app.ice.renew_after() {
                    let identity = format!("{}/{peer}", claims.class);
                    self.ice_renewal = Some((identity, tokio::time::Instant::now() + every));
                }
                let span = tracing::Span::current();
                span.record("class", claims.class.as_str());
                span.record("peer", peer.as_str());
                metrics::counter!(m::JOINS, "resumed" => if resumed { "true" } else { "false" })
                    .increment(1);
                tracing::info!(role = ?claims.role, resumed, "joined");
                Next::Continue
            }
            Err(refusal) => {
                {
                    let mut core = lock(&self.app.core);
                    let name = claims.name.as_deref().or(msg.name.as_deref());
                    let effects = core
                        .hub
                        .join_refused(&claims.class, name, refusal.code, now);
                    self.app.apply(&mut core, effects);
                }
                let retryable = refusal.code == ErrorCode::InvalidName;
                self.send_error(socket, refusal.code, refusal.message, reference)
                    .await;
                if retryable {
                    Next::Continue
                } else {
                    Next::Close(close_code::JOIN_REFUSED, "join refused".into())
                }
            }
        }
    }

    /// Sends an `error` straight to this socket (it answers this connection's own message).
    async fn send_error(
        &self,
        socket: &mut WebSocket,
        code: ErrorCode,
        message: impl Into<String>,
        reference: Option<Value>,
    ) {
        m::error_sent(code);
        let msg = ServerMessage::Error {
            code,
            message: message.into(),
            reference,
        };
        let text: Utf8Bytes = encode(&msg).into();
        let _ = socket.send(Message::Text(text)).await;
    }
}

/// The fields of a `join` message.
struct JoinMessage {
    token: String,
    name: Option<String>,
    resume: Option<String>,
    browser: Option<String>,
}

/// Turns a text frame into a message, or the error to answer it with.
pub type ParseError = (ErrorCode, String, Option<Value>);

pub fn parse(text: &str) -> Result<(ClientMessage, Option<Value>), ParseError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        (
            ErrorCode::BadJson,
            format!("the frame is not valid JSON: {e}"),
            None,
        )
    })?;
    let reference = value
        .get("ref")
        .filter(|r| r.is_string() || r.is_number())
        .cloned();
    let Some(kind) = value.get("type").and_then(Value::as_str) else {
        let message = "every message is a JSON object with a string \"type\"".to_string();
        return Err((ErrorCode::BadMessage, message, reference));
    };
    if !CLIENT_MESSAGE_TYPES.contains(&kind) {
        let message = format!("unknown message type {kind:?}");
        return Err((ErrorCode::UnknownType, message, reference));
    }
    let kind = kind.to_string();
    match serde_json::from_value::<ClientMessage>(value) {
        Ok(msg) => Ok((msg, reference)),
        Err(e) => Err((
            ErrorCode::BadMessage,
            format!("invalid {kind} message: {e}"),
            reference,
        )),
    }
}

/// What a failed read means for the connection.
#[derive(Debug, PartialEq)]
enum ReadFailure {
    /// A frame over the size limit: an error, then close 1009.
    TooBig,
    /// A frame that breaks RFC 6455 (1002) or a text frame that is not UTF-8 (1007).
    Malformed(u16, &'static str),
    /// The connection is gone; nothing can be sent.
    Gone,
}

fn read_failure(err: tungstenite::Error) -> ReadFailure {
    use tungstenite::error::ProtocolError;
    match err {
        tungstenite::Error::Capacity(_) => ReadFailure::TooBig,
        tungstenite::Error::Utf8(_) => {
            ReadFailure::Malformed(close_code::INVALID_PAYLOAD, "text frame is not UTF-8")
        }
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            ReadFailure::Gone
        }
        tungstenite::Error::Protocol(_) => {
            ReadFailure::Malformed(close_code::PROTOCOL_ERROR, "malformed WebSocket frame")
        }
        _ => ReadFailure::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_sorts_bad_input_into_codes() {
        assert_eq!(parse("{").unwrap_err().0, ErrorCode::BadJson);
        assert_eq!(parse("[1]").unwrap_err().0, ErrorCode::BadMessage);
        let (code, _, r) = parse(r#"{"type":"fly","ref":3}"#).unwrap_err();
        assert_eq!(
            (code, r),
            (ErrorCode::UnknownType, Some(serde_json::json!(3)))
        );
        let (code, msg, r) = parse(r#"{"type":"offer","ref":"a"}"#).unwrap_err();
        assert_eq!(code, ErrorCode::BadMessage);
        assert!(msg.contains("missing field"), "{msg}");
        assert_eq!(r, Some(serde_json::json!("a")));
        let (msg, r) = parse(r#"{"type":"chat","text":"hi","ref":{"x":1}}"#).unwrap();
        assert_eq!(
            msg,
            ClientMessage::Chat {
                text: "hi".into(),
                to: None
            }
        );
        assert_eq!(r, None, "only string and number refs are echoed");
    }

    #[test]
    fn origin_rules() {
        let mut h = HeaderMap::new();
        assert!(check_origin(&h, &[]).is_ok(), "no Origin: not a browser");
        h.insert(header::HOST, "aula.school.example:8443".parse().unwrap());
        h.insert(
            header::ORIGIN,
            "https://aula.school.example:8443".parse().unwrap(),
        );
        assert!(check_origin(&h, &[]).is_ok(), "same origin");
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(check_origin(&h, &[]).is_err());
        assert!(check_origin(&h, &["https://evil.example".into()]).is_ok());
    }
}
