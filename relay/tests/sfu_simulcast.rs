//! Simulcast: the publisher sends two layers; a subscriber on a clean link stays on the high
//! layer while one on a lossy link (20% of RTP dropped) is moved to the low layer — on a
//! keyframe, so its video keeps decoding instead of freezing.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use aula_relay::sfu::client::{Client, ClientStats, PublisherOptions};
use aula_relay::sfu::{Sfu, SfuConfig};
use tokio_util::sync::CancellationToken;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn layers(s: &ClientStats) -> String {
    format!(
        "frames per layer {:?}, last layer {}, bad {}",
        s.layer_frames.each_ref().map(|a| a.load(Relaxed)),
        s.last_layer.load(Relaxed),
        s.bad_frames.load(Relaxed)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_a_lossy_link_gets_the_low_layer_and_keeps_decoding() {
    let shutdown = CancellationToken::new();
    let sfu = Sfu::start(SfuConfig::default(), shutdown.clone())
        .await
        .expect("SFU starts");
    let epoch = Instant::now();
    let opts = PublisherOptions {
        audio: false,
        simulcast: vec![("l".into(), 250_000), ("h".into(), 1_500_000)],
        ..PublisherOptions::default()
    };
    let teacher = Client::bind(LOCALHOST, epoch)
        .await
        .unwrap()
        .publish(&sfu, "sim", "teacher", opts, shutdown.clone())
        .await
        .expect("publish");
    let good = Client::bind(LOCALHOST, epoch)
        .await
        .unwrap()
        .subscribe(&sfu, "sim", "good", shutdown.clone())
        .await
        .expect("subscribe");
    let bad = Client::bind(LOCALHOST, epoch)
        .await
        .unwrap()
        .with_rtp_loss(20.0, 7)
        .subscribe(&sfu, "sim", "bad", shutdown.clone())
        .await
        .expect("subscribe");

    // Both start on the high layer; the lossy one is moved down within a few receiver reports.
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end
        && !(bad.last_layer.load(Relaxed) == 0 && bad.layer_frames[0].load(Relaxed) >= 30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = sfu.stats().await.unwrap();
    let summary = format!(
        "good: {}; bad: {}; publisher keyframes {}; SFU {stats:?}",
        layers(&good),
        layers(&bad),
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
    assert!(stats.layer_switches >= 1, "{summary}");
    assert!(stats.keyframe_requests[3] >= 1, "{summary}");
    assert_eq!(
        good.bad_frames.load(Relaxed) + bad.bad_frames.load(Relaxed),
        0
    );
    shutdown.cancel();
}
