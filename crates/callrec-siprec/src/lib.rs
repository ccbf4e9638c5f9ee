//! SIPREC for a recording server (RFC 7865, RFC 7866): what a recording
//! client (an SBC or PBX) offers in its INVITE, and the answer.
//!
//! A recording client forks a call to a recording server with an INVITE
//! whose body is `multipart/mixed`: an SDP offer with one `sendonly` audio
//! stream per recorded direction (each with an `a=label`), and
//! `application/rs-metadata+xml` saying who the participants are and
//! which stream each sends. [`RecordingOffer::parse`] reads both,
//! [`answer`] writes the `recvonly` SDP answer, and
//! [`RecordingOffer::sender`] says whose audio each stream carries.
//! [`Srs`] is a recording server's SIP side built on them: SIP messages
//! and the time in, messages to send and recording sessions to start,
//! update and stop out.
//!
//! Sans-IO: bytes in, values out; no sockets, no clocks. Strict about the
//! protocol, forgiving about vendor variants: LF line ends, missing or
//! extra blank lines, parts in either order, the pre-RFC metadata
//! namespaces and `<participant id>` forms, vendor extension data skipped.
//! Every input-controlled size has a limit, and every error names the
//! value or line. See `docs/siprec.md`.
//!
//! ```
//! use callrec_siprec::{answer, RecordingOffer};
//!
//! let content_type = "multipart/mixed;boundary=foobar";
//! let body = b"--foobar\r\n\
//! Content-Type: application/sdp\r\n\r\n\
//! v=0\r\no=SRC 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
//! m=audio 12240 RTP/AVP 8\r\na=label:1\r\na=sendonly\r\n\
//! m=audio 12242 RTP/AVP 8\r\na=label:2\r\na=sendonly\r\n\
//! --foobar\r\n\
//! Content-Type: application/rs-metadata+xml\r\n\
//! Content-Disposition: recording-session\r\n\r\n\
//! <recording xmlns='urn:ietf:params:xml:ns:recording:1'>\
//! <participant participant_id='a'><nameID aor='sip:1001@pbx'><name>Ann</name></nameID></participant>\
//! <participant participant_id='b'><nameID aor='sip:1002@pbx'/></participant>\
//! <stream stream_id='s1'><label>1</label></stream><stream stream_id='s2'><label>2</label></stream>\
//! <participantstreamassoc participant_id='a'><send>s1</send></participantstreamassoc>\
//! <participantstreamassoc participant_id='b'><send>s2</send></participantstreamassoc>\
//! </recording>\r\n\
//! --foobar--\r\n";
//!
//! let offer = RecordingOffer::parse(content_type, body)?;
//! assert_eq!(offer.sdp.media.len(), 2);
//! assert_eq!(offer.sender(0).and_then(|p| p.name.as_deref()), Some("Ann"));
//! assert_eq!(offer.sender(1).and_then(|p| p.aor.as_deref()), Some("sip:1002@pbx"));
//!
//! let sdp = answer(&offer.sdp, "192.0.2.10".parse()?, &[Some(40000), Some(40002)], 1, 1)?;
//! assert!(sdp.contains("m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=label:1\r\na=recvonly\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Not supported
//! SRTP (`RTP/SAVP` streams are rejected with port 0), codecs other than
//! PCMA, PCMU and G.722 (rejected the same way), offerless INVITEs,
//! reliable provisional responses (`100rel`) and session timers.
//!
//! # Minimum Rust version
//! 1.85 (edition 2024).
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::exhaustive_enums, clippy::exhaustive_structs)]
#![doc(test(attr(deny(warnings))))]

mod error;
pub mod metadata;
pub mod multipart;
pub mod sdp;
pub mod srs;

pub use error::Error;
pub use metadata::{Metadata, Participant, Stream};
pub use multipart::Part;
pub use sdp::{
    Codec, Direction, MediaDescription, RtpMap, SessionDescription, StreamChoice, answer,
};
pub use srs::{PortAllocator, RecordedStream, Srs, SrsConfig, SrsEvent, response_to};

/// What a recording client offers: the SDP and, when sent, the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordingOffer<'a> {
    /// The SDP offer.
    pub sdp: SessionDescription<'a>,
    /// The recording metadata; `None` when the client sent none with this
    /// offer (RFC 7866 allows it to follow in a later request), or sent
    /// metadata that could not be read ([`metadata_error`](Self::metadata_error)).
    pub metadata: Option<Metadata>,
    /// Why the metadata the client sent could not be read. The offer
    /// stands without it: the audio can be recorded, and the server says
    /// what was wrong in its log (vendors do send XML that is not
    /// well-formed).
    pub metadata_error: Option<Error>,
}

/// The media types of recording metadata: RFC 7866's and the drafts'.
pub const METADATA_TYPES: [&str; 2] = ["application/rs-metadata+xml", "application/rs-metadata"];

impl<'a> RecordingOffer<'a> {
    /// Reads an INVITE's (or re-INVITE's) body, given its `Content-Type`:
    /// `multipart/mixed` (or `multipart/related`) with an
    /// `application/sdp` part and, optionally, an rs-metadata part, in
    /// either order; or `application/sdp` alone.
    ///
    /// # Errors
    /// [`Error::ContentType`] for another type, [`Error::Boundary`],
    /// [`Error::NoParts`] and [`Error::NoSdp`] for a multipart body
    /// without them, and the SDP's own errors. Metadata that cannot be
    /// read is no error: see [`metadata_error`](Self::metadata_error).
    pub fn parse(content_type: &str, body: &'a [u8]) -> Result<Self, Error> {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if media_type.eq_ignore_ascii_case("application/sdp") {
            return Ok(Self {
                sdp: SessionDescription::parse(body)?,
                metadata: None,
                metadata_error: None,
            });
        }
        if !media_type.eq_ignore_ascii_case("multipart/mixed")
            && !media_type.eq_ignore_ascii_case("multipart/related")
        {
            return Err(Error::ContentType(content_type.to_owned()));
        }
        let parts = multipart::split(body, multipart::boundary(content_type)?)?;
        let sdp = parts
            .iter()
            .find(|p| p.is("application/sdp"))
            .or_else(|| parts.iter().find(|p| p.content_type.is_none()))
            .ok_or(Error::NoSdp)?;
        let sdp = SessionDescription::parse(sdp.content)?;
        let (metadata, metadata_error) = match parts
            .iter()
            .find(|p| METADATA_TYPES.iter().any(|t| p.is(t)))
            .map(|p| Metadata::parse(p.content))
        {
            None => (None, None),
            Some(Ok(metadata)) => (Some(metadata), None),
            Some(Err(e)) => (None, Some(e)),
        };
        Ok(Self {
            sdp,
            metadata,
            metadata_error,
        })
    }

    /// The participant that sends the stream of the `index`th `m=` line
    /// (found through its label), when the metadata says.
    pub fn sender(&self, index: usize) -> Option<&Participant> {
        let label = self.sdp.media.get(index)?.label?;
        self.metadata.as_ref()?.sender_of_label(label)
    }
}
