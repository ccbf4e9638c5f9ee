//! The index in PostgreSQL: one database shared by a pool of recording
//! nodes.
//!
//! The same tables and SQL as SQLite ([`crate::index`],
//! [`crate::schema`]); this module supplies connections, transactions and
//! PostgreSQL's few words of its own ([`DIALECT`]). The schema is
//! created and migrated by whichever node starts first; nodes that start
//! at the same moment wait for it on an advisory lock. A lost connection is
//! made again on the next request; [`Database::available`] says whether the
//! last request reached the database, so that a node can refuse new calls
//! it could not enter.

use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};

use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Statement};

use crate::Error;
use crate::database::{Database, Dialect, Param, Row, Transaction, Value};
use crate::schema::{MigrateError, migrate};

/// Connections for searches, at most: more searches at once wait for one.
const READERS: usize = 8;

/// The advisory lock held while the schema is created or migrated.
const MIGRATION_LOCK: i64 = 0x6361_6c6c_7265_6301;

/// The advisory lock held by the node that runs retention.
const SWEEP_LOCK: i64 = 0x6361_6c6c_7265_6302;

/// The first key of the advisory locks a deletion holds on its recording
/// (the second is the id's hash).
const RECORDING_LOCK_CLASS: i32 = 0x6372_6563;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// PostgreSQL's words.
static DIALECT: Dialect = Dialect {
    like: "ILIKE",
    lock_row: " FOR UPDATE",
    totals_triggers: "
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
",
    version_table: "CREATE TABLE IF NOT EXISTS callrec_schema (version INTEGER NOT NULL)",
    read_version: "SELECT CAST(MAX(version) AS BIGINT) FROM callrec_schema",
    write_version: "DELETE FROM callrec_schema; INSERT INTO callrec_schema (version) VALUES ({version})",
};

/// A version PostgreSQL recorded, in the shared sequence: indexes written
/// before the sequence was shared say 1 for the tables of version 2 (the
/// node and upload columns were there from the start).
fn shared_version(recorded: i64) -> i64 {
    if recorded == 1 { 2 } else { recorded }
}

/// `?N` parameters as PostgreSQL writes them.
fn numbered(sql: &str) -> String {
    sql.replace('?', "$")
}

/// The parameters as the driver takes them.
fn values<'a>(params: &'a [Param]) -> Vec<Box<dyn ToSql + Sync + 'a>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + 'a> {
            match p {
                Param::Text(s) => Box::new(s.as_str()),
                Param::OptText(s) => Box::new(s.as_deref()),
                Param::Int(n) => Box::new(*n),
                Param::OptInt(n) => Box::new(*n),
                Param::Flag(b) => Box::new(*b),
            }
        })
        .collect()
}

fn refs<'a>(values: &'a [Box<dyn ToSql + Sync + 'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect()
}

/// A row of PostgreSQL's as the index reads it.
fn row_of(row: &postgres::Row) -> Result<Row, postgres::Error> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        out.push(if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?
                .map_or(Value::Null, Value::Flag)
        } else if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?
                .map_or(Value::Null, Value::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map_or(Value::Null, |n| Value::Int(n.into()))
        } else {
            row.try_get::<_, Option<String>>(i)?
                .map_or(Value::Null, Value::Text)
        });
    }
    Ok(Row(out))
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
}

/// A transaction on the writer connection, with the statements it has
/// prepared (a batch of entries prepares each once).
struct PgTransaction<'a, 'c> {
    tx: &'a mut postgres::Transaction<'c>,
    prepared: HashMap<String, Statement>,
    shown: &'a str,
}

impl PgTransaction<'_, '_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(&numbered(sql))?;
        self.prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

impl Transaction for PgTransaction<'_, '_> {
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, Error> {
        let v = values(params);
        let run = |this: &mut Self| {
            let statement = this.statement(sql)?;
            this.tx.execute(&statement, &refs(&v))
        };
        run(self).map_err(|e| Error::index(self.shown, pg_message(&e)))
    }

    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, Error> {
        let v = values(params);
        let run = |this: &mut Self| {
            let statement = this.statement(sql)?;
            this.tx
                .query(&statement, &refs(&v))?
                .iter()
                .map(row_of)
                .collect::<Result<Vec<Row>, _>>()
        };
        run(self).map_err(|e| Error::index(self.shown, pg_message(&e)))
    }

    fn batch(&mut self, sql: &str) -> Result<(), Error> {
        self.tx
            .batch_execute(sql)
            .map_err(|e| Error::index(self.shown, pg_message(&e)))
    }
}

/// What the server said, not just "db error": its message, SQLSTATE code
/// and detail when it answered with an error; the client's error otherwise.
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(": ");
                text.push_str(detail);
            }
            text
        }
        None => e.to_string(),
    }
}

