//! A start request's port and files: admitted, a UDP port bound and the
//! files and first sidecar created before the phone is told `success`.

use core::net::{IpAddr, SocketAddr};
use core::num::NonZeroU16;
use core::sync::atomic::Ordering;
use core::time::Duration;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use callrec_control::{Host, PortAllocator, RecordStartRequest, Rejection, RtpTarget, SessionId};

use crate::OutputFormat;
use crate::admission::Refusal;
use crate::call::{Call, CallSettings, file_codec};
use crate::counters::Counters;
use crate::finalizer::audio_format;
use crate::outputs::Outputs;
use crate::paths::{UtcTime, recording_stem, with_suffix};
use crate::server::Shared;
use crate::sidecar::{Durability, Parties, RecordingFile, Sidecar, write_atomically};

/// A call whose files exist.
struct OpenedCall {
    call: Call<Outputs<BufWriter<File>>>,
    /// Its sidecar (none when RTP is discarded).
    sidecar_path: Option<PathBuf>,
    /// Its audio files.
    files: Vec<PathBuf>,
}

/// A recording whose port and files exist; waiting for its task.
pub(crate) struct Prepared {
    /// When the call started: the epoch of its RTP arrival clock.
    pub(crate) started: Instant,
    pub(crate) socket: std::net::UdpSocket,
    pub(crate) port: u16,
    pub(crate) call: Call<Outputs<BufWriter<File>>>,
    pub(crate) sidecar_path: Option<PathBuf>,
    pub(crate) files: Vec<PathBuf>,
}

/// Hands out ports for one control connection: binds the UDP socket and
/// creates the files before the answer goes out.
pub(crate) struct Allocator {
    pub(crate) shared: Arc<Shared>,
    pub(crate) local_ip: IpAddr,
    pub(crate) peer: SocketAddr,
    pub(crate) prepared: HashMap<SessionId, Prepared>,
}

impl PortAllocator for Allocator {
    fn allocate(&mut self, request: &RecordStartRequest) -> Result<RtpTarget, Rejection> {
        let shared = &self.shared;
        if let Err(refusal) = admit_recording(shared, self.peer.ip()) {
            return Err(refusal.rejection());
        }
        match self.prepare(request) {
            Ok((target, prepared)) => {
                self.prepared.insert(request.id.clone(), prepared);
                Ok(target)
            }
            Err(rejection) => {
                shared.admission().recording_ended();
                Err(rejection)
            }
        }
    }

    fn release(&mut self, _id: &SessionId, _target: &RtpTarget) {
        // The recording task owns the socket and gives the port (and the
        // session count) back once its files are final.
    }
}

impl Allocator {
    fn prepare(&self, request: &RecordStartRequest) -> Result<(RtpTarget, Prepared), Rejection> {
        let shared = &self.shared;
        let (port, socket) = self.bind_port().inspect_err(|_| {
            Counters::add(&shared.counters.refused_no_free_port, 1);
        })?;
        let OpenedCall {
            call,
            sidecar_path,
            files,
        } = match self.open_call(request) {
            Ok(opened) => opened,
            Err(e) => {
                drop(socket);
                shared.ports().rest(port, Instant::now());
                Counters::add(&shared.counters.refused_cannot_create, 1);
                return Err(Rejection::Other(e));
            }
        };
        let server = shared.advertise.clone().unwrap_or(Host::Ip(self.local_ip));
        let port_nz = NonZeroU16::new(port).ok_or(Rejection::NoFreePort)?;
        Ok((
            RtpTarget::new(server, port_nz),
            Prepared {
                started: Instant::now(),
                socket,
                port,
                call,
                sidecar_path,
                files,
            },
        ))
    }

    /// A free port, bound.
    fn bind_port(&self) -> Result<(u16, std::net::UdpSocket), Rejection> {
        bind_free_port(&self.shared)
    }

