//! The service: the index kept current by an observer, retention, holds,
//! deletions and the counters behind `/metrics`.

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use callrec_server::{Counters, Observer, Sidecar};
use core::net::SocketAddr;

use crate::tokens::Tokens;

use crate::audit::{self, AuditLog, AuditReport};
use crate::index::{Entry, Index, Page, Query, RecordingSummary, Write};
use crate::postgres::PgIndex;
use crate::sqlite::SqliteIndex;
use crate::store::{ObjectStore, StoreSettings};
use crate::time::format_time_ms;
use crate::upload::Uploads;
use crate::{Error, scan};

/// Most devices whose last recording time `/metrics` reports (each is one
/// series; the allow-list decides who records, this bounds the rest).
pub const MAX_DEVICES: usize = 100_000;

/// Index entries written per transaction at most.
const BATCH: usize = 2000;

/// How long the index writer gathers entries before a transaction (an
/// entry reaches the index at most this much later).
const GATHER: Duration = Duration::from_millis(250);

/// Where the service keeps its own files, inside the recordings
/// directory (no device directory can be called this: the server turns a
/// leading `.` of a device name into `_`).
pub const STATE_DIR: &str = ".callrec";

/// How the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// The recordings directory (the server's `dir`).
    pub dir: PathBuf,
    /// Delete recordings older than this many days.
    pub retain_days: Option<u32>,
    /// Delete the oldest recordings while all of them together take more
    /// bytes than this.
    pub max_disk_usage: Option<u64>,
    /// How often retention runs.
    pub sweep_interval: Duration,
    /// The index: `None` for SQLite in the recordings directory (one
    /// node), or a `postgres://user:password@host/database` URL shared by
    /// a pool of nodes.
    pub index: Option<String>,
    /// The object store recordings move to once final (`None`: they stay
    /// in the recordings directory).
    pub store: Option<StoreSettings>,
    /// This node's name in a pool (`None`: the one kept in
    /// `DIR/.callrec/node`, made up on the first start).
    pub node: Option<String>,
    /// Where a [`Node`](crate::Node) serves the web page and the HTTP API
    /// (`None`: it serves none).
    pub http: Option<SocketAddr>,
    /// The API's tokens (`None`: loopback only, see
    /// [`HttpApi::bind`](crate::HttpApi::bind)).
    pub tokens: Option<Tokens>,
    /// Whether a [`Node`](crate::Node) rebuilds the index from the files
    /// before it serves ([`Recordings::reindex`]).
    pub reindex: bool,
    /// How long [`Node::shutdown`](crate::Node::shutdown) waits for the
    /// upload queue to empty (what is left is uploaded after the next
    /// start).
    pub upload_drain: Duration,
}

impl Settings {
    /// Settings for recordings in `dir`: no retention limit, swept every
    /// minute once one is set.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            retain_days: None,
            max_disk_usage: None,
            sweep_interval: Duration::from_secs(60),
            index: None,
            store: None,
            node: None,
            http: None,
            tokens: None,
            reindex: false,
            upload_drain: Duration::from_secs(30),
        }
    }
}

/// What rebuilding the index found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReindexSummary {
    /// Recordings entered.
    pub recordings: u64,
    /// Of those, recordings that never finished (marked incomplete).
    pub incomplete: u64,
    /// Recordings put back under hold.
    pub held: u64,
    /// Files that could not be read, each naming the file.
    pub problems: Vec<String>,
}

/// What one retention run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepSummary {
    /// Recordings deleted.
    pub deleted: u64,
    /// Bytes those took.
    pub bytes_freed: u64,
}

/// Who asks for an action, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Actor {
    /// The API token's name, `loopback` or `retention`.
    pub name: String,
    /// The client's address.
    pub address: Option<String>,
}

impl Actor {
    /// An actor named `name` at `address`.
    pub fn new(name: impl Into<String>, address: Option<String>) -> Self {
        Self {
            name: name.into(),
            address,
        }
    }
}

/// Counters of one running recording as last seen.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    received: u64,
    lost: u64,
    foreign: u64,
    malformed: u64,
    bytes: u64,
}

impl Seen {
    fn of(s: &Sidecar) -> Self {
        Self {
            received: s.packets_received,
            lost: s.packets_lost.max(0) as u64,
            foreign: s.packets_foreign,
            malformed: s.packets_malformed,
            bytes: s.payload_bytes,
        }
    }
}

