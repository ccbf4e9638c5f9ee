//! A SIPREC session's streams in one multichannel WAV, sans-IO: each
//! stream's audio decoded to 16-bit PCM ([`ChannelDecoder`]) and placed on the
//! session's arrival clock ([`Aligner`]), so the parties stay in step
//! however each stream starts, stops, holds or loses packets.
//!
//! A stream's first sample sits where its first packet arrived; from there
//! its samples follow one another (the receiver fills losses and holds with
//! silence). The file is written up to the slowest stream, or, when a
//! stream is silent, up to the clock less [`Aligner`]'s lag, with silence
//! for the silent one. Samples that come after their place was written
//! (a stream more than the lag late) are dropped and counted.

use core::time::Duration;
use std::collections::VecDeque;

use callrec_audio::WavWriter;

use crate::live::LiveTap;
use callrec_audio::g711::Law;
use callrec_audio::g722;
use callrec_audio::wav::{SampleFormat, WavSpec};

use crate::call::Media;
use crate::outputs::Sink;

/// The codecs a channel decodes (the ones a SIPREC answer takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelCodec {
    /// G.711 A-law or µ-law, 8 kHz.
    G711(Law),
    /// G.722, 16 kHz.
    G722,
}

/// Decoded audio of one stream, waiting for the aligner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Samples at the file's rate.
    Audio(Vec<i16>),
    /// Samples of silence at the file's rate (never made until placed).
    Silence(u64),
}

/// One stream's media, decoded to 16-bit PCM at the file's rate (G.711 in
/// a 16 kHz file is interpolated to it).
pub(crate) struct ChannelDecoder {
    codec: ChannelCodec,
    g722: Option<g722::Decoder>,
    /// G.711 into a 16 kHz file.
    upsample: bool,
    previous: i16,
    pieces: Vec<Piece>,
    decoded: Vec<i16>,
}

impl ChannelDecoder {
    /// A channel of `codec` into a file of `rate` (8000 or 16000) Hz.
    pub(crate) fn new(codec: ChannelCodec, rate: u32) -> Self {
        Self {
            codec,
            g722: matches!(codec, ChannelCodec::G722).then(g722::Decoder::new),
            upsample: matches!(codec, ChannelCodec::G711(_)) && rate == 16000,
            previous: 0,
            pieces: Vec::new(),
            decoded: Vec::new(),
        }
    }

    /// What was decoded since the last call.
    pub(crate) fn take(&mut self) -> Vec<Piece> {
        core::mem::take(&mut self.pieces)
    }
}

impl Media for ChannelDecoder {
    fn payload(&mut self, data: &[u8]) {
        let decoded = &mut self.decoded;
        match (self.codec, self.g722.as_mut()) {
            (ChannelCodec::G711(law), _) => {
                decoded.resize(data.len(), 0);
                law.decode(data, decoded);
            }
            (ChannelCodec::G722, Some(decoder)) => {
                decoded.resize(2 * data.len(), 0);
                decoder.decode(data, decoded);
            }
            (ChannelCodec::G722, None) => decoded.clear(),
        }
        let samples = if self.upsample {
            // Linear interpolation: a half-sample delay, no images above
            // 4 kHz worth the cost of a real filter for telephone audio.
            let mut out = Vec::with_capacity(2 * decoded.len());
            for &s in decoded.iter() {
                let mid = i16::try_from((i32::from(self.previous) + i32::from(s)) / 2).unwrap_or(s);
                out.extend_from_slice(&[mid, s]);
                self.previous = s;
            }
            out
        } else {
            decoded.clone()
        };
        self.pieces.push(Piece::Audio(samples));
    }

    fn gap(&mut self, ticks: u64) {
        let per_tick = match self.codec {
            ChannelCodec::G711(_) if !self.upsample => 1,
            _ => 2,
        };
        self.pieces
            .push(Piece::Silence(ticks.saturating_mul(per_tick)));
    }

    fn error(&self) -> Option<&str> {
        None
    }
}

/// One channel's place in the file.
#[derive(Debug, Default)]
struct Lane {
    /// The frame after the last sample placed; `None` before the first.
    next: Option<u64>,
    /// Samples not yet written: frames `next - len .. next`.
    waiting: VecDeque<i16>,
    /// Samples that came after their place was written, or beyond the
    /// buffer.
    dropped: u64,
}

