//! A headless WebRTC client on str0m for tests and benchmarks: a publisher that sends synthetic
//! VP8 frames (valid VP8 payload headers, keyframes marked, RTP/VP8 descriptors written by str0m's
//! packetizer) plus Opus-sized audio, and a subscriber that checks what arrives.
//!
//! Each video frame carries a stamp after the VP8 header — a magic, the frame number, the send
//! time and the frame length — and a filler derived from the frame number, so a subscriber can
//! tell a whole, uncorrupted frame from a broken one and measure the end-to-end latency.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{Allowed, SfuError, SfuEvent, SfuHandle};

const MAGIC: &[u8; 4] = b"AULA";
/// Bytes of the stamp after the VP8 header: magic, frame number, send time (µs), length.
const STAMP: usize = 4 + 4 + 8 + 4;
/// Latency samples kept per client.
const MAX_SAMPLES: usize = 200_000;

/// What a synthetic publisher sends.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// Video frames per second.
    pub fps: u32,
    /// Video bitrate in bits per second (frame size = bitrate / 8 / fps; keyframes 4×).
    pub video_bps: u64,
    /// Send 20 ms Opus-sized audio packets too.
    pub audio: bool,
    /// Send a keyframe at least this often (`None`: only the first one and on request).
    pub keyframe_interval: Option<Duration>,
    /// Simulcast layers as (rid, bits per second), lowest first; empty: no simulcast
    /// (`video_bps` applies). Frame numbers of layer *i* carry *i* in their top byte.
    pub simulcast: Vec<(String, u64)>,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        PublisherOptions {
            fps: 30,
            video_bps: 1_500_000,
            audio: true,
            keyframe_interval: None,
            simulcast: Vec::new(),
        }
    }
}

/// Counters of one synthetic client, shared with the test or benchmark.
#[derive(Debug)]
pub struct ClientStats {
    /// ICE and DTLS are up.
    pub connected: AtomicBool,
    /// RTP datagrams received.
    pub rtp_packets: AtomicU64,
    /// RTP datagrams sent.
    pub rtp_sent: AtomicU64,
    /// Bytes of all datagrams received.
    pub bytes: AtomicU64,
    /// Whole video frames received whose stamp and filler check out.
    pub frames: AtomicU64,
    /// Of those, keyframes.
    pub keyframes: AtomicU64,
    /// Video frames that failed the check.
    pub bad_frames: AtomicU64,
    /// Video frames str0m marked as not contiguous (a gap before them).
    pub gaps: AtomicU64,
    /// Audio frames received.
    pub audio_frames: AtomicU64,
    /// Video frames received per simulcast layer (the top byte of the frame number).
    pub layer_frames: [AtomicU64; 4],
    /// The layer of the last video frame received.
    pub last_layer: AtomicU64,
    /// Microseconds from the client's creation to its first keyframe (`u64::MAX`: none yet).
    pub first_keyframe_us: AtomicU64,
    /// Video frames sent (publisher).
    pub frames_sent: AtomicU64,
    /// Keyframes sent (publisher).
    pub keyframes_sent: AtomicU64,
    /// Keyframe requests received (publisher).
    pub keyframe_requests: AtomicU64,
    /// NACKs this client sent (cumulative, from str0m's ingress stats).
    pub nacks_sent: AtomicU64,
    /// NACKs this client received (cumulative, from str0m's egress stats).
    pub nacks_received: AtomicU64,
    /// End-to-end frame latency samples in microseconds (publisher write → subscriber frame).
    pub latencies_us: Mutex<Vec<u32>>,
}

impl ClientStats {
    fn new() -> Self {
        ClientStats {
            connected: AtomicBool::new(false),
            rtp_packets: AtomicU64::new(0),
            rtp_sent: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            keyframes: AtomicU64::new(0),
            bad_frames: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            audio_frames: AtomicU64::new(0),
            layer_frames: Default::default(),
            last_layer: AtomicU64::new(0),
            first_keyframe_us: AtomicU64::new(u64::MAX),
            frames_sent: AtomicU64::new(0),
            keyframes_sent: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            nacks_sent: AtomicU64::new(0),
            nacks_received: AtomicU64::new(0),
            latencies_us: Mutex::new(Vec::new()),
        }
    }

