//! RTP for call recording: a strict zero-copy packet view, a writer, a
//! sans-IO packetizer for phones and a sans-IO receiver for recording
//! servers.
//!
//! A phone streams the mixed call audio to the recording server as RTP
//! (RFC 3550) over UDP: PCMA (payload type 8), PCMU (0) or G722 (9), 20 ms
//! per packet. [`RtpPacket::parse`] validates a packet once (version, CSRC
//! list, header extension including RFC 8285 elements, padding) and never
//! panics; [`RtpPacketBuilder`] writes one into a caller buffer;
//! [`Packetizer`] turns frames into packets; [`Receiver`] turns packets back
//! into payloads in order, with gaps measured so a recording keeps real
//! time. See `docs/rtp.md` for what is accepted and rejected, and why.
//!
//! ```
//! use callrec_rtp::{RtpPacket, RtpPacketBuilder, ExtensionElement, ExtensionSpec};
//!
//! let audio = [0xd5u8; 160];
//! let level = [ExtensionElement::new(1, &[0x7f])]; // RFC 6464 audio level
//! let builder = RtpPacketBuilder::new()
//!     .payload_type(8)
//!     .sequence_number(7)
//!     .timestamp(1120)
//!     .ssrc(0xdead_beef)
//!     .extension(ExtensionSpec::OneByte(&level))
//!     .payload(&audio);
//! let mut buf = vec![0u8; builder.buffer_len()];
//! builder.write(&mut buf)?;
//!
//! let packet = RtpPacket::parse(&buf)?;
//! assert_eq!(packet.payload(), &audio[..]);
//! let ext = packet.extension().unwrap();
//! assert_eq!(ext.elements().collect::<Vec<_>>(), level);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//! `no_std`. The packet view ([`RtpPacket`]), the builder
//! ([`RtpPacketBuilder::write`], [`RtpPacketBuilder::write_header`]), the
//! [`Packetizer`] and the payload-type table need no allocator and no
//! atomics: with `default-features = false` they link into a bare-metal
//! image without a global allocator (`examples/firmware` does, for
//! Cortex-M0/M4 and RISC-V). The `alloc` feature adds the [`Receiver`]
//! (its reorder buffer) and writing into a `Vec` or a `bytes::BufMut`;
//! the default `std` feature adds `alloc` and `std` in `bytes`.
//!
//! # Minimum Rust version
//! 1.85 (edition 2024).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::exhaustive_enums, clippy::exhaustive_structs)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;

/// The `bytes` crate, whose `BufMut` [`RtpPacketBuilder::write_buf`] takes.
#[cfg(feature = "alloc")]
pub use bytes;
/// The `rand_core` crate, whose `RngCore` the [`Packetizer`] draws from.
pub use rand_core;

mod builder;
mod packet;
mod packetizer;
mod payload;
#[cfg(feature = "alloc")]
mod receiver;

pub use builder::{ExtensionSpec, RtpPacketBuilder, WriteError};
pub use packet::{
    Csrcs, Extension, ExtensionElement, ExtensionElements, ExtensionForm, FIXED_HEADER_LEN,
    ONE_BYTE_PROFILE, ParseError, RtpPacket, TWO_BYTE_PROFILE, TWO_BYTE_PROFILE_MASK,
};
pub use packetizer::{Packetizer, PacketizerConfig};
pub use payload::{
    DYNAMIC_FIRST, DYNAMIC_LAST, EncodingName, EncodingNameError, MAX_ENCODING_NAME_LEN,
    NotDynamic, PayloadFormat, PayloadTypes,
};
#[cfg(feature = "alloc")]
pub use receiver::{
    Event, MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL, ReceivedPayload, Receiver, ReceiverConfig,
    ReceiverStats, ReceptionReport,
};

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[cfg(feature = "alloc")]
#[doc(hidden)]
pub mod fuzzing {
    use alloc::vec::Vec;
    use core::num::NonZeroU32;
    use core::time::Duration;

    use crate::{
        Event, ExtensionElement, ExtensionForm, ExtensionSpec, Receiver, ReceiverConfig, RtpPacket,
        RtpPacketBuilder,
    };

    /// If `data` parses, writing what was parsed and parsing that again
    /// gives the same header fields, CSRCs, extension, payload and padding.
    pub fn check_parse_write_parse(data: &[u8]) {
        let Ok(p) = RtpPacket::parse(data) else {
            return;
        };
        let csrcs: Vec<u32> = p.csrcs().collect();
        let ext = p.extension();
        let elements: Vec<ExtensionElement<'_>> =
            ext.map(|e| e.elements().collect()).unwrap_or_default();
        let mut b = RtpPacketBuilder::new()
            .marker(p.marker())
            .payload_type(p.payload_type())
            .sequence_number(p.sequence_number())
            .timestamp(p.timestamp())
            .ssrc(p.ssrc())
            .csrcs(&csrcs)
            .payload(p.payload())
            .padding(p.padding_len() as u8);
        if let Some(e) = ext {
            b = b.extension(match e.form() {
                ExtensionForm::OneByte => ExtensionSpec::OneByte(&elements),
                ExtensionForm::TwoByte { appbits } => ExtensionSpec::TwoByte {
                    appbits,
                    elements: &elements,
                },
                _ => ExtensionSpec::Raw {
                    profile: e.profile(),
                    data: e.data(),
                },
            });
        }
        let mut out = Vec::new();
        let n = b
            .write_vec(&mut out)
            .expect("a parsed packet can be written");
        assert_eq!(n, out.len());
        let q = RtpPacket::parse(&out).expect("what we write parses");
        assert_eq!(
            (
                q.marker(),
                q.payload_type(),
                q.sequence_number(),
                q.timestamp(),
                q.ssrc()
            ),
            (
                p.marker(),
                p.payload_type(),
                p.sequence_number(),
                p.timestamp(),
                p.ssrc()
            )
        );
        assert!(q.csrcs().eq(csrcs.iter().copied()));
        assert_eq!(q.payload(), p.payload());
        assert_eq!(q.padding_len(), p.padding_len());
        match (ext, q.extension()) {
            (None, None) => {}
            (Some(a), Some(b)) => {
                assert_eq!(a.profile(), b.profile());
                assert!(a.elements().eq(b.elements()));
                if a.form() == ExtensionForm::Other {
                    assert_eq!(a.data(), b.data());
                }
            }
            (a, b) => panic!("extension {a:?} became {b:?}"),
        }
    }

