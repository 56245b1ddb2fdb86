//! One-time setup links: how a new account (or one whose password was reset) chooses its
//! password. The link carries a random token in its fragment (`/setup#token=…`), which browsers
//! never send to a server or put in a log; only the token's hash is stored, with an expiry
//! (`[accounts] setup_link_lifetime_secs`, 24 h by default). A new link replaces the account's
//! earlier one, and choosing the password uses the link up.

use super::session::token_hash;
use super::{normalise_email, normalise_name, Account, AccountError, AccountStore, NewAccount};

/// A setup link just issued.
#[derive(Debug, Clone)]
pub struct SetupLink {
    /// The secret token (shown once, never stored).
    pub token: String,
    /// `<public_url>/setup#token=<token>`.
    pub url: String,
    /// When the link stops working, Unix seconds.
    pub expires_at: u64,
}

/// Issues a fresh setup link for an existing account, replacing its earlier one.
pub fn issue_link(
    store: &dyn AccountStore,
    account_id: &str,
    public_url: &str,
    now: u64,
    lifetime_secs: u64,
) -> Result<SetupLink, AccountError> {
    let token = crate::secrets::generate();
    let expires_at = now.saturating_add(lifetime_secs);
    store.create_setup_token(&token_hash(&token), account_id, expires_at)?;
    Ok(SetupLink {
        url: format!("{public_url}/setup#token={token}"),
        token,
        expires_at,
    })
}

/// Adds an account (email and name checked and normalised) and issues its setup link: what
/// `aula account add` and `POST /api/v1/accounts` do.
pub fn add_account(
    store: &dyn AccountStore,
    new: &NewAccount,
    public_url: &str,
    now: u64,
    lifetime_secs: u64,
) -> Result<(Account, SetupLink), AccountError> {
    let new = NewAccount {
        email: normalise_email(&new.email)?,
        name: normalise_name(&new.name)?,
        role: new.role,
    };
    let account = store.create_account(&new, now)?;
    let link = issue_link(store, &account.id, public_url, now, lifetime_secs)?;
    Ok((account, link))
}

/// Resets an account's password: clears it (which ends every session) and issues a new setup
/// link. `None` when there is no such account.
pub fn reset(
    store: &dyn AccountStore,
    account_id: &str,
    public_url: &str,
    now: u64,
    lifetime_secs: u64,
) -> Result<Option<(Account, SetupLink)>, AccountError> {
    let Some(account) = store.account(account_id)? else {
        return Ok(None);
    };
    store.set_password_hash(&account.id, None)?;
    let link = issue_link(store, &account.id, public_url, now, lifetime_secs)?;
    Ok(Some((account, link)))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::accounts::AccountRole;
    use crate::store::{SqliteAccounts, Store};

    #[test]
    fn a_new_account_gets_a_link_that_finds_it_and_reset_replaces_it() {
        let store = SqliteAccounts::new(Arc::new(Mutex::new(Store::open_in_memory().unwrap())));
        let new = NewAccount {
            email: " Rivera@School.example".into(),
            name: "Ms Rivera ".into(),
            role: AccountRole::Teacher,
        };
        let (account, link) = add_account(&store, &new, "https://aula.example", 100, 50).unwrap();
        assert_eq!(account.email, "rivera@school.example");
        assert_eq!(account.name, "Ms Rivera");
        assert_eq!(
            link.url,
            format!("https://aula.example/setup#token={}", link.token)
        );
        assert_eq!(link.expires_at, 150);
        let found = store
            .setup_token_account(&token_hash(&link.token), 120)
            .unwrap();
        assert_eq!(found.map(|a| a.id), Some(account.id.clone()));

        store
            .set_password_hash(&account.id, Some("$argon2id$x"))
            .unwrap();
        let (_, again) = reset(&store, &account.id, "https://aula.example", 130, 50)
            .unwrap()
            .unwrap();
        assert!(store
            .account(&account.id)
            .unwrap()
            .unwrap()
            .password_hash
            .is_none());
        assert!(store
            .setup_token_account(&token_hash(&link.token), 131)
            .unwrap()
            .is_none());
        assert!(store
            .setup_token_account(&token_hash(&again.token), 131)
            .unwrap()
            .is_some());
        assert!(reset(&store, "nobody", "x", 1, 1).unwrap().is_none());
        assert!(
            add_account(&store, &new, "x", 1, 1).is_err(),
            "the email is taken"
        );
    }
}
