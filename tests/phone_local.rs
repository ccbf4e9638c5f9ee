//! `phone_sim --local`: the phone's own recording onto its USB drive, with
//! both directions mixed, size rotation and pause/resume (callrec-file's
//! `Recorder`), read back with callrec-file.

use callrec_phone as phone;

use core::time::Duration;

use callrec::audio::g711::Law;
use callrec::audio::mix::mix_g711;
use callrec::control::Codec;
use callrec::file::Recording;
use phone::{LocalOptions, encode_frames, record_local};

fn tone(hz: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| (8000.0 * (core::f64::consts::TAU * hz * i as f64 / 8000.0).sin()) as i16)
        .collect()
}

#[test]
fn mixed_rotated_and_paused_like_the_phone() {
    let dir = tempfile::tempdir().unwrap();
    let local = tone(440.0, 80_000); // 10 s
    let remote = tone(1000.0, 80_000);
    let files = record_local(&LocalOptions {
        dir: dir.path().to_owned(),
        codec: Codec::Pcmu,
        local: local.clone(),
        remote: remote.clone(),
        max_file_size: Some(76 + 160 * 150), // 3 s per file
        pause_at: Some(Duration::from_secs(2)),
        resume_at: Some(Duration::from_secs(4)),
        start_unix_seconds: 1_795_342_500, // 2026-11-22 10:15:00 UTC
    })
    .unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Record_20261122_101500.wav",
            "Record_20261122_101500_1.wav",
            "Record_20261122_101500_2.wav"
        ]
    );
    // What the phone mixes: both directions, frame by frame.
    let a = encode_frames(Codec::Pcmu, &local);
    let b = encode_frames(Codec::Pcmu, &remote);
    let expected: Vec<u8> = a
        .iter()
        .zip(&b)
        .enumerate()
        .filter(|(n, _)| !(100..200).contains(n)) // paused from 2 s to 4 s
        .flat_map(|(_, (x, y))| {
            let mut out = [0u8; 160];
            mix_g711(Law::Ulaw, &[x, y], &mut out).unwrap();
            out
        })
        .collect();
    let mut recorded = Vec::new();
    for f in &files {
        let bytes = std::fs::read(dir.path().join(&f.name)).unwrap();
        let rec = Recording::parse(&bytes).unwrap();
        assert!(
            rec.frame_count() <= 150,
            "{}: {}",
            f.name,
            rec.frame_count()
        );
        recorded.extend(rec.frames().flatten().copied());
    }
    assert_eq!(recorded.len(), 400 * 160);
    assert_eq!(recorded, expected);
}
