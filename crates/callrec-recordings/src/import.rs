//! The phone's own recordings taken in: the container files a phone wrote
//! to its USB drive (`Record_YYYYMMDD_HHMMSS.wav`, continued in `…_1.wav`,
//! `…_2.wav` when it reached its size limit) entered as recordings, the
//! parts of one call joined in order into one WAV with a sidecar
//! (`source: "import"`), then archived and uploaded like the others.
//!
//! Each file's SHA-256 is kept in the sidecar and in the index, and a file
//! whose hash the index knows is refused: the same drive imported twice
//! makes no second copy.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use callrec_audio::WavWriter;
use callrec_audio::convert::{Transcoder, WavOutput};
use callrec_file::{ReadMode, Reader, RecordTime};
use callrec_server::{ImportedFile, Parties, RecordingFile, Sidecar, sha256_of, write_sidecar};

use crate::index::Entry;
use crate::time::format_time_ms;
use crate::{Actor, Error, Recordings};

/// Imports a phone's files into the recordings directory of `settings`
/// from the command line (`record_server import`): the node's service
/// opened, the files imported, then archived and uploaded as `settings`
/// say before it returns. Run it while no server records into the
/// directory (as `--reindex`); a running node takes imports through its
/// API (`POST /api/import`).
///
/// # Errors
/// As [`Recordings::open`] and [`Recordings::import`].
pub async fn import_files(
    settings: crate::Settings,
    request: ImportRequest,
) -> Result<Vec<Imported>, Error> {
    let recordings = Recordings::open(settings)?;
    let this = recordings.clone();
    let imported = tokio::task::spawn_blocking(move || {
        this.import(&request, &Actor::new("command line", None))
    })
    .await
    .map_err(|e| Error::Settings(format!("the import's task failed: {e}")))??;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let uploads = tokio::spawn(recordings.clone().run_uploads(async {
        let _ = stopped.await;
    }));
    while recordings.archives_queued() > 0 {
        tokio::time::sleep(core::time::Duration::from_millis(50)).await;
    }
    recordings
        .wait_uploaded(core::time::Duration::from_secs(24 * 3600))
        .await;
    let _ = stop.send(());
    let _ = uploads.await;
    recordings.flush();
    Ok(imported)
}

/// What the phone's recordings are of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportRequest {
    /// The phone's MAC address (any common spelling).
    pub device: String,
    /// The phone's own number.
    pub local_number: String,
    /// The other party's number, when known.
    pub remote_number: String,
    /// The files: each call's parts in any order; several calls at once.
    pub files: Vec<PathBuf>,
}

/// One recording made by an import.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Imported {
    /// The new recording's id.
    pub recording_id: String,
    /// The files joined into it, in order.
    pub files: Vec<PathBuf>,
    /// Its length.
    pub duration_ms: u64,
}

/// Most parts of one call.
pub const MAX_PARTS: usize = 1000;

/// A file name the phone writes: its time and part number.
pub(crate) fn parse_name(path: &Path) -> Option<(RecordTime, u32)> {
    let name = path.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".wav")
        .or_else(|| name.strip_suffix(".WAV"))?;
    let rest = stem.strip_prefix("Record_")?;
    let (date, rest) = rest.split_once('_')?;
    let (time, part) = match rest.split_once('_') {
        Some((time, part)) => (time, part.parse::<u32>().ok().filter(|&p| p > 0)?),
        None => (rest, 0),
    };
    let digits =
        |s: &str, n: usize| (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then_some(());
    digits(date, 8)?;
    digits(time, 6)?;
    let number = |s: &str| s.parse::<u16>().ok();
    let time = RecordTime::new(
        number(&date[..4])?,
        number(&date[4..6])? as u8,
        number(&date[6..])? as u8,
        number(&time[..2])? as u8,
        number(&time[2..4])? as u8,
        number(&time[4..])? as u8,
    )
    .ok()?;
    Some((time, part))
}

/// A number as a path component.
fn component(text: &str) -> String {
    let out: String = text
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() { "_".to_owned() } else { out }
}

