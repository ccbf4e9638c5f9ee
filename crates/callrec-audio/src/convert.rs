//! Turning call audio (a `callrec-file` recording, or RTP payloads) into
//! WAV.

use core::time::Duration;
use std::borrow::ToOwned;
use std::io::{Read, Seek, Write};

use callrec_file::{Codec, Reader, Recovery};

use crate::g711::Law;
use crate::g722;
use crate::wav::WavSpec;
use crate::{Error, WavWriter};

/// What [`Transcoder`] writes for G.711 input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WavOutput {
    /// G.711 bytes copied as they are into a format-tag 6/7 WAV: lossless
    /// and half the size of PCM.
    #[default]
    AsRecorded,
    /// Decoded to 16-bit PCM, for tools that cannot read G.711 WAV.
    Pcm16,
}

/// Writes frames of one call codec into a [`WavWriter`]: G.711 as-is or
/// decoded, G.722 always decoded to PCM16 at 16 kHz (no player reads G.722
/// in WAV). Keeps the G.722 decoder's state across frames; never allocates.
///
/// ```
/// use callrec_audio::convert::{Transcoder, WavOutput};
/// use callrec_audio::wav::WavFile;
/// use callrec_audio::WavWriter;
/// use callrec_file::Codec;
/// use std::io::Cursor;
///
/// let mut t = Transcoder::new(Codec::G722, WavOutput::AsRecorded);
/// let mut wav = WavWriter::new(Cursor::new(Vec::new()), t.spec())?;
/// t.write_frame(&[0xfa; 160], &mut wav)?; // 20 ms of G.722
/// let file = wav.finish()?.into_inner();
/// let parsed = WavFile::parse(&file)?;
/// assert_eq!((parsed.spec().sample_rate(), parsed.frames()), (16000, 320));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Transcoder {
    codec: Codec,
    output: WavOutput,
    g722: g722::Decoder,
}

impl Transcoder {
    /// A transcoder for `codec`.
    pub fn new(codec: Codec, output: WavOutput) -> Self {
        Self {
            codec,
            output,
            g722: g722::Decoder::new(),
        }
    }

    /// The WAV format it writes: A-law/µ-law 8 kHz, or PCM16 at 8 kHz
    /// (G.711 decoded) or 16 kHz (G.722).
    pub fn spec(&self) -> WavSpec {
        match (self.law(), self.output) {
            (Some(law), WavOutput::AsRecorded) => WavSpec::g711(law),
            (Some(_), WavOutput::Pcm16) => WavSpec::pcm16_mono(false),
            (None, _) => WavSpec::pcm16_mono(true),
        }
    }

    fn law(&self) -> Option<Law> {
        match self.codec {
            Codec::Pcma => Some(Law::Alaw),
            Codec::Pcmu => Some(Law::Ulaw),
            _ => None,
        }
    }

    /// Converts one frame of encoded audio and appends it to `wav`, which
    /// must have been created with [`spec`](Self::spec).
    ///
    /// # Errors
    /// As [`WavWriter::write_pcm`] / [`WavWriter::write_encoded`].
    pub fn write_frame<W: Write + Seek>(
        &mut self,
        frame: &[u8],
        wav: &mut WavWriter<W>,
    ) -> Result<(), Error> {
        let mut pcm = [0i16; 640];
        match (self.law(), self.output) {
            (Some(_), WavOutput::AsRecorded) => wav.write_encoded(frame),
            (Some(law), WavOutput::Pcm16) => {
                for chunk in frame.chunks(pcm.len()) {
                    let n = law.decode(chunk, &mut pcm);
                    wav.write_pcm(&pcm[..n])?;
                }
                Ok(())
            }
            (None, _) => {
                for chunk in frame.chunks(pcm.len() / 2) {
                    let n = self.g722.decode(chunk, &mut pcm);
                    wav.write_pcm(&pcm[..n])?;
                }
                Ok(())
            }
        }
    }

    /// Appends `samples` codec clock ticks (8 kHz for all three codecs, as
    /// RTP counts them) of silence: a lost packet's worth keeps the
    /// recording in real time.
    ///
    /// # Errors
    /// As [`WavWriter::write_silence`].
    pub fn write_gap<W: Write + Seek>(
        &mut self,
        ticks: u64,
        wav: &mut WavWriter<W>,
    ) -> Result<(), Error> {
        // G.722's RTP clock is 8 kHz, its WAV is 16 kHz.
        let frames = if self.law().is_some() {
            ticks
        } else {
            ticks * 2
        };
        wav.write_silence(frames)
    }
}

/// The outcome of [`recording_to_wav`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConvertSummary {
    /// The format written.
    pub spec: WavSpec,
    /// Frames of the recording converted.
    pub frames: u32,
    /// Audio time written.
    pub duration: Duration,
    /// In recover mode, what the reader had to discard or reinterpret.
    pub recovery: Option<Recovery>,
}

/// Converts a whole `callrec-file` recording into a finalized WAV file.
///
/// Open the reader with [`Reader::recover`] for a file whose header was
/// never patched (a phone that lost power): the frames present are
/// converted.
///
/// # Errors
/// [`Error::UnsupportedCodec`] for codecs other than PCMA, PCMU and G722;
/// [`Error::Recording`] for a bad recording (frames before the bad spot
/// are already in the WAV, which is finalized); [`Error::Io`].
pub fn recording_to_wav<R: Read, W: Write + Seek>(
    reader: &mut Reader<R>,
    out: W,
    output: WavOutput,
) -> Result<(W, ConvertSummary), Error> {
    let name = reader.header().codec();
    let codec = name.codec().ok_or_else(|| Error::UnsupportedCodec {
        name: name.as_str().to_owned(),
    })?;
    let mut transcoder = Transcoder::new(codec, output);
    let mut wav = WavWriter::new(out, transcoder.spec())?;
    let mut frames = 0;
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => {
                transcoder.write_frame(frame, &mut wav)?;
                frames += 1;
            }
            Ok(None) => break,
            Err(e) => {
                // Keep what was converted playable, then report.
                wav.finish()?;
                return Err(e.into());
            }
        }
    }
    let summary = ConvertSummary {
        spec: wav.spec(),
        frames,
        duration: wav.duration(),
        recovery: reader.recovery().copied(),
    };
    Ok((wav.finish()?, summary))
}
