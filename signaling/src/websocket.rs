//! The server side of a WebSocket: the HTTP/1.1 upgrade, and a socket that sends large messages
//! as several frames of at most [`FRAGMENT_BYTES`].
//!
//! Why not axum's `WebSocket`: tungstenite's write buffer keeps, for the life of the connection,
//! the capacity of the largest frame it ever wrote. Sent as one frame, a `welcome` for a class
//! of 500 (or one carrying a long chat history) leaves ~50 KiB behind on every connection that
//! received it; sent in fragments, about 1 KiB. A fragmented message is still one message to
//! every WebSocket client (RFC 6455 §5.4), so the protocol does not change. axum's wrapper
//! cannot send frames, so the upgrade is done here on hyper's, the way axum does it.

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::Bytes;

pub use tungstenite::protocol::CloseFrame;
pub use tungstenite::{Error, Message, Utf8Bytes};

/// The largest payload of one outgoing data frame. Longer text messages are split (on character
/// boundaries) into frames of at most this many bytes, which bounds the write buffer.
pub const FRAGMENT_BYTES: usize = 1024;

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
}

impl Socket {
    /// The next message (pings are answered by tungstenite); `None` once the connection ended.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        self.inner.next().await
    }

    /// Sends one message; text longer than [`FRAGMENT_BYTES`] goes out in fragments. Cancelling
    /// this between fragments leaves the socket usable for a close frame (control frames may
    /// come between fragments).
    pub async fn send(&mut self, msg: Message) -> Result<(), Error> {
        match msg {
            // Boxed: inlined, the loop's state would make every connection's task bigger.
            Message::Text(text) if text.len() > FRAGMENT_BYTES => {
                Box::pin(self.send_fragmented(text)).await
            }
            other => self.inner.send(other).await,
        }
    }

    async fn send_fragmented(&mut self, text: Utf8Bytes) -> Result<(), Error> {
        let pieces = fragments(text.as_str(), FRAGMENT_BYTES);
        let last = pieces.len() - 1;
        let bytes = Bytes::from(text);
        for (i, range) in pieces.into_iter().enumerate() {
            let opcode = if i == 0 { Data::Text } else { Data::Continue };
            let frame = Frame::message(bytes.slice(range), OpCode::Data(opcode), i == last);
            if i == last {
                self.inner.send(Message::Frame(frame)).await?;
            } else {
                // Written at once (the write buffer size is 0), flushed with the last one.
                self.inner.feed(Message::Frame(frame)).await?;
            }
        }
        Ok(())
    }
}

/// Splits `text` into byte ranges of at most `max` bytes (at least one, so `max` must be 4 or
/// more), each ending on a character boundary.
fn fragments(text: &str, max: usize) -> Vec<std::ops::Range<usize>> {
    let mut pieces = Vec::with_capacity(text.len().div_ceil(max));
    let mut start = 0;
    loop {
        let mut end = (start + max).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        pieces.push(start..end);
        if end == text.len() {
            return pieces;
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(fragments("", 8), vec![0..0]);
        assert_eq!(fragments("12345678", 8), vec![0..8]);
        assert_eq!(fragments("123456789", 8), vec![0..8, 8..9]);
    }

    proptest! {
        #[test]
        fn pieces_cover_the_text_on_char_boundaries(text in "\\PC{0,300}", max in 4usize..40) {
            let pieces = fragments(&text, max);
            let mut joined = String::new();
            let mut next = 0;
            for range in pieces {
                prop_assert_eq!(range.start, next);
                prop_assert!(range.len() <= max);
                prop_assert!(!range.is_empty() || text.is_empty());
                joined.push_str(&text[range.clone()]);
                next = range.end;
            }
            prop_assert_eq!(joined, text);
        }
    }
}
