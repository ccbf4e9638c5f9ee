//! Building the in-dialog `INFO` with `Record: on|off`.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::fmt;

#[cfg(feature = "alloc")]
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
/// name, URI, tag. Borrows its text (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct NameAddr<'a> {
    /// Display name, written as an RFC 3261 quoted-string.
    pub display_name: Option<&'a str>,
    /// The URI, e.g. `sip:1009@10.3.20.6:5060`.
    pub uri: &'a str,
    /// The tag.
    pub tag: Option<&'a str>,
}

impl<'a> NameAddr<'a> {
    /// A party without display name or tag.
    pub const fn new(uri: &'a str) -> Self {
        Self {
            display_name: None,
            uri,
            tag: None,
        }
    }

    /// With a display name.
    #[must_use]
    pub const fn display_name(mut self, name: &'a str) -> Self {
        self.display_name = Some(name);
        self
    }

    /// With a tag.
    #[must_use]
    pub const fn tag(mut self, tag: &'a str) -> Self {
        self.tag = Some(tag);
        self
    }
}

/// The state of an established dialog that an in-dialog request needs
/// (RFC 3261 §12.2.1.1). Borrows its text, so it works without an
/// allocator; only the CSeq changes as requests are written.
///
/// Built with named setters from the Call-ID; a value left unset is empty
/// and [`RecordInfoBuilder::write`] names it:
///
/// ```
/// use callrec_sip::{Dialog, NameAddr, Transport};
///
/// let routes = ["sip:proxy.example;lr"];
/// let dialog = Dialog::new("a84b4c76e66710")
///     .local(NameAddr::new("sip:1009@pbx.example").tag("1928301774"))
///     .remote(NameAddr::new("sip:1010@pbx.example").tag("a6c85cf"))
///     .remote_target("sip:1010@10.0.0.20")
///     .local_contact("sip:1009@10.0.0.14")
///     .sent_by("10.0.0.14:5060")
///     .route_set(&routes)
///     .transport(Transport::Tcp);
/// assert_eq!(dialog.local_cseq, 1);
/// ```
///
/// Not `Copy`: a copy would advance its own CSeq, not the dialog's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dialog<'a> {
    /// `Call-ID`.
    pub call_id: &'a str,
    /// The local party (`From`), with the local tag.
    pub local: NameAddr<'a>,
    /// The remote party (`To`), with the remote tag.
    pub remote: NameAddr<'a>,
    /// The remote target: the Request-URI.
    pub remote_target: &'a str,
    /// Route set, in order, as URIs (each becomes a `Route: <uri>`).
    pub route_set: &'a [&'a str],
    /// The last local CSeq number used; the next request uses one more.
    pub local_cseq: u32,
    /// The local `Contact` URI.
    pub local_contact: &'a str,
    /// Transport for `Via`.
    pub transport: Transport,
    /// `sent-by` for `Via`: `host[:port]`.
    pub sent_by: &'a str,
}

impl<'a> Dialog<'a> {
    /// A dialog with this Call-ID, an empty route set, UDP, and
    /// `local_cseq` 1 (the INVITE that created it); set the rest with the
    /// named setters.
    pub const fn new(call_id: &'a str) -> Self {
        Self {
            call_id,
            local: NameAddr::new(""),
            remote: NameAddr::new(""),
            remote_target: "",
            route_set: &[],
            local_cseq: 1,
            local_contact: "",
            transport: Transport::Udp,
            sent_by: "",
        }
    }

    /// The local party (`From`), with the local tag.
    #[must_use]
    pub const fn local(mut self, party: NameAddr<'a>) -> Self {
        self.local = party;
        self
    }

    /// The remote party (`To`), with the remote tag.
    #[must_use]
    pub const fn remote(mut self, party: NameAddr<'a>) -> Self {
        self.remote = party;
        self
    }

    /// The remote target (the Request-URI): the remote `Contact`.
    #[must_use]
    pub const fn remote_target(mut self, uri: &'a str) -> Self {
        self.remote_target = uri;
        self
    }

