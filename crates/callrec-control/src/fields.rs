//! The typed values of message fields, each validated once on the way in.

use core::fmt;
use core::net::IpAddr;
use core::num::NonZeroU16;
use core::str::FromStr;

use rand_core::RngCore;

/// Longest `id`, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Longest `remote_number` / `local_number`, in bytes.
pub const MAX_NUMBER_LEN: usize = 128;
/// Longest `remote_name` / `local_name` / `reason`, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest `server` host name, in bytes (DNS limit).
pub const MAX_HOST_LEN: usize = 253;

/// The session id: 1..=64 printable ASCII characters (`0x21..=0x7E`), chosen
/// at random by the phone and fixed for the recording.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// Validates an id.
    ///
    /// # Errors
    /// [`InvalidField`] if it is empty, longer than 64 bytes, or has a
    /// character outside printable ASCII.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidField> {
        let id = id.into();
        let ok = (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic());
        if ok { Ok(Self(id)) } else { Err(InvalidField) }
    }

    /// A fresh random id: 32 lowercase hex digits (128 bits) from `rng`.
    ///
    /// The phone's generator; pass an OS-seeded RNG in firmware and a seeded
    /// one in tests.
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        let mut id = String::with_capacity(32);
        for b in bytes {
            push_hex(&mut id, b);
        }
        Self(id)
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SessionId {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        Self::new(s)
    }
}

fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

/// A value that does not satisfy its field's rule; the message decoder turns
/// it into a [`MessageError`](crate::MessageError) naming the key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidField;

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid field value")
    }
}

impl core::error::Error for InvalidField {}

/// The phone's MAC address (`device`).
///
/// Read in any usual notation (`001565aabbcc`, `00:15:65:AA:BB:CC`,
/// `00-15-65-aa-bb-cc`, `0015.65aa.bbcc`), written as 12 lowercase hex
/// digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac([u8; 6]);

