//! How other parts (an index, metrics, uploads) learn about recordings
//! without touching the packet path.

use crate::Sidecar;

/// Told when a recording starts, as it progresses (each sidecar rewrite,
/// every few seconds) and when it is finished (files final, hashed, sidecar
/// written). Calls come from the recording's own task, never per packet;
/// an observer must not block: hand slow work (a database, an upload) to a
/// task or a bounded channel of its own.
pub trait Observer: Send + Sync + 'static {
    /// Asked before a recording starts (before its files are created): an
    /// error refuses the call, and the phone is told `failed` with it as
    /// the reason. An index that cannot enter the call says so here, so
    /// that no phone is told `success` for a recording nobody could find.
    /// Called on the connection's task: answer from memory, never block.
    ///
    /// # Errors
    /// Why the call cannot be recorded now.
    fn admit(&self) -> Result<(), String> {
        Ok(())
    }

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
