//! The sans-IO SFU core: every peer of every class as a str0m [`Rtc`], plus the forwarding
//! rules between them. No sockets and no clock: the caller passes datagrams and the time in
//! ([`SfuCore::handle_receive`], [`SfuCore::handle_timeout`]) and takes datagrams out
//! ([`SfuCore::poll_transmit`]) and the next deadline ([`SfuCore::poll_timeout`]).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::config::CryptoProvider;
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::stats::{MediaEgressStats, MediaIngressStats};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tracing::{debug, info, warn};

use super::keyframe::{KeyframeLimiter, KeyframeReason};
use super::layers::{LayerChooser, LayerPolicy};
use super::{SfuConfig, SfuError};

type PeerKey = u64;

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

/// Counters kept by the core in plain integers; the server exports them as metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// Classes with a connected-or-connecting publisher.
    pub publishers: usize,
    /// Subscribers (all classes).
    pub subscribers: usize,
    /// Datagrams sent to subscribers (RTP, RTX and RTCP).
    pub forwarded_packets: u64,
    /// Bytes of those datagrams.
    pub forwarded_bytes: u64,
    /// Media frames handed to subscribers' packetizers.
    pub forwarded_frames: u64,
    /// Keyframe requests sent to publishers: (subscriber PLI/FIR, new subscriber, loss, layer
    /// switch).
    pub keyframe_requests: [u64; 4],
    /// NACKs received from subscribers (answered by RTX from the send buffer).
    pub nacks_from_subscribers: u64,
    /// NACKs sent to publishers for gaps in their streams.
    pub nacks_to_publishers: u64,
    /// Simulcast layer switches of subscribers (each on a keyframe of the new layer).
    pub layer_switches: u64,
    /// Service time of received batches — from reading the first datagram to handing the last
    /// resulting datagram to the socket — as a log2 histogram: bucket `i` counts times in
    /// `[2^i, 2^(i+1))` µs (bucket 0 also holds 0). The I/O layer records it.
    pub service_time_us: [u64; 24],
}

impl SfuStats {
    /// The `q` quantile (0..=1) of the service-time histogram: the upper bound of its bucket, µs.
    pub fn service_time_quantile(&self, q: f64) -> Option<u64> {
        let total: u64 = self.service_time_us.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.service_time_us.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(1u64 << (i + 1));
            }
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Publisher,
    Subscriber,
}

/// A media section the publisher sends on.
#[derive(Debug)]
struct TrackIn {
    mid: Mid,
    kind: MediaKind,
    slot: usize,
    /// Simulcast layers seen so far with the bytes received on each (ranks them by bitrate);
    /// empty without simulcast.
    layers: Vec<(Rid, u64)>,
    /// One keyframe-request limiter per layer (`None`: no simulcast).
    limiters: Vec<(Option<Rid>, KeyframeLimiter)>,
}

impl TrackIn {
    /// The layers from the lowest to the highest bitrate.
    fn ranked(&self) -> Vec<Rid> {
        let mut l = self.layers.clone();
        l.sort_by_key(|(_, bytes)| *bytes);
        l.into_iter().map(|(r, _)| r).collect()
    }

    fn limiter(
        &mut self,
        rid: Option<Rid>,
        min_interval: std::time::Duration,
    ) -> &mut KeyframeLimiter {
        let i = match self.limiters.iter().position(|(r, _)| *r == rid) {
            Some(i) => i,
            None => {
                self.limiters
                    .push((rid, KeyframeLimiter::new(min_interval)));
                self.limiters.len() - 1
            }
        };
        &mut self.limiters[i].1
    }
}

/// A send-only media section towards a subscriber.
#[derive(Debug)]
struct TrackOut {
    mid: Mid,
    kind: MediaKind,
    slot: usize,
    /// Video is held back until a keyframe so the subscriber's decoder starts cleanly.
    awaiting_keyframe: bool,
    /// The simulcast layer being forwarded (`None`: none yet, or no simulcast).
    layer: Option<Rid>,
    /// Which layer this subscriber should get.
    chooser: LayerChooser,
}

struct Peer {
    class: String,
    id: String,
    role: Role,
    rtc: Rtc,
    next_timeout: Instant,
    pending: Option<SdpPendingOffer>,
    tracks_in: Vec<TrackIn>,
    tracks_out: Vec<TrackOut>,
    connected: bool,
    addrs: Vec<SocketAddr>,
    queued: bool,
    /// The publisher gained m-lines while an offer to this subscriber was outstanding.
    renegotiate: bool,
    /// Last cumulative NACK count per media, to export differences.
    nacks_seen: HashMap<Mid, u64>,
}

