//! The JSON sidecar beside each recording: written when the call starts,
//! replaced atomically as it progresses and when it ends, so a crash or a
//! full disk never leaves it missing or empty.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the sidecar's layout; raised when a field changes name or
/// meaning. 2 named the times and length as the index and the API do
/// (`started_at`, `stopped_at`, `duration_ms`); schema 1's names (`start`,
/// `stop`, `audio_ms`) are still read. 3 added `source`, `participants` and
/// `channels` (SIPREC); a sidecar without them is a phone's. 4 added
/// `archive` (the recording converted to Opus or FLAC once final).
pub const SIDECAR_SCHEMA_VERSION: u32 = 4;

/// Most DTMF digits and source changes kept per call (the rest counted).
pub(crate) const MAX_NOTES: usize = 1000;

/// The numbers and names of a call at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Parties {
    /// The phone's own number.
    pub local_number: String,
    /// The phone's own display name.
    pub local_name: String,
    /// The other party's number.
    pub remote_number: String,
    /// The other party's display name.
    pub remote_name: String,
}

/// One file of a recording.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordingFile {
    /// Path relative to the recordings directory.
    pub path: PathBuf,
    /// `wav`, `rec`, or the archive's format (`opus`, `flac`): the
    /// file's extension.
    pub kind: String,
    /// Size in bytes once finalized.
    pub bytes: Option<u64>,
    /// SHA-256 of the finalized file, lowercase hex.
    pub sha256: Option<String>,
}

/// The recording's archive: its WAV converted to Opus or FLAC once final.
/// The archive file itself is one of the sidecar's `files` (its kind is
/// the format); the WAV's entry leaves `files` when the WAV is removed,
/// and its size and hash stay here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Archive {
    /// `opus` or `flac`.
    pub format: String,
    /// Opus: the encoder's target, bits a second (`None` for FLAC).
    pub bitrate: Option<u32>,
    /// Sample rate of the audio, Hz.
    pub rate: u32,
    /// Channels of the audio.
    pub channels: u16,
    /// Length in samples per channel, which the archive was checked to
    /// decode to.
    pub frames: u64,
    /// Size of the WAV it replaced.
    pub wav_bytes: u64,
    /// SHA-256 of the WAV it replaced, lowercase hex.
    pub wav_sha256: String,
    /// Whether the WAV was kept beside it.
    pub wav_kept: bool,
    /// When it was made, RFC 3339 UTC.
    pub archived_at: String,
}

/// A phone's own recording file an imported recording was made from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImportedFile {
    /// Its name on the phone's drive (`Record_20261122_101500_1.wav`).
    pub name: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// A participant of a SIPREC session, from its metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Participant {
    /// Its address of record (`sip:+4930123@example.com`), or its id when
    /// the metadata gives no address.
    pub aor: String,
    /// Its display name, when given.
    pub name: String,
}

impl Participant {
    /// Its number: the user part of a `sip:`/`sips:` aor, a `tel:`
    /// number, or the whole aor otherwise (`sip:+4930123@example.com` is
    /// `+4930123`). The index finds recordings by it.
    pub fn number(&self) -> &str {
        let aor = self.aor.as_str();
        let rest = ["sip:", "sips:", "tel:"]
            .iter()
            .find_map(|scheme| {
                aor.get(..scheme.len())
                    .filter(|s| s.eq_ignore_ascii_case(scheme))
                    .map(|_| &aor[scheme.len()..])
            })
            .unwrap_or(aor);
        rest.split(['@', ';', '?', '>']).next().unwrap_or(rest)
    }
}

/// One channel of a SIPREC recording: the stream it holds and its numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Channel {
    /// The stream's `a=label`.
    pub label: String,
    /// The aor of the participant that sends it, when the metadata says.
    pub participant: String,
    /// `PCMA`, `PCMU` or `G722`.
    pub codec: String,
    /// The RTP source it is locked onto, `IP:PORT`.
    pub rtp_source: Option<String>,
    /// Packets released in order (RFC 3550 count).
    pub packets_received: u64,
    /// Sequence numbers never received (filled with silence).
    pub packets_lost: i64,
    /// Interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Audio that came more than the aligner's lag late, or far ahead of
    /// the clock, and was dropped, milliseconds.
    pub dropped_ms: u64,
}

/// A DTMF digit (RFC 4733 telephone-event) seen in the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DtmfDigit {
    /// `0`–`9`, `*`, `#`, `A`–`D`, or the event number for others.
    pub digit: String,
    /// Where in the recording, milliseconds from its start.
    pub offset_ms: u64,
    /// The event's duration as the phone last reported it, milliseconds.
    pub duration_ms: u64,
}

