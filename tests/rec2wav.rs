//! The `rec2wav` example, run as a program: the bundled PCMA sample as-is
//! and decoded, a G.722 recording, and damaged recordings.

mod common;

use std::io::Cursor;
use std::path::Path;
use std::process::Output;

use callrec::audio::g711::Law;
use callrec::audio::g722;
use callrec::audio::wav::{SampleFormat, WavFile};
use callrec::file::{CodecName, Header, Recording, Writer};
use common::SAMPLE;

fn rec2wav(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    common::run_example("rec2wav", args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn sample_frames() -> Vec<u8> {
    let bytes = std::fs::read(SAMPLE).unwrap();
    Recording::parse(&bytes)
        .unwrap()
        .frames()
        .flatten()
        .copied()
        .collect()
}

#[test]
fn pcma_is_copied_into_an_alaw_wav() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("call.wav");
    let o = rec2wav(&[&SAMPLE, &out]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("(PCMA, 150 frames) -> "),
        "{}",
        text(&o.stdout)
    );
    assert!(text(&o.stdout).contains("(A-law 8000 Hz mono, 3.000 s)"));
    let file = std::fs::read(&out).unwrap();
    let wav = WavFile::parse(&file).unwrap();
    assert_eq!(wav.spec().format(), SampleFormat::Alaw);
    assert_eq!(wav.data(), &sample_frames()[..]);
}

#[test]
fn pcm_flag_decodes_to_16_bit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("call.wav");
    let o = rec2wav(&[&SAMPLE, &out, &"--pcm"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let file = std::fs::read(&out).unwrap();
    let wav = WavFile::parse(&file).unwrap();
    assert_eq!(
        (wav.spec().format(), wav.spec().sample_rate()),
        (SampleFormat::Pcm16, 8000)
    );
    let expected: Vec<i16> = sample_frames()
        .iter()
        .map(|&b| Law::Alaw.decode_sample(b))
        .collect();
    assert_eq!(wav.samples().collect::<Vec<_>>(), expected);
}

fn write_recording(path: &Path, codec: CodecName, frames: &[Vec<u8>]) {
    let mut w = Writer::new(
        Cursor::new(Vec::new()),
        Header::new(codec, 160, 160).unwrap(),
    )
    .unwrap();
    for f in frames {
        w.append(f).unwrap();
    }
    let (_, file) = w.finish_into_inner().unwrap();
    std::fs::write(path, file.into_inner()).unwrap();
}

#[test]
fn g722_becomes_16_khz_pcm() {
    let pcm: Vec<i16> = (0..16000)
        .map(|n| ((n as f32 * 0.11).sin() * 9000.0) as i16)
        .collect();
    let mut codes = vec![0u8; 8000];
    g722::Encoder::new().encode(&pcm, &mut codes);
    let frames: Vec<Vec<u8>> = codes.chunks(160).map(<[u8]>::to_vec).collect();
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("Record_g722.wav");
    write_recording(&rec, CodecName::G722, &frames);
    let out = dir.path().join("call.wav");
    let o = rec2wav(&[&rec, &out]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("(16-bit PCM 16000 Hz mono, 1.000 s)"));
    let file = std::fs::read(&out).unwrap();
    let wav = WavFile::parse(&file).unwrap();
    let mut expected = vec![0i16; 16000];
    g722::Decoder::new().decode(&codes, &mut expected);
    assert_eq!(wav.samples().collect::<Vec<_>>(), expected);
}

#[test]
fn unpatched_header_needs_recover_and_then_keeps_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(SAMPLE).unwrap();
    bytes[72..76].copy_from_slice(&0u32.to_le_bytes()); // dataSize never patched
    let rec = dir.path().join("Record_unpatched.wav");
    std::fs::write(&rec, &bytes).unwrap();
    let out = dir.path().join("call.wav");

    let o = rec2wav(&[&rec, &out]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with("rec2wav: "),
        "{}",
        text(&o.stderr)
    );

    let o = rec2wav(&[&rec, &out, &"--recover"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("recovered: "),
        "{}",
        text(&o.stdout)
    );
    let file = std::fs::read(&out).unwrap();
    assert_eq!(WavFile::parse(&file).unwrap().data(), &sample_frames()[..]);
}

#[test]
fn a_recording_cut_mid_frame_fails_whole_and_recovers_its_whole_frames() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(SAMPLE).unwrap();
    let rec = dir.path().join("Record_cut.wav");
    std::fs::write(&rec, &bytes[..76 + 100 * 160 + 80]).unwrap();
    let out = dir.path().join("call.wav");
    let o = rec2wav(&[&rec, &out]);
    assert_eq!(o.status.code(), Some(1));
    // No partial output: the error says how to salvage it instead.
    assert!(!out.exists());
    assert!(text(&o.stderr).contains("recover"), "{}", text(&o.stderr));
    let o = rec2wav(&[&rec, &out, &"--recover"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let file = std::fs::read(&out).unwrap();
    let wav = WavFile::parse(&file).unwrap();
    assert_eq!(wav.frames(), 100 * 160);
    assert_eq!(wav.data(), &sample_frames()[..100 * 160]);
}

#[test]
fn an_unknown_codec_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("Record_g729.wav");
    write_recording(&rec, CodecName::new("G729").unwrap(), &[vec![0; 160]]);
    let o = rec2wav(&[&rec, &dir.path().join("x.wav")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("codec \"G729\" cannot be converted (PCMA, PCMU and G722 can)"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn the_input_is_never_overwritten_and_a_failure_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("Record_1.wav");
    std::fs::copy(SAMPLE, &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    // The same path, and the same file by another spelling.
    let dotted = dir.path().join(".").join("Record_1.wav");
    for output in [&input, &dotted] {
        let out = rec2wav(&[&input, output]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("refusing to overwrite the recording being converted"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(std::fs::read(&input).unwrap(), before);
    }
    // A damaged input: no output and no partial file.
    let broken = dir.path().join("broken.wav");
    std::fs::write(&broken, &before[..40]).unwrap();
    let target = dir.path().join("out.wav");
    let out = rec2wav(&[&broken, &target]);
    assert!(!out.status.success());
    assert!(!target.exists());
    assert!(!dir.path().join("out.wav.partial").exists());
}
