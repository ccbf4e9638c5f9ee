//! A strict, bounded SIP message parser over borrowed bytes.

use alloc::vec::Vec;
use core::fmt;

use nom::bytes::complete::tag;
use nom::character::complete::digit1;
use nom::combinator::rest;
use nom::{IResult, Parser};
use wide::u8x16;

use crate::class::{is_token_byte, mask16, none_in, not_token, not_visible};

/// Limits on what the input controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_message_len: usize,
    max_headers: usize,
    max_line_len: usize,
}

impl Default for Limits {
    /// 64 KiB messages, 128 headers, 8 KiB lines.
    fn default() -> Self {
        Self {
            max_message_len: 64 * 1024,
            max_headers: 128,
            max_line_len: 8 * 1024,
        }
    }
}

impl Limits {
    /// Largest message accepted.
    #[must_use]
    pub fn max_message_len(mut self, n: usize) -> Self {
        self.max_message_len = n;
        self
    }

    /// Most header fields accepted.
    #[must_use]
    pub fn max_headers(mut self, n: usize) -> Self {
        self.max_headers = n;
        self
    }

    /// Longest line accepted (a folded header counts per physical line).
    #[must_use]
    pub fn max_line_len(mut self, n: usize) -> Self {
        self.max_line_len = n;
        self
    }
}

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Larger than the message limit.
    MessageTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A line longer than the line limit.
    LineTooLong {
        /// Line number (1-based).
        line: usize,
        /// The limit.
        max: usize,
    },
    /// More header fields than the limit.
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// The first line is neither `METHOD URI SIP/2.0` nor `SIP/2.0 CODE
    /// REASON`.
    InvalidStartLine,
    /// A header line without a colon, or with a name that is not a token.
    InvalidHeader {
        /// Line number (1-based).
        line: usize,
    },
    /// A continuation line before any header.
    FoldWithoutHeader {
        /// Line number (1-based).
        line: usize,
    },
    /// The input ended before the empty line that ends the headers: the
    /// message is cut, and headers may be missing.
    UnterminatedHeaders,
    /// `Content-Length` is not a number, or appears twice.
    InvalidContentLength,
    /// The body is shorter than `Content-Length`.
    BodyTruncated {
        /// `Content-Length`.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MessageTooLarge { len, max } => {
                write!(f, "message is {len} bytes, over the {max}-byte limit")
            }
            Self::LineTooLong { line, max } => {
                write!(f, "line {line} is longer than {max} bytes")
            }
            Self::TooManyHeaders { max } => write!(f, "more than {max} header fields"),
            Self::InvalidStartLine => f.write_str("first line is not a SIP request or status line"),
            Self::InvalidHeader { line } => {
                write!(f, "line {line} is not a header field (NAME: value)")
            }
            Self::FoldWithoutHeader { line } => {
                write!(f, "line {line} continues a header but none precedes it")
            }
            Self::UnterminatedHeaders => {
                f.write_str("no empty line after the headers: message cut short")
            }
            Self::InvalidContentLength => {
                f.write_str("Content-Length is not a single decimal number")
            }
            Self::BodyTruncated { expected, actual } => write!(
                f,
                "Content-Length is {expected} but {actual} body bytes are present"
            ),
        }
    }
}

impl core::error::Error for ParseError {}

/// The first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartLine<'a> {
    /// `METHOD Request-URI SIP/2.0`.
    Request {
        /// The method (a token, case-sensitive).
        method: &'a str,
        /// The Request-URI.
        uri: &'a str,
    },
    /// `SIP/2.0 CODE Reason`.
    Response {
        /// Status code, 100..=699.
        code: u16,
        /// Reason phrase (may be empty; any bytes).
        reason: &'a [u8],
    },
}

/// One header field, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// A token, so ASCII.
    name: &'a [u8],
    value: &'a [u8],
}

