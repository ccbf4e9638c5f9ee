//! Live listening against a real node: a phone (callrec-phone, real time)
//! streams a tone, a WebSocket client (callrec-phone's listener) listens through
//! `GET /api/recordings/{id}/live`, and what it hears is checked frame by
//! frame: media times, the tone, the close at the end, the audit lines,
//! the roles and the `Origin` check; a listener that stops reading is
//! dropped while the recording and the other listeners go on; a SIPREC
//! session is heard in two channels.

mod common;

use callrec_control::Codec;
use callrec_phone::listener::{self, CloseCode, Heard, LiveSocket};
use callrec_test::poll_until;
use common::service::{Options, Service, get, http};
use common::siprec_client::tone_power;
use core::time::Duration;

const READER: &str = "0123456789abcdef-reader";
const LISTENER: &str = "0123456789abcdef-listen";
const TOKENS: &str = "read auditor 0123456789abcdef-reader\n\
                      listen supervisor 0123456789abcdef-listen\n";

/// A tone of `hz` for `seconds` at `rate`.
fn tone(hz: f64, seconds: f64, rate: f64) -> Vec<i16> {
    (0..(seconds * rate) as usize)
        .map(|i| (8000.0 * (2.0 * core::f64::consts::PI * hz * i as f64 / rate).sin()) as i16)
        .collect()
}

/// A listener's socket to recording `id`, with these headers.
fn connect(base: &str, id: &str, headers: &[(&str, &str)]) -> LiveSocket {
    listener::connect(base, id, headers).unwrap()
}

/// What a listener heard until the socket closed; the format parsed.
fn listen_to_the_end(mut socket: LiveSocket) -> (serde_json::Value, Heard) {
    let heard = listener::listen_to_the_end(&mut socket).unwrap();
    (serde_json::from_str(&heard.format).unwrap(), heard)
}

/// Asserts the frames follow one another without a hole.
fn assert_contiguous(frames: &[(u32, Vec<i16>)], per_frame: u32) {
    for pair in frames.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].0.wrapping_add(per_frame),
            "frames at {} and {} are not consecutive",
            pair[0].0,
            pair[1].0
        );
    }
}

