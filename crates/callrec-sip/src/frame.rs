//! SIP over a stream (TCP, TLS): where one message ends (RFC 3261 §18.3,
//! by `Content-Length`), and the CRLF keep-alives between messages
//! (RFC 5626 §4.4.1). No allocator: it only reads the caller's buffer.

use core::fmt;

/// What the start of a stream buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// `len` bytes of CR and LF between messages, to skip. `ping` when they
    /// begin with a double CRLF (a keep-alive ping, answered with one
    /// CRLF).
    KeepAlive {
        /// Bytes to skip.
        len: usize,
        /// Whether to answer with `\r\n`.
        ping: bool,
    },
    /// A whole message: its first `len` bytes.
    Message {
        /// The message's length, head and body.
        len: usize,
    },
    /// Not enough bytes yet.
    Incomplete,
}

/// Why a stream cannot be framed: the connection should be closed (after
/// a `400` when a head could be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// No end of the head (an empty line) within the limit.
    HeadTooLong {
        /// The limit.
        max: usize,
    },
    /// The head has no `Content-Length` (required on streams).
    NoContentLength,
    /// `Content-Length` is not a number of at most nine digits, or appears
    /// twice.
    InvalidContentLength,
    /// Head and body together are longer than the limit.
    TooLong {
        /// Their length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeadTooLong { max } => {
                write!(f, "no end of the SIP head within {max} bytes")
            }
            Self::NoContentLength => f.write_str("a SIP message on a stream needs Content-Length"),
            Self::InvalidContentLength => {
                f.write_str("Content-Length is not a single decimal number")
            }
            Self::TooLong { len, max } => {
                write!(f, "a SIP message of {len} bytes is longer than {max}")
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// What `buf`, the unread bytes of a stream, starts with; messages longer
/// than `max_len` are errors.
///
/// ```
/// use callrec_sip::frame::{next_frame, Frame};
///
/// let stream = b"\r\n\r\nOPTIONS sip:srs@example SIP/2.0\r\nContent-Length: 2\r\n\r\nhiINV";
/// assert_eq!(next_frame(stream, 65536), Ok(Frame::KeepAlive { len: 4, ping: true }));
/// assert_eq!(next_frame(&stream[4..], 65536), Ok(Frame::Message { len: 56 }));
/// assert_eq!(next_frame(&stream[60..], 65536), Ok(Frame::Incomplete));
/// ```
///
/// # Errors
/// [`FrameError`]: the stream cannot be read on.
pub fn next_frame(buf: &[u8], max_len: usize) -> Result<Frame, FrameError> {
    let blank = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if blank > 0 {
        return Ok(Frame::KeepAlive {
            len: blank,
            ping: buf.starts_with(b"\r\n\r\n"),
        });
    }
    let window = &buf[..buf.len().min(max_len)];
    let Some(head_len) = head_end(window) else {
        return if buf.len() >= max_len {
            Err(FrameError::HeadTooLong { max: max_len })
        } else {
            Ok(Frame::Incomplete)
        };
    };
    let body_len = content_length(&window[..head_len])?;
    let len = head_len + body_len;
    if len > max_len {
        return Err(FrameError::TooLong { len, max: max_len });
    }
    Ok(if buf.len() >= len {
        Frame::Message { len }
    } else {
        Frame::Incomplete
    })
}

/// The length of the head, its empty line included: up to the first
/// `\n\n` or `\n\r\n`.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(p) = buf[at..].iter().position(|&b| b == b'\n') {
        let next = at + p + 1;
        match buf.get(next..) {
            Some([b'\n', ..]) => return Some(next + 1),
            Some([b'\r', b'\n', ..]) => return Some(next + 2),
            _ => at = next,
        }
    }
    None
}

/// The `Content-Length` (or `l`) of a head.
fn content_length(head: &[u8]) -> Result<usize, FrameError> {
    let mut found = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !name.eq_ignore_ascii_case(b"content-length") && !name.eq_ignore_ascii_case(b"l") {
            continue;
        }
        if found.is_some() {
            return Err(FrameError::InvalidContentLength);
        }
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::InvalidContentLength);
        }
        found = Some(
            value
                .iter()
                .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0')),
        );
    }
    found.ok_or(FrameError::NoContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn messages_keep_alives_and_errors() {
        let max = 1000;
        assert_eq!(next_frame(b"", max), Ok(Frame::Incomplete));
        assert_eq!(
            next_frame(b"\r\n", max),
            Ok(Frame::KeepAlive {
                len: 2,
                ping: false
            })
        );
        let m = b"BYE sip:a SIP/2.0\nl: 0\n\nNEXT";
        assert_eq!(next_frame(m, max), Ok(Frame::Message { len: 24 }));
        let body = b"INVITE sip:a SIP/2.0\r\nContent-Length:  5\r\n\r\nv=0\r\n";
        assert_eq!(
            next_frame(body, max),
            Ok(Frame::Message { len: body.len() })
        );
        assert_eq!(
            next_frame(&body[..body.len() - 1], max),
            Ok(Frame::Incomplete)
        );
        assert_eq!(
            next_frame(b"ACK sip:a SIP/2.0\r\nVia: x\r\n\r\n", max),
            Err(FrameError::NoContentLength)
        );
        assert_eq!(
            next_frame(b"ACK sip:a SIP/2.0\r\nl: 1\r\nl: 1\r\n\r\n", max),
            Err(FrameError::InvalidContentLength)
        );
        assert_eq!(
            next_frame(b"ACK sip:a SIP/2.0\r\nl: -1\r\n\r\n", max),
            Err(FrameError::InvalidContentLength)
        );
        assert_eq!(
            next_frame(b"ACK sip:a SIP/2.0\r\nl: 999\r\n\r\n", max),
            Err(FrameError::TooLong { len: 1028, max })
        );
        assert_eq!(
            next_frame(&[b'a'; 1000], max),
            Err(FrameError::HeadTooLong { max })
        );
        assert_eq!(next_frame(&[b'a'; 999], max), Ok(Frame::Incomplete));
        assert_eq!(
            FrameError::TooLong { len: 1028, max }.to_string(),
            "a SIP message of 1028 bytes is longer than 1000"
        );
    }
}
