//! SIPREC in the server: callrec-siprec's sans-IO [`Srs`] driven over UDP
//! and TCP on [`Config::sip`](crate::Config::sip), and one task per
//! recording session that receives each stream on its own port through the
//! same media path as a phone call ([`Call`]) and writes them, aligned on
//! arrival, into one multichannel WAV ([`Aligner`]).
//!
//! A session's files and first sidecar exist before its `200 OK` goes out;
//! when they cannot be made, the INVITE gets a `500` instead. A re-INVITE
//! that adds or removes a stream finishes the recording and starts the
//! next one (same Call-ID, a note in both sidecars), since a WAV's channel
//! count is fixed; one that changes the participants updates the sidecar.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use callrec_audio::g711::Law;
use callrec_sip::{Limits, SipMessage, StartLine};
use callrec_siprec::{
    Codec as SipCodec, PortAllocator, RecordedStream, Srs, SrsConfig, SrsEvent, response_to,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::Error;
use crate::LiveFormat;
use crate::admission::Refusal;
use crate::aligner::{Aligner, ChannelCodec, ChannelDecoder};
use crate::allocator::{admit_recording, bind_free_port};
use crate::arrival::{ArrivalClock, recv_stamped};
use crate::call::{Call, CallSettings};
use crate::counters::Counters;
use crate::live::LiveEntry;
use crate::paths::{UtcTime, new_recording_id, recording_stem, with_suffix};
use crate::server::Shared;
use crate::sidecar::{
    Channel, Durability, MAX_NOTES, Participant, Parties, RecordingFile, Sidecar, TimelineNote,
    sha256_of, write_atomically,
};
use callrec_control::Host;

/// How far behind the arrival clock a session's file is written while a
/// stream is silent: the receiver's reorder wait (100 ms) and scheduling,
/// with room.
const ALIGN_LAG: Duration = Duration::from_millis(400);

/// How often a session writes what its streams gave.
const ALIGN_EVERY: Duration = Duration::from_millis(100);

/// How long a write to a TCP peer may wait for it to read.
const TCP_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most datagrams read from one socket when a session ends (what
/// arrived before the end; a flood cannot keep the task reading).
const MAX_DRAIN: usize = 1024;

/// The longest RTP datagram read (as for phone calls).
const MAX_DATAGRAM: usize = 2048;

/// SIP messages waiting between the TCP connections and the SIP task.
const SIP_QUEUE: usize = 1024;

/// Most recordings one session makes (each change of its streams starts
/// the next); a session that changes them more often is ended.
const MAX_RECORDINGS_PER_SESSION: usize = 32;

/// Most channels of one recording (a WAV's limit here).
const MAX_CHANNELS: usize = callrec_audio::wav::MAX_CHANNELS as usize;

/// The SIP sockets, bound.
pub(crate) struct SipSockets {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl SipSockets {
    /// Binds UDP and TCP on `text` (`HOST:PORT`; port 0 takes one free for
    /// both).
    ///
    /// # Errors
    /// [`Error::Bind`] naming the address and transport.
    pub(crate) async fn bind(text: &str) -> Result<Self, Error> {
        let addr = crate::server::resolve(text).await?;
        let fail = |transport: &str, source| Error::Bind {
            addr: format!("{text} ({transport})"),
            source,
        };
        // Port 0: a UDP port whose TCP twin is free too.
        let mut last = None;
        for _ in 0..16 {
            let udp = UdpSocket::bind(addr).await.map_err(|e| fail("UDP", e))?;
            let port = udp.local_addr().map_err(|e| fail("UDP", e))?.port();
            match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
                Ok(tcp) => return Ok(Self { udp, tcp }),
                Err(e) if addr.port() == 0 => last = Some(e),
                Err(e) => return Err(fail("TCP", e)),
            }
        }
        Err(fail(
            "TCP",
            last.unwrap_or_else(|| std::io::Error::other("no free port")),
        ))
    }

    /// The address bound.
    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}

/// What the SIP task tells a session.
enum SessionCommand {
    /// The streams or participants changed; `sockets` are the new streams'.
    Update {
        streams: Vec<RecordedStream>,
        participants: Vec<callrec_siprec::Participant>,
        sockets: Vec<(u16, std::net::UdpSocket)>,
    },
    /// The session is over.
    Stop { reason: String },
}

/// A message from a TCP connection, or its end.
enum Inbound {
    Message {
        from: SocketAddr,
        bytes: Vec<u8>,
        reply: mpsc::Sender<Vec<u8>>,
    },
    Closed {
        from: SocketAddr,
    },
}

/// Hands RTP ports to the SIP side: bound at once, so the answer never
/// names a port another program holds.
struct SipPorts<'a> {
    shared: &'a Shared,
    bound: &'a mut HashMap<u16, std::net::UdpSocket>,
}

impl PortAllocator for SipPorts<'_> {
    fn allocate(&mut self, n: usize) -> Option<Vec<u16>> {
        let mut ports = Vec::with_capacity(n);
        for _ in 0..n {
            match bind_free_port(self.shared) {
                Ok((port, socket)) => {
                    self.bound.insert(port, socket);
                    ports.push(port);
                }
                Err(_) => {
                    Counters::add(&self.shared.counters.refused_no_free_port, 1);
                    self.release(&ports);
                    return None;
                }
            }
        }
        Some(ports)
    }

    fn release(&mut self, ports: &[u16]) {
        let now = Instant::now();
        let mut pool = self.shared.ports();
        for port in ports {
            self.bound.remove(port);
            pool.rest(*port, now);
        }
    }
}

/// Warnings about what senders do, at most [`LOG_BURST`] a second: a
/// flood of bad messages is counted (`sip_refused`), not logged line by
/// line.
struct LogLimiter {
    second: Option<Instant>,
    lines: u32,
    suppressed: u64,
}

/// Warnings logged per second at most.
const LOG_BURST: u32 = 20;

