//! A class with the `sfu` topology, end to end: the real binary, the teacher publishing a
//! synthetic video stream to the SFU through the signaling protocol, students subscribing the
//! same way, over real sockets. The WebRTC peers are the headless str0m clients of
//! `aula_testkit::sfu_client`.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aula_testkit::net::LOCALHOST;
use aula_testkit::sfu_client::{Client as MediaClient, ClientStats, PublisherOptions};
use common::*;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Answers the SFU's `offer` (which `c` received) with a new synthetic client, which then runs
/// as a subscriber until `stop`.
async fn answer_with_media(
    c: &mut Client,
    offer: &Value,
    epoch: Instant,
    stop: &CancellationToken,
) -> Arc<ClientStats> {
    let mut media = MediaClient::bind(LOCALHOST, epoch).await.unwrap();
    let answer = media.answer_offer(offer["sdp"].as_str().unwrap()).unwrap();
    c.send(json!({"type": "answer", "to": "sfu", "sdp": answer}))
        .await;
    media.spawn_subscriber(stop.clone())
}

/// Sends `offer` to the SFU through `c`, applies the SFU's answer to `publisher` and runs it
/// until `stop`.
async fn publish_through(
    c: &mut Client,
    mut publisher: MediaClient,
    offer: String,
    opts: PublisherOptions,
    stop: &CancellationToken,
) -> Arc<ClientStats> {
    c.send(json!({"type": "offer", "to": "sfu", "sdp": offer}))
        .await;
    let answer = c.expect("answer").await;
    assert_eq!(answer["from"], "sfu");
    publisher
        .accept_answer(answer["sdp"].as_str().unwrap())
        .unwrap();
    publisher.spawn_publisher(opts, stop.clone())
}

