//! The recording server: control connections (callrec-control's sans-IO
//! `ServerSession`), one UDP socket per recording (callrec-rtp's `Receiver`)
//! and the files (callrec-audio's `WavWriter`, callrec-file's `Writer`).
//!
//! Shared by the `record_server` example and the end-to-end tests, which
//! include this file with `#[path]`.

// Compiled into an example and into the tests (`#[path]`); each uses a
// different part, and `pub` marks what the other side may use.
#![allow(dead_code, unreachable_pub)]

use core::net::{IpAddr, SocketAddr};
use core::num::NonZeroU16;
use core::ops::RangeInclusive;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use callrec::audio::convert::{Transcoder, WavOutput};
use callrec::audio::g711::Law;
use callrec::audio::{WavWriter, g722};
use callrec::control::{
    Codec, Host, PortAllocator, RecordStartRequest, Rejection, RtpTarget, ServerConfig,
    ServerEvent, ServerSession, SessionId,
};
use callrec::file::{self as recfile, CodecName, Header};
use callrec::rtp::{Event, Receiver, ReceiverConfig, ReceiverStats, RtpPacket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

#[path = "paths.rs"]
pub mod paths;
use paths::{UtcTime, recording_stem};

/// What the server writes per recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// A WAV file (A-law/µ-law as received; G.722 decoded to 16 kHz PCM).
    Wav,
    /// The phone's own container (`callrec-file`).
    Rec,
    /// Both.
    Both,
}

/// Server settings; `Options::default()` are the documented defaults.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    pub rtp_ports: RangeInclusive<u16>,
    pub dir: PathBuf,
    /// Address put in `server=`; `None`: the local address of the control
    /// connection.
    pub advertise: Option<IpAddr>,
    /// Recordings open at once, server-wide.
    pub max_sessions: usize,
    /// Control connections open at once.
    pub max_connections: usize,
    /// A recording whose RTP stays silent this long is finalized.
    pub rtp_timeout: Duration,
    /// A control connection that sends nothing this long after connecting
    /// is closed.
    pub idle_timeout: Duration,
    pub format: OutputFormat,
    /// WAV header rewrite interval (audio time).
    pub header_interval: Duration,
    /// Benchmark baseline: receive RTP and count it, nothing else (no
    /// parsing, no files). The control protocol runs as usual.
    pub discard_rtp: bool,
    /// Start requests are refused (`storage full`) while the recordings
    /// directory's file system has less free space than this.
    pub min_free_space: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_CONTROL_PORT)),
            rtp_ports: 40000..=40999,
            dir: PathBuf::from("recordings"),
            advertise: None,
            max_sessions: 1000,
            max_connections: 2000,
            rtp_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(10),
            format: OutputFormat::Wav,
            header_interval: Duration::from_secs(1),
            discard_rtp: false,
            min_free_space: 64 << 20,
        }
    }
}

/// The documented default control port.
pub const DEFAULT_CONTROL_PORT: u16 = 7700;

/// Largest UDP datagram read; larger ones are truncated and dropped by the
/// RTP parser's length checks.
const MAX_DATAGRAM: usize = 2048;

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections: AtomicU64,
    pub recordings_started: AtomicU64,
    pub recordings_finished: AtomicU64,
    pub rejected: AtomicU64,
    pub packets: AtomicU64,
    pub foreign_packets: AtomicU64,
}

/// What one finished recording reports (also the JSON sidecar).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordingReport {
    pub id: String,
    pub device: String,
    pub local_number: String,
    pub local_name: String,
    pub remote_number: String,
    pub remote_name: String,
    pub direction: String,
    pub codec: String,
    pub start: String,
    pub stop: String,
    pub stop_reason: String,
    pub files: Vec<PathBuf>,
    /// Packets accepted from the phone (RFC 3550 count: duplicates included).
    pub packets_received: u64,
    /// Sequence numbers never received (filled with silence).
    pub packets_lost: i64,
    pub packets_duplicate: u64,
    pub packets_reordered: u64,
    pub packets_late: u64,
    pub packets_foreign: u64,
    pub packets_malformed: u64,
    pub jitter_ms: f64,
    pub silence_inserted_ms: u64,
    pub payload_bytes: u64,
    pub audio_ms: u64,
    pub write_error: Option<String>,
}

