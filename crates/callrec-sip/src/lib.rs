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
//! # let mut rng = callrec_test::SplitMix64(1);
//!
//! let mut dialog = Dialog::new(
//!     "a84b4c76e66710",
//!     NameAddr::new("sip:1009@pbx.example").display_name("Front \"Desk\"").tag("1928301774"),
//!     NameAddr::new("sip:1010@pbx.example").tag("a6c85cf"),
//!     "sip:1010@10.0.0.20",
//!     "sip:1009@10.0.0.14",
//!     "10.0.0.14:5060",
//! );
//! let info = dialog.record_info(Record::On).build(&mut rng)?;
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
//! `no_std` with `alloc`; the default `std` feature only enables `std` in
//! `bytes` and `nom`.
//!
//! # Minimum Rust version
//! 1.85 (edition 2024).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::exhaustive_enums, clippy::exhaustive_structs)]
#![doc(test(attr(deny(warnings))))]

extern crate alloc;

mod builder;
mod class;
mod parser;
mod record;
mod url;

pub use builder::{BuildError, Dialog, NameAddr, Record, RecordInfoBuilder, RecordKey, Transport};
pub use parser::{Header, Limits, ParseError, SipMessage, StartLine, canonical};
pub use record::{CSeq, RecordValue, ReplyError, ReplyStatus, reply};
pub use url::{UrlError, UrlRecord, UrlVars, parse_http_status};

/// Entry points for the fuzz targets in `fuzz/`; not a stable API.
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
}
