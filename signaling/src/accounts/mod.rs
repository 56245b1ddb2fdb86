//! Staff accounts: who may sign in (admins and teachers), their sign-in sessions and the
//! one-time setup links that let a new account choose its password.
//!
//! - this file: the account types and the [`AccountStore`] trait every storage backend implements
//!   (SQLite today, in [`crate::store`]; a shared store such as Redis later);
//! - [`session`]: session tokens and their cookie, CSRF tokens bound to a session, and
//!   [`session::start_session`], which every way of signing in ends with;
//! - [`password`]: the rules for a new password, Argon2id hashing and checking;
//! - [`setup`]: one-time setup links, adding an account and resetting its password;
//! - [`caller`]: the [`Caller`](caller::Caller) extractor: who sends an API request (the admin
//!   key or a signed-in account) and what it may touch.
//!
//! Only hashes of session and setup tokens are stored: a copy of the database lets no one in.

pub mod caller;
pub mod password;
pub mod session;
pub mod setup;

use serde::{Deserialize, Serialize};

/// What an account may do: an admin everything, a teacher her own classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountRole {
    Admin,
    Teacher,
}

impl AccountRole {
    /// The stored and JSON name: `admin` or `teacher`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountRole::Admin => "admin",
            AccountRole::Teacher => "teacher",
        }
    }

    /// The role named `s` (`admin` or `teacher`).
    pub fn parse(s: &str) -> Option<AccountRole> {
        match s {
            "admin" => Some(AccountRole::Admin),
            "teacher" => Some(AccountRole::Teacher),
            _ => None,
        }
    }
}

/// A staff account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// A random id, e.g. in `/api/v1/accounts/{id}` and as a class's owner.
    pub id: String,
    /// The sign-in email, normalised (see [`normalise_email`]); unique.
    pub email: String,
    /// The display name.
    pub name: String,
    pub role: AccountRole,
    /// A disabled account cannot sign in and its sessions end.
    pub disabled: bool,
    /// The Argon2id hash (PHC string) of the password; `None` until one is chosen (or for an
    /// account that signs in only through single sign-on).
    pub password_hash: Option<String>,
    /// Creation time, Unix seconds.
    pub created_at: u64,
}

/// A new account's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub email: String,
    pub name: String,
    pub role: AccountRole,
}

/// A change to an account; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub role: Option<AccountRole>,
    pub disabled: Option<bool>,
}

/// A signed-in session as stored: the hash of its token, whose it is and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// Hex SHA-256 of the token in the cookie.
    pub token_hash: String,
    pub account_id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; from then on the session is gone.
    pub expires_at: u64,
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Another account has this email.
    #[error("an account with the email {0:?} already exists")]
    DuplicateEmail(String),
    /// An email, name or role that cannot be stored.
    #[error("{0}")]
    Invalid(String),
    /// The storage backend failed.
    #[error("account store: {0}")]
    Store(String),
}

/// Where accounts, sessions and setup links live. Times are Unix seconds passed in by the caller,
/// so an implementation holds no clock. Emails given here are already normalised.
///
/// Revocation is part of the contract: setting a password, disabling and deleting an account end
/// its sessions, and an expired session or one of a disabled account is never returned.
pub trait AccountStore: Send + Sync {
    /// Adds an account; [`AccountError::DuplicateEmail`] when the email is taken.
    fn create_account(&self, new: &NewAccount, now: u64) -> Result<Account, AccountError>;
    /// The account with this id.
    fn account(&self, id: &str) -> Result<Option<Account>, AccountError>;
    /// The account with this (normalised) email.
    fn account_by_email(&self, email: &str) -> Result<Option<Account>, AccountError>;
    /// Every account, oldest first.
    fn accounts(&self) -> Result<Vec<Account>, AccountError>;
    /// The account with this email, or a new one with `name` and `role` (for single sign-on:
    /// the first sign-in creates it). An existing account keeps its name, role and disabled flag;
    /// the caller refuses a disabled one.
    fn find_or_create_external(
        &self,
        email: &str,
        name: &str,
        role: AccountRole,
        now: u64,
    ) -> Result<Account, AccountError>;
    /// Applies `patch`; disabling ends the account's sessions. `None` when there is no such
    /// account.
    fn update_account(
        &self,
        id: &str,
        patch: &AccountPatch,
    ) -> Result<Option<Account>, AccountError>;
    /// Sets (or with `None` clears) the password hash and ends every session of the account.
    /// Returns whether the account exists.
    fn set_password_hash(&self, id: &str, hash: Option<&str>) -> Result<bool, AccountError>;
    /// Deletes the account with its sessions and setup links. Returns whether it existed.
    fn delete_account(&self, id: &str) -> Result<bool, AccountError>;

