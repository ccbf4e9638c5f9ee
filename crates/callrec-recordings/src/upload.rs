//! The upload queue: finished recordings move from the node's disk to the
//! object store.
//!
//! The recordings directory is the durable queue: a recording stays on
//! disk until its object is written, read back and found equal (size and
//! SHA-256), and the index says it is uploaded; only then are its files
//! removed. After a restart everything still on disk is queued again
//! (`Recordings::open`), so nothing waits on a queue that lives only in
//! memory. A failed upload is tried again after 1, 2, 4, … up to 30
//! seconds.

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::index::{Entry, Write};
use crate::{Error, Recordings};

/// Uploads at once.
const CONCURRENT: usize = 8;

/// Longest wait before a failed upload is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Recordings waiting for upload.
#[derive(Default)]
pub(crate) struct Uploads {
    queue: Mutex<VecDeque<(Entry, u32)>>,
    /// Queued plus in progress.
    waiting: AtomicU64,
    wake: Notify,
}

impl Uploads {
    /// Queues a finished recording.
    pub(crate) fn push(&self, entry: Entry) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.requeue(entry, 0);
    }

    fn requeue(&self, entry: Entry, attempts: u32) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back((entry, attempts));
        self.wake.notify_one();
    }

    fn pop(&self) -> Option<(Entry, u32)> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    /// Recordings not uploaded yet.
    pub(crate) fn len(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// How long to wait before attempt `attempts + 1`.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(5)).min(MAX_BACKOFF)
}

impl Recordings {
    /// Uploads finished recordings to the object store until `shutdown`
    /// resolves, a few at a time; does nothing without one. An upload cut
    /// short by the shutdown is done again after the restart.
    pub async fn run_uploads(self, shutdown: impl Future<Output = ()>) {
        if self.shared.store.is_none() {
            return shutdown.await;
        }
        tokio::pin!(shutdown);
        let mut running = JoinSet::new();
        loop {
            while running.len() < CONCURRENT {
                let Some((entry, attempts)) = self.shared.uploads.pop() else {
                    break;
                };
                let this = self.clone();
                running.spawn(async move { this.upload_with_retry(entry, attempts).await });
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.shared.uploads.wake.notified() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
    }

    /// Waits until no recording waits for upload, at most `timeout`;
    /// whether none does.
    pub async fn wait_uploaded(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.shared.uploads.len() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }

    async fn upload_with_retry(&self, entry: Entry, attempts: u32) {
        let shared = &self.shared;
        let id = entry.summary.recording_id.clone();
        match self.upload(entry.clone()).await {
            Ok(bytes) => {
                shared.live.uploads.fetch_add(1, Ordering::Relaxed);
                shared.live.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
                shared.uploads.waiting.fetch_sub(1, Ordering::Relaxed);
                tracing::debug!(recording_id = %id, bytes, "uploaded");
            }
            Err(e) => {
                shared.live.upload_failures.fetch_add(1, Ordering::Relaxed);
                let wait = backoff(attempts);
                tracing::warn!(
                    recording_id = %id,
                    "upload failed (try {}): {e}; kept on disk, tried again in {} s",
                    attempts + 1,
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
                shared.uploads.requeue(entry, attempts.saturating_add(1));
            }
        }
    }

    /// Uploads and verifies every file of a recording, marks it uploaded
    /// in the index, then removes its files here. The bytes uploaded.
    async fn upload(&self, mut entry: Entry) -> Result<u64, Error> {
        let shared = &self.shared;
        let Some((store, _)) = &shared.store else {
            return Ok(0);
        };
        let mut bytes = 0;
        let mut uploaded = Vec::new();
        let s = &mut entry.summary;
        for slot in [&mut s.wav_path, &mut s.rec_path, &mut s.sidecar_path] {
            let Some(relative) = slot.clone() else {
                continue;
            };
            let local = self.file(&relative)?;
            match store.upload(&local, &relative).await {
                Ok((size, _)) => {
                    bytes += size;
                    uploaded.push(local);
                }
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    tracing::warn!(
                        recording_id = %s.recording_id,
                        "{} is gone; the recording is uploaded without it",
                        local.display()
                    );
                    *slot = None;
                }
                Err(e) => return Err(e),
            }
        }
        s.uploaded = true;
        s.running = false;
        s.bytes = bytes;
        let this = self.clone();
        let written = entry.clone();
        tokio::task::spawn_blocking(move || this.shared.index.write(&[written], Write::Upsert))
            .await
            .map_err(|e| Error::index(self.shared.index.describe(), e))??;
        for path in uploaded {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("uploaded, but cannot remove {}: {e}", path.display()),
            }
        }
        self.remove_empty_date_dir(&entry.summary);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let waits: Vec<u64> = (0..8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
