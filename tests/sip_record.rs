//! The `sip_record` example as a program: against sipp acting as the SIP
//! server (Debian `sip-tester`), against a small UAS built on callrec-sip
//! for `Record: off`, with no answer at all, and in URL-record mode against
//! a one-shot HTTP server.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};

use callrec::sip::{RecordValue, ReplyStatus, SipMessage, reply};

fn dialog_args(server: &str) -> Vec<String> {
    [
        "--server",
        server,
        "--bind",
        "127.0.0.1:0",
        "--call-id",
        "0_2080113283@127.0.0.1",
        "--from",
        "sip:1009@127.0.0.1",
        "--from-tag",
        "1385842459",
        "--from-name",
        "Front Desk",
        "--to",
        "sip:1010@127.0.0.1",
        "--to-tag",
        "2383911905",
        "--target",
        "sip:1010@127.0.0.1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn sip_record(args: &[String]) -> std::process::Output {
    Command::new(common::example_path("sip_record"))
        .args(args)
        .output()
        .unwrap()
}

fn sipp_answers_the_record_on_info() {
    if !callrec_test::have_tool("sipp", "-v") {
        return;
    }
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/callrec-sip/tests/sipp/uas_record_info.xml");
    let logs = tempfile::tempdir().unwrap();
    let mut sipp = Command::new("sipp")
        .current_dir(logs.path())
        .arg("-sf")
        .arg(&scenario)
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", "1", "-timeout", "15s", "-nostdin"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut args = dialog_args(&format!("127.0.0.1:{port}"));
    args.push("on".into());
    let out = sip_record(&args);
    let status = sipp.wait().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "SIP/2.0 200 OK\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
    assert!(status.success(), "sipp: {status}");
}

fn record_off_reaches_a_callrec_sip_uas() {
    let uas = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = uas.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Take the first copy, answer, and ignore retransmissions.
        let (n, from) = uas.recv_from(&mut buf).unwrap();
        let request = SipMessage::parse(&buf[..n]).unwrap();
        assert_eq!(request.method(), Some("INFO"));
        assert_eq!(request.record(), RecordValue::Off);
        assert_eq!(request.cseq().map(|c| c.number), Some(8));
        let ok = reply(&request, ReplyStatus::Ok, "uas").unwrap();
        uas.send_to(&ok, from).unwrap();
    });
    let mut args = dialog_args(&addr.to_string());
    args.extend(["--cseq".into(), "7".into(), "off".into()]);
    let out = sip_record(&args);
    server.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "SIP/2.0 200 OK\n");
    assert!(out.status.success());
}

fn no_answer_is_an_error_after_the_timeout() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut args = dialog_args(&silent.local_addr().unwrap().to_string());
    args.extend(["--timeout".into(), "1".into(), "on".into()]);
    let out = sip_record(&args);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no final response from 127.0.0.1:"), "{err}");
    // Timer A: sent at 0, 0.5 s (and maybe 1.5 s) within one second.
    let mut buf = [0u8; 4096];
    silent.set_nonblocking(true).unwrap();
    let mut copies = 0;
    while silent.recv_from(&mut buf).is_ok() {
        copies += 1;
    }
    assert!((2..=3).contains(&copies), "{copies} copies");
}

fn url_record_sends_the_get_and_prints_the_status() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut chunk).unwrap();
            assert!(n > 0);
            request.extend_from_slice(&chunk[..n]);
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        String::from_utf8(request).unwrap()
    });
    let out = sip_record(&[
        "--url".into(),
        format!("http://127.0.0.1:{port}/rec?start=1&mac=$mac&remote=$remote"),
        "--mac".into(),
        "001565aabbcc".into(),
        "--remote".into(),
        "+49 30 1010".into(),
        "on".into(),
    ]);
    let request = server.join().unwrap();
    assert!(
        request
            .starts_with("GET /rec?start=1&mac=001565aabbcc&remote=%2B49%2030%201010 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.contains(&format!("Host: 127.0.0.1:{port}\r\n")));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HTTP 200 OK\n");
    assert!(out.status.success());
}

/// The tests, each ignored with the reason when what it needs is missing
/// (a failure under `CI=true`).
fn main() -> std::process::ExitCode {
    use callrec_test::harness::{SIPP, Test, run_tests};
    run_tests(vec![
        Test::new(
            "sipp_answers_the_record_on_info",
            sipp_answers_the_record_on_info,
        )
        .needs(&[SIPP]),
        Test::new(
            "record_off_reaches_a_callrec_sip_uas",
            record_off_reaches_a_callrec_sip_uas,
        ),
        Test::new(
            "no_answer_is_an_error_after_the_timeout",
            no_answer_is_an_error_after_the_timeout,
        ),
        Test::new(
            "url_record_sends_the_get_and_prints_the_status",
            url_record_sends_the_get_and_prints_the_status,
        ),
    ])
}
