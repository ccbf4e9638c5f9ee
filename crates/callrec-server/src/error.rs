//! The server's errors: each names the address, path or key involved.

use std::io;
use std::path::PathBuf;

/// What can stop the server from starting.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A configuration that cannot be used.
    Config {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// What was wrong, naming the key.
        message: String,
    },
    /// A host name that does not resolve.
    Resolve {
        /// The name as given.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// The control port cannot be bound.
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The recordings directory cannot be created or written.
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Config {
                path: Some(path),
                message,
            } => write!(f, "configuration {}: {message}", path.display()),
            Self::Config {
                path: None,
                message,
            } => write!(f, "configuration: {message}"),
            Self::Resolve { host, source } => write!(f, "cannot resolve {host}: {source}"),
            Self::Bind { addr, source } => write!(f, "cannot bind {addr}: {}", io_reason(source)),
            Self::Dir { path, source } => write!(
                f,
                "recordings directory {} is not writable: {}",
                path.display(),
                io_reason(source)
            ),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Resolve { source, .. } | Self::Bind { source, .. } | Self::Dir { source, .. } => {
                Some(source)
            }
            Self::Config { .. } => None,
        }
    }
}

/// An I/O error in words, without the OS's error number.
fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::AddrInUse => "address in use".to_owned(),
        io::ErrorKind::AddrNotAvailable => "address not available on this host".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}
