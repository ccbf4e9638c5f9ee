//! The archive against a real recording server, with phone_sim as the
//! phone and ffmpeg/ffprobe as the independent decoders: Opus and FLAC
//! archives replace the WAV, decode to its length, are served byte for
//! byte and as 16-bit PCM with ranges, survive a restart, a reindex and a
//! deletion.

mod common;

use core::time::Duration;
use std::path::{Path, PathBuf};
use std::process::Command;

use callrec_recordings::ArchiveFormat;
use callrec_test::poll_until;
use common::service::{Options, Service, get, http};
use sha2::{Digest, Sha256};

/// Options archiving in `format`.
fn archiving(first_port: u16, format: ArchiveFormat, keep_wav: bool) -> Options {
    let mut options = Options::new(first_port);
    options.settings = Box::new(move |settings| {
        settings.archive.format = format;
        settings.archive.keep_wav = keep_wav;
    });
    options
}

/// The newest recording once the API shows its archive.
fn archived(service: &Service) -> serde_json::Value {
    let base = &service.base;
    service.wait_for_finished(1);
    poll_until("the recording archived", Duration::from_secs(60), || {
        let id = service.newest_id();
        let item = get(&format!("{base}/api/recordings/{id}")).json();
        (!item["archive"].is_null()).then_some(item)
    })
}

/// The files of the recording in the directory, by extension.
fn files_of(service: &Service, item: &serde_json::Value) -> Vec<String> {
    let sidecar = item["sidecar"]["files"][0]["path"].as_str().unwrap();
    let stem = Path::new(sidecar).with_extension("");
    let dir = service.recordings_dir().join(stem.parent().unwrap());
    let name = stem.file_name().unwrap().to_string_lossy().into_owned();
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let file = e.unwrap().file_name().to_string_lossy().into_owned();
            file.strip_prefix(&format!("{name}.")).map(str::to_owned)
        })
        .collect();
    found.sort();
    found
}

fn path_of(service: &Service, item: &serde_json::Value, kind: &str) -> PathBuf {
    let files = item["sidecar"]["files"].as_array().unwrap();
    let file = files.iter().find(|f| f["kind"] == kind).unwrap();
    service
        .recordings_dir()
        .join(file["path"].as_str().unwrap())
}

