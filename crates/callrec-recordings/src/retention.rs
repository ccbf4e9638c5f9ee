//! Retention: recordings deleted by age and by total size, oldest first,
//! never one running, on hold or not uploaded yet.

use core::sync::atomic::Ordering;

use crate::Error;
use crate::admin::Actor;
use crate::index::RecordingSummary;
use crate::service::{Recordings, unix_ms};

/// What one retention run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepSummary {
    /// Recordings deleted.
    pub deleted: u64,
    /// Bytes those took.
    pub bytes_freed: u64,
}

impl Recordings {
    /// Applies the retention rules once: recordings older than
    /// [`Settings::retain_days`](crate::Settings::retain_days), then the oldest while the total is over
    /// [`Settings::max_disk_usage`](crate::Settings::max_disk_usage); never one running or on hold. Each
    /// deletion is in the audit log.
    ///
    /// # Errors
    /// The first error that stopped it (the recordings before it are gone).
    pub fn sweep(&self) -> Result<SweepSummary, Error> {
        let _admin = self.shared.admin.lock().unwrap_or_else(|e| e.into_inner());
        // One node of a pool sweeps at a time; the others skip the round.
        let summary = self
            .shared
            .index
            .exclusively(|| self.sweep_locked())?
            .unwrap_or_default();
        self.shared
            .totals
            .retention_deleted
            .fetch_add(summary.deleted, Ordering::Relaxed);
        Ok(summary)
    }

    fn sweep_locked(&self) -> Result<SweepSummary, Error> {
        let shared = &self.shared;
        let settings = &shared.settings;
        let actor = Actor::new("retention", None);
        let mut summary = SweepSummary::default();
        let deletable = |before: Option<i64>, limit: usize| {
            shared
                .index
                .deletable(before, limit, shared.store.is_some(), &shared.node)
        };
        let mut delete = |recording: &RecordingSummary, detail: &str| {
            let freed = self.delete_locked(
                &recording.recording_id,
                "retention_delete",
                &actor,
                Some(detail.to_owned()),
            )?;
            summary.deleted += u64::from(freed.is_some());
            summary.bytes_freed += freed.unwrap_or(0);
            Ok::<_, Error>(freed.unwrap_or(0))
        };
        if let Some(days) = settings.retain_days {
            let cutoff = unix_ms() - i64::from(days) * 86_400_000;
            let detail = format!("older than {days} days");
            loop {
                let batch = deletable(Some(cutoff), 500)?;
                if batch.is_empty() {
                    break;
                }
                for recording in &batch {
                    delete(recording, &detail)?;
                }
            }
        }
        if let Some(limit) = settings.max_disk_usage {
            let (mut total, _) = shared.index.totals()?;
            let detail = format!("recordings over {limit} bytes");
            'over: while total > limit {
                let batch = deletable(None, 100)?;
                if batch.is_empty() {
                    tracing::warn!(
                        total,
                        limit,
                        "recordings take more than max_disk_usage, but all that is left is running, on hold or not uploaded yet"
                    );
                    break;
                }
                for recording in &batch {
                    total = total.saturating_sub(delete(recording, &detail)?);
                    if total <= limit {
                        break 'over;
                    }
                }
            }
        }
        Ok(summary)
    }

    /// Runs [`sweep`](Self::sweep) every [`Settings::sweep_interval`](crate::Settings::sweep_interval) until
    /// `shutdown` resolves; does nothing without a retention rule.
    pub async fn run_retention(self, shutdown: impl Future<Output = ()>) {
        let settings = &self.shared.settings;
        if settings.retain_days.is_none() && settings.max_disk_usage.is_none() {
            return shutdown.await;
        }
        let mut tick = tokio::time::interval(settings.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.sweep()).await {
                Ok(Ok(s)) if s.deleted > 0 => {
                    tracing::info!(deleted = s.deleted, bytes = s.bytes_freed, "retention");
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!("retention stopped: {e}"),
                Err(e) => tracing::error!("retention task failed: {e}"),
            }
        }
    }
}
