//! Class lists in the store: the students a teacher added to a class (each with a stable id
//! that their personal link carries) and the class's setting for shared links.

use rusqlite::{params, OptionalExtension};

use super::{to_sql_int, Store, StoreError};

/// A student on a class list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentRecord {
    /// Stable id, carried by the student's personal link (`student` in the token).
    pub id: String,
    pub class_id: String,
    /// The display name the personal link fixes.
    pub name: String,
    /// An email or the school's own id, as the teacher gave it.
    pub reference: Option<String>,
    /// When the student was added, Unix seconds.
    pub created_at: u64,
}

impl Store {
    /// Adds students to a class list, in one transaction.
    pub fn add_students(&self, students: &[StudentRecord]) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        for s in students {
            tx.execute(
                "INSERT INTO students (id, class_id, name, reference, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    s.id,
                    s.class_id,
                    s.name,
                    s.reference,
                    to_sql_int(s.created_at)
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A class's list, in the order the students were added.
    pub fn students(&self, class_id: &str) -> Result<Vec<StudentRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, class_id, name, reference, created_at FROM students
             WHERE class_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map(params![class_id], student_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many students a class list holds.
    pub fn student_count(&self, class_id: &str) -> Result<usize, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM students WHERE class_id = ?1",
            params![class_id],
            |row| row.get(0),
        )?;
        Ok(n as usize)
    }

    /// One student of a class list, if they are on it.
    pub fn student(
        &self,
        class_id: &str,
        student_id: &str,
    ) -> Result<Option<StudentRecord>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, class_id, name, reference, created_at FROM students
                 WHERE class_id = ?1 AND id = ?2",
                params![class_id, student_id],
                student_row,
            )
            .optional()?)
    }

    /// Takes a student off a class list. Returns whether they were on it.
    pub fn delete_student(&self, class_id: &str, student_id: &str) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM students WHERE class_id = ?1 AND id = ?2",
            params![class_id, student_id],
        )?;
        Ok(n > 0)
    }

    /// Whether the class's shared student link and class code let students in (default: yes).
    pub fn shared_links(&self, class_id: &str) -> Result<bool, StoreError> {
        let on: Option<bool> = self
            .conn
            .query_row(
                "SELECT shared_links FROM class_settings WHERE class_id = ?1",
                params![class_id],
                |row| row.get(0),
            )
            .optional()?;
        Ok(on.unwrap_or(true))
    }

    /// Every class whose shared links are off.
    pub fn classes_without_shared_links(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT class_id FROM class_settings WHERE shared_links = 0")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Turns a class's shared links on or off.
    pub fn set_shared_links(&self, class_id: &str, on: bool) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO class_settings (class_id, shared_links) VALUES (?1, ?2)
             ON CONFLICT (class_id) DO UPDATE SET shared_links = excluded.shared_links",
            params![class_id, on],
        )?;
        Ok(())
    }

    /// Forgets a class's list and settings (with the class).
    pub(super) fn delete_class_list(&self, class_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM students WHERE class_id = ?1",
            params![class_id],
        )?;
        self.conn.execute(
            "DELETE FROM class_settings WHERE class_id = ?1",
            params![class_id],
        )?;
        Ok(())
    }
}

/// The schema of class lists (migration to version 5).
pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS students (
        id         TEXT PRIMARY KEY NOT NULL,
        class_id   TEXT NOT NULL,
        name       TEXT NOT NULL,
        reference  TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS students_by_class ON students (class_id);
    CREATE TABLE IF NOT EXISTS class_settings (
        class_id     TEXT PRIMARY KEY NOT NULL,
        shared_links INTEGER NOT NULL
    );";

fn student_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StudentRecord> {
    let created_at: i64 = row.get(4)?;
    Ok(StudentRecord {
        id: row.get(0)?,
        class_id: row.get(1)?,
        name: row.get(2)?,
        reference: row.get(3)?,
        created_at: created_at.max(0) as u64,
    })
}
