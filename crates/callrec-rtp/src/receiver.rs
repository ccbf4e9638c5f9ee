//! The receiving side for a recorder: source validation, jitter, a bounded
//! reorder buffer, gap measurement and statistics, sans-IO.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::num::NonZeroU32;
use core::time::Duration;

use crate::RtpPacket;

/// RFC 3550 Appendix A.1: a jump of less than this is in-order with loss.
pub const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 Appendix A.1: a step back of at most this is a late packet.
pub const MAX_MISORDER: u16 = 100;
/// RFC 3550 Appendix A.1: sequential packets needed to accept a source.
pub const MIN_SEQUENTIAL: u8 = 2;

const RTP_SEQ_MOD: u32 = 1 << 16;

/// How a [`Receiver`] behaves. Every bound on memory is here.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverConfig {
    clock_rate: NonZeroU32,
    reorder_packets: usize,
    reorder_delay: Duration,
    max_payload_len: usize,
    probation: u8,
    max_gap: Duration,
    ticks_for_payload: fn(&[u8]) -> u32,
    media_payload_type: Option<u8>,
    timestamp_tolerance: Option<Duration>,
    pause_tolerance: Option<Duration>,
    max_lead: Option<Duration>,
}

impl ReceiverConfig {
    /// Defaults for `clock_rate`: a 16-packet / 100 ms reorder buffer,
    /// 1500-byte payloads, probation of [`MIN_SEQUENTIAL`] packets, gaps of
    /// at most 10 minutes, one RTP tick per payload byte (G.711 and
    /// G.722 at 64 kbit/s), every payload type counted as media, timestamp
    /// jumps checked against arrival times with a 200 ms tolerance, pauses
    /// with a 1 s tolerance, and media time at most 500 ms ahead of arrival
    /// time.
    pub fn new(clock_rate: NonZeroU32) -> Self {
        Self {
            clock_rate,
            reorder_packets: 16,
            reorder_delay: Duration::from_millis(100),
            max_payload_len: 1500,
            probation: MIN_SEQUENTIAL,
            max_gap: Duration::from_secs(600),
            ticks_for_payload: |payload| payload.len() as u32,
            media_payload_type: None,
            timestamp_tolerance: Some(Duration::from_millis(200)),
            pause_tolerance: Some(Duration::from_secs(1)),
            max_lead: Some(Duration::from_millis(500)),
        }
    }

    /// The payload type of the audio (default `None`: every packet is
    /// audio). Packets of other types from the same source (RFC 4733
    /// telephone-events, RFC 3389 comfort noise) are released in order like
    /// audio, but last no time themselves: the gap before the next audio
    /// packet covers them, so they keep real time as silence and never count
    /// as loss.
    #[must_use]
    pub fn media_payload_type(mut self, payload_type: Option<u8>) -> Self {
        self.media_payload_type = payload_type;
        self
    }

    /// How far a gap measured from RTP timestamps may exceed the one the
    /// packets' arrival times show before arrival times win (default 200 ms;
    /// `None`: timestamps alone). A timestamp that jumps ahead of real time
    /// (a restarted or hostile clock) is not taken as silence.
    #[must_use]
    pub fn timestamp_tolerance(mut self, tolerance: Option<Duration>) -> Self {
        self.timestamp_tolerance = tolerance;
        self
    }

    /// How far a pause in arrival may exceed the gap the timestamps say
    /// before arrival times win (default 1 s; `None`: timestamps alone). A
    /// hold during which the phone's clock stood still keeps its real
    /// length; network and scheduling jitter below this changes nothing.
    #[must_use]
    pub fn pause_tolerance(mut self, tolerance: Option<Duration>) -> Self {
        self.pause_tolerance = tolerance;
        self
    }

    /// How far the media time released may run ahead of the arrival clock
    /// (default 500 ms; `None`: no limit). Arrival times are durations since
    /// the stream's epoch, for a recorder the moment the call started, so no
    /// input can make the output longer than the call so far plus this:
    /// gaps are shortened, then payloads dropped (counted in
    /// [`ReceiverStats::dropped_ahead`]).
    #[must_use]
    pub fn max_lead(mut self, lead: Option<Duration>) -> Self {
        self.max_lead = lead;
        self
    }

    /// Reorder depth in packets (1..=1024): a packet this far ahead of a hole
    /// gives up on the hole.
    #[must_use]
    pub fn reorder_packets(mut self, n: usize) -> Self {
        self.reorder_packets = n.clamp(1, 1024);
        self
    }

    /// Reorder depth in time: a packet waits at most this long for a hole
    /// before it to fill (needs [`Receiver::handle_timeout`]).
    #[must_use]
    pub fn reorder_delay(mut self, delay: Duration) -> Self {
        self.reorder_delay = delay;
        self
    }

    /// Largest payload kept (larger packets are counted and dropped).
    #[must_use]
    pub fn max_payload_len(mut self, len: usize) -> Self {
        self.max_payload_len = len;
        self
    }

    /// Sequential packets needed before a new source (or a new SSRC) is
    /// accepted; 1 accepts the first packet. At most 8.
    #[must_use]
    pub fn probation(mut self, packets: u8) -> Self {
        self.probation = packets.clamp(1, 8);
        self
    }

    /// Longest gap reported; a larger timestamp jump is clamped to it (a
    /// hostile or broken sender must not make the recorder write hours of
    /// silence).
    #[must_use]
    pub fn max_gap(mut self, gap: Duration) -> Self {
        self.max_gap = gap;
        self
    }

    /// RTP ticks a payload lasts, for codecs that are not one tick per byte
    /// (for example L16 mono: `|p| (p.len() / 2) as u32`).
    #[must_use]
    pub fn ticks_for_payload(mut self, f: fn(&[u8]) -> u32) -> Self {
        self.ticks_for_payload = f;
        self
    }

