//! The callrec recording server as a library: what `record_server` runs,
//! for operators who embed it.
//!
//! Phones open a TCP control connection (`cmd=RecordStartRequest&…`,
//! callrec-control), get a UDP port, and stream the call's RTP there
//! (callrec-rtp) until they send `RecordStopRequest` or the connection
//! drops. Each recording becomes
//! `DIR/<device>/<YYYY-MM-DD>/<HHMMSS>_<dir>_<remote_number>_<id>.wav` (and
//! or `.rec`, the phone's own container) with a JSON [`Sidecar`] beside it.
//!
//! What the server promises:
//! - the files and the first sidecar exist before the phone is told
//!   `result=success`; otherwise it gets `result=failed&reason=…`;
//! - a call lasts as long as its control connection: silence (a hold) is
//!   kept as real time up to [`Config::max_silence_secs`], never a reason to
//!   end the recording; dead phones are found by TCP keepalive;
//! - a call is locked onto its RTP source (address, port, SSRC); other
//!   senders never reach its files, and no input makes a recording longer
//!   than the call's wall-clock time;
//! - when the server ends a recording itself (a write error, shutdown) the
//!   phone gets an unsolicited `RecordStopResponse` with `result=failed`;
//! - the sidecar is replaced atomically while the call runs, so `kill -9` or
//!   a full disk never leaves it missing; WAV headers are rewritten every
//!   second, so the audio stays playable;
//! - no per-call state outlives the call; connections, sessions and
//!   descriptors are bounded ([`Config`]).
//!
//! Other parts learn about recordings through an [`Observer`].
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use callrec_server::{Config, Observer, Server, Sidecar};
//!
//! struct Log(Mutex<Vec<String>>);
//! impl Observer for Log {
//!     fn recording_finished(&self, sidecar: &Sidecar) {
//!         self.0.lock().unwrap().push(sidecar.session_id.clone());
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let mut config = Config::default();
//! config.listen = "127.0.0.1:0".into();
//! config.dir = dir.path().into();
//! let log = Arc::new(Log(Mutex::new(Vec::new())));
//! let server = Server::bind(config).await?.with_observer(log.clone());
//! println!("control on {}", server.local_addr()?);
//! // Serve until the future resolves (here: at once), then finalize.
//! let summary = server.run(async {}).await;
//! assert_eq!(summary.recordings_started, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod admission;
mod aligner;
mod allocator;
mod arrival;
mod call;
mod config;
mod connection;
mod counters;
mod error;
mod finalizer;
#[doc(hidden)]
pub mod fuzzing;
pub mod live;
mod observer;
mod outputs;
mod paths;
mod ports;
mod recording;
mod server;
mod sidecar;
mod siprec;

pub use config::{Config, DEFAULT_CONTROL_PORT, OutputFormat, PortRange};
pub use counters::{Counters, Summary};
pub use error::Error;
pub use live::{Live, LiveFormat};
pub use observer::Observer;
pub use outputs::Sink;
pub use ports::PORT_QUARANTINE;
pub use server::Server;
pub use sidecar::{
    Archive, Channel, DtmfDigit, ImportedFile, Participant, Parties, RecordingFile,
    SIDECAR_SCHEMA_VERSION, Sidecar, TimelineNote, sha256_of, write_sidecar,
};

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
