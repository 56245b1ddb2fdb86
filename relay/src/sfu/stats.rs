//! The counters the SFU core keeps in plain integers: one [`Counter`] enum, one array indexed by
//! it, and each counter's metric name and label declared beside it, so adding a counter is one
//! line of the `counters!` table below. [`super::metrics`] exports them.

use std::ops::{Index, IndexMut};

use super::keyframe::KeyframeReason;

/// Declares [`Counter`]: per variant its metric name, an optional label (key = value, when one
/// metric has several counters) and the metric's description.
macro_rules! counters {
    ($($(#[$doc:meta])* $variant:ident => $name:literal $({ $key:literal = $value:literal })?, $help:expr;)*) => {
        /// One counter of [`SfuStats`] (`stats[Counter::LayerSwitches]`), exported as the metric
        /// [`Counter::name`] with the label [`Counter::label`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Counter {
            $($(#[$doc])* $variant,)*
        }

        impl Counter {
            /// Every counter, in index order.
            pub const ALL: &'static [Counter] = &[$(Counter::$variant),*];
            /// How many counters there are.
            pub const COUNT: usize = Counter::ALL.len();

            /// The name of the exported metric.
            pub fn name(self) -> &'static str {
                match self {
                    $(Counter::$variant => $name,)*
                }
            }

            /// The label (key, value) telling this counter from the others of its metric.
            pub fn label(self) -> Option<(&'static str, &'static str)> {
                match self {
                    $(Counter::$variant => counters!(@label $($key = $value)?),)*
                }
            }

            /// The description of the exported metric.
            pub fn help(self) -> &'static str {
                match self {
                    $(Counter::$variant => $help,)*
                }
            }
        }
    };
    (@label) => { None };
    (@label $key:literal = $value:literal) => { Some(($key, $value)) };
}

const KEYFRAME_HELP: &str = "Keyframe requests (PLI/FIR) sent to publishers, by reason (subscriber, new_subscriber, loss, layer_switch)";
const NACK_HELP: &str = "NACKs, by direction (from_subscriber: answered with RTX; to_publisher: gaps in a publisher's stream)";
const DOWNGRADE_HELP: &str =
    "Times a subscriber's wanted simulcast layer was lowered, by cause (loss, bandwidth)";

counters! {
    /// Datagrams sent to subscribers (RTP, RTX and RTCP).
    ForwardedPackets => "aula_sfu_forwarded_packets_total",
        "Datagrams (RTP, RTX, RTCP) the SFU sent to subscribers";
    /// Bytes of those datagrams.
    ForwardedBytes => "aula_sfu_forwarded_bytes_total",
        "Bytes of the datagrams the SFU sent to subscribers";
    /// Keyframe requests to publishers on a subscriber's PLI/FIR.
    KeyframesForSubscriber => "aula_sfu_keyframe_requests_total" { "reason" = "subscriber" }, KEYFRAME_HELP;
    /// Keyframe requests to publishers for a subscriber that has just connected.
    KeyframesForNewSubscriber => "aula_sfu_keyframe_requests_total" { "reason" = "new_subscriber" }, KEYFRAME_HELP;
    /// Keyframe requests to publishers for a gap in their stream that NACK did not repair.
    KeyframesForLoss => "aula_sfu_keyframe_requests_total" { "reason" = "loss" }, KEYFRAME_HELP;
    /// Keyframe requests to publishers for a subscriber's simulcast layer switch.
    KeyframesForLayerSwitch => "aula_sfu_keyframe_requests_total" { "reason" = "layer_switch" }, KEYFRAME_HELP;
    /// NACKs received from subscribers (answered by RTX from the send buffer).
    NacksFromSubscribers => "aula_sfu_nacks_total" { "direction" = "from_subscriber" }, NACK_HELP;
    /// NACKs sent to publishers for gaps in their streams.
    NacksToPublishers => "aula_sfu_nacks_total" { "direction" = "to_publisher" }, NACK_HELP;
    /// Simulcast layer switches of subscribers (each on a keyframe of the new layer).
    LayerSwitches => "aula_sfu_layer_switches_total",
        "Simulcast layer switches for subscribers";
    /// Times a subscriber's wanted layer was lowered for loss in its receiver reports.
    DowngradesForLoss => "aula_sfu_layer_downgrades_total" { "cause" = "loss" }, DOWNGRADE_HELP;
    /// Times a subscriber's wanted layer was lowered for its bandwidth estimate.
    DowngradesForBandwidth => "aula_sfu_layer_downgrades_total" { "cause" = "bandwidth" }, DOWNGRADE_HELP;
    /// Times the link of a subscriber held below its best layers by its bandwidth estimate was
    /// probed again.
    BandwidthReprobes => "aula_sfu_bandwidth_reprobes_total",
        "Times the link of a subscriber held below its best layers by its bandwidth estimate was probed again";
    /// Messages (mostly frames) for another worker of a spanning class that its full channel
    /// refused (that worker had stalled; its subscribers get a keyframe).
    SpanMessagesDropped => "aula_sfu_span_messages_dropped_total",
        "Messages (mostly frames) for another SFU worker of a spanning class dropped because that worker's channel was full";
    /// Peers dropped because they did not connect within [`super::SfuConfig::offer_timeout`]
    /// (mostly subscribers that never answered the SFU's offer).
    Expired => "aula_sfu_expired_total",
        "Peers dropped because they did not connect within sfu.offer_timeout_secs (mostly unanswered subscriber offers)";
}

impl From<KeyframeReason> for Counter {
    fn from(reason: KeyframeReason) -> Counter {
        match reason {
            KeyframeReason::Subscriber => Counter::KeyframesForSubscriber,
            KeyframeReason::NewSubscriber => Counter::KeyframesForNewSubscriber,
            KeyframeReason::Loss => Counter::KeyframesForLoss,
            KeyframeReason::LayerSwitch => Counter::KeyframesForLayerSwitch,
        }
    }
}

/// Counters kept by the core in plain integers; the server exports them as metrics. Index it
/// with a [`Counter`]: `stats[Counter::ForwardedPackets]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// Classes with a connected-or-connecting publisher.
    pub publishers: usize,
    /// Subscribers (all classes).
    pub subscribers: usize,
    counters: [u64; Counter::COUNT],
    /// Media frames handed to subscribers' packetizers (kept for tests, not exported).
    pub forwarded_frames: u64,
    /// Service time of received batches — from reading the first datagram to handing the last
    /// resulting datagram to the socket — as a log2 histogram: bucket `i` counts times in
    /// `[2^i, 2^(i+1))` µs (bucket 0 also holds 0). The I/O layer records it.
    pub service_time_us: [u64; 24],
}

