//! The hex examples in `docs/` parse to what the pages say.

use callrec::control::{Codec as ControlCodec, Direction, Message, MessageSplitter};
use callrec::file::{Codec, Recording};
use core::time::Duration;

/// Bytes of the first ```hex block in `markdown` (`offset: xx xx …` lines,
/// optionally followed by an `|ascii|` column).
fn hex_block(markdown: &str) -> Vec<u8> {
    let start = markdown.find("```hex\n").expect("a ```hex block") + 7;
    let end = start + markdown[start..].find("```").expect("closing fence");
    let mut bytes = Vec::new();
    for line in markdown[start..end].lines() {
        let (offset, hex) = line.split_once(": ").expect("offset: bytes");
        assert_eq!(
            usize::from_str_radix(offset, 16).unwrap(),
            bytes.len(),
            "offset column"
        );
        for byte in hex.split_whitespace().take_while(|t| !t.starts_with('|')) {
            bytes.push(u8::from_str_radix(byte, 16).unwrap());
        }
    }
    bytes
}

#[test]
fn recording_file_example() {
    let bytes = hex_block(include_str!("../docs/recording-file.md"));
    let rec = Recording::parse(&bytes).unwrap();
    let h = rec.header();
    assert_eq!(h.codec().codec(), Some(Codec::Pcmu));
    assert_eq!((h.rtp_len(), h.increment(), h.data_size()), (80, 80, 160));
    assert_eq!(rec.frame(0), Some(&[0xff; 80][..]));
    let second: Vec<u8> = (0..80).map(|i| 0xff - i).collect();
    assert_eq!(rec.frame(1), Some(&second[..]));
    assert_eq!(rec.duration(), Some(Duration::from_millis(20)));
    // And the writer produces these exact bytes.
    assert_eq!(h.to_bytes()[..], bytes[..76]);
}

#[test]
fn control_protocol_example() {
    let bytes = hex_block(include_str!("../docs/control-protocol.md"));
    assert!(bytes.ends_with(b"\r\n"));
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let message = MessageSplitter::new()
        .next_message(&mut buf)
        .unwrap()
        .unwrap();
    assert!(buf.is_empty());
    let Message::StartRequest(r) = message else {
        panic!("expected a start request, got {message:?}")
    };
    assert_eq!(r.id.as_str(), "5f3c9a");
    assert_eq!(r.device.to_string(), "001565aabbcc");
    assert_eq!(r.remote_number, "1010");
    assert_eq!(r.remote_name, "Bob Müller");
    assert_eq!(
        (r.local_number.as_str(), r.local_name.as_str()),
        ("1009", "Alice")
    );
    assert_eq!(r.dir, Direction::In);
    assert_eq!(r.codec, ControlCodec::Pcma);
    // And the encoder writes these exact bytes.
    let mut out = bytes::BytesMut::new();
    callrec::control::write_frame(&Message::StartRequest(r), &mut out).unwrap();
    assert_eq!(&out[..], &bytes[..]);
}

#[test]
fn rtp_example() {
    use callrec::rtp::{ExtensionElement, ExtensionForm, RtpPacket};
    let bytes = hex_block(include_str!("../docs/rtp.md"));
    let p = RtpPacket::parse(&bytes).unwrap();
    assert_eq!((p.version(), p.has_padding(), p.csrc_count()), (2, true, 1));
    assert_eq!((p.marker(), p.payload_type()), (true, 8));
    assert_eq!(
        (p.sequence_number(), p.timestamp(), p.ssrc()),
        (8000, 320_000, 0x5eed_1009)
    );
    assert_eq!(p.csrcs().collect::<Vec<_>>(), [0x1010]);
    let ext = p.extension().unwrap();
    assert_eq!(
        (ext.profile(), ext.form()),
        (0xbede, ExtensionForm::OneByte)
    );
    assert_eq!(
        ext.elements().collect::<Vec<_>>(),
        [ExtensionElement::new(1, &[0xaa])]
    );
    assert_eq!(p.payload(), [0xd5, 0x54, 0xd5, 0x55]);
    assert_eq!(p.padding_len(), 4);
}

#[test]
fn sip_record_example() {
    use callrec::sip::{RecordValue, SipMessage};
    let bytes = hex_block(include_str!("../docs/sip-record.md"));
    let m = SipMessage::parse(&bytes).unwrap();
    assert_eq!(m.method(), Some("INFO"));
    assert_eq!(m.record(), RecordValue::On);
    assert_eq!(m.from_tag(), Some(&b"1385842459"[..]));
    assert_eq!(m.to_tag(), Some(&b"2383911905"[..]));
    assert_eq!(m.cseq().map(|c| (c.number, c.method)), Some((2, "INFO")));
    assert_eq!(m.headers().len(), 10);
    assert!(bytes.ends_with(b"Content-Length: 0\r\n\r\n"));
}

