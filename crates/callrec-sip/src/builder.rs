//! Building the in-dialog `INFO` with `Record: on|off`.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use bytes::BufMut;
use rand_core::RngCore;

use crate::class::{line_break_or_nul, none_in, not_token, not_uri, quote_or_backslash};

/// The value of the `Record` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Record {
    /// `Record: on`: start recording.
    On,
    /// `Record: off`: stop recording.
    Off,
}

impl Record {
    /// The header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The phone's record key: the first press records, the second stops, and
/// so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordKey {
    recording: bool,
}

impl RecordKey {
    /// A key in the not-recording state.
    pub const fn new() -> Self {
        Self { recording: false }
    }

    /// Whether the last press started recording.
    pub const fn is_recording(&self) -> bool {
        self.recording
    }

    /// Presses the key: the `Record` value to send.
    pub fn press(&mut self) -> Record {
        self.recording = !self.recording;
        if self.recording {
            Record::On
        } else {
            Record::Off
        }
    }
}

/// SIP transport, for the `Via` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Transport {
    /// `SIP/2.0/UDP`.
    #[default]
    Udp,
    /// `SIP/2.0/TCP`.
    Tcp,
    /// `SIP/2.0/TLS`.
    Tls,
}

impl Transport {
    /// The `Via` protocol field.
    pub const fn via_protocol(self) -> &'static str {
        match self {
            Self::Udp => "SIP/2.0/UDP",
            Self::Tcp => "SIP/2.0/TCP",
            Self::Tls => "SIP/2.0/TLS",
        }
    }
}

/// A party of the dialog as it appears in `From`/`To`: optional display
/// name, URI, tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct NameAddr {
    /// Display name, written as an RFC 3261 quoted-string.
    pub display_name: Option<String>,
    /// The URI, e.g. `sip:1009@10.3.20.6:5060`.
    pub uri: String,
    /// The tag.
    pub tag: Option<String>,
}

impl NameAddr {
    /// A party without display name or tag.
    pub fn new(uri: impl Into<String>) -> Self {
        Self {
            display_name: None,
            uri: uri.into(),
            tag: None,
        }
    }

    /// With a display name.
    #[must_use]
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// With a tag.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }
}

/// The state of an established dialog that an in-dialog request needs
/// (RFC 3261 §12.2.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dialog {
    /// `Call-ID`.
    pub call_id: String,
    /// The local party (`From`), with the local tag.
    pub local: NameAddr,
    /// The remote party (`To`), with the remote tag.
    pub remote: NameAddr,
    /// The remote target: the Request-URI.
    pub remote_target: String,
    /// Route set, in order, as URIs (each becomes a `Route: <uri>`).
    pub route_set: Vec<String>,
    /// The last local CSeq number used; the next request uses one more.
    pub local_cseq: u32,
    /// The local `Contact` URI.
    pub local_contact: String,
    /// Transport for `Via`.
    pub transport: Transport,
    /// `sent-by` for `Via`: `host[:port]`.
    pub sent_by: String,
}

impl Dialog {
    /// A dialog with an empty route set, UDP, and `local_cseq` 1 (the
    /// INVITE that created it).
    pub fn new(
        call_id: impl Into<String>,
        local: NameAddr,
        remote: NameAddr,
        remote_target: impl Into<String>,
        local_contact: impl Into<String>,
        sent_by: impl Into<String>,
    ) -> Self {
        Self {
            call_id: call_id.into(),
            local,
            remote,
            remote_target: remote_target.into(),
            route_set: Vec::new(),
            local_cseq: 1,
            local_contact: local_contact.into(),
            transport: Transport::Udp,
            sent_by: sent_by.into(),
        }
    }

    /// Starts building the `INFO` carrying `Record: on|off`.
    pub fn record_info(&mut self, record: Record) -> RecordInfoBuilder<'_> {
        RecordInfoBuilder {
            dialog: self,
            parts: Parts {
                record,
                user_agent: None,
                extra: Vec::new(),
                branch: None,
            },
            error: None,
        }
    }
}