    /// Drives a receiver with packets and timer events decoded from `data`
    /// (9 bytes per packet: SSRC choice, sequence number, timestamp step,
    /// payload length, arrival step; a first byte of 0xff is a timeout,
    /// 0xfe a flush) and checks its invariants: payloads of one SSRC come
    /// out in increasing order, gaps respect the limit, memory stays bounded,
    /// and the media time released never exceeds the arrival clock (time
    /// since the epoch, here the first input) plus the configured lead. One
    /// packet in five is an RFC 4733 event (payload type 101) beside PCMU
    /// audio.
    pub fn check_receiver(data: &[u8]) {
        let config = ReceiverConfig::new(NonZeroU32::new(8000).unwrap_or(NonZeroU32::MIN))
            .reorder_packets(8)
            .reorder_delay(Duration::from_millis(60))
            .max_payload_len(64)
            .max_gap(Duration::from_secs(2))
            .media_payload_type(Some(0));
        check_receiver_with(config, Duration::from_millis(500), 64, 16_000, data);
    }

    /// [`check_receiver`] with any configuration whose `max_lead` is `lead`,
    /// whose `max_payload_len` is `max_payload` and whose `max_gap` is
    /// `max_gap_ticks` at 8 kHz (the server's own settings, say).
    pub fn check_receiver_with(
        config: ReceiverConfig,
        lead: Duration,
        max_payload: usize,
        max_gap_ticks: u32,
        data: &[u8],
    ) {
        let mut rx = Receiver::new(config);
        let mut fed_any = false;
        let mut released_ticks = 0u64;
        let mut longest = 0u64;
        let mut now = Duration::ZERO;
        let mut ts = 0u32;
        let mut payload = [0u8; 80];
        let mut buf = Vec::new();
        let mut last: Option<(u32, u16)> = None;
        let mut resyncs = 0;
        let mut fed = 0u64;
        for chunk in data.chunks_exact(9) {
            match chunk[0] {
                0xff => rx.handle_timeout(now),
                0xfe => rx.flush(),
                c => {
                    let ssrc = u32::from(c % 3);
                    let payload_type = if c % 5 == 4 { 101 } else { 0 };
                    let seq = u16::from_be_bytes([chunk[1], chunk[2]]);
                    ts = ts.wrapping_add(
                        u32::from_be_bytes([chunk[3], chunk[4], chunk[5], chunk[6]]) >> 8,
                    );
                    let len = usize::from(chunk[7]) % payload.len();
                    payload[..len].fill(chunk[1]);
                    buf.clear();
                    let written = RtpPacketBuilder::new()
                        .payload_type(payload_type)
                        .ssrc(ssrc)
                        .sequence_number(seq)
                        .timestamp(ts)
                        .payload(&payload[..len])
                        .write_vec(&mut buf);
                    assert!(written.is_ok());
                    let Ok(p) = RtpPacket::parse(&buf) else {
                        panic!("what we write parses")
                    };
                    rx.handle_packet(&p, now);
                    fed_any = true;
                    longest = longest.max(len as u64);
                    fed += 1;
                }
            }
            now += Duration::from_millis(u64::from(chunk[8]));
            let stats = rx.stats();
            if stats.resyncs != resyncs {
                resyncs = stats.resyncs;
                last = None;
            }
            while let Some(e) = rx.poll() {
                match e {
                    Event::Payload(p) => {
                        assert!(p.data.len() <= max_payload);
                        if p.payload_type == 0 {
                            released_ticks += p.data.len() as u64;
                        }
                        // Never the same packet twice in a row (a sender
                        // that restarted its numbering, an A.1 resync, may
                        // repeat a number: then `last` was reset below).
                        let this = (p.ssrc, p.sequence_number);
                        assert_ne!(last, Some(this));
                        last = Some(this);
                    }
                    Event::Gap { samples } => {
                        assert!(samples <= max_gap_ticks);
                        released_ticks += u64::from(samples);
                    }
                    Event::SsrcChanged { old, new } => {
                        assert_ne!(old, new);
                        // A new stream: it may reuse sequence numbers (and,
                        // after a switch back, the old stream's own).
                        last = None;
                    }
                }
            }
            if fed_any {
                // Ticks at 8 kHz since the epoch: 8 per millisecond, plus
                // the last payload.
                let wall = (now + lead).as_millis() as u64 * 8;
                assert!(
                    released_ticks <= wall + longest,
                    "{released_ticks} ticks released in {wall} ticks of wall-clock time"
                );
            }
        }
        let stats = rx.stats();
        assert!(stats.released <= fed);
    }
}

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
