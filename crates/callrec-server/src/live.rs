//! Live listening: a running recording's audio as it is written, in 20 ms
//! frames of 16-bit PCM, for whoever listens (the recordings service's
//! WebSocket).
//!
//! The recording's own task publishes; it never waits for a listener. Each
//! recording has a [`LiveFeed`] in the server's [`Live`] registry while it
//! runs. Its broadcast channel is made when the first listener subscribes
//! (a recording nobody hears costs a counter per packet), holds at most
//! [`FEED_CAPACITY`] chunks of [`FRAMES_PER_CHUNK`] frames, and a listener
//! that falls further behind gets [`LiveError::Behind`] from
//! [`Listener::next`] (or [`Listener::try_next`]) and is dropped by its
//! caller. The recording goes on either way.
//!
//! A frame on the wire ([`LiveChunk::messages`]) is 4 bytes of media time
//! (big-endian samples per channel since the recording's start, modulo
//! 2³²) and then the frame's interleaved 16-bit little-endian samples.
//! Silence the recording inserts (loss, hold) is sent as silent frames, so
//! a listener's clock matches the recording's.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use callrec_audio::g711::Law;
use callrec_audio::g722;
use tokio::sync::broadcast;

/// Chunks a feed holds for its slowest listener: 5.12 s of audio
/// ([`FRAMES_PER_CHUNK`] frames each).
pub const FEED_CAPACITY: usize = 128;

/// One frame's length.
pub const FRAME: Duration = Duration::from_millis(20);

/// Bytes of media time before each frame's samples.
pub const MEDIA_TIME_LEN: usize = 4;

/// Most silent frames sent for one silence (1 s): a hold's silence comes
/// at once when the packets resume, and ten minutes of zeros in a burst
/// help no listener. The frames after it carry the media time, so the
/// listener's clock still matches the recording's.
pub const MAX_SILENT_FRAMES: u32 = 50;

/// Frames a feed publishes at once (40 ms): each publication wakes every
/// listener and each wake costs a write, so two frames per wake halve the
/// listeners' cost for 20 ms more delay (docs/PERFORMANCE.md).
pub const FRAMES_PER_CHUNK: usize = 2;

/// The audio a feed carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LiveFormat {
    /// Samples per second per channel: 8000 or 16000.
    pub rate: u32,
    /// Interleaved channels: 1 for a phone call, one per stream for
    /// SIPREC.
    pub channels: u16,
}

impl LiveFormat {
    /// Samples per channel in one 20 ms frame.
    pub fn frame_samples(self) -> usize {
        self.rate as usize / 50
    }

    /// Bytes of one frame's message: media time and samples.
    pub fn message_len(self) -> usize {
        MEDIA_TIME_LEN + 2 * self.frame_samples() * usize::from(self.channels)
    }
}

/// What a feed sends its listeners.
#[derive(Debug, Clone)]
pub enum LiveChunk {
    /// Up to [`FRAMES_PER_CHUNK`] 20 ms frames, one after another, each
    /// already in its wire form.
    Audio {
        /// Each frame's media time and samples (see the module's
        /// documentation), back to back.
        frames: Bytes,
        /// For each frame, when the newest packet in it reached the server
        /// (the kernel's arrival time), for the latency a listener
        /// measures.
        arrived: [Option<Instant>; FRAMES_PER_CHUNK],
    },
    /// `frames` silent frames from `media_time` (a hold or a loss the
    /// recording filled), sent as one chunk so a long silence costs the
    /// feed one place, not one per frame. At most [`MAX_SILENT_FRAMES`]:
    /// a longer silence is sent as its last second.
    Silence {
        /// Media time of the first silent frame.
        media_time: u32,
        /// How many 20 ms frames.
        frames: u32,
    },
    /// The recording ended: the reason it stopped.
    End(Arc<str>),
}

impl LiveChunk {
    /// The chunk's frames in their wire form, one message each (none for
    /// [`LiveChunk::End`]); audio frames are slices of the chunk, not
    /// copies.
    pub fn messages(&self, format: LiveFormat) -> impl Iterator<Item = Bytes> + '_ {
        let len = format.message_len();
        let (audio, silence) = match self {
            Self::Audio { frames, .. } => (Some(frames.clone()), None),
            Self::Silence { media_time, frames } => (None, Some((*media_time, *frames))),
            Self::End(_) => (None, None),
        };
        let audio = audio.into_iter().flat_map(move |frames| {
            let n = frames.len() / len;
            (0..n).map(move |k| frames.slice(k * len..(k + 1) * len))
        });
        let per_frame = format.frame_samples() as u32;
        let silent = silence.into_iter().flat_map(move |(start, frames)| {
            (0..frames).map(move |k| {
                let mut message = vec![0u8; len];
                let time = start.wrapping_add(k.wrapping_mul(per_frame));
                message[..MEDIA_TIME_LEN].copy_from_slice(&time.to_be_bytes());
                Bytes::from(message)
            })
        });
        audio.chain(silent)
    }
}