    /// Creates the files and the first sidecar.
    fn open_call(&self, request: &RecordStartRequest) -> Result<OpenedCall, String> {
        let shared = &self.shared;
        let config = &shared.config;
        let codec = file_codec(request.codec)?;
        let started = UtcTime::now();
        let parties = Parties {
            local_number: request.local_number.clone(),
            local_name: request.local_name.clone(),
            remote_number: request.remote_number.clone(),
            remote_name: request.remote_name.clone(),
        };
        let mut sidecar = Sidecar {
            recording_id: crate::paths::new_recording_id(),
            session_id: request.id.to_string(),
            device: request.device.to_string(),
            direction: request.dir.to_string(),
            codec: request.codec.to_string(),
            audio_format: audio_format(request.codec).to_owned(),
            phone_address: self.peer.to_string(),
            start_parties: parties.clone(),
            final_parties: parties,
            started_at: started.rfc3339(),
            ..Sidecar::default()
        };
        let settings = CallSettings::new(config, request.codec);
        let phone_ip = self.peer.ip();
        if config.discard_rtp {
            return Ok(OpenedCall {
                call: Call::new(settings, phone_ip, None, sidecar),
                sidecar_path: None,
                files: Vec::new(),
            });
        }
        let stem = self.stem(request, &started)?;
        let (want_wav, want_rec) = match config.format {
            OutputFormat::Wav => (true, false),
            OutputFormat::Rec => (false, true),
            _ => (true, true),
        };
        let mut files = Vec::new();
        let mut open = |ext: &str, kind: &str| -> Result<BufWriter<File>, String> {
            let path = with_suffix(&stem, ext);
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            sidecar.files.push(RecordingFile {
                path: path.strip_prefix(&config.dir).unwrap_or(&path).to_owned(),
                kind: kind.to_owned(),
                bytes: None,
                sha256: None,
            });
            files.push(path);
            Ok(BufWriter::new(file))
        };
        let opened = (|| {
            let wav = want_wav.then(|| open("wav", "wav")).transpose()?;
            let rec = want_rec.then(|| open("rec", "rec")).transpose()?;
            let header_interval = Duration::from_millis(config.header_interval_ms.max(20));
            Outputs::new(codec, wav, rec, header_interval)
        })();
        let sidecar_path = with_suffix(&stem, "json");
        let outputs = opened.and_then(|outputs| {
            write_atomically(&sidecar_path, &sidecar, Durability::Atomic)?;
            Ok(outputs)
        });
        match outputs {
            Ok(outputs) => Ok(OpenedCall {
                call: Call::new(settings, phone_ip, Some(outputs), sidecar),
                sidecar_path: Some(sidecar_path),
                files,
            }),
            Err(e) => {
                // Nothing half-made stays behind a refused start.
                for path in &files {
                    let _ = fs::remove_file(path);
                }
                tracing::error!(id = %request.id, "cannot create the recording: {e}");
                Err(format!("cannot create the recording: {e}"))
            }
        }
    }

    /// Where the files go; a serial number when the name is taken.
    fn stem(&self, request: &RecordStartRequest, started: &UtcTime) -> Result<PathBuf, String> {
        let config = &self.shared.config;
        let stem = recording_stem(
            &config.dir,
            &request.device.to_string(),
            started,
            &request.dir.to_string(),
            &request.remote_number,
            request.id.as_str(),
        );
        let parent = stem.parent().unwrap_or(&config.dir).to_owned();
        fs::create_dir_all(&parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let taken = |s: &Path| {
            ["wav", "rec", "json"]
                .iter()
                .any(|ext| with_suffix(s, ext).exists())
        };
        if !taken(&stem) {
            return Ok(stem);
        }
        let serial = self.shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let name = stem.file_name().unwrap_or_default().to_string_lossy();
        Ok(stem.with_file_name(format!("{name}-{serial}")))
    }
}

/// A new recording from `ip` admitted by the server's policy (`allow`,
/// `max_recordings`, free space, the observers), for a phone and a SIPREC
/// session alike; a refusal is counted by its reason.
///
/// # Errors
/// The refusal.
pub(crate) fn admit_recording(shared: &Shared, ip: IpAddr) -> Result<(), Refusal> {
    let config = &shared.config;
    let admitted = shared.admission().admit_recording(
        ip,
        || fs4::available_space(&config.dir).unwrap_or(0),
        || shared.observers.iter().try_for_each(|o| o.admit()),
    );
    if let Err(refusal) = &admitted {
        let counter = match refusal {
            Refusal::NotAllowed(_) => &shared.counters.refused_not_allowed,
            Refusal::TooManyRecordings => &shared.counters.refused_too_many_sessions,
            Refusal::StorageFull { .. } => &shared.counters.refused_storage_full,
            _ => &shared.counters.refused_unavailable,
        };
        Counters::add(counter, 1);
    }
    admitted
}

/// A free RTP port of the server's range, bound (other programs may hold
/// some of the range: those rest and the next is tried).
pub(crate) fn bind_free_port(shared: &Shared) -> Result<(u16, std::net::UdpSocket), Rejection> {
    let now = Instant::now();
    let mut pool = shared.ports();
    let mut busy = Vec::new();
    let mut bound = None;
    while let Some(port) = pool.take(now) {
        match bind_udp(
            SocketAddr::new(shared.bind_ip, port),
            shared.config.rtp_recv_buffer,
        ) {
            Ok(socket) => {
                bound = Some((port, socket));
                break;
            }
            Err(e) => {
                tracing::warn!("cannot bind RTP port {}:{port}: {e}", shared.bind_ip);
                busy.push(port);
            }
        }
    }
    for port in busy {
        pool.rest(port, now);
    }
    bound.ok_or(Rejection::NoFreePort)
}

/// A UDP socket with a larger receive buffer, bound to `addr`.
fn bind_udp(addr: SocketAddr, recv_buffer: usize) -> io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(recv_buffer);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    let socket: std::net::UdpSocket = socket.into();
    if let Err(e) = crate::arrival::enable_timestamps(&socket) {
        tracing::warn!("no kernel receive timestamps on {addr}: {e}; read times used");
    }
    Ok(socket)
}
