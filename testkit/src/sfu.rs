//! Helpers shared by the SFU integration tests: where peers listen, polling, summaries.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::sfu_client::ClientStats;

/// Where the tests' SFU and synthetic peers listen.
pub use crate::net::LOCALHOST;

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it holds.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// What a synthetic subscriber received, for assertion messages.
pub fn summary(s: &ClientStats) -> String {
    format!(
        "frames per layer {:?}, last layer {}, bad {}, gaps {}, nacks sent {}",
        s.layer_frames.each_ref().map(|a| a.load(Relaxed)),
        s.last_layer.load(Relaxed),
        s.bad_frames.load(Relaxed),
        s.gaps.load(Relaxed),
        s.nacks_sent.load(Relaxed),
    )
}
