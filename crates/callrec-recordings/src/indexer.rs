//! The indexer: the observer the server tells of every recording, and the
//! writer thread that enters them in the index in batches.

use core::sync::atomic::Ordering;
use core::time::Duration;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Instant;

use callrec_server::{Counters, Observer, Sidecar};

use crate::index::{Entry, Write};
use crate::service::{Recordings, Shared};

/// Index entries written per transaction at most.
pub(crate) const BATCH: usize = 2000;

/// How long the index writer gathers entries before a transaction (an
/// entry reaches the index at most this much later).
const GATHER: Duration = Duration::from_millis(250);

/// Work for the index writer thread.
pub(crate) enum IndexerWork {
    Upsert(Box<Entry>),
    /// Answered once everything sent before it is committed.
    Flush(SyncSender<()>),
}

impl Recordings {
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

    /// The recording server's live feeds, which the API's listeners
    /// subscribe to (set once; [`Node::start`](crate::Node::start) does).
    pub fn set_live(&self, live: callrec_server::Live) {
        let _ = self.shared.live.set(live);
    }

    /// Waits until every recording the observer has seen is in the index.
    pub fn flush(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        let sent = self
            .shared
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(IndexerWork::Flush(done));
        if sent.is_ok() {
            let _ = wait.recv();
        }
    }
}

/// Feeds the index writer thread (which hands finished recordings on to
/// the workers and the upload queue once they are entered).
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
                .totals
                .index_errors
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        entry.summary.node.clone_from(&self.shared.node);
        if !sidecar.device.is_empty() {
            // A phone's (SIPREC recordings have no device).
            self.shared
                .totals
                .device_seen(&sidecar.device, entry.summary.started_ms);
        }
        let jobs = self.shared.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.send(IndexerWork::Upsert(Box::new(entry))).is_err() {
            self.shared
                .totals
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
        self.shared.totals.account(sidecar, false);
        self.send(sidecar, true);
    }

    fn recording_progress(&self, sidecar: &Sidecar) {
        self.shared.totals.account(sidecar, false);
    }

    fn recording_finished(&self, sidecar: &Sidecar) {
        self.shared.totals.account(sidecar, true);
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
pub(crate) fn write_index(shared: &std::sync::Weak<Shared>, queue: &Receiver<IndexerWork>) {
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
                IndexerWork::Upsert(entry) => entries.push(*entry),
                IndexerWork::Flush(done) => flushes.push(done),
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
                        .totals
                        .indexed
                        .fetch_add(entries.len() as u64, Ordering::Relaxed);
                    // Only now to the workers and the upload: what they
                    // write to the index (an archive, a seal, `uploaded`)
                    // must come after this entry, never before it.
                    for entry in entries.iter().filter(|e| !e.summary.running) {
                        shared.finished(entry.clone());
                    }
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
                            .totals
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
pub(crate) fn probe_index(shared: &std::sync::Weak<Shared>) {
    let mut was = None;
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let index = &shared.index;
        if index.pooled() {
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
