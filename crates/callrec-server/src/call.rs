//! One call's media path, sans-IO: source filter → callrec-rtp receiver →
//! transcoder → writers, with the sidecar's numbers. The server feeds it
//! datagrams and the time; tests and the fuzz target feed it the same way.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use callrec_control::Codec;
use callrec_rtp::{Event, Receiver, ReceiverConfig, RtpPacket};

use crate::Config;
use crate::outputs::{Outputs, Sink};

/// Where a call's released media goes: the files of a phone call, or one
/// channel of a SIPREC session.
pub(crate) trait Media {
    /// One payload of the call's codec.
    fn payload(&mut self, data: &[u8]);
    /// `ticks` (8 kHz) of silence.
    fn gap(&mut self, ticks: u64);
    /// The first write error, if any.
    fn error(&self) -> Option<&str>;
}

impl<W: Sink> Media for Outputs<W> {
    fn payload(&mut self, data: &[u8]) {
        Self::payload(self, data);
    }
    fn gap(&mut self, ticks: u64) {
        Self::gap(self, ticks);
    }
    fn error(&self) -> Option<&str> {
        Self::error(self)
    }
}
use crate::sidecar::{DtmfDigit, MAX_NOTES, Sidecar, TimelineNote};

/// RFC 3389 comfort noise, a static payload type.
const COMFORT_NOISE_PT: u8 = 13;

/// The per-call settings taken from the server's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallSettings {
    /// The audio's RTP payload type (8, 0 or 9).
    pub(crate) audio_payload_type: u8,
    /// RFC 4733 telephone-event payload type.
    pub(crate) dtmf_payload_type: u8,
    /// Longest silence kept as real time.
    pub(crate) max_silence: Duration,
    /// How long the source must be silent before another may replace it.
    pub(crate) source_switch: Duration,
    /// How far media time may run ahead of arrival time.
    pub(crate) max_lead: Duration,
}

/// The container's codec for the control protocol's `codec`: both name
/// their codecs by RFC 3551 payload type, the one vocabulary they share.
///
/// # Errors
/// The payload type, when the container has no codec for it.
pub(crate) fn file_codec(codec: Codec) -> Result<callrec_file::Codec, String> {
    let payload_type = codec.payload_type();
    callrec_file::Codec::from_payload_type(payload_type)
        .ok_or_else(|| format!("no recording codec for RTP payload type {payload_type}"))
}

impl CallSettings {
    /// The settings `config` gives a call of `codec`.
    pub(crate) fn new(config: &Config, codec: Codec) -> Self {
        Self {
            audio_payload_type: codec.payload_type(),
            dtmf_payload_type: config.dtmf_payload_type,
            max_silence: Duration::from_secs(config.max_silence_secs.max(1)),
            source_switch: Duration::from_secs(config.source_switch_secs),
            max_lead: Duration::from_millis(config.max_lead_ms),
        }
    }

    /// The receiver configuration the server uses for every call.
    pub(crate) fn receiver_config(&self) -> ReceiverConfig {
        // PCMA, PCMU and G.722 (RFC 3551 §4.5.2) all tick at 8000 Hz.
        ReceiverConfig::new(callrec_file::Codec::Pcma.clock_rate())
            .probation(1)
            .max_gap(self.max_silence)
            .max_lead(Some(self.max_lead))
            .media_payload_type(Some(self.audio_payload_type))
    }
}

/// A sender that may replace a silent source once it proves itself with
/// two packets in sequence.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    from: SocketAddr,
    ssrc: u32,
    next_seq: u16,
}

/// One call's media path.
pub(crate) struct Call<M: Media> {
    settings: CallSettings,
    phone_ip: IpAddr,
    receiver: Receiver,
    outputs: Option<M>,
    sidecar: Sidecar,
    source: Option<(SocketAddr, u32)>,
    source_heard: Duration,
    candidate: Option<Candidate>,
    foreign: u64,
    malformed: u64,
    other_type: u64,
    damaged_extension: u64,
    payload_bytes: u64,
    /// Audio polled out of the receiver so far, in 8 kHz ticks (payloads and
    /// gaps; one tick per byte for all three codecs).
    written_ticks: u64,
    last_dtmf_timestamp: Option<u32>,
    gaps_clamped: u64,
    /// Every datagram read, the call's or not.
    datagrams: u64,
}

