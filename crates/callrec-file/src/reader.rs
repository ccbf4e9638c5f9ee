//! Streaming reader over `std::io::Read`, whole-file inspection and repair.

use alloc::vec;
use alloc::vec::Vec;
use core::num::NonZeroU32;
use core::time::Duration;
use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::header::field;
use crate::recording::{check_whole_frames, whole_frames_within};
use crate::{
    Error, HEADER_LEN, Header, HeaderOverrides, ParseError, ReadMode, Recovery, reconcile,
};

/// Reads a recording frame by frame from any [`Read`], in bounded memory
/// (one frame buffer).
///
/// It agrees with [`Recording::parse_with`](crate::Recording::parse_with) on
/// every input: where the whole-buffer parse succeeds it yields the same
/// frames and the same [`Recovery`]; where it fails, the reader fails with
/// the same [`ParseError`], after yielding at most a prefix of the frames. A
/// body that is longer than `dataSize` is only discovered at the end, so the
/// strict reader reads (and discards) the rest of the input to report its
/// exact length.
///
/// ```
/// use callrec_file::{CodecName, Header, Reader, Writer};
/// use std::io::Cursor;
///
/// let mut w = Writer::new(Cursor::new(Vec::new()), Header::new(CodecName::PCMA, 160, 160)?)?;
/// w.append(&[0xd5; 160])?;
/// let (_, file) = w.finish_into_inner()?;
///
/// let mut r = Reader::new(Cursor::new(file.into_inner()))?;
/// assert_eq!(r.header().codec().as_str(), "PCMA");
/// while let Some(frame) = r.next_frame()? {
///     assert_eq!(frame, [0xd5; 160]);
/// }
/// # Ok::<(), callrec_file::Error>(())
/// ```
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    header: Header,
    mode: ReadMode,
    frame: Vec<u8>,
    /// Frames handed out so far (or skipped by a seek).
    frames_read: u32,
    /// Frames that may be read before the end must be reached.
    frame_limit: u32,
    end: Option<Result<Option<Recovery>, ParseError>>,
    clock_rate: Option<NonZeroU32>,
}

impl<R: Read> Reader<R> {
    /// Reads the header; frames are then read strictly.
    ///
    /// # Errors
    /// A header error, [`ParseError::DataSizeNotFrameMultiple`], or
    /// [`Error::Io`].
    pub fn new(inner: R) -> Result<Self, Error> {
        Self::with_mode(inner, ReadMode::Strict)
    }

    /// Reads the header; frames are then read in recover mode, trusting the
    /// body (see [`Reader::recovery`]).
    ///
    /// # Errors
    /// A header error or [`Error::Io`].
    pub fn recover(inner: R) -> Result<Self, Error> {
        Self::with_mode(inner, ReadMode::Recover)
    }

    /// Reads the header for reading in `mode`.
    ///
    /// # Errors
    /// A header error or [`Error::Io`]; in strict mode also
    /// [`ParseError::DataSizeNotFrameMultiple`].
    pub fn with_mode(inner: R, mode: ReadMode) -> Result<Self, Error> {
        Self::with_overrides(inner, mode, &HeaderOverrides::default())
    }

    /// Reads the header with `overrides` applied (for a header whose codec,
    /// `rtpLen` or `increment` is damaged), for reading in `mode`.
    ///
    /// # Errors
    /// As [`Reader::with_mode`], for the header as overridden.
    pub fn with_overrides(
        mut inner: R,
        mode: ReadMode,
        overrides: &HeaderOverrides,
    ) -> Result<Self, Error> {
        let header = read_header(&mut inner, overrides)?;
        let frame_limit = match mode {
            ReadMode::Strict => {
                check_whole_frames(&header)?;
                header.frame_count()
            }
            ReadMode::Recover => {
                whole_frames_within(header.rtp_len(), u64::MAX) / u32::from(header.rtp_len())
            }
        };
        Ok(Self {
            inner,
            header,
            mode,
            frame: vec![0; usize::from(header.rtp_len())],
            frames_read: 0,
            frame_limit,
            end: None,
            clock_rate: header.clock_rate(),
        })
    }

    /// The header as found in the input.
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// Frames returned so far (plus any skipped by a seek).
    pub const fn frames_read(&self) -> u32 {
        self.frames_read
    }

