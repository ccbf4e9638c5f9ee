//! Builder, parser, replies and URL record against byte fixtures.

use callrec_sip::*;
use proptest::prelude::*;

use callrec_test::SplitMix64 as SplitMix;

/// The Yealink guide's example, with host, Call-ID and request line filled in.
const YEALINK_INFO: &str = "INFO sip:1010@10.3.20.6:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.3.20.14:5060;branch=z9hG4bK1870385345\r\n\
From: \"1009\" <sip:1009@10.3.20.6:5060>;tag=1385842459\r\n\
To: <sip:1010@10.3.20.6:5060>;tag=2383911905\r\n\
Call-ID: 0_2080113283@10.3.20.14\r\n\
CSeq: 2 INFO\r\n\
Contact: <sip:1009@10.3.20.14:5060>\r\n\
Max-Forwards: 70\r\n\
User-Agent: Yealink SIP-T23G 44.80.0.60\r\n\
Record: on\r\n\
Content-Length: 0\r\n\r\n";

fn yealink_dialog() -> Dialog<'static> {
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

#[test]
fn yealink_example_byte_for_byte() {
    let mut d = yealink_dialog();
    let info = d
        .record_info(Record::On)
        .user_agent("Yealink SIP-T23G 44.80.0.60")
        .branch("z9hG4bK1870385345")
        .to_vec(&mut SplitMix(0))
        .unwrap();
    assert_eq!(String::from_utf8(info).unwrap(), YEALINK_INFO);
    assert_eq!(d.local_cseq, 2);
}

#[test]
fn record_key_toggles_and_cseq_advances() {
    let mut d = yealink_dialog();
    let mut key = RecordKey::new();
    let mut rng = SplitMix(3);
    let mut branches = Vec::new();
    for (press, want) in [(1, "on"), (2, "off"), (3, "on")] {
        let record = key.press();
        let info = d.record_info(record).to_vec(&mut rng).unwrap();
        let m = SipMessage::parse(&info).unwrap();
        assert_eq!(m.header("Record"), Some(want.as_bytes()));
        let cseq = m.cseq().unwrap();
        assert_eq!((cseq.number, cseq.method), (1 + press, "INFO"));
        let via = core::str::from_utf8(m.header("Via").unwrap())
            .unwrap()
            .to_owned();
        let branch = via.split(";branch=").nth(1).unwrap().to_owned();
        assert!(
            branch.starts_with("z9hG4bK") && branch.len() >= 7 + 16,
            "{branch}"
        );
        branches.push(branch);
    }
    assert!(key.is_recording());
    branches.dedup();
    assert_eq!(branches.len(), 3, "a fresh branch per request");
}

