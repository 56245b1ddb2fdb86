//! Per-peer request rates of the SFU: a token bucket per (class, peer), time passed in.
//!
//! Each subscribe builds a new str0m connection (DTLS keys, ICE state), the most expensive
//! request a peer can make; a peer asking again and again would spend its SFU worker's core on
//! set-ups. A bucket holds `per_minute` requests and refills evenly over a minute, so a browser
//! resubscribing after a failed link is never held back, while a loop is.

use std::collections::HashMap;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by (class, peer). Buckets that have refilled are forgotten, so the map
/// holds only peers that asked within the last minute.
#[derive(Debug)]
pub struct RequestRate {
    per_minute: u32,
    buckets: HashMap<(String, String), Bucket>,
}

impl RequestRate {
    /// At most `per_minute` requests per peer in any minute (a burst of that many, then one
    /// every `60 / per_minute` s). `0` refuses every request.
    pub fn new(per_minute: u32) -> Self {
        RequestRate {
            per_minute,
            buckets: HashMap::new(),
        }
    }

    /// Takes one request of `peer` at `now`: `Ok` if allowed, otherwise `Err` with how long until
    /// the next one is.
    pub fn take(&mut self, now: Instant, class: &str, peer: &str) -> Result<(), Duration> {
        let cap = f64::from(self.per_minute);
        if self.per_minute == 0 {
            return Err(MINUTE);
        }
        let refill = cap / MINUTE.as_secs_f64();
        self.buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * refill < cap
        });
        let key = (class.to_owned(), peer.to_owned());
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * refill).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / refill))
        }
    }

    /// Peers with a bucket that has not refilled yet (the tests check old buckets go).
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval_per_peer() {
        let t0 = Instant::now();
        let mut r = RequestRate::new(6);
        for _ in 0..6 {
            assert_eq!(r.take(t0, "c", "a"), Ok(()));
        }
        let wait = r.take(t0, "c", "a").unwrap_err();
        assert!(wait > Duration::from_secs(9) && wait <= Duration::from_secs(10));
        // Another peer, and the same name in another class, have their own buckets.
        assert_eq!(r.take(t0, "c", "b"), Ok(()));
        assert_eq!(r.take(t0, "d", "a"), Ok(()));
        // One request back every 10 s.
        let t = t0 + Duration::from_secs(10);
        assert_eq!(r.take(t, "c", "a"), Ok(()));
        assert!(r.take(t, "c", "a").is_err());
        // Full buckets are forgotten.
        assert_eq!(r.take(t0 + Duration::from_secs(600), "c", "z"), Ok(()));
        assert_eq!(r.tracked(), 1);
    }

    #[test]
    fn zero_refuses_everything() {
        let mut r = RequestRate::new(0);
        assert!(r.take(Instant::now(), "c", "a").is_err());
    }
}