    /// Time from the client's creation to its first keyframe.
    pub fn first_keyframe(&self) -> Option<Duration> {
        match self.first_keyframe_us.load(Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }
}

/// Builds a synthetic VP8 frame: a VP8 payload header (RFC 6386 §9.1: frame tag, and for
/// keyframes the start code and dimensions), then the stamp and the filler.
pub fn vp8_frame(index: u32, keyframe: bool, len: usize, sent_us: u64) -> Vec<u8> {
    let header = if keyframe { 10 } else { 3 };
    let len = len.max(header + STAMP);
    let mut f = Vec::with_capacity(len);
    let first_part = ((len - header) as u32).min(0x7_ffff);
    // Frame tag: bit 0 = 0 for a keyframe, version 0, show_frame = 1, 19-bit first partition size.
    let tag = u32::from(!keyframe) | (1 << 4) | (first_part << 5);
    f.extend_from_slice(&tag.to_le_bytes()[..3]);
    if keyframe {
        f.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        f.extend_from_slice(&1280u16.to_le_bytes());
        f.extend_from_slice(&720u16.to_le_bytes());
    }
    f.extend_from_slice(MAGIC);
    f.extend_from_slice(&index.to_be_bytes());
    f.extend_from_slice(&sent_us.to_be_bytes());
    f.extend_from_slice(&(len as u32).to_be_bytes());
    f.resize(len, index as u8);
    f
}

/// Checks a frame built by [`vp8_frame`]: returns (frame number, send time µs, keyframe).
pub fn check_vp8_frame(f: &[u8]) -> Option<(u32, u64, bool)> {
    let keyframe = f.first()? & 1 == 0;
    let header = if keyframe { 10 } else { 3 };
    let s = f.get(header..header + STAMP)?;
    if &s[..4] != MAGIC || (keyframe && f[3..6] != [0x9d, 0x01, 0x2a]) {
        return None;
    }
    let index = u32::from_be_bytes(s[4..8].try_into().ok()?);
    let sent = u64::from_be_bytes(s[8..16].try_into().ok()?);
    let len = u32::from_be_bytes(s[16..20].try_into().ok()?) as usize;
    if len != f.len() || f[header + STAMP..].iter().any(|b| *b != index as u8) {
        return None;
    }
    Some((index, sent, keyframe))
}

enum Mode {
    Publisher {
        opts: PublisherOptions,
        video: Mid,
        audio: Option<Mid>,
    },
    Subscriber,
}

/// One synthetic peer: a str0m `Rtc` on its own UDP socket.
pub struct Client {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    created: Instant,
    epoch: Instant,
    stats: Arc<ClientStats>,
    loss: Option<RtpLoss>,
    bottleneck: Option<Bottleneck>,
    count_only: bool,
    pending: Option<SdpPendingOffer>,
    /// A subscriber started by [`Client::subscribe`] answers the SFU's later offers itself.
    renegotiation: Option<Renegotiation>,
    mids: (Option<Mid>, Option<Mid>),
}

/// The SFU's notices, for the offers addressed to one subscriber.
struct Renegotiation {
    sfu: SfuHandle,
    class: String,
    peer: String,
    events: broadcast::Receiver<SfuEvent>,
}

/// The next offer the SFU makes to this subscriber; pending forever without renegotiation.
async fn next_offer(r: &mut Option<Renegotiation>) -> Option<String> {
    let Some(r) = r else {
        return std::future::pending().await;
    };
    loop {
        match r.events.recv().await {
            Ok(SfuEvent::Offer { class, peer, sdp }) if class == r.class && peer == r.peer => {
                return Some(sdp)
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

/// A narrow downlink: received RTP waits in a first-in-first-out queue drained at `bps` (which
/// the test may change while it runs) and is
/// dropped when it would wait longer than `max_delay` (a router's buffer). Congestion shows as
/// growing delay first, as on a real link.
struct Bottleneck {
    bps: Arc<AtomicU64>,
    max_delay: Duration,
    queue: std::collections::VecDeque<(Instant, SocketAddr, Vec<u8>)>,
    /// When the last queued datagram leaves the link.
    busy_until: Instant,
}

impl Bottleneck {
    /// Queues a received datagram behind the ones still on the link, or drops it when the buffer
    /// is full.
    fn enqueue(&mut self, source: SocketAddr, data: &[u8]) {
        let now = Instant::now();
        let serialization = data.len() as f64 * 8.0 / self.bps.load(Relaxed) as f64;
        let leaves = self.busy_until.max(now) + Duration::from_secs_f64(serialization);
        if leaves - now <= self.max_delay {
            self.busy_until = leaves;
            self.queue.push_back((leaves, source, data.to_vec()));
        }
    }
}

/// Drops a share of RTP datagrams in both directions (an emulated lossy link; ICE, DTLS and
/// RTCP pass, so the connection itself is not at risk).
struct RtpLoss {
    per_million: u64,
    state: u64,
}

impl RtpLoss {
    fn drop_next(&mut self) -> bool {
        // xorshift64*: deterministic for a given seed.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
        r % 1_000_000 < self.per_million
    }
}

fn is_rtp(d: &[u8]) -> bool {
    // RTCP packet types 192..=223 land in 64..=95 once the marker bit is masked (RFC 5761).
    d.len() > 12 && (128..192).contains(&d[0]) && !(64..96).contains(&(d[1] & 0x7f))
}

impl Client {
    /// Binds a socket on `ip` (port 0). `epoch` is the shared time origin of the latency stamps.
    pub async fn bind(ip: IpAddr, epoch: Instant) -> std::io::Result<Client> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        Client::with_socket(socket, epoch)
    }

    /// A client on a socket bound elsewhere (e.g. inside a network namespace a test created).
    /// Must be called inside the tokio runtime.
    pub fn from_std(socket: std::net::UdpSocket, epoch: Instant) -> std::io::Result<Client> {
        socket.set_nonblocking(true)?;
        Client::with_socket(UdpSocket::from_std(socket)?, epoch)
    }

    fn with_socket(socket: UdpSocket, epoch: Instant) -> std::io::Result<Client> {
        let local = socket.local_addr()?;
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .set_stats_interval(Some(Duration::from_millis(500)))
            .build(now);
        let cand = Candidate::host(local, "udp").map_err(std::io::Error::other)?;
        rtc.add_local_candidate(cand);
        Ok(Client {
            rtc,
            socket,
            local,
            created: now,
            epoch,
            stats: Arc::new(ClientStats::new()),
            loss: None,
            bottleneck: None,
            count_only: false,
            pending: None,
            renegotiation: None,
            mids: (None, None),
        })
    }

    /// Drops `percent` % of RTP datagrams this client sends and receives (seeded, repeatable).
    pub fn with_rtp_loss(mut self, percent: f64, seed: u64) -> Self {
        self.loss = Some(RtpLoss {
            per_million: (percent * 10_000.0) as u64,
            state: seed | 1,
        });
        self
    }

    /// Receives RTP through a bottleneck with a `max_delay` buffer: a first-in-first-out queue
    /// drained at `bps` bits per second (read for every datagram, so the link can widen or narrow
    /// while the client runs), dropping what would wait longer (a router's buffer).
    pub fn with_bottleneck(mut self, bps: Arc<AtomicU64>, max_delay: Duration) -> Self {
        self.bottleneck = Some(Bottleneck {
            bps,
            max_delay,
            queue: std::collections::VecDeque::new(),
            busy_until: Instant::now(),
        });
        self
    }

    /// The client's counters.
    pub fn stats(&self) -> Arc<ClientStats> {
        self.stats.clone()
    }

    /// Counts RTP datagrams without decrypting them (a cheap subscriber for load tests: ICE,
    /// DTLS and RTCP still run through str0m; frames and latency are not measured).
    pub fn count_only(mut self) -> Self {
        self.count_only = true;
        self
    }

    /// The publisher's offer: one send-only video m-line (simulcast when `opts.simulcast` has
    /// layers), plus audio when `opts.audio`.
    pub fn publish_offer(&mut self, opts: &PublisherOptions) -> String {
        let mut api = self.rtc.sdp_api();
        let simulcast = (!opts.simulcast.is_empty()).then(|| {
            let mut s = Simulcast::new();
            for (rid, _) in &opts.simulcast {
                s.add_send_layer(SimulcastLayer::new(rid));
            }
            s
        });
        let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, simulcast);
        let audio = opts
            .audio
            .then(|| api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        let (offer, pending): (SdpOffer, SdpPendingOffer) = api.apply().expect("media to offer");
        self.pending = Some(pending);
        self.mids = (Some(video), audio);
        offer.to_sdp_string()
    }

    /// Applies the answer to [`Client::publish_offer`].
    pub fn accept_answer(&mut self, answer_sdp: &str) -> Result<(), SfuError> {
        let answer =
            SdpAnswer::from_sdp_string(answer_sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| SfuError::Negotiation("no offer pending".into()))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| SfuError::Negotiation(e.to_string()))
    }

    /// Answers an offer (a subscriber's side).
    pub fn answer_offer(&mut self, offer_sdp: &str) -> Result<String, SfuError> {
        let offer =
            SdpOffer::from_sdp_string(offer_sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::Negotiation(e.to_string()))?;
        Ok(answer.to_sdp_string())
    }

    /// Runs as a publisher (after [`Client::publish_offer`] and [`Client::accept_answer`]) until
    /// `shutdown`.
    pub fn spawn_publisher(
        self,
        opts: PublisherOptions,
        shutdown: CancellationToken,
    ) -> Arc<ClientStats> {
        let stats = self.stats();
        let (video, audio) = self.mids;
        let video = video.expect("publish_offer first");
        tokio::spawn(self.run(Mode::Publisher { opts, video, audio }, shutdown));
        stats
    }

    /// Runs as a subscriber (after [`Client::answer_offer`]) until `shutdown`.
    pub fn spawn_subscriber(self, shutdown: CancellationToken) -> Arc<ClientStats> {
        let stats = self.stats();
        tokio::spawn(self.run(Mode::Subscriber, shutdown));
        stats
    }

    /// Publishes through the SFU and runs until `shutdown`.
    pub async fn publish(
        mut self,
        sfu: &SfuHandle,
        class: &str,
        peer: &str,
        opts: PublisherOptions,
        shutdown: CancellationToken,
    ) -> Result<Arc<ClientStats>, SfuError> {
        let offer = self.publish_offer(&opts);
        let answer = sfu.publish(class, peer, &offer, Allowed::ALL).await?;
        self.accept_answer(&answer)?;
        Ok(self.spawn_publisher(opts, shutdown))
    }

    /// Subscribes through the SFU and runs until `shutdown`.
    pub async fn subscribe(
        mut self,
        sfu: &SfuHandle,
        class: &str,
        peer: &str,
        shutdown: CancellationToken,
    ) -> Result<Arc<ClientStats>, SfuError> {
        // Listen before subscribing, so no re-offer is missed.
        let events = sfu.events();
        let offer = sfu.subscribe(class, peer).await?;
        let answer = self.answer_offer(&offer)?;
        sfu.accept_answer(class, peer, &answer).await?;
        self.renegotiation = Some(Renegotiation {
            sfu: sfu.clone(),
            class: class.into(),
            peer: peer.into(),
            events,
        });
        Ok(self.spawn_subscriber(shutdown))
    }

    async fn run(mut self, mut mode: Mode, shutdown: CancellationToken) {
        let mut buf = vec![0u8; 2048];
        let far = Duration::from_secs(3600);
        let mut next_video = Instant::now() + far;
        let mut next_audio = Instant::now() + far;
        let mut last_keyframe: Option<Instant> = None;
        let mut force_keyframe = true;
        let mut frame_no: u32 = 0;
        let mut audio_no: u64 = 0;
        let mut started = false;
        loop {
            let bottleneck_due = self.drain_bottleneck();
            let timeout = match self.drain(&mut force_keyframe).await {
                Some(t) => t,
                None => return,
            };
            if let Mode::Publisher { opts, audio, .. } = &mode {
                if !started && self.stats.connected.load(Relaxed) {
                    started = true;
                    next_video = Instant::now();
                    if audio.is_some() && opts.audio {
                        next_audio = Instant::now();
                    }
                }
            }
            let mut wake = timeout.min(next_video).min(next_audio);
            if let Some(due) = bottleneck_due {
                wake = wake.min(due);
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.close().await;
                    return;
                }
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, source)) => self.receive(source, &buf[..n]),
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                    Err(_) => return,
                },
                Some(offer) = next_offer(&mut self.renegotiation) => {
                    if self.answer_reoffer(&offer).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            let now = Instant::now();
            if let Mode::Publisher { opts, video, audio } = &mut mode {
                if now >= next_video {
                    let due = opts
                        .keyframe_interval
                        .is_some_and(|i| last_keyframe.is_none_or(|t| now - t >= i));
                    let key = force_keyframe || due;
                    if key {
                        force_keyframe = false;
                        last_keyframe = Some(now);
                    }
                    self.write_video(*video, opts, frame_no, key, now);
                    frame_no += 1;
                    next_video += Duration::from_secs(1) / opts.fps;
                    if next_video < now {
                        next_video = now;
                    }
                }
                if let Some(a) = audio {
                    if now >= next_audio {
                        self.write_audio(*a, audio_no, now);
                        audio_no += 1;
                        next_audio += Duration::from_millis(20);
                        if next_audio < now {
                            next_audio = now;
                        }
                    }
                }
            }
            if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                return;
            }
        }
    }

