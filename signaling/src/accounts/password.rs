//! Passwords: the rules a new password must pass, and Argon2id hashing and checking.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`, the parameters OWASP
//! recommends), so stronger parameters later still verify the old hashes. Hashing takes tens of
//! milliseconds of CPU: callers in async code run it on the blocking pool.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Longest password accepted, in characters (hashing a huge one would cost the server).
pub const MAX_PASSWORD_LEN: usize = 256;

/// Why a new password is refused; the text is shown to the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRuleError {
    #[error("the password must be at least {0} characters long")]
    TooShort(usize),
    #[error("the password must be at most {MAX_PASSWORD_LEN} characters long")]
    TooLong,
    #[error("this password is one of the most common ones; choose another")]
    Common,
    #[error("the password must not be your email address or name")]
    Personal,
}

/// Passwords too common to allow (every one at least 8 characters, since shorter ones fail the
/// length rule anyway); compared ignoring case.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "12345678",
    "123456789",
    "1234567890",
    "0123456789",
    "87654321",
    "11111111",
    "00000000",
    "12341234",
    "11223344",
    "123123123",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "qwertyui",
    "qwertyuiop",
    "qwerty123",
    "qwerty1234",
    "asdfghjk",
    "asdfghjkl",
    "zxcvbnm1",
    "abcd1234",
    "abcdefgh",
    "abc12345",
    "aa123456",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "basketball",
    "superman",
    "batman123",
    "starwars",
    "trustno1",
    "whatever",
    "welcome1",
    "welcome123",
    "letmein1",
    "letmein123",
    "changeme",
    "changeme1",
    "administrator",
    "admin123",
    "admin1234",
    "computer",
    "internet",
    "michelle",
    "jennifer",
    "corvette",
    "mercedes",
    "maverick",
    "liverpool",
    "chelsea1",
    "arsenal1",
    "pokemon1",
    "minecraft",
    "1234qwer",
    "qazwsxedc",
    "zaq12wsx",
    "monkey123",
    "dragon123",
    "master123",
    "shadow123",
    "freedom1",
    "passpass",
    "test1234",
    "testtest",
    "teacher1",
    "teacher123",
    "teacher1234",
    "school123",
    "school1234",
    "student1",
    "student123",
    "classroom",
    "classroom1",
    "aula1234",
    "aulaaula",
    "summer2024",
    "summer2025",
    "summer2026",
    "winter2025",
    "winter2026",
    "spring2026",
    "autumn2026",
    "september",
    "december1",
    "123456789a",
    "a123456789",
    "q1w2e3r4t5",
    "1234abcd",
];

/// Checks a new password against the rules: `min_len` to [`MAX_PASSWORD_LEN`] characters, not a
/// common password, not the account's email, its local part or its name.
pub fn check_rules(
    password: &str,
    min_len: usize,
    email: &str,
    name: &str,
) -> Result<(), PasswordRuleError> {
    let len = password.chars().count();
    if len < min_len {
        return Err(PasswordRuleError::TooShort(min_len));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(PasswordRuleError::TooLong);
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err(PasswordRuleError::Common);
    }
    let local = email.split('@').next().unwrap_or(email);
    let personal = [email, local, name];
    if personal
        .iter()
        .any(|p| !p.is_empty() && lower == p.to_lowercase())
    {
        return Err(PasswordRuleError::Personal);
    }
    Ok(())
}

/// The Argon2id hash of `password` with a fresh random salt, as a PHC string.
pub fn hash(password: &str) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes make a salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
}

/// Whether `password` matches the stored hash; a hash that cannot be read matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks `password` against the stored hash, or, for an unknown email or an account without a
/// password, against a dummy hash: the answer then takes as long as for a real account, so the
/// timing does not tell whether an email has an account. Always false without a hash.
pub fn verify_or_pretend(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    match stored {
        Some(stored) => verify(password, stored),
        None => {
            let dummy = DUMMY.get_or_init(|| hash("not a real password, only for timing"));
            let _ = verify(password, dummy);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let h = hash("correct horse battery");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterz", &h));
        assert_ne!(h, hash("correct horse battery"), "a fresh salt each time");
        assert!(!verify("x", "not a hash"));
        assert!(verify_or_pretend("correct horse battery", Some(&h)));
        assert!(!verify_or_pretend("correct horse battery", None));
    }

    #[test]
    fn rules() {
        let ok = |p: &str| check_rules(p, 10, "rivera@school.example", "Ms Rivera");
        assert_eq!(ok("short"), Err(PasswordRuleError::TooShort(10)));
        assert_eq!(ok("Password123"), Err(PasswordRuleError::Common));
        assert_eq!(
            ok("rivera@school.example"),
            Err(PasswordRuleError::Personal)
        );
        assert_eq!(
            check_rules("RIVERA", 4, "rivera@school.example", ""),
            Err(PasswordRuleError::Personal)
        );
        assert_eq!(
            ok(&"x".repeat(MAX_PASSWORD_LEN + 1)),
            Err(PasswordRuleError::TooLong)
        );
        assert_eq!(ok("violet staircase 42"), Ok(()));
        // Length counts characters, not bytes.
        assert_eq!(ok("ñññññññññ"), Err(PasswordRuleError::TooShort(10)));
        assert!(COMMON
            .iter()
            .all(|p| p.len() >= 8 && *p == p.to_lowercase()));
    }
}
