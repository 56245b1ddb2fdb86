//! Authentication: stateless nonces (an HMAC over issue time and client IP, nothing stored) and
//! the long-term credential check of TURN REST API usernames (RFC 8489 §9.2).

use super::requests::simple_error;
use super::{Core, FiveTuple, Now};
use crate::credentials;
use crate::turn::stun::{self, attr, code, Class, Message, MessageWriter};
use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::net::IpAddr;

impl<H, R> Core<H, R> {
    fn nonce_mac(&self, issued: u32, client: IpAddr) -> [u8; 8] {
        let mut mac =
            <Hmac<Sha1> as KeyInit>::new_from_slice(&self.nonce_key).expect("any key length");
        mac.update(&issued.to_be_bytes());
        match client {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let tag = mac.finalize().into_bytes();
        tag[..8].try_into().expect("8 bytes")
    }

    /// A stateless nonce: issue time and a MAC over it and the client IP, in base64 (16
    /// characters, all allowed in a NONCE; hex would make every challenge 8 bytes larger).
    fn make_nonce(&self, now: u64, client: IpAddr) -> [u8; 16] {
        let issued = now as u32;
        let mut raw = [0u8; 12];
        raw[..4].copy_from_slice(&issued.to_be_bytes());
        raw[4..].copy_from_slice(&self.nonce_mac(issued, client));
        let mut out = [0u8; 16];
        let n = BASE64
            .encode_slice(raw, &mut out)
            .expect("12 bytes are 16 characters");
        debug_assert_eq!(n, 16);
        out
    }

    /// `Some(true)` fresh, `Some(false)` stale but genuine, `None` forged/garbled.
    fn check_nonce(&self, nonce: &[u8], now: u64, client: IpAddr) -> Option<bool> {
        if nonce.len() != 16 {
            return None;
        }
        let mut raw = [0u8; 12];
        if BASE64.decode_slice(nonce, &mut raw).ok()? != 12 {
            return None;
        }
        let issued = u32::from_be_bytes(raw[..4].try_into().expect("4"));
        if raw[4..] != self.nonce_mac(issued, client) {
            return None;
        }
        let age = (now as u32).wrapping_sub(issued);
        Some(age as u64 <= self.cfg.nonce_lifetime_secs)
    }

    /// Checks credentials; on failure writes the error response and returns `None`.
    pub(super) fn authenticate(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        now: Now,
        out: &mut Vec<u8>,
    ) -> Option<[u8; 16]> {
        let tid = *msg.transaction_id();
        let m = msg.method();
        let challenge = |core: &Self, out: &mut Vec<u8>, code: u16| {
            let nonce = core.make_nonce(now.unix, ft.client.ip());
            // Unauthenticated: no reason phrase, to keep the answer small (amplification).
            let mut w = MessageWriter::new(out, m, Class::Error, &tid);
            w.error_code_only(code)
                .attr(attr::REALM, core.cfg.realm.as_bytes())
                .attr(attr::NONCE, &nonce);
            if msg.has_fingerprint() {
                w.fingerprint();
            }
        };
        let (Some(username), Some(_realm), Some(nonce)) =
            (msg.username(), msg.realm(), msg.nonce())
        else {
            if msg.has_integrity() {
                simple_error(out, m, &tid, code::BAD_REQUEST, msg.has_fingerprint());
            } else {
                // The normal first round trip of every client: not counted as a failure.
                self.stats.auth_missing += 1;
                challenge(self, out, code::UNAUTHORIZED);
            }
            return None;
        };
        if !msg.has_integrity() {
            simple_error(out, m, &tid, code::BAD_REQUEST, msg.has_fingerprint());
            return None;
        }
        match self.check_nonce(nonce, now.unix, ft.client.ip()) {
            Some(true) => {}
            Some(false) => {
                self.stats.auth_stale_nonce += 1;
                challenge(self, out, code::STALE_NONCE);
                return None;
            }
            None => {
                self.stats.auth_stale_nonce += 1;
                challenge(self, out, code::STALE_NONCE);
                return None;
            }
        }
        let Some(expiry) = credentials::username_expiry(username) else {
            self.stats.auth_bad_username += 1;
            challenge(self, out, code::UNAUTHORIZED);
            return None;
        };
        if expiry < now.unix {
            self.stats.auth_expired += 1;
            challenge(self, out, code::UNAUTHORIZED);
            return None;
        }
        if expiry > now.unix.saturating_add(self.cfg.max_credential_ahead_secs) {
            // Minted for longer than this relay accepts: a credential must not outlive the
            // membership it was minted for.
            self.stats.auth_too_far_ahead += 1;
            challenge(self, out, code::UNAUTHORIZED);
            return None;
        }
        let existing = self
            .by_tuple
            .get(ft)
            .and_then(|&id| self.get(id))
            .map(|a| (a.username == username, a.key));
        let key = match existing {
            Some((true, key)) => key,
            _ => {
                let password = credentials::password_for(&self.cfg.secret, username);
                stun::long_term_key(username, &self.cfg.realm, &password)
            }
        };
        if !msg.verify_integrity(&key) {
            self.stats.auth_bad_integrity += 1;
            challenge(self, out, code::UNAUTHORIZED);
            return None;
        }
        if let Some((false, _)) = existing {
            self.stats.auth_wrong_credentials += 1;
            let mut w = MessageWriter::new(out, m, Class::Error, &tid);
            w.error(code::WRONG_CREDENTIALS).integrity(&key);
            if msg.has_fingerprint() {
                w.fingerprint();
            }
            return None;
        }
        Some(key)
    }
}
