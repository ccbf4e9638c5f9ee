//! The four messages, their `application/x-www-form-urlencoded` encoding
//! and validating decoder.

use core::fmt;
use core::num::NonZeroU16;
use std::borrow::Cow;

use crate::error::echo;
use crate::fields::{MAX_NAME_LEN, MAX_NUMBER_LEN, parse_port};
use crate::{Codec, Direction, Host, Mac, MessageError, MessageErrorKind, SessionId};

/// The `cmd` of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Command {
    /// `RecordStartRequest`, phone → server.
    StartRequest,
    /// `RecordStartResponse`, server → phone.
    StartResponse,
    /// `RecordStopRequest`, phone → server.
    StopRequest,
    /// `RecordStopResponse`, server → phone.
    StopResponse,
}

impl Command {
    const ALL: [Self; 4] = [
        Self::StartRequest,
        Self::StartResponse,
        Self::StopRequest,
        Self::StopResponse,
    ];

    /// The wire form (`RecordStartRequest`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StartRequest => "RecordStartRequest",
            Self::StartResponse => "RecordStartResponse",
            Self::StopRequest => "RecordStopRequest",
            Self::StopResponse => "RecordStopResponse",
        }
    }

    /// The command with this exact wire name.
    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The keys a message of this command may carry, in encoding order.
    const fn keys(self) -> &'static [&'static str] {
        match self {
            Self::StartRequest => &[
                "cmd",
                "id",
                "device",
                "remote_number",
                "remote_name",
                "local_number",
                "local_name",
                "dir",
                "codec",
            ],
            Self::StartResponse => &["cmd", "id", "result", "reason", "server", "port"],
            Self::StopRequest => &[
                "cmd",
                "id",
                "remote_number",
                "remote_name",
                "local_number",
                "local_name",
                "reason",
            ],
            Self::StopResponse => &["cmd", "id", "result", "reason"],
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `cmd=RecordStartRequest`: the phone asks to record a call.
///
/// Numbers and names may be empty (and may be absent on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordStartRequest {
    /// Session id, random and fixed for the recording.
    pub id: SessionId,
    /// The phone's MAC address.
    pub device: Mac,
    /// The remote party's number (at most 128 bytes).
    pub remote_number: String,
    /// The remote party's display name (at most 256 bytes).
    pub remote_name: String,
    /// The phone's own number (at most 128 bytes).
    pub local_number: String,
    /// The phone's own display name (at most 256 bytes).
    pub local_name: String,
    /// Call direction.
    pub dir: Direction,
    /// Codec of the RTP stream the phone will send.
    pub codec: Codec,
}

impl RecordStartRequest {
    /// A request with empty numbers and names; set them on the result.
    pub fn new(id: SessionId, device: Mac, dir: Direction, codec: Codec) -> Self {
        Self {
            id,
            device,
            remote_number: String::new(),
            remote_name: String::new(),
            local_number: String::new(),
            local_name: String::new(),
            dir,
            codec,
        }
    }
}

/// `cmd=RecordStartResponse`: the server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordStartResponse {
    /// The id of the request answered.
    pub id: SessionId,
    /// Success with the RTP destination, or failure with a reason.
    pub result: StartResult,
}

impl RecordStartResponse {
    /// `result=success&server=…&port=…`.
    pub fn success(id: SessionId, server: Host, port: NonZeroU16) -> Self {
        Self {
            id,
            result: StartResult::Success { server, port },
        }
    }

    /// `result=failed&reason=…`.
    pub fn failed(id: SessionId, reason: impl Into<String>) -> Self {
        Self {
            id,
            result: StartResult::Failed {
                reason: reason.into(),
            },
        }
    }
}

/// The outcome in a [`RecordStartResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartResult {
    /// Send RTP to `server:port` over UDP.
    Success {
        /// Address of the RTP receiver.
        server: Host,
        /// UDP port allocated for this session.
        port: NonZeroU16,
    },
    /// Not recording; the phone shows a failure prompt.
    Failed {
        /// Why (at most 256 bytes; may be empty).
        reason: String,
    },
}

