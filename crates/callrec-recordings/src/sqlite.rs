//! The index in SQLite: one file in the recordings directory, for a
//! single node.
//!
//! One writer connection (the indexer's batches, holds, deletions) behind a
//! lock, and a few read-only connections for searches; the database runs in
//! WAL mode so searches never wait for a write.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql, params_from_iter};

use crate::Error;
use crate::database::{Database, Dialect, Param, Row, Transaction, Value};
use crate::schema::{MigrateError, migrate};

/// Read-only connections kept open for searches.
const READERS: usize = 4;

/// SQLite's words.
static DIALECT: Dialect = Dialect {
    like: "LIKE",
    lock_row: "",
    totals_triggers: "
CREATE TRIGGER IF NOT EXISTS totals_insert AFTER INSERT ON recordings BEGIN
    UPDATE totals SET bytes = bytes + NEW.bytes, count = count + 1 WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS totals_update AFTER UPDATE OF bytes ON recordings BEGIN
    UPDATE totals SET bytes = bytes - OLD.bytes + NEW.bytes WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS totals_delete AFTER DELETE ON recordings BEGIN
    UPDATE totals SET bytes = bytes - OLD.bytes, count = count - 1 WHERE id = 1;
END;
",
    version_table: "",
    read_version: "PRAGMA user_version",
    write_version: "PRAGMA user_version = {version}",
};

/// A parameter as SQLite takes it.
struct Bound<'a>(&'a Param);

impl ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Param::Text(s) | Param::OptText(Some(s)) => {
                ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
            }
            Param::OptText(None) | Param::OptInt(None) => ToSqlOutput::Owned(SqlValue::Null),
            Param::Int(n) | Param::OptInt(Some(n)) => ToSqlOutput::Owned(SqlValue::Integer(*n)),
            Param::Flag(b) => ToSqlOutput::Owned(SqlValue::Integer(i64::from(*b))),
        })
    }
}

fn bound(params: &[Param]) -> impl Iterator<Item = Bound<'_>> {
    params.iter().map(Bound)
}

/// A row of SQLite's as the index reads it.
fn row_of(row: &rusqlite::Row<'_>, columns: usize) -> rusqlite::Result<Row> {
    (0..columns)
        .map(|i| {
            Ok(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::Int(n),
                ValueRef::Real(x) => Value::Int(x as i64),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
            })
        })
        .collect::<rusqlite::Result<_>>()
        .map(Row)
}

fn query_rows(conn: &Connection, sql: &str, params: &[Param]) -> rusqlite::Result<Vec<Row>> {
    let mut statement = conn.prepare_cached(sql)?;
    let columns = statement.column_count();
    let rows = statement.query_map(params_from_iter(bound(params)), |row| row_of(row, columns))?;
    rows.collect()
}

/// The SQLite index.
pub(crate) struct SqliteIndex {
    path: String,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// A transaction on the writer connection.
struct SqliteTransaction<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    path: &'a str,
}

impl Transaction for SqliteTransaction<'_> {
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, Error> {
        self.tx
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params_from_iter(bound(params))))
            .map(|n| n as u64)
            .map_err(|e| Error::index(self.path, e))
    }

    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, Error> {
        query_rows(self.tx, sql, params).map_err(|e| Error::index(self.path, e))
    }

    fn batch(&mut self, sql: &str) -> Result<(), Error> {
        self.tx
            .execute_batch(sql)
            .map_err(|e| Error::index(self.path, e))
    }
}

impl SqliteIndex {
    /// Opens (creating it when missing) the index at `path`.
    ///
    /// # Errors
    /// [`Error::Index`] when it cannot be opened or created, or a newer
    /// server wrote it.
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
        let index = Self {
            path: shown,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        };
        index.transaction(&mut |tx| {
            migrate(tx, &DIALECT, &index.path, |v| v).map_err(MigrateError::into_error)
        })?;
        Ok(index)
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
}

