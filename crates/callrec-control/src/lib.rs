//! The control protocol of network call recording on IP phones.
//!
//! A phone that records a call through a recording server opens a TCP
//! connection to it and sends `key=value&…` messages
//! (`application/x-www-form-urlencoded`): `RecordStartRequest`, answered by
//! `RecordStartResponse` with the UDP address the phone then streams the
//! call's RTP to, and later `RecordStopRequest` / `RecordStopResponse`. On a
//! socket error both sides end the session and clear its state. See
//! `docs/control-protocol.md` for the messages, framing and state diagrams.
//!
//! This crate is that protocol without I/O: typed messages with a
//! validating decoder ([`Message`]), framing ([`MessageSplitter`], and
//! [`ControlCodec`] for tokio-util with the default `tokio` feature), and
//! the two state machines ([`PhoneSession`], [`ServerSession`]) that take
//! bytes and time in and give bytes and events out.
//!
//! ```
//! use callrec_control::*;
//! use std::time::Instant;
//!
//! // A server that always hands out port 40000 on 10.0.0.9.
//! struct OnePort;
//! impl PortAllocator for OnePort {
//!     fn allocate(&mut self, _: &RecordStartRequest) -> Result<RtpTarget, Rejection> {
//!         Ok(RtpTarget::new("10.0.0.9".parse().unwrap(), 40000.try_into().unwrap()))
//!     }
//!     fn release(&mut self, _: &SessionId, _: &RtpTarget) {}
//! }
//!
//! let now = Instant::now();
//! let mut req = RecordStartRequest::new(
//!     SessionId::new("4f2a")?, "00:15:65:aa:bb:cc".parse()?, Direction::Out, Codec::G722);
//! req.remote_number = "1010".into();
//! let mut phone = PhoneSession::new(req, now)?;
//! let mut server = ServerSession::new(OnePort, ServerConfig::default(), now);
//!
//! // Start: phone → server → phone.
//! server.handle_data(&phone.poll_transmit().unwrap(), now);
//! assert!(matches!(server.poll_event(), Some(ServerEvent::Started { .. })));
//! phone.handle_data(&server.poll_transmit().unwrap(), now);
//! assert!(matches!(phone.poll_event(), Some(PhoneEvent::Recording { .. })));
//!
//! // Stop.
//! phone.stop("user", now)?;
//! server.handle_data(&phone.poll_transmit().unwrap(), now);
//! assert!(matches!(server.poll_event(), Some(ServerEvent::Stop { .. })));
//! phone.handle_data(&server.poll_transmit().unwrap(), now);
//! assert_eq!(phone.state(), &PhoneState::Stopped);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Limits
//! Messages are at most 4 KiB by default; `id` 1..=64 printable ASCII bytes,
//! numbers 128 bytes, names and reasons 256 bytes, host names 253 bytes. A
//! session buffers at most one message; a server connection holds at most 4
//! recordings by default.
//!
//! # Minimum Rust version
//! 1.85 (edition 2024).
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::exhaustive_enums, clippy::exhaustive_structs)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod fields;
mod framing;
mod message;
mod phone;
mod server;

/// The `bytes` crate, whose `BytesMut` the splitter and sessions use.
pub use bytes;
pub use error::{CodecError, MessageError, MessageErrorKind};
pub use fields::{
    Codec, Direction, Host, InvalidField, MAX_HOST_LEN, MAX_ID_LEN, MAX_NAME_LEN, MAX_NUMBER_LEN,
    Mac, SessionId,
};
#[cfg(feature = "tokio")]
pub use framing::ControlCodec;
pub use framing::{DEFAULT_MAX_MESSAGE_LEN, MessageSplitter, write_frame};
pub use message::{
    Command, Message, RecordStartRequest, RecordStartResponse, RecordStopRequest,
    RecordStopResponse, StartResult, StopResult,
};
pub use phone::{
    DEFAULT_RESPONSE_TIMEOUT, PhoneEvent, PhoneSession, PhoneState, ProtocolError, SessionError,
    TerminateCause,
};
/// The `rand_core` crate, whose `RngCore` generates session ids.
pub use rand_core;
pub use server::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_SESSIONS, IgnoredMessage, PortAllocator, Rejection,
    RtpTarget, ServerConfig, ServerEvent, ServerSession,
};
/// The `tokio-util` crate, whose `Decoder`/`Encoder` [`ControlCodec`]
/// implements.
#[cfg(feature = "tokio")]
pub use tokio_util;

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use bytes::BytesMut;

    use crate::{Message, MessageError, MessageSplitter};

    /// Every message of `stream`, read whole.
    fn decode_whole(stream: &[u8], max_len: usize) -> Vec<Result<Message, MessageError>> {
        decode_in_pieces(stream, &[], max_len)
    }

    /// Every message of `stream`, fed in pieces whose sizes come from
    /// `splits` (cycled; 0 means 1; empty means whole).
    fn decode_in_pieces(
        stream: &[u8],
        splits: &[u8],
        max_len: usize,
    ) -> Vec<Result<Message, MessageError>> {
        let mut splitter = MessageSplitter::with_max_len(max_len);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = stream;
        let mut i = 0;
        while !rest.is_empty() {
            let n = match splits {
                [] => rest.len(),
                s => usize::from(s[i % s.len()]).max(1).min(rest.len()),
            };
            i += 1;
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(m) = splitter.next_message(&mut buf) {
                out.push(m);
            }
            assert!(
                buf.len() <= max_len + 2,
                "splitter held {} bytes",
                buf.len()
            );
        }
        while let Some(m) = splitter.next_message_eof(&mut buf) {
            out.push(m);
        }
        out
    }

    /// Decoding `stream` gives the same messages and errors however it is
    /// split, and the splitter never holds more than `max + 2` bytes.
    pub fn check_split_independent(stream: &[u8], splits: &[u8], max_len: usize) {
        let whole = decode_whole(stream, max_len);
        let pieces = decode_in_pieces(stream, splits, max_len);
        assert_eq!(whole, pieces);
    }

    /// A message that decodes encodes to something that decodes to it again.
    pub fn check_message_round_trip(bytes: &[u8]) {
        if let Ok(message) = Message::parse(bytes) {
            let wire = message.to_vec().expect("a decoded message re-encodes");
            assert_eq!(Message::parse(&wire[..]), Ok(message));
        }
    }
}

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
