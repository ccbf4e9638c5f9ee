//! A phone that vanishes (its link cut, no FIN, no RST) is found by TCP
//! keepalive and its recording finalized: the server in this process, the
//! phone (`phone_sim`, a real process) in a network namespace joined by a
//! veth pair. Needs root (CI runs as root); skips otherwise outside CI.

mod common;

use core::time::Duration;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use callrec_server::{Config, PortRange, Server};

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    callrec_test::files_under(dir)
}

/// Waits for a sidecar under `dir` that satisfies `ready`.
async fn wait_for_sidecar_where(
    dir: &Path,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = walk(dir)
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "json"));
        if let Some(path) = found {
            let read = std::fs::read(&path).unwrap_or_default();
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&read) {
                if ready(&json) {
                    return json;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no sidecar under {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A network namespace joined to this one by a veth pair, for a phone that
/// can vanish (needs root; CI runs as root). Removed on drop.
struct VanishingPhoneNet {
    ns: String,
    host_if: String,
}

impl VanishingPhoneNet {
    const HOST: &str = "10.213.7.1";
    const PHONE: &str = "10.213.7.2";

    fn create() -> Option<Self> {
        let id = std::process::id() % 100_000;
        let net = Self {
            ns: format!("callrec-ka-{id}"),
            host_if: format!("crka{id}"),
        };
        let peer = format!("crkp{id}");
        let steps: [&[&str]; 8] = [
            &["netns", "add", &net.ns],
            &[
                "link",
                "add",
                &net.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
            ],
            &["link", "set", &peer, "netns", &net.ns],
            &[
                "addr",
                "add",
                &format!("{}/30", Self::HOST),
                "dev",
                &net.host_if,
            ],
            &["link", "set", &net.host_if, "up"],
            &[
                "-n",
                &net.ns,
                "addr",
                "add",
                &format!("{}/30", Self::PHONE),
                "dev",
                &peer,
            ],
            &["-n", &net.ns, "link", "set", &peer, "up"],
            &["-n", &net.ns, "link", "set", "lo", "up"],
        ];
        for step in steps {
            let ok = Command::new("ip")
                .args(step)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true: this test needs `ip {}` (root, iproute2)",
                    step.join(" ")
                );
                return None;
            }
        }
        Some(net)
    }

    /// The phone's link goes dead: nothing it sends arrives, nothing reaches it.
    fn cut(&self) {
        let ok = Command::new("ip")
            .args(["link", "set", &self.host_if, "down"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok);
    }
}

impl Drop for VanishingPhoneNet {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_vanishes_is_found_by_keepalive_and_its_recording_finalized() {
    let Some(net) = VanishingPhoneNet::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.listen = format!("{}:0", VanishingPhoneNet::HOST);
    config.keepalive_secs = 1;
    config.rtp_ports = PortRange::new(45170, 45179).unwrap();
    config.dir = dir.path().to_owned();
    config.min_free_space = 1 << 20;
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    // The phone, inside its namespace: a 60-second call that never ends by
    // itself.
    let mut phone = Command::new("ip")
        .args(["netns", "exec", &net.ns])
        .arg(common::example_path("phone_sim"))
        .args(["--server", &addr.to_string(), "--seconds", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = wait_for_sidecar_where(dir.path(), |_| true).await;
    assert_eq!(started["complete"], false);
    // The call runs: a second of its audio is on disk.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !walk(dir.path()).iter().any(|p| {
        p.extension().is_some_and(|e| e == "wav")
            && std::fs::metadata(p).is_ok_and(|m| m.len() >= 44 + 8000)
    }) {
        assert!(Instant::now() < deadline, "no audio from the phone");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The phone's cable is pulled: no FIN, no RST, just silence.
    net.cut();
    let cut_at = Instant::now();
    let done = wait_for_sidecar_where(dir.path(), |json| json["complete"] == true).await;
    let found_after = cut_at.elapsed();
    assert_eq!(done["stop_reason"], "control connection lost");
    // Keepalive: 1 s idle, then 3 probes 1 s apart.
    assert!(found_after < Duration::from_secs(9), "{found_after:?}");
    assert_eq!(
        done["phone_address"].as_str().unwrap().split(':').next(),
        Some(VanishingPhoneNet::PHONE)
    );
    let _ = phone.kill();
    let _ = phone.wait();
    drop(net);
    let _ = stop.send(());
    running.await.unwrap();
}
