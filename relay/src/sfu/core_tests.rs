//! The core without sockets or a real clock: str0m peers and the [`SfuCore`] exchange datagrams
//! through an in-memory network while a simulated clock advances from deadline to deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid, Rid, Simulcast,
    SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::Role;
use crate::sfu::{Allowed, SfuConfig, SfuError};
use crate::sfu::{Counter, SfuCore};
use aula_testkit::sfu_client::{check_vp8_frame, vp8_frame};

const SFU_ADDR: &str = "10.0.0.1:5000";

struct Peer {
    name: String,
    publishing: bool,
    rtc: Rtc,
    addr: SocketAddr,
    /// Publisher: the next frame's number (each publisher numbers from its own base), and
    /// whether the next frame must be a keyframe.
    frame_no: u32,
    force_keyframe: bool,
    seen_requests: usize,
    /// (frame number, keyframe, arrival) of every checked video frame.
    frames: Vec<(u32, bool, Instant)>,
    keyframe_requests: usize,
    video: Option<Mid>,
    /// Publisher: its simulcast layers as (rid, frame bytes, sending); empty: no simulcast.
    layers: Vec<(Rid, usize, bool)>,
}

impl Peer {
    fn new(name: &str, port: u16, now: Instant) -> Peer {
        let addr: SocketAddr = format!("10.0.0.2:{port}").parse().unwrap();
        let mut rtc = Rtc::builder()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        Peer {
            name: name.to_owned(),
            publishing: false,
            rtc,
            addr,
            frame_no: 0,
            force_keyframe: true,
            seen_requests: 0,
            frames: Vec::new(),
            keyframe_requests: 0,
            video: None,
            layers: Vec::new(),
        }
    }
}

/// An SFU and its peers on a loss-free in-memory network.
struct World {
    t0: Instant,
    now: Instant,
    /// Answer the SFU's re-offers to subscribers (as signaling and the browser would).
    auto_answer: bool,
    sfu: SfuCore,
    peers: Vec<Peer>,
}

impl World {
    fn new() -> World {
        World::with_config(SfuConfig::default())
    }

    fn with_config(config: SfuConfig) -> World {
        let now = Instant::now();
        let config = SfuConfig {
            keyframe_min_interval: Duration::from_millis(500),
            ..config
        };
        World {
            t0: now,
            now,
            auto_answer: false,
            sfu: SfuCore::new(config, SFU_ADDR.parse().unwrap()),
            peers: Vec::new(),
        }
    }

    fn publisher(&mut self) -> usize {
        self.publisher_as("teacher", Allowed::ALL).unwrap()
    }

    /// A peer publishing one video m-line under `name`; its frames are numbered from
    /// `1_000_000 × (its index in the world)`.
    fn publisher_as(&mut self, name: &str, allowed: Allowed) -> Result<usize, SfuError> {
        let index = self.peers.len();
        let mut p = Peer::new(name, 6000 + index as u16, self.now);
        let mut api = p.rtc.sdp_api();
        let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        let answer = self
            .sfu
            .publish(self.now, "c", name, &offer.to_sdp_string(), allowed)?;
        let answer = SdpAnswer::from_sdp_string(&answer).unwrap();
        p.rtc.sdp_api().accept_answer(pending, answer).unwrap();
        p.video = Some(video);
        p.publishing = true;
        p.frame_no = 1_000_000 * index as u32;
        self.peers.push(p);
        Ok(index)
    }

