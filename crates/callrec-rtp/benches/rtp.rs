//! Parse and write a 172-byte PCMA packet and a 188-byte packet with two
//! CSRCs and a one-byte extension, packetize, and run the receiver with 1 %
//! reordering. Each group has a memcpy of the same bytes as its baseline.

use core::hint::black_box;
use core::num::NonZeroU32;
use core::time::Duration;

use callrec_rtp::{
    ExtensionElement, ExtensionSpec, Packetizer, PacketizerConfig, PayloadFormat, Receiver,
    ReceiverConfig, RtpPacket, RtpPacketBuilder,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const PCMA_172: &[u8] = include_bytes!("../fixtures/pcma_0.rtp");

fn packet_188() -> Vec<u8> {
    let level = [ExtensionElement::new(1, &[0x30])];
    let mut v = Vec::new();
    RtpPacketBuilder::new()
        .payload_type(8)
        .sequence_number(1)
        .timestamp(160)
        .ssrc(0x1234_5678)
        .csrcs(&[0xaaaa_aaaa, 0xbbbb_bbbb])
        .extension(ExtensionSpec::OneByte(&level))
        .payload(&[0xd5; 160])
        .write_vec(&mut v)
        .unwrap();
    assert_eq!(v.len(), 188);
    v
}

/// Header fields of the PCMA stream the write benchmarks send, advancing
/// per packet as a packetizer's do (20 ms frames: 160 samples).
struct AdvancingHeader {
    sequence_number: u16,
    timestamp: u32,
}

impl AdvancingHeader {
    fn starting_at(sequence_number: u16) -> Self {
        Self {
            sequence_number,
            timestamp: u32::from(sequence_number) * 160,
        }
    }

    /// The next packet's header.
    #[inline(always)]
    fn next(&mut self) -> RtpPacketBuilder<'static> {
        self.sequence_number = self.sequence_number.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(160);
        RtpPacketBuilder::new()
            .payload_type(8)
            .sequence_number(self.sequence_number)
            .timestamp(self.timestamp)
            .ssrc(0x1234_5678)
    }
}

fn parse(c: &mut Criterion) {
    let p188 = packet_188();
    for (name, bytes) in [("172 B PCMA", PCMA_172), ("188 B 2 CSRC + ext", &p188[..])] {
        let mut group = c.benchmark_group(format!("RTP/Parse {name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut copy = vec![0u8; bytes.len()];
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(bytes));
                black_box(&copy);
            })
        });
        group.bench_function("RtpPacket::parse", |b| {
            b.iter(|| {
                let p = RtpPacket::parse(black_box(bytes)).unwrap();
                black_box((p.sequence_number(), p.timestamp(), p.payload()));
            })
        });
        group.finish();
    }
}