impl Recordings {
    /// Imports a phone's own recording files: each call's parts joined in
    /// order into one WAV with its sidecar (`source: "import"`), entered
    /// in the index and audited (`import`), then archived and uploaded as
    /// the node's settings say. The file names give each call's start
    /// time (`Record_YYYYMMDD_HHMMSS`, taken as UTC: set the phones' clock
    /// to UTC, or correct the times after the import). Blocking.
    ///
    /// # Errors
    /// [`Error::Import`] naming the file that is not a phone recording
    /// (its name, its header, its frames) or a part that is missing;
    /// [`Error::AlreadyImported`] for a file imported before; nothing is
    /// entered for a call whose files fail. [`Error::Io`],
    /// [`Error::Index`].
    pub fn import(&self, request: &ImportRequest, actor: &Actor) -> Result<Vec<Imported>, Error> {
        let device = request
            .device
            .parse::<callrec_control::Mac>()
            .map_err(|_| Error::Import {
                path: PathBuf::from(&request.device),
                message: format!(
                    "the device {:?} is not a MAC address (001565aabbcc, 00:15:65:AA:BB:CC)",
                    request.device
                ),
            })?
            .to_string();
        // Calls by start time, their parts by number.
        let mut calls: BTreeMap<String, (RecordTime, BTreeMap<u32, PathBuf>)> = BTreeMap::new();
        for path in &request.files {
            let (time, part) = parse_name(path).ok_or_else(|| Error::Import {
                path: path.clone(),
                message: "not a phone recording's name (Record_YYYYMMDD_HHMMSS.wav, or _1, _2 … for its parts)".to_owned(),
            })?;
            let parts = &mut calls
                .entry(time.file_stem())
                .or_insert((time, BTreeMap::new()))
                .1;
            if parts.insert(part, path.clone()).is_some() {
                return Err(Error::Import {
                    path: path.clone(),
                    message: format!("part {part} is given twice"),
                });
            }
            if parts.len() > MAX_PARTS {
                return Err(Error::Import {
                    path: path.clone(),
                    message: format!("more than {MAX_PARTS} parts"),
                });
            }
        }
        // A file imported before is named first, whatever else is wrong.
        let mut hashes = std::collections::HashMap::new();
        for path in &request.files {
            let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
            let (bytes, sha256) =
                sha256_of(BufReader::new(file)).map_err(|e| Error::io("read", path, e))?;
            if let Some(recording_id) = self.shared.index.imported_as(&sha256)? {
                return Err(Error::AlreadyImported {
                    path: path.clone(),
                    recording_id,
                });
            }
            hashes.insert(path.clone(), (bytes, sha256));
        }
        let mut imported = Vec::new();
        for (stem, (time, parts)) in calls {
            for (n, (&part, path)) in parts.iter().enumerate() {
                if part as usize != n {
                    let missing = if n == 0 {
                        format!("{stem}.wav")
                    } else {
                        format!("{stem}_{n}.wav")
                    };
                    return Err(Error::Import {
                        path: path.clone(),
                        message: format!("{missing} is missing (the parts are joined in order)"),
                    });
                }
            }
            let files: Vec<PathBuf> = parts.into_values().collect();
            let hashes = files
                .iter()
                .map(|path| {
                    let (bytes, sha256) = hashes[path].clone();
                    (path, bytes, sha256)
                })
                .collect();
            imported.push(self.import_call(&device, request, time, &files, hashes, actor)?);
        }
        Ok(imported)
    }

