//! Encode and decode a realistic start request, and the codec over a 1 MB
//! stream. Each group carries a memcpy of the same bytes and a peer-like
//! baseline (a bare `serde_urlencoded` parse into string pairs, or bare line
//! splitting) so results read as ratios.

use core::hint::black_box;

use bytes::BytesMut;
use callrec_control::{Message, MessageSplitter, write_frame};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;
use common::{StartRequestForm, start_request};

fn message(c: &mut Criterion) {
    let msg = start_request();
    let wire = msg.to_vec().unwrap();
    let bytes = &wire[..];
    let mut copy = vec![0u8; bytes.len()];

    let mut group = c.benchmark_group("Control/Decode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(bytes));
            black_box(&copy);
        })
    });
    group.bench_function("serde_urlencoded pairs (no validation)", |b| {
        b.iter(|| {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(black_box(bytes)).unwrap();
            black_box(pairs)
        })
    });
    group.bench_function("serde_urlencoded into a derived struct (peer)", |b| {
        b.iter(|| {
            let form: StartRequestForm = serde_urlencoded::from_bytes(black_box(bytes)).unwrap();
            black_box(form)
        })
    });
    group.bench_function("Message::parse", |b| {
        b.iter(|| black_box(Message::parse(black_box(bytes)).unwrap()))
    });
    group.finish();

    let mut group = c.benchmark_group("Control/Encode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(bytes));
            black_box(&copy);
        })
    });
    let mut out = BytesMut::with_capacity(1024);
    group.bench_function("write_frame", |b| {
        b.iter(|| {
            out.clear();
            write_frame(black_box(&msg), &mut out).unwrap();
            black_box(&out);
        })
    });
    group.finish();
}

fn stream(c: &mut Criterion) {
    let mut one = BytesMut::new();
    write_frame(&start_request(), &mut one).unwrap();
    let count = (1 << 20) / one.len();
    let stream: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(count * one.len())
        .collect();
    let mut copy = vec![0u8; stream.len()];

    let mut group = c.benchmark_group("Control/Stream 1 MB");
    group.throughput(Throughput::Elements(count as u64));
    group.sample_size(20);
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(&stream));
            black_box(&copy);
        })
    });
    group.bench_function("line split only (memchr)", |b| {
        b.iter(|| black_box(memchr::memchr_iter(b'\n', black_box(&stream)).count()))
    });
    group.bench_function("MessageSplitter + decode", |b| {
        b.iter(|| {
            let mut splitter = MessageSplitter::new();
            let mut buf = BytesMut::from(black_box(&stream[..]));
            let mut n = 0;
            while let Some(m) = splitter.next_message(&mut buf) {
                black_box(m.unwrap());
                n += 1;
            }
            assert_eq!(n, count);
        })
    });
    group.finish();
}

criterion_group!(benches, message, stream);
criterion_main!(benches);
