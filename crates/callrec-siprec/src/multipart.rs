//! `multipart/mixed` bodies (RFC 2046 §5.1) as recording clients send
//! them: strict about the delimiters, forgiving about what vendors vary
//! (LF for CRLF, a missing or extra blank line, transport padding, no
//! close delimiter, a quoted boundary).

use crate::Error;

/// Most parts in one body (a SIPREC offer has two).
pub const MAX_PARTS: usize = 16;

/// Longest boundary (RFC 2046: 70 characters).
pub const MAX_BOUNDARY_LEN: usize = 70;

/// One part of a multipart body: its headers that matter here, and its
/// content, borrowed from the body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Part<'a> {
    /// `Content-Type` (`application/sdp` when absent: RFC 2046 says
    /// `text/plain`, but a part without one in a SIP body is its SDP).
    pub content_type: Option<&'a str>,
    /// `Content-Disposition` (`session`, `recording-session`, with
    /// parameters), if any.
    pub content_disposition: Option<&'a str>,
    /// The part's content, without the line end before the next
    /// delimiter.
    pub content: &'a [u8],
}

impl Part<'_> {
    /// Whether the part's media type (without parameters, any case) is
    /// `media_type`.
    pub fn is(&self, media_type: &str) -> bool {
        self.content_type
            .map(|t| t.split(';').next().unwrap_or("").trim())
            .is_some_and(|t| t.eq_ignore_ascii_case(media_type))
    }
}

/// The value of parameter `name` (any case) in a header value such as
/// `multipart/mixed; boundary="a b"`, unquoted.
pub(crate) fn parameter<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    value.split(';').skip(1).find_map(|p| {
        let (key, v) = p.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        let v = v.trim();
        Some(
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v),
        )
    })
}

/// The boundary of a multipart `content_type`.
///
/// # Errors
/// [`Error::Boundary`] when it has none, or one that is empty, longer than
/// [`MAX_BOUNDARY_LEN`] or holds a line end.
pub fn boundary(content_type: &str) -> Result<&str, Error> {
    match parameter(content_type, "boundary") {
        Some(b) if !b.is_empty() && b.len() <= MAX_BOUNDARY_LEN && !b.contains(['\r', '\n']) => {
            Ok(b)
        }
        _ => Err(Error::Boundary(content_type.to_owned())),
    }
}

/// Where each line of `body` starting with `--boundary` is: its start and
/// the end of its delimiter text.
fn delimiters<'a>(body: &'a [u8], boundary: &'a str) -> impl Iterator<Item = usize> + 'a {
    let dash = [b"--".as_slice(), boundary.as_bytes()].concat();
    let mut from = 0;
    core::iter::from_fn(move || {
        while from <= body.len() {
            let found = body[from..]
                .windows(dash.len())
                .position(|w| w == dash.as_slice())?;
            let at = from + found;
            from = at + dash.len();
            // At a line start, and the whole boundary: what follows is
            // `--`, padding or the line end (RFC 2046), not more of a
            // longer boundary.
            let whole = matches!(
                body.get(from),
                None | Some(b'-' | b' ' | b'\t' | b'\r' | b'\n')
            );
            if (at == 0 || body[at - 1] == b'\n') && whole {
                return Some(at);
            }
        }
        None
    })
}

/// Splits `body` into its parts, delimited by `--boundary` lines.
///
/// The preamble and epilogue are skipped; a body that ends without the
/// close delimiter ends its last part there.
///
/// # Errors
/// [`Error::NoParts`] when no delimiter line is found,
/// [`Error::TooMany`] over [`MAX_PARTS`].
pub fn split<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, Error> {
    let mut parts = Vec::new();
    let mut starts = delimiters(body, boundary).peekable();
    let dash_len = 2 + boundary.len();
    while let Some(at) = starts.next() {
        let after = at + dash_len;
        if body[after..].starts_with(b"--") {
            break;
        }
        // Transport padding, then the line end.
        let line_end = body[after..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |p| after + p + 1);
        let end = match starts.peek() {
            Some(&next) => strip_line_end(&body[..next]).len(),
            None => body.len(),
        };
        if parts.len() == MAX_PARTS {
            return Err(Error::TooMany {
                what: "parts",
                max: MAX_PARTS,
            });
        }
        parts.push(part(&body[line_end.min(end)..end]));
    }
    if parts.is_empty() {
        return Err(Error::NoParts {
            boundary: boundary.to_owned(),
        });
    }
    Ok(parts)
}

