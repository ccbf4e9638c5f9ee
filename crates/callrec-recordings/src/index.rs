//! The index: one row per recording in SQLite, searched newest first.
//!
//! One writer connection (the indexer's batches, holds, deletions) behind a
//! lock, and a few read-only connections for searches; the database runs in
//! WAL mode so searches never wait for a write.

use core::str::FromStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use callrec_server::Sidecar;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params, params_from_iter};
use serde::Serialize;

use crate::Error;
use crate::time::{format_time_ms, parse_time_ms};

/// Version of the index's tables (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// Most results per page.
pub const MAX_LIMIT: usize = 1000;

/// Results per page when the query does not say.
pub const DEFAULT_LIMIT: usize = 50;

/// Longest search term (numbers, device, free text), in bytes.
pub const MAX_TERM_LEN: usize = 128;

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

const COLUMNS: &str = "recording_id, session_id, device, direction, local_number, \
    remote_number, local_name, remote_name, codec, started_ms, stopped_ms, duration_ms, \
    stop_reason, complete, running, hold, sha256, bytes, wav_path, rec_path, sidecar_path";

/// One recording as the index knows it: an item of a search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RecordingSummary {
    /// The server's id of the recording.
    pub recording_id: String,
    /// The phone's session id.
    pub session_id: String,
    /// The phone's MAC address.
    pub device: String,
    /// `in` or `out`.
    pub direction: String,
    /// The phone's own number (from the start request).
    pub local_number: String,
    /// The other party's number (from the start request).
    pub remote_number: String,
    /// The phone's display name.
    pub local_name: String,
    /// The other party's display name.
    pub remote_name: String,
    /// `PCMA`, `PCMU` or `G722`.
    pub codec: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC; `null` while running.
    pub stopped_at: Option<String>,
    /// Length of the audio.
    pub duration_ms: u64,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// Whether the recording ended normally with its files final.
    pub complete: bool,
    /// Whether the call is still being recorded.
    pub running: bool,
    /// Whether it is under legal hold (never deleted).
    pub hold: bool,
    /// SHA-256 of the WAV (or of the container when there is no WAV), once
    /// final.
    pub sha256: Option<String>,
    /// Bytes on disk, all files of the recording together.
    pub bytes: u64,
    /// The WAV, relative to the recordings directory.
    #[serde(skip)]
    pub(crate) wav_path: Option<String>,
    /// The phone's container, relative.
    #[serde(skip)]
    pub(crate) rec_path: Option<String>,
    /// The sidecar, relative.
    #[serde(skip)]
    pub(crate) sidecar_path: Option<String>,
    #[serde(skip)]
    pub(crate) started_ms: i64,
}

impl RecordingSummary {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let started_ms: i64 = row.get(9)?;
        let stopped_ms: Option<i64> = row.get(10)?;
        Ok(Self {
            recording_id: row.get(0)?,
            session_id: row.get(1)?,
            device: row.get(2)?,
            direction: row.get(3)?,
            local_number: row.get(4)?,
            remote_number: row.get(5)?,
            local_name: row.get(6)?,
            remote_name: row.get(7)?,
            codec: row.get(8)?,
            started_at: format_time_ms(started_ms),
            stopped_at: stopped_ms.map(format_time_ms),
            duration_ms: row.get::<_, i64>(11)?.max(0) as u64,
            stop_reason: row.get(12)?,
            complete: row.get(13)?,
            running: row.get(14)?,
            hold: row.get(15)?,
            sha256: row.get(16)?,
            bytes: row.get::<_, i64>(17)?.max(0) as u64,
            wav_path: row.get(18)?,
            rec_path: row.get(19)?,
            sidecar_path: row.get(20)?,
            started_ms,
        })
    }

    /// The files of the recording, relative to the recordings directory.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &str> {
        [&self.wav_path, &self.rec_path, &self.sidecar_path]
            .into_iter()
            .filter_map(|p| p.as_deref())
    }
}

