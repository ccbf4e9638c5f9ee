//! Payload types: the RFC 3551 static audio table and registrable dynamic
//! types.

use core::fmt;
use core::time::Duration;

/// The longest encoding name an [`EncodingName`] holds, in bytes.
pub const MAX_ENCODING_NAME_LEN: usize = 32;

/// An SDP `a=rtpmap` encoding name (`PCMA`, `telephone-event`, …), stored
/// inline (no allocation), 1..=32 bytes of visible ASCII. Compares with
/// `&str` as written (SDP compares encoding names case-insensitively; use
/// [`eq_ignore_ascii_case`](Self::eq_ignore_ascii_case) for that).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodingName {
    bytes: [u8; MAX_ENCODING_NAME_LEN],
    len: u8,
}

impl EncodingName {
    /// `name` as an encoding name.
    ///
    /// # Errors
    /// [`EncodingNameError`] when `name` is empty, longer than
    /// [`MAX_ENCODING_NAME_LEN`] or not visible ASCII.
    pub const fn new(name: &str) -> Result<Self, EncodingNameError> {
        let src = name.as_bytes();
        if src.is_empty() || src.len() > MAX_ENCODING_NAME_LEN {
            return Err(EncodingNameError { len: src.len() });
        }
        let mut bytes = [0u8; MAX_ENCODING_NAME_LEN];
        let mut i = 0;
        while i < src.len() {
            if !src[i].is_ascii_graphic() {
                return Err(EncodingNameError { len: src.len() });
            }
            bytes[i] = src[i];
            i += 1;
        }
        Ok(Self {
            bytes,
            len: src.len() as u8,
        })
    }

    const fn fixed(name: &str) -> Self {
        match Self::new(name) {
            Ok(n) => n,
            Err(_) => panic!("static encoding names are valid"),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Only visible ASCII is ever stored.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Whether this is `other`, ignoring ASCII case (as SDP compares).
    pub fn eq_ignore_ascii_case(&self, other: &str) -> bool {
        self.as_str().eq_ignore_ascii_case(other)
    }
}

impl fmt::Debug for EncodingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for EncodingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for EncodingName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EncodingName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl TryFrom<&str> for EncodingName {
    type Error = EncodingNameError;

    fn try_from(name: &str) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

/// An encoding name that is empty, too long or not visible ASCII.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct EncodingNameError {
    /// The name's length in bytes.
    pub len: usize,
}

impl fmt::Display for EncodingNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an encoding name of {} bytes: it must be 1..={MAX_ENCODING_NAME_LEN} bytes of visible ASCII",
            self.len
        )
    }
}

impl core::error::Error for EncodingNameError {}

/// What a payload type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PayloadFormat {
    /// The payload type number.
    pub payload_type: u8,
    /// Encoding name as in SDP `a=rtpmap` (`PCMA`, `G722`, …).
    pub encoding: EncodingName,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels.
    pub channels: u8,
}

impl PayloadFormat {
    /// A format (for dynamic types).
    pub const fn new(
        payload_type: u8,
        encoding: EncodingName,
        clock_rate: u32,
        channels: u8,
    ) -> Self {
        Self {
            payload_type,
            encoding,
            clock_rate,
            channels,
        }
    }

    const fn fixed(
        payload_type: u8,
        encoding: &'static str,
        clock_rate: u32,
        channels: u8,
    ) -> Self {
        Self {
            payload_type,
            encoding: EncodingName::fixed(encoding),
            clock_rate,
            channels,
        }
    }

    /// PCMU, payload type 0, 8000 Hz.
    pub const PCMU: Self = Self::fixed(0, "PCMU", 8000, 1);
    /// PCMA, payload type 8, 8000 Hz.
    pub const PCMA: Self = Self::fixed(8, "PCMA", 8000, 1);
    /// G722, payload type 9. Its RTP clock is 8000 Hz although it samples at
    /// 16 kHz: RFC 3551 §4.5.2 keeps the 8000 Hz rate "for historical
    /// reasons", so a 20 ms packet advances the timestamp by 160.
    pub const G722: Self = Self::fixed(9, "G722", 8000, 1);

    /// The format of a static payload type (RFC 3551 Table 4); `None` for
    /// dynamic or unassigned types. With the other crates' codec types
    /// (`callrec_file::Codec`, `callrec_control::Codec`,
    /// `callrec_audio::Law`), the payload type number is the shared key:
    /// `PayloadFormat::from_payload_type(codec.payload_type())`.
    pub fn from_payload_type(payload_type: u8) -> Option<Self> {
        static_format(payload_type).copied()
    }

    /// RTP timestamp ticks in `ptime` of audio (`clock_rate × ptime`,
    /// rounded down), e.g. 160 for 20 ms at 8000 Hz.
    pub fn samples_per(&self, ptime: Duration) -> u32 {
        let ticks = ptime.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        u32::try_from(ticks).unwrap_or(u32::MAX)
    }
}

