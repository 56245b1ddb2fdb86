//! Attendance in the store: each lesson a teacher ended (its start, end and who took part), kept
//! for `[attendance] retention_days` and deletable by the school.

use rusqlite::{params, OptionalExtension};

use super::{to_sql_int, Store, StoreError};
use crate::protocol::LessonSummary;

/// One ended lesson of a class, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LessonRecord {
    /// The session id in `/api/v1/classes/{id}/sessions/{sid}`.
    pub id: i64,
    pub class_id: String,
    /// Its start, end and attendance (times in Unix milliseconds).
    pub summary: LessonSummary,
}

impl Store {
    /// Records a lesson that ended. Returns its session id.
    pub fn add_lesson(&self, class_id: &str, summary: &LessonSummary) -> Result<i64, StoreError> {
        let json = serde_json::to_string(&summary.attendance).expect("attendance serializes");
        self.conn.execute(
            "INSERT INTO lessons (class_id, started, ended, attendance) VALUES (?1, ?2, ?3, ?4)",
            params![
                class_id,
                to_sql_int(summary.started),
                to_sql_int(summary.ended),
                json
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// A class's recorded lessons, newest first.
    pub fn lessons(&self, class_id: &str) -> Result<Vec<LessonRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, class_id, started, ended, attendance FROM lessons
             WHERE class_id = ?1 ORDER BY ended DESC, id DESC",
        )?;
        let rows = stmt.query_map(params![class_id], raw_lesson)?;
        rows.map(|r| r?.into_record()).collect()
    }

    /// One recorded lesson of a class.
    pub fn lesson(&self, class_id: &str, id: i64) -> Result<Option<LessonRecord>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, class_id, started, ended, attendance FROM lessons
                 WHERE class_id = ?1 AND id = ?2",
                params![class_id, id],
                raw_lesson,
            )
            .optional()?;
        row.map(RawLesson::into_record).transpose()
    }

    /// Deletes one recorded lesson. Returns whether it existed.
    pub fn delete_lesson(&self, class_id: &str, id: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM lessons WHERE class_id = ?1 AND id = ?2",
            params![class_id, id],
        )?;
        Ok(n > 0)
    }

    /// Deletes every recorded lesson of a class. Returns how many there were.
    pub fn delete_lessons(&self, class_id: &str) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM lessons WHERE class_id = ?1", params![class_id])?)
    }

    /// Deletes the lessons that ended before `before_ms` (Unix milliseconds). Returns how many.
    pub fn purge_lessons(&self, before_ms: u64) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM lessons WHERE ended < ?1",
            params![to_sql_int(before_ms)],
        )?)
    }
}

/// The schema of attendance records (migration to version 6).
pub(super) const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS lessons (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        class_id   TEXT NOT NULL,
        started    INTEGER NOT NULL,
        ended      INTEGER NOT NULL,
        attendance TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS lessons_by_class ON lessons (class_id);
    CREATE INDEX IF NOT EXISTS lessons_by_end ON lessons (ended);";

struct RawLesson {
    id: i64,
    class_id: String,
    started: i64,
    ended: i64,
    attendance: String,
}

fn raw_lesson(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawLesson> {
    Ok(RawLesson {
        id: row.get(0)?,
        class_id: row.get(1)?,
        started: row.get(2)?,
        ended: row.get(3)?,
        attendance: row.get(4)?,
    })
}

impl RawLesson {
    fn into_record(self) -> Result<LessonRecord, StoreError> {
        let attendance =
            serde_json::from_str(&self.attendance).map_err(|e| StoreError::Corrupt {
                id: format!("{}/lessons/{}", self.class_id, self.id),
                message: e.to_string(),
            })?;
        Ok(LessonRecord {
            id: self.id,
            class_id: self.class_id,
            summary: LessonSummary {
                started: self.started.max(0) as u64,
                ended: self.ended.max(0) as u64,
                attendance,
            },
        })
    }
}