impl<'a> Header<'a> {
    /// The name as written (possibly a compact form such as `i`).
    pub fn name(&self) -> &'a str {
        // Tokens are ASCII, so this cannot fail.
        core::str::from_utf8(self.name).unwrap_or_default()
    }

    /// The raw value: leading and trailing whitespace removed; a folded
    /// value keeps its inner line breaks, which are linear whitespace.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// Whether this header is `name` (case-insensitive; compact forms match
    /// their long names).
    #[inline(always)]
    pub fn is(&self, name: &str) -> bool {
        self.is_canonical(canonical(name).as_bytes())
    }

    /// Whether this header is the one whose long name is `want`.
    #[inline(always)]
    fn is_canonical(&self, want: &[u8]) -> bool {
        match self.name.len() {
            n if n == want.len() => eq_ignore_ascii_case(self.name, want),
            1 => canonical_byte(self.name[0])
                .is_some_and(|long| long.as_bytes().eq_ignore_ascii_case(want)),
            _ => false,
        }
    }
}

/// ASCII lower case of eight bytes at once; other bytes unchanged.
#[inline(always)]
fn lower8(x: u64) -> u64 {
    const LOW7: u64 = u64::from_ne_bytes([0x7f; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let low = x & LOW7;
    // Per byte, no carry between bytes: high bit set where the byte is
    // at least `A`, and where it is past `Z`.
    let from_a = low + u64::from_ne_bytes([0x80 - b'A'; 8]);
    let past_z = low + u64::from_ne_bytes([0x80 - b'Z' - 1; 8]);
    let upper = from_a & !past_z & !x & HIGHS;
    x | upper >> 2
}

/// Eight bytes from `at` as a word (the caller checked the length).
#[inline(always)]
fn word8(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk::<8>)
        .map_or(0, |w| u64::from_le_bytes(*w))
}

/// `[u8]::eq_ignore_ascii_case` for slices of equal length, a word at a
/// time for the 8- to 16-byte names most headers have (the standard one is
/// a byte loop and was half of a header lookup).
#[inline(always)]
fn eq_ignore_ascii_case(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        // Two words, overlapping when shorter than 16.
        lower8(word8(a, 0)) == lower8(word8(b, 0))
            && lower8(word8(a, n - 8)) == lower8(word8(b, n - 8))
    } else if (4..8).contains(&n) {
        lower8(word4(a, 0)) == lower8(word4(b, 0))
            && lower8(word4(a, n - 4)) == lower8(word4(b, n - 4))
    } else {
        a.eq_ignore_ascii_case(b)
    }
}

/// Four bytes from `at` as a word (the caller checked the length).
#[inline(always)]
fn word4(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..)
        .and_then(<[u8]>::first_chunk::<4>)
        .map_or(0, |w| u64::from(u32::from_le_bytes(*w)))
}

/// RFC 3261 §7.3.3 compact forms.
const COMPACT: [(&str, &str); 10] = [
    ("v", "Via"),
    ("f", "From"),
    ("t", "To"),
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("l", "Content-Length"),
    ("k", "Supported"),
    ("s", "Subject"),
    ("c", "Content-Type"),
    ("e", "Content-Encoding"),
];

/// The long form of a header name.
#[inline]
pub fn canonical(name: &str) -> &str {
    match name.as_bytes() {
        [b] => canonical_byte(*b).unwrap_or(name),
        _ => name,
    }
}

#[inline]
fn canonical_byte(b: u8) -> Option<&'static str> {
    COMPACT
        .iter()
        .find(|(short, _)| short.as_bytes()[0] == b.to_ascii_lowercase())
        .map(|(_, long)| *long)
}

/// A parsed SIP message borrowing the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage<'a> {
    start: StartLine<'a>,
    headers: Vec<Header<'a>>,
    body: &'a [u8],
}

/// One line: content without its terminator, and the rest after it. Lines
/// end at CRLF; a bare LF is accepted too.
///
/// Header lines are short, so the next 64 bytes are compared with LF in
/// four 16-byte vector steps and the line end is a `trailing_zeros`: no
/// search loop and no branch per block (parse + `Record` 196 -> 161 ns
/// against a `memchr` per line). Longer lines, and the last 64 bytes of the
/// message, fall back to `memchr`.
#[inline(always)]
fn split_line(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let lf = match input.first_chunk::<64>() {
        Some(window) => match lf_mask64(window) {
            0 => 64 + memchr_lf(&input[64..])?,
            found => found.trailing_zeros() as usize,
        },
        None => memchr_lf(input)?,
    };
    let end = if lf > 0 && input[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    };
    Some((&input[..end], &input[lf + 1..]))
}