/// What finishing the file gave.
pub(crate) struct AlignedFile<W> {
    /// The sink, synced, when finishing could give it back.
    pub(crate) sink: Option<W>,
    /// Frames written.
    pub(crate) frames: u64,
    /// The first error, if any.
    pub(crate) error: Option<String>,
    /// Samples dropped per channel.
    pub(crate) dropped: Vec<u64>,
}

/// The streams of a session, interleaved into one WAV on the arrival clock.
pub(crate) struct Aligner<W: Sink> {
    writer: Option<WavWriter<W>>,
    rate: u64,
    lanes: Vec<Lane>,
    /// Frames written.
    written: u64,
    /// How far behind the clock the file is written when a stream is
    /// silent, in frames.
    lag: u64,
    /// The longest silence of every stream kept as real time, in frames.
    max_silence: u64,
    /// The last frame (on the clock) any stream was heard.
    heard: Option<u64>,
    /// Frames of clock skipped by silences longer than `max_silence`.
    skipped: u64,
    /// Most samples a channel may hold unwritten.
    max_waiting: usize,
    error: Option<String>,
    frame: Vec<i16>,
    discontinuities: u64,
    /// The live feed, when the server has one for the recording.
    live: Option<LiveTap>,
}

impl<W: Sink> Aligner<W> {
    /// A file of `channels` channels at `rate` Hz in `sink`, its header
    /// rewritten every `header_interval` of audio.
    ///
    /// # Errors
    /// The writer's error, as text.
    pub(crate) fn new(
        sink: W,
        rate: u32,
        channels: u16,
        header_interval: Duration,
        lag: Duration,
        max_silence: Duration,
    ) -> Result<Self, String> {
        let spec = WavSpec::new(SampleFormat::Pcm16, rate, channels).map_err(|e| e.to_string())?;
        let mut writer = WavWriter::with_header_interval(sink, spec, Some(header_interval))
            .map_err(|e| e.to_string())?;
        writer.update_header().map_err(|e| e.to_string())?;
        let rate = u64::from(rate);
        let frames = |d: Duration| (d.as_millis() as u64).saturating_mul(rate) / 1000;
        Ok(Self {
            writer: Some(writer),
            rate,
            lanes: (0..channels).map(|_| Lane::default()).collect(),
            written: 0,
            lag: frames(lag),
            max_silence: frames(max_silence).max(1),
            heard: None,
            skipped: 0,
            // The lag, the receiver's lead and the reorder wait, with room.
            max_waiting: usize::try_from(frames(lag) + 5 * rate).unwrap_or(usize::MAX),
            error: None,
            frame: Vec::new(),
            discontinuities: 0,
            live: None,
        })
    }

    /// From now on, what is written also goes to `tap`.
    pub(crate) fn listen(&mut self, tap: LiveTap) {
        self.live = Some(tap);
    }

    /// The newest packet arrived at `at` (for the live feed's latency);
    /// the stamp it replaces, to put back when the packet turns out not
    /// to be the call's.
    pub(crate) fn arrived(&mut self, at: Option<std::time::Instant>) -> Option<std::time::Instant> {
        self.live.as_mut().and_then(|live| live.arrived(at))
    }

    /// `now` on the clock, in frames, less the silences cut.
    fn clock(&self, now: Duration) -> u64 {
        ((now.as_millis() as u64).saturating_mul(self.rate) / 1000).saturating_sub(self.skipped)
    }

    /// The first error, if any: nothing more is written.
    pub(crate) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Silences of every stream cut to the longest kept, so far.
    pub(crate) fn discontinuities(&self) -> u64 {
        self.discontinuities
    }

    /// Where the file is, in milliseconds.
    pub(crate) fn written_ms(&self) -> u64 {
        self.written * 1000 / self.rate
    }

    /// A packet of channel `lane` was taken at `now`: the channel starts
    /// there if it had not, and the clock knows a stream is alive. The
    /// first packet of any stream is the file's start; a silence of every
    /// stream longer than the longest kept is cut here.
    pub(crate) fn heard(&mut self, lane: usize, now: Duration) {
        if self.heard.is_none() {
            // The file starts with the first packet of any stream (as a
            // phone call's does): the time before it is not the call's.
            self.skipped = self.clock(now);
        }
        let mut clock = self.clock(now);
        if let Some(heard) = self.heard {
            let silent = clock.saturating_sub(heard);
            if silent > self.max_silence + self.lag {
                self.skipped += silent - self.max_silence;
                self.discontinuities += 1;
                clock = self.clock(now);
            }
        }
        self.heard = Some(clock);
        if let Some(lane) = self.lanes.get_mut(lane) {
            if lane.next.is_none() {
                lane.next = Some(clock.max(self.written));
            }
        }
    }

