//! The counters the SFU core keeps in plain integers, exported by [`super::metrics`].

/// Counters kept by the core in plain integers; the server exports them as metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// Classes with a connected-or-connecting publisher.
    pub publishers: usize,
    /// Subscribers (all classes).
    pub subscribers: usize,
    /// Datagrams sent to subscribers (RTP, RTX and RTCP).
    pub forwarded_packets: u64,
    /// Bytes of those datagrams.
    pub forwarded_bytes: u64,
    /// Media frames handed to subscribers' packetizers.
    pub forwarded_frames: u64,
    /// Keyframe requests sent to publishers: (subscriber PLI/FIR, new subscriber, loss, layer
    /// switch).
    pub keyframe_requests: [u64; 4],
    /// NACKs received from subscribers (answered by RTX from the send buffer).
    pub nacks_from_subscribers: u64,
    /// NACKs sent to publishers for gaps in their streams.
    pub nacks_to_publishers: u64,
    /// Simulcast layer switches of subscribers (each on a keyframe of the new layer).
    pub layer_switches: u64,
    /// Times a subscriber's wanted layer was lowered: (loss in its receiver reports, its
    /// bandwidth estimate).
    pub layer_downgrades: [u64; 2],
    /// Times the link of a subscriber held below its best layers by its bandwidth estimate was
    /// probed again.
    pub bandwidth_reprobes: u64,
    /// Peers dropped because they did not connect within [`SfuConfig::offer_timeout`] (mostly
    /// subscribers that never answered the SFU's offer).
    pub expired: u64,
    /// Service time of received batches — from reading the first datagram to handing the last
    /// resulting datagram to the socket — as a log2 histogram: bucket `i` counts times in
    /// `[2^i, 2^(i+1))` µs (bucket 0 also holds 0). The I/O layer records it.
    pub service_time_us: [u64; 24],
}

impl SfuStats {
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