/// `cmd=RecordStopRequest`: the phone ends the recording.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordStopRequest {
    /// Session id.
    pub id: SessionId,
    /// The remote party's number.
    pub remote_number: String,
    /// The remote party's display name.
    pub remote_name: String,
    /// The phone's own number.
    pub local_number: String,
    /// The phone's own display name.
    pub local_name: String,
    /// Why the recording stopped (user, call ended, …; at most 256 bytes).
    pub reason: String,
}

impl RecordStopRequest {
    /// The stop request for `start`, repeating its numbers and names.
    pub fn for_start(start: &RecordStartRequest, reason: impl Into<String>) -> Self {
        Self {
            id: start.id.clone(),
            remote_number: start.remote_number.clone(),
            remote_name: start.remote_name.clone(),
            local_number: start.local_number.clone(),
            local_name: start.local_name.clone(),
            reason: reason.into(),
        }
    }
}

/// `cmd=RecordStopResponse`: the server confirms the stop.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordStopResponse {
    /// Session id.
    pub id: SessionId,
    /// `success` (the seed's only value) or `failed` with a reason.
    pub result: StopResult,
}

impl RecordStopResponse {
    /// `result=success`.
    pub fn success(id: SessionId) -> Self {
        Self {
            id,
            result: StopResult::Success,
        }
    }

    /// `result=failed&reason=…` (this server's answer to a stop for an
    /// unknown id).
    pub fn failed(id: SessionId, reason: impl Into<String>) -> Self {
        Self {
            id,
            result: StopResult::Failed {
                reason: reason.into(),
            },
        }
    }
}

/// The outcome in a [`RecordStopResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopResult {
    /// Stopped.
    Success,
    /// Not stopped (for example, unknown id).
    Failed {
        /// Why.
        reason: String,
    },
}

/// Any control message.
///
/// ```
/// use callrec_control::{Codec, Direction, Message, RecordStartRequest, SessionId};
///
/// let mut req = RecordStartRequest::new(
///     SessionId::new("a1b2")?,
///     "00:15:65:AA:BB:CC".parse()?,
///     Direction::Out,
///     Codec::Pcma,
/// );
/// req.remote_name = "Zoë & Co".into();
/// let wire = Message::from(req.clone()).to_vec()?;
/// let text = std::str::from_utf8(&wire)?; // always ASCII
/// assert!(text.starts_with("cmd=RecordStartRequest&id=a1b2&device=001565aabbcc&"));
/// assert!(text.contains("remote_name=Zo%C3%AB+%26+Co"));
/// assert_eq!(Message::parse(&wire)?, Message::StartRequest(req));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// `RecordStartRequest`.
    StartRequest(RecordStartRequest),
    /// `RecordStartResponse`.
    StartResponse(RecordStartResponse),
    /// `RecordStopRequest`.
    StopRequest(RecordStopRequest),
    /// `RecordStopResponse`.
    StopResponse(RecordStopResponse),
}

macro_rules! from_message {
    ($($variant:ident($ty:ident)),*) => {$(
        impl From<$ty> for Message {
            fn from(m: $ty) -> Self {
                Self::$variant(m)
            }
        }
    )*};
}
from_message!(
    StartRequest(RecordStartRequest),
    StartResponse(RecordStartResponse),
    StopRequest(RecordStopRequest),
    StopResponse(RecordStopResponse)
);

impl Message {
    /// The message's `cmd`.
    pub fn command(&self) -> Command {
        match self {
            Self::StartRequest(_) => Command::StartRequest,
            Self::StartResponse(_) => Command::StartResponse,
            Self::StopRequest(_) => Command::StopRequest,
            Self::StopResponse(_) => Command::StopResponse,
        }
    }

    /// The message's session id.
    pub fn id(&self) -> &SessionId {
        match self {
            Self::StartRequest(m) => &m.id,
            Self::StartResponse(m) => &m.id,
            Self::StopRequest(m) => &m.id,
            Self::StopResponse(m) => &m.id,
        }
    }

