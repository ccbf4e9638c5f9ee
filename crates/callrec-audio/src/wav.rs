//! RIFF/WAVE headers: the formats callrec writes, and a strict parser for
//! the WAV files it reads.
//!
//! Everything here works on byte slices (`no_std`); the streaming writer is
//! [`WavWriter`](crate::WavWriter) (feature `std`).

use core::fmt;
use core::time::Duration;

use crate::g711::Law;

/// `WAVE_FORMAT_PCM`.
pub const FORMAT_PCM: u16 = 1;
/// `WAVE_FORMAT_ALAW`.
pub const FORMAT_ALAW: u16 = 6;
/// `WAVE_FORMAT_MULAW`.
pub const FORMAT_MULAW: u16 = 7;
/// `WAVE_FORMAT_EXTENSIBLE`: the real tag is in the sub-format GUID.
pub const FORMAT_EXTENSIBLE: u16 = 0xfffe;

/// The longest header [`WavSpec::write_header`] writes (G.711 with more
/// than two channels: `WAVE_FORMAT_EXTENSIBLE` and `fact`).
pub const MAX_HEADER_LEN: usize = 80;

/// Most channels a [`WavSpec`] holds: one per recorded stream (a SIPREC
/// session with up to eight).
pub const MAX_CHANNELS: u16 = 8;

/// Chunks looked at before the `data` chunk; more is an error.
pub const MAX_CHUNKS: usize = 64;

/// The tail every `KSDATAFORMAT_SUBTYPE_*` GUID shares after its 16-bit tag.
const GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71,
];

/// How the samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SampleFormat {
    /// Signed 16-bit little-endian PCM (tag 1).
    Pcm16,
    /// G.711 A-law, one byte per sample (tag 6).
    Alaw,
    /// G.711 µ-law, one byte per sample (tag 7).
    Ulaw,
}

impl SampleFormat {
    /// The `wFormatTag` written for this format.
    pub const fn tag(self) -> u16 {
        match self {
            Self::Pcm16 => FORMAT_PCM,
            Self::Alaw => FORMAT_ALAW,
            Self::Ulaw => FORMAT_MULAW,
        }
    }

    /// Bytes per sample of one channel.
    pub const fn bytes_per_sample(self) -> u16 {
        match self {
            Self::Pcm16 => 2,
            Self::Alaw | Self::Ulaw => 1,
        }
    }

    /// The G.711 law, for the two companded formats.
    pub const fn law(self) -> Option<Law> {
        match self {
            Self::Pcm16 => None,
            Self::Alaw => Some(Law::Alaw),
            Self::Ulaw => Some(Law::Ulaw),
        }
    }

    /// The format of a G.711 law.
    pub const fn from_law(law: Law) -> Self {
        match law {
            Law::Alaw => Self::Alaw,
            Law::Ulaw => Self::Ulaw,
        }
    }
}

impl fmt::Display for SampleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pcm16 => "16-bit PCM",
            Self::Alaw => "A-law",
            Self::Ulaw => "µ-law",
        })
    }
}

/// Format, rate and channel count of a WAV file callrec writes or reads.
///
/// Only what call recording needs is representable: PCM16 at 8 or 16 kHz
/// and G.711 at 8 kHz, 1 to [`MAX_CHANNELS`] channels (one call direction
/// or one recorded stream per channel). More than two channels are written
/// as `WAVE_FORMAT_EXTENSIBLE` with no speaker positions (channel mask 0),
/// as the format asks for more than two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WavSpec {
    format: SampleFormat,
    sample_rate: u32,
    channels: u16,
}

