//! Class tokens: the signed links that let someone join a class as a teacher or a student.
//!
//! A token is a JWT signed with HS256 under the server's token secret. Its [`Claims`] say which class
//! it opens, with which role, optionally with a fixed display name (and, for a personal link from
//! a class list, the student's id), and until when. Tokens are
//! verified against a clock passed in by the caller (no clock inside), so tests and the sans-IO core
//! control time. A token is valid while `now < exp` (no leeway: the same server mints and checks
//! them, so there is no clock skew to absorb).
//!
//! Only HS256 under this key is accepted: a token signed with another key, with another algorithm
//! (including `none`), or that is not a JWT at all is [`TokenError::Invalid`]; a genuine token past
//! its `exp` is [`TokenError::Expired`].

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::protocol::{ClassId, ErrorCode, Role};

/// The claims carried by a class token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The class this token opens.
    pub class: ClassId,
    /// The role its holder gets in the class.
    pub role: Role,
    /// A fixed display name; when set, the name given in `join` is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The student's id on the class list, in a personal link: a removal bans this id for the
    /// session, and a student taken off the list can no longer join with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<String>,
    /// Issued at, in Unix seconds.
    pub iat: u64,
    /// Expires at, in Unix seconds: the token is refused from this second on.
    pub exp: u64,
}

/// Why a token was refused. The `Display` text is safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// A genuine token whose `exp` has passed.
    #[error("the token expired at {exp} (Unix time); ask for a new link")]
    Expired { exp: u64 },
    /// Malformed, forged, signed with another key or algorithm, or missing claims.
    #[error("the token is not valid")]
    Invalid,
}

impl TokenError {
    /// The protocol error code to report to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenError::Expired { .. } => ErrorCode::TokenExpired,
            TokenError::Invalid => ErrorCode::InvalidToken,
        }
    }
}

/// The server's token signing key (HS256).
#[derive(Clone)]
pub struct TokenKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from the token secret. Use at least 32 random bytes (the generated secret does).
    pub fn new(secret: &[u8]) -> TokenKey {
        let mut validation = Validation::new(Algorithm::HS256);
        // The clock is ours: `exp` is checked in `verify` against the time passed in.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.required_spec_claims.clear();
        TokenKey {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Signs `claims` into a compact JWT.
    pub fn mint(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks the signature and algorithm, then that `now_unix < exp`.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        if now_unix >= claims.exp {
            return Err(TokenError::Expired { exp: claims.exp });
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn claims() -> Claims {
        Claims {
            class: "abc123".into(),
            role: Role::Teacher,
            name: Some("Ms Rivera".into()),
            student: None,
            iat: NOW,
            exp: NOW + 3600,
        }
    }

    fn b64(bytes: &[u8]) -> String {
        // URL-safe base64 without padding, as JWTs use; small enough to write out here.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn round_trip() {
        let key = TokenKey::new(b"a secret of sufficient length!!!");
        let token = key.mint(&claims());
        assert_eq!(key.verify(&token, NOW).unwrap(), claims());
        assert_eq!(key.verify(&token, NOW + 3599).unwrap(), claims());

        let student = Claims {
            role: Role::Student,
            name: None,
            ..claims()
        };
        let token = key.mint(&student);
        assert_eq!(key.verify(&token, NOW).unwrap(), student);

        let personal = Claims {
            role: Role::Student,
            name: Some("Ana García".into()),
            student: Some("st4mzt8q2vxk".into()),
            ..claims()
        };
        let token = key.mint(&personal);
        assert_eq!(key.verify(&token, NOW).unwrap(), personal);
    }

    #[test]
    fn expired_at_exp() {
        let key = TokenKey::new(b"secret");
        let token = key.mint(&claims());
        let err = key.verify(&token, NOW + 3600).unwrap_err();
        assert_eq!(err, TokenError::Expired { exp: NOW + 3600 });
        assert_eq!(err.code(), ErrorCode::TokenExpired);
        assert!(matches!(
            key.verify(&token, NOW + 100_000),
            Err(TokenError::Expired { .. })
        ));
    }

    #[test]
    fn forged_signature_is_invalid() {
        let key = TokenKey::new(b"secret");
        let token = key.mint(&claims());
        let (unsigned, sig) = token.rsplit_once('.').unwrap();
        // Change the first character (a full 6 bits of the MAC, not base64 padding bits).
        let first = if sig.starts_with('A') { 'B' } else { 'A' };
        let sig = format!("{first}{}", &sig[1..]);
        let err = key.verify(&format!("{unsigned}.{sig}"), NOW).unwrap_err();
        assert_eq!(err, TokenError::Invalid);
        assert_eq!(err.code(), ErrorCode::InvalidToken);

        // A changed payload (student promoting itself) under the original signature.
        let (header, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let payload = serde_json::to_vec(&serde_json::json!({
            "class": "abc123", "role": "teacher", "iat": NOW, "exp": NOW + 3600
        }))
        .unwrap();
        let forged = format!("{header}.{}.{sig}", b64(&payload));
        assert_eq!(key.verify(&forged, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn other_key_is_invalid() {
        let token = TokenKey::new(b"one secret").mint(&claims());
        assert_eq!(
            TokenKey::new(b"another secret").verify(&token, NOW),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn other_algorithms_are_invalid() {
        let payload = b64(&serde_json::to_vec(&claims()).unwrap());
        let key = TokenKey::new(b"secret");
        for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None"}"#] {
            let token = format!("{}.{payload}.", b64(header.as_bytes()));
            assert_eq!(
                key.verify(&token, NOW),
                Err(TokenError::Invalid),
                "{header}"
            );
        }
        // HS512 under the same secret: right key, wrong algorithm.
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert_eq!(key.verify(&hs512, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn garbage_and_missing_claims_are_invalid() {
        let key = TokenKey::new(b"secret");
        for token in ["", "garbage", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30."] {
            assert_eq!(
                key.verify(token, NOW),
                Err(TokenError::Invalid),
                "{token:?}"
            );
        }
        // Correctly signed but without `exp`.
        let no_exp = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"class": "abc123", "role": "student", "iat": NOW}),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert_eq!(key.verify(&no_exp, NOW), Err(TokenError::Invalid));
        // Correctly signed but with an unknown role.
        let bad_role = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"class": "abc123", "role": "admin", "iat": NOW, "exp": NOW + 10}),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert_eq!(key.verify(&bad_role, NOW), Err(TokenError::Invalid));
    }
}
