//! The index in PostgreSQL: one database shared by a pool of recording
//! nodes.
//!
//! The same table and SQL as SQLite ([`crate::index`]). The schema is
//! created and migrated by whichever node starts first; nodes that start
//! at the same moment wait for it on an advisory lock. A lost connection is
//! made again on the next request; [`PgIndex::available`] says whether the
//! last request reached the database, so that a node can refuse new calls
//! it could not enter.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::sync::{Condvar, Mutex};

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row};

use crate::Error;
use crate::index::{
    COLUMNS, Columns, Entry, FINISH, Param, RecordingSummary, UPSERT, Write, finish_params,
    upsert_params,
};

/// Version of the tables this server writes (`callrec_schema`).
const SCHEMA_VERSION: i32 = 1;

/// Connections for searches, at most: more searches at once wait for one.
const READERS: usize = 8;

/// The advisory lock held while the schema is created or migrated.
const MIGRATION_LOCK: i64 = 0x6361_6c6c_7265_6301;

/// The advisory lock held by the node that runs retention.
const SWEEP_LOCK: i64 = 0x6361_6c6c_7265_6302;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS callrec_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS recordings (
    recording_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    device TEXT NOT NULL,
    direction TEXT NOT NULL,
    local_number TEXT NOT NULL,
    remote_number TEXT NOT NULL,
    local_name TEXT NOT NULL,
    remote_name TEXT NOT NULL,
    other_parties TEXT NOT NULL,
    codec TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    stopped_ms BIGINT,
    duration_ms BIGINT NOT NULL,
    stop_reason TEXT,
    complete BOOLEAN NOT NULL,
    running BOOLEAN NOT NULL,
    hold BOOLEAN NOT NULL DEFAULT FALSE,
    sha256 TEXT,
    bytes BIGINT NOT NULL,
    wav_path TEXT,
    rec_path TEXT,
    sidecar_path TEXT,
    node TEXT NOT NULL DEFAULT '',
    uploaded BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS by_start ON recordings (started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_device ON recordings (device, started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_local ON recordings (local_number, started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_remote ON recordings (remote_number, started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_running ON recordings (node) WHERE running;
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    bytes BIGINT NOT NULL,
    count BIGINT NOT NULL
);
INSERT INTO totals (id, bytes, count)
    SELECT 1, COALESCE(SUM(bytes), 0), COUNT(*) FROM recordings
    ON CONFLICT (id) DO NOTHING;
CREATE OR REPLACE FUNCTION callrec_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE totals SET bytes = bytes + NEW.bytes, count = count + 1 WHERE id = 1;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE totals SET bytes = bytes - OLD.bytes, count = count - 1 WHERE id = 1;
    ELSIF NEW.bytes <> OLD.bytes THEN
        UPDATE totals SET bytes = bytes - OLD.bytes + NEW.bytes WHERE id = 1;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER recordings_totals AFTER INSERT OR DELETE OR UPDATE OF bytes
    ON recordings FOR EACH ROW EXECUTE FUNCTION callrec_totals();
";

impl Columns for Row {
    type Error = postgres::Error;
    fn text(&self, i: usize) -> Result<String, postgres::Error> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, postgres::Error> {
        self.try_get(i)
    }
    fn int(&self, i: usize) -> Result<i64, postgres::Error> {
        self.try_get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, postgres::Error> {
        self.try_get(i)
    }
    fn flag(&self, i: usize) -> Result<bool, postgres::Error> {
        self.try_get(i)
    }
}

/// `?N` parameters as PostgreSQL writes them.
fn numbered(sql: &str) -> String {
    sql.replace('?', "$")
}

/// The parameters as the driver takes them.
fn values(params: &[Param]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match p {
                Param::Text(s) => Box::new(s.clone()),
                Param::OptText(s) => Box::new(s.clone()),
                Param::Int(n) => Box::new(*n),
                Param::OptInt(n) => Box::new(*n),
                Param::Flag(b) => Box::new(*b),
            }
        })
        .collect()
}

fn refs(values: &[Box<dyn ToSql + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect()
}

/// `postgres://user:secret@host/db` as `postgres://user@host/db`, for
/// messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // `host=… password=…`: the password's value goes.
        return url
            .split_whitespace()
            .map(|part| match part.split_once('=') {
                Some(("password", _)) => "password=…",
                _ => part,
            })
            .collect::<Vec<_>>()
            .join(" ");
    };
    let (authority, tail) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// The PostgreSQL index.
pub(crate) struct PgIndex {
    config: postgres::Config,
    shown: String,
    writer: Mutex<Option<Client>>,
    /// Idle reading connections, and how many are open (idle or in use).
    readers: Mutex<(Vec<Client>, usize)>,
    reader_free: Condvar,
    available: AtomicBool,
    migrated: AtomicBool,
    /// The database holds a newer schema than this server knows.
    too_new: AtomicBool,
}

impl PgIndex {
    /// The index at `url` (`postgres://user:password@host:port/database`,
    /// or any form libpq takes). Connects and migrates when it can; when
    /// the database cannot be reached, the index is returned unavailable
    /// and [`probe`](Self::probe) connects later.
    ///
    /// # Errors
    /// [`Error::Index`] when `url` is not a PostgreSQL connection string,
    /// or the database holds a newer schema.
    pub(crate) fn open(url: &str) -> Result<Self, Error> {
        let shown = redact(url);
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| Error::index(&shown, format!("not a PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("callrec");
        let index = Self {
            config,
            shown,
            writer: Mutex::new(None),
            readers: Mutex::new((Vec::new(), 0)),
            reader_free: Condvar::new(),
            available: AtomicBool::new(false),
            migrated: AtomicBool::new(false),
            too_new: AtomicBool::new(false),
        };
        match index.probe() {
            Ok(()) => Ok(index),
            Err(e) if index.too_new.load(Ordering::Relaxed) => Err(e),
            Err(e) => {
                tracing::error!("{e}; new calls are refused until it answers");
                Ok(index)
            }
        }
    }

    pub(crate) fn describe(&self) -> &str {
        &self.shown
    }

    pub(crate) fn available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    fn fail(&self, e: impl core::fmt::Display) -> Error {
        Error::index(&self.shown, e)
    }

    fn connect(&self) -> Result<Client, Error> {
        let client = self.config.connect(NoTls).map_err(|e| {
            self.available.store(false, Ordering::Relaxed);
            self.fail(format!("cannot connect: {e}"))
        })?;
        Ok(client)
    }

    /// Connects (creating or migrating the schema the first time) and
    /// checks that the database answers.
    ///
    /// # Errors
    /// [`Error::Index`] when it does not.
    pub(crate) fn probe(&self) -> Result<(), Error> {
        if !self.migrated.load(Ordering::Relaxed) {
            let mut client = self.connect()?;
            self.migrate(&mut client)?;
            self.migrated.store(true, Ordering::Relaxed);
            *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
        }
        self.with_writer(|client| client.simple_query("SELECT 1").map(drop))
    }

    fn migrate(&self, client: &mut Client) -> Result<(), Error> {
        let fail = |e: postgres::Error| self.fail(e);
        let mut tx = client.transaction().map_err(fail)?;
        // Nodes starting together: one creates, the others wait and then
        // find everything there.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(fail)?;
        tx.batch_execute(SCHEMA).map_err(fail)?;
        let version: Option<i32> = tx
            .query_opt("SELECT MAX(version) FROM callrec_schema", &[])
            .map_err(fail)?
            .and_then(|row| row.get(0));
        match version {
            Some(v) if v > SCHEMA_VERSION => {
                self.too_new.store(true, Ordering::Relaxed);
                return Err(self.fail(format!(
                    "the index was written by a newer server (schema {v}, this one knows {SCHEMA_VERSION})"
                )));
            }
            Some(v) if v == SCHEMA_VERSION => {}
            _ => {
                tx.execute("DELETE FROM callrec_schema", &[])
                    .map_err(fail)?;
                tx.execute(
                    "INSERT INTO callrec_schema (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )
                .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)
    }

    /// Runs `f` on the writer connection, connecting first when there is
    /// none; a connection that broke is dropped (the next call connects
    /// again).
    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, Error> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let client = match writer.take() {
            Some(client) if !client.is_closed() => client,
            _ => {
                if !self.migrated.load(Ordering::Relaxed) {
                    drop(writer);
                    self.probe()?;
                    writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
                    writer.take().map_or_else(|| self.connect(), Ok)?
                } else {
                    self.connect()?
                }
            }
        };
        let mut client = client;
        let result = f(&mut client);
        self.settle(&client, result.is_ok());
        if !client.is_closed() {
            *writer = Some(client);
        }
        result.map_err(|e| self.fail(e))
    }

    /// Notes whether the database answered.
    fn settle(&self, client: &Client, ok: bool) {
        self.available
            .store(ok || !client.is_closed(), Ordering::Relaxed);
    }

    /// Runs `f` on a reading connection (at most [`READERS`] are open; a
    /// search beyond that waits for one).
    fn read<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, Error> {
        if !self.migrated.load(Ordering::Relaxed) {
            self.probe()?;
        }
        let idle = {
            let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(client) = readers.0.pop() {
                    break Some(client);
                }
                if readers.1 < READERS {
                    readers.1 += 1;
                    break None;
                }
                readers = self
                    .reader_free
                    .wait(readers)
                    .unwrap_or_else(|e| e.into_inner());
            }
        };
        // This call holds one of the open places from here on.
        let client = match idle {
            Some(client) if !client.is_closed() => Ok(client),
            _ => self.connect(),
        };
        let mut client = match client {
            Ok(client) => client,
            Err(e) => {
                self.give_back(None);
                return Err(e);
            }
        };
        let result = f(&mut client);
        self.settle(&client, result.is_ok());
        self.give_back((!client.is_closed()).then_some(client));
        result.map_err(|e| self.fail(e))
    }

    /// Returns a reading connection's place (and the connection, when it
    /// still works).
    fn give_back(&self, client: Option<Client>) {
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        match client {
            Some(client) => readers.0.push(client),
            None => readers.1 -= 1,
        }
        self.reader_free.notify_one();
    }

    pub(crate) fn write(&self, entries: &[Entry], how: Write) -> Result<(), Error> {
        let finish = numbered(FINISH);
        let upsert = numbered(UPSERT);
        self.with_writer(|client| {
            let mut tx = client.transaction()?;
            let finish = tx.prepare(&finish)?;
            let upsert = tx.prepare(&upsert)?;
            for entry in entries {
                if how == Write::Enter && !entry.summary.running {
                    let v = values(&finish_params(entry));
                    if tx.execute(&finish, &refs(&v))? > 0 {
                        continue;
                    }
                }
                let v = values(&upsert_params(entry));
                tx.execute(&upsert, &refs(&v))?;
            }
            tx.commit()
        })
    }

    pub(crate) fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, Error> {
        let sql = numbered(sql);
        let v = values(params);
        self.with_writer(|client| client.execute(&sql, &refs(&v)))
    }

    pub(crate) fn select(
        &self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<RecordingSummary>, Error> {
        let sql = numbered(sql);
        let v = values(params);
        let rows = self.read(|client| client.query(&sql, &refs(&v)))?;
        rows.iter()
            .map(RecordingSummary::from_columns)
            .collect::<Result<_, _>>()
            .map_err(|e| self.fail(e))
    }

    pub(crate) fn delete_with(
        &self,
        recording_id: &str,
        files: impl FnOnce(&RecordingSummary) -> Result<u64, Error>,
    ) -> Result<Option<u64>, Error> {
        // The row stays locked while its files go: a second node deleting
        // it, or holding it, waits, and then finds it gone.
        let mut refused: Option<Error> = None;
        let deleted = self.with_writer(|client| {
            let mut tx = client.transaction()?;
            let row = tx.query_opt(
                &format!("SELECT {COLUMNS} FROM recordings WHERE recording_id = $1 FOR UPDATE"),
                &[&recording_id],
            )?;
            let Some(row) = row else {
                return Ok(None);
            };
            let recording = RecordingSummary::from_columns(&row)?;
            match files(&recording) {
                Ok(bytes) => {
                    tx.execute(
                        "DELETE FROM recordings WHERE recording_id = $1",
                        &[&recording_id],
                    )?;
                    tx.commit()?;
                    Ok(Some(bytes))
                }
                // Rolled back: the row stays.
                Err(e) => {
                    refused = Some(e);
                    Ok(None)
                }
            }
        })?;
        match refused {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }

    pub(crate) fn totals(&self) -> Result<(u64, u64), Error> {
        let row = self
            .read(|client| client.query_one("SELECT bytes, count FROM totals WHERE id = 1", &[]))?;
        let (bytes, count): (i64, i64) = (row.get(0), row.get(1));
        Ok((bytes.max(0) as u64, count.max(0) as u64))
    }

    pub(crate) fn last_per_device(&self) -> Result<Vec<(String, i64)>, Error> {
        let rows = self.read(|client| {
            client.query(
                "SELECT device, MAX(started_ms) FROM recordings GROUP BY device",
                &[],
            )
        })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Runs `f` holding the sweep lock; `None` when another node holds it.
    pub(crate) fn exclusively<T>(
        &self,
        f: impl FnOnce() -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        // A connection of its own: the lock lives as long as the session.
        let mut client = self.connect()?;
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&SWEEP_LOCK])
            .map_err(|e| self.fail(e))?
            .get(0);
        if !got {
            return Ok(None);
        }
        let out = f();
        let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&SWEEP_LOCK]);
        out.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password_in_messages() {
        assert_eq!(
            redact("postgres://callrec:s3cret@db.example:5432/recordings"),
            "postgres://callrec@db.example:5432/recordings"
        );
        assert_eq!(
            redact("postgres://db.example/recordings"),
            "postgres://db.example/recordings"
        );
        assert_eq!(redact("host=/tmp dbname=x"), "host=/tmp dbname=x");
        assert_eq!(
            redact("host=db password=s3cret dbname=x"),
            "host=db password=… dbname=x"
        );
    }

    proptest::proptest! {
        #[test]
        fn a_password_never_survives_redaction(
            user in "[a-z]{1,8}",
            password in "[A-Z][0-9][A-Za-z0-9]{4,10}",
            host in "[a-z]{1,8}",
            tail in "(/[a-z]{0,8})?",
        ) {
            let url = format!("postgres://{user}:{password}@{host}{tail}");
            let shown = redact(&url);
            proptest::prop_assert!(!shown.contains(&password), "{}", shown);
            proptest::prop_assert_eq!(shown, format!("postgres://{user}@{host}{tail}"));
        }

        #[test]
        fn redaction_takes_any_text(text in "\\PC{0,60}") {
            let _ = redact(&text);
        }
    }

    #[test]
    fn numbered_parameters() {
        assert_eq!(numbered("a = ?1 AND b = ?12"), "a = $1 AND b = $12");
    }
}
