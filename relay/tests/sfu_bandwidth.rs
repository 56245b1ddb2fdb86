//! Bandwidth estimation: a subscriber behind a narrow downlink (a 700 kbit/s bottleneck with a
//! deep buffer, so congestion first shows as growing delay, not loss) is moved to the low
//! simulcast layer by its transport-wide congestion control estimate, while one on a wide link
//! stays on the high layer.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use aula_relay::sfu::client::{Client, ClientStats, PublisherOptions};
use aula_relay::sfu::{Sfu, SfuConfig};
use tokio_util::sync::CancellationToken;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn layers(s: &ClientStats) -> String {
    format!(
        "frames per layer {:?}, last layer {}, bad {}, gaps {}",
        s.layer_frames.each_ref().map(|a| a.load(Relaxed)),
        s.last_layer.load(Relaxed),
        s.bad_frames.load(Relaxed),
        s.gaps.load(Relaxed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_behind_a_narrow_link_is_moved_to_the_layer_that_fits() {
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
    let _teacher = Client::bind(LOCALHOST, epoch)
        .await
        .unwrap()
        .publish(&sfu, "bwe", "teacher", opts, shutdown.clone())
        .await
        .expect("publish");
    let wide = Client::bind(LOCALHOST, epoch)
        .await
        .unwrap()
        .subscribe(&sfu, "bwe", "wide", shutdown.clone())
        .await
        .expect("subscribe");
    let narrow = Client::bind(LOCALHOST, epoch)
        .await
        .unwrap()
        .with_bottleneck(700_000, Duration::from_secs(5))
        .subscribe(&sfu, "bwe", "narrow", shutdown.clone())
        .await
        .expect("subscribe");

    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end
        && !(narrow.last_layer.load(Relaxed) == 0 && narrow.layer_frames[0].load(Relaxed) >= 60)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = sfu.stats().await.unwrap();
    let summary = format!(
        "wide: {}; narrow: {}; SFU downgrades (loss, bandwidth) {:?}, switches {}",
        layers(&wide),
        layers(&narrow),
        stats.layer_downgrades,
        stats.layer_switches
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
        stats.layer_downgrades[1] >= 1,
        "the estimate moved it: {summary}"
    );
    assert_eq!(
        wide.bad_frames.load(Relaxed) + narrow.bad_frames.load(Relaxed),
        0
    );
    shutdown.cancel();
}
