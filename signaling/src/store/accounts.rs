//! [`SqliteAccounts`]: the [`AccountStore`] in the class database (tables `accounts`, `sessions`,
//! `setup_tokens`, schema version 4), sharing the class store's one connection.

use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, OptionalExtension};

use super::{to_sql_int, Store};
use crate::accounts::{
    new_account_id, Account, AccountError, AccountPatch, AccountRole, AccountStore, NewAccount,
    StoredSession,
};

/// The SQLite account store: a handle on the shared class [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteAccounts {
    db: Arc<Mutex<Store>>,
}

impl SqliteAccounts {
    pub fn new(db: Arc<Mutex<Store>>) -> SqliteAccounts {
        SqliteAccounts { db }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl From<rusqlite::Error> for AccountError {
    fn from(e: rusqlite::Error) -> Self {
        AccountError::Store(format!("database error: {e}"))
    }
}

const ACCOUNT_COLUMNS: &str = "id, email, name, role, disabled, password_hash, created_at";

fn account_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Account, AccountError>> {
    let id: String = row.get(0)?;
    let role: String = row.get(3)?;
    let created_at: i64 = row.get(6)?;
    let Some(role) = AccountRole::parse(&role) else {
        return Ok(Err(AccountError::Store(format!(
            "corrupt account {id:?}: unknown role {role:?}"
        ))));
    };
    Ok(Ok(Account {
        email: row.get(1)?,
        name: row.get(2)?,
        role,
        disabled: row.get(4)?,
        password_hash: row.get(5)?,
        created_at: u64::try_from(created_at).unwrap_or(0),
        id,
    }))
}

fn unix(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    fn account_where(&self, clause: &str, value: &str) -> Result<Option<Account>, AccountError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {clause} = ?1");
        self.conn
            .query_row(&sql, params![value], account_row)
            .optional()?
            .transpose()
    }

    fn insert_account(&self, new: &NewAccount, now: u64) -> Result<Account, AccountError> {
        let account = Account {
            id: new_account_id(),
            email: new.email.clone(),
            name: new.name.clone(),
            role: new.role,
            disabled: false,
            password_hash: None,
            created_at: now,
        };
        let result = self.conn.execute(
            "INSERT INTO accounts (id, email, name, role, disabled, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, 0, NULL, ?5)",
            params![
                account.id,
                account.email,
                account.name,
                account.role.as_str(),
                to_sql_int(now)
            ],
        );
        match result {
            Ok(_) => Ok(account),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(AccountError::DuplicateEmail(new.email.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl AccountStore for SqliteAccounts {
    fn create_account(&self, new: &NewAccount, now: u64) -> Result<Account, AccountError> {
        self.store().insert_account(new, now)
    }

    fn account(&self, id: &str) -> Result<Option<Account>, AccountError> {
        self.store().account_where("id", id)
    }

    fn account_by_email(&self, email: &str) -> Result<Option<Account>, AccountError> {
        self.store().account_where("email", email)
    }

    fn accounts(&self) -> Result<Vec<Account>, AccountError> {
        let store = self.store();
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id");
        let mut stmt = store.conn.prepare(&sql)?;
        let rows = stmt.query_map([], account_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    fn find_or_create_external(
        &self,
        email: &str,
        name: &str,
        role: AccountRole,
        now: u64,
    ) -> Result<Account, AccountError> {
        let store = self.store();
        // One connection behind the lock: no other writer between the look-up and the insert.
        if let Some(account) = store.account_where("email", email)? {
            return Ok(account);
        }
        let new = NewAccount {
            email: email.to_string(),
            name: name.to_string(),
            role,
        };
        store.insert_account(&new, now)
    }

    fn update_account(
        &self,
        id: &str,
        patch: &AccountPatch,
    ) -> Result<Option<Account>, AccountError> {
        let store = self.store();
        let tx = store.conn.unchecked_transaction()?;
        let Some(mut account) = store.account_where("id", id)? else {
            return Ok(None);
        };
        if let Some(name) = &patch.name {
            account.name = name.clone();
        }
        if let Some(role) = patch.role {
            account.role = role;
        }
        if let Some(disabled) = patch.disabled {
            account.disabled = disabled;
        }
        tx.execute(
            "UPDATE accounts SET name = ?2, role = ?3, disabled = ?4 WHERE id = ?1",
            params![id, account.name, account.role.as_str(), account.disabled],
        )?;
        if account.disabled {
            tx.execute("DELETE FROM sessions WHERE account_id = ?1", params![id])?;
        }
        tx.commit()?;
        Ok(Some(account))
    }

    fn set_password_hash(&self, id: &str, hash: Option<&str>) -> Result<bool, AccountError> {
        let store = self.store();
        let tx = store.conn.unchecked_transaction()?;
        let n = tx.execute(
            "UPDATE accounts SET password_hash = ?2 WHERE id = ?1",
            params![id, hash],
        )?;
        tx.execute("DELETE FROM sessions WHERE account_id = ?1", params![id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn delete_account(&self, id: &str) -> Result<bool, AccountError> {
        let store = self.store();
        let tx = store.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM sessions WHERE account_id = ?1", params![id])?;
        tx.execute(
            "DELETE FROM setup_tokens WHERE account_id = ?1",
            params![id],
        )?;
        let n = tx.execute("DELETE FROM accounts WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn create_session(&self, session: &StoredSession) -> Result<(), AccountError> {
        let store = self.store();
        let tx = store.conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM sessions WHERE expires_at <= ?1",
            params![to_sql_int(session.created_at)],
        )?;
        tx.execute(
            "INSERT INTO sessions (token_hash, account_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                session.token_hash,
                session.account_id,
                to_sql_int(session.created_at),
                to_sql_int(session.expires_at)
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn session(
        &self,
        token_hash: &str,
        now: u64,
    ) -> Result<Option<(StoredSession, Account)>, AccountError> {
        let store = self.store();
        let row = store
            .conn
            .query_row(
                "SELECT account_id, created_at, expires_at FROM sessions
                 WHERE token_hash = ?1 AND expires_at > ?2",
                params![token_hash, to_sql_int(now)],
                |row| {
                    Ok(StoredSession {
                        token_hash: token_hash.to_string(),
                        account_id: row.get(0)?,
                        created_at: unix(row.get(1)?),
                        expires_at: unix(row.get(2)?),
                    })
                },
            )
            .optional()?;
        let Some(session) = row else {
            return Ok(None);
        };
        match store.account_where("id", &session.account_id)? {
            Some(account) if !account.disabled => Ok(Some((session, account))),
            _ => Ok(None),
        }
    }

    fn delete_session(&self, token_hash: &str) -> Result<bool, AccountError> {
        let n = self.store().conn.execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            params![token_hash],
        )?;
        Ok(n > 0)
    }

    fn delete_sessions_of(&self, account_id: &str) -> Result<(), AccountError> {
        self.store().conn.execute(
            "DELETE FROM sessions WHERE account_id = ?1",
            params![account_id],
        )?;
        Ok(())
    }

    fn create_setup_token(
        &self,
        token_hash: &str,
        account_id: &str,
        expires_at: u64,
    ) -> Result<(), AccountError> {
        self.store().conn.execute(
            "INSERT OR REPLACE INTO setup_tokens (token_hash, account_id, expires_at)
             VALUES (?1, ?2, ?3)",
            params![token_hash, account_id, to_sql_int(expires_at)],
        )?;
        Ok(())
    }

    fn setup_token_account(
        &self,
        token_hash: &str,
        now: u64,
    ) -> Result<Option<Account>, AccountError> {
        let store = self.store();
        let id: Option<String> = store
            .conn
            .query_row(
                "SELECT account_id FROM setup_tokens WHERE token_hash = ?1 AND expires_at > ?2",
                params![token_hash, to_sql_int(now)],
                |row| row.get(0),
            )
            .optional()?;
        match id {
            Some(id) => store.account_where("id", &id),
            None => Ok(None),
        }
    }

    fn consume_setup_token(&self, token_hash: &str, now: u64) -> Result<bool, AccountError> {
        let n = self.store().conn.execute(
            "DELETE FROM setup_tokens WHERE token_hash = ?1 AND expires_at > ?2",
            params![token_hash, to_sql_int(now)],
        )?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests;