#[test]
fn display_names_are_quoted_strings() {
    let mut d = yealink_dialog();
    d.local.display_name = Some(r#"Zoë "The Boss" \ Co"#);
    d.remote.display_name = Some("");
    let info = d.record_info(Record::Off).to_vec(&mut SplitMix(1)).unwrap();
    let text = String::from_utf8(info.clone()).unwrap();
    assert!(
        text.contains(
            "From: \"Zoë \\\"The Boss\\\" \\\\ Co\" <sip:1009@10.3.20.6:5060>;tag=1385842459\r\n"
        ),
        "{text}"
    );
    assert!(text.contains("To: \"\" <sip:1010@10.3.20.6:5060>;tag=2383911905\r\n"));
    // The parser finds the tags behind the escaped quotes.
    let m = SipMessage::parse(&info).unwrap();
    assert_eq!(m.from_tag(), Some(&b"1385842459"[..]));
    assert_eq!(m.to_tag(), Some(&b"2383911905"[..]));
}

#[test]
fn route_set_and_extra_headers() {
    let mut d = yealink_dialog();
    d.route_set = &["sip:p1.example;lr", "sip:p2.example;lr"];
    d.transport = Transport::Tcp;
    let info = d
        .record_info(Record::On)
        .header("X-Recording-Reason", "compliance")
        .to_vec(&mut SplitMix(1))
        .unwrap();
    let m = SipMessage::parse(&info).unwrap();
    assert!(
        m.header_values("Route")
            .eq([&b"<sip:p1.example;lr>"[..], &b"<sip:p2.example;lr>"[..]])
    );
    assert!(m.header("Via").unwrap().starts_with(b"SIP/2.0/TCP "));
    assert_eq!(m.header("x-recording-reason"), Some(&b"compliance"[..]));
}

/// A way to build that must fail.
type Case = Box<dyn Fn(&mut Dialog<'static>) -> Result<Vec<u8>, WriteError>>;

#[test]
fn injection_is_refused_and_the_dialog_unchanged() {
    let mut rng = SplitMix(2);
    let mut d = yealink_dialog();
    let cases: Vec<Case> = vec![
        Box::new(|d| {
            d.record_info(Record::On)
                .user_agent("x\r\nRecord: off")
                .to_vec(&mut SplitMix(2))
        }),
        Box::new(|d| {
            d.record_info(Record::On)
                .header("X-A", "a\nb")
                .to_vec(&mut SplitMix(2))
        }),
        Box::new(|d| {
            d.record_info(Record::On)
                .header("Bad Name", "v")
                .to_vec(&mut SplitMix(2))
        }),
        Box::new(|d| {
            d.record_info(Record::On)
                .header("Record", "off")
                .to_vec(&mut SplitMix(2))
        }),
        Box::new(|d| {
            d.record_info(Record::On)
                .header("l", "99")
                .to_vec(&mut SplitMix(2))
        }),
        Box::new(|d| {
            d.record_info(Record::On)
                .branch("abc")
                .to_vec(&mut SplitMix(2))
        }),
        Box::new(|d| {
            d.record_info(Record::On)
                .user_agent("ok")
                .user_agent("\0")
                .to_vec(&mut SplitMix(2))
        }),
    ];
    for case in &cases {
        assert!(case(&mut d).is_err());
        assert_eq!(d.local_cseq, 1);
    }
    for field in 0..8 {
        let mut bad = yealink_dialog();
        match field {
            0 => bad.call_id = "a\r\nb",
            1 => bad.local.uri = "sip:x> evil",
            2 => bad.remote.tag = Some("t\r\n"),
            3 => bad.local.display_name = Some("Eve\r\nRecord: off"),
            // URIs are visible ASCII: RFC 3261 escapes the rest.
            4 => bad.remote.uri = "sip:m\u{fc}ller@10.3.20.6",
            5 => bad.local_contact = "sip:1009@10.3.20.14:5060\x7f",
            6 => bad.sent_by = "10.3.20.14:5060\t",
            _ => bad.remote_target = "sip:a b",
        }
        let e = bad.record_info(Record::On).to_vec(&mut rng).unwrap_err();
        assert!(matches!(e, WriteError::InvalidValue { .. }), "{e}");
    }
    // The first error wins.
    let e = d
        .record_info(Record::On)
        .branch("bad")
        .user_agent("\n")
        .to_vec(&mut rng)
        .unwrap_err();
    assert_eq!(e, WriteError::InvalidBranch);
    d.local_cseq = (1 << 31) - 1;
    assert_eq!(
        d.record_info(Record::On).to_vec(&mut rng),
        Err(WriteError::CSeqExhausted)
    );
}

#[test]
fn writes_into_a_caller_buffer_without_allocating_and_refuses_a_short_one() {
    let mut d = yealink_dialog();
    let mut buf = [0u8; 600];
    let n = d
        .record_info(Record::On)
        .user_agent("Yealink SIP-T23G 44.80.0.60")
        .branch("z9hG4bK1870385345")
        .write(&mut SplitMix(0), &mut buf)
        .unwrap();
    assert_eq!(&buf[..n], YEALINK_INFO.as_bytes());
    assert_eq!(d.local_cseq, 2);
    // One byte short: an error naming both sizes, nothing written, the
    // CSeq kept.
    let mut short = vec![0u8; n - 1];
    let e = d
        .record_info(Record::On)
        .user_agent("Yealink SIP-T23G 44.80.0.60")
        .branch("z9hG4bK1870385345")
        .write(&mut SplitMix(0), &mut short)
        .unwrap_err();
    assert_eq!(
        e,
        WriteError::BufferTooShort {
            needed: n,
            available: n - 1
        }
    );
    assert_eq!(
        e.to_string(),
        format!("the INFO takes {n} bytes but the buffer has {}", n - 1)
    );
    assert!(short.iter().all(|&b| b == 0));
    assert_eq!(d.local_cseq, 2);
    // A bytes::BufMut without room is refused the same way.
    let mut small = [0u8; 10];
    let e = d
        .record_info(Record::Off)
        .write_buf(&mut SplitMix(0), &mut &mut small[..])
        .unwrap_err();
    assert!(matches!(
        e,
        WriteError::BufferTooShort { available: 10, .. }
    ));
}

#[test]
fn extra_headers_are_bounded_and_bad_names_are_named() {
    let mut d = yealink_dialog();
    let mut b = d.record_info(Record::On);
    for _ in 0..MAX_EXTRA_HEADERS {
        b = b.header("X-A", "1");
    }
    assert_eq!(
        b.header("X-A", "1").to_vec(&mut SplitMix(1)),
        Err(WriteError::TooManyHeaders)
    );
    let long = format!("Bad Name {}", "x".repeat(40));
    let e = d
        .record_info(Record::On)
        .header(&long, "v")
        .to_vec(&mut SplitMix(1))
        .unwrap_err();
    let WriteError::InvalidHeaderName(name) = e else {
        panic!("{e}")
    };
    assert!(name.is_truncated());
    assert_eq!(name.as_str(), &long[..32]);
    assert_eq!(
        e.to_string(),
        format!(
            "{:?}… is not a header name this builder accepts",
            &long[..32]
        )
    );
}

#[test]
fn parse_the_example() {
    let m = SipMessage::parse(YEALINK_INFO.as_bytes()).unwrap();
    assert_eq!(
        m.start_line(),
        StartLine::Request {
            method: "INFO",
            uri: "sip:1010@10.3.20.6:5060"
        }
    );
    assert_eq!(m.record(), RecordValue::On);
    assert_eq!(m.call_id(), Some(&b"0_2080113283@10.3.20.14"[..]));
    assert_eq!(m.from_tag(), Some(&b"1385842459"[..]));
    assert_eq!(m.to_tag(), Some(&b"2383911905"[..]));
    assert_eq!(m.cseq().map(|c| (c.number, c.method)), Some((2, "INFO")));
    assert_eq!(m.headers().len(), 10);
    assert_eq!(m.body(), b"");
}

#[test]
fn compact_forms_folding_and_spacing() {
    let msg = b"INFO sip:a@b SIP/2.0\r\n\
v: SIP/2.0/UDP p1;branch=z9hG4bK1\r\n\
Via: SIP/2.0/UDP p2;branch=z9hG4bK2,\r\n SIP/2.0/UDP p3;branch=z9hG4bK3\r\n\
f : \"A\" <sip:a@b>;tag=x1\r\n\
t:<sip:c@d>\r\n\
i:   abc@host   \r\n\
CSEQ:\t7 INFO\r\n\
Record:\r\n   OFF\r\n\
l: 0\r\n\r\n";
    let m = SipMessage::parse(msg).unwrap();
    let vias: Vec<_> = m.header_values("via").collect();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0], b"SIP/2.0/UDP p1;branch=z9hG4bK1");
    assert_eq!(
        vias[1],
        b"SIP/2.0/UDP p2;branch=z9hG4bK2,\r\n SIP/2.0/UDP p3;branch=z9hG4bK3"
    );
    assert_eq!(m.from_tag(), Some(&b"x1"[..]));
    assert_eq!(m.to_tag(), None);
    assert_eq!(m.call_id(), Some(&b"abc@host"[..]));
    assert_eq!(m.cseq().map(|c| c.number), Some(7));
    assert_eq!(m.record(), RecordValue::Off);
    assert_eq!(canonical("i"), "Call-ID");
}