/// Bit `i` set where `window[i]` is LF: four 16-byte vector compares
/// (`wide` gives SSE2 or NEON without `unsafe` here, and plain code
/// elsewhere).
#[inline(always)]
fn lf_mask64(window: &[u8; 64]) -> u64 {
    let lf = u8x16::splat(b'\n');
    let mut mask = 0;
    for (i, chunk) in window.chunks_exact(16).enumerate() {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(chunk);
        let found = u8x16::new(bytes).cmp_eq(lf).move_mask() as u16;
        mask |= u64::from(found) << (16 * i);
    }
    mask
}

/// The first LF. On x86-64, memchr's SSE2 search used directly (SSE2 is
/// part of the architecture): it is inlined, with no run-time dispatch, and
/// took a parse from 225 to 207 ns. The generic `memchr::memchr` cost more
/// per 40-byte line in set-up than it saved.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn memchr_lf(input: &[u8]) -> Option<usize> {
    match memchr::arch::x86_64::sse2::memchr::One::new(b'\n') {
        Some(lf) => lf.find(input),
        None => memchr::memchr(b'\n', input),
    }
}

/// The first LF, elsewhere (memchr picks NEON or its portable code).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn memchr_lf(input: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', input)
}

fn trim_lws(mut v: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = v {
        if matches!(first, b' ' | b'\t' | b'\r' | b'\n') {
            v = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = v {
        if matches!(last, b' ' | b'\t' | b'\r' | b'\n') {
            v = rest;
        } else {
            break;
        }
    }
    v
}

/// `Method SP Request-URI SP SIP-Version` (RFC 3261 §7.1). Written by hand
/// rather than with nom: this runs for every request, and the combinators
/// were a tenth of a parse. The Request-URI is any visible ASCII (RFC 3261
/// URIs escape everything else), so the line is UTF-8 checked once.
fn request_line(line: &[u8]) -> Option<(&str, &str)> {
    let line = line.strip_suffix(b" SIP/2.0")?;
    let method_len = line.iter().position(|&b| !is_token_byte(b))?;
    let (method, uri) = line.split_at(method_len);
    let uri = uri.strip_prefix(b" ")?;
    if method.is_empty() || uri.is_empty() || !none_in(uri, not_visible) {
        return None;
    }
    let text = core::str::from_utf8(line).ok()?;
    let (method, uri) = text.split_at_checked(method_len)?;
    Some((method, uri.get(1..)?))
}

fn status_line(i: &[u8]) -> IResult<&[u8], (&[u8], &[u8])> {
    let (i, _) = tag(&b"SIP/2.0 "[..]).parse(i)?;
    let (i, code) = digit1.parse(i)?;
    let (i, reason) = rest.parse(i)?;
    Ok((i, (code, reason)))
}

fn start_line(line: &[u8]) -> Result<StartLine<'_>, ParseError> {
    // Decide by the fixed prefix, so a request never pays for a failed
    // status-line parse.
    if line.starts_with(b"SIP/") {
        let (_, (code, reason)) = status_line(line).map_err(|_| ParseError::InvalidStartLine)?;
        let code = core::str::from_utf8(code)
            .ok()
            .filter(|c| c.len() == 3)
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (100..=699).contains(c))
            .ok_or(ParseError::InvalidStartLine)?;
        let reason = match reason {
            [b' ', r @ ..] => r,
            [] => reason,
            _ => return Err(ParseError::InvalidStartLine),
        };
        return Ok(StartLine::Response { code, reason });
    }
    let (method, uri) = request_line(line).ok_or(ParseError::InvalidStartLine)?;
    Ok(StartLine::Request { method, uri })
}

