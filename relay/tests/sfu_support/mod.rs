//! Helpers shared by the SFU integration tests (`common` is the TURN tests' client).

// Each test binary compiles this module and uses part of it.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use aula_relay::sfu::client::ClientStats;

/// Where the tests' SFU and synthetic peers listen.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

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