#[test]
fn unknown_record_values_are_not_guessed() {
    for (value, want) in [
        ("On", RecordValue::On),
        ("yes", RecordValue::Unknown(b"yes")),
        ("", RecordValue::Unknown(b"")),
    ] {
        let msg = format!("INFO sip:a@b SIP/2.0\r\nRecord: {value}\r\n\r\n");
        assert_eq!(SipMessage::parse(msg.as_bytes()).unwrap().record(), want);
    }
    let m = SipMessage::parse(b"INFO sip:a@b SIP/2.0\r\n\r\n").unwrap();
    assert_eq!(m.record(), RecordValue::Absent);
}

#[test]
fn bare_lf_is_accepted() {
    let msg = YEALINK_INFO.replace("\r\n", "\n");
    let m = SipMessage::parse(msg.as_bytes()).unwrap();
    assert_eq!(m.headers().len(), 10);
    assert_eq!(m.record(), RecordValue::On);
}

/// Names shorter than, exactly and longer than the parser's 16-byte window,
/// lines shorter and longer than its 64-byte line window, and lines near the
/// end of the input, where the windows do not fit.
#[test]
fn names_and_lines_of_every_length() {
    for name_len in 1..40 {
        let name: String = (0..name_len)
            .map(|i| (b'a' + (i % 26) as u8) as char)
            .collect();
        for value_len in [0, 1, 30, 60, 70, 200] {
            let value = "v".repeat(value_len);
            let msg = format!("INFO sip:a@b SIP/2.0\r\n{name}: {value}\r\nX:y\r\n\r\n");
            let m = SipMessage::parse(msg.as_bytes()).unwrap();
            assert_eq!(
                m.header(&name),
                Some(value.as_bytes()),
                "{name_len} {value_len}"
            );
            assert_eq!(m.header("X"), Some(&b"y"[..]));
            // A character that is not a token character anywhere in the name.
            for bad_at in [0, name_len / 2, name_len - 1] {
                let mut bad = name.clone().into_bytes();
                bad[bad_at] = b'@';
                let msg = format!(
                    "INFO sip:a@b SIP/2.0\r\n{}: {value}\r\n\r\n",
                    String::from_utf8(bad).unwrap()
                );
                assert_eq!(
                    SipMessage::parse(msg.as_bytes()),
                    Err(ParseError::InvalidHeader { line: 2 }),
                    "{name_len} {bad_at}"
                );
            }
        }
    }
}