impl Index<Counter> for SfuStats {
    type Output = u64;

    fn index(&self, c: Counter) -> &u64 {
        &self.counters[c as usize]
    }
}

impl IndexMut<Counter> for SfuStats {
    fn index_mut(&mut self, c: Counter) -> &mut u64 {
        &mut self.counters[c as usize]
    }
}

impl std::ops::AddAssign<&SfuStats> for SfuStats {
    /// Adds another worker's counters (the pool's totals).
    fn add_assign(&mut self, other: &SfuStats) {
        self.publishers += other.publishers;
        self.subscribers += other.subscribers;
        for (a, b) in self.counters.iter_mut().zip(other.counters) {
            *a += b;
        }
        self.forwarded_frames += other.forwarded_frames;
        for (a, b) in self.service_time_us.iter_mut().zip(other.service_time_us) {
            *a += b;
        }
    }
}

impl SfuStats {
    /// Records how long a received batch took to turn into sent datagrams.
    pub fn record_service_time(&mut self, d: std::time::Duration) {
        let us = d.as_micros().max(1) as u64;
        let i = (63 - us.leading_zeros() as usize).min(23);
        self.service_time_us[i] += 1;
    }

    /// The `q` quantile (0..=1) of the service-time histogram: the upper bound of its bucket, µs.
    pub fn service_time_quantile(&self, q: f64) -> Option<u64> {
        let total: u64 = self.service_time_us.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.service_time_us.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(1u64 << (i + 1));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_its_own_slot_and_series() {
        let mut s = SfuStats::default();
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "ALL is in index order");
            s[*c] += i as u64 + 1;
        }
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(s[*c], i as u64 + 1);
            let twins = Counter::ALL
                .iter()
                .filter(|o| o.name() == c.name() && o.label() == c.label())
                .count();
            assert_eq!(twins, 1, "{c:?} is the only {} {:?}", c.name(), c.label());
            // (Not one "aula_…" literal here: tests/docs.rs reads those as metric names.)
            let sfu_counter = c
                .name()
                .strip_prefix("aula")
                .is_some_and(|n| n.starts_with("_sfu_"));
            assert!(sfu_counter && c.name().ends_with("_total"), "{}", c.name());
        }
    }

    #[test]
    fn service_time_histogram_quantiles() {
        let mut s = SfuStats::default();
        assert_eq!(s.service_time_quantile(0.5), None);
        for us in [1, 3, 3, 100] {
            s.record_service_time(std::time::Duration::from_micros(us));
        }
        assert_eq!(s.service_time_quantile(0.5), Some(4));
        assert_eq!(s.service_time_quantile(1.0), Some(128));
    }
}
