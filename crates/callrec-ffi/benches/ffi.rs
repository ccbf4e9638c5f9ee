//! What the C boundary costs on the per-packet calls: each group runs the
//! C API function and the Rust API it wraps on the same input, so results
//! read as ratios. The C function is called through its Rust declaration
//! (the same machine code a C caller links; only the call from C differs,
//! which is a plain call either way).

#![allow(
    unsafe_code,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block,
    missing_docs
)]
// SAFETY (whole file): every pointer is to a live local of the length
// given; handles are freed once.

use core::hint::black_box;

use callrec_audio::g711::Law;
use callrec_ffi::*;
use callrec_rtp::{Packetizer, PacketizerConfig, PayloadFormat, RtpPacket};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

struct FixedRng;

impl rand_core::RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        0x1234_5678
    }
    fn next_u64(&mut self) -> u64 {
        0x1234_5678
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.fill(0x12);
    }
}

fn packetize(c: &mut Criterion) {
    let mut group = c.benchmark_group("FFI/Packetize 160 B PCMA");
    group.throughput(Throughput::Elements(1));
    let frame = [0xd5u8; 160];
    let mut buf = [0u8; 1500];
    let mut rust = Packetizer::new(PacketizerConfig::new(&PayloadFormat::PCMA), &mut FixedRng);
    group.bench_function("rust Packetizer::packetize", |b| {
        b.iter(|| rust.packetize(black_box(&frame), 160, &mut buf).unwrap())
    });
    let mut config = callrec_packetizer_config::default();
    unsafe { callrec_packetizer_config_init(&mut config, 8) };
    let mut p = core::ptr::null_mut();
    assert_eq!(
        unsafe { callrec_packetizer_new(&config, &mut p) },
        CALLREC_OK
    );
    let mut written = 0usize;
    group.bench_function("C callrec_packetizer_packetize", |b| {
        b.iter(|| unsafe {
            callrec_packetizer_packetize(
                p,
                black_box(frame.as_ptr()),
                160,
                160,
                buf.as_mut_ptr(),
                buf.len(),
                &mut written,
            )
        })
    });
    unsafe { callrec_packetizer_free(p) };
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("FFI/Parse 172 B PCMA");
    group.throughput(Throughput::Elements(1));
    let mut packet = [0u8; 172];
    let mut p = Packetizer::new(PacketizerConfig::new(&PayloadFormat::PCMA), &mut FixedRng);
    let n = p.packetize(&[0xd5; 160], 160, &mut packet).unwrap();
    group.bench_function("rust RtpPacket::parse", |b| {
        b.iter(|| {
            let parsed = RtpPacket::parse(black_box(&packet[..n])).unwrap();
            (
                parsed.sequence_number(),
                parsed.timestamp(),
                parsed.payload().len(),
            )
        })
    });
    group.bench_function(
        "rust RtpPacket::parse + every field of callrec_rtp_packet",
        |b| {
            b.iter(|| {
                let parsed = RtpPacket::parse(black_box(&packet[..n])).unwrap();
                let mut csrcs = [0u32; 15];
                for (slot, csrc) in csrcs.iter_mut().zip(parsed.csrcs()) {
                    *slot = csrc;
                }
                let extension = parsed.extension().map(|e| (e.profile(), e.data().len()));
                (
                    (parsed.version(), parsed.marker(), parsed.payload_type()),
                    (parsed.sequence_number(), parsed.timestamp(), parsed.ssrc()),
                    (csrcs, extension, parsed.padding_len(), parsed.header_len()),
                    parsed.payload().len(),
                )
            })
        },
    );
    let mut out = callrec_rtp_packet::default();
    group.bench_function("C callrec_rtp_parse", |b| {
        b.iter(|| {
            let status = unsafe { callrec_rtp_parse(black_box(packet.as_ptr()), n, &mut out) };
            (status, out.sequence_number, out.timestamp, out.payload_len)
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("FFI/G.711 encode 160 samples");
    group.throughput(Throughput::Elements(1));
    let pcm: Vec<i16> = (0..160).map(|i| (i * 200 - 16_000) as i16).collect();
    let mut out = [0u8; 160];
    group.bench_function("rust Law::encode", |b| {
        b.iter(|| Law::Alaw.encode(black_box(&pcm), &mut out))
    });
    let mut written = 0usize;
    group.bench_function("C callrec_g711_encode", |b| {
        b.iter(|| unsafe {
            callrec_g711_encode(
                CALLREC_LAW_ALAW,
                black_box(pcm.as_ptr()),
                160,
                out.as_mut_ptr(),
                out.len(),
                &mut written,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, packetize, parse, encode);
criterion_main!(benches);
