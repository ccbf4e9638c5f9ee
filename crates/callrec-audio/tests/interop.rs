//! The WAV files we write, read by real tools from Debian: ffprobe/ffmpeg
//! and sox/soxi see the right format tag, rate, channels and duration, and
//! decode to the same samples we decode. A file cut after a periodic header
//! rewrite still opens.
//!
//! With `CI=true` a missing tool fails the test; elsewhere it is skipped
//! with a message.

use core::time::Duration;
use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Stdio};

use callrec_audio::WavWriter;
use callrec_audio::convert::{Transcoder, WavOutput};
use callrec_audio::g711::Law;
use callrec_audio::g722;
use callrec_audio::wav::{WavFile, WavSpec};
use callrec_file::Codec;
use callrec_test::have_tool;

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.stderr(Stdio::piped()).output().expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn s16(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// A tone with a silent stretch and a full-scale burst, at `rate`.
fn test_signal(rate: u32, seconds: f64) -> Vec<i16> {
    let n = (f64::from(rate) * seconds) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            match i * 10 / n {
                3 => 0,
                7 => {
                    if i % 40 < 20 {
                        i16::MAX
                    } else {
                        i16::MIN
                    }
                }
                _ => (12000.0 * (2.0 * core::f64::consts::PI * 440.0 * t).sin()) as i16,
            }
        })
        .collect()
}

struct Written {
    file: Vec<u8>,
    /// What our own reader decodes, channels interleaved.
    samples: Vec<i16>,
}

fn write_g711(law: Law, pcm: &[i16]) -> Written {
    let mut bytes = vec![0u8; pcm.len()];
    law.encode(pcm, &mut bytes);
    let mut w = WavWriter::new(Cursor::new(Vec::new()), WavSpec::g711(law)).unwrap();
    for frame in bytes.chunks(160) {
        w.write_encoded(frame).unwrap();
    }
    finish(w)
}

/// `channels` channels of G.711, each a differently shifted copy of `pcm`.
fn write_g711_channels(law: Law, pcm: &[i16], channels: u16) -> Written {
    let frames: Vec<i16> = (0..pcm.len())
        .flat_map(|i| (0..usize::from(channels)).map(move |c| (i, c)))
        .map(|(i, c)| pcm[(i + c * 1000) % pcm.len()])
        .collect();
    let mut bytes = vec![0u8; frames.len()];
    law.encode(&frames, &mut bytes);
    let spec = WavSpec::new(
        callrec_audio::wav::SampleFormat::from_law(law),
        8000,
        channels,
    )
    .unwrap();
    let mut w = WavWriter::new(Cursor::new(Vec::new()), spec).unwrap();
    for frame in bytes.chunks(160 * usize::from(channels)) {
        w.write_encoded(frame).unwrap();
    }
    finish(w)
}

fn write_pcm(spec: WavSpec, pcm: &[i16]) -> Written {
    let mut w = WavWriter::new(Cursor::new(Vec::new()), spec).unwrap();
    w.write_pcm(pcm).unwrap();
    finish(w)
}

fn finish(w: WavWriter<Cursor<Vec<u8>>>) -> Written {
    let file = w.finish().unwrap().into_inner();
    let samples = WavFile::parse(&file).unwrap().samples().collect();
    Written { file, samples }
}

/// ffprobe's view: (codec_name, sample_rate, channels, duration seconds).
fn ffprobe(path: &Path) -> (String, u32, u16, f64) {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate,channels:format=duration",
            "-of",
            "default=nw=1",
        ])
        .arg(path));
    let text = String::from_utf8(out).unwrap();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("ffprobe printed no {key}: {text}"))
            .to_owned()
    };
    (
        field("codec_name"),
        field("sample_rate").parse().unwrap(),
        field("channels").parse().unwrap(),
        field("duration").parse().unwrap(),
    )
}

fn ffmpeg_decode(path: &Path) -> Vec<i16> {
    s16(&run(Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "s16le", "-acodec", "pcm_s16le", "-"])))
}

