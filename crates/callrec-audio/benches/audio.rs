//! G.711 and G.722 encode/decode over one second of call audio, and
//! mixing two G.711 streams. Each group has a memcpy of the output bytes as
//! its baseline; G.711 also has `audio-codec-algorithms` (one call per
//! sample) as a peer.
//!
//! Throughput is in elements: samples for G.711 (target ≥ 500 M/s), seconds
//! of audio for G.722 (so elem/s reads as real-time channels per core,
//! target ≥ 1,000) and for mixing.

use core::hint::black_box;

use callrec_audio::g711::Law;
use callrec_audio::g722;
use callrec_audio::mix::{mix_g711, mix_pcm16};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// One second of a speech-like signal at `rate`: two tones and noise.
fn speech(rate: usize) -> Vec<i16> {
    let mut x: u32 = 0x1234_5678;
    (0..rate)
        .map(|n| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let t = n as f32 / rate as f32;
            let tone = 6000.0 * (t * core::f32::consts::TAU * 220.0).sin()
                + 2000.0 * (t * core::f32::consts::TAU * 1700.0).sin();
            (tone as i32 + (x >> 22) as i32 - 512) as i16
        })
        .collect()
}

fn g711(c: &mut Criterion) {
    let pcm = speech(8000);
    for law in [Law::Alaw, Law::Ulaw] {
        let mut encoded = vec![0u8; pcm.len()];
        law.encode(&pcm, &mut encoded);

        let mut group = c.benchmark_group(format!("G.711/encode {law} 8000 samples"));
        group.throughput(Throughput::Elements(pcm.len() as u64));
        let mut out = vec![0u8; pcm.len()];
        let bytes = encoded.clone();
        group.bench_function("memcpy 8000 B", |b| {
            b.iter(|| out.copy_from_slice(black_box(&bytes)))
        });
        group.bench_function("callrec", |b| {
            b.iter(|| law.encode(black_box(&pcm), &mut out))
        });
        group.bench_function("audio-codec-algorithms", |b| {
            b.iter(|| {
                for (o, &s) in out.iter_mut().zip(black_box(&pcm)) {
                    *o = match law {
                        Law::Alaw => audio_codec_algorithms::encode_alaw(s),
                        Law::Ulaw => audio_codec_algorithms::encode_ulaw(s),
                    };
                }
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("G.711/decode {law} 8000 samples"));
        group.throughput(Throughput::Elements(pcm.len() as u64));
        let mut out = vec![0i16; pcm.len()];
        let copy_src = pcm.clone();
        group.bench_function("memcpy 16000 B", |b| {
            b.iter(|| out.copy_from_slice(black_box(&copy_src)))
        });
        group.bench_function("callrec", |b| {
            b.iter(|| law.decode(black_box(&encoded), &mut out))
        });
        group.bench_function("audio-codec-algorithms", |b| {
            b.iter(|| {
                for (o, &e) in out.iter_mut().zip(black_box(&encoded)) {
                    *o = match law {
                        Law::Alaw => audio_codec_algorithms::decode_alaw(e),
                        Law::Ulaw => audio_codec_algorithms::decode_ulaw(e),
                    };
                }
            })
        });
        group.finish();
    }
}

fn g722(c: &mut Criterion) {
    let pcm = speech(16000);
    let mut codes = vec![0u8; pcm.len() / 2];
    g722::Encoder::new().encode(&pcm, &mut codes);

    let mut group = c.benchmark_group("G.722/encode 1 s (elem/s = channels per core)");
    group.throughput(Throughput::Elements(1));
    let mut out = vec![0u8; codes.len()];
    group.bench_function("memcpy 8000 B", |b| {
        b.iter(|| out.copy_from_slice(black_box(&codes)))
    });
    let mut encoder = g722::Encoder::new();
    group.bench_function("callrec", |b| {
        b.iter(|| {
            for (frame, out) in black_box(&pcm).chunks(320).zip(out.chunks_mut(160)) {
                encoder.encode(frame, out);
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("G.722/decode 1 s (elem/s = channels per core)");
    group.throughput(Throughput::Elements(1));
    let mut out = vec![0i16; pcm.len()];
    group.bench_function("memcpy 32000 B", |b| {
        b.iter(|| out.copy_from_slice(black_box(&pcm)))
    });
    let mut decoder = g722::Decoder::new();
    group.bench_function("callrec", |b| {
        b.iter(|| {
            for (frame, out) in black_box(&codes).chunks(160).zip(out.chunks_mut(320)) {
                decoder.decode(frame, out);
            }
        })
    });
    group.finish();
}

fn mixing(c: &mut Criterion) {
    let pcm = speech(8000);
    let other: Vec<i16> = pcm.iter().rev().copied().collect();
    let mut a = vec![0u8; pcm.len()];
    let mut b = vec![0u8; pcm.len()];
    Law::Alaw.encode(&pcm, &mut a);
    Law::Alaw.encode(&other, &mut b);

    let mut group = c.benchmark_group("Mix/two streams, 1 s (50 frames of 160)");
    group.throughput(Throughput::Elements(1));
    let mut out = vec![0u8; a.len()];
    group.bench_function("memcpy 8000 B", |bench| {
        bench.iter(|| out.copy_from_slice(black_box(&a)))
    });
    group.bench_function("callrec G.711 A-law", |bench| {
        bench.iter(|| {
            for ((x, y), o) in black_box(&a)
                .chunks(160)
                .zip(black_box(&b).chunks(160))
                .zip(out.chunks_mut(160))
            {
                mix_g711(Law::Alaw, &[x, y], o).unwrap();
            }
        })
    });
    let mut out16 = vec![0i16; pcm.len()];
    group.bench_function("callrec PCM16", |bench| {
        bench.iter(|| {
            for ((x, y), o) in black_box(&pcm)
                .chunks(160)
                .zip(black_box(&other).chunks(160))
                .zip(out16.chunks_mut(160))
            {
                mix_pcm16(&[x, y], o).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, g711, g722, mixing);
criterion_main!(benches);
