//! Emulated network trouble on a synthetic client's link: a narrow downlink with a router's
//! buffer, and random loss of RTP.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A narrow downlink: received RTP waits in a first-in-first-out queue drained at `bps` (which
/// the test may change while it runs) and is dropped when it would wait longer than `max_delay`
/// (a router's buffer). Congestion shows as growing delay first, as on a real link.
pub(super) struct Bottleneck {
    bps: Arc<AtomicU64>,
    max_delay: Duration,
    queue: VecDeque<(Instant, SocketAddr, Vec<u8>)>,
    /// When the last queued datagram leaves the link.
    busy_until: Instant,
}

impl Bottleneck {
    pub(super) fn new(bps: Arc<AtomicU64>, max_delay: Duration) -> Bottleneck {
        Bottleneck {
            bps,
            max_delay,
            queue: VecDeque::new(),
            busy_until: Instant::now(),
        }
    }

    /// Queues a received datagram behind the ones still on the link, or drops it when the buffer
    /// is full.
    pub(super) fn enqueue(&mut self, source: SocketAddr, data: &[u8]) {
        let now = Instant::now();
        let serialization = data.len() as f64 * 8.0 / self.bps.load(Relaxed) as f64;
        let leaves = self.busy_until.max(now) + Duration::from_secs_f64(serialization);
        if leaves - now <= self.max_delay {
            self.busy_until = leaves;
            self.queue.push_back((leaves, source, data.to_vec()));
        }
    }

    /// The first queued datagram if it has left the link by `now`; otherwise `Err` with when the
    /// next one leaves (`None`: the queue is empty).
    pub(super) fn pop_due(
        &mut self,
        now: Instant,
    ) -> Result<(SocketAddr, Vec<u8>), Option<Instant>> {
        match self.queue.front() {
            Some((at, _, _)) if *at <= now => {
                let (_, source, data) = self.queue.pop_front().expect("front exists");
                Ok((source, data))
            }
            Some((at, _, _)) => Err(Some(*at)),
            None => Err(None),
        }
    }
}

/// Drops a share of RTP datagrams in both directions (an emulated lossy link; ICE, DTLS and
/// RTCP pass, so the connection itself is not at risk).
pub(super) struct RtpLoss {
    per_million: u64,
    state: u64,
}

impl RtpLoss {
    /// Drops `percent` % of datagrams, in a sequence fixed by `seed`.
    pub(super) fn new(percent: f64, seed: u64) -> RtpLoss {
        RtpLoss {
            per_million: (percent * 10_000.0) as u64,
            state: seed | 1,
        }
    }

    pub(super) fn drop_next(&mut self) -> bool {
        // xorshift64*: deterministic for a given seed.
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
        r % 1_000_000 < self.per_million
    }
}

/// Whether a datagram is RTP (not STUN, DTLS or RTCP).
pub(super) fn is_rtp(d: &[u8]) -> bool {
    // RTCP packet types 192..=223 land in 64..=95 once the marker bit is masked (RFC 5761).
    d.len() > 12 && (128..192).contains(&d[0]) && !(64..96).contains(&(d[1] & 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_is_told_from_rtcp_stun_and_dtls() {
        let mut rtp = [0u8; 20];
        rtp[0] = 0x80;
        rtp[1] = 96;
        assert!(is_rtp(&rtp));
        rtp[1] = 0x80 | 96; // marker bit set
        assert!(is_rtp(&rtp));
        rtp[1] = 200; // RTCP sender report
        assert!(!is_rtp(&rtp));
        assert!(!is_rtp(&[
            0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0
        ])); // STUN
        assert!(!is_rtp(&[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])); // DTLS
        assert!(!is_rtp(&rtp[..12]));
    }

    #[test]
    fn loss_drops_about_its_share_in_a_repeatable_sequence() {
        let run = |seed| {
            let mut l = RtpLoss::new(10.0, seed);
            (0..100_000).filter(|_| l.drop_next()).count()
        };
        let dropped = run(7);
        assert!((9_000..11_000).contains(&dropped), "{dropped} of 100000");
        assert_eq!(run(7), dropped);
        assert!(!RtpLoss::new(0.0, 7).drop_next());
    }

    #[test]
    fn the_bottleneck_delays_by_serialization_and_drops_past_its_buffer() {
        let source: SocketAddr = "127.0.0.1:9".parse().unwrap();
        // 8 kbit/s: a 100-byte datagram takes 100 ms on the link; the buffer holds 250 ms.
        let mut b = Bottleneck::new(Arc::new(AtomicU64::new(8_000)), Duration::from_millis(250));
        let start = Instant::now();
        for _ in 0..4 {
            b.enqueue(source, &[0; 100]);
        }
        assert_eq!(
            b.queue.len(),
            2,
            "the third and fourth would wait longer than 250 ms"
        );
        let Err(Some(first)) = b.pop_due(start) else {
            panic!("nothing leaves at once");
        };
        assert!(first >= start + Duration::from_millis(100));
        assert_eq!(
            b.pop_due(first + Duration::from_millis(1))
                .map(|(s, d)| (s, d.len())),
            Ok((source, 100))
        );
        assert!(b.pop_due(first + Duration::from_secs(1)).is_ok());
        assert_eq!(b.pop_due(first + Duration::from_secs(1)), Err(None));
    }
}
