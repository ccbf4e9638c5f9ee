//! Payload types: the RFC 3551 static audio table and registrable dynamic
//! types.

use alloc::borrow::Cow;
use core::fmt;
use core::time::Duration;

/// What a payload type carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PayloadFormat {
    /// The payload type number.
    pub payload_type: u8,
    /// Encoding name as in SDP `a=rtpmap` (`PCMA`, `G722`, …).
    pub encoding: Cow<'static, str>,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels.
    pub channels: u8,
}

impl PayloadFormat {
    /// A format (for dynamic types).
    pub fn new(
        payload_type: u8,
        encoding: impl Into<Cow<'static, str>>,
        clock_rate: u32,
        channels: u8,
    ) -> Self {
        Self {
            payload_type,
            encoding: encoding.into(),
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
            encoding: Cow::Borrowed(encoding),
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
/// use callrec_rtp::{PayloadFormat, PayloadTypes};
/// use core::time::Duration;
///
/// let mut types = PayloadTypes::new();
/// assert_eq!(types.get(9).unwrap().clock_rate, 8000); // G722
/// assert_eq!(types.get(8).unwrap().samples_per(Duration::from_millis(20)), 160);
/// types.register(PayloadFormat::new(111, "opus", 48000, 2))?;
/// assert_eq!(types.get(111).unwrap().encoding, "opus");
/// # Ok::<(), callrec_rtp::NotDynamic>(())
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
            STATIC_AUDIO.iter().find(|f| f.payload_type == payload_type)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!((f.encoding.as_ref(), f.clock_rate), (name, rate));
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

    #[test]
    fn dynamic_registration() {
        let mut t = PayloadTypes::new();
        assert_eq!(
            t.register(PayloadFormat::new(8, "X", 1, 1)),
            Err(NotDynamic(8))
        );
        assert_eq!(
            t.register(PayloadFormat::new(128, "X", 1, 1)),
            Err(NotDynamic(128))
        );
        t.register(PayloadFormat::new(127, "telephone-event", 8000, 1))
            .unwrap();
        assert_eq!(t.get(127).unwrap().encoding, "telephone-event");
        t.register(PayloadFormat::new(127, "red", 8000, 1)).unwrap();
        assert_eq!(t.get(127).unwrap().encoding, "red");
    }
}
