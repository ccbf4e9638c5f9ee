//! A simulated IP phone, as a library: one call against a recording server
//! ([`run_call`]: the control session, callrec-control's sans-IO
//! `PhoneSession`, over TCP and the RTP stream, callrec-rtp's `Packetizer`
//! with callrec-audio's encoders, over UDP), or a call recorded on the
//! phone's own drive ([`record_local`]).
//!
//! And a SIPREC recording client, as a PBX or SBC forks calls to a
//! recording server ([`siprec`]).
//!
//! The `phone_sim` and `siprec_sim` examples are flags over it; the
//! end-to-end tests and the load tests import it. Not published.
#![forbid(unsafe_code)]

pub mod listener;
pub mod siprec;

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::time::Instant;

use callrec_audio::g711::Law;
use callrec_audio::g722;
use callrec_audio::mix::{mix_g711, mix_pcm16};
use callrec_control::{
    Codec, Direction, Host, Mac, PhoneEvent, PhoneSession, RecordStartRequest, SessionId,
    StopResult,
};
use callrec_file::{
    CodecName, DirStorage, Header, RecordTime, RecordedFile, Recorder, RecorderConfig,
};
use callrec_rtp::{Packetizer, PacketizerConfig, PayloadFormat};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// 20 ms per packet.
pub const PTIME: Duration = Duration::from_millis(20);

/// Network trouble to inject on the RTP stream, per packet, from a seeded
/// generator (so a test knows exactly what was lost).
#[derive(Debug, Clone, Copy, Default)]
pub struct Impairment {
    /// Probability a packet is not sent.
    pub loss: f64,
    /// Probability a packet is held back and sent after the next one.
    pub reorder: f64,
    /// Probability a packet is sent twice.
    pub duplicate: f64,
    /// The generator's seed.
    pub seed: u64,
}

/// One call.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// The server's control address.
    pub server: SocketAddr,
    /// The session id the phone sends.
    pub id: SessionId,
    /// The phone's MAC address (`device=`).
    pub device: Mac,
    /// The phone's own number.
    pub local_number: String,
    /// The phone's own display name.
    pub local_name: String,
    /// The other party's number.
    pub remote_number: String,
    /// The other party's display name.
    pub remote_name: String,
    /// Incoming or outgoing call.
    pub dir: Direction,
    /// The codec of the RTP stream.
    pub codec: Codec,
    /// PCM at the codec's rate: 8 kHz for G.711, 16 kHz for G.722.
    pub audio: std::sync::Arc<Vec<i16>>,
    /// 1.0 is real time; 0.0 sends as fast as possible.
    pub speed: f64,
    /// Address the RTP socket binds to (default: the control connection's).
    pub rtp_bind: Option<IpAddr>,
    /// Loss, reordering and duplication to inject.
    pub impairment: Impairment,
    /// Drop the control connection after this many packets, without a stop.
    pub disconnect_after: Option<usize>,
}

impl CallOptions {
    /// A call from `device` with empty numbers and names, direction `in`,
    /// paced in real time, no impairment; set the other fields as needed.
    pub fn new(
        server: SocketAddr,
        id: SessionId,
        device: Mac,
        codec: Codec,
        audio: impl Into<std::sync::Arc<Vec<i16>>>,
    ) -> Self {
        Self {
            server,
            id,
            device,
            local_number: String::new(),
            local_name: String::new(),
            remote_number: String::new(),
            remote_name: String::new(),
            dir: Direction::In,
            codec,
            audio: audio.into(),
            speed: 1.0,
            rtp_bind: None,
            impairment: Impairment::default(),
            disconnect_after: None,
        }
    }
}

/// What a call did.
#[derive(Debug, Clone)]
pub struct CallResult {
    /// Where the server said to send RTP.
    pub target: SocketAddr,
    /// From sending the start request to its answer.
    pub start_latency: Duration,
    /// From sending the stop request to its answer, when one was sent.
    pub stop_latency: Option<Duration>,
    /// RTP packets sent (duplicates included, lost ones not).
    pub packets_sent: u64,
    /// Every frame encoded, in order (sent or not).
    pub frames: Vec<Vec<u8>>,
    /// Index of each frame not sent (injected loss).
    pub lost: Vec<usize>,
    /// The server's answer to the stop request, when one was sent.
    pub stop: Option<StopResult>,
    /// When the first RTP packet was due (the wall clock), packet `n`
    /// being due `n` × 20 ms ÷ speed later: what a latency measurement
    /// compares arrival times with.
    pub stream_started: std::time::SystemTime,
}

/// The RTP payload format of `codec`: both name it by its RFC 3551 payload
/// type.
fn payload_format(codec: Codec) -> PayloadFormat {
    PayloadFormat::from_payload_type(codec.payload_type()).unwrap_or(PayloadFormat::G722)
}

/// The G.711 law of `codec`; `None` for G.722.
fn law_of(codec: Codec) -> Option<Law> {
    Law::from_payload_type(codec.payload_type())
}