fn strip_line_end(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// A part's headers and content. Headers end at the first empty line; a
/// part whose first line is not a `Name: value` header has none (a vendor
/// left the blank line out, or sent no headers).
fn part(bytes: &[u8]) -> Part<'_> {
    let mut part = Part {
        content_type: None,
        content_disposition: None,
        content: bytes,
    };
    let mut rest = bytes;
    loop {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(p) => (strip_line_end(&rest[..=p]), &rest[p + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if line.is_empty() {
            part.content = next;
            return part;
        }
        let Some((name, value)) = core::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split_once(':'))
            .filter(|(name, _)| is_token(name.trim_end()))
        else {
            // Not a header: the content starts here.
            part.content = rest;
            return part;
        };
        let (name, value) = (name.trim_end(), value.trim());
        if name.eq_ignore_ascii_case("content-type") || name.eq_ignore_ascii_case("c") {
            part.content_type = Some(value);
        } else if name.eq_ignore_ascii_case("content-disposition") {
            part.content_disposition = Some(value);
        }
        if next.is_empty() {
            part.content = next;
            return part;
        }
        rest = next;
    }
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Writes `parts` (content type and content) as a `multipart/mixed` body
/// delimited by `boundary`, CRLF line ends: what a recording client sends,
/// for tests and tools.
pub fn write(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (content_type, content) in parts {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_quoted_or_not_in_any_case() {
        assert_eq!(
            boundary("multipart/mixed;boundary=foobar").unwrap(),
            "foobar"
        );
        assert_eq!(
            boundary("multipart/mixed; Boundary=\"unique boundary 1\"").unwrap(),
            "unique boundary 1"
        );
        assert_eq!(
            boundary("multipart/mixed").unwrap_err().to_string(),
            "content type \"multipart/mixed\" has no usable boundary"
        );
        assert!(boundary(&format!("multipart/mixed;boundary={}", "x".repeat(71))).is_err());
    }

    #[test]
    fn parts_with_preamble_epilogue_lf_and_no_blank_line() {
        let body = b"preamble\r\n--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--b  \nContent-Type: application/rs-metadata+xml\nContent-Disposition: recording-session\n\n<x/>\n--b--\r\nepilogue";
        let parts = split(body, "b").unwrap();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].is("application/sdp"));
        assert_eq!(parts[0].content, b"v=0\r\n");
        assert!(parts[1].is("Application/RS-Metadata+XML"));
        assert_eq!(parts[1].content_disposition, Some("recording-session"));
        assert_eq!(parts[1].content, b"<x/>");
        // No blank line after the headers, and no close delimiter.
        let parts = split(b"--b\r\nv=0\r\no=x\r\n", "b").unwrap();
        assert_eq!(parts[0].content_type, None);
        assert_eq!(parts[0].content, b"v=0\r\no=x\r\n");
        // A boundary in the middle of a line is content, and so is a
        // longer boundary that starts with it (a nested body's).
        let parts = split(b"--b\r\n\r\nx--b y\r\n--bb\r\n--b--", "b").unwrap();
        assert_eq!(parts[0].content, b"x--b y\r\n--bb");
        assert_eq!(
            split(b"nothing here", "b").unwrap_err().to_string(),
            "the body has no part delimited by --b"
        );
        let many = "--b\r\n\r\nx\r\n".repeat(MAX_PARTS + 1);
        assert!(matches!(
            split(many.as_bytes(), "b"),
            Err(Error::TooMany { .. })
        ));
    }

    #[test]
    fn what_write_writes_split_reads() {
        let body = write(
            "xyz",
            &[("application/sdp", b"v=0\r\n"), ("text/plain", b"a\r\nb")],
        );
        let parts = split(&body, "xyz").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[1].content_type, parts[1].content),
            (Some("text/plain"), &b"a\r\nb"[..])
        );
    }
}