    /// A publisher "teacher" sending one video m-line as simulcast layers of these (rid, frame
    /// bytes), lowest first.
    fn simulcast_publisher(&mut self, layers: &[(&str, usize)]) -> usize {
        let index = self.peers.len();
        let mut p = Peer::new("teacher", 6000 + index as u16, self.now);
        let mut simulcast = Simulcast::new();
        for (rid, _) in layers {
            simulcast.add_send_layer(SimulcastLayer::new(rid));
        }
        let mut api = p.rtc.sdp_api();
        let video = api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            None,
            None,
            Some(simulcast),
        );
        let (offer, pending) = api.apply().unwrap();
        let answer = self
            .sfu
            .publish(
                self.now,
                "c",
                "teacher",
                &offer.to_sdp_string(),
                Allowed::ALL,
            )
            .unwrap();
        let answer = SdpAnswer::from_sdp_string(&answer).unwrap();
        p.rtc.sdp_api().accept_answer(pending, answer).unwrap();
        p.video = Some(video);
        p.publishing = true;
        p.frame_no = 1_000_000 * index as u32;
        p.layers = layers
            .iter()
            .map(|(rid, bytes)| (Rid::from(*rid), *bytes, true))
            .collect();
        self.peers.push(p);
        index
    }

    fn subscriber(&mut self, name: &str) -> usize {
        let mut p = Peer::new(name, 7000 + self.peers.len() as u16, self.now);
        let offer = self.sfu.subscribe(self.now, "c", name).unwrap();
        let offer = SdpOffer::from_sdp_string(&offer).unwrap();
        let answer = p.rtc.sdp_api().accept_offer(offer).unwrap();
        self.sfu
            .accept_answer(self.now, "c", name, &answer.to_sdp_string())
            .unwrap();
        self.peers.push(p);
        self.peers.len() - 1
    }

    /// Frames peer `s` received from the publisher at world index `from`.
    fn frames_from(&self, s: usize, from: usize) -> Vec<(u32, bool, Instant)> {
        let base = 1_000_000 * from as u32;
        self.peers[s]
            .frames
            .iter()
            .filter(|f| f.0 >= base && f.0 < base + 1_000_000)
            .copied()
            .collect()
    }

    /// Delivers every datagram and event until all sides wait for time to pass.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.sfu.poll_transmit() {
                moved = true;
                if let Some(p) = self.peers.iter_mut().find(|p| p.addr == t.destination) {
                    let input = Input::Receive(
                        self.now,
                        Receive {
                            proto: Protocol::Udp,
                            source: t.source,
                            destination: t.destination,
                            contents: (&t.contents[..]).try_into().unwrap(),
                        },
                    );
                    p.rtc.handle_input(input).unwrap();
                }
            }
            let mut to_sfu = Vec::new();
            for p in &mut self.peers {
                loop {
                    match p.rtc.poll_output().unwrap() {
                        Output::Timeout(_) => break,
                        Output::Transmit(t) => to_sfu.push((t.source, t.contents.to_vec())),
                        Output::Event(Event::MediaData(d)) => {
                            if let Some((no, key)) =
                                check_vp8_frame(&d.data).map(|(n, _, k)| (n, k))
                            {
                                p.frames.push((no, key, self.now));
                            }
                        }
                        Output::Event(Event::KeyframeRequest(_)) => p.keyframe_requests += 1,
                        Output::Event(Event::MediaAdded(m)) if m.kind == MediaKind::Video => {
                            p.video = Some(m.mid);
                        }
                        Output::Event(_) => {}
                    }
                }
            }
            for (src, data) in to_sfu {
                moved = true;
                self.sfu.handle_receive(self.now, src, &data);
            }
            if self.auto_answer {
                while let Some(e) = self.sfu.poll_event() {
                    let super::SfuEvent::Offer { peer, sdp, .. } = e else {
                        continue;
                    };
                    let s = self
                        .peers
                        .iter_mut()
                        .find(|p| p.name == peer && !p.publishing)
                        .expect("an offer to a subscriber of the world");
                    let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                    let answer = s.rtc.sdp_api().accept_offer(offer).unwrap();
                    self.sfu
                        .accept_answer(self.now, "c", &peer, &answer.to_sdp_string())
                        .unwrap();
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Advances the clock by `d` in 1 ms steps, firing every due timer; the publisher (peer 0)
    /// writes a 30 fps VP8 stream, a keyframe first and then only when asked for one.
    fn run_for(&mut self, d: Duration) {
        for _ in 0..d.as_millis() {
            self.now += Duration::from_millis(1);
            for p in &mut self.peers {
                p.rtc.handle_input(Input::Timeout(self.now)).unwrap();
            }
            if self.sfu.poll_timeout().is_some_and(|t| t <= self.now) {
                self.sfu.handle_timeout(self.now);
            }
            let ms = (self.now - self.t0).as_millis() as u64;
            if ms.is_multiple_of(33) {
                for i in 0..self.peers.len() {
                    let p = &self.peers[i];
                    if p.publishing && p.rtc.is_connected() {
                        self.write_frame(i);
                    }
                }
            }
            self.settle();
        }
    }

    /// Publisher `i` writes its next frame: a keyframe first and then only when asked for one.
    fn write_frame(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.peers[i];
        let requests = p.keyframe_requests;
        let key = std::mem::take(&mut p.force_keyframe) || requests > p.seen_requests;
        let no = p.frame_no;
        p.frame_no += 1;
        let writer = p.rtc.writer(p.video.unwrap()).unwrap();
        let pt = writer
            .payload_params()
            .find(|c| c.spec().codec == Codec::Vp8)
            .unwrap()
            .pt();
        let time = MediaTime::new(u64::from(no) * 3000, Frequency::NINETY_KHZ);
        if p.layers.is_empty() {
            writer
                .write(pt, now, time, vp8_frame(no, key, 3000, 0))
                .unwrap();
        } else {
            // Every layer that is sending, each frame numbered after it: the layer's index
            // in the top byte.
            let mid = p.video.unwrap();
            for (i, (rid, bytes, sending)) in p.layers.clone().into_iter().enumerate() {
                if !sending {
                    continue;
                }
                let frame = vp8_frame(no | (i as u32) << 24, key, bytes, 0);
                let writer = p.rtc.writer(mid).unwrap().rid(rid);
                writer.write(pt, now, time, frame).unwrap();
            }
        }
        p.seen_requests = requests;
    }
}

#[test]
fn frames_reach_every_subscriber_and_a_late_joiner_gets_a_keyframe_within_a_second() {
    let mut w = World::new();
    w.publisher();
    let a = w.subscriber("a");
    let b = w.subscriber("b");
    w.settle();
    w.run_for(Duration::from_secs(2));
    for s in [a, b] {
        let f = &w.peers[s].frames;
        assert!(f.len() >= 40, "subscriber {s} got {} frames", f.len());
        assert!(f[0].1, "video starts at a keyframe");
    }
    let late = w.subscriber("late");
    let joined = w.now;
    w.run_for(Duration::from_secs(1));
    let first = w.peers[late]
        .frames
        .first()
        .copied()
        .expect("the late joiner gets frames");
    assert!(first.1, "its first frame is a keyframe");
    assert!(first.2 - joined < Duration::from_secs(1));
    assert!(w.sfu.stats()[Counter::KeyframesForNewSubscriber] >= 1);
    assert_eq!(
        (w.sfu.stats().publishers, w.sfu.stats().subscribers),
        (1, 3)
    );
}

#[test]
fn a_storm_of_subscriber_plis_reaches_the_publisher_rate_limited() {
    let mut w = World::new();
    w.publisher();
    let subs: Vec<usize> = (0..5).map(|i| w.subscriber(&format!("s{i}"))).collect();
    w.settle();
    w.run_for(Duration::from_secs(1));
    let before = w.peers[0].keyframe_requests;
    // Every subscriber sends a PLI every 10 ms for 2 s: 1000 requests.
    for _ in 0..200 {
        for &s in &subs {
            let p = &mut w.peers[s];
            let mid = p.video.expect("the subscriber saw its video m-line");
            let mut writer = p.rtc.writer(mid).unwrap();
            writer
                .request_keyframe(None, KeyframeRequestKind::Pli)
                .unwrap();
        }
        w.run_for(Duration::from_millis(10));
    }
    let got = w.peers[0].keyframe_requests - before;
    // 2 s at one request per 500 ms: 4, plus one at the edge.
    assert!(
        (1..=5).contains(&got),
        "the publisher got {got} keyframe requests"
    );
    assert!(w.sfu.stats()[Counter::KeyframesForSubscriber] >= 1);
}

#[test]
fn a_publisher_adding_a_camera_renegotiates_every_subscriber() {
    let mut w = World::new();
    w.publisher();
    let a = w.subscriber("a");
    w.settle();
    w.run_for(Duration::from_millis(500));
    assert!(!w.peers[a].frames.is_empty());
    while w.sfu.poll_event().is_some() {}

    // The teacher adds a second video m-line (the camera) and re-offers on the same peer id.
    let p = &mut w.peers[0];
    let mut api = p.rtc.sdp_api();
    let camera = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let answer = w
        .sfu
        .publish(w.now, "c", "teacher", &offer.to_sdp_string(), Allowed::ALL)
        .unwrap();
    let answer = SdpAnswer::from_sdp_string(&answer).unwrap();
    w.peers[0]
        .rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .unwrap();
    w.settle();

    // The SFU offers the subscriber the new slot; the subscriber answers through signaling.
    let mut offered = None;
    while let Some(e) = w.sfu.poll_event() {
        if let super::SfuEvent::Offer { class, peer, sdp } = e {
            assert_eq!((class.as_str(), peer.as_str()), ("c", "a"));
            offered = Some(sdp);
        }
    }
    let offer = SdpOffer::from_sdp_string(&offered.expect("an offer for the subscriber")).unwrap();
    let answer = w.peers[a].rtc.sdp_api().accept_offer(offer).unwrap();
    w.sfu
        .accept_answer(w.now, "c", "a", &answer.to_sdp_string())
        .unwrap();
    w.settle();

    // Camera frames (numbered from 100000) now reach the subscriber, starting at a keyframe.
    for i in 0..30u32 {
        w.run_for(Duration::from_millis(33));
        let now = w.now;
        let p = &mut w.peers[0];
        let writer = p.rtc.writer(camera).unwrap();
        let pt = writer
            .payload_params()
            .find(|c| c.spec().codec == Codec::Vp8)
            .unwrap()
            .pt();
        let time = MediaTime::new(u64::from(i) * 3000, Frequency::NINETY_KHZ);
        let frame = vp8_frame(100_000 + i, i == 0 || p.keyframe_requests > 0, 2000, 0);
        writer.write(pt, now, time, frame).unwrap();
    }
    w.settle();
    let camera_frames: Vec<_> = w.peers[a]
        .frames
        .iter()
        .filter(|f| f.0 >= 100_000)
        .collect();
    assert!(
        camera_frames.len() >= 20,
        "{} camera frames",
        camera_frames.len()
    );
    assert!(camera_frames[0].1, "the camera starts at a keyframe");
    // Both video streams towards the subscriber got the age-bounded retransmission buffer.
    let key = w.sfu.key_of("c", "a", Role::Subscriber).unwrap();
    let outs = &w.sfu.peers[&key].subscription().unwrap().tracks_out;
    assert_eq!(outs.len(), 2);
    assert!(outs.iter().all(|t| t.send_buffer_sized));
}

#[test]
fn several_publishers_reach_every_subscriber_but_not_themselves() {
    let mut w = World::new();
    w.auto_answer = true;
    let teacher = w.publisher();
    // A student given the floor publishes and also watches the teacher.
    let student = w.publisher_as("student", Allowed::ALL).unwrap();
    let student_view = w.subscriber("student");
    let other = w.subscriber("other");
    let teacher_view = w.subscriber("teacher");
    w.settle();
    w.run_for(Duration::from_secs(2));
    let got = |w: &World, s, from| w.frames_from(s, from).len();
    assert!(got(&w, other, teacher) >= 40, "other ← teacher");
    assert!(got(&w, other, student) >= 40, "other ← student");
    assert!(got(&w, student_view, teacher) >= 40, "student ← teacher");
    assert!(got(&w, teacher_view, student) >= 40, "teacher ← student");
    assert_eq!(
        got(&w, student_view, student),
        0,
        "nobody gets its own media back"
    );
    assert_eq!(
        got(&w, teacher_view, teacher),
        0,
        "nobody gets its own media back"
    );
    for (s, from) in [(other, teacher), (other, student), (teacher_view, student)] {
        assert!(
            w.frames_from(s, from)[0].1,
            "each stream starts at a keyframe"
        );
    }
    let st = w.sfu.stats();
    assert_eq!((st.publishers, st.subscribers), (2, 3));
}

#[test]
fn a_subscriber_that_arrives_before_anyone_publishes_gets_media_by_renegotiation() {
    let mut w = World::new();
    w.auto_answer = true;
    let early = w.subscriber("early");
    w.settle();
    w.run_for(Duration::from_millis(500));
    assert!(
        w.peers[early].rtc.is_connected(),
        "connects with a data channel only"
    );
    let teacher = w.publisher();
    w.settle();
    w.run_for(Duration::from_secs(1));
    let frames = w.frames_from(early, teacher);
    assert!(frames.len() >= 20, "{} frames", frames.len());
    assert!(frames[0].1);
}

#[test]
fn media_a_publisher_is_not_allowed_to_send_is_not_forwarded() {
    let mut w = World::new();
    w.auto_answer = true;
    let no_video = Allowed {
        audio: true,
        camera: false,
        screen: false,
    };
    // The publisher's only video is its first: the screen. The camera right does not cover it.
    let camera_only = Allowed {
        audio: true,
        camera: true,
        screen: false,
    };
    let student = w.publisher_as("student", camera_only).unwrap();
    let viewer = w.subscriber("viewer");
    w.settle();
    w.run_for(Duration::from_secs(1));
    assert_eq!(
        w.frames_from(viewer, student).len(),
        0,
        "a screen is not forwarded on the camera right"
    );
    assert!(w.sfu.set_allowed(w.now, "c", "student", no_video));
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.frames_from(viewer, student).len(), 0, "video not allowed");

    // The teacher grants the right: the video starts, at a keyframe.
    assert!(w.sfu.set_allowed(w.now, "c", "student", Allowed::ALL));
    w.run_for(Duration::from_secs(1));
    let frames = w.frames_from(viewer, student);
    assert!(frames.len() >= 20, "{} frames once allowed", frames.len());
    assert!(frames[0].1, "starts at a keyframe");

    // Revoked again: nothing more is forwarded, and unpublishing ends the session.
    assert!(w.sfu.set_allowed(w.now, "c", "student", no_video));
    w.run_for(Duration::from_millis(200));
    let before = w.frames_from(viewer, student).len();
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.frames_from(viewer, student).len(), before);
    assert!(w.sfu.unpublish("c", "student"));
    assert!(!w.sfu.unpublish("c", "student"));
    assert_eq!(
        (w.sfu.stats().publishers, w.sfu.stats().subscribers),
        (0, 1)
    );
    assert!(!w.sfu.set_allowed(w.now, "c", "student", Allowed::ALL));
}

