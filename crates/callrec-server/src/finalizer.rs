//! The finalizer threads: a finished recording's files flushed to disk and
//! hashed, and its final sidecar written durably, off the runtime's workers.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use callrec_control::{Codec, SessionId};
use tokio::sync::oneshot;

use crate::call::Call;
use crate::connection::StopCommand;
use crate::outputs::Outputs;
use crate::paths::UtcTime;
use crate::sidecar::{Durability, Sidecar, sha256_of, write_atomically};

/// Threads that finalize recordings (fsync, hashing): a thousand calls
/// ending together queue for them instead of starting a thousand threads,
/// and the same threads serve the server's whole life, so memory stays flat.
const FINALIZER_THREADS: usize = 4;

/// One piece of blocking work.
type FinalizerJob = Box<dyn FnOnce() + Send>;

/// Blocking work of finished recordings, off the runtime's workers.
pub(crate) struct Finalizers {
    jobs: Mutex<Option<std::sync::mpsc::Sender<FinalizerJob>>>,
}

impl Finalizers {
    pub(crate) fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<FinalizerJob>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..FINALIZER_THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("callrec-finalize-{n}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            // A panicking job loses its own result only (the
                            // waiting task sees `None`); the thread goes on.
                            Ok(job) => {
                                let _ =
                                    std::panic::catch_unwind(core::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => break,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a finalizer thread: {e}");
            }
        }
        Self {
            jobs: Mutex::new(Some(tx)),
        }
    }

    /// Runs `job` on a finalizer thread and waits for its result; `None` if
    /// it panicked or no thread runs.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|jobs| {
                jobs.send(Box::new(move || {
                    let _ = tx.send(job());
                }))
            });
        match sent {
            Some(Ok(())) => rx.await.ok(),
            _ => None,
        }
    }
}

impl Drop for Finalizers {
    fn drop(&mut self) {
        // Closing the queue ends the threads once it is empty.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Finalizes a call's files (flushed to disk), hashes them as a reader will
/// see them, and writes the final sidecar durably. Blocking.
pub(crate) fn finalize(
    id: &SessionId,
    call: Call<Outputs<BufWriter<File>>>,
    files: &[PathBuf],
    sidecar_path: Option<&Path>,
    command: StopCommand,
) -> Sidecar {
    let (mut sidecar, sinks) = call.finish();
    drop(sinks);
    for (entry, path) in sidecar.files.iter_mut().zip(files) {
        match File::open(path).and_then(sha256_of) {
            Ok((bytes, sha256)) => {
                entry.bytes = Some(bytes);
                entry.sha256 = Some(sha256);
            }
            Err(e) => tracing::error!(%id, "cannot hash {}: {e}", path.display()),
        }
    }
    sidecar.stopped_at = Some(UtcTime::now().rfc3339());
    sidecar.stop_reason = Some(command.reason);
    if let Some(parties) = command.parties {
        sidecar.final_parties = parties;
    }
    sidecar.complete = true;
    if let Some(path) = sidecar_path {
        if let Err(e) = write_atomically(path, &sidecar, Durability::Durable) {
            tracing::error!(%id, "{e}");
        }
    }
    sidecar
}

/// The WAV's audio format in words.
pub(crate) fn audio_format(codec: Codec) -> &'static str {
    match codec {
        Codec::Pcma => "A-law, 8000 Hz, mono",
        Codec::Pcmu => "µ-law, 8000 Hz, mono",
        _ => "PCM 16-bit, 16000 Hz, mono (G.722 decoded)",
    }
}
