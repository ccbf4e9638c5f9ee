//! The IO layer: control connections driving callrec-control's sans-IO
//! `ServerSession`, one UDP socket and task per recording driving a
//! [`Call`], files, sidecars, limits and shutdown.

use core::net::{IpAddr, SocketAddr};
use core::num::NonZeroU16;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use callrec_control::{
    Codec, Host, PortAllocator, RecordStartRequest, RecordStopRequest, Rejection, RtpTarget,
    ServerConfig, ServerEvent, ServerSession, SessionId,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::arrival::{ArrivalClock, recv_stamped};
use crate::call::{Call, CallSettings, codec_of};
use crate::outputs::Outputs;
use crate::paths::{UtcTime, recording_stem, with_suffix};
use crate::sidecar::{Durability, Parties, RecordingFile, Sidecar, sha256_of, write_atomically};
use crate::{Config, Error, Observer, OutputFormat};

/// Largest UDP datagram read; larger ones are truncated and refused by the
/// RTP parser's length checks.
const MAX_DATAGRAM: usize = 2048;

/// A port is not handed out again until this long after its call ended, so
/// late packets of the old call cannot reach a new one.
pub const PORT_QUARANTINE: Duration = Duration::from_secs(5);

/// Threads that finalize recordings (fsync, hashing): a thousand calls
/// ending together queue for them instead of starting a thousand threads,
/// and the same threads serve the server's whole life, so memory stays flat.
const FINALIZER_THREADS: usize = 4;

/// One piece of blocking work.
type FinalizerJob = Box<dyn FnOnce() + Send>;

/// Blocking work of finished recordings, off the runtime's workers.
struct Finalizers {
    jobs: Mutex<Option<std::sync::mpsc::Sender<FinalizerJob>>>,
}

impl Finalizers {
    fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<FinalizerJob>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..FINALIZER_THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("callrec-finalize-{n}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            // A panicking job loses its own result only (the
                            // waiting task sees `None`); the thread goes on.
                            Ok(job) => {
                                let _ =
                                    std::panic::catch_unwind(core::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => break,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a finalizer thread: {e}");
            }
        }
        Self {
            jobs: Mutex::new(Some(tx)),
        }
    }

    /// Runs `job` on a finalizer thread and waits for its result; `None` if
    /// it panicked or no thread runs.
    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|jobs| {
                jobs.send(Box::new(move || {
                    let _ = tx.send(job());
                }))
            });
        match sent {
            Some(Ok(())) => rx.await.ok(),
            _ => None,
        }
    }
}

