//! Selective forwarding unit: each publisher of a class (the teacher, and students given the floor)
//! sends its streams once; the SFU forwards them to every other member of the class.
//!
//! Built on [str0m](https://github.com/algesten/str0m): sans-IO, one `Rtc` value per peer, so
//! [`core::SfuCore`] holds every peer of a worker's classes as plain values, tested without
//! sockets or clocks, and [`server`] is only a UDP loop; one UDP socket serves every peer of a
//! worker (`Rtc::accepts` matches each STUN request's ICE ufrag).
//!
//! The SFU runs on every core: [`SfuConfig::workers`] workers, each a thread with its own core
//! state, socket and port and nothing shared on the per-packet path. [`pool`] places each class
//! on the least-loaded worker (by datagrams forwarded per second) and routes the class's
//! requests there. Crypto comes from str0m's `openssl` provider (building
//! needs `libssl-dev`, running `libssl3`). Why str0m, and why that provider:
//! `docs/decisions/0001-str0m-for-the-sfu.md`.
//!
//! # Model
//!
//! - Any peer of a class may publish (the signaling side decides who: teachers, and students the
//!   teacher gave the floor), several at once, up to [`SfuConfig::max_publishers_per_class`].
//!   [`Allowed`] says what of a publisher's media is forwarded (a student granted speech but not
//!   sharing sends audio only), so a right revoked on the server stops the media at once. A
//!   publisher's media sections are numbered per kind: video 0, 1, …, audio 0, … (the browser
//!   sends video 0 = screen, video 1 = camera, audio 0 = microphone, audio 1 = the shared screen's
//!   sound, forwarded under the screen right).
//! - Every peer may also subscribe (a separate connection): it gets a send-only m-line for each
//!   track of every *other* publisher in the class, with the msid stream id `aula.<peer id>` so
//!   the browser knows whose media it is. A subscriber that arrives before anyone publishes is
//!   offered a data channel only; when a publisher appears or adds a track (a camera next to the
//!   screen), the SFU offers each subscriber the missing m-lines ([`SfuEvent::Offer`], answered
//!   through `accept_answer`). A publisher that comes back (a reload, or a new browser connection
//!   after its link failed: another DTLS fingerprint) reuses its m-lines at every subscriber.
//! - Video to a subscriber starts at a keyframe: the SFU requests one (PLI) from the publisher
//!   when a subscriber connects, forwards subscribers' PLI/FIR, and asks for one when the
//!   publisher's stream has an unrecovered gap. All requests to a publisher track go through a
//!   [`keyframe::KeyframeLimiter`] (at most one per [`SfuConfig::keyframe_min_interval`]; a
//!   request inside the interval is deferred, never lost).
//! - Lost packets: str0m NACKs the publisher for gaps and answers subscribers' NACKs with RTX from
//!   each subscriber's send buffer.
//! - Simulcast: when the publisher sends layers (rids), the SFU ranks them by the bytes received
//!   on each and forwards one per subscriber, chosen by [`layers::LayerChooser`] from that
//!   subscriber's bandwidth estimate (transport-wide congestion control, or REMB) and the
//!   loss in its receiver reports (start on top — screen share favours resolution; see
//!   [`layers`]). A switch waits for a keyframe of the new layer (requested, rate-limited per
//!   layer); the old layer flows until then. A layer the publisher stopped sending (a browser
//!   stops its top layers when its uplink or CPU is short) leaves the ranking until it comes
//!   back, so nobody waits for its keyframe.
//!
//! - Limits (see docs/security.md, "The SFU"): a peer that has not connected within
//!   [`SfuConfig::offer_timeout`] of its offer or answer is dropped, freeing its slot; a class
//!   holds at most [`SfuConfig::max_subscribers_per_class`] subscriptions and never more than its
//!   members ([`SfuCore::subscribe_bounded`]); each peer may subscribe
//!   [`SfuConfig::subscribes_per_minute`] times a minute ([`limits`]). Client SDP passes
//!   [`sdp_check`] before str0m sees it.
//!
//! # Driving it from signaling
//!
//! `aula serve` starts one [`Sfu`] next to the TURN server and hands the [`SfuHandle`] to the
//! signaling state. The SFU is the reserved peer id [`SFU_PEER_ID`] (`"sfu"`) of every class:
//!
//! - a publisher → `{"type":"offer","to":"sfu","sdp"}`: [`SfuHandle::publish`]; the answer goes
//!   back as `{"type":"answer","from":"sfu","sdp"}`. A later offer (camera on, ICE restart, or a
//!   fresh connection) is the same call. A grant or revocation calls [`SfuHandle::set_allowed`].
//! - `{"type":"subscribe"}`: the server calls [`SfuHandle::subscribe`] and sends
//!   `{"type":"offer","from":"sfu","sdp"}`; the `{"type":"answer","to":"sfu"}` goes to
//!   [`SfuHandle::accept_answer`]. `candidate` messages to `"sfu"` are dropped (the SFU is
//!   ICE-lite and its candidate is in its SDP).
//! - [`SfuHandle::events`]: [`SfuEvent::Offer`] is relayed as an offer from `"sfu"`;
//!   [`SfuEvent::Disconnected`] tells the server to resubscribe or fall back to direct.
//! - `peer_left`, `remove` and `end` call [`SfuHandle::remove`].
//!
//! The synthetic WebRTC client that publishes fake VP8/Opus media and checks what subscribers
//! receive lives in the `aula-testkit` crate (tests and the load tool use it).

