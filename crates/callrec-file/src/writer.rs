//! Streaming writer: header placeholder, frames, header patched at the end.

use core::num::NonZeroU32;
use std::io::{self, Seek, SeekFrom, Write};

use crate::header::field;
use crate::{Error, HEADER_LEN, Header, ParseError};

/// Writes a recording to any `Write + Seek`.
///
/// The header goes out first with `dataSize` 0; [`Writer::finish`] patches
/// it. With [`Writer::set_header_interval`] the header is also patched every
/// N frames, so a power cut loses at most N frames (plus whatever the sink
/// had not made durable). Dropping an unfinished writer patches the header
/// as a best-effort fallback, ignoring errors; call `finish` to see them.
///
/// ```
/// use callrec_file::{CodecName, Header, Recording, Writer};
/// use std::io::Cursor;
///
/// let mut w = Writer::new(Cursor::new(Vec::new()), Header::new(CodecName::PCMA, 160, 160)?)?;
/// for _ in 0..50 {
///     w.append(&[0xd5; 160])?; // 20 ms of A-law silence each
/// }
/// assert!(w.append(&[0xd5; 80]).is_err()); // wrong length: refused, nothing written
/// let (header, file) = w.finish_into_inner()?;
/// assert_eq!(header.data_size(), 50 * 160);
///
/// let bytes = file.into_inner();
/// let rec = Recording::parse(&bytes)?;
/// assert_eq!(rec.duration(), Some(std::time::Duration::from_secs(1)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Writer<W: Write + Seek> {
    /// `None` only after `finish` has taken it.
    inner: Option<W>,
    /// Stream position of the header.
    base: u64,
    header: Header,
    header_interval: Option<NonZeroU32>,
    frames_since_patch: u32,
}

impl<W: Write + Seek> Writer<W> {
    /// Starts a recording at the current position of `inner`, with the
    /// codec, `rtpLen` and `increment` of `header` (its `dataSize` is
    /// ignored: the writer counts).
    ///
    /// # Errors
    /// [`ParseError::CodecNameTooLong`] for a 64-byte codec name, which C
    /// readers could not terminate; [`Error::Io`].
    pub fn new(mut inner: W, header: Header) -> Result<Self, Error> {
        if !header.codec().is_writable() {
            return Err(ParseError::CodecNameTooLong {
                len: header.codec().as_bytes().len(),
            }
            .into());
        }
        let header = header.with_data_size(0);
        let base = inner.stream_position()?;
        inner.write_all(&header.to_bytes())?;
        Ok(Self {
            inner: Some(inner),
            base,
            header,
            header_interval: None,
            frames_since_patch: 0,
        })
    }

    /// Patches the header every `frames` frames (`None`: only at the end).
    pub fn set_header_interval(&mut self, frames: Option<NonZeroU32>) {
        self.header_interval = frames;
    }

