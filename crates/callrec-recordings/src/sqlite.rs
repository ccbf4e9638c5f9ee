//! The index in SQLite: one file in the recordings directory, for a
//! single node.
//!
//! One writer connection (the indexer's batches, holds, deletions) behind a
//! lock, and a few read-only connections for searches; the database runs in
//! WAL mode so searches never wait for a write.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, OpenFlags, Row, ToSql, params_from_iter};

use crate::Error;
use crate::index::{
    COLUMNS, Columns, Entry, FINISH, Param, RecordingSummary, UPSERT, Write, finish_params,
    upsert_params,
};

/// Version of the index's tables (`PRAGMA user_version`): 2 added `node`
/// and `uploaded`.
const SCHEMA_VERSION: i64 = 2;

/// Read-only connections kept open for searches.
const READERS: usize = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS recordings (
    recording_id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL,
    device TEXT NOT NULL,
    direction TEXT NOT NULL,
    local_number TEXT NOT NULL,
    remote_number TEXT NOT NULL,
    local_name TEXT NOT NULL,
    remote_name TEXT NOT NULL,
    other_parties TEXT NOT NULL,
    codec TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    stopped_ms INTEGER,
    duration_ms INTEGER NOT NULL,
    stop_reason TEXT,
    complete INTEGER NOT NULL,
    running INTEGER NOT NULL,
    hold INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,
    bytes INTEGER NOT NULL,
    wav_path TEXT,
    rec_path TEXT,
    sidecar_path TEXT
);
CREATE INDEX IF NOT EXISTS by_start ON recordings (started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_device ON recordings (device, started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_local ON recordings (local_number, started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_remote ON recordings (remote_number, started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_running ON recordings (running) WHERE running = 1;
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    bytes INTEGER NOT NULL,
    count INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS totals_insert AFTER INSERT ON recordings BEGIN
    UPDATE totals SET bytes = bytes + NEW.bytes, count = count + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS totals_update AFTER UPDATE OF bytes ON recordings BEGIN
    UPDATE totals SET bytes = bytes - OLD.bytes + NEW.bytes WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS totals_delete AFTER DELETE ON recordings BEGIN
    UPDATE totals SET bytes = bytes - OLD.bytes, count = count - 1 WHERE id = 1;
END;
";

/// Schema 2: which node recorded it, and whether it is in the object store.
const SCHEMA_2: &str = "
ALTER TABLE recordings ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN uploaded INTEGER NOT NULL DEFAULT 0;
";

impl Columns for Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        self.get(i)
    }
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Owned(match self {
            Self::Text(s) => Value::Text(s.clone()),
            Self::OptText(s) => s.clone().map_or(Value::Null, Value::Text),
            Self::Int(n) => Value::Integer(*n),
            Self::OptInt(n) => n.map_or(Value::Null, Value::Integer),
            Self::Flag(b) => Value::Integer(i64::from(*b)),
        }))
    }
}

/// The SQLite index.
pub(crate) struct SqliteIndex {
    path: String,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteIndex {
    /// Opens (creating it when missing) the index at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let shown = path.display().to_string();
        let fail = |e| Error::index(&shown, e);
        let writer = Connection::open(path).map_err(fail)?;
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA busy_timeout = 10000;",
            )
            .map_err(fail)?;
        let version: i64 = writer
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(fail)?;
        if version > SCHEMA_VERSION {
            return Err(Error::index(
                &shown,
                format!(
                    "the index was written by a newer server (schema {version}, this one knows {SCHEMA_VERSION})"
                ),
            ));
        }
        let upgrade = if version < 2 { SCHEMA_2 } else { "" };
        writer
            .execute_batch(&format!(
                "BEGIN; {SCHEMA} {upgrade} \
                 CREATE INDEX IF NOT EXISTS by_node ON recordings (node, uploaded); \
                 PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(fail)?;
        // The running totals start from the table once; the triggers keep
        // them from then on.
        writer
            .execute(
                "INSERT OR IGNORE INTO totals (id, bytes, count) \
                 SELECT 1, COALESCE(SUM(bytes), 0), COUNT(*) FROM recordings",
                [],
            )
            .map_err(fail)?;
        Ok(Self {
            path: shown,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn describe(&self) -> &str {
        &self.path
    }

    /// Runs `f` on a read-only connection.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, Error> {
        let fail = |e| Error::index(&self.path, e);
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(fail)?;
                conn.busy_timeout(core::time::Duration::from_secs(10))
                    .map_err(fail)?;
                conn
            }
        };
        let result = f(&conn).map_err(fail);
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < READERS {
            readers.push(conn);
        }
        result
    }

    /// Runs `f` in one transaction on the writer connection; `f`'s own
    /// error rolls it back and is returned as it is.
    fn transaction<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let fail = |e| Error::index(&self.path, e);
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction().map_err(fail)?;
        let out = f(&tx)?;
        tx.commit().map_err(fail)?;
        Ok(out)
    }

