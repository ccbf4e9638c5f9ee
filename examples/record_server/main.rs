//! `record_server`: the recording server for IP phones' network recording,
//! a thin program over the callrec crates: flags or a TOML file → the
//! server's `Config` and the recordings service's `Settings` → `Node::start`,
//! then a signal → `Node::shutdown`.
//!
//! Phones open a TCP control connection (`cmd=RecordStartRequest&…`), get
//! a UDP port, and stream the call's mixed RTP (PCMA, PCMU or G722) there
//! until they send `RecordStopRequest` or the connection drops. Each
//! recording becomes
//! `DIR/<device>/<YYYY-MM-DD>/<HHMMSS>_<dir>_<remote_number>_<id>.wav`
//! (UTC) with a JSON sidecar of the call's details and RTP statistics.
//! With `--sip HOST:PORT` it is also a SIPREC recording server (RFC 7866)
//! for PBXs and SBCs: each session becomes
//! `DIR/siprec/<YYYY-MM-DD>/<HHMMSS>_siprec_<number>_<id>.wav`, a channel
//! per stream.
//!
//! ```text
//! cargo run --release --example record_server
//! cargo run --release --example record_server -- --config examples/record_server/record_server.toml
//! cargo run --release --example record_server -- --listen 0.0.0.0:7700 \
//!     --rtp-ports 40000-40999 --dir recordings --format wav --allow 10.0.0.0/8
//! ```
//!
//! Flags given on the command line override the file. SIGINT/SIGTERM
//! finalize every open recording before exiting. Logs go to stderr
//! (`RUST_LOG=debug` for more, `--log-format json` for a log collector).

use std::path::PathBuf;
use std::process::ExitCode;

