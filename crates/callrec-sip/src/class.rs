//! Byte classes of RFC 3261, one byte at a time (a table) and 16 at a time
//! (`wide` vectors: SSE2 or NEON without `unsafe`, plain code elsewhere).
//! The builder's value checks and the parser's name and URI checks are all
//! "does this class appear anywhere", answered here in one vector step for
//! anything from 4 to 16 bytes.

use wide::u8x16;

/// RFC 3261 §25.1 `token` characters, as a table.
#[cfg(feature = "alloc")]
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        b += 1;
    }
    t
};

/// Whether `b` may appear in an RFC 3261 token.
#[cfg(feature = "alloc")]
#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Lanes that are all ones where `x < n` (unsigned), by `min` and compare
/// (SSE2 has no unsigned byte compare).
#[inline(always)]
fn below(x: u8x16, n: u8) -> u8x16 {
    x.min(u8x16::splat(n - 1)).cmp_eq(x)
}

/// Lanes equal to any of `set`.
#[inline(always)]
fn any_of(v: u8x16, set: &[u8]) -> u8x16 {
    let mut hit = u8x16::splat(0);
    for &b in set {
        hit |= v.cmp_eq(u8x16::splat(b));
    }
    hit
}

/// Lanes that are not token characters: letters and digits by range, the
/// ten others one compare each.
#[inline(always)]
pub(crate) fn not_token(v: u8x16) -> u8x16 {
    let letter = below((v | u8x16::splat(0x20)) - u8x16::splat(b'a'), 26);
    let digit = below(v - u8x16::splat(b'0'), 10);
    !(letter | digit | any_of(v, b"-.!%*_+`'~"))
}

/// Lanes outside visible ASCII (`!` to `~`): spaces, controls, DEL, bytes
/// over 127.
#[inline(always)]
pub(crate) fn not_visible(v: u8x16) -> u8x16 {
    !below(v - u8x16::splat(0x21), 0x5e)
}

/// Lanes a URI in a header may not hold: anything but visible ASCII, and
/// the `<`, `>` and `"` that would end the name-addr around it.
#[inline(always)]
pub(crate) fn not_uri(v: u8x16) -> u8x16 {
    not_visible(v) | any_of(v, b"<>\"")
}

/// CR, LF and NUL: what would end or cut a header line.
#[inline(always)]
pub(crate) fn line_break_or_nul(v: u8x16) -> u8x16 {
    any_of(v, b"\r\n\0")
}

/// `"` and `\`, which need a quoted-pair inside a quoted-string.
#[inline(always)]
pub(crate) fn quote_or_backslash(v: u8x16) -> u8x16 {
    any_of(v, b"\"\\")
}

/// Bit `i` set where `class` holds for `bytes[i]`.
#[cfg(feature = "alloc")]
#[inline(always)]
pub(crate) fn mask16(bytes: [u8; 16], class: impl Fn(u8x16) -> u8x16) -> u32 {
    class(u8x16::new(bytes)).move_mask() as u32 & 0xffff
}

