//! Property tests: every message round-trips with arbitrary Unicode
//! numbers and names; streams decode the same however they are split.

use core::net::IpAddr;
use core::num::NonZeroU16;

use bytes::BytesMut;
use callrec_control::*;
use proptest::prelude::*;

/// Up to `max_bytes` of arbitrary Unicode (any scalar value).
fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..=max_bytes / 4 + 8).prop_map(move |chars| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > max_bytes {
                break;
            }
            s.push(c);
        }
        s
    })
}

fn id() -> impl Strategy<Value = SessionId> {
    "[!-~]{1,64}".prop_map(|s| SessionId::new(s).unwrap())
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        any::<IpAddr>().prop_map(Host::Ip),
        "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z]{1,8}){0,3}".prop_map(|s| s.parse().unwrap()),
    ]
}

fn start_request() -> impl Strategy<Value = RecordStartRequest> {
    (
        id(),
        any::<[u8; 6]>(),
        (
            text(MAX_NUMBER_LEN),
            text(MAX_NAME_LEN),
            text(MAX_NUMBER_LEN),
            text(MAX_NAME_LEN),
        ),
        prop_oneof![Just(Direction::In), Just(Direction::Out)],
        prop_oneof![Just(Codec::Pcma), Just(Codec::Pcmu), Just(Codec::G722)],
    )
        .prop_map(|(id, mac, (rn, rname, ln, lname), dir, codec)| {
            let mut r = RecordStartRequest::new(id, Mac::new(mac), dir, codec);
            r.remote_number = rn;
            r.remote_name = rname;
            r.local_number = ln;
            r.local_name = lname;
            r
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        start_request().prop_map(Message::from),
        (id(), host(), 1u16..).prop_map(|(id, h, p)| {
            RecordStartResponse::success(id, h, NonZeroU16::new(p).unwrap()).into()
        }),
        (id(), text(MAX_NAME_LEN)).prop_map(|(id, r)| RecordStartResponse::failed(id, r).into()),
        (start_request(), text(MAX_NAME_LEN))
            .prop_map(|(s, r)| RecordStopRequest::for_start(&s, r).into()),
        id().prop_map(|id| RecordStopResponse::success(id).into()),
        (id(), text(MAX_NAME_LEN)).prop_map(|(id, r)| RecordStopResponse::failed(id, r).into()),
    ]
}

proptest! {
    #[test]
    fn encode_decode(m in message()) {
        let wire = m.to_vec().unwrap();
        prop_assert!(wire.len() <= DEFAULT_MAX_MESSAGE_LEN);
        prop_assert!(!wire.iter().any(|&b| b == b'\n' || b == b'\r' || b == 0 || b == b' '));
        prop_assert_eq!(Message::parse(&wire[..]), Ok(m));
    }

    #[test]
    fn streams_split_anywhere(ms in proptest::collection::vec(message(), 1..5),
                              garbage in proptest::collection::vec(any::<u8>(), 0..40),
                              splits in proptest::collection::vec(any::<u8>(), 1..6)) {
        let mut stream = BytesMut::new();
        for m in &ms {
            write_frame(m, &mut stream).unwrap();
            stream.extend_from_slice(&garbage);
        }
        fuzzing::check_split_independent(&stream, &splits, DEFAULT_MAX_MESSAGE_LEN);
        // Without garbage, exactly the messages come back.
        let mut clean = BytesMut::new();
        for m in &ms {
            write_frame(m, &mut clean).unwrap();
        }
        let mut splitter = MessageSplitter::new();
        let got: Vec<_> = core::iter::from_fn(|| splitter.next_message_eof(&mut clean))
            .map(Result::unwrap)
            .collect();
        prop_assert_eq!(got, ms);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                   splits in proptest::collection::vec(any::<u8>(), 0..4),
                                   max in 1usize..64) {
        fuzzing::check_message_round_trip(&bytes);
        fuzzing::check_split_independent(&bytes, &splits, max);
    }
}