/// Encodes `audio` into 20 ms frames of `codec` (the last one padded with
/// silence).
pub fn encode_frames(codec: Codec, audio: &[i16]) -> Vec<Vec<u8>> {
    let law = law_of(codec);
    let samples_per_frame = if law.is_some() { 160 } else { 320 };
    let mut encoder = g722::Encoder::new();
    audio
        .chunks(samples_per_frame)
        .map(|chunk| {
            let mut pcm = vec![0i16; samples_per_frame];
            pcm[..chunk.len()].copy_from_slice(chunk);
            let mut frame = vec![0u8; 160];
            match law {
                Some(law) => law.encode(&pcm, &mut frame),
                None => encoder.encode(&pcm, &mut frame),
            };
            frame
        })
        .collect()
}

/// SplitMix64, for reproducible impairments.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

async fn next_event(
    stream: &mut TcpStream,
    phone: &mut PhoneSession,
    buf: &mut [u8],
) -> Result<PhoneEvent, String> {
    loop {
        while let Some(bytes) = phone.poll_transmit() {
            stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
        }
        if let Some(event) = phone.poll_event() {
            return Ok(event);
        }
        let deadline = phone.poll_timeout();
        tokio::select! {
            read = stream.read(buf) => match read {
                Ok(0) => phone.handle_eof(Instant::now()),
                Ok(n) => phone.handle_data(&buf[..n], Instant::now()),
                Err(_) => phone.connection_lost(),
            },
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => core::future::pending().await,
                }
            } => phone.handle_timeout(Instant::now()),
        }
    }
}

async fn send(
    socket: &UdpSocket,
    packet: &[u8],
    to: SocketAddr,
    sent: &mut u64,
) -> Result<(), String> {
    socket
        .send_to(packet, to)
        .await
        .map_err(|e| format!("send to {to}: {e}"))?;
    *sent += 1;
    Ok(())
}

/// Runs one call: start, stream, stop.
pub async fn run_call(opts: CallOptions) -> Result<CallResult, String> {
    let mut stream = TcpStream::connect(opts.server)
        .await
        .map_err(|e| format!("connect {}: {e}", opts.server))?;
    stream.set_nodelay(true).ok();
    let local_ip = stream.local_addr().map_err(|e| e.to_string())?.ip();
    let mut request = RecordStartRequest::new(opts.id.clone(), opts.device, opts.dir, opts.codec);
    request.local_number = opts.local_number.clone();
    request.local_name = opts.local_name.clone();
    request.remote_number = opts.remote_number.clone();
    request.remote_name = opts.remote_name.clone();
    let t_start = Instant::now();
    let mut phone = PhoneSession::new(request, t_start).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let target = match next_event(&mut stream, &mut phone, &mut buf).await? {
        PhoneEvent::Recording { server, port } => {
            let ip = match server {
                Host::Ip(ip) => ip,
                other => return Err(format!("server answered a name ({other}); need an IP")),
            };
            SocketAddr::new(ip, port.get())
        }
        PhoneEvent::Failed { reason } => return Err(format!("start refused: {reason}")),
        other => return Err(format!("start failed: {other:?}")),
    };
    let start_latency = t_start.elapsed();

    let socket = UdpSocket::bind((opts.rtp_bind.unwrap_or(local_ip), 0))
        .await
        .map_err(|e| e.to_string())?;
    let frames = encode_frames(opts.codec, &opts.audio);
    // RFC 3550 §5.1: random SSRC, first sequence number and timestamp.
    let mut packetizer = Packetizer::new(
        PacketizerConfig::new(&payload_format(opts.codec)),
        &mut rand_core::UnwrapErr(rand_core::OsRng),
    );
    let mut impair = Rng(opts.impairment.seed);
    let mut held: Option<Vec<u8>> = None;
    let mut lost = Vec::new();
    let mut sent = 0u64;
    let t_stream = Instant::now();
    let stream_started = std::time::SystemTime::now();
    let mut packet = [0u8; 12 + 160];
    for (n, frame) in frames.iter().enumerate() {
        if opts.disconnect_after == Some(n) {
            drop(stream);
            return Ok(CallResult {
                target,
                start_latency,
                stop_latency: None,
                packets_sent: sent,
                frames,
                lost,
                stop: None,
                stream_started,
            });
        }
        if opts.speed > 0.0 {
            let due = t_stream + PTIME.mul_f64(n as f64 / opts.speed);
            // Wait for the packet's time, watching the control connection:
            // a server that goes away ends the call.
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(due.into()) => break,
                    read = stream.read(&mut buf) => match read {
                        Ok(0) => phone.handle_eof(Instant::now()),
                        Ok(n) => phone.handle_data(&buf[..n], Instant::now()),
                        Err(_) => phone.connection_lost(),
                    },
                }
                if let Some(event) = phone.poll_event() {
                    return Err(format!(
                        "call ended by the server after {sent} packets: {event:?}"
                    ));
                }
            }
        }
        let len = packetizer
            .packetize(frame, 160, &mut packet)
            .map_err(|e| e.to_string())?;
        let bytes = &packet[..len];
        let imp = opts.impairment;
        if imp.loss > 0.0 && impair.unit() < imp.loss {
            lost.push(n);
            continue;
        }
        let copies = if imp.duplicate > 0.0 && impair.unit() < imp.duplicate {
            2
        } else {
            1
        };
        if held.is_none() && imp.reorder > 0.0 && impair.unit() < imp.reorder {
            held = Some(bytes.to_vec());
            continue;
        }
        for _ in 0..copies {
            send(&socket, bytes, target, &mut sent).await?;
        }
        if let Some(late) = held.take() {
            send(&socket, &late, target, &mut sent).await?;
        }
    }
    if let Some(late) = held.take() {
        send(&socket, &late, target, &mut sent).await?;
    }

    let t_stop = Instant::now();
    phone
        .stop("call ended", t_stop)
        .map_err(|e| e.to_string())?;
    let stop = match next_event(&mut stream, &mut phone, &mut buf).await? {
        PhoneEvent::Stopped { result } => result,
        other => return Err(format!("stop failed: {other:?}")),
    };
    Ok(CallResult {
        target,
        start_latency,
        stop_latency: Some(t_stop.elapsed()),
        packets_sent: sent,
        frames,
        lost,
        stop: Some(stop),
        stream_started,
    })
}