    /// Places channel `lane`'s decoded audio after what it had.
    pub(crate) fn push(&mut self, lane: usize, pieces: Vec<Piece>) {
        let written = self.written;
        let max_waiting = self.max_waiting;
        let Some(lane) = self.lanes.get_mut(lane) else {
            return;
        };
        for piece in pieces {
            let next = *lane.next.get_or_insert(written);
            let len = match &piece {
                Piece::Audio(samples) => samples.len() as u64,
                Piece::Silence(n) => *n,
            };
            // The part whose place was already written is dropped (and
            // counted, when it is audio).
            let late = written.saturating_sub(next).min(len);
            let is_audio = matches!(piece, Piece::Audio(_));
            if is_audio {
                lane.dropped += late;
            }
            let keep = (len - late) as usize;
            // A stream far ahead of the clock: past the bound, its oldest
            // waiting samples go (counted), so what stays keeps its place.
            let overflow = (lane.waiting.len() + keep).saturating_sub(max_waiting);
            let from_waiting = overflow.min(lane.waiting.len());
            lane.waiting.drain(..from_waiting);
            let from_piece = overflow - from_waiting;
            lane.dropped += from_waiting as u64;
            if is_audio {
                lane.dropped += from_piece as u64;
            }
            lane.next = Some(next + len);
            let start = late as usize + from_piece;
            let rest = keep - from_piece;
            match piece {
                Piece::Audio(samples) => lane.waiting.extend(&samples[start..start + rest]),
                Piece::Silence(_) => lane.waiting.extend(core::iter::repeat_n(0, rest)),
            }
        }
    }

    /// Writes what can be written at `now`: up to the slowest channel that
    /// has started, and at least up to the clock less the lag (silence for
    /// the channels that have nothing there), unless every stream has been
    /// silent for longer than the longest silence kept.
    pub(crate) fn advance(&mut self, now: Duration) {
        let by_clock = self.clock(now).saturating_sub(self.lag);
        let by_clock = match self.heard {
            Some(heard) => by_clock.min(heard + self.max_silence),
            None => 0,
        };
        let started = self.lanes.iter().filter_map(|l| l.next);
        let all_there = if self.lanes.iter().all(|l| l.next.is_some()) {
            started.min().unwrap_or(0)
        } else {
            0
        };
        self.write_to(by_clock.max(all_there));
    }

    /// Writes frames up to `end`, each channel's waiting samples where they
    /// belong and silence elsewhere.
    fn write_to(&mut self, end: u64) {
        const CHUNK: u64 = 320;
        let channels = self.lanes.len();
        while self.written < end && self.error.is_none() {
            let n = (end - self.written).min(CHUNK);
            self.frame.clear();
            self.frame.resize(n as usize * channels, 0);
            let (from, to) = (self.written, self.written + n);
            for (c, lane) in self.lanes.iter_mut().enumerate() {
                // Waiting samples never lie before what is written (push
                // drops those), so the ones in this chunk are at its front.
                let next = lane.next.unwrap_or(0);
                let first = next - lane.waiting.len() as u64;
                let (lo, hi) = (first.max(from), next.min(to));
                if lo < hi {
                    let at = (lo - from) as usize;
                    for (k, s) in lane.waiting.drain(..(hi - lo) as usize).enumerate() {
                        self.frame[(at + k) * channels + c] = s;
                    }
                }
            }
            let Some(writer) = self.writer.as_mut() else {
                return;
            };
            if let Err(e) = writer.write_pcm(&self.frame) {
                self.error = Some(e.to_string());
                return;
            }
            if let Some(live) = &mut self.live {
                live.pcm(&self.frame);
            }
            self.written += n;
        }
    }