/// Why a listener cannot listen, or stops.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveError {
    /// No recording with this id is running on this server.
    NotRunning(String),
    /// The recording has as many listeners as allowed.
    TooManyForRecording {
        /// The recording.
        recording_id: String,
        /// The limit.
        limit: usize,
    },
    /// The server has as many listeners as allowed.
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// The listener fell at least this many frames behind the recording
    /// and was dropped.
    Behind(u64),
}

impl core::fmt::Display for LiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotRunning(id) => write!(f, "recording {id} is not running on this server"),
            Self::TooManyForRecording {
                recording_id,
                limit,
            } => write!(
                f,
                "recording {recording_id} already has {limit} listeners, the limit"
            ),
            Self::TooMany { limit } => {
                write!(f, "the server already has {limit} listeners, the limit")
            }
            Self::Behind(n) => write!(
                f,
                "the listener fell {n} frames behind the recording and was dropped"
            ),
        }
    }
}

impl core::error::Error for LiveError {}

/// How many may listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenLimits {
    /// Listeners of one recording.
    pub per_recording: usize,
    /// Listeners of the whole server.
    pub total: usize,
}

impl Default for ListenLimits {
    fn default() -> Self {
        Self {
            per_recording: 8,
            total: 200,
        }
    }
}

/// The bounds of the latency histogram, in milliseconds.
pub const LATENCY_BOUNDS_MS: [u64; 16] = [
    1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 250, 500, 1000,
];

/// Listening's counters, for metrics.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Listeners now.
    pub listeners: AtomicUsize,
    /// Listeners that started listening (counted by whoever serves them).
    pub listeners_started: AtomicU64,
    /// Listeners dropped for falling behind or not reading.
    pub listeners_dropped: AtomicU64,
    /// Listeners refused by a limit.
    pub listeners_refused: AtomicU64,
    /// Frames sent.
    pub frames_sent: AtomicU64,
    /// Latency from a packet's arrival to its frame's send, per bound of
    /// [`LATENCY_BOUNDS_MS`] (the last counts everything above).
    pub latency_buckets: [AtomicU64; LATENCY_BOUNDS_MS.len() + 1],
    /// Sum of the latencies, in microseconds.
    pub latency_sum_us: AtomicU64,
}

impl LiveCounters {
    /// Counts one frame sent `latency` after its newest packet arrived.
    pub fn frame_sent(&self, latency: Option<Duration>) {
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
        if let Some(latency) = latency {
            let ms = latency.as_micros() as f64 / 1000.0;
            let bucket = LATENCY_BOUNDS_MS
                .iter()
                .position(|&b| ms <= b as f64)
                .unwrap_or(LATENCY_BOUNDS_MS.len());
            self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        }
    }
}

/// The running recordings' feeds: the recording tasks open and end them,
/// listeners subscribe. Cheap to clone (one registry).
#[derive(Debug, Clone, Default)]
pub struct Live {
    feeds: Arc<Mutex<HashMap<String, Arc<LiveFeed>>>>,
    counters: Arc<LiveCounters>,
}

/// One running recording's feed.
#[derive(Debug)]
pub struct LiveFeed {
    format: LiveFormat,
    /// Made by the first listener.
    sender: OnceLock<broadcast::Sender<LiveChunk>>,
    listeners: AtomicUsize,
    /// Chunks sent so far: a listener that polls sees whether there is
    /// anything new without taking the channel's lock.
    published: AtomicU64,
}

impl LiveFeed {
    /// Sends `chunk` to the listeners, and counts it.
    fn send(&self, sender: &broadcast::Sender<LiveChunk>, chunk: LiveChunk) {
        let _ = sender.send(chunk);
        self.published.fetch_add(1, Ordering::Release);
    }
}

impl Live {
    /// The counters of every listener.
    pub fn counters(&self) -> &Arc<LiveCounters> {
        &self.counters
    }