    /// The durations in clock ticks, for the packet path.
    fn ticks(&self) -> Ticks {
        let rate = self.clock_rate;
        Ticks {
            max_gap: duration_to_ticks(self.max_gap, rate),
            timestamp_tolerance: self.timestamp_tolerance.map(|t| duration_to_ticks(t, rate)),
            pause_tolerance: self.pause_tolerance.map(|t| duration_to_ticks(t, rate)),
            max_lead: self.max_lead.map(|t| duration_to_ticks_u64(t, rate)),
        }
    }
}

/// A [`ReceiverConfig`]'s durations converted to clock ticks once.
#[derive(Debug, Clone, Copy)]
struct Ticks {
    max_gap: u32,
    timestamp_tolerance: Option<u32>,
    pause_tolerance: Option<u32>,
    max_lead: Option<u64>,
}

fn duration_to_ticks(d: Duration, rate: NonZeroU32) -> u32 {
    u32::try_from(duration_to_ticks_u64(d, rate)).unwrap_or(u32::MAX)
}

fn duration_to_ticks_u64(d: Duration, rate: NonZeroU32) -> u64 {
    let ticks = d.as_nanos() * u128::from(rate.get()) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// A payload released in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedPayload<'a> {
    /// SSRC of the source.
    pub ssrc: u32,
    /// RTP sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// M bit.
    pub marker: bool,
    /// Payload type.
    pub payload_type: u8,
    /// The payload.
    pub data: &'a [u8],
}

/// What the receiver reports, in playout order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The next payload.
    Payload(ReceivedPayload<'a>),
    /// Media time with no payload before the next one (loss or silence
    /// suppression): insert this many ticks of silence to keep real time.
    Gap {
        /// RTP clock ticks.
        samples: u32,
    },
    /// The stream's SSRC changed (the phone restarted its stream). The
    /// timeline goes on; the gap across the change is measured from arrival
    /// times, since the timestamps of two sources are unrelated.
    SsrcChanged {
        /// The previous SSRC.
        old: u32,
        /// The new SSRC.
        new: u32,
    },
}

/// Counters, in RTCP receiver-report terms plus the receiver's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReceiverStats {
    /// SSRC of the current source (0 before one is accepted).
    pub ssrc: u32,
    /// Extended highest sequence number received (cycles in the high 16 bits).
    pub extended_highest_sequence: u32,
    /// Packets expected from the current source (RFC 3550 A.3).
    pub expected: u64,
    /// Packets received from the current source, duplicates included, as
    /// RFC 3550 A.3 counts them.
    pub received: u64,
    /// `expected − received` (may be negative with duplicates).
    pub cumulative_lost: i64,
    /// Interarrival jitter in RTP ticks (RFC 3550 A.8).
    pub jitter: u32,
    /// Payloads released.
    pub released: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Packets that arrived after a later sequence number (then released in
    /// order).
    pub reordered: u64,
    /// Packets that arrived after their place was given up, dropped.
    pub late: u64,
    /// Packets refused by source validation (probation, large jumps).
    pub invalid: u64,
    /// Packets from another SSRC that did not (yet) replace the source.
    pub foreign: u64,
    /// Packets with a payload over the configured limit.
    pub oversize: u64,
    /// Total ticks reported in [`Event::Gap`].
    pub gap_samples: u64,
    /// Gaps that were clamped to the configured maximum.
    pub gaps_clamped: u64,
    /// Gaps from timestamps shortened to what arrival times allow (a
    /// timestamp jump ahead of real time).
    pub gaps_shortened: u64,
    /// Gaps lengthened to what arrival times show (a pause longer than the
    /// timestamps say).
    pub gaps_lengthened: u64,
    /// Payloads dropped because media time ran more than the configured
    /// lead ahead of arrival time.
    pub dropped_ahead: u64,
    /// Payloads of a type other than the media payload type released (RFC
    /// 4733 events, comfort noise).
    pub non_media: u64,
    /// SSRC changes.
    pub ssrc_changes: u64,
    /// Restarts of the source's sequence numbering accepted (RFC 3550 A.1:
    /// two sequential packets after a very large jump).
    pub resyncs: u64,
    /// Outputs dropped because [`Receiver::poll`] was not called.
    pub overflow: u64,
}

/// An RTCP reception report block's numbers (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceptionReport {
    /// SSRC of the source reported on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, clamped to the 24-bit signed field.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in RTP ticks.
    pub jitter: u32,
}

/// RFC 3550 Appendix A.1 per-source state, kept exactly as specified.
#[derive(Debug, Clone)]
struct SeqState {
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
}

/// What A.1 says about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqVerdict {
    Valid,
    /// The sender restarted its sequence numbers: accepted, state reset.
    Resync,
    Invalid,
}

impl SeqState {
    fn new(seq: u16) -> Self {
        // init_seq()
        Self {
            max_seq: seq,
            cycles: 0,
            base_seq: u32::from(seq),
            bad_seq: RTP_SEQ_MOD + 1,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
        }
    }