/// A note on the call's timeline: a source change or a discontinuity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimelineNote {
    /// Where in the recording, milliseconds from its start.
    pub offset_ms: u64,
    /// What happened, in words.
    pub note: String,
}

/// Everything known about one recording: the sidecar's content, and what
/// observers are shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sidecar {
    /// [`SIDECAR_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Where the recording came from: `phone` (the control protocol),
    /// `siprec` (a SIPREC recording session) or `import` (a phone's own
    /// recording files, taken in afterwards).
    #[serde(default = "phone_source")]
    pub source: String,
    /// The server's unique id of this recording: 32 lowercase hex digits,
    /// the first 12 the start time in Unix milliseconds (so ids sort by
    /// start), the rest random. Unique across servers and restarts, unlike
    /// the phone's `session_id`. Empty in sidecars written before it
    /// existed.
    #[serde(default)]
    pub recording_id: String,
    /// The phone's session id; for SIPREC, the session's Call-ID.
    pub session_id: String,
    /// The phone's MAC address.
    pub device: String,
    /// `in` or `out`.
    pub direction: String,
    /// `PCMA`, `PCMU` or `G722`.
    pub codec: String,
    /// The audio format of the WAV (`A-law 8000 Hz`, …).
    pub audio_format: String,
    /// The phone's control connection, `IP:PORT`.
    pub phone_address: String,
    /// Numbers and names from the start request; for SIPREC, the first two
    /// participants' numbers (the user part of their aor) and names.
    pub start_parties: Parties,
    /// Numbers and names from the stop request, when it gave them (they
    /// differ after a transfer); otherwise the start's.
    pub final_parties: Parties,
    /// When the recording started, RFC 3339 UTC (`start` in schema 1).
    #[serde(alias = "start")]
    pub started_at: String,
    /// When it stopped, RFC 3339 UTC, once stopped (`stop` in schema 1).
    #[serde(alias = "stop")]
    pub stopped_at: Option<String>,
    /// Why it stopped, once stopped.
    pub stop_reason: Option<String>,
    /// `false` while the call runs (and after a crash).
    pub complete: bool,
    /// The recording's files.
    pub files: Vec<RecordingFile>,
    /// RTP source the call is locked onto, `IP:PORT`, and its SSRC.
    pub rtp_source: Option<String>,
    /// SSRC of the source.
    pub rtp_ssrc: Option<u32>,
    /// Packets of the call's stream released in order (RFC 3550 count:
    /// duplicates included).
    pub packets_received: u64,
    /// Sequence numbers never received (filled with silence).
    pub packets_lost: i64,
    /// Duplicates dropped.
    pub packets_duplicate: u64,
    /// Packets that arrived out of order.
    pub packets_reordered: u64,
    /// Packets that arrived after their place was given up.
    pub packets_late: u64,
    /// Datagrams from other senders (another address, port or SSRC).
    pub packets_foreign: u64,
    /// Datagrams that are not RTP.
    pub packets_malformed: u64,
    /// RTP packets of a payload type this call does not carry.
    pub packets_other_type: u64,
    /// RTP packets whose RFC 8285 extension elements were damaged (their
    /// audio was kept).
    pub packets_damaged_extension: u64,
    /// Telephone-event and comfort-noise packets (time kept as silence, not
    /// loss).
    pub packets_events: u64,
    /// Payloads dropped because they ran ahead of real time.
    pub packets_ahead: u64,
    /// Interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Silence written for loss, pauses and events, milliseconds.
    pub silence_inserted_ms: u64,
    /// Audio payload bytes written.
    pub payload_bytes: u64,
    /// Length of the recording, milliseconds (`audio_ms` in schema 1).
    #[serde(alias = "audio_ms")]
    pub duration_ms: u64,
    /// DTMF digits.
    pub dtmf: Vec<DtmfDigit>,
    /// Source changes and discontinuities.
    pub timeline: Vec<TimelineNote>,
    /// Notes beyond the kept ones.
    pub notes_dropped: u64,
    /// The first write error, if any.
    pub write_error: Option<String>,
    /// SIPREC: the session's participants, in the metadata's order (the
    /// last ones the client sent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<Participant>,
    /// SIPREC: the file's channels, in order, one per recorded stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
    /// The archive, once the recording is converted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<Archive>,
    /// An imported recording (`source: "import"`): the phone's files it
    /// was joined from, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imported_from: Vec<ImportedFile>,
    /// A sealed recording: the age recipients (`age1…`) its files are
    /// encrypted to. Its `files` then name the sealed files (`….age`),
    /// with the size and SHA-256 of what they hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed_to: Vec<String>,
}

