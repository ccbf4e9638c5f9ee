//! G.711 A-law and µ-law, bit-exact with ITU-T G.191, table driven.
//!
//! Decoding is a 256-entry lookup. Encoding depends only on the top 12 bits
//! (A-law) or 14 bits (µ-law) of a sample, so it is a 4 KiB or 16 KiB
//! lookup. The tables are computed at compile time from the G.191
//! algorithms, and the tests compare all 256 decodes and all 65,536 encodes
//! of both laws with the `audio-codec-algorithms` crate.

use core::fmt;

/// The A-law byte a zero sample encodes to, for filling gaps (A-law has no
/// zero level: it decodes to +8, the smallest step).
pub const ALAW_SILENCE: u8 = 0xd5;
/// The µ-law byte for a zero sample, for filling gaps.
pub const ULAW_SILENCE: u8 = 0xff;

/// One of the two G.711 companding laws.
// G.711 has exactly two laws; a third is not coming.
#[allow(clippy::exhaustive_enums)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// A-law (PCMA, RTP payload type 8, WAVE format tag 6).
    Alaw,
    /// µ-law (PCMU, RTP payload type 0, WAVE format tag 7).
    Ulaw,
}

impl Law {
    /// The static RTP payload type (RFC 3551): 8 for A-law, 0 for µ-law.
    pub const fn payload_type(self) -> u8 {
        match self {
            Self::Alaw => 8,
            Self::Ulaw => 0,
        }
    }

    /// The law of a static RTP payload type; `None` for any but 8 and 0.
    pub const fn from_payload_type(payload_type: u8) -> Option<Self> {
        match payload_type {
            8 => Some(Self::Alaw),
            0 => Some(Self::Ulaw),
            _ => None,
        }
    }

    /// The byte that decodes to 0: [`ALAW_SILENCE`] or [`ULAW_SILENCE`].
    pub const fn silence(self) -> u8 {
        match self {
            Self::Alaw => ALAW_SILENCE,
            Self::Ulaw => ULAW_SILENCE,
        }
    }

    /// Decodes one byte.
    #[inline]
    pub const fn decode_sample(self, byte: u8) -> i16 {
        match self {
            Self::Alaw => ALAW_DECODE[byte as usize],
            Self::Ulaw => ULAW_DECODE[byte as usize],
        }
    }

    /// Encodes one sample.
    #[inline]
    pub const fn encode_sample(self, sample: i16) -> u8 {
        match self {
            Self::Alaw => ALAW_ENCODE[(sample as u16 >> 4) as usize],
            Self::Ulaw => ULAW_ENCODE[(sample as u16 >> 2) as usize],
        }
    }

    /// Decodes `input` into `out` and returns the number of samples written,
    /// `min(input.len(), out.len())`.
    pub fn decode(self, input: &[u8], out: &mut [i16]) -> usize {
        match self {
            Self::Alaw => decode_with(&ALAW_DECODE, input, out),
            Self::Ulaw => decode_with(&ULAW_DECODE, input, out),
        }
    }

    /// Encodes `input` into `out` and returns the number of bytes written,
    /// `min(input.len(), out.len())`.
    pub fn encode(self, input: &[i16], out: &mut [u8]) -> usize {
        match self {
            Self::Alaw => encode_with::<4>(&ALAW_ENCODE, input, out),
            Self::Ulaw => encode_with::<2>(&ULAW_ENCODE, input, out),
        }
    }
}

impl fmt::Display for Law {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Alaw => "A-law",
            Self::Ulaw => "µ-law",
        })
    }
}

fn decode_with(table: &[i16; 256], input: &[u8], out: &mut [i16]) -> usize {
    let n = input.len().min(out.len());
    for (o, &b) in out[..n].iter_mut().zip(&input[..n]) {
        *o = table[usize::from(b)];
    }
    n
}

fn encode_with<const SHIFT: u32>(table: &[u8], input: &[i16], out: &mut [u8]) -> usize {
    let n = input.len().min(out.len());
    for (o, &s) in out[..n].iter_mut().zip(&input[..n]) {
        // The index is < table.len() by construction (16 - SHIFT bits).
        *o = table[usize::from(s as u16 >> SHIFT)];
    }
    n
}

/// Decodes A-law bytes; see [`Law::decode`].
pub fn decode_alaw(input: &[u8], out: &mut [i16]) -> usize {
    Law::Alaw.decode(input, out)
}

/// Decodes µ-law bytes; see [`Law::decode`].
pub fn decode_ulaw(input: &[u8], out: &mut [i16]) -> usize {
    Law::Ulaw.decode(input, out)
}

/// Encodes to A-law; see [`Law::encode`].
pub fn encode_alaw(input: &[i16], out: &mut [u8]) -> usize {
    Law::Alaw.encode(input, out)
}

