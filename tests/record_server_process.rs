//! The `record_server` binary as a process: SIGTERM finalizes every open
//! recording, and after `kill -9` the WAV still opens (the header is
//! rewritten every second of audio). The phone side is `phone_sim`'s code,
//! in this process.

mod common;

use callrec_phone as phone;

use core::net::SocketAddr;
use core::time::Duration;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use callrec::audio::wav::{WavFile, WavReadMode};
use callrec::control::{Codec, SessionId};
use phone::{CallOptions, run_call};
use tokio::io::AsyncWriteExt;

/// The server process; killed if a test ends (or panics) without
/// stopping it, so no orphan outlives the test run.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl core::ops::Deref for ServerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl core::ops::DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Starts the server binary on an ephemeral control port; returns it and
/// its control address (from its addresses file).
fn spawn_server(dir: &Path, ports: &str) -> (ServerProcess, SocketAddr) {
    let mut command = Command::new(common::example_path("record_server"));
    command
        .args(["--listen", "127.0.0.1:0", "--rtp-ports", ports, "--dir"])
        .arg(dir);
    let started = common::start_record_server(command);
    let addr = started.control.parse().unwrap();
    (ServerProcess(started.child), addr)
}

fn call(server: SocketAddr, id: &str, seconds: f64) -> CallOptions {
    let audio = vec![1000; (8000.0 * seconds) as usize];
    let device = "001565aabbcc".parse().unwrap();
    CallOptions {
        local_number: "1009".into(),
        remote_number: "1010".into(),
        ..CallOptions::new(
            server,
            SessionId::new(id).unwrap(),
            device,
            Codec::Pcma,
            audio,
        )
    }
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    callrec_test::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect()
}

async fn sigterm_finalizes_every_open_recording() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_server(dir.path(), "45500-45509");
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..3)
        .map(|n| tokio::spawn(run_call(call(addr, &format!("term{n}"), 10.0))))
        .collect();
    // Each call has a second of audio on disk (its WAV grows as it runs).
    let deadline = started + Duration::from_secs(20);
    loop {
        let wavs = files_with(dir.path(), "wav");
        let long = wavs
            .iter()
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= 44 + 8000))
            .count();
        if long == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{long} of 3 calls recording"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    common::send_signal(child.id(), "TERM");
    let ran = started.elapsed();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    for c in calls {
        // The phones see the connection close mid-call.
        assert!(c.await.unwrap().is_err());
    }
    let sidecars = files_with(dir.path(), "json");
    assert_eq!(sidecars.len(), 3);
    for path in sidecars {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            json["stop_reason"],
            "server shutting down",
            "{}",
            path.display()
        );
        let wav = std::fs::read(path.with_extension("wav")).unwrap();
        let parsed = WavFile::parse(&wav).unwrap();
        let ms = parsed.duration().as_millis();
        // At least the second seen on disk; never more than the call ran
        // plus the lead the server allows a phone's clock (max_lead_ms, 1 s)
        // and a packet.
        assert!(
            (1000..=ran.as_millis() + 1020).contains(&ms),
            "{ms} ms in {} after {ran:?}",
            path.display()
        );
        assert_eq!(json["duration_ms"], ms as u64);
    }
}