impl WavSpec {
    /// A checked spec.
    ///
    /// # Errors
    /// [`WavParseError::UnsupportedRate`] unless the rate is 8000 or 16000
    /// (8000 only for G.711); [`WavParseError::UnsupportedChannels`] unless
    /// there are 1 to [`MAX_CHANNELS`] channels.
    pub const fn new(
        format: SampleFormat,
        sample_rate: u32,
        channels: u16,
    ) -> Result<Self, WavParseError> {
        let rate_ok = match format {
            SampleFormat::Pcm16 => sample_rate == 8000 || sample_rate == 16000,
            SampleFormat::Alaw | SampleFormat::Ulaw => sample_rate == 8000,
        };
        if !rate_ok {
            return Err(WavParseError::UnsupportedRate {
                format,
                sample_rate,
            });
        }
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(WavParseError::UnsupportedChannels { channels });
        }
        Ok(Self {
            format,
            sample_rate,
            channels,
        })
    }

    /// 8 kHz mono G.711, as phones record.
    pub const fn g711(law: Law) -> Self {
        Self {
            format: SampleFormat::from_law(law),
            sample_rate: 8000,
            channels: 1,
        }
    }

    /// Mono PCM16 at 8 kHz (G.711 decoded) or 16 kHz (G.722 decoded).
    pub const fn pcm16_mono(wideband: bool) -> Self {
        Self {
            format: SampleFormat::Pcm16,
            sample_rate: if wideband { 16000 } else { 8000 },
            channels: 1,
        }
    }

    /// The same spec with two channels.
    #[must_use]
    pub const fn stereo(mut self) -> Self {
        self.channels = 2;
        self
    }

    /// The sample format.
    pub const fn format(&self) -> SampleFormat {
        self.format
    }

    /// Samples per second per channel.
    pub const fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// 1 to [`MAX_CHANNELS`].
    pub const fn channels(&self) -> u16 {
        self.channels
    }

    /// Bytes per frame (one sample of every channel): `nBlockAlign`.
    pub const fn block_align(&self) -> u16 {
        self.channels * self.format.bytes_per_sample()
    }

    /// Bytes per second: `nAvgBytesPerSec`.
    pub const fn byte_rate(&self) -> u32 {
        self.sample_rate * self.block_align() as u32
    }

    /// The header length [`write_header`](Self::write_header) writes: 58 for
    /// G.711 (18-byte `fmt ` and a `fact` chunk, as ffmpeg and sox write),
    /// 44 for PCM; with more than two channels the `fmt ` chunk is the
    /// 40-byte `WAVE_FORMAT_EXTENSIBLE` one: 80 and 68.
    pub const fn header_len(&self) -> usize {
        match (self.format, self.extensible()) {
            (SampleFormat::Pcm16, false) => 44,
            (SampleFormat::Pcm16, true) => 68,
            (SampleFormat::Alaw | SampleFormat::Ulaw, false) => 58,
            (SampleFormat::Alaw | SampleFormat::Ulaw, true) => 80,
        }
    }

    /// Whether the header is `WAVE_FORMAT_EXTENSIBLE` (more than two
    /// channels).
    pub const fn extensible(&self) -> bool {
        self.channels > 2
    }

    /// The duration of `data_len` bytes of audio (whole frames).
    pub const fn duration_of(&self, data_len: u64) -> Duration {
        let frames = data_len / self.block_align() as u64;
        let rate = self.sample_rate as u64;
        Duration::new(
            frames / rate,
            ((frames % rate) * 1_000_000_000 / rate) as u32,
        )
    }

    /// The largest `data` length a RIFF file of this spec can describe:
    /// whole frames, with room for the pad byte, under 4 GiB.
    pub const fn max_data_len(&self) -> u32 {
        let room = u32::MAX - self.header_len() as u32 - 1;
        room - room % self.block_align() as u32
    }

    /// Writes the header for `data_len` bytes of audio into `buf` and
    /// returns its length ([`header_len`](Self::header_len)). The RIFF size
    /// includes the pad byte an odd `data_len` needs.
    ///
    /// `data_len` above [`max_data_len`](Self::max_data_len) is clamped to
    /// it, so the sizes never wrap.
    pub fn write_header(&self, data_len: u32, buf: &mut [u8; MAX_HEADER_LEN]) -> usize {
        let data_len = data_len.min(self.max_data_len());
        let len = self.header_len();
        let pad = data_len & 1;
        let mut w = Emitter { buf, pos: 0 };
        w.put(b"RIFF");
        w.u32(len as u32 - 8 + data_len + pad);
        w.put(b"WAVE");
        w.put(b"fmt ");
        let g711 = self.format.law().is_some();
        let extensible = self.extensible();
        w.u32(match (extensible, g711) {
            (true, _) => 40,
            (false, true) => 18,
            (false, false) => 16,
        });
        w.u16(if extensible {
            FORMAT_EXTENSIBLE
        } else {
            self.format.tag()
        });
        w.u16(self.channels);
        w.u32(self.sample_rate);
        w.u32(self.byte_rate());
        w.u16(self.block_align());
        let bits = self.format.bytes_per_sample() * 8;
        w.u16(bits);
        if extensible {
            w.u16(22); // cbSize
            w.u16(bits); // wValidBitsPerSample
            w.u32(0); // dwChannelMask: no speaker positions
            w.u16(self.format.tag());
            w.put(&GUID_TAIL);
        } else if g711 {
            w.u16(0); // cbSize
        }
        if g711 {
            w.put(b"fact");
            w.u32(4);
            w.u32(data_len / u32::from(self.block_align()));
        }
        w.put(b"data");
        w.u32(data_len);
        debug_assert_eq!(w.pos, len);
        len
    }
}

