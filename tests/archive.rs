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
    let sidecar = sidecar.strip_suffix(".age").unwrap_or(sidecar);
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

/// A phone's USB recording of `seconds`, in parts of at most 20,000
/// bytes (`Record_…wav`, `…_1.wav`, …), in a new directory.
fn usb_recording(seconds: &str, tone: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let out = common::run_example(
        "phone_sim",
        &[
            &"--local",
            &dir.path(),
            &"--seconds",
            &seconds,
            &"--max-file-size",
            &"20000",
            &"--tone",
            &tone,
        ],
    );
    common::stdout_of_success(&out);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    (dir, files)
}

/// `POST /api/import` with these files as `multipart/form-data` parts.
fn import(base: &str, query: &str, files: &[(&str, Vec<u8>)]) -> common::service::Answer {
    let boundary = "callrec-test-boundary-7c1e";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    common::service::http_with_body(
        "POST",
        &format!("{base}/api/import?{query}"),
        &[(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        )],
        &body,
    )
}

fn a_phones_usb_recording_is_imported_joined_archived_and_refused_twice() {
    let service = Service::start(archiving(55150, ArchiveFormat::Opus, false));
    let base = &service.base;
    let (_usb, files) = usb_recording("6", "440");
    assert_eq!(files.len(), 3, "{files:?}");
    let parts: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(f).unwrap(),
            )
        })
        .collect();
    let named: Vec<(&str, Vec<u8>)> = parts
        .iter()
        .rev()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    let query = "device=00:15:65:12:34:56&number=1009&remote_number=2001";
    let answer = import(base, query, &named);
    assert_eq!(answer.status, 200, "{}", answer.error());
    let imported = answer.json();
    let id = imported["imported"][0]["recording_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        imported["imported"][0]["files"].as_array().unwrap().len(),
        3,
        "{imported}"
    );
    let duration = imported["imported"][0]["duration_ms"].as_u64().unwrap();
    assert!((5900..=6100).contains(&duration), "{duration} ms");

    // Found by device and by number, marked as imported, and archived.
    let item = archived(&service);
    assert_eq!(item["recording_id"], id.as_str());
    assert_eq!(item["source"], "import");
    for search in ["device=001565123456", "number=1009", "number=2001"] {
        let page = get(&format!("{base}/api/recordings?{search}")).json();
        assert_eq!(common::service::ids(&page), vec![id.clone()], "{search}");
    }
    assert_eq!(item["archive"]["format"], "opus");
    // The parts' hashes, in order.
    let from = item["sidecar"]["imported_from"].as_array().unwrap();
    for ((name, bytes), entry) in parts.iter().zip(from) {
        assert_eq!(entry["name"], name.as_str());
        assert_eq!(
            entry["sha256"],
            format!("{:x}", Sha256::digest(bytes)).as_str()
        );
    }
    // It plays: the three parts' six seconds, decoded from the archive.
    let wav = get(&format!("{base}/api/recordings/{id}/audio?format=pcm16"));
    assert_eq!(wav.status, 200);
    let pcm = samples_of(&wav.body);
    assert!(
        (pcm.len() as i64 - 6 * 8000).abs() <= 160,
        "{} samples",
        pcm.len()
    );

    // The same file again is refused, naming it and the recording.
    let again = import(base, query, &named[..1]);
    assert_eq!(again.status, 409);
    assert!(
        again.error().contains(&format!(
            "{} was imported before, as recording {id}",
            parts[2].0
        )),
        "{}",
        again.error()
    );
    // Not a phone recording, a missing part, a bad device: named.
    let junk = import(
        base,
        query,
        &[("Record_20261122_101500.wav", vec![7u8; 300])],
    );
    assert_eq!(junk.status, 422, "{}", junk.error());
    assert!(
        junk.error()
            .contains("cannot import Record_20261122_101500.wav: not a phone recording"),
        "{}",
        junk.error()
    );
    let (_usb2, files2) = usb_recording("7", "500");
    let tail: Vec<(&str, Vec<u8>)> = files2[1..]
        .iter()
        .map(|f| {
            (
                f.file_name().unwrap().to_str().unwrap(),
                std::fs::read(f).unwrap(),
            )
        })
        .collect();
    let gap = import(base, query, &tail);
    assert_eq!(gap.status, 422, "{}", gap.error());
    assert!(
        gap.error()
            .contains("is missing (the parts are joined in order)"),
        "{}",
        gap.error()
    );
    let name = import(base, query, &[("song.wav", vec![0u8; 10])]);
    assert_eq!(name.status, 422);
    assert!(
        name.error()
            .contains("\"song.wav\" is not a phone recording's"),
        "{}",
        name.error()
    );
    let device = import(base, "device=phone-7", &named[..1]);
    assert_eq!(device.status, 422);
    assert!(
        device.error().contains("\"phone-7\" is not a MAC address"),
        "{}",
        device.error()
    );
    // Audited.
    let audit =
        common::service::audit_summary(&service.recordings_dir().join(".callrec/audit.jsonl"));
    assert!(
        audit
            .iter()
            .any(|l| l.starts_with("import ") && l.contains(&id)),
        "{audit:?}"
    );
}

