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
//! builder.write_into(&mut buf)?;
//!
//! let packet = RtpPacket::parse(&buf)?;
//! assert_eq!(packet.payload(), &audio[..]);
//! let ext = packet.extension().unwrap();
//! assert_eq!(ext.elements().collect::<Vec<_>>(), level);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//! `no_std` with `alloc` (the receiver's buffers); the default `std`
//! feature only enables `std` in the `bytes` dependency.
//!
//! # Minimum Rust version
//! 1.85 (edition 2024).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::exhaustive_enums, clippy::exhaustive_structs)]
#![doc(test(attr(deny(warnings))))]

extern crate alloc;

mod builder;
mod packet;
mod packetizer;
mod payload;
mod receiver;

pub use builder::{ExtensionSpec, RtpPacketBuilder, WriteError};
pub use packet::{
    Csrcs, Extension, ExtensionElement, ExtensionElements, ExtensionForm, FIXED_HEADER_LEN,
    ONE_BYTE_PROFILE, ParseError, RtpPacket, TWO_BYTE_PROFILE, TWO_BYTE_PROFILE_MASK,
};
pub use packetizer::{Packetizer, PacketizerConfig};
pub use payload::{DYNAMIC_FIRST, DYNAMIC_LAST, NotDynamic, PayloadFormat, PayloadTypes};
pub use receiver::{
    Event, MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL, ReceivedPayload, Receiver, ReceiverConfig,
    ReceiverStats, ReceptionReport,
};