impl fmt::Display for WavSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} Hz ", self.format, self.sample_rate)?;
        match self.channels {
            1 => f.write_str("mono"),
            2 => f.write_str("stereo"),
            n => write!(f, "{n} channels"),
        }
    }
}

struct Emitter<'a> {
    buf: &'a mut [u8; MAX_HEADER_LEN],
    pos: usize,
}

impl Emitter<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
}

/// What is wrong with a WAV file (or a spec).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WavParseError {
    /// The input ends inside the named structure.
    Truncated {
        /// What was being read: `"RIFF header"`, `"chunk header"`, ….
        what: &'static str,
        /// Bytes it needed from its start.
        needed: usize,
        /// Bytes there were.
        available: usize,
    },
    /// The file does not start with `RIFF….WAVE`.
    NotRiffWave {
        /// The first four bytes (`RIFX` and `RF64` are named here too).
        found: [u8; 4],
    },
    /// A chunk before `data` claims more bytes than the file has.
    ChunkPastEnd {
        /// The chunk id.
        id: [u8; 4],
        /// Its declared size.
        size: u32,
        /// Bytes left in the file after its header.
        available: usize,
    },
    /// More than [`MAX_CHUNKS`] chunks before `data`.
    TooManyChunks,
    /// The `data` chunk (or the end) came before any `fmt ` chunk.
    MissingFmt,
    /// The file has no `data` chunk.
    MissingData,
    /// A second `fmt ` chunk.
    DuplicateFmt,
    /// The `fmt ` chunk is shorter than its format needs.
    FmtTooShort {
        /// Its size.
        size: u32,
        /// The minimum for the format tag found.
        needed: u32,
    },
    /// A format tag other than PCM, A-law and µ-law.
    UnsupportedFormat {
        /// The tag (for `WAVE_FORMAT_EXTENSIBLE`, the sub-format's).
        tag: u16,
    },
    /// A sub-format GUID that is not a standard `KSDATAFORMAT_SUBTYPE`.
    UnknownSubFormat,
    /// A sample size callrec does not read: PCM must be 16-bit, G.711 8-bit.
    UnsupportedBits {
        /// The format.
        format: SampleFormat,
        /// `wBitsPerSample`.
        bits: u16,
    },
    /// A rate callrec does not read or write.
    UnsupportedRate {
        /// The format.
        format: SampleFormat,
        /// `nSamplesPerSec`.
        sample_rate: u32,
    },
    /// Not 1 to [`MAX_CHANNELS`] channels.
    UnsupportedChannels {
        /// `nChannels`.
        channels: u16,
    },
    /// `nBlockAlign` disagrees with the channels and sample size.
    BlockAlignMismatch {
        /// The value in the file.
        found: u16,
        /// channels × bytes per sample.
        expected: u16,
    },
    /// The `data` chunk claims more than the file holds (strict mode).
    DataPastEnd {
        /// The declared length.
        declared: u32,
        /// Bytes present.
        available: usize,
    },
    /// The `data` length is not a whole number of frames (strict mode).
    PartialFrame {
        /// The data length.
        len: u32,
        /// Bytes per frame.
        block_align: u16,
    },
}

fn fourcc(id: [u8; 4]) -> impl fmt::Display {
    struct Fourcc([u8; 4]);
    impl fmt::Display for Fourcc {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("\"")?;
            for &b in &self.0 {
                if b.is_ascii_graphic() || b == b' ' {
                    write!(f, "{}", b as char)?;
                } else {
                    write!(f, "\\x{b:02x}")?;
                }
            }
            f.write_str("\"")
        }
    }
    Fourcc(id)
}

