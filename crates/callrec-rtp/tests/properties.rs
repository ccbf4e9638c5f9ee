//! Property tests: what the builder writes parses back to the same values;
//! a packetized stream pushed through loss, reordering, duplication and
//! wrap-around comes out of the receiver complete, in order, and in real
//! time.

use core::num::NonZeroU32;
use core::time::Duration;

use callrec_rtp::{
    Event, ExtensionElement, ExtensionSpec, Packetizer, PacketizerConfig, PayloadFormat, Receiver,
    ReceiverConfig, RtpPacket, RtpPacketBuilder,
};
use callrec_test::SplitMix64;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Ext {
    None,
    Raw(u16, Vec<u8>),
    OneByte(Vec<(u8, Vec<u8>)>),
    TwoByte(u8, Vec<(u8, Vec<u8>)>),
}

fn ext() -> impl Strategy<Value = Ext> {
    prop_oneof![
        Just(Ext::None),
        (
            any::<u16>(),
            proptest::collection::vec(any::<[u8; 4]>(), 0..4)
        )
            .prop_filter("not an RFC 8285 profile", |(p, _)| *p != 0xBEDE
                && p & 0xFFF0 != 0x1000)
            .prop_map(|(p, w)| Ext::Raw(p, w.concat())),
        proptest::collection::vec(
            (1u8..=14, proptest::collection::vec(any::<u8>(), 1..=16)),
            0..5
        )
        .prop_map(Ext::OneByte),
        (
            0u8..16,
            proptest::collection::vec(
                (1u8..=255, proptest::collection::vec(any::<u8>(), 0..40)),
                0..5
            )
        )
            .prop_map(|(a, e)| Ext::TwoByte(a, e)),
    ]
}