impl Drop for Finalizers {
    fn drop(&mut self) {
        // Closing the queue ends the threads once it is empty.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Server-wide counters, readable while it runs.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Counters {
    /// Control connections accepted.
    pub connections: AtomicU64,
    /// Connections refused (limits).
    pub connections_refused: AtomicU64,
    /// Recordings started.
    pub recordings_started: AtomicU64,
    /// Recordings finished (files final).
    pub recordings_finished: AtomicU64,
    /// Start requests refused, for any reason (the ones below, and
    /// requests that are not valid).
    pub refused: AtomicU64,
    /// Refused: the phone's address is not in [`Config::allow`].
    pub refused_not_allowed: AtomicU64,
    /// Refused: [`Config::max_sessions`] recordings were running.
    pub refused_too_many_sessions: AtomicU64,
    /// Refused: no RTP port was free.
    pub refused_no_free_port: AtomicU64,
    /// Refused: less free space than [`Config::min_free_space`].
    pub refused_storage_full: AtomicU64,
    /// Refused: the recording's files could not be created.
    pub refused_cannot_create: AtomicU64,
    /// Refused: an [`Observer`] said no (an index that does not answer).
    pub refused_unavailable: AtomicU64,
    /// RTP datagrams read.
    pub packets: AtomicU64,
    /// Datagrams from other senders.
    pub foreign_packets: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Refused start requests by reason, as `(reason, count)`; the reasons
    /// are `not_allowed`, `too_many_sessions`, `no_free_port`,
    /// `storage_full`, `cannot_create`, `unavailable` and
    /// `invalid_request` (the rest).
    pub fn refusals(&self) -> [(&'static str, u64); 7] {
        let known = [
            ("not_allowed", Self::get(&self.refused_not_allowed)),
            (
                "too_many_sessions",
                Self::get(&self.refused_too_many_sessions),
            ),
            ("no_free_port", Self::get(&self.refused_no_free_port)),
            ("storage_full", Self::get(&self.refused_storage_full)),
            ("cannot_create", Self::get(&self.refused_cannot_create)),
            ("unavailable", Self::get(&self.refused_unavailable)),
        ];
        let rest = Self::get(&self.refused).saturating_sub(known.iter().map(|k| k.1).sum());
        [
            known[0],
            known[1],
            known[2],
            known[3],
            known[4],
            known[5],
            ("invalid_request", rest),
        ]
    }
}

/// Ports not in use, and ports resting after their call.
struct PortPool {
    free: VecDeque<u16>,
    resting: VecDeque<(u16, Instant)>,
}

impl PortPool {
    fn take(&mut self, now: Instant) -> Option<u16> {
        while self
            .resting
            .front()
            .is_some_and(|&(_, since)| now.duration_since(since) >= PORT_QUARANTINE)
        {
            if let Some((port, _)) = self.resting.pop_front() {
                self.free.push_back(port);
            }
        }
        self.free.pop_front()
    }

    fn rest(&mut self, port: u16, now: Instant) {
        self.resting.push_back((port, now));
    }
}

struct Shared {
    config: Config,
    advertise: Option<Host>,
    bind_ip: IpAddr,
    ports: Mutex<PortPool>,
    active: AtomicUsize,
    counters: Arc<Counters>,
    observers: Vec<Arc<dyn Observer>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    next_serial: AtomicU64,
    finalizers: Finalizers,
}

/// What [`Server::run`] returns: the counters at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Control connections accepted.
    pub connections: u64,
    /// Recordings started.
    pub recordings_started: u64,
    /// Recordings finished.
    pub recordings_finished: u64,
    /// Start requests refused.
    pub refused: u64,
    /// RTP datagrams read.
    pub packets: u64,
    /// Datagrams from other senders.
    pub foreign_packets: u64,
}

/// A bound recording server.
///
/// ```no_run
/// # async fn f() -> Result<(), callrec_server::Error> {
/// let config = callrec_server::Config::from_toml("listen = \"127.0.0.1:7700\"")?;
/// let server = callrec_server::Server::bind(config).await?;
/// let summary = server.run(async { let _ = tokio::signal::ctrl_c().await; }).await;
/// println!("{} recordings", summary.recordings_finished);
/// # Ok(()) }
/// # drop(f());
/// ```
pub struct Server {
    listener: TcpListener,
    shared: Shared,
}

impl Server {
    /// Resolves the addresses, checks the recordings directory is writable,
    /// raises the file-descriptor limit and binds the control port.
    ///
    /// # Errors
    /// [`Error`] naming the address, host or path that failed.
    pub async fn bind(mut config: Config) -> Result<Self, Error> {
        check_writable(&config.dir)?;
        fit_to_descriptor_limit(&mut config);
        let listen = resolve(&config.listen).await?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen.clone(),
                source,
            })?;
        let advertise = match &config.advertise {
            None => None,
            Some(text) => Some(text.parse::<Host>().map_err(|e| Error::Config {
                path: None,
                message: format!("advertise {text:?}: {e}"),
            })?),
        };
        let ports = PortPool {
            free: config.rtp_ports.ports().collect(),
            resting: VecDeque::new(),
        };
        Ok(Self {
            listener,
            shared: Shared {
                bind_ip: listen.ip(),
                advertise,
                ports: Mutex::new(ports),
                active: AtomicUsize::new(0),
                counters: Arc::new(Counters::default()),
                observers: Vec::new(),
                per_ip: Mutex::new(HashMap::new()),
                next_serial: AtomicU64::new(0),
                finalizers: Finalizers::start(),
                config,
            },
        })
    }

    /// Adds an observer of recordings.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.shared.observers.push(observer);
        self
    }

    /// The control address actually bound (port 0 becomes a real port).
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The configuration in force (limits may have been lowered to fit the
    /// file-descriptor limit).
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The server-wide counters.
    pub fn counters(&self) -> Arc<Counters> {
        self.shared.counters.clone()
    }

    /// Serves until `shutdown` resolves, then finalizes every open recording
    /// (each phone told `failed: server shutting down`) and returns the
    /// counters.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Summary {
        let shared = Arc::new(self.shared);
        let listener = self.listener;
        let (stop_all, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut backoff = Duration::from_millis(10);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => {
                            backoff = Duration::from_millis(10);
                            accepted
                        }
                        Err(e) => {
                            // Out of descriptors (or memory): back off instead
                            // of spinning; connections in flight wait in the
                            // kernel's backlog.
                            tracing::error!(
                                "accept on {} failed: {e}; retrying in {} ms",
                                shared.config.listen,
                                backoff.as_millis()
                            );
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(1));
                            continue;
                        }
                    };
                    while connections.try_join_next().is_some() {}
                    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                    let Some(guard) = admit_connection(&shared, connections.len(), peer) else {
                        continue;
                    };
                    Counters::add(&shared.counters.connections, 1);
                    let shared = shared.clone();
                    let stop_rx = stop_rx.clone();
                    connections.spawn(async move {
                        let _guard = guard;
                        if let Err(e) = serve_connection(&shared, stream, peer, stop_rx).await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        let _ = stop_all.send(true);
        while connections.join_next().await.is_some() {}
        let c = &shared.counters;
        Summary {
            connections: Counters::get(&c.connections),
            recordings_started: Counters::get(&c.recordings_started),
            recordings_finished: Counters::get(&c.recordings_finished),
            refused: Counters::get(&c.refused),
            packets: Counters::get(&c.packets),
            foreign_packets: Counters::get(&c.foreign_packets),
        }
    }
}