#[derive(Default)]
struct Class {
    publisher: Option<PeerKey>,
    subscribers: Vec<PeerKey>,
}

/// The SFU state for all classes.
pub struct SfuCore {
    config: SfuConfig,
    candidate_addr: SocketAddr,
    crypto: Arc<CryptoProvider>,
    peers: HashMap<PeerKey, Peer>,
    next_key: PeerKey,
    by_name: HashMap<(String, String), PeerKey>,
    by_addr: HashMap<SocketAddr, PeerKey>,
    classes: HashMap<String, Class>,
    transmits: VecDeque<Transmit>,
    queue: Vec<PeerKey>,
    scratch: Vec<Event>,
    notices: VecDeque<SfuEvent>,
    stats: SfuStats,
}

impl SfuCore {
    /// A core whose peers all use the ICE host candidate `candidate_addr` (the UDP socket's
    /// advertised address).
    pub fn new(config: SfuConfig, candidate_addr: SocketAddr) -> Self {
        SfuCore {
            config,
            candidate_addr,
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            peers: HashMap::new(),
            next_key: 1,
            by_name: HashMap::new(),
            by_addr: HashMap::new(),
            classes: HashMap::new(),
            transmits: VecDeque::new(),
            queue: Vec::new(),
            scratch: Vec::new(),
            notices: VecDeque::new(),
            stats: SfuStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &SfuStats {
        &self.stats
    }

    fn new_rtc(&self, now: Instant) -> Result<Rtc, SfuError> {
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_crypto_provider(self.crypto.clone())
            .set_stats_interval(Some(self.config.stats_interval))
            .set_send_buffer_video(self.config.send_buffer_video.max(1))
            .build(now);
        let cand = Candidate::host(self.candidate_addr, "udp")
            .map_err(|e| SfuError::Io(format!("host candidate: {e}")))?;
        rtc.add_local_candidate(cand);
        Ok(rtc)
    }

    fn insert_peer(
        &mut self,
        class: &str,
        id: &str,
        role: Role,
        rtc: Rtc,
        now: Instant,
    ) -> PeerKey {
        let key = self.next_key;
        self.next_key += 1;
        self.peers.insert(
            key,
            Peer {
                class: class.to_owned(),
                id: id.to_owned(),
                role,
                rtc,
                next_timeout: now,
                pending: None,
                tracks_in: Vec::new(),
                tracks_out: Vec::new(),
                connected: false,
                addrs: Vec::new(),
                queued: false,
                renegotiate: false,
                nacks_seen: HashMap::new(),
            },
        );
        self.by_name.insert((class.to_owned(), id.to_owned()), key);
        let c = self.classes.entry(class.to_owned()).or_default();
        match role {
            Role::Publisher => {
                c.publisher = Some(key);
                self.stats.publishers += 1;
            }
            Role::Subscriber => {
                c.subscribers.push(key);
                self.stats.subscribers += 1;
            }
        }
        key
    }

    /// The teacher's offer (send-only or send-recv media) in; the SFU's answer out.
    pub fn publish(
        &mut self,
        now: Instant,
        class: &str,
        peer: &str,
        offer_sdp: &str,
    ) -> Result<String, SfuError> {
        let offer =
            SdpOffer::from_sdp_string(offer_sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        if let Some(&key) = self.by_name.get(&(class.to_owned(), peer.to_owned())) {
            let p = self.peers.get_mut(&key).expect("by_name and peers agree");
            if p.role != Role::Publisher {
                return Err(SfuError::PeerExists(class.into(), peer.into()));
            }
            // The publisher renegotiates (e.g. the teacher turns the camera on, or an ICE restart).
            let answer = p
                .rtc
                .sdp_api()
                .accept_offer(offer)
                .map_err(|e| SfuError::Negotiation(e.to_string()))?;
            self.enqueue(key);
            self.run(now);
            return Ok(answer.to_sdp_string());
        }
        if self
            .classes
            .get(class)
            .is_some_and(|c| c.publisher.is_some())
        {
            return Err(SfuError::PublisherExists(class.into()));
        }
        let mut rtc = self.new_rtc(now)?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::Negotiation(e.to_string()))?;
        let key = self.insert_peer(class, peer, Role::Publisher, rtc, now);
        info!(class, peer, "SFU publisher added");
        self.enqueue(key);
        self.run(now);
        Ok(answer.to_sdp_string())
    }

    /// A student subscribes: the SFU's offer (send-only m-lines) out. Complete it with
    /// [`SfuCore::accept_answer`].
    pub fn subscribe(&mut self, now: Instant, class: &str, peer: &str) -> Result<String, SfuError> {
        if self
            .by_name
            .contains_key(&(class.to_owned(), peer.to_owned()))
        {
            return Err(SfuError::PeerExists(class.into(), peer.into()));
        }
        if self.stats.subscribers >= self.config.max_subscribers {
            return Err(SfuError::Full(self.stats.subscribers));
        }
        let (mut video, mut audio) = (self.config.video_slots, self.config.audio_slots);
        if let Some(p) = self.publisher_of(class) {
            let count = |k: MediaKind| p.tracks_in.iter().filter(|t| t.kind == k).count();
            video = video.max(count(MediaKind::Video));
            audio = audio.max(count(MediaKind::Audio));
        }
        let mut rtc = self.new_rtc(now)?;
        let mut tracks_out = Vec::new();
        let mut api = rtc.sdp_api();
        let stream = Some(format!("aula-{class}"));
        for (kind, n) in [(MediaKind::Audio, audio), (MediaKind::Video, video)] {
            for slot in 0..n {
                let mid = api.add_media(kind, Direction::SendOnly, stream.clone(), None, None);
                tracks_out.push(TrackOut {
                    mid,
                    kind,
                    slot,
                    awaiting_keyframe: kind == MediaKind::Video,
                    layer: None,
                    chooser: LayerChooser::default(),
                });
            }
        }
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| SfuError::Negotiation("nothing to offer".into()))?;
        let key = self.insert_peer(class, peer, Role::Subscriber, rtc, now);
        let p = self.peers.get_mut(&key).expect("just inserted");
        p.pending = Some(pending);
        p.tracks_out = tracks_out;
        info!(class, peer, "SFU subscriber added");
        self.enqueue(key);
        self.run(now);
        Ok(offer.to_sdp_string())
    }

    /// The subscriber's answer to the offer from [`SfuCore::subscribe`].
    pub fn accept_answer(
        &mut self,
        now: Instant,
        class: &str,
        peer: &str,
        answer_sdp: &str,
    ) -> Result<(), SfuError> {
        let unknown = || SfuError::UnknownPeer(class.into(), peer.into());
        let key = *self
            .by_name
            .get(&(class.to_owned(), peer.to_owned()))
            .ok_or_else(unknown)?;
        let p = self.peers.get_mut(&key).ok_or_else(unknown)?;
        let pending = p.pending.take().ok_or_else(unknown)?;
        let answer =
            SdpAnswer::from_sdp_string(answer_sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        p.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| SfuError::Negotiation(e.to_string()))?;
        let again = std::mem::take(&mut p.renegotiate);
        self.enqueue(key);
        self.run(now);
        if again {
            self.renegotiate(class);
        }
        Ok(())
    }

    /// Offers the subscribers of `class` the m-lines the publisher has and they lack; each offer
    /// goes out as [`SfuEvent::Offer`] and comes back through [`SfuCore::accept_answer`]. A
    /// subscriber with an offer outstanding is renegotiated once it answers.
    fn renegotiate(&mut self, class: &str) {
        let Some(c) = self.classes.get(class) else {
            return;
        };
        let Some(publisher) = c.publisher.and_then(|k| self.peers.get(&k)) else {
            return;
        };
        let count = |k: MediaKind| publisher.tracks_in.iter().filter(|t| t.kind == k).count();
        let want = [
            (MediaKind::Audio, count(MediaKind::Audio)),
            (MediaKind::Video, count(MediaKind::Video)),
        ];
        let stream = Some(format!("aula-{class}"));
        for s in c.subscribers.clone() {
            let Some(p) = self.peers.get_mut(&s) else {
                continue;
            };
            let missing: Vec<(MediaKind, usize)> = want
                .iter()
                .flat_map(|&(kind, n)| {
                    let have = p.tracks_out.iter().filter(|t| t.kind == kind).count();
                    (have..n).map(move |slot| (kind, slot))
                })
                .collect();
            if missing.is_empty() {
                continue;
            }
            if p.pending.is_some() {
                p.renegotiate = true;
                continue;
            }
            let mut api = p.rtc.sdp_api();
            let mut added = Vec::new();
            for (kind, slot) in missing {
                let mid = api.add_media(kind, Direction::SendOnly, stream.clone(), None, None);
                added.push(TrackOut {
                    mid,
                    kind,
                    slot,
                    awaiting_keyframe: kind == MediaKind::Video,
                    layer: None,
                    chooser: LayerChooser::default(),
                });
            }
            let Some((offer, pending)) = api.apply() else {
                continue;
            };
            p.pending = Some(pending);
            p.tracks_out.extend(added);
            info!(class, peer = p.id, "SFU renegotiates a subscriber");
            self.notices.push_back(SfuEvent::Offer {
                class: class.to_owned(),
                peer: p.id.clone(),
                sdp: offer.to_sdp_string(),
            });
        }
    }

    /// Disconnects and forgets a peer. Returns whether it existed.
    pub fn remove(&mut self, class: &str, peer: &str) -> bool {
        match self.by_name.get(&(class.to_owned(), peer.to_owned())) {
            Some(&key) => {
                self.remove_key(key);
                true
            }
            None => false,
        }
    }

    fn remove_key(&mut self, key: PeerKey) {
        let Some(mut p) = self.peers.remove(&key) else {
            return;
        };
        // Tell the remote side (RTCP BYE, DTLS close_notify) before forgetting the peer.
        if p.rtc.is_alive() && p.rtc.close().is_ok() {
            for _ in 0..32 {
                match p.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => self.transmits.push_back(t),
                    Ok(Output::Event(_)) => {}
                    Ok(Output::Timeout(_)) | Err(_) => break,
                }
                if !p.rtc.is_alive() {
                    break;
                }
            }
        }
        p.rtc.disconnect();
        self.by_name.remove(&(p.class.clone(), p.id.clone()));
        for a in &p.addrs {
            self.by_addr.remove(a);
        }
        if let Some(c) = self.classes.get_mut(&p.class) {
            match p.role {
                Role::Publisher => {
                    c.publisher = None;
                    self.stats.publishers -= 1;
                    // The next publisher's stream must start at a keyframe for everyone.
                    for s in &c.subscribers {
                        if let Some(sp) = self.peers.get_mut(s) {
                            for t in &mut sp.tracks_out {
                                t.awaiting_keyframe = t.kind == MediaKind::Video;
                            }
                        }
                    }
                }
                Role::Subscriber => {
                    c.subscribers.retain(|k| *k != key);
                    self.stats.subscribers -= 1;
                }
            }
            if c.publisher.is_none() && c.subscribers.is_empty() {
                self.classes.remove(&p.class);
            }
        }
        info!(class = p.class, peer = p.id, "SFU peer removed");
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

    /// Drives every peer whose deadline has passed, and deferred keyframe requests.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        for (k, p) in &mut self.peers {
            if p.next_timeout <= now {
                if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                    warn!(class = p.class, peer = p.id, "SFU: timeout failed: {e}");
                    p.rtc.disconnect();
                }
                due.push(*k);
            }
            if p.role == Role::Publisher {
                for i in 0..p.tracks_in.len() {
                    for j in 0..p.tracks_in[i].limiters.len() {
                        let (rid, limiter) = &mut p.tracks_in[i].limiters[j];
                        let rid = *rid;
                        if let Some((kind, reason)) = limiter.poll(now) {
                            send_keyframe_request(p, i, rid, kind, reason, &mut self.stats);
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
            for tr in &p.tracks_in {
                for (_, l) in &tr.limiters {
                    if let Some(d) = l.deadline() {
                        t = Some(t.map_or(d, |t| t.min(d)));
                    }
                }
            }
        }
        t
    }

    /// Records how long a received batch took to turn into sent datagrams.
    pub fn record_service_time(&mut self, d: std::time::Duration) {
        let us = d.as_micros().max(1) as u64;
        let i = (63 - us.leading_zeros() as usize).min(23);
        self.stats.service_time_us[i] += 1;
    }

    /// The next notice for the signaling side.
    pub fn poll_event(&mut self) -> Option<SfuEvent> {
        self.notices.pop_front()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    fn publisher_of(&self, class: &str) -> Option<&Peer> {
        self.peers.get(&self.classes.get(class)?.publisher?)
    }

    fn enqueue(&mut self, key: PeerKey) {
        if let Some(p) = self.peers.get_mut(&key) {
            if !p.queued {
                p.queued = true;
                self.queue.push(key);
            }
        }
    }

    /// Drains the output of every queued peer; events may queue further peers.
    fn run(&mut self, now: Instant) {
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
                        if p.role == Role::Subscriber {
                            self.stats.forwarded_packets += 1;
                            self.stats.forwarded_bytes += t.contents.len() as u64;
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
                self.notices.push_back(SfuEvent::Connected {
                    class: p.class.clone(),
                    peer: p.id.clone(),
                });
                info!(class = p.class, peer = p.id, role = ?p.role, "SFU peer connected");
                if p.role == Role::Subscriber {
                    let class = p.class.clone();
                    let slots: Vec<(usize, usize)> = p
                        .tracks_out
                        .iter()
                        .filter(|t| t.kind == MediaKind::Video)
                        .map(|t| (t.slot, t.chooser.target(usize::MAX)))
                        .collect();
                    for (slot, want) in slots {
                        self.request_keyframe(
                            &class,
                            slot,
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
            Event::MediaAdded(m) if p.role == Role::Publisher && m.direction.is_receiving() => {
                let slot = p.tracks_in.iter().filter(|t| t.kind == m.kind).count();
                p.tracks_in.push(TrackIn {
                    mid: m.mid,
                    kind: m.kind,
                    slot,
                    layers: Vec::new(),
                    limiters: Vec::new(),
                });
                let class = p.class.clone();
                self.renegotiate(&class);
            }
            Event::MediaData(data) if p.role == Role::Publisher => self.forward(key, data, now),
            Event::KeyframeRequest(req) if p.role == Role::Subscriber => {
                let Some(t) = p.tracks_out.iter().find(|t| t.mid == req.mid) else {
                    return;
                };
                let (class, slot) = (p.class.clone(), t.slot);
                let want = match t.layer {
                    Some(rid) => Want::Rid(Some(rid)),
                    None => Want::Rank(t.chooser.target(usize::MAX)),
                };
                self.request_keyframe(
                    &class,
                    slot,
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
                self.stats.nacks_from_subscribers += nacks.saturating_sub(prev);
                if p.role == Role::Subscriber {
                    self.on_loss_report(key, mid, loss.unwrap_or(0.0), now);
                }
            }
            Event::MediaIngressStats(s) => {
                let MediaIngressStats { mid, nacks, .. } = s;
                let prev = p.nacks_seen.insert(mid, nacks).unwrap_or(0);
                self.stats.nacks_to_publishers += nacks.saturating_sub(prev);
            }
            _ => {}
        }
    }

    /// Asks the class's publisher for a keyframe on its video slot `slot` (the layer `want`),
    /// rate-limited per layer.
    fn request_keyframe(
        &mut self,
        class: &str,
        slot: usize,
        want: Want,
        kind: KeyframeRequestKind,
        reason: KeyframeReason,
        now: Instant,
    ) {
        let Some(key) = self.classes.get(class).and_then(|c| c.publisher) else {
            return;
        };
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(i) = p
            .tracks_in
            .iter()
            .position(|t| t.kind == MediaKind::Video && t.slot == slot)
        else {
            return;
        };
        let rid = match want {
            Want::Rid(rid) => rid,
            Want::Rank(r) => {
                let ranked = p.tracks_in[i].ranked();
                if ranked.is_empty() {
                    None
                } else {
                    Some(ranked[r.min(ranked.len() - 1)])
                }
            }
        };
        let min = self.config.keyframe_min_interval;
        if let Some((kind, reason)) = p.tracks_in[i].limiter(rid, min).request(now, kind, reason) {
            send_keyframe_request(p, i, rid, kind, reason, &mut self.stats);
            self.enqueue(key);
        }
    }

    /// A subscriber's receiver report: maybe move it to another simulcast layer.
    fn on_loss_report(&mut self, key: PeerKey, mid: Mid, loss: f32, now: Instant) {
        let Some(p) = self.peers.get(&key) else {
            return;
        };
        let Some(out) = p.tracks_out.iter().find(|t| t.mid == mid) else {
            return;
        };
        let (class, slot) = (p.class.clone(), out.slot);
        let layers = self
            .publisher_of(&class)
            .and_then(|pb| {
                pb.tracks_in
                    .iter()
                    .find(|t| t.kind == MediaKind::Video && t.slot == slot)
            })
            .map_or(0, |t| t.layers.len());
        let policy = LayerPolicy::default();
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(out) = p.tracks_out.iter_mut().find(|t| t.mid == mid) else {
            return;
        };
        if let Some(target) = out.chooser.on_report(loss, layers, &policy) {
            debug!(
                class,
                peer = p.id,
                loss,
                target,
                "SFU: subscriber changes layer"
            );
            self.request_keyframe(
                &class,
                slot,
                Want::Rank(target),
                KeyframeRequestKind::Pli,
                KeyframeReason::LayerSwitch,
                now,
            );
        }
    }

    /// Hands one publisher frame to every subscriber of the class.
    fn forward(&mut self, from: PeerKey, data: MediaData, now: Instant) {
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        let Some(ti) = p.tracks_in.iter().position(|t| t.mid == data.mid) else {
            return;
        };
        let class_id = p.class.clone();
        let track = &mut p.tracks_in[ti];
        let (kind, slot) = (track.kind, track.slot);
        let keyframe = data.is_keyframe();
        if let Some(rid) = data.rid {
            match track.layers.iter_mut().find(|(r, _)| *r == rid) {
                Some((_, bytes)) => *bytes += data.data.len() as u64,
                None => track.layers.push((rid, data.data.len() as u64)),
            }
        }
        let ranked = track.ranked();
        if keyframe {
            let min = self.config.keyframe_min_interval;
            track.limiter(data.rid, min).clear_pending();
        }
        if !data.contiguous && kind == MediaKind::Video {
            self.request_keyframe(
                &class_id,
                slot,
                Want::Rid(data.rid),
                KeyframeRequestKind::Pli,
                KeyframeReason::Loss,
                now,
            );
        }
        let Some(class) = self.classes.get(&class_id) else {
            return;
        };
        let subs = class.subscribers.clone();
        let mut switch_requests = Vec::new();
        for s in subs {
            let Some(sp) = self.peers.get_mut(&s) else {
                continue;
            };
            if !sp.connected {
                continue;
            }
            let Some(out) = sp
                .tracks_out
                .iter_mut()
                .find(|t| t.kind == kind && t.slot == slot)
            else {
                continue;
            };
            if let Some(rid) = data.rid {
                // Simulcast: forward the subscriber's layer; move to the wanted one on its
                // keyframe (the old layer keeps flowing until then).
                let rank = out.chooser.target(ranked.len());
                if out.layer != Some(rid) {
                    if ranked[rank] != rid {
                        continue;
                    }
                    if !keyframe {
                        switch_requests.push(rank);
                        continue;
                    }
                    if out.layer.is_some() {
                        self.stats.layer_switches += 1;
                    }
                    out.layer = Some(rid);
                    out.awaiting_keyframe = false;
                }
            }
            if out.awaiting_keyframe {
                if !keyframe {
                    continue;
                }
                out.awaiting_keyframe = false;
            }
            let mid = out.mid;
            let Some(writer) = sp.rtc.writer(mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                continue;
            };
            if let Err(e) = writer.write(pt, data.network_time, data.time, data.data.clone()) {
                debug!(class = sp.class, peer = sp.id, "SFU: write failed: {e}");
                continue;
            }
            self.stats.forwarded_frames += 1;
            // str0m packetizes written media on its next timeout: run it now, so the packets
            // leave in this pass instead of a later loop iteration.
            if let Err(e) = sp.rtc.handle_input(Input::Timeout(now)) {
                debug!(class = sp.class, peer = sp.id, "SFU: timeout failed: {e}");
            }
            if !sp.queued {
                sp.queued = true;
                self.queue.push(s);
            }
        }
        switch_requests.sort_unstable();
        switch_requests.dedup();
        for rank in switch_requests {
            self.request_keyframe(
                &class_id,
                slot,
                Want::Rank(rank),
                KeyframeRequestKind::Pli,
                KeyframeReason::LayerSwitch,
                now,
            );
        }
    }
}

/// Which layer a keyframe request is for.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// This exact layer (`None`: no simulcast).
    Rid(Option<Rid>),
    /// The layer of this rank by bitrate (clamped to the top).
    Rank(usize),
}

fn send_keyframe_request(
    p: &mut Peer,
    track: usize,
    rid: Option<Rid>,
    kind: KeyframeRequestKind,
    reason: KeyframeReason,
    stats: &mut SfuStats,
) {
    let mid = p.tracks_in[track].mid;
    let Some(mut writer) = p.rtc.writer(mid) else {
        return;
    };
    match writer.request_keyframe(rid, kind) {
        Ok(()) => {
            let i = match reason {
                KeyframeReason::Subscriber => 0,
                KeyframeReason::NewSubscriber => 1,
                KeyframeReason::Loss => 2,
                KeyframeReason::LayerSwitch => 3,
            };
            stats.keyframe_requests[i] += 1;
        }
        Err(e) => debug!(
            class = p.class,
            peer = p.id,
            "SFU: keyframe request failed: {e}"
        ),
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
