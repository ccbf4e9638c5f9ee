//! The audit log: one JSON line per download, deletion and hold, each
//! carrying the SHA-256 of the line before it, so that changing, removing
//! or inserting a line breaks the chain from there on.
//!
//! Lines are appended with one `write` on a file opened for appending and
//! flushed to disk before the action they record takes effect: a deletion
//! that could not be logged does not happen.
//!
//! The chain alone cannot show that its last lines were changed or cut
//! off: after every line, the index keeps where the chain stands (an
//! [`AuditAnchor`]: the number of lines and the last one's hash), and the
//! log is compared with it when the service opens it and when it is
//! verified.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;

/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest line [`verify`] reads.
const MAX_LINE: usize = 64 << 10;

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditEntry {
    /// 1 for the first line, then one more per line.
    pub seq: u64,
    /// RFC 3339 UTC.
    pub time: String,
    /// `download`, `delete`, `retention_delete`, `hold` or `release`.
    pub action: String,
    /// The recording.
    pub recording_id: String,
    /// Who: the API token's name, `loopback` (no tokens) or `retention`.
    pub actor: String,
    /// The client's address, for API actions.
    pub address: Option<String>,
    /// More about it (the retention rule, the files removed).
    pub detail: Option<String>,
    /// SHA-256 (lowercase hex) of the previous line's bytes, without its
    /// newline; [`GENESIS`] for the first.
    pub prev: String,
}

/// What [`verify`] found: a whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditReport {
    /// Lines in the log.
    pub entries: u64,
    /// SHA-256 of the last line.
    pub head: String,
    /// Whether the log was compared with an [`AuditAnchor`] (and matched
    /// it); without one, a log whose last lines were changed or cut off
    /// still verifies.
    pub anchored: bool,
}

/// Where an audit log's chain stood after the last line the service
/// wrote, kept outside the log (in the index, one per node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditAnchor {
    /// Lines written.
    pub entries: u64,
    /// SHA-256 of the last of them ([`GENESIS`] when there are none).
    pub head: String,
    /// The hash of the line being written: set before a line goes to the
    /// log and cleared once it is there, so that a crash between the two is
    /// told apart from a line someone else added.
    pub pending: Option<String>,
}

impl AuditAnchor {
    /// The anchor of a chain of `entries` lines ending in `head`.
    pub fn new(entries: u64, head: impl Into<String>) -> Self {
        Self {
            entries,
            head: head.into(),
            pending: None,
        }
    }
}

/// Where the service keeps the anchor: the index.
pub(crate) trait AnchorStore {
    /// The anchor kept, if any.
    fn read_anchor(&self) -> Result<Option<AuditAnchor>, Error>;
    /// Keeps `anchor` in place of the one before.
    fn write_anchor(&self, anchor: &AuditAnchor) -> Result<(), Error>;
}

/// How a log ending in line `entries` (hashing to `head`, the line before
/// hashing to `before`) stands against an anchor.
#[derive(Debug, PartialEq, Eq)]
enum Fit {
    /// It ends where the anchor says.
    Matches,
    /// It has the one line the anchor said was being written (a crash
    /// came before the anchor was moved on).
    Completes,
    /// It does not: why, naming the first line that differs.
    Differs(String),
}

fn lines(first: u64, last: u64) -> String {
    if first == last {
        format!("line {first} is")
    } else {
        format!("lines {first}-{last} are")
    }
}

