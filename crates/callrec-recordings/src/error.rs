//! What can go wrong, each naming the path, address or recording.

use core::net::SocketAddr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An error of the recordings service.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The index database failed.
    Index {
        /// The database: its file, or its `postgres://` URL without the
        /// password.
        index: String,
        /// What the database said.
        message: String,
    },
    /// The object store failed.
    Store {
        /// The object (`s3://bucket/key`) or the store.
        location: String,
        /// What the store said.
        message: String,
    },
    /// A file or directory could not be read, written or removed.
    Io {
        /// What was being done (`read`, `remove`, …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The audit log could not be written, or is damaged.
    Audit {
        /// The log file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The API tokens file is not valid.
    Tokens {
        /// The file.
        path: PathBuf,
        /// Line number, from 1 (0: the file as a whole).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The HTTP API could not listen.
    Bind {
        /// The address asked for.
        addr: String,
        /// Why not.
        message: String,
    },
    /// The recording server could not start.
    Server(callrec_server::Error),
    /// Settings that do not fit together, or a node's task that failed.
    Settings(String),
    /// No recording has this id.
    UnknownRecording(String),
    /// A phone's recording file cannot be imported.
    Import {
        /// The file (as given).
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A phone's recording file was imported before (the same SHA-256).
    AlreadyImported {
        /// The file (as given).
        path: PathBuf,
        /// The recording it was imported as.
        recording_id: String,
    },
    /// The recording cannot be changed now.
    Busy {
        /// The recording.
        recording_id: String,
        /// Why (`still running`, `on legal hold`).
        reason: &'static str,
    },
}

impl Error {
    pub(crate) fn index(index: &str, e: impl fmt::Display) -> Self {
        Self::Index {
            index: index.to_owned(),
            message: e.to_string(),
        }
    }

    pub(crate) fn store(location: impl fmt::Display, e: impl fmt::Display) -> Self {
        Self::Store {
            location: location.to_string(),
            message: e.to_string(),
        }
    }

    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn bind(addr: &SocketAddr, message: impl fmt::Display) -> Self {
        Self::Bind {
            addr: addr.to_string(),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index { index, message } => write!(f, "recordings index {index}: {message}"),
            Self::Store { location, message } => write!(f, "object store {location}: {message}"),
            Self::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            Self::Audit { path, message } => write!(f, "audit log {}: {message}", path.display()),
            Self::Tokens {
                path,
                line: 0,
                message,
            } => write!(f, "API tokens file {}: {message}", path.display()),
            Self::Tokens {
                path,
                line,
                message,
            } => write!(
                f,
                "API tokens file {} line {line}: {message}",
                path.display()
            ),
            Self::Bind { addr, message } => {
                write!(f, "cannot serve the HTTP API on {addr}: {message}")
            }
            Self::Server(e) => write!(f, "{e}"),
            Self::Settings(message) => f.write_str(message),
            Self::UnknownRecording(id) => write!(f, "no recording {id:?}"),
            Self::Import { path, message } => {
                write!(f, "cannot import {}: {message}", path.display())
            }
            Self::AlreadyImported { path, recording_id } => write!(
                f,
                "{} was imported before, as recording {recording_id} (the same SHA-256)",
                path.display()
            ),
            Self::Busy {
                recording_id,
                reason,
            } => write!(f, "recording {recording_id} is {reason}"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Server(e) => e.source(),
            _ => None,
        }
    }
}

impl From<callrec_server::Error> for Error {
    fn from(e: callrec_server::Error) -> Self {
        Self::Server(e)
    }
}