/// Why an `INFO` could not be built; the first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A value contains CR, LF or NUL (header injection), is empty where a
    /// value is required, or a URI contains whitespace, `<`, `>` or `"`.
    InvalidValue {
        /// Which value.
        field: &'static str,
    },
    /// An extra header name that is not a token, or one the builder writes
    /// itself.
    InvalidHeaderName(String),
    /// A branch that does not start with the RFC 3261 magic cookie
    /// `z9hG4bK` or is not a token.
    InvalidBranch,
    /// The CSeq would reach 2^31 (RFC 3261 §8.1.1.5 limit).
    CSeqExhausted,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidValue { field } => {
                write!(
                    f,
                    "{field} is empty or contains a character it cannot carry (CR, LF, NUL; in a URI also whitespace, <, >, \")"
                )
            }
            Self::InvalidHeaderName(n) => {
                write!(f, "{n:?} is not a header name this builder accepts")
            }
            Self::InvalidBranch => f.write_str("branch must be a token starting with z9hG4bK"),
            Self::CSeqExhausted => f.write_str("CSeq would exceed 2^31 - 1"),
        }
    }
}

impl core::error::Error for BuildError {}

#[derive(Debug)]
struct Parts<'d> {
    record: Record,
    user_agent: Option<Cow<'d, str>>,
    extra: Vec<(Cow<'d, str>, Cow<'d, str>)>,
    branch: Option<Cow<'d, str>>,
}

/// Builds a `Record` INFO; setters chain, and the first error comes back
/// from [`build`](Self::build) (the shape of the `http` crate's builder).
///
/// ```
/// use callrec_sip::{Dialog, NameAddr, Record};
/// # let mut rng = callrec_test::SplitMix64(1);
///
/// let mut dialog = Dialog::new(
///     "0_2080113283@10.3.20.14",
///     NameAddr::new("sip:1009@10.3.20.6:5060").display_name("1009").tag("1385842459"),
///     NameAddr::new("sip:1010@10.3.20.6:5060").tag("2383911905"),
///     "sip:1010@10.3.20.6:5060",
///     "sip:1009@10.3.20.14:5060",
///     "10.3.20.14:5060",
/// );
/// let info = dialog.record_info(Record::On).user_agent("Yealink SIP-T23G 44.80.0.60").build(&mut rng)?;
/// let text = String::from_utf8(info).unwrap();
/// assert!(text.starts_with("INFO sip:1010@10.3.20.6:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.3.20.14:5060;branch=z9hG4bK"));
/// assert!(text.contains("\r\nCSeq: 2 INFO\r\n"));
/// assert!(text.ends_with("\r\nRecord: on\r\nContent-Length: 0\r\n\r\n"));
/// assert!(dialog.record_info(Record::Off).user_agent("bad\r\nRecord: on").build(&mut rng).is_err());
/// # Ok::<(), callrec_sip::BuildError>(())
/// ```
#[derive(Debug)]
pub struct RecordInfoBuilder<'d> {
    dialog: &'d mut Dialog,
    parts: Parts<'d>,
    /// The first error of the chain; later setters do nothing once set.
    error: Option<BuildError>,
}

fn check(field: &'static str, value: &str) -> Result<(), BuildError> {
    if value.is_empty() || !none_in(value.as_bytes(), line_break_or_nul) {
        return Err(BuildError::InvalidValue { field });
    }
    Ok(())
}

/// A URI (or host:port) goes between `<` `>` or on the request line:
/// visible ASCII (RFC 3261 URIs escape everything else, and the parser
/// refuses the rest on a request line) but no quotes or angle brackets.
fn check_uri(field: &'static str, value: &str) -> Result<(), BuildError> {
    if value.is_empty() || !none_in(value.as_bytes(), not_uri) {
        return Err(BuildError::InvalidValue { field });
    }
    Ok(())
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && none_in(s.as_bytes(), not_token)
}

/// Headers the builder writes itself; extra headers may not repeat them.
const OWN_HEADERS: [&str; 11] = [
    "via",
    "route",
    "from",
    "to",
    "call-id",
    "cseq",
    "contact",
    "max-forwards",
    "user-agent",
    "record",
    "content-length",
];

