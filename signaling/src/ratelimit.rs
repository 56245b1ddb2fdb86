//! A token-bucket rate limiter, sans-IO: the caller passes the time in.

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

#[cfg(test)]
mod tests {
    use super::*;

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
