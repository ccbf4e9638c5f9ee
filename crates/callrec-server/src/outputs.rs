//! The files of one recording: a WAV (callrec-audio) and/or the phone's own
//! container (callrec-file), written through any seekable sink.

use core::time::Duration;
use std::fs::File;
use std::io::{self, BufWriter, Cursor, Seek, Write};

use callrec_audio::convert::{Transcoder, WavOutput};
use callrec_audio::g711::Law;
use callrec_audio::{WavWriter, g722};
use callrec_file::{self as recfile, CodecName, Header};

use crate::LiveFormat;
use crate::live::{LiveDecoding, LiveTap};

/// Where a recording's bytes go: a file in the server, memory in tests and
/// fuzzing.
pub trait Sink: Write + Seek {
    /// Makes what was written durable (flush, then `fdatasync` for files).
    ///
    /// # Errors
    /// The I/O error.
    fn sync(&mut self) -> io::Result<()>;
}

impl Sink for BufWriter<File> {
    fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.get_ref().sync_data()
    }
}

impl Sink for Cursor<Vec<u8>> {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The container is written in fixed 20 ms frames (160 bytes for all three
/// codecs) whatever the packet sizes.
const REC_FRAME: usize = 160;

/// The phone's container.
struct RecOutput<W: Sink> {
    writer: recfile::Writer<W>,
    pending: Vec<u8>,
    /// G.722 silence comes from encoding zeros.
    g722_silence: Option<g722::Encoder>,
    law: Option<Law>,
}

impl<W: Sink> RecOutput<W> {
    fn push(&mut self, data: &[u8]) -> Result<(), String> {
        self.pending.extend_from_slice(data);
        let whole = self.pending.len() - self.pending.len() % REC_FRAME;
        for frame in self.pending[..whole].chunks(REC_FRAME) {
            self.writer.append(frame).map_err(|e| e.to_string())?;
        }
        self.pending.drain(..whole);
        Ok(())
    }

    fn silence(&mut self, ticks: u64) -> Result<(), String> {
        // One byte per 8 kHz tick for all three codecs.
        let mut left = ticks;
        let mut chunk = [0u8; REC_FRAME];
        while left > 0 {
            let n = left.min(REC_FRAME as u64) as usize;
            match (self.law, self.g722_silence.as_mut()) {
                (Some(law), _) => chunk[..n].fill(law.silence()),
                (None, Some(encoder)) => {
                    encoder.encode(&[0i16; 2 * REC_FRAME][..2 * n], &mut chunk[..n]);
                }
                (None, None) => chunk[..n].fill(0),
            }
            self.push(&chunk[..n])?;
            left -= n as u64;
        }
        Ok(())
    }
}

/// The files of one recording. The first write error stops all writing and
/// is kept; what was written before stays playable.
pub(crate) struct Outputs<W: Sink> {
    wav: Option<(WavWriter<W>, Transcoder)>,
    rec: Option<RecOutput<W>>,
    error: Option<String>,
    codec: recfile::Codec,
    /// The live feed, when the server has one for the recording.
    live: Option<LiveTap>,
}

/// What finishing the files gave.
pub(crate) struct Finished<W> {
    /// Audio written.
    pub(crate) duration: Duration,
    /// The first error, if any.
    pub(crate) error: Option<String>,
    /// The WAV sink and the container sink, for hashing.
    pub(crate) sinks: Vec<W>,
}

impl<W: Sink> Outputs<W> {
    /// Starts the files: a WAV header into `wav`, a container header into
    /// `rec`.
    ///
    /// # Errors
    /// The writer's error, as text.
    pub(crate) fn new(
        codec: recfile::Codec,
        wav: Option<W>,
        rec: Option<W>,
        header_interval: Duration,
    ) -> Result<Self, String> {
        let wav = match wav {
            Some(sink) => {
                let transcoder = Transcoder::new(codec, WavOutput::AsRecorded);
                let mut writer =
                    WavWriter::with_header_interval(sink, transcoder.spec(), Some(header_interval))
                        .map_err(|e| e.to_string())?;
                // On disk at once: from the start the file is a valid
                // (empty) WAV, for a crash and for players of running calls.
                writer.update_header().map_err(|e| e.to_string())?;
                Some((writer, transcoder))
            }
            None => None,
        };
        let rec = match rec {
            Some(sink) => {
                let name = CodecName::new(codec.as_str()).map_err(|e| e.to_string())?;
                let header = Header::new(name, REC_FRAME as u16, REC_FRAME as u16)
                    .map_err(|e| e.to_string())?;
                let writer = recfile::Writer::new(sink, header).map_err(|e| e.to_string())?;
                let law = match codec {
                    recfile::Codec::Pcma => Some(Law::Alaw),
                    recfile::Codec::Pcmu => Some(Law::Ulaw),
                    _ => None,
                };
                Some(RecOutput {
                    writer,
                    pending: Vec::new(),
                    g722_silence: law.is_none().then(g722::Encoder::new),
                    law,
                })
            }
            None => None,
        };
        Ok(Self {
            wav,
            rec,
            error: None,
            codec,
            live: None,
        })
    }

    /// The audio a live feed of these files carries.
    pub(crate) fn live_format(&self) -> LiveFormat {
        let rate = if self.codec == recfile::Codec::G722 {
            16000
        } else {
            8000
        };
        LiveFormat { rate, channels: 1 }
    }

    /// From now on, what is written also goes to `tap`.
    pub(crate) fn listen(&mut self, tap: LiveTap) {
        let decoding = match self.codec {
            recfile::Codec::Pcma => LiveDecoding::Law(Law::Alaw),
            recfile::Codec::Pcmu => LiveDecoding::Law(Law::Ulaw),
            _ => LiveDecoding::G722(Box::default()),
        };
        self.live = Some(tap.decoding(decoding));
    }

    /// The newest packet arrived at `at` (for the live feed's latency);
    /// the stamp it replaces, to put back when the packet turns out not
    /// to be the call's.
    pub(crate) fn arrived(&mut self, at: Option<std::time::Instant>) -> Option<std::time::Instant> {
        self.live.as_mut().and_then(|live| live.arrived(at))
    }

    /// The first write error, if any.
    pub(crate) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// One payload of the call's codec.
    pub(crate) fn payload(&mut self, data: &[u8]) {
        self.write(|t, wav| t.write_frame(data, wav), |rec| rec.push(data));
        if let Some(live) = &mut self.live {
            live.codes(data);
        }
    }

    /// `ticks` of the codec's silence.
    pub(crate) fn gap(&mut self, ticks: u64) {
        self.write(|t, wav| t.write_gap(ticks, wav), |rec| rec.silence(ticks));
        if let Some(live) = &mut self.live {
            // G.722's 8 kHz RTP clock ticks twice per 16 kHz sample.
            let per_tick = if self.codec == recfile::Codec::G722 {
                2
            } else {
                1
            };
            live.silence(ticks * per_tick);
        }
    }

    fn write(
        &mut self,
        to_wav: impl FnOnce(&mut Transcoder, &mut WavWriter<W>) -> Result<(), callrec_audio::Error>,
        to_rec: impl FnOnce(&mut RecOutput<W>) -> Result<(), String>,
    ) {
        if self.error.is_some() {
            return;
        }
        if let Some((wav, transcoder)) = &mut self.wav {
            if let Err(e) = to_wav(transcoder, wav) {
                self.error = Some(e.to_string());
                return;
            }
        }
        if let Some(rec) = &mut self.rec {
            if let Err(e) = to_rec(rec) {
                self.error = Some(e);
            }
        }
    }

    /// Finalizes the files (headers, a partial last container frame padded
    /// with silence) and makes them durable.
    pub(crate) fn finish(self) -> Finished<W> {
        let mut error = self.error;
        let mut duration = Duration::ZERO;
        let mut sinks = Vec::new();
        if let Some((wav, _)) = self.wav {
            duration = wav.duration();
            match wav.finish() {
                Ok(mut inner) => {
                    if let Err(e) = inner.sync() {
                        error.get_or_insert(e.to_string());
                    }
                    sinks.push(inner);
                }
                Err(e) => {
                    error.get_or_insert(e.to_string());
                }
            }
        }
        if let Some(mut rec) = self.rec {
            if !rec.pending.is_empty() {
                let missing = (REC_FRAME - rec.pending.len()) as u64;
                let _ = rec.silence(missing);
            }
            if duration.is_zero() {
                let frames = rec.writer.header().frame_count();
                duration = Duration::from_millis(u64::from(frames) * 20);
            }
            match rec.writer.finish_into_inner() {
                Ok((_, mut inner)) => {
                    if let Err(e) = inner.sync() {
                        error.get_or_insert(e.to_string());
                    }
                    sinks.push(inner);
                }
                Err(e) => {
                    error.get_or_insert(e.to_string());
                }
            }
        }
        Finished {
            duration,
            error,
            sinks,
        }
    }
}