fn fit(entries: u64, head: &str, before: &str, anchor: &AuditAnchor) -> Fit {
    let kept = anchor.entries;
    if entries == kept && head == anchor.head {
        Fit::Matches
    } else if entries == kept + 1
        && before == anchor.head
        && anchor.pending.as_deref() == Some(head)
    {
        Fit::Completes
    } else if entries < kept {
        Fit::Differs(format!(
            "{} missing: the log ends at line {entries}, the index's anchor says it has {kept}",
            lines(entries + 1, kept)
        ))
    } else if entries == kept {
        Fit::Differs(format!(
            "line {entries} changed: it hashes to {head}, the index's anchor says {}",
            anchor.head
        ))
    } else if entries == kept + 1 && before != anchor.head {
        Fit::Differs(format!(
            "line {kept} changed: it hashes to {before}, the index's anchor says {}",
            anchor.head
        ))
    } else {
        Fit::Differs(format!(
            "{} not written by the service: the index's anchor ends at line {kept}",
            lines(kept + 1, entries)
        ))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    crate::store::hex(&Sha256::digest(bytes))
}

struct State {
    file: File,
    seq: u64,
    head: String,
    /// The hash of the line before the last ([`GENESIS`] when there is
    /// none).
    before: String,
    /// Whether the log was compared with the index's anchor since it was
    /// opened (put off while the index does not answer).
    anchored: bool,
    /// The file's length after the last append.
    len: u64,
    /// Why the log no longer takes lines (the file was replaced or cut
    /// while the server ran), until an operator restarts it.
    broken: Option<String>,
}

/// The open audit log.
pub(crate) struct AuditLog {
    path: PathBuf,
    /// Whether a log that does not match its anchor is taken as it is
    /// (the acceptance is logged) instead of refusing audited actions.
    accept: bool,
    state: Mutex<State>,
}

impl AuditLog {
    /// Opens the log at `path` (created when missing), continuing its chain.
    /// A last line cut short by a crash (no newline: its action never took
    /// effect) is removed. It is compared with its anchor by
    /// [`check_anchor`](Self::check_anchor), or before it takes its next
    /// line; `accept` takes a log that differs from it as it is.
    pub(crate) fn open(path: &Path, accept: bool) -> Result<Self, Error> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        let (seq, head, before) = last_line(&mut file, path)?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("read", path, e))?
            .len();
        Ok(Self {
            path: path.to_owned(),
            accept,
            state: Mutex::new(State {
                file,
                seq,
                head,
                before,
                anchored: false,
                len,
                broken: None,
            }),
        })
    }

    /// Why the log takes no more lines, if it does not: it differs from
    /// its anchor, or the file at its path was replaced, removed, cut or
    /// added to while the server ran (looked at now, and on every append).
    pub(crate) fn broken(&self) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.notice_change(&mut state);
        state.broken.clone()
    }

    /// Compares the log with the anchor in `store` once (later calls do
    /// nothing): a log that ends where the anchor says, or has the one line
    /// it says was being written, goes on; a log and no anchor (a new or
    /// rebuilt index) is anchored where it ends; any other log is broken
    /// (no more lines, audited actions refused) unless the log was opened
    /// to accept it, when a line saying so is appended and the anchor
    /// moved there.
    ///
    /// # Errors
    /// The store's, when it cannot be read or written (checked again
    /// next time).
    pub(crate) fn check_anchor(&self, store: &dyn AnchorStore) -> Result<(), Error> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.anchor_once(&mut state, store)
    }

    fn anchor_once(&self, state: &mut State, store: &dyn AnchorStore) -> Result<(), Error> {
        if state.anchored {
            return Ok(());
        }
        let here = AuditAnchor::new(state.seq, state.head.clone());
        let differs = match store.read_anchor()? {
            None if state.seq == 0 => None,
            None => {
                tracing::warn!(
                    "audit log {}: the index keeps no anchor for it (a new or rebuilt index); \
                     anchored where it ends, at line {} (head {})",
                    self.path.display(),
                    state.seq,
                    state.head
                );
                store.write_anchor(&here)?;
                None
            }
            Some(anchor) => match fit(state.seq, &state.head, &state.before, &anchor) {
                Fit::Matches => None,
                Fit::Completes => {
                    tracing::info!(
                        "audit log {}: line {} was written but not yet anchored when the \
                         service stopped; anchored now",
                        self.path.display(),
                        state.seq
                    );
                    store.write_anchor(&here)?;
                    None
                }
                Fit::Differs(why) => Some(why),
            },
        };
        state.anchored = true;
        let Some(why) = differs else {
            return Ok(());
        };
        if self.accept {
            tracing::warn!(
                "audit log {}: {why}; accepted as it is (--audit-accept), and logged",
                self.path.display()
            );
            return self.write_line(
                state,
                store,
                AuditLine {
                    action: "accept",
                    recording_id: "",
                    actor: "operator",
                    address: None,
                    detail: Some(format!("the log did not match its anchor: {why}")),
                    time: crate::time::format_time_ms(crate::service::unix_ms()),
                },
            );
        }
        let why = format!(
            "{why}; keep a copy of the log as evidence, then start the service once with \
             --audit-accept to go on from its last line (the acceptance is logged)"
        );
        tracing::error!(
            "audit log {}: {why}; audited requests are refused",
            self.path.display()
        );
        state.broken = Some(why);
        Ok(())
    }

    /// Marks the log broken (and says so once) when its file changed
    /// under it.
    fn notice_change(&self, state: &mut State) {
        if state.broken.is_none() {
            state.broken = self.changed_under_us(state);
            if let Some(why) = &state.broken {
                tracing::error!(
                    "audit log {}: {why}; no more lines are written to it and audited requests \
                     are refused until the server is restarted (after the log is checked)",
                    self.path.display()
                );
            }
        }
    }

    /// Where the log is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Lines written so far.
    pub(crate) fn entries(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).seq
    }

    /// Appends a line and flushes it to disk, moving the anchor in
    /// `store` on.
    ///
    /// # Errors
    /// [`Error::Audit`] when the log is broken, the write, flush or
    /// store's error: the action must then not happen.
    pub(crate) fn append(&self, store: &dyn AnchorStore, line: AuditLine<'_>) -> Result<(), Error> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.notice_change(&mut state);
        self.anchor_once(&mut state, store)?;
        if let Some(why) = &state.broken {
            return Err(Error::Audit {
                path: self.path.clone(),
                message: format!("{why}: audited actions are refused until an operator acts"),
            });
        }
        self.write_line(&mut state, store, line)
    }

    fn write_line(
        &self,
        state: &mut State,
        store: &dyn AnchorStore,
        line: AuditLine<'_>,
    ) -> Result<(), Error> {
        let entry = AuditEntry {
            seq: state.seq + 1,
            time: line.time,
            action: line.action.to_owned(),
            recording_id: line.recording_id.to_owned(),
            actor: line.actor.to_owned(),
            address: line.address,
            detail: line.detail,
            prev: state.head.clone(),
        };
        let mut bytes = serde_json::to_vec(&entry).map_err(|e| Error::Audit {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let head = sha256_hex(&bytes);
        bytes.push(b'\n');
        store.write_anchor(&AuditAnchor {
            pending: Some(head.clone()),
            ..AuditAnchor::new(state.seq, state.head.clone())
        })?;
        state
            .file
            .write_all(&bytes)
            .and_then(|()| state.file.sync_data())
            .map_err(|e| Error::io("append to", &self.path, e))?;
        state.before = core::mem::replace(&mut state.head, head);
        state.seq = entry.seq;
        state.len += bytes.len() as u64;
        store.write_anchor(&AuditAnchor::new(state.seq, state.head.clone()))
    }

    /// Checks the chain of the lines written so far against where this
    /// service knows it stands, after [`broken`](Self::broken)'s checks;
    /// lines appended meanwhile are left for the next check.
    ///
    /// # Errors
    /// As [`verify`]; [`Error::Audit`] when the log is broken.
    pub(crate) fn verify(&self, store: &dyn AnchorStore) -> Result<AuditReport, Error> {
        let (anchor, len) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            self.notice_change(&mut state);
            self.anchor_once(&mut state, store)?;
            if let Some(why) = &state.broken {
                return Err(Error::Audit {
                    path: self.path.clone(),
                    message: why.clone(),
                });
            }
            (AuditAnchor::new(state.seq, state.head.clone()), state.len)
        };
        let file = File::open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
        verify_reader(BufReader::new(file.take(len)), &self.path, Some(&anchor))
    }

    /// Whether the file at the log's path is no longer the one this log
    /// opened (replaced or removed), or shorter than what it wrote.
    fn changed_under_us(&self, state: &State) -> Option<String> {
        let opened = match state.file.metadata() {
            Ok(m) => m,
            Err(e) => return Some(format!("cannot read the open log: {e}")),
        };
        let at_path = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) => return Some(format!("the log file is gone from its path ({e})")),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if (opened.dev(), opened.ino()) != (at_path.dev(), at_path.ino()) {
                return Some("the log file was replaced by another file".to_owned());
            }
        }
        #[cfg(not(unix))]
        let _ = &opened;
        if at_path.len() < state.len {
            return Some(format!(
                "the log file was cut: {} bytes where {} were written",
                at_path.len(),
                state.len
            ));
        }
        if at_path.len() > state.len {
            return Some(format!(
                "the log file grew by {} bytes the service did not write",
                at_path.len() - state.len
            ));
        }
        None
    }
}

