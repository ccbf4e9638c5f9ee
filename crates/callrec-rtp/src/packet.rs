//! Zero-copy RTP packet view, validated once (RFC 3550 §5.1, RFC 8285).

use core::fmt;
use core::iter::FusedIterator;

/// Length of the fixed RTP header.
pub const FIXED_HEADER_LEN: usize = 12;

/// `profile` of an RFC 8285 one-byte header extension.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;

/// Mask and value of an RFC 8285 two-byte header extension's `profile`
/// (`0x100` followed by four application bits).
pub const TWO_BYTE_PROFILE_MASK: u16 = 0xFFF0;
/// See [`TWO_BYTE_PROFILE_MASK`].
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// What is wrong with a packet. Every variant carries the numbers it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// Shorter than the 12-byte fixed header.
    Truncated {
        /// Bytes needed (12).
        expected: usize,
        /// Bytes available.
        actual: usize,
    },
    /// The version field is not 2.
    UnsupportedVersion(u8),
    /// The CSRC count says more identifiers than the packet holds.
    CsrcOverrun {
        /// The CSRC count (CC).
        csrc_count: u8,
        /// Bytes the header with that many CSRCs needs.
        expected: usize,
        /// Bytes available.
        actual: usize,
    },
    /// The X bit is set, but the extension header or the extension it
    /// announces does not fit.
    ExtensionOverrun {
        /// Bytes the header up to the end of the extension needs.
        expected: usize,
        /// Bytes available.
        actual: usize,
    },
    /// An RFC 8285 element runs past the end of its extension block.
    ExtensionElementOverrun {
        /// The element's ID.
        id: u8,
        /// Its offset within the extension data.
        offset: usize,
        /// Its data length.
        len: usize,
        /// Data bytes left in the block after its header.
        available: usize,
    },
    /// An RFC 8285 two-byte element's ID is the last byte of the block, so
    /// its length byte is missing.
    ExtensionElementLengthMissing {
        /// The element's ID.
        id: u8,
        /// Its offset within the extension data.
        offset: usize,
    },
    /// The P bit is set but no byte follows the header to hold the count.
    PaddingWithoutPayload,
    /// The padding count is 0; it counts itself, so it is at least 1.
    PaddingCountZero,
    /// The padding count exceeds the bytes after the header.
    PaddingOverrun {
        /// The padding count (last byte).
        count: u8,
        /// Bytes after the header.
        available: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { expected, actual } => write!(
                f,
                "packet is {actual} bytes, shorter than the {expected}-byte RTP header"
            ),
            Self::UnsupportedVersion(v) => write!(f, "RTP version must be 2, got {v}"),
            Self::CsrcOverrun {
                csrc_count,
                expected,
                actual,
            } => write!(
                f,
                "{csrc_count} CSRCs need a {expected}-byte header but the packet is {actual} bytes"
            ),
            Self::ExtensionOverrun { expected, actual } => write!(
                f,
                "header extension ends at byte {expected} but the packet is {actual} bytes"
            ),
            Self::ExtensionElementOverrun {
                id,
                offset,
                len,
                available,
            } => write!(
                f,
                "extension element {id} at offset {offset} has {len} bytes but only {available} \
                 remain in the extension block"
            ),
            Self::ExtensionElementLengthMissing { id, offset } => write!(
                f,
                "two-byte extension element {id} at offset {offset} has no length byte"
            ),
            Self::PaddingWithoutPayload => {
                f.write_str("padding bit set but no bytes follow the header")
            }
            Self::PaddingCountZero => f.write_str("padding count is 0 (it must count itself)"),
            Self::PaddingOverrun { count, available } => write!(
                f,
                "padding count {count} exceeds the {available} bytes after the header"
            ),
        }
    }
}

impl core::error::Error for ParseError {}

