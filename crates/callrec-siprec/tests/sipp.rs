//! A real recording client: sipp (Debian `sip-tester`) sends a SIPREC
//! INVITE with two streams and metadata, checks the 200's SDP answer,
//! holds both streams with a re-INVITE, and hangs up; the SIP side is
//! driven over a UDP socket on loopback with the real clock.
//!
//! With `CI=true` a missing sipp fails the test; elsewhere it is skipped
//! with a message.

use core::time::Duration;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use callrec_siprec::{Direction, PortAllocator, Srs, SrsConfig, SrsEvent};
use callrec_test::have_tool;

#[derive(Default)]
struct Ports(Vec<u16>);

impl PortAllocator for Ports {
    fn allocate(&mut self, n: usize) -> Option<Vec<u16>> {
        let ports: Vec<u16> = (0..n as u16)
            .map(|i| 41000 + 2 * (self.0.len() as u16 + i))
            .collect();
        self.0.extend(&ports);
        Some(ports)
    }

    fn release(&mut self, ports: &[u16]) {
        self.0.retain(|p| !ports.contains(p));
    }
}

fn sipp_as_a_recording_client_is_answered_held_and_hung_up() {
    if !have_tool("sipp", "-v") {
        return;
    }
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/uac_siprec.xml");
    let logs = std::env::temp_dir().join(format!("callrec-siprec-sipp-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    let mut sipp = Command::new("sipp")
        .current_dir(&logs)
        .arg(local.to_string())
        .args([
            "-sf",
            scenario.to_str().unwrap(),
            "-i",
            "127.0.0.1",
            "-p",
            "0",
        ])
        .args(["-m", "1", "-timeout", "20s", "-nostdin", "-trace_err"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut srs = Srs::new(SrsConfig::new(local, local.ip()));
    let mut ports = Ports::default();
    let start = Instant::now();
    let mut events = Vec::new();
    let mut buf = vec![0u8; 65536];
    let status = loop {
        if let Some(status) = sipp.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "sipp did not finish"
        );
        let now = start.elapsed().as_millis() as u64;
        let mut out = srs.handle_timeout(now, &mut ports);
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            out.extend(srs.handle(now, from, &buf[..n], &mut ports));
        }
        for event in out {
            match event {
                SrsEvent::Send { to, message } => {
                    socket.send_to(&message, to).unwrap();
                }
                other => events.push(other),
            }
        }
    };
    let stderr = sipp.wait_with_output().unwrap().stderr;
    assert!(
        status.success(),
        "sipp failed: {}",
        String::from_utf8_lossy(&stderr)
    );

    let SrsEvent::Start {
        streams,
        participants,
        ..
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!(participants.len(), 2);
    let senders: Vec<_> = streams
        .iter()
        .map(|s| s.sender.as_ref().and_then(|p| p.aor.as_deref()))
        .collect();
    assert_eq!(
        senders,
        [Some("sip:1001@pbx.example"), Some("sip:1002@pbx.example")]
    );
    assert!(
        streams
            .iter()
            .all(|s| s.source.is_some_and(|a| a.ip().is_loopback()))
    );
    let SrsEvent::Update { streams: held, .. } = &events[1] else {
        panic!("{events:?}")
    };
    assert!(held.iter().all(|s| s.direction == Direction::Inactive));
    assert_eq!(
        held[0].port, streams[0].port,
        "the ports stay through a hold"
    );
    assert!(
        matches!(events.last(), Some(SrsEvent::Stop { reason: "BYE", .. })),
        "{events:?}"
    );
    assert!(ports.0.is_empty(), "every port given back");
    assert_eq!(srs.dialogs(), 0);
}

/// The tests, each ignored with the reason when what it needs is missing
/// (a failure under `CI=true`).
fn main() -> std::process::ExitCode {
    use callrec_test::harness::{SIPP, Test, run_tests};
    run_tests(vec![
        Test::new(
            "sipp_as_a_recording_client_is_answered_held_and_hung_up",
            sipp_as_a_recording_client_is_answered_held_and_hung_up,
        )
        .needs(&[SIPP]),
    ])
}
