//! End-to-end SFU tests on loopback: headless str0m clients publish a synthetic VP8 + Opus stream
//! through the SFU (real UDP, ICE, DTLS, SRTP) and subscribers check what they receive.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aula_relay::sfu::{Allowed, Counter, Sfu, SfuConfig, SfuError, SfuEvent, SfuHandle};
use aula_testkit::sfu::{wait_for, LOCALHOST};
use aula_testkit::sfu_client::{Client, ClientStats, PublisherOptions};
use tokio_util::sync::CancellationToken;

async fn start() -> (SfuHandle, CancellationToken) {
    let shutdown = CancellationToken::new();
    let sfu = Sfu::start(SfuConfig::default(), shutdown.clone())
        .await
        .expect("SFU starts");
    (sfu, shutdown)
}

async fn publisher(
    sfu: &SfuHandle,
    class: &str,
    epoch: Instant,
    stop: &CancellationToken,
) -> Arc<ClientStats> {
    Client::bind(LOCALHOST, epoch)
        .await
        .unwrap()
        .publish(
            sfu,
            class,
            "teacher",
            PublisherOptions::default(),
            stop.clone(),
        )
        .await
        .expect("publish")
}

async fn subscriber(
    sfu: &SfuHandle,
    class: &str,
    peer: &str,
    epoch: Instant,
    stop: &CancellationToken,
) -> Arc<ClientStats> {
    Client::bind(LOCALHOST, epoch)
        .await
        .unwrap()
        .subscribe(sfu, class, peer, stop.clone())
        .await
        .expect("subscribe")
}