mod bandwidth;
pub(crate) mod core;
mod forward;
pub(crate) mod keyframe;
pub(crate) mod layers;
pub(crate) mod limits;
mod metrics;
mod negotiate;
mod peers;
pub(crate) mod pool;
pub(crate) mod sdp_check;
mod send_batch;
pub(crate) mod server;
mod span;
mod stats;
mod tracks;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use self::core::{Allowed, Counter, SfuCore, SfuEvent, SfuStats};
pub use self::pool::{ClassPlacement, Sfu, SfuHandle, WorkerStatus};
pub use self::span::{Frame, PublisherList, SpanMessage};

/// The reserved peer id the SFU would use in the signaling protocol (see the integration notes).
pub const SFU_PEER_ID: &str = "sfu";

/// SFU settings.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// UDP address the first worker's media socket binds to; worker `i` binds its port plus `i`
    /// (or an ephemeral port each when it is 0). Use a concrete address (not 0.0.0.0) or set
    /// `public_ip`, because it is advertised as the ICE host candidate.
    pub listen: SocketAddr,
    /// Worker threads, each with its own core state and socket; 0: one per CPU core
    /// ([`SfuConfig::worker_count`]).
    pub workers: usize,
    /// Address advertised in the ICE candidate instead of `listen`'s IP (1:1 NAT, or 0.0.0.0 binds).
    pub public_ip: Option<IpAddr>,
    /// Minimum time between two keyframe requests sent to one publisher track.
    pub keyframe_min_interval: Duration,
    /// How often each peer reports statistics (used for the NACK counters).
    pub stats_interval: Duration,
    /// Socket receive and send buffer size in bytes.
    pub socket_buffer: usize,
    /// Video packets each subscriber keeps for retransmission at most (str0m's default is 1000).
    /// It must exceed the packets of the largest frame (a keyframe of a detailed screen: a few
    /// hundred); 400 packets are about 2.5 s of a 1.5 Mbit/s stream, so the age bound below is
    /// usually what limits the buffer.
    pub send_buffer_video: usize,
    /// How long a subscriber's sent video packet stays in that buffer at most. Packets older than
    /// this are dropped even when the buffer has room: a NACK comes within a round trip or two,
    /// and a buffer holding only the last second (~140 packets of a 1.5 Mbit/s stream, more
    /// right after a keyframe) keeps each subscriber's working set small enough for the caches
    /// when hundreds are served (see docs/benchmarks.md, "SFU"). libwebrtc keeps at least 1 s.
    pub send_buffer_age: Duration,
    /// Subscribers one worker (one thread, one core) accepts across all classes; more are refused
    /// with [`SfuError::Full`]. Past its core's capacity an SFU does not drop packets but queues
    /// them, and every subscriber's latency grows by seconds (see docs/benchmarks.md, "SFU"):
    /// refusing the next subscriber keeps the others' stream live. 500 fits one core of the
    /// 2-core build machine with headroom for a 1.5 Mbit/s stream.
    pub max_subscribers: usize,
    /// Subscribers of one class one worker serves before the class's further subscribers go to
    /// another worker, which its origin worker hands the class's media (the class spans
    /// workers). The default is [`SfuConfig::max_subscribers`]: a class fills a worker before it
    /// spans, since spanning costs the origin a copy of each frame per span worker.
    pub subscribers_per_worker: usize,
    /// Subscribers one class may hold at once, so one class (or someone who joined it many
    /// times) cannot take the whole pool; more are refused with [`SfuError::ClassFull`]. A class
    /// never holds more than its members either (see [`SfuCore::subscribe_bounded`]).
    pub max_subscribers_per_class: usize,
    /// How long a new peer has to connect (ICE and DTLS up) after the SFU's offer or answer.
    /// A subscriber that never answers, or answers and never connects, is dropped after it and
    /// its slot freed ([`SfuEvent::Disconnected`]); browsers connect within a second or two,
    /// through a TURN relay within a few.
    pub offer_timeout: Duration,
    /// Subscribe requests one peer may make per minute (a burst of that many, then one every
    /// `60 / n` s); more are refused with [`SfuError::RateLimited`]. Each builds a new
    /// connection, the most expensive thing a peer can ask for.
    pub subscribes_per_minute: u32,
    /// Peers that may publish in one class at once (a teacher or two, and students given the
    /// floor). Each adds media sections to every subscriber's connection, so the number is
    /// bounded; so is the number of different publishers a class remembers (four times this),
    /// which starts again when everyone has left the class.
    pub max_publishers_per_class: usize,
    /// Estimate each subscriber's downlink from its transport-wide congestion control feedback
    /// and pick simulcast layers that fit (see [`layers`]); without it only loss moves layers.
    pub bandwidth_estimation: bool,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 0,
            public_ip: None,
            keyframe_min_interval: Duration::from_millis(300),
            stats_interval: Duration::from_secs(1),
            socket_buffer: 4 << 20,
            send_buffer_video: 400,
            send_buffer_age: Duration::from_secs(1),
            max_subscribers: 500,
            subscribers_per_worker: 500,
            max_subscribers_per_class: 250,
            offer_timeout: Duration::from_secs(10),
            subscribes_per_minute: 12,
            max_publishers_per_class: 16,
            bandwidth_estimation: true,
        }
    }
}