/// Encodes to µ-law; see [`Law::encode`].
pub fn encode_ulaw(input: &[i16], out: &mut [u8]) -> usize {
    Law::Ulaw.encode(input, out)
}

/// G.191 `alaw_expand` for one byte.
const fn alaw_expand(byte: u8) -> i16 {
    let ix = (byte ^ 0x55) & 0x7f;
    let exponent = ix >> 4;
    let mut mantissa = (ix & 0x0f) as i16;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 8;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    if byte > 127 { mantissa } else { -mantissa }
}

/// G.191 `alaw_compress` for one sample.
const fn alaw_compress(sample: i16) -> u8 {
    let mut ix = if sample < 0 {
        !sample >> 4
    } else {
        sample >> 4
    };
    if ix > 15 {
        let mut exponent = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            exponent += 1;
        }
        ix -= 16;
        ix += exponent << 4;
    }
    if sample >= 0 {
        ix |= 0x80;
    }
    (ix as u8) ^ 0x55
}

/// G.191 `ulaw_expand` for one byte.
const fn ulaw_expand(byte: u8) -> i16 {
    let mantissa = !byte;
    let exponent = (mantissa >> 4) & 0x07;
    let segment = exponent + 1;
    let mantissa = (mantissa & 0x0f) as i16;
    let step = 4i16 << segment;
    let magnitude = (0x80i16 << exponent) + step * mantissa + step / 2 - 4 * 33;
    if byte < 0x80 { -magnitude } else { magnitude }
}

/// G.191 `ulaw_compress` for one sample.
const fn ulaw_compress(sample: i16) -> u8 {
    let absno = if sample < 0 {
        (!sample >> 2) + 33
    } else {
        (sample >> 2) + 33
    };
    let absno = if absno > 0x1fff { 0x1fff } else { absno };
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high_nibble = 0x08 - segno;
    let low_nibble = 0x0f - ((absno >> segno) & 0x0f);
    let byte = ((high_nibble << 4) | low_nibble) as u8;
    if sample >= 0 { byte | 0x80 } else { byte }
}

const ALAW_DECODE: [i16; 256] = {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_expand(i as u8);
        i += 1;
    }
    table
};

const ULAW_DECODE: [i16; 256] = {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_expand(i as u8);
        i += 1;
    }
    table
};

/// Indexed by the top 12 bits of the sample's two's-complement pattern.
static ALAW_ENCODE: [u8; 4096] = {
    let mut table = [0; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = alaw_compress((i << 4) as u16 as i16);
        i += 1;
    }
    table
};

/// Indexed by the top 14 bits of the sample's two's-complement pattern.
static ULAW_ENCODE: [u8; 16384] = {
    let mut table = [0; 16384];
    let mut i = 0;
    while i < 16384 {
        table[i] = ulaw_compress((i << 2) as u16 as i16);
        i += 1;
    }
    table
};

/// The container's codec of this law (`PCMA` or `PCMU`).
#[cfg(feature = "std")]
impl From<Law> for callrec_file::Codec {
    fn from(law: Law) -> Self {
        match law {
            Law::Alaw => Self::Pcma,
            Law::Ulaw => Self::Pcmu,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    #[test]
    fn silence_bytes_decode_to_zero_or_the_smallest_step() {
        // A-law has no zero: 0xd5 is the smallest positive level (+8).
        assert_eq!(Law::Alaw.decode_sample(ALAW_SILENCE), 8);
        assert_eq!(Law::Ulaw.decode_sample(ULAW_SILENCE), 0);
        assert_eq!(Law::Alaw.encode_sample(0), ALAW_SILENCE);
        assert_eq!(Law::Ulaw.encode_sample(0), ULAW_SILENCE);
    }

    #[test]
    fn known_values_from_g711_tables() {
        // G.711 Table 1/2 end points.
        assert_eq!(Law::Alaw.decode_sample(0xaa), 32256);
        assert_eq!(Law::Alaw.decode_sample(0x2a), -32256);
        assert_eq!(Law::Ulaw.decode_sample(0x80), 32124);
        assert_eq!(Law::Ulaw.decode_sample(0x00), -32124);
        assert_eq!(Law::Alaw.encode_sample(i16::MAX), 0xaa);
        assert_eq!(Law::Ulaw.encode_sample(i16::MIN), 0x00);
    }

    #[test]
    fn slices_stop_at_the_shorter() {
        let mut out = [0u8; 3];
        assert_eq!(encode_alaw(&[0, 1000, -1000, 5], &mut out), 3);
        let mut pcm = [0i16; 8];
        assert_eq!(decode_ulaw(&out, &mut pcm), 3);
        assert_eq!(pcm[3..], [0; 5]);
    }
}
