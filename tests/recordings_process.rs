//! record_server as operators run it, with --http: a call cut off by
//! `kill -9` is in the index after the restart (incomplete, with the length
//! its WAV has), `--reindex` rebuilds a lost index, and `--verify-audit`
//! checks the audit log's chain.

mod common;

use core::time::Duration;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::service::get;
use serde_json::Value;

struct Running {
    child: Child,
    base: String,
    control: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts record_server on `dir` with the API.
fn start(dir: &Path, ports: &str, extra: &[&str]) -> Running {
    let mut command = Command::new(common::example_path("record_server"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--rtp-ports",
            ports,
            "--http",
            "127.0.0.1:0",
        ])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "info");
    let up = common::start_record_server(command);
    Running {
        child: up.child,
        base: up.base.expect("the API's address"),
        control: up.control,
    }
}

fn recordings(base: &str) -> Vec<Value> {
    get(&format!("{base}/api/recordings")).json()["recordings"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_call_cut_off_by_kill_9_is_indexed_after_restart_and_reindex_rebuilds_a_lost_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("recordings");
    let server = start(&dir, "52600-52609", &[]);
    let mut phone = Command::new(common::example_path("phone_sim"))
        .args([
            "--server",
            &server.control,
            "--seconds",
            "30",
            "--speed",
            "1",
        ])
        .args(["--remote-number", "7007"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the call is indexed as running, then until its WAV holds
    // 2.5 s of A-law (its header is rewritten every second of audio).
    callrec_test::wait_until("the call in the index", Duration::from_secs(10), || {
        !recordings(&server.base).is_empty()
    });
    assert_eq!(recordings(&server.base)[0]["running"], true);
    callrec_test::wait_until("2.5 s of audio", Duration::from_secs(20), || {
        callrec_test::files_under(&dir).iter().any(|p| {
            p.extension().is_some_and(|e| e == "wav")
                && std::fs::metadata(p).is_ok_and(|m| m.len() >= 20_000)
        })
    });
    common::send_signal(server.child.id(), "KILL");
    drop(server);
    let _ = phone.wait();

    // Restarted: the index still said running; the recording is entered
    // again from its files.
    let server = start(&dir, "52600-52609", &[]);
    let list = recordings(&server.base);
    assert_eq!(list.len(), 1);
    let cut = &list[0];
    assert_eq!(cut["running"], false);
    assert_eq!(cut["complete"], false);
    assert_eq!(cut["remote_number"], "7007");
    assert!(
        cut["stop_reason"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{cut}"
    );
    // Its bytes are final now: the index has their SHA-256.
    let wav = callrec_test::files_under(&dir)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "wav"))
        .unwrap();
    let digest: String = {
        use sha2::Digest;
        sha2::Sha256::digest(std::fs::read(&wav).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(cut["sha256"], digest.as_str(), "{cut}");
    let ms = cut["duration_ms"].as_u64().unwrap();
    assert!(
        (1500..=4500).contains(&ms),
        "{ms} ms recorded before kill -9"
    );
    let id = cut["recording_id"].as_str().unwrap().to_owned();
    let pcm = get(&format!(
        "{}/api/recordings/{id}/audio?format=pcm16",
        server.base
    ));
    assert_eq!(pcm.status, 200);
    // Its length in the PCM16 file: the WAV's samples, not the sidecar's.
    assert_eq!((pcm.body.len() as u64 - 44) / 16, ms);
    common::send_signal(server.child.id(), "TERM");
    drop(server);

    // A lost index: --reindex rebuilds it from the files.
    for name in ["index.sqlite3", "index.sqlite3-wal", "index.sqlite3-shm"] {
        let _ = std::fs::remove_file(dir.join(".callrec").join(name));
    }
    let server = start(&dir, "52600-52609", &["--reindex"]);
    let list = recordings(&server.base);
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0]["recording_id"],
        id.as_str(),
        "the sidecar keeps the id"
    );
    assert_eq!(list[0]["duration_ms"], ms);
    assert_eq!(list[0]["complete"], false);
}

#[test]
fn verify_audit_checks_the_chain_and_names_the_broken_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("recordings");
    let server = start(&dir, "52610-52619", &[]);
    common::service::Service::call_at(&server.control, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = loop {
        if let Some(first) = recordings(&server.base).first() {
            if first["running"] == false {
                break first["recording_id"].as_str().unwrap().to_owned();
            }
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    };
    for _ in 0..3 {
        assert_eq!(
            get(&format!("{}/api/recordings/{id}/audio", server.base)).status,
            200
        );
    }
    common::send_signal(server.child.id(), "TERM");
    drop(server);
    let verify = |dir: &Path| {
        Command::new(common::example_path("record_server"))
            .arg("--dir")
            .arg(dir)
            .arg("--verify-audit")
            .output()
            .unwrap()
    };
    let good = verify(&dir);
    let stdout = common::stdout_of_success(&good);
    assert!(
        stdout.contains(": 3 entries, chain intact, ends where the index's anchor says, head "),
        "{stdout}"
    );
    let log = dir.join(".callrec/audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let fails_with = |expected: &str| {
        let bad = verify(&dir);
        assert!(!bad.status.success());
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    };
    std::fs::write(&log, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    fails_with("audit.jsonl: line 2: sequence number 3 where 2 belongs");

    // The last line removed while the server is stopped: the chain alone
    // is intact, the index's anchor shows the loss.
    std::fs::write(&log, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    fails_with(
        "audit.jsonl: line 3 is missing: the log ends at line 2, the index's anchor says it has 3",
    );
    // Started on it, the server records calls but refuses audited requests.
    let server = start(&dir, "52610-52619", &[]);
    let audio = format!("{}/api/recordings/{id}/audio", server.base);
    let refused = get(&audio);
    assert_eq!(refused.status, 503);
    assert!(
        refused.error().contains("line 3 is missing"),
        "{}",
        refused.error()
    );
    let metrics = String::from_utf8(get(&format!("{}/metrics", server.base)).body).unwrap();
    assert!(metrics.contains("\ncallrec_audit_broken 1\n"), "{metrics}");
    common::send_signal(server.child.id(), "TERM");
    drop(server);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);

    // An operator keeps the evidence and accepts the log: logged, and the
    // chain goes on from there.
    let server = start(&dir, "52610-52619", &["--audit-accept"]);
    let audio = format!("{}/api/recordings/{id}/audio", server.base);
    assert_eq!(get(&audio).status, 200);
    common::send_signal(server.child.id(), "TERM");
    drop(server);
    let stdout = common::stdout_of_success(&verify(&dir));
    assert!(
        stdout.contains(": 4 entries, chain intact, ends where"),
        "{stdout}"
    );
    let summary = common::service::audit_summary(&log);
    assert_eq!(summary[2], "accept  operator", "{summary:?}");
    assert_eq!(summary[3], format!("play {id} loopback"), "{summary:?}");
}

#[test]
fn bad_recordings_flags_are_errors_that_name_the_value() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(common::example_path("record_server"))
            .arg("--dir")
            .arg(tmp.path())
            .args(args)
            .output()
            .unwrap()
    };
    for (args, words) in [
        (&["--max-disk-usage", "12X"][..], "\"12X\" is not a size"),
        (&["--max-disk-usage", "0"][..], "\"0\" is not a size"),
        (
            &["--retain-days", "soon"][..],
            "invalid value 'soon' for '--retain-days <DAYS>'",
        ),
        (&["--http", "0.0.0.0:0"][..], "without API tokens"),
        (
            &["--no-index", "--http", "127.0.0.1:0"][..],
            "--no-index leaves nothing to serve",
        ),
        (
            &["--api-tokens", "/no/such/tokens"][..],
            "cannot read /no/such/tokens",
        ),
    ] {
        let out = run(args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}
