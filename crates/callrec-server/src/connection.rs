//! One control connection: callrec-control's sans-IO `ServerSession`
//! driven over TCP, its recordings started and stopped as it says.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use callrec_control::{RecordStopRequest, ServerConfig, ServerEvent, ServerSession, SessionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::allocator::{Allocator, Prepared};
use crate::counters::Counters;
use crate::recording::RecordingTask;
use crate::server::Shared;
use crate::sidecar::Parties;

/// How a recording task is told to stop.
pub(crate) struct StopCommand {
    pub(crate) reason: String,
    pub(crate) parties: Option<Parties>,
}

struct RunningRecording {
    stop: oneshot::Sender<StopCommand>,
    done: tokio::task::JoinHandle<()>,
}

impl RunningRecording {
    /// Stops the recording and waits until its files are final.
    async fn finish(self, reason: impl Into<String>, parties: Option<Parties>) {
        let _ = self.stop.send(StopCommand {
            reason: reason.into(),
            parties,
        });
        let _ = self.done.await;
    }
}

pub(crate) async fn serve_connection(
    shared: &Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut stop_all: watch::Receiver<bool>,
) -> io::Result<()> {
    let config = &shared.config;
    if config.keepalive_secs > 0 {
        let idle = Duration::from_secs(config.keepalive_secs);
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(idle / 3 + Duration::from_secs(1))
            .with_retries(3);
        if let Err(e) = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive) {
            tracing::warn!(%peer, "cannot set TCP keepalive: {e}");
        }
    }
    let local_ip = stream.local_addr()?.ip().to_canonical();
    tracing::info!(%peer, "control connection accepted");
    let allocator = Allocator {
        shared: shared.clone(),
        local_ip,
        peer,
        prepared: HashMap::new(),
    };
    let session_config = ServerConfig::default()
        .max_sessions(config.max_recordings_per_connection)
        .idle_timeout(Some(Duration::from_secs(config.idle_timeout_secs.max(1))));
    let mut session = ServerSession::new(allocator, session_config, Instant::now());
    let mut running: HashMap<SessionId, RunningRecording> = HashMap::new();
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<(SessionId, String)>();
    let mut buf = vec![0u8; 4096];
    loop {
        let deadline = session.poll_timeout();
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => session.handle_eof(Instant::now()),
                Ok(n) => session.handle_data(&buf[..n], Instant::now()),
                Err(_) => session.connection_lost(),
            },
            () = sleep_until_opt(deadline) => session.handle_timeout(Instant::now()),
            Some((id, reason)) = ended_rx.recv() => {
                // The recording ended itself (a write error): finalized by
                // its task; the phone is told.
                if let Some(recording) = running.remove(&id) {
                    recording.finish(reason.clone(), None).await;
                }
                session.end_session(&id, &reason, Instant::now());
            }
            _ = stop_all.changed() => {
                let reason = "server shutting down";
                for (id, recording) in running.drain() {
                    recording.finish(reason, None).await;
                    session.end_session(&id, reason, Instant::now());
                }
                while let Some(bytes) = session.poll_transmit() {
                    if stream.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                session.connection_lost();
            }
        }
        // Events first: a stop is finalized before its answer goes out.
        while let Some(event) = session.poll_event() {
            handle_event(shared, &mut session, &mut running, &ended_tx, peer, event).await;
        }
        let mut write_failed = false;
        while let Some(bytes) = session.poll_transmit() {
            if stream.write_all(&bytes).await.is_err() {
                write_failed = true;
                break;
            }
        }
        if write_failed {
            session.connection_lost();
            while let Some(event) = session.poll_event() {
                handle_event(shared, &mut session, &mut running, &ended_tx, peer, event).await;
            }
        }
        if session.is_closed() {
            break;
        }
    }
    for (_, recording) in running.drain() {
        recording.finish("control connection closed", None).await;
    }
    tracing::info!(%peer, "control connection closed");
    Ok(())
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => core::future::pending().await,
    }
}

async fn handle_event(
    shared: &Arc<Shared>,
    session: &mut ServerSession<Allocator>,
    running: &mut HashMap<SessionId, RunningRecording>,
    ended_tx: &mpsc::UnboundedSender<(SessionId, String)>,
    peer: SocketAddr,
    event: ServerEvent,
) {
    match event {
        ServerEvent::Started { request, target } => {
            let Some(prepared) = session_prepared(session, &request.id) else {
                return;
            };
            Counters::add(&shared.counters.recordings_started, 1);
            tracing::info!(
                id = %request.id, device = %request.device, codec = %request.codec,
                port = target.port.get(), %peer,
                files = ?prepared.files, "recording started"
            );
            let (stop_tx, stop_rx) = oneshot::channel();
            let id = request.id.clone();
            let task = RecordingTask {
                shared: shared.clone(),
                id: id.clone(),
                ended: ended_tx.clone(),
            };
            let done = tokio::spawn(task.run(prepared, stop_rx));
            running.insert(
                id,
                RunningRecording {
                    stop: stop_tx,
                    done,
                },
            );
        }
        ServerEvent::Stop { request } => {
            if let Some(recording) = running.remove(&request.id) {
                let reason = if request.reason.is_empty() {
                    "stop request".to_owned()
                } else {
                    format!("stop request: {}", request.reason)
                };
                recording.finish(reason, final_parties(&request)).await;
            }
        }
        ServerEvent::Terminated { id } => {
            if let Some(recording) = running.remove(&id) {
                recording.finish("control connection lost", None).await;
            }
        }
        ServerEvent::Rejected { id, reason } => {
            Counters::add(&shared.counters.refused, 1);
            tracing::warn!(id = ?id.map(|i| i.to_string()), %peer, "start refused: {reason}");
        }
        ServerEvent::UnknownStop { id } => {
            tracing::warn!(%id, %peer, "stop for an unknown session");
        }
        ServerEvent::Ignored { error } => {
            tracing::warn!(%peer, "message ignored: {error:?}");
        }
        ServerEvent::IdleTimeout => {
            tracing::info!(%peer, "connection closed: no recording for the idle timeout");
        }
        _ => {}
    }
}

/// The stop request's numbers and names, when it gave any.
fn final_parties(request: &RecordStopRequest) -> Option<Parties> {
    let given = [
        &request.local_number,
        &request.local_name,
        &request.remote_number,
        &request.remote_name,
    ]
    .iter()
    .any(|s| !s.is_empty());
    given.then(|| Parties {
        local_number: request.local_number.clone(),
        local_name: request.local_name.clone(),
        remote_number: request.remote_number.clone(),
        remote_name: request.remote_name.clone(),
    })
}

/// Takes the socket and files prepared for `id` out of the allocator: from
/// now on the recording task owns them.
fn session_prepared(session: &mut ServerSession<Allocator>, id: &SessionId) -> Option<Prepared> {
    session.allocator_mut().prepared.remove(id)
}