/// One line to append: what happened, to which recording, by whom.
#[derive(Debug)]
pub(crate) struct AuditLine<'a> {
    /// [`AuditEntry::action`].
    pub(crate) action: &'a str,
    /// [`AuditEntry::recording_id`].
    pub(crate) recording_id: &'a str,
    /// [`AuditEntry::actor`].
    pub(crate) actor: &'a str,
    /// [`AuditEntry::address`].
    pub(crate) address: Option<String>,
    /// [`AuditEntry::detail`].
    pub(crate) detail: Option<String>,
    /// [`AuditEntry::time`].
    pub(crate) time: String,
}

/// The sequence number and hash of the last whole line of `file`, and
/// the hash it carries of the line before; a torn last line is cut off.
fn last_line(file: &mut File, path: &Path) -> Result<(u64, String, String), Error> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("read", path, e))?
        .len();
    if len == 0 {
        return Ok((0, GENESIS.to_owned(), GENESIS.to_owned()));
    }
    let start = len.saturating_sub(2 * MAX_LINE as u64);
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(|e| Error::io("read", path, e))?;
    let complete = match tail.iter().rposition(|&b| b == b'\n') {
        Some(end) => end + 1,
        None if start == 0 => 0,
        None => {
            return Err(Error::Audit {
                path: path.to_owned(),
                message: format!("its last line is longer than {MAX_LINE} bytes"),
            });
        }
    };
    if complete < tail.len() {
        if serde_json::from_slice::<AuditEntry>(&tail[complete..]).is_ok() {
            // A whole entry that only lacks its newline: its action may
            // have happened, so it is kept (an access is never dropped from
            // the log); the newline is added.
            tracing::warn!(
                "audit log {}: the last line lacked its newline; kept and completed",
                path.display()
            );
            file.write_all(b"\n")
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io("append to", path, e))?;
            tail.push(b'\n');
        } else {
            tracing::warn!(
                "audit log {}: removing a last line cut short by a crash ({} bytes, not a whole entry)",
                path.display(),
                tail.len() - complete
            );
            file.set_len(start + complete as u64)
                .map_err(|e| Error::io("truncate", path, e))?;
            tail.truncate(complete);
        }
    }
    if tail.is_empty() {
        return Ok((0, GENESIS.to_owned(), GENESIS.to_owned()));
    }
    let body = &tail[..tail.len() - 1];
    let line = &body[body.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)..];
    let entry: AuditEntry = serde_json::from_slice(line).map_err(|e| Error::Audit {
        path: path.to_owned(),
        message: format!("its last line is not an audit entry: {e}"),
    })?;
    Ok((entry.seq, sha256_hex(line), entry.prev))
}

