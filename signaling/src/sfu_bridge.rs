//! Carries the hub's SFU requests to the SFU and its answers back to the browsers.
//!
//! The hub decides *that* a teacher publishes or a student subscribes; this module makes the
//! asynchronous call on the [`SfuHandle`] and delivers the outcome as protocol messages from the
//! reserved peer `sfu`: an `answer` to a publisher, an `offer` to a subscriber, or a
//! `media_unavailable` error. It also relays the SFU's own notices (re-offers) to the peers.

use std::sync::Arc;

use serde_json::Value;

use aula_relay::sfu::{Allowed, SfuError, SfuEvent, SfuHandle};

use crate::app::App;
use crate::hub::{ConnId, SfuRequest};
use crate::protocol::{ErrorCode, Permissions, ServerMessage, SFU_PEER_ID};
use crate::state::lock;

/// Starts one SFU call; its outcome reaches the requesting connection. A failure is an error
/// carrying `reference`, the `ref` of the client message that asked for the call.
pub fn spawn(app: Arc<App>, request: SfuRequest, reference: Option<Value>) {
    tokio::spawn(async move {
        let Some(sfu) = app.sfu.clone() else {
            if let Some(conn) = conn_of(&request) {
                let message = "this server runs no SFU".to_string();
                deliver(
                    &app,
                    conn,
                    request_peer(&request),
                    error(message, reference),
                );
            }
            return;
        };
        call(&app, &sfu, request, reference).await;
    });
}

async fn call(app: &Arc<App>, sfu: &SfuHandle, request: SfuRequest, reference: Option<Value>) {
    let refused = |e: &SfuError| refused(e, reference.clone());
    match request {
        SfuRequest::Publish {
            class,
            peer,
            conn,
            sdp,
            permissions,
        } => {
            let allowed = allowed(permissions);
            let reply = match sfu.publish(&class, &peer, &sdp, allowed).await {
                Ok(sdp) => ServerMessage::Answer {
                    from: SFU_PEER_ID.into(),
                    sdp,
                },
                Err(e) => refused(&e),
            };
            deliver(app, conn, &peer, reply);
        }
        SfuRequest::Subscribe {
            class,
            peer,
            conn,
            members,
        } => {
            // A repeated subscribe replaces the old subscription (e.g. after its link failed);
            // what the peer publishes (a teacher's share) is another session and stays.
            let _ = sfu.unsubscribe(&class, &peer).await;
            match sfu.subscribe_bounded(&class, &peer, members).await {
                Ok(sdp) => {
                    let offer = ServerMessage::Offer {
                        from: SFU_PEER_ID.into(),
                        sdp,
                    };
                    if !deliver(app, conn, &peer, offer) {
                        // The peer left while the SFU made the offer, and its `Remove` may
                        // have gone first: this subscription must not outlive it.
                        let _ = sfu.remove(&class, &peer).await;
                    }
                }
                Err(e) => {
                    deliver(app, conn, &peer, refused(&e));
                }
            }
        }
        SfuRequest::Answer {
            class,
            peer,
            conn,
            sdp,
        } => {
            if let Err(e) = sfu.accept_answer(&class, &peer, &sdp).await {
                deliver(app, conn, &peer, refused(&e));
            }
        }
        SfuRequest::Permissions {
            class,
            peer,
            permissions,
        } => {
            let allowed = allowed(permissions);
            if allowed.any() {
                let _ = sfu.set_allowed(&class, &peer, allowed).await;
            } else {
                // No right left to send anything: end the publishing session.
                let _ = sfu.unpublish(&class, &peer).await;
            }
        }
        SfuRequest::Remove { class, peer } => {
            let _ = sfu.remove(&class, &peer).await;
        }
    }
}

/// What the SFU forwards of a publisher with these rights.
fn allowed(p: Permissions) -> Allowed {
    Allowed {
        audio: p.speak,
        camera: p.camera,
        screen: p.screen,
    }
}

/// Relays the SFU's own notices until it stops: re-offers go to the subscriber concerned.
pub async fn relay_events(app: Arc<App>, sfu: SfuHandle) {
    let mut events = sfu.events();
    loop {
        let event = tokio::select! {
            _ = app.shutdown.cancelled() => return,
            e = events.recv() => e,
        };
        match event {
            Ok(SfuEvent::Offer { peer, sdp, .. }) => {
                let conn = lock(&app.core).hub.conn_of(&peer);
                if let Some(conn) = conn {
                    deliver(
                        &app,
                        conn,
                        &peer,
                        ServerMessage::Offer {
                            from: SFU_PEER_ID.into(),
                            sdp,
                        },
                    );
                }
            }
            Ok(SfuEvent::Connected { class, peer }) => {
                tracing::debug!(%class, %peer, "SFU link up");
            }
            Ok(SfuEvent::Disconnected { class, peer }) => {
                tracing::info!(%class, %peer, "SFU dropped the peer's link; the client resubscribes");
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "SFU notices lagged");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Sends `msg` to `conn` if it still speaks for `peer` (it may have left meanwhile); returns
/// whether it did.
fn deliver(app: &App, conn: ConnId, peer: &str, msg: ServerMessage) -> bool {
    let mut core = lock(&app.core);
    if core.hub.peer_of(conn).map(String::as_str) == Some(peer) {
        core.send(conn, &msg);
        true
    } else {
        false
    }
}

/// A refusal as the peer sees it: `rate_limited` when it asked too often, otherwise
/// `media_unavailable`; the message says why.
fn refused(e: &SfuError, reference: Option<Value>) -> ServerMessage {
    // Refusals follow a peer's requests, which a peer can repeat: not a warning each.
    tracing::debug!("SFU refused: {e}");
    let code = match e {
        SfuError::RateLimited(_) => ErrorCode::RateLimited,
        _ => ErrorCode::MediaUnavailable,
    };
    error_with(code, format!("the SFU refused: {e}"), reference)
}

fn error(message: String, reference: Option<Value>) -> ServerMessage {
    error_with(ErrorCode::MediaUnavailable, message, reference)
}

fn error_with(code: ErrorCode, message: String, reference: Option<Value>) -> ServerMessage {
    crate::metrics::error_sent(code);
    ServerMessage::Error {
        code,
        message,
        reference,
    }
}

fn conn_of(request: &SfuRequest) -> Option<ConnId> {
    match request {
        SfuRequest::Publish { conn, .. }
        | SfuRequest::Subscribe { conn, .. }
        | SfuRequest::Answer { conn, .. } => Some(*conn),
        SfuRequest::Remove { .. } | SfuRequest::Permissions { .. } => None,
    }
}

fn request_peer(request: &SfuRequest) -> &str {
    match request {
        SfuRequest::Publish { peer, .. }
        | SfuRequest::Subscribe { peer, .. }
        | SfuRequest::Answer { peer, .. }
        | SfuRequest::Permissions { peer, .. }
        | SfuRequest::Remove { peer, .. } => peer,
    }
}