async fn after_kill_9_the_wav_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_server(dir.path(), "45510-45519");
    let started = std::time::Instant::now();
    let call = tokio::spawn(run_call(call(addr, "killed", 10.0)));
    // Its header has been rewritten to count a second of audio.
    let deadline = started + Duration::from_secs(20);
    while !files_with(dir.path(), "wav").iter().any(|p| {
        std::fs::read(p).is_ok_and(|bytes| {
            WavFile::parse(&bytes).is_ok_and(|w| w.duration() >= Duration::from_secs(1))
        })
    }) {
        assert!(std::time::Instant::now() < deadline, "no audio recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL: nothing is finalized
    let ran = started.elapsed();
    child.wait().unwrap();
    assert!(call.await.unwrap().is_err());
    let wavs = files_with(dir.path(), "wav");
    assert_eq!(wavs.len(), 1);
    // The sidecar was written when the call started: it is there, whole,
    // and says the recording did not complete.
    let sidecars = files_with(dir.path(), "json");
    assert_eq!(sidecars.len(), 1, "one sidecar after kill -9");
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sidecars[0]).unwrap()).unwrap();
    assert_eq!(sidecar["session_id"], "killed");
    assert_eq!(sidecar["complete"], false);
    assert!(files_with(dir.path(), "tmp").is_empty());
    let bytes = std::fs::read(&wavs[0]).unwrap();
    // The last header rewrite (every second of audio) describes audio that
    // is all in the file: a strict parse succeeds.
    let strict = WavFile::parse(&bytes).unwrap();
    let ms = strict.duration().as_millis();
    // Never more than the call ran plus the lead allowed (1 s) and a packet.
    assert!(
        (1000..=ran.as_millis() + 1020).contains(&ms),
        "{ms} ms after {ran:?}"
    );
    assert!(
        strict
            .data()
            .iter()
            .all(|&b| b == callrec::audio::g711::Law::Alaw.encode_sample(1000))
    );
    let recovered = WavFile::parse_with(&bytes, WavReadMode::Recover).unwrap();
    assert!(recovered.frames() >= strict.frames());
    // And a real player opens it.
    if callrec_test::have_tool("ffprobe", "-version") {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
            ])
            .arg(&wavs[0])
            .output()
            .unwrap();
        let secs: f64 = common::stdout_of_success(&out).trim().parse().unwrap();
        assert!(
            (secs * 1000.0 - ms as f64).abs() < 1.0,
            "ffprobe says {secs} s"
        );
    }
}