/// Checks the whole chain of the log at `path`, and that it ends where
/// `anchor` says (see [`read_audit_anchor`](crate::read_audit_anchor)):
/// without an anchor, changed or removed last lines go unnoticed. Run it
/// on a stopped node (a running one appends meanwhile), or ask a running
/// one (`GET /api/audit/verify`).
///
/// # Errors
/// [`Error::Audit`] naming the first line that is not valid JSON, is out of
/// sequence, does not carry its predecessor's hash, or (against the
/// anchor) is missing, changed or added; [`Error::Io`] when the file
/// cannot be read.
pub fn verify(path: &Path, anchor: Option<&AuditAnchor>) -> Result<AuditReport, Error> {
    match File::open(path) {
        Ok(file) => verify_reader(BufReader::new(file), path, anchor),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => verify_reader(&b""[..], path, anchor),
        Err(e) => Err(Error::io("open", path, e)),
    }
}

/// [`verify`] of the log's bytes from `reader` (`path` names it in errors).
pub(crate) fn verify_reader(
    mut reader: impl BufRead,
    path: &Path,
    anchor: Option<&AuditAnchor>,
) -> Result<AuditReport, Error> {
    let bad = |n: u64, message: String| Error::Audit {
        path: path.to_owned(),
        message: format!("line {n}: {message}"),
    };
    let mut head = GENESIS.to_owned();
    let mut before = GENESIS.to_owned();
    let mut n = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("read", path, e))?;
        if read == 0 {
            break;
        }
        n += 1;
        if line.last() != Some(&b'\n') {
            return Err(bad(
                n,
                if line.len() > MAX_LINE {
                    format!("longer than {MAX_LINE} bytes")
                } else {
                    "cut short (no newline)".to_owned()
                },
            ));
        }
        line.pop();
        let entry: AuditEntry = serde_json::from_slice(&line)
            .map_err(|e| bad(n, format!("not an audit entry: {e}")))?;
        if entry.seq != n {
            return Err(bad(
                n,
                format!("sequence number {} where {n} belongs", entry.seq),
            ));
        }
        if entry.prev != head {
            // The sequence numbers are in order (checked above), so no line
            // is missing or added here: the line before was changed (or
            // this line's own `prev`).
            return Err(if n == 1 {
                bad(
                    1,
                    format!(
                        "changed: it carries hash {} where the first line carries {GENESIS}",
                        entry.prev
                    ),
                )
            } else {
                bad(
                    n - 1,
                    format!(
                        "changed: it hashes to {head}, but line {n} carries {} for it",
                        entry.prev
                    ),
                )
            });
        }
        before = core::mem::replace(&mut head, sha256_hex(&line));
    }
    if let Some(anchor) = anchor {
        // Every line but the last is covered by the next one's `prev`:
        // the anchor covers the last, and the count.
        if let Fit::Differs(why) = fit(n, &head, &before, anchor) {
            return Err(Error::Audit {
                path: path.to_owned(),
                message: why,
            });
        }
    }
    Ok(AuditReport {
        entries: n,
        head,
        anchored: anchor.is_some(),
    })
}

