//! One recording's task: RTP from its socket into its [`Call`], timers and
//! progress sidecars, until it is told to stop or a write fails.

use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use callrec_control::SessionId;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::allocator::Prepared;
use crate::arrival::{ArrivalClock, recv_stamped};
use crate::connection::StopCommand;
use crate::counters::Counters;
use crate::finalizer::finalize;
use crate::server::Shared;
use crate::sidecar::{Durability, write_atomically};

/// Largest UDP datagram read; larger ones are truncated and refused by the
/// RTP parser's length checks.
const MAX_DATAGRAM: usize = 2048;

/// Most datagrams read from the socket once the call is told to stop.
const MAX_DRAIN: usize = 1024;

/// One recording's task: RTP into its [`Call`] until told to stop or a write
/// fails.
pub(crate) struct RecordingTask {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: SessionId,
    pub(crate) ended: mpsc::UnboundedSender<(SessionId, String)>,
}

impl RecordingTask {
    pub(crate) async fn run(self, prepared: Prepared, mut stop: oneshot::Receiver<StopCommand>) {
        let Prepared {
            started: t0,
            socket,
            port,
            mut call,
            sidecar_path,
            files,
        } = prepared;
        let shared = &self.shared;
        let config = &shared.config;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        for observer in &shared.observers {
            observer.recording_started(call.sidecar());
        }
        // Listeners hear what is written, as it is written; the entry
        // lives as long as this task and tells them when it ends.
        let recording_id = call.sidecar().recording_id.clone();
        let mut live_entry = None;
        if let Some(outputs) = call.media_mut() {
            let (tap, entry) = shared.live.open(&recording_id, outputs.live_format());
            outputs.listen(tap);
            live_entry = Some(entry);
        }
        let socket = match UdpSocket::from_std(socket) {
            Ok(socket) => socket,
            Err(e) => {
                // Only without a tokio reactor; the files stay as created.
                tracing::error!(id = %self.id, "cannot register the RTP socket: {e}");
                return self.release(port);
            }
        };
        // Two timers, armed once and moved only when needed: a timer per
        // packet costs more than the rest of the packet's handling.
        let reorder_timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(reorder_timer);
        let mut reorder_at: Option<Instant> = None;
        let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let silence_log = Duration::from_secs(config.silence_log_secs.max(1));
        let sidecar_every = Duration::from_secs(config.sidecar_interval_secs.max(1));
        let mut clock = ArrivalClock::new(t0);
        // When the call's RTP was last heard, on the arrival clock.
        let mut last_rtp = Duration::ZERO;
        let mut silence_logged = false;
        // Staggered by port, so calls that started together rewrite apart.
        let stagger = sidecar_every.mul_f64(f64::from(port % 97) / 97.0);
        let mut sidecar_at = t0 + sidecar_every + stagger;
        let command = loop {
            let wanted = call.poll_timeout().map(|d| t0 + d);
            if wanted != reorder_at {
                if let Some(at) = wanted {
                    reorder_timer.as_mut().reset(at.into());
                }
                reorder_at = wanted;
            }
            tokio::select! {
                received = socket.async_io(Interest::READABLE, || recv_stamped(&socket, &mut buf)) => {
                    let Ok((len, from, stamp)) = received else { continue };
                    let arrival = clock.arrival(stamp);
                    // Stamped before the packet is written, and put back
                    // when it was not this call's: a stranger's packets
                    // must not make the live feed's latency look shorter.
                    let before = call.media_mut().map(|o| o.arrived(Some(t0 + arrival)));
                    if call.handle_datagram(&buf[..len], from, arrival) {
                        last_rtp = arrival;
                        if silence_logged {
                            silence_logged = false;
                            tracing::info!(id = %self.id, "RTP resumed");
                        }
                    } else if let (Some(before), Some(outputs)) = (before, call.media_mut()) {
                        outputs.arrived(before);
                    }
                }
                () = &mut reorder_timer, if reorder_at.is_some() => {
                    reorder_at = None;
                    call.handle_timeout(clock.now());
                }
                _ = housekeeping.tick() => {
                    let now = Instant::now();
                    let silent = clock.now().saturating_sub(last_rtp);
                    if !silence_logged && silent >= silence_log {
                        silence_logged = true;
                        tracing::info!(
                            id = %self.id,
                            "no RTP for {:.0} s; the recording goes on (hold or silence)",
                            silent.as_secs_f64()
                        );
                    }
                    if now >= sidecar_at {
                        sidecar_at = now + sidecar_every;
                        let sidecar = call.sidecar();
                        if let Some(path) = &sidecar_path {
                            if let Err(e) = write_atomically(path, sidecar, Durability::Atomic) {
                                tracing::warn!(id = %self.id, "{e}");
                            }
                        }
                        for observer in &shared.observers {
                            observer.recording_progress(sidecar);
                        }
                    }
                }
                command = &mut stop => {
                    break command.unwrap_or_else(|_| StopCommand {
                        reason: "server shutting down".to_owned(),
                        parties: None,
                    });
                }
            }
            if let Some(e) = call.write_error() {
                let reason = format!("write error: {e}");
                tracing::error!(id = %self.id, "{reason}");
                // The connection tells the phone, then stops this task.
                let _ = self.ended.send((self.id.clone(), reason.clone()));
                break match stop.await {
                    Ok(command) => command,
                    Err(_) => StopCommand {
                        reason,
                        parties: None,
                    },
                };
            }
        };
        // What arrived before the stop is still queued on the socket: record
        // it too. (Through the std socket: tokio's `try_recv_from` answers
        // from its cached readiness and may report nothing while datagrams
        // wait.)
        // At most MAX_DRAIN of them: a flood cannot keep this task reading.
        if let Ok(std_socket) = socket.into_std() {
            for _ in 0..MAX_DRAIN {
                let Ok((len, from, stamp)) = recv_stamped(&std_socket, &mut buf) else {
                    break;
                };
                call.handle_datagram(&buf[..len], from, clock.arrival(stamp));
            }
        }
        Counters::add(&shared.counters.packets, call.datagrams());
        Counters::add(&shared.counters.packets_foreign, call.foreign());
        // Finalizing flushes files to disk and hashes them: blocking work,
        // kept off the runtime's workers so other calls' packets go on.
        let id = self.id.clone();
        let reason = command.reason.clone();
        let finished = shared
            .finalizers
            .run(move || finalize(&id, call, &files, sidecar_path.as_deref(), command))
            .await;
        let Some(sidecar) = finished else {
            tracing::error!(id = %self.id, "finalizing the recording panicked");
            return self.release(port);
        };
        for observer in &shared.observers {
            observer.recording_finished(&sidecar);
        }
        if let Some(entry) = live_entry {
            entry.end(&reason);
        }
        tracing::info!(
            id = %sidecar.session_id, reason = sidecar.stop_reason.as_deref().unwrap_or(""),
            packets = sidecar.packets_received, lost = sidecar.packets_lost,
            duration_ms = sidecar.duration_ms, "recording stopped"
        );
        Counters::add(&shared.counters.recordings_finished, 1);
        self.release(port);
    }

    /// The recording is over: its port rests, its place in the limit frees.
    fn release(&self, port: u16) {
        let shared = &self.shared;
        shared.ports().rest(port, Instant::now());
        shared.admission().recording_ended();
    }
}