use callrec_recordings::{
    ArchiveFormat, DEFAULT_NARROWBAND_BITRATE, DEFAULT_WIDEBAND_BITRATE, ImportRequest, Node,
    STATE_DIR, Settings, StoreSettings, Tokens, import_files, read_public_key, reseal,
    verify_signatures,
};
use callrec_server::{Config, OutputFormat, PortRange};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "record_server",
    version,
    about = "Recording server for IP phones: TCP control, RTP over UDP, WAV files"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// A TOML configuration file (keys as in `Config`; see
    /// examples/record_server/record_server.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Control address (TCP), HOST:PORT [default: 0.0.0.0:7700].
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// UDP ports for RTP, one per recording [default: 40000-40999].
    #[arg(long, value_name = "LO-HI")]
    rtp_ports: Option<PortRange>,
    /// Where recordings go [default: recordings].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Host name or address to put in `server=` [default: the local
    /// address of each control connection].
    #[arg(long, value_name = "HOST")]
    advertise: Option<String>,
    /// Recordings open at once [default: 1000].
    #[arg(long, value_name = "N")]
    max_recordings: Option<usize>,
    /// The old name of --max-recordings (still works, with a warning).
    #[arg(long, value_name = "N", hide = true)]
    max_sessions: Option<usize>,
    /// Control connections open at once from one address [default: 256].
    #[arg(long, value_name = "N")]
    max_connections_per_ip: Option<usize>,
    /// Log a recording's RTP silence after this long; the recording goes on
    /// until Stop or the connection drops [default: 30].
    #[arg(long, value_name = "SECS")]
    silence_log_secs: Option<u64>,
    /// The old name of --silence-log-secs (still works, with a warning): it
    /// never ended a recording.
    #[arg(long, value_name = "SECS", hide = true)]
    rtp_timeout: Option<u64>,
    /// Longest silence kept as real time [default: 600].
    #[arg(long, value_name = "SECS")]
    max_silence: Option<u64>,
    /// What to write per recording: wav, rec or both [default: wav].
    #[arg(long)]
    format: Option<OutputFormat>,
    /// Take SIPREC recording sessions from a PBX or SBC on HOST:PORT (UDP
    /// and TCP, usually 5060) [default: off]. Each session's streams are
    /// recorded into one WAV, a channel per stream.
    #[arg(long, value_name = "HOST:PORT")]
    sip: Option<String>,
    /// Phones (and SIPREC clients) allowed to record, CIDR (repeatable)
    /// [default: all].
    #[arg(long, value_name = "CIDR")]
    allow: Vec<ipnet::IpNet>,
    /// Refuse new calls below this much free space, in MiB [default: 256].
    #[arg(long, value_name = "MIB")]
    min_free_mib: Option<u64>,
    /// Log format.
    #[arg(long, value_name = "text|json", default_value = "text")]
    log_format: LogFormat,
    /// Serve the web page and the HTTP API (search, playback, delete,
    /// legal hold, /metrics, /healthz) on HOST:PORT [default: off]. Without
    /// --api-tokens only a loopback address is accepted.
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<std::net::SocketAddr>,
    /// API tokens, one `ROLE NAME TOKEN` per line (role read, listen or admin).
    #[arg(long, value_name = "FILE")]
    api_tokens: Option<PathBuf>,
    /// Close an API connection that has not sent a whole request head
    /// this long after connecting or after its last answer (slow headers
    /// and idle keep-alive alike).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    http_head_timeout_secs: u64,
    /// API connections served at once; more are closed when accepted.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    http_max_connections: u64,
    /// API connections served at once from one IP address.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    http_max_connections_per_address: u64,
    /// Where other nodes of a pool send listeners of calls this node
    /// records: this node's API as they reach it, http(s)://HOST[:PORT]
    /// (kept in the shared index).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Listeners of running recordings (`GET /api/recordings/{id}/live`)
    /// at once, in all; more get 503.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    max_listeners: u64,
    /// Listeners of one running recording at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    max_listeners_per_recording: u64,
    /// Delete recordings older than this many days (never one on legal
    /// hold or still running) [default: keep].
    #[arg(long, value_name = "DAYS")]
    retain_days: Option<u32>,
    /// Delete the oldest recordings while all together take more than
    /// this: bytes, or with K, M, G, T (powers of 1024) [default: no limit].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_disk_usage: Option<u64>,
    /// Rebuild the index from the files in --dir before serving (with a
    /// shared index: this node's recordings not uploaded yet).
    #[arg(long)]
    reindex: bool,
    /// The index shared by a pool of nodes:
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE [default: SQLite in
    /// DIR/.callrec]. The tables are created and migrated on start.
    #[arg(long, value_name = "URL")]
    index: Option<String>,
    /// Move finished recordings to an object store, s3://BUCKET/PREFIX:
    /// uploaded, verified (size and SHA-256), then removed from --dir.
    /// Endpoint, region and credentials come from the flags below or the
    /// AWS_* environment variables.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The S3 endpoint, for stores other than AWS (http://HOST:PORT)
    /// [default: $AWS_ENDPOINT_URL, else AWS].
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// The S3 region [default: $AWS_REGION, else us-east-1].
    #[arg(long, value_name = "REGION")]
    s3_region: Option<String>,
    /// The S3 access key id [default: $AWS_ACCESS_KEY_ID].
    #[arg(long, value_name = "ID")]
    s3_access_key_id: Option<String>,
    /// A file holding the S3 secret access key [default:
    /// $AWS_SECRET_ACCESS_KEY].
    #[arg(long, value_name = "FILE")]
    s3_secret_access_key_file: Option<PathBuf>,
    /// This node's name in a pool [default: made up on the first start and
    /// kept in DIR/.callrec/node].
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// At shutdown, wait this long for the upload queue to empty (what is
    /// left is uploaded after the next start) [default: 30].
    #[arg(long, value_name = "SECS")]
    upload_drain_secs: Option<u64>,
    /// Once every listener is bound, write their addresses to FILE as JSON
    /// (`{"control": "HOST:PORT", "http": "HOST:PORT" or null}`): for
    /// supervisors and tests that start the server on port 0.
    #[arg(long, value_name = "FILE")]
    addresses_file: Option<PathBuf>,
    /// Check the audit log's hash chain and that it ends where the index's
    /// anchor says, print the result and exit (on a stopped node).
    #[arg(long)]
    verify_audit: bool,
    /// Take an audit log that does not match the index's anchor (changed,
    /// cut or added to while the server was stopped) as it is: a line
    /// saying so is logged and audited requests are served again. Keep a
    /// copy of the log as evidence first.
    #[arg(long)]
    audit_accept: bool,
    /// How final recordings are kept: wav (as recorded), opus (Ogg Opus,
    /// voice mode, about 1/5 of a G.711 WAV) or flac (lossless). A pool of
    /// low-priority threads converts each recording once it is final,
    /// checks that it decodes to the recording's length, then removes the
    /// WAV.
    #[arg(long, value_name = "FORMAT", default_value = "wav")]
    archive: ArchiveFormat,
    /// Opus's target for 8 kHz (G.711) recordings, bits a second;
    /// stereo gets 1.5 times it.
    #[arg(long, value_name = "BITS", default_value_t = DEFAULT_NARROWBAND_BITRATE, value_parser = clap::value_parser!(u32).range(6000..=256_000))]
    archive_bitrate_narrowband: u32,
    /// Opus's target for 16 kHz (G.722) recordings, bits a second.
    #[arg(long, value_name = "BITS", default_value_t = DEFAULT_WIDEBAND_BITRATE, value_parser = clap::value_parser!(u32).range(6000..=256_000))]
    archive_bitrate_wideband: u32,
    /// Threads converting recordings to --archive.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    archive_workers: u64,
    /// Keep each recording's WAV beside its archive.
    #[arg(long)]
    keep_wav: bool,
    /// Sign a manifest of each final recording (its files, sizes,
    /// SHA-256, metadata and times) with this Ed25519 private key (PKCS#8
    /// PEM: `openssl genpkey -algorithm ed25519 -out sign.key`); check
    /// them with `record_server verify`.
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// Seal every stored file of each final recording (audio, container,
    /// sidecar) with age to the X25519 recipients in FILE (`age1…` a line,
    /// as `age-keygen -y` prints them): this node needs no private key,
    /// and the standard `age` tool decrypts.
    #[arg(long, value_name = "FILE")]
    seal_to: Option<PathBuf>,
    /// An age identity file (`age-keygen -o FILE`): the API decrypts
    /// sealed recordings with it, on the fly.
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Benchmark baseline: no index (no search, no API).
    #[arg(long, hide = true)]
    no_index: bool,
    /// Benchmark baseline: receive and count RTP, write nothing.
    #[arg(long, hide = true)]
    discard_rtp: bool,
}