impl fmt::Display for WavParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "file ends inside the {what}: needs {needed} bytes, {available} present"
            ),
            Self::NotRiffWave { found } => write!(
                f,
                "not a RIFF/WAVE file: starts with {} (RIFX and RF64 are not supported)",
                fourcc(found)
            ),
            Self::ChunkPastEnd {
                id,
                size,
                available,
            } => write!(
                f,
                "chunk {} claims {size} bytes, only {available} follow",
                fourcc(id)
            ),
            Self::TooManyChunks => write!(f, "more than {MAX_CHUNKS} chunks before \"data\""),
            Self::MissingFmt => f.write_str("no \"fmt \" chunk before \"data\""),
            Self::MissingData => f.write_str("no \"data\" chunk"),
            Self::DuplicateFmt => f.write_str("a second \"fmt \" chunk"),
            Self::FmtTooShort { size, needed } => write!(
                f,
                "\"fmt \" chunk is {size} bytes, this format needs at least {needed}"
            ),
            Self::UnsupportedFormat { tag } => write!(
                f,
                "format tag {tag:#06x} is not supported (only PCM 1, A-law 6, µ-law 7)"
            ),
            Self::UnknownSubFormat => {
                f.write_str("WAVE_FORMAT_EXTENSIBLE with a non-standard sub-format GUID")
            }
            Self::UnsupportedBits { format, bits } => write!(
                f,
                "{format} with {bits} bits per sample is not supported (PCM must be 16-bit, G.711 8-bit)"
            ),
            Self::UnsupportedRate {
                format,
                sample_rate,
            } => write!(
                f,
                "{format} at {sample_rate} Hz is not supported (PCM 8000 or 16000 Hz, G.711 8000 Hz)"
            ),
            Self::UnsupportedChannels { channels } => {
                write!(f, "{channels} channels: 1 to {MAX_CHANNELS} are supported")
            }
            Self::BlockAlignMismatch { found, expected } => write!(
                f,
                "block align is {found}, channels × sample size gives {expected}"
            ),
            Self::DataPastEnd {
                declared,
                available,
            } => write!(
                f,
                "data chunk claims {declared} bytes, only {available} present (truncated file? read it in recover mode)"
            ),
            Self::PartialFrame { len, block_align } => write!(
                f,
                "data chunk of {len} bytes is not a whole number of {block_align}-byte frames"
            ),
        }
    }
}

impl core::error::Error for WavParseError {}

/// The parsed header of a WAV file: its spec, where `data` starts and how
/// long it claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavHeader {
    spec: WavSpec,
    data_offset: usize,
    data_len: u32,
}

impl WavHeader {
    /// Parses up to the start of the `data` chunk; its contents are not
    /// needed, so a file can be parsed from its first few hundred bytes.
    ///
    /// Chunks other than `fmt ` and `data` (`LIST`, `fact`, …) are skipped,
    /// with odd sizes padded as RIFF requires. The RIFF size field is not
    /// trusted (streaming writers leave it 0 or `0xffffffff`): the input's
    /// length bounds the walk.
    ///
    /// # Errors
    /// Any [`WavParseError`] about the structure or the format; never a
    /// panic, whatever the input.
    pub fn parse(buf: &[u8]) -> Result<Self, WavParseError> {
        if buf.len() < 12 {
            return Err(WavParseError::Truncated {
                what: "RIFF header",
                needed: 12,
                available: buf.len(),
            });
        }
        let magic = id_at(buf, 0);
        if &magic != b"RIFF" || &buf[8..12] != b"WAVE" {
            return Err(WavParseError::NotRiffWave {
                found: if &magic == b"RIFF" {
                    id_at(buf, 8)
                } else {
                    magic
                },
            });
        }
        let mut spec = None;
        let mut pos = 12;
        for _ in 0..MAX_CHUNKS {
            if buf.len() - pos < 8 {
                return Err(if buf.len() == pos {
                    if spec.is_some() {
                        WavParseError::MissingData
                    } else {
                        WavParseError::MissingFmt
                    }
                } else {
                    WavParseError::Truncated {
                        what: "chunk header",
                        needed: 8,
                        available: buf.len() - pos,
                    }
                });
            }
            let id = id_at(buf, pos);
            let size = u32_at(buf, pos + 4);
            let body = pos + 8;
            let available = buf.len() - body;
            if &id == b"data" {
                let spec = spec.ok_or(WavParseError::MissingFmt)?;
                return Ok(Self {
                    spec,
                    data_offset: body,
                    data_len: size,
                });
            }
            if size as usize > available {
                return Err(WavParseError::ChunkPastEnd {
                    id,
                    size,
                    available,
                });
            }
            if &id == b"fmt " {
                if spec.is_some() {
                    return Err(WavParseError::DuplicateFmt);
                }
                spec = Some(parse_fmt(&buf[body..body + size as usize])?);
            }
            // A missing pad byte at the very end is tolerated.
            pos = (body + size as usize + (size as usize & 1)).min(buf.len());
        }
        Err(WavParseError::TooManyChunks)
    }

