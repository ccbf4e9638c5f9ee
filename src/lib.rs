//! callrec: call recording for IP phones.
//!
//! This facade re-exports the callrec protocol crates as modules so an
//! application can depend on one crate; each crate can also be used alone.
//!
//! | module | crate | what it is |
//! |---|---|---|
//! | [`file`](mod@file) | `callrec-file` | the container phones write to a USB drive when recording locally |
//! | [`control`] | `callrec-control` | the TCP control protocol between phone and recording server (`std`) |
//! | [`rtp`] | `callrec-rtp` | RTP packets, packetizer and recording receiver |
//! | [`sip`] | `callrec-sip` | the `Record: on/off` INFO, a SIP parser with replies, URL record |
//! | [`audio`] | `callrec-audio` | G.711, G.722, the call mixer, WAV (writer and conversion need `std`) |
//! | [`siprec`] | `callrec-siprec` | SIPREC offers from a PBX or SBC: multipart, SDP offer and answer, rs-metadata (`std`) |
//!
//! The `examples/` directory composes them into tools; see the README.
#![forbid(unsafe_code)]
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(feature = "std")]
pub use callrec_audio as audio;
#[cfg(feature = "std")]
pub use callrec_control as control;
pub use callrec_file as file;
pub use callrec_rtp as rtp;
pub use callrec_sip as sip;
#[cfg(feature = "std")]
pub use callrec_siprec as siprec;
