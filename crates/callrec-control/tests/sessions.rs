//! A phone and a server driven against each other in memory with a
//! simulated clock: every byte either sends is delivered to the other until
//! both are quiet (the shape of quinn-proto's `Pair::drive`).

use core::num::NonZeroU16;
use core::time::Duration;
use std::collections::BTreeMap;
use std::time::Instant;

use bytes::BytesMut;
use callrec_control::*;

/// Ports 40000.. on 10.0.0.9, at most `capacity` at a time.
#[derive(Debug, Default)]
struct Ports {
    capacity: usize,
    in_use: BTreeMap<SessionId, u16>,
    released: Vec<SessionId>,
}

impl Ports {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }
}

impl PortAllocator for Ports {
    fn allocate(&mut self, request: &RecordStartRequest) -> Result<RtpTarget, Rejection> {
        if self.in_use.len() >= self.capacity {
            return Err(Rejection::NoFreePort);
        }
        let port = (40000..)
            .find(|p| !self.in_use.values().any(|u| u == p))
            .unwrap();
        self.in_use.insert(request.id.clone(), port);
        Ok(RtpTarget::new(
            "10.0.0.9".parse().unwrap(),
            NonZeroU16::new(port).unwrap(),
        ))
    }

    fn release(&mut self, id: &SessionId, target: &RtpTarget) {
        assert_eq!(self.in_use.remove(id), Some(target.port.get()));
        self.released.push(id.clone());
    }
}

struct Pair {
    now: Instant,
    phone: PhoneSession,
    server: ServerSession<Ports>,
    phone_events: Vec<PhoneEvent>,
    server_events: Vec<ServerEvent>,
    /// When false, what the server sends is lost.
    server_to_phone: bool,
}

impl Pair {
    fn new(request: RecordStartRequest, ports: Ports, config: ServerConfig) -> Self {
        let now = Instant::now();
        Self {
            now,
            phone: PhoneSession::new(request, now).unwrap(),
            server: ServerSession::new(ports, config, now),
            phone_events: Vec::new(),
            server_events: Vec::new(),
            server_to_phone: true,
        }
    }

    fn default_pair() -> Self {
        Self::new(request("c0ffee"), Ports::new(8), ServerConfig::default())
    }

    /// Delivers bytes both ways until neither side has anything to send.
    fn drive(&mut self) {
        loop {
            let mut moved = false;
            if let Some(bytes) = self.phone.poll_transmit() {
                self.server.handle_data(&bytes, self.now);
                moved = true;
            }
            if let Some(bytes) = self.server.poll_transmit() {
                if self.server_to_phone {
                    self.phone.handle_data(&bytes, self.now);
                }
                moved = true;
            }
            self.phone_events
                .extend(core::iter::from_fn(|| self.phone.poll_event()));
            self.server_events
                .extend(core::iter::from_fn(|| self.server.poll_event()));
            if !moved {
                break;
            }
        }
    }