    /// Writes everything waiting, finalizes the header and syncs the file.
    pub(crate) fn finish(mut self) -> AlignedFile<W> {
        let end = self.lanes.iter().filter_map(|l| l.next).max().unwrap_or(0);
        self.write_to(end);
        let mut error = self.error.take();
        let sink = self.writer.take().and_then(|writer| match writer.finish() {
            Ok(mut sink) => {
                if let Err(e) = sink.sync() {
                    error.get_or_insert(e.to_string());
                }
                Some(sink)
            }
            Err(e) => {
                error.get_or_insert(e.to_string());
                None
            }
        });
        AlignedFile {
            sink,
            frames: self.written,
            error,
            dropped: self.lanes.iter().map(|l| l.dropped).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn aligner(channels: u16) -> Aligner<Cursor<Vec<u8>>> {
        Aligner::new(
            Cursor::new(Vec::new()),
            8000,
            channels,
            Duration::from_secs(1),
            Duration::from_millis(400),
            Duration::from_secs(10),
        )
        .unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The samples of channel `c` of a finished file.
    fn channel(file: &AlignedFile<Cursor<Vec<u8>>>, c: usize, channels: usize) -> Vec<i16> {
        let bytes = file.sink.as_ref().unwrap().get_ref();
        let wav = callrec_audio::wav::WavFile::parse(bytes).unwrap();
        assert_eq!(usize::from(wav.spec().channels()), channels);
        wav.data()
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .skip(c)
            .step_by(channels)
            .collect()
    }

    /// Two streams that start 500 ms apart, each sending 20 ms packets on
    /// simulated time (the first 300 ms into the session): each channel's
    /// first sample sits where its first packet arrived, counted from the
    /// first packet of either, and both channels have the call's length.
    #[test]
    fn streams_that_start_apart_are_placed_where_they_arrived() {
        let mut a = aligner(2);
        for tick in 0..100u64 {
            let now = ms(300 + 20 * tick);
            a.heard(0, now);
            a.push(0, vec![Piece::Audio(vec![1000; 160])]);
            if tick >= 25 {
                a.heard(1, now);
                a.push(1, vec![Piece::Audio(vec![-2000; 160])]);
            }
            a.advance(now);
        }
        let file = a.finish();
        assert_eq!(file.error, None);
        let left = channel(&file, 0, 2);
        let right = channel(&file, 1, 2);
        assert_eq!(left.len(), 16000);
        assert!(left.iter().all(|&s| s == 1000));
        // 500 ms of silence, then the second party.
        assert!(right[..4000].iter().all(|&s| s == 0));
        assert!(right[4000..].iter().all(|&s| s == -2000));
        assert_eq!(file.dropped, vec![0, 0]);
    }

    /// A stream that stops (hold) while the other goes on gets silence on
    /// the clock; when it comes back, the receiver's gap for the time it
    /// was away is already written, so only what is after it is placed.
    #[test]
    fn a_held_stream_keeps_real_time_against_the_other() {
        let mut a = aligner(2);
        for tick in 0..150u64 {
            let now = ms(20 * tick);
            a.heard(0, now);
            a.push(0, vec![Piece::Audio(vec![7; 160])]);
            let away = (50..100).contains(&tick);
            if !away {
                let mut pieces = Vec::new();
                if tick == 100 {
                    // The receiver fills the 1 s it was away.
                    pieces.push(Piece::Silence(8000));
                }
                pieces.push(Piece::Audio(vec![9; 160]));
                a.heard(1, now);
                a.push(1, pieces);
            }
            a.advance(now);
        }
        let file = a.finish();
        let right = channel(&file, 1, 2);
        assert_eq!(right.len(), 24000);
        assert!(right[..8000].iter().all(|&s| s == 9));
        assert!(right[8000..16000].iter().all(|&s| s == 0));
        assert!(right[16000..].iter().all(|&s| s == 9));
        assert_eq!(file.dropped, vec![0, 0]);
    }

    /// With every stream silent for longer than the longest silence kept,
    /// the file stops growing at that length and resumes when a stream
    /// comes back, noted as one discontinuity; nothing grows without bound.
    #[test]
    fn a_silence_of_every_stream_is_cut_to_the_longest_kept() {
        let mut a = Aligner::new(
            Cursor::new(Vec::new()),
            8000,
            1,
            Duration::from_secs(1),
            ms(400),
            Duration::from_secs(2),
        )
        .unwrap();
        a.heard(0, ms(0));
        a.push(0, vec![Piece::Audio(vec![5; 800])]);
        for t in 1..=600u64 {
            a.advance(ms(100 * t));
        }
        assert_eq!(a.written_ms(), 2000);
        // The receiver fills the silence it saw, cut to the longest kept.
        a.heard(0, ms(60_000));
        a.push(0, vec![Piece::Silence(16_000), Piece::Audio(vec![6; 800])]);
        a.advance(ms(60_100));
        assert_eq!(a.discontinuities(), 1);
        let file = a.finish();
        let samples = channel(&file, 0, 1);
        assert!(samples.len() <= 8000 * 3 + 800, "{}", samples.len());
        assert_eq!(samples.iter().filter(|&&s| s == 6).count(), 800);
    }

    /// Audio that arrives after its place was written is dropped and
    /// counted, never written over another time.
    #[test]
    fn late_audio_is_dropped_and_counted() {
        let mut a = aligner(2);
        a.heard(0, ms(0));
        a.heard(1, ms(0));
        a.push(0, vec![Piece::Audio(vec![1; 8000])]);
        // Channel 1 says nothing: the file follows the clock, 400 ms behind.
        a.advance(ms(1400));
        assert_eq!(a.written_ms(), 1000);
        a.heard(0, ms(2000));
        a.advance(ms(2000));
        assert_eq!(a.written_ms(), 1600);
        a.push(1, vec![Piece::Audio(vec![3; 16000])]);
        let file = a.finish();
        assert_eq!(file.dropped, vec![0, 12800]);
        let right = channel(&file, 1, 2);
        assert_eq!(right.len(), 16000);
        assert!(right[..12800].iter().all(|&s| s == 0));
        assert!(right[12800..].iter().all(|&s| s == 3));
    }

    #[test]
    fn g711_into_a_wideband_file_is_interpolated_and_gaps_scale() {
        let mut c = ChannelDecoder::new(ChannelCodec::G711(Law::Alaw), 16000);
        let mut encoded = [0u8; 2];
        Law::Alaw.encode(&[1000, 1000], &mut encoded);
        c.payload(&encoded);
        c.gap(10);
        let pieces = c.take();
        let Piece::Audio(samples) = &pieces[0] else {
            panic!("{pieces:?}")
        };
        assert_eq!(samples.len(), 4);
        let decoded = samples[1];
        assert!((900..1100).contains(&decoded), "{decoded}");
        assert_eq!(samples[0], decoded / 2);
        assert_eq!(&samples[1..], [decoded; 3]);
        assert_eq!(pieces[1], Piece::Silence(20));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Heard(usize, u64),
        Audio(usize, usize),
        Silence(usize, u64),
        Advance(u64),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0..3usize, 0..3000u64).prop_map(|(l, dt)| Op::Heard(l, dt)),
            (0..3usize, 0..2000usize).prop_map(|(l, n)| Op::Audio(l, n)),
            (0..3usize, 0..20_000u64).prop_map(|(l, n)| Op::Silence(l, n)),
            (0..3000u64).prop_map(Op::Advance),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever the streams do and however time passes: no panic,
        /// each channel's waiting audio stays within its bound, the file
        /// never runs ahead of what was given or the clock, and it
        /// finishes as a valid WAV holding every frame written.
        #[test]
        fn any_sequence_stays_bounded_and_finishes_valid(ops in proptest::collection::vec(op(), 0..200)) {
            let mut a = aligner(3);
            let mut now = Duration::ZERO;
            let mut given = 0u64;
            for op in ops {
                match op {
                    Op::Heard(lane, dt) => {
                        now += ms(dt);
                        a.heard(lane, now);
                    }
                    Op::Audio(lane, n) => {
                        given += n as u64;
                        a.push(lane, vec![Piece::Audio(vec![1; n])]);
                    }
                    Op::Silence(lane, n) => {
                        given += n;
                        a.push(lane, vec![Piece::Silence(n)]);
                    }
                    Op::Advance(dt) => {
                        now += ms(dt);
                        a.advance(now);
                    }
                }
                for lane in &a.lanes {
                    proptest::prop_assert!(lane.waiting.len() <= a.max_waiting);
                }
                let clock = (now.as_millis() as u64) * 8;
                proptest::prop_assert!(a.written <= given.max(clock) + 1);
            }
            let file = a.finish();
            proptest::prop_assert_eq!(file.error, None);
            let bytes = file.sink.unwrap().into_inner();
            let wav = callrec_audio::wav::WavFile::parse(&bytes).unwrap();
            proptest::prop_assert_eq!(wav.frames(), file.frames);
        }
    }
}
