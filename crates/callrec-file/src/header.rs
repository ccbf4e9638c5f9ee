//! The 76-byte header, the codec name it starts with, and the timeline it implies.

use core::fmt;
use core::num::{NonZeroU16, NonZeroU32};
use core::time::Duration;

use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{le_i32, le_u32};

use crate::ParseError;

/// Length of the header: `char codec[64]`, three 32-bit integers.
pub const HEADER_LEN: usize = 76;

/// Length of the NUL-padded codec field.
pub const CODEC_FIELD_LEN: usize = 64;

/// Header fields to read a recording with instead of its own, when they
/// are damaged (a corrupted codec name, a zero `rtpLen`): what an operator
/// who knows how the phone recorded can tell the reader.
///
/// ```
/// use core::num::NonZeroU16;
/// use callrec_file::{Codec, Header, HeaderOverrides, HEADER_LEN};
///
/// let mut bytes = [0u8; HEADER_LEN]; // all zero: no codec, rtpLen 0
/// let overrides = HeaderOverrides::new()
///     .codec(Some(Codec::Pcmu))
///     .rtp_len(NonZeroU16::new(160))
///     .increment(NonZeroU16::new(160));
/// assert!(Header::parse(&bytes).is_err());
/// overrides.apply(&mut bytes);
/// let header = Header::parse(&bytes)?;
/// assert_eq!(header.codec().codec(), Some(Codec::Pcmu));
/// assert_eq!((header.rtp_len(), header.increment()), (160, 160));
/// # Ok::<(), callrec_file::ParseError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderOverrides {
    /// The codec, instead of the `codec` field.
    pub codec: Option<Codec>,
    /// The frame length in bytes, instead of `rtpLen`.
    pub rtp_len: Option<NonZeroU16>,
    /// The RTP timestamp increment per frame, instead of `increment`.
    pub increment: Option<NonZeroU16>,
}

impl HeaderOverrides {
    /// No field overridden.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the codec to read with.
    #[must_use]
    pub fn codec(mut self, codec: Option<Codec>) -> Self {
        self.codec = codec;
        self
    }

    /// Sets the frame length to read with.
    #[must_use]
    pub fn rtp_len(mut self, rtp_len: Option<NonZeroU16>) -> Self {
        self.rtp_len = rtp_len;
        self
    }

    /// Sets the timestamp increment to read with.
    #[must_use]
    pub fn increment(mut self, increment: Option<NonZeroU16>) -> Self {
        self.increment = increment;
        self
    }

    /// Writes the overridden fields into a header's bytes (`dataSize` is
    /// never touched).
    pub fn apply(&self, header: &mut [u8; HEADER_LEN]) {
        if let Some(codec) = self.codec {
            let name = codec.as_str().as_bytes();
            let field = &mut header[field::CODEC];
            field.fill(0);
            field[..name.len()].copy_from_slice(name);
        }
        if let Some(len) = self.rtp_len {
            header[field::RTP_LEN].copy_from_slice(&i32::from(len.get()).to_le_bytes());
        }
        if let Some(increment) = self.increment {
            header[field::INCREMENT].copy_from_slice(&i32::from(increment.get()).to_le_bytes());
        }
    }
}

/// Byte ranges of the header fields.
pub(crate) mod field {
    use core::ops::Range;

    pub(crate) const CODEC: Range<usize> = 0..64;
    pub(crate) const RTP_LEN: Range<usize> = 64..68;
    pub(crate) const INCREMENT: Range<usize> = 68..72;
    pub(crate) const DATA_SIZE: Range<usize> = 72..76;
}

