//! Mixing streams of equal-length frames, and stereo interleaving.
//!
//! A phone records the local microphone and the remote party mixed into
//! one stream. Mixing sums the samples in 32 bits and saturates once at the
//! end, so two loud parties clip to full scale instead of wrapping around;
//! nothing is scaled down, so a single talker keeps its level. G.711 frames
//! are decoded, mixed and re-encoded, as the phone does.

use core::fmt;

use crate::g711::Law;

/// Samples mixed per internal block: the G.711 mixer decodes this many at a
/// time into stack buffers, so it never allocates.
const BLOCK: usize = 160;

/// The inputs of a mix do not line up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MixError {
    /// Fewer than one input.
    NoInputs,
    /// An input's length differs from the output's.
    LengthMismatch {
        /// Index of the input (for interleaving: 0 left, 1 right).
        input: usize,
        /// Its length in samples.
        len: usize,
        /// The length required (from the output buffer).
        expected: usize,
    },
}

impl fmt::Display for MixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoInputs => f.write_str("nothing to mix: no input streams"),
            Self::LengthMismatch {
                input,
                len,
                expected,
            } => write!(
                f,
                "input {input} has {len} samples, the output frame needs {expected}"
            ),
        }
    }
}

impl core::error::Error for MixError {}

fn check_lengths<T>(inputs: &[&[T]], expected: usize) -> Result<(), MixError> {
    if inputs.is_empty() {
        return Err(MixError::NoInputs);
    }
    match inputs.iter().position(|i| i.len() != expected) {
        Some(input) => Err(MixError::LengthMismatch {
            input,
            len: inputs[input].len(),
            expected,
        }),
        None => Ok(()),
    }
}

/// Mixes PCM16 frames: `out[n]` is the saturated sum of every `inputs[k][n]`.
///
/// ```
/// use callrec_audio::mix::mix_pcm16;
///
/// let local = [1000i16, 30000, -30000];
/// let remote = [-500i16, 10000, -10000];
/// let mut out = [0i16; 3];
/// mix_pcm16(&[&local, &remote], &mut out)?;
/// assert_eq!(out, [500, i16::MAX, i16::MIN]);
/// # Ok::<(), callrec_audio::mix::MixError>(())
/// ```
///
/// # Errors
/// [`MixError::NoInputs`], or [`MixError::LengthMismatch`] if an input is not
/// exactly `out.len()` samples; `out` is then left unchanged.
pub fn mix_pcm16(inputs: &[&[i16]], out: &mut [i16]) -> Result<(), MixError> {
    check_lengths(inputs, out.len())?;
    if let [a, b] = inputs {
        // The common case, in one pass.
        for ((o, &x), &y) in out.iter_mut().zip(*a).zip(*b) {
            *o = x.saturating_add(y);
        }
        return Ok(());
    }
    let mut acc = [0i32; BLOCK];
    for (start, chunk) in (0..out.len()).step_by(BLOCK).zip(out.chunks_mut(BLOCK)) {
        let acc = &mut acc[..chunk.len()];
        acc.fill(0);
        for input in inputs {
            for (a, &s) in acc.iter_mut().zip(&input[start..start + chunk.len()]) {
                *a += i32::from(s);
            }
        }
        for (o, &a) in chunk.iter_mut().zip(acc.iter()) {
            *o = saturate(a);
        }
    }
    Ok(())
}

/// Mixes G.711 frames of one law: decode, sum with saturation, encode.
///
/// ```
/// use callrec_audio::g711::Law;
/// use callrec_audio::mix::mix_g711;
///
/// let silence = [Law::Ulaw.silence(); 160];
/// let tone: Vec<u8> = (0..160).map(|n| Law::Ulaw.encode_sample((n * 100) as i16)).collect();
/// let mut out = [0u8; 160];
/// mix_g711(Law::Ulaw, &[&silence, &tone], &mut out)?;
/// assert_eq!(out[..], tone[..]); // µ-law silence is an exact zero
/// # Ok::<(), callrec_audio::mix::MixError>(())
/// ```
///
/// # Errors
/// As [`mix_pcm16`].
pub fn mix_g711(law: Law, inputs: &[&[u8]], out: &mut [u8]) -> Result<(), MixError> {
    check_lengths(inputs, out.len())?;
    let mut acc = [0i32; BLOCK];
    let mut decoded = [0i16; BLOCK];
    let mut mixed = [0i16; BLOCK];
    for (start, chunk) in (0..out.len()).step_by(BLOCK).zip(out.chunks_mut(BLOCK)) {
        let n = chunk.len();
        acc[..n].fill(0);
        for input in inputs {
            law.decode(&input[start..start + n], &mut decoded[..n]);
            for (a, &s) in acc[..n].iter_mut().zip(&decoded[..n]) {
                *a += i32::from(s);
            }
        }
        for (m, &a) in mixed[..n].iter_mut().zip(&acc[..n]) {
            *m = saturate(a);
        }
        law.encode(&mixed[..n], chunk);
    }
    Ok(())
}