/// The last hold or release of each recording in the log, for replaying
/// holds when the index is rebuilt; read line by line, stopping at the
/// first damaged line.
pub(crate) fn holds(path: &Path) -> std::collections::HashMap<String, bool> {
    let mut held = std::collections::HashMap::new();
    let Ok(file) = File::open(path) else {
        return held;
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Ok(entry) = serde_json::from_slice::<AuditEntry>(line.trim_ascii_end()) else {
            break;
        };
        match entry.action.as_str() {
            "hold" => held.insert(entry.recording_id, true),
            "release" => held.insert(entry.recording_id, false),
            _ => None,
        };
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// The anchor kept in memory, as the index keeps it.
    #[derive(Default)]
    struct Kept(Mutex<Option<AuditAnchor>>);

    impl AnchorStore for Kept {
        fn read_anchor(&self) -> Result<Option<AuditAnchor>, Error> {
            Ok(self.0.lock().unwrap().clone())
        }

        fn write_anchor(&self, anchor: &AuditAnchor) -> Result<(), Error> {
            *self.0.lock().unwrap() = Some(anchor.clone());
            Ok(())
        }
    }

    impl Kept {
        fn get(&self) -> AuditAnchor {
            self.0.lock().unwrap().clone().unwrap()
        }
    }

    fn line(action: &str, recording_id: &str) -> AuditLine<'static> {
        AuditLine {
            action: if action == "hold" { "hold" } else { "release" },
            recording_id: Box::leak(recording_id.to_owned().into_boxed_str()),
            actor: "alice",
            address: Some("127.0.0.1:5000".into()),
            detail: None,
            time: "2026-12-01T08:00:00Z".into(),
        }
    }

    fn log_with(dir: &Path, n: usize, kept: &Kept) -> PathBuf {
        let path = dir.join("audit.jsonl");
        let log = AuditLog::open(&path, false).unwrap();
        for i in 0..n {
            log.append(kept, line("hold", &format!("{i:032x}")))
                .unwrap();
        }
        path
    }

    fn append(log: &AuditLog, kept: &Kept) -> Result<(), Error> {
        log.append(kept, line("hold", "y"))
    }

    #[test]
    fn a_chain_verifies_and_continues_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept::default();
        let path = log_with(dir.path(), 3, &kept);
        let first = verify(&path, Some(&kept.get())).unwrap();
        assert_eq!((first.entries, first.anchored), (3, true));
        assert_eq!(kept.get(), AuditAnchor::new(3, first.head.clone()));
        let log = AuditLog::open(&path, false).unwrap();
        assert_eq!(log.entries(), 3);
        log.append(&kept, line("release", "x")).unwrap();
        let report = verify(&path, Some(&kept.get())).unwrap();
        assert_eq!(report.entries, 4);
        assert_eq!(log.verify(&kept).unwrap(), report);
        let held = holds(&path);
        assert_eq!(held.len(), 4);
        assert!(!held["x"]);
        assert!(held[&format!("{:032x}", 0)]);
        let lines = fs::read_to_string(&path).unwrap();
        let last: AuditEntry = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
        assert_eq!(last.prev, first.head);
    }

    #[test]
    fn changed_removed_and_inserted_lines_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept::default();
        let path = log_with(dir.path(), 4, &kept);
        let anchor = kept.get();
        let verify = |path: &Path| verify(path, Some(&anchor));
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let with_line = |n: usize, from: &str, to: &str| -> String {
            let changed: Vec<String> = lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    if i + 1 == n {
                        l.replacen(from, to, 1)
                    } else {
                        (*l).to_owned()
                    }
                })
                .collect();
            changed.join("\n") + "\n"
        };

        // The changed line is named, not the one after it.
        fs::write(&path, with_line(1, "alice", "mallory")).unwrap();
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("line 1: changed: it hashes to"), "{e}");
        fs::write(&path, with_line(3, "\"hold\"", "\"release\"")).unwrap();
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("line 3: changed"), "{e}");
        // The last line: only the anchor shows it.
        fs::write(&path, with_line(4, "alice", "mallory")).unwrap();
        assert!(super::verify(&path, None).is_ok());
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("line 4 changed: it hashes to"), "{e}");

        let removed = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
        fs::write(&path, removed).unwrap();
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("line 2: sequence number 3"), "{e}");

        // The last lines cut off: only the anchor shows it.
        fs::write(&path, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
        assert_eq!(super::verify(&path, None).unwrap().entries, 2);
        let e = verify(&path).unwrap_err().to_string();
        assert!(
            e.contains(
                "lines 3-4 are missing: the log ends at line 2, the index's anchor says it has 4"
            ),
            "{e}"
        );
        fs::write(&path, "").unwrap();
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("lines 1-4 are missing"), "{e}");

        let garbage = format!("{}\nnot json\n", lines[0]);
        fs::write(&path, garbage).unwrap();
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("line 2: not an audit entry"), "{e}");
    }

    #[test]
    fn a_torn_last_line_is_cut_and_the_chain_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept::default();
        let path = log_with(dir.path(), 2, &kept);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"seq\":3,\"ti").unwrap();
        let e = verify(&path, None).unwrap_err().to_string();
        assert!(e.contains("cut short"), "{e}");
        let log = AuditLog::open(&path, false).unwrap();
        append(&log, &kept).unwrap();
        assert_eq!(verify(&path, Some(&kept.get())).unwrap().entries, 3);
    }

    #[test]
    fn a_log_replaced_cut_or_added_to_under_the_server_takes_no_more_lines() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept::default();
        let path = log_with(dir.path(), 3, &kept);
        let log = AuditLog::open(&path, false).unwrap();
        append(&log, &kept).unwrap();
        // Cut back by one line: refused, and stays refused.
        let text = fs::read_to_string(&path).unwrap();
        let kept_text: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(kept_text.len() as u64)
            .unwrap();
        let e = append(&log, &kept).unwrap_err().to_string();
        assert!(e.contains("the log file was cut"), "{e}");
        assert!(log.broken().is_some());
        assert!(log.verify(&kept).unwrap_err().to_string().contains("cut"));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            kept_text,
            "nothing more written"
        );
        // Replaced by a new file (rename over it, as an editor does).
        fs::create_dir_all(dir.path().join("b")).unwrap();
        let kept = Kept::default();
        let path = dir.path().join("b/audit.jsonl");
        let log = AuditLog::open(&path, false).unwrap();
        append(&log, &kept).unwrap();
        let other = path.with_extension("new");
        fs::write(&other, "").unwrap();
        fs::rename(&other, &path).unwrap();
        let e = append(&log, &kept).unwrap_err().to_string();
        assert!(e.contains("replaced"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
        // Added to by someone else.
        fs::create_dir_all(dir.path().join("c")).unwrap();
        let kept = Kept::default();
        let path = log_with(&dir.path().join("c"), 1, &kept);
        let log = AuditLog::open(&path, false).unwrap();
        append(&log, &kept).unwrap();
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{}\n")
            .unwrap();
        let e = append(&log, &kept).unwrap_err().to_string();
        assert!(e.contains("grew by 3 bytes"), "{e}");
    }

    #[test]
    fn a_whole_last_line_without_its_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept::default();
        let path = log_with(dir.path(), 3, &kept);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.trim_end_matches('\n')).unwrap();
        let log = AuditLog::open(&path, false).unwrap();
        assert_eq!(log.entries(), 3);
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        append(&log, &kept).unwrap();
        assert_eq!(verify(&path, Some(&kept.get())).unwrap().entries, 4);
    }

    #[test]
    fn a_log_changed_while_stopped_is_refused_until_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept::default();
        let path = log_with(dir.path(), 5, &kept);
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // The last two lines cut off while the service was stopped.
        fs::write(&path, lines[..3].join("\n") + "\n").unwrap();
        let log = AuditLog::open(&path, false).unwrap();
        log.check_anchor(&kept).unwrap();
        let why = log.broken().unwrap();
        assert!(why.contains("lines 4-5 are missing"), "{why}");
        let e = append(&log, &kept).unwrap_err().to_string();
        assert!(
            e.contains("lines 4-5 are missing") && e.contains("--audit-accept"),
            "{e}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 3);
        // Still refused after a restart; the last line changed instead.
        let last_changed = text.replace(lines[4], &lines[4].replacen("alice", "mallory", 1));
        fs::write(&path, &last_changed).unwrap();
        let log = AuditLog::open(&path, false).unwrap();
        let e = append(&log, &kept).unwrap_err().to_string();
        assert!(e.contains("line 5 changed"), "{e}");
        // An operator accepts it: a line says so, and the chain goes on.
        let log = AuditLog::open(&path, true).unwrap();
        log.check_anchor(&kept).unwrap();
        assert!(log.broken().is_none());
        append(&log, &kept).unwrap();
        let report = verify(&path, Some(&kept.get())).unwrap();
        assert_eq!(report.entries, 7);
        let text = fs::read_to_string(&path).unwrap();
        let accept: AuditEntry = serde_json::from_str(text.lines().nth(5).unwrap()).unwrap();
        assert_eq!(
            (accept.action.as_str(), accept.actor.as_str()),
            ("accept", "operator")
        );
        assert!(accept.detail.unwrap().contains("line 5 changed"));
    }

    #[test]
    fn a_crash_between_the_line_and_its_anchor_is_not_taken_for_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept::default();
        let path = log_with(dir.path(), 2, &kept);
        let before = kept.get();
        // The line went to the log; the anchor still says it is pending.
        let log = AuditLog::open(&path, false).unwrap();
        append(&log, &kept).unwrap();
        let written = kept.get();
        kept.write_anchor(&AuditAnchor {
            pending: Some(written.head.clone()),
            ..before.clone()
        })
        .unwrap();
        assert_eq!(verify(&path, Some(&kept.get())).unwrap().entries, 3);
        let log = AuditLog::open(&path, false).unwrap();
        log.check_anchor(&kept).unwrap();
        assert!(log.broken().is_none());
        assert_eq!(kept.get(), written);
        // The same line added by someone else (no pending hash) is not.
        kept.write_anchor(&before).unwrap();
        let e = verify(&path, Some(&kept.get())).unwrap_err().to_string();
        assert!(e.contains("line 3 is not written by the service"), "{e}");
        let log = AuditLog::open(&path, false).unwrap();
        log.check_anchor(&kept).unwrap();
        assert!(log.broken().unwrap().contains("line 3 is not written"));
    }

    #[test]
    fn a_log_without_an_anchor_is_anchored_where_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_with(dir.path(), 2, &Kept::default());
        let kept = Kept::default();
        let log = AuditLog::open(&path, false).unwrap();
        log.check_anchor(&kept).unwrap();
        assert_eq!(
            kept.get(),
            AuditAnchor::new(2, verify(&path, None).unwrap().head)
        );
    }
}