struct Shared {
    options: Options,
    free_ports: Mutex<Vec<u16>>,
    active: AtomicUsize,
    counters: Arc<Counters>,
    reports: Mutex<Vec<RecordingReport>>,
    /// Serial numbers for recordings whose path is already taken (the same
    /// id, direction and number within one second).
    next_serial: AtomicU64,
}

/// A running server.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds the control port and checks the recordings directory.
    pub async fn bind(options: Options) -> io::Result<Self> {
        fs::create_dir_all(&options.dir)?;
        let listener = TcpListener::bind(options.listen).await?;
        let free_ports = options.rtp_ports.clone().rev().collect();
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                options,
                free_ports: Mutex::new(free_ports),
                active: AtomicUsize::new(0),
                counters: Arc::new(Counters::default()),
                reports: Mutex::new(Vec::new()),
                next_serial: AtomicU64::new(0),
            }),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.shared.counters.clone()
    }

    /// Serves until `shutdown` resolves, then finalizes every open recording
    /// and returns the reports of all recordings made.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Vec<RecordingReport> {
        let (stop_all, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    // Reap finished connection tasks so the set stays bounded.
                    while connections.try_join_next().is_some() {}
                    if connections.len() >= self.shared.options.max_connections {
                        tracing::warn!(%peer, "connection refused: too many connections");
                        continue;
                    }
                    self.shared.counters.connections.fetch_add(1, Ordering::Relaxed);
                    let shared = self.shared.clone();
                    let stop_rx = stop_rx.clone();
                    connections.spawn(async move {
                        if let Err(e) = serve_connection(shared, stream, peer, stop_rx).await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        let _ = stop_all.send(true);
        while connections.join_next().await.is_some() {}
        core::mem::take(&mut *self.shared.reports.lock().unwrap())
    }
}

/// Hands out ports for one control connection: binds the UDP socket before
/// the answer goes out, and keeps it for the recording task.
struct Allocator {
    shared: Arc<Shared>,
    /// Address of the server side of the control connection.
    local_ip: IpAddr,
    /// Bound sockets not yet handed to their recording task.
    sockets: Mutex<HashMap<SessionId, std::net::UdpSocket>>,
}

impl PortAllocator for Allocator {
    fn allocate(&mut self, request: &RecordStartRequest) -> Result<RtpTarget, Rejection> {
        let max = self.shared.options.max_sessions;
        if self.shared.active.fetch_add(1, Ordering::SeqCst) >= max {
            self.shared.active.fetch_sub(1, Ordering::SeqCst);
            return Err(Rejection::TooManySessions);
        }
        // Disk full: refuse now rather than accept a call that cannot be kept.
        let free = fs4::available_space(&self.shared.options.dir).unwrap_or(0);
        if free < self.shared.options.min_free_space {
            self.shared.active.fetch_sub(1, Ordering::SeqCst);
            return Err(Rejection::Other(format!(
                "storage full: {} MiB free",
                free >> 20
            )));
        }
        let bind_ip = self.shared.options.listen.ip();
        let mut free = self.shared.free_ports.lock().unwrap();
        // Try ports until one binds (another program may hold some).
        let mut tried = Vec::new();
        let mut bound = None;
        while let Some(port) = free.pop() {
            match std::net::UdpSocket::bind((bind_ip, port)) {
                Ok(socket) => {
                    bound = Some((port, socket));
                    break;
                }
                Err(_) => tried.push(port),
            }
        }
        // Ports that failed go to the front (tried last next time).
        for port in tried.into_iter().rev() {
            free.insert(0, port);
        }
        drop(free);
        let Some((port, socket)) = bound else {
            self.shared.active.fetch_sub(1, Ordering::SeqCst);
            return Err(Rejection::NoFreePort);
        };
        let server = self.shared.options.advertise.unwrap_or(self.local_ip);
        self.sockets
            .lock()
            .unwrap()
            .insert(request.id.clone(), socket);
        Ok(RtpTarget::new(
            Host::Ip(server),
            NonZeroU16::new(port).expect("ports in the range are >= 1"),
        ))
    }

    fn release(&mut self, id: &SessionId, _target: &RtpTarget) {
        // The recording task owns the socket and returns the port (and the
        // session count) when it has finalized; a socket never handed to a
        // task is dropped here.
        let unused = self.sockets.lock().unwrap().remove(id);
        if let Some(socket) = unused {
            let port = socket.local_addr().map(|a| a.port()).ok();
            drop(socket);
            if let Some(port) = port {
                self.shared.free_ports.lock().unwrap().insert(0, port);
            }
            self.shared.active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

struct RunningRecording {
    stop: oneshot::Sender<String>,
    done: tokio::task::JoinHandle<()>,
}

impl RunningRecording {
    /// Stops the recording with `reason` and waits until its files are final.
    async fn finish(self, reason: impl Into<String>) {
        let _ = self.stop.send(reason.into());
        let _ = self.done.await;
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut stop_all: watch::Receiver<bool>,
) -> io::Result<()> {
    // An IPv4 phone on a dual-stack listener shows as ::ffff:a.b.c.d;
    // advertise and filter by the plain IPv4 address.
    let local_ip = stream.local_addr()?.ip().to_canonical();
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let allocator = Allocator {
        shared: shared.clone(),
        local_ip,
        sockets: Mutex::new(HashMap::new()),
    };
    let config = ServerConfig::default()
        .max_sessions(shared.options.max_sessions)
        .idle_timeout(Some(shared.options.idle_timeout));
    let mut session = ServerSession::new(allocator, config, Instant::now());
    let mut running: HashMap<SessionId, RunningRecording> = HashMap::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let deadline = session.poll_timeout();
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => session.handle_eof(),
                Ok(n) => session.handle_data(&buf[..n]),
                Err(_) => session.connection_lost(),
            },
            () = sleep_until_opt(deadline) => session.handle_timeout(Instant::now()),
            _ = stop_all.changed() => {
                // Shutdown: finalize with the true reason before the session
                // reports its recordings as terminated.
                for (_, recording) in running.drain() {
                    recording.finish("server shutting down").await;
                }
                session.connection_lost();
            }
        }
        // Events first: a stop is finalized before its answer goes out.
        while let Some(event) = session.poll_event() {
            handle_event(&shared, &mut session, &mut running, peer, event).await;
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
                handle_event(&shared, &mut session, &mut running, peer, event).await;
            }
        }
        if session.is_closed() {
            break;
        }
    }
    // Every recording of this connection is finalized before it returns.
    for (_, recording) in running.drain() {
        recording.finish("control connection closed").await;
    }
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
    peer: SocketAddr,
    event: ServerEvent,
) {
    match event {
        ServerEvent::Started { request, target } => {
            let Some(socket) = session_socket(session, &request.id) else {
                return;
            };
            shared
                .counters
                .recordings_started
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                id = %request.id, device = %request.device, codec = %request.codec,
                port = target.port.get(), %peer, "recording started"
            );
            let (stop_tx, stop_rx) = oneshot::channel();
            let id = request.id.clone();
            let shared = shared.clone();
            let done = tokio::spawn(async move {
                record(shared, request, socket, peer.ip(), stop_rx).await;
            });
            running.insert(
                id,
                RunningRecording {
                    stop: stop_tx,
                    done,
                },
            );
        }
        ServerEvent::Stop { id, reason } => {
            if let Some(recording) = running.remove(&id) {
                let reason = if reason.is_empty() {
                    "stop request".to_owned()
                } else {
                    format!("stop request: {reason}")
                };
                recording.finish(reason).await;
            }
        }
        ServerEvent::Terminated { id } => {
            if let Some(recording) = running.remove(&id) {
                recording.finish("control connection lost").await;
            }
        }
        ServerEvent::Rejected { id, reason } => {
            shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(id = ?id.map(|i| i.to_string()), %peer, "start refused: {reason}");
        }
        ServerEvent::UnknownStop { id } => {
            tracing::warn!(%id, %peer, "stop for an unknown session");
        }
        ServerEvent::Ignored { error } => {
            tracing::warn!(%peer, "message ignored: {error:?}");
        }
        ServerEvent::IdleTimeout => {
            tracing::info!(%peer, "connection closed: silent since connecting");
        }
        _ => {}
    }
}

