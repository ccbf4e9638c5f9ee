//! What a recording server reads from a request, and the reply it sends.

use alloc::vec::Vec;
use core::fmt;

use crate::SipMessage;
use crate::class::is_token_byte;

/// The `Record` header of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordValue<'a> {
    /// No `Record` header.
    Absent,
    /// `on` (any case, as Asterisk reads it).
    On,
    /// `off` (any case).
    Off,
    /// Anything else, reported as found, never guessed.
    Unknown(&'a [u8]),
}

/// `CSeq`: sequence number and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CSeq<'a> {
    /// The number (below 2^31).
    pub number: u32,
    /// The method.
    pub method: &'a str,
}

impl<'a> SipMessage<'a> {
    /// The first `Record` header's value.
    #[inline]
    pub fn record(&self) -> RecordValue<'a> {
        match self.header("Record") {
            None => RecordValue::Absent,
            Some(v) if v.eq_ignore_ascii_case(b"on") => RecordValue::On,
            Some(v) if v.eq_ignore_ascii_case(b"off") => RecordValue::Off,
            Some(v) => RecordValue::Unknown(v),
        }
    }

    /// `Call-ID`.
    pub fn call_id(&self) -> Option<&'a [u8]> {
        self.header("Call-ID")
    }

    /// The `tag` parameter of `From`.
    pub fn from_tag(&self) -> Option<&'a [u8]> {
        self.header("From").and_then(tag_param)
    }

    /// The `tag` parameter of `To`.
    pub fn to_tag(&self) -> Option<&'a [u8]> {
        self.header("To").and_then(tag_param)
    }

    /// `CSeq`, if well formed.
    pub fn cseq(&self) -> Option<CSeq<'a>> {
        let v = self.header("CSeq")?;
        let v = core::str::from_utf8(v).ok()?;
        let mut parts = v.split_ascii_whitespace();
        let number: u32 = parts.next()?.parse().ok().filter(|n| *n < 1 << 31)?;
        let method = parts.next().filter(|m| m.bytes().all(is_token_byte))?;
        if parts.next().is_some() {
            return None;
        }
        Some(CSeq { number, method })
    }
}

/// The header parameters of a `From`/`To` value: what follows the
/// name-addr, outside quotes and angle brackets; `None` when a quote or
/// bracket is left open.
fn header_params(value: &[u8]) -> Option<&[u8]> {
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    for (i, &b) in value.iter().enumerate() {
        if quoted {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => quoted = true,
            b'<' => angle = true,
            b'>' => angle = false,
            b';' if !angle => return Some(&value[i + 1..]),
            _ => {}
        }
    }
    (!quoted && !angle).then_some(&[])
}

/// The value of the `tag` parameter.
fn tag_param(value: &[u8]) -> Option<&[u8]> {
    header_params(value)?
        .split(|&b| b == b';')
        .find_map(|param| {
            let eq = param.iter().position(|&b| b == b'=')?;
            let (name, v) = (trim(&param[..eq]), trim(&param[eq + 1..]));
            (name.eq_ignore_ascii_case(b"tag") && !v.is_empty()).then_some(v)
        })
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// Replies a recording server sends to a `Record` INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyStatus {
    /// `200 OK`: done.
    Ok,
    /// `403 Forbidden`: recording is not allowed (Asterisk when the feature
    /// is disabled).
    Forbidden,
    /// `481 Call/Transaction Does Not Exist`: no such call.
    CallDoesNotExist,
    /// `488 Not Acceptable Here`: cannot do it now (FreeSWITCH when
    /// recording is not enabled or there is nothing to stop).
    NotAcceptableHere,
}

impl ReplyStatus {
    /// The status code.
    pub const fn code(self) -> u16 {
        match self {
            Self::Ok => 200,
            Self::Forbidden => 403,
            Self::CallDoesNotExist => 481,
            Self::NotAcceptableHere => 488,
        }
    }

    /// The RFC 3261 reason phrase.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Forbidden => "Forbidden",
            Self::CallDoesNotExist => "Call/Transaction Does Not Exist",
            Self::NotAcceptableHere => "Not Acceptable Here",
        }
    }
}

/// Why a reply could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyError {
    /// The message is a response.
    NotARequest,
    /// A header a reply must copy is missing.
    MissingHeader(&'static str),
    /// The To tag to add is not a token.
    InvalidTag,
    /// `To` leaves a quote or `<` open, so a tag cannot be added safely.
    MalformedTo,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotARequest => f.write_str("only a request can be replied to"),
            Self::MissingHeader(h) => write!(f, "the request has no {h} header"),
            Self::InvalidTag => f.write_str("the To tag must be a token"),
            Self::MalformedTo => f.write_str("the request's To header leaves a quote or '<' open"),
        }
    }
}

impl core::error::Error for ReplyError {}

/// Builds the reply to `request` (RFC 3261 §8.2.6.2): the status line, every
/// `Via` in order, `From`, `To` (with `to_tag` added when it has none),
/// `Call-ID`, `CSeq`, and `Content-Length: 0`. Values are copied byte for
/// byte; compact names are written in their long form.
///
/// # Errors
/// [`ReplyError`] for a response, a missing `Via`/`From`/`To`/`Call-ID`/
/// `CSeq`, or a `to_tag` that is not a token.
pub fn reply(
    request: &SipMessage<'_>,
    status: ReplyStatus,
    to_tag: &str,
) -> Result<Vec<u8>, ReplyError> {
    if request.method().is_none() {
        return Err(ReplyError::NotARequest);
    }
    if to_tag.is_empty() || !to_tag.bytes().all(is_token_byte) {
        return Err(ReplyError::InvalidTag);
    }
    let one = |name: &'static str| request.header(name).ok_or(ReplyError::MissingHeader(name));
    let (from, to, call_id, cseq) = (one("From")?, one("To")?, one("Call-ID")?, one("CSeq")?);
    if request.header("Via").is_none() {
        return Err(ReplyError::MissingHeader("Via"));
    }
    if header_params(to).is_none() {
        return Err(ReplyError::MalformedTo);
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"SIP/2.0 ");
    let code = status.code();
    out.extend_from_slice(&[
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
        b' ',
    ]);
    out.extend_from_slice(status.reason().as_bytes());
    out.extend_from_slice(b"\r\n");
    for via in request.header_values("Via") {
        out.extend_from_slice(b"Via: ");
        out.extend_from_slice(via);
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in [("From", from), ("To", to)] {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        if name == "To" && tag_param(value).is_none() {
            out.extend_from_slice(b";tag=");
            out.extend_from_slice(to_tag.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in [("Call-ID", call_id), ("CSeq", cseq)] {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Ok(out)
}
