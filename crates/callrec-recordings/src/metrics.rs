//! The service's counters behind `/metrics`: totals over every recording
//! since the start, and each device's last recording.

use core::sync::atomic::{AtomicU64, Ordering};
use std::collections::HashMap;
use std::sync::Mutex;

use callrec_server::Sidecar;

use crate::Recordings;
use core::fmt::Write as _;

/// Most devices whose last recording time `/metrics` reports (each is one
/// series; the allow-list decides who records, this bounds the rest).
pub const MAX_DEVICES: usize = 100_000;

/// Counters of one running recording as last seen.
#[derive(Debug, Clone, Copy, Default)]
struct LastCounts {
    received: u64,
    lost: u64,
    foreign: u64,
    malformed: u64,
    bytes: u64,
}

impl LastCounts {
    fn of(s: &Sidecar) -> Self {
        Self {
            received: s.packets_received,
            lost: s.packets_lost.max(0) as u64,
            foreign: s.packets_foreign,
            malformed: s.packets_malformed,
            bytes: s.payload_bytes,
        }
    }
}

/// Totals over all recordings since the service started.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) packets_received: AtomicU64,
    pub(crate) packets_lost: AtomicU64,
    pub(crate) packets_foreign: AtomicU64,
    pub(crate) packets_malformed: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) index_errors: AtomicU64,
    pub(crate) indexed: AtomicU64,
    pub(crate) retention_deleted: AtomicU64,
    pub(crate) devices_dropped: AtomicU64,
    pub(crate) uploads: AtomicU64,
    pub(crate) upload_failures: AtomicU64,
    pub(crate) upload_bytes: AtomicU64,
    pub(crate) archived: AtomicU64,
    pub(crate) archive_bytes: AtomicU64,
    pub(crate) archive_errors: AtomicU64,
    seen: Mutex<HashMap<String, LastCounts>>,
    pub(crate) devices: Mutex<HashMap<String, i64>>,
}

