//! Simulcast layer choice: the publisher sends two layers (250 kbit/s and 1.5 Mbit/s); a
//! subscriber on a clean link stays on the high layer, while one on a bad link is moved to the
//! low layer — on a keyframe, so its video keeps decoding instead of freezing. A bad link is
//! either lossy (20% of RTP dropped: the loss in its receiver reports moves it) or narrow (a
//! 700 kbit/s bottleneck with a deep buffer, so congestion shows as growing delay, not loss: its
//! congestion-control bandwidth estimate moves it). When the narrow link widens, the estimate
//! grows back (the SFU probes the link again every few seconds while it holds a subscriber
//! down) and the subscriber returns to the high layer.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aula_relay::sfu::{Counter, Sfu, SfuConfig, SfuHandle};
use aula_testkit::sfu::{wait_for, LOCALHOST};
use aula_testkit::sfu_client::{Client, ClientStats, PublisherOptions};
use tokio_util::sync::CancellationToken;

/// An SFU with a publisher of two simulcast layers in `class`, and a subscriber "wide" on a
/// clean link.
async fn class_with_two_layers(
    class: &str,
    shutdown: &CancellationToken,
) -> (SfuHandle, Arc<ClientStats>, Arc<ClientStats>) {
    let sfu = Sfu::start(SfuConfig::default(), shutdown.clone())
        .await
        .expect("SFU starts");
    let opts = PublisherOptions {
        audio: false,
        simulcast: vec![("l".into(), 250_000), ("h".into(), 1_500_000)],
        ..PublisherOptions::default()
    };
    let teacher = Client::bind(LOCALHOST, epoch())
        .await
        .unwrap()
        .publish(&sfu, class, "teacher", opts, shutdown.clone())
        .await
        .expect("publish");
    let wide = Client::bind(LOCALHOST, epoch())
        .await
        .unwrap()
        .subscribe(&sfu, class, "wide", shutdown.clone())
        .await
        .expect("subscribe");
    (sfu, teacher, wide)
}