impl<'d> RecordInfoBuilder<'d> {
    /// Applies a setter unless an earlier one failed; keeps the first error.
    /// The parts stay in place (no moves through a `Result`).
    #[inline]
    fn and_then(mut self, f: impl FnOnce(&mut Parts<'d>) -> Result<(), BuildError>) -> Self {
        if self.error.is_none() {
            if let Err(e) = f(&mut self.parts) {
                self.error = Some(e);
            }
        }
        self
    }

    /// Adds `User-Agent`.
    #[must_use]
    pub fn user_agent(self, value: impl Into<Cow<'d, str>>) -> Self {
        let value = value.into();
        self.and_then(|p| {
            check("User-Agent", &value)?;
            p.user_agent = Some(value);
            Ok(())
        })
    }

    /// Adds another header (before `Record`).
    #[must_use]
    pub fn header(self, name: impl Into<Cow<'d, str>>, value: impl Into<Cow<'d, str>>) -> Self {
        let (name, value) = (name.into(), value.into());
        self.and_then(|p| {
            let own = OWN_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(&name)) || name.len() == 1;
            if !is_token(&name) || own {
                return Err(BuildError::InvalidHeaderName(name.into_owned()));
            }
            check("header value", &value)?;
            p.extra.push((name, value));
            Ok(())
        })
    }

    /// Uses this `Via` branch instead of a random one (for reproducing a
    /// capture; a branch must be unique per transaction).
    #[must_use]
    pub fn branch(self, branch: impl Into<Cow<'d, str>>) -> Self {
        let branch = branch.into();
        self.and_then(|p| {
            if !branch.starts_with("z9hG4bK") || !is_token(&branch) {
                return Err(BuildError::InvalidBranch);
            }
            p.branch = Some(branch);
            Ok(())
        })
    }

    /// Writes the request and advances the dialog's CSeq. The branch is
    /// `z9hG4bK` plus 20 hex digits from `rng`, unless one was given.
    ///
    /// # Errors
    /// The first [`BuildError`] of the chain, or one found in the dialog;
    /// the dialog is unchanged then.
    pub fn build(self, rng: &mut impl RngCore) -> Result<Vec<u8>, BuildError> {
        let mut out = Vec::with_capacity(512);
        self.build_into(rng, &mut out)?;
        Ok(out)
    }

    /// Like [`build`](Self::build), into any `BufMut`.
    ///
    /// # Errors
    /// As [`build`](Self::build); nothing is written then.
    pub fn build_into(
        self,
        rng: &mut impl RngCore,
        out: &mut impl BufMut,
    ) -> Result<(), BuildError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let parts = self.parts;
        let d = &*self.dialog;
        check("Call-ID", &d.call_id)?;
        check_uri("From URI", &d.local.uri)?;
        check_uri("To URI", &d.remote.uri)?;
        check_uri("Request-URI", &d.remote_target)?;
        check_uri("Contact", &d.local_contact)?;
        check_uri("sent-by", &d.sent_by)?;
        for (field, v) in [
            ("From display name", &d.local.display_name),
            ("To display name", &d.remote.display_name),
        ] {
            if let Some(v) = v {
                // An empty display name is allowed ("").
                if v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                    return Err(BuildError::InvalidValue { field });
                }
            }
        }
        for (field, tag) in [("From tag", &d.local.tag), ("To tag", &d.remote.tag)] {
            if let Some(tag) = tag {
                if !is_token(tag) {
                    return Err(BuildError::InvalidValue { field });
                }
            }
        }
        for route in &d.route_set {
            check_uri("Route", route)?;
        }
        let cseq = d.local_cseq.checked_add(1).filter(|&n| n < 1 << 31);
        let Some(cseq) = cseq else {
            return Err(BuildError::CSeqExhausted);
        };
        let mut random = [0u8; 27];
        let branch: &[u8] = match &parts.branch {
            Some(b) => b.as_bytes(),
            None => random_branch(rng, &mut random),
        };

        let mut stack = [0u8; 512];
        let mut counter = Counter(0);
        write_request(&mut counter, d, &parts, branch, cseq);
        let len = counter.0;
        if len <= stack.len() {
            // Common case: assemble on the stack (literal pieces become
            // fixed-size stores), then one copy into `out`.
            let mut w = SliceWriter {
                buf: &mut stack[..len],
                pos: 0,
            };
            write_request(&mut w, d, &parts, branch, cseq);
            out.put_slice(&stack[..len]);
        } else {
            write_request(&mut BufSink(out), d, &parts, branch, cseq);
        }
        self.dialog.local_cseq = cseq;
        Ok(())
    }
}