/// The codecs whose RTP clock rate is known, so a duration can be computed.
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
    /// The canonical name written in the codec field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pcma => "PCMA",
            Self::Pcmu => "PCMU",
            Self::G722 => "G722",
        }
    }

    /// The RTP clock rate: 8000 for all three.
    ///
    /// G.722 samples at 16 kHz, but RFC 3551 §4.5.2 fixes its RTP clock at
    /// 8000 Hz "for historical reasons", so `increment` counts 8 kHz ticks.
    pub const fn clock_rate(self) -> NonZeroU32 {
        const RTP_CLOCK_8000: NonZeroU32 = NonZeroU32::new(8000).unwrap();
        RTP_CLOCK_8000
    }

    /// The static RTP payload type (RFC 3551): 8, 0 or 9. The shared key
    /// between the crates' codec types (`callrec_control::Codec`,
    /// `callrec_audio::Law`, `callrec_rtp::PayloadFormat`).
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

    /// Recognises a codec name case-insensitively, ignoring surrounding
    /// spaces; `None` for any other name.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim_matches(' ');
        [Self::Pcma, Self::Pcmu, Self::G722]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A codec name as stored in the header: 1 to 64 bytes of printable ASCII.
///
/// Stored inline (no allocation) so [`Header`] stays `Copy` and usable
/// without `alloc`. Names built with [`CodecName::new`] are at most 63 bytes
/// so a NUL always terminates them; a 64-byte unterminated name is accepted
/// only when read from a file.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodecName {
    // Bytes past `len` are always zero, so the derived comparisons are exact.
    bytes: [u8; CODEC_FIELD_LEN],
    len: u8,
}

impl CodecName {
    /// `PCMA`.
    pub const PCMA: Self = Self::from_static(b"PCMA");
    /// `PCMU`.
    pub const PCMU: Self = Self::from_static(b"PCMU");
    /// `G722`.
    pub const G722: Self = Self::from_static(b"G722");

    const fn from_static(name: &[u8]) -> Self {
        let mut bytes = [0; CODEC_FIELD_LEN];
        let mut i = 0;
        while i < name.len() {
            bytes[i] = name[i];
            i += 1;
        }
        Self {
            bytes,
            len: name.len() as u8,
        }
    }

    /// A codec name for writing: 1..=63 bytes of printable ASCII.
    ///
    /// # Errors
    /// [`ParseError::EmptyCodecName`], [`ParseError::CodecNameTooLong`] or
    /// [`ParseError::CodecNameByte`] naming the offending byte.
    pub fn new(name: &str) -> Result<Self, ParseError> {
        if name.len() >= CODEC_FIELD_LEN {
            return Err(ParseError::CodecNameTooLong { len: name.len() });
        }
        Self::from_field_bytes(name.as_bytes())
    }

    /// Validates name bytes (without padding) read from or destined for the field.
    fn from_field_bytes(name: &[u8]) -> Result<Self, ParseError> {
        if name.is_empty() {
            return Err(ParseError::EmptyCodecName);
        }
        if let Some((offset, &byte)) = name
            .iter()
            .enumerate()
            .find(|&(_, &b)| !(0x20..=0x7e).contains(&b))
        {
            return Err(ParseError::CodecNameByte { offset, byte });
        }
        let mut bytes = [0; CODEC_FIELD_LEN];
        bytes[..name.len()].copy_from_slice(name);
        Ok(Self {
            bytes,
            len: name.len() as u8,
        })
    }

    /// Reads the 64-byte field: the name ends at the first NUL, or fills the
    /// field. Bytes after the NUL are ignored (firmware that `strcpy`s into
    /// an uninitialised struct leaves garbage there).
    fn parse_field(field: &[u8]) -> Result<Self, ParseError> {
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        Self::from_field_bytes(&field[..end])
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever stored, so this cannot fail.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The name's bytes, without padding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The known codec this name denotes, if any.
    pub fn codec(&self) -> Option<Codec> {
        Codec::from_name(self.as_str())
    }

    /// Whether the name is short enough to be written (1..=63 bytes).
    pub fn is_writable(&self) -> bool {
        usize::from(self.len) < CODEC_FIELD_LEN
    }
}

impl From<Codec> for CodecName {
    fn from(codec: Codec) -> Self {
        match codec {
            Codec::Pcma => Self::PCMA,
            Codec::Pcmu => Self::PCMU,
            Codec::G722 => Self::G722,
        }
    }
}

impl fmt::Display for CodecName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CodecName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CodecName").field(&self.as_str()).finish()
    }
}