impl SfuConfig {
    /// The workers to run: [`SfuConfig::workers`], or one per CPU core when that is 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// Errors returned to the signaling side.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SfuError {
    /// The SDP could not be parsed.
    #[error("invalid SDP: {0}")]
    BadSdp(String),
    /// str0m refused the offer or answer.
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    /// The class has reached [`SfuConfig::max_publishers_per_class`] (or has had four times as
    /// many different publishers).
    #[error("the class already has {0} publishers, the most the SFU takes")]
    TooManyPublishers(usize),
    /// The (class, peer) pair is already connected to the SFU.
    #[error("peer {1} of class {0} is already connected to the SFU")]
    PeerExists(String, String),
    /// No such (class, peer), or it has no offer waiting for an answer.
    #[error("peer {1} of class {0} is unknown or has no pending offer")]
    UnknownPeer(String, String),
    /// The SFU has reached [`SfuConfig::max_subscribers`].
    #[error("the SFU is full ({0} subscribers)")]
    Full(usize),
    /// The class holds as many subscribers as it may: [`SfuConfig::max_subscribers_per_class`],
    /// or as many as it has members.
    #[error("the class already holds {0} SFU subscriptions, the most it may")]
    ClassFull(usize),
    /// The peer asked to subscribe too often ([`SfuConfig::subscribes_per_minute`]).
    #[error("too many subscribe requests: try again in {} s", (.0.as_secs_f64().ceil() as u64).max(1))]
    RateLimited(Duration),
    /// The SFU (or the worker holding the class) has stopped.
    #[error("the SFU has stopped")]
    Stopped,
    /// Binding or configuring the socket failed.
    #[error("SFU socket: {0}")]
    Io(String),
}