    /// Moves the clock to the earliest timer (at most `limit` ahead).
    fn advance(&mut self, limit: Duration) {
        let target = [self.phone.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .map_or(self.now + limit, |t| t.min(self.now + limit));
        self.now = target.max(self.now);
        self.phone.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.drive();
    }

    fn stop(&mut self, reason: &str) {
        self.phone.stop(reason, self.now).unwrap();
        self.drive();
    }
}

fn request(id: &str) -> RecordStartRequest {
    let mut r = RecordStartRequest::new(
        SessionId::new(id).unwrap(),
        "00:15:65:aa:bb:cc".parse().unwrap(),
        Direction::Out,
        Codec::Pcma,
    );
    r.remote_number = "1010".into();
    r.remote_name = "Bob Müller".into();
    r.local_number = "1009".into();
    r.local_name = "Alice".into();
    r
}

fn port(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap()
}

/// Every message in `bytes`.
fn decode_all(bytes: &[u8]) -> Vec<Message> {
    let mut splitter = MessageSplitter::new();
    let mut buf = BytesMut::from(bytes);
    core::iter::from_fn(|| splitter.next_message_eof(&mut buf))
        .map(Result::unwrap)
        .collect()
}

#[test]
fn start_record_stop() {
    let mut pair = Pair::default_pair();
    pair.drive();
    let target = RtpTarget::new("10.0.0.9".parse().unwrap(), port(40000));
    assert_eq!(
        pair.server_events,
        [ServerEvent::Started {
            request: request("c0ffee"),
            target: target.clone()
        }]
    );
    assert_eq!(
        pair.phone_events,
        [PhoneEvent::Recording {
            server: target.server.clone(),
            port: target.port
        }]
    );
    assert_eq!(pair.phone.poll_timeout(), None, "no timer while recording");

    // An hour later, the user stops.
    pair.now += Duration::from_secs(3600);
    pair.stop("user");
    assert_eq!(pair.phone.state(), &PhoneState::Stopped);
    assert!(pair.phone.is_finished());
    assert_eq!(
        pair.server_events[1..],
        [ServerEvent::Stop {
            request: RecordStopRequest::for_start(&request("c0ffee"), "user")
        }]
    );
    assert_eq!(
        pair.phone_events[1..],
        [PhoneEvent::Stopped {
            result: StopResult::Success
        }]
    );
    assert_eq!(pair.server.sessions().count(), 0);
    assert_eq!(pair.server.allocator().released.len(), 1);
}

#[test]
fn no_free_port_fails_with_a_reason() {
    let mut pair = Pair::new(request("a"), Ports::new(0), ServerConfig::default());
    pair.drive();
    assert_eq!(
        pair.phone_events,
        [PhoneEvent::Failed {
            reason: "no free port".into()
        }]
    );
    assert_eq!(
        pair.phone.state(),
        &PhoneState::Failed {
            reason: "no free port".into()
        }
    );
    assert_eq!(
        pair.server_events,
        [ServerEvent::Rejected {
            id: Some(SessionId::new("a").unwrap()),
            reason: "no free port".into()
        }]
    );
    assert!(matches!(
        pair.phone.stop("user", pair.now),
        Err(SessionError::NotActive)
    ));
}

#[test]
fn server_rejects_what_it_cannot_record() {
    let now = Instant::now();
    let mut server =
        ServerSession::new(Ports::new(8), ServerConfig::default().max_sessions(1), now);
    server.handle_data(
        b"cmd=RecordStartRequest&id=g9&device=001565aabbcc&dir=in&codec=G729\r\n\
          cmd=RecordStartRequest&id=nodev&dir=in&codec=PCMU\r\n\
          cmd=RecordStartRequest&id=one&device=001565aabbcc&dir=in&codec=PCMU\r\n\
          cmd=RecordStartRequest&id=one&device=001565aabbcc&dir=in&codec=PCMU\r\n\
          cmd=RecordStartRequest&id=two&device=001565aabbcc&dir=in&codec=PCMU\r\n\
          cmd=RecordStartRequest&device=001565aabbcc&dir=in&codec=PCMU\r\n",
        now,
    );
    let wire = server.poll_transmit().unwrap();
    // The last answer, to the request without an id, echoes an empty id
    // (not a valid SessionId, so it is checked as text).
    let text = core::str::from_utf8(&wire).unwrap();
    let (valid, last) = text.trim_end().rsplit_once("\r\n").unwrap();
    assert_eq!(
        last,
        "cmd=RecordStartResponse&id=&result=failed&reason=malformed+request%3A+missing+key+%22id%22"
    );
    let answers = decode_all(valid.as_bytes());
    let results: Vec<_> = answers
        .iter()
        .map(|m| match m {
            Message::StartResponse(r) => (r.id.to_string(), r.result.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let failed = |reason: &str| StartResult::Failed {
        reason: reason.into(),
    };
    assert_eq!(
        results,
        [
            (
                "g9".into(),
                failed("unsupported codec \"G729\" (PCMA, PCMU or G722)")
            ),
            (
                "nodev".into(),
                failed("malformed request: missing key \"device\"")
            ),
            (
                "one".into(),
                StartResult::Success {
                    server: "10.0.0.9".parse().unwrap(),
                    port: port(40000)
                }
            ),
            ("one".into(), failed("session id already in use")),
            ("two".into(), failed("too many sessions")),
        ]
    );
    // The request without an id is reported as rejected.
    let events: Vec<_> = core::iter::from_fn(|| server.poll_event()).collect();
    assert!(matches!(
        events.last(),
        Some(ServerEvent::Rejected { id: None, reason })
            if reason == "malformed request: missing key \"id\""
    ));
}

/// Every request whose `cmd` can be read gets an answer, whatever is wrong
/// with it, so no phone waits for one.
#[test]
fn every_request_is_answered_even_with_a_bad_id_or_an_over_long_line() {
    let now = Instant::now();
    let mut server = ServerSession::new(Ports::new(8), ServerConfig::default(), now);
    let long_id = "i".repeat(200);
    let huge = "9".repeat(5000);
    let input = format!(
        "cmd=RecordStartRequest&id=&device=001565aabbcc&dir=in&codec=PCMU\r\n\
         cmd=RecordStartRequest&id={long_id}&device=001565aabbcc&dir=in&codec=PCMU\r\n\
         cmd=RecordStartRequest&id=big1&device=001565aabbcc&remote_number={huge}\r\n\
         cmd=RecordStopRequest&id=&reason=user\r\n"
    );
    server.handle_data(input.as_bytes(), now);
    let wire = server.poll_transmit().unwrap();
    let lines: Vec<&str> = core::str::from_utf8(&wire).unwrap().lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].starts_with("cmd=RecordStartResponse&id=&result=failed&reason="));
    assert!(
        lines[1].starts_with(&format!(
            "cmd=RecordStartResponse&id={long_id}&result=failed&reason=malformed+request"
        )),
        "{}",
        lines[1]
    );
    // The over-long line's cmd and id come from its first bytes.
    assert_eq!(
        decode_all(format!("{}\r\n", lines[2]).as_bytes()),
        [Message::StartResponse(RecordStartResponse::failed(
            SessionId::new("big1").unwrap(),
            "malformed request: message longer than 4096 bytes; discarded"
        ))]
    );
    assert!(lines[3].starts_with("cmd=RecordStopResponse&id=&result=failed&reason="));
}

#[test]
fn junk_does_not_keep_a_connection_without_a_recording_open() {
    let now = Instant::now();
    let mut server = ServerSession::new(Ports::new(8), ServerConfig::default(), now);
    for second in 1..10 {
        server.handle_data(b"hello\r\n", now + Duration::from_secs(second));
    }
    assert_eq!(server.poll_timeout(), Some(now + DEFAULT_IDLE_TIMEOUT));
    server.handle_timeout(now + DEFAULT_IDLE_TIMEOUT);
    assert!(server.is_closed());
}

#[test]
fn the_idle_deadline_runs_again_after_the_last_recording() {
    let mut pair = Pair::default_pair();
    pair.drive();
    assert_eq!(pair.server.poll_timeout(), None);
    pair.now += Duration::from_secs(600);
    pair.stop("user");
    assert_eq!(
        pair.server.poll_timeout(),
        Some(pair.now + DEFAULT_IDLE_TIMEOUT)
    );
}

#[test]
fn a_recording_the_server_ends_itself_is_reported_to_the_phone() {
    let mut pair = Pair::default_pair();
    pair.drive();
    let id = SessionId::new("c0ffee").unwrap();
    assert!(
        pair.server
            .end_session(&id, "write error: disk full", pair.now)
    );
    assert!(!pair.server.end_session(&id, "again", pair.now));
    assert_eq!(
        decode_all(&pair.server.poll_transmit().unwrap()),
        [Message::StopResponse(RecordStopResponse::failed(
            id,
            "write error: disk full"
        ))]
    );
    assert_eq!(pair.server.sessions().count(), 0);
    assert_eq!(pair.server.allocator().released.len(), 1);
}

#[test]
fn start_timeout_terminates_the_phone() {
    let mut pair = Pair::default_pair();
    pair.server_to_phone = false;
    pair.drive();
    assert!(pair.phone_events.is_empty());
    pair.advance(Duration::from_secs(60));
    assert_eq!(
        pair.phone_events,
        [PhoneEvent::Terminated(TerminateCause::Timeout {
            waiting_for: Command::StartResponse
        })]
    );
    assert!(pair.phone.is_finished());
}

#[test]
fn start_timeout_fires_at_five_seconds_not_before() {
    let mut pair = Pair::default_pair();
    pair.server_to_phone = false;
    pair.drive();
    let started = pair.now;
    pair.advance(Duration::from_millis(4999));
    assert!(pair.phone_events.is_empty());
    pair.advance(Duration::from_secs(1));
    assert_eq!(pair.now - started, DEFAULT_RESPONSE_TIMEOUT);
    assert_eq!(pair.phone_events.len(), 1);
}

#[test]
fn stop_timeout_terminates_the_phone() {
    let mut pair = Pair::default_pair();
    pair.drive();
    pair.server_to_phone = false;
    pair.stop("user");
    assert_eq!(pair.phone.state(), &PhoneState::AwaitingStop);
    pair.advance(Duration::from_secs(60));
    assert_eq!(
        pair.phone_events.last(),
        Some(&PhoneEvent::Terminated(TerminateCause::Timeout {
            waiting_for: Command::StopResponse
        }))
    );
}

#[test]
fn connection_loss_clears_both_sides() {
    let mut pair = Pair::default_pair();
    pair.drive();
    pair.phone.connection_lost();
    pair.server.connection_lost();
    pair.drive();
    assert_eq!(
        pair.phone_events.last(),
        Some(&PhoneEvent::Terminated(TerminateCause::ConnectionLost))
    );
    assert_eq!(
        pair.server_events.last(),
        Some(&ServerEvent::Terminated {
            id: SessionId::new("c0ffee").unwrap()
        })
    );
    assert_eq!(pair.server.sessions().count(), 0);
    assert!(pair.server.allocator().in_use.is_empty());
    assert!(pair.server.is_closed());
    // Nothing more happens on either side.
    pair.server
        .handle_data(b"cmd=RecordStopRequest&id=c0ffee\r\n", pair.now);
    assert_eq!(pair.server.poll_transmit(), None);
    assert!(matches!(
        pair.phone.stop("x", pair.now),
        Err(SessionError::NotActive)
    ));
}

#[test]
fn server_eof_after_the_answer() {
    let mut pair = Pair::default_pair();
    let req = pair.phone.poll_transmit().unwrap();
    pair.server.handle_data(&req, pair.now);
    let answer = pair.server.poll_transmit().unwrap();
    // The answer arrives without its terminator, then the server closes.
    pair.phone
        .handle_data(&answer[..answer.len() - 2], pair.now);
    assert!(pair.phone.poll_event().is_none());
    pair.phone.handle_eof(pair.now);
    assert!(matches!(
        pair.phone.poll_event(),
        Some(PhoneEvent::Recording { .. })
    ));
    assert_eq!(
        pair.phone.poll_event(),
        Some(PhoneEvent::Terminated(TerminateCause::ConnectionLost))
    );
}

#[test]
fn wrong_id_is_a_protocol_error() {
    let mut pair = Pair::default_pair();
    let _ = pair.phone.poll_transmit();
    pair.phone.handle_data(
        b"cmd=RecordStartResponse&id=someone-else&result=success&server=10.0.0.9&port=40000\n",
        pair.now,
    );
    assert_eq!(
        pair.phone.poll_event(),
        Some(PhoneEvent::Terminated(TerminateCause::Protocol(
            ProtocolError::WrongId {
                expected: SessionId::new("c0ffee").unwrap(),
                got: SessionId::new("someone-else").unwrap()
            }
        )))
    );
}

#[test]
fn phone_rejects_requests_and_garbage() {
    let mut pair = Pair::default_pair();
    pair.phone
        .handle_data(b"cmd=RecordStopRequest&id=c0ffee\n", pair.now);
    assert_eq!(
        pair.phone.poll_event(),
        Some(PhoneEvent::Terminated(TerminateCause::Protocol(
            ProtocolError::Unexpected {
                command: Command::StopRequest
            }
        )))
    );
    let mut pair = Pair::default_pair();
    pair.phone
        .handle_data(b"HTTP/1.1 400 Bad Request\r\n", pair.now);
    assert!(matches!(
        pair.phone.poll_event(),
        Some(PhoneEvent::Terminated(TerminateCause::Protocol(
            ProtocolError::Malformed(_)
        )))
    ));
}

#[test]
fn stop_before_the_start_is_answered() {
    let mut pair = Pair::default_pair();
    pair.phone.stop("changed my mind", pair.now).unwrap();
    pair.drive();
    assert_eq!(pair.phone.state(), &PhoneState::Stopped);
    assert_eq!(
        pair.phone_events,
        [PhoneEvent::Stopped {
            result: StopResult::Success
        }]
    );
    assert!(matches!(
        pair.server_events[..],
        [ServerEvent::Started { .. }, ServerEvent::Stop { .. }]
    ));
}

#[test]
fn unknown_stop_is_answered_and_reported() {
    let now = Instant::now();
    let mut server = ServerSession::new(Ports::new(8), ServerConfig::default(), now);
    server.handle_data(b"cmd=RecordStopRequest&id=ghost&reason=user\r\n", now);
    assert_eq!(
        decode_all(&server.poll_transmit().unwrap()),
        [Message::StopResponse(RecordStopResponse::failed(
            SessionId::new("ghost").unwrap(),
            "unknown session id"
        ))]
    );
    assert_eq!(
        server.poll_event(),
        Some(ServerEvent::UnknownStop {
            id: SessionId::new("ghost").unwrap()
        })
    );
}

#[test]
fn malformed_stop_with_a_known_id_still_stops() {
    let mut pair = Pair::default_pair();
    pair.drive();
    let long = "9".repeat(500);
    pair.server.handle_data(
        format!("cmd=RecordStopRequest&id=c0ffee&remote_number={long}\n").as_bytes(),
        pair.now,
    );
    pair.drive();
    assert_eq!(pair.phone.state(), &PhoneState::Stopped);
    assert_eq!(pair.server.sessions().count(), 0);
}

#[test]
fn silent_connection_times_out_but_a_quiet_recording_does_not() {
    let now = Instant::now();
    let mut silent = ServerSession::new(Ports::new(8), ServerConfig::default(), now);
    assert_eq!(silent.poll_timeout(), Some(now + DEFAULT_IDLE_TIMEOUT));
    silent.handle_timeout(now + Duration::from_secs(9));
    assert_eq!(silent.poll_event(), None);
    silent.handle_timeout(now + DEFAULT_IDLE_TIMEOUT);
    assert_eq!(silent.poll_event(), Some(ServerEvent::IdleTimeout));
    assert!(silent.is_closed());

    let mut pair = Pair::default_pair();
    pair.drive();
    assert_eq!(pair.server.poll_timeout(), None);
    pair.advance(Duration::from_secs(86_400));
    assert!(matches!(pair.phone.state(), PhoneState::Recording { .. }));
}

#[test]
fn responses_sent_to_the_server_are_ignored() {
    let now = Instant::now();
    let mut server = ServerSession::new(Ports::new(8), ServerConfig::default(), now);
    server.handle_data(b"cmd=RecordStopResponse&id=x&result=success\n", now);
    assert_eq!(server.poll_transmit(), None);
    assert_eq!(
        server.poll_event(),
        Some(ServerEvent::Ignored {
            error: IgnoredMessage::NotARequest(Command::StopResponse)
        })
    );
}

#[test]
fn many_calls_on_one_connection() {
    let now = Instant::now();
    let mut server = ServerSession::new(Ports::new(8), ServerConfig::default(), now);
    let mut phones: Vec<_> = (0..4)
        .map(|i| PhoneSession::new(request(&format!("call{i}")), now).unwrap())
        .collect();
    for p in &mut phones {
        server.handle_data(&p.poll_transmit().unwrap(), now);
    }
    // One connection carries every answer; each phone sees its own.
    let answers = server.poll_transmit().unwrap();
    let mut ports = Vec::new();
    for (i, p) in phones.iter_mut().enumerate() {
        let mine: Vec<u8> = decode_all(&answers)
            .into_iter()
            .filter(|m| m.id().as_str() == format!("call{i}"))
            .flat_map(|m| {
                let mut b = BytesMut::new();
                write_frame(&m, &mut b).unwrap();
                b.to_vec()
            })
            .collect();
        p.handle_data(&mine, now);
        match p.poll_event() {
            Some(PhoneEvent::Recording { port, .. }) => ports.push(port.get()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ports, [40000, 40001, 40002, 40003]);
    server.connection_lost();
    let terminated = core::iter::from_fn(|| server.poll_event())
        .filter(|e| matches!(e, ServerEvent::Terminated { .. }))
        .count();
    assert_eq!(terminated, 4);
}
