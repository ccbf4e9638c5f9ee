//! The recordings service of callrec: every recording findable, playable,
//! kept as long as the rules say and no longer, and every access on record.
//!
//! - **Index**: an embedded SQLite database in `DIR/.callrec/`, kept
//!   current by an [`Observer`](callrec_server::Observer) on the recording
//!   server (entered when a call starts, completed when it ends), and
//!   rebuilt from the files with [`Recordings::reindex`] — recordings a
//!   crash left without a finished sidecar come back as incomplete, their
//!   length read from the audio.
//! - **HTTP API** ([`HttpApi`]): search newest first with cursor paging,
//!   metadata, audio with byte ranges (and converted to 16-bit PCM for
//!   browsers), delete, legal hold, Prometheus `/metrics`, `/healthz`;
//!   bearer tokens with `read` and `admin` roles ([`Tokens`]), or loopback
//!   only without them; and a web page at `/` to search and play.
//! - **Retention** ([`Recordings::sweep`]): by age and by total size,
//!   oldest first, never a recording that is running or on hold.
//! - **Audit log**: every playback, download, deletion and hold as a JSON
//!   line that carries the SHA-256 of the line before, its end anchored in
//!   the index ([`verify_audit`], [`AuditAnchor`]).
//! - **A whole node as one call** ([`Node`]): the recording server, the
//!   index, retention, uploads and the API started together, with the
//!   addresses they bound and an orderly [`Node::shutdown`].
//! - **A pool of nodes**: the index in PostgreSQL instead
//!   ([`Settings::index`]), shared by every node, and finished recordings
//!   moved to an S3 object store ([`Settings::store`],
//!   [`Recordings::run_uploads`]): uploaded, read back and compared, then
//!   removed from the node's disk. Any node finds and serves any recording.
//!
//! ```
//! use callrec_recordings::{Query, Recordings, Settings};
//!
//! let dir = tempfile::tempdir()?;
//! let recordings = Recordings::open(Settings::new(dir.path()))?;
//! // Give `recordings.observer()` to the server; then search:
//! let page = recordings.search(&Query::default())?;
//! assert!(page.recordings.is_empty());
//! assert!(page.next_cursor.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod admin;
mod api;
mod archive;
mod audio;
mod audit;
mod codec;
mod database;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod import;
mod index;
mod indexer;
mod locate;
mod metrics;
mod node;
mod postgres;
mod recovery;
mod retention;
mod scan;
mod schema;
mod seal;
mod service;
mod sessions;
mod settings;
mod sign;
mod sqlite;
mod store;
mod time;
mod tokens;
mod upload;

pub use admin::Actor;
pub use api::{HttpApi, router};
pub use archive::{
    ArchiveSettings, BITRATES, DEFAULT_NARROWBAND_BITRATE, DEFAULT_WIDEBAND_BITRATE,
};
pub use audit::{AuditAnchor, AuditEntry, AuditReport, GENESIS, verify as verify_audit};
pub use codec::ArchiveFormat;
pub use error::Error;
pub use import::{ImportRequest, Imported, MAX_PARTS, import_files};
pub use index::{
    ArchiveSummary, ChannelSummary, Cursor, DEFAULT_LIMIT, MAX_LIMIT, MAX_TERM_LEN, Page, Query,
    RecordingSummary,
};
pub use metrics::MAX_DEVICES;
pub use node::{Node, NodeSummary};
pub use recovery::ReindexSummary;
pub use retention::SweepSummary;
pub use seal::{ResealSummary, SEALED_SUFFIX, read_identities, read_recipients, reseal};
pub use service::{Recordings, read_audit_anchor};
pub use sessions::{MAX_SESSIONS, SESSION_COOKIE, SESSION_LIFETIME_MS};
pub use settings::{HttpLimits, MAX_NODE_LEN, STATE_DIR, Settings};
pub use sign::{
    MANIFEST_SUFFIX, MANIFEST_VERSION, Manifest, ManifestFile, SIGNATURE_SUFFIX, SignatureReport,
    read_public_key, read_signing_key, verify_signatures,
};
pub use store::StoreSettings;
pub use time::{format_time_ms, parse_time_ms};
pub use tokens::{MIN_TOKEN_LEN, Role, Tokens};

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