    fn feeds(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveFeed>>> {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Recordings running now with a feed.
    pub fn running(&self) -> usize {
        self.feeds().len()
    }

    /// A feed for recording `recording_id`, while the returned entry
    /// lives; the tap is what the recording writes into.
    pub(crate) fn open(&self, recording_id: &str, format: LiveFormat) -> (LiveTap, LiveEntry) {
        let feed = Arc::new(LiveFeed {
            format,
            sender: OnceLock::new(),
            listeners: AtomicUsize::new(0),
            published: AtomicU64::new(0),
        });
        self.feeds().insert(recording_id.to_owned(), feed.clone());
        let tap = LiveTap::new(feed.clone());
        let entry = LiveEntry {
            live: self.clone(),
            recording_id: recording_id.to_owned(),
            feed,
            ended: false,
        };
        (tap, entry)
    }

    /// Listens to recording `recording_id` from now on.
    ///
    /// # Errors
    /// [`LiveError::NotRunning`] when it is not running here; a
    /// `TooMany…` error when a limit is reached.
    pub fn subscribe(
        &self,
        recording_id: &str,
        limits: ListenLimits,
    ) -> Result<Listener, LiveError> {
        // Under the registry's lock, as the end is told under it: a
        // listener either subscribes before the end (and hears it) or finds
        // the recording gone.
        let feeds = self.feeds();
        let feed = feeds
            .get(recording_id)
            .cloned()
            .ok_or_else(|| LiveError::NotRunning(recording_id.to_owned()))?;
        let refused = |e| {
            self.counters
                .listeners_refused
                .fetch_add(1, Ordering::Relaxed);
            Err(e)
        };
        let total = &self.counters.listeners;
        if total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limits.total).then_some(n + 1)
            })
            .is_err()
        {
            return refused(LiveError::TooMany {
                limit: limits.total,
            });
        }
        if feed
            .listeners
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limits.per_recording).then_some(n + 1)
            })
            .is_err()
        {
            total.fetch_sub(1, Ordering::AcqRel);
            return refused(LiveError::TooManyForRecording {
                recording_id: recording_id.to_owned(),
                limit: limits.per_recording,
            });
        }
        let receiver = feed
            .sender
            .get_or_init(|| broadcast::channel(FEED_CAPACITY).0)
            .subscribe();
        drop(feeds);
        Ok(Listener {
            format: feed.format,
            receiver,
            seen: 0,
            feed,
            counters: self.counters.clone(),
        })
    }
}

/// A running recording's place in the registry; ending it (or dropping
/// it) removes the feed and tells its listeners the recording ended.
#[derive(Debug)]
pub(crate) struct LiveEntry {
    live: Live,
    recording_id: String,
    feed: Arc<LiveFeed>,
    ended: bool,
}

impl LiveEntry {
    /// The recording stopped for `reason`.
    pub(crate) fn end(mut self, reason: &str) {
        self.close(reason);
    }

    fn close(&mut self, reason: &str) {
        if core::mem::replace(&mut self.ended, true) {
            return;
        }
        let mut feeds = self.live.feeds();
        // Only its own feed (ids are random, but a registry never trusts
        // that).
        if feeds
            .get(&self.recording_id)
            .is_some_and(|feed| Arc::ptr_eq(feed, &self.feed))
        {
            feeds.remove(&self.recording_id);
        }
        if let Some(sender) = self.feed.sender.get() {
            self.feed.send(sender, LiveChunk::End(reason.into()));
        }
        drop(feeds);
    }
}

impl Drop for LiveEntry {
    fn drop(&mut self) {
        self.close("recording ended");
    }
}

/// One listener of one recording: its frames in order, until the
/// recording ends or the listener falls behind.
#[derive(Debug)]
pub struct Listener {
    format: LiveFormat,
    receiver: broadcast::Receiver<LiveChunk>,
    /// The feed's count of chunks sent when the receiver was last found
    /// empty.
    seen: u64,
    feed: Arc<LiveFeed>,
    counters: Arc<LiveCounters>,
}

impl Listener {
    /// The audio's format.
    pub fn format(&self) -> LiveFormat {
        self.format
    }

    /// The next chunk; [`LiveChunk::End`] once the recording has ended.
    ///
    /// # Errors
    /// [`LiveError::Behind`] when the listener fell more than
    /// [`FEED_CAPACITY`] chunks behind (counted as dropped): it should be
    /// closed.
    pub async fn next(&mut self) -> Result<LiveChunk, LiveError> {
        match self.receiver.recv().await {
            Ok(chunk) => Ok(chunk),
            Err(broadcast::error::RecvError::Closed) => Ok(Self::feed_closed()),
            Err(broadcast::error::RecvError::Lagged(chunks)) => {
                self.dropped();
                Err(LiveError::Behind(chunks * FRAMES_PER_CHUNK as u64))
            }
        }
    }