#[test]
fn audio_wav_example() {
    use callrec::audio::g711::Law;
    use callrec::audio::wav::{MAX_HEADER_LEN, WavFile, WavSpec};
    let bytes = hex_block(include_str!("../docs/audio.md"));
    let wav = WavFile::parse(&bytes).unwrap();
    assert_eq!(wav.spec(), WavSpec::g711(Law::Alaw));
    assert_eq!(wav.samples().collect::<Vec<_>>(), [8, 8, -8, -32256]);
    assert_eq!(wav.duration(), Duration::from_micros(500));
    // And the writer produces this exact header.
    let mut header = [0u8; MAX_HEADER_LEN];
    assert_eq!(wav.spec().write_header(4, &mut header), 58);
    assert_eq!(header[..58], bytes[..58]);
}

#[test]
fn sidecar_example() {
    let page = include_str!("../docs/sidecar.md");
    let start = page.find("```json\n").expect("a ```json block") + 8;
    let end = start + page[start..].find("```").expect("closing fence");
    let sidecar: callrec_server::Sidecar = serde_json::from_str(&page[start..end]).unwrap();
    assert_eq!(
        sidecar.schema_version,
        callrec_server::SIDECAR_SCHEMA_VERSION
    );
    assert_eq!(sidecar.final_parties.remote_number, "1020");
    assert_eq!(sidecar.dtmf[0].digit, "5");
    assert_eq!(sidecar.files[0].sha256.as_ref().map(String::len), Some(64));
    // 100 packets of 160 bytes minus the 3 packets' worth the event took.
    assert_eq!(
        sidecar.payload_bytes + sidecar.silence_inserted_ms * 8,
        16_000
    );
    // Every field of the type is in the example, and nothing else.
    let value: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
    let back = serde_json::to_value(&sidecar).unwrap();
    assert_eq!(value, back);
}

#[test]
fn the_sample_configuration_is_valid_and_matches_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/record_server/record_server.toml");
    let sample = callrec_server::Config::from_file(&path).unwrap();
    let defaults = callrec_server::Config::default();
    // The keys not marked "(example)" hold the defaults.
    assert_eq!(sample.listen, defaults.listen);
    assert_eq!(sample.rtp_ports, defaults.rtp_ports);
    assert_eq!(sample.max_recordings, defaults.max_recordings);
    assert_eq!(
        sample.max_connections_per_ip,
        defaults.max_connections_per_ip
    );
    assert_eq!(sample.idle_timeout_secs, defaults.idle_timeout_secs);
    assert_eq!(sample.keepalive_secs, defaults.keepalive_secs);
    assert_eq!(sample.max_silence_secs, defaults.max_silence_secs);
    assert_eq!(sample.max_lead_ms, defaults.max_lead_ms);
    assert_eq!(sample.min_free_space, defaults.min_free_space);
    assert_eq!(sample.rtp_recv_buffer, defaults.rtp_recv_buffer);
    assert_eq!(sample.dtmf_payload_type, defaults.dtmf_payload_type);
    assert_eq!(sample.sip, None);
    assert_eq!(
        sample.sip_max_sessions_per_address,
        defaults.sip_max_sessions_per_address
    );
    assert_eq!(sample.sip_max_message_len, defaults.sip_max_message_len);
    assert_eq!(sample.sip_max_connections, defaults.sip_max_connections);
    assert_eq!(
        sample.sip_max_connections_per_address,
        defaults.sip_max_connections_per_address
    );
    assert_eq!(sample.sip_idle_timeout_secs, defaults.sip_idle_timeout_secs);
    assert_eq!(sample.allow.len(), 2);
}

#[test]
fn siprec_example() {
    use callrec::siprec::{Direction, RecordingOffer, answer};
    let bytes = hex_block(include_str!("../docs/siprec.md"));
    assert_eq!(bytes.len(), 592);
    let offer = RecordingOffer::parse("multipart/mixed;boundary=b", &bytes).unwrap();
    let media = &offer.sdp.media[0];
    assert_eq!(
        (media.port, media.label, media.direction),
        (12240, Some("1"), Direction::SendOnly)
    );
    let ann = offer.sender(0).unwrap();
    assert_eq!(
        (ann.aor.as_deref(), ann.name.as_deref()),
        (Some("sip:1001@pbx"), Some("Ann"))
    );
    let sdp = answer(
        &offer.sdp,
        "192.0.2.10".parse().unwrap(),
        &[Some(40000)],
        1,
        1,
    )
    .unwrap();
    let page = include_str!("../docs/siprec.md");
    let start = page.find("```text\nv=0").unwrap() + 8;
    let shown = &page[start..start + page[start..].find("```").unwrap()];
    assert_eq!(sdp, shown.replace('\n', "\r\n"));
}