impl PgIndex {
    /// The index at `url` (`postgres://user:password@host:port/database`,
    /// or any form libpq takes). Connects and migrates when it can; when
    /// the database cannot be reached, the index is returned unavailable
    /// and [`Database::probe`] connects later.
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
        };
        match index.connect_and_migrate() {
            Ok(()) => Ok(index),
            Err(MigrateError::TooNew(e)) => Err(e),
            Err(MigrateError::Failed(e)) => {
                tracing::error!("{e}; new calls are refused until it answers");
                Ok(index)
            }
        }
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

    /// Connects, creating or migrating the schema, and keeps the
    /// connection as the writer's.
    fn connect_and_migrate(&self) -> Result<(), MigrateError> {
        let mut client = self.connect().map_err(MigrateError::Failed)?;
        let failed = |e: postgres::Error| MigrateError::Failed(self.fail(e));
        let mut tx = client.transaction().map_err(failed)?;
        // Nodes starting together: one creates, the others wait and then
        // find everything there.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(failed)?;
        migrate(
            &mut PgTransaction {
                tx: &mut tx,
                prepared: HashMap::new(),
                shown: &self.shown,
            },
            &DIALECT,
            &self.shown,
            shared_version,
        )?;
        tx.commit().map_err(failed)?;
        self.migrated.store(true, Ordering::Relaxed);
        self.available.store(true, Ordering::Relaxed);
        *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
        Ok(())
    }

    /// Runs `f` on the writer connection, connecting first when there is
    /// none; a connection that broke is dropped (the next call connects
    /// again).
    fn with_writer<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, Error>) -> Result<T, Error> {
        if !self.migrated.load(Ordering::Relaxed) {
            self.probe()?;
        }
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut client = match writer.take() {
            Some(client) if !client.is_closed() => client,
            _ => self.connect()?,
        };
        let result = f(&mut client);
        self.note_availability(&client, result.is_ok());
        if !client.is_closed() {
            *writer = Some(client);
        }
        result
    }

    /// Notes whether the database answered.
    fn note_availability(&self, client: &Client, ok: bool) {
        self.available
            .store(ok || !client.is_closed(), Ordering::Relaxed);
    }

    /// Runs `f` on a reading connection (at most [`READERS`] are open; a
    /// search beyond that waits for one).
    fn read<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, Error>) -> Result<T, Error> {
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
        self.note_availability(&client, result.is_ok());
        self.give_back((!client.is_closed()).then_some(client));
        result
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
}

impl Database for PgIndex {
    fn describe(&self) -> &str {
        &self.shown
    }

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    fn pooled(&self) -> bool {
        true
    }

    fn probe(&self) -> Result<(), Error> {
        if !self.migrated.load(Ordering::Relaxed) {
            self.connect_and_migrate()
                .map_err(MigrateError::into_error)?;
        }
        self.with_writer(|client| {
            client
                .simple_query("SELECT 1")
                .map(drop)
                .map_err(|e| self.fail(e))
        })
    }

    fn transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.with_writer(|client| {
            let mut tx = client.transaction().map_err(|e| self.fail(e))?;
            // An error from `work` drops `tx`: rolled back.
            work(&mut PgTransaction {
                tx: &mut tx,
                prepared: HashMap::new(),
                shown: &self.shown,
            })?;
            tx.commit().map_err(|e| self.fail(e))
        })
    }

    fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, Error> {
        let sql = numbered(sql);
        let v = values(params);
        self.read(|client| {
            let rows = client.query(&sql, &refs(&v)).map_err(|e| self.fail(e))?;
            rows.iter()
                .map(row_of)
                .collect::<Result<_, _>>()
                .map_err(|e| self.fail(e))
        })
    }

    fn for_recording(
        &self,
        recording_id: &str,
        work: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Result<(), Error> {
        // A connection of its own (the writer is needed inside `work`);
        // the two-key form, apart from the sweep's one-key lock.
        let mut client = self.connect()?;
        client
            .execute(
                "SELECT pg_advisory_lock($1, hashtext($2))",
                &[&RECORDING_LOCK_CLASS, &recording_id],
            )
            .map_err(|e| self.fail(e))?;
        let out = work();
        let _ = client.execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&RECORDING_LOCK_CLASS, &recording_id],
        );
        out
    }

    fn exclusively(&self, work: &mut dyn FnMut() -> Result<(), Error>) -> Result<bool, Error> {
        // A connection of its own: the lock lives as long as the session.
        let mut client = self.connect()?;
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&SWEEP_LOCK])
            .map_err(|e| self.fail(e))?
            .get(0);
        if !got {
            return Ok(false);
        }
        let out = work();
        let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&SWEEP_LOCK]);
        out.map(|()| true)
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