/// Byte offsets of the fields.
mod field {
    pub(crate) const SEQUENCE: usize = 2;
    pub(crate) const TIMESTAMP: usize = 4;
    pub(crate) const SSRC: usize = 8;
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A validated RTP packet borrowing its bytes.
///
/// [`RtpPacket::parse`] checks every length once; afterwards no accessor can
/// fail or panic.
///
/// ```
/// use callrec_rtp::RtpPacket;
///
/// // V=2, PT=8 (PCMA), seq 1, ts 160, SSRC 0x11223344, 2-byte payload.
/// let bytes = [0x80, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0xa0, 0x11, 0x22, 0x33, 0x44, 0xd5, 0xd5];
/// let p = RtpPacket::parse(&bytes)?;
/// assert_eq!((p.payload_type(), p.sequence_number(), p.timestamp()), (8, 1, 160));
/// assert_eq!(p.payload(), [0xd5, 0xd5]);
/// # Ok::<(), callrec_rtp::ParseError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    data: &'a [u8],
    /// Offset of the payload: fixed header, CSRCs and extension.
    payload_start: usize,
    /// End of the payload: padding excluded.
    payload_end: usize,
    /// Range of the extension data (after its 4-byte header), if X is set.
    extension: Option<(usize, usize)>,
}

impl<'a> RtpPacket<'a> {
    /// Validates `data` as one RTP packet.
    ///
    /// # Errors
    /// A [`ParseError`] for the first rule broken, in header order: length,
    /// version, CSRC list, extension (and its RFC 8285 elements), padding.
    #[inline]
    pub fn parse(data: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_inner(data, true)
    }

    /// Validates `data` as [`parse`](Self::parse) does, except the RFC 8285
    /// elements inside an extension block: a recorder wants the audio of a
    /// packet whose extension elements are damaged, as long as the block
    /// itself (its length word) lies within the packet.
    /// [`Extension::elements`] stops at the first damaged element;
    /// [`check_elements`](Self::check_elements) tells what was wrong.
    ///
    /// # Errors
    /// A [`ParseError`] for the first rule broken, as [`parse`](Self::parse),
    /// never one of the element errors.
    #[inline]
    pub fn parse_lenient(data: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_inner(data, false)
    }

    /// Checks the RFC 8285 elements of the extension block, if any.
    ///
    /// # Errors
    /// [`ParseError::ExtensionElementOverrun`] or
    /// [`ParseError::ExtensionElementLengthMissing`] for the first damaged
    /// element. Always `Ok` for a packet from [`parse`](Self::parse).
    pub fn check_elements(&self) -> Result<(), ParseError> {
        match self.extension() {
            Some(ext) => check_element_list(ext.form(), ext.data()),
            None => Ok(()),
        }
    }

    #[inline(always)]
    fn parse_inner(data: &'a [u8], check_elements: bool) -> Result<Self, ParseError> {
        let len = data.len();
        if len < FIXED_HEADER_LEN {
            return Err(ParseError::Truncated {
                expected: FIXED_HEADER_LEN,
                actual: len,
            });
        }
        // RFC 3550 §5.1: "version (V): 2 bits ... The version defined by this
        // specification is two (2)."
        let version = data[0] >> 6;
        if version != 2 {
            return Err(ParseError::UnsupportedVersion(version));
        }
        let csrc_count = data[0] & 0x0f;
        let mut header_len = FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
        if len < header_len {
            return Err(ParseError::CsrcOverrun {
                csrc_count,
                expected: header_len,
                actual: len,
            });
        }
        let mut extension = None;
        if data[0] & 0x10 != 0 {
            // RFC 3550 §5.3.1: a 16-bit profile field, then "a 16-bit length
            // field that counts the number of 32-bit words in the extension,
            // excluding the four-octet extension header".
            if len < header_len + 4 {
                return Err(ParseError::ExtensionOverrun {
                    expected: header_len + 4,
                    actual: len,
                });
            }
            let profile = be16(data, header_len);
            let words = usize::from(be16(data, header_len + 2));
            let start = header_len + 4;
            let end = start + 4 * words;
            if len < end {
                return Err(ParseError::ExtensionOverrun {
                    expected: end,
                    actual: len,
                });
            }
            let form = ExtensionForm::of(profile);
            if check_elements {
                check_element_list(form, &data[start..end])?;
            }
            extension = Some((start, end));
            header_len = end;
        }
        let mut payload_end = len;
        if data[0] & 0x20 != 0 {
            // RFC 3550 §5.1: "The last octet of the padding contains a count
            // of how many padding octets should be ignored, including
            // itself."
            let available = len - header_len;
            if available == 0 {
                return Err(ParseError::PaddingWithoutPayload);
            }
            let count = data[len - 1];
            if count == 0 {
                return Err(ParseError::PaddingCountZero);
            }
            if usize::from(count) > available {
                return Err(ParseError::PaddingOverrun { count, available });
            }
            payload_end = len - usize::from(count);
        }
        Ok(Self {
            data,
            payload_start: header_len,
            payload_end,
            extension,
        })
    }

