//! SIP call-recording triggers.
//!
//! Phones that record through their SIP server send an in-dialog `INFO`
//! carrying `Record: on` (first press of the record key) or `Record: off`
//! (second press), with no body; Asterisk and FreeSWITCH act on it. Yealink
//! phones can instead send an HTTP GET to a configured URL ("URL record").
//! This crate builds that `INFO` from a [`Dialog`], parses SIP messages
//! strictly and in bounded memory ([`SipMessage`]) so a PBX or proxy can read
//! the `Record` value, builds the replies ([`reply`]), and builds the URL
//! record request ([`UrlRecord`]). See `docs/sip-record.md`.
//!
//! ```
//! use callrec_sip::{reply, Dialog, NameAddr, Record, RecordValue, ReplyStatus, SipMessage};
//! use callrec_sip::rand_core::{OsRng, TryRngCore};
//!
//! let mut rng = OsRng.unwrap_err(); // draws the Via branch
//! let mut dialog = Dialog::new("a84b4c76e66710")
//!     .local(NameAddr::new("sip:1009@pbx.example").display_name("Front \"Desk\"").tag("1928301774"))
//!     .remote(NameAddr::new("sip:1010@pbx.example").tag("a6c85cf"))
//!     .remote_target("sip:1010@10.0.0.20")
//!     .local_contact("sip:1009@10.0.0.14")
//!     .sent_by("10.0.0.14:5060");
//! let info = dialog.record_info(Record::On).to_vec(&mut rng)?;
//!
//! // The server side.
//! let request = SipMessage::parse(&info)?;
//! assert_eq!(request.method(), Some("INFO"));
//! assert_eq!(request.record(), RecordValue::On);
//! let ok = reply(&request, ReplyStatus::Ok, "srv1")?;
//! assert!(ok.starts_with(b"SIP/2.0 200 OK\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//! `no_std`. Without features, [`Dialog`] and [`RecordInfoBuilder::write`]
//! build the `INFO` into a caller buffer with no allocator and no atomics
//! (`examples/firmware` links it into bare-metal images). The `alloc`
//! feature adds the parser ([`SipMessage`]), replies, URL record, and
//! writing into a `Vec` or `bytes::BufMut`; the default `std` feature adds
//! `alloc` and `std` in `bytes` and `nom`.
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

mod builder;
mod class;
pub mod frame;
#[cfg(feature = "alloc")]
mod parser;
#[cfg(feature = "alloc")]
mod record;
#[cfg(feature = "alloc")]
mod url;

pub use builder::{
    Dialog, HeaderName, MAX_EXTRA_HEADERS, NameAddr, Record, RecordInfoBuilder, RecordKey,
    Transport, WriteError,
};
#[cfg(feature = "alloc")]
pub use parser::{Header, Limits, ParseError, SipMessage, StartLine, canonical};
#[cfg(feature = "alloc")]
pub use record::{CSeq, RecordValue, ReplyError, ReplyStatus, reply};
#[cfg(feature = "alloc")]
pub use url::{UrlError, UrlRecord, UrlVars, parse_http_status};

/// The `bytes` crate, whose `BufMut` [`RecordInfoBuilder::write_buf`] takes.
#[cfg(feature = "alloc")]
pub use bytes;
/// The `rand_core` crate, whose `RngCore` draws `Via` branches.
pub use rand_core;

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
#[cfg(feature = "alloc")]
#[doc(hidden)]
pub mod fuzzing {
    use crate::{ReplyStatus, SipMessage, reply};

    /// Parsing never panics; a request that parses gets a reply that
    /// parses, with the same Call-ID, CSeq and Via headers.
    pub fn check_parse_reply_parse(data: &[u8]) {
        let Ok(msg) = SipMessage::parse(data) else {
            return;
        };
        let _ = (msg.record(), msg.from_tag(), msg.to_tag(), msg.cseq());
        let Ok(out) = reply(&msg, ReplyStatus::NotAcceptableHere, "fuzz") else {
            return;
        };
        let back = SipMessage::parse(&out).expect("our reply parses");
        assert_eq!(back.call_id(), msg.call_id());
        assert_eq!(back.header("CSeq"), msg.header("CSeq"));
        assert!(back.header_values("Via").eq(msg.header_values("Via")));
        assert!(back.to_tag().is_some());
    }

    /// Framing never panics; a message it frames is within the buffer,
    /// and when it parses, its body is the Content-Length it was framed by.
    pub fn check_frame(data: &[u8]) {
        match crate::frame::next_frame(data, 4096) {
            Ok(crate::frame::Frame::Message { len }) => {
                assert!(len <= data.len());
                if let Ok(msg) = SipMessage::parse(&data[..len]) {
                    let head = len - msg.body().len();
                    assert!(head > 0 && data[..head].ends_with(b"\n"));
                }
            }
            Ok(crate::frame::Frame::KeepAlive { len, .. }) => assert!(len > 0 && len <= data.len()),
            _ => {}
        }
    }
}

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