/// `HOST:PORT` to a socket address (the first the resolver gives).
async fn resolve(text: &str) -> Result<SocketAddr, Error> {
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let mut addrs = tokio::net::lookup_host(text)
        .await
        .map_err(|source| Error::Resolve {
            host: text.to_owned(),
            source,
        })?;
    addrs.next().ok_or_else(|| Error::Resolve {
        host: text.to_owned(),
        source: io::Error::new(io::ErrorKind::NotFound, "no address"),
    })
}

/// Creates the directory and writes and removes a probe file in it.
fn check_writable(dir: &Path) -> Result<(), Error> {
    let fail = |source| Error::Dir {
        path: dir.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(".callrec-write-probe");
    File::create(&probe).map_err(fail)?;
    fs::remove_file(&probe).map_err(fail)
}

/// Raises the soft descriptor limit to the hard one and lowers the
/// connection and session limits to what fits in it.
fn fit_to_descriptor_limit(config: &mut Config) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!("cannot read the file-descriptor limit: {e}");
            return;
        }
    };
    // Per recording: a UDP socket, two files and a sidecar rewrite; per
    // connection: its socket; plus a margin for the process itself (a
    // quarter of a small limit).
    let reserve = (limit / 4).min(64);
    let needed = |c: &Config| (c.max_connections + 4 * c.max_sessions) as u64 + reserve;
    if needed(config) > limit {
        let room = limit.saturating_sub(reserve) as usize;
        config.max_sessions = config.max_sessions.min(room / 8).max(1);
        config.max_connections = config
            .max_connections
            .min(room.saturating_sub(4 * config.max_sessions))
            .max(1);
        tracing::warn!(
            limit,
            max_sessions = config.max_sessions,
            max_connections = config.max_connections,
            "file-descriptor limit too low for the configured limits; lowered"
        );
    }
}