/// The recording header, validated: codec name, `rtpLen`, `increment`,
/// `dataSize`.
///
/// `rtpLen` and `increment` are 1..=65535 by construction, so every derived
/// value (frame count, duration, offsets) is computed without a failure
/// path. `dataSize` is kept as read; [`Recording`](crate::Recording) and the
/// reader check it against the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    codec: CodecName,
    rtp_len: NonZeroU16,
    increment: NonZeroU16,
    data_size: u32,
}

impl Header {
    /// A header for a new recording, with `dataSize` 0.
    ///
    /// # Errors
    /// [`ParseError::CodecNameTooLong`] for a 64-byte (unterminated) name,
    /// [`ParseError::RtpLenOutOfRange`] or [`ParseError::IncrementOutOfRange`]
    /// for 0.
    pub fn new(codec: CodecName, rtp_len: u16, increment: u16) -> Result<Self, ParseError> {
        if !codec.is_writable() {
            return Err(ParseError::CodecNameTooLong {
                len: codec.as_bytes().len(),
            });
        }
        Ok(Self {
            codec,
            rtp_len: NonZeroU16::new(rtp_len).ok_or(ParseError::RtpLenOutOfRange { value: 0 })?,
            increment: NonZeroU16::new(increment)
                .ok_or(ParseError::IncrementOutOfRange { value: 0 })?,
            data_size: 0,
        })
    }

    /// The same header with another `dataSize`.
    #[must_use]
    pub const fn with_data_size(mut self, data_size: u32) -> Self {
        self.data_size = data_size;
        self
    }

    /// Parses the header from the first 76 bytes of `buf`; later bytes are
    /// not looked at.
    ///
    /// # Errors
    /// [`ParseError::TruncatedHeader`] if `buf` is shorter than 76 bytes; a
    /// codec-name, `rtpLen` or `increment` error naming the value found.
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        let truncated = ParseError::TruncatedHeader {
            expected: HEADER_LEN,
            actual: buf.len(),
        };
        let (_, (codec, rtp_len, increment, data_size)) =
            (take(CODEC_FIELD_LEN), le_i32, le_i32, le_u32)
                .parse(buf)
                .map_err(|_: nom::Err<nom::error::Error<&[u8]>>| truncated)?;
        let codec = CodecName::parse_field(codec)?;
        let rtp_len = u16::try_from(rtp_len)
            .ok()
            .and_then(NonZeroU16::new)
            .ok_or(ParseError::RtpLenOutOfRange {
                value: rtp_len.into(),
            })?;
        let increment = u16::try_from(increment)
            .ok()
            .and_then(NonZeroU16::new)
            .ok_or(ParseError::IncrementOutOfRange {
                value: increment.into(),
            })?;
        Ok(Self {
            codec,
            rtp_len,
            increment,
            data_size,
        })
    }

    /// Writes the header as a little-endian C firmware lays out the struct:
    /// the name NUL-padded to 64 bytes, then `rtpLen`, `increment`,
    /// `dataSize`. Cannot fail.
    ///
    /// This is the exact inverse of [`Header::parse`] (apart from bytes after
    /// a name's NUL, which are written as zero). A 64-byte name can only come
    /// from parsing; the [`Writer`](crate::Writer) refuses to start a
    /// recording with one.
    pub fn write(&self, buf: &mut [u8; HEADER_LEN]) {
        buf[field::CODEC].fill(0);
        buf[..self.codec.as_bytes().len()].copy_from_slice(self.codec.as_bytes());
        buf[field::RTP_LEN].copy_from_slice(&u32::from(self.rtp_len.get()).to_le_bytes());
        buf[field::INCREMENT].copy_from_slice(&u32::from(self.increment.get()).to_le_bytes());
        buf[field::DATA_SIZE].copy_from_slice(&self.data_size.to_le_bytes());
    }

    /// The header as bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut buf = [0; HEADER_LEN];
        self.write(&mut buf);
        buf
    }

    /// The codec name.
    pub const fn codec(&self) -> &CodecName {
        &self.codec
    }

    /// `rtpLen`: bytes per frame (one RTP payload, no RTP header).
    pub const fn rtp_len(&self) -> u16 {
        self.rtp_len.get()
    }

    /// `increment`: RTP timestamp ticks per frame.
    pub const fn increment(&self) -> u16 {
        self.increment.get()
    }

    /// `dataSize`: bytes of frame data the header claims.
    pub const fn data_size(&self) -> u32 {
        self.data_size
    }

    /// Whole frames in `dataSize`.
    pub fn frame_count(&self) -> u32 {
        self.data_size / NonZeroU32::from(self.rtp_len)
    }

    /// Byte offset of frame `index` from the start of the file (the end of
    /// the data for `index == frame_count()`).
    pub fn frame_offset(&self, index: u32) -> u64 {
        HEADER_LEN as u64 + u64::from(index) * u64::from(self.rtp_len.get())
    }

    /// The clock rate of a known codec.
    pub fn clock_rate(&self) -> Option<NonZeroU32> {
        self.codec.codec().map(Codec::clock_rate)
    }

    /// The timeline of a known codec (`None` for other names; use
    /// [`Header::timeline_with_clock`]).
    pub fn timeline(&self) -> Option<Timeline> {
        self.clock_rate().map(|rate| self.timeline_with_clock(rate))
    }

    /// The timeline at a caller-supplied RTP clock rate.
    pub fn timeline_with_clock(&self, clock_rate: NonZeroU32) -> Timeline {
        Timeline {
            clock_rate,
            increment: self.increment,
            frames: self.frame_count(),
        }
    }

    /// Duration of a known codec: frames × increment / clock rate.
    pub fn duration(&self) -> Option<Duration> {
        self.timeline().map(|t| t.duration())
    }
}

