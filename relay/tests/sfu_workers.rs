//! The SFU on several workers, on loopback with the synthetic str0m clients: classes are placed
//! on different workers, each worker forwards its own classes from its own socket, and placing a
//! class leaves the subscribers of the others alone.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aula_relay::sfu::{Counter, Sfu, SfuConfig, SfuEvent, SfuHandle};
use aula_testkit::sfu::{wait_for, LOCALHOST};
use aula_testkit::sfu_client::{Client, ClientStats, PublisherOptions};
use tokio_util::sync::CancellationToken;

async fn start(workers: usize) -> (SfuHandle, CancellationToken) {
    let shutdown = CancellationToken::new();
    let config = SfuConfig {
        workers,
        ..SfuConfig::default()
    };
    let sfu = Sfu::start(config, shutdown.clone())
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

fn frames(s: &ClientStats) -> u64 {
    s.frames.load(Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_classes_land_on_different_workers_each_with_its_own_port() {
    let (sfu, shutdown) = start(2).await;
    let addrs = sfu.local_addrs();
    assert_eq!(addrs.len(), 2);
    assert_ne!(addrs[0], addrs[1], "each worker has its own socket");
    let epoch = Instant::now();
    let _a = publisher(&sfu, "class-a", epoch, &shutdown).await;
    let _b = publisher(&sfu, "class-b", epoch, &shutdown).await;
    let wa = sfu.placement("class-a").expect("class-a placed").origin;
    let wb = sfu.placement("class-b").expect("class-b placed").origin;
    assert_ne!(
        wa, wb,
        "two classes on an idle pool go to different workers"
    );
    let sa = subscriber(&sfu, "class-a", "s", epoch, &shutdown).await;
    let sb = subscriber(&sfu, "class-b", "s", epoch, &shutdown).await;
    let ok = wait_for(Duration::from_secs(10), || {
        frames(&sa) >= 30 && frames(&sb) >= 30
    })
    .await;
    assert!(ok, "frames: a {} b {}", frames(&sa), frames(&sb));
    assert_eq!(sa.bad_frames.load(Relaxed) + sb.bad_frames.load(Relaxed), 0);
    // Each worker serves only its own class: one publisher and one subscriber each.
    for w in [wa, wb] {
        let s = sfu.worker_stats(w).await.unwrap();
        assert_eq!((s.publishers, s.subscribers), (1, 1), "worker {w}");
        assert!(s.forwarded_frames >= 30, "worker {w} forwarded its class");
    }
    // The figures each worker publishes for placement and metrics (once a second).
    let ok = wait_for(Duration::from_secs(3), || {
        sfu.workers()
            .iter()
            .all(|w| w.alive && w.subscribers == 1 && w.load_pps > 0 && w.classes == 1)
    })
    .await;
    assert!(ok, "{:?}", sfu.workers());
    assert!(sfu.healthy());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(3), sfu.stopped())
        .await
        .expect("every worker stops on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_subscribers_survive_the_placement_of_other_classes() {
    let shutdown = CancellationToken::new();
    let config = SfuConfig {
        workers: 2,
        subscribers_per_worker: 2,
        ..SfuConfig::default()
    };
    let sfu = Sfu::start(config, shutdown.clone()).await.unwrap();
    let mut events = sfu.events();
    let epoch = Instant::now();
    let _teacher = publisher(&sfu, "lecture", epoch, &shutdown).await;
    let mut students = Vec::new();
    for i in 0..2 {
        students.push(subscriber(&sfu, "lecture", &format!("s{i}"), epoch, &shutdown).await);
    }
    let home = sfu.placement("lecture").unwrap().origin;
    let ok = wait_for(Duration::from_secs(10), || {
        students.iter().all(|s| frames(s) >= 15)
    })
    .await;
    assert!(ok, "the lecture's students get frames");
    // The lecture's worker now forwards packets; the other is idle.
    let ok = wait_for(Duration::from_secs(3), || sfu.workers()[home].load_pps > 0).await;
    assert!(ok, "{:?}", sfu.workers());

    // Two more classes arrive: both go to the idle worker although it then holds more classes
    // (load is packets per second, not classes). The second grows past its worker's share and
    // spans onto the lecture's worker.
    let mut others = Vec::new();
    for c in ["other-1", "other-2"] {
        others.push(publisher(&sfu, c, epoch, &shutdown).await);
        assert_ne!(
            sfu.placement(c).unwrap().origin,
            home,
            "{c} avoids the busy worker"
        );
    }
    for i in 0..3 {
        others.push(subscriber(&sfu, "other-2", &format!("x{i}"), epoch, &shutdown).await);
    }
    assert_eq!(sfu.placement("other-2").unwrap().spans, vec![home]);
    assert_eq!(sfu.subscriber_placement("other-2", "x2"), Some(home));

    // The lecture's students keep receiving every frame, intact and in order (30 more frames
    // are one second of the stream; the bound allows for a loaded machine).
    let before: Vec<u64> = students.iter().map(|s| frames(s)).collect();
    let more = wait_for(Duration::from_secs(10), || {
        students
            .iter()
            .zip(&before)
            .all(|(s, b)| frames(s) >= b + 30)
    })
    .await;
    for (i, s) in students.iter().enumerate() {
        assert!(
            more,
            "student {i}: {} frames, {} before",
            frames(s),
            before[i]
        );
        assert_eq!(
            s.frame_skips.load(Relaxed),
            0,
            "student {i}: a frame missing"
        );
        assert_eq!(s.bad_frames.load(Relaxed), 0, "student {i}");
    }
    assert!(
        frames(&others[4]) > 0,
        "the spanning class's subscriber there gets frames too"
    );
    while let Ok(e) = events.try_recv() {
        assert!(
            !matches!(&e, SfuEvent::Disconnected { class, .. } if class == "lecture"),
            "{e:?}"
        );
    }
    assert_eq!(sfu.worker_stats(home).await.unwrap().subscribers, 3);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_spanning_two_workers_delivers_every_frame_to_subscribers_on_both() {
    let shutdown = CancellationToken::new();
    let config = SfuConfig {
        workers: 2,
        subscribers_per_worker: 2,
        ..SfuConfig::default()
    };
    let sfu = Sfu::start(config, shutdown.clone()).await.unwrap();
    let epoch = Instant::now();
    let teacher_stop = CancellationToken::new();
    let teacher = publisher(&sfu, "lecture", epoch, &teacher_stop).await;
    let origin = sfu.placement("lecture").unwrap().origin;
    let mut students = Vec::new();
    for i in 0..4 {
        students.push(subscriber(&sfu, "lecture", &format!("s{i}"), epoch, &shutdown).await);
    }
    let placement = sfu.placement("lecture").unwrap();
    let span = 1 - origin;
    assert_eq!(placement.spans, vec![span], "{placement:?}");
    let on: Vec<usize> = (0..4)
        .map(|i| {
            sfu.subscriber_placement("lecture", &format!("s{i}"))
                .unwrap()
        })
        .collect();
    assert_eq!(on, vec![origin, origin, span, span]);

    // Every student has started at a keyframe; from its first frame on, each gets every frame
    // the teacher sends, in order, up to the last one.
    let started = wait_for(Duration::from_secs(10), || {
        students
            .iter()
            .all(|s| s.keyframes.load(Relaxed) >= 1 && frames(s) >= 10)
    })
    .await;
    let state = |s: &ClientStats| {
        let f = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        (
            frames(s),
            f(&s.frame_skips),
            f(&s.bad_frames),
            f(&s.last_frame),
        )
    };
    assert!(
        started,
        "{:?}",
        students.iter().map(|s| state(s)).collect::<Vec<_>>()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let o = sfu.worker_stats(origin).await.unwrap();
    let sp = sfu.worker_stats(span).await.unwrap();
    assert_eq!((o.publishers, o.subscribers), (1, 2));
    assert_eq!(
        (sp.publishers, sp.subscribers),
        (0, 2),
        "the span serves its share"
    );
    // Every frame the teacher has sent by now reaches every student (later ones may still be
    // in the teacher's pacer when its client stops, so the end of the stream is not the mark).
    let mark = teacher.last_frame_sent.load(Relaxed);
    assert!(mark >= 60, "the teacher sent frames 0..={mark}");
    let reached = wait_for(Duration::from_secs(10), || {
        students.iter().all(|s| s.last_frame.load(Relaxed) >= mark)
    })
    .await;
    teacher_stop.cancel();
    for (i, s) in students.iter().enumerate() {
        let (got, skips, bad, its_last) = state(s);
        let worker = on[i];
        let why = format!(
            "student {i} on worker {worker}: {got} frames, last {its_last} of {mark}, gaps {}, NACKs sent {}",
            s.gaps.load(Relaxed),
            s.nacks_sent.load(Relaxed),
        );
        assert!(reached, "{why}");
        assert_eq!(skips, 0, "a frame missing: {why}");
        assert_eq!(bad, 0, "intact frames: {why}");
        assert!(got >= 40, "over two seconds of the stream: {why}");
        assert!(s.audio_frames.load(Relaxed) > 0, "student {i}: audio too");
    }
    assert_eq!(sp[Counter::SpanMessagesDropped], 0);
    assert_eq!(o[Counter::SpanMessagesDropped], 0);
    // The span worker's late joiner got its first keyframe through the origin.
    assert!(teacher.keyframe_requests.load(Relaxed) >= 1);
    shutdown.cancel();
}