impl Totals {
    pub(crate) fn account(&self, sidecar: &Sidecar, finished: bool) {
        let now = LastCounts::of(sidecar);
        let before = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if finished {
                seen.remove(&sidecar.recording_id)
            } else {
                seen.insert(sidecar.recording_id.clone(), now)
            }
        }
        .unwrap_or_default();
        let add = |counter: &AtomicU64, now: u64, before: u64| {
            counter.fetch_add(now.saturating_sub(before), Ordering::Relaxed);
        };
        add(&self.packets_received, now.received, before.received);
        add(&self.packets_lost, now.lost, before.lost);
        add(&self.packets_foreign, now.foreign, before.foreign);
        add(&self.packets_malformed, now.malformed, before.malformed);
        add(&self.bytes_written, now.bytes, before.bytes);
    }

    pub(crate) fn device_seen(&self, device: &str, started_ms: i64) {
        let mut devices = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        let room = devices.len() < MAX_DEVICES;
        match devices.get_mut(device) {
            Some(last) => *last = (*last).max(started_ms),
            None if room => {
                devices.insert(device.to_owned(), started_ms);
            }
            None => {
                self.devices_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Recordings {
    /// The Prometheus text exposition of the node's counters: the server's
    /// (when it was given them), the totals of every recording since the
    /// start, the index's (`stored`: bytes and count, when it answered),
    /// uploads, retention, the audit log, and each device's last recording.
    pub(crate) fn metrics_text(&self, stored: Option<(u64, u64)>) -> String {
        let shared = &self.shared;
        let live = &shared.totals;
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let one = |v: u64| [(String::new(), v)];
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        if let Some(c) = shared.counters.get().map(|c| c.snapshot()) {
            let started = c.recordings_started;
            let finished = c.recordings_finished;
            metric(
                "callrec_recordings_active",
                "gauge",
                "Recordings running now.",
                &one(started.saturating_sub(finished)),
            );
            metric(
                "callrec_recordings_started_total",
                "counter",
                "Recordings started.",
                &one(started),
            );
            metric(
                "callrec_recordings_finished_total",
                "counter",
                "Recordings finished (files final).",
                &one(finished),
            );
            let refusals: Vec<(String, u64)> = c
                .refusals()
                .iter()
                .map(|(reason, n)| (format!("{{reason=\"{reason}\"}}"), *n))
                .collect();
            metric(
                "callrec_start_refused_total",
                "counter",
                "Start requests refused, by reason.",
                &refusals,
            );
            metric(
                "callrec_connections_total",
                "counter",
                "Control connections accepted.",
                &one(c.connections),
            );
            metric(
                "callrec_connections_refused_total",
                "counter",
                "Control connections refused (limits).",
                &one(c.connections_refused),
            );
            metric(
                "callrec_rtp_datagrams_total",
                "counter",
                "UDP datagrams read on RTP ports.",
                &one(c.packets),
            );
            metric(
                "callrec_sip_messages_total",
                "counter",
                "SIP messages read (SIPREC).",
                &one(c.sip_messages),
            );
            metric(
                "callrec_sip_refused_total",
                "counter",
                "SIP messages refused or dropped (SIPREC): not SIP, not allowed, not a recording session, over a limit.",
                &one(c.sip_refused),
            );
        }
        metric(
            "callrec_rtp_packets_received_total",
            "counter",
            "RTP packets of the calls' streams.",
            &one(get(&live.packets_received)),
        );
        metric(
            "callrec_rtp_packets_lost_total",
            "counter",
            "RTP packets never received (filled with silence).",
            &one(get(&live.packets_lost)),
        );
        metric(
            "callrec_rtp_packets_foreign_total",
            "counter",
            "Datagrams from senders a call is not locked onto.",
            &one(get(&live.packets_foreign)),
        );
        metric(
            "callrec_rtp_packets_malformed_total",
            "counter",
            "Datagrams that are not RTP.",
            &one(get(&live.packets_malformed)),
        );
        metric(
            "callrec_audio_bytes_written_total",
            "counter",
            "Audio payload bytes written.",
            &one(get(&live.bytes_written)),
        );
        if let Ok(free) = fs4::available_space(&shared.settings.dir) {
            metric(
                "callrec_disk_free_bytes",
                "gauge",
                "Free space where recordings go.",
                &one(free),
            );
        }
        if let Some((bytes, count)) = stored {
            metric(
                "callrec_recordings_stored",
                "gauge",
                "Recordings in the index.",
                &one(count),
            );
            metric(
                "callrec_recordings_stored_bytes",
                "gauge",
                "Bytes the indexed recordings take.",
                &one(bytes),
            );
        }
        metric(
            "callrec_index_entries_written_total",
            "counter",
            "Index writes of recordings (start and end).",
            &one(get(&live.indexed)),
        );
        metric(
            "callrec_index_errors_total",
            "counter",
            "Recordings the index could not enter (--reindex does).",
            &one(get(&live.index_errors)),
        );
        metric(
            "callrec_index_available",
            "gauge",
            "1 while the index answers (new calls are refused while it does not).",
            &one(u64::from(shared.index.available())),
        );
        if shared.store.is_some() {
            metric(
                "callrec_uploads_total",
                "counter",
                "Recordings uploaded to the object store and verified.",
                &one(get(&live.uploads)),
            );
            metric(
                "callrec_upload_bytes_total",
                "counter",
                "Bytes uploaded to the object store and verified.",
                &one(get(&live.upload_bytes)),
            );
            metric(
                "callrec_upload_failures_total",
                "counter",
                "Upload attempts that failed (each is tried again).",
                &one(get(&live.upload_failures)),
            );
            metric(
                "callrec_uploads_queued",
                "gauge",
                "Recordings on this node's disk waiting for upload.",
                &one(shared.uploads.len()),
            );
        }
        if shared.settings.archive.enabled() {
            metric(
                "callrec_archived_total",
                "counter",
                "Recordings converted to their archive format, checked and entered.",
                &one(get(&live.archived)),
            );
            metric(
                "callrec_archive_bytes_total",
                "counter",
                "Bytes of the archives made.",
                &one(get(&live.archive_bytes)),
            );
            metric(
                "callrec_archive_errors_total",
                "counter",
                "Recordings that could not be archived (their WAV is kept).",
                &one(get(&live.archive_errors)),
            );
            metric(
                "callrec_archives_queued",
                "gauge",
                "Recordings waiting for their archive, or being archived.",
                &one(shared.archives.len()),
            );
        }
        metric(
            "callrec_retention_deleted_total",
            "counter",
            "Recordings deleted by retention.",
            &one(get(&live.retention_deleted)),
        );
        metric(
            "callrec_audit_entries",
            "gauge",
            "Lines in the audit log.",
            &one(shared.audit.entries()),
        );
        metric(
            "callrec_audit_broken",
            "gauge",
            "1 when the audit log was replaced or cut while the server ran (audited requests are refused).",
            &one(u64::from(shared.audit.broken().is_some())),
        );
        let devices: Vec<(String, u64)> = {
            let map = live.devices.lock().unwrap_or_else(|e| e.into_inner());
            let mut list: Vec<_> = map
                .iter()
                .map(|(device, ms)| {
                    (
                        format!("{{device=\"{}\"}}", label(device)),
                        (*ms / 1000).max(0) as u64,
                    )
                })
                .collect();
            list.sort();
            list
        };
        metric(
            "callrec_device_last_recording_timestamp_seconds",
            "gauge",
            "Unix time of each phone's latest recording start (alert when it grows old).",
            &devices,
        );
        if let Some(listening) = shared.live.get() {
            let c = listening.counters();
            let gauge = |a: &core::sync::atomic::AtomicUsize| a.load(Ordering::Relaxed) as u64;
            metric(
                "callrec_live_listeners",
                "gauge",
                "Listeners of running recordings now.",
                &one(gauge(&c.listeners)),
            );
            metric(
                "callrec_live_listeners_total",
                "counter",
                "Listeners admitted.",
                &one(get(&c.listeners_started)),
            );
            metric(
                "callrec_live_listeners_dropped_total",
                "counter",
                "Listeners dropped for falling behind or not reading (the recording went on).",
                &one(get(&c.listeners_dropped)),
            );
            metric(
                "callrec_live_listeners_refused_total",
                "counter",
                "Listeners refused by a limit.",
                &one(get(&c.listeners_refused)),
            );
            metric(
                "callrec_live_frames_sent_total",
                "counter",
                "20 ms frames sent to listeners.",
                &one(get(&c.frames_sent)),
            );
            write_latency_histogram(&mut out, c);
        }
        out
    }
}

/// `callrec_live_latency_seconds`: from a packet's arrival to its frame's
/// send to a listener, as a Prometheus histogram.
fn write_latency_histogram(out: &mut String, c: &callrec_server::live::LiveCounters) {
    use callrec_server::live::LATENCY_BOUNDS_MS;
    let name = "callrec_live_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} From an RTP packet's arrival to the live frame holding it leaving for a listener.\n# TYPE {name} histogram"
    );
    let mut cumulative = 0;
    for (k, bucket) in c.latency_buckets.iter().enumerate() {
        cumulative += bucket.load(Ordering::Relaxed);
        match LATENCY_BOUNDS_MS.get(k) {
            Some(ms) => {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{le=\"{}\"}} {cumulative}",
                    *ms as f64 / 1000.0
                );
            }
            None => {
                let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
            }
        }
    }
    let sum = c.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
}