    /// The format.
    pub const fn spec(&self) -> WavSpec {
        self.spec
    }

    /// Offset of the first audio byte.
    pub const fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// The `data` chunk's declared length (not checked against the file).
    pub const fn data_len(&self) -> u32 {
        self.data_len
    }
}

fn id_at(buf: &[u8], pos: usize) -> [u8; 4] {
    [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]
}

fn u32_at(buf: &[u8], pos: usize) -> u32 {
    u32::from_le_bytes(id_at(buf, pos))
}

fn u16_at(buf: &[u8], pos: usize) -> u16 {
    u16::from_le_bytes([buf[pos], buf[pos + 1]])
}

fn parse_fmt(body: &[u8]) -> Result<WavSpec, WavParseError> {
    let size = body.len() as u32;
    if size < 16 {
        return Err(WavParseError::FmtTooShort { size, needed: 16 });
    }
    let mut tag = u16_at(body, 0);
    let channels = u16_at(body, 2);
    let sample_rate = u32_at(body, 4);
    let block_align = u16_at(body, 12);
    let bits = u16_at(body, 14);
    if tag == FORMAT_EXTENSIBLE {
        if size < 40 {
            return Err(WavParseError::FmtTooShort { size, needed: 40 });
        }
        if body[26..40] != GUID_TAIL {
            return Err(WavParseError::UnknownSubFormat);
        }
        tag = u16_at(body, 24);
    }
    let format = match tag {
        FORMAT_PCM => SampleFormat::Pcm16,
        FORMAT_ALAW => SampleFormat::Alaw,
        FORMAT_MULAW => SampleFormat::Ulaw,
        _ => return Err(WavParseError::UnsupportedFormat { tag }),
    };
    if bits != format.bytes_per_sample() * 8 {
        return Err(WavParseError::UnsupportedBits { format, bits });
    }
    let spec = WavSpec::new(format, sample_rate, channels)?;
    if block_align != spec.block_align() {
        return Err(WavParseError::BlockAlignMismatch {
            found: block_align,
            expected: spec.block_align(),
        });
    }
    Ok(spec)
}

/// How [`WavFile::parse_with`] treats a `data` chunk that does not match the
/// file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WavReadMode {
    /// The `data` chunk must be present in full and whole frames.
    #[default]
    Strict,
    /// Take the whole frames that are there: for files cut short (a killed
    /// writer, a partial copy) and for streaming writers that leave the size
    /// 0 or `0xffffffff`.
    Recover,
}

/// What [`WavReadMode::Recover`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WavRecovery {
    /// The `data` length the header declared.
    pub declared: u32,
    /// The length used: whole frames actually present.
    pub used: u32,
}

/// A parsed WAV file: spec and audio bytes, borrowed from the input.
///
/// ```
/// use callrec_audio::g711::Law;
/// use callrec_audio::wav::{MAX_HEADER_LEN, WavFile, WavSpec};
///
/// let spec = WavSpec::g711(Law::Alaw);
/// let mut file = [0u8; MAX_HEADER_LEN];
/// let len = spec.write_header(4, &mut file);
/// let mut file = file[..len].to_vec();
/// file.extend_from_slice(&[0xd5, 0xd5, 0x55, 0x2a]);
///
/// let wav = WavFile::parse(&file)?;
/// assert_eq!(wav.spec(), spec);
/// assert_eq!(wav.samples().collect::<Vec<_>>(), [8, 8, -8, -32256]);
/// # Ok::<(), callrec_audio::wav::WavParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavFile<'a> {
    spec: WavSpec,
    data: &'a [u8],
    recovery: Option<WavRecovery>,
}

