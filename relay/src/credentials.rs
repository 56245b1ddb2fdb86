//! TURN REST API credentials (the scheme of coturn's `use-auth-secret`).
//!
//! The username is `expiry:identity`, where `expiry` is a Unix time in seconds, and the password
//! is `base64(HMAC-SHA1(secret, username))`. Signaling mints them per peer; any relay that knows
//! the shared secret verifies them without a database, so standard TURN tools interoperate.

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// A username/password pair for a TURN server using the REST API scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    pub username: String,
    pub password: String,
    /// Unix time (seconds) after which the relay refuses them.
    pub expires_at: u64,
}

/// Mints credentials for `identity` valid until `now_unix + ttl_secs`.
///
/// A `:` in `identity` is replaced so the expiry stays the first field.
pub fn mint(secret: &str, identity: &str, now_unix: u64, ttl_secs: u64) -> TurnCredentials {
    let expires_at = now_unix.saturating_add(ttl_secs);
    let username = format!("{expires_at}:{}", identity.replace(':', "_"));
    let password = password_for(secret, &username);
    TurnCredentials {
        username,
        password,
        expires_at,
    }
}

/// The password the REST API scheme assigns to `username`.
pub fn password_for(secret: &str, username: &str) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// The expiry (Unix seconds) encoded in a REST API username, if it has one.
///
/// Accepts both `expiry:identity` and a bare `expiry`.
pub fn username_expiry(username: &str) -> Option<u64> {
    username.split(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_round_trips() {
        let c = mint("s3cret", "class1:p7", 1_000, 600);
        assert_eq!(c.expires_at, 1_600);
        assert_eq!(c.username, "1600:class1_p7");
        assert_eq!(username_expiry(&c.username), Some(1_600));
        assert_eq!(password_for("s3cret", &c.username), c.password);
        assert_ne!(password_for("other", &c.username), c.password);
    }

    #[test]
    fn known_vector() {
        // Computed independently: printf '1234:user' | openssl dgst -sha1 -hmac secret -binary | base64
        assert_eq!(
            password_for("secret", "1234:user"),
            "TOULffkZMvfceQnPB56NGjcf9ls="
        );
    }
}
