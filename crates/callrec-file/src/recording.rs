//! Zero-copy view over a whole recording, and the rule that reconciles the
//! header's `dataSize` with the body (shared by every reader).

use core::fmt;
use core::iter::FusedIterator;
use core::num::NonZeroU32;
use core::slice::ChunksExact;
use core::time::Duration;

use crate::{HEADER_LEN, Header, ParseError, Timeline};

/// How to treat a header whose `dataSize` disagrees with the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ReadMode {
    /// `dataSize` must be a whole number of frames and equal the body
    /// length; anything else is an error.
    #[default]
    Strict,
    /// Trust the body: use every whole frame after the header (at most what a
    /// `u32` `dataSize` can describe) and report the disagreement as a
    /// [`Recovery`]. For files cut off by a power failure or a pulled drive.
    Recover,
}

/// What recover mode did because the header disagreed with the body.
///
/// Never produced silently: every reader that recovers hands this back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Recovery {
    /// `dataSize` the header claimed.
    pub header_data_size: u32,
    /// Bytes actually found after the header.
    pub body_len: u64,
    /// `dataSize` used instead: the whole frames of the body.
    pub data_size: u32,
}

impl Recovery {
    /// Bytes after the header that were not used: a partial last frame, and
    /// anything past what a `u32` `dataSize` can describe.
    pub fn discarded_bytes(&self) -> u64 {
        self.body_len.saturating_sub(u64::from(self.data_size))
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "header dataSize {} disagreed with the {}-byte body; recovered {} bytes of whole frames",
            self.header_data_size, self.body_len, self.data_size
        )?;
        match self.discarded_bytes() {
            0 => Ok(()),
            n => write!(f, ", {n} trailing bytes ignored"),
        }
    }
}

/// In strict mode, `dataSize` must be whole frames; checked as soon as the
/// header is known.
pub(crate) fn check_whole_frames(header: &Header) -> Result<(), ParseError> {
    if header.data_size() % u32::from(header.rtp_len()) != 0 {
        return Err(ParseError::DataSizeNotFrameMultiple {
            data_size: header.data_size(),
            rtp_len: header.rtp_len(),
        });
    }
    Ok(())
}

/// Largest `dataSize` of whole `rtp_len`-byte frames not above `limit`.
pub(crate) fn whole_frames_within(rtp_len: u16, limit: u64) -> u32 {
    let rtp_len = u64::from(rtp_len);
    let limit = limit.min(u64::from(u32::MAX));
    // limit <= u32::MAX, so the result fits.
    (limit - limit % rtp_len) as u32
}

/// Checks `header` against a body of `body_len` bytes.
///
/// Returns the header to read with (its `dataSize` replaced in recover mode)
/// and what recovery did, if anything. Every reader in this crate goes
/// through this one function, so they agree on every input.
///
/// # Errors
/// In [`ReadMode::Strict`]: [`ParseError::DataSizeNotFrameMultiple`] or
/// [`ParseError::DataSizeMismatch`]. Recover mode never fails.
pub fn reconcile(
    header: &Header,
    body_len: u64,
    mode: ReadMode,
) -> Result<(Header, Option<Recovery>), ParseError> {
    match mode {
        ReadMode::Strict => {
            check_whole_frames(header)?;
            if u64::from(header.data_size()) != body_len {
                return Err(ParseError::DataSizeMismatch {
                    data_size: header.data_size(),
                    body_len,
                });
            }
            Ok((*header, None))
        }
        ReadMode::Recover => {
            let data_size = whole_frames_within(header.rtp_len(), body_len);
            if data_size == header.data_size() && u64::from(data_size) == body_len {
                return Ok((*header, None));
            }
            let recovery = Recovery {
                header_data_size: header.data_size(),
                body_len,
                data_size,
            };
            Ok((header.with_data_size(data_size), Some(recovery)))
        }
    }
}

/// A whole recording in memory, validated once; then every accessor is
/// infallible and borrows from the buffer.
///
/// ```
/// use callrec_file::{Header, CodecName, Recording};
/// use std::time::Duration;
///
/// let header = Header::new(CodecName::PCMU, 160, 160)?.with_data_size(3 * 160);
/// let mut file = header.to_bytes().to_vec();
/// file.extend_from_slice(&[0xff; 3 * 160]); // three frames of µ-law silence
///
/// let rec = Recording::parse(&file)?;
/// assert_eq!(rec.frame_count(), 3);
/// assert_eq!(rec.duration(), Some(Duration::from_millis(60)));
/// assert!(rec.frames().all(|f| f == [0xff; 160]));
/// # Ok::<(), callrec_file::ParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recording<'a> {
    header: Header,
    data: &'a [u8],
    recovery: Option<Recovery>,
}