    /// The whole packet.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The RTP version (always 2).
    #[inline]
    pub fn version(&self) -> u8 {
        self.data[0] >> 6
    }

    /// Whether the P bit is set.
    #[inline]
    pub fn has_padding(&self) -> bool {
        self.data[0] & 0x20 != 0
    }

    /// Padding bytes after the payload (0 without the P bit).
    #[inline]
    pub fn padding_len(&self) -> usize {
        self.data.len() - self.payload_end
    }

    /// The M bit: for audio, the first packet of a talkspurt.
    #[inline]
    pub fn marker(&self) -> bool {
        self.data[1] & 0x80 != 0
    }

    /// The payload type (7 bits).
    #[inline]
    pub fn payload_type(&self) -> u8 {
        self.data[1] & 0x7f
    }

    /// The sequence number.
    #[inline]
    pub fn sequence_number(&self) -> u16 {
        be16(self.data, field::SEQUENCE)
    }

    /// The RTP timestamp.
    #[inline]
    pub fn timestamp(&self) -> u32 {
        be32(self.data, field::TIMESTAMP)
    }

    /// The synchronization source.
    #[inline]
    pub fn ssrc(&self) -> u32 {
        be32(self.data, field::SSRC)
    }

    /// The number of CSRCs.
    #[inline]
    pub fn csrc_count(&self) -> u8 {
        self.data[0] & 0x0f
    }

    /// The contributing sources.
    #[inline]
    pub fn csrcs(&self) -> Csrcs<'a> {
        let end = FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        Csrcs(self.data[FIXED_HEADER_LEN..end].chunks_exact(4))
    }

    /// The header extension, if the X bit is set.
    #[inline]
    pub fn extension(&self) -> Option<Extension<'a>> {
        self.extension.map(|(start, end)| Extension {
            profile: be16(self.data, start - 4),
            data: &self.data[start..end],
        })
    }

    /// Length of everything before the payload.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.payload_start
    }

    /// The payload, padding removed.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.data[self.payload_start..self.payload_end]
    }
}

impl fmt::Debug for RtpPacket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtpPacket")
            .field("marker", &self.marker())
            .field("payload_type", &self.payload_type())
            .field("sequence_number", &self.sequence_number())
            .field("timestamp", &self.timestamp())
            .field("ssrc", &format_args!("{:#010x}", self.ssrc()))
            .field("csrc_count", &self.csrc_count())
            .field("extension", &self.extension())
            .field("payload_len", &self.payload().len())
            .field("padding_len", &self.padding_len())
            .finish()
    }
}

/// Iterator over a packet's CSRCs.
#[derive(Debug, Clone)]
pub struct Csrcs<'a>(core::slice::ChunksExact<'a, u8>);

impl Iterator for Csrcs<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        self.0.next().map(|c| be32(c, 0))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Csrcs<'_> {}
impl FusedIterator for Csrcs<'_> {}