/// Takes the socket bound for `id` out of the allocator: from now on the
/// recording task owns it, and gives the port back when it has finalized.
fn session_socket(session: &mut ServerSession<Allocator>, id: &SessionId) -> Option<UdpSocket> {
    let std_socket = session.allocator().sockets.lock().unwrap().remove(id)?;
    std_socket.set_nonblocking(true).ok()?;
    UdpSocket::from_std(std_socket).ok()
}

/// The files of one recording.
struct Outputs {
    wav: Option<(WavWriter<BufWriter<File>>, Transcoder)>,
    rec: Option<RecOutput>,
    files: Vec<PathBuf>,
    error: Option<String>,
}

/// The phone's container, written in fixed 20 ms frames (160 bytes for all
/// three codecs) whatever the packet sizes.
struct RecOutput {
    writer: recfile::Writer<BufWriter<File>>,
    pending: Vec<u8>,
    /// G.722 silence comes from encoding zeros.
    g722_silence: Option<g722::Encoder>,
    law: Option<Law>,
}

const REC_FRAME: usize = 160;

impl RecOutput {
    fn push(&mut self, data: &[u8]) -> Result<(), String> {
        self.pending.extend_from_slice(data);
        let whole = self.pending.len() - self.pending.len() % REC_FRAME;
        for frame in self.pending[..whole].chunks(REC_FRAME) {
            self.writer.append(frame).map_err(|e| e.to_string())?;
        }
        self.pending.drain(..whole);
        Ok(())
    }

