#![allow(dead_code)] // each test binary uses a different subset
//! Helpers shared by the tests that run example binaries.

pub(crate) mod service;
pub(crate) mod siprec_client;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The path of the example `name`, which `cargo test` builds next to the
/// test binaries' directory.
pub(crate) fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

/// Runs the example `name` to completion.
pub(crate) fn run_example(name: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(example_path(name))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap()
}

/// A finished process's standard output, after asserting that it succeeded
/// (its standard error is the failure message).
pub(crate) fn stdout_of_success(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends `signal` (`"INT"`, `"TERM"`) to process `pid` with kill(1) and
/// asserts it was delivered.
pub(crate) fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

/// The bundled sample recording: 3 s of PCMA.
pub(crate) const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/data/Record_20261122_101500.wav"
);

/// Reads lines from `stream` (a child's stderr) until one contains
/// `needle`, returns it, and keeps draining the rest on a thread so the
/// child never blocks on a full pipe.
pub(crate) fn wait_for_line(stream: impl std::io::Read + Send + 'static, needle: &str) -> String {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(stream).lines();
    let found = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("output ended before {needle:?}"))
            .unwrap();
        if line.contains(needle) {
            break line;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    found
}

/// A record_server process, up: its addresses (from `--addresses-file`,
/// never from its log) and its log.
pub(crate) struct Started {
    /// The process.
    pub(crate) child: std::process::Child,
    /// The control address.
    pub(crate) control: String,
    /// `http://HOST:PORT` of the API, when `--http` was given.
    pub(crate) base: Option<String>,
    /// Every line of its log (stderr) so far; filled on as it logs.
    pub(crate) log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Starts `command` (record_server with its flags) with `--addresses-file`
/// in a temporary directory, keeps reading its log into
/// [`Started::log`] so it never blocks on a full pipe, and waits until it
/// has written its addresses.
pub(crate) fn start_record_server(mut command: Command) -> Started {
    use std::io::BufRead;
    use std::process::Stdio;
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("addresses.json");
    let mut child = command
        .arg("--addresses-file")
        .arg(&file)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = log.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            keep.lock().unwrap().push(line);
        }
    });
    let addresses: serde_json::Value = callrec_test::poll_until(
        "record_server's addresses file",
        core::time::Duration::from_secs(30),
        || {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "record_server exited ({status}):\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
            let text = std::fs::read(&file).ok()?;
            serde_json::from_slice(&text).ok()
        },
    );
    Started {
        child,
        control: addresses["control"].as_str().unwrap().to_owned(),
        base: addresses["http"].as_str().map(|a| format!("http://{a}")),
        log,
    }
}

/// Runs an async test as `#[tokio::test(flavor = "multi_thread",
/// worker_threads = 2)]` did.
pub(crate) fn on_tokio(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(test);
}
