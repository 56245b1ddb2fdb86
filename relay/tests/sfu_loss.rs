//! NACK recovery over lossy links, in both hops: the publisher's uplink to the SFU and each
//! subscriber's downlink lose 4% of RTP datagrams.
//!
//! The loss is emulated in the synthetic clients ([`Client::with_rtp_loss`]) rather than with
//! `tc netem` in a network namespace: the kernel of the build machines has no `sch_netem`
//! ("Specified qdisc kind is unknown", and no modules to load), so a netem test could only fail
//! there. The SFU still sees real gaps on a real socket and str0m's NACK/RTX machinery repairs them.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use aula_relay::sfu::{Counter, Sfu, SfuConfig};
use aula_testkit::sfu::{wait_for, LOCALHOST};
use aula_testkit::sfu_client::{Client, PublisherOptions};
use tokio_util::sync::CancellationToken;

const LOSS_PERCENT: f64 = 4.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_are_recovered_by_nack_in_both_hops() {
    let shutdown = CancellationToken::new();
    let sfu = Sfu::start(SfuConfig::default(), shutdown.clone())
        .await
        .expect("SFU starts");
    let ip = LOCALHOST;
    let epoch = Instant::now();
    let opts = PublisherOptions {
        video_bps: 1_000_000,
        ..PublisherOptions::default()
    };
    let teacher = Client::bind(ip, epoch)
        .await
        .unwrap()
        .with_rtp_loss(LOSS_PERCENT, 1)
        .publish(&sfu, "lossy", "teacher", opts, shutdown.clone())
        .await
        .expect("publish");
    let mut students = Vec::new();
    for i in 0..3 {
        let s = Client::bind(ip, epoch)
            .await
            .unwrap()
            .with_rtp_loss(LOSS_PERCENT, 100 + i)
            .subscribe(&sfu, "lossy", &format!("s{i}"), shutdown.clone())
            .await
            .expect("subscribe");
        students.push(s);
    }
    wait_for(Duration::from_secs(10), || {
        students.iter().all(|s| s.frames.load(Relaxed) > 0)
    })
    .await;
    // Measure 5 s, plus 1.5 s for the last retransmissions and stats intervals.
    let base: Vec<u64> = students.iter().map(|s| s.frames.load(Relaxed)).collect();
    let sent0 = teacher.frames_sent.load(Relaxed);
    tokio::time::sleep(Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = teacher.frames_sent.load(Relaxed) - sent0;
    let received: Vec<(u64, u64, u64, u64)> = students
        .iter()
        .zip(base)
        .map(|(s, b)| {
            (
                s.frames.load(Relaxed).saturating_sub(b),
                s.bad_frames.load(Relaxed),
                s.gaps.load(Relaxed),
                s.nacks_sent.load(Relaxed),
            )
        })
        .collect();
    let stats = sfu.stats().await.unwrap();
    let summary = format!(
        "sent {sent} frames; per subscriber (frames, bad, gaps, NACKs sent): {received:?}; \
         publisher received {} NACKs; SFU: {stats:?}",
        teacher.nacks_received.load(Relaxed)
    );
    println!("{summary}");
    shutdown.cancel();

    // First hop: the SFU NACKed the publisher's gaps. Second hop: it answered subscribers' NACKs.
    assert!(stats[Counter::NacksToPublishers] > 0, "{summary}");
    assert!(teacher.nacks_received.load(Relaxed) > 0, "{summary}");
    assert!(stats[Counter::NacksFromSubscribers] > 0, "{summary}");
    for (frames, bad, _gaps, nacks) in &received {
        assert!(*nacks > 0, "{summary}");
        assert_eq!(*bad, 0, "{summary}");
        // Without retransmission, ~5-packet frames over two 4% hops would lose about a third of
        // the frames; with NACK/RTX nearly all arrive whole.
        assert!(
            *frames * 100 >= sent * 95,
            "NACK recovery should deliver ≥95% of frames: {summary}"
        );
    }
}
