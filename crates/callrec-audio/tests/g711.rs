//! G.711 against `audio-codec-algorithms` (verified exact with G.191):
//! every decode and every encode of both laws.

use callrec_audio::g711::{self, Law};

#[test]
fn all_256_decodes_match_for_both_laws() {
    let bytes: Vec<u8> = (0..=255).collect();
    let mut alaw = [0i16; 256];
    let mut ulaw = [0i16; 256];
    assert_eq!(g711::decode_alaw(&bytes, &mut alaw), 256);
    assert_eq!(g711::decode_ulaw(&bytes, &mut ulaw), 256);
    for b in 0..=255u8 {
        assert_eq!(
            alaw[usize::from(b)],
            audio_codec_algorithms::decode_alaw(b),
            "A-law {b:#04x}"
        );
        assert_eq!(
            ulaw[usize::from(b)],
            audio_codec_algorithms::decode_ulaw(b),
            "µ-law {b:#04x}"
        );
        assert_eq!(Law::Alaw.decode_sample(b), alaw[usize::from(b)]);
        assert_eq!(Law::Ulaw.decode_sample(b), ulaw[usize::from(b)]);
    }
}

#[test]
fn all_65536_encodes_match_for_both_laws() {
    let samples: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    let mut alaw = vec![0u8; samples.len()];
    let mut ulaw = vec![0u8; samples.len()];
    assert_eq!(g711::encode_alaw(&samples, &mut alaw), 65536);
    assert_eq!(g711::encode_ulaw(&samples, &mut ulaw), 65536);
    for (i, &s) in samples.iter().enumerate() {
        assert_eq!(alaw[i], audio_codec_algorithms::encode_alaw(s), "A-law {s}");
        assert_eq!(ulaw[i], audio_codec_algorithms::encode_ulaw(s), "µ-law {s}");
        assert_eq!(Law::Alaw.encode_sample(s), alaw[i]);
        assert_eq!(Law::Ulaw.encode_sample(s), ulaw[i]);
    }
}

#[test]
fn decode_then_encode_is_identity_except_ulaw_negative_zero() {
    for law in [Law::Alaw, Law::Ulaw] {
        for b in 0..=255u8 {
            let back = law.encode_sample(law.decode_sample(b));
            // µ-law 0x7f is "negative zero": it decodes to 0, which encodes as 0xff.
            if law == Law::Ulaw && b == 0x7f {
                assert_eq!(back, 0xff);
            } else {
                assert_eq!(back, b, "{law} {b:#04x}");
            }
        }
    }
}
