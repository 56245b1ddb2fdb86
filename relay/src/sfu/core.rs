//! The sans-IO SFU core: every peer of every class as a str0m [`Rtc`], plus the forwarding
//! rules between them. No sockets and no clock: the caller passes datagrams and the time in
//! ([`SfuCore::handle_receive`], [`SfuCore::handle_timeout`]) and takes datagrams out
//! ([`SfuCore::poll_transmit`]) and the next deadline ([`SfuCore::poll_timeout`]).
//!
//! Publishing and subscribing ([`SfuCore::publish`], [`SfuCore::subscribe`] and
//! [`SfuCore::accept_answer`]) are in `negotiate.rs`, the peers' tables in `peers.rs`, the
//! per-packet path in `forward.rs`, layer choice by loss and bandwidth in `bandwidth.rs`, and
//! keyframe requests in `keyframe.rs`.
//!
//! # Driving it
//!
//! The I/O layer ([`super::server`] with tokio and `sendmmsg`) does no more than this blocking
//! loop: feed datagrams and the time in, send what comes out, wake at the core's deadline.
//!
//! ```no_run
//! use std::io::ErrorKind;
//! use std::net::UdpSocket;
//! use std::time::{Duration, Instant};
//!
//! use aula_relay::sfu::{Allowed, SfuConfig, SfuCore, SfuEvent};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let socket = UdpSocket::bind("192.0.2.10:3479")?;
//! // Every peer's ICE candidate: the address browsers send their media to.
//! let mut core = SfuCore::new(SfuConfig::default(), socket.local_addr()?);
//!
//! // From signaling: a publisher's offer in, the SFU's answer back to the browser.
//! # let offer_sdp = "";
//! let answer = core.publish(Instant::now(), "class-1", "teacher", offer_sdp, Allowed::ALL)?;
//! # drop(answer);
//!
//! let mut buf = [0u8; 2048];
//! loop {
//!     while let Some(t) = core.poll_transmit() {
//!         socket.send_to(&t.contents, t.destination)?;
//!     }
//!     while let Some(event) = core.poll_event() {
//!         // Offers to relay to subscribers, peers connected or dropped: tell signaling.
//!         if let SfuEvent::Disconnected { class, peer } = event {
//!             println!("{peer} of {class} left the SFU");
//!         }
//!     }
//!     // Sleep until a datagram arrives or the core's next deadline passes.
//!     let now = Instant::now();
//!     let deadline = core.poll_timeout().unwrap_or(now + Duration::from_secs(1));
//!     let wait = deadline.saturating_duration_since(now);
//!     socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
//!     match socket.recv_from(&mut buf) {
//!         Ok((n, from)) => {
//!             core.handle_receive(Instant::now(), from, &buf[..n]);
//!         }
//!         Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
//!         Err(e) => return Err(e.into()),
//!     }
//!     let now = Instant::now();
//!     if core.poll_timeout().is_some_and(|t| t <= now) {
//!         core.handle_timeout(now);
//!     }
//! }
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::bwe::{Bitrate, BweKind};
use str0m::config::CryptoProvider;
use str0m::media::{KeyframeRequestKind, MediaKind};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::stats::{MediaEgressStats, MediaIngressStats};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tracing::{debug, info, trace, warn};

use super::bandwidth::{reprobe, BWE_START_BPS};
use super::keyframe::{send_keyframe_request, KeyframeReason, Want};
use super::limits::RequestRate;
use super::peers::{Class, Peer, PeerKey, PeerKind, Role};
use super::span::{SpanMessage, Spans};
pub use super::stats::{Counter, SfuStats};
pub use super::tracks::Allowed;
use super::tracks::{add_track_in, Source, TrackIn};
use super::{SfuConfig, SfuError};

/// What the SFU tells the signaling side about a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// ICE and DTLS are up: media can flow.
    Connected {
        /// The class.
        class: String,
        /// The peer id.
        peer: String,
    },
    /// The SFU offers a subscriber more media (the publisher added m-lines, e.g. a camera next
    /// to the screen). Relay it to the browser and pass its answer to `accept_answer`.
    Offer {
        /// The class.
        class: String,
        /// The peer id.
        peer: String,
        /// The SFU's offer.
        sdp: String,
    },
    /// The SFU dropped the peer on its own (ICE consent lost, DTLS closed by the remote side, or
    /// an error); not sent for [`SfuCore::remove`]. Signaling should tell the browser, which may
    /// subscribe again or fall back to a direct connection.
    Disconnected {
        /// The class.
        class: String,
        /// The peer id.
        peer: String,
    },
}