/// Counts a connection against the per-address limit; `None`: refused.
fn admit_connection(shared: &Arc<Shared>, open: usize, peer: SocketAddr) -> Option<IpGuard> {
    let config = &shared.config;
    if open >= config.max_connections {
        Counters::add(&shared.counters.connections_refused, 1);
        tracing::warn!(%peer, "connection refused: {open} connections open (max_connections)");
        return None;
    }
    let mut per_ip = shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
    let count = per_ip.entry(peer.ip()).or_insert(0);
    if *count >= config.max_connections_per_ip {
        drop(per_ip);
        Counters::add(&shared.counters.connections_refused, 1);
        tracing::warn!(%peer, "connection refused: max_connections_per_ip reached");
        return None;
    }
    *count += 1;
    Some(IpGuard {
        shared: shared.clone(),
        ip: peer.ip(),
    })
}

/// One connection's place in the per-address count.
struct IpGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut per_ip = self.shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// A call, its sidecar's path and its files' paths.
type OpenedCall = (Call<BufWriter<File>>, Option<PathBuf>, Vec<PathBuf>);

/// A recording whose port and files exist; waiting for its task.
struct Prepared {
    /// When the call started: the epoch of its RTP arrival clock.
    started: Instant,
    socket: std::net::UdpSocket,
    port: u16,
    call: Call<BufWriter<File>>,
    sidecar_path: Option<PathBuf>,
    files: Vec<PathBuf>,
}

/// Hands out ports for one control connection: binds the UDP socket and
/// creates the files before the answer goes out.
struct Allocator {
    shared: Arc<Shared>,
    local_ip: IpAddr,
    peer: SocketAddr,
    prepared: HashMap<SessionId, Prepared>,
}

