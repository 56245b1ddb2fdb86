//! A per-line rate limit for the log lines the media stack writes per packet.
//!
//! The SFU's WebRTC stack (str0m, its ICE agent `is`, DTLS in `dimpl`, SCTP) logs at WARN when it
//! parses something odd — a STUN attribute a client never sends, a record it cannot decrypt —
//! once per packet. Anyone who can send UDP to the SFU could fill the disk with them (one bad peer
//! produced 5,775 lines). Each such line (each call site) may log `per_sec` lines a second
//! (`[sfu] log_lines_per_sec`) after a burst of [`BURST_SECS`] times that; the rest are dropped
//! and counted in `aula_log_lines_suppressed_total`. Lines of every other target are untouched.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use tracing::callsite::Identifier;
use tracing::subscriber::Interest;
use tracing::Metadata;
use tracing_subscriber::layer::{Context, Filter};

/// The burst a call site may write at once, in seconds' worth of its rate.
pub const BURST_SECS: f64 = 10.0;

/// Module paths whose lines are limited: the SFU and the crates it drives per packet.
const LIMITED: [&str; 6] = [
    "str0m",
    "is",
    "dimpl",
    "sctp_proto",
    "str0m_proto",
    "aula_relay::sfu",
];

fn limited(target: &str) -> bool {
    LIMITED.iter().any(|m| {
        target
            .strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// The filter: a token bucket per call site of a limited target.
pub struct PerLineLimit {
    per_sec: f64,
    buckets: Mutex<HashMap<Identifier, (f64, Instant)>>,
}

impl PerLineLimit {
    /// Each limited line `per_sec` times a second, after a burst of [`BURST_SECS`] × that.
    pub fn new(per_sec: u32) -> Self {
        PerLineLimit {
            per_sec: f64::from(per_sec.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, site: Identifier, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let burst = self.per_sec * BURST_SECS;
        let (tokens, at) = buckets.entry(site).or_insert((burst, now));
        let refilled = now.saturating_duration_since(*at).as_secs_f64() * self.per_sec;
        *tokens = (*tokens + refilled).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl<S> Filter<S> for PerLineLimit {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        if !meta.is_event() || !limited(meta.target()) {
            return true;
        }
        let allowed = self.take(meta.callsite(), Instant::now());
        if !allowed {
            metrics::counter!("aula_log_lines_suppressed_total").increment(1);
        }
        allowed
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        // Limited lines are decided per event, so their interest must not be cached.
        if meta.is_event() && limited(meta.target()) {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_media_stack_is_limited_and_nothing_else() {
        for t in [
            "str0m",
            "str0m::rtp::srtp",
            "is::stun",
            "dimpl",
            "aula_relay::sfu::core",
        ] {
            assert!(limited(t), "{t}");
        }
        for t in ["island", "aula_relay::turn", "aula_signaling::ws", "aula"] {
            assert!(!limited(t), "{t}");
        }
    }
}
