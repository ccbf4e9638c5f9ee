//! WAV parser fixtures (one per malformation) and writer/parser round trips.

use core::time::Duration;
use std::io::Cursor;

use callrec_audio::g711::Law;
use callrec_audio::wav::{
    MAX_HEADER_LEN, SampleFormat, WavFile, WavHeader, WavParseError, WavReadMode, WavSpec,
};
use callrec_audio::{Error, WavWriter};
use proptest::prelude::*;

/// A RIFF file from (id, body) chunks, pad bytes added for odd bodies.
fn riff(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
    let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
    for (id, body) in chunks {
        out.extend_from_slice(*id);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        if body.len() % 2 == 1 {
            out.push(0);
        }
    }
    let riff_size = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    out
}

fn fmt(tag: u16, channels: u16, rate: u32, block_align: u16, bits: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&tag.to_le_bytes());
    f.extend_from_slice(&channels.to_le_bytes());
    f.extend_from_slice(&rate.to_le_bytes());
    f.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    f.extend_from_slice(&block_align.to_le_bytes());
    f.extend_from_slice(&bits.to_le_bytes());
    f
}

fn err(buf: &[u8]) -> String {
    WavFile::parse(buf).unwrap_err().to_string()
}

#[test]
fn pcm_with_list_chunk_and_odd_sized_chunk_before_data() {
    let file = riff(&[
        (b"LIST", b"INFOISFT\x05\0\0\0sox!\0"),
        (b"junk", b"abc"), // odd: a pad byte follows
        (b"fmt ", &fmt(1, 1, 16000, 2, 16)),
        (b"data", &[1, 0, 0xff, 0xff]),
    ]);
    let wav = WavFile::parse(&file).unwrap();
    assert_eq!(wav.spec(), WavSpec::pcm16_mono(true));
    assert_eq!(wav.samples().collect::<Vec<_>>(), [1, -1]);
}

#[test]
fn extensible_alaw_is_read_by_its_sub_format() {
    let mut f = fmt(0xfffe, 1, 8000, 1, 8);
    f.extend_from_slice(&22u16.to_le_bytes()); // cbSize
    f.extend_from_slice(&8u16.to_le_bytes()); // valid bits
    f.extend_from_slice(&4u32.to_le_bytes()); // channel mask
    f.extend_from_slice(&[
        6, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
    ]);
    let file = riff(&[(b"fmt ", &f), (b"data", &[0xd5])]);
    let wav = WavFile::parse(&file).unwrap();
    assert_eq!(wav.spec().format(), SampleFormat::Alaw);
    // A bad GUID tail is not guessed at.
    let mut bad = f.clone();
    bad[39] = 0;
    let file = riff(&[(b"fmt ", &bad), (b"data", &[0xd5])]);
    assert_eq!(
        WavFile::parse(&file).unwrap_err(),
        WavParseError::UnknownSubFormat
    );
}

#[test]
fn each_malformation_gets_its_own_error() {
    let pcm = fmt(1, 1, 8000, 2, 16);
    assert_eq!(
        err(b"RIFF\0\0"),
        "file ends inside the RIFF header: needs 12 bytes, 6 present"
    );
    assert_eq!(
        err(b"RIFX\0\0\0\0WAVEfmt "),
        "not a RIFF/WAVE file: starts with \"RIFX\" (RIFX and RF64 are not supported)"
    );
    assert_eq!(
        err(b"RIFF\0\0\0\0AVI "),
        "not a RIFF/WAVE file: starts with \"AVI \" (RIFX and RF64 are not supported)"
    );
    assert_eq!(
        err(&riff(&[(b"data", &[0, 0])])),
        "no \"fmt \" chunk before \"data\""
    );
    assert_eq!(err(&riff(&[(b"fmt ", &pcm)])), "no \"data\" chunk");
    assert_eq!(
        err(&riff(&[(b"fmt ", &pcm), (b"fmt ", &pcm), (b"data", &[])])),
        "a second \"fmt \" chunk"
    );
    assert_eq!(
        err(&riff(&[(b"fmt ", &pcm[..14]), (b"data", &[])])),
        "\"fmt \" chunk is 14 bytes, this format needs at least 16"
    );
    assert_eq!(
        err(&riff(&[(b"fmt ", &fmt(3, 1, 8000, 4, 32)), (b"data", &[])])),
        "format tag 0x0003 is not supported (only PCM 1, A-law 6, µ-law 7)"
    );
    assert_eq!(
        err(&riff(&[(b"fmt ", &fmt(1, 1, 8000, 3, 24)), (b"data", &[])])),
        "16-bit PCM with 24 bits per sample is not supported (PCM must be 16-bit, G.711 8-bit)"
    );
    assert_eq!(
        err(&riff(&[
            (b"fmt ", &fmt(1, 1, 44100, 2, 16)),
            (b"data", &[])
        ])),
        "16-bit PCM at 44100 Hz is not supported (PCM 8000 or 16000 Hz, G.711 8000 Hz)"
    );
    assert_eq!(
        err(&riff(&[(b"fmt ", &fmt(7, 9, 8000, 9, 8)), (b"data", &[])])),
        "9 channels: 1 to 8 are supported"
    );
    assert_eq!(
        err(&riff(&[(b"fmt ", &fmt(1, 2, 8000, 2, 16)), (b"data", &[])])),
        "block align is 2, channels × sample size gives 4"
    );
    let mut past = riff(&[(b"fmt ", &pcm), (b"LIST", &[0; 4])]);
    let n = past.len();
    past[n - 8..n - 4].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(
        err(&past),
        "chunk \"LIST\" claims 1000 bytes, only 4 follow"
    );
    let mut file = riff(&[(b"fmt ", &pcm), (b"data", &[0; 6])]);
    let n = file.len();
    file[n - 10..n - 6].copy_from_slice(&10u32.to_le_bytes());
    assert_eq!(
        err(&file),
        "data chunk claims 10 bytes, only 6 present (truncated file? read it in recover mode)"
    );
    assert_eq!(
        err(&riff(&[(b"fmt ", &pcm), (b"data", &[0; 3])])),
        "data chunk of 3 bytes is not a whole number of 2-byte frames"
    );
    let mut truncated = riff(&[(b"fmt ", &pcm)]);
    truncated.extend_from_slice(b"dat");
    assert_eq!(
        err(&truncated),
        "file ends inside the chunk header: needs 8 bytes, 3 present"
    );
    let many: Vec<(&[u8; 4], &[u8])> = (0..70).map(|_| (b"junk", &[][..])).collect();
    assert_eq!(err(&riff(&many)), "more than 64 chunks before \"data\"");
}

