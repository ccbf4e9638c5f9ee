//! The error of the I/O half of the crate (feature `std`).

use core::fmt;
use std::io;
use std::string::String;

use crate::wav::{SampleFormat, WavParseError};

/// What went wrong writing a WAV file or converting a recording.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The underlying reader or writer failed.
    Io(io::Error),
    /// A WAV file could not be parsed.
    Wav(WavParseError),
    /// A `callrec-file` recording could not be read.
    Recording(callrec_file::Error),
    /// [`WavWriter::write_pcm`](crate::WavWriter::write_pcm) on a G.711
    /// file (or the like).
    WrongSampleFormat {
        /// What the call needs.
        expected: SampleFormat,
        /// What the file is.
        found: SampleFormat,
    },
    /// A write of part of a frame (one channel's sample of a stereo file).
    PartialFrame {
        /// Bytes offered.
        len: usize,
        /// Bytes per frame.
        block_align: u16,
    },
    /// The write would pass the 4 GiB a RIFF file can describe; nothing was
    /// written and the file is intact. Start a new file.
    WavFull {
        /// Audio bytes in the file.
        written: u32,
        /// The most it can hold.
        limit: u32,
    },
    /// The recording's codec cannot be converted.
    UnsupportedCodec {
        /// The codec name from the recording's header.
        name: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Wav(e) => write!(f, "bad WAV file: {e}"),
            Self::Recording(e) => write!(f, "bad recording: {e}"),
            Self::WrongSampleFormat { expected, found } => write!(
                f,
                "this writer takes {expected} samples but the file is {found}"
            ),
            Self::PartialFrame { len, block_align } => write!(
                f,
                "{len} bytes is not a whole number of {block_align}-byte frames"
            ),
            Self::WavFull { written, limit } => write!(
                f,
                "WAV file full: {written} of at most {limit} audio bytes written"
            ),
            Self::UnsupportedCodec { name } => write!(
                f,
                "codec {name:?} cannot be converted (PCMA, PCMU and G722 can)"
            ),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Wav(e) => Some(e),
            Self::Recording(e) => Some(e),
            _ => None,
        }
    }
}

impl From<WavParseError> for Error {
    fn from(e: WavParseError) -> Self {
        Self::Wav(e)
    }
}

impl From<callrec_file::Error> for Error {
    fn from(e: callrec_file::Error) -> Self {
        Self::Recording(e)
    }
}