/// `name *WS ":" value`, RFC 3261 §7.3.1 ("HCOLON = *( SP / HTAB ) ":" SWS").
/// `from` is the input from the start of `line` on: the name's end is found
/// in its first 16 bytes at once, which may run past the line; the line ends
/// at CR or LF, neither a token character, so the name never does. Names of
/// 16 bytes or more, and lines in the last 16 bytes of the message, are
/// scanned byte by byte.
fn header_line<'a>(line: &'a [u8], from: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let scalar = |bytes: &[u8]| {
        bytes
            .iter()
            .position(|&b| !is_token_byte(b))
            .unwrap_or(bytes.len())
    };
    let end = match from.first_chunk::<16>() {
        Some(window) => match (mask16(*window, not_token) | 1 << 16).trailing_zeros() {
            16 => 16 + scalar(line.get(16..).unwrap_or_default()),
            n => n as usize,
        },
        None => scalar(line),
    }
    .min(line.len());
    if end == 0 {
        return None;
    }
    let (name, after) = line.split_at(end);
    let colon = after.iter().position(|&b| b != b' ' && b != b'\t')?;
    if after[colon] != b':' {
        return None;
    }
    Some((name, &after[colon + 1..]))
}

impl<'a> SipMessage<'a> {
    /// Parses one message (a UDP datagram) with the default [`Limits`].
    ///
    /// # Errors
    /// A [`ParseError`] saying what is wrong and where.
    pub fn parse(input: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(input, Limits::default())
    }

    /// Parses one message with custom limits.
    ///
    /// Leading CRLFs are skipped (RFC 3261 §7.5). Lines end at CRLF; a bare
    /// LF is also accepted. A body longer than `Content-Length` is cut to
    /// it, as RFC 3261 §18.3 prescribes for datagrams ("additional bytes ...
    /// MUST be discarded"); a shorter one is an error.
    ///
    /// # Errors
    /// A [`ParseError`].
    pub fn parse_with(input: &'a [u8], limits: Limits) -> Result<Self, ParseError> {
        if input.len() > limits.max_message_len {
            return Err(ParseError::MessageTooLarge {
                len: input.len(),
                max: limits.max_message_len,
            });
        }
        let mut rest = input;
        while let [b'\r', b'\n', tail @ ..] | [b'\n', tail @ ..] = rest {
            rest = tail;
        }
        let mut line_no = 1;
        let (first, mut rest) = split_line(rest).ok_or(ParseError::UnterminatedHeaders)?;
        if first.len() > limits.max_line_len {
            return Err(ParseError::LineTooLong {
                line: 1,
                max: limits.max_line_len,
            });
        }
        let start = start_line(first)?;
        let mut headers: Vec<Header<'a>> = Vec::with_capacity(16);
        let mut content_length: Option<usize> = None;
        loop {
            line_no += 1;
            let Some((line, next)) = split_line(rest) else {
                return Err(ParseError::UnterminatedHeaders);
            };
            if line.len() > limits.max_line_len {
                return Err(ParseError::LineTooLong {
                    line: line_no,
                    max: limits.max_line_len,
                });
            }
            if line.is_empty() {
                rest = next;
                break;
            }
            if matches!(line[0], b' ' | b'\t') {
                // RFC 3261 §7.3.1: a header value may continue on lines that
                // start with whitespace. Extend the value over this line.
                let Some(last) = headers.last_mut() else {
                    return Err(ParseError::FoldWithoutHeader { line: line_no });
                };
                let value_start = last.value.as_ptr() as usize - input.as_ptr() as usize;
                let line_end = line.as_ptr() as usize - input.as_ptr() as usize + line.len();
                last.value = trim_lws(&input[value_start..line_end]);
                rest = next;
                continue;
            }
            let (name, value) =
                header_line(line, rest).ok_or(ParseError::InvalidHeader { line: line_no })?;
            if headers.len() == limits.max_headers {
                return Err(ParseError::TooManyHeaders {
                    max: limits.max_headers,
                });
            }
            let header = Header {
                name,
                value: trim_lws(value),
            };
            if (name.len() == 14 || name.len() == 1) && header.is("Content-Length") {
                if content_length.is_some() {
                    return Err(ParseError::InvalidContentLength);
                }
                content_length = Some(parse_content_length(header.value)?);
            }
            headers.push(header);
            rest = next;
        }
        let body = match content_length {
            Some(n) if n > rest.len() => {
                return Err(ParseError::BodyTruncated {
                    expected: n,
                    actual: rest.len(),
                });
            }
            Some(n) => &rest[..n],
            None => rest,
        };
        Ok(Self {
            start,
            headers,
            body,
        })
    }

