//! The sans-IO SFU core: every peer of every class as a str0m [`Rtc`], plus the forwarding
//! rules between them. No sockets and no clock: the caller passes datagrams and the time in
//! ([`SfuCore::handle_receive`], [`SfuCore::handle_timeout`]) and takes datagrams out
//! ([`SfuCore::poll_transmit`]) and the next deadline ([`SfuCore::poll_timeout`]).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::config::CryptoProvider;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::stats::{MediaEgressStats, MediaIngressStats};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tracing::{debug, info, trace, warn};

use super::keyframe::KeyframeReason;
use super::layers::{allocate, LayerPolicy};
use super::limits::RequestRate;
pub use super::tracks::Allowed;
use super::tracks::{
    add_send_media, add_track_in, learn_tracks, sdp_fingerprint, Source, TrackIn, TrackOut,
};
use super::{SfuConfig, SfuError};

type PeerKey = u64;

/// The bandwidth estimate a subscriber starts with, before feedback refines it: above the top
/// layers of a screen and a camera, so everyone starts on top (screen sharing favours resolution).
const BWE_START_BPS: u64 = 4_000_000;
/// How often the link of a subscriber that its bandwidth estimate holds below its best layers
/// is probed again (see [`reprobe`]).
const BWE_REPROBE: std::time::Duration = std::time::Duration::from_secs(4);
/// Moving a subscriber up a layer needs this much more than the layer's bitrate.
const BWE_UP_MARGIN: f64 = 1.25;
/// Different publishers a class remembers, as a multiple of the live ones it may have.
const PUBLISHERS_REMEMBERED: usize = 4;
/// What an audio track is assumed to take of a subscriber's bandwidth (Opus at its usual rate,
/// with packet overhead).
const AUDIO_BPS: u64 = 64_000;

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
    /// Times a subscriber's wanted layer was lowered: (loss in its receiver reports, its
    /// bandwidth estimate).
    pub layer_downgrades: [u64; 2],
    /// Times the link of a subscriber held below its best layers by its bandwidth estimate was
    /// probed again.
    pub bandwidth_reprobes: u64,
    /// Peers dropped because they did not connect within [`SfuConfig::offer_timeout`] (mostly
    /// subscribers that never answered the SFU's offer).
    pub expired: u64,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Publisher,
    Subscriber,
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
    /// A publisher's index in [`Class::publishers`].
    publisher: usize,
    /// What a publisher may send on.
    allowed: Allowed,
    /// A subscriber's last bandwidth estimate (bits per second), shared again over its tracks
    /// whenever the publishers' layer bitrates are measured anew.
    bandwidth: Option<u64>,
    /// When to probe the link of a subscriber that its estimate holds below its best layers.
    reprobe_at: Option<Instant>,
    /// The DTLS fingerprint of the remote side's offer: a publisher offering with another one
    /// is a fresh browser connection (the old one failed), not a renegotiation.
    fingerprint: Option<String>,
    /// Until it first connects: when it is dropped unless it has ([`SfuConfig::offer_timeout`]).
    connect_by: Option<Instant>,
    /// A negotiation panicked inside str0m: its state is not to be used again.
    broken: bool,
}

/// Someone who has published in a class (since the class's SFU state was created).
struct ClassPublisher {
    name: String,
    /// The current publishing session, if any.
    session: Option<PeerKey>,
}

#[derive(Default)]
struct Class {
    /// In order of first publishing; never reordered, because subscribers' media sections name
    /// publishers by index ([`Source::publisher`]).
    publishers: Vec<ClassPublisher>,
    subscribers: Vec<PeerKey>,
}

impl Class {
    fn is_empty(&self) -> bool {
        self.subscribers.is_empty() && self.publishers.iter().all(|p| p.session.is_none())
    }
}

/// The SFU state for all classes.
pub struct SfuCore {
    config: SfuConfig,
    candidate_addr: SocketAddr,
    crypto: Arc<CryptoProvider>,
    peers: HashMap<PeerKey, Peer>,
    next_key: PeerKey,
    by_name: HashMap<(String, String, Role), PeerKey>,
    by_addr: HashMap<SocketAddr, PeerKey>,
    classes: HashMap<String, Class>,
    transmits: VecDeque<Transmit>,
    queue: Vec<PeerKey>,
    scratch: Vec<Event>,
    notices: VecDeque<SfuEvent>,
    stats: SfuStats,
    subscribe_rate: RequestRate,
}