/// The SFU state for all classes.
pub struct SfuCore {
    pub(super) config: SfuConfig,
    pub(super) candidate_addr: SocketAddr,
    pub(super) crypto: Arc<CryptoProvider>,
    pub(super) peers: HashMap<PeerKey, Peer>,
    pub(super) next_key: PeerKey,
    pub(super) by_name: HashMap<(String, String, Role), PeerKey>,
    pub(super) by_addr: HashMap<SocketAddr, PeerKey>,
    pub(super) classes: HashMap<String, Class>,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) queue: Vec<PeerKey>,
    pub(super) scratch: Vec<Event>,
    pub(super) notices: VecDeque<SfuEvent>,
    pub(super) stats: SfuStats,
    pub(super) subscribe_rate: RequestRate,
    /// This worker's number (see [`SfuCore::with_worker`]).
    pub(super) worker: usize,
    /// The classes this worker is the origin of that span other workers.
    pub(super) spans: HashMap<String, Spans>,
    /// Messages for other workers (see [`SfuCore::poll_span`]).
    pub(super) span_out: VecDeque<(usize, SpanMessage)>,
}

impl SfuCore {
    /// A core whose peers all use the ICE host candidate `candidate_addr` (the UDP socket's
    /// advertised address).
    pub fn new(config: SfuConfig, candidate_addr: SocketAddr) -> Self {
        SfuCore {
            candidate_addr,
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            peers: HashMap::new(),
            next_key: PeerKey::FIRST,
            by_name: HashMap::new(),
            by_addr: HashMap::new(),
            classes: HashMap::new(),
            transmits: VecDeque::new(),
            queue: Vec::new(),
            scratch: Vec::new(),
            notices: VecDeque::new(),
            stats: SfuStats::default(),
            subscribe_rate: RequestRate::new(config.subscribes_per_minute),
            worker: 0,
            spans: HashMap::new(),
            span_out: VecDeque::new(),
            config,
        }
    }

    /// The core of worker `index` of a pool (0 when alone): messages to other workers name it.
    pub fn with_worker(mut self, index: usize) -> Self {
        self.worker = index;
        self
    }

    /// The counters so far.
    pub fn stats(&self) -> &SfuStats {
        &self.stats
    }

    pub(super) fn new_rtc(&self, now: Instant, role: Role) -> Result<Rtc, SfuError> {
        let mut builder = Rtc::builder()
            .set_ice_lite(true)
            .set_crypto_provider(self.crypto.clone())
            .set_stats_interval(Some(self.config.stats_interval))
            .set_send_buffer_video(self.config.send_buffer_video.max(1));
        if role == Role::Subscriber && self.config.bandwidth_estimation {
            // Estimates the downlink to the subscriber from its transport-wide congestion
            // control feedback (`Event::EgressBitrateEstimate`). str0m then paces the
            // subscriber's video; it costs CPU, but str0m probes for more bandwidth only on
            // paced streams, and without probing a subscriber moved down for a narrow link never
            // came back up when the link widened (tried; see docs/benchmarks.md, "SFU").
            builder = builder.enable_bwe(Some(Bitrate::bps(BWE_START_BPS)));
        }
        let mut rtc = builder.build(now);
        let cand = Candidate::host(self.candidate_addr, "udp")
            .map_err(|e| SfuError::Io(format!("host candidate: {e}")))?;
        rtc.add_local_candidate(cand);
        Ok(rtc)
    }

