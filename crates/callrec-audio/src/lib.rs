//! The media layer of call recording: G.711, a bit-exact G.722, the call
//! mixer and crash-safe WAV.
//!
//! A phone records the mix of both call directions, and a recording server
//! hands operators files every player opens. This crate is the audio between
//! the wire ([`callrec-rtp`], [`callrec-file`]) and those files:
//!
//! - [`g711`]: A-law and µ-law, table driven, bit-exact with ITU-T G.191
//!   (tested on all 256 decodes and all 65,536 encodes of both laws).
//! - [`g722`]: the 64 kbit/s SB-ADPCM encoder and decoder, bit-exact with
//!   spandsp, libg722 and ffmpeg from the first sample (tested byte for byte
//!   against ffmpeg's output). One small state struct per channel.
//! - [`mix`]: PCM16 and G.711 mixing with saturation, stereo interleave.
//! - [`wav`]: RIFF/WAVE headers for A-law/µ-law (tags 6/7) and PCM16, and a
//!   strict parser that never panics; [`WavWriter`] (feature `std`) streams
//!   a file and rewrites its header every few seconds so a killed process
//!   leaves a playable file.
//! - [`convert`] (feature `std`): recordings and call frames to WAV.
//!
//! See `docs/audio.md` for the formats written, G.722 conformance and how
//! the mixer clips.
//!
//! ```
//! use callrec_audio::g711::Law;
//! use callrec_audio::mix::mix_g711;
//! use callrec_audio::wav::{WavFile, WavSpec};
//! use callrec_audio::WavWriter;
//! use std::io::Cursor;
//!
//! // Mix the local and remote directions of one 20 ms frame, as the phone does.
//! let local: Vec<u8> = (0..160).map(|n| Law::Alaw.encode_sample(n * 50)).collect();
//! let remote = [Law::Alaw.silence(); 160];
//! let mut mixed = [0u8; 160];
//! mix_g711(Law::Alaw, &[&local, &remote], &mut mixed)?;
//!
//! // Write it as an A-law WAV and read it back.
//! let mut wav = WavWriter::new(Cursor::new(Vec::new()), WavSpec::g711(Law::Alaw))?;
//! wav.write_encoded(&mixed)?;
//! let file = wav.finish()?.into_inner();
//! let parsed = WavFile::parse(&file)?;
//! assert_eq!(parsed.duration().as_millis(), 20);
//! assert_eq!(parsed.data(), &mixed[..]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//! `no_std` without `alloc` for the codecs, the mixer and the WAV parser;
//! the default `std` feature adds [`WavWriter`], [`Error`] and [`convert`].
//!
//! # Minimum Rust version
//! 1.85 (edition 2024).
//!
//! [`callrec-rtp`]: https://docs.rs/callrec-rtp
//! [`callrec-file`]: https://docs.rs/callrec-file
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::exhaustive_enums, clippy::exhaustive_structs)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod g711;
pub mod g722;
pub mod mix;
pub mod wav;

#[cfg(feature = "std")]
pub mod convert;
#[cfg(feature = "std")]
mod error;
#[cfg(feature = "std")]
mod writer;

/// The `callrec-file` crate, whose types `convert` and [`Error`] use.
#[cfg(feature = "std")]
pub use callrec_file;
#[cfg(feature = "std")]
pub use error::Error;
#[cfg(feature = "std")]
pub use writer::{DEFAULT_HEADER_INTERVAL, WavWriter};

#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for `fuzz/`; not part of the API.

    use crate::g722::Decoder;
    use crate::wav::{WavFile, WavHeader, WavReadMode};

    /// Parses `data` every way; checks that what strict mode accepts,
    /// recover mode accepts with the same audio (unless the declared length
    /// is 0, which recover mode reads as "never patched: to the end").
    pub fn wav_read(data: &[u8]) {
        let header = WavHeader::parse(data);
        let strict = WavFile::parse_with(data, WavReadMode::Strict);
        let recover = WavFile::parse_with(data, WavReadMode::Recover);
        if let Ok(strict) = strict {
            let header = header.expect("strict parse implies a header");
            let recover = recover
                .as_ref()
                .expect("recover accepts what strict accepts");
            assert_eq!(strict.spec(), recover.spec());
            if header.data_len() != 0 {
                assert_eq!(strict.data(), recover.data());
            }
            assert!(header.data_offset() + strict.data().len() <= data.len());
            assert_eq!(
                strict.samples().len() as u64,
                strict.frames() * u64::from(strict.spec().channels())
            );
        }
        if let Ok(recover) = recover {
            assert_eq!(
                recover.data().len() % usize::from(recover.spec().block_align()),
                0
            );
            let _ = recover.samples().fold(0i64, |acc, s| acc + i64::from(s));
        }
    }

    /// Decodes `data` as G.722 in two differently split calls; both must
    /// agree (state carries across calls).
    pub fn g722_decode(data: &[u8]) {
        let mut whole = [0i16; 2 * 4096];
        let data = &data[..data.len().min(4096)];
        let n = Decoder::new().decode(data, &mut whole);
        assert_eq!(n, 2 * data.len());
        let mut split = [0i16; 2 * 4096];
        let mut decoder = Decoder::new();
        let cut = data.len() / 3;
        let first = decoder.decode(&data[..cut], &mut split);
        decoder.decode(&data[cut..], &mut split[first..]);
        assert_eq!(whole[..n], split[..n]);
    }
}

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