impl<'a> Recording<'a> {
    /// Parses a whole file strictly.
    ///
    /// # Errors
    /// Any header error, [`ParseError::DataSizeNotFrameMultiple`], or
    /// [`ParseError::DataSizeMismatch`] when the body is not exactly
    /// `dataSize` bytes.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(buf, ReadMode::Strict)
    }

    /// Parses a whole file in the given mode.
    ///
    /// # Errors
    /// Any header error; in strict mode also the `dataSize` errors of
    /// [`reconcile`].
    pub fn parse_with(buf: &'a [u8], mode: ReadMode) -> Result<Self, ParseError> {
        let header = Header::parse(buf)?;
        let body = &buf[HEADER_LEN..];
        let (header, recovery) = reconcile(&header, body.len() as u64, mode)?;
        Ok(Self {
            header,
            data: &body[..header.data_size() as usize],
            recovery,
        })
    }

    /// The header, with `dataSize` as recovered in recover mode.
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// What recover mode did, or `None` if the header agreed with the body.
    pub const fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// The frame data: `frame_count() × rtpLen` bytes.
    pub const fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Number of frames.
    pub fn frame_count(&self) -> u32 {
        self.header.frame_count()
    }

    /// Frame `index`, or `None` past the end.
    pub fn frame(&self, index: u32) -> Option<&'a [u8]> {
        let len = usize::from(self.header.rtp_len());
        let start = usize::try_from(index).ok()?.checked_mul(len)?;
        self.data.get(start..start.checked_add(len)?)
    }

    /// All frames in order.
    pub fn frames(&self) -> Frames<'a> {
        Frames(self.data.chunks_exact(usize::from(self.header.rtp_len())))
    }

    /// Frames from `index` on (empty past the end), e.g. after
    /// [`Timeline::frame_at`] to start playback at a time.
    pub fn frames_from(&self, index: u32) -> Frames<'a> {
        let start = (index.min(self.frame_count()) as usize) * usize::from(self.header.rtp_len());
        Frames(self.data[start..].chunks_exact(usize::from(self.header.rtp_len())))
    }

    /// The timeline of a known codec.
    pub fn timeline(&self) -> Option<Timeline> {
        self.header.timeline()
    }

    /// The timeline at a caller-supplied clock rate (for unknown codecs).
    pub fn timeline_with_clock(&self, clock_rate: NonZeroU32) -> Timeline {
        self.header.timeline_with_clock(clock_rate)
    }

    /// Duration of a known codec.
    pub fn duration(&self) -> Option<Duration> {
        self.header.duration()
    }
}

/// Iterator over the frames of a [`Recording`].
#[derive(Debug, Clone)]
pub struct Frames<'a>(ChunksExact<'a, u8>);

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        self.0.next()
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }

    fn nth(&mut self, n: usize) -> Option<&'a [u8]> {
        self.0.nth(n)
    }
}

impl DoubleEndedIterator for Frames<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}

