//! Any bytes as a SIPREC INVITE body (the first byte picks its content
//! type): the multipart, SDP and rs-metadata readers never panic; an offer
//! that parses gets an answer that parses again, with one media line per
//! offered one, and every stream's sender can be asked for.
#![no_main]

use callrec_siprec::{RecordingOffer, SessionDescription, answer};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&str; 4] = [
    "multipart/mixed;boundary=b",
    "multipart/mixed; boundary=\"unique boundary\"",
    "application/sdp",
    "application/rs-metadata+xml",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    if pick as usize % CONTENT_TYPES.len() == 3 {
        let _ = callrec_siprec::Metadata::parse(body);
        return;
    }
    let content_type = CONTENT_TYPES[pick as usize % CONTENT_TYPES.len()];
    let Ok(offer) = RecordingOffer::parse(content_type, body) else {
        return;
    };
    let ports: Vec<Option<u16>> = (0..offer.sdp.media.len())
        .map(|i| (i % 3 != 2).then_some(40000 + 2 * i as u16))
        .collect();
    for i in 0..offer.sdp.media.len() {
        let _ = offer.sender(i);
    }
    let text = answer(&offer.sdp, "127.0.0.1".parse().unwrap(), &ports, 1, 1).unwrap();
    let again = SessionDescription::parse(text.as_bytes()).expect("the answer parses");
    assert_eq!(again.media.len(), offer.sdp.media.len());
});