    /// Parses one message (without its terminator).
    ///
    /// Keys may come in any order; unknown keys are ignored; percent-escapes
    /// and `+` are decoded (invalid UTF-8 in an escape becomes U+FFFD).
    ///
    /// # Errors
    /// A [`MessageError`] naming the missing, repeated or bad key, with the
    /// message's `cmd` and `id` attached when they could be read.
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        let raw = RawFields::scan(bytes);
        let cmd = raw
            .unique("cmd")?
            .ok_or(MessageError::new(MessageErrorKind::MissingKey("cmd")))?;
        let command = Command::from_wire(&cmd)
            .ok_or_else(|| MessageError::new(MessageErrorKind::UnknownCommand(echo(&cmd))))?;
        decode_fields(command, &raw).map_err(|e| {
            let raw_id = raw.unique("id").ok().flatten();
            e.with_context(Some(command), raw_id.as_deref())
        })
    }

    /// The `cmd` and `id` of a message that could not be decoded as a whole
    /// (an over-long one, say), read from its first bytes: the pairs up to
    /// the last `&` of `head`.
    pub(crate) fn context_of_head(head: &[u8], error: MessageError) -> MessageError {
        let Some(cut) = memchr::memrchr(b'&', head) else {
            return error;
        };
        let raw = RawFields::scan(&head[..cut]);
        let command = raw
            .unique("cmd")
            .ok()
            .flatten()
            .and_then(|cmd| Command::from_wire(&cmd));
        let raw_id = raw.unique("id").ok().flatten();
        error.with_context(command, raw_id.as_deref())
    }

    /// Writes the message (without terminator) into a new `Vec`, keys in
    /// the order of the protocol description; space becomes `+`, and `&`,
    /// `=`, `%`, `+` and non-ASCII are percent-escaped, so the bytes are
    /// ASCII. [`write_frame`](crate::write_frame) adds the terminator.
    ///
    /// # Errors
    /// [`MessageErrorKind::ValueTooLong`] for a number, name or reason over
    /// its limit (the peer would reject it).
    pub fn to_vec(&self) -> Result<Vec<u8>, MessageError> {
        let mut pairs: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(9);
        pairs.push(("cmd", self.command().as_str().into()));
        pairs.push(("id", self.id().as_str().into()));
        match self {
            Self::StartRequest(m) => {
                pairs.push(("device", m.device.to_string().into()));
                push_people(
                    &mut pairs,
                    &m.remote_number,
                    &m.remote_name,
                    &m.local_number,
                    &m.local_name,
                )?;
                pairs.push(("dir", m.dir.as_str().into()));
                pairs.push(("codec", m.codec.as_str().into()));
            }
            Self::StartResponse(m) => match &m.result {
                StartResult::Success { server, port } => {
                    pairs.push(("result", "success".into()));
                    pairs.push(("server", server.to_string().into()));
                    pairs.push(("port", port.to_string().into()));
                }
                StartResult::Failed { reason } => {
                    pairs.push(("result", "failed".into()));
                    pairs.push(("reason", checked("reason", reason, MAX_NAME_LEN)?.into()));
                }
            },
            Self::StopRequest(m) => {
                push_people(
                    &mut pairs,
                    &m.remote_number,
                    &m.remote_name,
                    &m.local_number,
                    &m.local_name,
                )?;
                pairs.push(("reason", checked("reason", &m.reason, MAX_NAME_LEN)?.into()));
            }
            Self::StopResponse(m) => match &m.result {
                StopResult::Success => pairs.push(("result", "success".into())),
                StopResult::Failed { reason } => {
                    pairs.push(("result", "failed".into()));
                    pairs.push(("reason", checked("reason", reason, MAX_NAME_LEN)?.into()));
                }
            },
        }
        serde_urlencoded::to_string(&pairs)
            .map(String::into_bytes)
            .map_err(|e| MessageError::new(MessageErrorKind::Form(e.to_string())))
    }
}