    fn silence(&mut self, ticks: u64) -> Result<(), String> {
        // One byte per 8 kHz tick for all three codecs.
        let mut left = ticks;
        let mut chunk = [0u8; REC_FRAME];
        while left > 0 {
            let n = left.min(REC_FRAME as u64) as usize;
            match (self.law, self.g722_silence.as_mut()) {
                (Some(law), _) => chunk[..n].fill(law.silence()),
                (None, Some(encoder)) => {
                    encoder.encode(&[0i16; 2 * REC_FRAME][..2 * n], &mut chunk[..n]);
                }
                (None, None) => chunk[..n].fill(0),
            }
            self.push(&chunk[..n])?;
            left -= n as u64;
        }
        Ok(())
    }
}

/// The G.711 law of `codec`; `None` for G.722.
fn law_of(codec: Codec) -> Option<Law> {
    match codec {
        Codec::Pcma => Some(Law::Alaw),
        Codec::Pcmu => Some(Law::Ulaw),
        _ => None,
    }
}

/// The container's codec and the RTP payload type of `codec`.
fn codec_of(codec: Codec) -> (recfile::Codec, u8) {
    match codec {
        Codec::Pcma => (recfile::Codec::Pcma, 8),
        Codec::Pcmu => (recfile::Codec::Pcmu, 0),
        _ => (recfile::Codec::G722, 9),
    }
}

/// `stem.ext`. Not `Path::with_extension`, which would replace whatever
/// follows a `.` inside the stem (a session id may contain dots).
fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut name = stem.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(ext);
    stem.with_file_name(name)
}

fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

