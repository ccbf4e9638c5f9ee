//! Build and serialize the Yealink `Record: on` INFO; parse it and read
//! `Record`. A memcpy of the same bytes is in each group as the baseline.

use core::hint::black_box;

use callrec_sip::{Dialog, NameAddr, Record, RecordValue, SipMessage};
use callrec_test::SplitMix64;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn dialog() -> Dialog<'static> {
    Dialog::new("0_2080113283@10.3.20.14")
        .local(
            NameAddr::new("sip:1009@10.3.20.6:5060")
                .display_name("1009")
                .tag("1385842459"),
        )
        .remote(NameAddr::new("sip:1010@10.3.20.6:5060").tag("2383911905"))
        .remote_target("sip:1010@10.3.20.6:5060")
        .local_contact("sip:1009@10.3.20.14:5060")
        .sent_by("10.3.20.14:5060")
}

fn bench(c: &mut Criterion) {
    let mut d = dialog();
    let mut rng = SplitMix64(1);
    let info = d
        .record_info(Record::On)
        .user_agent("Yealink SIP-T23G 44.80.0.60")
        .to_vec(&mut rng)
        .unwrap();
    let mut slice = [0u8; 1024];
    let mut copy = vec![0u8; info.len()];
    let mut out: Vec<u8> = Vec::with_capacity(1024);

    let mut group = c.benchmark_group("SIP/Build Record INFO");
    group.throughput(Throughput::Bytes(info.len() as u64));
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(&info));
            black_box(&copy);
        })
    });
    group.bench_function("record_info().write_buf()", |b| {
        b.iter(|| {
            out.clear();
            d.local_cseq = 1;
            d.record_info(black_box(Record::On))
                .user_agent("Yealink SIP-T23G 44.80.0.60")
                .write_buf(&mut rng, &mut out)
                .unwrap();
            black_box(&out);
        })
    });
    group.bench_function("record_info().write() into a slice", |b| {
        b.iter(|| {
            d.local_cseq = 1;
            let n = d
                .record_info(black_box(Record::On))
                .user_agent("Yealink SIP-T23G 44.80.0.60")
                .write(&mut rng, &mut slice)
                .unwrap();
            black_box(&slice[..n]);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("SIP/Parse Record INFO");
    group.throughput(Throughput::Bytes(info.len() as u64));
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(&info));
            black_box(&copy);
        })
    });
    assert_eq!(SipMessage::parse(&info).unwrap().record(), RecordValue::On);
    group.bench_function("SipMessage::parse + record()", |b| {
        b.iter(|| {
            let m = SipMessage::parse(black_box(&info)).unwrap();
            black_box(m.record() == RecordValue::On);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
