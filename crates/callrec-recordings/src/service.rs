//! The service: the index kept current by an observer, retention, holds,
//! deletions and the counters behind `/metrics`.

use std::fs;
use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use callrec_server::Counters;

use crate::Error;
use crate::archive::Archives;
use crate::audit::{AuditAnchor, AuditLog, AuditReport};
use crate::index::{Index, NodeAnchor, Page, Query, RecordingSummary};
use crate::indexer::{IndexerWork, probe_index, write_index};
use crate::metrics::Totals;
use crate::postgres::PgIndex;
use crate::settings::{STATE_DIR, Settings, check_node, check_public_url, node_of};
use crate::sqlite::SqliteIndex;
use crate::store::ObjectStore;
use crate::upload::Uploads;

pub(crate) struct Shared {
    pub(crate) settings: Settings,
    /// This node's name.
    pub(crate) node: String,
    pub(crate) index: Index,
    /// The object store, and the runtime its requests run on.
    pub(crate) store: Option<(ObjectStore, tokio::runtime::Handle)>,
    pub(crate) uploads: Uploads,
    /// Recordings waiting for the workers (archive, signature).
    pub(crate) archives: Archives,
    /// The key that signs each final recording's manifest.
    pub(crate) signing: Option<ed25519_dalek::SigningKey>,
    /// The recipients every final recording is sealed to.
    pub(crate) sealing: Option<Vec<age::x25519::Recipient>>,
    /// The identities that open sealed recordings for the API.
    pub(crate) identities: Vec<age::x25519::Identity>,
    /// Whether the start-up work that needs the index (recovering
    /// recordings cut off by a crash) is still to do.
    pub(crate) recovery_pending: core::sync::atomic::AtomicBool,
    pub(crate) audit: AuditLog,
    pub(crate) totals: Totals,
    pub(crate) counters: OnceLock<Arc<Counters>>,
    /// The recording server's live feeds (a [`Node`](crate::Node) sets
    /// them; without them nothing runs here to listen to).
    pub(crate) live: OnceLock<callrec_server::Live>,
    pub(crate) jobs: Mutex<Sender<IndexerWork>>,
    /// Holds, deletions and sweeps one at a time, so a hold set while a
    /// deletion is decided cannot be missed.
    pub(crate) admin: Mutex<()>,
}

/// The recordings service: open it on the server's directory, give the
/// server its [`observer`](Self::observer), and serve its API.
///
/// Cheap to clone: the clones share one index.
#[derive(Clone)]
pub struct Recordings {
    pub(crate) shared: Arc<Shared>,
}

impl Shared {
    /// Where this node's audit log anchor is kept.
    pub(crate) fn audit_anchor(&self) -> NodeAnchor<'_> {
        NodeAnchor {
            index: &self.index,
            node: &self.node,
        }
    }
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
        // Files an import request staged before a crash or a kill.
        let _ = fs::remove_dir_all(state.join("import"));
        let node = match &settings.node {
            Some(node) => check_node(node)?,
            None => node_of(&state)?,
        };
        let public_url = settings
            .public_url
            .as_deref()
            .map(check_public_url)
            .transpose()?;
        let index_path = state.join("index.sqlite3");
        let (index, new) = match settings.index.as_deref() {
            None => {
                let new = !index_path.exists();
                let database = Box::new(SqliteIndex::open(&index_path)?);
                (Index::new(database), new)
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                (Index::new(Box::new(PgIndex::open(url)?)), false)
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
        let signing = settings
            .sign_key
            .as_deref()
            .map(crate::sign::read_signing_key)
            .transpose()?;
        let sealing = settings
            .seal_to
            .as_deref()
            .map(crate::seal::read_recipients)
            .transpose()?;
        let identities = settings
            .identity
            .as_deref()
            .map(crate::seal::read_identities)
            .transpose()?
            .unwrap_or_default();
        let audit = AuditLog::open(&state.join("audit.jsonl"), settings.audit_accept)?;
        let (jobs, queue) = mpsc::channel();
        let shared = Arc::new(Shared {
            settings,
            node,
            index,
            store,
            uploads: Uploads::default(),
            archives: Archives::default(),
            signing,
            sealing,
            identities,
            recovery_pending: true.into(),
            audit,
            totals: Totals::default(),
            counters: OnceLock::new(),
            live: OnceLock::new(),
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
            // Otherwise before the log's next line.
            let shared = &recordings.shared;
            shared.audit.check_anchor(&shared.audit_anchor())?;
            if let Some(url) = &public_url {
                shared.index.set_public_url(&shared.node, url, unix_ms())?;
            }
        }
        let writer = Arc::downgrade(&recordings.shared);
        std::thread::Builder::new()
            .name("callrec-index".into())
            .spawn(move || write_index(&writer, &queue))
            .map_err(|e| Error::io("start the index thread for", &state, e))?;
        crate::archive::start_workers(&recordings.shared)
            .map_err(|e| Error::io("start the archive workers for", &state, e))?;
        if recordings.shared.index.pooled() {
            let prober = Arc::downgrade(&recordings.shared);
            std::thread::Builder::new()
                .name("callrec-index-probe".into())
                .spawn(move || probe_index(&prober))
                .map_err(|e| Error::io("start the index probe for", &state, e))?;
        }
        Ok(recordings)
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

    /// Recordings waiting for their archive, or being archived.
    pub fn archives_queued(&self) -> u64 {
        self.shared.archives.len()
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

    /// Checks the audit log's chain up to the line written last, that it
    /// ends where the index's anchor says, and that the file at its path is
    /// still the one this service writes (not replaced, cut or added to
    /// while it ran).
    ///
    /// # Errors
    /// As [`verify_audit`](crate::verify_audit); [`Error::Audit`] when the log is broken (it
    /// then takes no more lines), [`Error::Index`] when the anchor cannot
    /// be read.
    pub fn verify_audit(&self) -> Result<AuditReport, Error> {
        self.shared.audit.verify(&self.shared.audit_anchor())
    }
}

/// The audit log anchor the index of `settings` keeps for its node
/// (`None` when it keeps none, or there is no index yet), for
/// [`verify_audit`](crate::verify_audit) on a stopped node. Opens the
/// index only to read it: a missing SQLite index is not created.
///
/// # Errors
/// [`Error::Index`] when the index cannot be opened or read,
/// [`Error::Io`] when the node's name cannot be read.
pub fn read_audit_anchor(settings: &Settings) -> Result<Option<AuditAnchor>, Error> {
    let state = settings.dir.join(STATE_DIR);
    let node = match &settings.node {
        Some(node) => check_node(node)?,
        None => match fs::read_to_string(state.join("node")) {
            Ok(text) => check_node(text.trim())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &state.join("node"), e)),
        },
    };
    let index = match settings.index.as_deref() {
        None => {
            let path = state.join("index.sqlite3");
            if !path.exists() {
                return Ok(None);
            }
            Index::new(Box::new(SqliteIndex::open(&path)?))
        }
        Some(url) => Index::new(Box::new(PgIndex::open(url)?)),
    };
    index.audit_anchor(&node)
}