impl PortAllocator for Allocator {
    fn allocate(&mut self, request: &RecordStartRequest) -> Result<RtpTarget, Rejection> {
        let shared = &self.shared;
        if !shared.config.allows(self.peer.ip()) {
            Counters::add(&shared.counters.refused_not_allowed, 1);
            return Err(Rejection::Other(format!(
                "phone address {} is not allowed to record",
                self.peer.ip()
            )));
        }
        if shared.active.fetch_add(1, Ordering::SeqCst) >= shared.config.max_sessions {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            Counters::add(&shared.counters.refused_too_many_sessions, 1);
            return Err(Rejection::TooManySessions);
        }
        match self.prepare(request) {
            Ok((target, prepared)) => {
                self.prepared.insert(request.id.clone(), prepared);
                Ok(target)
            }
            Err(rejection) => {
                shared.active.fetch_sub(1, Ordering::SeqCst);
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
        let config = &shared.config;
        // A filling disk refuses new calls before running ones fail.
        let free = fs4::available_space(&config.dir).unwrap_or(0);
        if free < config.min_free_space {
            Counters::add(&shared.counters.refused_storage_full, 1);
            return Err(Rejection::Other(format!(
                "storage full: {} MiB free in {} (reserve {} MiB)",
                free >> 20,
                config.dir.display(),
                config.min_free_space >> 20
            )));
        }
        for observer in &shared.observers {
            if let Err(reason) = observer.admit() {
                Counters::add(&shared.counters.refused_unavailable, 1);
                return Err(Rejection::Other(reason));
            }
        }
        let (port, socket) = self.bind_port().inspect_err(|_| {
            Counters::add(&shared.counters.refused_no_free_port, 1);
        })?;
        let (call, sidecar_path, files) = match self.open_call(request) {
            Ok(opened) => opened,
            Err(e) => {
                drop(socket);
                let mut pool = shared.ports.lock().unwrap_or_else(|e| e.into_inner());
                pool.rest(port, Instant::now());
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

    /// A free port, bound (other programs may hold some of the range).
    fn bind_port(&self) -> Result<(u16, std::net::UdpSocket), Rejection> {
        let shared = &self.shared;
        let now = Instant::now();
        let mut pool = shared.ports.lock().unwrap_or_else(|e| e.into_inner());
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

    /// Creates the files and the first sidecar.
    fn open_call(&self, request: &RecordStartRequest) -> Result<OpenedCall, String> {
        let shared = &self.shared;
        let config = &shared.config;
        let (codec, _) = codec_of(request.codec);
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
            start: started.rfc3339(),
            ..Sidecar::default()
        };
        let settings = CallSettings::new(config, request.codec);
        let phone_ip = self.peer.ip();
        if config.discard_rtp {
            return Ok((
                Call::new(settings, phone_ip, None, sidecar),
                None,
                Vec::new(),
            ));
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
            Ok(outputs) => Ok((
                Call::new(settings, phone_ip, Some(outputs), sidecar),
                Some(sidecar_path),
                files,
            )),
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

/// How a recording task is told to stop.
struct StopCommand {
    reason: String,
    parties: Option<Parties>,
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

async fn serve_connection(
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
        .max_sessions(config.max_sessions_per_connection)
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

/// One recording's task: RTP into its [`Call`] until told to stop or a write
/// fails.
struct RecordingTask {
    shared: Arc<Shared>,
    id: SessionId,
    ended: mpsc::UnboundedSender<(SessionId, String)>,
}

impl RecordingTask {
    async fn run(self, prepared: Prepared, mut stop: oneshot::Receiver<StopCommand>) {
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
                    if call.handle_datagram(&buf[..len], from, arrival) {
                        last_rtp = arrival;
                        if silence_logged {
                            silence_logged = false;
                            tracing::info!(id = %self.id, "RTP resumed");
                        }
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
        if let Ok(std_socket) = socket.into_std() {
            while let Ok((len, from, stamp)) = recv_stamped(&std_socket, &mut buf) {
                call.handle_datagram(&buf[..len], from, clock.arrival(stamp));
            }
        }
        Counters::add(&shared.counters.packets, call.datagrams());
        Counters::add(&shared.counters.foreign_packets, call.foreign());
        // Finalizing flushes files to disk and hashes them: blocking work,
        // kept off the runtime's workers so other calls' packets go on.
        let id = self.id.clone();
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
        tracing::info!(
            id = %sidecar.session_id, reason = sidecar.stop_reason.as_deref().unwrap_or(""),
            packets = sidecar.packets_received, lost = sidecar.packets_lost,
            audio_ms = sidecar.audio_ms, "recording stopped"
        );
        Counters::add(&shared.counters.recordings_finished, 1);
        self.release(port);
    }

    /// The recording is over: its port rests, its place in the limit frees.
    fn release(&self, port: u16) {
        let shared = &self.shared;
        shared
            .ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rest(port, Instant::now());
        shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Finalizes a call's files (flushed to disk), hashes them as a reader will
/// see them, and writes the final sidecar durably. Blocking.
fn finalize(
    id: &SessionId,
    call: Call<BufWriter<File>>,
    files: &[PathBuf],
    sidecar_path: Option<&Path>,
    command: StopCommand,
) -> Sidecar {
    let (mut sidecar, sinks) = call.finish();
    drop(sinks);
    for (entry, path) in sidecar.files.iter_mut().zip(files) {
        match File::open(path).and_then(sha256_of) {
            Ok((bytes, sha256)) => {
                entry.bytes = Some(bytes);
                entry.sha256 = Some(sha256);
            }
            Err(e) => tracing::error!(%id, "cannot hash {}: {e}", path.display()),
        }
    }
    sidecar.stop = Some(UtcTime::now().rfc3339());
    sidecar.stop_reason = Some(command.reason);
    if let Some(parties) = command.parties {
        sidecar.final_parties = parties;
    }
    sidecar.complete = true;
    if let Some(path) = sidecar_path {
        if let Err(e) = write_atomically(path, &sidecar, Durability::Durable) {
            tracing::error!(%id, "{e}");
        }
    }
    sidecar
}

/// The WAV's audio format in words.
fn audio_format(codec: Codec) -> &'static str {
    match codec {
        Codec::Pcma => "A-law, 8000 Hz, mono",
        Codec::Pcmu => "µ-law, 8000 Hz, mono",
        _ => "PCM 16-bit, 16000 Hz, mono (G.722 decoded)",
    }
}
