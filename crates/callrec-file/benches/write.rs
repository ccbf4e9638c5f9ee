//! Write throughput of one hour of PCMA (180,000 frames of 160 bytes) into a
//! `Vec` sink, against a memcpy of the same bytes in the same group.

use core::hint::black_box;
use core::mem;
use std::io::Cursor;

use callrec_file::{CodecName, HEADER_LEN, Header, Writer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FRAME_LEN: usize = 160;
const FRAMES: usize = 3600 * 50;

fn write(c: &mut Criterion) {
    let body: Vec<u8> = (0..FRAMES * FRAME_LEN)
        .map(|i| (i / FRAME_LEN) as u8)
        .collect();
    let header = Header::new(CodecName::PCMA, FRAME_LEN as u16, 160).unwrap();
    // One sink reused by every iteration, so allocation is not measured.
    let mut sink: Vec<u8> = Vec::with_capacity(HEADER_LEN + body.len());

    let mut group = c.benchmark_group("Recording/Write");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.sample_size(30);

    group.bench_function("memcpy", |b| {
        b.iter(|| {
            sink.clear();
            sink.extend_from_slice(black_box(&body));
            black_box(&sink);
        })
    });

    group.bench_function("Writer<Cursor<Vec>>::append", |b| {
        b.iter(|| {
            sink.clear();
            let mut w = Writer::new(Cursor::new(mem::take(&mut sink)), header).unwrap();
            for frame in black_box(&body).chunks_exact(FRAME_LEN) {
                w.append(frame).unwrap();
            }
            let (_, cursor) = w.finish_into_inner().unwrap();
            sink = cursor.into_inner();
            black_box(&sink);
        })
    });

    group.finish();
}

criterion_group!(benches, write);
criterion_main!(benches);