/// How an extension block is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExtensionForm {
    /// RFC 8285 one-byte headers (`profile` 0xBEDE).
    OneByte,
    /// RFC 8285 two-byte headers (`profile` 0x100X).
    TwoByte {
        /// The low four bits of `profile`.
        appbits: u8,
    },
    /// Any other profile: opaque data.
    Other,
}

impl ExtensionForm {
    /// The form a `profile` value announces.
    pub fn of(profile: u16) -> Self {
        if profile == ONE_BYTE_PROFILE {
            Self::OneByte
        } else if profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE {
            Self::TwoByte {
                appbits: (profile & 0x0f) as u8,
            }
        } else {
            Self::Other
        }
    }
}

/// A packet's header extension.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    profile: u16,
    data: &'a [u8],
}

impl<'a> Extension<'a> {
    /// The 16-bit profile-defined field.
    pub fn profile(&self) -> u16 {
        self.profile
    }

    /// The extension data (after its 4-byte header).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The layout its profile announces.
    pub fn form(&self) -> ExtensionForm {
        ExtensionForm::of(self.profile)
    }

    /// The RFC 8285 elements (none for [`ExtensionForm::Other`]); padding
    /// bytes are skipped, and a one-byte element with ID 15 ends the list.
    pub fn elements(&self) -> ExtensionElements<'a> {
        ExtensionElements {
            form: self.form(),
            data: self.data,
            pos: 0,
        }
    }
}

impl fmt::Debug for Extension<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extension")
            .field("profile", &format_args!("{:#06x}", self.profile))
            .field("len", &self.data.len())
            .finish()
    }
}

/// One RFC 8285 header extension element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ExtensionElement<'a> {
    /// Local identifier: 1..=14 in the one-byte form, 1..=255 in the
    /// two-byte form.
    pub id: u8,
    /// Element data: 1..=16 bytes (one-byte form), 0..=255 (two-byte form).
    pub data: &'a [u8],
}

impl<'a> ExtensionElement<'a> {
    /// An element.
    pub fn new(id: u8, data: &'a [u8]) -> Self {
        Self { id, data }
    }
}

/// Iterator over the elements of a validated extension block.
#[derive(Debug, Clone)]
pub struct ExtensionElements<'a> {
    form: ExtensionForm,
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ExtensionElements<'a> {
    type Item = ExtensionElement<'a>;

    fn next(&mut self) -> Option<ExtensionElement<'a>> {
        if self.form == ExtensionForm::Other {
            return None;
        }
        // Validated in `parse`; after `parse_lenient` a damaged element ends the list.
        let (element, next) = next_element(self.form, self.data, self.pos).ok()??;
        self.pos = next;
        Some(element)
    }
}

impl FusedIterator for ExtensionElements<'_> {}

/// Walks every RFC 8285 element of an extension block of `form`.
#[inline]
fn check_element_list(form: ExtensionForm, data: &[u8]) -> Result<(), ParseError> {
    if form != ExtensionForm::Other {
        let mut pos = 0;
        while let Some((_, next)) = next_element(form, data, pos)? {
            pos = next;
        }
    }
    Ok(())
}