/// Polls the metric `series` for up to 5 s until it equals `want`; returns its last value.
async fn wait_for_metric(aula: &Aula, series: &str, want: f64) -> f64 {
    let mut value = f64::MAX;
    for _ in 0..50 {
        value = aula.metric(series);
        if value == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_publishes_once_and_every_student_receives_through_the_sfu() {
    let aula = Aula::start(&temp_dir("sfu"));
    let class = aula.create_class_with_topology("Assembly", "sfu");
    let stop = CancellationToken::new();
    let epoch = Instant::now();

    let mut teacher = Client::join(&aula, class["teacher"]["token"].as_str().unwrap(), "T").await;
    assert_eq!(teacher.welcome["class"]["media"], "sfu");
    let mut publisher = MediaClient::bind(LOCALHOST, epoch).await.unwrap();
    let opts = PublisherOptions {
        video_bps: 500_000,
        audio: false,
        ..Default::default()
    };
    let offer = publisher.publish_offer(&opts);
    let sent = publish_through(&mut teacher, publisher, offer, opts, &stop).await;

    let mut students = Vec::new();
    for name in ["Ana", "Ben", "Carla"] {
        let mut s = Client::join(&aula, class["student"]["token"].as_str().unwrap(), name).await;
        // A student cannot publish to the SFU without a right to speak, show a camera or share.
        s.send(json!({"type": "offer", "to": "sfu", "sdp": "v=0"}))
            .await;
        s.expect_error("forbidden").await;
        s.send(json!({"type": "subscribe"})).await;
        let offer = s.expect("offer").await;
        assert_eq!(offer["from"], "sfu");
        let got = answer_with_media(&mut s, &offer, epoch, &stop).await;
        students.push((s, got));
    }

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let frames: Vec<u64> = students
            .iter()
            .map(|(_, st)| st.frames.load(Relaxed))
            .collect();
        if frames.iter().all(|f| *f >= 30) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "students' frames after 15 s: {frames:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (s, st) in &students {
        assert!(st.keyframes.load(Relaxed) >= 1, "{} got no keyframe", s.id);
        assert_eq!(
            st.bad_frames.load(Relaxed),
            0,
            "{} got corrupted frames",
            s.id
        );
    }
    assert!(sent.frames_sent.load(Relaxed) >= 30);
    assert!(
        aula.metric("aula_sfu_forwarded_packets_total") > 0.0,
        "{}",
        aula.metrics()
    );

    // Leaving frees the student's SFU session.
    let (mut ana, _) = students.remove(0);
    ana.send(json!({"type": "leave"})).await;
    let subscribers = wait_for_metric(&aula, "aula_sfu_subscribers", 2.0).await;
    assert_eq!(subscribers, 2.0, "{}", aula.metrics());
    stop.cancel();
}

#[tokio::test]
async fn a_p2p_class_refuses_sfu_negotiation_with_a_clear_error() {
    let aula = Aula::start(&temp_dir("sfu-p2p"));
    let class = aula.create_class_with_topology("Small", "p2p");
    let mut s = Client::join(&aula, class["student"]["token"].as_str().unwrap(), "Ana").await;
    assert_eq!(s.welcome["class"]["media"], "p2p");
    s.send(json!({"type": "subscribe", "ref": 1})).await;
    let e = s.expect_error("media_unavailable").await;
    assert_eq!(e["ref"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_given_the_floor_publishes_through_the_sfu_until_the_teacher_revokes_it() {
    let aula = Aula::start(&temp_dir("sfu-floor"));
    let class = aula.create_class_with_topology("Debate", "sfu");
    let stop = CancellationToken::new();
    let epoch = Instant::now();
    let mut teacher = Client::join(&aula, class["teacher"]["token"].as_str().unwrap(), "T").await;
    let mut ana = Client::join(&aula, class["student"]["token"].as_str().unwrap(), "Ana").await;
    let opts = PublisherOptions {
        video_bps: 300_000,
        audio: false,
        ..Default::default()
    };

    // Without a right Ana cannot publish; an SFU call that fails later answers with the ref too.
    let mut publisher = MediaClient::bind(LOCALHOST, epoch).await.unwrap();
    let offer = publisher.publish_offer(&opts);
    ana.send(json!({"type": "offer", "to": "sfu", "sdp": offer, "ref": 1}))
        .await;
    assert_eq!(ana.expect_error("forbidden").await["ref"], 1);
    ana.send(json!({"type": "answer", "to": "sfu", "sdp": "v=0", "ref": "late"}))
        .await;
    assert_eq!(ana.expect_error("media_unavailable").await["ref"], "late");

    // The teacher lets Ana show her camera only: she may publish, but her screen (her first
    // video) is not forwarded; the old combined `share` right is refused in words.
    teacher
        .send(json!({"type": "grant", "peer": ana.id, "share": true, "ref": "old"}))
        .await;
    assert_eq!(teacher.expect_error("bad_message").await["ref"], "old");
    teacher
        .send(json!({"type": "grant", "peer": ana.id, "camera": true}))
        .await;
    let updated = ana.expect("peer_updated").await;
    assert_eq!(
        updated["peer"]["permissions"],
        json!({"speak": false, "camera": true, "screen": false})
    );
    let _sent = publish_through(&mut ana, publisher, offer, opts, &stop).await;

    // The teacher watches through its own subscription: Ana's media is in its offer.
    teacher.send(json!({"type": "subscribe"})).await;
    let offer = teacher.expect("offer").await;
    assert!(
        offer["sdp"]
            .as_str()
            .unwrap()
            .contains(&format!("aula.{}", ana.id)),
        "the m-line names Ana's stream"
    );
    let got = answer_with_media(&mut teacher, &offer, epoch, &stop).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        got.frames.load(Relaxed),
        0,
        "a screen is not forwarded on the camera right"
    );

    // Now the screen too: it reaches the teacher.
    teacher
        .send(json!({"type": "grant", "peer": ana.id, "screen": true}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while got.frames.load(Relaxed) < 30 {
        assert!(
            Instant::now() < deadline,
            "the teacher got {} frames",
            got.frames.load(Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got.bad_frames.load(Relaxed), 0);
    assert_eq!(aula.metric("aula_sfu_publishers"), 1.0);

    // Revoked: the server ends her publishing session in the SFU (not only her browser
    // stopping its tracks), so nothing more reaches the class.
    teacher
        .send(json!({"type": "grant", "peer": ana.id, "camera": false, "screen": false}))
        .await;
    let publishers = wait_for_metric(&aula, "aula_sfu_publishers", 0.0).await;
    assert_eq!(publishers, 0.0, "{}", aula.metrics());
    let frames = got.frames.load(Relaxed);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        got.frames.load(Relaxed) <= frames + 1,
        "frames still arrive after the revocation: {frames} → {}",
        got.frames.load(Relaxed)
    );
    stop.cancel();
}

#[tokio::test]
async fn classes_created_without_a_topology_get_the_configured_default() {
    let aula = AulaBuilder::new(&temp_dir("sfu-default-topology"))
        .env("AULA_SFU__DEFAULT_TOPOLOGY", "sfu")
        .start();
    let class = aula.create_class("Assembly");
    assert_eq!(class["topology"], "sfu");
    let s = Client::join(&aula, class["student"]["token"].as_str().unwrap(), "Ana").await;
    assert_eq!(s.welcome["class"]["media"], "sfu");
    // An explicit topology still wins.
    let small = aula.create_class_with_topology("Tutorial", "p2p");
    assert_eq!(small["topology"], "p2p");
    // A value that is not a topology stops the server with a message naming the key.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aula"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(temp_dir("sfu-bad-topology"))
        .env("AULA_SFU__DEFAULT_TOPOLOGY", "mesh")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("aula serve started with default_topology = \"mesh\"");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("default_topology"), "{err}");
}

/// Subscribes `c` and returns the SFU's offer, or the error it got instead.
async fn subscribe(c: &mut Client, reference: u64) -> serde_json::Value {
    c.send(json!({"type": "subscribe", "ref": reference})).await;
    loop {
        let m = c.recv().await;
        if m["type"] == "offer" || m["type"] == "error" {
            return m;
        }
    }
}

#[tokio::test]
async fn an_offer_never_answered_frees_its_slot_within_seconds_for_another_class() {
    // One worker's slots (with more, the classes would go to different workers).
    let aula = AulaBuilder::new(&temp_dir("sfu-expiry"))
        .env("AULA_SFU__WORKERS", "1")
        .env("AULA_SFU__MAX_SUBSCRIBERS", "1")
        .env("AULA_SFU__OFFER_TIMEOUT_SECS", "2")
        .start();
    let a = aula.create_class_with_topology("A", "sfu");
    let b = aula.create_class_with_topology("B", "sfu");
    let mut ana = Client::join(&aula, a["student"]["token"].as_str().unwrap(), "Ana").await;
    let mut ben = Client::join(&aula, b["student"]["token"].as_str().unwrap(), "Ben").await;

    // Ana takes the only slot and never answers the SFU's offer.
    assert_eq!(subscribe(&mut ana, 1).await["type"], "offer");
    let refused = subscribe(&mut ben, 1).await;
    assert_eq!(refused["code"], "media_unavailable", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("full"));

    // Within the timeout (and a margin) the slot is Ben's.
    let start = Instant::now();
    let mut n = 2;
    loop {
        let m = subscribe(&mut ben, n).await;
        if m["type"] == "offer" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "Ben is still refused {:?} after Ana's offer: {m}",
            start.elapsed()
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(aula.metric("aula_sfu_subscribers"), 1.0);
    // Ana's late answer gets a clear error, not a connection.
    ana.send(json!({"type": "answer", "to": "sfu", "sdp": "v=0", "ref": 9}))
        .await;
    let e = ana.expect_error("media_unavailable").await;
    assert_eq!(e["ref"], 9);
}

#[tokio::test]
async fn one_class_cannot_hold_more_subscriptions_than_its_cap() {
    let aula = AulaBuilder::new(&temp_dir("sfu-class-cap"))
        .env("AULA_SFU__MAX_SUBSCRIBERS_PER_CLASS", "2")
        .start();
    let a = aula.create_class_with_topology("A", "sfu");
    let b = aula.create_class_with_topology("B", "sfu");
    let token = a["student"]["token"].as_str().unwrap();
    let mut students = Vec::new();
    for name in ["Ana", "Ben", "Carla"] {
        students.push(Client::join(&aula, token, name).await);
    }
    assert_eq!(subscribe(&mut students[0], 1).await["type"], "offer");
    assert_eq!(subscribe(&mut students[1], 1).await["type"], "offer");
    let refused = subscribe(&mut students[2], 7).await;
    assert_eq!(refused["code"], "media_unavailable", "{refused}");
    assert_eq!(refused["ref"], 7);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("the class already holds 2 SFU subscriptions"),
        "{refused}"
    );
    // Another class is not affected.
    let mut dan = Client::join(&aula, b["student"]["token"].as_str().unwrap(), "Dan").await;
    assert_eq!(subscribe(&mut dan, 1).await["type"], "offer");
    // One leaves: Carla gets in.
    students[0].send(json!({"type": "leave"})).await;
    let start = Instant::now();
    let mut n = 8;
    while subscribe(&mut students[2], n).await["type"] != "offer" {
        assert!(start.elapsed() < Duration::from_secs(5));
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn subscribe_requests_are_rate_limited_per_peer_with_a_documented_error() {
    let aula = AulaBuilder::new(&temp_dir("sfu-subscribe-rate"))
        .env("AULA_SFU__SUBSCRIBES_PER_MINUTE", "3")
        .start();
    let a = aula.create_class_with_topology("A", "sfu");
    let token = a["student"]["token"].as_str().unwrap();
    let mut ana = Client::join(&aula, token, "Ana").await;
    for n in 1..=3 {
        assert_eq!(subscribe(&mut ana, n).await["type"], "offer");
    }
    let refused = subscribe(&mut ana, 4).await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert_eq!(refused["ref"], 4);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("too many subscribe requests: try again in 20 s"),
        "{refused}"
    );
    // Another peer of the class is not held back.
    let mut ben = Client::join(&aula, token, "Ben").await;
    assert_eq!(subscribe(&mut ben, 1).await["type"], "offer");
}

/// A STUN Binding request carrying attributes a client never sends to a server (MAPPED-ADDRESS,
/// UNKNOWN-ATTRIBUTES), which the ICE stack's parser warns about.
fn odd_stun_binding(n: u32) -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x14, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&n.to_be_bytes());
    // MAPPED-ADDRESS 127.0.0.1:9
    m.extend_from_slice(&[0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x00, 0x09, 127, 0, 0, 1]);
    // UNKNOWN-ATTRIBUTES (0x8000)
    m.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x80, 0x00, 0x80, 0x01]);
    m
}

#[tokio::test]
async fn a_flood_of_bad_packets_at_the_sfu_logs_a_bounded_number_of_lines() {
    let dir = temp_dir("sfu-log-flood");
    let log = dir.join("aula.log");
    let aula = AulaBuilder::new(&dir).log_file(&log).start();
    let a = aula.create_class_with_topology("A", "sfu");
    let token = a["student"]["token"].as_str().unwrap();
    // Two peers waiting at the SFU, so every stray packet is checked against each.
    let mut ana = Client::join(&aula, token, "Ana").await;
    let mut ben = Client::join(&aula, token, "Ben").await;
    let offer = subscribe(&mut ana, 1).await;
    assert_eq!(subscribe(&mut ben, 1).await["type"], "offer");
    let sdp = offer["sdp"].as_str().unwrap();
    let port: u16 = sdp
        .lines()
        .find(|l| l.starts_with("a=candidate:"))
        .and_then(|l| l.split_whitespace().nth(5))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no candidate port in {sdp}"));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let packets = 3000;
    for n in 0..packets {
        let bad = odd_stun_binding(n);
        socket.send_to(&bad, ("127.0.0.1", port)).await.unwrap();
        if n % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let warns = text.lines().filter(|l| l.contains("WARN")).count();
    assert!(
        warns <= 50,
        "{warns} WARN lines for {packets} bad packets; the first: {:?}",
        text.lines().take(5).collect::<Vec<_>>()
    );
    assert!(
        aula.metric("aula_log_lines_suppressed_total") >= f64::from(packets),
        "the lines left out are counted"
    );
    // The SFU still serves.
    assert_eq!(aula.metric("aula_sfu_subscribers"), 2.0);
}

#[tokio::test]
async fn an_offer_whose_payload_types_clash_is_refused_and_the_sfu_keeps_serving() {
    let aula = Aula::start(&temp_dir("sfu-bad-sdp"));
    let a = aula.create_class_with_topology("A", "sfu");
    let b = aula.create_class_with_topology("B", "sfu");
    let mut teacher = Client::join(&aula, a["teacher"]["token"].as_str().unwrap(), "T").await;
    let epoch = Instant::now();
    let mut publisher = MediaClient::bind(LOCALHOST, epoch).await.unwrap();
    let offer = publisher.publish_offer(&PublisherOptions::default());
    // Two VP9 formats with the same parameters: str0m asserted on it and the SFU task died,
    // for every class.
    assert!(offer.contains("profile-id=2"), "{offer}");
    let bad = offer.replace("profile-id=2", "profile-id=0");
    teacher
        .send(json!({"type": "offer", "to": "sfu", "sdp": bad, "ref": 1}))
        .await;
    let e = teacher.expect_error("media_unavailable").await;
    assert_eq!(e["ref"], 1);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("invalid SDP: media section 1: codec vp9/90000 configured twice alike"),
        "{e}"
    );
    // The SFU still serves this class and the others.
    teacher
        .send(json!({"type": "offer", "to": "sfu", "sdp": offer, "ref": 2}))
        .await;
    assert_eq!(teacher.expect("answer").await["from"], "sfu");
    let mut ben = Client::join(&aula, b["student"]["token"].as_str().unwrap(), "Ben").await;
    assert_eq!(subscribe(&mut ben, 1).await["type"], "offer");
}

/// Issue 12, item 12: the web client subscribes again whenever its receiving link fails. For a
/// teacher who is sharing, that must replace only her receiving session: her broadcast is
/// another session and the students keep getting its frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_subscribing_again_keeps_her_broadcast_flowing() {
    let aula = Aula::start(&temp_dir("sfu-resubscribe"));
    let class = aula.create_class_with_topology("Assembly", "sfu");
    let stop = CancellationToken::new();
    let epoch = Instant::now();

    let mut teacher = Client::join(&aula, class["teacher"]["token"].as_str().unwrap(), "T").await;
    let mut publisher = MediaClient::bind(LOCALHOST, epoch).await.unwrap();
    let opts = PublisherOptions {
        video_bps: 500_000,
        audio: false,
        ..Default::default()
    };
    let offer = publisher.publish_offer(&opts);
    let _sent = publish_through(&mut teacher, publisher, offer, opts, &stop).await;

    let mut student = Client::join(&aula, class["student"]["token"].as_str().unwrap(), "Ana").await;
    let offer = subscribe(&mut student, 1).await;
    assert_eq!(offer["type"], "offer", "{offer}");
    let got = answer_with_media(&mut student, &offer, epoch, &stop).await;

    // Frames reach the student, before and after the teacher subscribes (twice, as a client
    // whose receiving link failed twice would), each time answering the SFU's offer.
    let frames_within = |want: u64, stats: &Arc<ClientStats>| {
        let stats = stats.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let n = stats.frames.load(Relaxed);
                if n >= want || Instant::now() > deadline {
                    return n;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let before = frames_within(30, &got).await;
    assert!(before >= 30, "the student got {before} frames before");
    for reference in [2, 3] {
        let offer = subscribe(&mut teacher, reference).await;
        assert_eq!(offer["type"], "offer", "{offer}");
        let _mine = answer_with_media(&mut teacher, &offer, epoch, &stop).await;
    }
    let mark = got.frames.load(Relaxed);
    let after = frames_within(mark + 60, &got).await;
    assert!(
        after >= mark + 60,
        "the student's frames stopped when the teacher subscribed again: {mark} then {after}"
    );
    assert_eq!(
        aula.metric("aula_sfu_publishers"),
        1.0,
        "{}",
        aula.metrics()
    );
    stop.cancel();
}
