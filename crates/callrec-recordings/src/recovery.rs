//! Recovery: the index rebuilt from the files, recordings cut off by a
//! crash entered again, and the upload spool walked.

use core::sync::atomic::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use crate::audit::{self};
use crate::index::Write;
use crate::indexer::BATCH;
use crate::service::{Recordings, Shared};
use crate::{Error, scan};

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

impl Recordings {
    /// The start-up work that needs the index: recordings cut off by a
    /// crash, and each device's last recording for `/metrics`.
    pub(crate) fn recover(&self) -> Result<(), Error> {
        let shared = &self.shared;
        if !shared.recovery_pending.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let done = self.recover_interrupted().and_then(|()| {
            for (device, ms) in shared.index.last_per_device()? {
                shared.totals.device_seen(&device, ms);
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
            &shared.identities,
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
                    shared.finished(entry);
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
            &self.shared.identities,
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

impl Shared {
    /// Runs the start-up recovery if it has not run yet.
    pub(crate) fn recover_if_pending(self: &Arc<Self>) -> Result<(), Error> {
        if self.recovery_pending.load(Ordering::SeqCst) && self.index.available() {
            Recordings {
                shared: self.clone(),
            }
            .recover()?;
        }
        Ok(())
    }
}