/// What the index stores of a recording; made from a sidecar.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) summary: RecordingSummary,
    pub(crate) other_parties: String,
    pub(crate) stopped_ms: Option<i64>,
}

impl Entry {
    /// The row of a recording from its sidecar; `sidecar_path` relative.
    /// `None` when the sidecar's start time cannot be read.
    pub(crate) fn from_sidecar(
        sidecar: &Sidecar,
        sidecar_path: Option<String>,
        running: bool,
    ) -> Option<Self> {
        let started_ms = parse_time_ms(&sidecar.start)?;
        let stopped_ms = sidecar.stop.as_deref().and_then(parse_time_ms);
        let file = |kind: &str| {
            sidecar
                .files
                .iter()
                .find(|f| f.kind == kind)
                .map(|f| f.path.to_string_lossy().into_owned())
        };
        let sha256 = ["wav", "rec"].iter().find_map(|kind| {
            sidecar
                .files
                .iter()
                .find(|f| f.kind == *kind)
                .and_then(|f| f.sha256.clone())
        });
        let bytes = sidecar
            .files
            .iter()
            .map(|f| f.bytes.unwrap_or(0))
            .sum::<u64>();
        let (start, last) = (&sidecar.start_parties, &sidecar.final_parties);
        let other_parties = if start == last {
            String::new()
        } else {
            [
                &last.local_number,
                &last.remote_number,
                &last.local_name,
                &last.remote_name,
            ]
            .map(String::as_str)
            .join("\n")
        };
        Some(Self {
            summary: RecordingSummary {
                recording_id: sidecar.recording_id.clone(),
                session_id: sidecar.session_id.clone(),
                device: sidecar.device.clone(),
                direction: sidecar.direction.clone(),
                local_number: start.local_number.clone(),
                remote_number: start.remote_number.clone(),
                local_name: start.local_name.clone(),
                remote_name: start.remote_name.clone(),
                codec: sidecar.codec.clone(),
                started_at: format_time_ms(started_ms),
                stopped_at: stopped_ms.map(format_time_ms),
                duration_ms: sidecar.audio_ms,
                stop_reason: sidecar.stop_reason.clone(),
                complete: sidecar.complete,
                running,
                hold: false,
                sha256,
                bytes,
                wav_path: file("wav"),
                rec_path: file("rec"),
                sidecar_path,
                started_ms,
            },
            other_parties,
            stopped_ms,
        })
    }
}

/// Where the next page starts: the last item's start time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    started_ms: i64,
    recording_id: String,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.started_ms, self.recording_id)
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("cursor {s:?} is not one this server gave (`<ms>.<recording_id>`)");
        let (ms, id) = s.split_once('.').ok_or_else(bad)?;
        let started_ms = ms.parse().map_err(|_| bad())?;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        Ok(Self {
            started_ms,
            recording_id: id.to_owned(),
        })
    }
}

/// A search: every field given narrows it; results come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Query {
    /// The phone's MAC address (`001565aabbcc`; colons, dashes and capitals
    /// are accepted).
    pub device: Option<String>,
    /// A number, matched exactly against the local or the remote number.
    pub number: Option<String>,
    /// `in` or `out`.
    pub direction: Option<String>,
    /// Started at or after, Unix milliseconds.
    pub from_ms: Option<i64>,
    /// Started before, Unix milliseconds.
    pub to_ms: Option<i64>,
    /// Free text: a part of a number or a name (case-insensitive for
    /// ASCII), or a whole session id.
    pub text: Option<String>,
    /// Results per page, 1 to [`MAX_LIMIT`] (0: [`DEFAULT_LIMIT`]).
    pub limit: usize,
    /// Where to continue: a page's `next_cursor`.
    pub cursor: Option<Cursor>,
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Page {
    /// Newest first.
    pub recordings: Vec<RecordingSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// A MAC address in the form the server stores (12 lowercase hex digits)
/// when `text` is one in any common spelling; otherwise `text` itself.
pub(crate) fn normalize_device(text: &str) -> String {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex.to_ascii_lowercase()
    } else {
        text.to_owned()
    }
}

