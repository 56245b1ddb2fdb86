//! A rate limit for log lines that an outside party can trigger again and again (a bad packet,
//! a refused connection): at most one line per kind and interval, with the number of lines
//! left out since the last one, so one noisy peer cannot flood the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Allows one log line per kind per interval; counts the rest.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    kinds: Mutex<HashMap<&'static str, Kind>>,
}

#[derive(Debug)]
struct Kind {
    last: Instant,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter that lets one line of each kind through per `interval`.
    pub fn new(interval: Duration) -> LogLimiter {
        LogLimiter {
            interval,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(n)` if a line of `kind` may be logged now, `n` being how many were left out since
    /// the last one; `None` if it is to be left out (and counted).
    pub fn check(&self, kind: &'static str) -> Option<u64> {
        self.check_at(kind, Instant::now())
    }

    /// [`check`](Self::check) at a given time.
    pub fn check_at(&self, kind: &'static str, now: Instant) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        match kinds.get_mut(kind) {
            Some(k) if now.saturating_duration_since(k.last) < self.interval => {
                k.suppressed += 1;
                None
            }
            Some(k) => {
                k.last = now;
                Some(std::mem::take(&mut k.suppressed))
            }
            None => {
                kinds.insert(
                    kind,
                    Kind {
                        last: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_left_out() {
        let l = LogLimiter::new(Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(l.check_at("a", t), Some(0));
        for i in 1..1000 {
            assert_eq!(l.check_at("a", t + Duration::from_millis(i)), None);
        }
        assert_eq!(l.check_at("b", t), Some(0), "kinds are separate");
        assert_eq!(l.check_at("a", t + Duration::from_secs(10)), Some(999));
        assert_eq!(l.check_at("a", t + Duration::from_secs(11)), None);
    }
}