fn open_outputs(
    shared: &Shared,
    request: &RecordStartRequest,
    started: &UtcTime,
) -> Result<(Outputs, PathBuf), String> {
    let (codec, _) = codec_of(request.codec);
    let stem = recording_stem(
        &shared.options.dir,
        &request.device.to_string(),
        started,
        &request.dir.to_string(),
        &request.remote_number,
        request.id.as_str(),
    );
    let parent = stem.parent().expect("the stem has a directory").to_owned();
    fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    // The same id twice in one second gets a serial number.
    let mut stem = stem;
    let (fmt_wav, fmt_rec) = match shared.options.format {
        OutputFormat::Wav => (true, false),
        OutputFormat::Rec => (false, true),
        OutputFormat::Both => (true, true),
    };
    let exists = |s: &Path| {
        with_suffix(s, "wav").exists()
            || with_suffix(s, "rec").exists()
            || with_suffix(s, "json").exists()
    };
    if exists(&stem) {
        let serial = shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{serial}", stem.file_name().unwrap().to_string_lossy());
        stem = stem.with_file_name(name);
    }
    let mut outputs = Outputs {
        wav: None,
        rec: None,
        files: Vec::new(),
        error: None,
    };
    if fmt_wav {
        let path = with_suffix(&stem, "wav");
        let file = create_new(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let transcoder = Transcoder::new(codec, WavOutput::AsRecorded);
        let writer = WavWriter::with_header_interval(
            BufWriter::new(file),
            transcoder.spec(),
            Some(shared.options.header_interval),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        outputs.wav = Some((writer, transcoder));
        outputs.files.push(path);
    }
    if fmt_rec {
        // `.rec` so it never collides with the WAV beside it; phones name
        // the same container `Record_<time>.wav`.
        let path = with_suffix(&stem, "rec");
        let file = create_new(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = CodecName::new(codec.name()).expect("codec names are valid");
        let header = Header::new(name, REC_FRAME as u16, REC_FRAME as u16).expect("valid header");
        let writer = recfile::Writer::new(BufWriter::new(file), header)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let law = law_of(request.codec);
        outputs.rec = Some(RecOutput {
            writer,
            pending: Vec::new(),
            g722_silence: law.is_none().then(g722::Encoder::new),
            law,
        });
        outputs.files.push(path);
    }
    Ok((outputs, stem))
}

impl Outputs {
    fn payload(&mut self, data: &[u8]) {
        self.write(|t, wav| t.write_frame(data, wav), |rec| rec.push(data));
    }

    fn gap(&mut self, ticks: u64) {
        self.write(|t, wav| t.write_gap(ticks, wav), |rec| rec.silence(ticks));
    }

    /// Writes to every open file; the first error stops all writing.
    fn write(
        &mut self,
        to_wav: impl FnOnce(
            &mut Transcoder,
            &mut WavWriter<BufWriter<File>>,
        ) -> Result<(), callrec::audio::Error>,
        to_rec: impl FnOnce(&mut RecOutput) -> Result<(), String>,
    ) {
        if self.error.is_some() {
            return;
        }
        if let Some((wav, transcoder)) = &mut self.wav {
            if let Err(e) = to_wav(transcoder, wav) {
                self.error = Some(e.to_string());
                return;
            }
        }
        if let Some(rec) = &mut self.rec {
            if let Err(e) = to_rec(rec) {
                self.error = Some(e);
            }
        }
    }

    /// Finalizes both files; returns the audio duration written.
    fn finish(self) -> (Duration, Option<String>) {
        let mut error = self.error;
        let mut duration = Duration::ZERO;
        if let Some((wav, _)) = self.wav {
            duration = wav.duration();
            match wav.finalize() {
                Ok(mut inner) => {
                    if let Err(e) = inner.flush() {
                        error.get_or_insert(e.to_string());
                    }
                }
                Err(e) => {
                    error.get_or_insert(e.to_string());
                }
            }
        }
        if let Some(mut rec) = self.rec {
            // A partial last frame is padded with silence to a whole frame.
            if !rec.pending.is_empty() {
                let missing = (REC_FRAME - rec.pending.len()) as u64;
                let _ = rec.silence(missing);
            }
            if duration.is_zero() {
                let frames = rec.writer.header().frame_count();
                duration = Duration::from_millis(u64::from(frames) * 20);
            }
            if let Err(e) = rec.writer.finish() {
                error.get_or_insert(e.to_string());
            }
        }
        (duration, error)
    }
}

/// One recording: RTP from `phone_ip` on `socket` into the files, until a
/// stop, the RTP timeout or a write error.
async fn record(
    shared: Arc<Shared>,
    request: RecordStartRequest,
    socket: UdpSocket,
    phone_ip: IpAddr,
    mut stop: oneshot::Receiver<String>,
) {
    let started = UtcTime::now();
    let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
    if shared.options.discard_rtp {
        let datagrams = discard(socket, &mut stop).await;
        shared
            .counters
            .packets
            .fetch_add(datagrams, Ordering::Relaxed);
        recording_ended(&shared, port);
        return;
    }
    let (codec, expected_pt) = codec_of(request.codec);
    let opened = open_outputs(&shared, &request, &started);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let (mut outputs, stem, stop_reason) = match opened {
        Err(e) => {
            tracing::error!(id = %request.id, "cannot create the recording: {e}");
            (None, None, format!("cannot create files: {e}"))
        }
        Ok((outputs, stem)) => (Some(outputs), Some(stem), String::new()),
    };
    let mut stop_reason = stop_reason;
    let mut intake = Intake {
        phone_ip,
        expected_pt,
        t0: Instant::now(),
        receiver: Receiver::new(ReceiverConfig::new(codec.clock_rate()).probation(1)),
        foreign: 0,
        malformed: 0,
        payload_bytes: 0,
        silence_ticks: 0,
        datagrams: 0,
    };
    if let Some(out) = outputs.as_mut() {
        // Two timers, armed once and moved only when needed: a timer per
        // packet costs more than the rest of the packet's handling.
        let timeout = shared.options.rtp_timeout;
        let mut last_rtp = Instant::now();
        let rtp_timer = tokio::time::sleep(timeout);
        tokio::pin!(rtp_timer);
        let reorder_timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(reorder_timer);
        let mut reorder_at: Option<Instant> = None;
        stop_reason = loop {
            let wanted = intake.receiver.poll_timeout().map(|d| intake.t0 + d);
            if wanted != reorder_at {
                if let Some(at) = wanted {
                    reorder_timer.as_mut().reset(at.into());
                }
                reorder_at = wanted;
            }
            tokio::select! {
                received = socket.recv_from(&mut buf) => {
                    let Ok((len, from)) = received else { continue };
                    if intake.datagram(&buf[..len], from) {
                        last_rtp = Instant::now();
                    }
                }
                () = &mut reorder_timer, if reorder_at.is_some() => {
                    reorder_at = None;
                    intake.receiver.handle_timeout(intake.t0.elapsed());
                }
                () = &mut rtp_timer => {
                    let due = last_rtp + timeout;
                    if Instant::now() >= due {
                        break format!("no RTP for {:.1} s", timeout.as_secs_f64());
                    }
                    rtp_timer.as_mut().reset(due.into());
                }
                reason = &mut stop => {
                    break reason.unwrap_or_else(|_| "server shutting down".to_owned());
                }
            }
            intake.drain(out);
            if let Some(e) = &out.error {
                break format!("write error: {e}");
            }
        };
        // What arrived before the stop is still queued on the socket: record
        // it too, then release what the reorder buffer holds.
        // (Through the std socket: tokio's `try_recv_from` answers from its
        // cached readiness and may report nothing while datagrams wait.)
        if let Ok(std_socket) = socket.into_std() {
            while let Ok((len, from)) = std_socket.recv_from(&mut buf) {
                intake.datagram(&buf[..len], from);
                intake.drain(out);
            }
        }
        intake.receiver.flush();
        intake.drain(out);
    }
    let Intake {
        receiver,
        foreign,
        malformed,
        payload_bytes,
        silence_ticks,
        datagrams,
        ..
    } = intake;
    // Server-wide totals once per recording, not per packet: a shared
    // counter bounces its cache line between cores on every datagram.
    shared
        .counters
        .packets
        .fetch_add(datagrams, Ordering::Relaxed);
    shared
        .counters
        .foreign_packets
        .fetch_add(foreign, Ordering::Relaxed);
    let stats = receiver.stats();
    let (audio, files, write_error) = match outputs {
        Some(out) => {
            let files = out.files.clone();
            let (duration, error) = out.finish();
            (duration, files, error)
        }
        None => (Duration::ZERO, Vec::new(), None),
    };
    let report = report(
        &request,
        &started,
        stop_reason,
        files,
        &stats,
        foreign,
        malformed,
        payload_bytes,
        silence_ticks,
        audio,
        write_error,
    );
    if let Some(stem) = stem {
        let path = with_suffix(&stem, "json");
        let json = serde_json::to_vec_pretty(&report).expect("report serializes");
        if let Err(e) = fs::write(&path, json) {
            tracing::error!(id = %request.id, "{}: {e}", path.display());
        }
    }
    tracing::info!(
        id = %report.id, reason = %report.stop_reason, packets = report.packets_received,
        lost = report.packets_lost, audio_ms = report.audio_ms, "recording stopped"
    );
    shared.reports.lock().unwrap().push(report);
    recording_ended(&shared, port);
}

/// A recording task is over and its socket closed: count it, and give back
/// its port and its place in the session limit.
fn recording_ended(shared: &Shared, port: u16) {
    shared
        .counters
        .recordings_finished
        .fetch_add(1, Ordering::Relaxed);
    shared.free_ports.lock().unwrap().insert(0, port);
    shared.active.fetch_sub(1, Ordering::SeqCst);
}

/// The benchmark baseline: a bare receive loop on the session's socket;
/// returns the datagrams read.
async fn discard(socket: UdpSocket, stop: &mut oneshot::Receiver<String>) -> u64 {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut datagrams = 0;
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                datagrams += u64::from(received.is_ok());
            }
            _ = &mut *stop => break,
        }
    }
    if let Ok(std_socket) = socket.into_std() {
        while std_socket.recv_from(&mut buf).is_ok() {
            datagrams += 1;
        }
    }
    datagrams
}

