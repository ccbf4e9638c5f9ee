//! What the SIPREC tests read back: a PCM16 WAV's channels by plain byte
//! offsets, and the power of a tone in them (Goertzel).

/// The power of `hz` in `samples` at `rate` (Goertzel), normalised by
/// length.
pub(crate) fn tone_power(samples: &[i16], rate: f64, hz: f64) -> f64 {
    let w = 2.0 * core::f64::consts::PI * hz / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len().max(1) as f64).powi(2)
}

/// The channels of a PCM16 WAV, read with plain byte offsets (the `fmt `
/// and `data` chunks found by name): rate, and each channel's samples.
pub(crate) fn wav_channels(bytes: &[u8]) -> (u32, Vec<Vec<i16>>) {
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let mut at = 12;
    let (mut channels, mut rate, mut data) = (0usize, 0u32, &bytes[0..0]);
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            channels = usize::from(u16::from_le_bytes([body[2], body[3]]));
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
            assert_eq!(u16::from_le_bytes([body[14], body[15]]), 16, "PCM16");
        } else if id == b"data" {
            data = body;
        }
        at += 8 + len + len % 2;
    }
    let mut out = vec![Vec::new(); channels];
    for (i, pair) in data.chunks_exact(2).enumerate() {
        out[i % channels].push(i16::from_le_bytes([pair[0], pair[1]]));
    }
    (rate, out)
}