#[test]
fn a_publisher_on_a_new_connection_replaces_its_old_session() {
    let mut w = World::new();
    w.auto_answer = true;
    let first = w.publisher();
    let viewer = w.subscriber("viewer");
    w.settle();
    w.run_for(Duration::from_secs(1));
    assert!(w.frames_from(viewer, first).len() >= 20);

    // The teacher's browser lost its link and offers again on a fresh connection (a new DTLS
    // certificate): the SFU swaps the session; the viewer needs no renegotiation.
    w.peers[first].publishing = false;
    let second = w.publisher_as("teacher", Allowed::ALL).unwrap();
    assert_eq!(w.sfu.stats().publishers, 1, "the old session is gone");
    w.settle();
    assert!(w.sfu.poll_event().is_none(), "no re-offer to the viewer");
    w.run_for(Duration::from_secs(1));
    let frames = w.frames_from(viewer, second);
    assert!(
        frames.len() >= 20,
        "{} frames from the new session",
        frames.len()
    );
    assert!(frames[0].1, "the new session starts at a keyframe");
}

#[test]
fn the_number_of_publishers_in_a_class_is_bounded() {
    let mut w = World::with_config(SfuConfig {
        max_publishers_per_class: 2,
        ..SfuConfig::default()
    });
    w.publisher_as("a", Allowed::ALL).unwrap();
    w.publisher_as("b", Allowed::ALL).unwrap();
    assert_eq!(
        w.publisher_as("c", Allowed::ALL).err(),
        Some(SfuError::TooManyPublishers(2))
    );
    // Someone stops publishing: another may start, and the first may come back once there is
    // room again.
    assert!(w.sfu.unpublish("c", "a"));
    w.publisher_as("c", Allowed::ALL).unwrap();
    assert!(w.publisher_as("a", Allowed::ALL).is_err());
    assert!(w.sfu.unpublish("c", "b"));
    w.publisher_as("a", Allowed::ALL).unwrap();
    // Different publishers remembered are bounded (4 × 2 = 8): "a", "b", "c" and five more
    // taking turns with "a" (as someone reloading a page, a new peer each time, would).
    for name in ["d", "e", "f", "g", "h"] {
        assert!(w.sfu.unpublish("c", "a"));
        w.publisher_as(name, Allowed::ALL).unwrap();
        assert!(w.sfu.unpublish("c", name));
        w.publisher_as("a", Allowed::ALL).unwrap();
    }
    assert!(w.sfu.unpublish("c", "a"));
    assert!(matches!(
        w.publisher_as("i", Allowed::ALL),
        Err(SfuError::TooManyPublishers(_))
    ));
    w.publisher_as("b", Allowed::ALL).unwrap();
}