fn push_people<'a>(
    pairs: &mut Vec<(&'static str, Cow<'a, str>)>,
    remote_number: &'a str,
    remote_name: &'a str,
    local_number: &'a str,
    local_name: &'a str,
) -> Result<(), MessageError> {
    pairs.push((
        "remote_number",
        checked("remote_number", remote_number, MAX_NUMBER_LEN)?.into(),
    ));
    pairs.push((
        "remote_name",
        checked("remote_name", remote_name, MAX_NAME_LEN)?.into(),
    ));
    pairs.push((
        "local_number",
        checked("local_number", local_number, MAX_NUMBER_LEN)?.into(),
    ));
    pairs.push((
        "local_name",
        checked("local_name", local_name, MAX_NAME_LEN)?.into(),
    ));
    Ok(())
}

fn checked<'a>(key: &'static str, value: &'a str, max: usize) -> Result<&'a str, MessageError> {
    if value.len() > max {
        return Err(MessageError::new(MessageErrorKind::ValueTooLong {
            key,
            len: value.len(),
            max,
        }));
    }
    Ok(value)
}

/// The raw (still escaped) name and value of each pair of an
/// `application/x-www-form-urlencoded` body, as the WHATWG URL standard
/// splits them (and `form_urlencoded`, under `serde_urlencoded`): on `&`,
/// empty pieces skipped, name and value at the first `=` (a piece without
/// one has an empty value). [`form_text`] decodes a name or value.
///
/// Hand-written because the protocol's messages are small and mostly
/// unescaped: nothing is collected, only the keys a command knows have
/// their values decoded, values are borrowed unless escaped, and parsing
/// runs faster than `serde_urlencoded` decoding into a derived struct
/// (docs/PERFORMANCE.md). A proptest checks it against `serde_urlencoded`.
struct FormPairs<'a> {
    rest: &'a [u8],
}

impl<'a> FormPairs<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for FormPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        // One pass per piece: its end at `&`, its split at the first `=`.
        // Pieces are a few dozen bytes, where a byte loop beats memchr's
        // set-up.
        while !self.rest.is_empty() {
            let mut equals = None;
            let mut end = self.rest.len();
            for (i, &b) in self.rest.iter().enumerate() {
                if b == b'&' {
                    end = i;
                    break;
                }
                if b == b'=' && equals.is_none() {
                    equals = Some(i);
                }
            }
            let piece = &self.rest[..end];
            self.rest = self.rest.get(end + 1..).unwrap_or_default();
            if !piece.is_empty() {
                return Some(match equals {
                    Some(at) => (&piece[..at], &piece[at + 1..]),
                    None => (piece, &piece[piece.len()..]),
                });
            }
        }
        None
    }
}

/// Whether `raw` holds a `%` or `+` to decode. Names and most values are a
/// few bytes long, where a plain loop beats a vector search's set-up.
#[inline]
fn escaped(raw: &[u8]) -> bool {
    if raw.len() < 32 {
        raw.iter().any(|&b| b == b'%' || b == b'+')
    } else {
        memchr::memchr2(b'%', b'+', raw).is_some()
    }
}