/// The RTP side of one recording: source filter, parser, receiver, counters.
struct Intake {
    phone_ip: IpAddr,
    expected_pt: u8,
    t0: Instant,
    receiver: Receiver,
    foreign: u64,
    malformed: u64,
    payload_bytes: u64,
    silence_ticks: u64,
    /// Every datagram read, RTP of this call or not.
    datagrams: u64,
}

impl Intake {
    /// One datagram; `true` if it was RTP of this call.
    fn datagram(&mut self, data: &[u8], from: SocketAddr) -> bool {
        self.datagrams += 1;
        if from.ip().to_canonical() != self.phone_ip {
            self.foreign += 1;
            return false;
        }
        match RtpPacket::parse(data) {
            Ok(packet) if packet.payload_type() == self.expected_pt => {
                self.receiver.handle_packet(&packet, self.t0.elapsed());
                true
            }
            _ => {
                self.malformed += 1;
                false
            }
        }
    }

    /// Writes what the receiver releases: payloads, and silence for gaps.
    fn drain(&mut self, out: &mut Outputs) {
        while let Some(event) = self.receiver.poll() {
            match event {
                Event::Payload(p) => {
                    self.payload_bytes += p.data.len() as u64;
                    out.payload(p.data);
                }
                Event::Gap { samples } => {
                    self.silence_ticks += u64::from(samples);
                    out.gap(u64::from(samples));
                }
                _ => {}
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn report(
    request: &RecordStartRequest,
    started: &UtcTime,
    stop_reason: String,
    files: Vec<PathBuf>,
    stats: &ReceiverStats,
    foreign: u64,
    malformed: u64,
    payload_bytes: u64,
    silence_ticks: u64,
    audio: Duration,
    write_error: Option<String>,
) -> RecordingReport {
    RecordingReport {
        id: request.id.to_string(),
        device: request.device.to_string(),
        local_number: request.local_number.clone(),
        local_name: request.local_name.clone(),
        remote_number: request.remote_number.clone(),
        remote_name: request.remote_name.clone(),
        direction: request.dir.to_string(),
        codec: request.codec.to_string(),
        start: started.rfc3339(),
        stop: UtcTime::now().rfc3339(),
        stop_reason,
        files,
        packets_received: stats.received,
        // RFC 3550 counts duplicates as received; the sidecar does not.
        packets_lost: (stats.expected as i64
            - stats.received.saturating_sub(stats.duplicates) as i64)
            .max(0),
        packets_duplicate: stats.duplicates,
        packets_reordered: stats.reordered,
        packets_late: stats.late,
        packets_foreign: foreign,
        packets_malformed: malformed,
        jitter_ms: f64::from(stats.jitter) / 8.0,
        silence_inserted_ms: silence_ticks / 8,
        payload_bytes,
        audio_ms: audio.as_millis() as u64,
        write_error,
    }
}
