//! The signaling server's runtime limits, built from the settings sections: the sections hold
//! every default once, and these conversions are the only place a key meets its runtime field.

use std::time::Duration;

use aula_config::settings::{HttpSettings, JoinSettings, Limits, Settings};

use crate::app::IdempotencyLimits;
use crate::hub::HubLimits;
use crate::listener::Timeouts;
use crate::per_ip::{JoinLimits, PerIpLimiter};
use crate::ws::ConnLimits;

/// How long someone may wait to be let in (a bound, not a setting): half an hour.
const MAX_WAIT_MS: u64 = 30 * 60 * 1000;

/// Most links one `stats` report may carry (a protocol bound, not a setting).
const MAX_STATS_LINKS: usize = 64;

impl HubLimits {
    /// The class hub's limits from `[limits]`, `[joining]` and `[sfu]`; `sfu` says whether the
    /// server runs an SFU.
    pub fn from_settings(settings: &Settings, sfu: bool) -> HubLimits {
        let l = &settings.limits;
        HubLimits {
            max_class_size: l.max_class_size,
            teacher_seats: settings.joining.teacher_seats,
            max_chat_len: l.max_chat_len,
            chat_per_sec: l.chat_per_sec,
            chat_burst: l.chat_burst,
            chat_history: l.chat_history,
            max_name_len: l.max_name_len,
            max_sdp_bytes: l.max_sdp_bytes,
            max_stats_links: MAX_STATS_LINKS,
            max_stats_reason_len: l.max_stats_reason_len,
            stats_interval_ms: l.stats_interval_ms,
            signal_bytes_per_sec: l.signal_bytes_per_sec,
            signal_burst_bytes: l.signal_burst_bytes,
            resume_grace_ms: l.resume_grace_secs * 1000,
            sfu,
            auto_sfu_above: settings.sfu.auto_above,
            // As many may wait as the class has seats: enough for everyone to knock at once.
            max_waiting: l.max_class_size,
            max_wait_ms: MAX_WAIT_MS,
        }
    }
}

/// The configuration's defaults, without an SFU.
impl Default for HubLimits {
    fn default() -> Self {
        HubLimits::from_settings(&Settings::default(), false)
    }
}

impl From<&Limits> for ConnLimits {
    fn from(l: &Limits) -> Self {
        ConnLimits {
            max_frame_bytes: l.max_frame_bytes,
            messages_per_sec: l.messages_per_sec,
            burst: l.burst,
            send_queue_bytes: l.send_queue_bytes,
            join_deadline: Duration::from_secs(l.join_deadline_secs),
            idle_timeout: Duration::from_secs(l.idle_timeout_secs),
            ping_interval: Duration::from_secs(l.ping_interval_secs),
            slow_consumer_close: Duration::from_secs(l.slow_consumer_close_secs),
        }
    }
}

impl From<&HttpSettings> for IdempotencyLimits {
    fn from(h: &HttpSettings) -> Self {
        IdempotencyLimits {
            ttl_secs: h.idempotency_key_ttl_secs,
            max_keys: h.idempotency_keys_max,
        }
    }
}

impl From<&HttpSettings> for Timeouts {
    fn from(h: &HttpSettings) -> Self {
        Timeouts {
            header_read: Duration::from_secs(h.header_read_timeout_secs),
            idle: Duration::from_secs(h.connection_idle_secs),
        }
    }
}

impl From<&JoinSettings> for JoinLimits {
    /// The limiters of the `[joining]` section.
    fn from(j: &JoinSettings) -> Self {
        JoinLimits {
            joins: PerIpLimiter::new(j.joins_per_ip_per_sec, j.join_burst_per_ip).into(),
            code_lookups: PerIpLimiter::new(
                j.code_lookups_per_ip_per_sec,
                j.code_lookup_burst_per_ip,
            )
            .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_defaults_are_the_settings_defaults() {
        let (hub, limits) = (HubLimits::default(), Limits::default());
        assert_eq!(hub.max_class_size, limits.max_class_size);
        assert_eq!(hub.max_sdp_bytes, limits.max_sdp_bytes);
        assert_eq!(hub.resume_grace_ms, limits.resume_grace_secs * 1000);
        assert_eq!(hub.teacher_seats, JoinSettings::default().teacher_seats);
        assert!(!hub.sfu);
    }
}