/// soxi's view: (encoding, rate, channels, duration seconds).
fn soxi(path: &Path) -> (String, u32, u16, f64) {
    let ask = |flag: &str| {
        String::from_utf8(run(Command::new("soxi").arg(flag).arg(path)))
            .unwrap()
            .trim()
            .to_owned()
    };
    (
        ask("-e"),
        ask("-r").parse().unwrap(),
        ask("-c").parse().unwrap(),
        ask("-D").parse().unwrap(),
    )
}

fn sox_decode(path: &Path) -> Vec<i16> {
    s16(&run(Command::new("sox").arg(path).args([
        "-t",
        "raw",
        "-e",
        "signed-integer",
        "-b",
        "16",
        "-L",
        "-",
    ])))
}

struct Case {
    name: &'static str,
    written: Written,
    ffmpeg_codec: &'static str,
    sox_encoding: &'static str,
    rate: u32,
    channels: u16,
    seconds: f64,
}

fn cases() -> Vec<Case> {
    let narrow = test_signal(8000, 2.5);
    let wide = test_signal(16000, 1.5);
    let stereo: Vec<i16> = narrow
        .iter()
        .zip(narrow.iter().rev())
        .flat_map(|(&l, &r)| [l, r])
        .collect();
    // A G.722 call converted as the server does: decoded to 16 kHz PCM.
    let mut codes = vec![0u8; wide.len() / 2];
    g722::Encoder::new().encode(&wide, &mut codes);
    let mut t = Transcoder::new(Codec::G722, WavOutput::AsRecorded);
    let mut w = WavWriter::new(Cursor::new(Vec::new()), t.spec()).unwrap();
    for frame in codes.chunks(160) {
        t.write_frame(frame, &mut w).unwrap();
    }
    vec![
        Case {
            name: "alaw.wav",
            written: write_g711(Law::Alaw, &narrow),
            ffmpeg_codec: "pcm_alaw",
            sox_encoding: "A-law",
            rate: 8000,
            channels: 1,
            seconds: 2.5,
        },
        Case {
            name: "ulaw.wav",
            written: write_g711(Law::Ulaw, &narrow),
            ffmpeg_codec: "pcm_mulaw",
            sox_encoding: "u-law",
            rate: 8000,
            channels: 1,
            seconds: 2.5,
        },
        Case {
            name: "pcm8k.wav",
            written: write_pcm(WavSpec::pcm16_mono(false), &narrow),
            ffmpeg_codec: "pcm_s16le",
            sox_encoding: "Signed Integer PCM",
            rate: 8000,
            channels: 1,
            seconds: 2.5,
        },
        Case {
            name: "stereo8k.wav",
            written: write_pcm(WavSpec::pcm16_mono(false).stereo(), &stereo),
            ffmpeg_codec: "pcm_s16le",
            sox_encoding: "Signed Integer PCM",
            rate: 8000,
            channels: 2,
            seconds: 2.5,
        },
        // A SIPREC session of three streams, a channel each
        // (WAVE_FORMAT_EXTENSIBLE).
        Case {
            name: "three_channels8k.wav",
            written: write_pcm(
                WavSpec::new(callrec_audio::wav::SampleFormat::Pcm16, 8000, 3).unwrap(),
                &narrow
                    .iter()
                    .zip(narrow.iter().rev())
                    .flat_map(|(&a, &b)| [a, b, a / 2])
                    .collect::<Vec<i16>>(),
            ),
            ffmpeg_codec: "pcm_s16le",
            sox_encoding: "Signed Integer PCM",
            rate: 8000,
            channels: 3,
            seconds: 2.5,
        },
        Case {
            name: "four_channels_alaw.wav",
            written: write_g711_channels(Law::Alaw, &narrow, 4),
            ffmpeg_codec: "pcm_alaw",
            sox_encoding: "A-law",
            rate: 8000,
            channels: 4,
            seconds: 2.5,
        },
        Case {
            name: "g722.wav",
            written: finish(w),
            ffmpeg_codec: "pcm_s16le",
            sox_encoding: "Signed Integer PCM",
            rate: 16000,
            channels: 1,
            seconds: 1.5,
        },
    ]
}