    /// Answers an offer the SFU made on its own (more media sections to receive).
    async fn answer_reoffer(&mut self, offer: &str) -> Result<(), SfuError> {
        let answer = self.answer_offer(offer)?;
        let r = self
            .renegotiation
            .as_ref()
            .expect("an offer came through it");
        r.sfu.accept_answer(&r.class, &r.peer, &answer).await
    }

    /// Says goodbye (RTCP BYE, DTLS close_notify) so the SFU drops this peer at once.
    async fn close(&mut self) {
        if self.rtc.close().is_err() {
            return;
        }
        for _ in 0..32 {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) => {
                    // Close output (BYE, close_notify) is produced on the next timeout.
                    if self
                        .rtc
                        .handle_input(Input::Timeout(Instant::now()))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(_) => return,
            }
            if !self.rtc.is_alive() {
                return;
            }
        }
    }

    fn receive(&mut self, source: SocketAddr, data: &[u8]) {
        if !is_rtp(data) {
            self.deliver(source, data);
            return;
        }
        match &mut self.bottleneck {
            Some(b) => b.enqueue(source, data),
            None => self.deliver_rtp(source, data),
        }
    }

    /// Hands the bottleneck's datagrams whose time has come to str0m; returns when the next
    /// one is due.
    fn drain_bottleneck(&mut self) -> Option<Instant> {
        let now = Instant::now();
        loop {
            let b = self.bottleneck.as_mut()?;
            match b.queue.front() {
                Some((at, _, _)) if *at <= now => {
                    let (_, source, data) = b.queue.pop_front().expect("front exists");
                    self.deliver_rtp(source, &data);
                }
                Some((at, _, _)) => return Some(*at),
                None => return None,
            }
        }
    }

    fn deliver_rtp(&mut self, source: SocketAddr, data: &[u8]) {
        if self.loss.as_mut().is_some_and(|l| l.drop_next()) {
            return;
        }
        self.stats.rtp_packets.fetch_add(1, Relaxed);
        if self.count_only {
            self.stats.bytes.fetch_add(data.len() as u64, Relaxed);
            return;
        }
        self.deliver(source, data);
    }

    fn deliver(&mut self, source: SocketAddr, data: &[u8]) {
        self.stats.bytes.fetch_add(data.len() as u64, Relaxed);
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        let _ = self.rtc.handle_input(input);
    }

    /// Sends everything str0m has queued and handles its events; returns the next timeout, or
    /// `None` when the connection is gone.
    async fn drain(&mut self, force_keyframe: &mut bool) -> Option<Instant> {
        loop {
            if !self.rtc.is_alive() {
                return None;
            }
            match self.rtc.poll_output().ok()? {
                Output::Timeout(t) => return Some(t),
                Output::Transmit(t) => {
                    if is_rtp(&t.contents) && self.loss.as_mut().is_some_and(|l| l.drop_next()) {
                        continue;
                    }
                    if is_rtp(&t.contents) {
                        self.stats.rtp_sent.fetch_add(1, Relaxed);
                    }
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(e) => self.event(e, force_keyframe),
            }
        }
    }

    fn event(&mut self, e: Event, force_keyframe: &mut bool) {
        let s = &self.stats;
        match e {
            Event::Connected => s.connected.store(true, Relaxed),
            Event::KeyframeRequest(_) => {
                s.keyframe_requests.fetch_add(1, Relaxed);
                *force_keyframe = true;
            }
            Event::MediaData(d) => {
                if !d.contiguous {
                    s.gaps.fetch_add(1, Relaxed);
                }
                if d.params.spec().codec.is_audio() {
                    s.audio_frames.fetch_add(1, Relaxed);
                    return;
                }
                let Some((no, sent_us, key)) = check_vp8_frame(&d.data) else {
                    s.bad_frames.fetch_add(1, Relaxed);
                    return;
                };
                s.frames.fetch_add(1, Relaxed);
                let layer = (no >> 24) as usize & 3;
                s.layer_frames[layer].fetch_add(1, Relaxed);
                s.last_layer.store(layer as u64, Relaxed);
                let now = Instant::now();
                if key {
                    s.keyframes.fetch_add(1, Relaxed);
                    let since = (now - self.created).as_micros() as u64;
                    let _ = s
                        .first_keyframe_us
                        .compare_exchange(u64::MAX, since, Relaxed, Relaxed);
                }
                let now_us = (now - self.epoch).as_micros() as u64;
                let lat = now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32;
                let mut l = s.latencies_us.lock().expect("latency lock");
                if l.len() < MAX_SAMPLES {
                    l.push(lat);
                }
            }
            Event::MediaIngressStats(st) => {
                s.nacks_sent.fetch_max(st.nacks, Relaxed);
            }
            Event::MediaEgressStats(st) => {
                s.nacks_received.fetch_max(st.nacks, Relaxed);
            }
            _ => {}
        }
    }

    fn write_video(&mut self, mid: Mid, opts: &PublisherOptions, no: u32, key: bool, now: Instant) {
        let layers: Vec<(Option<Rid>, u64)> = if opts.simulcast.is_empty() {
            vec![(None, opts.video_bps)]
        } else {
            opts.simulcast
                .iter()
                .map(|(rid, bps)| (Some(Rid::from(rid.as_str())), *bps))
                .collect()
        };
        let sent_us = (now - self.epoch).as_micros() as u64;
        let time = MediaTime::new(
            u64::from(no) * 90_000 / u64::from(opts.fps),
            Frequency::NINETY_KHZ,
        );
        for (i, (rid, bps)) in layers.into_iter().enumerate() {
            let Some(mut writer) = self.rtc.writer(mid) else {
                return;
            };
            let Some(pt) = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Vp8)
                .map(|p| p.pt())
            else {
                return;
            };
            if let Some(rid) = rid {
                writer = writer.rid(rid);
            }
            let size = (bps / 8 / u64::from(opts.fps)) as usize;
            let size = if key { size * 4 } else { size };
            let frame = vp8_frame(no & 0x00ff_ffff | (i as u32) << 24, key, size, sent_us);
            if writer.write(pt, now, time, frame).is_ok() && i == 0 {
                self.stats.frames_sent.fetch_add(1, Relaxed);
                if key {
                    self.stats.keyframes_sent.fetch_add(1, Relaxed);
                }
            }
        }
    }

    fn write_audio(&mut self, mid: Mid, no: u64, now: Instant) {
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .map(|p| p.pt())
        else {
            return;
        };
        let time = MediaTime::new(no * 960, Frequency::FORTY_EIGHT_KHZ);
        let _ = writer.write(pt, now, time, vec![0xfc_u8; 80]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_frames_round_trip_and_detect_corruption() {
        let k = vp8_frame(7, true, 4000, 123_456);
        assert_eq!(k.len(), 4000);
        assert_eq!(k[0] & 1, 0, "keyframe bit");
        assert_eq!(check_vp8_frame(&k), Some((7, 123_456, true)));
        let d = vp8_frame(8, false, 100, 9);
        assert_eq!(d[0] & 1, 1);
        assert_eq!(check_vp8_frame(&d), Some((8, 9, false)));
        let mut broken = d.clone();
        broken[60] ^= 1;
        assert_eq!(check_vp8_frame(&broken), None);
        assert_eq!(check_vp8_frame(&d[..99]), None);
    }
}
