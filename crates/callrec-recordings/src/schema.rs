//! The index's tables: one sequence of versions for both databases, each
//! step written once in SQL that SQLite and PostgreSQL both run
//! (`BIGINT` and `BOOLEAN` are SQLite's integers too); only the triggers
//! that keep the totals differ ([`Dialect::totals_triggers`]).
//!
//! Adding a column is a new step here, plus its place in
//! [`crate::index::COLUMNS`] and the row mapping beside it.

use crate::Error;
use crate::database::{Dialect, Transaction};

/// The version this server writes: the last step's.
pub(crate) const SCHEMA_VERSION: i64 = 7;

/// Each version and the statements that reach it from the one before.
/// `{TOTALS_TRIGGERS}` is the dialect's.
pub(crate) const STEPS: &[(i64, &str)] = &[
    (
        1,
        "
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
    sidecar_path TEXT
);
CREATE INDEX IF NOT EXISTS by_start ON recordings (started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_device ON recordings (device, started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_local ON recordings (local_number, started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_remote ON recordings (remote_number, started_ms, recording_id);
CREATE INDEX IF NOT EXISTS by_running ON recordings (running) WHERE running;
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    bytes BIGINT NOT NULL,
    count BIGINT NOT NULL
);
{TOTALS_TRIGGERS}
",
    ),
    (
        2,
        "
ALTER TABLE recordings ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN uploaded BOOLEAN NOT NULL DEFAULT FALSE;
",
    ),
    (
        3,
        "
DROP INDEX IF EXISTS by_running;
CREATE INDEX by_running ON recordings (node) WHERE running;
CREATE INDEX IF NOT EXISTS by_node ON recordings (node, uploaded);
",
    ),
    (
        4,
        "
CREATE TABLE IF NOT EXISTS audit_anchor (
    node TEXT PRIMARY KEY NOT NULL,
    entries BIGINT NOT NULL,
    head TEXT NOT NULL,
    pending TEXT
);
",
    ),
    (
        5,
        "
ALTER TABLE recordings ADD COLUMN source TEXT NOT NULL DEFAULT 'phone';
ALTER TABLE recordings ADD COLUMN participants TEXT NOT NULL DEFAULT '[]';
ALTER TABLE recordings ADD COLUMN channels TEXT NOT NULL DEFAULT '[]';
CREATE TABLE IF NOT EXISTS participant_numbers (
    number TEXT NOT NULL,
    recording_id TEXT NOT NULL,
    PRIMARY KEY (number, recording_id)
);
CREATE INDEX IF NOT EXISTS participant_numbers_by_recording
    ON participant_numbers (recording_id);
",
    ),
    (
        6,
        "
ALTER TABLE recordings ADD COLUMN archive_path TEXT;
ALTER TABLE recordings ADD COLUMN archive TEXT;
ALTER TABLE recordings ADD COLUMN manifest_path TEXT;
CREATE TABLE IF NOT EXISTS imported_files (
    sha256 TEXT PRIMARY KEY NOT NULL,
    recording_id TEXT NOT NULL,
    name TEXT NOT NULL
);
",
    ),
    (
        7,
        "
CREATE TABLE IF NOT EXISTS nodes (
    node TEXT PRIMARY KEY NOT NULL,
    public_url TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
",
    ),
];

/// Counts the recordings into `totals` once (the triggers keep it from
/// then on); run after every migration, a no-op when the row is there.
const SEED_TOTALS: &str = "INSERT INTO totals (id, bytes, count) \
    SELECT 1, COALESCE(SUM(bytes), 0), COUNT(*) FROM recordings WHERE TRUE \
    ON CONFLICT (id) DO NOTHING";

/// Why the schema could not be brought to [`SCHEMA_VERSION`].
#[derive(Debug)]
pub(crate) enum MigrateError {
    /// A newer server wrote it; this one must not touch it.
    TooNew(Error),
    /// The database failed.
    Failed(Error),
}

impl MigrateError {
    /// The error, whichever it is.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Self::TooNew(e) | Self::Failed(e) => e,
        }
    }
}

/// Brings the schema of the database that `tx` is a transaction of from
/// the version it holds to [`SCHEMA_VERSION`]; `found` maps a version the
/// database recorded to this sequence (PostgreSQL indexes from before it
/// was shared say 1 for what is 2 here).
///
/// # Errors
/// [`MigrateError::TooNew`] when the database holds a newer version.
pub(crate) fn migrate(
    tx: &mut dyn Transaction,
    dialect: &Dialect,
    describe: &str,
    found: fn(i64) -> i64,
) -> Result<(), MigrateError> {
    let failed = MigrateError::Failed;
    if !dialect.version_table.is_empty() {
        tx.batch(dialect.version_table).map_err(failed)?;
    }
    let rows = tx.query(dialect.read_version, &[]).map_err(failed)?;
    let recorded = rows
        .first()
        .and_then(|row| row.opt_int(0).ok().flatten())
        .unwrap_or(0);
    let version = if recorded == 0 { 0 } else { found(recorded) };
    if version > SCHEMA_VERSION {
        return Err(MigrateError::TooNew(Error::index(
            describe,
            format!(
                "the index was written by a newer server (schema {recorded}, this one knows {SCHEMA_VERSION})"
            ),
        )));
    }
    for (step, sql) in STEPS.iter().filter(|(step, _)| *step > version) {
        tx.batch(&sql.replace("{TOTALS_TRIGGERS}", dialect.totals_triggers))
            .map_err(|e| {
                MigrateError::Failed(Error::index(
                    describe,
                    format!("cannot bring the schema to version {step}: {e}"),
                ))
            })?;
    }
    tx.execute(SEED_TOTALS, &[]).map_err(failed)?;
    if version < SCHEMA_VERSION {
        tx.batch(
            &dialect
                .write_version
                .replace("{version}", &SCHEMA_VERSION.to_string()),
        )
        .map_err(failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_run_in_order_and_end_at_the_version() {
        assert!(STEPS.windows(2).all(|w| w[1].0 == w[0].0 + 1));
        assert_eq!(STEPS.first().map(|s| s.0), Some(1));
        assert_eq!(STEPS.last().map(|s| s.0), Some(SCHEMA_VERSION));
    }
}