fn record_server_import_takes_files_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (_usb, files) = usb_recording("3", "600");
    let path = dir.path().to_owned();
    let run = || {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"--dir",
            &path,
            &"--archive",
            &"flac",
            &"import",
            &"--device",
            &"001565aabbcc",
            &"--number",
            &"1009",
        ];
        for f in &files {
            args.push(f);
        }
        common::run_example("record_server", &args)
    };
    let first = run();
    let out = common::stdout_of_success(&first);
    assert!(out.contains("imported 2 file(s) as recording"), "{out}");
    // Archived before it returned: a FLAC and a sidecar, no WAV.
    let mut kinds: Vec<String> = callrec_test::files_under(dir.path())
        .iter()
        .filter(|p| !p.to_string_lossy().contains(".callrec"))
        .filter_map(|p| p.extension().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["flac", "json"]);
    let second = run();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("was imported before, as recording"), "{err}");
}

/// `openssl ARGS`, asserting it succeeded; its standard output.
fn openssl(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let out = Command::new("openssl")
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn signed_recordings_verify_offline_and_every_flipped_byte_is_named() {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = (keys.path().join("sign.key"), keys.path().join("sign.pub"));
    openssl(&[&"genpkey", &"-algorithm", &"ed25519", &"-out", &key]);
    openssl(&[&"pkey", &"-in", &key, &"-pubout", &"-out", &public]);
    let mut options = archiving(55300, ArchiveFormat::Opus, false);
    let key_path = key.clone();
    options.settings = Box::new(move |settings| {
        settings.archive.format = ArchiveFormat::Opus;
        settings.sign_key = Some(key_path);
    });
    let service = Service::start(options);
    service.call(&["--seconds", "2"]);
    let item = archived(&service);
    let dir = service.recordings_dir();
    let sidecar = dir
        .join(item["sidecar"]["files"][0]["path"].as_str().unwrap())
        .with_extension("json");
    let stem = sidecar.with_extension("");
    let manifest = PathBuf::from(format!("{}.manifest.json", stem.display()));
    let signature = PathBuf::from(format!("{}.manifest.sig", stem.display()));
    callrec_test::wait_until("the manifest signed", Duration::from_secs(30), || {
        signature.exists()
    });
    assert_eq!(
        files_of(&service, &item),
        ["json", "manifest.json", "manifest.sig", "opus"]
    );

    // The manifest lists the archive and the sidecar with their hashes,
    // and the recording's metadata.
    let listed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(listed["recording_id"], item["recording_id"]);
    assert_eq!(listed["device"], "001565aabbcc");
    let names: Vec<&str> = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(
        names[0].ends_with(".opus") && names[1].ends_with(".json"),
        "{names:?}"
    );
    for file in listed["files"].as_array().unwrap() {
        let bytes = std::fs::read(stem.with_file_name(file["name"].as_str().unwrap())).unwrap();
        assert_eq!(
            file["sha256"],
            format!("{:x}", Sha256::digest(&bytes)).as_str()
        );
        assert_eq!(file["bytes"], bytes.len());
    }
    // OpenSSL checks the signature with the public key alone.
    let verified = openssl(&[
        &"pkeyutl",
        &"-verify",
        &"-pubin",
        &"-inkey",
        &public,
        &"-rawin",
        &"-in",
        &manifest,
        &"-sigfile",
        &signature,
    ]);
    assert!(
        verified.contains("Signature Verified Successfully"),
        "{verified}"
    );

    // record_server verify, offline, on the directory.
    service.recordings.flush();
    let verify = || {
        common::run_example(
            "record_server",
            &[&"verify", &"--dir", &dir, &"--public-key", &public],
        )
    };
    let good = verify();
    let out = common::stdout_of_success(&good);
    assert!(
        out.contains("1 recording(s) verified, 0 failure(s)"),
        "{out}"
    );
    // One flipped byte in any file, or in the manifest or its signature,
    // is named.
    for file in [
        stem.with_extension("opus"),
        sidecar.clone(),
        manifest.clone(),
        signature.clone(),
    ] {
        let original = std::fs::read(&file).unwrap();
        let mut flipped = original.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 0x01;
        std::fs::write(&file, &flipped).unwrap();
        let bad = verify();
        assert!(!bad.status.success(), "{}", file.display());
        let out = String::from_utf8_lossy(&bad.stdout);
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            out.lines()
                .any(|l| l.starts_with("FAILED") && l.contains(&*name)),
            "{name}: {out}"
        );
        std::fs::write(&file, &original).unwrap();
    }
    assert!(verify().status.success());
    // Verifying needs the right key.
    let other = keys.path().join("other.key");
    let other_pub = keys.path().join("other.pub");
    openssl(&[&"genpkey", &"-algorithm", &"ed25519", &"-out", &other]);
    openssl(&[&"pkey", &"-in", &other, &"-pubout", &"-out", &other_pub]);
    let wrong = common::run_example(
        "record_server",
        &[&"verify", &manifest, &"--public-key", &other_pub],
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("does not match"));
}