    /// update_seq() without the probation part (done before a source exists).
    fn update(&mut self, seq: u16) -> SeqVerdict {
        let udelta = seq.wrapping_sub(self.max_seq);
        let mut verdict = SeqVerdict::Valid;
        if udelta < MAX_DROPOUT {
            // "in order, with permissible gap"
            if seq < self.max_seq {
                // "Sequence number wrapped - count another 64K cycle."
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // "the sequence number made a very large jump"
            if u32::from(seq) == self.bad_seq {
                // "Two sequential packets -- assume that the other side
                // restarted without telling us so just re-sync"
                *self = Self::new(seq);
                verdict = SeqVerdict::Resync;
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SeqVerdict::Invalid;
            }
        }
        // else: "duplicate or reordered packet"
        self.received += 1;
        verdict
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    fn expected(&self) -> u64 {
        u64::from(self.cycles) + u64::from(self.max_seq) + 1 - u64::from(self.base_seq)
    }
}

/// A packet waiting in the reorder buffer, or queued for output.
#[derive(Debug)]
struct Held {
    index: i64,
    sequence_number: u16,
    timestamp: u32,
    marker: bool,
    payload_type: u8,
    arrival: Duration,
    payload: Vec<u8>,
}

#[derive(Debug)]
enum Output {
    Payload { ssrc: u32, held: Held },
    Gap(u32),
    SsrcChanged { old: u32, new: u32 },
}

/// The accepted source.
#[derive(Debug)]
struct Source {
    ssrc: u32,
    seq: SeqState,
    /// Reorder index of the highest packet so far and its sequence number:
    /// a monotonic numbering that survives resyncs (A.1's own restarts).
    top_index: i64,
    top_seq: u16,
    /// A.8 state: previous transit time and jitter × 16.
    transit: Option<i64>,
    jitter16: u32,
}

/// A new SSRC on probation. Kept (and its buffer reused) between
/// candidates, so a sender that never passes probation causes no
/// allocation.
#[derive(Debug, Default)]
struct Candidate {
    ssrc: Option<u32>,
    next_seq: u16,
    held: Vec<Held>,
}

/// The last payload released: where the timeline stands.
#[derive(Debug, Clone, Copy)]
struct Playout {
    timestamp: u32,
    ticks: u32,
    arrival: Duration,
}

/// The receiving end of one RTP stream, for a recorder, without sockets or
/// clocks: feed it packets with their arrival time, then
/// [`poll`](Self::poll) payloads and gaps in playout order until `None`.
///
/// - RFC 3550 Appendix A.1 source validation (probation, `MAX_DROPOUT`,
///   `MAX_MISORDER`, 32-bit extended sequence numbers) and A.8 jitter.
/// - A reorder buffer bounded in packets and in time; duplicates and late
///   packets are counted and dropped.
/// - Gaps (loss, silence suppression) measured from RTP timestamps and
///   reported as [`Event::Gap`], so the recording keeps real time.
/// - SSRC change: a new SSRC must pass probation; then the old source's
///   buffer is flushed, [`Event::SsrcChanged`] is reported, and the gap
///   across the change is measured from arrival times.
///
/// Memory is bounded by the configuration whatever the input: the reorder
/// ring, the probation hold and the output queue each hold a fixed number
/// of payloads of at most `max_payload_len` bytes, in buffers that are
/// reused (no allocation per packet in steady state).
///
/// ```
/// use callrec_rtp::{Event, Receiver, ReceiverConfig, RtpPacket, RtpPacketBuilder};
/// use core::time::Duration;
///
/// let mut rx = Receiver::new(ReceiverConfig::new(8000.try_into()?).probation(1));
/// let mut buf = [0u8; 200];
/// // Packets 0, 2, 1 (reordered); 3 lost; 4.
/// for (i, seq) in [0u16, 2, 1, 4].into_iter().enumerate() {
///     let n = RtpPacketBuilder::new().payload_type(8).ssrc(7)
///         .sequence_number(seq).timestamp(u32::from(seq) * 160)
///         .payload(&[seq as u8; 160]).write(&mut buf)?;
///     rx.handle_packet(&RtpPacket::parse(&buf[..n])?, Duration::from_millis(20 * i as u64));
/// }
/// rx.flush();
/// let mut out = Vec::new();
/// while let Some(e) = rx.poll() {
///     out.push(match e {
///         Event::Payload(p) => format!("p{}", p.sequence_number),
///         Event::Gap { samples } => format!("gap{samples}"),
///         _ => unreachable!(),
///     });
/// }
/// assert_eq!(out, ["p0", "p1", "p2", "gap160", "p4"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Receiver {
    config: ReceiverConfig,
    ticks: Ticks,
    source: Option<Source>,
    candidate: Candidate,
    /// Waiting packets, slot `index % reorder_packets`.
    ring: Vec<Option<Held>>,
    waiting: usize,
    /// Reorder index of the next payload to release.
    next_index: i64,
    /// Bit i set: index `next_index - 1 - i` was released (duplicate check).
    released_bits: u128,
    playout: Option<Playout>,
    /// The last SSRC released, for the gap across an SSRC change.
    previous_ssrc: Option<u32>,
    /// Ticks released since the epoch (gaps and payloads): the wall-clock
    /// bound.
    released_ticks: u64,
    out: VecDeque<Output>,
    /// The output last handed out by `poll`, alive while its borrow is.
    current: Option<Output>,
    pool: Vec<Vec<u8>>,
    stats: ReceiverStats,
}

impl Receiver {
    /// A receiver with no source yet.
    pub fn new(config: ReceiverConfig) -> Self {
        let depth = config.reorder_packets;
        Self {
            config,
            ticks: config.ticks(),
            source: None,
            candidate: Candidate {
                ssrc: None,
                next_seq: 0,
                held: Vec::with_capacity(usize::from(config.probation)),
            },
            ring: (0..depth).map(|_| None).collect(),
            waiting: 0,
            next_index: 0,
            released_bits: 0,
            playout: None,
            previous_ssrc: None,
            released_ticks: 0,
            out: VecDeque::with_capacity(2 * depth + 4),
            current: None,
            pool: Vec::new(),
            stats: ReceiverStats::default(),
        }
    }

    fn output_limit(&self) -> usize {
        4 * self.config.reorder_packets + 16
    }