impl<'a> WavFile<'a> {
    /// Parses a whole file strictly.
    ///
    /// # Errors
    /// As [`WavHeader::parse`], plus [`WavParseError::DataPastEnd`] and
    /// [`WavParseError::PartialFrame`].
    pub fn parse(buf: &'a [u8]) -> Result<Self, WavParseError> {
        Self::parse_with(buf, WavReadMode::Strict)
    }

    /// Parses a whole file in the given mode.
    ///
    /// # Errors
    /// As [`WavHeader::parse`]; in strict mode also
    /// [`WavParseError::DataPastEnd`] and [`WavParseError::PartialFrame`].
    pub fn parse_with(buf: &'a [u8], mode: WavReadMode) -> Result<Self, WavParseError> {
        let header = WavHeader::parse(buf)?;
        let spec = header.spec;
        let block_align = spec.block_align();
        let available = buf.len() - header.data_offset;
        let declared = header.data_len;
        let (len, recovery) = match mode {
            WavReadMode::Strict => {
                if declared as usize > available {
                    return Err(WavParseError::DataPastEnd {
                        declared,
                        available,
                    });
                }
                if declared % u32::from(block_align) != 0 {
                    return Err(WavParseError::PartialFrame {
                        len: declared,
                        block_align,
                    });
                }
                (declared as usize, None)
            }
            WavReadMode::Recover => {
                let present = if declared == 0 || declared == u32::MAX {
                    available
                } else {
                    available.min(declared as usize)
                };
                let present = present.min(spec.max_data_len() as usize);
                let whole = present - present % usize::from(block_align);
                let recovery = (whole != declared as usize).then_some(WavRecovery {
                    declared,
                    used: whole as u32,
                });
                (whole, recovery)
            }
        };
        Ok(Self {
            spec,
            data: &buf[header.data_offset..header.data_offset + len],
            recovery,
        })
    }

    /// The format.
    pub const fn spec(&self) -> WavSpec {
        self.spec
    }

    /// The audio bytes, whole frames.
    pub const fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Frames (samples per channel).
    pub const fn frames(&self) -> u64 {
        (self.data.len() / self.spec.block_align() as usize) as u64
    }

    /// Duration at the file's rate.
    pub const fn duration(&self) -> Duration {
        self.spec.duration_of(self.data.len() as u64)
    }

    /// What recover mode changed, if anything.
    pub const fn recovery(&self) -> Option<WavRecovery> {
        self.recovery
    }

    /// Every sample as PCM16, channels interleaved; G.711 is decoded.
    pub fn samples(&self) -> Samples<'a> {
        Samples {
            format: self.spec.format,
            data: self.data,
        }
    }
}

/// Iterator over a [`WavFile`]'s samples as PCM16; see [`WavFile::samples`].
#[derive(Debug, Clone)]
pub struct Samples<'a> {
    format: SampleFormat,
    data: &'a [u8],
}

