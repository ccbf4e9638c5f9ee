//! Rebuilding the index from the files: `DIR/<device>/<date>/<stem>.{wav,rec,json}`.
//!
//! A recording with a complete sidecar is entered as the sidecar says. One
//! whose sidecar says it never finished (a crash, `kill -9`, a power cut)
//! or that has no readable sidecar is entered as incomplete, its length
//! read from the audio file itself (whose header may lag behind the data).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use callrec_audio::wav::{SampleFormat, WavHeader};
use callrec_server::Sidecar;
use sha2::{Digest, Sha256};

use crate::index::{Entry, RecordingSummary};
use crate::time::{format_time_ms, parse_time_ms};

/// The stop reason of a recording that never finished.
pub(crate) const INTERRUPTED: &str = "interrupted: the server stopped before the recording ended";

/// Bytes per second of the phone's container for all three codecs
/// (64 kbit/s), after its 76-byte header.
const REC_BYTES_PER_SEC: u64 = 8000;
const REC_HEADER_LEN: u64 = 76;

/// The id of a recording whose sidecar has none: derived from its path, so
/// that rebuilding the index gives it the same id again.
pub(crate) fn derived_id(rel_stem: &str) -> String {
    let digest = Sha256::digest(format!("callrec-path:{rel_stem}").as_bytes());
    crate::store::hex(&digest[..16])
}

/// Milliseconds of audio in a WAV file, from the file's length (the header
/// of an interrupted recording may be up to a second behind the data), and
/// the codec the call had.
pub(crate) fn wav_info(path: &Path) -> Result<(u64, &'static str), String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    let mut head = Vec::with_capacity(4096);
    file.by_ref()
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let header = WavHeader::parse(&head)
        .map_err(|e| format!("{} is not a WAV callrec reads: {e}", path.display()))?;
    let spec = header.spec();
    let data = len.saturating_sub(header.data_offset() as u64);
    let whole = data - data % u64::from(spec.block_align().max(1));
    let codec = match spec.format() {
        SampleFormat::Alaw => "PCMA",
        SampleFormat::Ulaw => "PCMU",
        _ => "G722",
    };
    Ok((spec.duration_of(whole).as_millis() as u64, codec))
}

/// The files of one recording, by extension.
#[derive(Debug, Default)]
struct Found {
    json: bool,
    wav: bool,
    rec: bool,
    /// A sealed sidecar (`.json.age`).
    sealed_json: bool,
}

fn size_of(dir: &Path, rel: &str) -> u64 {
    fs::metadata(dir.join(rel)).map_or(0, |m| m.len())
}