impl Mac {
    /// The address with these octets.
    pub const fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }

    /// The octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl FromStr for Mac {
    type Err = InvalidField;

    fn from_str(s: &str) -> Result<Self, InvalidField> {
        let b = s.as_bytes();
        // Strip the separators of a known notation, and only those.
        let digits: Vec<u8> = match b.len() {
            12 => b.to_vec(),
            17 if b[2] == b':' || b[2] == b'-' => {
                let sep = b[2];
                if (0..5).any(|i| b[3 * i + 2] != sep) {
                    return Err(InvalidField);
                }
                b.iter().copied().filter(|&c| c != sep).collect()
            }
            14 if b[4] == b'.' && b[9] == b'.' => {
                b.iter().copied().filter(|&c| c != b'.').collect()
            }
            _ => return Err(InvalidField),
        };
        if digits.len() != 12 {
            return Err(InvalidField);
        }
        let mut mac = [0u8; 6];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(InvalidField)?;
            let lo = hex_value(pair[1]).ok_or(InvalidField)?;
            mac[i] = hi << 4 | lo;
        }
        Ok(Self(mac))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Call direction (`dir`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Direction {
    /// Inbound call (`in`).
    In,
    /// Outbound call (`out`).
    Out,
}

impl Direction {
    /// The wire form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

impl FromStr for Direction {
    type Err = InvalidField;
    /// `in` or `out`, case-insensitively.
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        if s.eq_ignore_ascii_case("in") {
            Ok(Self::In)
        } else if s.eq_ignore_ascii_case("out") {
            Ok(Self::Out)
        } else {
            Err(InvalidField)
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RTP codec of the stream (`codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// G.711 A-law, RTP payload type 8.
    Pcma,
    /// G.711 µ-law, RTP payload type 0.
    Pcmu,
    /// G.722, RTP payload type 9.
    G722,
}

impl Codec {
    /// The canonical wire form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pcma => "PCMA",
            Self::Pcmu => "PCMU",
            Self::G722 => "G722",
        }
    }

    /// The static RTP payload type (RFC 3551): the shared key between the
    /// crates' codec types (`callrec_file::Codec`, `callrec_audio::Law`,
    /// `callrec_rtp::PayloadFormat`).
    pub const fn payload_type(self) -> u8 {
        match self {
            Self::Pcma => 8,
            Self::Pcmu => 0,
            Self::G722 => 9,
        }
    }

    /// The codec of a static RTP payload type; `None` for other types.
    pub const fn from_payload_type(payload_type: u8) -> Option<Self> {
        match payload_type {
            8 => Some(Self::Pcma),
            0 => Some(Self::Pcmu),
            9 => Some(Self::G722),
            _ => None,
        }
    }
}

impl FromStr for Codec {
    type Err = InvalidField;
    /// `PCMA`, `PCMU` or `G722`, case-insensitively.
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        [Self::Pcma, Self::Pcmu, Self::G722]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or(InvalidField)
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the phone sends RTP (`server`): an IP address or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Host {
    /// An IPv4 or IPv6 address (IPv6 may be written in brackets).
    Ip(IpAddr),
    /// A DNS name: dot-separated labels of letters, digits and hyphens.
    Name(String),
}

impl FromStr for Host {
    type Err = InvalidField;
    fn from_str(s: &str) -> Result<Self, InvalidField> {
        let unbracketed = s
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(s);
        if let Ok(ip) = unbracketed.parse() {
            return Ok(Self::Ip(ip));
        }
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let name = s.strip_suffix('.').unwrap_or(s);
        if (1..=MAX_HOST_LEN).contains(&name.len()) && name.split('.').all(label_ok) {
            Ok(Self::Name(s.to_owned()))
        } else {
            Err(InvalidField)
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => ip.fmt(f),
            Self::Name(n) => f.write_str(n),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        Self::Ip(ip)
    }
}

/// Parses a port: decimal 1..=65535.
pub(crate) fn parse_port(s: &str) -> Result<NonZeroU16, InvalidField> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidField);
    }
    s.parse::<u16>()
        .ok()
        .and_then(NonZeroU16::new)
        .ok_or(InvalidField)
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
pub(crate) fn truncate_to_char_boundary(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_in_every_notation() {
        let want = Mac::new([0x00, 0x15, 0x65, 0xaa, 0xbb, 0xcc]);
        for s in [
            "001565aabbcc",
            "001565AABBCC",
            "00:15:65:AA:BB:CC",
            "00-15-65-aa-bb-cc",
            "0015.65aa.bbcc",
        ] {
            assert_eq!(s.parse::<Mac>(), Ok(want), "{s}");
        }
        assert_eq!(want.to_string(), "001565aabbcc");
        for bad in [
            "",
            "001565aabbc",
            "001565aabbccdd",
            "00:15:65-AA:BB:CC",
            "00:15:65:AA:BB:CG",
            "0015:65aa:bbcc",
            "00 15 65 aa bb cc",
            "+01565aabbcc",
        ] {
            assert_eq!(bad.parse::<Mac>(), Err(InvalidField), "{bad:?}");
        }
    }

    #[test]
    fn ids() {
        assert!(SessionId::new("a").is_ok());
        assert!(SessionId::new("x".repeat(64)).is_ok());
        assert!(SessionId::new("x".repeat(65)).is_err());
        assert!(SessionId::new("").is_err());
        assert!(SessionId::new("a b").is_err());
        assert!(SessionId::new("é").is_err());
        assert!(SessionId::new("a\n").is_err());
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let mut rng = callrec_test::SplitMix64(7);
        let ids: Vec<_> = (0..1000).map(|_| SessionId::generate(&mut rng)).collect();
        for id in &ids {
            assert_eq!(id.as_str().len(), 32);
            assert!(
                id.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(SessionId::new(id.as_str()).as_ref(), Ok(id));
        }
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // The same seed gives the same ids: generation is deterministic in tests.
        assert_eq!(
            SessionId::generate(&mut callrec_test::SplitMix64(7)),
            ids[0]
        );
    }

    #[test]
    fn hosts() {
        assert_eq!(
            "10.3.20.6".parse::<Host>(),
            Ok(Host::Ip("10.3.20.6".parse().unwrap()))
        );
        assert_eq!(
            "[::1]".parse::<Host>(),
            Ok(Host::Ip("::1".parse().unwrap()))
        );
        assert_eq!("::1".parse::<Host>(), Ok(Host::Ip("::1".parse().unwrap())));
        assert_eq!(
            "rec-1.example.com".parse::<Host>(),
            Ok(Host::Name("rec-1.example.com".into()))
        );
        for bad in [
            "",
            "a..b",
            "-a.com",
            "a_b.com",
            "a b",
            "x".repeat(64).as_str(),
        ] {
            assert_eq!(bad.parse::<Host>(), Err(InvalidField), "{bad:?}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("5004").map(NonZeroU16::get), Ok(5004));
        assert_eq!(parse_port("65535").map(NonZeroU16::get), Ok(65535));
        for bad in ["0", "65536", "", "+80", "-1", "1e3", "000000080", " 80"] {
            assert_eq!(parse_port(bad), Err(InvalidField), "{bad:?}");
        }
    }

    #[test]
    fn codecs_and_directions() {
        assert_eq!("pcmu".parse::<Codec>(), Ok(Codec::Pcmu));
        assert_eq!("G722".parse::<Codec>(), Ok(Codec::G722));
        assert_eq!("G729".parse::<Codec>(), Err(InvalidField));
        assert_eq!("OUT".parse::<Direction>(), Ok(Direction::Out));
        assert_eq!("sideways".parse::<Direction>(), Err(InvalidField));
    }
}
