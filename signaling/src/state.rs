//! Shared server state: the hub, each connection's outbox, and how hub effects reach sockets.
//!
//! The [`Hub`] decides; this module carries its decisions out. Effects are applied under the same
//! lock that produced them, so every connection sees class events in the order the hub made them.
//! A message is serialized once however many connections receive it, and queued without waiting:
//! each connection's queue is bounded in bytes, and a connection whose queue is full is a slow
//! consumer and is kicked, never waited for.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::hub::{ConnId, Effect, Hub, SfuRequest};
use crate::metrics as m;
use crate::protocol::{close_code, ServerMessage};
use crate::websocket::Utf8Bytes;

/// What a connection task is asked to write.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Serialized once, shared by every recipient of a fan-out.
    Text(Utf8Bytes),
    Close(u16, String),
}

/// A one-shot request to close a connection, usable when its queue is full. It is a child of
/// the server's shutdown token, so one wait covers both.
#[derive(Debug)]
pub struct Kick {
    pub fired: CancellationToken,
    reason: OnceLock<(u16, String)>,
}

impl Kick {
    pub fn new(shutdown: &CancellationToken) -> Self {
        Kick {
            fired: shutdown.child_token(),
            reason: OnceLock::new(),
        }
    }

    pub fn fire(&self, code: u16, reason: impl Into<String>) {
        let _ = self.reason.set((code, reason.into()));
        self.fired.cancel();
    }

    /// Why the connection must close: its kick, or else the server going away.
    pub fn reason(&self) -> (u16, String) {
        self.reason
            .get()
            .cloned()
            .unwrap_or((close_code::GOING_AWAY, "server going away".into()))
    }
}

/// A connection's outgoing queue, bounded in bytes. It allocates nothing while empty and gives
/// back what a burst made it grow, so idle connections stay small.
#[derive(Debug)]
pub struct Outbox {
    pending: Mutex<Pending>,
    ready: Notify,
    max_bytes: usize,
    pub kick: Kick,
}

#[derive(Debug, Default)]
struct Pending {
    items: VecDeque<Outbound>,
    bytes: usize,
}

/// The queue holds more than its byte bound: the connection is a slow consumer.
#[derive(Debug)]
pub struct Full;

impl Outbox {
    pub fn new(max_bytes: usize, shutdown: &CancellationToken) -> Self {
        Outbox {
            pending: Mutex::new(Pending::default()),
            ready: Notify::new(),
            max_bytes,
            kick: Kick::new(shutdown),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a message without waiting.
    pub fn push(&self, out: Outbound) -> Result<usize, Full> {
        let mut pending = self.pending();
        pending.bytes += out.cost();
        if pending.bytes > self.max_bytes {
            return Err(Full);
        }
        pending.items.push_back(out);
        let bytes = pending.bytes;
        drop(pending);
        self.ready.notify_one();
        Ok(bytes)
    }

    /// The next message, waiting for one.
    pub async fn pop(&self) -> Outbound {
        loop {
            if let Some(out) = self.try_pop() {
                return out;
            }
            // A push between try_pop and here leaves a permit, so no wake-up is lost.
            self.ready.notified().await;
        }
    }

    /// Drops everything queued: a slow consumer's backlog, so its memory goes at once and its
    /// close frame is the next thing it gets.
    pub fn clear(&self) {
        *self.pending() = Pending::default();
    }

    fn try_pop(&self) -> Option<Outbound> {
        let mut pending = self.pending();
        let out = pending.items.pop_front()?;
        pending.bytes -= out.cost();
        // An idle connection holds no queue at all; refilling it costs one small allocation.
        if pending.items.is_empty() {
            pending.items = VecDeque::new();
        }
        Some(out)
    }
}

impl Outbound {
    /// What a queued message counts against the byte bound.
    pub fn cost(&self) -> usize {
        match self {
            Outbound::Text(text) => text.len(),
            Outbound::Close(..) => 0,
        }
    }
}

/// The hub plus every connection's outbox, behind one lock.
#[derive(Debug)]
pub struct Core {
    pub hub: Hub,
    pub outboxes: HashMap<ConnId, Arc<Outbox>>,
}

impl Core {
    pub fn new(hub: Hub) -> Self {
        Core {
            hub,
            outboxes: HashMap::new(),
        }
    }

    /// Carries out the hub's effects, in order.
    /// Carries out the hub's effects, in order, and returns its requests for the SFU, which
    /// the caller makes asynchronously (see [`crate::sfu_bridge`]).
    #[must_use = "SFU requests must be handed to sfu_bridge::spawn"]
    pub fn apply(&mut self, effects: Vec<Effect>) -> Vec<SfuRequest> {
        let mut sfu_requests = Vec::new();
        for effect in effects {
            match effect {
                Effect::Deliver { to, msg } => {
                    m::message_out(&msg);
                    let text: Utf8Bytes = encode(&msg).into();
                    for conn in to {
                        self.push(conn, Outbound::Text(text.clone()));
                    }
                }
                Effect::Close { conn, code, reason } => {
                    self.push(conn, Outbound::Close(code, reason))
                }
                Effect::Sfu(request) => sfu_requests.push(request),
            }
        }
        sfu_requests
    }

    /// Sends one message to one connection.
    pub fn send(&mut self, conn: ConnId, msg: &ServerMessage) {
        m::message_out(msg);
        self.push(conn, Outbound::Text(encode(msg).into()));
    }

    /// Queues one message for one connection, kicking it if its queue is full.
    pub fn push(&mut self, conn: ConnId, out: Outbound) {
        let Some(outbox) = self.outboxes.get(&conn) else {
            return;
        };
        if outbox.push(out).is_err() {
            tracing::warn!(conn, "slow consumer: send queue full, disconnecting");
            metrics::counter!(m::SLOW_CONSUMER_DROPS).increment(1);
            outbox.clear();
            outbox.kick.fire(
                close_code::SLOW_CONSUMER,
                "too slow to keep up with the class",
            );
            self.outboxes.remove(&conn);
        }
    }
}

/// Serializes a server message. Our types always serialize.
pub fn encode(msg: &ServerMessage) -> String {
    serde_json::to_string(msg).expect("server messages serialize")
}

/// The hub and outboxes, shared by every task.
pub type SharedCore = Arc<Mutex<Core>>;

/// Locks the core. A panic while holding the lock would be a bug; we keep serving regardless.
pub fn lock(core: &SharedCore) -> std::sync::MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