#[test]
fn malformed_messages() {
    let cut = &YEALINK_INFO[..YEALINK_INFO.len() - 2];
    assert_eq!(
        SipMessage::parse(cut.as_bytes()),
        Err(ParseError::UnterminatedHeaders)
    );
    let no_blank = YEALINK_INFO.replace("Content-Length: 0\r\n\r\n", "Content-Length: 0\r\n");
    assert_eq!(
        SipMessage::parse(no_blank.as_bytes()),
        Err(ParseError::UnterminatedHeaders)
    );
    let huge = YEALINK_INFO.replace("Content-Length: 0", "Content-Length: 4294967296");
    assert_eq!(
        SipMessage::parse(huge.as_bytes()),
        Err(ParseError::InvalidContentLength)
    );
    let short = YEALINK_INFO.replace("Content-Length: 0", "Content-Length: 10");
    assert_eq!(
        SipMessage::parse(short.as_bytes()),
        Err(ParseError::BodyTruncated {
            expected: 10,
            actual: 0
        })
    );
    for bad in ["", "+1", "-1", "1a", "0x10", "1 2", "0000000001"] {
        let msg = YEALINK_INFO.replace("Content-Length: 0", &format!("Content-Length: {bad}"));
        assert_eq!(
            SipMessage::parse(msg.as_bytes()),
            Err(ParseError::InvalidContentLength),
            "{bad:?}"
        );
    }
    // Nine digits are fine, leading zeros included.
    let padded = YEALINK_INFO.replace("Content-Length: 0", "Content-Length: 000000001");
    assert_eq!(
        SipMessage::parse(padded.as_bytes()),
        Err(ParseError::BodyTruncated {
            expected: 1,
            actual: 0
        })
    );
    let twice = YEALINK_INFO.replace("Content-Length: 0", "Content-Length: 0\r\nl: 5");
    assert_eq!(
        SipMessage::parse(twice.as_bytes()),
        Err(ParseError::InvalidContentLength)
    );
    let no_colon = YEALINK_INFO.replace("Max-Forwards: 70", "Max-Forwards 70");
    let e = SipMessage::parse(no_colon.as_bytes()).unwrap_err();
    assert_eq!(e, ParseError::InvalidHeader { line: 8 });
    assert_eq!(e.to_string(), "line 8 is not a header field (NAME: value)");
    let fold_first = "INFO sip:a@b SIP/2.0\r\n  folded\r\n\r\n";
    assert_eq!(
        SipMessage::parse(fold_first.as_bytes()),
        Err(ParseError::FoldWithoutHeader { line: 2 })
    );
    for bad_start in [
        "INFO sip:a@b SIP/3.0",
        "INFO  sip:a@b SIP/2.0",
        "SIP/2.0 99 Low",
        "SIP/2.0 2000 X",
        "HELLO",
        // Method not a token, no URI, URI with space, control or non-ASCII
        // characters (RFC 3261 URIs escape them), no method.
        "IN/FO sip:a@b SIP/2.0",
        "INFO SIP/2.0",
        "INFO  SIP/2.0",
        "INFO sip:a b SIP/2.0",
        "INFO sip:a\x7f SIP/2.0",
        "INFO sip:\u{fc}@b SIP/2.0",
        " sip:a@b SIP/2.0",
        "SIP/2.0",
    ] {
        let msg = format!("{bad_start}\r\n\r\n");
        assert_eq!(
            SipMessage::parse(msg.as_bytes()),
            Err(ParseError::InvalidStartLine),
            "{bad_start}"
        );
    }
    assert_eq!(SipMessage::parse(b""), Err(ParseError::UnterminatedHeaders));
}

