//! Persistent class records in an embedded SQLite database (in the data directory), so class links
//! survive a restart, and each live class's saved state (the hub's snapshot: members and their
//! resume identities, lock, rights, hands, recent chat), so its clients resume after a restart.
//! [`accounts`] adds the staff accounts, their sessions and setup links
//! ([`SqliteAccounts`], the SQLite [`AccountStore`](crate::accounts::AccountStore)).
//! Class lists (students with personal links, and the shared-link setting) are in [`classlists`].
//!
//! The API is synchronous: the server calls it from `spawn_blocking` or holds the [`Store`] behind a
//! mutex ([`Store`] is `Send`, not `Sync`). The database runs in WAL mode with a busy timeout, and
//! its schema version is kept in `PRAGMA user_version`; a database written by a newer Aula is
//! refused rather than misread.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::protocol::{ClassId, Topology};

mod accounts;
pub use accounts::SqliteAccounts;
mod attendance;
mod classlists;

pub use attendance::LessonRecord;
pub use classlists::StudentRecord;

/// The database file name inside the data directory.
pub const DATABASE_FILE: &str = "aula.sqlite3";

/// The schema version this code writes and reads.
const SCHEMA_VERSION: i64 = 6;

/// A class as stored: what must survive a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassRecord {
    /// The class id, as in `/api/v1/classes/{id}` and in tokens.
    pub id: ClassId,
    /// The display name.
    pub name: String,
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// How media flows in the class.
    pub topology: Topology,
    /// The id of the staff account that created the class and manages it; `None` for a class
    /// created with the admin key (or by open creation), which only admins manage.
    pub owner: Option<String>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory for the database could not be created.
    #[error("cannot create the directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database could not be opened or set up.
    #[error("cannot open the class database {}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// The database was written by a newer version of Aula.
    #[error("the class database {} has schema version {found}, newer than this Aula supports ({SCHEMA_VERSION})", path.display())]
    SchemaTooNew { path: PathBuf, found: i64 },
    /// A class with this id already exists.
    #[error("a class with id {0:?} already exists")]
    Duplicate(ClassId),
    /// A stored row could not be understood.
    #[error("corrupt class record {id:?}: {message}")]
    Corrupt { id: String, message: String },
    /// Any other database error.
    #[error("class database error")]
    Database(#[from] rusqlite::Error),
}