    /// One received packet and when it arrived (any monotonic clock, as a
    /// duration since a fixed epoch).
    pub fn handle_packet(&mut self, packet: &RtpPacket<'_>, arrival: Duration) {
        if packet.payload().len() > self.config.max_payload_len {
            self.stats.oversize += 1;
            return;
        }
        let held = self.hold(packet, arrival);
        match &self.source {
            Some(source) if source.ssrc == packet.ssrc() => self.accept(held),
            _ => self.probation(packet.ssrc(), held),
        }
    }

    /// Copies a packet into a pooled buffer.
    fn hold(&mut self, packet: &RtpPacket<'_>, arrival: Duration) -> Held {
        let mut payload = self.pool.pop().unwrap_or_default();
        payload.clear();
        payload.extend_from_slice(packet.payload());
        Held {
            index: 0,
            sequence_number: packet.sequence_number(),
            timestamp: packet.timestamp(),
            marker: packet.marker(),
            payload_type: packet.payload_type(),
            arrival,
            payload,
        }
    }

    fn recycle(&mut self, held: Held) {
        if self.pool.len() < 2 * self.config.reorder_packets + 16 {
            self.pool.push(held.payload);
        }
    }

    /// A packet from an SSRC that is not the source: on probation.
    fn probation(&mut self, ssrc: u32, held: Held) {
        let continues =
            self.candidate.ssrc == Some(ssrc) && self.candidate.next_seq == held.sequence_number;
        if !continues {
            self.drop_candidate();
            self.candidate.ssrc = Some(ssrc);
        }
        self.candidate.next_seq = held.sequence_number.wrapping_add(1);
        self.candidate.held.push(held);
        if self.candidate.held.len() >= usize::from(self.config.probation) {
            self.switch_source();
        }
    }

    /// Forgets the candidate, counting and recycling what it held.
    fn drop_candidate(&mut self) {
        let mut held = core::mem::take(&mut self.candidate.held);
        for h in held.drain(..) {
            self.count_refused();
            self.recycle(h);
        }
        self.candidate.held = held;
        self.candidate.ssrc = None;
    }

    fn count_refused(&mut self) {
        if self.source.is_some() {
            self.stats.foreign += 1;
        } else {
            self.stats.invalid += 1;
        }
    }

    /// The candidate passed probation: it becomes the source.
    fn switch_source(&mut self) {
        let Some(new) = self.candidate.ssrc.take() else {
            return;
        };
        let mut held = core::mem::take(&mut self.candidate.held);
        let Some(first_seq) = held.first().map(|h| h.sequence_number) else {
            self.candidate.held = held;
            return;
        };
        if let Some(old) = self.source.take() {
            // Everything the old source still holds goes out first.
            self.release_all();
            self.stats.ssrc_changes += 1;
            self.push_output(Output::SsrcChanged { old: old.ssrc, new });
        }
        self.source = Some(Source {
            ssrc: new,
            seq: SeqState::new(first_seq),
            top_index: self.next_index,
            top_seq: first_seq,
            transit: None,
            jitter16: 0,
        });
        self.stats.ssrc = new;
        for h in held.drain(..) {
            self.accept(h);
        }
        self.candidate.held = held;
    }

    /// A packet of the current source.
    fn accept(&mut self, mut held: Held) {
        let Some(source) = self.source.as_mut() else {
            return self.recycle(held);
        };
        match source.seq.update(held.sequence_number) {
            SeqVerdict::Invalid => {
                self.stats.invalid += 1;
                return self.recycle(held);
            }
            SeqVerdict::Resync => {
                // The sender restarted its numbering: release what waits and
                // continue the reorder index after it.
                self.stats.resyncs += 1;
                self.release_all();
                let Some(source) = self.source.as_mut() else {
                    return self.recycle(held);
                };
                source.top_index = self.next_index;
                source.top_seq = held.sequence_number;
            }
            SeqVerdict::Valid => {}
        }
        let Some(source) = self.source.as_mut() else {
            return self.recycle(held);
        };
        // A.8: transit = arrival (in ticks) - timestamp; J += (|D| - J) / 16.
        let arrival_ticks = (held.arrival.as_nanos() * u128::from(self.config.clock_rate.get())
            / 1_000_000_000) as i64;
        let transit = arrival_ticks.wrapping_sub(i64::from(held.timestamp));
        if let Some(prev) = source.transit {
            // Capped so jitter × 16 stays below 2^31.
            let d = transit
                .wrapping_sub(prev)
                .unsigned_abs()
                .min(u64::from(u32::MAX >> 5)) as u32;
            source.jitter16 = source
                .jitter16
                .wrapping_add(d)
                .wrapping_sub((source.jitter16 + 8) >> 4);
        }
        source.transit = Some(transit);

        let delta = i64::from(held.sequence_number.wrapping_sub(source.top_seq) as i16);
        let index = source.top_index + delta;
        if delta > 0 {
            source.top_index = index;
            source.top_seq = held.sequence_number;
        }
        held.index = index;
        self.buffer(held, delta < 0);
    }

    /// Puts a packet into the reorder ring and releases what is in order.
    fn buffer(&mut self, held: Held, reordered: bool) {
        let index = held.index;
        if index < self.next_index {
            let age = self.next_index - 1 - index;
            if age < 128 && self.released_bits & (1u128 << age) != 0 {
                self.stats.duplicates += 1;
            } else {
                self.stats.late += 1;
            }
            return self.recycle(held);
        }
        let depth = self.ring.len() as i64;
        if index >= self.next_index + depth {
            // Too far ahead: give up on the holes that keep it out.
            self.release_through(index - depth);
        }
        let slot = (index % depth) as usize;
        if self.ring[slot].as_ref().is_some_and(|h| h.index == index) {
            self.stats.duplicates += 1;
            return self.recycle(held);
        }
        self.stats.reordered += u64::from(reordered);
        self.ring[slot] = Some(held);
        self.waiting += 1;
        self.release_ready();
    }