#[test]
fn non_utf8_values_are_bytes() {
    let msg = b"INFO sip:a@b SIP/2.0\r\nSubject: caf\xe9 \xff\r\nRecord: \xc3\x28\r\n\r\n";
    let m = SipMessage::parse(msg).unwrap();
    assert_eq!(m.header("s"), Some(&b"caf\xe9 \xff"[..]));
    assert_eq!(m.record(), RecordValue::Unknown(b"\xc3\x28"));
    // A non-token byte in a header name is an error, not a silent drop.
    let msg = b"INFO sip:a@b SIP/2.0\r\nX-\xe9: 1\r\n\r\n";
    assert_eq!(
        SipMessage::parse(msg),
        Err(ParseError::InvalidHeader { line: 2 })
    );
}

#[test]
fn limits() {
    let big_line = format!(
        "INFO sip:a@b SIP/2.0\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    assert_eq!(
        SipMessage::parse(big_line.as_bytes()),
        Err(ParseError::MessageTooLarge {
            len: big_line.len(),
            max: 65536
        })
    );
    let limits = Limits::default().max_message_len(2 << 20);
    assert_eq!(
        SipMessage::parse_with(big_line.as_bytes(), limits),
        Err(ParseError::LineTooLong { line: 2, max: 8192 })
    );
    let many = format!("INFO sip:a@b SIP/2.0\r\n{}\r\n", "X-H: 1\r\n".repeat(129));
    assert_eq!(
        SipMessage::parse(many.as_bytes()),
        Err(ParseError::TooManyHeaders { max: 128 })
    );
    let one_less = format!("INFO sip:a@b SIP/2.0\r\n{}\r\n", "X-H: 1\r\n".repeat(128));
    assert!(SipMessage::parse(one_less.as_bytes()).is_ok());
}

#[test]
fn body_is_cut_to_content_length() {
    let msg = b"INFO sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcdef";
    assert_eq!(SipMessage::parse(msg).unwrap().body(), b"abc");
    let msg = b"\r\n\r\nINFO sip:a@b SIP/2.0\r\n\r\nrest";
    assert_eq!(SipMessage::parse(msg).unwrap().body(), b"rest");
}

#[test]
fn replies() {
    let req = SipMessage::parse(YEALINK_INFO.as_bytes()).unwrap();
    let ok = reply(&req, ReplyStatus::Ok, "srv").unwrap();
    assert_eq!(
        String::from_utf8(ok).unwrap(),
        "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.3.20.14:5060;branch=z9hG4bK1870385345\r\n\
From: \"1009\" <sip:1009@10.3.20.6:5060>;tag=1385842459\r\n\
To: <sip:1010@10.3.20.6:5060>;tag=2383911905\r\n\
Call-ID: 0_2080113283@10.3.20.14\r\n\
CSeq: 2 INFO\r\n\
Content-Length: 0\r\n\r\n"
    );
    // Several Vias in order, compact names expanded, To tag added.
    let msg = b"INFO sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP p1\r\nVia: SIP/2.0/UDP p2\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d;user=phone>\r\ni: x\r\nCSeq: 3 INFO\r\n\r\n";
    let req = SipMessage::parse(msg).unwrap();
    for (status, line) in [
        (ReplyStatus::Forbidden, "SIP/2.0 403 Forbidden\r\n"),
        (
            ReplyStatus::CallDoesNotExist,
            "SIP/2.0 481 Call/Transaction Does Not Exist\r\n",
        ),
        (
            ReplyStatus::NotAcceptableHere,
            "SIP/2.0 488 Not Acceptable Here\r\n",
        ),
    ] {
        let out = reply(&req, status, "abc").unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with(line), "{text}");
        assert!(text.contains("Via: SIP/2.0/UDP p1\r\nVia: SIP/2.0/UDP p2\r\n"));
        assert!(text.contains("To: <sip:c@d;user=phone>;tag=abc\r\n"));
        let back = SipMessage::parse(&out).unwrap();
        assert_eq!(
            back.start_line(),
            StartLine::Response {
                code: status.code(),
                reason: status.reason().as_bytes()
            }
        );
        assert_eq!(back.to_tag(), Some(&b"abc"[..]));
    }
    let resp = SipMessage::parse(b"SIP/2.0 200 OK\r\n\r\n").unwrap();
    assert_eq!(
        reply(&resp, ReplyStatus::Ok, "t"),
        Err(ReplyError::NotARequest)
    );
    let no_cseq =
        SipMessage::parse(b"INFO sip:a@b SIP/2.0\r\nVia: x\r\nFrom: a\r\nTo: b\r\ni: c\r\n\r\n")
            .unwrap();
    assert_eq!(
        reply(&no_cseq, ReplyStatus::Ok, "t"),
        Err(ReplyError::MissingHeader("CSeq"))
    );
    assert_eq!(
        reply(&req, ReplyStatus::Ok, "a b"),
        Err(ReplyError::InvalidTag)
    );
    let open = SipMessage::parse(b"INFO sip:a@b SIP/2.0\r\nVia: x\r\nFrom: a\r\nTo: \"open <sip:b>\r\ni: c\r\nCSeq: 1 INFO\r\n\r\n").unwrap();
    assert_eq!(
        reply(&open, ReplyStatus::Ok, "t"),
        Err(ReplyError::MalformedTo)
    );
}