    /// The start line.
    pub fn start_line(&self) -> StartLine<'a> {
        self.start
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// All header fields in order.
    pub fn headers(&self) -> &[Header<'a>] {
        &self.headers
    }

    /// The values of every `name` header, in order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        let want = canonical(name).as_bytes();
        self.headers
            .iter()
            .filter(move |h| h.is_canonical(want))
            .map(|h| h.value)
    }

    /// The first value of `name`.
    #[inline]
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        // A plain loop: this is every lookup's path, and the canonical name
        // is computed once rather than per header.
        let want = canonical(name).as_bytes();
        for h in &self.headers {
            if h.is_canonical(want) {
                return Some(h.value);
            }
        }
        None
    }

    /// The body (cut to `Content-Length`).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// `Content-Length = 1*DIGIT` (RFC 3261 §20.14), at most nine digits (so it
/// cannot overflow, and a datagram is far smaller anyway).
fn parse_content_length(v: &[u8]) -> Result<usize, ParseError> {
    if v.is_empty() || v.len() > 9 {
        return Err(ParseError::InvalidContentLength);
    }
    v.iter().try_fold(0usize, |n, &b| match b {
        b'0'..=b'9' => Ok(n * 10 + usize::from(b - b'0')),
        _ => Err(ParseError::InvalidContentLength),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use alloc::vec::Vec;

    use super::{eq_ignore_ascii_case, lf_mask64, memchr_lf, split_line};

    proptest! {
        /// The line-end search agrees with a plain one, at every length
        /// and alignment.
        #[test]
        fn lf_searches_agree(data in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..200), skip in 0usize..16) {
            let data = data.get(skip..).unwrap_or_default();
            let expected = data.iter().position(|&b| b == b'\n');
            prop_assert_eq!(memchr_lf(data), expected);
        }

        /// The line-end mask is the plain definition.
        #[test]
        fn vector_masks_agree(window in any::<[u8; 64]>(), lfs in proptest::collection::vec(0usize..64, 0..4)) {
            let mut window = window;
            for at in lfs {
                window[at] = b'\n';
            }
            let lf = window.iter().enumerate().fold(0u64, |m, (i, &b)| m | u64::from(b == b'\n') << i);
            prop_assert_eq!(lf_mask64(&window), lf);
        }

        /// Lines split the same at every length, whichever path finds the
        /// end (vector window, `memchr` past it, or near the end).
        #[test]
        fn lines_split_at_the_first_lf(data in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..200)) {
            let expected = data.iter().position(|&b| b == b'\n').map(|lf| {
                let end = if lf > 0 && data[lf - 1] == b'\r' { lf - 1 } else { lf };
                (&data[..end], &data[lf + 1..])
            });
            prop_assert_eq!(split_line(&data), expected);
        }

        /// The word-at-a-time comparison is the standard one, for every byte
        /// value (not only letters) and every length.
        #[test]
        fn case_insensitive_compare_agrees(a in proptest::collection::vec(any::<u8>(), 0..24),
            flips in proptest::collection::vec(0u8..4, 24)) {
            // `b` is `a` with some letters' case flipped and some bytes changed.
            let b: Vec<u8> = a.iter().zip(&flips).map(|(&x, &f)| match f {
                0 => x.to_ascii_uppercase(),
                1 => x.to_ascii_lowercase(),
                2 => x ^ 0x20,
                _ => x,
            }).collect();
            prop_assert_eq!(eq_ignore_ascii_case(&a, &b), a.eq_ignore_ascii_case(&b));
        }
    }

    #[test]
    fn case_insensitive_compare_fixtures() {
        assert!(eq_ignore_ascii_case(b"Content-Length", b"content-length"));
        assert!(eq_ignore_ascii_case(b"RECORD", b"Record"));
        assert!(!eq_ignore_ascii_case(b"Content-Lengti", b"Content-Length"));
        // `@` and `` ` `` differ by 0x20 but are not letters.
        assert!(!eq_ignore_ascii_case(b"abcd@", b"abcd`"));
        assert!(!eq_ignore_ascii_case(b"[xxxxxxx", b"{xxxxxxx"));
        assert!(!eq_ignore_ascii_case(b"Via", b"Vi"));
        assert!(eq_ignore_ascii_case(b"", b""));
    }
}