fn describe(s: &ClientStats) -> String {
    format!(
        "connected={} rtp={} frames={} keyframes={} bad={} audio={} first_keyframe={:?}",
        s.connected.load(Relaxed),
        s.rtp_packets.load(Relaxed),
        s.frames.load(Relaxed),
        s.keyframes.load(Relaxed),
        s.bad_frames.load(Relaxed),
        s.audio_frames.load(Relaxed),
        s.first_keyframe()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_reaches_every_subscriber_and_a_late_joiner_gets_a_keyframe_within_1s() {
    let (sfu, shutdown) = start().await;
    let epoch = Instant::now();
    let teacher = publisher(&sfu, "c1", epoch, &shutdown).await;
    let mut students = Vec::new();
    for i in 0..4 {
        students.push(subscriber(&sfu, "c1", &format!("s{i}"), epoch, &shutdown).await);
    }
    // Every subscriber gets RTP and whole, intact frames (at 30 fps: 45 frames ≈ 1.5 s).
    let ok = wait_for(Duration::from_secs(10), || {
        students
            .iter()
            .all(|s| s.frames.load(Relaxed) >= 45 && s.audio_frames.load(Relaxed) >= 20)
    })
    .await;
    for (i, s) in students.iter().enumerate() {
        assert!(ok, "student {i}: {}", describe(s));
        assert!(
            s.rtp_packets.load(Relaxed) >= 45,
            "student {i}: {}",
            describe(s)
        );
        assert_eq!(
            s.bad_frames.load(Relaxed),
            0,
            "student {i}: {}",
            describe(s)
        );
        assert!(
            s.keyframes.load(Relaxed) >= 1,
            "student {i}: video must start at a keyframe"
        );
        let lat = s.latencies_us.lock().unwrap();
        assert!(!lat.is_empty());
    }

    // A late joiner: the publisher only sends keyframes on request, so this one proves the PLI
    // the SFU sends for every new subscriber.
    let sent_before = teacher.keyframes_sent.load(Relaxed);
    let late = subscriber(&sfu, "c1", "late", epoch, &shutdown).await;
    let got = wait_for(Duration::from_secs(3), || late.first_keyframe().is_some()).await;
    assert!(got, "late joiner: {}", describe(&late));
    let t = late.first_keyframe().unwrap();
    assert!(
        t < Duration::from_secs(1),
        "late joiner's first keyframe after {t:?}"
    );
    assert!(teacher.keyframes_sent.load(Relaxed) > sent_before);
    assert!(teacher.keyframe_requests.load(Relaxed) >= 1);
    let late_frames = late.frames.load(Relaxed);
    assert!(
        wait_for(Duration::from_secs(3), || late.frames.load(Relaxed)
            >= late_frames + 30)
        .await,
        "late joiner keeps receiving: {}",
        describe(&late)
    );
    assert_eq!(late.bad_frames.load(Relaxed), 0);

    let stats = sfu.stats().await.unwrap();
    assert_eq!((stats.publishers, stats.subscribers), (1, 5));
    assert!(stats[Counter::ForwardedPackets] > 0 && stats[Counter::ForwardedBytes] > 0);
    assert!(
        stats[Counter::KeyframesForNewSubscriber] >= 1,
        "new-subscriber keyframe requests: {stats:?}"
    );

    // Removing a subscriber stops its media and updates the count.
    assert!(sfu.remove("c1", "s0").await.unwrap());
    assert!(!sfu.remove("c1", "s0").await.unwrap());
    assert_eq!(sfu.stats().await.unwrap().subscribers, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = students[0].frames.load(Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        students[0].frames.load(Relaxed),
        frozen,
        "a removed subscriber gets nothing"
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_that_join_before_the_teacher_get_the_stream_once_it_starts() {
    let (sfu, shutdown) = start().await;
    let epoch = Instant::now();
    let early = subscriber(&sfu, "c2", "early", epoch, &shutdown).await;
    assert!(wait_for(Duration::from_secs(5), || early.connected.load(Relaxed)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _teacher = publisher(&sfu, "c2", epoch, &shutdown).await;
    let ok = wait_for(Duration::from_secs(5), || early.frames.load(Relaxed) >= 30).await;
    assert!(ok, "{}", describe(&early));
    assert_eq!(early.bad_frames.load(Relaxed), 0);
    // The teacher leaves and publishes again (a reload): media resumes from a keyframe.
    assert!(sfu.remove("c2", "teacher").await.unwrap());
    assert_eq!(sfu.stats().await.unwrap().publishers, 0);
    let keys = early.keyframes.load(Relaxed);
    let _again = publisher(&sfu, "c2", epoch, &shutdown).await;
    let ok = wait_for(Duration::from_secs(5), || {
        early.keyframes.load(Relaxed) > keys
    })
    .await;
    assert!(ok, "{}", describe(&early));
    shutdown.cancel();
}

#[tokio::test]
async fn refusals_name_the_problem() {
    let (sfu, shutdown) = start().await;
    let epoch = Instant::now();
    let _teacher = publisher(&sfu, "c3", epoch, &shutdown).await;
    let second = Client::bind(LOCALHOST, epoch)
        .await
        .unwrap()
        .publish(
            &sfu,
            "c3",
            "other",
            PublisherOptions::default(),
            shutdown.clone(),
        )
        .await;
    assert!(second.is_ok(), "a second publisher is welcome");
    assert!(matches!(
        sfu.publish("c4", "t", "not sdp", Allowed::ALL).await,
        Err(SfuError::BadSdp(_))
    ));
    assert_eq!(
        sfu.accept_answer("c3", "nobody", "v=0").await,
        Err(SfuError::UnknownPeer("c3".into(), "nobody".into()))
    );
    let _offer = sfu.subscribe("c3", "s").await.unwrap();
    assert_eq!(
        sfu.subscribe("c3", "s").await,
        Err(SfuError::PeerExists("c3".into(), "s".into()))
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), sfu.stopped())
        .await
        .expect("the SFU task stops on shutdown");
}

#[tokio::test]
async fn subscribers_beyond_the_configured_capacity_are_refused() {
    let shutdown = CancellationToken::new();
    // The capacity of one worker (with more, a full worker's class spans the next one).
    let config = SfuConfig {
        max_subscribers: 2,
        workers: 1,
        ..SfuConfig::default()
    };
    let sfu = Sfu::start(config, shutdown.clone()).await.unwrap();
    sfu.subscribe("c5", "a").await.unwrap();
    sfu.subscribe("c5", "b").await.unwrap();
    assert_eq!(sfu.subscribe("c5", "c").await, Err(SfuError::Full(2)));
    assert!(sfu.remove("c5", "a").await.unwrap());
    sfu.subscribe("c5", "c").await.unwrap();
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signaling_hears_when_peers_connect_and_when_one_leaves() {
    let (sfu, shutdown) = start().await;
    let mut events = sfu.events();
    let epoch = Instant::now();
    let _teacher = publisher(&sfu, "c6", epoch, &shutdown).await;
    let student_stop = CancellationToken::new();
    let student = subscriber(&sfu, "c6", "s", epoch, &student_stop).await;
    let mut connected = Vec::new();
    while connected.len() < 2 {
        let e = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("a Connected notice")
            .unwrap();
        if let SfuEvent::Connected { class, peer } = e {
            assert_eq!(class, "c6");
            connected.push(peer);
        }
    }
    connected.sort();
    assert_eq!(connected, ["s", "teacher"]);
    assert!(wait_for(Duration::from_secs(5), || student.frames.load(Relaxed) > 0).await);

    // The student's browser goes away (DTLS close): the SFU drops it and says so.
    student_stop.cancel();
    let gone = tokio::time::timeout(Duration::from_secs(3), events.recv())
        .await
        .expect("a Disconnected notice")
        .unwrap();
    assert_eq!(
        gone,
        SfuEvent::Disconnected {
            class: "c6".into(),
            peer: "s".into()
        }
    );
    assert_eq!(sfu.stats().await.unwrap().subscribers, 0);
    shutdown.cancel();
}
