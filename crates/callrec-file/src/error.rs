//! Errors: [`ParseError`] for the format itself (no_std), [`Error`] for I/O,
//! writing and recording (std).

use core::fmt;

/// What is wrong with a header or with how the body agrees with it.
///
/// Every variant carries the values it found, so a log line says what the
/// file contained, not just that it was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer bytes than the fixed 76-byte header.
    TruncatedHeader {
        /// Bytes the header needs (76).
        expected: usize,
        /// Bytes available.
        actual: usize,
    },
    /// The codec field starts with NUL: no codec name at all.
    EmptyCodecName,
    /// A codec name longer than 63 bytes was given for writing; 63 leaves room
    /// for the terminating NUL that C readers need.
    CodecNameTooLong {
        /// Length of the name offered.
        len: usize,
    },
    /// A codec name byte outside printable ASCII (`0x20..=0x7E`).
    CodecNameByte {
        /// Offset of the byte within the name (and the header).
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// `rtpLen` (bytes per frame) outside `1..=65535`.
    RtpLenOutOfRange {
        /// The value found, as the signed `int32_t` the firmware writes.
        value: i64,
    },
    /// `increment` (RTP timestamp step per frame) outside `1..=65535`.
    IncrementOutOfRange {
        /// The value found, as the signed `int32_t` the firmware writes.
        value: i64,
    },
    /// `dataSize` is not a whole number of `rtpLen`-byte frames.
    DataSizeNotFrameMultiple {
        /// `dataSize` from the header.
        data_size: u32,
        /// `rtpLen` from the header.
        rtp_len: u16,
    },
    /// The header's `dataSize` disagrees with the bytes after the header: a
    /// power cut before the header was patched (`dataSize` 0 or stale), a
    /// body cut short, or trailing bytes. [`ReadMode::Recover`] reads such a
    /// file by trusting the body.
    ///
    /// [`ReadMode::Recover`]: crate::ReadMode::Recover
    DataSizeMismatch {
        /// `dataSize` from the header.
        data_size: u32,
        /// Bytes actually present after the header.
        body_len: u64,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TruncatedHeader { expected, actual } => write!(
                f,
                "file is {actual} bytes, shorter than the {expected}-byte header"
            ),
            Self::EmptyCodecName => {
                f.write_str("codec name is empty (the codec field starts with NUL)")
            }
            Self::CodecNameTooLong { len } => {
                write!(
                    f,
                    "codec name must be 1..=63 bytes to be written, got {len}"
                )
            }
            Self::CodecNameByte { offset, byte } => write!(
                f,
                "codec name byte {offset} is {byte:#04x}, not printable ASCII (0x20..=0x7e)"
            ),
            Self::RtpLenOutOfRange { value } => {
                write!(f, "rtpLen must be 1..=65535, got {value}")?;
                big_endian_hint(f, value)
            }
            Self::IncrementOutOfRange { value } => {
                write!(f, "increment must be 1..=65535, got {value}")?;
                big_endian_hint(f, value)
            }
            Self::DataSizeNotFrameMultiple { data_size, rtp_len } => write!(
                f,
                "dataSize {data_size} is not a whole number of {rtp_len}-byte frames"
            ),
            Self::DataSizeMismatch {
                data_size,
                body_len,
            } => write!(
                f,
                "header dataSize is {data_size} but {body_len} bytes follow the header \
                 (read in recover mode to trust the body)"
            ),
        }
    }
}

impl core::error::Error for ParseError {}

/// A header `fwrite`n by a big-endian CPU reads as a huge number here; say
/// so when the byte-swapped value would have been valid.
fn big_endian_hint(f: &mut fmt::Formatter<'_>, value: i64) -> fmt::Result {
    match i32::try_from(value).map(i32::swap_bytes) {
        Ok(swapped @ 1..=65535) => write!(
            f,
            " (reads as {swapped} big-endian: written by a big-endian CPU?)"
        ),
        _ => Ok(()),
    }
}

#[cfg(feature = "std")]
pub use self::io_error::Error;

#[cfg(feature = "std")]
mod io_error {
    use super::ParseError;
    use crate::CodecName;
    use alloc::string::String;
    use core::fmt;
    use std::io;

