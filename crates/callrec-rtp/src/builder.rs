//! Writing RTP packets: an owned description, written into a caller buffer.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;
use core::fmt;

#[cfg(feature = "alloc")]
use bytes::BufMut;

use crate::ExtensionElement;
use crate::packet::{FIXED_HEADER_LEN, ONE_BYTE_PROFILE, TWO_BYTE_PROFILE};

/// Why a packet could not be written. Nothing is written then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriteError {
    /// The buffer is smaller than [`RtpPacketBuilder::buffer_len`].
    BufferTooShort {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// More than 15 CSRCs.
    TooManyCsrcs(usize),
    /// A payload type above 127.
    PayloadTypeOutOfRange(u8),
    /// An element ID the form cannot carry (one-byte: 1..=14; two-byte: 1..=255).
    ExtensionElementId(u8),
    /// An element length the form cannot carry (one-byte: 1..=16; two-byte: 0..=255).
    ExtensionElementLength {
        /// The element's ID.
        id: u8,
        /// Its data length.
        len: usize,
    },
    /// Raw extension data that is not a whole number of 32-bit words.
    ExtensionNotWordAligned(usize),
    /// An extension longer than 65535 words.
    ExtensionTooLong(usize),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooShort { needed, available } => write!(
                f,
                "packet needs {needed} bytes but the buffer has {available}"
            ),
            Self::TooManyCsrcs(n) => write!(f, "at most 15 CSRCs fit, got {n}"),
            Self::PayloadTypeOutOfRange(pt) => {
                write!(f, "payload type must be 0..=127, got {pt}")
            }
            Self::ExtensionElementId(id) => {
                write!(f, "extension element ID {id} is not valid in this form")
            }
            Self::ExtensionElementLength { id, len } => write!(
                f,
                "extension element {id} has {len} bytes, more than this form carries"
            ),
            Self::ExtensionNotWordAligned(len) => write!(
                f,
                "raw extension data must be whole 32-bit words, got {len} bytes"
            ),
            Self::ExtensionTooLong(len) => {
                write!(f, "extension of {len} bytes exceeds 65535 words")
            }
        }
    }
}

impl core::error::Error for WriteError {}

/// The header extension a builder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionSpec<'a> {
    /// Opaque data under a profile; `data` must be whole 32-bit words.
    Raw {
        /// The profile field.
        profile: u16,
        /// The data.
        data: &'a [u8],
    },
    /// RFC 8285 one-byte elements (IDs 1..=14, 1..=16 bytes each).
    OneByte(&'a [ExtensionElement<'a>]),
    /// RFC 8285 two-byte elements (IDs 1..=255, 0..=255 bytes each).
    TwoByte {
        /// The four application bits of the profile.
        appbits: u8,
        /// The elements.
        elements: &'a [ExtensionElement<'a>],
    },
}

impl ExtensionSpec<'_> {
    /// Bytes of extension data before word padding.
    #[inline(always)]
    fn unpadded_len(&self) -> usize {
        match self {
            Self::Raw { data, .. } => data.len(),
            Self::OneByte(elements) => elements.iter().map(|e| 1 + e.data.len()).sum(),
            Self::TwoByte { elements, .. } => elements.iter().map(|e| 2 + e.data.len()).sum(),
        }
    }

    #[inline]
    fn validate(&self) -> Result<(), WriteError> {
        match self {
            Self::Raw { data, .. } if data.len() % 4 != 0 => {
                return Err(WriteError::ExtensionNotWordAligned(data.len()));
            }
            Self::Raw { .. } => {}
            Self::OneByte(elements) => {
                for e in *elements {
                    if !(1..=14).contains(&e.id) {
                        return Err(WriteError::ExtensionElementId(e.id));
                    }
                    if !(1..=16).contains(&e.data.len()) {
                        return Err(WriteError::ExtensionElementLength {
                            id: e.id,
                            len: e.data.len(),
                        });
                    }
                }
            }
            Self::TwoByte { elements, .. } => {
                for e in *elements {
                    if e.id == 0 {
                        return Err(WriteError::ExtensionElementId(0));
                    }
                    if e.data.len() > 255 {
                        return Err(WriteError::ExtensionElementLength {
                            id: e.id,
                            len: e.data.len(),
                        });
                    }
                }
            }
        }
        let len = self.unpadded_len().div_ceil(4) * 4;
        if len / 4 > usize::from(u16::MAX) {
            return Err(WriteError::ExtensionTooLong(len));
        }
        Ok(())
    }
}