impl LogLimiter {
    /// Whether a warning at `now` is logged: `Some(n)` with the number
    /// suppressed in the second before it (to say so), `None` when it is
    /// suppressed.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        let mut dropped = 0;
        if self
            .second
            .is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1))
        {
            dropped = self.suppressed;
            self.second = Some(now);
            self.lines = 0;
            self.suppressed = 0;
        }
        if self.lines < LOG_BURST {
            self.lines += 1;
            Some(dropped)
        } else {
            self.suppressed += 1;
            None
        }
    }

    fn warn(&mut self, message: core::fmt::Arguments<'_>) {
        match self.admit(Instant::now()) {
            Some(0) => tracing::warn!("{message}"),
            Some(dropped) => {
                tracing::warn!("SIPREC: {dropped} warnings in the last second were not logged");
                tracing::warn!("{message}");
            }
            None => {}
        }
    }
}

/// A session's place in `max_recordings`, given back when dropped: when
/// its task ends, however it ends (a panic too), or when a session that
/// was admitted never starts.
struct AdmissionSlot(Arc<Shared>);

impl Drop for AdmissionSlot {
    fn drop(&mut self) {
        self.0.admission().recording_ended();
    }
}

/// Why a session's task asks the SIP side to end it (with a BYE).
type EndRequest = (String, u64, &'static str);

/// A running session, seen from the SIP task.
struct SessionHandle {
    commands: mpsc::UnboundedSender<SessionCommand>,
    /// Which session of this Call-ID it is: an end request from an
    /// earlier one (the Call-ID reused after a BYE) is ignored.
    generation: u64,
}

/// The SIP task's state.
struct SipTask {
    shared: Arc<Shared>,
    srs: Srs,
    udp: UdpSocket,
    t0: Instant,
    sessions: HashMap<String, SessionHandle>,
    bound: HashMap<u16, std::net::UdpSocket>,
    tcp: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    tasks: JoinSet<()>,
    ended: mpsc::UnboundedSender<EndRequest>,
    next_generation: u64,
    log: LogLimiter,
}

/// The address written into SDP answers: the advertised one, else the SIP
/// socket's, else the control socket's, else loopback (with a warning).
fn media_address(shared: &Shared, sip: SocketAddr) -> IpAddr {
    if let Some(Host::Ip(ip)) = &shared.advertise {
        return *ip;
    }
    for ip in [sip.ip(), shared.bind_ip] {
        if !ip.is_unspecified() {
            return ip;
        }
    }
    tracing::warn!(
        "SIPREC: the SIP and control addresses are unspecified and no advertise address is set; \
         SDP answers say 127.0.0.1"
    );
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// Serves SIPREC on `sockets` until `stop` says so, then ends every
/// session with a BYE and waits until their files are final.
pub(crate) async fn serve_sip(
    shared: Arc<Shared>,
    sockets: SipSockets,
    mut stop: watch::Receiver<bool>,
) {
    let SipSockets { udp, tcp } = sockets;
    let Ok(local) = udp.local_addr() else {
        return;
    };
    let config = &shared.config;
    let media = media_address(&shared, local);
    let sip_address = if local.ip().is_unspecified() {
        SocketAddr::new(media, local.port())
    } else {
        local
    };
    let mut srs_config = SrsConfig::new(sip_address, media);
    srs_config.max_dialogs = config.max_recordings;
    srs_config.max_dialogs_per_address = config.sip_max_sessions_per_address.max(1);
    srs_config.max_message_len = config.sip_max_message_len;
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel();
    let (inbound_tx, mut inbound_rx) = mpsc::channel::<Inbound>(SIP_QUEUE);
    let mut task = SipTask {
        srs: Srs::new(srs_config),
        udp,
        t0: Instant::now(),
        sessions: HashMap::new(),
        bound: HashMap::new(),
        tcp: HashMap::new(),
        tasks: JoinSet::new(),
        ended: ended_tx,
        next_generation: 0,
        shared: shared.clone(),
        log: LogLimiter {
            second: None,
            lines: 0,
            suppressed: 0,
        },
    };
    let mut connections = JoinSet::new();
    let per_address: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let mut buf = vec![0u8; config.sip_max_message_len + 1];
    tracing::info!(%sip_address, %media, "SIPREC: taking recording sessions");
    if config.allow.is_empty() {
        tracing::warn!(
            "SIPREC: every address may open recording sessions; set allow to the PBXs' and SBCs' \
             addresses (a forged INVITE makes files and draws retransmissions to whoever it names)"
        );
    }
    loop {
        let due = task
            .srs
            .poll_timeout()
            .map(|ms| task.t0 + Duration::from_millis(ms));
        tokio::select! {
            received = task.udp.recv_from(&mut buf) => {
                let Ok((n, from)) = received else { continue };
                let bytes = buf[..n].to_vec();
                task.handle(from, &bytes).await;
            }
            accepted = tcp.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                while connections.try_join_next().is_some() {}
                let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                let refusal = if !config.allows(peer.ip()) {
                    Some(format!("{} is not allowed", peer.ip()))
                } else if connections.len() >= config.sip_max_connections {
                    Some(format!("{} connections open (sip_max_connections)", connections.len()))
                } else {
                    let mut open = per_address.lock().unwrap_or_else(|e| e.into_inner());
                    let n = open.entry(peer.ip()).or_default();
                    if *n >= config.sip_max_connections_per_address {
                        Some(format!("{n} connections open from {} (sip_max_connections_per_address)", peer.ip()))
                    } else {
                        *n += 1;
                        None
                    }
                };
                if let Some(reason) = refusal {
                    Counters::add(&shared.counters.sip_refused, 1);
                    task.log.warn(format_args!("SIPREC: TCP connection from {peer} refused: {reason}"));
                    continue;
                }
                let per_address = per_address.clone();
                let idle = Duration::from_secs(config.sip_idle_timeout_secs.max(1));
                let (inbound, max_len) = (inbound_tx.clone(), config.sip_max_message_len);
                connections.spawn(async move {
                    tcp_connection(stream, peer, inbound, max_len, idle).await;
                    let mut open = per_address.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(n) = open.get_mut(&peer.ip()) {
                        *n -= 1;
                        if *n == 0 {
                            open.remove(&peer.ip());
                        }
                    }
                });
            }
            Some(inbound) = inbound_rx.recv() => match inbound {
                Inbound::Message { from, bytes, reply } => {
                    task.tcp.insert(from, reply);
                    task.handle(from, &bytes).await;
                }
                Inbound::Closed { from } => {
                    task.tcp.remove(&from);
                }
            },
            Some((call_id, generation, reason)) = ended_rx.recv() => {
                if task.sessions.get(&call_id).is_some_and(|s| s.generation == generation) {
                    let mut ports = SipPorts { shared: &shared, bound: &mut task.bound };
                    let events = task.srs.end(&call_id, reason, &mut ports);
                    task.process(events).await;
                }
            }
            () = sleep_until_opt(due) => {
                let now = task.now_ms();
                let mut ports = SipPorts { shared: &shared, bound: &mut task.bound };
                let events = task.srs.handle_timeout(now, &mut ports);
                task.process(events).await;
            }
            _ = stop.changed() => break,
        }
        while task.tasks.try_join_next().is_some() {}
    }
    let mut ports = SipPorts {
        shared: &shared,
        bound: &mut task.bound,
    };
    let events = task.srs.shutdown(&mut ports);
    task.process(events).await;
    connections.abort_all();
    while task.tasks.join_next().await.is_some() {}
}

/// One TCP connection: messages framed by Content-Length go to the SIP
/// task; what it answers is written back.
async fn tcp_connection(
    stream: TcpStream,
    peer: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    max_len: usize,
    idle: Duration,
) {
    let (mut reader, mut writer) = stream.into_split();
    let (reply_tx, mut reply_rx) = mpsc::channel::<Vec<u8>>(64);
    // A peer that does not read what it is sent is closed: a write
    // waits at most this long.
    let write = async move {
        while let Some(bytes) = reply_rx.recv().await {
            match tokio::time::timeout(TCP_WRITE_TIMEOUT, writer.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
    };
    let read = async {
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 16 << 10];
        // Only whole messages and keep-alives count as activity: a peer
        // that trickles a message byte by byte is closed all the same.
        let mut active_until = tokio::time::Instant::now() + idle;
        loop {
            loop {
                match callrec_sip::frame::next_frame(&buf, max_len) {
                    Ok(callrec_sip::frame::Frame::KeepAlive { len, ping }) => {
                        buf.drain(..len);
                        active_until = tokio::time::Instant::now() + idle;
                        // Never waits on the peer: a pong that does not fit
                        // (the peer reads nothing) closes the connection.
                        if ping && reply_tx.try_send(b"\r\n".to_vec()).is_err() {
                            return;
                        }
                    }
                    Ok(callrec_sip::frame::Frame::Message { len }) => {
                        active_until = tokio::time::Instant::now() + idle;
                        let bytes: Vec<u8> = buf.drain(..len).collect();
                        let message = Inbound::Message {
                            from: peer,
                            bytes,
                            reply: reply_tx.clone(),
                        };
                        if inbound.send(message).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => break,
                    Err(e) => {
                        tracing::debug!(%peer, "SIPREC: closing the TCP connection: {e}");
                        return;
                    }
                }
            }
            match tokio::time::timeout_at(active_until, reader.read(&mut chunk)).await {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Err(_) => {
                    tracing::info!(%peer, "SIPREC: closing an idle TCP connection");
                    return;
                }
            }
        }
    };
    tokio::select! {
        () = read => {}
        () = write => {}
    }
    let _ = inbound.send(Inbound::Closed { from: peer }).await;
}

impl SipTask {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One SIP message from `from`: a new session is admitted (limits,
    /// `allow`, free space, the index) before the SIP side sees it, and its
    /// files made before its `200` goes out.
    async fn handle(&mut self, from: SocketAddr, bytes: &[u8]) {
        let shared = self.shared.clone();
        Counters::add(&shared.counters.sip_messages, 1);
        let limits = Limits::default().max_message_len(shared.config.sip_max_message_len);
        let parsed = SipMessage::parse_with(bytes, limits).ok();
        let new_invite = parsed.as_ref().and_then(|m| {
            let StartLine::Request { method, .. } = m.start_line() else {
                return None;
            };
            let call_id = String::from_utf8_lossy(m.call_id()?).into_owned();
            (method == "INVITE" && m.to_tag().is_none() && !self.sessions.contains_key(&call_id))
                .then_some(call_id)
        });
        let mut admitted = None;
        if let (Some(call_id), Some(message)) = (&new_invite, &parsed) {
            match self.admit(from) {
                Ok(()) => admitted = Some(AdmissionSlot(shared.clone())),
                Err(refusal) => {
                    let reason = refusal.rejection().to_string();
                    Counters::add(&shared.counters.sip_refused, 1);
                    self.log.warn(format_args!(
                        "SIPREC: session {call_id:?} from {from} refused: {reason}"
                    ));
                    let (code, phrase) = match refusal {
                        Refusal::NotAllowed(_) => (403, "Forbidden"),
                        _ => (503, "Service Unavailable"),
                    };
                    let tag = format!("{:x}", self.now_ms());
                    let response = response_to(
                        message,
                        code,
                        &format!("{phrase}: {reason}"),
                        &tag,
                        &[("Retry-After", "5")][..usize::from(code == 503)],
                        None,
                    );
                    self.send(from, response).await;
                    return;
                }
            }
        }
        let now = self.now_ms();
        let mut ports = SipPorts {
            shared: &shared,
            bound: &mut self.bound,
        };
        let mut events = self.srs.handle(now, from, bytes, &mut ports);
        // A new session's files first: when they cannot be made, the
        // INVITE is answered 500 instead of 200. Only the session admitted
        // above may start (its slot goes with it; unused, it is given back
        // when dropped here).
        if let Some(i) = events
            .iter()
            .position(|e| matches!(e, SrsEvent::Start { .. }))
        {
            let SrsEvent::Start {
                call_id,
                streams,
                participants,
            } = events.remove(i)
            else {
                return;
            };
            let slot = admitted
                .take()
                .filter(|_| new_invite.as_ref() == Some(&call_id));
            let started = match slot {
                Some(slot) => self.start(from, &call_id, streams, participants, slot),
                None => Err(format!("session {call_id:?} was not admitted")),
            };
            if let Err(e) = started {
                self.log.warn(format_args!("SIPREC: from {from}: {e}"));
                Counters::add(&shared.counters.refused_cannot_create, 1);
                let mut ports = SipPorts {
                    shared: &shared,
                    bound: &mut self.bound,
                };
                // Ends the dialog (its BYE is not sent: it never began).
                let _ = self.srs.end(&call_id, "cannot record", &mut ports);
                if let Some(message) = &parsed {
                    let tag = format!("{:x}", now);
                    let response = response_to(
                        message,
                        500,
                        &format!("Server Internal Error: {e}"),
                        &tag,
                        &[],
                        None,
                    );
                    self.send(from, response).await;
                }
                events.retain(|e| !matches!(e, SrsEvent::Send { .. }));
            }
        }
        self.process(events).await;
    }

    /// The server's admission of a new session (as of a phone's call);
    /// a refusal also counts in `refused`.
    fn admit(&self, from: SocketAddr) -> Result<(), Refusal> {
        let admitted = admit_recording(&self.shared, from.ip());
        if admitted.is_err() {
            Counters::add(&self.shared.counters.refused, 1);
        }
        admitted
    }

    async fn send(&mut self, to: SocketAddr, message: Vec<u8>) {
        if let Some(tcp) = self.tcp.get(&to) {
            // A connection that cannot keep up loses the message, never
            // the SIP task's time.
            if tcp.try_send(message).is_err() {
                self.tcp.remove(&to);
            }
            return;
        }
        if let Err(e) = self.udp.send_to(&message, to).await {
            tracing::debug!(%to, "SIPREC: cannot send: {e}");
        }
    }

    async fn process(&mut self, events: Vec<SrsEvent>) {
        for event in events {
            match event {
                SrsEvent::Send { to, message } => self.send(to, message).await,
                SrsEvent::Start {
                    call_id,
                    streams,
                    participants,
                } => {
                    // Only from a retransmission race; handled in `handle`.
                    tracing::warn!(call_id, ?streams, ?participants, "SIPREC: unexpected start");
                }
                SrsEvent::Update {
                    call_id,
                    streams,
                    participants,
                } => {
                    let sockets = streams
                        .iter()
                        .filter_map(|s| s.port)
                        .filter_map(|p| self.bound.remove(&p).map(|s| (p, s)))
                        .collect();
                    if let Some(session) = self.sessions.get(&call_id) {
                        let _ = session.commands.send(SessionCommand::Update {
                            streams,
                            participants,
                            sockets,
                        });
                    }
                }
                SrsEvent::Stop { call_id, reason } => {
                    if let Some(session) = self.sessions.remove(&call_id) {
                        let _ = session.commands.send(SessionCommand::Stop {
                            reason: format!("SIPREC session ended: {reason}"),
                        });
                    }
                }
                SrsEvent::Refused { from, reason } => {
                    Counters::add(&self.shared.counters.sip_refused, 1);
                    self.log.warn(format_args!("SIPREC: from {from}: {reason}"));
                }
                _ => {}
            }
        }
    }

    /// Makes a new session's first recording and starts its task.
    fn start(
        &mut self,
        peer: SocketAddr,
        call_id: &str,
        streams: Vec<RecordedStream>,
        participants: Vec<callrec_siprec::Participant>,
        slot: AdmissionSlot,
    ) -> Result<(), String> {
        let sockets: Vec<(u16, std::net::UdpSocket)> = streams
            .iter()
            .filter_map(|s| s.port)
            .filter_map(|p| self.bound.remove(&p).map(|s| (p, s)))
            .collect();
        let shared = self.shared.clone();
        self.next_generation += 1;
        let generation = self.next_generation;
        let session = Session::new(
            shared.clone(),
            call_id,
            peer,
            participants,
            slot,
            generation,
        );
        let segment = session.segment(&streams, Duration::ZERO, None)?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.sessions.insert(
            call_id.to_owned(),
            SessionHandle {
                commands: tx,
                generation,
            },
        );
        let ended = self.ended.clone();
        self.tasks
            .spawn(session.run(segment, streams, sockets, rx, ended));
        Ok(())
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => core::future::pending().await,
    }
}

/// Whether a session's streams can go on in the same recording: the same
/// ports, each with the same codec, audio payload type and sender (a
/// hold, which changes only the direction, or says `c=0.0.0.0`, can; so
/// can an offer that leaves out telephone-event).
fn same_recording(now: &[RecordedStream], before: &[RecordedStream]) -> bool {
    type Key = (u16, Option<(SipCodec, u8)>, Option<IpAddr>);
    let recorded = |s: &[RecordedStream]| -> Vec<Key> {
        s.iter()
            .filter_map(|s| {
                let port = s.port?;
                let source = s.source.map(|a| a.ip()).filter(|ip| !ip.is_unspecified());
                Some((port, s.choice.map(|c| (c.codec, c.payload_type)), source))
            })
            .collect()
    };
    let (now, before) = (recorded(now), recorded(before));
    now.len() == before.len()
        && now.iter().zip(&before).all(|(a, b)| {
            a.0 == b.0 && a.1 == b.1 && (a.2.is_none() || b.2.is_none() || a.2 == b.2)
        })
}

/// The sidecar's participants.
fn participants_of(participants: &[callrec_siprec::Participant]) -> Vec<Participant> {
    participants
        .iter()
        .map(|p| Participant {
            aor: p.aor.clone().unwrap_or_else(|| p.id.clone()),
            name: p.name.clone().unwrap_or_default(),
        })
        .collect()
}

/// The first two participants as a phone call's parties (what the index
/// searches by number).
fn parties_of(participants: &[Participant]) -> Parties {
    let get = |i: usize| participants.get(i);
    Parties {
        local_number: get(0).map(|p| p.number().to_owned()).unwrap_or_default(),
        local_name: get(0).map(|p| p.name.clone()).unwrap_or_default(),
        remote_number: get(1).map(|p| p.number().to_owned()).unwrap_or_default(),
        remote_name: get(1).map(|p| p.name.clone()).unwrap_or_default(),
    }
}

fn channel_codec(codec: SipCodec) -> (ChannelCodec, &'static str) {
    match codec {
        SipCodec::Pcmu => (ChannelCodec::G711(Law::Ulaw), "PCMU"),
        SipCodec::G722 => (ChannelCodec::G722, "G722"),
        _ => (ChannelCodec::G711(Law::Alaw), "PCMA"),
    }
}

/// One recording session's state in its task.
struct Session {
    shared: Arc<Shared>,
    call_id: String,
    peer: SocketAddr,
    participants: Vec<Participant>,
    _slot: AdmissionSlot,
    generation: u64,
}

/// One stream of a segment: its port and media path.
struct Lane {
    port: u16,
    call: Call<ChannelDecoder>,
}

/// One recording of a session (a session's streams changing starts the
/// next).
struct Segment {
    /// Where on the session's clock it started.
    offset: Duration,
    sidecar: Sidecar,
    sidecar_path: PathBuf,
    wav_path: PathBuf,
    aligner: Aligner<BufWriter<File>>,
    lanes: Vec<Lane>,
    rate: u64,
    /// The recording's live feed; ended with the recording.
    live: Option<LiveEntry>,
}

impl Session {
    fn new(
        shared: Arc<Shared>,
        call_id: &str,
        peer: SocketAddr,
        participants: Vec<callrec_siprec::Participant>,
        slot: AdmissionSlot,
        generation: u64,
    ) -> Self {
        Self {
            shared,
            call_id: call_id.to_owned(),
            peer,
            participants: participants_of(&participants),
            _slot: slot,
            generation,
        }
    }

    /// Creates a recording of `streams` (the ones with a port; at most
    /// eight) starting at `offset` on the session's clock: its WAV and
    /// first sidecar.
    fn segment(
        &self,
        streams: &[RecordedStream],
        offset: Duration,
        follows: Option<&str>,
    ) -> Result<Segment, String> {
        let config = &self.shared.config;
        let recorded: Vec<&RecordedStream> = streams
            .iter()
            .filter(|s| s.port.is_some() && s.choice.is_some())
            .take(MAX_CHANNELS)
            .collect();
        if recorded.is_empty() {
            return Err("no stream to record".into());
        }
        let wideband = recorded
            .iter()
            .any(|s| s.choice.is_some_and(|c| c.codec == SipCodec::G722));
        let rate: u32 = if wideband { 16000 } else { 8000 };
        let started = UtcTime::now();
        let recording_id = new_recording_id();
        let parties = parties_of(&self.participants);
        let mut codecs: Vec<&str> = Vec::new();
        let mut channels = Vec::new();
        let mut lanes = Vec::new();
        for stream in &recorded {
            let (Some(port), Some(choice)) = (stream.port, stream.choice) else {
                continue;
            };
            let (codec, name) = channel_codec(choice.codec);
            if !codecs.contains(&name) {
                codecs.push(name);
            }
            let source_ip = stream
                .source
                .map(|s| s.ip())
                .filter(|ip| !ip.is_unspecified())
                .unwrap_or(self.peer.ip());
            let settings = CallSettings {
                audio_payload_type: choice.payload_type,
                dtmf_payload_type: choice.telephone_event.unwrap_or(config.dtmf_payload_type),
                max_silence: Duration::from_secs(config.max_silence_secs.max(1)),
                source_switch: Duration::from_secs(config.source_switch_secs),
                max_lead: Duration::from_millis(config.max_lead_ms),
            };
            lanes.push(Lane {
                port,
                call: Call::new(
                    settings,
                    source_ip.to_canonical(),
                    Some(ChannelDecoder::new(codec, rate)),
                    Sidecar::default(),
                ),
            });
            channels.push(Channel {
                label: stream.label.clone().unwrap_or_default(),
                participant: stream
                    .sender
                    .as_ref()
                    .map(|p| p.aor.clone().unwrap_or_else(|| p.id.clone()))
                    .unwrap_or_default(),
                codec: name.to_owned(),
                ..Channel::default()
            });
        }
        let n = channels.len();
        let mut sidecar = Sidecar {
            source: "siprec".to_owned(),
            recording_id: recording_id.clone(),
            session_id: self.call_id.clone(),
            codec: codecs.join(","),
            audio_format: format!(
                "PCM 16-bit, {rate} Hz, {n} channel{} (one per stream)",
                if n == 1 { "" } else { "s" }
            ),
            phone_address: self.peer.to_string(),
            start_parties: parties.clone(),
            final_parties: parties.clone(),
            started_at: started.rfc3339(),
            participants: self.participants.clone(),
            channels,
            ..Sidecar::default()
        };
        if let Some(previous) = follows {
            sidecar.timeline.push(TimelineNote {
                offset_ms: 0,
                note: format!(
                    "continues recording {previous}: the session's streams changed (a re-INVITE)"
                ),
            });
        }
        let stem = recording_stem(
            &config.dir,
            "siprec",
            &started,
            "siprec",
            &parties.remote_number,
            &recording_id,
        );
        let parent = stem.parent().unwrap_or(&config.dir).to_owned();
        std::fs::create_dir_all(&parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let wav_path = with_suffix(&stem, "wav");
        let sidecar_path = with_suffix(&stem, "json");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&wav_path)
            .map_err(|e| format!("cannot create {}: {e}", wav_path.display()))?;
        sidecar.files.push(RecordingFile {
            path: wav_path
                .strip_prefix(&config.dir)
                .unwrap_or(&wav_path)
                .to_owned(),
            kind: "wav".into(),
            bytes: None,
            sha256: None,
        });
        let made = Aligner::new(
            BufWriter::new(file),
            rate,
            n as u16,
            Duration::from_millis(config.header_interval_ms.max(20)),
            ALIGN_LAG,
            Duration::from_secs(config.max_silence_secs.max(1)),
        )
        .and_then(|aligner| {
            write_atomically(&sidecar_path, &sidecar, Durability::Atomic)?;
            Ok(aligner)
        });
        let mut aligner = match made {
            Ok(aligner) => aligner,
            Err(e) => {
                let _ = std::fs::remove_file(&wav_path);
                return Err(format!("cannot create the recording: {e}"));
            }
        };
        let format = LiveFormat {
            rate,
            channels: n as u16,
        };
        let (tap, live) = self.shared.live.open(&recording_id, format);
        aligner.listen(tap);
        for observer in &self.shared.observers {
            observer.recording_started(&sidecar);
        }
        Counters::add(&self.shared.counters.recordings_started, 1);
        tracing::info!(
            call_id = self.call_id,
            recording_id,
            channels = n,
            "SIPREC: recording started"
        );
        Ok(Segment {
            offset,
            sidecar,
            sidecar_path,
            wav_path,
            aligner,
            lanes,
            rate: u64::from(rate),
            live: Some(live),
        })
    }

    async fn run(
        mut self,
        mut segment: Segment,
        mut streams: Vec<RecordedStream>,
        sockets: Vec<(u16, std::net::UdpSocket)>,
        mut commands: mpsc::UnboundedReceiver<SessionCommand>,
        ended: mpsc::UnboundedSender<EndRequest>,
    ) {
        let shared = self.shared.clone();
        let config = &shared.config;
        let t0 = Instant::now();
        let mut clock = ArrivalClock::new(t0);
        let mut sockets: Vec<(u16, UdpSocket)> = sockets
            .into_iter()
            .filter_map(|(port, socket)| register(port, socket))
            .collect();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut turn = 0;
        let mut tick = tokio::time::interval(ALIGN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reorder = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(reorder);
        let mut reorder_at: Option<Instant> = None;
        let sidecar_every = Duration::from_secs(config.sidecar_interval_secs.max(1));
        let mut sidecar_at = t0 + sidecar_every;
        // A session whose streams all stay silent this long is ended: a
        // client that vanished without a BYE must not hold a slot forever.
        let idle_limit = Duration::from_secs(config.max_silence_secs.max(1)) * 2;
        let mut last_rtp = Duration::ZERO;
        let mut failed = false;
        let mut segments = 1;
        let reason = loop {
            let wanted = segment
                .lanes
                .iter()
                .filter_map(|l| l.call.poll_timeout())
                .min()
                .map(|d| t0 + segment.offset + d);
            if wanted != reorder_at {
                if let Some(at) = wanted {
                    reorder.as_mut().reset(at.into());
                }
                reorder_at = wanted;
            }
            tokio::select! {
                (port, len, from, stamp) = next_datagram(&sockets, &mut buf, &mut turn), if !sockets.is_empty() => {
                    let arrival = clock.arrival(stamp);
                    // Put back when not the stream's (see recording.rs).
                    let before = segment.aligner.arrived(Some(t0 + arrival));
                    if segment.datagram(port, &buf[..len], from, arrival) {
                        last_rtp = arrival;
                    } else {
                        segment.aligner.arrived(before);
                    }
                }
                () = &mut reorder, if reorder_at.is_some() => {
                    reorder_at = None;
                    segment.timeout(clock.now());
                }
                _ = tick.tick() => {
                    let now = clock.now();
                    segment.aligner.advance(now.saturating_sub(segment.offset));
                    if Instant::now() >= sidecar_at {
                        sidecar_at = Instant::now() + sidecar_every;
                        segment.refresh();
                        if let Err(e) = write_atomically(&segment.sidecar_path, &segment.sidecar, Durability::Atomic) {
                            tracing::warn!(call_id = self.call_id, "{e}");
                        }
                        for observer in &shared.observers {
                            observer.recording_progress(&segment.sidecar);
                        }
                    }
                    if !failed && now.saturating_sub(last_rtp) > idle_limit {
                        failed = true;
                        tracing::warn!(call_id = self.call_id, "SIPREC: no RTP for {} s; ending the session", idle_limit.as_secs());
                        let _ = ended.send((self.call_id.clone(), self.generation, "no RTP"));
                    }
                    if let (false, Some(e)) = (failed, segment.aligner.error()) {
                        failed = true;
                        tracing::error!(call_id = self.call_id, "SIPREC: write error: {e}");
                        let _ = ended.send((self.call_id.clone(), self.generation, "recording failed"));
                    }
                }
                command = commands.recv() => match command {
                    Some(SessionCommand::Update { streams: now_streams, participants, sockets: new_sockets }) => {
                        sockets.extend(new_sockets.into_iter().filter_map(|(port, socket)| register(port, socket)));
                        self.participants = participants_of(&participants);
                        let ports = |s: &[RecordedStream]| -> Vec<u16> { s.iter().filter_map(|s| s.port).collect() };
                        if same_recording(&now_streams, &streams) {
                            segment.participants(&self.participants);
                        } else if segments >= MAX_RECORDINGS_PER_SESSION {
                            // Each change of streams is a new file: a client
                            // that keeps changing them is stopped, not fed.
                            if !failed {
                                failed = true;
                                tracing::warn!(call_id = self.call_id, "SIPREC: the streams changed {segments} times; ending the session");
                                let _ = ended.send((self.call_id.clone(), self.generation, "too many stream changes"));
                            }
                        } else {
                            segments += 1;
                            let offset = clock.now();
                            match self.segment(&now_streams, offset, Some(&segment.sidecar.recording_id)) {
                                Ok(next) => {
                                    let previous = core::mem::replace(&mut segment, next);
                                    let note = format!("the session's streams changed (a re-INVITE); continued in recording {}", segment.sidecar.recording_id);
                                    self.finish(previous, "streams changed".into(), Some(note)).await;
                                }
                                Err(e) => {
                                    tracing::error!(call_id = self.call_id, "SIPREC: {e}");
                                    let _ = ended.send((self.call_id.clone(), self.generation, "recording failed"));
                                }
                            }
                            // Ports no longer in the session stop being read.
                            let kept = ports(&now_streams);
                            sockets.retain(|(port, _)| kept.contains(port));
                        }
                        streams = now_streams;
                    }
                    Some(SessionCommand::Stop { reason }) => break reason,
                    None => break "server shutting down".to_owned(),
                }
            }
        };
        // What waits in the sockets arrived before the end: record it too
        // (through the std sockets: tokio's cached readiness may say
        // nothing waits).
        for (port, socket) in sockets {
            let Ok(socket) = socket.into_std() else {
                continue;
            };
            for _ in 0..MAX_DRAIN {
                let Ok((len, from, stamp)) = recv_stamped(&socket, &mut buf) else {
                    break;
                };
                let arrival = clock.arrival(stamp);
                segment.datagram(port, &buf[..len], from, arrival);
            }
        }
        self.finish(segment, reason, None).await;
    }

    /// Finalizes a recording off the runtime's workers and tells observers.
    async fn finish(&self, mut segment: Segment, reason: String, note: Option<String>) {
        let shared = &self.shared;
        let call_id = self.call_id.clone();
        let live = segment.live.take();
        let live_reason = reason.clone();
        let finished = shared
            .finalizers
            .run(move || segment.finalize(&call_id, reason, note))
            .await;
        let Some(sidecar) = finished else {
            tracing::error!(call_id = self.call_id, "finalizing the recording panicked");
            return;
        };
        for observer in &shared.observers {
            observer.recording_finished(&sidecar);
        }
        if let Some(live) = live {
            live.end(&live_reason);
        }
        Counters::add(&shared.counters.recordings_finished, 1);
        tracing::info!(
            call_id = self.call_id,
            recording_id = sidecar.recording_id,
            duration_ms = sidecar.duration_ms,
            packets = sidecar.packets_received,
            "SIPREC: recording stopped"
        );
    }
}

/// The next datagram on any of a session's sockets: its local port,
/// length, sender and kernel arrival time. The sockets are polled in turn,
/// from a different one each time, so a busy stream cannot starve the
/// others; no task or queue stands between a socket and the session.
async fn next_datagram(
    sockets: &[(u16, UdpSocket)],
    buf: &mut [u8],
    turn: &mut usize,
) -> (u16, usize, SocketAddr, Option<SystemTime>) {
    loop {
        let n = sockets.len();
        let ready = core::future::poll_fn(|cx| {
            for k in 0..n {
                let i = (*turn + k) % n;
                if sockets[i].1.poll_recv_ready(cx).is_ready() {
                    return core::task::Poll::Ready(i);
                }
            }
            core::task::Poll::Pending
        })
        .await;
        *turn = ready + 1;
        let (port, socket) = &sockets[ready];
        // A would-block clears the readiness; other errors (an ICMP port
        // unreachable) are the socket's news, not the stream's end.
        if let Ok((len, from, stamp)) =
            socket.try_io(Interest::READABLE, || recv_stamped(socket, buf))
        {
            return (*port, len, from, stamp);
        }
    }
}

/// A std socket registered with the runtime.
fn register(port: u16, socket: std::net::UdpSocket) -> Option<(u16, UdpSocket)> {
    match UdpSocket::from_std(socket) {
        Ok(socket) => Some((port, socket)),
        Err(e) => {
            tracing::error!(port, "SIPREC: cannot register the RTP socket: {e}");
            None
        }
    }
}

impl Segment {
    /// One datagram on `port` at `arrival` (session clock); whether it was
    /// its stream's RTP.
    fn datagram(&mut self, port: u16, data: &[u8], from: SocketAddr, arrival: Duration) -> bool {
        let Some(i) = self.lanes.iter().position(|l| l.port == port) else {
            return false;
        };
        let now = arrival.saturating_sub(self.offset);
        let lane = &mut self.lanes[i];
        let taken = lane.call.handle_datagram(data, from, now);
        if taken {
            self.aligner.heard(i, now);
        }
        self.collect(i);
        taken
    }

    /// Time passed: packets that waited for a hole go out.
    fn timeout(&mut self, now: Duration) {
        let now = now.saturating_sub(self.offset);
        for i in 0..self.lanes.len() {
            let call = &mut self.lanes[i].call;
            if call.poll_timeout().is_some_and(|t| t <= now) {
                call.handle_timeout(now);
                self.collect(i);
            }
        }
    }

    fn collect(&mut self, i: usize) {
        if let Some(decoder) = self.lanes[i].call.media_mut() {
            let pieces = decoder.take();
            if !pieces.is_empty() {
                self.aligner.push(i, pieces);
            }
        }
    }

    /// New participants: the sidecar says so (and which stream each sends
    /// stays as the streams' labels said at the start).
    fn participants(&mut self, participants: &[Participant]) {
        if self.sidecar.participants == participants {
            return;
        }
        self.sidecar.participants = participants.to_vec();
        self.sidecar.final_parties = parties_of(participants);
        if self.sidecar.timeline.len() >= MAX_NOTES {
            self.sidecar.notes_dropped += 1;
            return;
        }
        let offset_ms = self.aligner.written_ms();
        let names: Vec<&str> = participants.iter().map(|p| p.aor.as_str()).collect();
        self.sidecar.timeline.push(TimelineNote {
            offset_ms,
            note: format!("participants changed: {}", names.join(", ")),
        });
    }

    /// The sidecar's numbers as of now.
    fn refresh(&mut self) {
        let mut received = 0;
        let mut lost = 0;
        let mut bytes = 0;
        for (lane, channel) in self.lanes.iter_mut().zip(&mut self.sidecar.channels) {
            let numbers = lane.call.sidecar();
            channel.rtp_source = numbers.rtp_source.clone();
            channel.packets_received = numbers.packets_received;
            channel.packets_lost = numbers.packets_lost;
            channel.jitter_ms = numbers.jitter_ms;
            received += numbers.packets_received;
            lost += numbers.packets_lost;
            bytes += numbers.payload_bytes;
        }
        self.sidecar.packets_received = received;
        self.sidecar.packets_lost = lost;
        self.sidecar.payload_bytes = bytes;
        self.sidecar.duration_ms = self.aligner.written_ms();
        self.sidecar.write_error = self.aligner.error().map(str::to_owned);
    }

    /// Ends the streams, writes what waits, finalizes and hashes the WAV
    /// and writes the final sidecar durably. Blocking.
    fn finalize(mut self, call_id: &str, reason: String, note: Option<String>) -> Sidecar {
        let lanes = core::mem::take(&mut self.lanes);
        let mut sidecar = self.sidecar;
        let mut aligner = self.aligner;
        let mut ends = Vec::new();
        for (i, lane) in lanes.into_iter().enumerate() {
            let (numbers, decoder) = lane.call.end();
            if let Some(mut decoder) = decoder {
                aligner.push(i, decoder.take());
            }
            ends.push(numbers);
        }
        let discontinuities = aligner.discontinuities();
        let file = aligner.finish();
        let rate = self.rate;
        let mut received = 0;
        let mut lost = 0;
        for ((channel, numbers), dropped) in
            sidecar.channels.iter_mut().zip(&ends).zip(&file.dropped)
        {
            channel.rtp_source = numbers.rtp_source.clone();
            channel.packets_received = numbers.packets_received;
            channel.packets_lost = numbers.packets_lost;
            channel.jitter_ms = numbers.jitter_ms;
            channel.dropped_ms = dropped * 1000 / rate;
            received += numbers.packets_received;
            lost += numbers.packets_lost;
            sidecar.packets_foreign += numbers.packets_foreign;
            sidecar.packets_malformed += numbers.packets_malformed;
            sidecar.packets_other_type += numbers.packets_other_type;
            sidecar.packets_duplicate += numbers.packets_duplicate;
            sidecar.packets_reordered += numbers.packets_reordered;
            sidecar.packets_late += numbers.packets_late;
            sidecar.payload_bytes += numbers.payload_bytes;
            sidecar.dtmf.extend(numbers.dtmf.iter().cloned());
        }
        sidecar.packets_received = received;
        sidecar.packets_lost = lost;
        sidecar.duration_ms = file.frames * 1000 / rate;
        sidecar.write_error = file.error;
        if discontinuities > 0 {
            sidecar.timeline.push(TimelineNote {
                offset_ms: sidecar.duration_ms,
                note: format!(
                    "discontinuity: {discontinuities} silence(s) of every stream longer than the longest kept were cut"
                ),
            });
        }
        if let Some(note) = note {
            sidecar.timeline.push(TimelineNote {
                offset_ms: sidecar.duration_ms,
                note,
            });
        }
        drop(file.sink);
        match File::open(&self.wav_path).and_then(sha256_of) {
            Ok((bytes, sha256)) => {
                if let Some(entry) = sidecar.files.first_mut() {
                    entry.bytes = Some(bytes);
                    entry.sha256 = Some(sha256);
                }
            }
            Err(e) => tracing::error!(call_id, "cannot hash {}: {e}", self.wav_path.display()),
        }
        sidecar.stopped_at = Some(UtcTime::now().rfc3339());
        sidecar.stop_reason = Some(reason);
        sidecar.complete = true;
        if let Err(e) = write_atomically(&self.sidecar_path, &sidecar, Durability::Durable) {
            tracing::error!(call_id, "{e}");
        }
        sidecar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_limited_per_second_and_the_rest_counted_on_simulated_time() {
        let t0 = Instant::now();
        let mut log = LogLimiter {
            second: None,
            lines: 0,
            suppressed: 0,
        };
        let logged = (0..1000)
            .filter(|i| log.admit(t0 + Duration::from_micros(*i)).is_some())
            .count();
        assert_eq!(logged, LOG_BURST as usize);
        // The next second's first line says how many were not logged.
        assert_eq!(
            log.admit(t0 + Duration::from_secs(1)),
            Some(1000 - u64::from(LOG_BURST))
        );
        assert_eq!(log.admit(t0 + Duration::from_millis(1500)), Some(0));
    }

    #[test]
    fn numbers_come_from_the_user_part_of_an_aor() {
        let number = |aor: &str| {
            Participant {
                aor: aor.to_owned(),
                name: String::new(),
            }
            .number()
            .to_owned()
        };
        assert_eq!(number("sip:+4930123@example.com"), "+4930123");
        assert_eq!(number("SIPS:alice@example.com;transport=tls"), "alice");
        assert_eq!(number("tel:+1-555-0100"), "+1-555-0100");
        assert_eq!(number("1010"), "1010");
        assert_eq!(number(""), "");
    }
}