    /// The header as it will be patched: `dataSize` counts the frames so far.
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// Bytes in the file so far: header plus frames.
    pub fn file_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.header.data_size())
    }

    fn inner(&mut self) -> io::Result<&mut W> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::other("recording writer already finished"))
    }

    /// Appends one frame.
    ///
    /// # Errors
    /// [`Error::FrameLen`] if `frame` is not `rtpLen` bytes and
    /// [`Error::DataSizeLimit`] if `dataSize` would pass `u32::MAX`; in both
    /// cases nothing is written. [`Error::Io`] if the sink fails: `dataSize`
    /// still counts only whole frames and the writer seeks back to the end of
    /// the last one (best effort), so the next append or `finish` leaves a
    /// consistent file; bytes of the failed frame may remain past that point
    /// until the file is truncated (the [`Recorder`](crate::Recorder) does).
    /// If the frame was written but the periodic header patch after it
    /// failed, the frame counts and the patch error is returned.
    pub fn append(&mut self, frame: &[u8]) -> Result<(), Error> {
        let rtp_len = self.header.rtp_len();
        if frame.len() != usize::from(rtp_len) {
            return Err(Error::FrameLen {
                expected: rtp_len,
                actual: frame.len(),
            });
        }
        let data_size = self
            .header
            .data_size()
            .checked_add(u32::from(rtp_len))
            .ok_or(Error::DataSizeLimit {
                data_size: self.header.data_size(),
                rtp_len,
            })?;
        let end = self.base + self.file_len();
        let inner = self.inner()?;
        if let Err(e) = inner.write_all(frame) {
            let _ = inner.seek(SeekFrom::Start(end));
            return Err(e.into());
        }
        self.header = self.header.with_data_size(data_size);
        self.frames_since_patch += 1;
        if self
            .header_interval
            .is_some_and(|n| self.frames_since_patch >= n.get())
        {
            self.patch_header()?;
        }
        Ok(())
    }

    /// Writes the current `dataSize` into the header now, then flushes.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn patch_header(&mut self) -> Result<(), Error> {
        let at = self.base + field::DATA_SIZE.start as u64;
        let end = self.base + self.file_len();
        let data_size = self.header.data_size().to_le_bytes();
        let inner = self.inner()?;
        inner.seek(SeekFrom::Start(at))?;
        inner.write_all(&data_size)?;
        inner.seek(SeekFrom::Start(end))?;
        inner.flush()?;
        self.frames_since_patch = 0;
        Ok(())
    }

    /// Patches the header and flushes; returns the final header.
    ///
    /// # Errors
    /// [`Error::Io`]; the file then still reads in
    /// [`ReadMode::Recover`](crate::ReadMode::Recover).
    pub fn finish(self) -> Result<Header, Error> {
        self.finish_into_inner().map(|(header, _)| header)
    }

    /// Like [`Writer::finish`], also giving back the sink.
    ///
    /// # Errors
    /// As [`Writer::finish`].
    pub fn finish_into_inner(mut self) -> Result<(Header, W), Error> {
        self.patch_header()?;
        let inner = self
            .inner
            .take()
            .ok_or_else(|| io::Error::other("recording writer already finished"))?;
        Ok((self.header, inner))
    }
}