/// Describes a packet to write: header fields, CSRCs, extension, payload
/// and padding. Borrowed parts are not copied until written.
///
/// ```
/// use callrec_rtp::{RtpPacket, RtpPacketBuilder};
///
/// let payload = [0xd5u8; 160];
/// let builder = RtpPacketBuilder::new()
///     .payload_type(8)
///     .sequence_number(65535)
///     .timestamp(4_294_967_200)
///     .ssrc(0x1234_5678)
///     .marker(true)
///     .payload(&payload);
/// let mut buf = [0u8; 1500];
/// let n = builder.write(&mut buf)?;
/// assert_eq!(n, builder.buffer_len());
///
/// let p = RtpPacket::parse(&buf[..n])?;
/// assert_eq!((p.sequence_number(), p.marker(), p.payload()), (65535, true, &payload[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpPacketBuilder<'a> {
    marker: bool,
    payload_type: u8,
    sequence_number: u16,
    timestamp: u32,
    ssrc: u32,
    csrcs: &'a [u32],
    extension: Option<ExtensionSpec<'a>>,
    payload: &'a [u8],
    padding: u8,
}

impl<'a> RtpPacketBuilder<'a> {
    /// All fields zero, no payload.
    #[inline]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the M bit.
    #[must_use]
    #[inline]
    pub fn marker(mut self, marker: bool) -> Self {
        self.marker = marker;
        self
    }

    /// Sets the payload type (0..=127; checked when written).
    #[must_use]
    #[inline]
    pub fn payload_type(mut self, pt: u8) -> Self {
        self.payload_type = pt;
        self
    }

    /// Sets the sequence number.
    #[must_use]
    #[inline]
    pub fn sequence_number(mut self, seq: u16) -> Self {
        self.sequence_number = seq;
        self
    }

    /// Sets the timestamp.
    #[must_use]
    #[inline]
    pub fn timestamp(mut self, ts: u32) -> Self {
        self.timestamp = ts;
        self
    }

    /// Sets the SSRC.
    #[must_use]
    #[inline]
    pub fn ssrc(mut self, ssrc: u32) -> Self {
        self.ssrc = ssrc;
        self
    }

    /// Sets the CSRCs (at most 15; checked when written).
    #[must_use]
    #[inline]
    pub fn csrcs(mut self, csrcs: &'a [u32]) -> Self {
        self.csrcs = csrcs;
        self
    }

    /// Sets the header extension.
    #[must_use]
    #[inline]
    pub fn extension(mut self, extension: ExtensionSpec<'a>) -> Self {
        self.extension = Some(extension);
        self
    }

    /// Sets the payload.
    #[must_use]
    #[inline]
    pub fn payload(mut self, payload: &'a [u8]) -> Self {
        self.payload = payload;
        self
    }

    /// Adds `count` bytes of padding (the last holds `count`); 0 for none.
    #[must_use]
    #[inline]
    pub fn padding(mut self, count: u8) -> Self {
        self.padding = count;
        self
    }

    #[inline(always)]
    fn extension_len(&self) -> usize {
        self.extension
            .map_or(0, |e| 4 + e.unpadded_len().div_ceil(4) * 4)
    }

