//! The SIPREC recording server end to end: a recording client written for
//! the tests (callrec_phone::siprec, no code shared with the server's SIP
//! side) sends real offers over UDP and a tone per stream over
//! RTP; each recording must hold each party's tone in its own channel and
//! be found through the API by any participant's number.

mod common;

use core::time::Duration;
use std::net::UdpSocket;
use std::path::Path;
use std::time::Instant;

use callrec_phone::siprec::{
    ALICE_AND_BOB, Answered, BOUNDARY, Client, ToneStream, answered_streams, rewrite_offer,
    rtp_sockets, send_tones, two_party_offer, two_party_session,
};
use callrec_test::{files_under, poll_until, wait_until};
use common::service::{Options, Service, get, ids};
use common::siprec_client::{tone_power, wav_channels};

/// Waits until a finished sidecar with `call_id` is in `dir`; returns it
/// and its WAV's bytes.
fn finished_recording(dir: &Path, call_id: &str) -> (serde_json::Value, Vec<u8>) {
    recordings_of(dir, call_id, 1).swap_remove(0)
}

/// Asserts that channel `c` of `channels` carries `tones[c]` (when given)
/// and not the other channels' tones.
fn assert_tones(name: &str, rate: u32, channels: &[Vec<i16>], tones: &[Option<f64>]) {
    for (c, tone) in tones.iter().enumerate() {
        let Some(hz) = tone else { continue };
        let samples = &channels[c];
        let own = tone_power(samples, f64::from(rate), *hz);
        assert!(
            own > 1e5,
            "{name}: channel {c} has little of {hz} Hz: {own}"
        );
        for (o, other) in tones.iter().enumerate() {
            if let (true, Some(other)) = (o != c, other) {
                let theirs = tone_power(samples, f64::from(rate), *other);
                assert!(
                    own > 100.0 * theirs,
                    "{name}: channel {c} holds {other} Hz of channel {o} ({theirs} against {own})"
                );
            }
        }
    }
}

fn a_two_party_session_gives_one_stereo_recording_found_by_either_number() {
    let mut options = Options::new(54000);
    options.sip = true;
    let service = Service::start(options);
    let sip = service.sip.unwrap();
    let call_id = "two-party-1@127.0.0.1";
    two_party_session(sip, call_id, ALICE_AND_BOB, 2.0).unwrap();
    let (sidecar, wav) = finished_recording(&service.recordings_dir(), call_id);
    assert_eq!(sidecar["source"], "siprec");
    assert_eq!(sidecar["channels"][0]["label"], "a1");
    assert_eq!(
        sidecar["channels"][0]["participant"],
        "sip:+4930111@example.com"
    );
    assert_eq!(
        sidecar["channels"][1]["participant"],
        "sip:+4930222@example.com"
    );
    assert_eq!(sidecar["participants"][1]["name"], "Bob Example");
    let (rate, channels) = wav_channels(&wav);
    assert_eq!((rate, channels.len()), (8000, 2));
    let seconds = channels[0].len() as f64 / 8000.0;
    assert!((1.8..2.6).contains(&seconds), "{seconds} s for a 2 s call");
    assert_tones("two parties", rate, &channels, &[Some(440.0), Some(1250.0)]);
    // ffprobe reads it as a stereo 16-bit WAV.
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=channels,sample_rate,codec_name",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(
            service
                .recordings_dir()
                .join(sidecar["files"][0]["path"].as_str().unwrap()),
        )
        .output()
        .unwrap();
    let probed = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probed.contains("codec_name=pcm_s16le")
            && probed.contains("channels=2")
            && probed.contains("sample_rate=8000"),
        "{probed}"
    );
    // Found through the API by either participant's number.
    service.wait_for_finished(1);
    let base = &service.base;
    for number in ["%2B4930111", "%2B4930222"] {
        let page = get(&format!("{base}/api/recordings?number={number}")).json();
        assert_eq!(ids(&page).len(), 1, "number={number}: {page}");
        let recording = &page["recordings"][0];
        assert_eq!(recording["source"], "siprec", "{recording}");
        assert_eq!(
            recording["participants"][0]["aor"],
            "sip:+4930111@example.com"
        );
        assert_eq!(recording["channels"][1]["label"], "b1");
    }
    let page = get(&format!("{base}/api/recordings?q=Bob")).json();
    assert_eq!(ids(&page).len(), 1, "q=Bob: {page}");
}

