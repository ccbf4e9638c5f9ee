//! Read throughput of one hour of PCMA (180,000 frames of 160 bytes, 20 ms
//! each), against a memcpy of the same bytes in the same group.
//!
//! Every variant moves each frame's bytes once: memcpy copies the body into
//! a buffer; the zero-copy `Recording` view hands out slices that the
//! consumer copies into the same buffer (what a player feeding a decoder
//! does); the streaming `Reader` copies each frame into its frame buffer.

use core::hint::black_box;
use std::io::Cursor;

use callrec_file::{CodecName, HEADER_LEN, Header, Reader, Recording, Writer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FRAME_LEN: usize = 160;
const FRAMES: usize = 3600 * 50;

fn one_hour_pcma() -> Vec<u8> {
    let header = Header::new(CodecName::PCMA, FRAME_LEN as u16, 160).unwrap();
    let mut w = Writer::new(Cursor::new(Vec::new()), header).unwrap();
    let mut frame = [0u8; FRAME_LEN];
    for i in 0..FRAMES {
        frame.fill(i as u8);
        w.append(&frame).unwrap();
    }
    w.finish_into_inner().unwrap().1.into_inner()
}

fn read(c: &mut Criterion) {
    let file = one_hour_pcma();
    let body = &file[HEADER_LEN..];
    let mut dst = vec![0u8; body.len()];

    let mut group = c.benchmark_group("Recording/Read");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.sample_size(30);

    group.bench_function("memcpy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(body));
            black_box(&dst);
        })
    });

    group.bench_function("Recording::parse + frames", |b| {
        b.iter(|| {
            let rec = Recording::parse(black_box(&file)).unwrap();
            for (frame, out) in rec.frames().zip(dst.chunks_exact_mut(FRAME_LEN)) {
                out.copy_from_slice(frame);
            }
            black_box(&dst);
        })
    });

    group.bench_function("Reader<&[u8]>::next_frame", |b| {
        b.iter(|| {
            let mut r = Reader::new(black_box(&file[..])).unwrap();
            while let Some(frame) = r.next_frame().unwrap() {
                black_box(frame);
            }
        })
    });

    group.finish();
}

criterion_group!(benches, read);
criterion_main!(benches);
