//! A recording server with the recordings service and its HTTP API, run
//! in-process on its own runtime, with phone_sim (a real process) as the
//! phone and ureq as the HTTP client.

use core::net::SocketAddr;
use core::time::Duration;
use std::path::PathBuf;
use std::time::Instant;

use callrec_recordings::{Node, Recordings, Settings, Tokens};
use callrec_server::{Config, OutputFormat, PortRange};

pub(crate) struct Service {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) recordings: Recordings,
    pub(crate) control: SocketAddr,
    /// The SIPREC address, when `Options::sip`.
    pub(crate) sip: Option<SocketAddr>,
    pub(crate) base: String,
    node: Option<Node>,
    runtime: Option<tokio::runtime::Runtime>,
}

pub(crate) struct Options {
    pub(crate) ports: (u16, u16),
    pub(crate) tokens: Option<&'static str>,
    pub(crate) format: OutputFormat,
    pub(crate) allow: Vec<ipnet::IpNet>,
    /// Take SIPREC sessions on a free loopback port.
    pub(crate) sip: bool,
    /// Changes to the server's configuration.
    pub(crate) config: Box<dyn FnOnce(&mut Config)>,
    pub(crate) settings: Box<dyn FnOnce(&mut Settings)>,
}

impl Options {
    pub(crate) fn new(first_port: u16) -> Self {
        Self {
            ports: (first_port, first_port + 49),
            tokens: None,
            format: OutputFormat::Wav,
            allow: Vec::new(),
            sip: false,
            config: Box::new(|_| {}),
            settings: Box::new(|_| {}),
        }
    }
}

impl Service {
    /// A node (server, service, API) on loopback, through the same
    /// `Node::start` that record_server calls.
    pub(crate) fn start(options: Options) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), options)
    }

    /// Shuts the node down and starts another on the same directory.
    pub(crate) fn restart(mut self, options: Options) -> Self {
        self.shut_down();
        let dir = core::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        Self::start_in(dir, options)
    }

    fn shut_down(&mut self) {
        if let (Some(node), Some(runtime)) = (self.node.take(), self.runtime.take()) {
            let _ = runtime.block_on(node.shutdown());
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }

    fn start_in(dir: tempfile::TempDir, options: Options) -> Self {
        let mut settings = Settings::new(dir.path().join("recordings"));
        settings.http = Some("127.0.0.1:0".parse().unwrap());
        settings.tokens = options.tokens.map(|text| Tokens::parse(text).unwrap());
        settings.upload_drain = Duration::from_secs(5);
        (options.settings)(&mut settings);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".into();
        config.rtp_ports = PortRange::new(options.ports.0, options.ports.1).unwrap();
        config.dir = settings.dir.clone();
        config.format = options.format;
        config.min_free_space = 1 << 20;
        // phone_sim --speed 0 sends faster than real time.
        config.max_lead_ms = 3_600_000;
        config.allow = options.allow;
        if options.sip {
            config.sip = Some("127.0.0.1:0".into());
        }
        (options.config)(&mut config);
        let node = runtime
            .block_on(Node::start(config, settings))
            .unwrap_or_else(|e| panic!("the node did not start: {e}"));
        Self {
            dir,
            recordings: node.recordings().unwrap().clone(),
            control: node.control_addr(),
            sip: node.sip_addr(),
            base: format!("http://{}", node.http_addr().unwrap()),
            node: Some(node),
            runtime: Some(runtime),
        }
    }

    /// The id of the newest recording, from the API's search.
    pub(crate) fn newest_id(&self) -> String {
        ids(&get(&format!("{}/api/recordings", self.base)).json())[0].clone()
    }

    pub(crate) fn recordings_dir(&self) -> PathBuf {
        self.dir.path().join("recordings")
    }

    /// Runs phone_sim against the server (one-second tone, as fast as it
    /// goes) with more flags, and asserts it succeeded.
    pub(crate) fn call(&self, args: &[&str]) -> String {
        Self::call_at(&self.control.to_string(), args)
    }

    /// [`call`](Self::call) against the control address `control`.
    pub(crate) fn call_at(control: &str, args: &[&str]) -> String {
        let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"--server", &control];
        if !args.contains(&"--speed") {
            all.extend([&"--speed" as &dyn AsRef<std::ffi::OsStr>, &"0"]);
        }
        if !args.contains(&"--seconds") {
            all.extend([&"--seconds" as &dyn AsRef<std::ffi::OsStr>, &"1"]);
        }
        for a in args {
            all.push(a);
        }
        super::stdout_of_success(&super::run_example("phone_sim", &all))
    }

    /// A call of `audio` (8 kHz for G.711, 16 kHz for G.722) in real
    /// time, on its own thread, through callrec-phone's `run_call`; the
    /// thread returns its result.
    pub(crate) fn call_in_background(
        &self,
        id: &str,
        codec: callrec_control::Codec,
        audio: Vec<i16>,
    ) -> std::thread::JoinHandle<callrec_phone::CallResult> {
        let options = callrec_phone::CallOptions {
            local_number: "1009".into(),
            remote_number: "1010".into(),
            ..callrec_phone::CallOptions::new(
                self.control,
                callrec_control::SessionId::new(id).unwrap(),
                "001565aabbcc".parse().unwrap(),
                codec,
                audio,
            )
        };
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime
                .block_on(callrec_phone::run_call(options))
                .unwrap_or_else(|e| panic!("the call failed: {e}"))
        })
    }

    /// The id of the recording running now (the only one), once the index
    /// has it.
    pub(crate) fn running_id(&self) -> String {
        callrec_test::poll_until("a running recording", Duration::from_secs(10), || {
            self.recordings.flush();
            let page = self
                .recordings
                .search(&callrec_recordings::Query::default())
                .unwrap();
            page.recordings
                .into_iter()
                .find(|r| r.running)
                .map(|r| r.recording_id)
        })
    }

    /// Waits until `n` recordings are finished and in the index.
    pub(crate) fn wait_for_finished(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.recordings.flush();
            let mut query = callrec_recordings::Query::default();
            query.limit = 1000;
            let page = self.recordings.search(&query).unwrap();
            let done = page.recordings.iter().filter(|r| !r.running).count();
            if done >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{done} of {n} recordings finished"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// An HTTP answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }

    /// The `error` of a JSON error answer.
    pub(crate) fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// `method url` with these headers.
pub(crate) fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> Answer {
    http_with_body(method, url, headers, &[])
}

/// `method url` with these headers and this body.
pub(crate) fn http_with_body(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    // Redirects are answers to check, not to follow.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = if body.is_empty() {
        agent.run(request.body(()).unwrap()).unwrap()
    } else {
        agent.run(request.body(body.to_vec()).unwrap()).unwrap()
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

pub(crate) fn get(url: &str) -> Answer {
    http("GET", url, &[])
}

/// The ids of a search answer's recordings, in order.
pub(crate) fn ids(page: &serde_json::Value) -> Vec<String> {
    page["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["recording_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The audit log as `action recording_id actor` lines.
pub(crate) fn audit_summary(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| {
            format!(
                "{} {} {}",
                e["action"].as_str().unwrap(),
                e["recording_id"].as_str().unwrap(),
                e["actor"].as_str().unwrap()
            )
        })
        .collect()
}