/// Maps between frame indices and media time for one recording.
///
/// Frame `i` starts at `i × increment / clock_rate` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    clock_rate: NonZeroU32,
    increment: NonZeroU16,
    frames: u32,
}

impl Timeline {
    /// The RTP clock rate used.
    pub const fn clock_rate(&self) -> NonZeroU32 {
        self.clock_rate
    }

    /// Frames in the recording.
    pub const fn frames(&self) -> u32 {
        self.frames
    }

    /// Total RTP clock ticks: frames × increment.
    pub fn ticks(&self) -> u64 {
        u64::from(self.frames) * u64::from(self.increment.get())
    }

    /// The playing time.
    pub fn duration(&self) -> Duration {
        ticks_to_duration(self.ticks(), self.clock_rate)
    }

    /// When frame `index` starts (rounded up to the nanosecond); indices past
    /// the end give the duration.
    pub fn time_of_frame(&self, index: u32) -> Duration {
        let index = index.min(self.frames);
        ticks_to_duration(
            u64::from(index) * u64::from(self.increment.get()),
            self.clock_rate,
        )
    }

    /// The frame playing at `time` (rounding down), or
    /// [`frames()`](Self::frames) (the end) at or past the duration.
    pub fn frame_at(&self, time: Duration) -> u32 {
        let ticks = time.as_nanos() * u128::from(self.clock_rate.get()) / 1_000_000_000;
        let frame = ticks / u128::from(self.increment.get());
        u32::try_from(frame).map_or(self.frames, |f| f.min(self.frames))
    }
}

