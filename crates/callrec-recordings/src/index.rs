//! The index: one row per recording, searched newest first, in SQLite
//! (one node) or PostgreSQL (a pool of nodes). Both run the SQL written
//! here once, with numbered `?N` parameters, through the seam in
//! [`crate::database`]; the tables are in [`crate::schema`].

use core::str::FromStr;
use std::fmt;

use callrec_server::{Participant, Sidecar};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::audit::{AnchorStore, AuditAnchor};
use crate::database::{ColumnError, Database, Param, Row, Transaction};
use crate::time::{format_time_ms, parse_time_ms};
use callrec_control::Mac;

/// Most results per page.
pub const MAX_LIMIT: usize = 1000;

/// Results per page when the query does not say.
pub const DEFAULT_LIMIT: usize = 50;

/// Longest search term (numbers, device, free text), in bytes.
pub const MAX_TERM_LEN: usize = 128;

pub(crate) const COLUMNS: &str = "recording_id, session_id, device, direction, local_number, \
    remote_number, local_name, remote_name, codec, started_ms, stopped_ms, duration_ms, \
    stop_reason, complete, running, hold, sha256, bytes, wav_path, rec_path, sidecar_path, \
    node, uploaded, source, participants, channels, archive_path, archive, manifest_path";

/// One channel of a SIPREC recording, as the index keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChannelSummary {
    /// The stream's `a=label`.
    pub label: String,
    /// The aor of the participant that sends it (empty when the metadata
    /// does not say).
    pub participant: String,
    /// `PCMA`, `PCMU` or `G722`.
    #[serde(default)]
    pub codec: String,
}

/// A recording's archive as the index keeps it: the sidecar's `archive`
/// and the archive file's size and hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArchiveSummary {
    /// `opus` or `flac`.
    pub format: String,
    /// Opus: the encoder's target, bits a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u32>,
    /// Sample rate, Hz.
    pub rate: u32,
    /// Channels.
    pub channels: u16,
    /// Length in samples per channel.
    pub frames: u64,
    /// Size of the archive file.
    pub bytes: u64,
    /// SHA-256 of the archive file.
    pub sha256: String,
    /// Size of the WAV it replaced.
    pub wav_bytes: u64,
    /// SHA-256 of the WAV it replaced.
    pub wav_sha256: String,
}

/// One recording as the index knows it: an item of a search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RecordingSummary {
    /// The server's id of the recording.
    pub recording_id: String,
    /// The phone's session id; for SIPREC, the session's Call-ID.
    pub session_id: String,
    /// `phone` (the control protocol) or `siprec` (a SIPREC session).
    pub source: String,
    /// The phone's MAC address (empty for SIPREC).
    pub device: String,
    /// `in` or `out`.
    pub direction: String,
    /// The phone's own number (from the start request).
    pub local_number: String,
    /// The other party's number (from the start request).
    pub remote_number: String,
    /// The phone's display name.
    pub local_name: String,
    /// The other party's display name.
    pub remote_name: String,
    /// `PCMA`, `PCMU` or `G722`.
    pub codec: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC; `null` while running.
    pub stopped_at: Option<String>,
    /// Length of the audio.
    pub duration_ms: u64,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// Whether the recording ended normally with its files final.
    pub complete: bool,
    /// Whether the call is still being recorded.
    pub running: bool,
    /// Whether it is under legal hold (never deleted).
    pub hold: bool,
    /// SHA-256 of the audio served by default, once final: the archive
    /// when there is one, else the WAV, else the phone's container.
    pub sha256: Option<String>,
    /// Bytes stored, all files of the recording together.
    pub bytes: u64,
    /// The node that recorded it (its `--node` name).
    pub node: String,
    /// Whether its files are in the object store (and no longer on the
    /// node's disk).
    pub uploaded: bool,
    /// SIPREC: the session's participants (`aor`, `name`), in the
    /// metadata's order; the first two are also `local_*` and `remote_*`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<Participant>,
    /// SIPREC: the WAV's channels in order, each the stream's `label` and
    /// the `participant` (aor) that sends it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelSummary>,
    /// The archive (Opus or FLAC), once the recording is converted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveSummary>,
    /// The archive file, relative.
    #[serde(skip)]
    pub(crate) archive_path: Option<String>,
    /// The signed manifest, relative (`--sign-key`).
    #[serde(skip)]
    pub(crate) manifest_path: Option<String>,
    /// Its signature, beside it.
    #[serde(skip)]
    pub(crate) signature_path: Option<String>,
    /// The WAV, relative to the recordings directory.
    #[serde(skip)]
    pub(crate) wav_path: Option<String>,
    /// The phone's container, relative.
    #[serde(skip)]
    pub(crate) rec_path: Option<String>,
    /// The sidecar, relative.
    #[serde(skip)]
    pub(crate) sidecar_path: Option<String>,
    #[serde(skip)]
    pub(crate) started_ms: i64,
}