#[test]
fn an_offer_never_answered_expires_and_frees_its_slot_but_a_connected_subscriber_stays() {
    let mut w = World::with_config(SfuConfig {
        max_subscribers: 2,
        offer_timeout: Duration::from_secs(2),
        ..SfuConfig::default()
    });
    w.publisher();
    let ana = w.subscriber("ana");
    // Ben takes the last slot with an offer he never answers.
    w.sfu.subscribe(w.now, "c", "ben").unwrap();
    assert_eq!(
        w.sfu.subscribe(w.now, "other", "carla"),
        Err(SfuError::Full(2))
    );
    w.run_for(Duration::from_millis(1900));
    assert_eq!(w.sfu.stats().subscribers, 2, "not before the timeout");
    w.run_for(Duration::from_millis(200));
    assert_eq!(w.sfu.stats().subscribers, 1, "Ben's offer expired");
    assert_eq!(w.sfu.stats()[Counter::Expired], 1);
    let mut events = Vec::new();
    while let Some(e) = w.sfu.poll_event() {
        events.push(e);
    }
    assert!(events.contains(&super::SfuEvent::Disconnected {
        class: "c".into(),
        peer: "ben".into()
    }));
    // His late answer is refused; a student of another class gets the slot.
    assert_eq!(
        w.sfu.accept_answer(w.now, "c", "ben", "v=0"),
        Err(SfuError::UnknownPeer("c".into(), "ben".into()))
    );
    w.sfu.subscribe(w.now, "other", "carla").unwrap();
    // Ana, connected, still receives long after the timeout.
    let before = w.frames_from(ana, 0).len();
    w.run_for(Duration::from_secs(3));
    assert!(w.frames_from(ana, 0).len() > before + 60);
    assert!(w.sfu.remove("c", "ana"));
}

