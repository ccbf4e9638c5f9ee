//! The archive: each final recording's WAV converted to Ogg Opus or FLAC
//! by a pool of worker threads, checked, entered in its sidecar and the
//! index, and the WAV removed.
//!
//! The workers run at the lowest priority the system gives a thread
//! without privileges (`SCHED_BATCH`, nice 19 on Linux), so live calls,
//! which the runtime's threads serve, always come first. The queue needs
//! no file of its own: a recording waits for its archive as long as its
//! sidecar has no `archive` and its WAV is there, so after a restart the
//! index (or, with an object store, the upload spool's walk) finds every
//! recording still waiting. The order of the steps makes a crash at any
//! point harmless:
//!
//! 1. the archive is written to `NAME.opus.part`, flushed to disk,
//!    decoded again and checked to hold exactly the WAV's samples, then
//!    renamed to `NAME.opus` (a crash leaves a `.part`, written again);
//! 2. the sidecar is replaced atomically, naming the archive;
//! 3. the index is written (a failure keeps the WAV, and the recording is
//!    tried again: step 1 is skipped, as the sidecar names the archive);
//! 4. the WAV is removed (unless kept), and the recording goes on to the
//!    upload queue.

use core::sync::atomic::Ordering;
use core::time::Duration;
use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, Weak};

use callrec_server::{Archive, RecordingFile, Sidecar, sha256_of, write_sidecar};

use crate::codec::{self, ArchiveFormat, Decoder, WavSamples};
use crate::index::{Entry, Write as IndexWrite};
use crate::locate::inside;
use crate::seal::SEALED_SUFFIX;
use crate::service::Shared;

/// How final recordings are archived.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchiveSettings {
    /// The format final recordings are kept in ([`ArchiveFormat::Wav`]:
    /// as recorded, no workers run).
    pub format: ArchiveFormat,
    /// Opus's target for 8 kHz recordings (G.711), bits a second.
    pub narrowband_bitrate: u32,
    /// Opus's target for 16 kHz recordings (G.722, and SIPREC sessions
    /// with a G.722 stream), bits a second; a stereo recording gets the
    /// rate of its sample rate times 1.5.
    pub wideband_bitrate: u32,
    /// Worker threads.
    pub workers: usize,
    /// Whether the WAV is kept beside its archive.
    pub keep_wav: bool,
}

/// Opus's default target for 8 kHz calls: the lowest rate of those
/// measured whose PESQ against the WAV reaches 3.8 (`docs/PERFORMANCE.md`).
pub const DEFAULT_NARROWBAND_BITRATE: u32 = 12_000;

/// Opus's default target for 16 kHz calls (`docs/PERFORMANCE.md`).
pub const DEFAULT_WIDEBAND_BITRATE: u32 = 20_000;

/// Lowest and highest Opus targets taken.
pub const BITRATES: core::ops::RangeInclusive<u32> = 6_000..=256_000;

impl Default for ArchiveSettings {
    /// WAV (nothing converted); when a format is set, the default
    /// bitrates, one worker, the WAV removed.
    fn default() -> Self {
        Self {
            format: ArchiveFormat::Wav,
            narrowband_bitrate: DEFAULT_NARROWBAND_BITRATE,
            wideband_bitrate: DEFAULT_WIDEBAND_BITRATE,
            workers: 1,
            keep_wav: false,
        }
    }
}

impl ArchiveSettings {
    /// Whether recordings are converted at all.
    pub fn enabled(&self) -> bool {
        self.format != ArchiveFormat::Wav
    }

    /// The Opus target for audio of `rate` Hz and `channels` channels.
    pub(crate) fn bitrate(&self, rate: u32, channels: u16) -> u32 {
        let mono = if rate <= 8000 {
            self.narrowband_bitrate
        } else {
            self.wideband_bitrate
        };
        if channels > 1 { mono * 3 / 2 } else { mono }
    }
}

/// Recordings held in memory for archiving at most; more are found again
/// in the index once the queue is empty.
pub(crate) const MAX_HELD: usize = 100_000;

/// A recording waiting for its archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) recording_id: String,
    /// Its sidecar, relative to the recordings directory.
    pub(crate) sidecar_path: String,
}

/// Recordings waiting for their archive.
#[derive(Default)]
pub(crate) struct Archives {
    state: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Job>,
    /// Queued or being archived.
    held: HashSet<String>,
    /// Whether some may wait that only the index knows of (at a start,
    /// and after more than [`MAX_HELD`] were pushed).
    look_in_index: bool,
}