    /// Imports the parts of one call.
    fn import_call(
        &self,
        device: &str,
        request: &ImportRequest,
        time: RecordTime,
        parts: &[PathBuf],
        hashes: Vec<(&PathBuf, u64, String)>,
        actor: &Actor,
    ) -> Result<Imported, Error> {
        let shared = &self.shared;
        let start_ms = time.to_unix_seconds().unwrap_or(0) * 1000;
        let recording_id = new_recording_id(start_ms)?;
        let date = format!("{:04}-{:02}-{:02}", time.year(), time.month(), time.day());
        let name = format!(
            "{:02}{:02}{:02}_import_{}_{recording_id}",
            time.hour(),
            time.minute(),
            time.second(),
            component(if request.remote_number.is_empty() {
                &request.local_number
            } else {
                &request.remote_number
            }),
        );
        let relative = Path::new(device).join(&date).join(&name);
        let dir = shared.settings.dir.join(device).join(&date);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        let wav_rel = relative.with_extension("wav");
        let wav_path = shared.settings.dir.join(&wav_rel);
        let part_path = wav_path.with_extension("wav.part");
        let joined = join(parts, &part_path);
        let (codec, frames, rate) = match joined {
            Ok(summary) => summary,
            Err(e) => {
                let _ = std::fs::remove_file(&part_path);
                return Err(e);
            }
        };
        std::fs::rename(&part_path, &wav_path).map_err(|e| Error::io("rename", &part_path, e))?;
        let (wav_bytes, wav_sha256) = File::open(&wav_path)
            .and_then(sha256_of)
            .map_err(|e| Error::io("read", &wav_path, e))?;
        let duration_ms = frames * 1000 / u64::from(rate);
        let mut sidecar = Sidecar::default();
        sidecar.source = "import".to_owned();
        sidecar.recording_id.clone_from(&recording_id);
        sidecar.session_id = time.file_stem();
        sidecar.device = device.to_owned();
        sidecar.codec = codec.to_owned();
        sidecar.audio_format = match codec {
            "PCMA" => "A-law, 8000 Hz, mono",
            "PCMU" => "µ-law, 8000 Hz, mono",
            _ => "PCM 16-bit, 16000 Hz, mono (G.722 decoded)",
        }
        .to_owned();
        let mut parties = Parties::default();
        parties.local_number.clone_from(&request.local_number);
        parties.remote_number.clone_from(&request.remote_number);
        sidecar.start_parties = parties.clone();
        sidecar.final_parties = parties;
        sidecar.started_at = format_time_ms(start_ms as i64);
        sidecar.stopped_at = Some(format_time_ms(start_ms as i64 + duration_ms as i64));
        sidecar.stop_reason = Some("imported from the phone's own recording".to_owned());
        sidecar.complete = true;
        sidecar.duration_ms = duration_ms;
        let mut wav = RecordingFile::default();
        wav.path = wav_rel;
        wav.kind = "wav".to_owned();
        wav.bytes = Some(wav_bytes);
        wav.sha256 = Some(wav_sha256);
        sidecar.files = vec![wav];
        sidecar.imported_from = hashes
            .iter()
            .map(|(path, bytes, sha256)| {
                let mut file = ImportedFile::default();
                file.name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                file.bytes = *bytes;
                file.sha256.clone_from(sha256);
                file
            })
            .collect();
        let sidecar_rel = relative.with_extension("json");
        let sidecar_path = shared.settings.dir.join(&sidecar_rel);
        write_sidecar(&sidecar_path, &sidecar).map_err(|message| Error::Import {
            path: parts[0].clone(),
            message,
        })?;
        let sidecar_rel = sidecar_rel.to_string_lossy().into_owned();
        let mut entry =
            Entry::from_sidecar(&sidecar, Some(sidecar_rel), false).ok_or_else(|| {
                Error::Settings(format!(
                    "{}: start time not RFC 3339",
                    sidecar_path.display()
                ))
            })?;
        entry.summary.node.clone_from(&shared.node);
        let hashes: Vec<(String, String)> = hashes
            .iter()
            .map(|(path, _, sha)| (sha.clone(), path.display().to_string()))
            .collect();
        let entered = shared
            .audit
            .append(
                &shared.audit_anchor(),
                crate::audit::AuditLine {
                    action: "import",
                    recording_id: &recording_id,
                    actor: &actor.name,
                    address: actor.address.clone(),
                    detail: Some(format!("{} file(s) from device {device}", parts.len())),
                    time: format_time_ms(crate::service::unix_ms()),
                },
            )
            .and_then(|()| shared.index.enter_import(&entry, &hashes));
        if let Err(e) = entered {
            let _ = std::fs::remove_file(&wav_path);
            let _ = std::fs::remove_file(&sidecar_path);
            return Err(match e {
                Error::Index { message, .. } if message.contains("imported_files") => {
                    Error::AlreadyImported {
                        path: parts[0].clone(),
                        recording_id: "being imported at the same time".to_owned(),
                    }
                }
                e => e,
            });
        }
        shared.finished(entry);
        Ok(Imported {
            recording_id,
            files: parts.to_vec(),
            duration_ms,
        })
    }
}

