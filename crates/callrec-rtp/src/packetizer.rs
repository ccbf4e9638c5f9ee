//! The sending side: frames in, RTP packets out, sans-IO.

use core::time::Duration;

use rand_core::RngCore;

use crate::packet::FIXED_HEADER_LEN;
use crate::{PayloadFormat, RtpPacketBuilder, WriteError};

/// How a [`Packetizer`] starts. Fields left `None` are drawn from the RNG,
/// as RFC 3550 §5.1 asks for the SSRC, initial sequence number and
/// initial timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketizerConfig {
    payload_type: u8,
    clock_rate: u32,
    ssrc: Option<u32>,
    sequence_number: Option<u16>,
    timestamp: Option<u32>,
}

impl PacketizerConfig {
    /// Packets of `format`'s payload type at its clock rate.
    pub fn new(format: &PayloadFormat) -> Self {
        Self {
            payload_type: format.payload_type,
            clock_rate: format.clock_rate,
            ssrc: None,
            sequence_number: None,
            timestamp: None,
        }
    }

    /// A fixed SSRC instead of a random one.
    #[must_use]
    pub fn ssrc(mut self, ssrc: u32) -> Self {
        self.ssrc = Some(ssrc);
        self
    }

    /// A fixed first sequence number instead of a random one.
    #[must_use]
    pub fn sequence_number(mut self, seq: u16) -> Self {
        self.sequence_number = Some(seq);
        self
    }

    /// A fixed first timestamp instead of a random one.
    #[must_use]
    pub fn timestamp(mut self, ts: u32) -> Self {
        self.timestamp = Some(ts);
        self
    }
}

/// Turns frames of audio into RTP packets in caller buffers, one packet per
/// frame, without allocating.
///
/// The sequence number wraps mod 2^16 and the timestamp mod 2^32; the
/// marker bit is set on the first packet of each talkspurt (the start, and
/// after [`skip_time`](Self::skip_time) / [`skip_samples`](Self::skip_samples)
/// for a pause or silence, which also advance the timestamp so receivers see
/// the gap).
///
/// ```
/// use callrec_rtp::{Packetizer, PacketizerConfig, PayloadFormat, RtpPacket};
/// use callrec_rtp::rand_core::{OsRng, TryRngCore};
/// use core::time::Duration;
///
/// let mut rng = OsRng.unwrap_err(); // or the firmware's RNG: it draws the SSRC
///
/// let config = PacketizerConfig::new(&PayloadFormat::PCMA).sequence_number(65535).timestamp(0);
/// let mut p = Packetizer::new(config, &mut rng);
/// let mut buf = [0u8; 1500];
///
/// let n = p.packetize(&[0xd5; 160], 160, &mut buf)?;
/// let first = RtpPacket::parse(&buf[..n])?;
/// assert!(first.marker());
/// assert_eq!((first.sequence_number(), first.timestamp()), (65535, 0));
///
/// p.skip_time(Duration::from_millis(100)); // paused: 800 ticks at 8 kHz
/// let n = p.packetize(&[0xd5; 160], 160, &mut buf)?;
/// let next = RtpPacket::parse(&buf[..n])?;
/// assert!(next.marker());
/// assert_eq!((next.sequence_number(), next.timestamp()), (0, 160 + 800));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Packetizer {
    payload_type: u8,
    clock_rate: u32,
    ssrc: u32,
    sequence_number: u16,
    timestamp: u32,
    marker_next: bool,
    /// Nanosecond-ticks carried between `skip_time` calls, so repeated
    /// skips do not drift.
    skip_remainder: u128,
    packets: u64,
    octets: u64,
}

impl Packetizer {
    /// A packetizer; unset fields of `config` come from `rng`.
    pub fn new(config: PacketizerConfig, rng: &mut impl RngCore) -> Self {
        Self {
            payload_type: config.payload_type,
            clock_rate: config.clock_rate,
            ssrc: config.ssrc.unwrap_or_else(|| rng.next_u32()),
            sequence_number: config
                .sequence_number
                .unwrap_or_else(|| rng.next_u32() as u16),
            timestamp: config.timestamp.unwrap_or_else(|| rng.next_u32()),
            marker_next: true,
            skip_remainder: 0,
            packets: 0,
            octets: 0,
        }
    }

