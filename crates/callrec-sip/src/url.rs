//! URL record: the HTTP GET a Yealink phone sends to an admin-configured URL.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a URL or an HTTP status line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `http://host[:port]/...`.
    NotHttp,
    /// Empty host, or a character not allowed in a host.
    InvalidHost,
    /// Port not in 1..=65535.
    InvalidPort,
    /// A path or query character that cannot go on the request line
    /// (whitespace, control characters, non-ASCII).
    InvalidTarget,
    /// Not `HTTP/1.x NNN reason`.
    InvalidStatusLine,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotHttp => "URL must start with http://",
            Self::InvalidHost => "URL host is empty or has characters a host cannot",
            Self::InvalidPort => "URL port must be 1..=65535",
            Self::InvalidTarget => {
                "URL path or query has whitespace, control or non-ASCII characters"
            }
            Self::InvalidStatusLine => "not an HTTP/1.x status line",
        })
    }
}

impl core::error::Error for UrlError {}

/// Values substituted for the placeholders; each is percent-encoded.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct UrlVars<'a> {
    /// `$mac`: the phone's MAC.
    pub mac: &'a str,
    /// `$local`: the phone's number.
    pub local: &'a str,
    /// `$remote`: the remote number.
    pub remote: &'a str,
    /// `$call_id`: the SIP Call-ID.
    pub call_id: &'a str,
    /// `$display_local`: the phone's display name.
    pub display_local: &'a str,
    /// `$display_remote`: the remote display name.
    pub display_remote: &'a str,
}

impl<'a> UrlVars<'a> {
    /// No values (every placeholder becomes empty).
    pub fn new() -> Self {
        Self::default()
    }

    fn lookup(&self, name: &str) -> Option<&'a str> {
        Some(match name {
            "mac" => self.mac,
            "local" => self.local,
            "remote" => self.remote,
            "call_id" => self.call_id,
            "display_local" => self.display_local,
            "display_remote" => self.display_remote,
            _ => return None,
        })
    }
}

/// Placeholder names, longest first so `$display_local` is not read as
/// `$d…`.
const PLACEHOLDERS: [&str; 6] = [
    "display_remote",
    "display_local",
    "call_id",
    "remote",
    "local",
    "mac",
];

/// A parsed `http://host[:port]/path?query` URL with placeholders.
///
/// ```
/// use callrec_sip::{UrlRecord, UrlVars};
///
/// let url = UrlRecord::parse("http://10.2.1.5:8080/rec?start=1&mac=$mac&who=$display_remote")?;
/// let mut vars = UrlVars::new();
/// vars.mac = "001565aabbcc";
/// vars.display_remote = "Zoë & Co";
/// let req = url.request(&vars, "SIP-T46U 108.86.0.20 001565aabbcc");
/// assert_eq!((url.host(), url.port()), ("10.2.1.5", 8080));
/// assert_eq!(
///     std::str::from_utf8(&req).unwrap(),
///     "GET /rec?start=1&mac=001565aabbcc&who=Zo%C3%AB%20%26%20Co HTTP/1.1\r\n\
///      Host: 10.2.1.5:8080\r\nUser-Agent: SIP-T46U 108.86.0.20 001565aabbcc\r\n\
///      Accept: */*\r\nConnection: close\r\n\r\n"
/// );
/// # Ok::<(), callrec_sip::UrlError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRecord {
    host: String,
    port: Option<u16>,
    target: String,
}

impl UrlRecord {
    /// Parses the configured URL.
    ///
    /// # Errors
    /// A [`UrlError`] naming the part that is wrong.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let rest = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])
            .ok_or(UrlError::NotHttp)?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or(UrlError::InvalidPort)?;
                (h, Some(port))
            }
            _ => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
        if !host_ok {
            return Err(UrlError::InvalidHost);
        }
        let target = if target.starts_with('?') {
            let mut t = String::from("/");
            t.push_str(target);
            t
        } else {
            String::from(target)
        };
        if !target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UrlError::InvalidTarget);
        }
        Ok(Self {
            host: String::from(host),
            port,
            target,
        })
    }

    /// The host to connect to, as written (an IPv6 address keeps its
    /// brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port to connect to: the URL's, or 80.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(80)
    }

    /// The HTTP/1.1 request bytes, placeholders substituted and
    /// percent-encoded (only RFC 3986 unreserved characters stay as they
    /// are). `user_agent` is `<model> <firmware> <MAC>`; CR, LF and NUL in it
    /// are dropped.
    pub fn request(&self, vars: &UrlVars<'_>, user_agent: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.target.len());
        out.extend_from_slice(b"GET ");
        let t = self.target.as_bytes();
        let mut i = 0;
        while i < t.len() {
            if t[i] == b'$' {
                let name = PLACEHOLDERS
                    .iter()
                    .find(|p| t[i + 1..].starts_with(p.as_bytes()));
                if let Some(name) = name {
                    if let Some(value) = vars.lookup(name) {
                        percent_encode(value, &mut out);
                    }
                    i += 1 + name.len();
                    continue;
                }
            }
            out.push(t[i]);
            i += 1;
        }
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(self.host.as_bytes());
        if let Some(port) = self.port {
            out.push(b':');
            out.extend_from_slice(alloc::format!("{port}").as_bytes());
        }
        out.extend_from_slice(b"\r\nUser-Agent: ");
        out.extend(
            user_agent
                .bytes()
                .filter(|b| !matches!(b, b'\r' | b'\n' | 0)),
        );
        out.extend_from_slice(b"\r\nAccept: */*\r\nConnection: close\r\n\r\n");
        out
    }
}

fn percent_encode(value: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
}

/// Parses the status line of the server's HTTP response: `(code, reason)`.
///
/// # Errors
/// [`UrlError::InvalidStatusLine`].
pub fn parse_http_status(response: &[u8]) -> Result<(u16, &[u8]), UrlError> {
    let end = response
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(response.len());
    let line = response[..end]
        .strip_suffix(b"\r")
        .unwrap_or(&response[..end]);
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .filter(|r| matches!(r.first(), Some(b'0' | b'1')))
        .map(|r| &r[1..])
        .ok_or(UrlError::InvalidStatusLine)?;
    let rest = rest.strip_prefix(b" ").ok_or(UrlError::InvalidStatusLine)?;
    let (code, reason) = rest.split_at(rest.len().min(3));
    let code = core::str::from_utf8(code)
        .ok()
        .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..=599).contains(c))
        .ok_or(UrlError::InvalidStatusLine)?;
    let reason = match reason {
        [] => reason,
        [b' ', r @ ..] => r,
        _ => return Err(UrlError::InvalidStatusLine),
    };
    Ok((code, reason))
}