    /// The next chunk if one is waiting, without waiting: for a caller
    /// that serves its listeners on a tick of its own, so that a
    /// publication wakes nobody.
    ///
    /// # Errors
    /// As [`Listener::next`]: [`LiveError::Behind`] when the listener fell
    /// more than [`FEED_CAPACITY`] chunks behind (counted as dropped).
    pub fn try_next(&mut self) -> Result<Option<LiveChunk>, LiveError> {
        // Nothing sent since the receiver was found empty: an atomic load,
        // where the channel would take its lock.
        let published = self.feed.published.load(Ordering::Acquire);
        if published == self.seen {
            return Ok(None);
        }
        match self.receiver.try_recv() {
            Ok(chunk) => Ok(Some(chunk)),
            Err(broadcast::error::TryRecvError::Empty) => {
                self.seen = published;
                Ok(None)
            }
            Err(broadcast::error::TryRecvError::Closed) => Ok(Some(Self::feed_closed())),
            Err(broadcast::error::TryRecvError::Lagged(chunks)) => {
                self.dropped();
                Err(LiveError::Behind(chunks * FRAMES_PER_CHUNK as u64))
            }
        }
    }

    /// Skips what was published since the listener subscribed, so that
    /// it starts at the newest audio: a listener subscribes before its
    /// WebSocket's upgrade, which takes tens of milliseconds when many
    /// connect at once, and those chunks would start it that much behind
    /// for good. The recording's end, if it came meanwhile.
    pub fn skip_to_live_edge(&mut self) -> Option<LiveChunk> {
        loop {
            match self.receiver.try_recv() {
                Ok(LiveChunk::End(reason)) => return Some(LiveChunk::End(reason)),
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(broadcast::error::TryRecvError::Empty) => return None,
                Err(broadcast::error::TryRecvError::Closed) => {
                    return Some(Self::feed_closed());
                }
            }
        }
    }

    /// The end, when the feed's sender went without telling one.
    fn feed_closed() -> LiveChunk {
        LiveChunk::End("recording ended".into())
    }