/// `ticks / rate` seconds, rounded up to the nanosecond (exact at 8000 Hz).
///
/// Rounding up makes `frame_at(time_of_frame(i)) == i` for every clock rate up
/// to 1 GHz, so seeking to the start time of a frame lands on that frame.
pub(crate) fn ticks_to_duration(ticks: u64, rate: NonZeroU32) -> Duration {
    let rate64 = u64::from(rate.get());
    let secs = ticks / rate64;
    // rem < rate <= u32::MAX, so rem * 1e9 < 2^62: no overflow.
    let nanos = ((ticks % rate64) * 1_000_000_000).div_ceil(rate64);
    // nanos <= 1e9; Duration::new carries a full second into `secs`.
    Duration::new(secs, nanos as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// `struct { char codec[64]; int32_t rtpLen; int32_t increment; uint32_t dataSize; }`
    /// as `fwrite` puts it on disk on a little-endian CPU after
    /// `memset(&h, 0, sizeof h); strcpy(h.codec, "PCMA"); h.rtpLen = 160;
    /// h.increment = 160; h.dataSize = 320;`.
    const C_HEADER_BYTES: [u8; 76] = [
        b'P', b'C', b'M', b'A', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        0xa0, 0x00, 0x00, 0x00, // rtpLen 160
        0xa0, 0x00, 0x00, 0x00, // increment 160
        0x40, 0x01, 0x00, 0x00, // dataSize 320
    ];

    fn with_field(range: core::ops::Range<usize>, value: &[u8]) -> [u8; 76] {
        let mut b = C_HEADER_BYTES;
        b[range].copy_from_slice(value);
        b
    }

    #[test]
    fn test_deconstruct() {
        let h = Header::parse(&C_HEADER_BYTES).unwrap();
        assert_eq!(h.codec().as_str(), "PCMA");
        assert_eq!(h.codec().codec(), Some(Codec::Pcma));
        assert_eq!(h.rtp_len(), 160);
        assert_eq!(h.increment(), 160);
        assert_eq!(h.data_size(), 320);
        assert_eq!(h.frame_count(), 2);
        assert_eq!(h.frame_offset(1), 76 + 160);
        assert_eq!(h.duration(), Some(Duration::from_millis(40)));
    }

    #[test]
    fn test_construct() {
        let h = Header::new(CodecName::PCMA, 160, 160)
            .unwrap()
            .with_data_size(320);
        assert_eq!(h.to_bytes(), C_HEADER_BYTES);
    }

    #[test]
    fn garbage_after_nul_is_ignored() {
        let mut b = C_HEADER_BYTES;
        b[5..64].fill(0xcc);
        let h = Header::parse(&b).unwrap();
        assert_eq!(h.codec().as_str(), "PCMA");
        assert_eq!(h.to_bytes(), C_HEADER_BYTES);
    }

    #[test]
    fn unterminated_64_byte_name_is_read_not_written() {
        let b = with_field(field::CODEC, &[b'X'; 64]);
        let h = Header::parse(&b).unwrap();
        assert_eq!(h.codec().as_bytes().len(), 64);
        assert!(!h.codec().is_writable());
        assert_eq!(h.codec().codec(), None);
        assert_eq!(h.duration(), None);
        assert_eq!(
            Header::new(*h.codec(), 160, 160),
            Err(ParseError::CodecNameTooLong { len: 64 })
        );
    }

    #[test]
    fn short_header() {
        assert_eq!(
            Header::parse(&C_HEADER_BYTES[..75]),
            Err(ParseError::TruncatedHeader {
                expected: 76,
                actual: 75
            })
        );
        assert_eq!(
            Header::parse(&[]),
            Err(ParseError::TruncatedHeader {
                expected: 76,
                actual: 0
            })
        );
    }

    #[test]
    fn bad_rtp_len() {
        for (value, bytes) in [
            (-5, (-5i32).to_le_bytes()),
            (0, 0i32.to_le_bytes()),
            (65536, 65536i32.to_le_bytes()),
            (i64::from(i32::MIN), i32::MIN.to_le_bytes()),
        ] {
            let e = Header::parse(&with_field(field::RTP_LEN, &bytes)).unwrap_err();
            assert_eq!(e, ParseError::RtpLenOutOfRange { value });
        }
        let e = Header::parse(&with_field(field::RTP_LEN, &(-5i32).to_le_bytes())).unwrap_err();
        assert_eq!(e.to_string(), "rtpLen must be 1..=65535, got -5");
        let e = Header::parse(&with_field(field::RTP_LEN, &160i32.to_be_bytes())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rtpLen must be 1..=65535, got -1610612736 \
             (reads as 160 big-endian: written by a big-endian CPU?)"
        );
        let h = Header::parse(&with_field(field::RTP_LEN, &65535i32.to_le_bytes())).unwrap();
        assert_eq!(h.rtp_len(), 65535);
    }

    #[test]
    fn bad_increment() {
        let e = Header::parse(&with_field(field::INCREMENT, &0i32.to_le_bytes())).unwrap_err();
        assert_eq!(e, ParseError::IncrementOutOfRange { value: 0 });
        assert_eq!(e.to_string(), "increment must be 1..=65535, got 0");
        let e = Header::parse(&with_field(field::INCREMENT, &70000i32.to_le_bytes())).unwrap_err();
        assert_eq!(e, ParseError::IncrementOutOfRange { value: 70000 });
    }

    #[test]
    fn bad_codec_names() {
        let e = Header::parse(&with_field(0..4, &[0, 0, 0, 0])).unwrap_err();
        assert_eq!(e, ParseError::EmptyCodecName);
        let e = Header::parse(&with_field(0..4, "PCé".as_bytes())).unwrap_err();
        assert_eq!(
            e,
            ParseError::CodecNameByte {
                offset: 2,
                byte: 0xc3
            }
        );
        assert_eq!(
            e.to_string(),
            "codec name byte 2 is 0xc3, not printable ASCII (0x20..=0x7e)"
        );
        let e = Header::parse(&with_field(0..4, b"PC\nA")).unwrap_err();
        assert_eq!(
            e,
            ParseError::CodecNameByte {
                offset: 2,
                byte: b'\n'
            }
        );
        assert_eq!(CodecName::new(""), Err(ParseError::EmptyCodecName));
        assert_eq!(
            CodecName::new(&"A".repeat(64)),
            Err(ParseError::CodecNameTooLong { len: 64 })
        );
        assert_eq!(
            CodecName::new(&"A".repeat(63)).unwrap().as_bytes().len(),
            63
        );
    }

    #[test]
    fn codec_lookup_is_liberal() {
        assert_eq!(Codec::from_name("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_name("G722  "), Some(Codec::G722));
        assert_eq!(Codec::from_name("G729"), None);
        assert_eq!(CodecName::from(Codec::G722), CodecName::G722);
        assert_eq!(Codec::G722.clock_rate().get(), 8000);
    }

    #[test]
    fn zero_lengths_refused_for_writing() {
        assert_eq!(
            Header::new(CodecName::PCMU, 0, 160),
            Err(ParseError::RtpLenOutOfRange { value: 0 })
        );
        assert_eq!(
            Header::new(CodecName::PCMU, 160, 0),
            Err(ParseError::IncrementOutOfRange { value: 0 })
        );
    }

    #[test]
    fn timeline_maps_frames_and_time() {
        // G.722 at 64 kbit/s, 20 ms frames: 160 bytes, increment 160 at the 8 kHz RTP clock.
        let h = Header::new(CodecName::G722, 160, 160)
            .unwrap()
            .with_data_size(160 * 150);
        let t = h.timeline().unwrap();
        assert_eq!(t.frames(), 150);
        assert_eq!(t.duration(), Duration::from_secs(3));
        assert_eq!(t.time_of_frame(50), Duration::from_secs(1));
        assert_eq!(t.time_of_frame(1000), Duration::from_secs(3));
        assert_eq!(t.frame_at(Duration::from_millis(1019)), 50);
        assert_eq!(t.frame_at(Duration::from_millis(1020)), 51);
        assert_eq!(t.frame_at(Duration::from_secs(3)), 150);
        assert_eq!(t.frame_at(Duration::MAX), 150);
        // Unknown codec: only with a caller-supplied clock.
        let h = Header::new(CodecName::new("opus").unwrap(), 100, 960)
            .unwrap()
            .with_data_size(1000);
        assert_eq!(h.timeline(), None);
        let t = h.timeline_with_clock(NonZeroU32::new(48_000).unwrap());
        assert_eq!(t.duration(), Duration::from_millis(200));
    }

    #[test]
    fn largest_timeline_does_not_overflow() {
        let h = Header::new(CodecName::PCMA, 1, 65535)
            .unwrap()
            .with_data_size(u32::MAX);
        let t = h.timeline_with_clock(NonZeroU32::MIN);
        assert_eq!(t.ticks(), u64::from(u32::MAX) * 65535);
        assert_eq!(
            t.duration(),
            Duration::from_secs(u64::from(u32::MAX) * 65535)
        );
        assert_eq!(t.frame_at(Duration::MAX), u32::MAX);
        let t = h.timeline_with_clock(NonZeroU32::MAX);
        assert_eq!(t.frame_at(t.duration()), t.frames());
    }
}