impl ExactSizeIterator for Frames<'_> {}
impl FusedIterator for Frames<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CodecName;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    const FRAME_LEN: usize = 4;

    /// PCMA, rtpLen 4, increment 32, two frames `01 02 03 04` and `05 06 07 08`.
    fn file(data_size: u32, body: &[u8]) -> Vec<u8> {
        let h = Header::new(CodecName::PCMA, FRAME_LEN as u16, 32)
            .unwrap()
            .with_data_size(data_size);
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }
    const BODY: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

    #[test]
    fn strict_whole_file() {
        let f = file(8, &BODY);
        let rec = Recording::parse(&f).unwrap();
        assert_eq!(rec.frame_count(), 2);
        assert_eq!(rec.recovery(), None);
        assert_eq!(rec.frame(0), Some(&BODY[..4]));
        assert_eq!(rec.frame(1), Some(&BODY[4..]));
        assert_eq!(rec.frame(2), None);
        assert_eq!(rec.frame(u32::MAX), None);
        assert_eq!(rec.frames().collect::<Vec<_>>(), [&BODY[..4], &BODY[4..]]);
        assert_eq!(rec.frames().next_back(), Some(&BODY[4..]));
        assert_eq!(rec.frames_from(1).collect::<Vec<_>>(), [&BODY[4..]]);
        assert_eq!(rec.frames_from(9).count(), 0);
        assert_eq!(rec.duration(), Some(Duration::from_millis(8)));
        assert_eq!(rec.data(), &BODY);
    }

    #[test]
    fn empty_recording_is_valid() {
        let f = file(0, &[]);
        let rec = Recording::parse(&f).unwrap();
        assert_eq!(rec.frame_count(), 0);
        assert_eq!(rec.frames().next(), None);
        assert_eq!(rec.duration(), Some(Duration::ZERO));
    }

    #[test]
    fn strict_errors() {
        // dataSize 0 after a power cut: the body is there, the header never patched.
        assert_eq!(
            Recording::parse(&file(0, &BODY)),
            Err(ParseError::DataSizeMismatch {
                data_size: 0,
                body_len: 8
            })
        );
        // dataSize too big: the body was cut.
        assert_eq!(
            Recording::parse(&file(12, &BODY)),
            Err(ParseError::DataSizeMismatch {
                data_size: 12,
                body_len: 8
            })
        );
        // Body cut mid-frame.
        assert_eq!(
            Recording::parse(&file(8, &BODY[..6])),
            Err(ParseError::DataSizeMismatch {
                data_size: 8,
                body_len: 6
            })
        );
        // dataSize not whole frames is reported before the length comparison.
        let e = Recording::parse(&file(6, &BODY[..6])).unwrap_err();
        assert_eq!(
            e,
            ParseError::DataSizeNotFrameMultiple {
                data_size: 6,
                rtp_len: 4
            }
        );
        assert_eq!(
            e.to_string(),
            "dataSize 6 is not a whole number of 4-byte frames"
        );
        assert_eq!(
            Recording::parse(&file(8, &BODY)[..40]),
            Err(ParseError::TruncatedHeader {
                expected: 76,
                actual: 40
            })
        );
    }

    #[test]
    fn recover_trusts_the_body_and_says_so() {
        let f = file(0, &BODY[..7]);
        let rec = Recording::parse_with(&f, ReadMode::Recover).unwrap();
        assert_eq!(rec.frame_count(), 1);
        assert_eq!(rec.header().data_size(), 4);
        let r = rec.recovery().copied().unwrap();
        assert_eq!(
            r,
            Recovery {
                header_data_size: 0,
                body_len: 7,
                data_size: 4
            }
        );
        assert_eq!(r.discarded_bytes(), 3);
        assert_eq!(
            r.to_string(),
            "header dataSize 0 disagreed with the 7-byte body; recovered 4 bytes of whole frames, \
             3 trailing bytes ignored"
        );
        // A consistent file is not "recovered".
        let f = file(8, &BODY);
        assert_eq!(
            Recording::parse_with(&f, ReadMode::Recover)
                .unwrap()
                .recovery(),
            None
        );
        // A stale but whole-frame dataSize is.
        let f = file(4, &BODY);
        let rec = Recording::parse_with(&f, ReadMode::Recover).unwrap();
        assert_eq!(rec.frame_count(), 2);
        assert_eq!(rec.recovery().unwrap().header_data_size, 4);
    }

    #[test]
    fn recover_still_rejects_a_bad_header() {
        let mut f = file(0, &BODY);
        f[64..68].copy_from_slice(&(-5i32).to_le_bytes());
        assert_eq!(
            Recording::parse_with(&f, ReadMode::Recover),
            Err(ParseError::RtpLenOutOfRange { value: -5 })
        );
    }

    #[test]
    fn recover_caps_at_u32_data_size() {
        let h = Header::new(CodecName::PCMA, 160, 160).unwrap();
        let body_len = u64::from(u32::MAX) + 1000;
        let (h, r) = reconcile(&h, body_len, ReadMode::Recover).unwrap();
        assert_eq!(h.data_size(), u32::MAX - u32::MAX % 160);
        assert_eq!(
            r.unwrap().discarded_bytes(),
            body_len - u64::from(h.data_size())
        );
    }
}