/// The class database. One connection; see the module docs for concurrency.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, creating its parent directory and the
    /// schema, and switching to WAL mode.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        Self::migrate(conn, path)
    }

    /// An in-memory database, for tests of code that needs a store (only this crate's tests use
    /// it, so it is not built into the server).
    #[cfg(test)]
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: PathBuf::from(":memory:"),
            source,
        })?;
        Self::migrate(conn, Path::new(":memory:"))
    }

    fn migrate(conn: Connection, path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(open_err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: path.to_path_buf(),
                found: version,
            });
        }
        if version < 1 {
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS classes (
                     id         TEXT PRIMARY KEY NOT NULL,
                     name       TEXT NOT NULL,
                     created_at INTEGER NOT NULL,
                     topology   TEXT NOT NULL
                 );
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .map_err(open_err)?;
        }
        if version < 2 {
            // Version 2: `Idempotency-Key`s of `POST /api/v1/classes`, stored with the class they
            // created so a retry after a crash finds it.
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS idempotency_keys (
                     caller     TEXT NOT NULL,
                     key        TEXT NOT NULL,
                     class_id   TEXT NOT NULL,
                     created_at INTEGER NOT NULL,
                     PRIMARY KEY (caller, key)
                 );
                 PRAGMA user_version = 2;
                 COMMIT;",
            )
            .map_err(open_err)?;
        }
        if version < 3 {
            // Version 3: each class's live state, as the hub's snapshot in JSON, so a restart
            // (even a crash) gives every client its identity back.
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS live_classes (
                     class_id TEXT PRIMARY KEY NOT NULL,
                     state    TEXT NOT NULL,
                     saved_at INTEGER NOT NULL
                 );
                 PRAGMA user_version = 3;
                 COMMIT;",
            )
            .map_err(open_err)?;
        }
        if version < 4 {
            // Version 4: staff accounts, their sessions and setup links (only token hashes are
            // stored), and each class's owning account.
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS accounts (
                     id            TEXT PRIMARY KEY NOT NULL,
                     email         TEXT NOT NULL UNIQUE,
                     name          TEXT NOT NULL,
                     role          TEXT NOT NULL,
                     disabled      INTEGER NOT NULL DEFAULT 0,
                     password_hash TEXT,
                     created_at    INTEGER NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS sessions (
                     token_hash TEXT PRIMARY KEY NOT NULL,
                     account_id TEXT NOT NULL,
                     created_at INTEGER NOT NULL,
                     expires_at INTEGER NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS sessions_by_account ON sessions (account_id);
                 CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at);
                 CREATE TABLE IF NOT EXISTS setup_tokens (
                     token_hash TEXT PRIMARY KEY NOT NULL,
                     account_id TEXT NOT NULL UNIQUE,
                     expires_at INTEGER NOT NULL
                 );
                 ALTER TABLE classes ADD COLUMN owner TEXT;
                 CREATE INDEX IF NOT EXISTS classes_by_owner ON classes (owner);
                 PRAGMA user_version = 4;
                 COMMIT;",
            )
            .map_err(open_err)?;
        }
        if version < 5 {
            // Version 5: class lists (students with a stable id for their personal links) and
            // whether a class's shared links still let students in.
            conn.execute_batch(&format!(
                "BEGIN; {} PRAGMA user_version = 5; COMMIT;",
                classlists::SCHEMA
            ))
            .map_err(open_err)?;
        }
        if version < 6 {
            // Version 6: each ended lesson's attendance, kept `[attendance] retention_days`.
            conn.execute_batch(&format!(
                "BEGIN; {} PRAGMA user_version = 6; COMMIT;",
                attendance::SCHEMA
            ))
            .map_err(open_err)?;
        }
        Ok(Store { conn })
    }

    /// Saves (replacing) the live state of classes, and deletes that of the `None` ones, in one
    /// transaction. `saved_at` is Unix milliseconds.
    pub fn save_live(
        &self,
        states: &[(ClassId, Option<String>)],
        saved_at: u64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        for (id, state) in states {
            match state {
                Some(state) => tx.execute(
                    "INSERT OR REPLACE INTO live_classes (class_id, state, saved_at)
                     VALUES (?1, ?2, ?3)",
                    params![id, state, to_sql_int(saved_at)],
                )?,
                None => tx.execute("DELETE FROM live_classes WHERE class_id = ?1", params![id])?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    /// Every saved live state: (class id, state), for classes that still exist.
    pub fn live_states(&self) -> Result<Vec<(ClassId, String)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT l.class_id, l.state FROM live_classes l JOIN classes c ON c.id = l.class_id
             ORDER BY l.class_id",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The class an earlier request of `caller` created with `key`, if the key was stored at or
    /// after `not_before` (Unix seconds) and the class still exists.
    pub fn idempotent_class(
        &self,
        caller: &str,
        key: &str,
        not_before: u64,
    ) -> Result<Option<ClassRecord>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT c.id, c.name, c.created_at, c.topology, c.owner
                 FROM idempotency_keys k JOIN classes c ON c.id = k.class_id
                 WHERE k.caller = ?1 AND k.key = ?2 AND k.created_at >= ?3",
                params![caller, key, to_sql_int(not_before)],
                raw_row,
            )
            .optional()?;
        row.map(RawRow::into_record).transpose()
    }

    /// Adds a class and the `Idempotency-Key` that created it, in one transaction (a crash leaves
    /// both or neither). Keys older than `not_before` are forgotten, and the oldest beyond
    /// `max_keys`.
    pub fn insert_idempotent(
        &self,
        record: &ClassRecord,
        caller: &str,
        key: &str,
        not_before: u64,
        max_keys: usize,
    ) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM idempotency_keys WHERE created_at < ?1",
            params![to_sql_int(not_before)],
        )?;
        tx.execute(
            "DELETE FROM idempotency_keys WHERE rowid IN (
                 SELECT rowid FROM idempotency_keys ORDER BY created_at DESC, rowid DESC
                 LIMIT -1 OFFSET ?1)",
            params![max_keys.saturating_sub(1) as i64],
        )?;
        self.insert(record)?;
        tx.execute(
            "INSERT OR REPLACE INTO idempotency_keys (caller, key, class_id, created_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![caller, key, record.id, to_sql_int(record.created_at)],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Adds a class. Fails with [`StoreError::Duplicate`] when the id is taken.
    pub fn insert(&self, record: &ClassRecord) -> Result<(), StoreError> {
        let result = self.conn.execute(
            "INSERT INTO classes (id, name, created_at, topology, owner)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                record.id,
                record.name,
                to_sql_int(record.created_at),
                topology_to_str(record.topology),
                record.owner
            ],
        );
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Duplicate(record.id.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the name and topology of an existing class (its owner stays). Returns whether it
    /// existed.
    pub fn update(&self, record: &ClassRecord) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE classes SET name = ?2, topology = ?3 WHERE id = ?1",
            params![record.id, record.name, topology_to_str(record.topology)],
        )?;
        Ok(n > 0)
    }

    /// The class with this id, if any.
    pub fn get(&self, id: &str) -> Result<Option<ClassRecord>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, name, created_at, topology, owner FROM classes WHERE id = ?1",
                params![id],
                raw_row,
            )
            .optional()?;
        row.map(RawRow::into_record).transpose()
    }

    /// Every class, oldest first (ties by id).
    pub fn list(&self) -> Result<Vec<ClassRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, created_at, topology, owner FROM classes ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], raw_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.into_record()?);
        }
        Ok(out)
    }

    /// Removes a class, its saved live state and its class list. Returns whether it existed.
    pub fn delete(&self, id: &str) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM live_classes WHERE class_id = ?1", params![id])?;
        self.delete_class_list(id)?;
        self.delete_lessons(id)?;
        let n = self
            .conn
            .execute("DELETE FROM classes WHERE id = ?1", params![id])?;
        Ok(n > 0)
    }
}

