//! The streaming WAV writer.

use core::time::Duration;
use std::io::{self, Seek, SeekFrom, Write};

use crate::Error;
use crate::wav::{MAX_HEADER_LEN, SampleFormat, WavSpec};

/// The default interval of header rewrites, in audio time.
pub const DEFAULT_HEADER_INTERVAL: Duration = Duration::from_secs(1);

/// Writes a WAV file as audio arrives, so that it stays playable if the
/// process dies.
///
/// The header is written first with zero sizes. [`finish`](Self::finish)
/// writes the real sizes; in between, the sizes are rewritten every
/// `header_interval` of audio (default [`DEFAULT_HEADER_INTERVAL`]), so a
/// file left by a killed process opens in every player with at most that
/// much audio missing at the end. Data reaches the inner writer before the
/// header that counts it. `Drop` finalizes as a fallback and ignores
/// errors; call `finish` to see them.
///
/// Give it a buffered writer (`BufWriter<File>`): writes are small. Seeking
/// a `BufWriter` flushes it, so a rewrite also pushes the audio to the OS.
///
/// ```
/// use callrec_audio::g711::Law;
/// use callrec_audio::wav::{WavFile, WavSpec};
/// use callrec_audio::WavWriter;
/// use std::io::Cursor;
///
/// let mut wav = WavWriter::new(Cursor::new(Vec::new()), WavSpec::g711(Law::Alaw))?;
/// wav.write_encoded(&[0xd5; 160])?;
/// wav.write_silence(80)?;
/// let file = wav.finish()?.into_inner();
///
/// let parsed = WavFile::parse(&file)?;
/// assert_eq!(parsed.frames(), 240);
/// assert_eq!(parsed.duration().as_millis(), 30);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct WavWriter<W: Write + Seek> {
    /// `None` once finalized.
    inner: Option<W>,
    spec: WavSpec,
    /// Stream position of the header's first byte.
    start: u64,
    /// Audio bytes written.
    data_len: u32,
    /// Rewrite the header when `data_len` reaches this.
    next_rewrite: Option<u32>,
    /// Bytes between rewrites; `None` for never.
    interval_bytes: Option<u32>,
}

impl<W: Write + Seek> WavWriter<W> {
    /// Writes the header at `inner`'s current position, with header
    /// rewrites every [`DEFAULT_HEADER_INTERVAL`].
    ///
    /// # Errors
    /// [`Error::Io`] from the inner writer.
    pub fn new(inner: W, spec: WavSpec) -> Result<Self, Error> {
        Self::with_header_interval(inner, spec, Some(DEFAULT_HEADER_INTERVAL))
    }

    /// As [`new`](Self::new), with the header rewritten every `interval` of
    /// audio (rounded to whole frames, at least one), or only by
    /// `finish` for `None`.
    ///
    /// # Errors
    /// [`Error::Io`] from the inner writer.
    pub fn with_header_interval(
        mut inner: W,
        spec: WavSpec,
        interval: Option<Duration>,
    ) -> Result<Self, Error> {
        let start = inner.stream_position()?;
        let mut header = [0u8; MAX_HEADER_LEN];
        let len = spec.write_header(0, &mut header);
        inner.write_all(&header[..len])?;
        let interval_bytes = interval.map(|i| {
            let frames = (i.as_micros() * u128::from(spec.sample_rate()) / 1_000_000).max(1);
            let bytes = frames * u128::from(spec.block_align());
            u32::try_from(bytes).unwrap_or(u32::MAX)
        });
        Ok(Self {
            inner: Some(inner),
            spec,
            start,
            data_len: 0,
            next_rewrite: interval_bytes,
            interval_bytes,
        })
    }

    /// The format being written.
    pub fn spec(&self) -> WavSpec {
        self.spec
    }

    /// Audio bytes written so far.
    pub fn data_len(&self) -> u32 {
        self.data_len
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        u64::from(self.data_len / u32::from(self.spec.block_align()))
    }

    /// Audio time written so far.
    pub fn duration(&self) -> Duration {
        self.spec.duration_of(u64::from(self.data_len))
    }

    /// The inner writer, for inspection (a test can copy what a crash
    /// would leave behind).
    pub fn get_ref(&self) -> &W {
        self.inner
            .as_ref()
            .expect("inner writer present until finalize")
    }