fn metric(base: &str, name: &str, auth: &[(&str, &str)]) -> f64 {
    let text = http("GET", &format!("{base}/metrics"), auth).body;
    String::from_utf8(text)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

fn audit_entries(service: &Service) -> Vec<serde_json::Value> {
    std::fs::read_to_string(service.recordings_dir().join(".callrec/audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A node with [`TOKENS`] on ports from `port`, recording a G.711 call
/// of `audio` as `name`: the node, the call's thread and the recording.
fn a_call_on_a_node_with_tokens(
    port: u16,
    name: &str,
    audio: Vec<i16>,
) -> (
    Service,
    std::thread::JoinHandle<callrec_phone::CallResult>,
    String,
) {
    let mut options = Options::new(port);
    options.tokens = Some(TOKENS);
    let service = Service::start(options);
    let call = service.call_in_background(name, Codec::Pcma, audio);
    let id = service.running_id();
    (service, call, id)
}

fn a_listener_hears_the_call_as_it_is_recorded_and_is_told_when_it_ends() {
    let (service, call, id) =
        a_call_on_a_node_with_tokens(55500, "live1", tone(1000.0, 4.0, 8000.0));
    let base = &service.base;
    let listener = format!("Bearer {LISTENER}");
    let reader = format!("Bearer {READER}");
    let url = format!("{base}/api/recordings/{id}/live");

    // Who may listen, from where, and to what.
    let refused = http("GET", &url, &[("Authorization", &reader)]);
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .error()
            .contains("\"auditor\" has the role read; this needs the role listen"),
        "{}",
        refused.error()
    );
    assert_eq!(http("GET", &url, &[]).status, 401);
    let upgrade = [
        ("Authorization", listener.as_str()),
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let mut foreign = upgrade.to_vec();
    foreign.push(("Origin", "https://evil.example"));
    let refused = http("GET", &url, &foreign);
    assert_eq!(refused.status, 403);
    assert!(
        refused.error().contains("https://evil.example"),
        "{}",
        refused.error()
    );
    let plain = http("GET", &url, &[("Authorization", &listener)]);
    assert_eq!(plain.status, 426, "{}", plain.error());
    assert!(
        plain.error().contains("is a WebSocket"),
        "{}",
        plain.error()
    );
    let unknown = http(
        "GET",
        &format!("{base}/api/recordings/nosuchcall/live"),
        &[("Authorization", &listener)],
    );
    assert_eq!(unknown.status, 404, "{}", unknown.error());

    let own_origin = base.as_str();
    let socket = connect(
        base,
        &id,
        &[("Authorization", &listener), ("Origin", own_origin)],
    );
    let (format, heard) = listen_to_the_end(socket);
    let result = call.join().unwrap();
    assert_eq!(
        format,
        serde_json::json!({"rate": 8000, "channels": 1, "codec": "pcm16"})
    );
    let (code, reason) = heard.close.expect("a close frame");
    assert_eq!(code, CloseCode::Normal);
    assert!(reason.starts_with("recording ended"), "{reason}");
    // The listener joined after the start and heard the rest, in order,
    // every frame 20 ms of the tone.
    assert!(heard.frames.len() >= 100, "{} frames", heard.frames.len());
    assert!(heard.frames.iter().all(|(_, s)| s.len() == 160));
    assert_contiguous(&heard.frames, 160);
    let last = heard.frames.last().unwrap().0 + 160;
    assert_eq!(
        u64::from(last),
        result.packets_sent * 160,
        "the last frame ends where the call's audio does"
    );
    let middle: Vec<i16> = heard.frames[heard.frames.len() / 2..][..25]
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    let at_tone = tone_power(&middle, 8000.0, 1000.0);
    let off_tone = tone_power(&middle, 8000.0, 1300.0);
    assert!(
        at_tone > 1000.0 * off_tone,
        "1 kHz {at_tone}, 1.3 kHz {off_tone}"
    );

    // Once over, it is played, not heard live.
    service.wait_for_finished(1);
    let over = http("GET", &url, &[("Authorization", &listener)]);
    assert_eq!(over.status, 409, "{}", over.error());
    assert!(over.error().contains("is not running"), "{}", over.error());

    let auth = [("Authorization", listener.as_str())];
    assert_eq!(metric(base, "callrec_live_listeners_total", &auth), 1.0);
    assert_eq!(metric(base, "callrec_live_listeners", &auth), 0.0);
    let sent = metric(base, "callrec_live_frames_sent_total", &auth);
    assert_eq!(sent, heard.frames.len() as f64);
    assert_eq!(
        metric(base, "callrec_live_latency_seconds_count", &auth),
        sent
    );

    // Audited: who, which, from where, how long.
    let entries = audit_entries(&service);
    let start = entries.iter().find(|e| e["action"] == "listen").unwrap();
    assert_eq!(start["recording_id"], id.as_str());
    assert_eq!(start["actor"], "supervisor");
    assert!(
        start["address"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{start}"
    );
    assert_eq!(start["detail"], "live, 8000 Hz, 1 channel");
    let end = entries
        .iter()
        .find(|e| e["action"] == "listen end")
        .unwrap();
    assert_eq!(end["recording_id"], id.as_str());
    assert_eq!(end["actor"], "supervisor");
    let detail = end["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("listened ") && detail.contains("recording ended"),
        "{detail}"
    );
}

fn a_listener_that_stops_reading_is_dropped_and_the_recording_stays_complete() {
    let service = Service::start(Options::new(55550));
    let base = service.base.clone();
    let call = service.call_in_background("live2", Codec::G722, tone(700.0, 9.0, 16000.0));
    let id = service.running_id();
    // First, one that floods the node with empty continuation frames (no
    // message ever completes) and reads nothing: the listeners' writer
    // reads it only within its budget, so the others are still served.
    let flooder = connect(&base, &id, &[]);
    let flooder = std::thread::spawn(move || flood(flooder));
    // One listener that reads everything, one that reads its first
    // message and then nothing.
    let healthy = connect(&base, &id, &[]);
    let healthy = std::thread::spawn(move || listen_to_the_end(healthy).1);
    let mut stalled = connect(&base, &id, &[]);
    let first = stalled.read().unwrap();
    assert!(first.is_text());
    // And one that reads its bytes and talks, but answers no ping: only a
    // pong of the node's ping shows a listener reads its frames.
    let chatty = connect(&base, &id, &[]);
    let chatty = std::thread::spawn(move || talk_without_answering(chatty));
    poll_until(
        "the flooding, the stalled and the chatty listener dropped",
        Duration::from_secs(20),
        || (metric(&base, "callrec_live_listeners_dropped_total", &[]) == 3.0).then_some(()),
    );
    assert!(flooder.join().unwrap() > 0, "the flooder sent frames");
    // One that hangs up: its close is answered (a clean close handshake,
    // not a reset), and hanging up is not being dropped.
    let mut leaver = connect(&base, &id, &[]);
    assert!(leaver.read().unwrap().is_text());
    leaver.close(None).unwrap();
    let goodbye = loop {
        match leaver.read() {
            Ok(_) => {}
            Err(e) => break e.to_string(),
        }
    };
    assert!(goodbye.contains("closed normally"), "{goodbye}");
    let chatty_end = chatty.join().unwrap();
    assert!(
        chatty_end.contains("answered no ping"),
        "the chatty listener's last bytes: {chatty_end:?}"
    );
    assert_eq!(metric(&base, "callrec_live_listeners", &[]), 1.0);
    let result = call.join().unwrap();
    let heard = healthy.join().unwrap();
    assert_eq!(heard.close.unwrap().0, CloseCode::Normal);
    assert!(heard.format.contains("\"rate\":16000"), "{}", heard.format);
    assert_contiguous(&heard.frames, 320);
    assert_eq!(
        u64::from(heard.frames.last().unwrap().0 + 320),
        result.packets_sent * 320,
        "the reading listener heard to the end"
    );
    // The recording has every packet and its full length.
    service.wait_for_finished(1);
    let item = get(&format!("{base}/api/recordings/{id}")).json();
    assert_eq!(item["complete"], true);
    assert_eq!(item["sidecar"]["packets_received"], result.packets_sent);
    assert_eq!(item["sidecar"]["packets_lost"], 0);
    assert_eq!(item["duration_ms"], 9000);
    let ends: Vec<String> = audit_entries(&service)
        .iter()
        .filter(|e| e["action"] == "listen end")
        .map(|e| e["detail"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ends.len(), 5, "{ends:?}");
    assert!(
        ends.iter().any(|d| d.ends_with("the listener closed")),
        "{ends:?}"
    );
    assert_eq!(
        ends.iter()
            .filter(|d| d.contains("answered no ping") || d.contains("did not read"))
            .count(),
        3,
        "{ends:?}"
    );
}

/// Sends a binary frame that is not final, then empty continuation
/// frames as fast as the node takes them, reading nothing, until the
/// node closes the connection; the frames sent.
fn flood(mut socket: LiveSocket) -> usize {
    use std::io::Write;
    let stream = socket.get_mut();
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    // Opcode 2 without FIN, one byte; then opcode 0 without FIN, empty.
    let mut start = vec![0x02u8, 0x81];
    start.extend_from_slice(&mask);
    start.push(b'x' ^ mask[0]);
    let mut burst = Vec::new();
    for _ in 0..1000 {
        burst.extend([0x00u8, 0x80]);
        burst.extend_from_slice(&mask);
    }
    if stream.write_all(&start).is_err() {
        return 0;
    }
    let mut sent = 1;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match stream.write(&burst) {
            Ok(0) => break,
            Ok(n) => sent += n / 6,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    sent
}

/// Drains `socket`'s bytes without parsing them (so no ping is answered)
/// and, with each read, sends a text message and pongs nobody asked for
/// (with payloads a client might guess), until the node closes the
/// connection; the last 200 bytes the node sent, lossily as text (its
/// close frame's reason).
fn talk_without_answering(mut socket: LiveSocket) -> String {
    use std::io::{Read, Write};
    let stream = socket.get_mut();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Masked frames, as a client must send them (RFC 6455 §5.3): a text
    // "hi", then pongs of "callrec" and of eight zero bytes.
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut frame = Vec::new();
    for (opcode, payload) in [(0x81u8, &b"hi"[..]), (0x8a, b"callrec"), (0x8a, &[0; 8])] {
        frame.extend([opcode, 0x80 | payload.len() as u8]);
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    }
    let mut tail = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if stream.write_all(&frame).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                let keep = tail.len().saturating_sub(200);
                tail.drain(..keep);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&tail).into_owned()
}

fn signing_out_ends_a_listen_of_that_session() {
    let (service, call, id) =
        a_call_on_a_node_with_tokens(55650, "live4", tone(500.0, 8.0, 8000.0));
    let base = &service.base;
    let session_url = format!("{base}/api/session");
    let signed_in = http(
        "POST",
        &session_url,
        &[("Authorization", &format!("Bearer {LISTENER}"))],
    );
    assert_eq!(signed_in.status, 200, "{}", signed_in.error());
    let set_cookie = signed_in.header("set-cookie").unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let mut socket = connect(base, &id, &[("Cookie", &cookie), ("Origin", base)]);
    assert!(socket.read().unwrap().is_text());
    // The session's listen is heard (a ping may come first).
    while !socket.read().unwrap().is_binary() {}
    let out = http(
        "DELETE",
        &session_url,
        &[("Cookie", &cookie), ("Origin", base)],
    );
    assert_eq!(out.json()["signed_out"], true);
    let signed_out = std::time::Instant::now();
    let close = loop {
        if let listener::Message::Close(frame) = socket.read().unwrap() {
            break frame.expect("a close frame with a code");
        }
    };
    let (code, reason) = (close.code, close.reason.to_string());
    assert_eq!(code, CloseCode::Policy);
    assert_eq!(reason, "the session was signed out or has expired");
    assert!(
        signed_out.elapsed() < Duration::from_secs(3),
        "closed {:?} after the sign-out",
        signed_out.elapsed()
    );
    // The call goes on, recorded whole; the listen's end is audited.
    let result = call.join().unwrap();
    service.wait_for_finished(1);
    let bearer = format!("Bearer {LISTENER}");
    let item = http(
        "GET",
        &format!("{base}/api/recordings/{id}"),
        &[("Authorization", &bearer)],
    )
    .json();
    assert_eq!(item["complete"], true);
    assert_eq!(item["sidecar"]["packets_received"], result.packets_sent);
    let end = audit_entries(&service)
        .into_iter()
        .find(|e| e["action"] == "listen end")
        .unwrap();
    assert_eq!(end["actor"], "supervisor");
    assert!(
        end["detail"].as_str().unwrap().contains("signed out"),
        "{end}"
    );
}

fn a_siprec_session_is_heard_in_two_channels() {
    let mut options = Options::new(55600);
    options.sip = true;
    let service = Service::start(options);
    let sip = service.sip.unwrap();
    let session = std::thread::spawn(move || {
        callrec_phone::siprec::two_party_session(
            sip,
            "live-3@127.0.0.1",
            callrec_phone::siprec::ALICE_AND_BOB,
            4.0,
        )
        .unwrap();
    });
    let id = service.running_id();
    let (format, heard) = listen_to_the_end(connect(&service.base, &id, &[]));
    session.join().unwrap();
    assert_eq!(
        format,
        serde_json::json!({"rate": 8000, "channels": 2, "codec": "pcm16"})
    );
    assert!(heard.frames.len() >= 100, "{} frames", heard.frames.len());
    assert_contiguous(&heard.frames, 160);
    // Alice's 440 Hz on the left, Bob's 1250 Hz on the right.
    let tail: Vec<i16> = heard.frames[heard.frames.len() / 2..][..25]
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    let left: Vec<i16> = tail.iter().step_by(2).copied().collect();
    let right: Vec<i16> = tail.iter().skip(1).step_by(2).copied().collect();
    assert!(tone_power(&left, 8000.0, 440.0) > 100.0 * tone_power(&left, 8000.0, 1250.0));
    assert!(tone_power(&right, 8000.0, 1250.0) > 100.0 * tone_power(&right, 8000.0, 440.0));
}

fn main() -> std::process::ExitCode {
    use callrec_test::harness::{Test, run_tests};
    run_tests(vec![
        Test::new(
            "a_listener_hears_the_call_as_it_is_recorded_and_is_told_when_it_ends",
            a_listener_hears_the_call_as_it_is_recorded_and_is_told_when_it_ends,
        ),
        Test::new(
            "a_listener_that_stops_reading_is_dropped_and_the_recording_stays_complete",
            a_listener_that_stops_reading_is_dropped_and_the_recording_stays_complete,
        ),
        Test::new(
            "signing_out_ends_a_listen_of_that_session",
            signing_out_ends_a_listen_of_that_session,
        ),
        Test::new(
            "a_siprec_session_is_heard_in_two_channels",
            a_siprec_session_is_heard_in_two_channels,
        ),
    ])
}
