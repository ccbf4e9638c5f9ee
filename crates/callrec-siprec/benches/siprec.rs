//! Reading a two-stream SIPREC offer (multipart, SDP, rs-metadata) and
//! writing its answer, beside a copy of the same bytes so the figures read
//! as ratios.

use core::hint::black_box;
use criterion::{Criterion, criterion_group, criterion_main};

use callrec_siprec::{RecordingOffer, answer};

const CONTENT_TYPE: &str = "multipart/mixed;boundary=OSS-unique-boundary-42";

fn offer() -> Vec<u8> {
    let sdp = "v=0\r\no=SRC 2890844526 2890844526 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 12240 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=label:1\r\na=sendonly\r\nm=audio 12242 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=label:2\r\na=sendonly\r\n";
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
<datamode>complete</datamode>
<session session_id="hVpd7YQgRW2nD22h7q60JQ=="><sipSessionID>ab30317f1a784dc48ff824d0d3715d86</sipSessionID></session>
<participant participant_id="srfBElmCRp2QB23b7Mpk0w=="><nameID aor="sip:alice@atlanta.com"><name xml:lang="en">Alice</name></nameID></participant>
<participant participant_id="zSfPoSvdSDCmU3A3TRDxAw=="><nameID aor="sip:bob@biloxy.com"><name xml:lang="en">Bob</name></nameID></participant>
<stream stream_id="UAAMm5GRQKSCMVvLyl4rFw==" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>1</label></stream>
<stream stream_id="i1Pz3to5hGk8fuXl+PbwCw==" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>2</label></stream>
<participantstreamassoc participant_id="srfBElmCRp2QB23b7Mpk0w=="><send>UAAMm5GRQKSCMVvLyl4rFw==</send><recv>i1Pz3to5hGk8fuXl+PbwCw==</recv></participantstreamassoc>
<participantstreamassoc participant_id="zSfPoSvdSDCmU3A3TRDxAw=="><send>i1Pz3to5hGk8fuXl+PbwCw==</send><recv>UAAMm5GRQKSCMVvLyl4rFw==</recv></participantstreamassoc>
</recording>"#;
    callrec_siprec::multipart::write(
        "OSS-unique-boundary-42",
        &[
            ("application/sdp", sdp.as_bytes()),
            ("application/rs-metadata+xml", xml.as_bytes()),
        ],
    )
}

fn bench(c: &mut Criterion) {
    let body = offer();
    let mut group = c.benchmark_group("siprec offer");
    group.bench_function("copy the body (memcpy)", |b| {
        b.iter(|| black_box(black_box(&body[..]).to_vec()));
    });
    group.bench_function("parse the offer", |b| {
        b.iter(|| RecordingOffer::parse(CONTENT_TYPE, black_box(&body)).unwrap());
    });
    let offer = RecordingOffer::parse(CONTENT_TYPE, &body).unwrap();
    let address = "192.0.2.10".parse().unwrap();
    group.bench_function("write the answer", |b| {
        b.iter(|| {
            answer(
                black_box(&offer.sdp),
                address,
                &[Some(40000), Some(40002)],
                1,
                1,
            )
            .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