proptest! {
    #[test]
    fn header_round_trip(
        marker in any::<bool>(),
        pt in 0u8..=127,
        seq in any::<u16>(),
        ts in any::<u32>(),
        ssrc in any::<u32>(),
        csrcs in proptest::collection::vec(any::<u32>(), 0..=15),
        ext in ext(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        padding in any::<u8>(),
    ) {
        let elements: Vec<ExtensionElement<'_>> = match &ext {
            Ext::OneByte(e) | Ext::TwoByte(_, e) => e.iter().map(|(id, d)| ExtensionElement::new(*id, d)).collect(),
            _ => Vec::new(),
        };
        let mut b = RtpPacketBuilder::new()
            .marker(marker).payload_type(pt).sequence_number(seq).timestamp(ts).ssrc(ssrc)
            .csrcs(&csrcs).payload(&payload).padding(padding);
        b = match &ext {
            Ext::None => b,
            Ext::Raw(p, d) => b.extension(ExtensionSpec::Raw { profile: *p, data: d }),
            Ext::OneByte(_) => b.extension(ExtensionSpec::OneByte(&elements)),
            Ext::TwoByte(a, _) => b.extension(ExtensionSpec::TwoByte { appbits: *a, elements: &elements }),
        };
        let mut buf = vec![0u8; b.buffer_len()];
        prop_assert_eq!(b.write(&mut buf).unwrap(), buf.len());
        // The three writers agree.
        let mut v = Vec::new();
        b.write_vec(&mut v).unwrap();
        let mut bm = bytes::BytesMut::new();
        b.write_buf(&mut bm).unwrap();
        prop_assert_eq!(&v, &buf);
        prop_assert_eq!(&bm[..], &buf[..]);
        // One byte short is refused, and nothing is written.
        if !buf.is_empty() {
            let mut short = vec![0xa5u8; buf.len() - 1];
            prop_assert!(b.write(&mut short).is_err());
            prop_assert!(short.iter().all(|&x| x == 0xa5));
            prop_assert!(b.write_header(&mut short, payload.len()).is_err());
            prop_assert!(short.iter().all(|&x| x == 0xa5));
        }
        // Around a payload already in place, the same bytes; the payload is
        // not touched and whatever lies past the packet is not either.
        let mut in_place = vec![0xa5u8; buf.len() + 7];
        let at = b.header_len();
        in_place[at..at + payload.len()].copy_from_slice(&payload);
        prop_assert_eq!(b.write_header(&mut in_place, payload.len()).unwrap(), buf.len());
        prop_assert_eq!(&in_place[..buf.len()], &buf[..]);
        prop_assert!(in_place[buf.len()..].iter().all(|&x| x == 0xa5));

        let p = RtpPacket::parse(&buf).unwrap();
        prop_assert_eq!(p.marker(), marker);
        prop_assert_eq!(p.payload_type(), pt);
        prop_assert_eq!(p.sequence_number(), seq);
        prop_assert_eq!(p.timestamp(), ts);
        prop_assert_eq!(p.ssrc(), ssrc);
        prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs);
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert_eq!(p.padding_len(), usize::from(padding));
        match &ext {
            Ext::None => prop_assert!(p.extension().is_none()),
            Ext::Raw(profile, data) => {
                let e = p.extension().unwrap();
                prop_assert_eq!((e.profile(), e.data()), (*profile, &data[..]));
            }
            Ext::OneByte(_) | Ext::TwoByte(..) => {
                prop_assert_eq!(p.extension().unwrap().elements().collect::<Vec<_>>(), elements);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_reparse(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        callrec_rtp::fuzzing::check_parse_write_parse(&data);
        callrec_rtp::fuzzing::check_receiver(&data);
    }
}

/// What happens to each packet on the way.
#[derive(Debug, Clone)]
struct Network {
    /// Per packet after the first: (lost, duplicated, silence before it in frames).
    fate: Vec<(bool, bool, u8)>,
    /// Shuffle seeds for blocks of four arrivals.
    shuffles: Vec<[u8; 4]>,
}

fn network(len: usize) -> impl Strategy<Value = Network> {
    (
        proptest::collection::vec(
            (
                prop::bool::weighted(0.1),
                prop::bool::weighted(0.05),
                prop_oneof![9 => Just(0u8), 1 => 1u8..50],
            ),
            len,
        ),
        proptest::collection::vec(any::<[u8; 4]>(), len / 4 + 1),
    )
        .prop_map(|(fate, shuffles)| Network { fate, shuffles })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn receiver_recovers_the_stream(
        n in 2usize..150,
        first_seq in prop_oneof![Just(65500u16), any::<u16>()],
        first_ts in prop_oneof![Just(u32::MAX - 2000), any::<u32>()],
        net in network(150),
    ) {
        // Sender: packet i carries a payload identifying it; silence is
        // skipped on the timestamp axis as a phone with DTX does.
        let config = PacketizerConfig::new(&PayloadFormat::PCMA)
            .ssrc(0x5eed)
            .sequence_number(first_seq)
            .timestamp(first_ts);
        let mut sender = Packetizer::new(config, &mut SplitMix64(1));
        let mut sent: Vec<(Vec<u8>, u32)> = Vec::new(); // (packet bytes, timestamp)
        let mut buf = [0u8; 200];
        for i in 0..n {
            let silence = if i == 0 { 0 } else { net.fate[i].2 };
            sender.skip_samples(160 * u32::from(silence));
            let ts = sender.next_timestamp();
            let frame = [(i % 251) as u8; 160];
            let len = sender.packetize(&frame, 160, &mut buf).unwrap();
            sent.push((buf[..len].to_vec(), ts));
        }

        // Network: packet 0 always arrives first; later ones may be lost,
        // duplicated, or shuffled within blocks of four.
        let mut arrivals: Vec<usize> = Vec::new();
        for i in 1..n {
            let (lost, dup, _) = net.fate[i];
            if !lost {
                arrivals.push(i);
                if dup {
                    arrivals.push(i);
                }
            }
        }
        for (block, seed) in arrivals.chunks_mut(4).zip(&net.shuffles) {
            for (j, s) in seed.iter().enumerate().take(block.len()) {
                block.swap(j, usize::from(*s) % block.len());
            }
        }
        arrivals.insert(0, 0);

        // Receiver: deep enough for the shuffle, so nothing is late. Arrival
        // times here do not follow the skipped silence, so the receiver is
        // told to trust timestamps alone (the property under test).
        let mut rx = Receiver::new(
            ReceiverConfig::new(NonZeroU32::new(8000).unwrap())
                .probation(1)
                .reorder_packets(16)
                .reorder_delay(Duration::from_secs(3600))
                .timestamp_tolerance(None)
                .max_lead(None),
        );
        let mut payloads = Vec::new();
        let mut gaps = Vec::new(); // gap before payload k
        let mut pending_gap = 0u64;
        let mut collect = |rx: &mut Receiver, payloads: &mut Vec<u8>, gaps: &mut Vec<u64>| {
            while let Some(e) = rx.poll() {
                match e {
                    Event::Payload(p) => {
                        payloads.push(p.data[0]);
                        gaps.push(pending_gap);
                        pending_gap = 0;
                    }
                    Event::Gap { samples } => pending_gap += u64::from(samples),
                    other => panic!("one source, got {other:?}"),
                }
            }
        };
        for (k, &i) in arrivals.iter().enumerate() {
            let packet = RtpPacket::parse(&sent[i].0).unwrap();
            rx.handle_packet(&packet, Duration::from_millis(20 * k as u64));
            collect(&mut rx, &mut payloads, &mut gaps);
        }
        rx.flush();
        collect(&mut rx, &mut payloads, &mut gaps);

        // Every surviving packet exactly once, in sending order.
        let mut survivors: Vec<usize> = arrivals.clone();
        survivors.sort_unstable();
        survivors.dedup();
        let want: Vec<u8> = survivors.iter().map(|&i| (i % 251) as u8).collect();
        prop_assert_eq!(&payloads, &want);
        // Each gap is exactly the media time between two survivors that
        // no payload covers: lost packets plus skipped silence.
        for (k, pair) in survivors.windows(2).enumerate() {
            let (a, b) = (pair[0], pair[1]);
            let expected = u64::from(sent[b].1.wrapping_sub(sent[a].1)) - 160;
            prop_assert_eq!(gaps[k + 1], expected, "gap before packet {}", b);
        }
        prop_assert_eq!(gaps[0], 0);
        // So the recording keeps real time from the first to the last survivor.
        let total: u64 = gaps.iter().sum::<u64>() + 160 * payloads.len() as u64;
        let last = *survivors.last().unwrap();
        prop_assert_eq!(total, u64::from(sent[last].1.wrapping_sub(sent[0].1)) + 160);
        let stats = rx.stats();
        prop_assert_eq!(stats.late, 0);
        prop_assert_eq!(stats.duplicates as usize, arrivals.len() - survivors.len());
        prop_assert_eq!(stats.released as usize, survivors.len());
        prop_assert_eq!(stats.expected as usize, last + 1);
    }
}

proptest! {
    /// `packetize_in_place` writes what `packetize` writes and moves the
    /// packetizer the same way, over sequence and timestamp wrap and skips.
    #[test]
    fn packetize_in_place_equals_packetize(
        seed in any::<u64>(),
        frames in proptest::collection::vec((1usize..=320, any::<u8>(), 1u32..=640, any::<bool>()), 1..40),
    ) {
        let config = PacketizerConfig::new(&PayloadFormat::PCMA)
            .sequence_number(65530)
            .timestamp(u32::MAX - 1000);
        let mut copying = Packetizer::new(config, &mut SplitMix64(seed));
        let mut in_place = Packetizer::new(config, &mut SplitMix64(seed));
        let (mut a, mut b) = ([0u8; 400], [0u8; 400]);
        for (len, fill, samples, skip) in frames {
            if skip {
                copying.skip_samples(samples);
                in_place.skip_samples(samples);
            }
            let frame = vec![fill; len];
            let n = copying.packetize(&frame, samples, &mut a).unwrap();
            b[Packetizer::HEADER_LEN..][..len].copy_from_slice(&frame);
            prop_assert_eq!(in_place.packetize_in_place(&mut b, len, samples).unwrap(), n);
            prop_assert_eq!(&a[..n], &b[..n]);
            prop_assert_eq!(
                (copying.next_sequence_number(), copying.next_timestamp(), copying.packets_sent(), copying.octets_sent()),
                (in_place.next_sequence_number(), in_place.next_timestamp(), in_place.packets_sent(), in_place.octets_sent())
            );
        }
        // A length that would overflow is refused like any too-long frame.
        prop_assert!(in_place.packetize_in_place(&mut b, usize::MAX, 160).is_err());
        // Too small a buffer: an error, and neither the buffer nor the state
        // changes.
        let before = (in_place.next_sequence_number(), in_place.packets_sent());
        let mut small = [0x5au8; 100];
        prop_assert!(in_place.packetize_in_place(&mut small, 89, 160).is_err());
        prop_assert!(small.iter().all(|&x| x == 0x5a));
        prop_assert_eq!((in_place.next_sequence_number(), in_place.packets_sent()), before);
    }
}
