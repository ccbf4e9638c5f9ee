//! How other parts (an index, metrics, uploads) learn about recordings
//! without touching the packet path.

use crate::Sidecar;

/// Told when a recording starts, as it progresses (each sidecar rewrite,
/// every few seconds) and when it is finished (files final, hashed, sidecar
/// written). Calls come from the recording's own task, never per packet;
/// an observer must not block: hand slow work (a database, an upload) to a
/// task or a bounded channel of its own.
pub trait Observer: Send + Sync + 'static {
    /// The files and the first sidecar exist; the phone is told `success`.
    fn recording_started(&self, sidecar: &Sidecar) {
        let _ = sidecar;
    }

    /// The call goes on; counters as of now.
    fn recording_progress(&self, sidecar: &Sidecar) {
        let _ = sidecar;
    }

    /// The recording is final: its files will not change again.
    fn recording_finished(&self, sidecar: &Sidecar) {
        let _ = sidecar;
    }
}
