//! The crates speak one vocabulary (docs/vocabulary.md): their codec types
//! convert through the RFC 3551 payload type, and every public error type
//! is a `Display` + `core::error::Error`.

use callrec::{audio, control, file, rtp, sip};

#[test]
fn the_codec_types_agree_on_every_codec() {
    for (name, payload_type) in [("PCMA", 8u8), ("PCMU", 0), ("G722", 9)] {
        let f = file::Codec::from_payload_type(payload_type).unwrap();
        let c = control::Codec::from_payload_type(payload_type).unwrap();
        let r = rtp::PayloadFormat::from_payload_type(payload_type).unwrap();
        assert_eq!(f.as_str(), name);
        assert_eq!(c.as_str(), name);
        assert_eq!(r.encoding, name);
        assert_eq!(f.payload_type(), payload_type);
        assert_eq!(c.payload_type(), payload_type);
        assert_eq!(r.clock_rate, f.clock_rate().get());
        assert_eq!(file::Codec::from_name(name), Some(f));
        assert_eq!(name.parse::<control::Codec>(), Ok(c));
        match audio::g711::Law::from_payload_type(payload_type) {
            Some(law) => {
                assert_eq!(law.payload_type(), payload_type);
                assert_eq!(file::Codec::from(law), f);
            }
            None => assert_eq!(name, "G722"),
        }
    }
    for other in [3u8, 18, 96, 127, 128, 255] {
        assert_eq!(file::Codec::from_payload_type(other), None);
        assert_eq!(control::Codec::from_payload_type(other), None);
        assert_eq!(audio::g711::Law::from_payload_type(other), None);
    }
    // The RTP table knows every static audio type, not only these three.
    assert_eq!(
        rtp::PayloadFormat::from_payload_type(18).unwrap().encoding,
        "G729"
    );
    assert_eq!(rtp::PayloadFormat::from_payload_type(96), None);
}

fn is_error<E: core::error::Error + core::fmt::Display + Send + Sync + 'static>() {}

#[test]
fn every_public_error_is_display_and_error() {
    is_error::<file::ParseError>();
    is_error::<file::Error>();
    is_error::<rtp::ParseError>();
    is_error::<rtp::WriteError>();
    is_error::<rtp::NotDynamic>();
    is_error::<rtp::EncodingNameError>();
    is_error::<sip::WriteError>();
    is_error::<sip::ParseError>();
    is_error::<sip::ReplyError>();
    is_error::<sip::UrlError>();
    is_error::<control::MessageError>();
    is_error::<control::CodecError>();
    is_error::<control::ProtocolError>();
    is_error::<control::SessionError>();
    is_error::<audio::wav::WavParseError>();
    is_error::<audio::Error>();
    is_error::<audio::mix::MixError>();
    // Messages name what was wrong.
    let e = control::ProtocolError::Unexpected {
        command: control::Command::StopResponse,
    };
    assert_eq!(
        e.to_string(),
        "RecordStopResponse does not fit the session's state"
    );
}
