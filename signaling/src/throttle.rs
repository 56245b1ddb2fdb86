//! Per-IP token buckets for the admin API: failed admin-key attempts and open class creation
//! ("per IP" is per IPv4 address or IPv6 /64, see [`client_key`]); and the same buckets keyed by
//! anything else ([`KeyedThrottle`]), e.g. failed sign-ins per account.
//!
//! Sans-IO (the caller passes the time) and bounded: when the table is full, addresses whose
//! bucket has refilled are forgotten first, then the table is cleared rather than grown, so a
//! flood of source addresses costs memory only up to [`MAX_TRACKED`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The unit a per-IP limit counts: an IPv4 address (also when IPv4-mapped), or an IPv6 /64 — one
/// host or home network usually holds a whole /64, so counting single IPv6 addresses would give it
/// 2^64 budgets.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// Most addresses tracked at once.
pub const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// `burst` events per address at once, refilled at `burst` per `period`.
#[derive(Debug)]
pub struct IpThrottle(KeyedThrottle<IpAddr>);

impl IpThrottle {
    pub fn new(burst: u32, period: Duration) -> Self {
        IpThrottle(KeyedThrottle::new(burst, period))
    }

    /// `Err(wait)` when `ip` has no event left now, without taking one.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.0.check(&client_key(ip), now)
    }

    /// Takes one event for `ip`; `Err(wait)` when there was none left.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.0.take(client_key(ip), now)
    }
}

/// `burst` events per key at once, refilled at `burst` per `period`; at most [`MAX_TRACKED`]
/// keys.
#[derive(Debug)]
pub struct KeyedThrottle<K> {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: std::hash::Hash + Eq> KeyedThrottle<K> {
    pub fn new(burst: u32, period: Duration) -> Self {
        let burst = f64::from(burst.max(1));
        KeyedThrottle {
            per_sec: burst / period.as_secs_f64().max(0.001),
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when `key` has no event left now, without taking one.
    pub fn check(&self, ip: &K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.lock();
        let Some(bucket) = buckets.get_mut(ip) else {
            return Ok(());
        };
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            Ok(())
        } else {
            Err(self.wait(bucket))
        }
    }

    /// Takes one event for `key`; `Err(wait)` when there was none left.
    pub fn take(&self, ip: K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.lock();
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            let full = |b: &mut Bucket| {
                self.refill(b, now);
                b.tokens < self.burst
            };
            buckets.retain(|_, b| full(b));
            if buckets.len() >= MAX_TRACKED {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.wait(bucket))
        }
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.last = now;
    }

    fn wait(&self, bucket: &Bucket) -> Duration {
        Duration::from_secs_f64(((1.0 - bucket.tokens) / self.per_sec).max(0.0))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Bucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_per_address_then_refill() {
        let t0 = Instant::now();
        let t = IpThrottle::new(3, Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| t.take(a, t0).is_ok()));
        let wait = t.take(a, t0).unwrap_err();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20));
        assert!(t.check(a, t0).is_err());
        assert!(t.check(b, t0).is_ok() && t.take(b, t0).is_ok());
        assert!(t.take(a, t0 + Duration::from_secs(20)).is_ok());
    }

    #[test]
    fn any_key_gets_its_own_budget() {
        let t0 = Instant::now();
        let t = KeyedThrottle::new(2, Duration::from_secs(60));
        assert!(t.take("a@x".to_string(), t0).is_ok() && t.take("a@x".to_string(), t0).is_ok());
        assert!(t.check(&"a@x".to_string(), t0).is_err());
        assert!(t.take("a@x".to_string(), t0).is_err());
        assert!(t.check(&"b@x".to_string(), t0).is_ok());
        assert!(t
            .take("a@x".to_string(), t0 + Duration::from_secs(30))
            .is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        let t0 = Instant::now();
        let t = IpThrottle::new(1, Duration::from_secs(60));
        assert!(t.take("2001:db8::1".parse().unwrap(), t0).is_ok());
        assert!(t.take("2001:db8::2".parse().unwrap(), t0).is_err());
    }
}