impl Database for SqliteIndex {
    fn describe(&self) -> &str {
        &self.path
    }

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let fail = |e| Error::index(&self.path, e);
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction().map_err(fail)?;
        work(&mut SqliteTransaction {
            tx: &tx,
            path: &self.path,
        })?;
        tx.commit().map_err(fail)
    }

    fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, Error> {
        self.read(|conn| query_rows(conn, sql, params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{COLUMNS, Entry, Index, Write};
    use callrec_server::Sidecar;

    fn entry(id: &str, bytes: u64) -> Entry {
        let mut sidecar = Sidecar::default();
        sidecar.recording_id = id.into();
        sidecar.started_at = "2026-12-01T08:00:00Z".into();
        sidecar.files = vec![
            serde_json::from_value(serde_json::json!({
                "path": "d/2026-12-01/x.wav", "kind": "wav", "bytes": bytes, "sha256": null
            }))
            .unwrap(),
        ];
        Entry::from_sidecar(&sidecar, None, false).unwrap()
    }

    /// A SIPREC recording of a conference: three participants.
    #[test]
    fn every_participant_of_a_siprec_recording_finds_it_by_number_until_it_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let index = open(&dir.path().join("index.sqlite3"));
        let mut sidecar = Sidecar::default();
        sidecar.recording_id = "0123456789abcdef0123456789abcdef".into();
        sidecar.started_at = "2026-12-01T08:00:00Z".into();
        sidecar.source = "siprec".into();
        sidecar.participants = serde_json::from_value(serde_json::json!([
            {"aor": "sip:+4930111@example.com", "name": "Alice"},
            {"aor": "sip:+4930222@example.com", "name": "Bob"},
            {"aor": "tel:+4930333", "name": "Carol"}
        ]))
        .unwrap();
        sidecar.start_parties = serde_json::from_value(serde_json::json!({
            "local_number": "+4930111", "local_name": "Alice",
            "remote_number": "+4930222", "remote_name": "Bob"
        }))
        .unwrap();
        sidecar.final_parties = sidecar.start_parties.clone();
        let entry = Entry::from_sidecar(&sidecar, None, false).unwrap();
        index
            .write(core::slice::from_ref(&entry), Write::Enter)
            .unwrap();
        // Written twice (progress, then the end): still one row per number.
        index
            .write(core::slice::from_ref(&entry), Write::Enter)
            .unwrap();
        let found = |number: &str| {
            let query = crate::Query {
                number: Some(number.into()),
                ..crate::Query::default()
            };
            index.search(&query).unwrap().recordings.len()
        };
        for number in ["+4930111", "+4930222", "+4930333"] {
            assert_eq!(found(number), 1, "{number}");
        }
        assert_eq!(found("+4930444"), 0);
        let query = crate::Query {
            text: Some("carol".into()),
            ..crate::Query::default()
        };
        assert_eq!(index.search(&query).unwrap().recordings.len(), 1);
        index
            .delete_with(&entry.summary.recording_id, |_| Ok(0))
            .unwrap();
        assert_eq!(found("+4930333"), 0);
        let left: i64 = Connection::open(dir.path().join("index.sqlite3"))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM participant_numbers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    fn open(path: &Path) -> Index {
        Index::new(Box::new(SqliteIndex::open(path).unwrap()))
    }

    #[test]
    fn reopening_keeps_the_totals_and_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite3");
        let index = open(&path);
        let entry = entry("0123456789abcdef0123456789abcdef", 1000);
        index
            .write(core::slice::from_ref(&entry), Write::Enter)
            .unwrap();
        assert_eq!(index.totals().unwrap(), (1000, 1));
        drop(index);
        for _ in 0..2 {
            let index = open(&path);
            assert_eq!(index.totals().unwrap(), (1000, 1));
        }
        let index = open(&path);
        let deleted = index
            .delete_with(&entry.summary.recording_id, |r| Ok(r.bytes))
            .unwrap();
        assert_eq!(deleted, Some(1000));
        assert_eq!(index.totals().unwrap(), (0, 0));
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, crate::schema::SCHEMA_VERSION);
    }

    /// An index as a server before the shared schema wrote it (version 1:
    /// no node, no upload flag), holding one recording.
    #[test]
    fn a_schema_1_index_gains_the_pool_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            let step_1 = crate::schema::STEPS[0]
                .1
                .replace("{TOTALS_TRIGGERS}", DIALECT.totals_triggers);
            conn.execute_batch(&format!("{step_1} PRAGMA user_version = 1;"))
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
        let database = SqliteIndex::open(&path).unwrap();
        let rows = database
            .query(&format!("SELECT {COLUMNS} FROM recordings"), &[])
            .unwrap();
        assert_eq!(rows.len(), 1);
        let index = Index::new(Box::new(database));
        let found = index.get("a1").unwrap().unwrap();
        assert_eq!(
            (found.node.as_str(), found.uploaded, found.bytes),
            ("", false, 7)
        );
        assert_eq!(index.totals().unwrap(), (7, 1));
        assert_eq!(index.running("n1").unwrap(), Vec::new());
    }

    #[test]
    fn a_failing_delete_keeps_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let index = open(&dir.path().join("i.sqlite3"));
        let entry = entry("00000000000000000000000000000001", 10);
        index.write(&[entry], Write::Upsert).unwrap();
        let failed = index.delete_with("00000000000000000000000000000001", |r| {
            Err(Error::UnknownRecording(r.recording_id.clone()))
        });
        assert!(failed.is_err());
        assert_eq!(index.totals().unwrap(), (10, 1));
        assert_eq!(index.delete_with("nope", |_| Ok(0)).unwrap(), None);
    }

    #[test]
    fn a_newer_schema_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite3");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        let Err(e) = SqliteIndex::open(&path) else {
            panic!("a newer schema was opened");
        };
        let text = e.to_string();
        assert!(
            text.contains("schema 99") && text.contains("newer server"),
            "{text}"
        );
        assert!(text.contains("index.sqlite3"), "{text}");
    }
}
