//! Any bytes as a SIPREC INVITE body (the first byte picks its content
//! type): the multipart, SDP and rs-metadata readers never panic; an offer
//! that parses gets an answer that parses again, with one media line per
//! offered one, and every stream's sender can be asked for. The same bytes
//! as a SIP message to the recording server's SIP side: never a panic, and
//! every port it takes is given back when it shuts down.
#![no_main]

use callrec_siprec::{PortAllocator, RecordingOffer, SessionDescription, Srs, SrsConfig, answer};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&str; 4] = [
    "multipart/mixed;boundary=b",
    "multipart/mixed; boundary=\"unique boundary\"",
    "application/sdp",
    "application/rs-metadata+xml",
];

/// Ports handed out and given back.
struct Ports(Vec<u16>);

impl PortAllocator for Ports {
    fn allocate(&mut self, n: usize) -> Option<Vec<u16>> {
        let base = self.0.len() as u16;
        let ports: Vec<u16> = (0..n as u16).map(|i| 40000 + 2 * (base + i)).collect();
        self.0.extend(&ports);
        Some(ports)
    }

    fn release(&mut self, ports: &[u16]) {
        self.0.retain(|p| !ports.contains(p));
    }
}

fuzz_target!(|data: &[u8]| {
    let address = "127.0.0.1:5060".parse().unwrap();
    let mut srs = Srs::new(SrsConfig::new(address, address.ip()));
    let mut ports = Ports(Vec::new());
    srs.handle(0, "127.0.0.2:5060".parse().unwrap(), data, &mut ports);
    srs.handle_timeout(40_000, &mut ports);
    srs.shutdown(&mut ports);
    assert!(ports.0.is_empty(), "ports kept after shutdown: {:?}", ports.0);

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
