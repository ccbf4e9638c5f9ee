//! Packets captured from ffmpeg 5.1's RTP muxer on loopback
//! (`fixtures/capture.sh`): PCMA and G.722, 20 ms each.

use core::num::NonZeroU32;
use core::time::Duration;

use callrec_rtp::{Event, PayloadTypes, Receiver, ReceiverConfig, RtpPacket, RtpPacketBuilder};

const PCMA: [&[u8]; 3] = [
    include_bytes!("../fixtures/pcma_0.rtp"),
    include_bytes!("../fixtures/pcma_1.rtp"),
    include_bytes!("../fixtures/pcma_2.rtp"),
];
const G722: [&[u8]; 3] = [
    include_bytes!("../fixtures/g722_0.rtp"),
    include_bytes!("../fixtures/g722_1.rtp"),
    include_bytes!("../fixtures/g722_2.rtp"),
];

fn check_stream(packets: [&[u8]; 3], payload_type: u8, encoding: &str) {
    let parsed: Vec<_> = packets
        .iter()
        .map(|b| RtpPacket::parse(b).unwrap())
        .collect();
    let types = PayloadTypes::new();
    for (i, p) in parsed.iter().enumerate() {
        assert_eq!(p.as_bytes().len(), 172);
        assert_eq!(p.payload_type(), payload_type);
        assert_eq!(types.get(p.payload_type()).unwrap().encoding, encoding);
        assert_eq!(p.payload().len(), 160, "20 ms at 64 kbit/s");
        assert_eq!((p.csrc_count(), p.has_padding()), (0, false));
        assert!(p.extension().is_none());
        assert!(!p.marker(), "ffmpeg does not mark the first packet");
        assert_eq!(p.ssrc(), parsed[0].ssrc());
        let i = i as u16;
        assert_eq!(
            p.sequence_number(),
            parsed[0].sequence_number().wrapping_add(i)
        );
        // 160 ticks per packet for both: G.722's RTP clock is 8000 Hz even
        // though it samples at 16 kHz (RFC 3551 §4.5.2), and ffmpeg agrees.
        assert_eq!(
            p.timestamp(),
            parsed[0].timestamp().wrapping_add(160 * u32::from(i))
        );
    }

    // Written back, each packet is byte-identical.
    for p in &parsed {
        let mut out = Vec::new();
        RtpPacketBuilder::new()
            .marker(p.marker())
            .payload_type(p.payload_type())
            .sequence_number(p.sequence_number())
            .timestamp(p.timestamp())
            .ssrc(p.ssrc())
            .payload(p.payload())
            .write_vec(&mut out)
            .unwrap();
        assert_eq!(out, p.as_bytes());
    }

    // A receiver yields the three payloads in order, with no gap.
    let mut rx = Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()));
    let mut got = Vec::new();
    for (i, p) in parsed.iter().enumerate() {
        rx.handle_packet(p, Duration::from_millis(20 * i as u64));
        while let Some(e) = rx.poll() {
            match e {
                Event::Payload(pl) => got.push(pl.data.to_vec()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let want: Vec<_> = parsed.iter().map(|p| p.payload().to_vec()).collect();
    assert_eq!(got, want);
}

#[test]
fn ffmpeg_pcma() {
    check_stream(PCMA, 8, "PCMA");
}

#[test]
fn ffmpeg_g722() {
    check_stream(G722, 9, "G722");
}
