//! The server side of a WebSocket: the HTTP/1.1 upgrade, and a socket that writes large
//! messages past tungstenite's write buffer.
//!
//! Why not axum's `WebSocket`: tungstenite's write buffer keeps, for the life of the connection,
//! the capacity of the largest frame it ever wrote. A `welcome` for a class of 500 (or one
//! carrying a long chat history) would leave ~50 KiB behind on every connection that received
//! it. So a text message over [`DIRECT_BYTES`] is formatted into a buffer of its own, written
//! straight to the connection and freed. It goes out as one frame in one write: sent as several
//! small writes (e.g. fragments), Nagle's algorithm would hold each one back until the client's
//! delayed ACK, ~40 ms. axum's wrapper cannot reach the connection, so the upgrade is done here on
//! hyper's, the way axum does it.

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::Bytes;

pub use tungstenite::protocol::CloseFrame;
pub use tungstenite::{Error, Message, Utf8Bytes};

/// Text messages longer than this bypass tungstenite's write buffer, which so stays this small.
pub const DIRECT_BYTES: usize = 1024;

/// A valid WebSocket upgrade request, taken apart by the extractor.
#[derive(Debug)]
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: hyper::upgrade::OnUpgrade,
}

/// Why a request to `/ws` is not a WebSocket upgrade.
#[derive(Debug)]
pub struct NotAnUpgrade(StatusCode, &'static str);

impl IntoResponse for NotAnUpgrade {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = NotAnUpgrade;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let bad = |why| Err(NotAnUpgrade(StatusCode::BAD_REQUEST, why));
        if parts.method != Method::GET {
            return Err(NotAnUpgrade(
                StatusCode::METHOD_NOT_ALLOWED,
                "a WebSocket upgrade is a GET request",
            ));
        }
        if !has_token(&parts.headers, header::CONNECTION, "upgrade") {
            return bad("the Connection header does not include 'upgrade'");
        }
        if !has_token(&parts.headers, header::UPGRADE, "websocket") {
            return bad("the Upgrade header is not 'websocket'");
        }
        if !has_token(&parts.headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return bad("the Sec-WebSocket-Version header is not 13");
        }
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return bad("the Sec-WebSocket-Key header is missing");
        };
        let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            return Err(NotAnUpgrade(
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded",
            ));
        };
        Ok(Upgrade { key, on_upgrade })
    }
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl Upgrade {
    /// Answers `101 Switching Protocols` and runs `callback` with the socket once hyper hands
    /// the connection over.
    pub fn on_upgrade<C, Fut>(self, config: WebSocketConfig, callback: C) -> Response
    where
        C: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(e) => {
                    tracing::debug!("WebSocket upgrade failed: {e}");
                    return;
                }
            };
            let inner = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            callback(Socket {
                inner: Box::new(inner),
                rest: None,
            })
            .await;
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// An upgraded connection.
#[derive(Debug)]
pub struct Socket {
    /// Boxed: the stream (~400 bytes) is moved through several nested futures, and each would
    /// otherwise keep its own slot for it in every idle connection's task.
    inner: Box<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>>,
    /// What is not yet written of a large frame sent past tungstenite. It goes out before
    /// anything else, so a send cancelled half-way (a kick) still leaves whole frames.
    rest: Option<Bytes>,
}

impl Socket {
    /// The next message (pings are answered by tungstenite); `None` once the connection ended.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        self.inner.next().await
    }

    /// Sends one message; text longer than [`DIRECT_BYTES`] is written past tungstenite's
    /// buffer. Cancelling this leaves the socket usable: the rest of a frame goes out first.
    pub async fn send(&mut self, msg: Message) -> Result<(), Error> {
        self.finish_rest().await?;
        match msg {
            // Boxed: inlined, its state would make every connection's task bigger.
            Message::Text(text) if text.len() > DIRECT_BYTES => {
                Box::pin(self.send_direct(text)).await
            }
            other => self.inner.send(other).await,
        }
    }

    async fn send_direct(&mut self, text: Utf8Bytes) -> Result<(), Error> {
        // Whatever tungstenite holds goes first, so frames stay in order.
        self.inner.flush().await?;
        let mut frame = Vec::with_capacity(text.len() + 14);
        Frame::message(Bytes::from(text), OpCode::Data(Data::Text), true).format(&mut frame)?;
        self.rest = Some(Bytes::from(frame));
        self.finish_rest().await
    }

    async fn finish_rest(&mut self) -> Result<(), Error> {
        let Some(rest) = self.rest.as_mut() else {
            return Ok(());
        };
        let io = self.inner.get_mut();
        while !rest.is_empty() {
            let written = io.write(rest).await?;
            if written == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            *rest = rest.slice(written..);
        }
        self.rest = None;
        io.flush().await?;
        Ok(())
    }
}
