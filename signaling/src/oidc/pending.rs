//! Sign-ins in progress: what `/auth/oidc/start` remembers until the provider sends the person
//! back to `/auth/oidc/callback`.
//!
//! Keyed by the `state` parameter (random, single use). Each entry holds the ID token's expected
//! `nonce`, the PKCE verifier, and the random value of the browser's short-lived cookie, so a
//! callback is only accepted in the browser that started it (no login CSRF: an attacker cannot
//! make someone else's browser finish the attacker's sign-in).
//!
//! Sans-IO (the caller passes the time) and bounded: an entry lives [`PENDING_TTL_MS`]; when
//! [`MAX_PENDING`] are waiting, expired ones are dropped and, if none had expired, a new sign-in
//! is refused (the caller answers "busy, try again") rather than pushing out people who are
//! half-way through theirs. Starts are also limited per address by the caller.

use std::collections::HashMap;

/// How long a person has to sign in at the provider: 10 minutes.
pub const PENDING_TTL_MS: u64 = 10 * 60 * 1000;

/// Most sign-ins waiting at once.
pub const MAX_PENDING: usize = 10_000;

/// One sign-in waiting for its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier sent with the code.
    pub pkce_verifier: String,
    /// The value of the browser's `aula-oidc` cookie set by the start.
    pub browser: String,
    /// When the sign-in started (Unix milliseconds).
    pub started_ms: u64,
}

/// The store is full of sign-ins that have not expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-ins are in progress")]
pub struct Full;

/// Sign-ins in progress, by `state`.
#[derive(Debug)]
pub struct PendingLogins {
    capacity: usize,
    ttl_ms: u64,
    by_state: HashMap<String, PendingLogin>,
}

impl Default for PendingLogins {
    fn default() -> Self {
        PendingLogins::new(MAX_PENDING, PENDING_TTL_MS)
    }
}

impl PendingLogins {
    /// At most `capacity` entries, each living `ttl_ms`.
    pub fn new(capacity: usize, ttl_ms: u64) -> Self {
        PendingLogins {
            capacity: capacity.max(1),
            ttl_ms,
            by_state: HashMap::new(),
        }
    }

    /// Sign-ins waiting now (expired ones may still be counted until the store needs room).
    pub fn len(&self) -> usize {
        self.by_state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_state.is_empty()
    }

    fn expired(&self, login: &PendingLogin, now_ms: u64) -> bool {
        now_ms.saturating_sub(login.started_ms) >= self.ttl_ms
    }

    /// Remembers a new sign-in. A `state` already waiting (a 256-bit random value: it does not
    /// happen) is replaced.
    pub fn insert(&mut self, state: String, login: PendingLogin, now_ms: u64) -> Result<(), Full> {
        if self.by_state.len() >= self.capacity && !self.by_state.contains_key(&state) {
            let ttl = self.ttl_ms;
            self.by_state
                .retain(|_, l| now_ms.saturating_sub(l.started_ms) < ttl);
            if self.by_state.len() >= self.capacity {
                return Err(Full);
            }
        }
        self.by_state.insert(state, login);
        Ok(())
    }

    /// Takes the sign-in of `state`: once only, and not after it expired.
    pub fn take(&mut self, state: &str, now_ms: u64) -> Option<PendingLogin> {
        let login = self.by_state.remove(state)?;
        (!self.expired(&login, now_ms)).then_some(login)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn login(started_ms: u64) -> PendingLogin {
        PendingLogin {
            nonce: format!("n{started_ms}"),
            pkce_verifier: "v".into(),
            browser: "b".into(),
            started_ms,
        }
    }

    #[test]
    fn a_state_is_taken_once_and_not_after_it_expired() {
        let mut p = PendingLogins::new(10, 1000);
        p.insert("s1".into(), login(0), 0).unwrap();
        p.insert("s2".into(), login(0), 0).unwrap();
        assert_eq!(p.take("s1", 999), Some(login(0)));
        assert_eq!(p.take("s1", 999), None, "single use");
        assert_eq!(p.take("s2", 1000), None, "expired");
        assert_eq!(p.take("unknown", 0), None);
        assert!(p.is_empty());
    }

    #[test]
    fn a_full_store_drops_expired_sign_ins_then_refuses() {
        let mut p = PendingLogins::new(2, 1000);
        p.insert("a".into(), login(0), 0).unwrap();
        p.insert("b".into(), login(500), 500).unwrap();
        assert_eq!(p.insert("c".into(), login(900), 900), Err(Full));
        // "a" has expired at 1000: it makes room, "b" is kept.
        p.insert("c".into(), login(1000), 1000).unwrap();
        assert_eq!(p.len(), 2);
        assert!(p.take("b", 1000).is_some());
        assert!(p.take("a", 1000).is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8),
        Take(u8),
        Wait(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..24).prop_map(Op::Insert),
            (0u8..24).prop_map(Op::Take),
            (0u16..400).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Against a model: never more than the capacity, a sign-in is taken at most once, never
        /// after its lifetime, and a refusal only happens when every waiting one is still alive.
        #[test]
        fn bounded_single_use_and_expiring(ops in proptest::collection::vec(op(), 1..200)) {
            let (capacity, ttl) = (5usize, 1000u64);
            let mut p = PendingLogins::new(capacity, ttl);
            let mut model: HashMap<String, u64> = HashMap::new();
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Wait(ms) => now += u64::from(ms),
                    Op::Insert(k) => {
                        let state = format!("s{k}");
                        let result = p.insert(state.clone(), login(now), now);
                        let live = model.values().filter(|t| now - **t < ttl).count();
                        if result.is_err() {
                            prop_assert!(!model.contains_key(&state));
                            prop_assert!(live >= capacity, "refused with {live} alive");
                        } else {
                            model.insert(state, now);
                        }
                        model.retain(|s, t| now - *t < ttl || p.by_state.contains_key(s));
                    }
                    Op::Take(k) => {
                        let state = format!("s{k}");
                        let got = p.take(&state, now);
                        let expected = model.remove(&state).filter(|t| now - *t < ttl);
                        prop_assert_eq!(got.map(|l| l.started_ms), expected);
                    }
                }
                prop_assert!(p.len() <= capacity);
            }
        }
    }
}