/// A new recording id for a recording that started at `start_ms`.
fn new_recording_id(start_ms: u64) -> Result<String, Error> {
    let mut random = [0u8; 10];
    getrandom::fill(&mut random)
        .map_err(|e| Error::Settings(format!("no random numbers for a recording id: {e}")))?;
    Ok(format!(
        "{:012x}{}",
        start_ms & 0xffff_ffff_ffff,
        crate::store::hex(&random)
    ))
}

/// Joins the parts into one WAV at `out`, flushed to disk; the codec, the
/// samples written and their rate.
fn join(parts: &[PathBuf], out: &Path) -> Result<(&'static str, u64, u32), Error> {
    let file = File::create(out).map_err(|e| Error::io("create", out, e))?;
    let mut wav: Option<(WavWriter<BufWriter<File>>, Transcoder, callrec_file::Codec)> = None;
    let mut file = Some(file);
    for path in parts {
        let bad = |message: String| Error::Import {
            path: path.clone(),
            message,
        };
        let input = File::open(path).map_err(|e| Error::io("open", path, e))?;
        // Recover: a phone that lost power leaves a header whose size was
        // never patched; the frames that are whole are kept.
        let mut reader = Reader::with_mode(BufReader::new(input), ReadMode::Recover)
            .map_err(|e| bad(format!("not a phone recording: {e}")))?;
        let name = reader.header().codec();
        let codec = name.codec().ok_or_else(|| {
            bad(format!(
                "its codec {:?} is none of PCMA, PCMU, G722",
                name.as_str()
            ))
        })?;
        let (writer, transcoder, first) = match &mut wav {
            Some(state) => state,
            None => {
                let transcoder = Transcoder::new(codec, WavOutput::AsRecorded);
                let writer = WavWriter::new(
                    BufWriter::new(file.take().expect("the output once")),
                    transcoder.spec(),
                )
                .map_err(|e| bad(e.to_string()))?;
                wav.insert((writer, transcoder, codec))
            }
        };
        if *first != codec {
            return Err(bad(format!(
                "its codec {} differs from the first part's {}",
                codec.as_str(),
                first.as_str()
            )));
        }
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => transcoder
                    .write_frame(frame, writer)
                    .map_err(|e| Error::io("write", out, std::io::Error::other(e.to_string())))?,
                Ok(None) => break,
                Err(e) => return Err(bad(format!("damaged: {e}"))),
            }
        }
    }
    let Some((writer, _, codec)) = wav else {
        return Err(Error::Import {
            path: out.to_owned(),
            message: "no files".to_owned(),
        });
    };
    let (frames, rate) = (writer.frames(), writer.spec().sample_rate());
    let file = writer
        .finish()
        .map_err(|e| Error::io("write", out, std::io::Error::other(e.to_string())))?
        .into_inner()
        .map_err(|e| Error::io("write", out, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io("flush", out, e))?;
    Ok((codec.as_str(), frames, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_file_names_give_the_time_and_part() {
        let (t, part) = parse_name(Path::new("/media/usb/Record_20261122_101500_2.wav")).unwrap();
        assert_eq!(
            (t.file_stem().as_str(), part),
            ("Record_20261122_101500", 2)
        );
        assert_eq!(
            parse_name(Path::new("Record_20261122_101500.wav"))
                .unwrap()
                .1,
            0
        );
        for bad in [
            "Record_20261122_101500_0.wav",
            "Record_20261322_101500.wav",
            "Record_2026112_101500.wav",
            "Record_20261122_101500.mp3",
            "record_20261122_101500.wav",
            "Record_20261122_101500_x.wav",
            "Record_20261122_256100.wav",
        ] {
            assert!(parse_name(Path::new(bad)).is_none(), "{bad}");
        }
    }
}
