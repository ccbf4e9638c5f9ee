//! G.722 at 64 kbit/s (sub-band ADPCM), bit-exact with the reference
//! behaviour shared by spandsp, libg722 and ffmpeg.
//!
//! Each code byte carries two 16 kHz samples: six bits of low band and two of
//! high band. The adaptive step sizes start at the reference values (32 for
//! the low band, 8 for the high band), so the output matches those
//! implementations from the first sample. State is one small struct per
//! channel; nothing allocates.

/// The 24-tap quadrature mirror filter, shared by both directions.
const QMF: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// Low-band quantizer decision levels (QUANTL), indexed 1..=29.
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
/// Low-band code for a negative difference, by decision interval.
const ILN: [u8; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
/// Low-band code for a non-negative difference, by decision interval.
const ILP: [u8; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
/// Low-band log scale factor increments (LOGSCL).
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// Maps the 4-bit low-band code to a `WL` index.
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Inverse log table used by SCALEL and SCALEH.
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// 4-bit inverse quantizer (INVQAL), used for prediction.
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// 6-bit inverse quantizer (INVQBL), used for the decoder's output.
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// 2-bit high-band inverse quantizer (INVQAH).
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// High-band log scale factor increments (LOGSCH).
const WH: [i32; 3] = [0, -214, 798];
/// Maps the 2-bit high-band code to a `WH` index.
const RH2: [usize; 4] = [2, 1, 2, 1];

#[inline(always)]
fn sat16(x: i32) -> i32 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// Adaptive predictor and scale factor of one sub-band (blocks 3 and 4 of
/// the recommendation).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Band {
    /// Predicted signal (PREDIC).
    s: i32,
    /// Pole part of the prediction (FILTEP).
    sp: i32,
    /// Zero part of the prediction (FILTEZ).
    sz: i32,
    /// Reconstructed signal, now and the two before.
    r: [i32; 3],
    /// Pole coefficients a1, a2 (index 0 unused).
    a: [i32; 3],
    /// Partially reconstructed signal, now and the two before.
    p: [i32; 3],
    /// Quantized differences, now and the six before.
    d: [i32; 7],
    /// Zero coefficients b1..b6 (index 0 unused).
    b: [i32; 7],
    /// Log scale factor.
    nb: i32,
    /// Scale factor (step size).
    det: i32,
}

impl Band {
    const fn new(det: i32) -> Self {
        Self {
            s: 0,
            sp: 0,
            sz: 0,
            r: [0; 3],
            a: [0; 3],
            p: [0; 3],
            d: [0; 7],
            b: [0; 7],
            nb: 0,
            det,
        }
    }

    /// LOGSCL/LOGSCH and SCALEL/SCALEH: adapts the step size.
    #[inline(always)]
    fn adapt_scale(&mut self, increment: i32, max_nb: i32, shift_base: i32) {
        self.nb = (((self.nb * 127) >> 7) + increment).clamp(0, max_nb);
        let wd1 = ILB[((self.nb >> 6) & 31) as usize];
        let wd2 = shift_base - (self.nb >> 11);
        let wd3 = if wd2 < 0 { wd1 << -wd2 } else { wd1 >> wd2 };
        self.det = wd3 << 2;
    }

    /// Block 4: updates the predictor with the quantized difference `d`.
    #[inline(always)]
    fn update(&mut self, d: i32) {
        // RECONS and PARREC.
        self.d[0] = d;
        self.r[0] = sat16(self.s + d);
        self.p[0] = sat16(self.sz + d);

        // UPPOL2.
        let sg0 = self.p[0] >> 15;
        let sg1 = self.p[1] >> 15;
        let sg2 = self.p[2] >> 15;
        let wd1 = sat16(self.a[1] << 2);
        let wd2 = if sg0 == sg1 { -wd1 } else { wd1 }.min(32767);
        let mut wd3 = (wd2 >> 7) + if sg0 == sg2 { 128 } else { -128 };
        wd3 += (self.a[2] * 32512) >> 15;
        let ap2 = wd3.clamp(-12288, 12288);

        // UPPOL1.
        let wd1 = if sg0 == sg1 { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        let limit = sat16(15360 - ap2);
        let ap1 = sat16(wd1 + wd2).clamp(-limit, limit);

        // UPZERO, then DELAYA for the zero section.
        let step = if d == 0 { 0 } else { 128 };
        let sgd = d >> 15;
        for i in (1..7).rev() {
            let wd2 = if self.d[i] >> 15 == sgd { step } else { -step };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.b[i] = sat16(wd2 + wd3);
        }
        self.d.copy_within(0..6, 1);

        // DELAYA for the pole section.
        self.r[2] = self.r[1];
        self.r[1] = self.r[0];
        self.p[2] = self.p[1];
        self.p[1] = self.p[0];
        self.a[1] = ap1;
        self.a[2] = ap2;

        // FILTEP.
        let wd1 = (self.a[1] * sat16(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * sat16(self.r[2] + self.r[2])) >> 15;
        self.sp = sat16(wd1 + wd2);

        // FILTEZ.
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * sat16(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = sat16(sz);

        // PREDIC.
        self.s = sat16(self.sp + self.sz);
    }
}

/// The QMF delay line: 24 samples, stored twice so the newest 24 are always
/// one contiguous slice without shifting the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QmfHistory {
    x: [i32; 48],
    /// Index of the oldest of the current 24 samples; always even.
    pos: usize,
}

impl QmfHistory {
    const fn new() -> Self {
        Self { x: [0; 48], pos: 0 }
    }

    /// Appends two samples and returns the two filter sums:
    /// (Σ odd-position taps, Σ even-position taps), in the reference's order.
    #[inline(always)]
    fn push(&mut self, first: i32, second: i32) -> (i32, i32) {
        let pos = self.pos;
        self.x[pos] = first;
        self.x[pos + 1] = second;
        self.x[pos + 24] = first;
        self.x[pos + 25] = second;
        self.pos = if pos == 22 { 0 } else { pos + 2 };
        // The current window (oldest first) is x[pos+2 .. pos+26].
        let window = &self.x[pos + 2..pos + 26];
        let mut even = 0; // x[2i] * QMF[i]
        let mut odd = 0; // x[2i + 1] * QMF[11 - i]
        for (i, pair) in window.chunks_exact(2).enumerate() {
            even += pair[0] * QMF[i];
            odd += pair[1] * QMF[11 - i];
        }
        (odd, even)
    }
}

/// G.722 64 kbit/s encoder for one channel: 16 kHz PCM in, one byte per two
/// samples out.
///
/// ```
/// use callrec_audio::g722::{Decoder, Encoder};
///
/// let pcm: Vec<i16> = (0..320).map(|n| ((n as f32 * 0.2).sin() * 8000.0) as i16).collect();
/// let mut codes = [0u8; 160];
/// Encoder::new().encode(&pcm, &mut codes);
/// let mut decoded = [0i16; 320];
/// Decoder::new().decode(&codes, &mut decoded);
/// // The codec delays by 22 samples, and the decoded tone follows the input.
/// assert!(decoded[100..].iter().any(|&s| s > 4000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoder {
    qmf: QmfHistory,
    low: Band,
    high: Band,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder in the reference's initial state.
    pub const fn new() -> Self {
        Self {
            qmf: QmfHistory::new(),
            low: Band::new(32),
            high: Band::new(8),
        }
    }

    /// Encodes `pcm` (16 kHz) into `out`, one byte per two samples, and
    /// returns the number of bytes written: `min(pcm.len() / 2, out.len())`.
    ///
    /// A trailing odd sample is not encoded; feed samples in pairs (a 20 ms
    /// frame is 320 samples, 160 bytes).
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        let mut written = 0;
        for (pair, code) in pcm.chunks_exact(2).zip(out.iter_mut()) {
            *code = self.encode_pair(pair[0], pair[1]);
            written += 1;
        }
        written
    }

    /// Encodes two consecutive 16 kHz samples into one code byte.
    #[inline]
    pub fn encode_pair(&mut self, first: i16, second: i16) -> u8 {
        let (odd, even) = self.qmf.push(i32::from(first), i32::from(second));
        let xlow = (odd + even) >> 14;
        let xhigh = (odd - even) >> 14;

        // Low band: SUBTRA, QUANTL.
        let el = sat16(xlow - self.low.s);
        let magnitude = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 && magnitude >= (Q6[i] * self.low.det) >> 12 {
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };
        // INVQAL, LOGSCL, SCALEL, block 4.
        let ril = usize::from(ilow >> 2);
        let dlow = (self.low.det * QM4[ril]) >> 15;
        self.low.adapt_scale(WL[RL42[ril]], 18432, 8);
        self.low.update(dlow);

        // High band: SUBTRA, QUANTH.
        let eh = sat16(xhigh - self.high.s);
        let magnitude = if eh >= 0 { eh } else { -(eh + 1) };
        let outer = magnitude >= (564 * self.high.det) >> 12;
        let ihigh: u8 = match (eh < 0, outer) {
            (true, false) => 1,
            (true, true) => 0,
            (false, false) => 3,
            (false, true) => 2,
        };
        // INVQAH, LOGSCH, SCALEH, block 4.
        let dhigh = (self.high.det * QM2[usize::from(ihigh)]) >> 15;
        self.high
            .adapt_scale(WH[RH2[usize::from(ihigh)]], 22528, 10);
        self.high.update(dhigh);

        (ihigh << 6) | ilow
    }
}

/// G.722 64 kbit/s decoder for one channel: one byte in, two 16 kHz samples
/// out. Every byte value is a valid code, so decoding cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoder {
    qmf: QmfHistory,
    low: Band,
    high: Band,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder in the reference's initial state.
    pub const fn new() -> Self {
        Self {
            qmf: QmfHistory::new(),
            low: Band::new(32),
            high: Band::new(8),
        }
    }

    /// Decodes `codes` into `out` (16 kHz), two samples per byte, and returns
    /// the number of samples written: `2 * min(codes.len(), out.len() / 2)`.
    pub fn decode(&mut self, codes: &[u8], out: &mut [i16]) -> usize {
        let mut written = 0;
        for (&code, pair) in codes.iter().zip(out.chunks_exact_mut(2)) {
            let [first, second] = self.decode_byte(code);
            pair[0] = first;
            pair[1] = second;
            written += 2;
        }
        written
    }

    /// Decodes one code byte into two consecutive 16 kHz samples.
    #[inline]
    pub fn decode_byte(&mut self, code: u8) -> [i16; 2] {
        let ilow = usize::from(code & 0x3f);
        let ihigh = usize::from(code >> 6);

        // Low band: INVQBL, RECONS, LIMIT.
        let rlow = (self.low.s + ((self.low.det * QM6[ilow]) >> 15)).clamp(-16384, 16383);
        // INVQAL, LOGSCL, SCALEL, block 4.
        let ril = ilow >> 2;
        let dlow = (self.low.det * QM4[ril]) >> 15;
        self.low.adapt_scale(WL[RL42[ril]], 18432, 8);
        self.low.update(dlow);

        // High band: INVQAH, RECONS, LIMIT.
        let dhigh = (self.high.det * QM2[ihigh]) >> 15;
        let rhigh = (dhigh + self.high.s).clamp(-16384, 16383);
        // LOGSCH, SCALEH, block 4.
        self.high.adapt_scale(WH[RH2[ihigh]], 22528, 10);
        self.high.update(dhigh);

        // Receive QMF.
        let (odd, even) = self.qmf.push(rlow + rhigh, rlow - rhigh);
        [sat16(odd >> 11) as i16, sat16(even >> 11) as i16]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    #[test]
    fn initial_step_sizes_are_the_references() {
        let encoder = Encoder::new();
        assert_eq!((encoder.low.det, encoder.high.det), (32, 8));
        let decoder = Decoder::new();
        assert_eq!((decoder.low.det, decoder.high.det), (32, 8));
    }

    #[test]
    fn state_is_small() {
        assert!(size_of::<Encoder>() <= 512);
        assert!(size_of::<Decoder>() <= 512);
    }

    #[test]
    fn qmf_history_matches_a_shifted_buffer() {
        let mut ring = QmfHistory::new();
        let mut shifted = [0i32; 24];
        for n in 0..100i32 {
            let (a, b) = (n * 37 - 900, 1234 - n * n);
            shifted.copy_within(2.., 0);
            shifted[22] = a;
            shifted[23] = b;
            let mut even = 0;
            let mut odd = 0;
            for i in 0..12 {
                even += shifted[2 * i] * QMF[i];
                odd += shifted[2 * i + 1] * QMF[11 - i];
            }
            assert_eq!(ring.push(a, b), (odd, even), "after {n} pushes");
        }
    }
}