/// RFC 3551 Table 4: the static audio payload types.
static STATIC_AUDIO: [PayloadFormat; 17] = [
    PayloadFormat::PCMU,
    PayloadFormat::fixed(3, "GSM", 8000, 1),
    PayloadFormat::fixed(4, "G723", 8000, 1),
    PayloadFormat::fixed(5, "DVI4", 8000, 1),
    PayloadFormat::fixed(6, "DVI4", 16000, 1),
    PayloadFormat::fixed(7, "LPC", 8000, 1),
    PayloadFormat::PCMA,
    PayloadFormat::G722,
    PayloadFormat::fixed(10, "L16", 44100, 2),
    PayloadFormat::fixed(11, "L16", 44100, 1),
    PayloadFormat::fixed(12, "QCELP", 8000, 1),
    PayloadFormat::fixed(13, "CN", 8000, 1),
    PayloadFormat::fixed(14, "MPA", 90000, 1),
    PayloadFormat::fixed(15, "G728", 8000, 1),
    PayloadFormat::fixed(16, "DVI4", 11025, 1),
    PayloadFormat::fixed(17, "DVI4", 22050, 1),
    PayloadFormat::fixed(18, "G729", 8000, 1),
];

/// First dynamic payload type (RFC 3551 §6).
pub const DYNAMIC_FIRST: u8 = 96;
/// Last dynamic payload type.
pub const DYNAMIC_LAST: u8 = 127;

/// A payload type that cannot be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct NotDynamic(pub u8);

impl fmt::Display for NotDynamic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payload type {} is not in the dynamic range {DYNAMIC_FIRST}..={DYNAMIC_LAST}",
            self.0
        )
    }
}

impl core::error::Error for NotDynamic {}

/// Payload type numbers to formats: the static table plus what was
/// registered for 96..=127 (from SDP, say).
///
/// ```
/// use callrec_rtp::{EncodingName, PayloadFormat, PayloadTypes};
/// use core::time::Duration;
///
/// let mut types = PayloadTypes::new();
/// assert_eq!(types.get(9).unwrap().clock_rate, 8000); // G722
/// assert_eq!(types.get(8).unwrap().samples_per(Duration::from_millis(20)), 160);
/// types.register(PayloadFormat::new(111, EncodingName::new("opus")?, 48000, 2))?;
/// assert_eq!(types.get(111).unwrap().encoding, "opus");
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct PayloadTypes {
    dynamic: [Option<PayloadFormat>; 32],
}

impl PayloadTypes {
    /// The static table only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a dynamic type, replacing an earlier registration.
    ///
    /// # Errors
    /// [`NotDynamic`] outside 96..=127.
    pub fn register(&mut self, format: PayloadFormat) -> Result<(), NotDynamic> {
        let pt = format.payload_type;
        if !(DYNAMIC_FIRST..=DYNAMIC_LAST).contains(&pt) {
            return Err(NotDynamic(pt));
        }
        self.dynamic[usize::from(pt - DYNAMIC_FIRST)] = Some(format);
        Ok(())
    }

    /// The format of `payload_type`, if known.
    pub fn get(&self, payload_type: u8) -> Option<&PayloadFormat> {
        if payload_type >= DYNAMIC_FIRST {
            self.dynamic
                .get(usize::from(payload_type - DYNAMIC_FIRST))?
                .as_ref()
        } else {
            static_format(payload_type)
        }
    }
}

/// The RFC 3551 static format of `payload_type`, if it has one.
fn static_format(payload_type: u8) -> Option<&'static PayloadFormat> {
    STATIC_AUDIO.iter().find(|f| f.payload_type == payload_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn static_table() {
        let t = PayloadTypes::new();
        for (pt, name, rate) in [
            (0, "PCMU", 8000),
            (8, "PCMA", 8000),
            (9, "G722", 8000),
            (18, "G729", 8000),
        ] {
            let f = t.get(pt).unwrap();
            assert_eq!((f.encoding.as_str(), f.clock_rate), (name, rate));
        }
        assert_eq!(t.get(1), None);
        assert_eq!(t.get(96), None);
        assert_eq!(t.get(200), None);
        assert_eq!(
            PayloadFormat::G722.samples_per(Duration::from_millis(20)),
            160
        );
        assert_eq!(
            PayloadFormat::PCMU.samples_per(Duration::from_millis(30)),
            240
        );
    }

    fn name(s: &str) -> EncodingName {
        EncodingName::new(s).unwrap()
    }

    #[test]
    fn encoding_names_are_bounded_visible_ascii() {
        assert_eq!(
            EncodingName::new("telephone-event").unwrap(),
            "telephone-event"
        );
        assert!(
            EncodingName::new("OPUS")
                .unwrap()
                .eq_ignore_ascii_case("opus")
        );
        for bad in ["", "a b", "x\r", &"x".repeat(33)] {
            let e = EncodingName::new(bad).unwrap_err();
            assert_eq!(e.len, bad.len());
        }
        assert_eq!(
            EncodingName::new("").unwrap_err().to_string(),
            "an encoding name of 0 bytes: it must be 1..=32 bytes of visible ASCII"
        );
        assert!(EncodingName::new(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn dynamic_registration() {
        let mut t = PayloadTypes::new();
        assert_eq!(
            t.register(PayloadFormat::new(8, name("X"), 1, 1)),
            Err(NotDynamic(8))
        );
        assert_eq!(
            t.register(PayloadFormat::new(128, name("X"), 1, 1)),
            Err(NotDynamic(128))
        );
        t.register(PayloadFormat::new(127, name("telephone-event"), 8000, 1))
            .unwrap();
        assert_eq!(t.get(127).unwrap().encoding, "telephone-event");
        t.register(PayloadFormat::new(127, name("red"), 8000, 1))
            .unwrap();
        assert_eq!(t.get(127).unwrap().encoding, "red");
    }
}
