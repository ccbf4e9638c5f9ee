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

use core::sync::atomic::Ordering;
use core::time::Duration;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::index::{Entry, Write};
use crate::locate::Location;
use crate::{Error, Recordings};

/// Uploads at once.
const CONCURRENT: usize = 8;

/// Longest wait before a failed upload is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Recordings held in memory for upload at most; more wait on disk only,
/// and are found by a walk of the directory once the queue is empty (a
/// store down for days must not fill the node's memory).
pub(crate) const MAX_HELD: usize = 100_000;

/// Recordings waiting for upload.
#[derive(Default)]
pub(crate) struct Uploads {
    state: Mutex<Queue>,
    wake: Notify,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(Entry, u32)>,
    /// Ids queued or being uploaded (a recording is never queued twice).
    held: HashSet<String>,
    /// Recordings left on disk only, beyond [`MAX_HELD`].
    on_disk_only: u64,
}

impl Uploads {
    fn state(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a finished recording (once; beyond [`MAX_HELD`] it waits on
    /// disk for the next walk).
    pub(crate) fn push(&self, entry: Entry) {
        let mut state = self.state();
        if state.held.contains(&entry.summary.recording_id) {
            return;
        }
        if state.held.len() >= MAX_HELD {
            state.on_disk_only += 1;
            return;
        }
        state.held.insert(entry.summary.recording_id.clone());
        state.waiting.push_back((entry, 0));
        drop(state);
        self.wake.notify_one();
    }

    fn requeue(&self, entry: Entry, attempts: u32) {
        self.state().waiting.push_back((entry, attempts));
        self.wake.notify_one();
    }

    fn pop(&self) -> Option<(Entry, u32)> {
        self.state().waiting.pop_front()
    }

    fn done(&self, recording_id: &str) {
        self.state().held.remove(recording_id);
    }

    /// Whether recordings wait on disk only; clears the mark (the caller
    /// walks the directory).
    fn take_on_disk_only(&self) -> bool {
        let mut state = self.state();
        let any = state.on_disk_only > 0 && state.held.is_empty();
        if any {
            state.on_disk_only = 0;
        }
        any
    }

    /// Recordings not uploaded yet.
    pub(crate) fn len(&self) -> u64 {
        let state = self.state();
        state.held.len() as u64 + state.on_disk_only
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
            if running.is_empty() && self.shared.uploads.take_on_disk_only() {
                // More than fit in memory waited: walk the directory again.
                let this = self.clone();
                running.spawn(async move {
                    let walked = tokio::task::spawn_blocking(move || this.queue_spool(false)).await;
                    if let Ok(Err(e)) = walked {
                        tracing::warn!("upload queue: {e}");
                    }
                });
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
                shared.totals.uploads.fetch_add(1, Ordering::Relaxed);
                shared
                    .totals
                    .upload_bytes
                    .fetch_add(bytes, Ordering::Relaxed);
                shared.uploads.done(&id);
                tracing::debug!(recording_id = %id, bytes, "uploaded");
            }
            Err(e) => {
                shared
                    .totals
                    .upload_failures
                    .fetch_add(1, Ordering::Relaxed);
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
        // Uploaded before (a crash between marking it and removing its
        // files): only the removal is left.
        let (this, id) = (self.clone(), entry.summary.recording_id.clone());
        let indexed = tokio::task::spawn_blocking(move || this.get(&id)).await;
        if let Ok(Ok(Some(known))) = indexed {
            if known.uploaded {
                self.remove_local(&known);
                return Ok(0);
            }
        }
        let mut bytes = 0;
        let before = entry.summary.clone();
        let s = &mut entry.summary;
        for slot in [
            &mut s.manifest_path,
            &mut s.signature_path,
            &mut s.archive_path,
            &mut s.wav_path,
            &mut s.rec_path,
            &mut s.sidecar_path,
        ] {
            let Some(relative) = slot.clone() else {
                continue;
            };
            let Location::Disk(local) = self.locate(&before, &relative)? else {
                // Uploaded by now, or recorded by another node: not ours.
                return Ok(0);
            };
            match store.upload(&local, &relative).await {
                Ok((size, _)) => bytes += size,
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
        self.remove_local(&entry.summary);
        Ok(bytes)
    }

    /// Removes the local files of an uploaded recording.
    fn remove_local(&self, recording: &crate::RecordingSummary) {
        for path in recording.paths().filter_map(|p| self.file(p).ok()) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("uploaded, but cannot remove {}: {e}", path.display()),
            }
        }
        self.remove_empty_date_dir(recording);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        let mut sidecar = callrec_server::Sidecar::default();
        sidecar.recording_id = id.into();
        sidecar.started_at = "2026-12-01T08:00:00Z".into();
        Entry::from_sidecar(&sidecar, None, false).unwrap()
    }

    #[test]
    fn the_queue_holds_each_recording_once_and_at_most_max_held() {
        let uploads = Uploads::default();
        uploads.push(entry("a"));
        uploads.push(entry("a"));
        assert_eq!(uploads.len(), 1);
        let (first, _) = uploads.pop().unwrap();
        assert!(uploads.pop().is_none());
        // In flight: still counted, still not queued again.
        uploads.push(entry("a"));
        assert_eq!(uploads.len(), 1);
        uploads.done(&first.summary.recording_id);
        assert_eq!(uploads.len(), 0);

        for n in 0..MAX_HELD + 10 {
            uploads.push(entry(&n.to_string()));
        }
        assert_eq!(uploads.len(), (MAX_HELD + 10) as u64);
        assert_eq!(uploads.state().waiting.len(), MAX_HELD);
        // The walk waits until what is held is done.
        assert!(!uploads.take_on_disk_only());
        while let Some((e, _)) = uploads.pop() {
            uploads.done(&e.summary.recording_id);
        }
        assert!(uploads.take_on_disk_only());
        assert!(!uploads.take_on_disk_only());
        assert_eq!(uploads.len(), 0);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let waits: Vec<u64> = (0..8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