/// ffmpeg's 16-bit decoding of `path` at `rate` Hz (ffmpeg's own Opus and
/// FLAC decoders, not libopus or claxon).
fn ffmpeg_pcm(path: &Path, rate: u32) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "s16le", "-acodec", "pcm_s16le", "-ar"])
        .arg(rate.to_string())
        .arg("-")
        .output()
        .expect("ffmpeg (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn ffprobe(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate,channels",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn samples_of(wav: &[u8]) -> Vec<i16> {
    wav[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Power of `samples` at `freq` relative to their whole power (Goertzel).
fn tone_share(samples: &[i16], rate: f64, freq: f64) -> f64 {
    let w = core::f64::consts::TAU * freq / rate;
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s = f64::from(x) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    let total: f64 = samples.iter().map(|&x| f64::from(x).powi(2)).sum();
    2.0 * power / (total * samples.len() as f64)
}

fn an_opus_archive_replaces_the_wav_and_plays_as_pcm_with_ranges() {
    let service = Service::start(archiving(55000, ArchiveFormat::Opus, false));
    service.call(&["--seconds", "4", "--tone", "440"]);
    let item = archived(&service);
    let base = &service.base;
    let id = item["recording_id"].as_str().unwrap();
    assert_eq!(
        files_of(&service, &item),
        ["json", "opus"],
        "the WAV is gone"
    );
    let archive = &item["archive"];
    assert_eq!(archive["format"], "opus");
    assert_eq!(archive["bitrate"], 12_000);
    assert_eq!(archive["rate"], 8000);
    assert_eq!(archive["channels"], 1);
    let frames = archive["frames"].as_u64().unwrap();
    assert!(frames >= 4 * 8000, "{item}");
    // The WAV was 8 kB a second of A-law: the archive is at least 5 times
    // smaller.
    let (bytes, wav_bytes) = (
        archive["bytes"].as_u64().unwrap(),
        archive["wav_bytes"].as_u64().unwrap(),
    );
    assert!(bytes * 5 < wav_bytes, "{bytes} of {wav_bytes}");
    // The sidecar says the same, and names the archive among its files.
    let sidecar = &item["sidecar"];
    assert_eq!(sidecar["schema_version"], 4);
    assert_eq!(sidecar["archive"]["wav_sha256"], archive["wav_sha256"]);
    let opus = path_of(&service, &item, "opus");
    let stored = std::fs::read(&opus).unwrap();
    let sha = format!("{:x}", Sha256::digest(&stored));
    assert_eq!(archive["sha256"], sha.as_str());
    assert_eq!(item["sha256"], sha.as_str(), "the served file's hash");
    assert_eq!(item["bytes"].as_u64().unwrap(), bytes, "the audio stored");

    // ffprobe and ffmpeg read it: Opus, mono, its length.
    assert_eq!(ffprobe(&opus), "opus,48000,1");
    let theirs = ffmpeg_pcm(&opus, 8000);
    assert!(
        (theirs.len() as i64 - frames as i64).abs() <= 160,
        "ffmpeg decodes {} samples, the archive says {frames}",
        theirs.len()
    );
    assert!(tone_share(&theirs, 8000.0, 440.0) > 0.8);

    // Served as stored, byte for byte, with its type and ETag.
    let url = format!("{base}/api/recordings/{id}/audio");
    let full = get(&url);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, stored);
    assert_eq!(full.header("content-type"), Some("audio/ogg; codecs=opus"));
    assert_eq!(full.header("etag"), Some(format!("\"{sha}\"").as_str()));
    let part = http("GET", &url, &[("Range", "bytes=100-199")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &stored[100..200]);
    let download = get(&format!("{url}?download=1"));
    assert_eq!(
        download.header("content-disposition"),
        Some(format!("attachment; filename=\"{id}.opus\"").as_str())
    );
    assert_eq!(get(&format!("{url}?format=flac")).status, 404);

    // As a 16-bit PCM WAV, decoded on the fly: the archive's length, the
    // tone, and any range is that slice of the whole.
    let wav = get(&format!("{url}?format=wav"));
    assert_eq!(wav.status, 200);
    assert_eq!(wav.header("content-type"), Some("audio/wav"));
    assert!(wav.header("etag").is_none());
    assert_eq!(&wav.body[..4], b"RIFF");
    let pcm = samples_of(&wav.body);
    assert_eq!(pcm.len() as u64, frames);
    assert!(tone_share(&pcm, 8000.0, 440.0) > 0.8);
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.wav");
    std::fs::write(&ours, &wav.body).unwrap();
    assert_eq!(ffprobe(&ours), "pcm_s16le,8000,1");
    let len = wav.body.len();
    for (start, end) in [
        (0, 10),
        (41, 45),
        (44, 2000),
        (12_345, 23_456),
        (len - 7, len),
    ] {
        let part = http(
            "GET",
            &format!("{url}?format=pcm16"),
            &[("Range", &format!("bytes={start}-{}", end - 1))],
        );
        assert_eq!(part.status, 206);
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {start}-{}/{len}", end - 1).as_str())
        );
        assert!(part.body == wav.body[start..end], "bytes {start}-{end}");
    }

    // The page plays the archive as it is stored.
    let metrics = String::from_utf8(get(&format!("{base}/metrics")).body).unwrap();
    assert!(metrics.contains("callrec_archived_total 1"), "{metrics}");
    assert!(
        metrics.contains("callrec_archive_errors_total 0"),
        "{metrics}"
    );

    // Deleting it removes the archive and the sidecar.
    let deleted = http("DELETE", &format!("{base}/api/recordings/{id}"), &[]);
    assert_eq!(deleted.status, 200, "{}", deleted.error());
    assert!(!opus.exists());
    assert!(!opus.with_extension("json").exists());
}

fn a_flac_archive_holds_every_sample_and_the_wav_can_be_kept() {
    let service = Service::start(archiving(55050, ArchiveFormat::Flac, true));
    service.call(&["--seconds", "3", "--codec", "G722", "--tone", "1000"]);
    let item = archived(&service);
    let id = item["recording_id"].as_str().unwrap();
    let url = format!("{}/api/recordings/{id}/audio", service.base);
    assert_eq!(files_of(&service, &item), ["flac", "json", "wav"]);
    let archive = &item["archive"];
    assert_eq!(archive["format"], "flac");
    assert!(archive["bitrate"].is_null());
    assert_eq!(archive["rate"], 16_000);
    let flac = path_of(&service, &item, "flac");
    let wav = path_of(&service, &item, "wav");
    let wav_bytes = std::fs::read(&wav).unwrap();
    assert_eq!(
        archive["wav_sha256"],
        format!("{:x}", Sha256::digest(&wav_bytes)).as_str()
    );
    // Lossless: ffmpeg's own FLAC decoder gives the WAV's samples.
    assert_eq!(ffprobe(&flac), "flac,16000,1");
    let original = samples_of(&wav_bytes);
    assert!(
        ffmpeg_pcm(&flac, 16_000) == original,
        "FLAC changed the audio"
    );
    // The WAV is kept: `wav` is the stored WAV, the default the archive.
    assert_eq!(get(&format!("{url}?format=wav")).body, wav_bytes);
    let stored = get(&url);
    assert_eq!(stored.header("content-type"), Some("audio/flac"));
    assert_eq!(stored.body, std::fs::read(&flac).unwrap());
    println!(
        "G.722 tone, 3 s: FLAC {} bytes, WAV {} bytes",
        archive["bytes"], archive["wav_bytes"]
    );
}

fn recordings_waiting_at_a_restart_are_archived_and_a_reindex_keeps_the_archive() {
    // Recorded while the archive was off.
    let service = Service::start(Options::new(55100));
    service.call(&["--seconds", "2"]);
    service.call(&["--seconds", "2", "--local-number", "1002"]);
    service.wait_for_finished(2);
    // Turned on: both are found in the index and archived.
    let service = service.restart(archiving(55100, ArchiveFormat::Opus, false));
    let base = service.base.clone();
    poll_until("both recordings archived", Duration::from_secs(60), || {
        let page = get(&format!("{base}/api/recordings")).json();
        let items = page["recordings"].as_array().unwrap().clone();
        (items.len() == 2 && items.iter().all(|i| !i["archive"].is_null())).then_some(())
    });
    let before = get(&format!("{base}/api/recordings")).json();
    // Rebuilt from the files, the index knows the archives again.
    let mut options = archiving(55100, ArchiveFormat::Opus, false);
    options.settings = Box::new(|settings| {
        settings.archive.format = ArchiveFormat::Opus;
        settings.reindex = true;
    });
    let service = service.restart(options);
    let after = get(&format!("{}/api/recordings", service.base)).json();
    for field in ["recording_id", "archive", "sha256", "bytes"] {
        for n in 0..2 {
            assert_eq!(
                after["recordings"][n][field], before["recordings"][n][field],
                "{field} of {n} after the reindex"
            );
        }
    }
    let id = after["recordings"][0]["recording_id"].as_str().unwrap();
    let wav = get(&format!(
        "{}/api/recordings/{id}/audio?format=wav",
        service.base
    ));
    assert_eq!(wav.status, 200);
    assert!(samples_of(&wav.body).len() >= 2 * 8000);
}

fn main() -> std::process::ExitCode {
    use callrec_test::harness::{FFMPEG, FFPROBE, Test, run_tests};
    run_tests(vec![
        Test::new(
            "an_opus_archive_replaces_the_wav_and_plays_as_pcm_with_ranges",
            an_opus_archive_replaces_the_wav_and_plays_as_pcm_with_ranges,
        )
        .needs(&[FFMPEG, FFPROBE]),
        Test::new(
            "a_flac_archive_holds_every_sample_and_the_wav_can_be_kept",
            a_flac_archive_holds_every_sample_and_the_wav_can_be_kept,
        )
        .needs(&[FFMPEG, FFPROBE]),
        Test::new(
            "recordings_waiting_at_a_restart_are_archived_and_a_reindex_keeps_the_archive",
            recordings_waiting_at_a_restart_are_archived_and_a_reindex_keeps_the_archive,
        ),
    ])
}