/// `%text%` for LIKE, with `\` escaping the wildcards.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The SQLite index.
pub(crate) struct Index {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Index {
    /// Opens (creating it when missing) the index at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let fail = |e| Error::index(path, e);
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
            return Err(Error::Index {
                path: path.to_owned(),
                message: format!(
                    "the index was written by a newer server (schema {version}, this one knows {SCHEMA_VERSION})"
                ),
            });
        }
        writer
            .execute_batch(&format!("BEGIN; {SCHEMA} COMMIT;"))
            .map_err(fail)?;
        // The running totals start from the table once; the triggers keep
        // them from then on.
        let counted: bool = writer
            .query_row("SELECT EXISTS (SELECT 1 FROM totals)", [], |r| r.get(0))
            .map_err(fail)?;
        if !counted {
            writer
                .execute(
                    "INSERT INTO totals (id, bytes, count) \
                     SELECT 1, COALESCE(SUM(bytes), 0), COUNT(*) FROM recordings",
                    [],
                )
                .map_err(fail)?;
        }
        writer
            .execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
            .map_err(fail)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Where the index is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a read-only connection.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|e| Error::index(&self.path, e))?;
                conn.busy_timeout(core::time::Duration::from_secs(10))
                    .map_err(|e| Error::index(&self.path, e))?;
                conn
            }
        };
        let result = f(&conn).map_err(|e| Error::index(&self.path, e));
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if readers.len() < READERS {
            readers.push(conn);
        }
        result
    }

    /// Runs `f` in one transaction on the writer connection.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let mut conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let run = |conn: &mut Connection| {
            let tx = conn.transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        run(&mut conn).map_err(|e| Error::index(&self.path, e))
    }

    /// Enters or updates a recording (its hold flag is kept).
    pub(crate) fn upsert(tx: &rusqlite::Transaction<'_>, entry: &Entry) -> rusqlite::Result<()> {
        let s = &entry.summary;
        tx.prepare_cached(
            "INSERT INTO recordings (recording_id, session_id, device, direction, \
             local_number, remote_number, local_name, remote_name, other_parties, codec, \
             started_ms, stopped_ms, duration_ms, stop_reason, complete, running, hold, sha256, \
             bytes, wav_path, rec_path, sidecar_path) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18, ?19, ?20, ?21, ?22) \
             ON CONFLICT (recording_id) DO UPDATE SET session_id = ?2, device = ?3, \
             direction = ?4, local_number = ?5, remote_number = ?6, local_name = ?7, \
             remote_name = ?8, other_parties = ?9, codec = ?10, started_ms = ?11, \
             stopped_ms = ?12, duration_ms = ?13, stop_reason = ?14, complete = ?15, \
             running = ?16, hold = hold OR ?17, sha256 = ?18, bytes = ?19, wav_path = ?20, \
             rec_path = ?21, sidecar_path = ?22",
        )?
        .execute(params![
            s.recording_id,
            s.session_id,
            s.device,
            s.direction,
            s.local_number,
            s.remote_number,
            s.local_name,
            s.remote_name,
            entry.other_parties,
            s.codec,
            s.started_ms,
            entry.stopped_ms,
            s.duration_ms as i64,
            s.stop_reason,
            s.complete,
            s.running,
            s.hold,
            s.sha256,
            s.bytes as i64,
            s.wav_path,
            s.rec_path,
            s.sidecar_path,
        ])?;
        Ok(())
    }

    /// Enters a recording as the server reports it: a new one is inserted;
    /// a finished one only has its changing columns updated (so that the
    /// search indexes are not rewritten), or is inserted whole when its
    /// start never reached the index.
    pub(crate) fn enter(tx: &rusqlite::Transaction<'_>, entry: &Entry) -> rusqlite::Result<()> {
        let s = &entry.summary;
        if !s.running {
            let updated = tx
                .prepare_cached(
                    "UPDATE recordings SET other_parties = ?2, stopped_ms = ?3, duration_ms = ?4, \
                     stop_reason = ?5, complete = ?6, running = 0, sha256 = ?7, bytes = ?8, \
                     wav_path = ?9, rec_path = ?10 WHERE recording_id = ?1",
                )?
                .execute(params![
                    s.recording_id,
                    entry.other_parties,
                    entry.stopped_ms,
                    s.duration_ms as i64,
                    s.stop_reason,
                    s.complete,
                    s.sha256,
                    s.bytes as i64,
                    s.wav_path,
                    s.rec_path,
                ])?;
            if updated > 0 {
                return Ok(());
            }
        }
        Self::upsert(tx, entry)
    }

    /// One page of `query`.
    pub(crate) fn search(&self, query: &Query) -> Result<Page, Error> {
        let limit = match query.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let mut conditions = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        if let Some(device) = &query.device {
            conditions.push("device = ?");
            values.push(Value::Text(normalize_device(device)));
        }
        if let Some(direction) = &query.direction {
            conditions.push("direction = ?");
            values.push(Value::Text(direction.clone()));
        }
        if let Some(from) = query.from_ms {
            conditions.push("started_ms >= ?");
            values.push(Value::Integer(from));
        }
        if let Some(to) = query.to_ms {
            conditions.push("started_ms < ?");
            values.push(Value::Integer(to));
        }
        if let Some(text) = &query.text {
            conditions.push(
                "(local_number LIKE ? ESCAPE '\\' OR remote_number LIKE ? ESCAPE '\\' \
                 OR local_name LIKE ? ESCAPE '\\' OR remote_name LIKE ? ESCAPE '\\' \
                 OR other_parties LIKE ? ESCAPE '\\' OR session_id = ?)",
            );
            let pattern = like_pattern(text);
            values.extend((0..5).map(|_| Value::Text(pattern.clone())));
            values.push(Value::Text(text.clone()));
        }
        if let Some(cursor) = &query.cursor {
            conditions.push("(started_ms, recording_id) < (?, ?)");
            values.push(Value::Integer(cursor.started_ms));
            values.push(Value::Text(cursor.recording_id.clone()));
        }
        let filter: String = conditions.iter().map(|c| format!(" AND {c}")).collect();
        let order = "ORDER BY started_ms DESC, recording_id DESC";
        let fetch = limit + 1;
        let (sql, values) = match &query.number {
            // Two ordered index walks, merged: fast however many calls one
            // number has.
            Some(number) => {
                let number = Value::Text(number.clone());
                let mut both = vec![number.clone()];
                both.extend(values.iter().cloned());
                both.push(number);
                both.extend(values);
                let sql = format!(
                    "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM recordings WHERE local_number = ?{filter} {order} LIMIT {fetch}) \
                     UNION SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM recordings WHERE remote_number = ?{filter} {order} LIMIT {fetch}) \
                     {order} LIMIT {fetch}"
                );
                (sql, both)
            }
            None => (
                format!("SELECT {COLUMNS} FROM recordings WHERE 1{filter} {order} LIMIT {fetch}"),
                values,
            ),
        };
        let mut recordings = self.read(|conn| {
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(params_from_iter(values.iter()), |row| {
                RecordingSummary::from_row(row)
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let next_cursor = if recordings.len() > limit {
            recordings.truncate(limit);
            recordings.last().map(|last| {
                Cursor {
                    started_ms: last.started_ms,
                    recording_id: last.recording_id.clone(),
                }
                .to_string()
            })
        } else {
            None
        };
        Ok(Page {
            recordings,
            next_cursor,
        })
    }

    /// The recording with this id.
    pub(crate) fn get(&self, recording_id: &str) -> Result<Option<RecordingSummary>, Error> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM recordings WHERE recording_id = ?1"
            ))?
            .query_row([recording_id], RecordingSummary::from_row)
            .optional()
        })
    }

    /// Sets or clears the hold; `false` when there is no such recording.
    pub(crate) fn set_hold(&self, recording_id: &str, hold: bool) -> Result<bool, Error> {
        self.write(|tx| {
            tx.execute(
                "UPDATE recordings SET hold = ?2 WHERE recording_id = ?1",
                params![recording_id, hold],
            )
            .map(|n| n > 0)
        })
    }

    /// Forgets a recording (its files are the caller's).
    pub(crate) fn remove(&self, recording_id: &str) -> Result<(), Error> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM recordings WHERE recording_id = ?1",
                [recording_id],
            )
            .map(drop)
        })
    }

    /// Oldest first: recordings that may be deleted (neither running nor
    /// on hold), started before `before_ms` when given.
    pub(crate) fn deletable(
        &self,
        before_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RecordingSummary>, Error> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM recordings WHERE started_ms < ?1 AND running = 0 \
                 AND hold = 0 ORDER BY started_ms, recording_id LIMIT ?2"
            ))?;
            let rows = statement.query_map(
                params![before_ms.unwrap_or(i64::MAX), limit as i64],
                RecordingSummary::from_row,
            )?;
            rows.collect()
        })
    }

    /// Bytes of all recordings, and how many there are (kept by triggers,
    /// so that metrics and retention never scan the table).
    pub(crate) fn totals(&self) -> Result<(u64, u64), Error> {
        self.read(|conn| {
            conn.query_row("SELECT bytes, count FROM totals WHERE id = 1", [], |r| {
                Ok((
                    r.get::<_, i64>(0)?.max(0) as u64,
                    r.get::<_, i64>(1)? as u64,
                ))
            })
        })
    }

    /// Each device's newest recording start, Unix milliseconds.
    pub(crate) fn last_per_device(&self) -> Result<Vec<(String, i64)>, Error> {
        self.read(|conn| {
            let mut statement =
                conn.prepare("SELECT device, MAX(started_ms) FROM recordings GROUP BY device")?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// Recordings marked running: at start-up, the ones a previous process
    /// left unfinished.
    pub(crate) fn running(&self) -> Result<Vec<RecordingSummary>, Error> {
        self.read(|conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM recordings WHERE running = 1"
            ))?;
            let rows = statement.query_map([], RecordingSummary::from_row)?;
            rows.collect()
        })
    }

    /// The ids under hold.
    pub(crate) fn held(&self) -> Result<Vec<String>, Error> {
        self.read(|conn| {
            let mut statement =
                conn.prepare("SELECT recording_id FROM recordings WHERE hold = 1")?;
            let rows = statement.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_keeps_the_totals_and_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.sqlite3");
        let index = Index::open(&path).unwrap();
        let mut sidecar = Sidecar::default();
        sidecar.recording_id = "0123456789abcdef0123456789abcdef".into();
        sidecar.start = "2026-12-01T08:00:00Z".into();
        sidecar.files = vec![
            serde_json::from_value(serde_json::json!({
                "path": "d/2026-12-01/x.wav", "kind": "wav", "bytes": 1000, "sha256": null
            }))
            .unwrap(),
        ];
        let entry = Entry::from_sidecar(&sidecar, None, false).unwrap();
        index.write(|tx| Index::enter(tx, &entry)).unwrap();
        assert_eq!(index.totals().unwrap(), (1000, 1));
        drop(index);
        for _ in 0..2 {
            let index = Index::open(&path).unwrap();
            assert_eq!(index.totals().unwrap(), (1000, 1));
        }
        let index = Index::open(&path).unwrap();
        index.remove(&entry.summary.recording_id).unwrap();
        assert_eq!(index.totals().unwrap(), (0, 0));
    }
}