#[test]
fn url_record() {
    let url = UrlRecord::parse("http://rec.example/api/record?cmd=start&mac=$mac&local=$local&remote=$remote&cid=$call_id&dl=$display_local&dr=$display_remote&cost=$5").unwrap();
    let mut vars = UrlVars::new();
    vars.mac = "001565aabbcc";
    vars.local = "1009";
    vars.remote = "+49 30 1234";
    vars.call_id = "0_2080113283@10.3.20.14";
    vars.display_local = "Front Desk";
    vars.display_remote = "Zoë&Co";
    let req =
        String::from_utf8(url.request(&vars, "SIP-T23G 44.80.0.60 001565aabbcc\r\nX: y")).unwrap();
    assert_eq!(
        req,
        "GET /api/record?cmd=start&mac=001565aabbcc&local=1009&remote=%2B49%2030%201234&cid=0_2080113283%4010.3.20.14&dl=Front%20Desk&dr=Zo%C3%AB%26Co&cost=$5 HTTP/1.1\r\n\
Host: rec.example\r\nUser-Agent: SIP-T23G 44.80.0.60 001565aabbccX: y\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    assert!(UrlRecord::parse("http://h:80?x=1").is_ok());
    assert_eq!(UrlRecord::parse("https://h/"), Err(UrlError::NotHttp));
    assert_eq!(UrlRecord::parse("http://h:0/"), Err(UrlError::InvalidPort));
    assert_eq!(
        UrlRecord::parse("http://h:99999/"),
        Err(UrlError::InvalidPort)
    );
    assert_eq!(UrlRecord::parse("http:///x"), Err(UrlError::InvalidHost));
    assert_eq!(
        UrlRecord::parse("http://h/a b"),
        Err(UrlError::InvalidTarget)
    );
    assert_eq!(
        parse_http_status(b"HTTP/1.1 200 OK\r\n\r\n"),
        Ok((200, &b"OK"[..]))
    );
    assert_eq!(
        parse_http_status(b"HTTP/1.0 404 Not Found\n"),
        Ok((404, &b"Not Found"[..]))
    );
    assert_eq!(parse_http_status(b"HTTP/1.1 204"), Ok((204, &b""[..])));
    for bad in [
        &b"HTTP/2 200 OK"[..],
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000",
        b"SIP/2.0 200 OK",
        b"",
    ] {
        assert_eq!(
            parse_http_status(bad),
            Err(UrlError::InvalidStatusLine),
            "{bad:?}"
        );
    }
}

fn display_name() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        any::<char>().prop_filter("no CR/LF/NUL", |c| !matches!(c, '\r' | '\n' | '\0')),
        0..20,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #[test]
    fn build_then_parse(
        user in "[a-zA-Z0-9_.!~*'()%+-]{1,20}",
        host in "[a-z0-9]{1,10}(\\.[a-z]{1,5}){0,2}",
        port in proptest::option::of(1u16..),
        local_name in proptest::option::of(display_name()),
        remote_name in proptest::option::of(display_name()),
        tags in ("[a-zA-Z0-9]{1,16}", "[a-zA-Z0-9-]{1,16}"),
        call_id in "[a-zA-Z0-9@._-]{1,40}",
        cseq in 1u32..1_000_000,
        on in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let hostport = match port { Some(p) => format!("{host}:{p}"), None => host.clone() };
        let (local_uri, remote_uri) = (format!("sip:{user}@{hostport}"), format!("sip:peer@{hostport}"));
        let mut local = NameAddr::new(&local_uri).tag(&tags.0);
        local.display_name = local_name.as_deref();
        let mut remote = NameAddr::new(&remote_uri).tag(&tags.1);
        remote.display_name = remote_name.as_deref();
        let mut d = Dialog::new(&call_id)
            .local(local)
            .remote(remote)
            .remote_target(&remote_uri)
            .local_contact(&local_uri)
            .sent_by(&hostport)
            .local_cseq(cseq);
        // The caller-buffer write gives the same bytes as the Vec one.
        let mut copy = d.clone();
        let mut buf = [0u8; 1024];
        let record = if on { Record::On } else { Record::Off };
        let n = copy.record_info(record).write(&mut SplitMix(seed), &mut buf).unwrap();
        let bytes = d.record_info(record).to_vec(&mut SplitMix(seed)).unwrap();
        prop_assert_eq!(&buf[..n], &bytes[..]);
        prop_assert_eq!(copy.local_cseq, d.local_cseq);
        let m = SipMessage::parse(&bytes).unwrap();
        prop_assert_eq!(m.method(), Some("INFO"));
        prop_assert_eq!(m.record(), if on { RecordValue::On } else { RecordValue::Off });
        prop_assert_eq!(m.call_id(), Some(call_id.as_bytes()));
        prop_assert_eq!(m.from_tag(), Some(tags.0.as_bytes()));
        prop_assert_eq!(m.to_tag(), Some(tags.1.as_bytes()));
        prop_assert_eq!(m.cseq().map(|c| c.number), Some(cseq + 1));
        prop_assert_eq!(d.local_cseq, cseq + 1);
        let reply = reply(&m, ReplyStatus::Ok, "r1").unwrap();
        let back = SipMessage::parse(&reply).unwrap();
        prop_assert_eq!(back.from_tag(), Some(tags.0.as_bytes()));
        prop_assert_eq!(back.to_tag(), Some(tags.1.as_bytes()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        fuzzing::check_parse_reply_parse(&data);
    }

    #[test]
    fn mutated_example_never_panics(pos in 0usize..460, byte in any::<u8>(), cut in 0usize..470) {
        let mut msg = YEALINK_INFO.as_bytes().to_vec();
        let i = pos % msg.len();
        msg[i] = byte;
        msg.truncate(cut.min(msg.len()));
        fuzzing::check_parse_reply_parse(&msg);
    }
}

mod stream_framing {
    use callrec_sip::frame::{Frame, next_frame};
    use proptest::prelude::*;

    fn message(n: usize, body: &[u8]) -> Vec<u8> {
        let mut m = format!(
            "MESSAGE sip:{n}@example SIP/2.0\r\nCall-ID: {n}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        m.extend_from_slice(body);
        m
    }

    proptest! {
        /// Messages and keep-alives written to a stream, read back in
        /// chunks of any size, come out whole and in order.
        #[test]
        fn a_stream_read_in_any_chunks_gives_back_its_messages(
            bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..8),
            pings in prop::collection::vec(any::<bool>(), 8),
            chunk in 1usize..200,
        ) {
            let mut stream = Vec::new();
            let mut sent = Vec::new();
            for (n, body) in bodies.iter().enumerate() {
                if pings[n] {
                    stream.extend_from_slice(b"\r\n\r\n");
                }
                let m = message(n, body);
                stream.extend_from_slice(&m);
                sent.push(m);
            }
            let mut buf: Vec<u8> = Vec::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                loop {
                    match next_frame(&buf, 4096).unwrap() {
                        Frame::KeepAlive { len, .. } => { buf.drain(..len); }
                        Frame::Message { len } => { got.push(buf.drain(..len).collect::<Vec<u8>>()); }
                        Frame::Incomplete => break,
                        _ => unreachable!(),
                    }
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, sent);
        }
    }
}