    /// Stores a new session (and forgets expired ones).
    fn create_session(&self, session: &StoredSession) -> Result<(), AccountError>;
    /// The session with this token hash and its account, unless it has expired or the account
    /// is disabled.
    fn session(
        &self,
        token_hash: &str,
        now: u64,
    ) -> Result<Option<(StoredSession, Account)>, AccountError>;
    /// Ends one session (signing out). Returns whether it existed.
    fn delete_session(&self, token_hash: &str) -> Result<bool, AccountError>;
    /// Ends every session of an account.
    fn delete_sessions_of(&self, account_id: &str) -> Result<(), AccountError>;

    /// Stores a setup link's token hash for an account, replacing the account's earlier one.
    fn create_setup_token(
        &self,
        token_hash: &str,
        account_id: &str,
        expires_at: u64,
    ) -> Result<(), AccountError>;
    /// The account a setup token (by hash) belongs to, if it has not expired; the token stays
    /// usable until [`AccountStore::consume_setup_token`].
    fn setup_token_account(
        &self,
        token_hash: &str,
        now: u64,
    ) -> Result<Option<Account>, AccountError>;
    /// Uses up a setup token. Returns whether it existed (and had not expired).
    fn consume_setup_token(&self, token_hash: &str, now: u64) -> Result<bool, AccountError>;
}

/// Longest email accepted (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// Longest account name, in characters.
pub const MAX_ACCOUNT_NAME: usize = 100;

/// An email as stored and compared: trimmed and lowercased, one `@` with text on both sides, no
/// spaces or control characters. Lowercasing the local part too is a deliberate simplification:
/// schools' mail systems do not tell `Rivera@` from `rivera@`, and staff type either.
pub fn normalise_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    let bad = || AccountError::Invalid(format!("{email:?} is not an email address"));
    if email.is_empty() || email.len() > MAX_EMAIL_LEN {
        return Err(bad());
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(email)
        }
        _ => Err(bad()),
    }
}

/// A display name as stored: trimmed, 1 to [`MAX_ACCOUNT_NAME`] characters, no control
/// characters.
pub fn normalise_name(name: &str) -> Result<String, AccountError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_ACCOUNT_NAME
        || name.chars().any(char::is_control)
    {
        return Err(AccountError::Invalid(format!(
            "the name must be 1 to {MAX_ACCOUNT_NAME} characters, without control characters"
        )));
    }
    Ok(name.to_string())
}

/// A fresh account id: 12 characters from an alphabet without look-alikes.
pub fn new_account_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    rand::random::<[u8; 12]>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            normalise_email("  Rivera@School.Example ").unwrap(),
            "rivera@school.example"
        );
        for bad in [
            "",
            "rivera",
            "@school.example",
            "rivera@",
            "a@b@c",
            "a b@c.d",
            "a@b\u{7}",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@school.example", "a".repeat(250));
        assert!(normalise_email(&long).is_err());
    }

    #[test]
    fn names_and_roles() {
        assert_eq!(normalise_name("  Ms Rivera ").unwrap(), "Ms Rivera");
        assert!(normalise_name(" ").is_err());
        assert!(normalise_name("a\nb").is_err());
        assert!(normalise_name(&"x".repeat(MAX_ACCOUNT_NAME + 1)).is_err());
        for role in [AccountRole::Admin, AccountRole::Teacher] {
            assert_eq!(AccountRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(AccountRole::parse("student"), None);
        assert_eq!(new_account_id().len(), 12);
        assert_ne!(new_account_id(), new_account_id());
    }
}