    /// The next frame, `Ok(None)` at the end.
    ///
    /// # Errors
    /// In strict mode [`ParseError::DataSizeMismatch`] once the body proves
    /// shorter or longer than `dataSize`; [`Error::Io`] from the input. A
    /// parse error is returned again on every later call.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, Error> {
        if self.end.is_none() {
            if self.frames_read < self.frame_limit {
                let n = read_full(&mut self.inner, &mut self.frame)?;
                if n == self.frame.len() {
                    self.frames_read += 1;
                    return Ok(Some(&self.frame));
                }
                self.finish_body(n as u64)?;
            } else {
                self.finish_body(0)?;
            }
        }
        match &self.end {
            Some(Err(e)) => Err(Error::Parse(e.clone())),
            _ => Ok(None),
        }
    }

    /// Reached the end of the frames this reader will hand out: count what is
    /// left and reconcile, as the whole-buffer parse does.
    fn finish_body(&mut self, partial: u64) -> Result<(), Error> {
        let rest = io::copy(&mut self.inner, &mut io::sink())?;
        let body_len =
            u64::from(self.frames_read) * u64::from(self.header.rtp_len()) + partial + rest;
        self.end = Some(reconcile(&self.header, body_len, self.mode).map(|(_, r)| r));
        Ok(())
    }

    /// Once the end is reached in recover mode: what recovery did, or
    /// `None` if the header agreed with the body (or the end is not reached).
    pub fn recovery(&self) -> Option<&Recovery> {
        match &self.end {
            Some(Ok(r)) => r.as_ref(),
            _ => None,
        }
    }

    /// Sets the RTP clock rate for time-based seeking in a recording whose
    /// codec is not PCMA, PCMU or G722.
    pub fn set_clock_rate(&mut self, clock_rate: NonZeroU32) {
        self.clock_rate = Some(clock_rate);
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read + Seek> Reader<R> {
    /// Frames available: from `dataSize` in strict mode, from the input's
    /// length in recover mode.
    ///
    /// # Errors
    /// [`Error::Io`] from seeking.
    pub fn frame_count(&mut self) -> Result<u32, Error> {
        match self.mode {
            ReadMode::Strict => Ok(self.header.frame_count()),
            ReadMode::Recover => {
                let pos = self.inner.stream_position()?;
                let len = self.inner.seek(SeekFrom::End(0))?;
                self.inner.seek(SeekFrom::Start(pos))?;
                // The header was read from this stream, so len >= HEADER_LEN
                // unless it shrank underneath us.
                let body_len = len.saturating_sub(HEADER_LEN as u64);
                let data_size = whole_frames_within(self.header.rtp_len(), body_len);
                Ok(data_size / u32::from(self.header.rtp_len()))
            }
        }
    }

    /// Positions the reader so the next frame is frame `index`; `index`
    /// equal to the frame count positions at the end.
    ///
    /// The stream must start where the header starts (offset 0).
    ///
    /// # Errors
    /// [`Error::SeekOutOfRange`] past the end; [`Error::Io`].
    pub fn seek_to_frame(&mut self, index: u32) -> Result<(), Error> {
        let frames = self.frame_count()?;
        if index > frames {
            return Err(Error::SeekOutOfRange {
                frame: index,
                frames,
            });
        }
        self.inner
            .seek(SeekFrom::Start(self.header.frame_offset(index)))?;
        self.frames_read = index;
        self.end = None;
        Ok(())
    }

    /// Positions the reader at the frame playing at `time` (the end if
    /// `time` is past it) and returns that frame's index.
    ///
    /// # Errors
    /// [`Error::UnknownClockRate`] for a codec other than PCMA, PCMU or G722
    /// unless [`Reader::set_clock_rate`] was called; [`Error::Io`].
    pub fn seek_to_time(&mut self, time: Duration) -> Result<u32, Error> {
        let clock_rate = self.clock_rate.ok_or(Error::UnknownClockRate {
            codec: *self.header.codec(),
        })?;
        let frames = self.frame_count()?;
        let timeline = self
            .header
            .with_data_size(frames * u32::from(self.header.rtp_len()))
            .timeline_with_clock(clock_rate);
        let index = timeline.frame_at(time);
        self.seek_to_frame(index)?;
        Ok(index)
    }
}

/// Reads and parses the 76-byte header at the current position.
fn read_header<R: Read>(input: &mut R, overrides: &HeaderOverrides) -> Result<Header, Error> {
    let mut buf = [0; HEADER_LEN];
    let n = read_full(input, &mut buf)?;
    if n == HEADER_LEN {
        overrides.apply(&mut buf);
    }
    Ok(Header::parse(&buf[..n])?)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Checks a seekable recording without reading its frames: the header, and
/// `dataSize` against the input's length.
///
/// Returns the header to read with (`dataSize` recovered in recover mode)
/// and the [`Recovery`], if one was needed. Leaves the stream at the first
/// frame.
///
/// # Errors
/// What [`Recording::parse_with`](crate::Recording::parse_with) would report
/// for the same bytes, or [`Error::Io`].
pub fn inspect<R: Read + Seek>(
    input: &mut R,
    mode: ReadMode,
) -> Result<(Header, Option<Recovery>), Error> {
    inspect_with(input, mode, &HeaderOverrides::default())
}

/// [`inspect`] with header fields overridden (see [`HeaderOverrides`]).
///
/// # Errors
/// As [`inspect`], for the header as overridden.
pub fn inspect_with<R: Read + Seek>(
    input: &mut R,
    mode: ReadMode,
    overrides: &HeaderOverrides,
) -> Result<(Header, Option<Recovery>), Error> {
    input.seek(SeekFrom::Start(0))?;
    let header = read_header(input, overrides)?;
    let len = input.seek(SeekFrom::End(0))?;
    input.seek(SeekFrom::Start(HEADER_LEN as u64))?;
    // Only a file truncated underneath us since the header read is shorter.
    let body_len = len.saturating_sub(HEADER_LEN as u64);
    Ok(reconcile(&header, body_len, mode)?)
}

/// Repairs a recording in place after a crash: rewrites `dataSize` to the
/// body's whole frames and truncates a partial last frame, so the file reads
/// strictly again.
///
/// Returns what was changed, or `None` if the file was already consistent
/// (then it is not written at all).
///
/// # Errors
/// A header error (the file is left untouched); [`Error::BodyTooLarge`]
/// when the body holds more whole frames than `dataSize` can describe
/// (untouched too: repairing would drop audio); [`Error::Io`].
pub fn repair(path: impl AsRef<Path>) -> Result<Option<Recovery>, Error> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let (header, recovery) = inspect(&mut file, ReadMode::Recover)?;
    let Some(recovery) = recovery else {
        return Ok(None);
    };
    if recovery.discarded_bytes() >= u64::from(header.rtp_len()) {
        return Err(Error::BodyTooLarge {
            body_len: recovery.body_len,
        });
    }
    file.seek(SeekFrom::Start(field::DATA_SIZE.start as u64))?;
    file.write_all(&header.data_size().to_le_bytes())?;
    file.set_len(header.frame_offset(header.frame_count()))?;
    file.sync_all()?;
    Ok(Some(recovery))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CodecName, Recording};
    use alloc::string::ToString;
    use std::io::Cursor;

    fn file(data_size: u32, body: &[u8]) -> Vec<u8> {
        let h = Header::new(CodecName::PCMU, 4, 32)
            .unwrap()
            .with_data_size(data_size);
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }
    const BODY: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    fn read_all(r: &mut Reader<impl Read>) -> (Vec<Vec<u8>>, Result<(), Error>) {
        let mut frames = Vec::new();
        loop {
            match r.next_frame() {
                Ok(Some(f)) => frames.push(f.to_vec()),
                Ok(None) => return (frames, Ok(())),
                Err(e) => return (frames, Err(e)),
            }
        }
    }

    #[test]
    fn strict_reads_frames() {
        let mut r = Reader::new(Cursor::new(file(12, &BODY))).unwrap();
        let (frames, end) = read_all(&mut r);
        assert!(end.is_ok());
        assert_eq!(frames, [&BODY[..4], &BODY[4..8], &BODY[8..]]);
        assert_eq!(r.recovery(), None);
        assert!(r.next_frame().unwrap().is_none(), "fused");
    }

    #[test]
    fn strict_reports_long_body_at_the_end() {
        let mut r = Reader::new(Cursor::new(file(4, &BODY))).unwrap();
        let (frames, end) = read_all(&mut r);
        assert_eq!(frames.len(), 1);
        let Err(Error::Parse(e)) = end else {
            panic!("expected a parse error, got {end:?}")
        };
        assert_eq!(
            e,
            ParseError::DataSizeMismatch {
                data_size: 4,
                body_len: 12
            }
        );
        // The error repeats.
        assert!(matches!(r.next_frame(), Err(Error::Parse(p)) if p == e));
    }

    #[test]
    fn strict_reports_cut_body() {
        let mut r = Reader::new(Cursor::new(file(12, &BODY[..10]))).unwrap();
        let (frames, end) = read_all(&mut r);
        assert_eq!(frames.len(), 2);
        assert!(matches!(
            end,
            Err(Error::Parse(ParseError::DataSizeMismatch {
                data_size: 12,
                body_len: 10
            }))
        ));
    }

    #[test]
    fn header_errors_come_from_new() {
        let e = Reader::new(Cursor::new(&file(12, &BODY)[..50])).unwrap_err();
        assert!(matches!(
            e,
            Error::Parse(ParseError::TruncatedHeader {
                expected: 76,
                actual: 50
            })
        ));
        let e = Reader::new(Cursor::new(file(6, &BODY))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "dataSize 6 is not a whole number of 4-byte frames"
        );
    }

    #[test]
    fn recover_reads_what_is_there() {
        let bytes = file(0, &BODY[..10]);
        let mut r = Reader::recover(Cursor::new(&bytes)).unwrap();
        assert_eq!(r.frame_count().unwrap(), 2);
        let (frames, end) = read_all(&mut r);
        assert!(end.is_ok());
        assert_eq!(frames, [&BODY[..4], &BODY[4..8]]);
        let whole = Recording::parse_with(&bytes, ReadMode::Recover).unwrap();
        assert_eq!(r.recovery(), whole.recovery());
        assert_eq!(r.recovery().unwrap().discarded_bytes(), 2);
    }

    #[test]
    fn seeking() {
        let mut r = Reader::new(Cursor::new(file(12, &BODY))).unwrap();
        r.seek_to_frame(2).unwrap();
        assert_eq!(r.next_frame().unwrap(), Some(&BODY[8..]));
        r.seek_to_frame(3).unwrap();
        assert_eq!(r.next_frame().unwrap(), None);
        assert!(matches!(
            r.seek_to_frame(4),
            Err(Error::SeekOutOfRange {
                frame: 4,
                frames: 3
            })
        ));
        // increment 32 at 8 kHz: 4 ms per frame.
        assert_eq!(r.seek_to_time(Duration::from_millis(5)).unwrap(), 1);
        assert_eq!(r.next_frame().unwrap(), Some(&BODY[4..8]));
        assert_eq!(r.seek_to_time(Duration::from_secs(60)).unwrap(), 3);
    }

    #[test]
    fn seeking_by_time_needs_a_clock_for_unknown_codecs() {
        let h = Header::new(CodecName::new("L16").unwrap(), 4, 2)
            .unwrap()
            .with_data_size(12);
        let mut bytes = h.to_bytes().to_vec();
        bytes.extend_from_slice(&BODY);
        let mut r = Reader::new(Cursor::new(bytes)).unwrap();
        let e = r.seek_to_time(Duration::from_secs(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the RTP clock rate of codec \"L16\" is unknown; set one to use time"
        );
        r.set_clock_rate(NonZeroU32::new(1000).unwrap());
        assert_eq!(r.seek_to_time(Duration::from_millis(4)).unwrap(), 2);
    }

    #[test]
    fn inspect_matches_whole_parse() {
        for (data_size, body) in [
            (12, &BODY[..]),
            (0, &BODY[..]),
            (12, &BODY[..7]),
            (6, &BODY[..6]),
        ] {
            let bytes = file(data_size, body);
            for mode in [ReadMode::Strict, ReadMode::Recover] {
                let whole = Recording::parse_with(&bytes, mode)
                    .map(|r| (*r.header(), r.recovery().copied()));
                let seen = inspect(&mut Cursor::new(&bytes), mode).map_err(|e| match e {
                    Error::Parse(p) => p,
                    other => panic!("unexpected {other}"),
                });
                assert_eq!(seen, whole);
            }
        }
    }

    #[test]
    fn repair_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Record_20260101_000000.wav");
        std::fs::write(&path, file(0, &BODY[..10])).unwrap();
        let r = repair(&path).unwrap().unwrap();
        assert_eq!(r.header_data_size, 0);
        assert_eq!(r.data_size, 8);
        let bytes = std::fs::read(&path).unwrap();
        let rec = Recording::parse(&bytes).unwrap();
        assert_eq!(rec.data(), &BODY[..8]);
        // Repairing a consistent file changes nothing.
        assert_eq!(repair(&path).unwrap(), None);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn repair_leaves_bad_headers_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.wav");
        let mut bytes = file(0, &BODY);
        bytes[68..72].copy_from_slice(&0i32.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            repair(&path),
            Err(Error::Parse(ParseError::IncrementOutOfRange { value: 0 }))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