impl RecordingSummary {
    /// A row of [`COLUMNS`].
    pub(crate) fn from_row(mut row: Row) -> Result<Self, ColumnError> {
        let started_ms = row.int(9)?;
        let stopped_ms = row.opt_int(10)?;
        let manifest = row.opt_text(28)?;
        Ok(Self {
            recording_id: row.text(0)?,
            session_id: row.text(1)?,
            device: row.text(2)?,
            direction: row.text(3)?,
            local_number: row.text(4)?,
            remote_number: row.text(5)?,
            local_name: row.text(6)?,
            remote_name: row.text(7)?,
            codec: row.text(8)?,
            started_at: format_time_ms(started_ms),
            stopped_at: stopped_ms.map(format_time_ms),
            duration_ms: row.int(11)?.max(0) as u64,
            stop_reason: row.opt_text(12)?,
            complete: row.flag(13)?,
            running: row.flag(14)?,
            hold: row.flag(15)?,
            sha256: row.opt_text(16)?,
            bytes: row.int(17)?.max(0) as u64,
            wav_path: row.opt_text(18)?,
            rec_path: row.opt_text(19)?,
            sidecar_path: row.opt_text(20)?,
            node: row.text(21)?,
            uploaded: row.flag(22)?,
            source: row.text(23)?,
            participants: serde_json::from_str(&row.text(24)?).unwrap_or_default(),
            channels: serde_json::from_str(&row.text(25)?).unwrap_or_default(),
            archive_path: row.opt_text(26)?,
            archive: row
                .opt_text(27)?
                .and_then(|json| serde_json::from_str(&json).ok()),
            signature_path: manifest.as_deref().map(crate::sign::signature_of),
            manifest_path: manifest,
            started_ms,
        })
    }

    /// Sets the manifest's path, and its signature's beside it.
    pub(crate) fn set_manifest(&mut self, manifest: Option<String>) {
        self.signature_path = manifest.as_deref().map(crate::sign::signature_of);
        self.manifest_path = manifest;
    }

    /// The files of the recording, relative to the recordings directory.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &str> {
        [
            &self.archive_path,
            &self.wav_path,
            &self.rec_path,
            &self.sidecar_path,
            &self.manifest_path,
            &self.signature_path,
        ]
        .into_iter()
        .filter_map(|p| p.as_deref())
    }
}

/// What the index stores of a recording; made from a sidecar.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) summary: RecordingSummary,
    pub(crate) other_parties: String,
    pub(crate) stopped_ms: Option<i64>,
    /// An imported recording's files, `(sha256, name)`: entered with it,
    /// so that the same file is refused again even after a crash or a
    /// reindex.
    pub(crate) imported: Vec<(String, String)>,
}

impl Entry {
    /// The row of a recording from its sidecar; `sidecar_path` relative.
    /// `None` when the sidecar's start time cannot be read.
    pub(crate) fn from_sidecar(
        sidecar: &Sidecar,
        sidecar_path: Option<String>,
        running: bool,
    ) -> Option<Self> {
        // The node is the caller's to set (the sidecar does not know it).
        let started_ms = parse_time_ms(&sidecar.started_at)?;
        let stopped_ms = sidecar.stopped_at.as_deref().and_then(parse_time_ms);
        let file = |kind: &str| {
            sidecar
                .files
                .iter()
                .find(|f| f.kind == kind)
                .map(|f| f.path.to_string_lossy().into_owned())
        };
        let archive = sidecar.archive.as_ref().and_then(|archive| {
            let file = sidecar.files.iter().find(|f| f.kind == archive.format)?;
            Some((
                file.path.to_string_lossy().into_owned(),
                ArchiveSummary {
                    format: archive.format.clone(),
                    bitrate: archive.bitrate,
                    rate: archive.rate,
                    channels: archive.channels,
                    frames: archive.frames,
                    bytes: file.bytes.unwrap_or(0),
                    sha256: file.sha256.clone().unwrap_or_default(),
                    wav_bytes: archive.wav_bytes,
                    wav_sha256: archive.wav_sha256.clone(),
                },
            ))
        });
        let served = archive.as_ref().map_or("", |(_, a)| a.format.as_str());
        let sha256 = [served, "wav", "rec"].iter().find_map(|kind| {
            sidecar
                .files
                .iter()
                .find(|f| f.kind == *kind)
                .and_then(|f| f.sha256.clone())
        });
        let bytes = sidecar
            .files
            .iter()
            .map(|f| f.bytes.unwrap_or(0))
            .sum::<u64>();
        let (start, last) = (&sidecar.start_parties, &sidecar.final_parties);
        let other_parties = if start == last {
            String::new()
        } else {
            [
                &last.local_number,
                &last.remote_number,
                &last.local_name,
                &last.remote_name,
            ]
            .map(String::as_str)
            .join("\n")
        };
        // Participants beyond the first two: found by free text.
        let extra: Vec<String> = sidecar
            .participants
            .iter()
            .skip(2)
            .flat_map(|p| [p.aor.clone(), p.name.clone()])
            .collect();
        let other_parties = if extra.is_empty() {
            other_parties
        } else {
            [other_parties, extra.join("\n")].join("\n")
        };
        Some(Self {
            summary: RecordingSummary {
                recording_id: sidecar.recording_id.clone(),
                session_id: sidecar.session_id.clone(),
                device: sidecar.device.clone(),
                direction: sidecar.direction.clone(),
                local_number: start.local_number.clone(),
                remote_number: start.remote_number.clone(),
                local_name: start.local_name.clone(),
                remote_name: start.remote_name.clone(),
                codec: sidecar.codec.clone(),
                started_at: format_time_ms(started_ms),
                stopped_at: stopped_ms.map(format_time_ms),
                duration_ms: sidecar.duration_ms,
                stop_reason: sidecar.stop_reason.clone(),
                complete: sidecar.complete,
                running,
                hold: false,
                sha256,
                bytes,
                wav_path: file("wav"),
                rec_path: file("rec"),
                sidecar_path,
                node: String::new(),
                uploaded: false,
                source: sidecar.source.clone(),
                participants: sidecar.participants.clone(),
                channels: sidecar
                    .channels
                    .iter()
                    .map(|c| ChannelSummary {
                        label: c.label.clone(),
                        participant: c.participant.clone(),
                        codec: c.codec.clone(),
                    })
                    .collect(),
                archive_path: archive.as_ref().map(|(path, _)| path.clone()),
                archive: archive.map(|(_, a)| a),
                manifest_path: None,
                signature_path: None,
                started_ms,
            },
            other_parties,
            stopped_ms,
            imported: sidecar
                .imported_from
                .iter()
                .map(|f| (f.sha256.clone(), f.name.clone()))
                .collect(),
        })
    }
}