/// The index entry of the recording at `rel_stem` (relative to `dir`, no
/// extension), from whatever of its files exist.
fn entry_of(dir: &Path, rel_stem: &str, found: &Found) -> Result<Entry, String> {
    let rel = |ext: &str| format!("{rel_stem}.{ext}");
    let sidecar = found
        .json
        .then(|| {
            fs::read(dir.join(rel("json")))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Sidecar>(&bytes).ok())
        })
        .flatten();
    let mut entry = match &sidecar {
        Some(sidecar) => {
            Entry::from_sidecar(sidecar, Some(rel("json")), false).ok_or_else(|| {
                format!(
                    "{}: start time {:?} is not RFC 3339",
                    rel("json"),
                    sidecar.started_at
                )
            })?
        }
        None => entry_from_name(rel_stem, found)?,
    };
    let s = &mut entry.summary;
    if s.recording_id.is_empty() {
        s.recording_id = derived_id(rel_stem);
    }
    // A signed manifest beside it (`--sign-key`).
    if dir
        .join(rel_stem)
        .with_file_name(format!(
            "{}{}",
            Path::new(rel_stem)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            crate::sign::MANIFEST_SUFFIX
        ))
        .exists()
    {
        s.set_manifest(Some(format!("{rel_stem}{}", crate::sign::MANIFEST_SUFFIX)));
    }
    // Files the sidecar names are the ones it wrote; without one, the
    // ones found.
    if sidecar.is_none() {
        s.wav_path = found.wav.then(|| rel("wav"));
        s.rec_path = found.rec.then(|| rel("rec"));
        s.sidecar_path = None;
    }
    if !s.complete {
        s.duration_ms = match (&s.wav_path, &s.rec_path) {
            (Some(wav), _) => {
                let (ms, codec) = wav_info(&dir.join(wav))?;
                if s.codec.is_empty() {
                    s.codec = codec.to_owned();
                }
                ms
            }
            (None, Some(rec)) => {
                size_of(dir, rec).saturating_sub(REC_HEADER_LEN) * 1000 / REC_BYTES_PER_SEC
            }
            (None, None) => 0,
        };
        entry.stopped_ms = Some(s.started_ms + s.duration_ms as i64);
        s.stopped_at = entry.stopped_ms.map(format_time_ms);
        s.stop_reason = Some(match s.stop_reason.take() {
            Some(reason) if !reason.is_empty() => reason,
            _ => INTERRUPTED.to_owned(),
        });
        s.bytes = s.paths().map(|p| size_of(dir, p)).sum();
        // Nothing writes an interrupted recording's files again: their
        // bytes are final now, and the index keeps their SHA-256 (of the
        // WAV, else the container, as for a complete recording) so that
        // tampering shows in them too.
        s.sha256 = s
            .wav_path
            .as_ref()
            .or(s.rec_path.as_ref())
            .map(|path| {
                let path = dir.join(path);
                File::open(&path)
                    .and_then(callrec_server::sha256_of)
                    .map(|(_, digest)| digest)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
            })
            .transpose()?;
    }
    s.running = false;
    Ok(entry)
}

/// What the file name says: `HHMMSS_<dir>_<remote_number>_<session_id>`
/// under `<device>/<YYYY-MM-DD>/`. The remote number and the session id are
/// split at the last `_` (both were sanitized, so either may hold one).
fn entry_from_name(rel_stem: &str, found: &Found) -> Result<Entry, String> {
    let bad = || {
        format!(
            "{rel_stem}: not a callrec recording name (<device>/<date>/HHMMSS_<dir>_<number>_<id>)"
        )
    };
    let mut parts = rel_stem.rsplitn(3, '/');
    let (name, date, device) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    let (hms, rest) = name.split_once('_').ok_or_else(bad)?;
    let (direction, rest) = rest.split_once('_').ok_or_else(bad)?;
    let (remote_number, session_id) = rest.rsplit_once('_').ok_or_else(bad)?;
    if hms.len() != 6 {
        return Err(bad());
    }
    let started_ms = parse_time_ms(&format!(
        "{date}T{}:{}:{}Z",
        &hms[..2],
        &hms[2..4],
        &hms[4..]
    ))
    .ok_or_else(bad)?;
    // Read from the WAV when there is one.
    let codec = if found.wav { "" } else { "unknown" };
    Ok(Entry {
        summary: RecordingSummary {
            recording_id: String::new(),
            session_id: session_id.to_owned(),
            device: device.to_owned(),
            direction: direction.to_owned(),
            local_number: String::new(),
            remote_number: remote_number.to_owned(),
            local_name: String::new(),
            remote_name: String::new(),
            codec: codec.to_owned(),
            started_at: format_time_ms(started_ms),
            stopped_at: None,
            duration_ms: 0,
            stop_reason: None,
            complete: false,
            running: false,
            hold: false,
            sha256: None,
            bytes: 0,
            wav_path: None,
            rec_path: None,
            sidecar_path: None,
            node: String::new(),
            uploaded: false,
            source: "phone".to_owned(),
            participants: Vec::new(),
            channels: Vec::new(),
            archive: None,
            archive_path: None,
            manifest_path: None,
            signature_path: None,
            started_ms,
        },
        other_parties: String::new(),
        stopped_ms: None,
        imported: Vec::new(),
    })
}