/// `z9hG4bK` and 20 hex digits (80 random bits) in `buf`.
fn random_branch<'b>(rng: &mut impl RngCore, buf: &'b mut [u8; 27]) -> &'b [u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 10];
    rng.fill_bytes(&mut bytes);
    buf[..7].copy_from_slice(b"z9hG4bK");
    for (i, b) in bytes.into_iter().enumerate() {
        buf[7 + 2 * i] = HEX[usize::from(b >> 4)];
        buf[8 + 2 * i] = HEX[usize::from(b & 0x0f)];
    }
    buf
}

/// Where a request is written: counted, copied into a slice, or put into
/// a `BufMut`. Writing twice (count, then copy) lets literal pieces compile to
/// fixed-size stores instead of one `memmove` call each.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

struct Counter(usize);

impl Sink for Counter {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

struct SliceWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Sink for SliceWriter<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        // The counting pass sized `buf` exactly, so this stays in bounds.
        if let Some(dst) = self.buf.get_mut(self.pos..self.pos + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.pos += bytes.len();
    }
}

struct BufSink<'o, B>(&'o mut B);

impl<B: BufMut> Sink for BufSink<'_, B> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.0.put_slice(bytes);
    }
}

/// The request's bytes, in the order of the Yealink example.
#[inline(always)]
fn write_request(w: &mut impl Sink, d: &Dialog, parts: &Parts<'_>, branch: &[u8], cseq: u32) {
    w.put(b"INFO ");
    w.put(d.remote_target.as_bytes());
    w.put(b" SIP/2.0\r\nVia: ");
    w.put(d.transport.via_protocol().as_bytes());
    w.put(b" ");
    w.put(d.sent_by.as_bytes());
    w.put(b";branch=");
    w.put(branch);
    w.put(b"\r\n");
    for route in &d.route_set {
        w.put(b"Route: <");
        w.put(route.as_bytes());
        w.put(b">\r\n");
    }
    w.put(b"From: ");
    put_name_addr(w, &d.local);
    w.put(b"To: ");
    put_name_addr(w, &d.remote);
    w.put(b"Call-ID: ");
    w.put(d.call_id.as_bytes());
    w.put(b"\r\nCSeq: ");
    put_number(w, cseq);
    w.put(b" INFO\r\nContact: <");
    w.put(d.local_contact.as_bytes());
    w.put(b">\r\nMax-Forwards: 70\r\n");
    if let Some(ua) = &parts.user_agent {
        w.put(b"User-Agent: ");
        w.put(ua.as_bytes());
        w.put(b"\r\n");
    }
    for (name, value) in &parts.extra {
        w.put(name.as_bytes());
        w.put(b": ");
        w.put(value.as_bytes());
        w.put(b"\r\n");
    }
    w.put(match parts.record {
        Record::On => b"Record: on\r\nContent-Length: 0\r\n\r\n",
        Record::Off => b"Record: off\r\nContent-Length: 0\r\n\r\n",
    });
}

#[inline]
fn put_number(w: &mut impl Sink, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    w.put(&digits[i..]);
}

/// `["display" ]<uri>[;tag=t]` and CRLF, the display name as an RFC 3261
/// quoted-string (`"` and `\` escaped as quoted-pairs).
#[inline]
fn put_name_addr(w: &mut impl Sink, na: &NameAddr) {
    if let Some(name) = &na.display_name {
        w.put(b"\"");
        let mut rest = name.as_bytes();
        if !none_in(rest, quote_or_backslash) {
            // Copy runs between the characters that need a quoted-pair.
            while let Some(i) = memchr::memchr2(b'"', b'\\', rest) {
                w.put(&rest[..i]);
                w.put(&[b'\\', rest[i]]);
                rest = &rest[i + 1..];
            }
        }
        w.put(rest);
        w.put(b"\" ");
    }
    w.put(b"<");
    w.put(na.uri.as_bytes());
    w.put(b">");
    if let Some(tag) = &na.tag {
        w.put(b";tag=");
        w.put(tag.as_bytes());
    }
    w.put(b"\r\n");
}