    /// Writes `frame` as the next packet into `buf` and advances the
    /// timestamp by `samples` (RTP clock ticks the frame lasts); returns the
    /// packet length.
    ///
    /// # Errors
    /// [`WriteError::BufferTooShort`] (or a payload type over 127); the
    /// packetizer's state is unchanged then.
    #[inline]
    pub fn packetize(
        &mut self,
        frame: &[u8],
        samples: u32,
        buf: &mut [u8],
    ) -> Result<usize, WriteError> {
        let n = self.next_packet().payload(frame).write(buf)?;
        self.advance(frame.len(), samples);
        Ok(n)
    }

    /// Bytes in front of the frame in a packet of this packetizer (the
    /// 12-byte fixed header: it writes no CSRCs or extension).
    pub const HEADER_LEN: usize = FIXED_HEADER_LEN;

    /// The zero-copy twin of [`packetize`](Self::packetize): the frame is
    /// already at `buf[Self::HEADER_LEN..][..frame_len]`, put there by an
    /// encoder writing straight into the packet buffer, and only the header
    /// is written in front of it. Same packet, same state changes, no copy
    /// of the frame.
    ///
    /// ```
    /// use callrec_rtp::{Packetizer, PacketizerConfig, PayloadFormat, RtpPacket};
    /// use callrec_rtp::rand_core::{OsRng, TryRngCore};
    ///
    /// let mut rng = OsRng.unwrap_err();
    /// let mut packetizer = Packetizer::new(PacketizerConfig::new(&PayloadFormat::PCMA), &mut rng);
    /// let mut buf = [0u8; 1500];
    /// let frame = &mut buf[Packetizer::HEADER_LEN..][..160];
    /// frame.fill(0xd5); // e.g. G.711 encoded into place
    /// let n = packetizer.packetize_in_place(&mut buf, 160, 160)?;
    /// assert_eq!(RtpPacket::parse(&buf[..n])?.payload(), &[0xd5; 160][..]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`packetize`](Self::packetize); `buf` and the state are unchanged
    /// then.
    #[inline]
    pub fn packetize_in_place(
        &mut self,
        buf: &mut [u8],
        frame_len: usize,
        samples: u32,
    ) -> Result<usize, WriteError> {
        let n = self.next_packet().write_header(buf, frame_len)?;
        self.advance(frame_len, samples);
        Ok(n)
    }

    /// The header of the next packet.
    #[inline(always)]
    fn next_packet(&self) -> RtpPacketBuilder<'static> {
        RtpPacketBuilder::new()
            .marker(self.marker_next)
            .payload_type(self.payload_type)
            .sequence_number(self.sequence_number)
            .timestamp(self.timestamp)
            .ssrc(self.ssrc)
    }

    /// State after a packet of `frame_len` bytes lasting `samples` ticks.
    #[inline(always)]
    fn advance(&mut self, frame_len: usize, samples: u32) {
        self.marker_next = false;
        self.sequence_number = self.sequence_number.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.packets += 1;
        self.octets += frame_len as u64;
    }

    /// Nothing was sent for `samples` ticks (silence suppression, pause):
    /// the timestamp jumps and the next packet carries the marker bit.
    pub fn skip_samples(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.marker_next = true;
    }

    /// Like [`skip_samples`](Self::skip_samples) for `elapsed` media time at
    /// the clock rate; fractions of a tick carry over to the next skip.
    pub fn skip_time(&mut self, elapsed: Duration) {
        let total = elapsed.as_nanos() * u128::from(self.clock_rate) + self.skip_remainder;
        self.skip_remainder = total % 1_000_000_000;
        // Truncation is the wrap of the 32-bit timestamp.
        self.skip_samples((total / 1_000_000_000) as u32);
    }

    /// The SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Sequence number of the next packet.
    pub fn next_sequence_number(&self) -> u16 {
        self.sequence_number
    }

    /// Timestamp of the next packet.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Packets written (for an RTCP sender report).
    pub fn packets_sent(&self) -> u64 {
        self.packets
    }

    /// Payload octets written (for an RTCP sender report).
    pub fn octets_sent(&self) -> u64 {
        self.octets
    }
}
