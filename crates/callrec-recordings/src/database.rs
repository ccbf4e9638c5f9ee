//! The seam between the index and its database: what SQLite
//! ([`crate::sqlite`]) and PostgreSQL ([`crate::postgres`]) each supply.
//!
//! The index ([`crate::index`]) and its schema ([`crate::schema`]) are
//! written once, in SQL both databases run, with numbered `?N` parameters;
//! a backend supplies its [`Dialect`] (the few words that differ),
//! connections and transactions, and turns its rows into [`Row`]s. Neither
//! backend knows the index's types, and the index names no backend.

use crate::Error;

/// The words of SQL that differ between the databases.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// LIKE that ignores ASCII case (SQLite's `LIKE` does; PostgreSQL
    /// needs `ILIKE`).
    pub(crate) like: &'static str,
    /// Appended to a `SELECT` of the row about to be deleted: locks it
    /// until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite has one
    /// writer, which is lock enough).
    pub(crate) lock_row: &'static str,
    /// The triggers that keep the `totals` table (statements).
    pub(crate) totals_triggers: &'static str,
    /// Run before the version is read (creates where it is kept).
    pub(crate) version_table: &'static str,
    /// Selects the schema version (one integer; no row or NULL: none).
    pub(crate) read_version: &'static str,
    /// Records the schema version; `{version}` is replaced by it.
    pub(crate) write_version: &'static str,
}

/// A value bound to a `?N` parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Flag(bool),
}

/// A column's value as the database returned it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Text(String),
    Int(i64),
    Flag(bool),
}

/// One row of a query's result.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Row(pub(crate) Vec<Value>);

/// A column that does not hold what the caller reads: its number, what it
/// holds and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnError {
    pub(crate) column: usize,
    pub(crate) found: &'static str,
    pub(crate) expected: &'static str,
}

impl core::fmt::Display for ColumnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Self {
            column,
            found,
            expected,
        } = self;
        write!(f, "column {column} holds {found}, not {expected}")
    }
}

impl Row {
    fn get(&self, column: usize) -> &Value {
        self.0.get(column).unwrap_or(&Value::Null)
    }

    fn wrong(&self, column: usize, expected: &'static str) -> ColumnError {
        let found = match self.0.get(column) {
            None => "nothing (the row is shorter)",
            Some(Value::Null) => "NULL",
            Some(Value::Text(_)) => "text",
            Some(Value::Int(_)) => "an integer",
            Some(Value::Flag(_)) => "a boolean",
        };
        ColumnError {
            column,
            found,
            expected,
        }
    }

    /// Text, moved out of the row (each column is read once).
    pub(crate) fn opt_text(&mut self, column: usize) -> Result<Option<String>, ColumnError> {
        match self.0.get_mut(column) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Text(s)) => Ok(Some(core::mem::take(s))),
            Some(_) => Err(self.wrong(column, "text")),
        }
    }

    /// Text, moved out of the row; NULL is an error.
    pub(crate) fn text(&mut self, column: usize) -> Result<String, ColumnError> {
        self.opt_text(column)?
            .ok_or_else(|| self.wrong(column, "text"))
    }

    pub(crate) fn opt_int(&self, column: usize) -> Result<Option<i64>, ColumnError> {
        match self.get(column) {
            Value::Null => Ok(None),
            Value::Int(n) => Ok(Some(*n)),
            _ => Err(self.wrong(column, "an integer")),
        }
    }

    pub(crate) fn int(&self, column: usize) -> Result<i64, ColumnError> {
        self.opt_int(column)?
            .ok_or_else(|| self.wrong(column, "an integer"))
    }

    /// A boolean: PostgreSQL's `BOOLEAN`, or SQLite's 0 and 1.
    pub(crate) fn flag(&self, column: usize) -> Result<bool, ColumnError> {
        match self.get(column) {
            Value::Flag(b) => Ok(*b),
            Value::Int(n) => Ok(*n != 0),
            _ => Err(self.wrong(column, "a boolean")),
        }
    }
}

/// Statements inside one transaction.
pub(crate) trait Transaction {
    /// Runs one statement; the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, Error>;
    /// The rows of a query.
    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, Error>;
    /// Runs statements separated by `;`, without parameters.
    fn batch(&mut self, sql: &str) -> Result<(), Error>;
}

/// A database the index runs on.
pub(crate) trait Database: Send + Sync {
    /// The database, for messages: its file, or its URL without password.
    fn describe(&self) -> &str;

    /// The SQL that differs.
    fn dialect(&self) -> &'static Dialect;

    /// Whether the database answered its last request.
    fn available(&self) -> bool {
        true
    }

    /// Whether the database is shared by a pool of nodes (and may be
    /// away for a while, see [`Database::probe`]).
    fn pooled(&self) -> bool {
        false
    }

    /// Checks that the database answers, connecting (and creating or
    /// migrating its schema) when it has not yet.
    ///
    /// # Errors
    /// [`Error::Index`] when it does not answer.
    fn probe(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Runs `work` in one transaction: committed when it returns `Ok`,
    /// rolled back (and its error returned as it is) otherwise.
    ///
    /// # Errors
    /// `work`'s, or [`Error::Index`] when the database fails.
    fn transaction(
        &self,
        work: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), Error>,
    ) -> Result<(), Error>;

    /// The rows of a query, on a connection of the readers (a search never
    /// waits for a write).
    ///
    /// # Errors
    /// [`Error::Index`] when the database fails.
    fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, Error>;

    /// Runs `work` while no other node of a pool does (PostgreSQL: an
    /// advisory lock); `false`, without running it, when another one does
    /// now.
    ///
    /// # Errors
    /// `work`'s, or [`Error::Index`] when the lock cannot be asked for.
    fn exclusively(&self, work: &mut dyn FnMut() -> Result<(), Error>) -> Result<bool, Error> {
        work().map(|()| true)
    }

    /// Runs `work` while no other node runs work for the recording
    /// `recording_id` (waiting for one that does): a pool's nodes delete a
    /// recording, and log it, one at a time. One node (SQLite) needs no
    /// lock: its deletions already take turns.
    fn for_recording(
        &self,
        recording_id: &str,
        work: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Result<(), Error> {
        let _ = recording_id;
        work()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_booleans_from_either_database_and_name_a_wrong_column() {
        let mut row = Row(vec![
            Value::Int(1),
            Value::Flag(false),
            Value::Null,
            Value::Text("x".into()),
        ]);
        assert_eq!(row.flag(0), Ok(true));
        assert_eq!(row.flag(1), Ok(false));
        assert_eq!(row.opt_text(2), Ok(None));
        assert_eq!(row.text(3).as_deref(), Ok("x"));
        let e = row.int(2).unwrap_err();
        assert_eq!((e.column, e.found, e.expected), (2, "NULL", "an integer"));
        assert_eq!(
            row.text(9).unwrap_err().found,
            "nothing (the row is shorter)"
        );
    }
}