    pub(crate) fn write(&self, entries: &[Entry], how: Write) -> Result<(), Error> {
        let fail = |e| Error::index(&self.path, e);
        self.transaction(|tx| {
            for entry in entries {
                if how == Write::Enter && !entry.summary.running {
                    let updated = tx
                        .prepare_cached(FINISH)
                        .and_then(|mut s| s.execute(params_from_iter(finish_params(entry))))
                        .map_err(fail)?;
                    if updated > 0 {
                        continue;
                    }
                }
                tx.prepare_cached(UPSERT)
                    .and_then(|mut s| s.execute(params_from_iter(upsert_params(entry))))
                    .map_err(fail)?;
            }
            Ok(())
        })
    }

    pub(crate) fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, Error> {
        self.transaction(|tx| {
            tx.execute(sql, params_from_iter(params))
                .map(|n| n as u64)
                .map_err(|e| Error::index(&self.path, e))
        })
    }

    pub(crate) fn select(
        &self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<RecordingSummary>, Error> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            let rows = statement.query_map(params_from_iter(params), |row| {
                RecordingSummary::from_columns(row)
            })?;
            rows.collect()
        })
    }

    pub(crate) fn delete_with(
        &self,
        recording_id: &str,
        files: impl FnOnce(&RecordingSummary) -> Result<u64, Error>,
    ) -> Result<Option<u64>, Error> {
        let fail = |e| Error::index(&self.path, e);
        self.transaction(|tx| {
            let found = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM recordings WHERE recording_id = ?1"
                ))
                .and_then(|mut s| {
                    s.query_map([recording_id], |row| RecordingSummary::from_columns(row))?
                        .next()
                        .transpose()
                })
                .map_err(fail)?;
            let Some(recording) = found else {
                return Ok(None);
            };
            let bytes = files(&recording)?;
            tx.execute(
                "DELETE FROM recordings WHERE recording_id = ?1",
                [recording_id],
            )
            .map_err(fail)?;
            Ok(Some(bytes))
        })
    }

    pub(crate) fn totals(&self) -> Result<(u64, u64), Error> {
        self.read(|conn| {
            conn.query_row("SELECT bytes, count FROM totals WHERE id = 1", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?.max(0) as u64,
                    r.get::<_, i64>(1)?.max(0) as u64,
                ))
            })
        })
    }

    pub(crate) fn last_per_device(&self) -> Result<Vec<(String, i64)>, Error> {
        self.read(|conn| {
            let mut statement =
                conn.prepare("SELECT device, MAX(started_ms) FROM recordings GROUP BY device")?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callrec_server::Sidecar;

    fn entry(id: &str, bytes: u64) -> Entry {
        let mut sidecar = Sidecar::default();
        sidecar.recording_id = id.into();
        sidecar.start = "2026-12-01T08:00:00Z".into();
        sidecar.files = vec![
            serde_json::from_value(serde_json::json!({
                "path": "d/2026-12-01/x.wav", "kind": "wav", "bytes": bytes, "sha256": null
            }))
            .unwrap(),
        ];
        Entry::from_sidecar(&sidecar, None, false).unwrap()
    }

    #[test]
    fn reopening_keeps_the_totals_and_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite3");
        let index = SqliteIndex::open(&path).unwrap();
        let entry = entry("0123456789abcdef0123456789abcdef", 1000);
        index
            .write(core::slice::from_ref(&entry), Write::Enter)
            .unwrap();
        assert_eq!(index.totals().unwrap(), (1000, 1));
        drop(index);
        for _ in 0..2 {
            let index = SqliteIndex::open(&path).unwrap();
            assert_eq!(index.totals().unwrap(), (1000, 1));
        }
        let index = SqliteIndex::open(&path).unwrap();
        let deleted = index
            .delete_with(&entry.summary.recording_id, |r| Ok(r.bytes))
            .unwrap();
        assert_eq!(deleted, Some(1000));
        assert_eq!(index.totals().unwrap(), (0, 0));
    }

    #[test]
    fn a_schema_1_index_gains_the_pool_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!("{SCHEMA} PRAGMA user_version = 1;"))
                .unwrap();
            conn.execute(
                "INSERT INTO recordings (recording_id, session_id, device, direction, \
                 local_number, remote_number, local_name, remote_name, other_parties, codec, \
                 started_ms, duration_ms, complete, running, bytes) \
                 VALUES ('a1', 's', 'd', 'in', '1', '2', '', '', '', 'PCMA', 5, 0, 1, 0, 7)",
                [],
            )
            .unwrap();
        }
        let index = SqliteIndex::open(&path).unwrap();
        let rows = index
            .select(&format!("SELECT {COLUMNS} FROM recordings"), &[])
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].node.as_str(), rows[0].uploaded), ("", false));
        assert_eq!(index.totals().unwrap(), (7, 1));
    }

    #[test]
    fn a_failing_delete_keeps_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let index = SqliteIndex::open(&dir.path().join("i.sqlite3")).unwrap();
        let entry = entry("00000000000000000000000000000001", 10);
        index.write(&[entry], Write::Upsert).unwrap();
        let failed = index.delete_with("00000000000000000000000000000001", |r| {
            Err(Error::UnknownRecording(r.recording_id.clone()))
        });
        assert!(failed.is_err());
        assert_eq!(index.totals().unwrap(), (10, 1));
        assert_eq!(index.delete_with("nope", |_| Ok(0)).unwrap(), None);
    }
}