fn write(c: &mut Criterion) {
    let p188 = packet_188();
    let level = [ExtensionElement::new(1, &[0x30])];
    let csrcs = [0xaaaa_aaaa, 0xbbbb_bbbb];
    let pcma = RtpPacket::parse(PCMA_172).unwrap();
    let payload = pcma.payload();
    let mut out = [0u8; 1500];

    let mut group = c.benchmark_group("RTP/Write 172 B PCMA");
    group.throughput(Throughput::Bytes(172));
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            out[..172].copy_from_slice(black_box(PCMA_172));
            black_box(&out);
        })
    });
    // The same copy with the length known only at run time, as a writer
    // of variable-size payloads sees it (the constant-length copy above can
    // be inlined as fixed vector moves).
    group.bench_function("memcpy (runtime length)", |b| {
        b.iter(|| {
            let len = black_box(172);
            out[..len].copy_from_slice(&black_box(PCMA_172)[..len]);
            black_box(&out);
        })
    });
    group.bench_function("RtpPacketBuilder::write", |b| {
        b.iter(|| {
            let builder = RtpPacketBuilder::new()
                .payload_type(8)
                .sequence_number(black_box(1))
                .timestamp(black_box(160))
                .ssrc(0x1234_5678)
                .payload(black_box(payload));
            black_box(builder.write(&mut out).unwrap());
        })
    });
    // The peer: rtp-packet's packet struct serialized into the same buffer
    // (its CSRC list is a Vec, built once outside the loop as a sender
    // would keep it).
    let mut peer = rtp_packet::RtpPacket {
        marker: false,
        payload_type: 8,
        sequence_number: 1,
        timestamp: 160,
        ssrc: 0x1234_5678,
        csrc: Vec::new(),
        extension: None,
        padding: None,
        payload,
    };
    {
        use broadcast_common::Serialize;
        let n = peer.serialize_into(&mut out).unwrap();
        let mut ours = [0u8; 1500];
        let m = RtpPacketBuilder::new()
            .payload_type(8)
            .sequence_number(1)
            .timestamp(160)
            .ssrc(0x1234_5678)
            .payload(payload)
            .write(&mut ours)
            .unwrap();
        assert_eq!(out[..n], ours[..m], "both write the same packet");
        group.bench_function("rtp-packet RtpPacket::serialize_into (peer)", |b| {
            b.iter(|| {
                peer.sequence_number = black_box(1);
                peer.timestamp = black_box(160);
                peer.payload = black_box(payload);
                black_box(peer.serialize_into(&mut out).unwrap());
            })
        });
    }
    // As a packetizer writes: the sequence number and timestamp advance per
    // packet, and only the payload passes through `black_box`, as the
    // memcpy's source does. (Above, three values each make a round trip
    // through memory that the baseline does not pay.)
    group.bench_function("RtpPacketBuilder::write (advancing header)", |b| {
        let mut header = AdvancingHeader::starting_at(0);
        b.iter(|| {
            let builder = header.next().payload(black_box(payload));
            black_box(builder.write(&mut out).unwrap());
        })
    });
    // The zero-copy path: the encoder has put the frame at out[12..], and
    // the packet is made by writing the header in front of it.
    out[12..172].copy_from_slice(payload);
    let header = RtpPacketBuilder::new().payload_type(8).ssrc(0x1234_5678);
    assert_eq!(header.write_header(&mut out, 160), Ok(172));
    assert_eq!(RtpPacket::parse(&out[..172]).unwrap().payload(), payload);
    group.bench_function(
        "RtpPacketBuilder::write_header (frame encoded in place)",
        |b| {
            let mut header = AdvancingHeader::starting_at(0);
            b.iter(|| {
                let builder = header.next();
                black_box(builder.write_header(&mut out, black_box(160)).unwrap());
            })
        },
    );
    group.finish();

    // Fifty packets in a row (one second of a call) per iteration: the
    // header fields advance in registers, as in a packetizer's loop, rather
    // than in the closure's captured state, which goes through memory on
    // every iteration above. Shows the copying writer's gap is not that.
    let mut group = c.benchmark_group("RTP/Write 172 B PCMA, 50 in a row");
    group.throughput(Throughput::Bytes(172 * 50));
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            for _ in 0..50 {
                out[..172].copy_from_slice(black_box(PCMA_172));
                black_box(&out);
            }
        })
    });
    group.bench_function("RtpPacketBuilder::write", |b| {
        let mut start = 0u16;
        b.iter(|| {
            // A local copy, so the fields stay in registers in the loop.
            let mut header = AdvancingHeader::starting_at(black_box(start));
            for _ in 0..50 {
                let builder = header.next().payload(black_box(payload));
                black_box(builder.write(&mut out).unwrap());
                black_box(&out);
            }
            start = header.sequence_number;
        })
    });
    group.finish();

    let mut group = c.benchmark_group("RTP/Write 188 B 2 CSRC + ext");
    group.throughput(Throughput::Bytes(188));
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            out[..188].copy_from_slice(black_box(&p188));
            black_box(&out);
        })
    });
    group.bench_function("RtpPacketBuilder::write", |b| {
        b.iter(|| {
            let builder = RtpPacketBuilder::new()
                .payload_type(8)
                .sequence_number(black_box(1))
                .timestamp(black_box(160))
                .ssrc(0x1234_5678)
                .csrcs(&csrcs)
                .extension(ExtensionSpec::OneByte(&level))
                .payload(black_box(payload));
            black_box(builder.write(&mut out).unwrap());
        })
    });
    group.finish();

    let mut group = c.benchmark_group("RTP/Packetize 172 B");
    group.throughput(Throughput::Bytes(172));
    let mut out = [0u8; 1500];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            out[..172].copy_from_slice(black_box(PCMA_172));
            black_box(&out);
        })
    });
    let config = PacketizerConfig::new(&PayloadFormat::PCMA)
        .ssrc(1)
        .sequence_number(0)
        .timestamp(0);
    let mut packetizer = Packetizer::new(config, &mut callrec_test::SplitMix64(0));
    group.bench_function("Packetizer::packetize", |b| {
        b.iter(|| {
            black_box(
                packetizer
                    .packetize(black_box(payload), 160, &mut out)
                    .unwrap(),
            )
        })
    });
    out[Packetizer::HEADER_LEN..][..160].copy_from_slice(payload);
    group.bench_function("Packetizer::packetize_in_place", |b| {
        b.iter(|| {
            black_box(
                packetizer
                    .packetize_in_place(&mut out, black_box(160), 160)
                    .unwrap(),
            )
        })
    });
    group.finish();
}

fn receiver(c: &mut Criterion) {
    // 1000 packets of 20 ms; every 100th pair swapped (1 % reordered).
    let mut packets: Vec<Vec<u8>> = (0..1000u32)
        .map(|i| {
            let mut v = Vec::new();
            RtpPacketBuilder::new()
                .payload_type(8)
                .ssrc(7)
                .sequence_number(i as u16)
                .timestamp(i * 160)
                .payload(&[i as u8; 160])
                .write_vec(&mut v)
                .unwrap();
            v
        })
        .collect();
    for i in (50..1000).step_by(100) {
        packets.swap(i, i + 1);
    }
    let total: usize = packets.iter().map(|p| p.len() - 12).sum();
    let mut group = c.benchmark_group("RTP/Receiver 1000 packets, 1 % reordered");
    group.throughput(Throughput::Elements(packets.len() as u64));
    let mut sink = vec![0u8; total];
    group.bench_function("memcpy of the payloads", |b| {
        b.iter(|| {
            let mut at = 0;
            for p in &packets {
                let payload = &p[12..];
                sink[at..at + payload.len()].copy_from_slice(black_box(payload));
                at += payload.len();
            }
            black_box(&sink);
        })
    });
    let config = ReceiverConfig::new(NonZeroU32::new(8000).unwrap());
    group.bench_function("Receiver handle_packet + poll", |b| {
        b.iter(|| {
            let mut rx = Receiver::new(config);
            let mut at = 0;
            for (i, bytes) in packets.iter().enumerate() {
                let p = RtpPacket::parse(bytes).unwrap();
                rx.handle_packet(&p, Duration::from_millis(20 * i as u64));
                while let Some(e) = rx.poll() {
                    if let callrec_rtp::Event::Payload(pl) = e {
                        sink[at..at + pl.data.len()].copy_from_slice(pl.data);
                        at += pl.data.len();
                    }
                }
            }
            black_box(&sink);
        })
    });
    group.finish();
}

criterion_group!(benches, parse, write, receiver);
criterion_main!(benches);
