//! Interop with an independent WebRTC stack: a headless subscriber built on webrtc-rs (the
//! `webrtc` crate, 0.21, over the sans-IO `rtc` crates) receives the synthetic VP8 stream our
//! str0m publisher sends through the SFU.
//!
//! Every other SFU test has str0m on both ends of each connection, so a mistake str0m makes the
//! same way when sending and receiving (SDP, ICE-lite, DTLS roles, SRTP, RTP header extensions,
//! the VP8 payload descriptor) would pass them unnoticed while a browser fails. Here the
//! subscriber's SDP answer, ICE checks, DTLS handshake, SRTP, RTCP feedback and VP8
//! depacketization all come from webrtc-rs, which shares no code with str0m. The test proves
//! that this subscriber connects, gets RTP on the video track, and that webrtc-rs's own VP8
//! depacketizer and sample builder reassemble frames which are whole and intact
//! ([`check_vp8_frame`]), starting at a keyframe and in order.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aula_relay::sfu::{Sfu, SfuConfig};
use aula_testkit::sfu::{wait_for, LOCALHOST};
use aula_testkit::sfu_client::{check_vp8_frame, Client, PublisherOptions};
use rtc::media::io::sample_builder::SampleBuilder;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP8;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription, Registry,
};

const CLASS: &str = "interop";
const PEER: &str = "webrtc-rs";
/// Whole, intact frames the subscriber must reassemble (2 s of a 30 fps stream)…
const WANT_FRAMES: u64 = 60;
/// …within this time of its connection coming up.
const RECEIVE_LIMIT: Duration = Duration::from_secs(15);

/// webrtc-rs reports through a handler: it forwards the states and the remote tracks.
struct Handler {
    gathering: watch::Sender<RTCIceGatheringState>,
    connection: watch::Sender<RTCPeerConnectionState>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathering.send_replace(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.connection.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}

/// What the subscriber got, frame by frame.
#[derive(Debug, Default)]
struct Received {
    rtp_packets: u64,
    /// RTP packets without payload (padding).
    empty_packets: u64,
    /// Frames that passed [`check_vp8_frame`].
    frames: u64,
    keyframes: u64,
    /// Frames that failed it.
    bad_frames: u64,
    /// Packets the sample builder dropped because they made no whole frame.
    dropped_packets: u64,
    first_was_keyframe: Option<bool>,
    last_frame_number: Option<u32>,
    /// Frame numbers that did not follow the previous one (a frame lost on the way).
    skipped: u64,
    /// Frame numbers that went backwards or repeated.
    out_of_order: u64,
    max_latency: Duration,
}

impl Received {
    fn frame(&mut self, data: &[u8], epoch: Instant) {
        let Some((number, sent_us, keyframe)) = check_vp8_frame(data) else {
            self.bad_frames += 1;
            return;
        };
        self.first_was_keyframe.get_or_insert(keyframe);
        match self.last_frame_number {
            Some(last) if number <= last => self.out_of_order += 1,
            Some(last) if number != last + 1 => self.skipped += 1,
            _ => {}
        }
        self.last_frame_number = Some(number);
        self.frames += 1;
        if keyframe {
            self.keyframes += 1;
        }
        let latency = epoch
            .elapsed()
            .saturating_sub(Duration::from_micros(sent_us));
        self.max_latency = self.max_latency.max(latency);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webrtc_rs_subscriber_receives_whole_vp8_frames_through_the_sfu() {
    let shutdown = CancellationToken::new();
    let sfu = Sfu::start(SfuConfig::default(), shutdown.clone())
        .await
        .expect("SFU starts");
    let epoch = Instant::now();

    // The str0m publisher; subscribing once it is connected means the SFU's first offer already
    // has its video m-line (no renegotiation).
    let opts = PublisherOptions {
        audio: false,
        video_bps: 500_000,
        ..PublisherOptions::default()
    };
    let teacher = Client::bind(LOCALHOST, epoch)
        .await
        .unwrap()
        .publish(&sfu, CLASS, "teacher", opts, shutdown.clone())
        .await
        .expect("publish");
    assert!(
        wait_for(Duration::from_secs(10), || teacher.connected.load(Relaxed)).await,
        "the str0m publisher connects to the SFU"
    );

    // The webrtc-rs subscriber, on loopback only, with its default codecs and interceptors
    // (NACK, RTCP reports, transport-wide congestion control feedback).
    let mut media = MediaEngine::default();
    media.register_default_codecs().expect("default codecs");
    let registry =
        register_default_interceptors(Registry::new(), &mut media).expect("interceptors");
    let (gathering_tx, mut gathering) = watch::channel(RTCIceGatheringState::New);
    let (connection_tx, mut connection) = watch::channel(RTCPeerConnectionState::New);
    let (tracks_tx, mut tracks) = mpsc::unbounded_channel();
    let pc = PeerConnectionBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Handler {
            gathering: gathering_tx,
            connection: connection_tx,
            tracks: tracks_tx,
        }))
        .with_udp_addrs(vec!["127.0.0.1:0"])
        .build()
        .await
        .expect("webrtc-rs peer connection");