fn phone_source() -> String {
    "phone".to_owned()
}

/// Whether a sidecar write must reach the disk before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Visible atomically (rename), durable when the kernel writes it back:
    /// enough for a process crash, and on ext4 and XFS the rename of a
    /// replaced file flushes its data first.
    Atomic,
    /// Also flushed to disk (`fdatasync`) before the rename: the final
    /// sidecar, whose hashes describe finished files.
    Durable,
}

impl Default for Sidecar {
    /// A sidecar of the current schema with every other field empty.
    fn default() -> Self {
        Self {
            schema_version: SIDECAR_SCHEMA_VERSION,
            source: phone_source(),
            recording_id: String::new(),
            session_id: String::new(),
            device: String::new(),
            direction: String::new(),
            codec: String::new(),
            audio_format: String::new(),
            phone_address: String::new(),
            start_parties: Parties::default(),
            final_parties: Parties::default(),
            started_at: String::new(),
            stopped_at: None,
            stop_reason: None,
            complete: false,
            files: Vec::new(),
            rtp_source: None,
            rtp_ssrc: None,
            packets_received: 0,
            packets_lost: 0,
            packets_duplicate: 0,
            packets_reordered: 0,
            packets_late: 0,
            packets_foreign: 0,
            packets_malformed: 0,
            packets_other_type: 0,
            packets_damaged_extension: 0,
            packets_events: 0,
            packets_ahead: 0,
            jitter_ms: 0.0,
            silence_inserted_ms: 0,
            payload_bytes: 0,
            duration_ms: 0,
            dtmf: Vec::new(),
            timeline: Vec::new(),
            notes_dropped: 0,
            write_error: None,
            participants: Vec::new(),
            channels: Vec::new(),
            archive: None,
            imported_from: Vec::new(),
            sealed_to: Vec::new(),
        }
    }
}

/// Writes `sidecar` to `path` atomically: a temporary file beside it, then
/// renamed over the old one (flushed to disk first if `durability` says).
/// On error the old sidecar stays as it was and the temporary file is
/// removed.
///
/// # Errors
/// The I/O error, with the path.
pub(crate) fn write_atomically(
    path: &Path,
    sidecar: &Sidecar,
    durability: Durability,
) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(sidecar).map_err(|e| e.to_string())?;
    let tmp = crate::paths::with_suffix(path, "tmp");
    let result = (|| -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(&json)?;
        if durability == Durability::Durable {
            file.sync_data()?;
        }
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Writes a final sidecar as the finalizer does: to a temporary file
/// beside `path`, flushed to disk, then renamed over the old one, so a
/// crash leaves the old or the new one, never a mix.
///
/// # Errors
/// A message naming the path and the I/O error.
pub fn write_sidecar(path: &Path, sidecar: &Sidecar) -> Result<(), String> {
    write_atomically(path, sidecar, Durability::Durable)
}

/// Size and SHA-256 (lowercase hex) of whatever `reader` yields: what a
/// final sidecar records for each file.
///
/// # Errors
/// The read error.
pub fn sha256_of(mut reader: impl Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    let digest = hasher.finalize();
    let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok((total, hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        // FIPS 180-2 example "abc".
        assert_eq!(
            sha256_of(&b"abc"[..]).unwrap(),
            (
                3,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_owned()
            )
        );
    }

    /// A sidecar a schema-1 server wrote (`start`, `stop`, `audio_ms`) is
    /// read with its times and length; written again, it has schema 2's
    /// names only.
    #[test]
    fn schema_1_names_are_read() {
        let mut old = serde_json::to_value(Sidecar::default()).unwrap();
        let fields = old.as_object_mut().unwrap();
        for name in ["started_at", "stopped_at", "duration_ms"] {
            fields.remove(name).unwrap();
        }
        fields.insert("schema_version".into(), 1.into());
        fields.insert("start".into(), "2026-12-01T10:15:00Z".into());
        fields.insert("stop".into(), "2026-12-01T10:15:02Z".into());
        fields.insert("audio_ms".into(), 2000.into());
        let read: Sidecar = serde_json::from_value(old).unwrap();
        assert_eq!(read.schema_version, 1);
        assert_eq!(read.started_at, "2026-12-01T10:15:00Z");
        assert_eq!(read.stopped_at.as_deref(), Some("2026-12-01T10:15:02Z"));
        assert_eq!(read.duration_ms, 2000);
        let written = serde_json::to_value(&read).unwrap();
        for old_name in ["start", "stop", "audio_ms"] {
            assert!(
                written.get(old_name).is_none(),
                "{old_name} written: {written}"
            );
        }
        assert_eq!(written["duration_ms"], 2000);
    }
}
