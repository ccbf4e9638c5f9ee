//! Real database and storage servers for tests, each in a temp dir on
//! loopback: a throwaway PostgreSQL cluster (Debian's `postgresql`) and a
//! single-node Garage (S3). Neither is a mock: the tests talk to what
//! operators run.

use core::time::Duration;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

/// A free TCP port on 127.0.0.1 (free when asked; tests pick a few and use
/// them at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Whether a PostgreSQL server is installed the Debian way.
pub fn postgres_installed() -> bool {
    postgres_bin().is_some()
}

/// The directory of the newest PostgreSQL server installed the Debian way.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A throwaway PostgreSQL cluster on 127.0.0.1, stopped and removed when
/// dropped.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Runs the server's programs as this user (initdb refuses root).
    user: Option<&'static str>,
}

impl Postgres {
    /// Starts a new cluster; `None` (test skipped) when PostgreSQL is not
    /// installed.
    ///
    /// # Panics
    /// Under `CI=true` when it is not installed; when it cannot start.
    pub fn start() -> Option<Self> {
        let Some(bin) = postgres_bin() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is required under CI=true (apt-get install postgresql)"
            );
            eprintln!("skipping: PostgreSQL not installed");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temp dir");
        let user = is_root().then_some("postgres");
        if user.is_some() {
            run(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        let pg = Self {
            dir,
            bin,
            port: free_port(),
            user,
        };
        run(pg
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "callrec",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(pg.data()));
        pg.resume();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// The URL of database `postgres` as user `callrec` (no password).
    pub fn url(&self) -> String {
        format!("postgres://callrec@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown); [`resume`](Self::resume) starts it
    /// again on the same data and port.
    pub fn stop(&self) {
        run(self
            .command("pg_ctl")
            .args(["-m", "fast", "-w", "stop", "-D"])
            .arg(self.data())
            .stdout(Stdio::null()));
    }

    /// Starts the server (again) and waits until it takes connections.
    ///
    /// # Panics
    /// When it does not start.
    pub fn resume(&self) {
        let options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.dir.path().display(),
            self.port
        );
        run(self
            .command("pg_ctl")
            .args(["-w", "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-o", &options, "start", "-D"])
            .arg(self.data())
            .stdout(Stdio::null()));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-m", "immediate", "stop", "-D"])
            .arg(self.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A single-node Garage S3 store on 127.0.0.1 with one bucket and one key,
/// killed and removed when dropped.
#[derive(Debug)]
pub struct Garage {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The access key id.
    pub key_id: String,
    /// The secret access key.
    pub secret: String,
}

/// The region Garage is configured with.
pub const GARAGE_REGION: &str = "garage";

impl Garage {
    /// Starts a store with bucket `bucket`; `None` (test skipped) when the
    /// `garage` program is not installed.
    ///
    /// # Panics
    /// Under `CI=true` when it is not installed; when it cannot start.
    pub fn start(bucket: &str) -> Option<Self> {
        if !crate::have_tool("garage", "--version") {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let s3 = free_port();
        let config = format!(
            "metadata_dir = \"{meta}\"\n\
             data_dir = \"{data}\"\n\
             db_engine = \"sqlite\"\n\
             replication_factor = 1\n\
             rpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_secret = \"{secret}\"\n\
             [s3_api]\n\
             s3_region = \"{GARAGE_REGION}\"\n\
             api_bind_addr = \"127.0.0.1:{s3}\"\n\
             root_domain = \".s3.garage.localhost\"\n\
             [admin]\n\
             api_bind_addr = \"127.0.0.1:{admin}\"\n",
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
            rpc = free_port(),
            admin = free_port(),
            secret = "5f0e1d2c3b4a59687766554433221100ffeeddccbbaa99887766554433221100",
        );
        std::fs::write(dir.path().join("garage.toml"), config).expect("garage.toml");
        let mut garage = Self {
            dir,
            child: None,
            endpoint: format!("http://127.0.0.1:{s3}"),
            bucket: bucket.to_owned(),
            key_id: String::new(),
            secret: String::new(),
        };
        garage.resume();
        let id = garage.admin(&["node", "id", "-q"]);
        let id = id.split('@').next().unwrap_or_default().trim().to_owned();
        garage.admin(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        garage.admin(&["layout", "apply", "--version", "1"]);
        garage.admin(&["bucket", "create", bucket]);
        let key = garage.admin(&["key", "create", "callrec-test"]);
        let field = |name: &str| {
            key.lines()
                .find_map(|l| {
                    l.split_once(name)
                        .map(|(_, v)| v.trim().trim_start_matches(':').trim().to_owned())
                })
                .unwrap_or_else(|| panic!("no {name} in `garage key create`: {key}"))
        };
        garage.key_id = field("Key ID");
        garage.secret = field("Secret key");
        garage.admin(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            bucket,
            "--key",
            "callrec-test",
        ]);
        Some(garage)
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    /// Runs `garage` against this store, retrying while the server comes
    /// up; its output.
    fn admin(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = Command::new("garage")
                .arg("-c")
                .arg(self.config())
                .args(args)
                .output()
                .expect("garage");
            if output.status.success() {
                return String::from_utf8_lossy(&output.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "garage {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the server (`kill -9`): the store is down until
    /// [`resume`](Self::resume).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on the same data and ports, and waits
    /// until its S3 port answers.
    ///
    /// # Panics
    /// When it does not come up.
    pub fn resume(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("log")).expect("garage log");
        let child = Command::new("garage")
            .arg("-c")
            .arg(self.config())
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("garage server");
        self.child = Some(child);
        let addr = self.endpoint.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "garage did not open {addr}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The store's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The data directory (to count what it holds).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}