impl<W: Write + Seek> Drop for Writer<W> {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = self.patch_header();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CodecName, ReadMode, Recording};
    use alloc::rc::Rc;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::cell::Cell;
    use std::io::Cursor;

    fn header() -> Header {
        Header::new(CodecName::PCMA, 4, 32).unwrap()
    }

    #[test]
    fn writes_what_c_firmware_writes() {
        let mut w = Writer::new(Cursor::new(Vec::new()), header()).unwrap();
        w.append(&[1, 2, 3, 4]).unwrap();
        w.append(&[5, 6, 7, 8]).unwrap();
        let (h, out) = w.finish_into_inner().unwrap();
        let mut expected = b"PCMA".to_vec();
        expected.resize(64, 0);
        expected.extend_from_slice(&[4, 0, 0, 0, 32, 0, 0, 0, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(out.into_inner(), expected);
        assert_eq!(h.data_size(), 8);
    }

    #[test]
    fn wrong_frame_length_writes_nothing() {
        let mut w = Writer::new(Cursor::new(Vec::new()), header()).unwrap();
        w.append(&[1, 2, 3, 4]).unwrap();
        let e = w.append(&[1, 2, 3]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "frame is 3 bytes but rtpLen is 4; nothing was written"
        );
        assert_eq!(w.header().data_size(), 4);
        let (_, out) = w.finish_into_inner().unwrap();
        assert_eq!(out.into_inner().len(), 76 + 4);
    }

    #[test]
    fn refuses_unterminated_codec_name() {
        let mut bytes = header().to_bytes();
        bytes[..64].fill(b'Z');
        let parsed = Header::parse(&bytes).unwrap();
        let e = Writer::new(Cursor::new(Vec::new()), parsed).unwrap_err();
        assert!(matches!(
            e,
            Error::Parse(ParseError::CodecNameTooLong { len: 64 })
        ));
    }

    #[test]
    fn header_interval_bounds_the_loss() {
        let mut w = Writer::new(Cursor::new(Vec::new()), header()).unwrap();
        w.set_header_interval(NonZeroU32::new(2));
        for i in 0..5u8 {
            w.append(&[i; 4]).unwrap();
        }
        // Simulate a power cut: look at the bytes without finishing.
        let snapshot = w.inner.as_ref().unwrap().get_ref().clone();
        let stale = Header::parse(&snapshot).unwrap();
        assert_eq!(stale.data_size(), 16, "patched after frame 4");
        let rec = Recording::parse_with(&snapshot, ReadMode::Recover).unwrap();
        assert_eq!(rec.frame_count(), 5);
        drop(w);
    }

    #[test]
    fn drop_patches_the_header() {
        let mut buf = Vec::new();
        {
            let mut w = Writer::new(Cursor::new(&mut buf), header()).unwrap();
            w.append(&[9; 4]).unwrap();
        }
        assert_eq!(Recording::parse(&buf).unwrap().frame_count(), 1);
    }

    #[test]
    fn data_size_never_overflows() {
        let header = Header::new(CodecName::PCMA, 65535, 1).unwrap();
        let mut w = Writer::new(SeekableSink(0), header).unwrap();
        let frame = vec![0u8; 65535];
        // u32::MAX / 65535 = 65537 frames fit exactly.
        for _ in 0..65537 {
            w.append(&frame).unwrap();
        }
        assert_eq!(w.header().data_size(), u32::MAX);
        let e = w.append(&frame).unwrap_err();
        assert!(matches!(
            e,
            Error::DataSizeLimit {
                data_size: u32::MAX,
                rtp_len: 65535
            }
        ));
    }

    /// A sink that accepts seeks, for writing gigabytes without memory.
    struct SeekableSink(u64);
    impl Write for SeekableSink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Seek for SeekableSink {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            if let SeekFrom::Start(p) = pos {
                self.0 = p;
            }
            Ok(self.0)
        }
    }

    /// Fails writes once `budget` bytes are used up, like a full drive.
    struct FullAfter {
        data: Cursor<Vec<u8>>,
        budget: Rc<Cell<usize>>,
    }
    impl Write for FullAfter {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let n = b.len().min(self.budget.get());
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            self.budget.set(self.budget.get() - n);
            self.data.write(&b[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Seek for FullAfter {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.data.seek(pos)
        }
    }

    fn writer_on_drive_with_room_for(bytes: usize) -> (Writer<FullAfter>, Rc<Cell<usize>>) {
        let budget = Rc::new(Cell::new(bytes));
        let sink = FullAfter {
            data: Cursor::new(Vec::new()),
            budget: budget.clone(),
        };
        (Writer::new(sink, header()).unwrap(), budget)
    }

    #[test]
    fn write_error_keeps_whole_frames() {
        let (mut w, budget) = writer_on_drive_with_room_for(76 + 4 + 2);
        w.append(&[1; 4]).unwrap();
        // Two bytes of the second frame fit, then the drive is full.
        assert!(
            matches!(w.append(&[2; 4]), Err(Error::Io(e)) if e.kind() == io::ErrorKind::StorageFull)
        );
        assert_eq!(w.header().data_size(), 4);
        // Space comes back: the next frame overwrites the partial one.
        budget.set(100);
        w.append(&[3; 4]).unwrap();
        let (h, sink) = w.finish_into_inner().unwrap();
        assert_eq!(h.data_size(), 8);
        let bytes = sink.data.into_inner();
        let rec = Recording::parse(&bytes).unwrap();
        assert_eq!(rec.data(), &[1, 1, 1, 1, 3, 3, 3, 3]);
    }

    #[test]
    fn write_error_then_finish_leaves_a_recoverable_file() {
        let (mut w, budget) = writer_on_drive_with_room_for(76 + 4 + 2);
        w.append(&[1; 4]).unwrap();
        assert!(w.append(&[2; 4]).is_err());
        budget.set(4); // just room for the header patch
        let (_, sink) = w.finish_into_inner().unwrap();
        let bytes = sink.data.into_inner();
        // The partial frame stays until truncated; the header counts whole frames.
        assert_eq!(bytes.len(), 76 + 4 + 2);
        assert_eq!(Header::parse(&bytes).unwrap().data_size(), 4);
        assert_eq!(Recording::parse(&bytes[..80]).unwrap().data(), &[1; 4]);
        let rec = Recording::parse_with(&bytes, ReadMode::Recover).unwrap();
        assert_eq!(rec.data(), &[1; 4]);
    }
}