    // The SFU offers; webrtc-rs answers with its candidates inside (the SFU is ICE-lite and
    // takes no trickled candidates).
    let offer = sfu.subscribe(CLASS, PEER).await.expect("SFU offer");
    pc.set_remote_description(RTCSessionDescription::offer(offer).expect("offer parses"))
        .await
        .expect("webrtc-rs accepts the SFU's offer");
    let answer = pc.create_answer(None).await.expect("answer");
    pc.set_local_description(answer)
        .await
        .expect("local description");
    timeout(
        Duration::from_secs(5),
        gathering.wait_for(|s| *s == RTCIceGatheringState::Complete),
    )
    .await
    .expect("ICE gathering completes within 5 s")
    .expect("handler alive");
    let answer = pc.local_description().await.expect("answer set").sdp;
    assert!(
        answer.contains("a=candidate:") && answer.contains("127.0.0.1"),
        "the answer carries a loopback host candidate:\n{answer}"
    );
    sfu.accept_answer(CLASS, PEER, &answer)
        .await
        .expect("the SFU accepts webrtc-rs's answer");

    // ICE + DTLS up.
    let started = Instant::now();
    let state = *timeout(
        Duration::from_secs(10),
        connection.wait_for(|s| {
            matches!(
                s,
                RTCPeerConnectionState::Connected
                    | RTCPeerConnectionState::Failed
                    | RTCPeerConnectionState::Closed
            )
        }),
    )
    .await
    .expect("the connection settles within 10 s")
    .expect("handler alive");
    assert_eq!(state, RTCPeerConnectionState::Connected);
    let connect_time = started.elapsed();

    // The video track (the SFU may offer a data channel too; the publisher sends no audio).
    let track = timeout(Duration::from_secs(10), async {
        while let Some(track) = tracks.recv().await {
            if track.kind().await == RtpCodecKind::Video {
                return Some(track);
            }
        }
        None
    })
    .await
    .expect("a video track within 10 s")
    .expect("handler alive");

    // Reassemble frames with webrtc-rs's VP8 depacketizer (RFC 7741 payload descriptor) and
    // sample builder (a frame ends at the marker bit, starts at S=1).
    let mut builder = SampleBuilder::new(512, Vp8Packet::default(), 90_000);
    let mut rx = Received::default();
    let mut codec = None;
    let deadline = tokio::time::Instant::now() + RECEIVE_LIMIT;
    while rx.frames < WANT_FRAMES {
        let event = match tokio::time::timeout_at(deadline, track.poll()).await {
            Ok(Some(event)) => event,
            Ok(None) | Err(_) => break,
        };
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        if codec.is_none() {
            codec = track.codec(packet.header.ssrc).await;
        }
        rx.rtp_packets += 1;
        if packet.payload.is_empty() {
            rx.empty_packets += 1;
        }
        builder.push(Instant::now(), packet);
        while let Some(sample) = builder.pop(Instant::now()) {
            rx.dropped_packets += u64::from(sample.prev_dropped_packets);
            rx.frame(&sample.data, epoch);
        }
    }
    let receive_time = started.elapsed();
    let stats = sfu.stats().await.expect("SFU stats");
    println!(
        "webrtc-rs subscriber: connected in {connect_time:?}, codec {:?}, {rx:?} after \
         {receive_time:?}; publisher sent {} frames ({} keyframes); SFU {stats:?}",
        codec.as_ref().map(|c| &c.mime_type),
        teacher.frames_sent.load(Relaxed),
        teacher.keyframes_sent.load(Relaxed),
    );

    let codec = codec.expect("RTP arrived on the video track");
    assert!(
        codec.mime_type.eq_ignore_ascii_case(MIME_TYPE_VP8),
        "negotiated {codec:?}"
    );
    assert!(rx.rtp_packets >= WANT_FRAMES, "{rx:?}");
    assert!(
        rx.frames >= WANT_FRAMES,
        "{WANT_FRAMES} whole frames within {RECEIVE_LIMIT:?}: {rx:?}"
    );
    assert_eq!(
        rx.first_was_keyframe,
        Some(true),
        "video starts at a keyframe: {rx:?}"
    );
    assert_eq!(
        rx.bad_frames, 0,
        "every reassembled frame is intact: {rx:?}"
    );
    assert_eq!(rx.out_of_order, 0, "frames arrive in order: {rx:?}");
    // Loopback loses nothing the NACK/RTX loop would not repair, so no frame goes missing.
    assert_eq!(rx.skipped, 0, "no frame is lost: {rx:?}");

    let _ = timeout(Duration::from_secs(5), pc.close()).await;
    shutdown.cancel();
}