    /// Errors of the I/O layer: reading and writing files, and the
    /// [`Recorder`](crate::Recorder) session.
    #[derive(Debug)]
    #[non_exhaustive]
    pub enum Error {
        /// The bytes do not form a valid recording.
        Parse(ParseError),
        /// The underlying reader, writer or storage failed.
        Io(io::Error),
        /// A frame offered for writing is not `rtpLen` bytes; nothing was written.
        FrameLen {
            /// `rtpLen` of the recording.
            expected: u16,
            /// Length of the frame offered.
            actual: usize,
        },
        /// Another frame would take `dataSize` past `u32::MAX`; nothing was written.
        DataSizeLimit {
            /// `dataSize` so far.
            data_size: u32,
            /// `rtpLen` of the recording.
            rtp_len: u16,
        },
        /// A seek to a frame past the end of the recording.
        SeekOutOfRange {
            /// Frame index asked for.
            frame: u32,
            /// Frames in the recording (seeking to this index, the end, is allowed).
            frames: u32,
        },
        /// Time-based positioning needs the RTP clock rate, which is only
        /// known for PCMA, PCMU and G722; supply one for other codecs.
        UnknownClockRate {
            /// The codec name of the recording.
            codec: CodecName,
        },
        /// `repair` would have to drop whole frames because the body is larger
        /// than `dataSize` can describe; the file was left untouched.
        BodyTooLarge {
            /// Bytes after the header.
            body_len: u64,
        },
        /// Free space is below the recorder's threshold; no file was opened.
        StorageFull {
            /// Bytes available on the storage.
            available: u64,
            /// The configured minimum.
            required: u64,
        },
        /// A frame, pause or stop while no recording is in progress.
        NotRecording,
        /// `start` while a recording is already in progress.
        AlreadyRecording,
        /// The recorder configuration cannot work: the size limit cannot
        /// hold the header and one frame.
        MaxFileSizeTooSmall {
            /// The configured limit.
            max_file_size: u64,
            /// Header plus one frame.
            required: u64,
        },
        /// Every name from `base.wav` through `base_N.wav` already exists.
        NamesExhausted {
            /// The base name tried.
            base: String,
        },
        /// A record time field is out of range.
        TimeOutOfRange {
            /// Which field (`"month"`, `"day"`, …).
            field: &'static str,
            /// The value given.
            value: u64,
        },
        /// Writing failed mid-recording (drive full or pulled). The recording
        /// was stopped and the file finalized up to its last whole frame.
        Interrupted {
            /// File name within the storage.
            file: String,
            /// Bytes of whole frames written to it. When `finalized`, the
            /// header says so and the file holds exactly these; otherwise
            /// recover mode shows how many reached the storage.
            data_size: u32,
            /// Whether the header patch and truncation also succeeded; if not,
            /// the file still opens in [`ReadMode::Recover`](crate::ReadMode::Recover).
            finalized: bool,
            /// The write error.
            source: io::Error,
        },
    }

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Self::Parse(e) => e.fmt(f),
                Self::Io(e) => write!(f, "i/o error: {e}"),
                Self::FrameLen { expected, actual } => write!(
                    f,
                    "frame is {actual} bytes but rtpLen is {expected}; nothing was written"
                ),
                Self::DataSizeLimit { data_size, rtp_len } => write!(
                    f,
                    "another {rtp_len}-byte frame would take dataSize {data_size} past {}",
                    u32::MAX
                ),
                Self::SeekOutOfRange { frame, frames } => write!(
                    f,
                    "cannot seek to frame {frame}: the recording has {frames} frames"
                ),
                Self::UnknownClockRate { codec } => write!(
                    f,
                    "the RTP clock rate of codec \"{codec}\" is unknown; set one to use time"
                ),
                Self::BodyTooLarge { body_len } => write!(
                    f,
                    "{body_len} bytes follow the header, more than dataSize can describe; \
                     file left untouched"
                ),
                Self::StorageFull {
                    available,
                    required,
                } => write!(
                    f,
                    "storage has {available} bytes free, below the {required}-byte minimum"
                ),
                Self::NotRecording => f.write_str("no recording in progress"),
                Self::AlreadyRecording => f.write_str("a recording is already in progress"),
                Self::MaxFileSizeTooSmall {
                    max_file_size,
                    required,
                } => write!(
                    f,
                    "max file size {max_file_size} cannot hold the header and one frame \
                     ({required} bytes)"
                ),
                Self::NamesExhausted { base } => {
                    write!(f, "no free file name left for {base}.wav")
                }
                Self::TimeOutOfRange { field, value } => {
                    write!(f, "record time {field} out of range, got {value}")
                }
                Self::Interrupted {
                    file,
                    data_size,
                    finalized,
                    source,
                } => {
                    write!(
                        f,
                        "writing {file} failed after {data_size} bytes of frames: {source}"
                    )?;
                    if *finalized {
                        f.write_str(" (recording stopped; file finalized and playable)")
                    } else {
                        f.write_str(
                            " (recording stopped; header not patched, open in recover mode)",
                        )
                    }
                }
            }
        }
    }

    impl core::error::Error for Error {
        fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
            match self {
                Self::Parse(e) => Some(e),
                Self::Io(e) | Self::Interrupted { source: e, .. } => Some(e),
                _ => None,
            }
        }
    }

    impl From<ParseError> for Error {
        fn from(e: ParseError) -> Self {
            Self::Parse(e)
        }
    }

    impl From<io::Error> for Error {
        fn from(e: io::Error) -> Self {
            Self::Io(e)
        }
    }
}