    /// Writes PCM16 samples, channels interleaved.
    ///
    /// # Errors
    /// [`Error::WrongSampleFormat`] unless the spec is PCM16;
    /// [`Error::PartialFrame`] if `samples` is not a whole number of frames;
    /// [`Error::WavFull`] if the file would pass the 4 GiB RIFF limit (the
    /// samples are then not written, and the file stays valid);
    /// [`Error::Io`].
    pub fn write_pcm(&mut self, samples: &[i16]) -> Result<(), Error> {
        self.expect_format(SampleFormat::Pcm16)?;
        self.check_room(samples.len() * 2)?;
        let mut buf = [0u8; 2048];
        for chunk in samples.chunks(buf.len() / 2) {
            for (b, s) in buf.chunks_exact_mut(2).zip(chunk) {
                b.copy_from_slice(&s.to_le_bytes());
            }
            self.inner_mut().write_all(&buf[..chunk.len() * 2])?;
        }
        self.advance(samples.len() * 2)
    }

    /// Writes bytes in the file's own encoding as they are: G.711 bytes for
    /// an A-law or µ-law file, little-endian sample pairs for PCM16.
    ///
    /// # Errors
    /// As [`write_pcm`](Self::write_pcm), without the format check.
    pub fn write_encoded(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.check_room(bytes.len())?;
        self.inner_mut().write_all(bytes)?;
        self.advance(bytes.len())
    }

    /// Writes `frames` frames of silence (0 for PCM, the law's silence byte
    /// for G.711): a gap filled so the recording keeps real time.
    ///
    /// # Errors
    /// As [`write_encoded`](Self::write_encoded).
    pub fn write_silence(&mut self, frames: u64) -> Result<(), Error> {
        let byte = self.spec.format().law().map_or(0, |law| law.silence());
        let total = frames.saturating_mul(u64::from(self.spec.block_align()));
        let total = usize::try_from(total).unwrap_or(usize::MAX);
        self.check_room(total)?;
        let buf = [byte; 1024];
        let mut left = total;
        while left > 0 {
            let n = left.min(buf.len());
            self.inner_mut().write_all(&buf[..n])?;
            left -= n;
        }
        self.advance(total)
    }

    /// Rewrites the header with the sizes written so far, then returns to
    /// the end and flushes.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn update_header(&mut self) -> Result<(), Error> {
        let mut header = [0u8; MAX_HEADER_LEN];
        let len = self.spec.write_header(self.data_len, &mut header);
        let end = self.start + len as u64 + u64::from(self.data_len);
        let start = self.start;
        let inner = self.inner_mut();
        // Seeking a BufWriter flushes the audio before the header counts it.
        inner.seek(SeekFrom::Start(start))?;
        inner.write_all(&header[..len])?;
        inner.seek(SeekFrom::Start(end))?;
        inner.flush()?;
        Ok(())
    }

    /// Writes the pad byte an odd length needs, the final header, flushes,
    /// and returns the inner writer positioned at the end of the file.
    ///
    /// # Errors
    /// [`Error::Io`]; the file then holds the last header written.
    pub fn finish(mut self) -> Result<W, Error> {
        self.complete()?;
        Ok(self.inner.take().expect("finish keeps the writer"))
    }

    fn complete(&mut self) -> Result<(), Error> {
        if self.data_len % 2 == 1 {
            let len = self.spec.header_len() as u64;
            let pad_at = self.start + len + u64::from(self.data_len);
            let inner = self.inner_mut();
            inner.seek(SeekFrom::Start(pad_at))?;
            inner.write_all(&[0])?;
        }
        self.update_header()?;
        if self.data_len % 2 == 1 {
            // update_header returned to the end of the audio; step past the pad.
            self.inner_mut().seek(SeekFrom::Current(1))?;
        }
        Ok(())
    }

    fn inner_mut(&mut self) -> &mut W {
        self.inner
            .as_mut()
            .expect("inner writer present until finalize")
    }

    fn expect_format(&self, format: SampleFormat) -> Result<(), Error> {
        if self.spec.format() == format {
            Ok(())
        } else {
            Err(Error::WrongSampleFormat {
                expected: format,
                found: self.spec.format(),
            })
        }
    }

    fn check_room(&self, bytes: usize) -> Result<(), Error> {
        let block_align = usize::from(self.spec.block_align());
        if bytes % block_align != 0 {
            return Err(Error::PartialFrame {
                len: bytes,
                block_align: self.spec.block_align(),
            });
        }
        let limit = self.spec.max_data_len();
        let room = (limit - self.data_len) as usize;
        if bytes > room {
            return Err(Error::WavFull {
                written: self.data_len,
                limit,
            });
        }
        Ok(())
    }

    fn advance(&mut self, bytes: usize) -> Result<(), Error> {
        // check_room bounded bytes by the u32 room left.
        self.data_len += bytes as u32;
        if let (Some(at), Some(step)) = (self.next_rewrite, self.interval_bytes) {
            if self.data_len >= at {
                self.next_rewrite = Some(self.data_len.saturating_add(step));
                self.update_header()?;
            }
        }
        Ok(())
    }
}