fn ffprobe_and_ffmpeg_read_our_files() {
    if !have_tool("ffprobe", "-version") || !have_tool("ffmpeg", "-version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let path = dir.path().join(case.name);
        std::fs::write(&path, &case.written.file).unwrap();
        let (codec, rate, channels, seconds) = ffprobe(&path);
        assert_eq!(
            (codec.as_str(), rate, channels),
            (case.ffmpeg_codec, case.rate, case.channels),
            "{}",
            case.name
        );
        assert!(
            (seconds - case.seconds).abs() < 1e-3,
            "{}: ffprobe says {seconds} s",
            case.name
        );
        assert_eq!(
            ffmpeg_decode(&path),
            case.written.samples,
            "{}: ffmpeg decodes other samples",
            case.name
        );
    }
}

fn sox_reads_our_files() {
    if !have_tool("sox", "--version") || !have_tool("soxi", "-V0") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for case in cases() {
        let path = dir.path().join(case.name);
        std::fs::write(&path, &case.written.file).unwrap();
        let (encoding, rate, channels, seconds) = soxi(&path);
        assert_eq!(
            (encoding.as_str(), rate, channels),
            (case.sox_encoding, case.rate, case.channels),
            "{}",
            case.name
        );
        assert!(
            (seconds - case.seconds).abs() < 1e-3,
            "{}: soxi says {seconds} s",
            case.name
        );
        assert_eq!(
            sox_decode(&path),
            case.written.samples,
            "{}: sox decodes other samples",
            case.name
        );
    }
}

fn a_file_cut_after_a_header_rewrite_opens_in_ffprobe_and_sox() {
    if !have_tool("ffprobe", "-version") || !have_tool("sox", "--version") {
        return;
    }
    let narrow = test_signal(8000, 3.5);
    let mut bytes = vec![0u8; narrow.len()];
    Law::Alaw.encode(&narrow, &mut bytes);
    let mut w = WavWriter::with_header_interval(
        Cursor::new(Vec::new()),
        WavSpec::g711(Law::Alaw),
        Some(Duration::from_secs(1)),
    )
    .unwrap();
    let mut snapshot = Vec::new();
    for (n, frame) in bytes.chunks(160).enumerate() {
        w.write_encoded(frame).unwrap();
        if n == 114 {
            // 2.3 s in: what a kill -9 now would leave behind.
            snapshot = w.get_ref().get_ref().clone();
        }
    }
    drop(w);
    let dir = tempfile::tempdir().unwrap();
    // Cut at several points after the rewrite at 2.0 s (byte 58 + 16000).
    for cut in [58 + 16000, 58 + 16001, 58 + 17777, snapshot.len()] {
        let path = dir.path().join(format!("cut{cut}.wav"));
        std::fs::write(&path, &snapshot[..cut]).unwrap();
        let (codec, _, _, seconds) = ffprobe(&path);
        assert_eq!(codec, "pcm_alaw");
        assert!(
            (seconds - 2.0).abs() < 1e-3,
            "cut at {cut}: ffprobe says {seconds} s"
        );
        assert_eq!(ffmpeg_decode(&path).len(), 16000, "cut at {cut}");
        assert_eq!(sox_decode(&path).len(), 16000, "cut at {cut}");
    }
}

/// The tests, each ignored with the reason when what it needs is missing
/// (a failure under `CI=true`).
fn main() -> std::process::ExitCode {
    use callrec_test::harness::{FFMPEG, FFPROBE, SOX, SOXI, Test, run_tests};
    run_tests(vec![
        Test::new(
            "ffprobe_and_ffmpeg_read_our_files",
            ffprobe_and_ffmpeg_read_our_files,
        )
        .needs(&[FFPROBE, FFMPEG]),
        Test::new("sox_reads_our_files", sox_reads_our_files).needs(&[SOX, SOXI]),
        Test::new(
            "a_file_cut_after_a_header_rewrite_opens_in_ffprobe_and_sox",
            a_file_cut_after_a_header_rewrite_opens_in_ffprobe_and_sox,
        )
        .needs(&[FFPROBE, SOX, SOXI]),
    ])
}