/// The entry of a sealed recording, from its sidecar opened with
/// `identities`.
fn sealed_entry(
    dir: &Path,
    rel_stem: &str,
    identities: &[age::x25519::Identity],
) -> Result<Entry, String> {
    let rel = format!("{rel_stem}.json.age");
    let manifest = format!("{rel_stem}{}", crate::sign::MANIFEST_SUFFIX);
    if identities.is_empty() {
        // Entered from its file names, so that it is neither lost from the
        // index nor left out of the upload: its metadata waits for a node
        // with the identity.
        let mut entry = entry_from_name(rel_stem, &Found::default())
            .map_err(|e| format!("{rel}: sealed, and {e}"))?;
        let s = &mut entry.summary;
        s.recording_id = derived_id(rel_stem);
        let sealed = |ext: &str| {
            let rel = format!("{rel_stem}.{ext}{}", crate::seal::SEALED_SUFFIX);
            dir.join(&rel).is_file().then_some(rel)
        };
        s.wav_path = sealed("wav");
        s.rec_path = sealed("rec");
        s.archive_path = sealed("opus").or_else(|| sealed("flac"));
        s.sidecar_path = Some(rel.clone());
        s.complete = true;
        s.stop_reason = Some(
            "sealed: entered from its file names (a node with --identity reads the rest)"
                .to_owned(),
        );
        s.bytes = s.paths().map(|p| size_of(dir, p)).sum();
        if dir.join(&manifest).exists() {
            s.set_manifest(Some(manifest));
        }
        return Ok(entry);
    }
    let path = dir.join(&rel);
    let mut reader = crate::seal::open_sealed_file(&path, identities)?;
    let bytes = crate::seal::read_sealed(&mut *reader, 16 << 20)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let sidecar: Sidecar = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a sidecar: {e}", path.display()))?;
    let mut entry = Entry::from_sidecar(&sidecar, Some(rel.clone()), false)
        .ok_or_else(|| format!("{rel}: start time {:?} is not RFC 3339", sidecar.started_at))?;
    if dir.join(&manifest).exists() {
        entry.summary.set_manifest(Some(manifest));
    }
    Ok(entry)
}

/// The entry of the recording whose sidecar (or, without one, WAV or
/// container) is at `rel_path`: for recordings a crashed server left
/// marked running.
pub(crate) fn entry_at(dir: &Path, summary: &RecordingSummary) -> Result<Entry, String> {
    let any = summary.paths().next().ok_or_else(|| {
        format!(
            "recording {} has no files in the index",
            summary.recording_id
        )
    })?;
    let stem = any
        .rsplit_once('.')
        .map_or(any, |(stem, _)| stem)
        .to_owned();
    let exists = |ext: &str| dir.join(format!("{stem}.{ext}")).is_file();
    let found = Found {
        json: exists("json"),
        wav: exists("wav"),
        rec: exists("rec"),
        sealed_json: false,
    };
    let mut entry = entry_of(dir, &stem, &found)?;
    entry.summary.recording_id = summary.recording_id.clone();
    entry.summary.hold = summary.hold;
    Ok(entry)
}