impl Archives {
    fn state(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a recording (once).
    pub(crate) fn push(&self, job: Job) {
        let mut state = self.state();
        if state.held.contains(&job.recording_id) {
            return;
        }
        if state.held.len() >= MAX_HELD {
            state.look_in_index = true;
            return;
        }
        state.held.insert(job.recording_id.clone());
        state.waiting.push_back(job);
        drop(state);
        self.ready.notify_one();
    }

    /// Marks that the index may know of recordings waiting.
    pub(crate) fn look_in_index(&self) {
        self.state().look_in_index = true;
        self.ready.notify_all();
    }

    /// The next job, waiting up to `wait`; `Err(true)` when the index is
    /// to be asked for more (the queue is empty and it may know some).
    fn next(&self, wait: Duration) -> Result<Job, bool> {
        let mut state = self.state();
        if state.waiting.is_empty() && !state.look_in_index {
            state = self
                .ready
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        match state.waiting.pop_front() {
            Some(job) => Ok(job),
            None if state.look_in_index && state.held.is_empty() => {
                state.look_in_index = false;
                Err(true)
            }
            None => Err(false),
        }
    }

    fn done(&self, recording_id: &str) {
        self.state().held.remove(recording_id);
    }

    /// Recordings queued or being archived.
    pub(crate) fn len(&self) -> u64 {
        self.state().held.len() as u64
    }
}

/// Starts the worker threads, which end when the service is dropped.
pub(crate) fn start_workers(shared: &Arc<Shared>) -> std::io::Result<()> {
    let settings = &shared.settings.archive;
    if !shared.workers_needed() {
        return Ok(());
    }
    shared.archives.look_in_index();
    for n in 0..settings.workers.max(1) {
        let weak = Arc::downgrade(shared);
        std::thread::Builder::new()
            .name(format!("callrec-archive-{n}"))
            .spawn(move || work(&weak))?;
    }
    Ok(())
}

/// One worker: archives what is queued until the service is gone.
fn work(shared: &Weak<Shared>) {
    lower_priority();
    loop {
        let next = match shared.upgrade() {
            Some(shared) => shared.archives.next(Duration::from_secs(1)),
            None => return,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match next {
            Ok(job) => {
                // A panic (a bug, or a codec's) loses this recording's
                // archive only; its WAV stays.
                let outcome = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
                    process(&shared, &job)
                }))
                .unwrap_or_else(|_| Err("the archive worker panicked".to_owned()));
                match outcome {
                    Ok(Some(bytes)) => {
                        shared.totals.archived.fetch_add(1, Ordering::Relaxed);
                        shared
                            .totals
                            .archive_bytes
                            .fetch_add(bytes, Ordering::Relaxed);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        shared.totals.archive_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(
                            recording_id = %job.recording_id,
                            "{e}; its files are kept as they are (tried again after a restart)"
                        );
                    }
                }
                shared.archives.done(&job.recording_id);
            }
            Err(true) => queue_from_index(&shared),
            Err(false) => {}
        }
    }
}