/// Whether no byte of `v` is in `class`. Every byte is looked at in 16-byte
/// vectors: from 16 bytes on, in blocks with the last one overlapping its
/// neighbour; shorter values as two overlapping halves of 8 or 4 bytes put
/// side by side (or, under 4 bytes, each byte repeated), so a value of any
/// length is one or a few vector steps and no byte loop.
#[inline]
pub(crate) fn none_in(v: &[u8], class: impl Fn(u8x16) -> u8x16 + Copy) -> bool {
    let n = v.len();
    // `move_mask`, not `any`: wide 0.7.33's portable `u8x16::any` (used on
    // targets without SSE2/NEON: ARMv7 without NEON, Cortex-M, RISC-V,
    // MIPS) misses lanes 7 and 15, which let a lone LF through the
    // injection check there. The ARMv7 test run under QEMU found it;
    // `lane_7_and_15_hits_are_seen` keeps it found.
    let hits = |bytes: [u8; 16]| class(u8x16::new(bytes)).move_mask() != 0;
    let (Some(&first), Some(&last)) = (v.first(), v.last()) else {
        return true;
    };
    match n {
        16.. => {
            let mut hit = false;
            for chunk in v.chunks_exact(16) {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(chunk);
                hit |= hits(bytes);
            }
            let tail = v.last_chunk::<16>().copied().unwrap_or([first; 16]);
            !(hit | hits(tail))
        }
        8..=15 => {
            let head = v.first_chunk::<8>().copied().unwrap_or([first; 8]);
            let tail = v.last_chunk::<8>().copied().unwrap_or([last; 8]);
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&head);
            bytes[8..].copy_from_slice(&tail);
            !hits(bytes)
        }
        4..=7 => {
            let head = v.first_chunk::<4>().copied().unwrap_or([first; 4]);
            let tail = v.last_chunk::<4>().copied().unwrap_or([last; 4]);
            let mut bytes = [0u8; 16];
            for (i, quad) in bytes.chunks_exact_mut(4).enumerate() {
                quad.copy_from_slice(if i % 2 == 0 { &head } else { &tail });
            }
            !hits(bytes)
        }
        _ => {
            // One to three bytes: first, middle and last cover them all.
            let middle = v[n / 2];
            let mut bytes = [first; 16];
            bytes[1] = middle;
            bytes[2] = last;
            !hits(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use proptest::prelude::*;

    use super::{
        is_token_byte, line_break_or_nul, mask16, none_in, not_token, not_uri, not_visible,
        quote_or_backslash,
    };

    /// Each class as a plain predicate.
    fn scalar(class: usize) -> fn(u8) -> bool {
        [
            |b| !is_token_byte(b),
            |b: u8| !(0x21..=0x7e).contains(&b),
            |b: u8| !(0x21..=0x7e).contains(&b) || matches!(b, b'<' | b'>' | b'"'),
            |b: u8| matches!(b, b'\r' | b'\n' | 0),
            |b: u8| matches!(b, b'"' | b'\\'),
        ][class]
    }

    fn none_in_class(v: &[u8], class: usize) -> bool {
        match class {
            0 => none_in(v, not_token),
            1 => none_in(v, not_visible),
            2 => none_in(v, not_uri),
            3 => none_in(v, line_break_or_nul),
            _ => none_in(v, quote_or_backslash),
        }
    }

    #[test]
    fn every_byte_value_is_classified_as_the_table_says() {
        for b in 0..=255u8 {
            for class in 0..5 {
                let expected = scalar(class)(b);
                let vector = match class {
                    0 => mask16([b; 16], not_token),
                    1 => mask16([b; 16], not_visible),
                    2 => mask16([b; 16], not_uri),
                    3 => mask16([b; 16], line_break_or_nul),
                    _ => mask16([b; 16], quote_or_backslash),
                };
                assert_eq!(
                    vector,
                    if expected { 0xffff } else { 0 },
                    "{b:#04x} {class}"
                );
            }
        }
    }

    #[test]
    fn lane_7_and_15_hits_are_seen() {
        for len in [8usize, 16, 24, 32] {
            for at in 0..len {
                let mut v = alloc::vec![b'a'; len];
                v[at] = b'\n';
                assert!(!none_in(&v, line_break_or_nul), "LF at {at} of {len}");
            }
        }
    }

    proptest! {
        /// At every length, one bad byte anywhere is found, and none is
        /// reported where there is none.
        #[test]
        fn none_in_sees_every_byte(
            len in 0usize..70,
            class in 0usize..5,
            bad_at in any::<prop::sample::Index>(),
            bad in any::<u8>(),
        ) {
            // A value with no byte of the class, then one byte changed.
            let good = (0..=255u8).find(|&b| !scalar(class)(b)).unwrap();
            let mut v: Vec<u8> = alloc::vec![good; len];
            prop_assert!(none_in_class(&v, class));
            if len > 0 {
                v[bad_at.index(len)] = bad;
                prop_assert_eq!(none_in_class(&v, class), !scalar(class)(bad));
            }
        }
    }
}