fn phone_sim_binary_streams_a_wav_file_and_summarises_many_calls() {
    use callrec::audio::WavWriter;
    use callrec::audio::g711::Law;
    use callrec::audio::wav::WavSpec;

    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn_server(&dir.path().join("recordings"), "45520-45539");
    // 1 s of PCM16 at 8 kHz: phone_sim encodes it to PCMU.
    let samples: Vec<i16> = (0..8000)
        .map(|i| ((i * 37) % 20000 - 10000) as i16)
        .collect();
    let input = dir.path().join("speech.wav");
    let mut wav = WavWriter::new(
        std::io::BufWriter::new(std::fs::File::create(&input).unwrap()),
        WavSpec::pcm16_mono(false),
    )
    .unwrap();
    wav.write_pcm(&samples).unwrap();
    wav.finish().unwrap();
    let phone_sim = |args: &[&str]| {
        Command::new(common::example_path("phone_sim"))
            .args(["--server", &addr.to_string(), "--speed", "0"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = phone_sim(&[
        "--codec",
        "PCMU",
        input.to_str().unwrap(),
        "--remote-number",
        "2020",
    ]);
    let stdout = common::stdout_of_success(&out);
    assert!(
        stdout.contains("50 packets sent") && stdout.contains("Success"),
        "{stdout}"
    );

    let out = phone_sim(&["--codec", "PCMU", "--calls", "5", "--seconds", "0.2"]);
    let stdout = common::stdout_of_success(&out);
    assert!(
        stdout.starts_with("5 calls: 5 ok, 0 failed; 50 packets sent; start latency p50 "),
        "{stdout}"
    );

    // A WAV at the wrong rate is refused with what was found.
    let out = phone_sim(&["--codec", "G722", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("16-bit PCM 8000 Hz mono; G722 needs mono at 16000 Hz"),
        "{stderr}"
    );

    common::send_signal(child.id(), "TERM");
    assert!(child.wait().unwrap().success());
    let recorded = files_with(dir.path(), "wav")
        .into_iter()
        .find(|p| p.to_string_lossy().contains("_in_2020_"))
        .expect("the WAV-driven call's recording");
    let bytes = std::fs::read(recorded).unwrap();
    let mut expected = vec![0u8; 8000];
    Law::Ulaw.encode(&samples, &mut expected);
    assert_eq!(WavFile::parse(&bytes).unwrap().data(), &expected[..]);
}

/// CPU time (user + system) of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let after = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

async fn few_descriptors_and_a_junk_flood_neither_spin_nor_lock_phones_out() {
    if !callrec_test::have_tool("prlimit", "--version") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "idle_timeout_secs = 1\n").unwrap();
    // 64 descriptors in all: the server sizes its limits to them.
    let mut command = Command::new("prlimit");
    command
        .arg("--nofile=64:64")
        .arg("--")
        .arg(common::example_path("record_server"))
        .args(["--config"])
        .arg(&config)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--rtp-ports",
            "45520-45529",
            "--dir",
        ])
        .arg(dir.path().join("rec"));
    let started = common::start_record_server(command);
    let addr: SocketAddr = started.control.parse().unwrap();
    let log = started.log.clone();
    let mut child = ServerProcess(started.child);
    callrec_test::wait_until(
        "the warning about the descriptor limit",
        Duration::from_secs(10),
        || {
            log.lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("file-descriptor limit too low"))
        },
    );
    // 200 connections that never say anything useful.
    let before = cpu_ticks(child.id());
    let mut junk = Vec::new();
    for _ in 0..200 {
        if let Ok(mut c) = tokio::net::TcpStream::connect(addr).await {
            let _ = c.write_all(b"GET / HTTP/1.0\r\n").await;
            junk.push(c);
        }
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let spent = cpu_ticks(child.id()) - before;
    // Clock ticks are 1/100 s: well under a second of CPU in 2.5 s.
    assert!(spent < 50, "{spent} ticks of CPU while flooded");
    // The junk has been shed (idle deadline, limits): a phone records.
    let result = run_call(call(addr, "afterflood", 0.5)).await;
    assert!(result.is_ok(), "{result:?}");
    drop(junk);
    common::send_signal(child.id(), "TERM");
    assert!(child.wait().unwrap().success());
    let sidecars = files_with(dir.path(), "json");
    assert_eq!(sidecars.len(), 1);
}

fn json_logs_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = ServerProcess(
        Command::new(common::example_path("record_server"))
            .args(["--log-format", "json", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let line = common::wait_for_line(child.stderr.take().unwrap(), "listening");
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(json["fields"]["message"], "record_server listening");
    assert!(
        json["fields"]["control"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    common::send_signal(child.id(), "TERM");
    assert!(child.wait().unwrap().success());
    let out = Command::new(common::example_path("record_server"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        common::stdout_of_success(&out).trim(),
        format!("record_server {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The tests, each ignored with the reason when what it needs is missing
/// (a failure under `CI=true`).
fn main() -> std::process::ExitCode {
    use callrec_test::harness::{FFPROBE, PRLIMIT, Test, run_tests};
    use common::on_tokio;
    run_tests(vec![
        Test::new("sigterm_finalizes_every_open_recording", || {
            on_tokio(sigterm_finalizes_every_open_recording())
        }),
        Test::new("after_kill_9_the_wav_still_opens", || {
            on_tokio(after_kill_9_the_wav_still_opens())
        })
        .needs(&[FFPROBE]),
        Test::new(
            "phone_sim_binary_streams_a_wav_file_and_summarises_many_calls",
            phone_sim_binary_streams_a_wav_file_and_summarises_many_calls,
        ),
        Test::new(
            "few_descriptors_and_a_junk_flood_neither_spin_nor_lock_phones_out",
            || on_tokio(few_descriptors_and_a_junk_flood_neither_spin_nor_lock_phones_out()),
        )
        .needs(&[PRLIMIT]),
        Test::new("json_logs_and_version", json_logs_and_version),
    ])
}