    /// The local `Contact` URI.
    #[must_use]
    pub const fn local_contact(mut self, uri: &'a str) -> Self {
        self.local_contact = uri;
        self
    }

    /// `sent-by` for `Via`: `host[:port]`.
    #[must_use]
    pub const fn sent_by(mut self, host_port: &'a str) -> Self {
        self.sent_by = host_port;
        self
    }

    /// The route set, in order (from the dialog's `Record-Route`).
    #[must_use]
    pub const fn route_set(mut self, routes: &'a [&'a str]) -> Self {
        self.route_set = routes;
        self
    }

    /// The transport for `Via`.
    #[must_use]
    pub const fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The last local CSeq number used (the INVITE's, or the last
    /// in-dialog request's).
    #[must_use]
    pub const fn local_cseq(mut self, cseq: u32) -> Self {
        self.local_cseq = cseq;
        self
    }

    /// Starts building the `INFO` carrying `Record: on|off`.
    pub fn record_info<'d>(&'d mut self, record: Record) -> RecordInfoBuilder<'d, 'a> {
        RecordInfoBuilder {
            dialog: self,
            parts: Parts {
                record,
                user_agent: None,
                extra: [("", ""); MAX_EXTRA_HEADERS],
                extra_len: 0,
                branch: None,
            },
            error: None,
        }
    }
}

/// How many headers [`RecordInfoBuilder::header`] adds at most.
pub const MAX_EXTRA_HEADERS: usize = 8;

/// A header name as given, kept inline (up to 32 bytes) so that an error
/// can name it without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HeaderName {
    bytes: [u8; 32],
    len: u8,
    truncated: bool,
}

impl HeaderName {
    fn copy_of(name: &str) -> Self {
        let mut bytes = [0u8; 32];
        let mut len = name.len().min(32);
        // Cut on a character boundary.
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        Self {
            bytes,
            len: len as u8,
            truncated: len < name.len(),
        }
    }

    /// The name (its first 32 bytes when it was longer).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Whether the name was longer than what is kept.
    pub const fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Debug for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())?;
        if self.truncated {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// Why an `INFO` could not be written; the first problem found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// A value contains CR, LF or NUL (header injection), is empty where a
    /// value is required, or a URI contains whitespace, `<`, `>` or `"`.
    InvalidValue {
        /// Which value.
        field: &'static str,
    },
    /// An extra header name that is not a token, or one the builder writes
    /// itself.
    InvalidHeaderName(HeaderName),
    /// More than [`MAX_EXTRA_HEADERS`] extra headers.
    TooManyHeaders,
    /// A branch that does not start with the RFC 3261 magic cookie
    /// `z9hG4bK` or is not a token.
    InvalidBranch,
    /// The CSeq would reach 2^31 (RFC 3261 §8.1.1.5 limit).
    CSeqExhausted,
    /// The caller's buffer is too small for the request.
    BufferTooShort {
        /// Bytes the request takes.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidValue { field } => {
                write!(
                    f,
                    "{field} is empty or contains a character it cannot carry (CR, LF, NUL; in a URI also whitespace, <, >, \")"
                )
            }
            Self::InvalidHeaderName(n) => {
                write!(f, "{n} is not a header name this builder accepts")
            }
            Self::TooManyHeaders => write!(f, "more than {MAX_EXTRA_HEADERS} extra headers"),
            Self::InvalidBranch => f.write_str("branch must be a token starting with z9hG4bK"),
            Self::CSeqExhausted => f.write_str("CSeq would exceed 2^31 - 1"),
            Self::BufferTooShort { needed, available } => write!(
                f,
                "the INFO takes {needed} bytes but the buffer has {available}"
            ),
        }
    }
}

impl core::error::Error for WriteError {}

#[derive(Debug)]
struct Parts<'d> {
    record: Record,
    user_agent: Option<&'d str>,
    extra: [(&'d str, &'d str); MAX_EXTRA_HEADERS],
    extra_len: usize,
    branch: Option<&'d str>,
}

