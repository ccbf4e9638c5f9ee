#![allow(dead_code)] // each test binary uses a different subset
//! Helpers shared by the tests that run example binaries.

pub(crate) mod service;

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

/// Reads one `\r\n`-terminated control message.
pub(crate) async fn read_crlf_line(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "connection closed"
        );
        out.push(byte[0]);
    }
    String::from_utf8(out).unwrap()
}

/// What record_server's log says when it is up.
pub(crate) struct Listening {
    /// The control address.
    pub(crate) control: String,
    /// `http://HOST:PORT` of the API, when `--http` was given.
    pub(crate) base: Option<String>,
    /// Every line of the log so far; filled on as the server logs.
    pub(crate) log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Reads record_server's log (its stderr) until it listens, then keeps
/// reading it into [`Listening::log`] on a thread, so the server never
/// blocks on a full pipe.
pub(crate) fn listening(stderr: impl std::io::Read + Send + 'static) -> Listening {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut base = None;
    let mut seen = Vec::new();
    let control = loop {
        let line = match lines.next() {
            Some(line) => line.unwrap(),
            None => panic!("record_server exited:\n{}", seen.join("\n")),
        };
        seen.push(line.clone());
        if let Some((_, rest)) = line.split_once("web page and API on ") {
            base = Some(rest.trim_end_matches('/').to_owned());
        }
        if line.contains("record_server listening") {
            let rest = line.split_once("control=").unwrap().1;
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let log = std::sync::Arc::new(std::sync::Mutex::new(seen));
    let keep = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            keep.lock().unwrap().push(line);
        }
    });
    Listening { control, base, log }
}