/// The corpus of real offers (crates/callrec-siprec/tests/corpus), each
/// replayed with a tone on every stream it sends: answered 200 and
/// recorded, a channel per answered stream, each with its own tone. The
/// one that is not a valid body gets a 4xx.
fn every_corpus_offer_is_answered_and_recorded() {
    let mut options = Options::new(54100);
    options.sip = true;
    let service = Service::start(options);
    let sip = service.sip.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/callrec-siprec/tests/corpus");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".txt").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 15, "{names:?}");
    let recordings = service.recordings_dir();
    std::thread::scope(|scope| {
        for (n, name) in names.iter().enumerate() {
            let dir = &dir;
            let recordings = &recordings;
            scope.spawn(move || {
                let text = std::fs::read_to_string(dir.join(format!("{name}.txt"))).unwrap();
                let (content_type, body) = text.split_once("\n----BODY----\n").unwrap();
                let body = body
                    .replace("[local_ip]", "127.0.0.1")
                    .replace("[call_id]", "corpus@127.0.0.1");
                let m_lines = body.lines().filter(|l| l.starts_with("m=")).count();
                let sockets = rtp_sockets(m_lines.max(1)).unwrap();
                let ports: Vec<u16> = sockets
                    .iter()
                    .map(|s| s.local_addr().unwrap().port())
                    .collect();
                let body = rewrite_offer(&body.replace("[auto_media_port]", "9"), &ports);
                let mut client = Client::new(sip, &format!("corpus-{n}@127.0.0.1")).unwrap();
                let response = client.invite(content_type.trim(), &body).unwrap();
                if name.contains("no-boundaries") {
                    assert!(
                        (400..500).contains(&response.status),
                        "{name}: {}",
                        response.text
                    );
                    return;
                }
                assert_eq!(response.status, 200, "{name}: {}", response.text);
                let answered = answered_streams(response.body());
                let hz = [400.0, 900.0, 1400.0, 1900.0, 2400.0, 2900.0];
                let mut streams = Vec::new();
                let mut expected = Vec::new();
                for (i, (a, socket)) in answered.iter().zip(sockets).enumerate() {
                    if a.port == 0 {
                        continue;
                    }
                    let sends = a.direction == "recvonly";
                    expected.push(sends.then_some(hz[i]));
                    if sends {
                        streams.push(ToneStream::new(
                            socket,
                            sip.ip(),
                            a,
                            hz[i],
                            0x2000 + i as u32,
                        ));
                    }
                }
                send_tones(&streams, 1.0).unwrap();
                assert_eq!(client.bye().unwrap().status, 200, "{name}");
                let (sidecar, wav) = finished_recording(recordings, &client.call_id);
                let (rate, channels) = wav_channels(&wav);
                assert_eq!(channels.len(), expected.len(), "{name}: {sidecar}");
                assert_eq!(sidecar["source"], "siprec");
                assert_tones(name, rate, &channels, &expected);
            });
        }
    });
}

