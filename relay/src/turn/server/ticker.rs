//! The once-a-second upkeep: re-reads the interface addresses, expires allocations,
//! permissions and channels, logs refusals (rate-limited) and exports the metrics.

use super::interfaces::interface_addresses;
use super::Shared;
use crate::turn::core::Stats;
use crate::turn::metrics;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the interface addresses (the relay's own, for the peer filter) are read again.
const INTERFACE_REFRESH: Duration = Duration::from_secs(10);

pub(super) async fn ticker(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prev = Stats::default();
    let mut interfaces_read = Instant::now();
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if interfaces_read.elapsed() >= INTERFACE_REFRESH {
            // Outside the core's lock: reading the interfaces is a system call.
            let local = interface_addresses();
            shared.core().set_local_addresses(local);
            interfaces_read = Instant::now();
        }
        let (expired, stats, count) = {
            let mut core = shared.core();
            let expired = core.tick(Instant::now());
            (expired, core.stats().clone(), core.allocation_count())
        };
        drop(expired);
        // One line per interval at most, however many packets were refused.
        let refused = stats.denied_peers - prev.denied_peers;
        if refused > 0 {
            if let Some(suppressed) = shared.logs.check("turn-denied-peers") {
                tracing::info!(
                    refused,
                    suppressed,
                    "TURN refused peer addresses (internal or the relay's own host)"
                );
            }
        }
        let too_far = stats.auth_too_far_ahead - prev.auth_too_far_ahead;
        if too_far > 0 {
            if let Some(suppressed) = shared.logs.check("turn-credential-too-far") {
                tracing::warn!(
                    refused = too_far,
                    suppressed,
                    "TURN credentials refused: expiry further ahead than turn.max_credential_lifetime_secs"
                );
            }
        }
        metrics::publish(
            &prev,
            &stats,
            count,
            shared.connections.load(Ordering::Relaxed),
        );
        prev = stats;
    }
}
