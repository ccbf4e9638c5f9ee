//! Offers as a recording client writes them, read back: proptest round
//! trips through the multipart writer, the SDP and the metadata, and the
//! answer read again.

use callrec_siprec::{Codec, Direction, RecordingOffer, SessionDescription, answer, multipart};
use proptest::prelude::*;

/// One offered stream: its label, codec payload type, direction and the
/// sender's number.
#[derive(Debug, Clone)]
struct Offered {
    label: String,
    payload_type: u8,
    inactive: bool,
    number: u32,
}

fn offered() -> impl Strategy<Value = Offered> {
    (
        "[a-zA-Z0-9_-]{1,12}",
        prop::sample::select(vec![0u8, 8, 9]),
        any::<bool>(),
        1000u32..99999,
    )
        .prop_map(|(label, payload_type, inactive, number)| Offered {
            label,
            payload_type,
            inactive,
            number,
        })
}

fn body_of(streams: &[Offered], boundary: &str, metadata_first: bool) -> Vec<u8> {
    let mut sdp = String::from(
        "v=0\r\no=SRC 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n",
    );
    let mut xml =
        String::from("<?xml version='1.0'?><recording xmlns='urn:ietf:params:xml:ns:recording:1'>");
    for (i, s) in streams.iter().enumerate() {
        sdp += &format!(
            "m=audio {} RTP/AVP {} 101\r\na=rtpmap:101 telephone-event/8000\r\na=label:{}\r\na={}\r\n",
            20000 + 2 * i,
            s.payload_type,
            s.label,
            if s.inactive { "inactive" } else { "sendonly" }
        );
        xml += &format!(
            "<participant participant_id='p{i}'><nameID aor='sip:{}@pbx.example'><name>Caller &lt;{i}&gt;</name></nameID></participant>\
             <stream stream_id='s{i}'><label>{}</label></stream>\
             <participantstreamassoc participant_id='p{i}'><send>s{i}</send></participantstreamassoc>",
            s.number, s.label
        );
    }
    xml += "</recording>";
    let sdp_part = ("application/sdp", sdp.as_bytes());
    let xml_part = ("application/rs-metadata+xml", xml.as_bytes());
    let parts = if metadata_first {
        [xml_part, sdp_part]
    } else {
        [sdp_part, xml_part]
    };
    multipart::write(boundary, &parts)
}

proptest! {
    #[test]
    fn offers_read_back_and_answers_match_them(
        streams in prop::collection::vec(offered(), 1..6),
        boundary in "[a-zA-Z0-9'()+_,./:=?-]{1,40}",
        metadata_first in any::<bool>(),
        quoted in any::<bool>(),
    ) {
        // Labels are unique in an offer.
        let mut streams = streams;
        for (i, s) in streams.iter_mut().enumerate() {
            s.label = format!("{}{i}", s.label);
        }
        let body = body_of(&streams, &boundary, metadata_first);
        let content_type = if quoted {
            format!("multipart/mixed; boundary=\"{boundary}\"")
        } else {
            format!("multipart/mixed;boundary={boundary}")
        };
        let offer = RecordingOffer::parse(&content_type, &body).unwrap();
        prop_assert_eq!(offer.sdp.media.len(), streams.len());
        for (i, s) in streams.iter().enumerate() {
            let media = &offer.sdp.media[i];
            prop_assert_eq!(media.label, Some(s.label.as_str()));
            let choice = media.choose().unwrap();
            prop_assert_eq!(choice.payload_type, s.payload_type);
            prop_assert_eq!(choice.telephone_event, Some(101));
            let expected = match s.payload_type { 0 => Codec::Pcmu, 8 => Codec::Pcma, _ => Codec::G722 };
            prop_assert_eq!(choice.codec, expected);
            let sender = offer.sender(i).unwrap();
            let aor = format!("sip:{}@pbx.example", s.number);
            prop_assert_eq!(sender.aor.as_deref(), Some(aor.as_str()));
            let name = format!("Caller <{i}>");
            prop_assert_eq!(sender.name.as_deref(), Some(name.as_str()));
        }
        let ports: Vec<Option<u16>> = (0..streams.len()).map(|i| Some(40000 + 2 * i as u16)).collect();
        let text = answer(&offer.sdp, "192.0.2.10".parse().unwrap(), &ports, 9, 1).unwrap();
        let answered = SessionDescription::parse(text.as_bytes()).unwrap();
        for (i, s) in streams.iter().enumerate() {
            let media = &answered.media[i];
            prop_assert_eq!(media.port, 40000 + 2 * i as u16);
            prop_assert_eq!(media.label, Some(s.label.as_str()));
            prop_assert_eq!(media.direction, if s.inactive { Direction::Inactive } else { Direction::RecvOnly });
            prop_assert_eq!(media.choose().unwrap().payload_type, s.payload_type);
        }
    }

    #[test]
    fn any_bytes_are_an_error_or_an_offer(
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = RecordingOffer::parse("multipart/mixed;boundary=b", &body);
        let _ = RecordingOffer::parse("application/sdp", &body);
        let _ = callrec_siprec::Metadata::parse(&body);
    }
}

/// Found by the `siprec_offer` fuzz target: an `m=` line with a vertical
/// tab (not ASCII whitespace to `split_ascii_whitespace`) gave an answer
/// that did not parse again. Control characters in SDP lines are refused.
#[test]
fn a_vertical_tab_in_an_m_line_is_refused() {
    let data = include_bytes!("regressions/vertical_tab_in_m_line.bin");
    let e = RecordingOffer::parse("multipart/mixed;boundary=b", &data[1..]).unwrap_err();
    assert!(e.to_string().contains("holds a control character"), "{e}");
}