    /// Bytes the packet takes.
    #[inline(always)]
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len() + usize::from(self.padding)
    }

    #[inline]
    fn validate(&self) -> Result<(), WriteError> {
        if self.csrcs.len() > 15 {
            return Err(WriteError::TooManyCsrcs(self.csrcs.len()));
        }
        if self.payload_type > 127 {
            return Err(WriteError::PayloadTypeOutOfRange(self.payload_type));
        }
        if let Some(ext) = &self.extension {
            ext.validate()?;
        }
        Ok(())
    }

    /// Writes the packet at the start of `buf`; returns its length.
    ///
    /// # Errors
    /// A [`WriteError`]; `buf` is untouched then.
    #[inline(always)]
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        self.validate()?;
        let needed = self.buffer_len();
        let available = buf.len();
        let Some(out) = buf.get_mut(..needed) else {
            return Err(WriteError::BufferTooShort { needed, available });
        };
        let (header, rest) = out.split_at_mut(self.header_len());
        self.put_header(header);
        let (payload, padding) = rest.split_at_mut(self.payload.len());
        copy_inline(payload, self.payload);
        write_padding(padding, self.padding);
        Ok(needed)
    }

    /// Bytes before the payload: the fixed header, CSRCs and extension.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        FIXED_HEADER_LEN + 4 * self.csrcs.len() + self.extension_len()
    }

    /// Writes the packet around a payload of `payload_len` bytes that the
    /// caller has already put at `buf[header_len()..]` (an encoder writing
    /// straight into the packet buffer): the header in front of it, the
    /// padding after it; the payload bytes are not touched, and the
    /// builder's own [`payload`](Self::payload) is not used. Returns the
    /// packet length. The zero-copy twin of [`write`](Self::write):
    /// the same bytes result, without moving the payload.
    ///
    /// ```
    /// use callrec_rtp::{RtpPacket, RtpPacketBuilder};
    ///
    /// let builder = RtpPacketBuilder::new().payload_type(8).sequence_number(7).ssrc(1);
    /// let mut buf = [0u8; 1500];
    /// let at = builder.header_len();
    /// buf[at..at + 160].fill(0xd5); // the encoder writes the frame here
    /// let n = builder.write_header(&mut buf, 160)?;
    /// let p = RtpPacket::parse(&buf[..n])?;
    /// assert_eq!((p.sequence_number(), p.payload()), (7, &[0xd5; 160][..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A [`WriteError`]; `buf` is untouched then.
    #[inline(always)]
    pub fn write_header(&self, buf: &mut [u8], payload_len: usize) -> Result<usize, WriteError> {
        self.validate()?;
        let header_len = self.header_len();
        // `payload_len` comes from the caller: saturate rather than wrap, so
        // an absurd length is a `BufferTooShort`, never a short write.
        let needed = header_len
            .saturating_add(payload_len)
            .saturating_add(usize::from(self.padding));
        let available = buf.len();
        let Some(out) = buf.get_mut(..needed) else {
            return Err(WriteError::BufferTooShort { needed, available });
        };
        let (header, rest) = out.split_at_mut(header_len);
        self.put_header(header);
        let (_payload, padding) = rest.split_at_mut(payload_len);
        write_padding(padding, self.padding);
        Ok(needed)
    }

    /// The fixed header, CSRCs and extension into `out`, exactly
    /// [`header_len`](Self::header_len) bytes.
    #[inline(always)]
    fn put_header(&self, out: &mut [u8]) {
        // Fixed-size copies compile to plain stores; only a rare extension
        // is a variable-length copy.
        let (fixed, rest) = out.split_at_mut(FIXED_HEADER_LEN);
        fixed.copy_from_slice(&self.fixed_header());
        let (csrcs, extension) = rest.split_at_mut(4 * self.csrcs.len());
        for (chunk, csrc) in csrcs.chunks_exact_mut(4).zip(self.csrcs) {
            chunk.copy_from_slice(&csrc.to_be_bytes());
        }
        if let Some(ext) = &self.extension {
            emit_extension(
                ext,
                &mut SliceOut {
                    buf: extension,
                    pos: 0,
                },
            );
        }
    }

    /// Appends the packet to `vec`; returns its length.
    ///
    /// # Errors
    /// A [`WriteError`] other than `BufferTooShort`; `vec` is untouched then.
    #[cfg(feature = "alloc")]
    #[inline]
    pub fn write_vec(&self, vec: &mut Vec<u8>) -> Result<usize, WriteError> {
        self.validate()?;
        let start = vec.len();
        vec.resize(start + self.buffer_len(), 0);
        self.write(&mut vec[start..])
    }

    /// Puts the packet into `buf`; returns its length.
    ///
    /// # Errors
    /// A [`WriteError`]: `BufferTooShort` when `buf.remaining_mut()` is too
    /// small; nothing is put then.
    #[cfg(feature = "alloc")]
    pub fn write_buf(&self, buf: &mut impl BufMut) -> Result<usize, WriteError> {
        self.validate()?;
        let needed = self.buffer_len();
        if buf.remaining_mut() < needed {
            return Err(WriteError::BufferTooShort {
                needed,
                available: buf.remaining_mut(),
            });
        }
        buf.put_slice(&self.fixed_header());
        for csrc in self.csrcs {
            buf.put_u32(*csrc);
        }
        if let Some(ext) = &self.extension {
            emit_extension(ext, &mut BufOut(buf));
        }
        buf.put_slice(self.payload);
        if self.padding > 0 {
            buf.put_bytes(0, usize::from(self.padding) - 1);
            buf.put_u8(self.padding);
        }
        Ok(needed)
    }

    /// The first 12 bytes: flags, payload type, sequence number, timestamp,
    /// SSRC (RFC 3550 §5.1).
    #[inline(always)]
    fn fixed_header(&self) -> [u8; FIXED_HEADER_LEN] {
        let [s0, s1] = self.sequence_number.to_be_bytes();
        let [t0, t1, t2, t3] = self.timestamp.to_be_bytes();
        let [c0, c1, c2, c3] = self.ssrc.to_be_bytes();
        let first = 0x80
            | if self.padding > 0 { 0x20 } else { 0 }
            | if self.extension.is_some() { 0x10 } else { 0 }
            | (self.csrcs.len() as u8 & 0x0f);
        let second = if self.marker { 0x80 } else { 0 } | self.payload_type;
        [first, second, s0, s1, t0, t1, t2, t3, c0, c1, c2, c3]
    }
}

