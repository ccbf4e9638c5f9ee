//! G.722 byte for byte against ffmpeg's encoder and decoder (which agree
//! with spandsp and libg722). The vectors and the script that made them are
//! in `fixtures/g722/`.

use callrec_audio::g722::{Decoder, Encoder};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/g722/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn s16(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn first_difference<T: PartialEq + Copy + core::fmt::Debug>(
    a: &[T],
    b: &[T],
) -> Option<(usize, T, T)> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .map(|i| (i, a[i], b[i]))
}

#[test]
fn encoder_matches_ffmpeg_from_the_first_byte() {
    let input = s16(&fixture("input.s16"));
    let expected = fixture("input.g722");
    assert_eq!(input.len(), 2 * expected.len());
    let mut out = vec![0u8; expected.len()];
    assert_eq!(Encoder::new().encode(&input, &mut out), expected.len());
    assert_eq!(
        first_difference(&out, &expected),
        None,
        "(byte index, ours, ffmpeg)"
    );
}

#[test]
fn encoder_state_carries_across_20ms_frames() {
    let input = s16(&fixture("input.s16"));
    let expected = fixture("input.g722");
    let mut encoder = Encoder::new();
    let mut out = Vec::new();
    for frame in input.chunks(320) {
        let mut codes = [0u8; 160];
        let n = encoder.encode(frame, &mut codes);
        out.extend_from_slice(&codes[..n]);
    }
    assert_eq!(out, expected);
}

#[test]
fn decoder_matches_ffmpeg_on_our_encoding() {
    let codes = fixture("input.g722");
    let expected = s16(&fixture("input.dec.s16"));
    let mut out = vec![0i16; expected.len()];
    assert_eq!(Decoder::new().decode(&codes, &mut out), expected.len());
    assert_eq!(
        first_difference(&out, &expected),
        None,
        "(sample index, ours, ffmpeg)"
    );
}

#[test]
fn decoder_matches_ffmpeg_on_random_codes() {
    // Random bytes reach every code and the predictor's saturation paths.
    let codes = fixture("random.g722");
    let expected = s16(&fixture("random.dec.s16"));
    let mut out = vec![0i16; expected.len()];
    let mut decoder = Decoder::new();
    let mut written = 0;
    for frame in codes.chunks(160) {
        written += decoder.decode(frame, &mut out[written..]);
    }
    assert_eq!(written, expected.len());
    assert_eq!(
        first_difference(&out, &expected),
        None,
        "(sample index, ours, ffmpeg)"
    );
}

mod properties {
    use callrec_audio::g722::{Decoder, Encoder};
    use proptest::prelude::*;

    proptest! {
        /// State carries across calls: any split of the input into calls
        /// gives the bytes of one call, both directions.
        #[test]
        fn any_split_gives_the_same_stream(
            pcm in prop::collection::vec(any::<i16>(), 0..2000),
            cuts in prop::collection::vec(0usize..1000, 0..8),
        ) {
            let pcm = &pcm[..pcm.len() & !1];
            let mut whole = vec![0u8; pcm.len() / 2];
            Encoder::new().encode(pcm, &mut whole);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| (c * 2).min(pcm.len())).collect();
            cuts.sort_unstable();
            let mut encoder = Encoder::new();
            let mut pieces = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([pcm.len()]) {
                let mut out = vec![0u8; (cut - start) / 2];
                encoder.encode(&pcm[start..cut], &mut out);
                pieces.extend(out);
                start = cut;
            }
            prop_assert_eq!(&pieces, &whole);

            let mut decoded = vec![0i16; pcm.len()];
            Decoder::new().decode(&whole, &mut decoded);
            let mut decoder = Decoder::new();
            let mut split = Vec::new();
            for chunk in whole.chunks(37) {
                let mut out = vec![0i16; chunk.len() * 2];
                decoder.decode(chunk, &mut out);
                split.extend(out);
            }
            prop_assert_eq!(split, decoded);
        }
    }
}