/// Where the next page starts: the last item's start time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    started_ms: i64,
    recording_id: String,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.started_ms, self.recording_id)
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("cursor {s:?} is not one this server gave (`<ms>.<recording_id>`)");
        let (ms, id) = s.split_once('.').ok_or_else(bad)?;
        let started_ms = ms.parse().map_err(|_| bad())?;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        Ok(Self {
            started_ms,
            recording_id: id.to_owned(),
        })
    }
}

/// A search: every field given narrows it; results come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Query {
    /// The phone's MAC address (`001565aabbcc`; colons, dashes and capitals
    /// are accepted).
    pub device: Option<String>,
    /// A number, matched exactly against the local or the remote number.
    pub number: Option<String>,
    /// `in` or `out`.
    pub direction: Option<String>,
    /// Started at or after, Unix milliseconds.
    pub from_ms: Option<i64>,
    /// Started before, Unix milliseconds.
    pub to_ms: Option<i64>,
    /// Free text: a part of a number or a name (case-insensitive for
    /// ASCII), or a whole session id.
    pub text: Option<String>,
    /// Results per page, 1 to [`MAX_LIMIT`] (0: [`DEFAULT_LIMIT`]).
    pub limit: usize,
    /// Where to continue: a page's `next_cursor`.
    pub cursor: Option<Cursor>,
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Page {
    /// Newest first.
    pub recordings: Vec<RecordingSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `%text%` for LIKE, with `\` escaping the wildcards.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Inserts a recording or updates it whole; its hold (and its being
/// uploaded) is kept once set.
pub(crate) const UPSERT: &str = "INSERT INTO recordings (recording_id, session_id, device, \
    direction, local_number, remote_number, local_name, remote_name, other_parties, codec, \
    started_ms, stopped_ms, duration_ms, stop_reason, complete, running, hold, sha256, bytes, \
    wav_path, rec_path, sidecar_path, node, uploaded, source, participants, channels, \
    archive_path, archive, manifest_path) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
    ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30) \
    ON CONFLICT (recording_id) DO UPDATE SET session_id = ?2, device = ?3, direction = ?4, \
    local_number = ?5, remote_number = ?6, local_name = ?7, remote_name = ?8, \
    other_parties = ?9, codec = ?10, started_ms = ?11, stopped_ms = ?12, duration_ms = ?13, \
    stop_reason = ?14, complete = ?15, running = ?16, hold = recordings.hold OR ?17, \
    sha256 = ?18, bytes = ?19, wav_path = ?20, rec_path = ?21, sidecar_path = ?22, node = ?23, \
    uploaded = recordings.uploaded OR ?24, source = ?25, participants = ?26, channels = ?27, \
    archive_path = ?28, archive = ?29, manifest_path = COALESCE(?30, recordings.manifest_path)";

/// Completes a recording entered when it started: only the columns that
/// change, so that the search indexes are not rewritten.
pub(crate) const FINISH: &str = "UPDATE recordings SET other_parties = ?2, stopped_ms = ?3, \
    duration_ms = ?4, stop_reason = ?5, complete = ?6, running = FALSE, sha256 = ?7, bytes = ?8, \
    wav_path = ?9, rec_path = ?10, participants = ?11, channels = ?12, archive_path = ?13, \
    archive = ?14, manifest_path = COALESCE(?15, manifest_path) WHERE recording_id = ?1";

/// The parameters of [`UPSERT`].
pub(crate) fn upsert_params(entry: &Entry) -> Vec<Param> {
    let s = &entry.summary;
    vec![
        Param::Text(s.recording_id.clone()),
        Param::Text(s.session_id.clone()),
        Param::Text(s.device.clone()),
        Param::Text(s.direction.clone()),
        Param::Text(s.local_number.clone()),
        Param::Text(s.remote_number.clone()),
        Param::Text(s.local_name.clone()),
        Param::Text(s.remote_name.clone()),
        Param::Text(entry.other_parties.clone()),
        Param::Text(s.codec.clone()),
        Param::Int(s.started_ms),
        Param::OptInt(entry.stopped_ms),
        Param::Int(s.duration_ms as i64),
        Param::OptText(s.stop_reason.clone()),
        Param::Flag(s.complete),
        Param::Flag(s.running),
        Param::Flag(s.hold),
        Param::OptText(s.sha256.clone()),
        Param::Int(s.bytes as i64),
        Param::OptText(s.wav_path.clone()),
        Param::OptText(s.rec_path.clone()),
        Param::OptText(s.sidecar_path.clone()),
        Param::Text(s.node.clone()),
        Param::Flag(s.uploaded),
        Param::Text(s.source.clone()),
        Param::Text(json_of(&s.participants)),
        Param::Text(json_of(&s.channels)),
        Param::OptText(s.archive_path.clone()),
        Param::OptText(
            s.archive
                .as_ref()
                .and_then(|a| serde_json::to_string(a).ok()),
        ),
        Param::OptText(s.manifest_path.clone()),
    ]
}

/// The parameters of [`FINISH`].
pub(crate) fn finish_params(entry: &Entry) -> Vec<Param> {
    let s = &entry.summary;
    vec![
        Param::Text(s.recording_id.clone()),
        Param::Text(entry.other_parties.clone()),
        Param::OptInt(entry.stopped_ms),
        Param::Int(s.duration_ms as i64),
        Param::OptText(s.stop_reason.clone()),
        Param::Flag(s.complete),
        Param::OptText(s.sha256.clone()),
        Param::Int(s.bytes as i64),
        Param::OptText(s.wav_path.clone()),
        Param::OptText(s.rec_path.clone()),
        Param::Text(json_of(&s.participants)),
        Param::Text(json_of(&s.channels)),
        Param::OptText(s.archive_path.clone()),
        Param::OptText(
            s.archive
                .as_ref()
                .and_then(|a| serde_json::to_string(a).ok()),
        ),
        Param::OptText(s.manifest_path.clone()),
    ]
}

/// Forgets a recording's participant numbers (`?1`: its id).
const FORGET_NUMBERS: &str = "DELETE FROM participant_numbers WHERE recording_id = ?1";

/// The numbers of a SIPREC recording's participants, so that `number=`
/// finds it by any of them (also one whose number changed after the start,
/// which `local_number` and `remote_number` keep); replaced whole on every
/// write.
fn write_participant_numbers(
    tx: &mut dyn Transaction,
    summary: &RecordingSummary,
) -> Result<(), Error> {
    if summary.source != "siprec" {
        return Ok(());
    }
    let id = Param::Text(summary.recording_id.clone());
    tx.execute(FORGET_NUMBERS, core::slice::from_ref(&id))?;
    for participant in &summary.participants {
        let number = participant.number();
        if number.is_empty() {
            continue;
        }
        tx.execute(
            "INSERT INTO participant_numbers (number, recording_id) VALUES (?1, ?2) \
             ON CONFLICT (number, recording_id) DO NOTHING",
            &[Param::Text(number.to_owned()), id.clone()],
        )?;
    }
    Ok(())
}

/// A list as the JSON text its column keeps.
fn json_of<T: Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// How an entry is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// As the server reports it: a new one inserted; a finished one only
    /// has its changing columns updated, or is inserted whole when its
    /// start never reached the index.
    Enter,
    /// Inserted or replaced whole (rebuilding, recovering, uploading).
    Upsert,
}

/// A search as SQL: the text (with `?N` parameters), its parameters and
/// the page size.
pub(crate) fn search_sql(query: &Query, like: &str) -> (String, Vec<Param>, usize) {
    let limit = match query.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let mut values: Vec<Param> = Vec::new();
    let mut conditions = Vec::new();
    // Numbered parameters: the number's two halves reuse the filters'.
    let bind = |values: &mut Vec<Param>, p: Param| {
        values.push(p);
        format!("?{}", values.len())
    };
    let number = query
        .number
        .as_ref()
        .map(|n| bind(&mut values, Param::Text(n.clone())));
    if let Some(device) = &query.device {
        let p = bind(
            &mut values,
            Param::Text(
                // The server stores `Mac`'s display: any spelling of a MAC
                // finds it (the API refuses what is not one).
                device
                    .parse::<Mac>()
                    .map_or_else(|_| device.clone(), |mac| mac.to_string()),
            ),
        );
        conditions.push(format!("device = {p}"));
    }
    if let Some(direction) = &query.direction {
        let p = bind(&mut values, Param::Text(direction.clone()));
        conditions.push(format!("direction = {p}"));
    }
    if let Some(from) = query.from_ms {
        let p = bind(&mut values, Param::Int(from));
        conditions.push(format!("started_ms >= {p}"));
    }
    if let Some(to) = query.to_ms {
        let p = bind(&mut values, Param::Int(to));
        conditions.push(format!("started_ms < {p}"));
    }
    if let Some(text) = &query.text {
        let pattern = bind(&mut values, Param::Text(like_pattern(text)));
        let exact = bind(&mut values, Param::Text(text.clone()));
        let l = |column: &str| format!("{column} {like} {pattern} ESCAPE '\\'");
        conditions.push(format!(
            "({} OR {} OR {} OR {} OR {} OR session_id = {exact})",
            l("local_number"),
            l("remote_number"),
            l("local_name"),
            l("remote_name"),
            l("other_parties"),
        ));
    }
    if let Some(cursor) = &query.cursor {
        let ms = bind(&mut values, Param::Int(cursor.started_ms));
        let id = bind(&mut values, Param::Text(cursor.recording_id.clone()));
        conditions.push(format!("(started_ms, recording_id) < ({ms}, {id})"));
    }
    let filter: String = conditions.iter().map(|c| format!(" AND {c}")).collect();
    let order = "ORDER BY started_ms DESC, recording_id DESC";
    let fetch = limit + 1;
    let sql = match number {
        // Two ordered index walks, merged: fast however many calls one
        // number has.
        Some(number) => format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM recordings WHERE local_number = {number}{filter} {order} LIMIT {fetch}) AS l \
             UNION SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM recordings WHERE remote_number = {number}{filter} {order} LIMIT {fetch}) AS r \
             UNION SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM recordings WHERE recording_id IN \
             (SELECT recording_id FROM participant_numbers WHERE number = {number}){filter} {order} LIMIT {fetch}) AS p \
             {order} LIMIT {fetch}"
        ),
        None => {
            format!("SELECT {COLUMNS} FROM recordings WHERE TRUE{filter} {order} LIMIT {fetch}")
        }
    };
    (sql, values, limit)
}

/// The page of a search whose SQL fetched one more row than `limit`.
pub(crate) fn page_of(mut recordings: Vec<RecordingSummary>, limit: usize) -> Page {
    let next_cursor = if recordings.len() > limit {
        recordings.truncate(limit);
        recordings.last().map(|last| {
            Cursor {
                started_ms: last.started_ms,
                recording_id: last.recording_id.clone(),
            }
            .to_string()
        })
    } else {
        None
    };
    Page {
        recordings,
        next_cursor,
    }
}

/// Recordings that may be deleted, oldest first: neither running nor on
/// hold, started before `?1`, and either in the object store or, when
/// there is none (`?3` false), on this node's (`?4`) disk.
pub(crate) const DELETABLE: &str = "SELECT {COLUMNS} FROM recordings WHERE started_ms < ?1 \
    AND NOT running AND NOT hold AND (uploaded OR (NOT ?3 AND node IN (?4, ''))) \
    ORDER BY started_ms, recording_id LIMIT ?2";

/// The index on its database: a SQLite file, or a PostgreSQL database
/// shared by a pool of nodes.
pub(crate) struct Index {
    database: Box<dyn Database>,
}

impl Index {
    /// The index on `database` (opened, its schema migrated).
    pub(crate) fn new(database: Box<dyn Database>) -> Self {
        Self { database }
    }

    /// The database, for messages: its file, or its URL without password.
    pub(crate) fn describe(&self) -> &str {
        self.database.describe()
    }

    /// Whether the database answered its last request (SQLite: always).
    pub(crate) fn available(&self) -> bool {
        self.database.available()
    }

    /// Whether the database is shared by a pool of nodes.
    pub(crate) fn pooled(&self) -> bool {
        self.database.pooled()
    }

    /// Checks that the database answers (see [`Database::probe`]).
    pub(crate) fn probe(&self) -> Result<(), Error> {
        self.database.probe()
    }

    /// A row that does not hold what `what` reads.
    fn bad_row(&self, what: &str, e: &ColumnError) -> Error {
        Error::index(self.describe(), format!("{what}: {e}"))
    }

    fn summaries(&self, rows: Vec<Row>) -> Result<Vec<RecordingSummary>, Error> {
        rows.into_iter()
            .map(|row| {
                RecordingSummary::from_row(row).map_err(|e| {
                    let name = COLUMNS.split(',').nth(e.column).map_or("?", str::trim);
                    self.bad_row(&format!("a recording's {name}"), &e)
                })
            })
            .collect()
    }

    /// Runs `work` in one transaction (rolled back when it fails).
    fn transaction<T>(
        &self,
        work: impl FnOnce(&mut dyn Transaction) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut work = Some(work);
        let mut out = None;
        self.database.transaction(&mut |tx| {
            if let Some(work) = work.take() {
                out = Some(work(tx)?);
            }
            Ok(())
        })?;
        out.ok_or_else(|| Error::index(self.describe(), "the transaction did not run"))
    }

    /// Writes `entries` in one transaction.
    pub(crate) fn write(&self, entries: &[Entry], how: Write) -> Result<(), Error> {
        self.transaction(|tx| {
            for entry in entries {
                write_participant_numbers(tx, &entry.summary)?;
                for (sha256, name) in &entry.imported {
                    tx.execute(
                        "INSERT INTO imported_files (sha256, recording_id, name) \
                         VALUES (?1, ?2, ?3) ON CONFLICT (sha256) DO NOTHING",
                        &[
                            Param::Text(sha256.clone()),
                            Param::Text(entry.summary.recording_id.clone()),
                            Param::Text(name.clone()),
                        ],
                    )?;
                }
                if how == Write::Enter
                    && !entry.summary.running
                    && tx.execute(FINISH, &finish_params(entry))? > 0
                {
                    continue;
                }
                tx.execute(UPSERT, &upsert_params(entry))?;
            }
            Ok(())
        })
    }

    /// The recording a phone's file of this SHA-256 was imported as.
    pub(crate) fn imported_as(&self, sha256: &str) -> Result<Option<String>, Error> {
        let rows = self.database.query(
            "SELECT recording_id FROM imported_files WHERE sha256 = ?1",
            &[Param::Text(sha256.to_owned())],
        )?;
        rows.into_iter()
            .next()
            .map(|mut row| row.text(0))
            .transpose()
            .map_err(|e| self.bad_row("imported file", &e))
    }

    /// Enters an imported recording and its files' hashes (`(sha256,
    /// name)`) in one transaction; a hash entered meanwhile fails it.
    pub(crate) fn enter_import(
        &self,
        entry: &Entry,
        files: &[(String, String)],
    ) -> Result<(), Error> {
        self.transaction(|tx| {
            for (sha256, name) in files {
                tx.execute(
                    "INSERT INTO imported_files (sha256, recording_id, name) VALUES (?1, ?2, ?3)",
                    &[
                        Param::Text(sha256.clone()),
                        Param::Text(entry.summary.recording_id.clone()),
                        Param::Text(name.clone()),
                    ],
                )?;
            }
            tx.execute(UPSERT, &upsert_params(entry))?;
            Ok(())
        })
    }

    /// Forgets the recordings of `node` that are not in the object store
    /// (before rebuilding them from its files).
    pub(crate) fn forget_local(&self, node: &str) -> Result<(), Error> {
        let node = [Param::Text(node.to_owned())];
        self.transaction(|tx| {
            tx.execute(
                "DELETE FROM participant_numbers WHERE recording_id IN \
                 (SELECT recording_id FROM recordings WHERE NOT uploaded AND node IN (?1, ''))",
                &node,
            )?;
            tx.execute(
                "DELETE FROM recordings WHERE NOT uploaded AND node IN (?1, '')",
                &node,
            )
        })
        .map(drop)
    }

    /// Forgets a recording (its files are the caller's).
    pub(crate) fn remove(&self, recording_id: &str) -> Result<(), Error> {
        let id = [Param::Text(recording_id.to_owned())];
        self.transaction(|tx| {
            tx.execute(FORGET_NUMBERS, &id)?;
            tx.execute("DELETE FROM recordings WHERE recording_id = ?1", &id)
        })
        .map(drop)
    }

    /// Runs one statement in a transaction of its own; the rows it
    /// changed.
    fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, Error> {
        self.transaction(|tx| tx.execute(sql, params))
    }

    /// Rows of `sql` (which selects [`COLUMNS`]).
    fn select(&self, sql: &str, params: &[Param]) -> Result<Vec<RecordingSummary>, Error> {
        let sql = sql.replace("{COLUMNS}", COLUMNS);
        self.summaries(self.database.query(&sql, params)?)
    }

    /// One page of `query`.
    pub(crate) fn search(&self, query: &Query) -> Result<Page, Error> {
        let (sql, params, limit) = search_sql(query, self.database.dialect().like);
        Ok(page_of(self.select(&sql, &params)?, limit))
    }

    /// The recording with this id.
    pub(crate) fn get(&self, recording_id: &str) -> Result<Option<RecordingSummary>, Error> {
        let mut rows = self.select(
            "SELECT {COLUMNS} FROM recordings WHERE recording_id = ?1",
            &[Param::Text(recording_id.to_owned())],
        )?;
        Ok(rows.pop())
    }

    /// A recording as an entry to write back whole (the upload's).
    pub(crate) fn entry(&self, recording_id: &str) -> Result<Option<Entry>, Error> {
        let sql = format!(
            "SELECT {COLUMNS}, other_parties, stopped_ms FROM recordings WHERE recording_id = ?1"
        );
        let rows = self
            .database
            .query(&sql, &[Param::Text(recording_id.to_owned())])?;
        let Some(mut row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let read = (|| {
            let other_parties = row.text(29)?;
            let stopped_ms = row.opt_int(30)?;
            Ok(Entry {
                summary: RecordingSummary::from_row(row)?,
                other_parties,
                stopped_ms,
                imported: Vec::new(),
            })
        })();
        read.map(Some)
            .map_err(|e: ColumnError| self.bad_row("recording", &e))
    }

    /// Marks a recording's files sealed: each path gets `.age` (once).
    pub(crate) fn seal_paths(&self, recording_id: &str) -> Result<(), Error> {
        let sealed = |column: &str| {
            format!(
                "{column} = CASE WHEN {column} IS NULL OR {column} LIKE '%.age' \
                 THEN {column} ELSE {column} || '.age' END"
            )
        };
        let sql = format!(
            "UPDATE recordings SET {}, {}, {}, {} WHERE recording_id = ?1",
            sealed("wav_path"),
            sealed("rec_path"),
            sealed("archive_path"),
            sealed("sidecar_path")
        );
        self.execute(&sql, &[Param::Text(recording_id.to_owned())])
            .map(drop)
    }

    /// Records a recording's signed manifest.
    pub(crate) fn set_manifest(&self, recording_id: &str, manifest: &str) -> Result<(), Error> {
        self.execute(
            "UPDATE recordings SET manifest_path = ?2 WHERE recording_id = ?1",
            &[
                Param::Text(recording_id.to_owned()),
                Param::Text(manifest.to_owned()),
            ],
        )
        .map(drop)
    }

    /// Sets or clears the hold; `false` when there is no such recording.
    pub(crate) fn set_hold(&self, recording_id: &str, hold: bool) -> Result<bool, Error> {
        self.execute(
            "UPDATE recordings SET hold = ?2 WHERE recording_id = ?1",
            &[Param::Text(recording_id.to_owned()), Param::Flag(hold)],
        )
        .map(|n| n > 0)
    }

    /// Deletes a recording: its row is locked (no other node can hold or
    /// delete it meanwhile), `files` removes what it stores, then the row
    /// goes. `None` when there is no such recording (any more); when
    /// `files` fails, the row stays.
    pub(crate) fn delete_with(
        &self,
        recording_id: &str,
        files: impl FnOnce(&RecordingSummary) -> Result<u64, Error>,
    ) -> Result<Option<u64>, Error> {
        let id = [Param::Text(recording_id.to_owned())];
        let select = format!(
            "SELECT {COLUMNS} FROM recordings WHERE recording_id = ?1{}",
            self.database.dialect().lock_row
        );
        self.transaction(|tx| {
            let rows = tx.query(&select, &id)?;
            let Some(recording) = self.summaries(rows)?.pop() else {
                return Ok(None);
            };
            // An error here rolls back: the row stays.
            let bytes = files(&recording)?;
            tx.execute(FORGET_NUMBERS, &id)?;
            tx.execute("DELETE FROM recordings WHERE recording_id = ?1", &id)?;
            Ok(Some(bytes))
        })
    }

    /// Oldest first: recordings that may be deleted (as [`DELETABLE`]),
    /// started before `before_ms` when given.
    pub(crate) fn deletable(
        &self,
        before_ms: Option<i64>,
        limit: usize,
        with_store: bool,
        node: &str,
    ) -> Result<Vec<RecordingSummary>, Error> {
        self.select(
            DELETABLE,
            &[
                Param::Int(before_ms.unwrap_or(i64::MAX)),
                Param::Int(limit as i64),
                Param::Flag(with_store),
                Param::Text(node.to_owned()),
            ],
        )
    }

    /// Bytes of all recordings, and how many there are (kept by triggers,
    /// so that metrics and retention never scan the table).
    pub(crate) fn totals(&self) -> Result<(u64, u64), Error> {
        let rows = self
            .database
            .query("SELECT bytes, count FROM totals WHERE id = 1", &[])?;
        let row = rows.into_iter().next().unwrap_or_default();
        let read = |column| {
            row.opt_int(column)
                .map(|n| n.unwrap_or(0).max(0) as u64)
                .map_err(|e| self.bad_row("totals", &e))
        };
        Ok((read(0)?, read(1)?))
    }

    /// Each device's newest recording start, Unix milliseconds.
    pub(crate) fn last_per_device(&self) -> Result<Vec<(String, i64)>, Error> {
        let rows = self.database.query(
            "SELECT device, MAX(started_ms) FROM recordings GROUP BY device",
            &[],
        )?;
        rows.into_iter()
            .map(|mut row| {
                let device = row.text(0);
                device
                    .and_then(|device| Ok((device, row.int(1)?)))
                    .map_err(|e| self.bad_row("last start per device", &e))
            })
            .collect()
    }

    /// Recordings of `node` marked running: at start-up, the ones its
    /// previous process left unfinished.
    pub(crate) fn running(&self, node: &str) -> Result<Vec<RecordingSummary>, Error> {
        self.select(
            "SELECT {COLUMNS} FROM recordings WHERE running AND node IN (?1, '')",
            &[Param::Text(node.to_owned())],
        )
    }

    /// The ids under hold.
    /// Recordings of `node` that wait for the workers (final, not
    /// uploaded, and without the archive (`archive`), a signed manifest
    /// (`sign`) or their seal (`seal`), or any not uploaded (`upload`)),
    /// oldest first, `limit` at most.
    pub(crate) fn to_process(
        &self,
        node: &str,
        archive: bool,
        sign: bool,
        seal: bool,
        upload: bool,
        limit: usize,
    ) -> Result<Vec<crate::archive::Job>, Error> {
        let rows = self.database.query(
            "SELECT recording_id, sidecar_path FROM recordings WHERE node = ?1 \
             AND sidecar_path IS NOT NULL AND complete AND NOT running AND NOT uploaded \
             AND ((?3 AND archive_path IS NULL AND wav_path IS NOT NULL \
                   AND sidecar_path NOT LIKE '%.age') \
                  OR (?4 AND manifest_path IS NULL) \
                  OR (?5 AND sidecar_path NOT LIKE '%.age') OR ?6) \
             ORDER BY started_ms LIMIT ?2",
            &[
                Param::Text(node.to_owned()),
                Param::Int(limit as i64),
                Param::Flag(archive),
                Param::Flag(sign),
                Param::Flag(seal),
                Param::Flag(upload),
            ],
        )?;
        rows.into_iter()
            .map(|mut row| {
                Ok(crate::archive::Job {
                    recording_id: row.text(0)?,
                    sidecar_path: row.text(1)?,
                })
            })
            .collect::<Result<_, ColumnError>>()
            .map_err(|e| self.bad_row("recording waiting for its archive", &e))
    }

    pub(crate) fn held(&self) -> Result<Vec<String>, Error> {
        let rows = self.select("SELECT {COLUMNS} FROM recordings WHERE hold", &[])?;
        Ok(rows.into_iter().map(|r| r.recording_id).collect())
    }

    /// The audit log anchor kept for `node`.
    pub(crate) fn audit_anchor(&self, node: &str) -> Result<Option<AuditAnchor>, Error> {
        let rows = self.database.query(
            "SELECT entries, head, pending FROM audit_anchor WHERE node = ?1",
            &[Param::Text(node.to_owned())],
        )?;
        let Some(mut row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let read = |row: &mut Row| -> Result<AuditAnchor, ColumnError> {
            let entries = row.int(0)?;
            let head = row.text(1)?;
            let pending = row.opt_text(2)?;
            Ok(AuditAnchor {
                pending,
                ..AuditAnchor::new(u64::try_from(entries).unwrap_or(0), head)
            })
        };
        read(&mut row)
            .map(Some)
            .map_err(|e| self.bad_row("the audit log's anchor", &e))
    }

    /// Keeps `anchor` as `node`'s audit log anchor.
    pub(crate) fn set_audit_anchor(&self, node: &str, anchor: &AuditAnchor) -> Result<(), Error> {
        self.execute(
            "INSERT INTO audit_anchor (node, entries, head, pending) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (node) DO UPDATE SET entries = excluded.entries, \
             head = excluded.head, pending = excluded.pending",
            &[
                Param::Text(node.to_owned()),
                Param::Int(i64::try_from(anchor.entries).unwrap_or(i64::MAX)),
                Param::Text(anchor.head.clone()),
                Param::OptText(anchor.pending.clone()),
            ],
        )
        .map(drop)
    }

    /// Keeps `public_url` as where `node`'s API is reached (`--public-url`).
    pub(crate) fn set_public_url(
        &self,
        node: &str,
        public_url: &str,
        now_ms: i64,
    ) -> Result<(), Error> {
        self.execute(
            "INSERT INTO nodes (node, public_url, updated_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT (node) DO UPDATE SET public_url = excluded.public_url, \
             updated_ms = excluded.updated_ms",
            &[
                Param::Text(node.to_owned()),
                Param::Text(public_url.to_owned()),
                Param::Int(now_ms),
            ],
        )
        .map(drop)
    }

    /// Where `node`'s API is reached, when it said so.
    pub(crate) fn public_url(&self, node: &str) -> Result<Option<String>, Error> {
        let rows = self.database.query(
            "SELECT public_url FROM nodes WHERE node = ?1",
            &[Param::Text(node.to_owned())],
        )?;
        match rows.into_iter().next() {
            Some(mut row) => row
                .text(0)
                .map(Some)
                .map_err(|e| self.bad_row("the nodes table", &e)),
            None => Ok(None),
        }
    }

    /// Runs `work` while no other node runs work for `recording_id` (see
    /// [`Database::for_recording`]).
    pub(crate) fn for_recording<T>(
        &self,
        recording_id: &str,
        work: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let (ran, out) = run_once(work, |once| self.database.for_recording(recording_id, once));
        ran?;
        out.ok_or_else(|| Error::index(self.describe(), "the locked work did not run"))
    }

    /// Runs `work` while no other node sweeps; `None` when another one is
    /// sweeping now.
    pub(crate) fn exclusively<T>(
        &self,
        work: impl FnOnce() -> Result<T, Error>,
    ) -> Result<Option<T>, Error> {
        let (ran, out) = run_once(work, |once| self.database.exclusively(once));
        Ok(if ran? { out } else { None })
    }
}

/// Hands `work` to `run` as the `FnMut` a [`Database`] method takes, and
/// gives back what `run` returned and what `work` did, if it ran.
fn run_once<T, R>(
    work: impl FnOnce() -> Result<T, Error>,
    run: impl FnOnce(&mut dyn FnMut() -> Result<(), Error>) -> Result<R, Error>,
) -> (Result<R, Error>, Option<T>) {
    let mut work = Some(work);
    let mut out = None;
    let ran = run(&mut || {
        if let Some(work) = work.take() {
            out = Some(work()?);
        }
        Ok(())
    });
    (ran, out)
}

/// A node's audit log anchor in the index.
pub(crate) struct NodeAnchor<'a> {
    pub(crate) index: &'a Index,
    pub(crate) node: &'a str,
}

impl AnchorStore for NodeAnchor<'_> {
    fn read_anchor(&self) -> Result<Option<AuditAnchor>, Error> {
        self.index.audit_anchor(self.node)
    }

    fn write_anchor(&self, anchor: &AuditAnchor) -> Result<(), Error> {
        self.index.set_audit_anchor(self.node, anchor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_sql_numbers_its_parameters_in_order() {
        let query = Query {
            number: Some("1010".into()),
            device: Some("00:15:65:AA:BB:CC".into()),
            text: Some("50%".into()),
            cursor: Some("1700000000000.abc".parse().unwrap()),
            limit: 2,
            ..Query::default()
        };
        let (sql, params, limit) = search_sql(&query, "ILIKE");
        assert_eq!(limit, 2);
        assert_eq!(params.len(), 6);
        assert_eq!(params[1], Param::Text("001565aabbcc".into()));
        assert_eq!(params[2], Param::Text("%50\\%%".into()));
        for n in 1..=6 {
            assert!(sql.contains(&format!("?{n}")), "?{n} in {sql}");
        }
        assert!(!sql.contains("?7"));
        assert!(sql.contains("local_number = ?1") && sql.contains("remote_number = ?1"));
        assert!(sql.contains("ILIKE ?3"));
        assert!(sql.contains("LIMIT 3"));
    }
}