    /// Counts this listener as dropped (it stopped reading).
    pub fn dropped(&self) {
        self.counters
            .listeners_dropped
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.feed.listeners.fetch_sub(1, Ordering::AcqRel);
        self.counters.listeners.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How a tap turns what the recording writes into samples.
#[derive(Debug)]
pub(crate) enum LiveDecoding {
    /// 16-bit samples already (a SIPREC session's interleaved frames).
    Pcm,
    /// G.711 codes.
    Law(Law),
    /// G.722 codes (16 kHz).
    G722(Box<g722::Decoder>),
}

/// What a recording writes into its feed, sans-IO: samples in, 20 ms
/// frames out, and nothing but a count while nobody listens.
#[derive(Debug)]
pub(crate) struct LiveTap {
    feed: Arc<LiveFeed>,
    decoding: LiveDecoding,
    /// Samples per channel written since the start (the media time).
    written: u64,
    /// Interleaved samples of the frame being filled.
    pending: Vec<i16>,
    /// Media time of `pending`'s first sample.
    pending_start: u64,
    scratch: Vec<i16>,
    arrived: Option<Instant>,
    /// Whole frames in wire form not yet published, how many, and when
    /// each one's newest packet arrived.
    batch: Vec<u8>,
    batched: usize,
    batch_arrived: [Option<Instant>; FRAMES_PER_CHUNK],
    /// The feed's sender, once a listener made it.
    sender: Option<broadcast::Sender<LiveChunk>>,
    /// Whether someone listened at the last write.
    was_active: bool,
}

impl LiveTap {
    fn new(feed: Arc<LiveFeed>) -> Self {
        Self {
            feed,
            decoding: LiveDecoding::Pcm,
            written: 0,
            pending: Vec::new(),
            pending_start: 0,
            scratch: Vec::new(),
            arrived: None,
            batch: Vec::new(),
            batched: 0,
            batch_arrived: [None; FRAMES_PER_CHUNK],
            sender: None,
            was_active: false,
        }
    }

    /// The same tap for codes of `decoding`.
    pub(crate) fn decoding(mut self, decoding: LiveDecoding) -> Self {
        self.decoding = decoding;
        self
    }

    /// The newest packet reached the server at `at`; the stamp it
    /// replaces.
    pub(crate) fn arrived(&mut self, at: Option<Instant>) -> Option<Instant> {
        core::mem::replace(&mut self.arrived, at)
    }

    /// Whether anyone listens (and the feed's sender, cloned once, is at
    /// hand).
    fn active(&mut self) -> bool {
        if self.feed.listeners.load(Ordering::Acquire) == 0 {
            self.was_active = false;
            return false;
        }
        if !self.was_active {
            self.was_active = true;
            // The decoder's state is stale after a time without listeners:
            // start it afresh, as for a new stream.
            if let LiveDecoding::G722(decoder) = &mut self.decoding {
                **decoder = g722::Decoder::default();
            }
        }
        if self.sender.is_none() {
            self.sender = self.feed.sender.get().cloned();
        }
        self.sender.is_some()
    }

    fn channels(&self) -> usize {
        usize::from(self.feed.format.channels.max(1))
    }

    /// Nobody listens: only the media time moves.
    fn skip(&mut self, per_channel: u64) {
        self.written += per_channel;
        self.pending.clear();
        self.pending_start = self.written;
        self.batch.clear();
        self.batched = 0;
    }

    /// Codes of the recording's codec (a payload).
    pub(crate) fn codes(&mut self, data: &[u8]) {
        let per_channel = match self.decoding {
            LiveDecoding::G722(_) => 2 * data.len(),
            LiveDecoding::Law(_) => data.len(),
            LiveDecoding::Pcm => data.len() / 2 / self.channels(),
        };
        if !self.active() {
            // The G.722 decoder does not run while nobody listens; it
            // starts afresh with the next listener.
            return self.skip(per_channel as u64);
        }
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch.clear();
        match &mut self.decoding {
            LiveDecoding::Law(law) => {
                let law = *law;
                scratch.extend(data.iter().map(|&b| law.decode_sample(b)));
            }
            LiveDecoding::G722(decoder) => {
                scratch.resize(per_channel, 0);
                decoder.decode(data, &mut scratch);
            }
            LiveDecoding::Pcm => {
                scratch.extend(
                    data.chunks_exact(2)
                        .map(|pair| i16::from_le_bytes([pair[0], pair[1]])),
                );
            }
        }
        self.push(&scratch);
        self.scratch = scratch;
    }

    /// Interleaved 16-bit samples.
    pub(crate) fn pcm(&mut self, samples: &[i16]) {
        if self.active() {
            self.push(samples);
        } else {
            self.skip((samples.len() / self.channels()) as u64);
        }
    }

    /// Samples into frames, while someone listens.
    fn push(&mut self, samples: &[i16]) {
        let channels = self.channels();
        let per_channel = samples.len() / channels;
        let frame = self.feed.format.frame_samples() * channels;
        let mut rest = &samples[..per_channel * channels];
        while !rest.is_empty() {
            let take = (frame - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == frame {
                self.send_pending();
            }
        }
        self.written += per_channel as u64;
    }

    /// The frame filled in `pending` joins the batch, which is published
    /// when it holds [`FRAMES_PER_CHUNK`].
    fn send_pending(&mut self) {
        if self.batch.is_empty() {
            self.batch
                .reserve(FRAMES_PER_CHUNK * (MEDIA_TIME_LEN + 2 * self.pending.len()));
        }
        self.batch
            .extend_from_slice(&(self.pending_start as u32).to_be_bytes());
        let at = self.batch.len();
        self.batch.resize(at + 2 * self.pending.len(), 0);
        for (bytes, s) in self.batch[at..].chunks_exact_mut(2).zip(&self.pending) {
            bytes.copy_from_slice(&s.to_le_bytes());
        }
        let per_channel = (self.pending.len() / self.channels()) as u64;
        self.pending.clear();
        self.pending_start += per_channel;
        self.batch_arrived[self.batched] = self.arrived;
        self.batched += 1;
        if self.batched >= FRAMES_PER_CHUNK {
            self.publish();
        }
    }

    /// Publishes the frames batched so far.
    fn publish(&mut self) {
        if self.batched == 0 {
            return;
        }
        self.batched = 0;
        let frames = Bytes::from(core::mem::take(&mut self.batch));
        let arrived = core::mem::take(&mut self.batch_arrived);
        if let Some(sender) = &self.sender {
            self.feed.send(sender, LiveChunk::Audio { frames, arrived });
        }
    }

    /// `per_channel` samples of silence, as the recording wrote them.
    pub(crate) fn silence(&mut self, per_channel: u64) {
        if !self.active() {
            return self.skip(per_channel);
        }
        let channels = self.channels();
        let frame = self.feed.format.frame_samples();
        // Fill the frame begun, then whole frames as one chunk, then the
        // start of the next.
        let mut left = per_channel;
        let filled = (self.pending.len() / channels) as u64;
        if filled > 0 {
            let take = (frame as u64 - filled).min(left);
            self.pending
                .resize(self.pending.len() + take as usize * channels, 0);
            left -= take;
            if self.pending.len() == frame * channels {
                self.send_pending();
            }
        }
        // Either the silence ended inside the frame begun (which stays
        // pending), or that frame was sent and nothing is pending.
        if left > 0 {
            let whole = left / frame as u64;
            if whole > 0 {
                self.publish();
                let sent = whole.min(u64::from(MAX_SILENT_FRAMES));
                let first = self.pending_start + (whole - sent) * frame as u64;
                if let Some(sender) = &self.sender {
                    self.feed.send(
                        sender,
                        LiveChunk::Silence {
                            media_time: first as u32,
                            frames: sent as u32,
                        },
                    );
                }
                self.pending_start += whole * frame as u64;
                left -= whole * frame as u64;
            }
            self.pending.resize(left as usize * channels, 0);
        }
        self.written += per_channel;
    }
}

impl Drop for LiveTap {
    /// The recording's files are final: whole frames still batched go out
    /// before the feed's end.
    fn drop(&mut self) {
        if self.active() {
            self.publish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(listener: &mut Listener) -> Vec<(u32, Vec<i16>)> {
        let format = listener.format();
        let mut out = Vec::new();
        while let Ok(chunk) = listener.receiver.try_recv() {
            for message in chunk.messages(format) {
                assert_eq!(message.len(), format.message_len());
                let time = u32::from_be_bytes(message[..4].try_into().unwrap());
                let samples = message[4..]
                    .chunks_exact(2)
                    .map(|p| i16::from_le_bytes([p[0], p[1]]))
                    .collect();
                out.push((time, samples));
            }
        }
        out
    }

    const MONO: LiveFormat = LiveFormat {
        rate: 8000,
        channels: 1,
    };

    #[test]
    fn frames_carry_their_media_time_across_odd_payloads_and_silence() {
        let live = Live::default();
        let (mut tap, entry) = live.open("abc", MONO);
        // Before anyone listens only the time moves.
        tap.pcm(&[3; 100]);
        let mut listener = live.subscribe("abc", ListenLimits::default()).unwrap();
        tap.pcm(&[7; 90]);
        tap.pcm(&[8; 100]);
        tap.silence(400);
        tap.pcm(&[9; 160]);
        // The recording's writer goes before its end is told (as in
        // finalizing): the frame still batched is published.
        drop(tap);
        let frames = frames_of(&mut listener);
        let times: Vec<u32> = frames.iter().map(|f| f.0).collect();
        // 100 skipped; frames from 100 every 160 samples: 790 samples in all.
        assert_eq!(times, [100, 260, 420, 580]);
        assert_eq!(&frames[0].1[..90], &[7; 90]);
        assert_eq!(&frames[0].1[90..], &[8; 70]);
        assert_eq!(&frames[1].1[..30], &[8; 30]);
        assert!(frames[1].1[30..].iter().all(|&s| s == 0));
        assert!(frames[2].1.iter().all(|&s| s == 0));
        // The silence ends 110 samples into the fourth frame; the last
        // 110 samples wait for the fifth.
        assert!(frames[3].1[..110].iter().all(|&s| s == 0));
        assert_eq!(&frames[3].1[110..], &[9; 50]);
        entry.end("stopped by the phone");
        match listener.receiver.try_recv().unwrap() {
            LiveChunk::End(reason) => assert_eq!(&*reason, "stopped by the phone"),
            other => panic!("expected the end, got {other:?}"),
        }
        assert_eq!(live.running(), 0);
    }

    #[test]
    fn a_frame_is_its_media_time_then_its_samples_as_docs_live_md_shows() {
        let live = Live::default();
        let (mut tap, _entry) = live.open("hex", MONO);
        let mut listener = live.subscribe("hex", ListenLimits::default()).unwrap();
        // Six seconds in: media time 48,000.
        tap.silence(48_000);
        let _ = listener.receiver.try_recv().unwrap();
        let mut samples = vec![0i16; 160];
        samples[1] = 1000;
        samples[2] = -1000;
        tap.pcm(&samples);
        drop(tap);
        let LiveChunk::Audio { frames, .. } = listener.receiver.try_recv().unwrap() else {
            panic!("expected audio");
        };
        assert_eq!(frames.len(), MONO.message_len());
        assert_eq!(MONO.message_len(), 324);
        assert_eq!(
            &frames[..10],
            &[0x00, 0x00, 0xbb, 0x80, 0x00, 0x00, 0xe8, 0x03, 0x18, 0xfc]
        );
    }

    proptest::proptest! {
        /// Whatever the recording writes, in whatever pieces, a listener
        /// gets it back sample for sample in whole frames whose media
        /// times follow one another.
        #[test]
        fn any_writes_come_back_as_contiguous_frames(
            ops in proptest::collection::vec((proptest::bool::ANY, 0usize..700), 0..60),
            stereo in proptest::bool::ANY,
        ) {
            let format = LiveFormat { rate: 8000, channels: if stereo { 2 } else { 1 } };
            let channels = usize::from(format.channels);
            let live = Live::default();
            let (mut tap, entry) = live.open("p", format);
            let mut listener = live.subscribe("p", ListenLimits::default()).unwrap();
            let mut written: Vec<i16> = Vec::new();
            let mut heard: Vec<(u32, Vec<i16>)> = Vec::new();
            let mut next = 1i16;
            for (is_silence, n) in ops {
                if is_silence {
                    tap.silence(n as u64);
                    written.extend(core::iter::repeat_n(0, n * channels));
                } else {
                    let samples: Vec<i16> = (0..n * channels)
                        .map(|_| { next = next.wrapping_add(1).max(1); next })
                        .collect();
                    tap.pcm(&samples);
                    written.extend(&samples);
                }
                // Read as it goes, as a listener keeps up.
                frames_of_into(&mut listener, &mut heard);
            }
            drop(tap);
            drop(entry);
            frames_of_into(&mut listener, &mut heard);
            let per_frame = format.frame_samples();
            let whole = written.len() / channels / per_frame;
            proptest::prop_assert_eq!(heard.len(), whole);
            for (k, (time, _)) in heard.iter().enumerate() {
                proptest::prop_assert_eq!(*time as usize, k * per_frame);
            }
            let samples: Vec<i16> = heard.into_iter().flat_map(|(_, s)| s).collect();
            proptest::prop_assert_eq!(&samples[..], &written[..whole * per_frame * channels]);
        }
    }

    /// Drains what the listener has into `out` (media time and samples).
    fn frames_of_into(listener: &mut Listener, out: &mut Vec<(u32, Vec<i16>)>) {
        out.extend(frames_of(listener));
    }

    #[test]
    fn a_long_silence_is_one_chunk_and_g711_is_decoded() {
        let live = Live::default();
        let (tap, _entry) = live.open("r1", MONO);
        let mut tap = tap.decoding(LiveDecoding::Law(Law::Alaw));
        let mut listener = live.subscribe("r1", ListenLimits::default()).unwrap();
        tap.silence(8000 * 60);
        assert_eq!(listener.receiver.len(), 1, "a minute of hold is one chunk");
        tap.codes(&[0x55 ^ 0x80; 160]);
        drop(tap);
        let frames = frames_of(&mut listener);
        // Its last second, then the audio at its own media time.
        assert_eq!(frames.len(), 50 + 1);
        assert_eq!(frames[0].0, 8000 * 59);
        assert_eq!(frames[50].0, 8000 * 60);
        let mut expected = [0i16; 1];
        Law::Alaw.decode(&[0x55 ^ 0x80], &mut expected);
        assert!(frames[50].1.iter().all(|&s| s == expected[0]));
        assert_ne!(expected[0], 0);
    }

    #[test]
    fn a_listener_that_falls_behind_is_told_and_counted_and_limits_hold() {
        let live = Live::default();
        let (mut tap, entry) = live.open("r2", MONO);
        let limits = ListenLimits {
            per_recording: 1,
            total: 2,
        };
        let mut slow = live.subscribe("r2", limits).unwrap();
        assert_eq!(
            live.subscribe("r2", limits).unwrap_err(),
            LiveError::TooManyForRecording {
                recording_id: "r2".into(),
                limit: 1
            }
        );
        assert_eq!(
            live.subscribe("nope", limits).unwrap_err(),
            LiveError::NotRunning("nope".into())
        );
        for _ in 0..FRAMES_PER_CHUNK * (FEED_CAPACITY + 10) {
            tap.pcm(&[1; 160]);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let next = rt.block_on(slow.next());
        assert_eq!(
            next.unwrap_err(),
            LiveError::Behind(10 * FRAMES_PER_CHUNK as u64)
        );
        assert_eq!(live.counters().listeners_dropped.load(Ordering::Relaxed), 1);
        // A recording not running is not a limit reached.
        assert_eq!(live.counters().listeners_refused.load(Ordering::Relaxed), 1);
        drop(slow);
        assert_eq!(live.counters().listeners.load(Ordering::Relaxed), 0);
        let _again = live.subscribe("r2", limits).unwrap();
        drop(entry);
        assert!(live.subscribe("r2", limits).is_err());
    }

    #[test]
    fn a_listener_starts_at_the_live_edge_but_never_misses_the_end() {
        let live = Live::default();
        let (mut tap, entry) = live.open("edge", MONO);
        let mut listener = live.subscribe("edge", ListenLimits::default()).unwrap();
        // Published while its WebSocket was being upgraded: skipped.
        for _ in 0..3 * FRAMES_PER_CHUNK {
            tap.pcm(&[1; 160]);
        }
        assert_eq!(listener.receiver.len(), 3);
        assert!(listener.skip_to_live_edge().is_none());
        assert!(listener.receiver.is_empty());
        // What comes next is heard from its own media time on.
        for _ in 0..FRAMES_PER_CHUNK {
            tap.pcm(&[2; 160]);
        }
        let frames = frames_of(&mut listener);
        assert_eq!(frames.len(), FRAMES_PER_CHUNK);
        assert_eq!(frames[0].0, 3 * FRAMES_PER_CHUNK as u32 * 160);
        assert!(frames.iter().all(|(_, s)| s.iter().all(|&x| x == 2)));
        // An end among the skipped chunks is kept.
        tap.pcm(&[3; 160 * FRAMES_PER_CHUNK]);
        drop(tap);
        entry.end("stop request");
        match listener.skip_to_live_edge() {
            Some(LiveChunk::End(reason)) => assert_eq!(&*reason, "stop request"),
            other => panic!("expected the end, got {other:?}"),
        }
    }

    #[test]
    fn try_next_takes_what_was_sent_without_waiting_and_the_end_and_being_behind() {
        let live = Live::default();
        let (mut tap, entry) = live.open("poll", MONO);
        let mut listener = live.subscribe("poll", ListenLimits::default()).unwrap();
        assert!(listener.try_next().unwrap().is_none());
        // Half a chunk is not sent yet; the whole chunk is, once.
        tap.pcm(&[4; 160]);
        assert!(listener.try_next().unwrap().is_none());
        tap.pcm(&[5; 160]);
        match listener.try_next().unwrap() {
            Some(LiveChunk::Audio { frames, .. }) => {
                assert_eq!(frames.len(), FRAMES_PER_CHUNK * MONO.message_len());
            }
            other => panic!("expected a chunk, got {other:?}"),
        }
        assert!(listener.try_next().unwrap().is_none());
        assert!(listener.try_next().unwrap().is_none());
        // Sent after it was found empty: found again.
        tap.pcm(&[6; 160 * FRAMES_PER_CHUNK]);
        assert!(matches!(
            listener.try_next().unwrap(),
            Some(LiveChunk::Audio { .. })
        ));
        // Behind, as next() says it, and counted.
        for _ in 0..FEED_CAPACITY + 3 {
            tap.pcm(&[7; 160 * FRAMES_PER_CHUNK]);
        }
        assert_eq!(
            listener.try_next().unwrap_err(),
            LiveError::Behind(3 * FRAMES_PER_CHUNK as u64)
        );
        assert_eq!(live.counters().listeners_dropped.load(Ordering::Relaxed), 1);
        // The rest, then the end.
        let mut chunks = 0;
        while let Some(LiveChunk::Audio { .. }) = listener.try_next().unwrap() {
            chunks += 1;
        }
        assert_eq!(chunks, FEED_CAPACITY);
        drop(tap);
        entry.end("stop request");
        match listener.try_next().unwrap() {
            Some(LiveChunk::End(reason)) => assert_eq!(&*reason, "stop request"),
            other => panic!("expected the end, got {other:?}"),
        }
    }

    #[test]
    fn stereo_frames_interleave_and_latency_lands_in_its_bucket() {
        let live = Live::default();
        let stereo = LiveFormat {
            rate: 16000,
            channels: 2,
        };
        let (mut tap, _entry) = live.open("s", stereo);
        let mut listener = live.subscribe("s", ListenLimits::default()).unwrap();
        let samples: Vec<i16> = (0..640).map(|i| i as i16).collect();
        tap.pcm(&samples);
        drop(tap);
        let frames = frames_of(&mut listener);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].1, samples);
        live.counters()
            .frame_sent(Some(Duration::from_micros(12_500)));
        let buckets = &live.counters().latency_buckets;
        assert_eq!(
            buckets[4].load(Ordering::Relaxed),
            1,
            "12.5 ms is in the 15 ms bucket"
        );
    }
}
