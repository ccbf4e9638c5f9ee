//! Entry points for `fuzz/` (not part of the API): the server's session
//! logic, control messages and RTP interleaved with time, in memory.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::num::NonZeroU16;
use core::time::Duration;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::Instant;

use callrec_audio::wav::WavFile;
use callrec_control::{
    Codec, Host, PortAllocator, RecordStartRequest, Rejection, RtpTarget, ServerConfig,
    ServerEvent, ServerSession, SessionId,
};
use callrec_rtp::RtpPacketBuilder;

use crate::admission::Admission;
use crate::call::{Call, CallSettings, file_codec};
use crate::outputs::Outputs;
use crate::ports::PortPool;
use crate::sidecar::Sidecar;

type MemoryCall = Call<Outputs<Cursor<Vec<u8>>>>;

/// The phone's address; RTP from it is written, from anywhere else never.
const PHONE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66));
/// Payload bytes from the stranger: must never appear in a file.
const STRANGER_BYTE: u8 = 0x77;
/// The server's default `max_lead_ms`.
const MAX_LEAD: Duration = Duration::from_millis(1000);

/// The server's own settings for a call of `codec`.
fn settings(codec: Codec) -> CallSettings {
    CallSettings::new(&crate::Config::default(), codec)
}

/// Prepares calls in memory through the server's own admission policy and
/// port pool (three recordings and four ports, so both limits and the
/// ports' quarantine are reached).
struct MemoryAllocator {
    started: Instant,
    now: Duration,
    admission: Admission,
    ports: PortPool,
    prepared: BTreeMap<SessionId, (MemoryCall, Duration)>,
    /// The port each session holds.
    held: BTreeMap<SessionId, u16>,
}

impl MemoryAllocator {
    fn new(started: Instant) -> Self {
        let config = crate::Config {
            max_recordings: 3,
            ..crate::Config::default()
        };
        Self {
            started,
            now: Duration::ZERO,
            admission: Admission::new(&config),
            ports: PortPool::new(40000..40004),
            prepared: BTreeMap::new(),
            held: BTreeMap::new(),
        }
    }
}

impl PortAllocator for MemoryAllocator {
    fn allocate(&mut self, request: &RecordStartRequest) -> Result<RtpTarget, Rejection> {
        // What can fail without holding anything first.
        let codec = file_codec(request.codec).map_err(Rejection::Other)?;
        let outputs = Outputs::new(
            codec,
            Some(Cursor::new(Vec::new())),
            None,
            Duration::from_secs(1),
        )
        .map_err(Rejection::Other)?;
        self.admission
            .admit_recording(PHONE, || u64::MAX, || Ok(()))
            .map_err(|refusal| refusal.rejection())?;
        let Some(port) = self.ports.take(self.started + self.now) else {
            self.admission.recording_ended();
            return Err(Rejection::NoFreePort);
        };
        let sidecar = empty_sidecar(request);
        let call = Call::new(settings(request.codec), PHONE, Some(outputs), sidecar);
        self.prepared.insert(request.id.clone(), (call, self.now));
        self.held.insert(request.id.clone(), port);
        let port = NonZeroU16::new(port).unwrap_or(NonZeroU16::MIN);
        Ok(RtpTarget::new(Host::Ip(PHONE), port))
    }

    fn release(&mut self, id: &SessionId, _target: &RtpTarget) {
        if let Some(port) = self.held.remove(id) {
            self.ports.rest(port, self.started + self.now);
            self.admission.recording_ended();
        }
    }
}

fn empty_sidecar(request: &RecordStartRequest) -> Sidecar {
    Sidecar {
        session_id: request.id.to_string(),
        codec: request.codec.to_string(),
        phone_address: PHONE.to_string(),
        ..Sidecar::default()
    }
}

/// A running call: its media path and when it started.
struct Running {
    call: MemoryCall,
    started: Duration,
}

/// Checks one finished call: its audio is never longer than the time it
/// ran (plus the lead and one payload), and nothing from another address is
/// in it.
fn check_finished(running: Running, now: Duration) -> u64 {
    let Running { call, started } = running;
    let (sidecar, sinks) = call.finish();
    let Some(sink) = sinks.into_iter().next() else {
        return 0;
    };
    let bytes = sink.into_inner();
    let Ok(wav) = WavFile::parse(&bytes) else {
        panic!("a finished recording parses strictly");
    };
    let ran = now.saturating_sub(started) + MAX_LEAD + Duration::from_millis(20);
    assert!(
        wav.duration() <= ran,
        "{:?} of audio from a call that ran {:?}",
        wav.duration(),
        ran
    );
    if sidecar.codec != "G722" {
        assert!(
            !wav.data().contains(&STRANGER_BYTE),
            "audio from another address reached the file"
        );
    }
    sidecar.payload_bytes
}