    /// Releases the packets that are next in order.
    fn release_ready(&mut self) {
        let depth = self.ring.len() as i64;
        while self.waiting > 0 {
            let slot = (self.next_index % depth) as usize;
            match self.ring[slot].take_if(|h| h.index == self.next_index) {
                Some(held) => self.release(held),
                None => break,
            }
        }
    }

    /// Releases (or skips, if missing) every index up to and including `last`.
    fn release_through(&mut self, last: i64) {
        let depth = self.ring.len() as i64;
        while self.next_index <= last {
            if self.waiting == 0 {
                // Nothing buffered: jump straight there.
                let skipped = last + 1 - self.next_index;
                self.released_bits = if skipped >= 128 {
                    0
                } else {
                    self.released_bits << skipped
                };
                self.next_index = last + 1;
                break;
            }
            let slot = (self.next_index % depth) as usize;
            match self.ring[slot].take_if(|h| h.index == self.next_index) {
                Some(held) => self.release(held),
                None => {
                    self.released_bits <<= 1;
                    self.next_index += 1;
                }
            }
        }
        self.release_ready();
    }

    /// Releases everything waiting, holes skipped.
    fn release_all(&mut self) {
        while self.waiting > 0 {
            let last = self.ring.iter().flatten().map(|h| h.index).max();
            match last {
                Some(last) => self.release_through(last),
                None => self.waiting = 0,
            }
        }
    }

    /// One payload goes out, after the gap that precedes it.
    fn release(&mut self, held: Held) {
        self.waiting -= 1;
        self.next_index = held.index + 1;
        self.released_bits = (self.released_bits << 1) | 1;
        let Some(ssrc) = self.source.as_ref().map(|s| s.ssrc) else {
            return self.recycle(held);
        };
        let media = self
            .config
            .media_payload_type
            .is_none_or(|pt| pt == held.payload_type);
        if !media {
            // An event or comfort noise: in order, but no time of its own;
            // the timeline stays at the last audio packet.
            self.stats.non_media += 1;
            self.stats.released += 1;
            return self.push_output(Output::Payload { ssrc, held });
        }
        let ticks = (self.config.ticks_for_payload)(&held.payload);
        let rate = self.config.clock_rate;
        let mut gap = 0;
        if let Some(last) = self.playout {
            // What the arrival times show, and what the timestamps say.
            let arrived = duration_to_ticks(held.arrival.saturating_sub(last.arrival), rate)
                .saturating_sub(last.ticks);
            gap = if self.previous_ssrc == Some(ssrc) {
                let expected = last.timestamp.wrapping_add(last.ticks);
                let delta = held.timestamp.wrapping_sub(expected) as i32;
                let stamped = u32::try_from(delta).unwrap_or(0);
                let beyond = |tolerance: Option<u32>, a: u32, b: u32| {
                    tolerance.is_some_and(|t| a > b.saturating_add(t))
                };
                if beyond(self.ticks.timestamp_tolerance, stamped, arrived) {
                    self.stats.gaps_shortened += 1;
                    arrived
                } else if beyond(self.ticks.pause_tolerance, arrived, stamped) {
                    self.stats.gaps_lengthened += 1;
                    arrived
                } else {
                    stamped
                }
            } else {
                // A new source: its timestamps are unrelated; use arrival.
                arrived
            };
            let max = self.ticks.max_gap;
            if gap > max {
                self.stats.gaps_clamped += 1;
                gap = max;
            }
        }
        let mut ahead = false;
        if let Some(lead) = self.ticks.max_lead {
            // Media time may not start this payload later than the arrival
            // clock plus the lead.
            let limit = duration_to_ticks_u64(held.arrival, rate).saturating_add(lead);
            let room = limit.saturating_sub(self.released_ticks);
            gap = u32::try_from(room).map_or(gap, |room| gap.min(room));
            ahead = self.released_ticks > limit;
        }
        if gap > 0 {
            self.stats.gap_samples += u64::from(gap);
            self.released_ticks += u64::from(gap);
            self.push_output(Output::Gap(gap));
        }
        self.playout = Some(Playout {
            timestamp: held.timestamp,
            ticks,
            arrival: held.arrival,
        });
        self.previous_ssrc = Some(ssrc);
        if ahead {
            self.stats.dropped_ahead += 1;
            return self.recycle(held);
        }
        self.released_ticks += u64::from(ticks);
        self.stats.released += 1;
        self.push_output(Output::Payload { ssrc, held });
    }

    fn push_output(&mut self, output: Output) {
        if self.out.len() >= self.output_limit() {
            self.stats.overflow += 1;
            if let Some(Output::Payload { held, .. }) = self.out.pop_front() {
                self.recycle(held);
            }
        }
        self.out.push_back(output);
    }

    /// The next event in playout order; `None` when there is nothing more
    /// until the next packet or timeout. Call until `None` after every
    /// `handle_*` call.
    pub fn poll(&mut self) -> Option<Event<'_>> {
        if let Some(Output::Payload { held, .. }) = self.current.take() {
            self.recycle(held);
        }
        self.current = self.out.pop_front();
        Some(match self.current.as_ref()? {
            Output::Payload { ssrc, held } => Event::Payload(ReceivedPayload {
                ssrc: *ssrc,
                sequence_number: held.sequence_number,
                timestamp: held.timestamp,
                marker: held.marker,
                payload_type: held.payload_type,
                data: &held.payload,
            }),
            Output::Gap(samples) => Event::Gap { samples: *samples },
            Output::SsrcChanged { old, new } => Event::SsrcChanged {
                old: *old,
                new: *new,
            },
        })
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next:
    /// when the oldest packet waiting behind a hole has waited long enough.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.ring
            .iter()
            .flatten()
            .map(|h| h.arrival)
            .min()
            .map(|a| a + self.config.reorder_delay)
    }