impl<M: Media> Call<M> {
    /// A call whose RTP must come from `phone_ip`, written to `outputs`
    /// (`None`: counted only), described by `sidecar`.
    pub(crate) fn new(
        settings: CallSettings,
        phone_ip: IpAddr,
        outputs: Option<M>,
        sidecar: Sidecar,
    ) -> Self {
        Self {
            settings,
            phone_ip,
            receiver: Receiver::new(settings.receiver_config()),
            outputs,
            sidecar,
            source: None,
            source_heard: Duration::ZERO,
            candidate: None,
            foreign: 0,
            malformed: 0,
            other_type: 0,
            damaged_extension: 0,
            payload_bytes: 0,
            written_ticks: 0,
            last_dtmf_timestamp: None,
            gaps_clamped: 0,
            datagrams: 0,
        }
    }

    /// Datagrams read so far, the call's or not.
    pub(crate) fn datagrams(&self) -> u64 {
        self.datagrams
    }

    /// Datagrams from other senders so far.
    pub(crate) fn foreign(&self) -> u64 {
        self.foreign
    }

    /// The first write error, if any: the call cannot go on.
    pub(crate) fn write_error(&self) -> Option<&str> {
        self.outputs.as_ref().and_then(M::error)
    }

    /// Where its media goes.
    pub(crate) fn media_mut(&mut self) -> Option<&mut M> {
        self.outputs.as_mut()
    }

    /// One datagram from `from` at `now` (time since the call started).
    /// Returns whether it was RTP of this call's source.
    pub(crate) fn handle_datagram(&mut self, data: &[u8], from: SocketAddr, now: Duration) -> bool {
        self.datagrams += 1;
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        if from.ip() != self.phone_ip {
            self.foreign += 1;
            return false;
        }
        let Ok(packet) = RtpPacket::parse_lenient(data) else {
            self.malformed += 1;
            return false;
        };
        let pt = packet.payload_type();
        if pt != self.settings.audio_payload_type
            && pt != self.settings.dtmf_payload_type
            && pt != COMFORT_NOISE_PT
        {
            self.other_type += 1;
            return false;
        }
        if !self.admit(from, &packet, now) {
            self.foreign += 1;
            return false;
        }
        if packet.check_elements().is_err() {
            self.damaged_extension += 1;
        }
        self.receiver.handle_packet(&packet, now);
        self.drain();
        true
    }

    /// The source filter: the first packet from the phone's address locks
    /// the call onto its address, port and SSRC. Another sender replaces the
    /// source only after the source was silent for `source_switch`, and only
    /// with two packets in sequence; the change is noted in the sidecar.
    fn admit(&mut self, from: SocketAddr, packet: &RtpPacket<'_>, now: Duration) -> bool {
        let ssrc = packet.ssrc();
        match self.source {
            None => {
                self.lock(from, ssrc, now, None);
                true
            }
            Some(source) if source == (from, ssrc) => {
                self.source_heard = now;
                true
            }
            Some(_) if now.saturating_sub(self.source_heard) < self.settings.source_switch => false,
            Some(old) => {
                let seq = packet.sequence_number();
                let proven = self
                    .candidate
                    .is_some_and(|c| c.from == from && c.ssrc == ssrc && c.next_seq == seq);
                if proven {
                    self.lock(from, ssrc, now, Some(old));
                    true
                } else {
                    self.candidate = Some(Candidate {
                        from,
                        ssrc,
                        next_seq: seq.wrapping_add(1),
                    });
                    false
                }
            }
        }
    }

    fn lock(&mut self, from: SocketAddr, ssrc: u32, now: Duration, old: Option<(SocketAddr, u32)>) {
        let silent = now.saturating_sub(self.source_heard);
        self.source = Some((from, ssrc));
        self.source_heard = now;
        self.candidate = None;
        self.sidecar.rtp_source = Some(from.to_string());
        self.sidecar.rtp_ssrc = Some(ssrc);
        if let Some((old_from, old_ssrc)) = old {
            self.note(format!(
                "RTP source changed from {old_from} SSRC {old_ssrc:#010x} to {from} SSRC \
                 {ssrc:#010x}: the old source was silent for at least {:.1} s",
                silent.as_secs_f64()
            ));
        }
    }

