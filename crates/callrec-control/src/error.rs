//! Errors: [`MessageError`] for one bad message (recoverable: the connection
//! goes on), [`CodecError`] for the transport (fatal).

use core::fmt;
use std::io;

use crate::{Command, SessionId};

/// Longest value echoed back in an error message.
const ECHO_MAX: usize = 64;

/// Longest invalid id kept for an answer.
const MAX_RAW_ID_LEN: usize = 256;

/// What was wrong with one message.
///
/// Carries the `cmd` and `id` of the message when they could be read, so a
/// server can still answer a malformed start request with `result=failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError {
    kind: MessageErrorKind,
    command: Option<Command>,
    id: Option<SessionId>,
    raw_id: Option<String>,
}

/// The kinds of [`MessageError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageErrorKind {
    /// The message is longer than the framing limit; it was discarded up to
    /// the next terminator.
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// Not `application/x-www-form-urlencoded` as `serde_urlencoded` reads it.
    Form(String),
    /// A required key is absent.
    MissingKey(&'static str),
    /// A known key appears more than once.
    DuplicateKey(&'static str),
    /// `cmd` names no known message.
    UnknownCommand(String),
    /// A value breaks its field's rule.
    InvalidValue {
        /// The key.
        key: &'static str,
        /// What the value must be.
        expected: &'static str,
        /// The value found (truncated to 64 characters).
        value: String,
    },
    /// `codec` is well formed but not one the protocol carries (PCMA, PCMU,
    /// G722); a server answers `failed` with this as the reason.
    UnsupportedCodec(String),
    /// A value is longer than its field allows.
    ValueTooLong {
        /// The key.
        key: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
}

impl MessageError {
    pub(crate) fn new(kind: MessageErrorKind) -> Self {
        Self {
            kind,
            command: None,
            id: None,
            raw_id: None,
        }
    }

    /// Attaches the message's `cmd` and its `id` as sent (valid or not).
    pub(crate) fn with_context(mut self, command: Option<Command>, raw_id: Option<&str>) -> Self {
        self.command = command;
        self.id = raw_id.and_then(|id| SessionId::new(id).ok());
        self.raw_id = raw_id.map(|id| {
            let mut id = id.to_owned();
            crate::fields::truncate_to_char_boundary(&mut id, MAX_RAW_ID_LEN);
            id
        });
        self
    }

    pub(crate) fn invalid(key: &'static str, expected: &'static str, value: &str) -> Self {
        Self::new(MessageErrorKind::InvalidValue {
            key,
            expected,
            value: echo(value),
        })
    }

    /// What was wrong.
    pub fn kind(&self) -> &MessageErrorKind {
        &self.kind
    }

    /// The message's `cmd`, if it could be read.
    pub fn command(&self) -> Option<Command> {
        self.command
    }

    /// The message's `id`, if it could be read and is a valid id.
    pub fn id(&self) -> Option<&SessionId> {
        self.id.as_ref()
    }

    /// The message's `id` as sent, even when it is not a valid id (empty,
    /// too long, bad characters), cut to 256 bytes: what a server echoes
    /// when it answers a malformed request.
    pub fn raw_id(&self) -> Option<&str> {
        self.raw_id.as_deref()
    }
}

/// A value cut to [`ECHO_MAX`] characters for error messages.
pub(crate) fn echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_MAX) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl fmt::Display for MessageErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { max } => {
                write!(f, "message longer than {max} bytes; discarded")
            }
            Self::Form(e) => write!(f, "not a form-urlencoded message: {e}"),
            Self::MissingKey(k) => write!(f, "missing key {k:?}"),
            Self::DuplicateKey(k) => write!(f, "key {k:?} appears more than once"),
            Self::UnknownCommand(c) => write!(f, "unknown cmd {c:?}"),
            Self::InvalidValue {
                key,
                expected,
                value,
            } => write!(f, "{key} must be {expected}, got {value:?}"),
            Self::UnsupportedCodec(c) => {
                write!(f, "unsupported codec {c:?} (PCMA, PCMU or G722)")
            }
            Self::ValueTooLong { key, len, max } => {
                write!(f, "{key} is {len} bytes, at most {max} allowed")
            }
        }
    }
}

impl core::error::Error for MessageError {}

/// A transport failure of [`ControlCodec`](crate::ControlCodec): the
/// connection is unusable. Bad messages are not transport failures; the
/// codec yields them as `Err` items and reads on.
#[derive(Debug)]
#[non_exhaustive]
pub enum CodecError {
    /// Reading or writing the socket failed.
    Io(io::Error),
    /// A message to send breaks a field rule (too long a name, say).
    Write(MessageError),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Write(e) => write!(f, "cannot write the message: {e}"),
        }
    }
}

impl core::error::Error for CodecError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Write(e) => Some(e),
        }
    }
}

impl From<io::Error> for CodecError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<MessageError> for CodecError {
    fn from(e: MessageError) -> Self {
        Self::Write(e)
    }
}