struct RawRow {
    id: String,
    name: String,
    created_at: i64,
    topology: String,
    owner: Option<String>,
}

fn raw_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at: row.get(2)?,
        topology: row.get(3)?,
        owner: row.get(4)?,
    })
}

impl RawRow {
    fn into_record(self) -> Result<ClassRecord, StoreError> {
        let corrupt = |message: String| StoreError::Corrupt {
            id: self.id.clone(),
            message,
        };
        let topology = topology_from_str(&self.topology)
            .ok_or_else(|| corrupt(format!("unknown topology {:?}", self.topology)))?;
        let created_at = u64::try_from(self.created_at)
            .map_err(|_| corrupt(format!("negative created_at {}", self.created_at)))?;
        Ok(ClassRecord {
            id: self.id,
            name: self.name,
            created_at,
            topology,
            owner: self.owner,
        })
    }
}

/// SQLite integers are signed; Unix seconds fit easily, anything larger is clamped.
pub(crate) fn to_sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The topology's protocol name (`p2p`, `sfu`, `auto`).
fn topology_to_str(t: Topology) -> String {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::String(s)) => s,
        _ => unreachable!("Topology serializes to a string"),
    }
}

fn topology_from_str(s: &str) -> Option<Topology> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

#[cfg(test)]
mod tests;