#[test]
fn recover_mode_takes_whole_frames_present() {
    let pcm = fmt(1, 2, 8000, 4, 16);
    let mut file = riff(&[(b"fmt ", &pcm), (b"data", &[1; 11])]);
    file.pop(); // the pad byte
    let n = file.len();
    // Declared 40, 11 present: 2 whole frames.
    file[n - 15..n - 11].copy_from_slice(&40u32.to_le_bytes());
    let wav = WavFile::parse_with(&file, WavReadMode::Recover).unwrap();
    assert_eq!(wav.frames(), 2);
    let recovery = wav.recovery().unwrap();
    assert_eq!((recovery.declared, recovery.used), (40, 8));
    // 0xffffffff (a streaming writer) means "to the end".
    file[n - 15..n - 11].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        WavFile::parse_with(&file, WavReadMode::Recover)
            .unwrap()
            .frames(),
        2
    );
}

#[test]
fn header_parses_from_a_prefix() {
    let spec = WavSpec::g711(Law::Ulaw);
    let mut buf = [0u8; MAX_HEADER_LEN];
    let len = spec.write_header(16000, &mut buf);
    let header = WavHeader::parse(&buf[..len]).unwrap();
    assert_eq!(
        (header.spec(), header.data_offset(), header.data_len()),
        (spec, 58, 16000)
    );
}

#[test]
fn a_full_file_refuses_more_audio_and_stays_valid() {
    let spec = WavSpec::g711(Law::Alaw);
    assert_eq!(spec.max_data_len(), u32::MAX - 58 - 1);
    let mut w = WavWriter::new(Cursor::new(Vec::new()), spec).unwrap();
    w.write_encoded(&[0xd5; 10]).unwrap();
    let err = w.write_silence(u64::from(u32::MAX)).unwrap_err();
    assert!(matches!(err, Error::WavFull { written: 10, .. }), "{err}");
    assert_eq!(w.data_len(), 10);
    let file = w.finish().unwrap().into_inner();
    assert_eq!(WavFile::parse(&file).unwrap().frames(), 10);
}

