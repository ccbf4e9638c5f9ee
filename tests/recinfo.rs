//! The `recinfo` example, run as a program on the bundled sample and on
//! damaged copies of it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use callrec::file::{Recording, Writer};
use common::SAMPLE;

fn recinfo(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    common::run_example("recinfo", args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn the_bundled_sample_is_3_s_of_pcma() {
    let bytes = std::fs::read(SAMPLE).unwrap();
    let rec = Recording::parse(&bytes).unwrap();
    assert_eq!(rec.header().codec().as_str(), "PCMA");
    assert_eq!(rec.frame_count(), 150);
    assert_eq!(rec.duration(), Some(core::time::Duration::from_secs(3)));
}

#[test]
fn text_output() {
    let o = recinfo(&[&SAMPLE]);
    assert!(o.status.success());
    let out = stdout(&o);
    for line in [
        "codec:     PCMA",
        "rtpLen:    160 bytes per frame",
        "increment: 160 ticks per frame",
        "dataSize:  24000 bytes",
        "frames:    150",
        "duration:  3.000 s",
        "recovered: no",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
}

#[test]
fn json_output() {
    let o = recinfo(&[&SAMPLE, &"--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "codec": "PCMA",
            "frame_len": 160,
            "increment": 160,
            "data_size": 24000,
            "frames": 150,
            "duration_ms": 3000,
            "recovered": false,
        })
    );
}

fn cut_copy(dir: &Path, len: usize) -> PathBuf {
    let path = dir.join("cut.wav");
    std::fs::write(&path, &std::fs::read(SAMPLE).unwrap()[..len]).unwrap();
    path
}

#[test]
fn bad_file_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = cut_copy(dir.path(), 76 + 5 * 160 + 10);
    let o = recinfo(&[&path, &"--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("header dataSize is 24000 but 810 bytes follow the header"),
        "{err}"
    );

    let path = cut_copy(dir.path(), 30);
    let o = recinfo(&[&path]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("file is 30 bytes, shorter than the 76-byte header"),
        "{err}"
    );

    let o = recinfo(&[&dir.path().join("missing.wav")]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn recover_mode_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = cut_copy(dir.path(), 76 + 5 * 160 + 10);
    let o = recinfo(&[&path, &"--recover", &"--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["recovered"], true);
    assert_eq!(v["frames"], 5);
    assert_eq!(v["data_size"], 800);
    assert_eq!(v["duration_ms"], 100);
    let o = recinfo(&[&path, &"--recover"]);
    assert!(stdout(&o).contains(
        "recovered: yes: header dataSize 24000 disagreed with the 810-byte body; \
         recovered 800 bytes of whole frames, 10 trailing bytes ignored"
    ));
}

#[test]
fn unknown_codec_needs_a_clock_rate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opus.wav");
    let header =
        callrec::file::Header::new(callrec::file::CodecName::new("opus").unwrap(), 100, 960)
            .unwrap();
    let mut w = Writer::new(std::fs::File::create(&path).unwrap(), header).unwrap();
    for _ in 0..50 {
        w.append(&[0; 100]).unwrap();
    }
    w.finish().unwrap();
    let o = recinfo(&[&path, &"--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["duration_ms"], serde_json::Value::Null);
    let o = recinfo(&[&path, &"--json", &"--clock-rate", &"48000"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["duration_ms"], 1000);
}

#[test]
fn a_closed_pipe_is_not_a_crash() {
    // `recinfo FILE | head -1`: the reader goes away early. Whether the
    // write lands in the pipe buffer or fails with EPIPE depends on timing;
    // either way recinfo must exit 0 without panicking.
    let bin = common::example_path("recinfo");
    for _ in 0..20 {
        let mut child = Command::new(&bin)
            .arg(SAMPLE)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.status.success(), "{:?} {err}", out.status);
    }
}

#[test]
fn a_damaged_header_is_read_with_the_fields_the_operator_gives() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(SAMPLE).unwrap();
    // Codec name and rtpLen destroyed (zeroed), as a bad sector would.
    bytes[..68].fill(0);
    let damaged = dir.path().join("Record_damaged.wav");
    std::fs::write(&damaged, &bytes).unwrap();
    let o = recinfo(&[&damaged, &"--recover"]);
    assert!(!o.status.success());
    // The flags need --recover.
    let o = recinfo(&[&damaged, &"--codec", &"PCMA"]);
    assert!(!o.status.success());
    let o = recinfo(&[
        &damaged,
        &"--recover",
        &"--codec",
        &"PCMA",
        &"--frame-len",
        &"160",
        &"--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let original = recinfo(&[&SAMPLE, &"--json"]);
    let original: serde_json::Value = serde_json::from_slice(&original.stdout).unwrap();
    assert_eq!(json["codec"], "PCMA");
    assert_eq!(json["duration_ms"], original["duration_ms"]);
    // rec2wav converts it to the same WAV as the undamaged file.
    let fixed = dir.path().join("fixed.wav");
    let good = dir.path().join("good.wav");
    let convert = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
        Command::new(common::example_path("rec2wav"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = convert(&[
        &damaged,
        &fixed,
        &"--recover",
        &"--codec",
        &"PCMA",
        &"--frame-len",
        &"160",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(convert(&[&SAMPLE, &good]).status.success());
    assert_eq!(
        std::fs::read(&fixed).unwrap(),
        std::fs::read(&good).unwrap()
    );
}