impl Parts<'_> {
    fn extra(&self) -> &[(&str, &str)] {
        &self.extra[..self.extra_len]
    }
}

/// Builds a `Record` INFO; setters chain, and the first error comes back
/// from [`write`](Self::write) (the shape of the `http` crate's builder).
/// Nothing allocates: the request is written into the caller's buffer.
///
/// ```
/// use callrec_sip::{Dialog, NameAddr, Record};
/// # use callrec_sip::rand_core::{OsRng, TryRngCore};
/// # let mut rng = OsRng.unwrap_err();
///
/// let mut dialog = Dialog::new("0_2080113283@10.3.20.14")
///     .local(NameAddr::new("sip:1009@10.3.20.6:5060").display_name("1009").tag("1385842459"))
///     .remote(NameAddr::new("sip:1010@10.3.20.6:5060").tag("2383911905"))
///     .remote_target("sip:1010@10.3.20.6:5060")
///     .local_contact("sip:1009@10.3.20.14:5060")
///     .sent_by("10.3.20.14:5060");
/// let mut buf = [0u8; 512];
/// let n = dialog
///     .record_info(Record::On)
///     .user_agent("Yealink SIP-T23G 44.80.0.60")
///     .write(&mut rng, &mut buf)?;
/// let text = core::str::from_utf8(&buf[..n]).unwrap();
/// assert!(text.starts_with("INFO sip:1010@10.3.20.6:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.3.20.14:5060;branch=z9hG4bK"));
/// assert!(text.contains("\r\nCSeq: 2 INFO\r\n"));
/// assert!(text.ends_with("\r\nRecord: on\r\nContent-Length: 0\r\n\r\n"));
/// assert!(dialog.record_info(Record::Off).user_agent("bad\r\nRecord: on").write(&mut rng, &mut buf).is_err());
/// # Ok::<(), callrec_sip::WriteError>(())
/// ```
#[derive(Debug)]
pub struct RecordInfoBuilder<'d, 'a> {
    dialog: &'d mut Dialog<'a>,
    parts: Parts<'d>,
    /// The first error of the chain; later setters do nothing once set.
    error: Option<WriteError>,
}

fn check(field: &'static str, value: &str) -> Result<(), WriteError> {
    if value.is_empty() || !none_in(value.as_bytes(), line_break_or_nul) {
        return Err(WriteError::InvalidValue { field });
    }
    Ok(())
}