impl SfuCore {
    /// A core whose peers all use the ICE host candidate `candidate_addr` (the UDP socket's
    /// advertised address).
    pub fn new(config: SfuConfig, candidate_addr: SocketAddr) -> Self {
        SfuCore {
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
            subscribe_rate: RequestRate::new(config.subscribes_per_minute),
            config,
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &SfuStats {
        &self.stats
    }

    fn new_rtc(&self, now: Instant, role: Role) -> Result<Rtc, SfuError> {
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
                publisher: 0,
                allowed: Allowed::ALL,
                bandwidth: None,
                reprobe_at: None,
                fingerprint: None,
                connect_by: Some(now + self.config.offer_timeout),
                broken: false,
            },
        );
        self.by_name
            .insert((class.to_owned(), id.to_owned(), role), key);
        let c = self.classes.entry(class.to_owned()).or_default();
        match role {
            Role::Publisher => {
                let index = match c.publishers.iter().position(|p| p.name == id) {
                    Some(i) => i,
                    None => {
                        c.publishers.push(ClassPublisher {
                            name: id.to_owned(),
                            session: None,
                        });
                        c.publishers.len() - 1
                    }
                };
                c.publishers[index].session = Some(key);
                self.peers.get_mut(&key).expect("just inserted").publisher = index;
                self.stats.publishers += 1;
            }
            Role::Subscriber => {
                c.subscribers.push(key);
                self.stats.subscribers += 1;
            }
        }
        key
    }

    fn key_of(&self, class: &str, peer: &str, role: Role) -> Option<PeerKey> {
        self.by_name
            .get(&(class.to_owned(), peer.to_owned(), role))
            .copied()
    }