/// `age-keygen -o FILE`; the recipient it prints.
fn age_keygen(path: &Path) -> String {
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(path)
        .output()
        .expect("age-keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn sealed_recordings_open_with_the_age_tool_and_the_identity_only() {
    let keys = tempfile::tempdir().unwrap();
    let identity = keys.path().join("identity.txt");
    let recipient = age_keygen(&identity);
    let recipients = keys.path().join("recipients.txt");
    std::fs::write(&recipients, format!("# the compliance team\n{recipient}\n")).unwrap();
    let (sign_key, public) = (keys.path().join("sign.key"), keys.path().join("sign.pub"));
    openssl(&[&"genpkey", &"-algorithm", &"ed25519", &"-out", &sign_key]);
    openssl(&[&"pkey", &"-in", &sign_key, &"-pubout", &"-out", &public]);
    let sealing = |with_identity: bool, reindex: bool| {
        let mut options = Options::new(55350);
        let (recipients, identity, sign_key) =
            (recipients.clone(), identity.clone(), sign_key.clone());
        options.settings = Box::new(move |settings| {
            settings.archive.format = ArchiveFormat::Opus;
            settings.seal_to = Some(recipients);
            settings.sign_key = Some(sign_key);
            settings.identity = with_identity.then_some(identity);
            settings.reindex = reindex;
        });
        options
    };
    let service = Service::start(sealing(true, false));
    service.call(&["--seconds", "3", "--tone", "440"]);
    archived(&service);
    let base = service.base.clone();
    let item = poll_until("the recording sealed", Duration::from_secs(30), || {
        let id = service.newest_id();
        let item = get(&format!("{base}/api/recordings/{id}")).json();
        (!item["sidecar"]["sealed_to"].is_null()).then_some(item)
    });
    let id = item["recording_id"].as_str().unwrap().to_owned();
    // The sidecar, read through the identity, names the sealed files.
    let sidecar = &item["sidecar"];
    assert_eq!(sidecar["sealed_to"][0], recipient.as_str(), "{item}");
    let opus_rel = sidecar["files"][0]["path"].as_str().unwrap();
    assert!(opus_rel.ends_with(".opus.age"), "{opus_rel}");
    let sealed_opus = service.recordings_dir().join(opus_rel);
    let stem = sealed_opus
        .to_string_lossy()
        .strip_suffix(".opus.age")
        .unwrap()
        .to_owned();
    let signature = PathBuf::from(format!("{stem}.manifest.sig"));
    callrec_test::wait_until("the recording signed", Duration::from_secs(30), || {
        signature.exists()
    });
    assert_eq!(
        files_of(&service, &item),
        ["json.age", "manifest.json", "manifest.sig", "opus.age"],
        "nothing in the clear but the manifest"
    );
    // The standard age tool decrypts with the identity, to the archive the
    // index describes; without it, it cannot.
    let decrypted = Command::new("age")
        .args(["--decrypt", "-i"])
        .arg(&identity)
        .arg(&sealed_opus)
        .output()
        .unwrap();
    assert!(
        decrypted.status.success(),
        "{}",
        String::from_utf8_lossy(&decrypted.stderr)
    );
    assert_eq!(
        format!("{:x}", Sha256::digest(&decrypted.stdout)),
        item["archive"]["sha256"].as_str().unwrap()
    );
    assert_eq!(&decrypted.stdout[..4], b"OggS");
    let stranger = keys.path().join("stranger.txt");
    age_keygen(&stranger);
    let refused = Command::new("age")
        .args(["--decrypt", "-i"])
        .arg(&stranger)
        .arg(&sealed_opus)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let sidecar_plain = Command::new("age")
        .args(["--decrypt", "-i"])
        .arg(&identity)
        .arg(format!("{stem}.json.age"))
        .output()
        .unwrap();
    let plain: serde_json::Value = serde_json::from_slice(&sidecar_plain.stdout).unwrap();
    assert_eq!(plain["recording_id"], id.as_str());
    // The node with the identity serves the plaintext, with ranges, and
    // decodes it as WAV.
    let url = format!("{base}/api/recordings/{id}/audio");
    let full = get(&url);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, decrypted.stdout);
    let part = http("GET", &url, &[("Range", "bytes=70000-")]);
    let len = full.body.len();
    if len > 70_000 {
        assert_eq!(part.body, full.body[70_000..]);
    }
    let part = http("GET", &url, &[("Range", "bytes=10-99")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, full.body[10..100]);
    let wav = get(&format!("{url}?format=wav"));
    assert_eq!(samples_of(&wav.body).len(), 3 * 8000);
    assert!(tone_share(&samples_of(&wav.body), 8000.0, 440.0) > 0.8);
    // The signed manifest covers the sealed bytes, and names no number.
    let verify = common::run_example(
        "record_server",
        &[
            &"verify",
            &"--dir",
            &service.recordings_dir(),
            &"--public-key",
            &public,
        ],
    );
    let out = common::stdout_of_success(&verify);
    assert!(out.contains("1 recording(s) verified"), "{out}");
    let manifest = std::fs::read_to_string(format!("{stem}.manifest.json")).unwrap();
    assert!(
        !manifest.contains("1009") && !manifest.contains("001565aabbcc"),
        "{manifest}"
    );
    // Rebuilt from the files with the identity, the index knows it all.
    let service = service.restart(sealing(true, true));
    let again = get(&format!("{}/api/recordings/{id}", service.base)).json();
    for field in ["archive", "sha256", "local_number", "duration_ms"] {
        assert_eq!(again[field], item[field], "{field}");
    }
    // A node without the identity lists it, but cannot open it.
    let service = service.restart(sealing(false, false));
    let listed = get(&format!("{}/api/recordings/{id}", service.base)).json();
    assert!(listed["sidecar"].is_null(), "{listed}");
    let closed = get(&format!("{}/api/recordings/{id}/audio", service.base));
    assert_eq!(closed.status, 409);
    // Rebuilt without the identity, it is entered from its file names
    // (not lost), and still cannot be opened there.
    let service = service.restart(sealing(false, true));
    let page = get(&format!("{}/api/recordings", service.base)).json();
    let items = page["recordings"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert!(
        items[0]["stop_reason"]
            .as_str()
            .unwrap()
            .starts_with("sealed: entered from its file names"),
        "{page}"
    );
    let id = items[0]["recording_id"].as_str().unwrap().to_owned();
    let closed = get(&format!("{}/api/recordings/{id}/audio", service.base));
    assert_eq!(closed.status, 409);
    assert!(
        closed
            .error()
            .contains("is sealed, and this node has no identity"),
        "{}",
        closed.error()
    );
}

fn main() -> std::process::ExitCode {
    use callrec_test::harness::{AGE, FFMPEG, FFPROBE, OPENSSL, Test, run_tests};
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
            "a_phones_usb_recording_is_imported_joined_archived_and_refused_twice",
            a_phones_usb_recording_is_imported_joined_archived_and_refused_twice,
        ),
        Test::new(
            "record_server_import_takes_files_from_the_command_line",
            record_server_import_takes_files_from_the_command_line,
        ),
        Test::new(
            "signed_recordings_verify_offline_and_every_flipped_byte_is_named",
            signed_recordings_verify_offline_and_every_flipped_byte_is_named,
        )
        .needs(&[OPENSSL]),
        Test::new(
            "sealed_recordings_open_with_the_age_tool_and_the_identity_only",
            sealed_recordings_open_with_the_age_tool_and_the_identity_only,
        )
        .needs(&[AGE, OPENSSL, FFMPEG]),
        Test::new(
            "recordings_waiting_at_a_restart_are_archived_and_a_reindex_keeps_the_archive",
            recordings_waiting_at_a_restart_are_archived_and_a_reindex_keeps_the_archive,
        ),
    ])
}
