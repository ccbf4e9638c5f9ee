//! The audit log: one JSON line per download, deletion and hold, each
//! carrying the SHA-256 of the line before it, so that changing, removing
//! or inserting a line breaks the chain from there on.
//!
//! Lines are appended with one `write` on a file opened for appending and
//! flushed to disk before the action they record takes effect: a deletion
//! that could not be logged does not happen.

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
    /// SHA-256 of the last line (write it down elsewhere: a log cut back
    /// to an earlier line is only detectable against a known head).
    pub head: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    crate::store::hex(&Sha256::digest(bytes))
}

struct State {
    file: File,
    seq: u64,
    head: String,
    /// The file's length after the last append.
    len: u64,
    /// Why the log no longer takes lines (the file was replaced or cut
    /// while the server ran), until an operator restarts it.
    broken: Option<String>,
}

/// The open audit log.
pub(crate) struct AuditLog {
    path: PathBuf,
    state: Mutex<State>,
}

impl AuditLog {
    /// Opens the log at `path` (created when missing), continuing its chain.
    /// A last line cut short by a crash (no newline: its action never took
    /// effect) is removed.
    pub(crate) fn open(path: &Path) -> Result<Self, Error> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        let (seq, head) = last_line(&mut file, path)?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("read", path, e))?
            .len();
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new(State {
                file,
                seq,
                head,
                len,
                broken: None,
            }),
        })
    }

    /// Why the log takes no more lines, if it does not: the file at its
    /// path was replaced, removed or cut while the server ran (looked at
    /// now, and on every append).
    pub(crate) fn broken(&self) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.notice_change(&mut state);
        state.broken.clone()
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

    /// Appends a line and flushes it to disk.
    ///
    /// # Errors
    /// The write or flush error: the action must then not happen.
    pub(crate) fn append(
        &self,
        action: &str,
        recording_id: &str,
        actor: &str,
        address: Option<String>,
        detail: Option<String>,
        time: String,
    ) -> Result<(), Error> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.notice_change(&mut state);
        if let Some(why) = &state.broken {
            return Err(Error::Audit {
                path: self.path.clone(),
                message: format!(
                    "{why}: audited actions are refused until an operator restarts the server"
                ),
            });
        }
        let entry = AuditEntry {
            seq: state.seq + 1,
            time,
            action: action.to_owned(),
            recording_id: recording_id.to_owned(),
            actor: actor.to_owned(),
            address,
            detail,
            prev: state.head.clone(),
        };
        let mut line = serde_json::to_vec(&entry).map_err(|e| Error::Audit {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let head = sha256_hex(&line);
        line.push(b'\n');
        state
            .file
            .write_all(&line)
            .and_then(|()| state.file.sync_data())
            .map_err(|e| Error::io("append to", &self.path, e))?;
        state.seq = entry.seq;
        state.head = head;
        state.len += line.len() as u64;
        Ok(())
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
        None
    }
}

/// The sequence number and hash of the last whole line of `file`; a torn
/// last line is cut off.
fn last_line(file: &mut File, path: &Path) -> Result<(u64, String), Error> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("read", path, e))?
        .len();
    if len == 0 {
        return Ok((0, GENESIS.to_owned()));
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
        return Ok((0, GENESIS.to_owned()));
    }
    let body = &tail[..tail.len() - 1];
    let line = &body[body.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)..];
    let entry: AuditEntry = serde_json::from_slice(line).map_err(|e| Error::Audit {
        path: path.to_owned(),
        message: format!("its last line is not an audit entry: {e}"),
    })?;
    Ok((entry.seq, sha256_hex(line)))
}

/// Checks the whole chain of the log at `path`.
///
/// # Errors
/// [`Error::Audit`] naming the first line that is not valid JSON, is out of
/// sequence, or does not carry its predecessor's hash; [`Error::Io`] when
/// the file cannot be read.
pub fn verify(path: &Path) -> Result<AuditReport, Error> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(AuditReport {
                entries: 0,
                head: GENESIS.to_owned(),
            });
        }
        Err(e) => return Err(Error::io("open", path, e)),
    };
    verify_reader(BufReader::new(file), path)
}