/// Totals over all recordings since the service started.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) packets_received: AtomicU64,
    pub(crate) packets_lost: AtomicU64,
    pub(crate) packets_foreign: AtomicU64,
    pub(crate) packets_malformed: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) index_errors: AtomicU64,
    pub(crate) indexed: AtomicU64,
    pub(crate) retention_deleted: AtomicU64,
    pub(crate) devices_dropped: AtomicU64,
    pub(crate) uploads: AtomicU64,
    pub(crate) upload_failures: AtomicU64,
    pub(crate) upload_bytes: AtomicU64,
    seen: Mutex<HashMap<String, Seen>>,
    pub(crate) devices: Mutex<HashMap<String, i64>>,
}

impl Live {
    fn account(&self, sidecar: &Sidecar, finished: bool) {
        let now = Seen::of(sidecar);
        let before = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if finished {
                seen.remove(&sidecar.recording_id)
            } else {
                seen.insert(sidecar.recording_id.clone(), now)
            }
        }
        .unwrap_or_default();
        let add = |counter: &AtomicU64, now: u64, before: u64| {
            counter.fetch_add(now.saturating_sub(before), Ordering::Relaxed);
        };
        add(&self.packets_received, now.received, before.received);
        add(&self.packets_lost, now.lost, before.lost);
        add(&self.packets_foreign, now.foreign, before.foreign);
        add(&self.packets_malformed, now.malformed, before.malformed);
        add(&self.bytes_written, now.bytes, before.bytes);
    }

    fn device_seen(&self, device: &str, started_ms: i64) {
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let room = devices.len() < MAX_DEVICES;
        match devices.get_mut(device) {
            Some(last) => *last = (*last).max(started_ms),
            None if room => {
                devices.insert(device.to_owned(), started_ms);
            }
            None => {
                self.devices_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Work for the index writer thread.
enum Job {
    Upsert(Box<Entry>),
    /// Answered once everything sent before it is committed.
    Flush(SyncSender<()>),
}

pub(crate) struct Shared {
    pub(crate) settings: Settings,
    /// This node's name.
    pub(crate) node: String,
    pub(crate) index: Index,
    /// The object store, and the runtime its requests run on.
    pub(crate) store: Option<(ObjectStore, tokio::runtime::Handle)>,
    pub(crate) uploads: Uploads,
    /// Whether the start-up work that needs the index (recovering
    /// recordings cut off by a crash) is still to do.
    recovery_pending: core::sync::atomic::AtomicBool,
    pub(crate) audit: AuditLog,
    pub(crate) live: Live,
    pub(crate) counters: OnceLock<Arc<Counters>>,
    jobs: Mutex<Sender<Job>>,
    /// Holds, deletions and sweeps one at a time, so a hold set while a
    /// deletion is decided cannot be missed.
    admin: Mutex<()>,
}

/// The recordings service: open it on the server's directory, give the
/// server its [`observer`](Self::observer), and serve its API.
///
/// Cheap to clone: the clones share one index.
#[derive(Clone)]
pub struct Recordings {
    pub(crate) shared: Arc<Shared>,
}

impl core::fmt::Debug for Recordings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Recordings")
            .field("dir", &self.shared.settings.dir)
            .finish_non_exhaustive()
    }
}

pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Recordings {
    /// Opens the index (SQLite in `settings.dir/.callrec/`, creating it
    /// and filling it from the files already there when it is new, or the
    /// PostgreSQL database of [`Settings::index`], creating or migrating
    /// its tables). Recordings the index still marks running on this node
    /// were cut off by a crash: they are entered again from their files,
    /// as incomplete. With an object store, every recording still in the
    /// directory is queued for upload (see [`run_uploads`](Self::run_uploads)).
    ///
    /// A PostgreSQL index that cannot be reached is no error: the service
    /// opens, new calls are refused through the observer until the
    /// database answers, and it is tried again every second. Its blocking
    /// client runs on threads of its own, so this may be called from async
    /// code; the other methods block and belong on a blocking thread
    /// (`spawn_blocking`), as the HTTP API runs them. An object store needs
    /// a tokio runtime: `open` must then be called inside one.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be created, [`Error::Index`]
    /// when the database cannot be opened or holds a newer schema (or the
    /// URL is not one), [`Error::Store`] when the store's settings are not
    /// valid, [`Error::Audit`] when the audit log's last line is damaged.
    pub fn open(settings: Settings) -> Result<Self, Error> {
        let runtime = tokio::runtime::Handle::try_current().ok();
        if runtime.is_some() && settings.index.is_some() {
            // postgres's blocking client must not run on a runtime thread.
            return std::thread::scope(|scope| {
                scope
                    .spawn(|| Self::open_on(settings, runtime))
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            });
        }
        Self::open_on(settings, runtime)
    }

    fn open_on(settings: Settings, runtime: Option<tokio::runtime::Handle>) -> Result<Self, Error> {
        let state = settings.dir.join(STATE_DIR);
        fs::create_dir_all(&state).map_err(|e| Error::io("create", &state, e))?;
        let node = match &settings.node {
            Some(node) => check_node(node)?,
            None => node_of(&state)?,
        };
        let index_path = state.join("index.sqlite3");
        let (index, new) = match settings.index.as_deref() {
            None => {
                let new = !index_path.exists();
                (Index::Sqlite(SqliteIndex::open(&index_path)?), new)
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                (Index::Postgres(Box::new(PgIndex::open(url)?)), false)
            }
            Some(other) => {
                return Err(Error::index(
                    &crate::postgres::redact(other),
                    "not a postgres:// URL (leave the index out for SQLite in the recordings directory)",
                ));
            }
        };
        let store = match &settings.store {
            None => None,
            Some(store_settings) => {
                let store = ObjectStore::new(store_settings)?;
                let runtime = runtime.ok_or_else(|| {
                    Error::store(
                        &store_settings.url,
                        "the object store needs a tokio runtime: open the service inside one",
                    )
                })?;
                Some((store, runtime))
            }
        };
        let audit = AuditLog::open(&state.join("audit.jsonl"))?;
        let (jobs, queue) = mpsc::channel();
        let shared = Arc::new(Shared {
            settings,
            node,
            index,
            store,
            uploads: Uploads::default(),
            recovery_pending: true.into(),
            audit,
            live: Live::default(),
            counters: OnceLock::new(),
            jobs: Mutex::new(jobs),
            admin: Mutex::new(()),
        });
        let recordings = Self { shared };
        if new {
            let summary = recordings.reindex()?;
            if summary.recordings > 0 {
                tracing::info!(
                    recordings = summary.recordings,
                    "new index filled from the recordings on disk"
                );
            }
        }
        if recordings.shared.store.is_some() {
            recordings.queue_spool(true)?;
        }
        if recordings.shared.index.available() {
            recordings.recover()?;
        }
        let writer = Arc::downgrade(&recordings.shared);
        std::thread::Builder::new()
            .name("callrec-index".into())
            .spawn(move || write_jobs(&writer, &queue))
            .map_err(|e| Error::io("start the index thread for", &state, e))?;
        if let Index::Postgres(_) = recordings.shared.index {
            let prober = Arc::downgrade(&recordings.shared);
            std::thread::Builder::new()
                .name("callrec-index-probe".into())
                .spawn(move || probe_index(&prober))
                .map_err(|e| Error::io("start the index probe for", &state, e))?;
        }
        Ok(recordings)
    }

    /// The start-up work that needs the index: recordings cut off by a
    /// crash, and each device's last recording for `/metrics`.
    fn recover(&self) -> Result<(), Error> {
        let shared = &self.shared;
        if !shared.recovery_pending.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let done = self.recover_interrupted().and_then(|()| {
            for (device, ms) in shared.index.last_per_device()? {
                shared.live.device_seen(&device, ms);
            }
            Ok(())
        });
        if done.is_err() {
            shared.recovery_pending.store(true, Ordering::SeqCst);
        }
        done
    }

    /// Queues for upload every recording still in the directory: at a
    /// start (`at_start`), the ones that were waiting and the one a crash
    /// cut off (entered as incomplete, with the length its audio has);
    /// later, the ones that did not fit in memory
    /// ([`MAX_HELD`](crate::upload::MAX_HELD)), never a call still running.
    pub(crate) fn queue_spool(&self, at_start: bool) -> Result<(), Error> {
        let shared = &self.shared;
        let mut queued = 0u64;
        scan::scan(
            &shared.settings.dir,
            |mut entries| {
                for entry in &mut entries {
                    entry.summary.node.clone_from(&shared.node);
                }
                if at_start && shared.index.available() {
                    if let Err(e) = shared.index.write(&entries, Write::Upsert) {
                        // The uploader enters them when it is done.
                        tracing::warn!("{e}");
                    }
                }
                for entry in entries {
                    if !at_start && !entry.summary.complete {
                        // Running now, or known to the index already.
                        let running = shared
                            .index
                            .get(&entry.summary.recording_id)
                            .map_or(true, |r| r.is_none_or(|r| r.running));
                        if running {
                            continue;
                        }
                    }
                    queued += 1;
                    shared.uploads.push(entry);
                }
                Ok(())
            },
            |problem| tracing::warn!("upload queue: {problem}"),
        )?;
        if queued > 0 {
            tracing::info!(recordings = queued, "recordings on disk queued for upload");
        }
        Ok(())
    }

    /// This node's name in the pool.
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// Whether the index answers (a PostgreSQL index may not, for a while);
    /// new calls are refused while it does not.
    pub fn index_available(&self) -> bool {
        self.shared.index.available()
    }

    /// Recordings waiting for upload to the object store.
    pub fn uploads_queued(&self) -> u64 {
        self.shared.uploads.len()
    }

    /// The index: its database file, or its `postgres://` URL without
    /// the password.
    pub fn index_location(&self) -> &str {
        self.shared.index.describe()
    }

    /// The audit log's path.
    pub fn audit_path(&self) -> &Path {
        self.shared.audit.path()
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// The observer to give the server
    /// ([`Server::with_observer`](callrec_server::Server::with_observer)):
    /// it enters each recording when it starts and completes it when it
    /// ends, from a queue of its own (the recording tasks never wait for
    /// the database).
    pub fn observer(&self) -> Arc<dyn Observer> {
        Arc::new(IndexObserver {
            shared: self.shared.clone(),
        })
    }

    /// The server's counters, for `/metrics`.
    pub fn set_server_counters(&self, counters: Arc<Counters>) {
        let _ = self.shared.counters.set(counters);
    }

    /// Waits until every recording the observer has seen is in the index.
    pub fn flush(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        let sent = self
            .shared
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Job::Flush(done));
        if sent.is_ok() {
            let _ = wait.recv();
        }
    }

    /// One page of a search.
    ///
    /// # Errors
    /// [`Error::Index`].
    pub fn search(&self, query: &Query) -> Result<Page, Error> {
        self.shared.index.search(query)
    }

    /// The recording with this id.
    ///
    /// # Errors
    /// [`Error::Index`].
    pub fn get(&self, recording_id: &str) -> Result<Option<RecordingSummary>, Error> {
        self.shared.index.get(recording_id)
    }

    /// The sidecar of a recording, read from its file; `None` when it has
    /// none (a crash before its first write) or it cannot be read.
    ///
    /// Blocks: the sidecar of an uploaded recording is read from the
    /// object store.
    pub fn sidecar(&self, recording: &RecordingSummary) -> Option<Sidecar> {
        let relative = recording.sidecar_path.as_ref()?;
        let path = self.file(relative).ok()?;
        let bytes = match (&self.shared.store, recording.uploaded) {
            (Some((store, runtime)), true) => {
                let key = store.key(relative);
                let len = runtime.block_on(store.len(&key)).ok()?;
                if len > MAX_SIDECAR_LEN {
                    return None;
                }
                runtime.block_on(store.read(&key, 0..len)).ok()?.to_vec()
            }
            _ => fs::read(path).ok()?,
        };
        serde_json::from_slice(&bytes).ok()
    }

    /// Where a file of the index lives on disk.
    ///
    /// # Errors
    /// [`Error::Io`] (`InvalidData`) when `relative` is not a plain
    /// relative path (absolute, or with `..`): the index only holds paths
    /// the server wrote, so such an entry was tampered with, and the
    /// service never reads or deletes outside its directory.
    pub(crate) fn file(&self, relative: &str) -> Result<PathBuf, Error> {
        let path = Path::new(relative);
        let plain = path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain || relative.is_empty() {
            return Err(Error::io(
                "use",
                path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a path inside the recordings directory",
                ),
            ));
        }
        Ok(self.shared.settings.dir.join(path))
    }

    /// Puts a recording under legal hold (`true`) or releases it, logged.
    ///
    /// # Errors
    /// [`Error::UnknownRecording`], [`Error::Audit`]/[`Error::Io`] when the
    /// audit log cannot be written (nothing changes then),
    /// [`Error::Index`].
    pub fn set_hold(&self, recording_id: &str, hold: bool, actor: &Actor) -> Result<(), Error> {
        let _admin = self.shared.admin.lock().unwrap_or_else(|e| e.into_inner());
        let recording = self
            .get(recording_id)?
            .ok_or_else(|| Error::UnknownRecording(recording_id.to_owned()))?;
        self.shared.audit.append(
            if hold { "hold" } else { "release" },
            &recording.recording_id,
            &actor.name,
            actor.address.clone(),
            None,
            format_time_ms(unix_ms()),
        )?;
        self.shared.index.set_hold(recording_id, hold)?;
        Ok(())
    }

    /// Deletes a recording's files and its entry, logged.
    ///
    /// # Errors
    /// [`Error::UnknownRecording`]; [`Error::Busy`] when it is running or
    /// on hold; [`Error::Audit`]/[`Error::Io`] when the audit log cannot
    /// be written (nothing is deleted then) or a file cannot be removed
    /// (the entry stays, so that it can be tried again); [`Error::Index`].
    pub fn delete(&self, recording_id: &str, actor: &Actor) -> Result<u64, Error> {
        let _admin = self.shared.admin.lock().unwrap_or_else(|e| e.into_inner());
        self.delete_locked(recording_id, "delete", actor, None)?
            .ok_or_else(|| Error::UnknownRecording(recording_id.to_owned()))
    }

    /// Deletes a recording whose row the index locks meanwhile, so that no
    /// other node holds or deletes it at the same time; `None` when it is
    /// gone (another node deleted it first).
    fn delete_locked(
        &self,
        recording_id: &str,
        action: &str,
        actor: &Actor,
        detail: Option<String>,
    ) -> Result<Option<u64>, Error> {
        let mut deleted = None;
        let bytes = self.shared.index.delete_with(recording_id, |recording| {
            let busy = |reason| Error::Busy {
                recording_id: recording.recording_id.clone(),
                reason,
            };
            if recording.running {
                return Err(busy("still running"));
            }
            if recording.hold {
                return Err(busy("on legal hold"));
            }
            let store = self.shared.store.as_ref();
            if store.is_some() && !recording.uploaded {
                return Err(busy("not in the object store yet (its upload is queued)"));
            }
            if store.is_none() && !recording.uploaded && !self.is_local(recording) {
                return Err(busy("on the disk of another node"));
            }
            // Every path checked before anything is logged or removed.
            let paths = recording
                .paths()
                .map(|relative| self.file(relative).map(|path| (relative, path)))
                .collect::<Result<Vec<_>, _>>()?;
            self.shared.audit.append(
                action,
                &recording.recording_id,
                &actor.name,
                actor.address.clone(),
                detail,
                format_time_ms(unix_ms()),
            )?;
            for (relative, path) in paths {
                match (store, recording.uploaded) {
                    (Some((store, runtime)), true) => {
                        runtime.block_on(store.delete(&store.key(relative)))?;
                    }
                    (None, true) => {
                        return Err(busy("in an object store this node is not given"));
                    }
                    _ => match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io("remove", &path, e)),
                    },
                }
            }
            deleted = Some(recording.clone());
            Ok(recording.bytes)
        })?;
        if let Some(recording) = deleted {
            self.remove_empty_date_dir(&recording);
        }
        Ok(bytes)
    }

    /// Whether the recording's files are on this node's disk (recorded
    /// here, or by a single server before pools had nodes).
    pub(crate) fn is_local(&self, recording: &RecordingSummary) -> bool {
        recording.node.is_empty() || recording.node == self.shared.node
    }

    /// Removes the recording's date directory once it is empty, unless it
    /// is today's (the server may be about to create a file in it).
    pub(crate) fn remove_empty_date_dir(&self, recording: &RecordingSummary) {
        let today = &format_time_ms(unix_ms())[..10];
        if let Some(parent) = recording.paths().next().and_then(|p| Path::new(p).parent()) {
            let is_old_date = parent
                .file_name()
                .and_then(|d| d.to_str())
                .is_some_and(|d| d < today);
            if is_old_date {
                if let Ok(dir) = self.file(&parent.to_string_lossy()) {
                    let _ = fs::remove_dir(dir);
                }
            }
        }
    }

    /// Applies the retention rules once: recordings older than
    /// [`Settings::retain_days`], then the oldest while the total is over
    /// [`Settings::max_disk_usage`]; never one running or on hold. Each
    /// deletion is in the audit log.
    ///
    /// # Errors
    /// The first error that stopped it (the recordings before it are gone).
    pub fn sweep(&self) -> Result<SweepSummary, Error> {
        let _admin = self.shared.admin.lock().unwrap_or_else(|e| e.into_inner());
        // One node of a pool sweeps at a time; the others skip the round.
        let summary = self
            .shared
            .index
            .exclusively(|| self.sweep_locked())?
            .unwrap_or_default();
        self.shared
            .live
            .retention_deleted
            .fetch_add(summary.deleted, Ordering::Relaxed);
        Ok(summary)
    }

    fn sweep_locked(&self) -> Result<SweepSummary, Error> {
        let shared = &self.shared;
        let settings = &shared.settings;
        let actor = Actor::new("retention", None);
        let mut summary = SweepSummary::default();
        let deletable = |before: Option<i64>, limit: usize| {
            shared
                .index
                .deletable(before, limit, shared.store.is_some(), &shared.node)
        };
        let mut delete = |recording: &RecordingSummary, detail: &str| {
            let freed = self.delete_locked(
                &recording.recording_id,
                "retention_delete",
                &actor,
                Some(detail.to_owned()),
            )?;
            summary.deleted += u64::from(freed.is_some());
            summary.bytes_freed += freed.unwrap_or(0);
            Ok::<_, Error>(freed.unwrap_or(0))
        };
        if let Some(days) = settings.retain_days {
            let cutoff = unix_ms() - i64::from(days) * 86_400_000;
            let detail = format!("older than {days} days");
            loop {
                let batch = deletable(Some(cutoff), 500)?;
                if batch.is_empty() {
                    break;
                }
                for recording in &batch {
                    delete(recording, &detail)?;
                }
            }
        }
        if let Some(limit) = settings.max_disk_usage {
            let (mut total, _) = shared.index.totals()?;
            let detail = format!("recordings over {limit} bytes");
            'over: while total > limit {
                let batch = deletable(None, 100)?;
                if batch.is_empty() {
                    tracing::warn!(
                        total,
                        limit,
                        "recordings take more than max_disk_usage, but all that is left is running, on hold or not uploaded yet"
                    );
                    break;
                }
                for recording in &batch {
                    total = total.saturating_sub(delete(recording, &detail)?);
                    if total <= limit {
                        break 'over;
                    }
                }
            }
        }
        Ok(summary)
    }

    /// Runs [`sweep`](Self::sweep) every [`Settings::sweep_interval`] until
    /// `shutdown` resolves; does nothing without a retention rule.
    pub async fn run_retention(self, shutdown: impl Future<Output = ()>) {
        let settings = &self.shared.settings;
        if settings.retain_days.is_none() && settings.max_disk_usage.is_none() {
            return shutdown.await;
        }
        let mut tick = tokio::time::interval(settings.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.sweep()).await {
                Ok(Ok(s)) if s.deleted > 0 => {
                    tracing::info!(deleted = s.deleted, bytes = s.bytes_freed, "retention");
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!("retention stopped: {e}"),
                Err(e) => tracing::error!("retention task failed: {e}"),
            }
        }
    }

    /// Checks the audit log's chain.
    ///
    /// # Errors
    /// As [`audit::verify`].
    pub fn verify_audit(&self) -> Result<AuditReport, Error> {
        audit::verify(self.audit_path())
    }

    /// Rebuilds the index from the files in the directory: every recording
    /// with a sidecar as the sidecar says, those that never finished or
    /// have no sidecar as incomplete with their length read from the audio.
    /// Holds survive (from the index and the audit log). Run it while no
    /// server records into the directory.
    ///
    /// # Errors
    /// [`Error::Io`] when a directory cannot be listed, [`Error::Index`].
    pub fn reindex(&self) -> Result<ReindexSummary, Error> {
        let _admin = self.shared.admin.lock().unwrap_or_else(|e| e.into_inner());
        let index = &self.shared.index;
        let mut held: HashMap<String, bool> =
            index.held()?.into_iter().map(|id| (id, true)).collect();
        held.extend(audit::holds(self.audit_path()));
        index.forget_local(&self.shared.node)?;
        let mut summary = ReindexSummary::default();
        let mut problems = Vec::new();
        scan::scan(
            &self.shared.settings.dir,
            |mut entries| {
                for entry in &mut entries {
                    let s = &mut entry.summary;
                    s.node.clone_from(&self.shared.node);
                    s.hold = held.get(&s.recording_id).copied().unwrap_or(false);
                    summary.held += u64::from(s.hold);
                    summary.incomplete += u64::from(!s.complete);
                }
                summary.recordings += entries.len() as u64;
                for chunk in entries.chunks(BATCH) {
                    index.write(chunk, Write::Upsert)?;
                }
                Ok(())
            },
            |problem| problems.push(problem),
        )?;
        for problem in &problems {
            tracing::warn!("reindex: {problem}");
        }
        summary.problems = problems;
        Ok(summary)
    }

    /// Enters again, from their files, the recordings a crashed server left
    /// marked running.
    fn recover_interrupted(&self) -> Result<(), Error> {
        let index = &self.shared.index;
        for recording in index.running(&self.shared.node)? {
            match scan::entry_at(&self.shared.settings.dir, &recording) {
                Ok(mut entry) => {
                    entry.summary.node.clone_from(&self.shared.node);
                    tracing::warn!(
                        recording_id = %recording.recording_id,
                        "recording cut off by a crash: entered as incomplete ({} ms)",
                        entry.summary.duration_ms
                    );
                    index.write(&[entry], Write::Upsert)?;
                }
                Err(e) => {
                    tracing::warn!(
                        recording_id = %recording.recording_id,
                        "recording cut off by a crash has no readable files ({e}); its entry is removed"
                    );
                    index.remove(&recording.recording_id)?;
                    continue;
                }
            }
        }
        Ok(())
    }
}