/// One name or value of a form, decoded.
fn form_text(raw: &[u8]) -> Cow<'_, str> {
    if !escaped(raw) {
        return match core::str::from_utf8(raw) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(raw),
        };
    }
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let high = raw.get(i + 1).copied().and_then(hex);
                let low = raw.get(i + 2).copied().and_then(hex);
                if let (Some(high), Some(low)) = (high, low) {
                    out.push(high << 4 | low);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod form_tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(bytes: &[u8]) -> Vec<(String, String)> {
        FormPairs::new(bytes)
            .map(|(k, v)| (form_text(k).into_owned(), form_text(v).into_owned()))
            .collect()
    }

    #[test]
    fn escapes_plus_and_edge_cases() {
        assert_eq!(
            ours(b"a=1&&b&c=x%3Dy+z&d=%zz%4&e=%C3%A9&f=%FF&=v&g=1=2"),
            [
                ("a", "1"),
                ("b", ""),
                ("c", "x=y z"),
                ("d", "%zz%4"),
                ("e", "\u{e9}"),
                ("f", "\u{fffd}"),
                ("", "v"),
                ("g", "1=2"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(ours(b"").is_empty());
        assert!(matches!(form_text(b"plain"), Cow::Borrowed("plain")));
        let raw = RawFields::scan(b"c%6Dd=x&id=1&id=2&port=9&port=9");
        assert_eq!(raw.unique("cmd").unwrap().as_deref(), Some("x"));
        assert!(raw.unique("id").is_err() && raw.unique("port").is_err());
        assert_eq!(raw.unique("device").unwrap(), None);
    }

    proptest! {
        /// The same pairs as serde_urlencoded (form_urlencoded) on any input.
        #[test]
        fn matches_serde_urlencoded(bytes in proptest::collection::vec(
            prop_oneof![
                Just(b'&'), Just(b'='), Just(b'%'), Just(b'+'), Just(b'a'), Just(b'F'),
                Just(b'3'), any::<u8>(),
            ],
            0..64,
        )) {
            let reference: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap();
            prop_assert_eq!(ours(&bytes), reference);
        }
    }
}

/// Every key a command knows, in one table so a message is scanned once.
const ALL_KEYS: [&str; 13] = [
    "cmd",
    "id",
    "device",
    "remote_number",
    "remote_name",
    "local_number",
    "local_name",
    "dir",
    "codec",
    "result",
    "reason",
    "server",
    "port",
];

/// The raw (escaped) values of the known keys of a form, from one pass;
/// other keys are skipped without decoding their values.
struct RawFields<'p> {
    values: [Option<&'p [u8]>; ALL_KEYS.len()],
    /// Bit `i` set when `ALL_KEYS[i]` came more than once.
    repeated: u16,
}

impl<'p> RawFields<'p> {
    fn scan(bytes: &'p [u8]) -> Self {
        let mut raw = Self {
            values: [None; ALL_KEYS.len()],
            repeated: 0,
        };
        for (name, value) in FormPairs::new(bytes) {
            let found = if escaped(name) {
                let name = form_text(name);
                ALL_KEYS.iter().position(|key| *key == name)
            } else {
                ALL_KEYS.iter().position(|key| key.as_bytes() == name)
            };
            if let Some(i) = found {
                if raw.values[i].is_some() {
                    raw.repeated |= 1 << i;
                } else {
                    raw.values[i] = Some(value);
                }
            }
        }
        raw
    }

    /// The raw value of `key`.
    ///
    /// # Errors
    /// [`MessageErrorKind::DuplicateKey`] when it came more than once.
    fn raw(&self, key: &'static str) -> Result<Option<&'p [u8]>, MessageError> {
        let i = ALL_KEYS.iter().position(|k| *k == key).unwrap_or(0);
        if self.repeated & 1 << i != 0 {
            return Err(MessageError::new(MessageErrorKind::DuplicateKey(key)));
        }
        Ok(self.values[i])
    }

    /// The decoded value of `key`, if present once.
    fn unique(&self, key: &'static str) -> Result<Option<Cow<'p, str>>, MessageError> {
        Ok(self.raw(key)?.map(form_text))
    }
}

/// The values of a command's known keys, by key index; unknown keys ignored.
struct Fields<'p> {
    keys: &'static [&'static str],
    values: [Option<Cow<'p, str>>; 9],
}

impl<'p> Fields<'p> {
    fn collect(command: Command, raw: &RawFields<'p>) -> Result<Self, MessageError> {
        let keys = command.keys();
        let mut values: [Option<Cow<'p, str>>; 9] = Default::default();
        for (value, key) in values.iter_mut().zip(keys) {
            *value = raw.unique(key)?;
        }
        Ok(Self { keys, values })
    }

    fn index(&self, key: &'static str) -> usize {
        // Keys are only looked up from the command's own list.
        self.keys.iter().position(|k| *k == key).unwrap_or(0)
    }

    fn optional(&self, key: &'static str) -> Option<&str> {
        self.values[self.index(key)].as_deref()
    }

    fn required(&self, key: &'static str) -> Result<&str, MessageError> {
        self.optional(key)
            .ok_or(MessageError::new(MessageErrorKind::MissingKey(key)))
    }

    /// An optional free-text field, empty when absent; a value that had
    /// escapes decoded is moved out, not copied.
    fn text(&mut self, key: &'static str, max: usize) -> Result<String, MessageError> {
        let i = self.index(key);
        let value = self.values[i].take().unwrap_or_default();
        checked(key, &value, max)?;
        Ok(value.into_owned())
    }

    fn id(&self) -> Result<SessionId, MessageError> {
        let v = self.required("id")?;
        SessionId::new(v)
            .map_err(|_| MessageError::invalid("id", "1..=64 printable ASCII characters", v))
    }
}

fn decode_fields(command: Command, raw: &RawFields<'_>) -> Result<Message, MessageError> {
    let mut f = Fields::collect(command, raw)?;
    Ok(match command {
        Command::StartRequest => {
            let id = f.id()?;
            let device = f.required("device")?;
            let device = device.parse().map_err(|_| {
                MessageError::invalid(
                    "device",
                    "a MAC address (001565aabbcc, 00:15:65:aa:bb:cc or 00-15-65-aa-bb-cc)",
                    device,
                )
            })?;
            let remote_number = f.text("remote_number", MAX_NUMBER_LEN)?;
            let remote_name = f.text("remote_name", MAX_NAME_LEN)?;
            let local_number = f.text("local_number", MAX_NUMBER_LEN)?;
            let local_name = f.text("local_name", MAX_NAME_LEN)?;
            let dir = f.required("dir")?;
            let dir = dir
                .parse()
                .map_err(|_| MessageError::invalid("dir", "\"in\" or \"out\"", dir))?;
            let codec = f.required("codec")?;
            let codec = codec
                .parse()
                .map_err(|_| MessageError::new(MessageErrorKind::UnsupportedCodec(echo(codec))))?;
            Message::StartRequest(RecordStartRequest {
                id,
                device,
                remote_number,
                remote_name,
                local_number,
                local_name,
                dir,
                codec,
            })
        }
        Command::StartResponse => {
            let id = f.id()?;
            let result = match parse_result(f.required("result")?)? {
                true => {
                    let server = f.required("server")?;
                    let server = server.parse().map_err(|_| {
                        MessageError::invalid("server", "an IP address or host name", server)
                    })?;
                    let port = f.required("port")?;
                    let port = parse_port(port)
                        .map_err(|_| MessageError::invalid("port", "1..=65535", port))?;
                    StartResult::Success { server, port }
                }
                false => StartResult::Failed {
                    reason: f.text("reason", MAX_NAME_LEN)?,
                },
            };
            Message::StartResponse(RecordStartResponse { id, result })
        }
        Command::StopRequest => Message::StopRequest(RecordStopRequest {
            id: f.id()?,
            remote_number: f.text("remote_number", MAX_NUMBER_LEN)?,
            remote_name: f.text("remote_name", MAX_NAME_LEN)?,
            local_number: f.text("local_number", MAX_NUMBER_LEN)?,
            local_name: f.text("local_name", MAX_NAME_LEN)?,
            reason: f.text("reason", MAX_NAME_LEN)?,
        }),
        Command::StopResponse => {
            let id = f.id()?;
            let result = match parse_result(f.required("result")?)? {
                true => StopResult::Success,
                false => StopResult::Failed {
                    reason: f.text("reason", MAX_NAME_LEN)?,
                },
            };
            Message::StopResponse(RecordStopResponse { id, result })
        }
    })
}

/// `success` → true, `failed` → false (case-insensitively).
fn parse_result(v: &str) -> Result<bool, MessageError> {
    if v.eq_ignore_ascii_case("success") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("failed") {
        Ok(false)
    } else {
        Err(MessageError::invalid(
            "result",
            "\"success\" or \"failed\"",
            v,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START_REQUEST: &[u8] = b"cmd=RecordStartRequest&id=5f3c9a&device=001565aabbcc&remote_number=1010&remote_name=Bob&local_number=1009&local_name=Alice&dir=in&codec=PCMA";
    const START_OK: &[u8] =
        b"cmd=RecordStartResponse&id=5f3c9a&result=success&server=172.16.1.8&port=40000";
    const START_FAILED: &[u8] = b"cmd=RecordStartResponse&id=5f3c9a&result=failed&reason=disk+full";
    const STOP_REQUEST: &[u8] = b"cmd=RecordStopRequest&id=5f3c9a&remote_number=1010&remote_name=Bob&local_number=1009&local_name=Alice&reason=user";
    const STOP_OK: &[u8] = b"cmd=RecordStopResponse&id=5f3c9a&result=success";

    fn id() -> SessionId {
        SessionId::new("5f3c9a").unwrap()
    }

    fn start_request() -> RecordStartRequest {
        let mut r = RecordStartRequest::new(
            id(),
            "00:15:65:aa:bb:cc".parse().unwrap(),
            Direction::In,
            Codec::Pcma,
        );
        r.remote_number = "1010".into();
        r.remote_name = "Bob".into();
        r.local_number = "1009".into();
        r.local_name = "Alice".into();
        r
    }

    fn err(bytes: &[u8]) -> MessageError {
        Message::parse(bytes).unwrap_err()
    }

    #[test]
    fn seed_messages_byte_for_byte() {
        let start = Message::StartRequest(start_request());
        let ok = Message::StartResponse(RecordStartResponse::success(
            id(),
            "172.16.1.8".parse().unwrap(),
            NonZeroU16::new(40000).unwrap(),
        ));
        let failed = Message::StartResponse(RecordStartResponse::failed(id(), "disk full"));
        let stop = Message::StopRequest(RecordStopRequest::for_start(&start_request(), "user"));
        let stop_ok = Message::StopResponse(RecordStopResponse::success(id()));
        for (bytes, message) in [
            (START_REQUEST, start),
            (START_OK, ok),
            (START_FAILED, failed),
            (STOP_REQUEST, stop),
            (STOP_OK, stop_ok),
        ] {
            assert_eq!(Message::parse(bytes).as_ref(), Ok(&message));
            assert_eq!(message.to_vec().unwrap(), bytes);
        }
    }

    #[test]
    fn seed_response_with_every_key() {
        // The seed lists reason, server and port together; a success with a
        // reason still decodes.
        let m = Message::parse(
            b"cmd=RecordStartResponse&id=5f3c9a&result=success&reason=&server=srv.local&port=5004",
        )
        .unwrap();
        let Message::StartResponse(r) = m else {
            panic!()
        };
        assert_eq!(
            r.result,
            StartResult::Success {
                server: Host::Name("srv.local".into()),
                port: NonZeroU16::new(5004).unwrap()
            }
        );
    }

    #[test]
    fn any_order_unknown_keys_and_liberal_values() {
        let m = Message::parse(
            b"codec=pcma&dir=IN&firmware=1.2.3&device=00-15-65-AA-BB-CC&id=5f3c9a&cmd=RecordStartRequest&remote_number=1010&remote_name=Bob&local_number=1009&local_name=Alice",
        )
        .unwrap();
        assert_eq!(m, Message::StartRequest(start_request()));
        // Numbers and names may be absent.
        let m =
            Message::parse(b"cmd=RecordStartRequest&id=x&device=001565aabbcc&dir=out&codec=G722")
                .unwrap();
        let Message::StartRequest(r) = m else {
            panic!()
        };
        assert_eq!((r.remote_number.as_str(), r.local_name.as_str()), ("", ""));
    }

    #[test]
    fn special_characters_survive() {
        let mut r = start_request();
        r.remote_name = "Zoë & Jo = 100% + more 日本".into();
        r.local_name = "a+b&c=d%e".into();
        let wire = String::from_utf8(Message::StartRequest(r.clone()).to_vec().unwrap()).unwrap();
        assert!(wire.is_ascii() && !wire.contains(' '));
        assert_eq!(wire.matches('&').count(), 8, "{wire}");
        assert_eq!(
            Message::parse(wire.as_bytes()),
            Ok(Message::StartRequest(r))
        );
    }

    #[test]
    fn errors_name_the_key() {
        let e = err(b"cmd=RecordStartRequest&id=1&dir=in&codec=PCMA");
        assert_eq!(e.to_string(), "missing key \"device\"");
        assert_eq!(e.command(), Some(Command::StartRequest));
        assert_eq!(e.id(), Some(&SessionId::new("1").unwrap()));

        let e = err(b"cmd=RecordStartRequest&id=1&device=001565aabbcc&dir=sideways&codec=PCMA");
        assert_eq!(
            e.to_string(),
            "dir must be \"in\" or \"out\", got \"sideways\""
        );

        let e = err(b"cmd=RecordStartRequest&id=1&device=001565aabbcc&dir=in&codec=G729");
        assert_eq!(*e.kind(), MessageErrorKind::UnsupportedCodec("G729".into()));
        assert_eq!(
            e.to_string(),
            "unsupported codec \"G729\" (PCMA, PCMU or G722)"
        );

        let e = err(b"cmd=RecordStartRequest&id=1&id=2&device=001565aabbcc&dir=in&codec=PCMA");
        assert_eq!(e.to_string(), "key \"id\" appears more than once");
        assert_eq!(e.id(), None, "an ambiguous id is no context");

        let e = err(b"cmd=RecordStartRequest&id=1&device=0015&dir=in&codec=PCMA");
        assert_eq!(
            e.to_string(),
            "device must be a MAC address (001565aabbcc, 00:15:65:aa:bb:cc or 00-15-65-aa-bb-cc), got \"0015\""
        );

        let e = err(b"cmd=RecordStartResponse&id=1&result=success&server=10.0.0.1&port=0");
        assert_eq!(e.to_string(), "port must be 1..=65535, got \"0\"");
        let e = err(b"cmd=RecordStartResponse&id=1&result=success&server=10.0.0.1");
        assert_eq!(e.to_string(), "missing key \"port\"");
        let e = err(b"cmd=RecordStartResponse&id=1&result=success&server=a%20b&port=1");
        assert_eq!(
            e.to_string(),
            "server must be an IP address or host name, got \"a b\""
        );
        let e = err(b"cmd=RecordStopResponse&id=1&result=ok");
        assert_eq!(
            e.to_string(),
            "result must be \"success\" or \"failed\", got \"ok\""
        );

        let e = err(b"cmd=RecordStopRequest&id=");
        assert_eq!(
            e.to_string(),
            "id must be 1..=64 printable ASCII characters, got \"\""
        );
        let e = err(b"id=1&result=success");
        assert_eq!(e.to_string(), "missing key \"cmd\"");
        let e = err(b"cmd=RecordPauseRequest&id=1");
        assert_eq!(e.to_string(), "unknown cmd \"RecordPauseRequest\"");
        assert_eq!(e.command(), None);
        let e = err(b"cmd=RecordStopResponse&cmd=RecordStopResponse&id=1&result=success");
        assert_eq!(e.to_string(), "key \"cmd\" appears more than once");
        let e = err(b"");
        assert_eq!(e.to_string(), "missing key \"cmd\"");
    }

    #[test]
    fn field_limits() {
        let long = "9".repeat(129);
        let bytes = format!("cmd=RecordStopRequest&id=1&remote_number={long}");
        assert_eq!(
            err(bytes.as_bytes()).to_string(),
            "remote_number is 129 bytes, at most 128 allowed"
        );
        let mut r = start_request();
        r.remote_name = "é".repeat(129);
        assert_eq!(
            Message::StartRequest(r).to_vec().unwrap_err().to_string(),
            "remote_name is 258 bytes, at most 256 allowed"
        );
        let bytes = format!("cmd=RecordStopRequest&id={}", "x".repeat(65));
        let e = err(bytes.as_bytes());
        assert!(
            e.to_string()
                .starts_with("id must be 1..=64 printable ASCII characters, got \"xxx")
        );
        assert!(e.to_string().ends_with("…\""), "echo is cut: {e}");
    }

    #[test]
    fn largest_message_fits_the_default_frame() {
        let mut r = start_request();
        r.id = SessionId::new("~".repeat(64)).unwrap();
        r.remote_number = "é".repeat(64);
        r.local_number = "é".repeat(64);
        r.remote_name = "é".repeat(128);
        r.local_name = "é".repeat(128);
        let wire = Message::StartRequest(r).to_vec().unwrap();
        assert!(
            wire.len() < crate::DEFAULT_MAX_MESSAGE_LEN,
            "{}",
            wire.len()
        );
    }
}