/// A local recording, as the phone makes it onto its USB drive.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Where the recording's files go (the phone's USB drive).
    pub dir: std::path::PathBuf,
    /// The codec of the recording.
    pub codec: Codec,
    /// The phone's microphone, PCM at the codec's rate.
    pub local: Vec<i16>,
    /// The far end, PCM at the codec's rate.
    pub remote: Vec<i16>,
    /// Largest file, header included; a longer call continues in a new file.
    pub max_file_size: Option<u64>,
    /// When the user pauses the recording, from its start.
    pub pause_at: Option<Duration>,
    /// When the user resumes it, from its start.
    pub resume_at: Option<Duration>,
    /// Wall-clock time the recording starts (names the first file).
    pub start_unix_seconds: u64,
}

/// Records a call locally with callrec-file's `Recorder`: both directions
/// mixed frame by frame (decode, mix, encode, as the phone does), 20 ms
/// frames, rotation at the size limit, pause and resume.
pub fn record_local(opts: &LocalOptions) -> Result<Vec<RecordedFile>, String> {
    let local = encode_frames(opts.codec, &opts.local);
    let remote = encode_frames(opts.codec, &opts.remote);
    let file_codec = callrec_file::Codec::from_payload_type(opts.codec.payload_type())
        .ok_or_else(|| format!("no recording codec for {}", opts.codec))?;
    let name = CodecName::from(file_codec);
    let header = Header::new(name, 160, 160).map_err(|e| e.to_string())?;
    let mut config = RecorderConfig::new(header);
    if let Some(max) = opts.max_file_size {
        config = config.max_file_size(max);
    }
    std::fs::create_dir_all(&opts.dir).map_err(|e| format!("{}: {e}", opts.dir.display()))?;
    let mut recorder =
        Recorder::new(DirStorage::new(&opts.dir), config).map_err(|e| e.to_string())?;
    let time = RecordTime::from_unix_seconds(opts.start_unix_seconds).map_err(|e| e.to_string())?;
    recorder.start(time).map_err(|e| e.to_string())?;
    let law = law_of(opts.codec);
    let mut decoders = (g722::Decoder::new(), g722::Decoder::new());
    let mut encoder = g722::Encoder::new();
    let frames = local.len().max(remote.len());
    let silence = vec![law.map_or(0, Law::silence); 160];
    let pause_frame = opts.pause_at.map(|t| (t.as_millis() / 20) as usize);
    let resume_frame = opts.resume_at.map(|t| (t.as_millis() / 20) as usize);
    let mut mixed = [0u8; 160];
    for n in 0..frames {
        if Some(n) == pause_frame {
            recorder.pause().map_err(|e| e.to_string())?;
        }
        if Some(n) == resume_frame {
            recorder.resume().map_err(|e| e.to_string())?;
        }
        let a = local.get(n).unwrap_or(&silence);
        let b = remote.get(n).unwrap_or(&silence);
        match law {
            Some(law) => mix_g711(law, &[a, b], &mut mixed).map_err(|e| e.to_string())?,
            None => {
                let (mut pa, mut pb, mut pm) = ([0i16; 320], [0i16; 320], [0i16; 320]);
                decoders.0.decode(a, &mut pa);
                decoders.1.decode(b, &mut pb);
                mix_pcm16(&[&pa, &pb], &mut pm).map_err(|e| e.to_string())?;
                encoder.encode(&pm, &mut mixed);
            }
        }
        // Paused frames are dropped by the recorder itself.
        recorder.write_frame(&mixed).map_err(|e| e.to_string())?;
    }
    recorder.stop().map_err(|e| e.to_string())
}

/// Reads one `\r\n`-terminated control message, byte by byte (nothing
/// after it is consumed).
///
/// # Errors
/// The socket's error, or `UnexpectedEof` when the connection closes first.
pub async fn read_crlf_line(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        out.push(byte[0]);
    }
    String::from_utf8(out).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