/// What is not a recording session, or cannot be read, gets a 4xx that
/// says why; the server goes on answering.
fn malformed_offers_get_a_4xx_and_the_server_goes_on() {
    let mut options = Options::new(54200);
    options.sip = true;
    let service = Service::start(options);
    let sip = service.sip.unwrap();
    let cases: [(&str, &str, u16); 3] = [
        ("application/sdp", "v=0\r\nm=audio x RTP/AVP 8\r\n", 488),
        (
            &format!("multipart/mixed;boundary={BOUNDARY}"),
            "--callrec-test-boundary\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n",
            488,
        ),
        ("text/plain", "hello", 488),
    ]
    .map(|(t, b, c)| (Box::leak(t.to_owned().into_boxed_str()) as &str, b, c));
    for (i, (content_type, body, status)) in cases.into_iter().enumerate() {
        let mut client = Client::new(sip, &format!("bad-{i}@127.0.0.1")).unwrap();
        let response = client.invite(content_type, body).unwrap();
        assert_eq!(response.status, status, "{body:?}: {}", response.text);
    }
    // An INVITE without Call-ID names no session: 400, nothing recorded
    // (it once slipped past admission and allow).
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = raw.local_addr().unwrap();
    let ports = [0, 1].map(|_| 9);
    let body = two_party_offer(ports, ALICE_AND_BOB);
    let invite = format!(
        "INVITE sip:srs@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKnocallid\r\n\
         From: <sip:src@{local}>;tag=x1\r\nTo: <sip:srs@{sip}>\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:src@{local}>;+sip.src\r\nRequire: siprec\r\nMax-Forwards: 70\r\n\
         Content-Type: multipart/mixed;boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw.send_to(invite.as_bytes(), sip).unwrap();
    let mut answer = vec![0u8; 4096];
    let (n, _) = raw.recv_from(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(
        answer.starts_with("SIP/2.0 400 Bad Request: no Call-ID\r\n"),
        "{answer}"
    );
    // Still answering: a good session after the bad ones.
    let sockets = rtp_sockets(2).unwrap();
    let ports = [0, 1].map(|i| sockets[i].local_addr().unwrap().port());
    let mut client = Client::new(sip, "good-after-bad@127.0.0.1").unwrap();
    let response = client
        .invite(
            &format!("multipart/mixed;boundary={BOUNDARY}"),
            &two_party_offer(ports, ALICE_AND_BOB),
        )
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(client.bye().unwrap().status, 200);
    // Only the good session was recorded.
    service.wait_for_finished(1);
    let page = get(&format!("{}/api/recordings", service.base)).json();
    assert_eq!(ids(&page).len(), 1, "{page}");
}

/// Every recording of `call_id`, finished, oldest first.
fn recordings_of(dir: &Path, call_id: &str, n: usize) -> Vec<(serde_json::Value, Vec<u8>)> {
    poll_until(
        &format!("{n} finished recordings of {call_id}"),
        Duration::from_secs(20),
        || {
            let mut found: Vec<(serde_json::Value, Vec<u8>)> = files_under(dir)
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .filter_map(|p| {
                    let json: serde_json::Value =
                        serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
                    (json["session_id"] == call_id && json["complete"] == true).then_some(json)
                })
                .map(|json| {
                    let wav = dir.join(json["files"][0]["path"].as_str().unwrap());
                    (json, std::fs::read(wav).unwrap())
                })
                .collect();
            found.sort_by_key(|(j, _)| j["recording_id"].as_str().unwrap().to_owned());
            (found.len() >= n).then_some(found)
        },
    )
}

/// A re-INVITE that holds both streams keeps real time (silence in both
/// channels), one that resumes them goes on in the same file, one that
/// changes the participants updates the sidecar, and one that adds a third
/// stream finishes the recording and goes on in a three-channel one.
fn re_invites_hold_resume_change_participants_and_add_a_stream() {
    let mut options = Options::new(54400);
    options.sip = true;
    options.config = Box::new(|c| c.sidecar_interval_secs = 1);
    let service = Service::start(options);
    let sip = service.sip.unwrap();
    let sockets = rtp_sockets(3).unwrap();
    let ports: Vec<u16> = sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    let content_type = format!("multipart/mixed;boundary={BOUNDARY}");
    let offer = two_party_offer([ports[0], ports[1]], ALICE_AND_BOB);
    let call_id = "reinvite-1@127.0.0.1";
    let mut client = Client::new(sip, call_id).unwrap();
    let answer = client.invite(&content_type, &offer).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text);
    let answered = answered_streams(answer.body());
    let stream = |socket: &UdpSocket, i: usize, a: &Answered, hz: f64| {
        ToneStream::new(
            socket.try_clone().unwrap(),
            sip.ip(),
            a,
            hz,
            0x3000 + i as u32,
        )
    };
    let two: Vec<ToneStream> = (0..2)
        .map(|i| stream(&sockets[i], i, &answered[i], [440.0, 1250.0][i]))
        .collect();
    send_tones(&two, 1.0).unwrap();
    // Hold: both streams inactive, answered inactive, nothing sent for 1.5 s.
    let held = client
        .invite(&content_type, &offer.replace("a=sendonly", "a=inactive"))
        .unwrap();
    assert_eq!(held.status, 200, "{}", held.text);
    assert!(
        answered_streams(held.body())
            .iter()
            .all(|a| a.direction == "inactive")
    );
    // Held until the server has written 1.2 s of it as silence (its
    // running sidecar is rewritten every second here).
    let dir = service.recordings_dir();
    let held_at = Instant::now();
    wait_until("the hold recorded", Duration::from_secs(10), || {
        files_under(&dir)
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .any(|j| j["session_id"] == call_id && j["duration_ms"].as_u64().unwrap_or(0) >= 2200)
    });
    let hold = held_at.elapsed().as_secs_f64();
    // Resume, with Bob replaced by Carol in the metadata.
    let resumed = offer
        .replace("sip:+4930222@example.com", "sip:+4930333@example.com")
        .replace("Bob Example", "Carol Example");
    let back = client.invite(&content_type, &resumed).unwrap();
    assert_eq!(back.status, 200, "{}", back.text);
    let again = answered_streams(back.body());
    assert_eq!(again[0].port, answered[0].port, "the ports stay");
    // The RTP goes on where it left off (a new SSRC, as after a hold).
    let two: Vec<ToneStream> = (0..2)
        .map(|i| stream(&sockets[i], i + 8, &again[i], [440.0, 1250.0][i]))
        .collect();
    send_tones(&two, 1.0).unwrap();
    // A third stream.
    let third = resumed.replacen(
        &format!("--{BOUNDARY}\r\nContent-Type: application/rs-metadata+xml"),
        &format!(
            "m=audio {} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=label:c1\r\na=sendonly\r\n\r\n--{BOUNDARY}\r\nContent-Type: application/rs-metadata+xml",
            ports[2]
        ),
        1,
    );
    let three = client.invite(&content_type, &third).unwrap();
    assert_eq!(three.status, 200, "{}", three.text);
    let now = answered_streams(three.body());
    assert_eq!(now.len(), 3, "{}", three.body());
    let streams: Vec<ToneStream> = (0..3)
        .map(|i| stream(&sockets[i], i + 16, &now[i], [440.0, 1250.0, 2000.0][i]))
        .collect();
    send_tones(&streams, 1.0).unwrap();
    assert_eq!(client.bye().unwrap().status, 200);

    let recordings = recordings_of(&service.recordings_dir(), call_id, 2);
    assert_eq!(recordings.len(), 2);
    let (first, first_wav) = &recordings[0];
    let (second, second_wav) = &recordings[1];
    // The first: 1 s, 1.5 s held, 1 s (real time kept), two channels.
    let (rate, channels) = wav_channels(first_wav);
    assert_eq!(channels.len(), 2);
    let seconds = channels[0].len() as f64 / f64::from(rate);
    // 1 s, the hold as long as it lasted, 1 s.
    assert!(
        (hold + 1.7..hold + 2.5).contains(&seconds),
        "{seconds} s for a {hold} s hold: {first}"
    );
    let quiet = &channels[0][(1.3 * 8000.0) as usize..(2.2 * 8000.0) as usize];
    assert!(quiet.iter().all(|&s| s.abs() < 50), "the hold is silence");
    assert_tones(
        "before the hold",
        rate,
        &channels
            .iter()
            .map(|c| c[..8000].to_vec())
            .collect::<Vec<_>>(),
        &[Some(440.0), Some(1250.0)],
    );
    let end = channels[0].len();
    assert_tones(
        "after the hold",
        rate,
        &channels
            .iter()
            .map(|c| c[end - 6000..end].to_vec())
            .collect::<Vec<_>>(),
        &[Some(440.0), Some(1250.0)],
    );
    assert_eq!(
        first["participants"][1]["aor"], "sip:+4930333@example.com",
        "{first}"
    );
    assert_eq!(first["final_parties"]["remote_number"], "+4930333");
    let notes = first["timeline"].to_string();
    assert!(notes.contains("participants changed"), "{notes}");
    assert!(
        notes.contains(second["recording_id"].as_str().unwrap()),
        "{notes}"
    );
    // The second: three channels, each its tone.
    let (rate, channels) = wav_channels(second_wav);
    assert_eq!(channels.len(), 3, "{second}");
    assert_eq!(second["channels"][2]["label"], "c1");
    assert_tones(
        "three streams",
        rate,
        &channels,
        &[Some(440.0), Some(1250.0), Some(2000.0)],
    );
    assert!(
        second["timeline"]
            .to_string()
            .contains(first["recording_id"].as_str().unwrap())
    );
}

/// A client that keeps changing a session's streams (each change is a
/// new file) is stopped after 32 recordings: the server ends the session
/// and every recording is final.
fn a_session_that_keeps_changing_its_streams_is_ended_after_32_recordings() {
    let mut options = Options::new(54800);
    options.sip = true;
    let service = Service::start(options);
    let sip = service.sip.unwrap();
    let sockets = rtp_sockets(3).unwrap();
    let ports: Vec<u16> = sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    let content_type = format!("multipart/mixed;boundary={BOUNDARY}");
    let two = two_party_offer([ports[0], ports[1]], ALICE_AND_BOB);
    let three = two.replacen(
        &format!("--{BOUNDARY}\r\nContent-Type: application/rs-metadata+xml"),
        &format!(
            "m=audio {} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=label:c1\r\na=sendonly\r\n\r\n--{BOUNDARY}\r\nContent-Type: application/rs-metadata+xml",
            ports[2]
        ),
        1,
    );
    let call_id = "churn@127.0.0.1";
    let mut client = Client::new(sip, call_id).unwrap();
    assert_eq!(client.invite(&content_type, &two).unwrap().status, 200);
    for i in 0..40 {
        let offer = if i % 2 == 0 { &three } else { &two };
        let answer = client.invite(&content_type, offer).unwrap();
        if answer.status == 481 {
            break;
        }
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let recordings = recordings_of(&service.recordings_dir(), call_id, 32);
    assert_eq!(recordings.len(), 32);
    assert!(recordings.iter().all(|(s, _)| s["complete"] == true));
    // The session is gone: a BYE finds no dialog.
    assert_eq!(client.bye().unwrap().status, 481);
}

/// A re-INVITE that changes a stream's codec on the same port goes on in
/// a new recording decoding the new codec (the old lane would have
/// dropped every packet as another payload type).
fn a_codec_change_on_the_same_port_starts_a_new_recording() {
    let mut options = Options::new(54900);
    options.sip = true;
    let service = Service::start(options);
    let sip = service.sip.unwrap();
    let sockets = rtp_sockets(2).unwrap();
    let ports = [0, 1].map(|i| sockets[i].local_addr().unwrap().port());
    let content_type = format!("multipart/mixed;boundary={BOUNDARY}");
    let offer = two_party_offer(ports, ALICE_AND_BOB);
    let call_id = "codec-change@127.0.0.1";
    let mut client = Client::new(sip, call_id).unwrap();
    assert_eq!(client.invite(&content_type, &offer).unwrap().status, 200);
    let pcmu = offer.replace(
        "RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000",
        "RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000",
    );
    let answer = client.invite(&content_type, &pcmu).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text);
    let now = answered_streams(answer.body());
    assert_eq!(now[0].encoding, "PCMU");
    let streams: Vec<ToneStream> = sockets
        .into_iter()
        .zip(&now)
        .zip([440.0, 1250.0])
        .enumerate()
        .map(|(i, ((socket, a), hz))| ToneStream::new(socket, sip.ip(), a, hz, 0x5000 + i as u32))
        .collect();
    send_tones(&streams, 1.0).unwrap();
    assert_eq!(client.bye().unwrap().status, 200);
    let recordings = recordings_of(&service.recordings_dir(), call_id, 2);
    let (second, wav) = &recordings[1];
    assert_eq!(second["channels"][0]["codec"], "PCMU", "{second}");
    let (rate, channels) = wav_channels(wav);
    assert_tones(
        "after the codec change",
        rate,
        &channels,
        &[Some(440.0), Some(1250.0)],
    );
}

/// sipp (Debian's sip-tester), an independent SIP stack, as the recording
/// client against the server over UDP and over TCP: ten sessions each
/// (offer, answer checked by regular expressions, hold, BYE), every one
/// recorded as a two-channel file.
fn sipp_sessions_over_udp_and_tcp_are_recorded() {
    let mut options = Options::new(54500);
    options.sip = true;
    let service = Service::start(options);
    let sip = service.sip.unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/callrec-siprec/tests/sipp/uac_siprec.xml");
    let logs = tempfile::tempdir().unwrap();
    for transport in ["u1", "t1"] {
        let out = std::process::Command::new("sipp")
            .current_dir(logs.path())
            .arg(sip.to_string())
            .args([
                "-sf",
                scenario.to_str().unwrap(),
                "-i",
                "127.0.0.1",
                "-p",
                "0",
            ])
            .args(["-t", transport, "-m", "10", "-r", "20", "-l", "10"])
            .args(["-timeout", "30s", "-nostdin", "-trace_err"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sipp -t {transport}: {}{}",
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n"),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    service.wait_for_finished(20);
    let page = get(&format!(
        "{}/api/recordings?number=1002&limit=100",
        service.base
    ))
    .json();
    let found = page["recordings"].as_array().unwrap();
    assert_eq!(found.len(), 20, "{page}");
    assert!(
        found
            .iter()
            .all(|r| r["source"] == "siprec" && r["channels"].as_array().unwrap().len() == 2)
    );
}

/// An OPTIONS over `stream` (TCP) is answered 200.
fn options_over_tcp(sip: core::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(sip).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let local = stream.local_addr().unwrap();
    let request = format!(
        "OPTIONS sip:srs@{sip} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKopt1\r\n\
         From: <sip:probe@{local}>;tag=p1\r\nTo: <sip:srs@{sip}>\r\nCall-ID: options-tcp@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

/// Waits until the server closes `stream` (a read gives 0 bytes or an
/// error), at most `within`.
fn closed_within(stream: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    let deadline = Instant::now() + within;
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut byte = [0u8; 1];
    while Instant::now() < deadline {
        match stream.read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

/// The SIP side's limits: connections from one address beyond the limit
/// are closed at once, silent and trickling ones after the idle timeout; a
/// flood of datagrams that are not SIP is counted (the log's own limit is
/// tested on simulated time in the server's unit tests), and the server
/// answers throughout, over TCP and UDP.
fn tcp_limits_idle_connections_and_a_flood_leave_the_server_answering() {
    let mut options = Options::new(54600);
    options.sip = true;
    options.config = Box::new(|c| {
        c.sip_max_connections_per_address = 2;
        c.sip_idle_timeout_secs = 1;
    });
    let service = Service::start(options);
    let sip = service.sip.unwrap();
    let mut silent = std::net::TcpStream::connect(sip).unwrap();
    let mut trickle = std::net::TcpStream::connect(sip).unwrap();
    let mut surplus = std::net::TcpStream::connect(sip).unwrap();
    assert!(
        closed_within(&mut surplus, Duration::from_secs(2)),
        "the third connection stays open"
    );
    {
        use std::io::Write;
        trickle
            .write_all(b"OPTIONS sip:srs SIP/2.0\r\nVia: ")
            .unwrap();
    }
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)),
        "a silent connection stays open"
    );
    assert!(
        closed_within(&mut trickle, Duration::from_secs(5)),
        "a trickling connection stays open"
    );
    let answer = options_over_tcp(sip);
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
    assert!(answer.contains("Supported: siprec"), "{answer}");
    // A flood of datagrams that are not SIP, in bursts of 100 (a burst
    // fits the socket's buffer; each waits until the last is counted).
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    let refused = || -> u64 {
        let metrics = String::from_utf8(get(&format!("{}/metrics", service.base)).body).unwrap();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("callrec_sip_refused_total "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let before = refused();
    for burst in 1..=20u64 {
        for i in 0..100u32 {
            flood.send_to(&i.to_be_bytes(), sip).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while refused() < before + 100 * burst {
            assert!(
                Instant::now() < deadline,
                "burst {burst}: {} counted",
                refused() - before
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let mut client = Client::new(sip, "after-flood@127.0.0.1").unwrap();
    let answer = client.send("OPTIONS", None).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text);
}

/// A recording client outside `allow` gets `403` naming its address, and
/// its TCP connections are closed; nothing is recorded.
fn a_client_outside_allow_gets_403() {
    let mut options = Options::new(54700);
    options.sip = true;
    options.allow = vec!["10.0.0.0/8".parse().unwrap()];
    let service = Service::start(options);
    let sip = service.sip.unwrap();
    let sockets = rtp_sockets(2).unwrap();
    let ports = [0, 1].map(|i| sockets[i].local_addr().unwrap().port());
    let mut client = Client::new(sip, "outside@127.0.0.1").unwrap();
    let response = client
        .invite(
            &format!("multipart/mixed;boundary={BOUNDARY}"),
            &two_party_offer(ports, ALICE_AND_BOB),
        )
        .unwrap();
    assert_eq!(response.status, 403, "{}", response.text);
    assert!(
        response.text.contains("127.0.0.1 is not allowed"),
        "{}",
        response.text
    );
    let mut tcp = std::net::TcpStream::connect(sip).unwrap();
    assert!(closed_within(&mut tcp, Duration::from_secs(5)));
    let page = get(&format!("{}/api/recordings", service.base)).json();
    assert_eq!(ids(&page).len(), 0, "{page}");
}

fn main() -> std::process::ExitCode {
    use callrec_test::harness::{FFPROBE, SIPP, Test, run_tests};
    run_tests(vec![
        Test::new(
            "a_two_party_session_gives_one_stereo_recording_found_by_either_number",
            a_two_party_session_gives_one_stereo_recording_found_by_either_number,
        )
        .needs(&[FFPROBE]),
        Test::new(
            "every_corpus_offer_is_answered_and_recorded",
            every_corpus_offer_is_answered_and_recorded,
        ),
        Test::new(
            "re_invites_hold_resume_change_participants_and_add_a_stream",
            re_invites_hold_resume_change_participants_and_add_a_stream,
        ),
        Test::new(
            "a_session_that_keeps_changing_its_streams_is_ended_after_32_recordings",
            a_session_that_keeps_changing_its_streams_is_ended_after_32_recordings,
        ),
        Test::new(
            "a_codec_change_on_the_same_port_starts_a_new_recording",
            a_codec_change_on_the_same_port_starts_a_new_recording,
        ),
        Test::new(
            "sipp_sessions_over_udp_and_tcp_are_recorded",
            sipp_sessions_over_udp_and_tcp_are_recorded,
        )
        .needs(&[SIPP]),
        Test::new(
            "tcp_limits_idle_connections_and_a_flood_leave_the_server_answering",
            tcp_limits_idle_connections_and_a_flood_leave_the_server_answering,
        ),
        Test::new(
            "a_client_outside_allow_gets_403",
            a_client_outside_allow_gets_403,
        ),
        Test::new(
            "malformed_offers_get_a_4xx_and_the_server_goes_on",
            malformed_offers_get_a_4xx_and_the_server_goes_on,
        ),
    ])
}