/// One test at a time: each judges how the SFU reacts to its subscribers' links, and two classes
/// of a 1.75 Mbit/s publisher in a debug build share two cores badly enough that a clean
/// subscriber's packets queue behind the CPU — delay its bandwidth estimate rightly reads as
/// congestion.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Waits (at most 15 s) until `s` has received `frames` frames of the low layer and is on it.
async fn settled_low(s: &ClientStats, frames: u64) {
    wait_for(Duration::from_secs(15), || {
        s.last_layer.load(Relaxed) == 0 && s.layer_frames[0].load(Relaxed) >= frames
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_a_lossy_link_gets_the_low_layer_and_keeps_decoding() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let shutdown = CancellationToken::new();
    let (sfu, teacher, good) = class_with_two_layers("sim", &shutdown).await;
    let bad = Client::bind(LOCALHOST, epoch())
        .await
        .unwrap()
        .with_rtp_loss(20.0, 7)
        .subscribe(&sfu, "sim", "bad", shutdown.clone())
        .await
        .expect("subscribe");

    // Both start on the high layer; the lossy one is moved down within a few receiver reports.
    settled_low(&bad, 30).await;
    let stats = sfu.stats().await.unwrap();
    let summary = format!(
        "good: {}; bad: {}; publisher keyframes {}; SFU {stats:?}",
        aula_testkit::sfu::summary(&good),
        aula_testkit::sfu::summary(&bad),
        teacher.keyframes_sent.load(Relaxed)
    );
    println!("{summary}");
    assert!(good.layer_frames[1].load(Relaxed) > 0, "{summary}");
    assert_eq!(good.last_layer.load(Relaxed), 1, "{summary}");
    assert_eq!(good.layer_frames[0].load(Relaxed), 0, "{summary}");
    assert!(
        bad.layer_frames[1].load(Relaxed) > 0,
        "started high: {summary}"
    );
    assert_eq!(bad.last_layer.load(Relaxed), 0, "{summary}");
    assert!(bad.layer_frames[0].load(Relaxed) >= 30, "{summary}");
    assert!(stats[Counter::LayerSwitches] >= 1, "{summary}");
    assert!(stats[Counter::KeyframesForLayerSwitch] >= 1, "{summary}");
    assert_eq!(
        good.bad_frames.load(Relaxed) + bad.bad_frames.load(Relaxed),
        0
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_behind_a_narrow_link_is_moved_to_the_layer_that_fits() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let shutdown = CancellationToken::new();
    let (sfu, _teacher, wide) = class_with_two_layers("bwe", &shutdown).await;
    let link = Arc::new(AtomicU64::new(700_000));
    let narrow = Client::bind(LOCALHOST, epoch())
        .await
        .unwrap()
        .with_bottleneck(link.clone(), Duration::from_secs(5))
        .subscribe(&sfu, "bwe", "narrow", shutdown.clone())
        .await
        .expect("subscribe");
    settled_low(&narrow, 60).await;
    let stats = sfu.stats().await.unwrap();
    let summary = format!(
        "wide: {}; narrow: {}; SFU downgrades (loss, bandwidth) {:?}, switches {}",
        aula_testkit::sfu::summary(&wide),
        aula_testkit::sfu::summary(&narrow),
        [
            stats[Counter::DowngradesForLoss],
            stats[Counter::DowngradesForBandwidth]
        ],
        stats[Counter::LayerSwitches]
    );
    println!("{summary}");
    assert_eq!(wide.last_layer.load(Relaxed), 1, "{summary}");
    assert_eq!(wide.layer_frames[0].load(Relaxed), 0, "{summary}");
    assert!(
        narrow.layer_frames[1].load(Relaxed) > 0,
        "started high: {summary}"
    );
    assert_eq!(narrow.last_layer.load(Relaxed), 0, "{summary}");
    assert!(narrow.layer_frames[0].load(Relaxed) >= 60, "{summary}");
    assert!(
        stats[Counter::DowngradesForBandwidth] >= 1,
        "the estimate moved it: {summary}"
    );

    // While the link stays narrow the SFU probes it again every few seconds; the probes find no
    // more room, so the subscriber stays on the low layer.
    let high_while_narrow = narrow.layer_frames[1].load(Relaxed);
    let reprobes_before = sfu.stats().await.unwrap()[Counter::BandwidthReprobes];
    tokio::time::sleep(Duration::from_secs(9)).await;
    let reprobes = sfu.stats().await.unwrap()[Counter::BandwidthReprobes] - reprobes_before;
    let summary = format!(
        "narrow for 9 s more: {}; reprobes {reprobes}",
        aula_testkit::sfu::summary(&narrow)
    );
    println!("{summary}");
    assert!(reprobes >= 2, "{summary}");
    assert_eq!(narrow.last_layer.load(Relaxed), 0, "{summary}");
    assert_eq!(
        narrow.layer_frames[1].load(Relaxed),
        high_while_narrow,
        "{summary}"
    );

    // The link widens (20 Mbit/s): the estimate grows back and the subscriber returns to the
    // high layer, again on a keyframe.
    link.store(20_000_000, Relaxed);
    let high_before = narrow.layer_frames[1].load(Relaxed);
    let started = Instant::now();
    wait_for(Duration::from_secs(30), || {
        narrow.last_layer.load(Relaxed) == 1
            && narrow.layer_frames[1].load(Relaxed) >= high_before + 30
    })
    .await;
    let summary = format!("narrow, widened: {}", aula_testkit::sfu::summary(&narrow));
    println!(
        "{summary}; back on the high layer after {:?}",
        started.elapsed()
    );
    assert_eq!(narrow.last_layer.load(Relaxed), 1, "{summary}");
    assert!(
        narrow.layer_frames[1].load(Relaxed) >= high_before + 30,
        "{summary}"
    );
    assert_eq!(
        wide.bad_frames.load(Relaxed) + narrow.bad_frames.load(Relaxed),
        0
    );
    shutdown.cancel();
}
