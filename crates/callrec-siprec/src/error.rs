//! What was wrong with an offer, naming the value.

use core::fmt;

/// Why a SIPREC body could not be read. Every variant names the value or
/// the line it found, so a 4xx reason phrase or a log line can carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The `Content-Type` is neither `multipart/mixed` (or `related`) nor
    /// `application/sdp`.
    ContentType(String),
    /// A multipart `Content-Type` without a usable `boundary` parameter.
    Boundary(String),
    /// The body holds no part with the boundary's delimiter line.
    NoParts {
        /// The boundary looked for.
        boundary: String,
    },
    /// More parts, media lines, participants or streams than the limit.
    TooMany {
        /// What: `parts`, `media descriptions`, `participants` …
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// A body, line or value longer than the limit.
    TooLong {
        /// What: `SDP line`, `metadata`, `text` …
        what: &'static str,
        /// The limit, in bytes.
        max: usize,
    },
    /// No `application/sdp` part.
    NoSdp,
    /// An SDP line that could not be read: its number (from 1) and why.
    Sdp {
        /// The line number, from 1.
        line: usize,
        /// What was wrong, with the value.
        reason: String,
    },
    /// rs-metadata that is not well-formed XML, or is refused (a DTD):
    /// the byte offset and why.
    Xml {
        /// Byte offset in the metadata.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// rs-metadata that is XML but not a recording's metadata.
    Metadata(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ContentType(found) => write!(
                f,
                "content type {found:?} is neither multipart/mixed nor application/sdp"
            ),
            Self::Boundary(content_type) => {
                write!(f, "content type {content_type:?} has no usable boundary")
            }
            Self::NoParts { boundary } => {
                write!(f, "the body has no part delimited by --{boundary}")
            }
            Self::TooMany { what, max } => write!(f, "more than {max} {what}"),
            Self::TooLong { what, max } => write!(f, "{what} longer than {max} bytes"),
            Self::NoSdp => f.write_str("the body has no application/sdp part"),
            Self::Sdp { line, reason } => write!(f, "SDP line {line}: {reason}"),
            Self::Xml { offset, reason } => write!(f, "rs-metadata at byte {offset}: {reason}"),
            Self::Metadata(reason) => write!(f, "rs-metadata: {reason}"),
        }
    }
}

impl core::error::Error for Error {}