impl Iterator for Samples<'_> {
    type Item = i16;

    fn next(&mut self) -> Option<i16> {
        let n = usize::from(self.format.bytes_per_sample());
        let (sample, rest) = self.data.split_at_checked(n)?;
        self.data = rest;
        Some(match self.format.law() {
            Some(law) => law.decode_sample(sample[0]),
            None => i16::from_le_bytes([sample[0], sample[1]]),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.data.len() / usize::from(self.format.bytes_per_sample());
        (n, Some(n))
    }
}

impl ExactSizeIterator for Samples<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    fn header(spec: WavSpec, data_len: u32) -> Vec<u8> {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let len = spec.write_header(data_len, &mut buf);
        buf[..len].to_vec()
    }

    #[test]
    fn alaw_header_bytes_are_what_ffmpeg_writes() {
        // ffmpeg -f lavfi -i anullsrc=r=8000:cl=mono -t 0.001 -c:a pcm_alaw
        //        -bitexact -fflags +bitexact x.wav   (ffmpeg 5.1), first 58 bytes:
        // 18-byte fmt with cbSize 0, then fact, then data.
        let expected: [u8; 58] = [
            b'R', b'I', b'F', b'F', 58, 0, 0, 0, b'W', b'A', b'V', b'E', b'f', b'm', b't', b' ',
            18, 0, 0, 0, 6, 0, 1, 0, 0x40, 0x1f, 0, 0, 0x40, 0x1f, 0, 0, 1, 0, 8, 0, 0, 0, b'f',
            b'a', b'c', b't', 4, 0, 0, 0, 8, 0, 0, 0, b'd', b'a', b't', b'a', 8, 0, 0, 0,
        ];
        assert_eq!(header(WavSpec::g711(Law::Alaw), 8), expected);
    }

    #[test]
    fn odd_data_counts_the_pad_byte_in_the_riff_size() {
        let h = header(WavSpec::g711(Law::Ulaw), 7);
        assert_eq!(u32_at(&h, 4), 58 - 8 + 8);
        assert_eq!(u32_at(&h, 54), 7);
    }

    #[test]
    fn pcm_stereo_header() {
        let spec = WavSpec::pcm16_mono(true).stereo();
        let h = header(spec, 64000);
        assert_eq!(h.len(), 44);
        assert_eq!(u16_at(&h, 22), 2); // channels
        assert_eq!(u32_at(&h, 24), 16000);
        assert_eq!(u32_at(&h, 28), 64000); // byte rate
        assert_eq!(u16_at(&h, 32), 4); // block align
        let parsed = WavHeader::parse(&h).unwrap();
        assert_eq!(
            (parsed.spec(), parsed.data_offset(), parsed.data_len()),
            (spec, 44, 64000)
        );
    }

    #[test]
    fn spec_rejects_rates_and_channels_it_cannot_write() {
        assert_eq!(
            WavSpec::new(SampleFormat::Alaw, 16000, 1)
                .unwrap_err()
                .to_string(),
            "A-law at 16000 Hz is not supported (PCM 8000 or 16000 Hz, G.711 8000 Hz)"
        );
        for channels in [0, MAX_CHANNELS + 1] {
            assert_eq!(
                WavSpec::new(SampleFormat::Pcm16, 8000, channels).unwrap_err(),
                WavParseError::UnsupportedChannels { channels }
            );
        }
        assert_eq!(
            WavParseError::UnsupportedChannels { channels: 9 }.to_string(),
            "9 channels: 1 to 8 are supported"
        );
    }

    #[test]
    fn more_than_two_channels_are_wave_format_extensible() {
        let spec = WavSpec::new(SampleFormat::Alaw, 8000, 3).unwrap();
        let mut buf = [0u8; MAX_HEADER_LEN];
        assert_eq!(spec.write_header(30, &mut buf), 80);
        let expected: [u8; 80] = [
            b'R', b'I', b'F', b'F', 102, 0, 0, 0, b'W', b'A', b'V', b'E', // RIFF, 72 + 30
            b'f', b'm', b't', b' ', 40, 0, 0, 0, 0xfe, 0xff, 3,
            0, // fmt, EXTENSIBLE, 3 channels
            0x40, 0x1f, 0, 0, 0xc0, 0x5d, 0, 0, 3, 0, 8,
            0, // 8000 Hz, 24000 B/s, align 3, 8 bits
            22, 0, 8, 0, 0, 0, 0, 0, // cbSize, valid bits, channel mask 0
            6, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b,
            0x71, // KSDATAFORMAT A-law
            b'f', b'a', b'c', b't', 4, 0, 0, 0, 10, 0, 0, 0, // 10 frames
            b'd', b'a', b't', b'a', 30, 0, 0, 0,
        ];
        assert_eq!(buf, expected);
        let mut file = buf.to_vec();
        file.extend_from_slice(&[0xd5; 30]);
        let parsed = WavFile::parse(&file).unwrap();
        assert_eq!(parsed.spec(), spec);
        assert_eq!(parsed.frames(), 10);
        assert_eq!(spec.to_string(), "A-law 8000 Hz 3 channels");
    }
}