/// The element at `pos` and the offset after it; `None` at the end of the
/// list. The one rule both validation and iteration use.
fn next_element(
    form: ExtensionForm,
    data: &[u8],
    mut pos: usize,
) -> Result<Option<(ExtensionElement<'_>, usize)>, ParseError> {
    loop {
        let Some(&first) = data.get(pos) else {
            return Ok(None);
        };
        // RFC 8285 §4.1.1: padding bytes have the value 0; they "MAY be placed
        // between extension elements ... and after the last extension
        // element"; a padding byte supplies neither an ID nor a length.
        if first == 0 {
            pos += 1;
            continue;
        }
        let (id, len, data_start) = match form {
            ExtensionForm::OneByte => {
                let id = first >> 4;
                // RFC 8285 §4.2: "The local identifier value 15 is reserved
                // ... If the ID value 15 is encountered, its length field
                // should be ignored, processing of the entire extension
                // should terminate at that point".
                if id == 15 {
                    return Ok(None);
                }
                if id == 0 {
                    // ID 0 with a non-zero length nibble: still padding.
                    pos += 1;
                    continue;
                }
                // "The 4-bit length is the number, minus one, of data bytes".
                (id, usize::from(first & 0x0f) + 1, pos + 1)
            }
            ExtensionForm::TwoByte { .. } => {
                let Some(&len) = data.get(pos + 1) else {
                    return Err(ParseError::ExtensionElementLengthMissing {
                        id: first,
                        offset: pos,
                    });
                };
                (first, usize::from(len), pos + 2)
            }
            ExtensionForm::Other => return Ok(None),
        };
        let available = data.len() - data_start;
        if len > available {
            return Err(ParseError::ExtensionElementOverrun {
                id,
                offset: pos,
                len,
                available,
            });
        }
        let end = data_start + len;
        return Ok(Some((
            ExtensionElement::new(id, &data[data_start..end]),
            end,
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    /// V=2, no P/X/CC, M=1, PT=8, seq 0x1234, ts 0xdeadbeef, SSRC 0x01020304,
    /// payload `aa bb cc`.
    const PACKET_BYTES: [u8; 15] = [
        0x80, 0x88, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb, 0xcc,
    ];

    fn err(bytes: &[u8]) -> ParseError {
        RtpPacket::parse(bytes).unwrap_err()
    }

    /// A header with X set and the given extension (profile, words, body).
    fn with_extension(profile: u16, body: &[u8], after: &[u8]) -> Vec<u8> {
        let mut v = PACKET_BYTES[..12].to_vec();
        v[0] |= 0x10;
        v.extend_from_slice(&profile.to_be_bytes());
        v.extend_from_slice(&((body.len() / 4) as u16).to_be_bytes());
        v.extend_from_slice(body);
        v.extend_from_slice(after);
        v
    }

    #[test]
    fn test_deconstruct() {
        let p = RtpPacket::parse(&PACKET_BYTES).unwrap();
        assert_eq!(p.version(), 2);
        assert!(p.marker());
        assert!(!p.has_padding());
        assert_eq!(p.payload_type(), 8);
        assert_eq!(p.sequence_number(), 0x1234);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), 0x0102_0304);
        assert_eq!(p.csrcs().count(), 0);
        assert!(p.extension().is_none());
        assert_eq!(p.payload(), [0xaa, 0xbb, 0xcc]);
        assert_eq!(p.header_len(), 12);
    }

    #[test]
    fn empty_and_short() {
        assert_eq!(
            err(&[]),
            ParseError::Truncated {
                expected: 12,
                actual: 0
            }
        );
        assert_eq!(
            err(&PACKET_BYTES[..11]),
            ParseError::Truncated {
                expected: 12,
                actual: 11
            }
        );
        assert_eq!(
            err(&[]).to_string(),
            "packet is 0 bytes, shorter than the 12-byte RTP header"
        );
        // A header with no payload is a valid (empty) packet.
        assert_eq!(RtpPacket::parse(&PACKET_BYTES[..12]).unwrap().payload(), []);
    }

    #[test]
    fn version_must_be_2() {
        for v in [0u8, 1, 3] {
            let mut b = PACKET_BYTES;
            b[0] = (b[0] & 0x3f) | (v << 6);
            assert_eq!(err(&b), ParseError::UnsupportedVersion(v));
        }
    }

    #[test]
    fn csrc_count_overrunning() {
        let mut b = PACKET_BYTES;
        b[0] |= 2; // two CSRCs need 20 bytes; the packet has 15
        assert_eq!(
            err(&b),
            ParseError::CsrcOverrun {
                csrc_count: 2,
                expected: 20,
                actual: 15
            }
        );
        let mut v = PACKET_BYTES[..12].to_vec();
        v[0] |= 2;
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 9]);
        let p = RtpPacket::parse(&v).unwrap();
        assert_eq!(p.csrcs().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(p.payload(), [9]);
    }

    #[test]
    fn padding_count_zero() {
        let mut v = PACKET_BYTES.to_vec();
        v[0] |= 0x20;
        v.push(0);
        assert_eq!(err(&v), ParseError::PaddingCountZero);
    }

    #[test]
    fn padding_larger_than_payload() {
        let mut v = PACKET_BYTES.to_vec();
        v[0] |= 0x20;
        v.push(5); // 4 bytes after the header, count 5
        assert_eq!(
            err(&v),
            ParseError::PaddingOverrun {
                count: 5,
                available: 4
            }
        );
        // Count equal to everything after the header: empty payload.
        let mut v = PACKET_BYTES.to_vec();
        v[0] |= 0x20;
        v.push(4);
        let p = RtpPacket::parse(&v).unwrap();
        assert_eq!((p.payload(), p.padding_len()), (&[][..], 4));
    }

    #[test]
    fn padding_bit_with_no_payload() {
        let mut v = PACKET_BYTES[..12].to_vec();
        v[0] |= 0x20;
        assert_eq!(err(&v), ParseError::PaddingWithoutPayload);
    }

    #[test]
    fn padding_is_stripped() {
        let mut v = PACKET_BYTES.to_vec();
        v[0] |= 0x20;
        v.extend_from_slice(&[0, 0, 3]);
        let p = RtpPacket::parse(&v).unwrap();
        assert_eq!(p.payload(), [0xaa, 0xbb, 0xcc]);
        assert_eq!(p.padding_len(), 3);
    }

    #[test]
    fn extension_bit_with_no_extension_header() {
        let mut v = PACKET_BYTES[..14].to_vec();
        v[0] |= 0x10;
        assert_eq!(
            err(&v),
            ParseError::ExtensionOverrun {
                expected: 16,
                actual: 14
            }
        );
    }

    #[test]
    fn extension_length_overrunning() {
        let mut v = with_extension(0x1234, &[0; 8], &[]);
        v[15] = 3; // claims 3 words, 2 present
        assert_eq!(
            err(&v),
            ParseError::ExtensionOverrun {
                expected: 28,
                actual: 24
            }
        );
    }

    #[test]
    fn opaque_extension() {
        let v = with_extension(0x1234, &[1, 2, 3, 4], &[0xee]);
        let p = RtpPacket::parse(&v).unwrap();
        let ext = p.extension().unwrap();
        assert_eq!(
            (ext.profile(), ext.data(), ext.form()),
            (0x1234, &[1, 2, 3, 4][..], ExtensionForm::Other)
        );
        assert_eq!(ext.elements().count(), 0);
        assert_eq!(p.payload(), [0xee]);
    }

    #[test]
    fn one_byte_elements() {
        // id 1 len 1 [0x10]; padding; id 2 len 2 [0x20 0x21]; padding.
        let body = [0x10, 0x10, 0x00, 0x21, 0x20, 0x21, 0x00, 0x00];
        let v = with_extension(ONE_BYTE_PROFILE, &body, &[0x55]);
        let p = RtpPacket::parse(&v).unwrap();
        let ext = p.extension().unwrap();
        assert_eq!(ext.form(), ExtensionForm::OneByte);
        assert_eq!(
            ext.elements().collect::<Vec<_>>(),
            [
                ExtensionElement::new(1, &[0x10]),
                ExtensionElement::new(2, &[0x20, 0x21])
            ]
        );
        assert_eq!(p.payload(), [0x55]);
    }

    #[test]
    fn one_byte_id_15_stops_parsing() {
        // id 1, then id 15 (its length ignored, even if it would overrun),
        // then bytes that would be an invalid element.
        let body = [0x10, 0xaa, 0xff, 0x3f];
        let v = with_extension(ONE_BYTE_PROFILE, &body, &[]);
        let p = RtpPacket::parse(&v).unwrap();
        assert_eq!(
            p.extension().unwrap().elements().collect::<Vec<_>>(),
            [ExtensionElement::new(1, &[0xaa])]
        );
    }

    #[test]
    fn one_byte_element_overrunning_at_end_of_buffer() {
        // id 1 claims 4 bytes; only 3 remain, and the packet ends there.
        let body = [0x13, 1, 2, 3];
        let v = with_extension(ONE_BYTE_PROFILE, &body, &[]);
        assert_eq!(
            err(&v),
            ParseError::ExtensionElementOverrun {
                id: 1,
                offset: 0,
                len: 4,
                available: 3
            }
        );
    }

    #[test]
    fn one_byte_element_overrunning_with_payload_after() {
        // The payload bytes after the block must not be eaten by the element.
        let body = [0x00, 0x00, 0x00, 0x52];
        let v = with_extension(ONE_BYTE_PROFILE, &body, &[9, 9, 9, 9, 9, 9]);
        assert_eq!(
            err(&v),
            ParseError::ExtensionElementOverrun {
                id: 5,
                offset: 3,
                len: 3,
                available: 0
            }
        );
        assert_eq!(
            err(&v).to_string(),
            "extension element 5 at offset 3 has 3 bytes but only 0 remain in the extension block"
        );
    }

    #[test]
    fn damaged_elements_still_deliver_the_payload_when_lenient() {
        // One-byte element 5 claims 3 bytes where 0 remain; the block itself
        // (one word) is in bounds, and the payload follows it.
        let body = [0x10, 0xaa, 0x00, 0x52];
        let v = with_extension(ONE_BYTE_PROFILE, &body, &[9, 8, 7]);
        assert!(RtpPacket::parse(&v).is_err());
        let p = RtpPacket::parse_lenient(&v).unwrap();
        assert_eq!(p.payload(), &[9, 8, 7]);
        // The elements before the damage are still there.
        assert_eq!(
            p.extension().unwrap().elements().collect::<Vec<_>>(),
            [ExtensionElement::new(1, &[0xaa])]
        );
        assert_eq!(
            p.check_elements(),
            Err(ParseError::ExtensionElementOverrun {
                id: 5,
                offset: 3,
                len: 3,
                available: 0
            })
        );
        // A block that overruns the packet is refused either way.
        let mut short = v.clone();
        short.truncate(14);
        assert!(RtpPacket::parse_lenient(&short).is_err());
        // A sound packet checks clean.
        let ok = with_extension(ONE_BYTE_PROFILE, &[0x10, 0xaa, 0, 0], &[1]);
        assert_eq!(
            RtpPacket::parse_lenient(&ok).unwrap().check_elements(),
            Ok(())
        );
    }

    #[test]
    fn two_byte_elements() {
        // id 1 len 0; id 2 len 3 [7 8 9]; padding.
        let body = [0x01, 0x00, 0x02, 0x03, 7, 8, 9, 0];
        let v = with_extension(0x1005, &body, &[]);
        let p = RtpPacket::parse(&v).unwrap();
        let ext = p.extension().unwrap();
        assert_eq!(ext.form(), ExtensionForm::TwoByte { appbits: 5 });
        assert_eq!(
            ext.elements().collect::<Vec<_>>(),
            [
                ExtensionElement::new(1, &[]),
                ExtensionElement::new(2, &[7, 8, 9])
            ]
        );
    }

    #[test]
    fn two_byte_element_overrunning() {
        let body = [0x07, 0x09, 1, 2];
        let v = with_extension(0x1000, &body, &[0xaa; 16]);
        assert_eq!(
            err(&v),
            ParseError::ExtensionElementOverrun {
                id: 7,
                offset: 0,
                len: 9,
                available: 2
            }
        );
    }

    #[test]
    fn two_byte_element_id_in_last_byte() {
        let body = [0x01, 0x01, 0xaa, 0x09];
        let v = with_extension(0x1000, &body, &[0xbb]);
        assert_eq!(
            err(&v),
            ParseError::ExtensionElementLengthMissing { id: 9, offset: 3 }
        );
    }
}