/// [`verify`] of the log's bytes from `reader` (`path` names it in errors).
pub(crate) fn verify_reader(mut reader: impl BufRead, path: &Path) -> Result<AuditReport, Error> {
    let bad = |n: u64, message: String| Error::Audit {
        path: path.to_owned(),
        message: format!("line {n}: {message}"),
    };
    let mut head = GENESIS.to_owned();
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
        head = sha256_hex(&line);
    }
    Ok(AuditReport { entries: n, head })
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

    fn log_with(dir: &Path, n: usize) -> PathBuf {
        let path = dir.join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..n {
            log.append(
                "hold",
                &format!("{i:032x}"),
                "alice",
                Some("127.0.0.1:5000".into()),
                None,
                "2026-12-01T08:00:00Z".into(),
            )
            .unwrap();
        }
        path
    }

    #[test]
    fn a_chain_verifies_and_continues_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_with(dir.path(), 3);
        let first = verify(&path).unwrap();
        assert_eq!(first.entries, 3);
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.entries(), 3);
        log.append("release", "x", "bob", None, None, "t".into())
            .unwrap();
        let report = verify(&path).unwrap();
        assert_eq!(report.entries, 4);
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
        let path = log_with(dir.path(), 4);
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();

        // The changed line is named, not the one after it.
        let changed = text.replacen("alice", "mallory", 1);
        assert!(changed.lines().next().unwrap().contains("mallory"));
        fs::write(&path, &changed).unwrap();
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("line 1: changed: it hashes to"), "{e}");
        let third: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 2 {
                    l.replacen("\"hold\"", "\"release\"", 1)
                } else {
                    l.to_owned()
                }
            })
            .collect();
        assert_ne!(third[2], lines[2]);
        fs::write(&path, third.join("\n") + "\n").unwrap();
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("line 3: changed"), "{e}");

        let removed = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
        fs::write(&path, removed).unwrap();
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("line 2: sequence number 3"), "{e}");

        let garbage = format!("{}\nnot json\n", lines[0]);
        fs::write(&path, garbage).unwrap();
        let e = verify(&path).unwrap_err().to_string();
        assert!(e.contains("line 2: not an audit entry"), "{e}");
    }

    #[test]
    fn a_torn_last_line_is_cut_and_the_chain_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_with(dir.path(), 2);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"seq\":3,\"ti").unwrap();
        assert!(verify(&path).unwrap_err().to_string().contains("cut short"));
        let log = AuditLog::open(&path).unwrap();
        log.append("hold", "y", "a", None, None, "t".into())
            .unwrap();
        assert_eq!(verify(&path).unwrap().entries, 3);
    }

    #[test]
    fn a_log_replaced_or_cut_under_the_server_takes_no_more_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_with(dir.path(), 3);
        let log = AuditLog::open(&path).unwrap();
        let append = |log: &AuditLog| log.append("hold", "y", "a", None, None, "t".into());
        append(&log).unwrap();
        // Cut back by one line: refused, and stays refused.
        let text = fs::read_to_string(&path).unwrap();
        let kept: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(kept.len() as u64)
            .unwrap();
        let e = append(&log).unwrap_err().to_string();
        assert!(e.contains("the log file was cut"), "{e}");
        assert!(log.broken().is_some());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            kept,
            "nothing more written"
        );
        // Replaced by a new file (rename over it, as an editor does).
        fs::create_dir_all(dir.path().join("b")).unwrap();
        let path = dir.path().join("b/audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        append(&log).unwrap();
        let other = path.with_extension("new");
        fs::write(&other, "").unwrap();
        fs::rename(&other, &path).unwrap();
        let e = append(&log).unwrap_err().to_string();
        assert!(e.contains("replaced"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn a_whole_last_line_without_its_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_with(dir.path(), 3);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.trim_end_matches('\n')).unwrap();
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(log.entries(), 3);
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        log.append("hold", "y", "a", None, None, "t".into())
            .unwrap();
        assert_eq!(verify(&path).unwrap().entries, 4);
    }
}