/// RFC 3550 padding: zeros, the last byte the count (`out` is `count` bytes).
#[inline(always)]
fn write_padding(out: &mut [u8], count: u8) {
    if let Some((last, zeros)) = out.split_last_mut() {
        zeros.fill(0);
        *last = count;
    }
}

/// Writes a validated extension (header, elements, word padding).
#[inline]
fn emit_extension(ext: &ExtensionSpec<'_>, out: &mut impl Out) {
    let unpadded = ext.unpadded_len();
    let padded = unpadded.div_ceil(4) * 4;
    let profile = match ext {
        ExtensionSpec::Raw { profile, .. } => *profile,
        ExtensionSpec::OneByte(_) => ONE_BYTE_PROFILE,
        ExtensionSpec::TwoByte { appbits, .. } => TWO_BYTE_PROFILE | u16::from(appbits & 0x0f),
    };
    let [p0, p1] = profile.to_be_bytes();
    let [l0, l1] = ((padded / 4) as u16).to_be_bytes();
    out.put(&[p0, p1, l0, l1]);
    match ext {
        ExtensionSpec::Raw { data, .. } => out.put(data),
        ExtensionSpec::OneByte(elements) => {
            for e in *elements {
                out.put(&[e.id << 4 | (e.data.len() - 1) as u8]);
                out.put(e.data);
            }
        }
        ExtensionSpec::TwoByte { elements, .. } => {
            for e in *elements {
                out.put(&[e.id, e.data.len() as u8]);
                out.put(e.data);
            }
        }
    }
    // Word padding is 0..=3 bytes.
    out.put(&[0; 3][..padded - unpadded]);
}

/// Where an extension is written.
trait Out {
    fn put(&mut self, bytes: &[u8]);
}

struct SliceOut<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Out for SliceOut<'_> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        copy_inline(&mut self.buf[self.pos..], bytes);
        self.pos += bytes.len();
    }
}

/// Copies `src` to the start of `dst` with inline moves instead of a call
/// into `memcpy`, which costs more than the copy at these sizes: extension
/// pieces are mostly a few bytes (a one-byte element carries 1..=16) and a
/// voice frame a few hundred (160 bytes for 20 ms of G.711 or G.722).
/// Lengths in between fixed sizes are two overlapping moves; past 512 bytes
/// `memcpy` is the better copy again.
#[inline(always)]
fn copy_inline(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    let dst = &mut dst[..n];
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        8..=16 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
        17..=512 => {
            // An index loop rather than a `zip` of chunk iterators: the
            // adapter's constructor was left as a call in larger callers
            // (the C API's functions), costing more than the copy.
            let mut i = 0;
            while i + 16 <= n {
                dst[i..i + 16].copy_from_slice(&src[i..i + 16]);
                i += 16;
            }
            if n % 16 != 0 {
                // The last 16 bytes, overlapping the blocks already copied.
                dst[n - 16..].copy_from_slice(&src[n - 16..]);
            }
        }
        _ => dst.copy_from_slice(src),
    }
}

#[cfg(feature = "alloc")]
struct BufOut<'b, B>(&'b mut B);

#[cfg(feature = "alloc")]
impl<B: BufMut> Out for BufOut<'_, B> {
    fn put(&mut self, bytes: &[u8]) {
        self.0.put_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_inline_copies_exactly_every_length() {
        let src: Vec<u8> = (1..=600u16).map(|x| x as u8).collect();
        for n in 0..=src.len() {
            let mut dst = [0xa5u8; 608];
            copy_inline(&mut dst, &src[..n]);
            assert_eq!(&dst[..n], &src[..n], "length {n}");
            assert!(
                dst[n..].iter().all(|&b| b == 0xa5),
                "length {n}: wrote past"
            );
        }
    }

    #[test]
    fn one_byte_extension_bytes() {
        // RFC 8285 §4.2: id 1 with one byte, id 2 with four, padded to a
        // word; header 0xBEDE and a length of two words.
        let elements = [
            ExtensionElement::new(1, &[0x30]),
            ExtensionElement::new(2, &[1, 2, 3, 4]),
        ];
        let builder = RtpPacketBuilder::new().extension(ExtensionSpec::OneByte(&elements));
        let mut buf = [0xa5u8; 32];
        let n = builder.write(&mut buf).unwrap();
        assert_eq!(n, 24);
        assert_eq!(
            buf[12..24],
            [0xbe, 0xde, 0x00, 0x02, 0x10, 0x30, 0x23, 1, 2, 3, 4, 0]
        );
        assert!(buf[24..].iter().all(|&b| b == 0xa5));
    }
}