#[test]
fn a_class_holds_no_more_subscriptions_than_its_members_or_its_cap() {
    let mut w = World::with_config(SfuConfig {
        max_subscribers_per_class: 3,
        ..SfuConfig::default()
    });
    let now = w.now;
    // A class of two members: two subscriptions, not a third.
    w.sfu.subscribe_bounded(now, "small", "a", 2).unwrap();
    w.sfu.subscribe_bounded(now, "small", "b", 2).unwrap();
    assert_eq!(
        w.sfu.subscribe_bounded(now, "small", "ghost", 2),
        Err(SfuError::ClassFull(2))
    );
    // A big class stops at the cap; other classes are not affected.
    for p in ["a", "b", "c"] {
        w.sfu.subscribe_bounded(now, "big", p, 100).unwrap();
    }
    assert_eq!(
        w.sfu.subscribe_bounded(now, "big", "d", 100),
        Err(SfuError::ClassFull(3))
    );
    w.sfu.subscribe_bounded(now, "third", "a", 100).unwrap();
    // Someone leaves: there is room again.
    assert!(w.sfu.remove("big", "a"));
    w.sfu.subscribe_bounded(now, "big", "d", 100).unwrap();
}

#[test]
fn subscribe_requests_are_rate_limited_per_peer() {
    let mut w = World::with_config(SfuConfig {
        subscribes_per_minute: 3,
        ..SfuConfig::default()
    });
    let now = w.now;
    for _ in 0..3 {
        w.sfu.subscribe(now, "c", "a").unwrap();
        assert!(w.sfu.remove("c", "a"));
    }
    let Err(SfuError::RateLimited(wait)) = w.sfu.subscribe(now, "c", "a") else {
        panic!("a fourth subscribe within the minute is refused");
    };
    assert_eq!(wait, Duration::from_secs(20));
    // Another peer is not held back; the first one may again after the wait.
    w.sfu.subscribe(now, "c", "b").unwrap();
    w.sfu.subscribe(now + wait, "c", "a").unwrap();
}