    /// A publisher's offer (send-only or send-recv media) in; the SFU's answer out. Any peer of
    /// a class may publish — the signaling side decides who may — and several at once: each
    /// subscriber gets every other publisher's tracks. `allowed` says what of it is forwarded.
    ///
    /// A second offer from the same peer renegotiates (camera added, ICE restart); an offer
    /// from a new browser connection (another DTLS fingerprint: the old link failed) replaces
    /// the old session, and subscribers pick the new stream up at its first keyframe.
    pub fn publish(
        &mut self,
        now: Instant,
        class: &str,
        peer: &str,
        offer_sdp: &str,
        allowed: Allowed,
    ) -> Result<String, SfuError> {
        super::sdp_check::check(offer_sdp).map_err(SfuError::BadSdp)?;
        let offer =
            SdpOffer::from_sdp_string(offer_sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let fingerprint = sdp_fingerprint(offer_sdp);
        if let Some(key) = self.key_of(class, peer, Role::Publisher) {
            let p = self.peers.get_mut(&key).expect("by_name and peers agree");
            if p.fingerprint == fingerprint {
                let answer = match guarded(|| p.rtc.sdp_api().accept_offer(offer)) {
                    Ok(a) => a,
                    Err(e) => {
                        self.drop_broken(key, &e);
                        return Err(e);
                    }
                };
                learn_tracks(&mut p.tracks_in, offer_sdp);
                self.renegotiate(class);
                self.enqueue(key);
                self.run(now);
                self.set_allowed(now, class, peer, allowed);
                return Ok(answer.to_sdp_string());
            }
            info!(class, peer, "SFU publisher reconnects on a new connection");
            self.remove_key(key);
        }
        if let Some(c) = self.classes.get(class) {
            let live = c.publishers.iter().filter(|p| p.session.is_some()).count();
            let returning = c.publishers.iter().any(|p| p.name == peer);
            // Everyone who ever published keeps media sections at the subscribers (a publisher
            // that comes back reuses them), so the list is bounded too: a few times the limit
            // leaves room for people reloading their page, which makes them new peers.
            let remembered = c.publishers.len();
            let max = self.config.max_publishers_per_class;
            if live >= max || (!returning && remembered >= max * PUBLISHERS_REMEMBERED) {
                return Err(SfuError::TooManyPublishers(live));
            }
        }
        let mut rtc = self.new_rtc(now, Role::Publisher)?;
        let answer = guarded(|| rtc.sdp_api().accept_offer(offer))?;
        let key = self.insert_peer(class, peer, Role::Publisher, rtc, now);
        let p = self.peers.get_mut(&key).expect("just inserted");
        p.allowed = allowed;
        p.fingerprint = fingerprint;
        learn_tracks(&mut p.tracks_in, offer_sdp);
        info!(class, peer, "SFU publisher added");
        self.renegotiate(class);
        self.enqueue(key);
        self.run(now);
        Ok(answer.to_sdp_string())
    }

    /// Changes what a publisher may send on (the teacher granted or revoked a right). Video
    /// allowed again restarts at a keyframe. Returns whether the peer publishes.
    pub fn set_allowed(&mut self, now: Instant, class: &str, peer: &str, allowed: Allowed) -> bool {
        let Some(key) = self.key_of(class, peer, Role::Publisher) else {
            return false;
        };
        let p = self.peers.get_mut(&key).expect("by_name and peers agree");
        let before = std::mem::replace(&mut p.allowed, allowed);
        if allowed.video && !before.video {
            let index = p.publisher;
            let videos: Vec<usize> = p
                .tracks_in
                .iter()
                .filter(|t| t.kind == MediaKind::Video)
                .map(|t| t.index)
                .collect();
            self.restart_video_of(class, index);
            for i in videos {
                let source = Source {
                    publisher: index,
                    kind: MediaKind::Video,
                    index: i,
                };
                self.request_keyframe(
                    class,
                    source,
                    Want::Rank(usize::MAX),
                    KeyframeRequestKind::Pli,
                    KeyframeReason::NewSubscriber,
                    now,
                );
            }
        }
        true
    }

    /// Every subscriber's video from publisher `index` waits for that publisher's next keyframe.
    fn restart_video_of(&mut self, class: &str, index: usize) {
        let Some(c) = self.classes.get(class) else {
            return;
        };
        for s in &c.subscribers {
            if let Some(sp) = self.peers.get_mut(s) {
                for t in &mut sp.tracks_out {
                    if t.source.publisher == index && t.source.kind == MediaKind::Video {
                        t.awaiting_keyframe = true;
                        t.layer = None;
                    }
                }
            }
        }
    }

    /// The publisher tracks of `class` that subscriber `peer` should receive: every current
    /// publisher's but its own.
    fn sources_for(&self, class: &str, peer: &str) -> Vec<(Source, String)> {
        let Some(c) = self.classes.get(class) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (index, cp) in c.publishers.iter().enumerate() {
            if cp.name == peer {
                continue;
            }
            let Some(p) = cp.session.and_then(|k| self.peers.get(&k)) else {
                continue;
            };
            for t in &p.tracks_in {
                let source = Source {
                    publisher: index,
                    kind: t.kind,
                    index: t.index,
                };
                out.push((source, cp.name.clone()));
            }
        }
        out
    }

    /// A peer subscribes: the SFU's offer (send-only m-lines, one per publisher track of the
    /// class) out. Complete it with [`SfuCore::accept_answer`]. With nobody publishing yet the
    /// offer carries a data channel only, to set the connection up; media sections follow by
    /// renegotiation ([`SfuEvent::Offer`]) once someone publishes.
    pub fn subscribe(&mut self, now: Instant, class: &str, peer: &str) -> Result<String, SfuError> {
        self.subscribe_bounded(now, class, peer, usize::MAX)
    }

    /// [`SfuCore::subscribe`] for a class of `members` members (the signaling side knows them):
    /// the class may not hold more subscriptions than that, nor than
    /// [`SfuConfig::max_subscribers_per_class`]. Each peer may ask
    /// [`SfuConfig::subscribes_per_minute`] times a minute.
    pub fn subscribe_bounded(
        &mut self,
        now: Instant,
        class: &str,
        peer: &str,
        members: usize,
    ) -> Result<String, SfuError> {
        if self.key_of(class, peer, Role::Subscriber).is_some() {
            return Err(SfuError::PeerExists(class.into(), peer.into()));
        }
        self.subscribe_rate
            .take(now, class, peer)
            .map_err(SfuError::RateLimited)?;
        if self.stats.subscribers >= self.config.max_subscribers {
            return Err(SfuError::Full(self.stats.subscribers));
        }
        let held = self.classes.get(class).map_or(0, |c| c.subscribers.len());
        if held >= members.min(self.config.max_subscribers_per_class) {
            return Err(SfuError::ClassFull(held));
        }
        let sources = self.sources_for(class, peer);
        let mut rtc = self.new_rtc(now, Role::Subscriber)?;
        let mut api = rtc.sdp_api();
        let tracks_out = add_send_media(&mut api, &sources);
        if tracks_out.is_empty() {
            api.add_channel("aula".into());
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

    /// The subscriber's answer to the offer from [`SfuCore::subscribe`] or [`SfuEvent::Offer`].
    pub fn accept_answer(
        &mut self,
        now: Instant,
        class: &str,
        peer: &str,
        answer_sdp: &str,
    ) -> Result<(), SfuError> {
        let unknown = || SfuError::UnknownPeer(class.into(), peer.into());
        let key = self
            .key_of(class, peer, Role::Subscriber)
            .ok_or_else(unknown)?;
        let p = self.peers.get_mut(&key).ok_or_else(unknown)?;
        let pending = p.pending.take().ok_or_else(unknown)?;
        super::sdp_check::check(answer_sdp).map_err(SfuError::BadSdp)?;
        let answer =
            SdpAnswer::from_sdp_string(answer_sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        if let Err(e) = guarded(|| p.rtc.sdp_api().accept_answer(pending, answer)) {
            self.drop_broken(key, &e);
            return Err(e);
        }
        size_send_buffers(p, &self.config);
        let again = std::mem::take(&mut p.renegotiate);
        self.enqueue(key);
        self.run(now);
        if again {
            self.renegotiate(class);
        }
        Ok(())
    }

    /// Offers the subscribers of `class` the publisher tracks they lack; each offer goes out as
    /// [`SfuEvent::Offer`] and comes back through [`SfuCore::accept_answer`]. A subscriber with
    /// an offer outstanding is renegotiated once it answers.
    fn renegotiate(&mut self, class: &str) {
        let Some(c) = self.classes.get(class) else {
            return;
        };
        for s in c.subscribers.clone() {
            let Some(name) = self.peers.get(&s).map(|p| p.id.clone()) else {
                continue;
            };
            let sources = self.sources_for(class, &name);
            let p = self.peers.get_mut(&s).expect("checked above");
            let missing: Vec<(Source, String)> = sources
                .into_iter()
                .filter(|(src, _)| !p.tracks_out.iter().any(|t| t.source == *src))
                .collect();
            if missing.is_empty() {
                continue;
            }
            if p.pending.is_some() {
                p.renegotiate = true;
                continue;
            }
            let mut api = p.rtc.sdp_api();
            let added = add_send_media(&mut api, &missing);
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

    /// Disconnects and forgets a peer: its publishing and its subscription. Returns whether it
    /// had either.
    pub fn remove(&mut self, class: &str, peer: &str) -> bool {
        let mut found = false;
        for role in [Role::Publisher, Role::Subscriber] {
            if let Some(key) = self.key_of(class, peer, role) {
                self.remove_key(key);
                found = true;
            }
        }
        found
    }

    /// Stops a peer's publishing only (its right to send was revoked); its subscription stays.
    /// Returns whether it published.
    pub fn unpublish(&mut self, class: &str, peer: &str) -> bool {
        match self.key_of(class, peer, Role::Publisher) {
            Some(key) => {
                self.remove_key(key);
                true
            }
            None => false,
        }
    }

    /// Forgets a peer whose str0m state a negotiation left broken (see [`guarded`]), without
    /// touching that state again.
    fn drop_broken(&mut self, key: PeerKey, e: &SfuError) {
        if matches!(e, SfuError::Negotiation(m) if m == BROKEN) {
            if let Some(p) = self.peers.get_mut(&key) {
                p.broken = true;
            }
            self.remove_key(key);
        }
    }

    fn remove_key(&mut self, key: PeerKey) {
        let Some(mut p) = self.peers.remove(&key) else {
            return;
        };
        // Tell the remote side (RTCP BYE, DTLS close_notify) before forgetting the peer.
        if !p.broken && p.rtc.is_alive() && p.rtc.close().is_ok() {
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
        if !p.broken {
            p.rtc.disconnect();
        }
        self.by_name
            .remove(&(p.class.clone(), p.id.clone(), p.role));
        for a in &p.addrs {
            self.by_addr.remove(a);
        }
        match p.role {
            Role::Publisher => {
                if let Some(c) = self.classes.get_mut(&p.class) {
                    c.publishers[p.publisher].session = None;
                }
                self.stats.publishers -= 1;
                // A later session of this publisher must start at a keyframe for everyone.
                self.restart_video_of(&p.class, p.publisher);
            }
            Role::Subscriber => {
                if let Some(c) = self.classes.get_mut(&p.class) {
                    c.subscribers.retain(|k| *k != key);
                }
                self.stats.subscribers -= 1;
            }
        }
        if self.classes.get(&p.class).is_some_and(Class::is_empty) {
            self.classes.remove(&p.class);
        }
        info!(class = p.class, peer = p.id, role = ?p.role, "SFU peer removed");
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
            if p.reprobe_at.is_some_and(|at| at <= now) {
                reprobe(p, now, &mut self.stats);
            }
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

    /// Drops every peer whose [`Peer::connect_by`] has passed: an offer never answered (or an
    /// answer never followed by a connection) must not hold a slot of the pool.
    fn expire_unconnected(&mut self, now: Instant) {
        let expired: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connect_by.is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(p) = self.peers.get(&key) {
                info!(class = p.class, peer = p.id, role = ?p.role, "SFU: peer did not connect in time");
                self.notices.push_back(SfuEvent::Disconnected {
                    class: p.class.clone(),
                    peer: p.id.clone(),
                });
                self.stats.expired += 1;
            }
            self.remove_key(key);
        }
    }

    /// The earliest time [`SfuCore::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        for p in self.peers.values() {
            t = Some(t.map_or(p.next_timeout, |t| t.min(p.next_timeout)));
            if let Some(at) = p.connect_by {
                t = Some(t.map_or(at, |t| t.min(at)));
            }
            if let Some(at) = p.reprobe_at {
                t = Some(t.map_or(at, |t| t.min(at)));
            }
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

    /// The current session of the publisher a [`Source`] names.
    fn publisher_key(&self, class: &str, source: Source) -> Option<PeerKey> {
        self.classes
            .get(class)?
            .publishers
            .get(source.publisher)?
            .session
    }

    /// The publisher track a [`Source`] names, while its publisher is connected.
    fn track_in(&self, class: &str, source: Source) -> Option<&TrackIn> {
        let publisher = self.peers.get(&self.publisher_key(class, source)?)?;
        publisher
            .tracks_in
            .iter()
            .find(|t| t.kind == source.kind && t.index == source.index)
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
                p.connect_by = None;
                self.notices.push_back(SfuEvent::Connected {
                    class: p.class.clone(),
                    peer: p.id.clone(),
                });
                info!(class = p.class, peer = p.id, role = ?p.role, "SFU peer connected");
                if p.role == Role::Subscriber {
                    let class = p.class.clone();
                    let videos: Vec<(Source, usize)> = p
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
            Event::MediaAdded(m)
                if p.role == Role::Publisher
                    && m.direction.is_receiving()
                    && add_track_in(&mut p.tracks_in, m.mid, m.kind) =>
            {
                let class = p.class.clone();
                self.renegotiate(&class);
            }
            Event::MediaData(data) if p.role == Role::Publisher => self.forward(key, data, now),
            Event::KeyframeRequest(req) if p.role == Role::Subscriber => {
                let Some(t) = p.tracks_out.iter().find(|t| t.mid == req.mid) else {
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
                self.stats.nacks_from_subscribers += nacks.saturating_sub(prev);
                if p.role == Role::Subscriber {
                    self.on_loss_report(key, mid, loss.unwrap_or(0.0), now);
                }
            }
            Event::EgressBitrateEstimate(
                BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. },
            ) if p.role == Role::Subscriber => {
                p.bandwidth = Some(estimate.as_u64());
                trace!(class = p.class, peer = p.id, estimate = %estimate, "SFU: bandwidth estimate");
                self.share_bandwidth(key, estimate.as_u64(), now);
            }
            Event::MediaIngressStats(s) => {
                let MediaIngressStats { mid, nacks, .. } = s;
                let prev = p.nacks_seen.insert(mid, nacks).unwrap_or(0);
                self.stats.nacks_to_publishers += nacks.saturating_sub(prev);
            }
            _ => {}
        }
    }

    /// Asks the publisher of `source` (a video track) for a keyframe of the layer `want`,
    /// rate-limited per layer.
    fn request_keyframe(
        &mut self,
        class: &str,
        source: Source,
        want: Want,
        kind: KeyframeRequestKind,
        reason: KeyframeReason,
        now: Instant,
    ) {
        let Some(key) = self.publisher_key(class, source) else {
            return;
        };
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(i) = p
            .tracks_in
            .iter()
            .position(|t| t.kind == MediaKind::Video && t.index == source.index)
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

    /// Asks for a keyframe of the layer of rank `rank` of `source`: a subscriber moves to that
    /// layer on it.
    fn request_layer(&mut self, class: &str, source: Source, rank: usize, now: Instant) {
        let (kind, reason) = (KeyframeRequestKind::Pli, KeyframeReason::LayerSwitch);
        self.request_keyframe(class, source, Want::Rank(rank), kind, reason, now);
    }

    /// A subscriber's receiver report: maybe move it to another simulcast layer.
    fn on_loss_report(&mut self, key: PeerKey, mid: Mid, loss: f32, now: Instant) {
        let Some(p) = self.peers.get(&key) else {
            return;
        };
        let Some(out) = p.tracks_out.iter().find(|t| t.mid == mid) else {
            return;
        };
        let (class, source) = (p.class.clone(), out.source);
        let layers = self.track_in(&class, source).map_or(0, |t| t.layers.len());
        let policy = LayerPolicy::default();
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(out) = p.tracks_out.iter_mut().find(|t| t.mid == mid) else {
            return;
        };
        let before = out.chooser.target(layers);
        if let Some(target) = out.chooser.on_report(loss, layers, &policy) {
            if target < before {
                self.stats.layer_downgrades[0] += 1;
            }
            debug!(
                class,
                peer = p.id,
                loss,
                target,
                "SFU: subscriber changes layer"
            );
            self.request_layer(&class, source, target, now);
        }
    }

    /// A subscriber's bandwidth estimate: shared over its video tracks (screens first), each
    /// moves to the layer that fits; and the estimator is told what all top layers would need,
    /// so it probes for that much.
    fn share_bandwidth(&mut self, key: PeerKey, estimate_bps: u64, now: Instant) {
        let Some(p) = self.peers.get(&key) else {
            return;
        };
        let class = p.class.clone();
        // (track index, its layers' bitrates lowest first) of every video track it receives.
        let mut tracks: Vec<(usize, Vec<u64>)> = Vec::new();
        let (mut audio_bps, mut desired_bps) = (0, 0);
        for (i, out) in p.tracks_out.iter().enumerate() {
            let Some(track) = self.track_in(&class, out.source) else {
                continue;
            };
            if track.kind == MediaKind::Audio {
                audio_bps += AUDIO_BPS;
                continue;
            }
            let rates: Vec<u64> = track.ranked_layers().iter().map(|l| l.rate_bps).collect();
            desired_bps += rates.last().copied().unwrap_or(0);
            tracks.push((i, rates));
        }
        tracks.sort_by_key(|(i, _)| {
            let s = p.tracks_out[*i].source;
            (s.index, s.publisher)
        });
        let current: Vec<usize> = tracks
            .iter()
            .map(|(i, r)| p.tracks_out[*i].chooser.target(r.len()))
            .collect();
        let rates: Vec<Vec<u64>> = tracks.iter().map(|(_, r)| r.clone()).collect();
        let video_bps = estimate_bps.saturating_sub(audio_bps);
        let caps = allocate(video_bps, &rates, &current, BWE_UP_MARGIN);
        let p = self.peers.get_mut(&key).expect("looked up above");
        if desired_bps > 0 {
            // Probe past what moving up to the top layers needs (their bitrate times the
            // margin), or an estimate that stops at the top layers' bitrate never lets a
            // subscriber back up.
            let want = (desired_bps as f64 * BWE_UP_MARGIN * 1.1) as u64 + audio_bps;
            p.rtc.bwe().set_desired_bitrate(Bitrate::bps(want));
        }
        // Held below its best layers: probe the link again in a while, as str0m's own probing
        // can stop while a subscriber sits on a low layer (see `reprobe`).
        let held = tracks
            .iter()
            .zip(&caps)
            .any(|((_, r), &cap)| cap + 1 < r.len());
        p.reprobe_at = held.then(|| p.reprobe_at.unwrap_or(now + BWE_REPROBE));
        let mut switches = Vec::new();
        for ((i, rates), cap) in tracks.iter().zip(caps) {
            let layers = rates.len();
            let out = &mut p.tracks_out[*i];
            let before = out.chooser.target(layers);
            if let Some(target) = out.chooser.set_bandwidth_cap(cap, layers) {
                if target < before {
                    self.stats.layer_downgrades[1] += 1;
                }
                debug!(
                    class,
                    peer = p.id,
                    estimate_bps,
                    target,
                    "SFU: bandwidth moves a layer"
                );
                switches.push((out.source, target));
            }
        }
        for (source, target) in switches {
            self.request_layer(&class, source, target, now);
        }
    }

    /// Layer bitrates moved: shares each subscriber's last estimate again.
    fn reshare_bandwidth(&mut self, class: &str, now: Instant) {
        let Some(c) = self.classes.get(class) else {
            return;
        };
        let estimates: Vec<(PeerKey, u64)> = c
            .subscribers
            .iter()
            .filter_map(|k| Some((*k, self.peers.get(k)?.bandwidth?)))
            .collect();
        for (key, bps) in estimates {
            self.share_bandwidth(key, bps, now);
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
        let kind = track.kind;
        if !p.allowed.kind(kind) {
            return;
        }
        let source = Source {
            publisher: p.publisher,
            kind,
            index: track.index,
        };
        let keyframe = data.is_keyframe();
        let rates_changed = match data.rid {
            Some(rid) => track.count(rid, data.data.len() as u64, now),
            None => false,
        };
        let ranked = track.ranked();
        if keyframe {
            let min = self.config.keyframe_min_interval;
            track.limiter(data.rid, min).clear_pending();
        }
        if !data.contiguous && kind == MediaKind::Video {
            self.request_keyframe(
                &class_id,
                source,
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
            let Some(out) = sp.tracks_out.iter_mut().find(|t| t.source == source) else {
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
            self.enqueue(s);
        }
        if rates_changed {
            self.reshare_bandwidth(&class_id, now);
        }
        switch_requests.sort_unstable();
        switch_requests.dedup();
        for rank in switch_requests {
            self.request_layer(&class_id, source, rank, now);
        }
    }
}

/// The error of a negotiation that panicked inside str0m.
const BROKEN: &str = "the SDP broke the negotiation";

/// Runs one str0m negotiation step on client SDP, turning a panic into an error: SDP that passed
/// [`super::sdp_check`] may still hit one of str0m's internal assertions, and a panic here would
/// stop the SFU for every class. The caller must drop the peer's `Rtc` after such an error.
fn guarded<T, E: std::fmt::Display>(f: impl FnOnce() -> Result<T, E>) -> Result<T, SfuError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| SfuError::Negotiation(e.to_string())),
        Err(_) => {
            warn!("SFU: client SDP made the WebRTC stack panic; the peer is dropped");
            Err(SfuError::Negotiation(BROKEN.into()))
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

/// Bounds the retransmission buffer of each video stream str0m created for a subscriber by age
/// as well as by count ([`SfuConfig::send_buffer_age`]); str0m's SDP mode sets only the count.
fn size_send_buffers(p: &mut Peer, config: &SfuConfig) {
    // str0m's default share of retransmissions over which queued resends are dropped.
    const RTX_RATIO_CAP: Option<f32> = Some(0.15);
    for out in &mut p.tracks_out {
        if out.send_buffer_sized || out.source.kind != MediaKind::Video {
            continue;
        }
        if let Some(tx) = p.rtc.direct_api().stream_tx_by_mid(out.mid, None) {
            tx.set_rtx_cache(
                config.send_buffer_video.max(1),
                config.send_buffer_age,
                RTX_RATIO_CAP,
            );
            out.send_buffer_sized = true;
        }
    }
}

/// Probes again the link of a subscriber its bandwidth estimate holds below its best layers.
///
/// str0m probes on its own only while the subscriber is sent much less than its estimate, at
/// most every 5 s, and a probe can be spoiled (behind a draining queue its packets arrive in a
/// burst, which the estimator rightly rejects): a subscriber on the low layer whose link had
/// widened was seen to stay there for half a minute. Restarting the estimator at its current
/// estimate makes str0m send its start-up probes again (3× and 6× the estimate, 15 ms each): on
/// a link that is still narrow they measure what it carries and nothing moves; on a wider one
/// the estimate jumps and the subscriber goes back up.
fn reprobe(p: &mut Peer, now: Instant, stats: &mut SfuStats) {
    p.reprobe_at = Some(now + BWE_REPROBE);
    if let Some(bps) = p.bandwidth {
        p.rtc.bwe().reset(Bitrate::bps(bps));
        stats.bandwidth_reprobes += 1;
        // Drive it now: the restarted estimator queues its probes on its next timeout.
        p.next_timeout = now;
    }
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