fn any_spec() -> impl Strategy<Value = WavSpec> {
    let formats = prop_oneof![
        Just((SampleFormat::Alaw, 8000)),
        Just((SampleFormat::Ulaw, 8000)),
        Just((SampleFormat::Pcm16, 8000)),
        Just((SampleFormat::Pcm16, 16000)),
    ];
    (formats, 1..=callrec_audio::wav::MAX_CHANNELS)
        .prop_map(|((format, rate), channels)| WavSpec::new(format, rate, channels).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever is written in whatever pieces reads back exactly.
    #[test]
    fn written_files_read_back(
        spec in any_spec(),
        pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..12),
        interval_ms in prop::option::of(1u64..200),
    ) {
        let block = usize::from(spec.block_align());
        let mut w = WavWriter::with_header_interval(
            Cursor::new(Vec::new()), spec, interval_ms.map(Duration::from_millis)).unwrap();
        let mut expected = Vec::new();
        for piece in &pieces {
            let whole = &piece[..piece.len() - piece.len() % block];
            if spec.format() == SampleFormat::Pcm16 {
                let samples: Vec<i16> = whole.chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
                w.write_pcm(&samples).unwrap();
            } else {
                w.write_encoded(whole).unwrap();
            }
            expected.extend_from_slice(whole);
        }
        let file = w.finish().unwrap().into_inner();
        prop_assert_eq!(file.len(), spec.header_len() + expected.len() + expected.len() % 2);
        let wav = WavFile::parse(&file).unwrap();
        prop_assert_eq!(wav.spec(), spec);
        prop_assert_eq!(wav.data(), &expected[..]);
        prop_assert_eq!(wav.recovery(), None);
    }

    /// A copy of the file taken at any moment (a kill -9), cut at any point
    /// after the last header rewrite, parses strictly with everything up to
    /// that rewrite; recover mode gives the same, or every whole frame
    /// present if no rewrite happened yet (declared length 0).
    #[test]
    fn a_killed_writer_leaves_a_playable_prefix(
        spec in any_spec(),
        frames_per_write in 1usize..200,
        writes in 1usize..60,
        cut_fraction in 0.0f64..1.0,
    ) {
        let block = usize::from(spec.block_align());
        let mut w = WavWriter::with_header_interval(
            Cursor::new(Vec::new()), spec, Some(Duration::from_millis(50))).unwrap();
        let mut snapshot = Vec::new();
        for n in 0..writes {
            w.write_encoded(&vec![(n % 251) as u8; frames_per_write * block]).unwrap();
            snapshot = w.get_ref().get_ref().clone();
        }
        let declared = WavHeader::parse(&snapshot).unwrap().data_len() as usize;
        let body = snapshot.len() - spec.header_len();
        prop_assert!(declared <= body);
        let cut = spec.header_len() + declared
            + ((body - declared) as f64 * cut_fraction) as usize;
        let cut_file = &snapshot[..cut];
        let strict = WavFile::parse(cut_file).unwrap();
        prop_assert_eq!(strict.data().len(), declared);
        let recovered = WavFile::parse_with(cut_file, WavReadMode::Recover).unwrap();
        let present = cut - spec.header_len();
        prop_assert_eq!(recovered.data().len(), if declared == 0 { present - present % block } else { declared });
        drop(w);
    }

    /// The parser never panics, and recover accepts whatever strict accepts.
    #[test]
    fn parser_survives_mutations(
        spec in any_spec(),
        flips in prop::collection::vec((0usize..80, any::<u8>()), 1..6),
        cut in 0usize..100,
    ) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let len = spec.write_header(20, &mut buf);
        let mut file = buf[..len].to_vec();
        file.extend_from_slice(&[0x55; 20]);
        for (at, value) in flips {
            if let Some(b) = file.get_mut(at) { *b = value; }
        }
        file.truncate(cut);
        callrec_audio::fuzzing::wav_read(&file);
    }
}

mod mixing {
    use callrec_audio::g711::Law;
    use callrec_audio::mix::{interleave_stereo, mix_g711, mix_pcm16};
    use proptest::prelude::*;

    proptest! {
        /// The mix is the 32-bit sum of the inputs, saturated once.
        #[test]
        fn pcm_mix_is_the_saturated_sum(
            inputs in (1usize..5, 0usize..400).prop_flat_map(|(n, len)| {
                prop::collection::vec(prop::collection::vec(any::<i16>(), len), n)
            }),
        ) {
            let len = inputs[0].len();
            let refs: Vec<&[i16]> = inputs.iter().map(Vec::as_slice).collect();
            let mut out = vec![0i16; len];
            mix_pcm16(&refs, &mut out).unwrap();
            for (i, &o) in out.iter().enumerate() {
                let sum: i32 = inputs.iter().map(|v| i32::from(v[i])).sum();
                prop_assert_eq!(i32::from(o), sum.clamp(-32768, 32767));
            }
        }

        /// G.711 mixing equals decode, PCM mix, encode.
        #[test]
        fn g711_mix_matches_the_pcm_mix(
            a in prop::collection::vec(any::<u8>(), 0..500),
            law in prop_oneof![Just(Law::Alaw), Just(Law::Ulaw)],
        ) {
            let b: Vec<u8> = a.iter().rev().copied().collect();
            let mut out = vec![0u8; a.len()];
            mix_g711(law, &[&a, &b], &mut out).unwrap();
            let (mut pa, mut pb, mut pm) = (vec![0i16; a.len()], vec![0i16; a.len()], vec![0i16; a.len()]);
            law.decode(&a, &mut pa);
            law.decode(&b, &mut pb);
            mix_pcm16(&[&pa, &pb], &mut pm).unwrap();
            let mut expected = vec![0u8; a.len()];
            law.encode(&pm, &mut expected);
            prop_assert_eq!(out, expected);
        }

        /// Interleaving then taking every other sample gives both inputs back.
        #[test]
        fn interleave_round_trips(left in prop::collection::vec(any::<i16>(), 0..300)) {
            let right: Vec<i16> = left.iter().map(|s| s.wrapping_mul(3)).collect();
            let mut out = vec![0i16; left.len() * 2];
            interleave_stereo(&left, &right, &mut out).unwrap();
            let l: Vec<i16> = out.iter().step_by(2).copied().collect();
            let r: Vec<i16> = out.iter().skip(1).step_by(2).copied().collect();
            prop_assert_eq!((l, r), (left, right));
        }
    }
}