/// What record_server does besides serving.
#[derive(clap::Subcommand)]
enum Command {
    /// Take in a phone's own recording files (from its USB drive): each
    /// call's parts (`Record_YYYYMMDD_HHMMSS.wav`, `…_1.wav`, …) joined
    /// into one recording, indexed, archived and uploaded as the flags
    /// before `import` say, on a stopped node (a running one takes
    /// `POST /api/import`). A file imported before is refused.
    Import {
        /// The phone's MAC address.
        #[arg(long, value_name = "MAC")]
        device: String,
        /// The phone's own number.
        #[arg(long, value_name = "NUMBER", default_value = "")]
        number: String,
        /// The other party's number, when known.
        #[arg(long, value_name = "NUMBER", default_value = "")]
        remote_number: String,
        /// The phone's recording files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Change the recipients of every sealed recording in a directory:
    /// each sealed file's header is rewritten (its media is never
    /// decrypted), each sealed sidecar sealed again, each recording signed
    /// again with --sign-key; on a stopped node.
    Reseal {
        /// The recordings directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// An age identity file that opens the recordings.
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
        /// The new recipients (`age1…` a line).
        #[arg(long, value_name = "FILE")]
        seal_to: PathBuf,
        /// Sign each recording again with this Ed25519 key (the headers
        /// change, so the old signatures no longer match).
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
    },
    /// Check signed recordings offline: every manifest's signature, and
    /// every file it lists (size and SHA-256); names every file that
    /// fails, and exits with 1 if any does.
    Verify {
        /// A recordings directory: every manifest under it, and every
        /// sidecar without one.
        #[arg(long, value_name = "DIR", conflicts_with = "manifests")]
        dir: Option<PathBuf>,
        /// Manifests (`NAME.manifest.json`) to check.
        #[arg(value_name = "PATH", required_unless_present = "dir")]
        manifests: Vec<PathBuf>,
        /// The Ed25519 public key (SPKI PEM: `openssl pkey -in sign.key
        /// -pubout -out sign.pub`).
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
    },
}

/// `1234`, `500K`, `20G`, `1T` (powers of 1024; a trailing `B` or `iB` is
/// accepted).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text:?} is not a size (bytes, or a number with K, M, G or T)"))
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The object store of `--store` and the `--s3-*` flags.
fn store_settings(args: &Args) -> Result<Option<StoreSettings>, String> {
    let Some(url) = &args.store else {
        let given = args.s3_endpoint.is_some()
            || args.s3_region.is_some()
            || args.s3_access_key_id.is_some()
            || args.s3_secret_access_key_file.is_some();
        return if given {
            Err("--s3-* flags without --store".into())
        } else {
            Ok(None)
        };
    };
    let mut store = StoreSettings::new(url);
    store.endpoint.clone_from(&args.s3_endpoint);
    store.region.clone_from(&args.s3_region);
    store.access_key_id.clone_from(&args.s3_access_key_id);
    if let Some(path) = &args.s3_secret_access_key_file {
        let secret = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        store.secret_access_key = Some(secret.trim().to_owned());
    }
    Ok(Some(store))
}

fn config_of(args: &Args) -> Result<Config, callrec_server::Error> {
    let mut c = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(v) = args.listen.clone() {
        c.listen = v;
    }
    if let Some(v) = args.rtp_ports.clone() {
        c.rtp_ports = v;
    }
    if let Some(v) = args.dir.clone() {
        c.dir = v;
    }
    if let Some(v) = args.advertise.clone() {
        c.advertise = Some(v);
    }
    if let Some(v) = args.max_sessions {
        tracing::warn!("--max-sessions is now --max-recordings; the old name still works");
        c.max_recordings = v;
    }
    if let Some(v) = args.max_recordings {
        c.max_recordings = v;
    }
    if let Some(v) = args.max_connections_per_ip {
        c.max_connections_per_ip = v;
    }
    if let Some(v) = args.rtp_timeout {
        tracing::warn!("--rtp-timeout is now --silence-log-secs; the old name still works");
        c.silence_log_secs = v;
    }
    if let Some(v) = args.silence_log_secs {
        c.silence_log_secs = v;
    }
    if let Some(v) = args.max_silence {
        c.max_silence_secs = v;
    }
    if let Some(v) = args.format {
        c.format = v;
    }
    if !args.allow.is_empty() {
        c.allow = args.allow.clone();
    }
    if let Some(v) = args.sip.clone() {
        c.sip = Some(v);
    }
    if let Some(v) = args.min_free_mib {
        c.min_free_space = v << 20;
    }
    c.discard_rtp |= args.discard_rtp;
    Ok(c)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("record_server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, Box<dyn core::error::Error>> {
    if let Some(Command::Reseal {
        dir,
        identity,
        seal_to,
        sign_key,
    }) = &args.command
    {
        let done = reseal(dir, identity, seal_to, sign_key.as_deref())?;
        println!(
            "resealed {} file(s) of {} recording(s){}",
            done.files,
            done.recordings,
            if sign_key.is_some() {
                ", signed again"
            } else {
                ""
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(Command::Verify {
        dir,
        manifests,
        public_key,
    }) = &args.command
    {
        let key = read_public_key(public_key)?;
        let targets = dir
            .clone()
            .map_or_else(|| manifests.clone(), |dir| vec![dir]);
        let report = verify_signatures(&targets, &key)?;
        for failure in &report.failures {
            println!("FAILED {failure}");
        }
        println!(
            "{} recording(s) verified, {} failure(s)",
            report.verified,
            report.failures.len()
        );
        return Ok(if report.failures.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let shutdown = shutdown_signal()
        .map_err(|e| format!("cannot install the SIGINT/SIGTERM handlers: {e}"))?;
    let config = config_of(&args)?;
    if let Some(Command::Import {
        device,
        number,
        remote_number,
        files,
    }) = &args.command
    {
        let mut request = ImportRequest::default();
        request.device.clone_from(device);
        request.local_number.clone_from(number);
        request.remote_number.clone_from(remote_number);
        request.files.clone_from(files);
        for imported in import_files(settings_of(&args, &config)?, request).await? {
            println!(
                "imported {} file(s) as recording {} ({:.1} s)",
                imported.files.len(),
                imported.recording_id,
                imported.duration_ms as f64 / 1000.0
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.verify_audit {
        let path = config.dir.join(STATE_DIR).join("audit.jsonl");
        let anchor = callrec_recordings::read_audit_anchor(&settings_of(&args, &config)?)?;
        let report = callrec_recordings::verify_audit(&path, anchor.as_ref())?;
        println!(
            "audit log {}: {} entries, chain intact, {}, head {}",
            path.display(),
            report.entries,
            if report.anchored {
                "ends where the index's anchor says"
            } else {
                "no anchor in the index (its end is not checked)"
            },
            report.head
        );
        return Ok(ExitCode::SUCCESS);
    }
    let node = if args.no_index {
        if args.http.is_some() || args.reindex {
            return Err("--no-index leaves nothing to serve or rebuild (--http, --reindex)".into());
        }
        Node::start_without_index(config).await?
    } else {
        let settings = settings_of(&args, &config)?;
        Node::start(config, settings).await?
    };
    if let Some(http) = node.http_addr() {
        tracing::info!("web page and API on http://{http}/");
    }
    if let Some(sip) = node.sip_addr() {
        tracing::info!("SIPREC recording sessions on sip:{sip} (UDP and TCP)");
    }
    let config = node.config();
    tracing::info!(
        control = %node.control_addr(),
        rtp = %config.rtp_ports,
        dir = %config.dir.display(),
        "record_server listening"
    );
    if let Some(path) = &args.addresses_file {
        write_addresses(path, &node)?;
    }
    shutdown.await;
    let summary = node.shutdown().await?.server;
    tracing::info!(
        connections = summary.connections,
        started = summary.recordings_started,
        finished = summary.recordings_finished,
        refused = summary.refused,
        packets = summary.packets,
        packets_foreign = summary.packets_foreign,
        "record_server stopped; every recording finalized"
    );
    Ok(ExitCode::SUCCESS)
}

/// The recordings service's settings from the flags.
fn settings_of(args: &Args, config: &Config) -> Result<Settings, Box<dyn core::error::Error>> {
    let mut settings = Settings::new(&config.dir);
    settings.retain_days = args.retain_days;
    settings.max_disk_usage = args.max_disk_usage;
    settings.index = args.index.clone();
    settings.node = args.node.clone();
    settings.store = store_settings(args)?;
    settings.http = args.http;
    settings.tokens = args
        .api_tokens
        .as_deref()
        .map(Tokens::from_file)
        .transpose()?;
    settings.http_limits.request_head_timeout =
        core::time::Duration::from_secs(args.http_head_timeout_secs);
    settings.http_limits.max_connections = args.http_max_connections as usize;
    settings.http_limits.max_connections_per_address =
        args.http_max_connections_per_address as usize;
    settings.public_url = args.public_url.clone();
    settings.listen_limits.total = args.max_listeners as usize;
    settings.listen_limits.per_recording = args.max_listeners_per_recording as usize;
    settings.reindex = args.reindex;
    settings.audit_accept = args.audit_accept;
    if let Some(secs) = args.upload_drain_secs {
        settings.upload_drain = core::time::Duration::from_secs(secs);
    }
    let archive = &mut settings.archive;
    archive.format = args.archive;
    archive.narrowband_bitrate = args.archive_bitrate_narrowband;
    archive.wideband_bitrate = args.archive_bitrate_wideband;
    archive.workers = args.archive_workers as usize;
    archive.keep_wav = args.keep_wav;
    settings.sign_key.clone_from(&args.sign_key);
    settings.seal_to.clone_from(&args.seal_to);
    settings.identity.clone_from(&args.identity);
    Ok(settings)
}

/// Writes the node's bound addresses to `path` as JSON (`{"control":
/// "HOST:PORT", "http": "HOST:PORT" or null, "sip": "HOST:PORT" or null}`), whole or not at all: a
/// temporary file renamed over it.
fn write_addresses(path: &std::path::Path, node: &Node) -> Result<(), String> {
    let json = serde_json::json!({
        "control": node.control_addr().to_string(),
        "http": node.http_addr().map(|a| a.to_string()),
        "sip": node.sip_addr().map(|a| a.to_string()),
    });
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, format!("{json}\n"))
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| format!("cannot write the addresses to {}: {e}", path.display()))
}

/// SIGINT or SIGTERM. The handlers are installed here, before the server
/// says it is listening, so a signal that comes right after that line is
/// never the default action (killing the process unfinalized).
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