/// Feeds the index writer thread, and the upload queue.
struct IndexObserver {
    shared: Arc<Shared>,
}

impl IndexObserver {
    fn send(&self, sidecar: &Sidecar, running: bool) {
        let Some(first) = sidecar.files.first() else {
            return; // Nothing stored (the benchmark's discard mode).
        };
        let first = first.path.to_string_lossy();
        let stem = first.rsplit_once('.').map_or(&*first, |(stem, _)| stem);
        let Some(mut entry) = Entry::from_sidecar(sidecar, Some(format!("{stem}.json")), running)
        else {
            self.shared
                .live
                .index_errors
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        entry.summary.node.clone_from(&self.shared.node);
        self.shared
            .live
            .device_seen(&sidecar.device, entry.summary.started_ms);
        if !running && self.shared.store.is_some() {
            self.shared.uploads.push(entry.clone());
        }
        let jobs = self.shared.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.send(Job::Upsert(Box::new(entry))).is_err() {
            self.shared
                .live
                .index_errors
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Observer for IndexObserver {
    fn admit(&self) -> Result<(), String> {
        if self.shared.index.available() {
            Ok(())
        } else {
            Err(format!(
                "recordings index {} unavailable",
                self.shared.index.describe()
            ))
        }
    }

    fn recording_started(&self, sidecar: &Sidecar) {
        self.shared.live.account(sidecar, false);
        self.send(sidecar, true);
    }

    fn recording_progress(&self, sidecar: &Sidecar) {
        self.shared.live.account(sidecar, false);
    }

    fn recording_finished(&self, sidecar: &Sidecar) {
        self.shared.live.account(sidecar, true);
        self.send(sidecar, false);
    }
}

/// Entries kept for another try while the index cannot be written; beyond
/// this the oldest are dropped (counted in `index_errors`; their files are
/// kept, and `--reindex` or the upload enters them).
const MAX_PENDING: usize = 100_000;

/// The index writer: takes what is queued, writes it in one transaction,
/// repeats; what could not be written is tried again a second later. Ends
/// when the service is dropped.
fn write_jobs(shared: &std::sync::Weak<Shared>, queue: &Receiver<Job>) {
    let mut pending: Vec<Entry> = Vec::new();
    loop {
        // Wake up now and then to notice that the service is gone (the
        // service itself holds the queue's sender), and to retry.
        let first = match queue.recv_timeout(Duration::from_secs(1)) {
            Ok(job) => Some(job),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if shared.strong_count() == 0 {
                    return;
                }
                if pending.is_empty() {
                    continue;
                }
                None
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // Gather for a moment: calls start and end in bursts, and one
        // transaction of many entries costs far less than many of one.
        let until = Instant::now() + GATHER;
        let mut entries = core::mem::take(&mut pending);
        let mut flushes = Vec::new();
        let mut next = first;
        while let Some(job) = next.take() {
            match job {
                Job::Upsert(entry) => entries.push(*entry),
                Job::Flush(done) => flushes.push(done),
            }
            if entries.len() >= BATCH {
                break;
            }
            next = match queue.try_recv() {
                Ok(job) => Some(job),
                // A flush is waited for: write now.
                Err(_) if !flushes.is_empty() => None,
                Err(_) => {
                    let left = until.saturating_duration_since(Instant::now());
                    queue.recv_timeout(left).ok()
                }
            };
        }
        if !entries.is_empty() {
            match shared.index.write(&entries, Write::Enter) {
                Ok(()) => {
                    shared
                        .live
                        .indexed
                        .fetch_add(entries.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(
                        "{e}; {} recordings not entered yet (tried again in a second)",
                        entries.len()
                    );
                    if entries.len() > MAX_PENDING {
                        let dropped = entries.len() - MAX_PENDING;
                        entries.drain(..dropped);
                        shared
                            .live
                            .index_errors
                            .fetch_add(dropped as u64, Ordering::Relaxed);
                    }
                    pending = entries;
                }
            }
        }
        if let Err(e) = shared.recover_if_pending() {
            tracing::warn!("{e}");
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Checks a PostgreSQL index every second: whether it answers decides
/// whether new calls are taken; the first time it does after a start
/// without it, the start-up recovery runs.
fn probe_index(shared: &std::sync::Weak<Shared>) {
    let mut was = None;
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Index::Postgres(index) = &shared.index {
            let now = match index.probe() {
                Ok(()) => true,
                Err(e) => {
                    if was != Some(false) {
                        tracing::error!("{e}; new calls are refused until it answers");
                    }
                    false
                }
            };
            if now && was == Some(false) {
                tracing::info!("recordings index {} answers again", index.describe());
            }
            was = Some(now);
            if now {
                if let Err(e) = shared.recover_if_pending() {
                    tracing::warn!("{e}");
                }
            }
        }
        drop(shared);
        std::thread::sleep(Duration::from_secs(1));
    }
}

impl Shared {
    /// Runs the start-up recovery if it has not run yet.
    fn recover_if_pending(self: &Arc<Self>) -> Result<(), Error> {
        if self.recovery_pending.load(Ordering::SeqCst) && self.index.available() {
            Recordings {
                shared: self.clone(),
            }
            .recover()?;
        }
        Ok(())
    }
}

/// Longest sidecar read back from the object store.
const MAX_SIDECAR_LEN: u64 = 16 << 20;

/// Longest node name.
pub const MAX_NODE_LEN: usize = 64;

/// `node` when it is a valid node name.
fn check_node(node: &str) -> Result<String, Error> {
    let valid = !node.is_empty()
        && node.len() <= MAX_NODE_LEN
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(node.to_owned())
    } else {
        Err(Error::io(
            "use node name",
            Path::new(node),
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a node name is 1 to {MAX_NODE_LEN} of A-Z, a-z, 0-9, '-', '_', '.'"),
            ),
        ))
    }
}

/// The node name kept in `state/node`, made up (`node-` and 12 random hex
/// digits) on the first start.
fn node_of(state: &Path) -> Result<String, Error> {
    let path = state.join("node");
    match fs::read_to_string(&path) {
        Ok(text) => check_node(text.trim()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 6];
            getrandom::fill(&mut bytes).map_err(|e| {
                Error::io(
                    "make a name for",
                    &path,
                    std::io::Error::other(e.to_string()),
                )
            })?;
            let node = format!("node-{}", crate::store::hex(&bytes));
            fs::write(&path, format!("{node}\n")).map_err(|e| Error::io("write", &path, e))?;
            Ok(node)
        }
        Err(e) => Err(Error::io("read", &path, e)),
    }
}
