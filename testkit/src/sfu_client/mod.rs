//! A headless WebRTC client on str0m for tests and benchmarks: a publisher that sends synthetic
//! VP8 frames (valid VP8 payload headers, keyframes marked, RTP/VP8 descriptors written by str0m's
//! packetizer) plus Opus-sized audio, and a subscriber that checks what arrives.
//!
//! This module holds the client and its negotiation; `frame` builds and checks the synthetic
//! frames, `stats` holds the counters, `link` the emulated link trouble, `run` the I/O loop and
//! `media` what the client writes and checks.

mod frame;
mod link;
mod media;
mod run;
mod stats;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aula_relay::sfu::{Allowed, SfuError, SfuEvent, SfuHandle};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid, Simulcast, SimulcastLayer};
use str0m::{Candidate, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use frame::{check_vp8_frame, vp8_frame};
use link::{Bottleneck, RtpLoss};
pub use stats::ClientStats;

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
        self.loss = Some(RtpLoss::new(percent, seed));
        self
    }

    /// Receives RTP through a bottleneck with a `max_delay` buffer: a first-in-first-out queue
    /// drained at `bps` bits per second (read for every datagram, so the link can widen or narrow
    /// while the client runs), dropping what would wait longer (a router's buffer).
    pub fn with_bottleneck(mut self, bps: Arc<AtomicU64>, max_delay: Duration) -> Self {
        self.bottleneck = Some(Bottleneck::new(bps, max_delay));
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
}