/// A URI (or host:port) goes between `<` `>` or on the request line:
/// visible ASCII (RFC 3261 URIs escape everything else, and the parser
/// refuses the rest on a request line) but no quotes or angle brackets.
fn check_uri(field: &'static str, value: &str) -> Result<(), WriteError> {
    if value.is_empty() || !none_in(value.as_bytes(), not_uri) {
        return Err(WriteError::InvalidValue { field });
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

impl<'d, 'a> RecordInfoBuilder<'d, 'a> {
    /// Applies a setter unless an earlier one failed; keeps the first error.
    /// The parts stay in place (no moves through a `Result`).
    #[inline]
    fn and_then(mut self, f: impl FnOnce(&mut Parts<'d>) -> Result<(), WriteError>) -> Self {
        if self.error.is_none() {
            if let Err(e) = f(&mut self.parts) {
                self.error = Some(e);
            }
        }
        self
    }

    /// Adds `User-Agent`.
    #[must_use]
    pub fn user_agent(self, value: &'d str) -> Self {
        self.and_then(|p| {
            check("User-Agent", value)?;
            p.user_agent = Some(value);
            Ok(())
        })
    }

    /// Adds another header (before `Record`); at most
    /// [`MAX_EXTRA_HEADERS`].
    #[must_use]
    pub fn header(self, name: &'d str, value: &'d str) -> Self {
        self.and_then(|p| {
            let own = OWN_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) || name.len() == 1;
            if !is_token(name) || own {
                return Err(WriteError::InvalidHeaderName(HeaderName::copy_of(name)));
            }
            check("header value", value)?;
            let slot = p
                .extra
                .get_mut(p.extra_len)
                .ok_or(WriteError::TooManyHeaders)?;
            *slot = (name, value);
            p.extra_len += 1;
            Ok(())
        })
    }

    /// Uses this `Via` branch instead of a random one (for reproducing a
    /// capture; a branch must be unique per transaction).
    #[must_use]
    pub fn branch(self, branch: &'d str) -> Self {
        self.and_then(|p| {
            if !branch.starts_with("z9hG4bK") || !is_token(branch) {
                return Err(WriteError::InvalidBranch);
            }
            p.branch = Some(branch);
            Ok(())
        })
    }

    /// Writes the request at the start of `buf`, advances the dialog's
    /// CSeq and returns the request's length. The branch is `z9hG4bK` plus
    /// 20 hex digits from `rng`, unless one was given.
    ///
    /// # Errors
    /// The first [`WriteError`] of the chain, one found in the dialog, or
    /// [`WriteError::BufferTooShort`]; the dialog is unchanged then.
    pub fn write(self, rng: &mut impl RngCore, buf: &mut [u8]) -> Result<usize, WriteError> {
        let (prepared, parts, dialog) = self.prepare(rng)?;
        let len = prepared.len(dialog, &parts);
        let available = buf.len();
        let Some(out) = buf.get_mut(..len) else {
            return Err(WriteError::BufferTooShort {
                needed: len,
                available,
            });
        };
        prepared.write(&mut SliceWriter { buf: out, pos: 0 }, dialog, &parts);
        dialog.local_cseq = prepared.cseq;
        Ok(len)
    }

    /// Like [`write`](Self::write), into a new `Vec`.
    ///
    /// # Errors
    /// As [`write`](Self::write) (never `BufferTooShort`).
    #[cfg(feature = "alloc")]
    pub fn to_vec(self, rng: &mut impl RngCore) -> Result<Vec<u8>, WriteError> {
        let mut out = Vec::with_capacity(512);
        self.write_buf(rng, &mut out)?;
        Ok(out)
    }

    /// Like [`write`](Self::write), into any `BufMut`.
    ///
    /// # Errors
    /// As [`write`](Self::write): `BufferTooShort` when
    /// `out.remaining_mut()` is too small; nothing is written then.
    #[cfg(feature = "alloc")]
    pub fn write_buf(
        self,
        rng: &mut impl RngCore,
        out: &mut impl BufMut,
    ) -> Result<(), WriteError> {
        let (prepared, parts, dialog) = self.prepare(rng)?;
        let len = prepared.len(dialog, &parts);
        if out.remaining_mut() < len {
            return Err(WriteError::BufferTooShort {
                needed: len,
                available: out.remaining_mut(),
            });
        }
        let mut stack = [0u8; 512];
        if let Some(buf) = stack.get_mut(..len) {
            // Common case: assemble on the stack (literal pieces become
            // fixed-size stores), then one copy into `out`.
            prepared.write(&mut SliceWriter { buf, pos: 0 }, dialog, &parts);
            out.put_slice(&stack[..len]);
        } else {
            prepared.write(&mut BufSink(out), dialog, &parts);
        }
        dialog.local_cseq = prepared.cseq;
        Ok(())
    }

    /// Checks the chain and the dialog; draws the branch.
    fn prepare(
        self,
        rng: &mut impl RngCore,
    ) -> Result<(Prepared, Parts<'d>, &'d mut Dialog<'a>), WriteError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let d = &*self.dialog;
        check("Call-ID", d.call_id)?;
        check_uri("From URI", d.local.uri)?;
        check_uri("To URI", d.remote.uri)?;
        check_uri("Request-URI", d.remote_target)?;
        check_uri("Contact", d.local_contact)?;
        check_uri("sent-by", d.sent_by)?;
        for (field, v) in [
            ("From display name", d.local.display_name),
            ("To display name", d.remote.display_name),
        ] {
            if let Some(v) = v {
                // An empty display name is allowed ("").
                if v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                    return Err(WriteError::InvalidValue { field });
                }
            }
        }
        for (field, tag) in [("From tag", d.local.tag), ("To tag", d.remote.tag)] {
            if let Some(tag) = tag {
                if !is_token(tag) {
                    return Err(WriteError::InvalidValue { field });
                }
            }
        }
        for route in d.route_set {
            check_uri("Route", route)?;
        }
        let cseq = d.local_cseq.checked_add(1).filter(|&n| n < 1 << 31);
        let Some(cseq) = cseq else {
            return Err(WriteError::CSeqExhausted);
        };
        let mut branch = [0u8; MAX_BRANCH];
        let branch_len = match self.parts.branch {
            Some(b) if b.len() <= MAX_BRANCH => {
                branch[..b.len()].copy_from_slice(b.as_bytes());
                b.len()
            }
            Some(_) => return Err(WriteError::InvalidBranch),
            None => random_branch(rng, &mut branch),
        };
        Ok((
            Prepared {
                cseq,
                branch,
                branch_len,
            },
            self.parts,
            self.dialog,
        ))
    }
}

/// The longest `Via` branch accepted.
const MAX_BRANCH: usize = 64;

/// What [`RecordInfoBuilder::prepare`] checked and drew.
struct Prepared {
    cseq: u32,
    branch: [u8; MAX_BRANCH],
    branch_len: usize,
}

impl Prepared {
    fn branch(&self) -> &[u8] {
        &self.branch[..self.branch_len]
    }

    fn len(&self, d: &Dialog<'_>, parts: &Parts<'_>) -> usize {
        let mut counter = Counter(0);
        self.write(&mut counter, d, parts);
        counter.0
    }

    #[inline(always)]
    fn write(&self, w: &mut impl Sink, d: &Dialog<'_>, parts: &Parts<'_>) {
        write_request(w, d, parts, self.branch(), self.cseq);
    }
}

/// `z9hG4bK` and 20 hex digits (80 random bits) in `buf`; their length.
fn random_branch(rng: &mut impl RngCore, buf: &mut [u8; MAX_BRANCH]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 10];
    rng.fill_bytes(&mut bytes);
    buf[..7].copy_from_slice(b"z9hG4bK");
    for (i, b) in bytes.into_iter().enumerate() {
        buf[7 + 2 * i] = HEX[usize::from(b >> 4)];
        buf[8 + 2 * i] = HEX[usize::from(b & 0x0f)];
    }
    27
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

#[cfg(feature = "alloc")]
struct BufSink<'o, B>(&'o mut B);

#[cfg(feature = "alloc")]
impl<B: BufMut> Sink for BufSink<'_, B> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.0.put_slice(bytes);
    }
}

/// The request's bytes, in the order of the Yealink example.
#[inline(always)]
fn write_request(w: &mut impl Sink, d: &Dialog<'_>, parts: &Parts<'_>, branch: &[u8], cseq: u32) {
    w.put(b"INFO ");
    w.put(d.remote_target.as_bytes());
    w.put(b" SIP/2.0\r\nVia: ");
    w.put(d.transport.via_protocol().as_bytes());
    w.put(b" ");
    w.put(d.sent_by.as_bytes());
    w.put(b";branch=");
    w.put(branch);
    w.put(b"\r\n");
    for route in d.route_set {
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
    if let Some(ua) = parts.user_agent {
        w.put(b"User-Agent: ");
        w.put(ua.as_bytes());
        w.put(b"\r\n");
    }
    for (name, value) in parts.extra() {
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
fn put_name_addr(w: &mut impl Sink, na: &NameAddr<'_>) {
    if let Some(name) = na.display_name {
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
    if let Some(tag) = na.tag {
        w.put(b";tag=");
        w.put(tag.as_bytes());
    }
    w.put(b"\r\n");
}