    /// Time has passed: packets that waited `reorder_delay` for a hole go
    /// out, the hole reported as a gap.
    pub fn handle_timeout(&mut self, now: Duration) {
        while let Some(due) = self
            .ring
            .iter()
            .flatten()
            .filter(|h| h.arrival + self.config.reorder_delay <= now)
            .map(|h| h.index)
            .max()
        {
            self.release_through(due);
        }
    }

    /// End of stream (stop, timeout): releases everything waiting, holes
    /// reported as gaps. Packets held on probation are dropped.
    pub fn flush(&mut self) {
        self.release_all();
        self.drop_candidate();
    }

    /// Counters.
    pub fn stats(&self) -> ReceiverStats {
        let mut stats = self.stats;
        if let Some(s) = &self.source {
            stats.extended_highest_sequence = s.seq.extended_max();
            stats.expected = s.seq.expected();
            stats.received = s.seq.received;
            stats.cumulative_lost = stats.expected as i64 - stats.received as i64;
            stats.jitter = s.jitter16 >> 4;
        }
        stats
    }

    /// The numbers for an RTCP reception report; the fraction lost covers
    /// the time since the previous call (RFC 3550 A.3).
    pub fn take_reception_report(&mut self) -> Option<ReceptionReport> {
        let source = self.source.as_mut()?;
        let s = &mut source.seq;
        let expected = s.expected();
        let expected_interval = expected - s.expected_prior;
        s.expected_prior = expected;
        let received_interval = s.received - s.received_prior;
        s.received_prior = s.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let lost = expected as i64 - s.received as i64;
        Some(ReceptionReport {
            ssrc: source.ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_sequence: s.extended_max(),
            jitter: source.jitter16 >> 4,
        })
    }
}

/// Payloads the receiver holds, for tests of bounded memory.
#[cfg(test)]
impl Receiver {
    fn buffered_payloads(&self) -> usize {
        self.ring.iter().flatten().count() + self.out.len() + self.candidate.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RtpPacketBuilder;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec;

    fn packet(buf: &mut Vec<u8>, ssrc: u32, seq: u16, ts: u32, len: usize) -> RtpPacket<'_> {
        buf.clear();
        let payload = vec![seq as u8; len];
        RtpPacketBuilder::new()
            .payload_type(8)
            .ssrc(ssrc)
            .sequence_number(seq)
            .timestamp(ts)
            .payload(&payload)
            .write_vec(buf)
            .unwrap();
        RtpPacket::parse(buf).unwrap()
    }