/// A browser stops sending its top simulcast layer when its uplink narrows (or its CPU is
/// short). A subscriber that joins then must still get the layer that is sent, and one that was
/// on the stopped layer must move to it, instead of waiting for the stopped layer forever.
#[test]
fn a_stopped_top_layer_leaves_no_subscriber_waiting_for_it() {
    let mut w = World::new();
    let teacher = w.simulcast_publisher(&[("h", 1000), ("f", 4000)]);
    let early = w.subscriber("early");
    w.settle();
    w.run_for(Duration::from_secs(3));
    let top = |f: &(u32, bool, Instant)| f.0 >> 24 == 1;
    assert!(
        w.peers[early].frames.iter().filter(|f| top(f)).count() >= 30,
        "the early subscriber is on the top layer"
    );

    // The browser stops the top layer.
    w.peers[teacher].layers[1].2 = false;
    let stopped = w.now;
    let late = w.subscriber("late");
    w.run_for(Duration::from_secs(5));

    let after = |s: usize| -> Vec<(u32, bool, Instant)> {
        w.peers[s]
            .frames
            .iter()
            .filter(|f| f.2 > stopped)
            .copied()
            .collect()
    };
    for (who, s) in [("late", late), ("early", early)] {
        let f = after(s);
        let first = f
            .first()
            .unwrap_or_else(|| panic!("{who} gets no frame in 5 s after the top layer stopped"));
        assert!(first.1, "{who}: the low layer starts at a keyframe");
        assert!(
            first.2 - stopped < Duration::from_secs(3),
            "{who}: the low layer within 3 s (after {:?})",
            first.2 - stopped
        );
        assert!(
            f.len() >= 40,
            "{who} keeps decoding the low layer: {} frames",
            f.len()
        );
    }
}