    /// A datagram from `source` arrived at `now`. Returns false when no peer claims it.
    pub fn handle_receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> bool {
        let Ok(contents) = data.try_into() else {
            return false;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.candidate_addr,
                contents,
            },
        );
        let key = match self.by_addr.get(&source) {
            Some(k) => *k,
            None => {
                // Only a STUN binding request carrying a peer's ufrag is accepted from a new address.
                let Some((&k, _)) = self.peers.iter().find(|(_, p)| p.rtc.accepts(&input)) else {
                    debug!(%source, "SFU: datagram from an unknown address");
                    return false;
                };
                self.by_addr.insert(source, k);
                if let Some(p) = self.peers.get_mut(&k) {
                    p.addrs.push(source);
                }
                k
            }
        };
        let Some(p) = self.peers.get_mut(&key) else {
            return false;
        };
        if let Err(e) = p.rtc.handle_input(input) {
            warn!(class = p.class, peer = p.id, "SFU: input failed: {e}");
            p.rtc.disconnect();
        }
        self.enqueue(key);
        self.run(now);
        true
    }

    /// Drives every peer whose deadline has passed, and deferred keyframe requests; drops peers
    /// that did not connect in time.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_unconnected(now);
        let mut due = Vec::new();
        for (k, p) in &mut self.peers {
            if let PeerKind::Subscriber(sub) = &mut p.kind {
                if sub.reprobe_at.is_some_and(|at| at <= now)
                    && reprobe(&mut p.rtc, sub, now, &mut self.stats)
                {
                    // Drive it now: the restarted estimator queues its probes on its next timeout.
                    p.next_timeout = now;
                }
            }
            if p.next_timeout <= now {
                if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                    warn!(class = p.class, peer = p.id, "SFU: timeout failed: {e}");
                    p.rtc.disconnect();
                }
                due.push(*k);
            }
            if let PeerKind::Publisher(publishing) = &mut p.kind {
                for track in &mut publishing.tracks_in {
                    let mid = track.mid;
                    for (rid, limiter) in &mut track.limiters {
                        if let Some((kind, reason)) = limiter.poll(now) {
                            let who = (p.class.as_str(), p.id.as_str());
                            let request = (mid, *rid, kind, reason);
                            send_keyframe_request(&mut p.rtc, who, request, &mut self.stats);
                            due.push(*k);
                        }
                    }
                }
            }
        }
        for k in due {
            self.enqueue(k);
        }
        self.run(now);
    }

    /// The earliest time [`SfuCore::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        for p in self.peers.values() {
            t = Some(t.map_or(p.next_timeout, |t| t.min(p.next_timeout)));
            if let Some(at) = p.connect_by {
                t = Some(t.map_or(at, |t| t.min(at)));
            }
            match &p.kind {
                PeerKind::Subscriber(sub) => {
                    if let Some(at) = sub.reprobe_at {
                        t = Some(t.map_or(at, |t| t.min(at)));
                    }
                }
                PeerKind::Publisher(publishing) => {
                    for tr in &publishing.tracks_in {
                        for (_, l) in &tr.limiters {
                            if let Some(d) = l.deadline() {
                                t = Some(t.map_or(d, |t| t.min(d)));
                            }
                        }
                    }
                }
            }
        }
        t
    }

    /// Records how long a received batch took to turn into sent datagrams.
    pub fn record_service_time(&mut self, d: std::time::Duration) {
        self.stats.record_service_time(d);
    }

    /// The next notice for the signaling side.
    pub fn poll_event(&mut self) -> Option<SfuEvent> {
        self.notices.pop_front()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The current session of the publisher a [`Source`] names.
    pub(super) fn publisher_key(&self, class: &str, source: Source) -> Option<PeerKey> {
        self.classes
            .get(class)?
            .publishers
            .get(source.publisher)?
            .session
    }

    /// The publisher track a [`Source`] names, while its publisher is connected (here, or to
    /// the class's origin worker).
    pub(super) fn track_in(&self, class: &str, source: Source) -> Option<&TrackIn> {
        let tracks = match self.publisher_key(class, source) {
            Some(key) => &self.peers.get(&key)?.publishing()?.tracks_in,
            None => self
                .classes
                .get(class)?
                .publishers
                .get(source.publisher)?
                .relayed
                .as_ref()?,
        };
        tracks
            .iter()
            .find(|t| t.kind == source.kind && t.index == source.index)
    }

    pub(super) fn enqueue(&mut self, key: PeerKey) {
        if let Some(p) = self.peers.get_mut(&key) {
            if !p.queued {
                p.queued = true;
                self.queue.push(key);
            }
        }
    }

    /// Drains the output of every queued peer; events may queue further peers.
    pub(super) fn run(&mut self, now: Instant) {
        let mut dead = Vec::new();
        while let Some(key) = self.queue.pop() {
            let mut events = std::mem::take(&mut self.scratch);
            let Some(p) = self.peers.get_mut(&key) else {
                continue;
            };
            p.queued = false;
            loop {
                if !p.rtc.is_alive() {
                    dead.push(key);
                    break;
                }
                match p.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => {
                        p.next_timeout = t;
                        break;
                    }
                    Ok(Output::Transmit(t)) => {
                        if let PeerKind::Subscriber(_) = p.kind {
                            self.stats[Counter::ForwardedPackets] += 1;
                            self.stats[Counter::ForwardedBytes] += t.contents.len() as u64;
                        }
                        self.transmits.push_back(t);
                    }
                    Ok(Output::Event(e)) => events.push(e),
                    Err(e) => {
                        warn!(class = p.class, peer = p.id, "SFU: poll failed: {e}");
                        p.rtc.disconnect();
                    }
                }
            }
            for e in events.drain(..) {
                self.on_event(key, e, now);
            }
            self.scratch = events;
        }
        for key in dead {
            if let Some(p) = self.peers.get(&key) {
                self.notices.push_back(SfuEvent::Disconnected {
                    class: p.class.clone(),
                    peer: p.id.clone(),
                });
            }
            self.remove_key(key);
        }
    }

    fn on_event(&mut self, key: PeerKey, event: Event, now: Instant) {
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        match event {
            Event::Connected => {
                p.connected = true;
                p.connect_by = None;
                self.notices.push_back(SfuEvent::Connected {
                    class: p.class.clone(),
                    peer: p.id.clone(),
                });
                info!(class = p.class, peer = p.id, role = ?p.role(), "SFU peer connected");
                if let PeerKind::Subscriber(sub) = &p.kind {
                    let class = p.class.clone();
                    let videos: Vec<(Source, usize)> = sub
                        .tracks_out
                        .iter()
                        .filter(|t| t.source.kind == MediaKind::Video)
                        .map(|t| (t.source, t.chooser.target(usize::MAX)))
                        .collect();
                    for (source, want) in videos {
                        self.request_keyframe(
                            &class,
                            source,
                            Want::Rank(want),
                            KeyframeRequestKind::Pli,
                            KeyframeReason::NewSubscriber,
                            now,
                        );
                    }
                }
            }
            Event::Closed => {
                info!(
                    class = p.class,
                    peer = p.id,
                    "SFU peer closed the connection"
                );
                p.rtc.disconnect();
                self.enqueue(key);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                info!(class = p.class, peer = p.id, "SFU peer disconnected (ICE)");
                p.rtc.disconnect();
                self.enqueue(key);
            }
            // Usually known already from the offer (see `learn_tracks`).
            Event::MediaAdded(m) => {
                let Some(publishing) = p.publishing_mut() else {
                    return;
                };
                if m.direction.is_receiving()
                    && add_track_in(&mut publishing.tracks_in, m.mid, m.kind)
                {
                    let class = p.class.clone();
                    self.renegotiate(&class);
                }
            }
            Event::MediaData(data) => {
                if let PeerKind::Publisher(_) = p.kind {
                    self.forward(key, data, now);
                }
            }
            Event::KeyframeRequest(req) => {
                let Some(sub) = p.subscription() else {
                    return;
                };
                let Some(t) = sub.tracks_out.iter().find(|t| t.mid == req.mid) else {
                    return;
                };
                let (class, source) = (p.class.clone(), t.source);
                let want = match t.layer {
                    Some(rid) => Want::Rid(Some(rid)),
                    None => Want::Rank(t.chooser.target(usize::MAX)),
                };
                self.request_keyframe(
                    &class,
                    source,
                    want,
                    req.kind,
                    KeyframeReason::Subscriber,
                    now,
                );
            }
            Event::MediaEgressStats(s) => {
                let MediaEgressStats {
                    mid, nacks, loss, ..
                } = s;
                let prev = p.nacks_seen.insert(mid, nacks).unwrap_or(0);
                self.stats[Counter::NacksFromSubscribers] += nacks.saturating_sub(prev);
                if let PeerKind::Subscriber(_) = p.kind {
                    self.on_loss_report(key, mid, loss.unwrap_or(0.0), now);
                }
            }
            Event::EgressBitrateEstimate(
                BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. },
            ) => {
                let Some(sub) = p.subscription_mut() else {
                    return;
                };
                sub.bandwidth = Some(estimate.as_u64());
                trace!(class = p.class, peer = p.id, estimate = %estimate, "SFU: bandwidth estimate");
                self.share_bandwidth(key, estimate.as_u64(), now);
            }
            Event::MediaIngressStats(s) => {
                let MediaIngressStats { mid, nacks, .. } = s;
                let prev = p.nacks_seen.insert(mid, nacks).unwrap_or(0);
                self.stats[Counter::NacksToPublishers] += nacks.saturating_sub(prev);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
