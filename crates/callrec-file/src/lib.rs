//! The call-recording container IP phones write to a USB drive when they
//! record a call locally.
//!
//! A recording is a packed little-endian C struct followed by frames of the
//! mixed call audio, exactly as phone firmware `fwrite`s it:
//! `char codec[64] | int32 rtpLen | int32 increment | uint32 dataSize | frames…`
//! (see `docs/recording-file.md` for the byte layout with a hex example).
//! This crate parses it without panicking on any input, writes it so that a
//! power cut loses at most a bounded number of frames, recovers files whose
//! header was never patched, and runs the phone-side recording session
//! (file naming, rotation at the size limit, free-space checks,
//! pause/resume).
//!
//! ```
//! use callrec_file::{CodecName, Header, Recording};
//!
//! // Build a header and two 20 ms frames of A-law silence.
//! let header = Header::new(CodecName::PCMA, 160, 160)?.with_data_size(2 * 160);
//! let mut file = header.to_bytes().to_vec();
//! file.extend_from_slice(&[0xd5; 2 * 160]);
//!
//! // Parse it back: the header round-trips, the frames borrow from `file`.
//! let rec = Recording::parse(&file)?;
//! assert_eq!(rec.header(), &header);
//! assert_eq!(rec.frame_count(), 2);
//! assert_eq!(rec.duration(), Some(core::time::Duration::from_millis(40)));
//! # Ok::<(), callrec_file::ParseError>(())
//! ```
//!
//! # Pieces
//! - [`Header`], [`Recording`] (zero-copy view), [`Timeline`] (frame ↔ time
//!   for seeking), [`reconcile`]: `no_std`, no allocation.
//! - With the default `std` feature: [`Reader`] (streaming, seekable),
//!   [`Writer`] (header patched at the end and optionally every N frames),
//!   [`inspect`] and [`repair`] for crashed files, and [`Recorder`], the
//!   phone's recording session over a pluggable [`Storage`].
//!
//! # Strict and recover modes
//! Strict reading insists that `dataSize` is whole frames and equals the body
//! length. [`ReadMode::Recover`] trusts the body instead (after a power cut
//! `dataSize` is 0 or stale, or the body ends mid-frame) and always says what
//! it did with a [`Recovery`]; nothing is recovered silently.
//!
//! # Limits
//! Everything the input controls is bounded: `rtpLen` and `increment` must
//! be 1..=65535, the codec name 1..=64 printable ASCII bytes, and a reader
//! holds one frame (at most 64 KiB) in memory.
//!
//! # Minimum Rust version
//! 1.85 (edition 2024).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::exhaustive_enums, clippy::exhaustive_structs)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod error;
mod header;
#[cfg(feature = "std")]
mod reader;
#[cfg(feature = "std")]
mod recorder;
mod recording;
#[cfg(feature = "std")]
mod writer;

#[cfg(feature = "std")]
pub use error::Error;
pub use error::ParseError;
pub use header::{
    CODEC_FIELD_LEN, Codec, CodecName, HEADER_LEN, Header, HeaderOverrides, Timeline,
};
#[cfg(feature = "std")]
pub use reader::{Reader, inspect, inspect_with, repair};
#[cfg(feature = "std")]
pub use recorder::{
    DEFAULT_HEADER_INTERVAL, DEFAULT_MAX_FILE_SIZE, DEFAULT_MIN_FREE_SPACE, DirStorage, RecordFile,
    RecordTime, RecordedFile, Recorder, RecorderConfig, RecorderState, RecorderStatus, Storage,
};
pub use recording::{Frames, ReadMode, Recording, Recovery, reconcile};
#[cfg(feature = "std")]
pub use writer::Writer;

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[cfg(feature = "std")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::{Error, ReadMode, Reader, Recording};
    use alloc::vec::Vec;
    use std::io::{self, Read};

    /// A reader that hands out `data` in pieces whose sizes come from
    /// `splits` (cycled; each byte is a piece size, 0 meaning 1).
    struct Pieces<'a> {
        data: &'a [u8],
        splits: &'a [u8],
        next: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let piece = match self.splits {
                [] => usize::MAX,
                s => usize::from(s[self.next % s.len()]).max(1),
            };
            self.next = self.next.wrapping_add(1);
            let n = piece.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Parses `data` as a whole buffer and through a streaming [`Reader`]
    /// whose reads end at points chosen by `splits`, in both modes, and
    /// panics if they disagree: same frames and recovery on success, same
    /// error (after at most a prefix of the frames) on failure.
    pub fn check_whole_and_streaming_agree(data: &[u8], splits: &[u8]) {
        for mode in [ReadMode::Strict, ReadMode::Recover] {
            let whole = Recording::parse_with(data, mode);
            let input = Pieces {
                data,
                splits,
                next: 0,
            };
            let mut reader = match Reader::with_mode(input, mode) {
                Ok(r) => r,
                Err(Error::Parse(e)) => {
                    assert_eq!(whole.err(), Some(e), "header verdicts differ");
                    continue;
                }
                Err(e) => panic!("in-memory input cannot fail with {e}"),
            };
            let mut frames: Vec<u8> = Vec::new();
            let end = loop {
                match reader.next_frame() {
                    Ok(Some(f)) => frames.extend_from_slice(f),
                    Ok(None) => break Ok(()),
                    Err(Error::Parse(e)) => break Err(e),
                    Err(e) => panic!("in-memory input cannot fail with {e}"),
                }
            };
            match (whole, end) {
                (Ok(rec), Ok(())) => {
                    assert_eq!(rec.data(), &frames[..], "frames differ");
                    assert_eq!(rec.recovery(), reader.recovery(), "recovery differs");
                }
                (Err(w), Err(s)) => {
                    assert_eq!(w, s, "errors differ");
                    assert!(data[crate::HEADER_LEN..].starts_with(&frames));
                }
                (w, s) => panic!("whole-buffer {w:?} but streaming {s:?}"),
            }
        }
    }
}

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
