//! Per-address rate limits, sans-IO (the caller passes the time in).
//!
//! Used for joins and class-code lookups. A whole school may sit behind one NAT address, so these
//! limits bound how fast one address can act, not how many people it holds: a burst large enough
//! for a class arriving together, then a steady rate. IPv6 addresses are limited per /64 (one
//! subscriber's usual allocation), so an attacker cannot get a fresh bucket per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::ratelimit::RateLimiter;

/// Most addresses tracked at once; a full table refuses new addresses until old buckets refill.
const MAX_TRACKED: usize = 100_000;

/// The server's per-address limits on getting into classes.
#[derive(Debug)]
pub struct JoinLimits {
    /// `join` messages that would admit someone new (teachers and resumes are spared).
    pub joins: std::sync::Mutex<PerIpLimiter>,
    /// `POST /api/v1/join` class-code lookups.
    pub code_lookups: std::sync::Mutex<PerIpLimiter>,
}

impl JoinLimits {
    /// Takes one join from `ip`'s bucket if it has one.
    pub fn allow_join(&self, ip: IpAddr) -> bool {
        lock(&self.joins).allow(ip, Instant::now())
    }

    /// Takes one code lookup from `ip`'s bucket if it has one.
    pub fn allow_code_lookup(&self, ip: IpAddr) -> bool {
        lock(&self.code_lookups).allow(ip, Instant::now())
    }
}

fn lock(m: &std::sync::Mutex<PerIpLimiter>) -> std::sync::MutexGuard<'_, PerIpLimiter> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A token bucket per source address (per /64 for IPv6).
#[derive(Debug)]
pub struct PerIpLimiter {
    rate_per_sec: u32,
    burst: u32,
    /// How long an untouched bucket takes to refill completely; it can then be forgotten.
    refill: Duration,
    buckets: HashMap<IpAddr, (RateLimiter, Instant)>,
}

impl PerIpLimiter {
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        let refill = Duration::from_secs_f64(burst.max(1) as f64 / rate_per_sec.max(1) as f64);
        PerIpLimiter {
            rate_per_sec,
            burst,
            refill,
            buckets: HashMap::new(),
        }
    }

    /// Takes one event from `ip`'s bucket if it has one.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = bucket_key(ip);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_TRACKED {
            let refill = self.refill;
            self.buckets
                .retain(|_, (_, last)| now.saturating_duration_since(*last) < refill);
            if self.buckets.len() >= MAX_TRACKED {
                return false;
            }
        }
        let (rate, burst) = (self.rate_per_sec, self.burst);
        let (bucket, last) = self
            .buckets
            .entry(key)
            .or_insert_with(|| (RateLimiter::new(rate, burst, now), now));
        *last = now;
        bucket.allow(now)
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

/// The address a bucket belongs to: IPv4 as is (also when written as an IPv4-mapped IPv6
/// address), IPv6 reduced to its /64.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_burst_and_ipv6_counts_per_64() {
        let t0 = Instant::now();
        let mut l = PerIpLimiter::new(10, 5);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!((0..8).filter(|_| l.allow(a, t0)).count(), 5);
        assert!(l.allow(b, t0), "another address has its own bucket");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(!l.allow(mapped, t0), "IPv4-mapped is the same address");
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!((0..5).filter(|_| l.allow(v6a, t0)).count(), 5);
        assert!(!l.allow(v6b, t0), "same /64, same bucket");
        assert!(
            l.allow(a, t0 + Duration::from_millis(100)),
            "refills at the rate"
        );
    }
}