/// Interleaves two mono frames into one stereo frame (`left[0], right[0],
/// left[1], …`): one call direction per channel.
///
/// Works for any sample type: PCM16 samples or G.711 bytes.
///
/// ```
/// use callrec_audio::mix::interleave_stereo;
///
/// let mut out = [0i16; 4];
/// interleave_stereo(&[1, 2], &[-1, -2], &mut out)?;
/// assert_eq!(out, [1, -1, 2, -2]);
/// # Ok::<(), callrec_audio::mix::MixError>(())
/// ```
///
/// # Errors
/// [`MixError::LengthMismatch`] unless both inputs are `out.len() / 2`
/// samples and `out.len()` is even.
pub fn interleave_stereo<T: Copy>(left: &[T], right: &[T], out: &mut [T]) -> Result<(), MixError> {
    let expected = out.len() / 2;
    for (input, len) in [left.len(), right.len()].into_iter().enumerate() {
        if len != expected || out.len() % 2 != 0 {
            return Err(MixError::LengthMismatch {
                input,
                len,
                expected: out.len().div_ceil(2),
            });
        }
    }
    for ((pair, &l), &r) in out.chunks_exact_mut(2).zip(left).zip(right) {
        pair[0] = l;
        pair[1] = r;
    }
    Ok(())
}

#[inline(always)]
fn saturate(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    #[test]
    fn three_inputs_saturate_once_at_the_end() {
        // 30000 + 30000 - 30000 must give 30000, not clip in the middle.
        let a = [30000i16; 200];
        let b = [30000i16; 200];
        let c = [-30000i16; 200];
        let mut out = [0i16; 200];
        mix_pcm16(&[&a, &b, &c], &mut out).unwrap();
        assert!(out.iter().all(|&s| s == 30000));
        mix_pcm16(&[&a, &b, &b], &mut out).unwrap();
        assert!(out.iter().all(|&s| s == i16::MAX));
        mix_pcm16(&[&c, &c, &c], &mut out).unwrap();
        assert!(out.iter().all(|&s| s == i16::MIN));
    }

    #[test]
    fn mismatched_lengths_name_the_input_and_leave_out_alone() {
        let mut out = [7i16; 4];
        let err = mix_pcm16(&[&[0; 4], &[0; 3]], &mut out).unwrap_err();
        assert_eq!(
            err,
            MixError::LengthMismatch {
                input: 1,
                len: 3,
                expected: 4
            }
        );
        assert_eq!(
            err.to_string(),
            "input 1 has 3 samples, the output frame needs 4"
        );
        assert_eq!(out, [7; 4]);
        assert_eq!(mix_pcm16(&[], &mut out), Err(MixError::NoInputs));
        assert!(interleave_stereo(&[1, 2], &[3], &mut [0; 4]).is_err());
        assert!(interleave_stereo(&[1], &[3], &mut [0; 3]).is_err());
    }

    #[test]
    fn g711_mix_is_decode_sum_encode() {
        for law in [Law::Alaw, Law::Ulaw] {
            let a: [u8; 400] = core::array::from_fn(|n| (n * 7) as u8);
            let b: [u8; 400] = core::array::from_fn(|n| (n * 13 + 5) as u8);
            let mut out = [0u8; 400];
            mix_g711(law, &[&a, &b], &mut out).unwrap();
            for n in 0..400 {
                let sum = i32::from(law.decode_sample(a[n])) + i32::from(law.decode_sample(b[n]));
                assert_eq!(out[n], law.encode_sample(saturate(sum)), "{law} sample {n}");
            }
        }
    }
}