/// Drives a server session and its calls from `data`: control bytes, RTP
/// from the phone or a stranger, time, the end of the connection and
/// server-ended calls, in any order. Checks that nothing panics, that every
/// finished recording parses, is never longer than the call's wall-clock
/// time, and never holds audio from another address. Returns the audio
/// payload bytes the finished recordings hold (so tests can tell a seed
/// reaches the media path).
///
/// Each operation is one byte `op` and its arguments:
/// - `op % 6 == 0`: control bytes, one length byte then that many bytes;
/// - `1`: a canned start request for call `arg % 4` (codec `arg / 4 % 3`);
/// - `2`: an RTP packet: call, sender (phone port 1, phone port 2,
///   stranger), SSRC choice, sequence step, timestamp step, payload type
///   choice, payload length (8 bytes);
/// - `3`: time passes, `arg` × 10 ms;
/// - `4`: a canned stop request for call `arg % 4`;
/// - `5`: the server ends call `arg % 4` itself, or (`arg` ≥ 128) the
///   connection ends.
pub fn check_session(data: &[u8]) -> u64 {
    let started = Instant::now();
    let allocator = MemoryAllocator::new(started);
    let mut session = ServerSession::new(allocator, ServerConfig::default(), started);
    let mut running: BTreeMap<SessionId, Running> = BTreeMap::new();
    let mut now = Duration::ZERO;
    let mut seqs = [0u16; 4];
    let mut stamps = [0u32; 4];
    let mut packet = [0u8; 300];
    let mut rest = data;
    let mut recorded = 0;
    while let [op, tail @ ..] = rest {
        rest = tail;
        match op % 6 {
            0 => {
                let [len, tail @ ..] = rest else { break };
                let n = usize::from(*len).min(tail.len());
                session.handle_data(&tail[..n], started + now);
                rest = &tail[n..];
            }
            1 | 4 => {
                let [arg, tail @ ..] = rest else { break };
                rest = tail;
                let call = arg % 4;
                let line = if op % 6 == 1 {
                    let codec = ["PCMA", "PCMU", "G722"][usize::from(arg / 4 % 3)];
                    format!(
                        "cmd=RecordStartRequest&id=call{call}&device=001565aabbcc&dir=in&codec={codec}\r\n"
                    )
                } else {
                    format!("cmd=RecordStopRequest&id=call{call}&remote_number=99\r\n")
                };
                session.handle_data(line.as_bytes(), started + now);
            }
            2 => {
                let [call, sender, ssrc, seq, ts, pt, len, _, tail @ ..] = rest else {
                    break;
                };
                rest = tail;
                let k = usize::from(call % 4);
                let Ok(id) = SessionId::new(format!("call{k}")) else {
                    continue;
                };
                let Some(target) = running.get_mut(&id) else {
                    continue;
                };
                seqs[k] = seqs[k].wrapping_add(u16::from(*seq % 4));
                stamps[k] = stamps[k].wrapping_add(u32::from(*ts) * 40);
                let (from, fill) = match sender % 3 {
                    0 => (SocketAddr::new(PHONE, 5004), 0x2a),
                    1 => (SocketAddr::new(PHONE, 6004), 0x2b),
                    _ => (SocketAddr::new(STRANGER, 5004), STRANGER_BYTE),
                };
                let payload_type = [8, 0, 9, 101, 13, 96][usize::from(pt % 6)];
                let payload = [fill; 200];
                let written = RtpPacketBuilder::new()
                    .payload_type(payload_type)
                    .ssrc(u32::from(ssrc % 3))
                    .sequence_number(seqs[k])
                    .timestamp(stamps[k])
                    .payload(&payload[..usize::from(*len % 161)])
                    .write(&mut packet);
                if let Ok(n) = written {
                    target
                        .call
                        .handle_datagram(&packet[..n], from, now - target.started);
                }
            }
            3 => {
                let [arg, tail @ ..] = rest else { break };
                rest = tail;
                now += Duration::from_millis(u64::from(*arg) * 10);
                session.handle_timeout(started + now);
                for r in running.values_mut() {
                    r.call.handle_timeout(now - r.started);
                }
            }
            _ => {
                let [arg, tail @ ..] = rest else { break };
                rest = tail;
                if *arg >= 128 {
                    session.handle_eof(started + now);
                } else if let Ok(id) = SessionId::new(format!("call{}", arg % 4)) {
                    if session.end_session(&id, "write error: fuzz", started + now) {
                        if let Some(r) = running.remove(&id) {
                            recorded += check_finished(r, now);
                        }
                    }
                }
            }
        }
        session.allocator_mut().now = now;
        while let Some(event) = session.poll_event() {
            match event {
                ServerEvent::Started { request, .. } => {
                    let prepared = session.allocator_mut().prepared.remove(&request.id);
                    if let Some((call, started_at)) = prepared {
                        running.insert(
                            request.id,
                            Running {
                                call,
                                started: started_at,
                            },
                        );
                    }
                }
                ServerEvent::Stop { request } => {
                    if let Some(r) = running.remove(&request.id) {
                        recorded += check_finished(r, now);
                    }
                }
                ServerEvent::Terminated { id } => {
                    if let Some(r) = running.remove(&id) {
                        recorded += check_finished(r, now);
                    }
                }
                _ => {}
            }
        }
        // Answers are bounded: what the phone sent, answered, drained.
        while let Some(bytes) = session.poll_transmit() {
            assert!(bytes.len() <= 64 * 1024, "{} bytes of answers", bytes.len());
        }
        let allocator = session.allocator();
        assert!(allocator.prepared.is_empty());
        assert_eq!(
            allocator.admission.recordings(),
            allocator.held.len(),
            "every admitted recording holds a port, and only those"
        );
    }
    for (_, r) in core::mem::take(&mut running) {
        recorded += check_finished(r, now);
    }
    recorded
}

/// The callrec-rtp receiver's fuzz check with the server's own receiver
/// settings: output time never exceeds input wall-clock time.
pub fn check_receiver_with_server_settings(data: &[u8]) {
    let settings = settings(Codec::Pcmu);
    let max_gap_ticks = u32::try_from(settings.max_silence.as_secs() * 8000).unwrap_or(u32::MAX);
    callrec_rtp::fuzzing::check_receiver_with(
        settings.receiver_config(),
        MAX_LEAD,
        1500,
        max_gap_ticks,
        data,
    );
}