    fn note(&mut self, note: String) {
        if self.sidecar.timeline.len() < MAX_NOTES {
            let offset_ms = self.written_ticks / 8;
            self.sidecar.timeline.push(TimelineNote { offset_ms, note });
        } else {
            self.sidecar.notes_dropped += 1;
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        self.receiver.poll_timeout()
    }

    /// Time has passed: packets waiting for a hole go out.
    pub(crate) fn handle_timeout(&mut self, now: Duration) {
        self.receiver.handle_timeout(now);
        self.drain();
    }

    /// Writes what the receiver releases.
    fn drain(&mut self) {
        let audio_pt = self.settings.audio_payload_type;
        let dtmf_pt = self.settings.dtmf_payload_type;
        let mut digit: Option<(u32, u8, u16)> = None;
        let mut gaps = false;
        while let Some(event) = self.receiver.poll() {
            match event {
                Event::Payload(p) if p.payload_type == audio_pt => {
                    self.payload_bytes += p.data.len() as u64;
                    self.written_ticks += p.data.len() as u64;
                    if let Some(out) = self.outputs.as_mut() {
                        out.payload(p.data);
                    }
                }
                Event::Payload(p) if p.payload_type == dtmf_pt && p.data.len() >= 4 => {
                    // RFC 4733 §2.3: event (8 bits), E R volume (8), duration (16).
                    let duration = u16::from_be_bytes([p.data[2], p.data[3]]);
                    digit = Some((p.timestamp, p.data[0], duration));
                }
                Event::Payload(_) => {}
                Event::Gap { samples } => {
                    gaps = true;
                    self.written_ticks += u64::from(samples);
                    if let Some(out) = self.outputs.as_mut() {
                        out.gap(u64::from(samples));
                    }
                }
                _ => {}
            }
            if let Some((timestamp, event, duration)) = digit.take() {
                self.dtmf(timestamp, event, duration);
            }
        }
        // Only a released gap can have been clamped.
        let clamped = if gaps {
            self.receiver.stats().gaps_clamped
        } else {
            self.gaps_clamped
        };
        if clamped > self.gaps_clamped {
            self.gaps_clamped = clamped;
            let max = self.settings.max_silence.as_secs();
            self.note(format!(
                "discontinuity: a silence longer than {max} s was cut to {max} s"
            ));
        }
    }

    fn dtmf(&mut self, timestamp: u32, event: u8, duration: u16) {
        let duration_ms = u64::from(duration) / 8;
        if self.last_dtmf_timestamp == Some(timestamp) {
            // The same event again (its duration grows, its end repeats).
            if let Some(last) = self.sidecar.dtmf.last_mut() {
                last.duration_ms = last.duration_ms.max(duration_ms);
            }
            return;
        }
        self.last_dtmf_timestamp = Some(timestamp);
        if self.sidecar.dtmf.len() >= MAX_NOTES {
            self.sidecar.notes_dropped += 1;
            return;
        }
        let digit = match event {
            0..=9 => char::from(b'0' + event).to_string(),
            10 => "*".to_owned(),
            11 => "#".to_owned(),
            12..=15 => char::from(b'A' + event - 12).to_string(),
            other => other.to_string(),
        };
        let offset_ms = self.written_ticks / 8;
        self.sidecar.dtmf.push(DtmfDigit {
            digit,
            offset_ms,
            duration_ms,
        });
    }

    /// The sidecar as of now.
    pub(crate) fn sidecar(&mut self) -> &Sidecar {
        let stats = self.receiver.stats();
        let write_error = self.write_error().map(str::to_owned);
        let s = &mut self.sidecar;
        s.packets_received = stats.received;
        // RFC 3550 counts duplicates as received; the sidecar does not.
        s.packets_lost =
            (stats.expected as i64 - stats.received.saturating_sub(stats.duplicates) as i64).max(0);
        s.packets_duplicate = stats.duplicates;
        s.packets_reordered = stats.reordered;
        s.packets_late = stats.late;
        s.packets_foreign = self.foreign + stats.foreign;
        s.packets_malformed = self.malformed;
        s.packets_other_type = self.other_type;
        s.packets_damaged_extension = self.damaged_extension;
        s.packets_events = stats.non_media;
        s.packets_ahead = stats.dropped_ahead;
        s.jitter_ms = f64::from(stats.jitter) / 8.0;
        s.silence_inserted_ms = stats.gap_samples / 8;
        s.payload_bytes = self.payload_bytes;
        s.duration_ms = self.written_ticks / 8;
        s.write_error = write_error;
        &self.sidecar
    }

    /// The stream ends: what waits is released and written. Returns the
    /// sidecar's numbers as of the end and the media.
    pub(crate) fn end(mut self) -> (Sidecar, Option<M>) {
        self.receiver.flush();
        self.drain();
        self.sidecar();
        (self.sidecar, self.outputs)
    }
}

impl<W: Sink> Call<Outputs<W>> {
    /// The stream ends: what waits is released and written, then the files
    /// are finalized. Returns the final sidecar (without stop time and
    /// reason, which the caller knows) and the sinks.
    pub(crate) fn finish(self) -> (Sidecar, Vec<W>) {
        let (mut sidecar, outputs) = self.end();
        let sinks = match outputs {
            Some(outputs) => {
                let finished = outputs.finish();
                sidecar.duration_ms =
                    u64::try_from(finished.duration.as_millis()).unwrap_or(u64::MAX);
                if sidecar.write_error.is_none() {
                    sidecar.write_error = finished.error;
                }
                finished.sinks
            }
            None => Vec::new(),
        };
        (sidecar, sinks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::Sink;
    use std::io::{self, Cursor, Seek, SeekFrom, Write};

    /// A sink that accepts `room` bytes, then fails like a full disk.
    struct FullDisk {
        inner: Cursor<Vec<u8>>,
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let end = self.inner.position() as usize + buf.len();
            if end > self.room {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Seek for FullDisk {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    impl Sink for FullDisk {
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn settings() -> CallSettings {
        CallSettings {
            audio_payload_type: 8,
            dtmf_payload_type: 101,
            max_silence: Duration::from_secs(600),
            source_switch: Duration::from_secs(2),
            max_lead: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_full_disk_stops_writing_and_keeps_what_was_written() {
        let phone: IpAddr = "10.0.0.5".parse().unwrap();
        // Room for the header and a little over one second of A-law.
        let sink = FullDisk {
            inner: Cursor::new(Vec::new()),
            room: 58 + 9000,
        };
        let outputs = Outputs::new(
            callrec_file::Codec::Pcma,
            Some(sink),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        let mut call = Call::new(settings(), phone, Some(outputs), Sidecar::default());
        let mut packet = [0u8; 200];
        let from = SocketAddr::new(phone, 5004);
        for seq in 0..100u16 {
            let n = callrec_rtp::RtpPacketBuilder::new()
                .payload_type(8)
                .sequence_number(seq)
                .timestamp(u32::from(seq) * 160)
                .payload(&[0x55; 160])
                .write(&mut packet)
                .unwrap();
            call.handle_datagram(
                &packet[..n],
                from,
                Duration::from_millis(20 * u64::from(seq)),
            );
        }
        let error = call
            .write_error()
            .expect("the write error is reported")
            .to_owned();
        assert!(error.contains("no space left"), "{error}");
        let (sidecar, sinks) = call.finish();
        assert_eq!(sidecar.write_error.as_deref(), Some(error.as_str()));
        // Finishing rewrote the header in place (no new space needed): the
        // recording parses strictly and holds every whole byte written.
        let Some(FullDisk { inner, .. }) = sinks.into_iter().next() else {
            // `finish` could not hand the sink back: then look no further.
            return;
        };
        let bytes = inner.into_inner();
        let wav = callrec_audio::wav::WavFile::parse(&bytes).unwrap();
        assert!(
            wav.duration() >= Duration::from_secs(1),
            "{:?}",
            wav.duration()
        );
        assert!(wav.data().len() <= 9000);
        assert!(wav.data().iter().all(|&b| b == 0x55));
    }

    /// A call in memory on simulated time: RTP goes in with the time it
    /// arrived, nothing waits on a clock.
    struct SimulatedCall {
        call: Call<Outputs<Cursor<Vec<u8>>>>,
        phone: IpAddr,
    }

    impl SimulatedCall {
        fn new(settings: CallSettings) -> Self {
            let phone: IpAddr = "10.0.0.5".parse().unwrap();
            let outputs = Outputs::new(
                callrec_file::Codec::Pcma,
                Some(Cursor::new(Vec::new())),
                None,
                Duration::from_secs(1),
            )
            .unwrap();
            Self {
                call: Call::new(settings, phone, Some(outputs), Sidecar::default()),
                phone,
            }
        }

        /// Packets `seqs` of `ssrc` from the phone's `port`, all arriving at
        /// `at`, timestamps 160 per sequence number, payload `fill`.
        fn send(
            &mut self,
            port: u16,
            ssrc: u32,
            seqs: core::ops::Range<u16>,
            at: Duration,
            fill: u8,
        ) {
            let mut packet = [0u8; 200];
            for seq in seqs {
                let n = callrec_rtp::RtpPacketBuilder::new()
                    .payload_type(8)
                    .ssrc(ssrc)
                    .sequence_number(seq)
                    .timestamp(u32::from(seq) * 160)
                    .payload(&[fill; 160])
                    .write(&mut packet)
                    .unwrap();
                let from = SocketAddr::new(self.phone, port);
                self.call.handle_datagram(&packet[..n], from, at);
            }
        }

        /// Runs the timers up to `until`, 20 ms at a time.
        fn run_until(&mut self, until: Duration) {
            let mut now = Duration::ZERO;
            while now <= until {
                if self.call.poll_timeout().is_some_and(|t| t <= now) {
                    self.call.handle_timeout(now);
                }
                now += Duration::from_millis(20);
            }
        }

        fn finish(self) -> (Sidecar, Vec<u8>) {
            let (sidecar, sinks) = self.call.finish();
            let bytes = sinks.into_iter().next().unwrap().into_inner();
            let data = callrec_audio::wav::WavFile::parse(&bytes)
                .unwrap()
                .data()
                .to_vec();
            (sidecar, data)
        }
    }

    #[test]
    fn a_hold_is_kept_as_real_time_on_simulated_time() {
        let mut sim = SimulatedCall::new(settings());
        // 10 packets (0.2 s of audio) at once, then the phone holds for
        // 2.5 s and comes back with its timestamps where it left them.
        sim.send(5004, 0x1234, 0..10, Duration::ZERO, 0x55);
        let back = Duration::from_millis(2500);
        sim.send(5004, 0x1234, 10..20, back, 0x66);
        sim.run_until(back + Duration::from_secs(1));
        let (sidecar, data) = sim.finish();
        assert_eq!(sidecar.packets_received, 20);
        assert_eq!(&data[..1600], [0x55; 1600]);
        assert_eq!(&data[data.len() - 1600..], [0x66; 1600]);
        // Real time kept: at least the hold less the 0.2 s already played
        // (2.3 s of A-law), never more than the 2.5 s the phone was away.
        let silence = data.len() - 3200;
        assert!(
            (23 * 800..=25 * 800).contains(&silence),
            "{silence} bytes of silence for a 2.5 s hold"
        );
    }

    #[test]
    fn a_new_source_takes_over_only_after_silence_and_long_silence_is_cut() {
        let mut sim = SimulatedCall::new(CallSettings {
            max_silence: Duration::from_secs(1),
            source_switch: Duration::from_secs(1),
            ..settings()
        });
        sim.send(5004, 1, 0..10, Duration::ZERO, 0x11);
        // Too early: the first source spoke under a second ago.
        sim.send(6004, 2, 100..102, Duration::from_millis(300), 0x99);
        // After 2.5 s of silence the new source proves itself with two
        // packets in sequence and takes over.
        sim.send(6004, 2, 200..210, Duration::from_millis(2500), 0x22);
        sim.run_until(Duration::from_secs(4));
        let (sidecar, data) = sim.finish();
        assert_eq!(sidecar.packets_foreign, 3);
        assert_eq!(sidecar.rtp_ssrc, Some(2));
        assert!(
            !data.contains(&0x99),
            "the early sender never reaches the file"
        );
        let notes: Vec<&str> = sidecar.timeline.iter().map(|n| n.note.as_str()).collect();
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("RTP source changed from 10.0.0.5:5004")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.starts_with("discontinuity")),
            "{notes:?}"
        );
        // 10 + 9 packets, and the silence between them cut to 1 s.
        assert_eq!(data.len(), 19 * 160 + 8000);
    }
}