/// Every recording under `dir`, one date directory at a time, handed to
/// `batch` (so a million recordings never sit in memory at once). Files
/// that cannot be read are reported to `problem` and skipped.
pub(crate) fn scan(
    dir: &Path,
    identities: &[age::x25519::Identity],
    mut batch: impl FnMut(Vec<Entry>) -> Result<(), crate::Error>,
    mut problem: impl FnMut(String),
) -> Result<(), crate::Error> {
    let list = |path: &Path| -> Result<Vec<(String, bool)>, crate::Error> {
        let mut names = Vec::new();
        for item in fs::read_dir(path).map_err(|e| crate::Error::io("read", path, e))? {
            let item = item.map_err(|e| crate::Error::io("read", path, e))?;
            let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
            if let Ok(name) = item.file_name().into_string() {
                if !name.starts_with('.') {
                    names.push((name, is_dir));
                }
            }
        }
        names.sort();
        Ok(names)
    };
    for (device, is_dir) in list(dir)? {
        if !is_dir {
            continue;
        }
        for (date, is_dir) in list(&dir.join(&device))? {
            if !is_dir {
                continue;
            }
            let mut stems: BTreeMap<String, Found> = BTreeMap::new();
            for (name, is_dir) in list(&dir.join(&device).join(&date))? {
                // A signed manifest and its signature belong to the
                // recording beside them; they are not one of their own.
                if name.ends_with(crate::sign::MANIFEST_SUFFIX)
                    || name.ends_with(crate::sign::SIGNATURE_SUFFIX)
                {
                    continue;
                }
                if let Some(stem) = name.strip_suffix(".json.age") {
                    stems
                        .entry(format!("{device}/{date}/{stem}"))
                        .or_default()
                        .sealed_json = true;
                    continue;
                }
                let Some((stem, ext)) = name.rsplit_once('.') else {
                    continue;
                };
                if is_dir {
                    continue;
                }
                if !matches!(ext, "json" | "wav" | "rec") {
                    continue;
                }
                let found = stems.entry(format!("{device}/{date}/{stem}")).or_default();
                match ext {
                    "json" => found.json = true,
                    "wav" => found.wav = true,
                    _ => found.rec = true,
                }
            }
            let mut entries = Vec::with_capacity(stems.len());
            for (stem, found) in &stems {
                if found.sealed_json {
                    match sealed_entry(dir, stem, identities) {
                        Ok(entry) => entries.push(entry),
                        Err(e) => problem(e),
                    }
                    continue;
                }
                match entry_of(dir, stem, found) {
                    Ok(entry) => entries.push(entry),
                    Err(e) => problem(e),
                }
            }
            batch(entries)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_recording_scans_as_one_recording() {
        let dir = tempfile::tempdir().unwrap();
        let mut sidecar = Sidecar::default();
        sidecar.recording_id = "r1".into();
        sidecar.started_at = "2026-12-03T10:00:00Z".into();
        sidecar.complete = true;
        let mut wav = callrec_server::RecordingFile::default();
        wav.path = "001565aabbcc/2026-12-03/100000_out_1009_abc.wav".into();
        wav.kind = "wav".into();
        sidecar.files = vec![wav];
        let day = dir.path().join("001565aabbcc/2026-12-03");
        fs::create_dir_all(&day).unwrap();
        fs::write(day.join("100000_out_1009_abc.wav"), b"RIFF").unwrap();
        let rel = "001565aabbcc/2026-12-03/100000_out_1009_abc.json";
        fs::write(dir.path().join(rel), serde_json::to_vec(&sidecar).unwrap()).unwrap();
        let entry = Entry::from_sidecar(&sidecar, Some(rel.into()), false).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        crate::sign::sign_recording(dir.path(), &entry.summary, &key, "n").unwrap();
        let mut found = Vec::new();
        scan(
            dir.path(),
            &[],
            |e| {
                found.extend(e);
                Ok(())
            },
            |p| panic!("{p}"),
        )
        .unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].summary.manifest_path.as_deref(),
            Some("001565aabbcc/2026-12-03/100000_out_1009_abc.manifest.json")
        );
    }

    #[test]
    fn names_of_recordings_without_a_sidecar() {
        let found = Found {
            wav: true,
            ..Found::default()
        };
        let entry = entry_from_name(
            "001565aabbcc/2026-12-01/081530_out_+4930_123_c0ffee",
            &found,
        )
        .unwrap();
        let s = &entry.summary;
        assert_eq!(s.device, "001565aabbcc");
        assert_eq!(s.direction, "out");
        assert_eq!(s.remote_number, "+4930_123");
        assert_eq!(s.session_id, "c0ffee");
        assert_eq!(s.started_at, "2026-12-01T08:15:30Z");
        for bad in [
            "x",
            "dev/2026-12-01/0815_out_1_2",
            "dev/2026-13-01/081530_out_1_2",
            "dev/2026-12-01/081530_out",
        ] {
            assert!(entry_from_name(bad, &found).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(derived_id("a/b/c"), derived_id("a/b/c"));
        assert_ne!(derived_id("a/b/c"), derived_id("a/b/d"));
        assert_eq!(derived_id("a/b/c").len(), 32);
    }
}