impl<W: Write + Seek> Drop for WavWriter<W> {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = self.complete();
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::Law;
    use crate::wav::{WavFile, WavReadMode};
    use std::io::Cursor;
    use std::prelude::rust_2024::*;
    use std::vec;

    #[test]
    fn header_is_rewritten_every_interval_of_audio() {
        let spec = WavSpec::g711(Law::Ulaw);
        let mut w = WavWriter::with_header_interval(
            Cursor::new(Vec::new()),
            spec,
            Some(Duration::from_millis(100)),
        )
        .unwrap();
        let parse = |w: &WavWriter<Cursor<Vec<u8>>>| {
            WavFile::parse_with(w.get_ref().get_ref(), WavReadMode::Strict)
                .map(|f| f.frames())
                .map_err(|e| e.to_string())
        };
        w.write_encoded(&[0xff; 799]).unwrap();
        // Not yet rewritten: the header still says 0 bytes, which parses.
        assert_eq!(parse(&w), Ok(0));
        w.write_encoded(&[0xff; 1]).unwrap();
        assert_eq!(parse(&w), Ok(800));
        w.write_encoded(&[0xff; 1000]).unwrap();
        assert_eq!(parse(&w), Ok(1800));
        let file = w.finish().unwrap().into_inner();
        assert_eq!(WavFile::parse(&file).unwrap().frames(), 1800);
    }

    #[test]
    fn odd_g711_length_gets_a_pad_byte_and_the_cursor_ends_after_it() {
        let mut w = WavWriter::new(Cursor::new(Vec::new()), WavSpec::g711(Law::Alaw)).unwrap();
        w.write_encoded(&[1, 2, 3]).unwrap();
        let cursor = w.finish().unwrap();
        assert_eq!(cursor.position(), 58 + 4);
        let file = cursor.into_inner();
        assert_eq!(file.len(), 58 + 4);
        assert_eq!(file[58..], [1, 2, 3, 0]);
        assert_eq!(WavFile::parse(&file).unwrap().data(), [1, 2, 3]);
    }

    #[test]
    fn wrong_format_and_partial_frames_are_refused_and_nothing_is_written() {
        let mut w =
            WavWriter::new(Cursor::new(Vec::new()), WavSpec::pcm16_mono(false).stereo()).unwrap();
        w.write_pcm(&[1, 2]).unwrap();
        let err = w.write_pcm(&[1, 2, 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "6 bytes is not a whole number of 4-byte frames"
        );
        let err = w.write_encoded(&[0; 2]).unwrap_err();
        assert!(matches!(err, Error::PartialFrame { len: 2, .. }), "{err}");
        let mut g711 = WavWriter::new(Cursor::new(Vec::new()), WavSpec::g711(Law::Alaw)).unwrap();
        assert_eq!(
            g711.write_pcm(&[0]).unwrap_err().to_string(),
            "this writer takes 16-bit PCM samples but the file is A-law"
        );
        assert_eq!(w.frames(), 1);
        let file = w.finish().unwrap().into_inner();
        assert_eq!(
            WavFile::parse(&file).unwrap().samples().collect::<Vec<_>>(),
            [1, 2]
        );
    }

    #[test]
    fn drop_finalizes_as_a_fallback() {
        let mut buf = Vec::new();
        {
            let mut w = WavWriter::new(Cursor::new(&mut buf), WavSpec::pcm16_mono(true)).unwrap();
            w.write_pcm(&[5; 10]).unwrap();
        }
        assert_eq!(WavFile::parse(&buf).unwrap().frames(), 10);
    }

    #[test]
    fn header_goes_where_the_stream_was() {
        let mut cursor = Cursor::new(vec![0xaa; 10]);
        cursor.set_position(10);
        let mut w = WavWriter::new(cursor, WavSpec::pcm16_mono(false)).unwrap();
        w.write_silence(3).unwrap();
        let file = w.finish().unwrap().into_inner();
        assert_eq!(file[..10], [0xaa; 10]);
        let wav = WavFile::parse(&file[10..]).unwrap();
        assert_eq!(wav.samples().collect::<Vec<_>>(), [0, 0, 0]);
    }
}
