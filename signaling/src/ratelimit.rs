//! Token-bucket rate limiters, sans-IO: the caller passes the time in.

use std::time::{Duration, Instant};

/// Allows `rate` events per second on average, and bursts of up to `burst`.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        let burst = burst.max(1) as f64;
        RateLimiter {
            rate: rate_per_sec as f64,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the next token, for error messages.
    pub fn retry_after(&self) -> Duration {
        if self.tokens >= 1.0 || self.rate == 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
    }
}

/// A token bucket small enough to keep per peer (16 bytes): the rate and burst live with the
/// caller, the time is the caller's milliseconds, and a cost may be a count or a byte size.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    /// What has been spent and not yet refilled; 0 is a full bucket.
    level: f64,
    last_ms: u64,
}

impl Bucket {
    /// Spends `cost` if the bucket (refilling at `rate_per_sec`, holding `burst`) has it.
    pub fn take(&mut self, cost: f64, rate_per_sec: f64, burst: f64, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.last_ms = self.last_ms.max(now_ms);
        self.level = (self.level - elapsed * rate_per_sec).max(0.0);
        if self.level + cost > burst {
            return false;
        }
        self.level += cost;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_spends_a_burst_then_refills_at_the_rate() {
        let mut b = Bucket::default();
        let t0 = 1_000_000;
        assert_eq!((0..10).filter(|_| b.take(1.0, 2.0, 5.0, t0)).count(), 5);
        assert!(
            !b.take(1.0, 2.0, 5.0, t0 + 400),
            "0.8 of a token after 400 ms"
        );
        assert!(b.take(1.0, 2.0, 5.0, t0 + 500));
        assert!(
            b.take(3000.0, 1000.0, 4000.0, t0 + 10_000),
            "costs can be bytes"
        );
        assert!(
            !b.take(5000.0, 1000.0, 4000.0, t0 + 99_000),
            "never more than the burst"
        );
    }

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10, 5, t0);
        assert_eq!((0..8).filter(|_| r.allow(t0)).count(), 5);
        assert!(r.retry_after() > Duration::ZERO);
        // One second later, ten more tokens but capped at the burst of five.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..8).filter(|_| r.allow(t1)).count(), 5);
        let t2 = t1 + Duration::from_millis(100);
        assert!(r.allow(t2));
        assert!(!r.allow(t2));
    }
}