/// Queues the recordings of this node the index says still wait.
fn queue_from_index(shared: &Shared) {
    let (archive, sign, seal) = (
        shared.settings.archive.enabled(),
        shared.signing.is_some(),
        shared.sealing.is_some(),
    );
    match shared.index.to_process(
        &shared.node,
        archive,
        sign,
        seal,
        shared.store.is_some(),
        MAX_HELD,
    ) {
        Ok(jobs) => {
            let full = jobs.len() >= MAX_HELD;
            if !jobs.is_empty() {
                tracing::info!(recordings = jobs.len(), "recordings queued for archiving");
            }
            for job in jobs {
                shared.archives.push(job);
            }
            if full {
                shared.archives.look_in_index();
            }
        }
        Err(e) => {
            tracing::warn!("{e}; recordings waiting for their archive are looked for again later");
            shared.archives.look_in_index();
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Lowers the calling thread's priority as far as an unprivileged thread
/// may (`SCHED_BATCH`, nice 19); a system that refuses leaves it as it is.
fn lower_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let lowered = set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Min,
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    );
    if let Err(e) = lowered {
        tracing::debug!("the archive worker's priority stays as it was: {e:?}");
    }
}

/// Longest sidecar read.
const MAX_SIDECAR_LEN: u64 = 16 << 20;

/// Archives, seals and signs one recording as the settings say, then
/// queues it for upload; the archive's size when one was made. Each step
/// is done once: after a crash, the index and the files say which are
/// left.
fn process(shared: &Shared, job: &Job) -> Result<Option<u64>, String> {
    let sealed_before = job.sidecar_path.ends_with(SEALED_SUFFIX);
    let made = if shared.settings.archive.enabled() && !sealed_before {
        archive(shared, job).map_err(|e| format!("cannot archive: {e}"))?
    } else {
        None
    };
    let dir = &shared.settings.dir;
    let _admin = shared.admin.lock().unwrap_or_else(|e| e.into_inner());
    let index_error = |e: crate::Error| {
        // Tried again once the index answers.
        shared.archives.look_in_index();
        std::thread::sleep(Duration::from_secs(1));
        format!("{e} (tried again once the index answers)")
    };
    if !sealed_before {
        let sidecar_path = inside(dir, Path::new(&job.sidecar_path))?;
        let Some(mut sidecar) = read_sidecar(&sidecar_path)? else {
            if !crate::seal::sealed_path(&sidecar_path).exists() {
                return Ok(made); // Deleted since.
            }
            // Sealed, and the index not told before a crash.
            shared
                .index
                .seal_paths(&job.recording_id)
                .map_err(index_error)?;
            return finish(shared, job, made);
        };
        if !sidecar.complete {
            return Ok(made);
        }
        // The row exists before the steps that update it (the indexer
        // thread may not have written it yet).
        let mut entry = Entry::from_sidecar(&sidecar, Some(job.sidecar_path.clone()), false)
            .ok_or_else(|| format!("{}: start time is not RFC 3339", sidecar_path.display()))?;
        entry.summary.node.clone_from(&shared.node);
        shared
            .index
            .write(core::slice::from_ref(&entry), IndexWrite::Enter)
            .map_err(index_error)?;
        if let Some(recipients) = &shared.sealing {
            seal_recording(dir, &mut sidecar, &sidecar_path, recipients)
                .map_err(|e| format!("cannot seal: {e}"))?;
            shared
                .index
                .seal_paths(&job.recording_id)
                .map_err(index_error)?;
        }
    }
    finish(shared, job, made)
}

/// The last steps, from the index's row: the signature, the upload.
fn finish(shared: &Shared, job: &Job, made: Option<u64>) -> Result<Option<u64>, String> {
    let index_error = |e: crate::Error| {
        shared.archives.look_in_index();
        std::thread::sleep(Duration::from_secs(1));
        format!("{e} (tried again once the index answers)")
    };
    let Some(mut entry) = shared.index.entry(&job.recording_id).map_err(index_error)? else {
        return Ok(made);
    };
    if let (Some(key), None) = (&shared.signing, &entry.summary.manifest_path) {
        let manifest =
            crate::sign::sign_recording(&shared.settings.dir, &entry.summary, key, &shared.node)
                .map_err(|e| format!("cannot sign: {e}"))?;
        shared
            .index
            .set_manifest(&job.recording_id, &manifest)
            .map_err(index_error)?;
        entry.summary.set_manifest(Some(manifest));
    }
    if shared.store.is_some() {
        shared.uploads.push(entry);
    }
    Ok(made)
}

/// Seals every file of a recording and then its sidecar (which names the
/// sealed files and the recipients), to `recipients`.
fn seal_recording(
    dir: &Path,
    sidecar: &mut Sidecar,
    sidecar_path: &Path,
    recipients: &[age::x25519::Recipient],
) -> Result<(), String> {
    for file in &mut sidecar.files {
        if file.path.to_string_lossy().ends_with(SEALED_SUFFIX) {
            continue;
        }
        crate::seal::seal_file(&inside(dir, &file.path)?, recipients)?;
        file.path = crate::seal::sealed_path(&file.path);
    }
    sidecar.sealed_to = recipients.iter().map(ToString::to_string).collect();
    write_sidecar(sidecar_path, sidecar)?;
    crate::seal::seal_file(sidecar_path, recipients)
}

/// Archives one recording; the archive's size, or `None` when there was
/// nothing to do (gone, not final, already archived and entered).
fn archive(shared: &Shared, job: &Job) -> Result<Option<u64>, String> {
    let settings = &shared.settings.archive;
    let dir = &shared.settings.dir;
    let sidecar_path = inside(dir, Path::new(&job.sidecar_path))?;
    let Some(mut sidecar) = read_sidecar(&sidecar_path)? else {
        return Ok(None); // Deleted since.
    };
    if !sidecar.complete {
        return Ok(None);
    }
    let mut made = None;
    if sidecar.archive.is_none() {
        let Some(wav) = sidecar.files.iter().find(|f| f.kind == "wav").cloned() else {
            return Ok(None);
        };
        let wav_path = inside(dir, &wav.path)?;
        let (archive, file) = encode(settings, &wav_path, &wav)?;
        made = file.bytes;
        sidecar.files.push(file);
        sidecar.archive = Some(archive);
    }
    commit(shared, job, &sidecar_path, sidecar)?;
    Ok(made)
}

/// Reads a sidecar; `None` when it is gone.
fn read_sidecar(path: &Path) -> Result<Option<Sidecar>, String> {
    let read = File::open(path).and_then(|file| {
        use std::io::Read;
        let mut bytes = Vec::new();
        file.take(MAX_SIDECAR_LEN).read_to_end(&mut bytes)?;
        Ok(bytes)
    });
    match read {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes, checks and hashes the archive of the WAV at `wav_path`; the
/// sidecar's `archive` and the archive's file entry.
fn encode(
    settings: &ArchiveSettings,
    wav_path: &Path,
    wav: &RecordingFile,
) -> Result<(Archive, RecordingFile), String> {
    let open =
        |path: &Path| File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()));
    let input = open(wav_path)?;
    let len = input
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", wav_path.display()))?
        .len();
    let samples = WavSamples::new(std::io::BufReader::new(input), len)
        .map_err(|e| format!("{}: {e}", wav_path.display()))?;
    let spec = samples.spec();
    // Opus holds one or two channels; a SIPREC recording of more is kept
    // losslessly instead.
    let format = if settings.format == ArchiveFormat::Opus && spec.channels > 2 {
        ArchiveFormat::Flac
    } else {
        settings.format
    };
    let bitrate =
        (format == ArchiveFormat::Opus).then(|| settings.bitrate(spec.rate, spec.channels));
    let final_path = wav_path.with_extension(format.extension());
    let part = wav_path.with_extension(format!("{}.part", format.extension()));
    let written = (|| {
        let file =
            File::create(&part).map_err(|e| format!("cannot create {}: {e}", part.display()))?;
        let mut out = BufWriter::with_capacity(64 << 10, file);
        let encoded = match bitrate {
            Some(bitrate) => codec::encode_opus(samples, &mut out, bitrate),
            None => codec::encode_flac(samples, &mut out),
        }
        .map_err(|e| format!("{}: {e}", part.display()))?;
        let file = out
            .into_inner()
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        file.sync_all()
            .map_err(|e| format!("cannot flush {}: {e}", part.display()))?;
        // The check: it decodes, to exactly the recording's length.
        let decoded = Decoder::new(format, std::io::BufReader::new(open(&part)?))
            .and_then(|mut d| d.count_frames())
            .map_err(|e| format!("{} does not decode: {e}", part.display()))?;
        if decoded != encoded.frames {
            return Err(format!(
                "{} decodes to {decoded} samples, not the WAV's {}",
                part.display(),
                encoded.frames
            ));
        }
        std::fs::rename(&part, &final_path).map_err(|e| {
            format!(
                "cannot rename {} to {}: {e}",
                part.display(),
                final_path.display()
            )
        })?;
        if let Some(parent) = final_path.parent() {
            // The rename itself made durable.
            let _ = File::open(parent).and_then(|d| d.sync_all());
        }
        Ok(encoded)
    })();
    let encoded = match written {
        Ok(encoded) => encoded,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    let (bytes, sha256) = open(&final_path).and_then(|f| {
        sha256_of(f).map_err(|e| format!("cannot read {}: {e}", final_path.display()))
    })?;
    let (wav_bytes, wav_sha256) = match (wav.bytes, &wav.sha256) {
        (Some(bytes), Some(sha)) => (bytes, sha.clone()),
        _ => open(wav_path).and_then(|f| {
            sha256_of(f).map_err(|e| format!("cannot read {}: {e}", wav_path.display()))
        })?,
    };
    let mut archive = Archive::default();
    archive.format = format.extension().to_owned();
    archive.bitrate = bitrate;
    archive.rate = encoded.spec.rate;
    archive.channels = encoded.spec.channels;
    archive.frames = encoded.frames;
    archive.wav_bytes = wav_bytes;
    archive.wav_sha256 = wav_sha256;
    archive.wav_kept = settings.keep_wav;
    archive.archived_at = crate::time::format_time_ms(crate::service::unix_ms());
    let mut file = RecordingFile::default();
    file.path = wav.path.with_extension(format.extension());
    file.kind = format.extension().to_owned();
    file.bytes = Some(bytes);
    file.sha256 = Some(sha256);
    Ok((archive, file))
}

/// Steps 2–4: the sidecar, the index, the WAV's removal; under the
/// service's admin lock, so a deletion or retention sweep never races it.
fn commit(
    shared: &Shared,
    job: &Job,
    sidecar_path: &Path,
    mut sidecar: Sidecar,
) -> Result<(), String> {
    let _admin = shared.admin.lock().unwrap_or_else(|e| e.into_inner());
    if !sidecar_path.exists() {
        // Deleted while it was encoded (deletion removes the sidecar under
        // the same lock): its archive goes too.
        let archive = sidecar.archive.as_ref().map(|a| a.format.clone());
        if let Some(file) = sidecar
            .files
            .iter()
            .find(|f| Some(&f.kind) == archive.as_ref())
        {
            if let Ok(path) = inside(&shared.settings.dir, &file.path) {
                let _ = std::fs::remove_file(path);
            }
        }
        return Ok(());
    }
    let keep_wav = sidecar.archive.as_ref().is_some_and(|a| a.wav_kept);
    let wav = sidecar.files.iter().position(|f| f.kind == "wav");
    let removed_wav = match (keep_wav, wav) {
        (false, Some(at)) => Some(sidecar.files.remove(at)),
        _ => None,
    };
    write_sidecar(sidecar_path, &sidecar)?;
    let mut entry = Entry::from_sidecar(&sidecar, Some(job.sidecar_path.clone()), false)
        .ok_or_else(|| format!("{}: start time is not RFC 3339", sidecar_path.display()))?;
    entry.summary.node.clone_from(&shared.node);
    // Entered as a finished recording: only the changing columns (its
    // hold stays); inserted whole if its start never reached the index.
    if let Err(e) = shared
        .index
        .write(core::slice::from_ref(&entry), IndexWrite::Enter)
    {
        // Tried again once the index answers: the sidecar names the
        // archive now, so only this step is left.
        shared.archives.look_in_index();
        std::thread::sleep(Duration::from_secs(1));
        return Err(format!("{e}; the WAV stays until the index is written"));
    }
    if let Some(wav) = removed_wav {
        let path = inside(&shared.settings.dir, &wav.path)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("archived, but cannot remove {}: {e}", path.display()),
        }
    }
    Ok(())
}

impl Shared {
    /// Whether the workers run: to archive, to seal or to sign.
    pub(crate) fn workers_needed(&self) -> bool {
        self.settings.archive.enabled() || self.signing.is_some() || self.sealing.is_some()
    }

    /// Where a recording goes once final: to the workers when it waits
    /// for its archive or its signature, else to the upload queue when
    /// there is an object store.
    pub(crate) fn finished(&self, entry: Entry) {
        let s = &entry.summary;
        let wants_archive =
            self.settings.archive.enabled() && s.archive_path.is_none() && s.wav_path.is_some();
        let wants_signature = self.signing.is_some() && s.manifest_path.is_none();
        let wants_seal = self.sealing.is_some()
            && !s
                .sidecar_path
                .as_deref()
                .is_some_and(|p| p.ends_with(SEALED_SUFFIX));
        let waits = (wants_archive || wants_signature || wants_seal)
            && s.complete
            && !s.running
            && !s.uploaded;
        match (&s.sidecar_path, waits) {
            (Some(sidecar_path), true) => self.archives.push(Job {
                recording_id: s.recording_id.clone(),
                sidecar_path: sidecar_path.clone(),
            }),
            _ if self.store.is_some() => self.uploads.push(entry),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> Job {
        Job {
            recording_id: id.into(),
            sidecar_path: format!("{id}.json"),
        }
    }

    #[test]
    fn the_queue_holds_each_recording_once_and_asks_the_index_when_empty() {
        let archives = Archives::default();
        archives.push(job("a"));
        archives.push(job("a"));
        assert_eq!(archives.len(), 1);
        assert_eq!(archives.next(Duration::ZERO), Ok(job("a")));
        assert_eq!(archives.next(Duration::ZERO), Err(false));
        // Being archived: not queued again.
        archives.push(job("a"));
        assert_eq!(archives.next(Duration::ZERO), Err(false));
        archives.look_in_index();
        // The index is asked only once nothing is held.
        assert_eq!(archives.next(Duration::ZERO), Err(false));
        archives.done("a");
        assert_eq!(archives.next(Duration::ZERO), Err(true));
        assert_eq!(archives.next(Duration::ZERO), Err(false));
        assert_eq!(archives.len(), 0);
    }

    #[test]
    fn bitrates_follow_the_rate_and_channels() {
        let settings = ArchiveSettings::default();
        assert_eq!(settings.bitrate(8000, 1), DEFAULT_NARROWBAND_BITRATE);
        assert_eq!(settings.bitrate(16000, 1), DEFAULT_WIDEBAND_BITRATE);
        assert_eq!(
            settings.bitrate(8000, 2),
            DEFAULT_NARROWBAND_BITRATE * 3 / 2
        );
        assert!(!settings.enabled());
    }
}