    fn drain(rx: &mut Receiver) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(e) = rx.poll() {
            v.push(match e {
                Event::Payload(p) => format!("p{}", p.sequence_number),
                Event::Gap { samples } => format!("gap{samples}"),
                Event::SsrcChanged { old, new } => format!("ssrc{old}->{new}"),
            });
        }
        v
    }

    fn feed(rx: &mut Receiver, ssrc: u32, seqs: &[u16], start_ms: u64) -> Vec<String> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for (i, &seq) in seqs.iter().enumerate() {
            let p = packet(&mut buf, ssrc, seq, u32::from(seq).wrapping_mul(160), 160);
            rx.handle_packet(&p, Duration::from_millis(start_ms + 20 * i as u64));
            out.extend(drain(rx));
        }
        out
    }

    fn rx() -> Receiver {
        Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()))
    }

    #[test]
    fn probation_then_in_order() {
        let mut r = rx();
        // The first packet waits for a second sequential one, then both go.
        assert_eq!(feed(&mut r, 1, &[10], 0), Vec::<String>::new());
        assert_eq!(feed(&mut r, 1, &[11, 12], 20), ["p10", "p11", "p12"]);
        let s = r.stats();
        assert_eq!((s.received, s.expected, s.cumulative_lost), (3, 3, 0));
        assert_eq!(s.ssrc, 1);
    }

    #[test]
    fn probation_restarts_on_a_break() {
        let mut r = rx();
        assert!(feed(&mut r, 1, &[10, 20], 0).is_empty());
        assert_eq!(r.stats().invalid, 1);
        assert_eq!(feed(&mut r, 1, &[21], 40), ["p20", "p21"]);
    }

    #[test]
    fn reorder_duplicates_late() {
        let mut r = rx();
        let out = feed(&mut r, 1, &[1, 2, 4, 3, 3, 5, 2], 0);
        assert_eq!(out, ["p1", "p2", "p3", "p4", "p5"]);
        let s = r.stats();
        assert_eq!((s.reordered, s.duplicates, s.late), (1, 2, 0));
    }

    #[test]
    fn loss_becomes_a_gap_after_the_depth() {
        let mut r = Receiver::new(
            ReceiverConfig::new(NonZeroU32::new(8000).unwrap())
                .reorder_packets(4)
                .probation(1),
        );
        // 3 is lost: 4..=6 wait; 7 arrives 4 ahead of the hole and forces it.
        let out = feed(&mut r, 1, &[1, 2, 4, 5, 6], 0);
        assert_eq!(out, ["p1", "p2"]);
        let out = feed(&mut r, 1, &[7], 200);
        assert_eq!(out, ["gap160", "p4", "p5", "p6", "p7"]);
        // 3 arrives now: late.
        assert!(feed(&mut r, 1, &[3], 220).is_empty());
        assert_eq!(r.stats().late, 1);
        assert_eq!(r.stats().gap_samples, 160);
    }

    #[test]
    fn loss_becomes_a_gap_after_the_delay() {
        let mut r = Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()).probation(1));
        let out = feed(&mut r, 1, &[1, 3], 0);
        assert_eq!(out, ["p1"]);
        // Packet 3 arrived at 20 ms; it is due at 120 ms.
        assert_eq!(r.poll_timeout(), Some(Duration::from_millis(120)));
        r.handle_timeout(Duration::from_millis(119));
        assert!(drain(&mut r).is_empty());
        r.handle_timeout(Duration::from_millis(120));
        assert_eq!(drain(&mut r), ["gap160", "p3"]);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn silence_suppression_gap_from_timestamps() {
        let mut r = Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()).probation(1));
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for (seq, ts) in [(1u16, 0u32), (2, 160), (3, 8160)] {
            let p = packet(&mut buf, 5, seq, ts, 160);
            r.handle_packet(&p, Duration::from_millis(u64::from(ts) / 8));
            out.extend(drain(&mut r));
        }
        // Consecutive sequence numbers, but the timestamp jumped a second.
        assert_eq!(out, ["p1", "p2", "gap7840", "p3"]);
    }

    #[test]
    fn wraps_sequence_and_timestamp() {
        let mut r = Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()).probation(1));
        let mut buf = Vec::new();
        let mut got = Vec::new();
        let start_ts = u32::MAX - 300;
        for (i, seq) in [65534u16, 65535, 1, 0, 2].into_iter().enumerate() {
            let k = u32::from(seq.wrapping_sub(65534));
            let p = packet(&mut buf, 9, seq, start_ts.wrapping_add(k * 160), 160);
            r.handle_packet(&p, Duration::from_millis(20 * i as u64));
            got.extend(drain(&mut r));
        }
        assert_eq!(got, ["p65534", "p65535", "p0", "p1", "p2"]);
        let s = r.stats();
        assert_eq!(s.extended_highest_sequence, 65536 + 2);
        assert_eq!((s.expected, s.received), (5, 5));
    }

    #[test]
    fn resync_after_a_restart_of_sequence_numbers() {
        let mut r = Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()).probation(1));
        assert_eq!(feed(&mut r, 1, &[100, 101], 0), ["p100", "p101"]);
        // A jump of 30000: the first packet is refused, the second resyncs.
        assert!(feed(&mut r, 1, &[30000], 40).is_empty());
        assert_eq!(r.stats().invalid, 1);
        // The timestamps jump with the sequence numbers ((30001 - 102) × 160
        // ticks, ten minutes), but 30001 arrived 40 ms after 101: the gap is
        // what arrival shows, 20 ms, not ten minutes of silence.
        assert_eq!(
            feed(&mut r, 1, &[30001, 30002], 60),
            ["gap160", "p30001", "p30002"]
        );
        assert_eq!(r.stats().gaps_shortened, 1);
    }

    #[test]
    fn a_timestamp_restart_is_not_silence_and_a_frozen_clock_keeps_real_time() {
        let mut r = Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()).probation(1));
        let mut buf = Vec::new();
        let mut out = Vec::new();
        // 0..3 in step; 3..6 restart the clock at a random value; after 6 a
        // 5-second hold during which the phone's clock stood still.
        let plan: [(u16, u32, u64); 7] = [
            (0, 0, 0),
            (1, 160, 20),
            (2, 320, 40),
            (3, 3_000_000_000, 60),
            (4, 3_000_000_160, 80),
            (5, 3_000_000_320, 100),
            (6, 3_000_000_480, 5_120),
        ];
        for (seq, ts, ms) in plan {
            let p = packet(&mut buf, 9, seq, ts, 160);
            r.handle_packet(&p, Duration::from_millis(ms));
            out.extend(drain(&mut r));
        }
        // 5,120 - 100 - 20 ms = 5,000 ms = 40,000 ticks of real silence.
        assert_eq!(out, ["p0", "p1", "p2", "p3", "p4", "p5", "gap40000", "p6"]);
        let s = r.stats();
        assert_eq!((s.gaps_shortened, s.gaps_lengthened), (0, 1));
    }

    #[test]
    fn telephone_events_keep_real_time_and_are_not_loss() {
        let mut r = Receiver::new(
            ReceiverConfig::new(NonZeroU32::new(8000).unwrap())
                .probation(1)
                .media_payload_type(Some(8)),
        );
        let mut buf = Vec::new();
        let mut out = Vec::new();
        // Audio 0..2, then a one-second DTMF event (PT 101, all with the
        // event's start timestamp 480) in 50 packets, then audio again at
        // timestamp 480 + 8000.
        let mut send =
            |r: &mut Receiver, seq: u16, pt: u8, ts: u32, ms: u64, out: &mut Vec<String>| {
                buf.clear();
                RtpPacketBuilder::new()
                    .payload_type(pt)
                    .ssrc(3)
                    .sequence_number(seq)
                    .timestamp(ts)
                    .payload(&[1u8; 160][..if pt == 8 { 160 } else { 4 }])
                    .write_vec(&mut buf)
                    .unwrap();
                r.handle_packet(&RtpPacket::parse(&buf).unwrap(), Duration::from_millis(ms));
                out.extend(drain(r));
            };
        for seq in 0..3u16 {
            send(
                &mut r,
                seq,
                8,
                u32::from(seq) * 160,
                u64::from(seq) * 20,
                &mut out,
            );
        }
        for i in 0..50u16 {
            send(&mut r, 3 + i, 101, 480, 60 + u64::from(i) * 20, &mut out);
        }
        send(&mut r, 53, 8, 480 + 8000, 1060, &mut out);
        let gaps: Vec<&String> = out.iter().filter(|e| e.starts_with("gap")).collect();
        assert_eq!(gaps, ["gap8000"]);
        assert_eq!(out.len(), 3 + 50 + 2);
        let s = r.stats();
        assert_eq!(s.non_media, 50);
        assert_eq!(s.cumulative_lost, 0);
        assert_eq!((s.gaps_shortened, s.gaps_lengthened), (0, 0));
    }

    #[test]
    fn no_input_makes_the_output_longer_than_its_arrival_time() {
        // Packets of 160 ticks arriving every millisecond (a flood) with
        // timestamps that also jump: media time stays within 500 ms of the
        // time since the first packet.
        let mut r = Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()).probation(1));
        let mut buf = Vec::new();
        let mut ticks = 0u64;
        for seq in 0..2000u16 {
            let p = packet(&mut buf, 4, seq, u32::from(seq) * 48_000, 160);
            r.handle_packet(&p, Duration::from_millis(u64::from(seq)));
            while let Some(e) = r.poll() {
                ticks += match e {
                    Event::Payload(p) => p.data.len() as u64,
                    Event::Gap { samples } => u64::from(samples),
                    Event::SsrcChanged { .. } => 0,
                };
            }
        }
        // 1,999 ms since the first arrival plus 500 ms lead plus one packet.
        assert!(ticks <= (1999 + 500) * 8 + 160, "{ticks} ticks");
        assert!(r.stats().dropped_ahead > 1000);
    }

    #[test]
    fn ssrc_change_after_probation() {
        let mut r = rx();
        assert_eq!(feed(&mut r, 1, &[1, 2, 3], 0), ["p1", "p2", "p3"]);
        // One stray packet from another SSRC does not switch.
        assert!(feed(&mut r, 2, &[500], 60).is_empty());
        assert_eq!(feed(&mut r, 1, &[4], 80), ["p4"]);
        // The phone restarts: SSRC 2 from 500 on, 100 ms after packet 4.
        let out = feed(&mut r, 2, &[500, 501], 180);
        // Packet 4 arrived at 80 ms and lasts 20 ms; 500 arrived at 180 ms.
        assert_eq!(out, ["ssrc1->2", "gap640", "p500", "p501"]);
        // The stray packet was displaced by the real restart: counted.
        assert_eq!(r.stats().foreign, 1);
        assert_eq!(r.stats().ssrc, 2);
        assert_eq!(r.stats().ssrc_changes, 1);
    }

    #[test]
    fn huge_timestamp_jump_is_clamped() {
        // Timestamps only: arrival times would shorten the jump on their own.
        let mut r = Receiver::new(
            ReceiverConfig::new(NonZeroU32::new(8000).unwrap())
                .probation(1)
                .max_gap(Duration::from_secs(1))
                .timestamp_tolerance(None)
                .max_lead(None),
        );
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for (seq, ts) in [(1u16, 0u32), (2, 2_000_000_000)] {
            let p = packet(&mut buf, 5, seq, ts, 160);
            r.handle_packet(&p, Duration::from_millis(u64::from(seq) * 20));
            out.extend(drain(&mut r));
        }
        assert_eq!(out, ["p1", "gap8000", "p2"]);
        assert_eq!(r.stats().gaps_clamped, 1);
    }

    #[test]
    fn oversize_and_bounded_memory() {
        let mut r = Receiver::new(
            ReceiverConfig::new(NonZeroU32::new(8000).unwrap())
                .max_payload_len(100)
                .reorder_packets(8)
                .probation(1),
        );
        let mut buf = Vec::new();
        let p = packet(&mut buf, 1, 1, 0, 101);
        r.handle_packet(&p, Duration::ZERO);
        assert_eq!(r.stats().oversize, 1);
        // Never polled, every other packet missing: the output queue and
        // ring stay bounded.
        for i in 0..10_000u32 {
            let p = packet(&mut buf, 1, (i * 2) as u16, i * 320, 100);
            r.handle_packet(&p, Duration::from_millis(u64::from(i) * 40));
            assert!(r.buffered_payloads() <= 4 * 8 + 16 + 8 + 8);
        }
        assert!(r.stats().overflow > 0);
    }

    #[test]
    fn jitter_of_a_steady_stream_is_zero_and_grows_with_variation() {
        let mut r = Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()).probation(1));
        feed(&mut r, 1, &(0..50).collect::<Vec<_>>(), 0);
        assert_eq!(r.stats().jitter, 0);
        let mut buf = Vec::new();
        for i in 50u16..100 {
            let wobble = if i % 2 == 0 { 5 } else { 0 };
            let p = packet(&mut buf, 1, i, u32::from(i) * 160, 160);
            r.handle_packet(&p, Duration::from_millis(u64::from(i) * 20 + wobble));
            drain(&mut r);
        }
        // |D| alternates 40 ticks (5 ms): J converges to 40.
        let j = r.stats().jitter;
        assert!((35..=40).contains(&j), "{j}");
    }

    #[test]
    fn reception_report() {
        let mut r = Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()).probation(1));
        feed(&mut r, 3, &[0, 1, 2, 4, 5, 6, 7, 9], 0);
        r.flush();
        drain(&mut r);
        let rr = r.take_reception_report().unwrap();
        assert_eq!(rr.ssrc, 3);
        assert_eq!(rr.extended_highest_sequence, 9);
        assert_eq!(rr.cumulative_lost, 2);
        assert_eq!(rr.fraction_lost, (2 * 256 / 10) as u8);
        // Nothing new: fraction 0.
        assert_eq!(r.take_reception_report().unwrap().fraction_lost, 0);
    }
}
