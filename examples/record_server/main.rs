//! `record_server`: the recording server for IP phones' network recording,
//! a thin program over the `callrec-server` crate (flags or a TOML file →
//! `Config` → `Server::run`).
//!
//! Phones open a TCP control connection (`cmd=RecordStartRequest&…`), get
//! a UDP port, and stream the call's mixed RTP (PCMA, PCMU or G722) there
//! until they send `RecordStopRequest` or the connection drops. Each
//! recording becomes
//! `DIR/<device>/<YYYY-MM-DD>/<HHMMSS>_<dir>_<remote_number>_<id>.wav`
//! (UTC) with a JSON sidecar of the call's details and RTP statistics.
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

use callrec_server::{Config, OutputFormat, PortRange, Server};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "record_server",
    version,
    about = "Recording server for IP phones: TCP control, RTP over UDP, WAV files"
)]
struct Args {
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
    max_sessions: Option<usize>,
    /// Control connections open at once from one address [default: 256].
    #[arg(long, value_name = "N")]
    max_connections_per_ip: Option<usize>,
    /// Log a recording's RTP silence after this long; the recording goes on
    /// until Stop or the connection drops [default: 30].
    #[arg(long, value_name = "SECS")]
    rtp_timeout: Option<u64>,
    /// Longest silence kept as real time [default: 600].
    #[arg(long, value_name = "SECS")]
    max_silence: Option<u64>,
    /// What to write per recording: wav, rec or both [default: wav].
    #[arg(long)]
    format: Option<OutputFormat>,
    /// Phones allowed to record, CIDR (repeatable) [default: all].
    #[arg(long, value_name = "CIDR")]
    allow: Vec<ipnet::IpNet>,
    /// Refuse new calls below this much free space, in MiB [default: 256].
    #[arg(long, value_name = "MIB")]
    min_free_mib: Option<u64>,
    /// Log format.
    #[arg(long, value_name = "text|json", default_value = "text")]
    log_format: LogFormat,
    /// Benchmark baseline: receive and count RTP, write nothing.
    #[arg(long, hide = true)]
    discard_rtp: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn config_of(args: Args) -> Result<Config, callrec_server::Error> {
    let mut c = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(v) = args.listen {
        c.listen = v;
    }
    if let Some(v) = args.rtp_ports {
        c.rtp_ports = v;
    }
    if let Some(v) = args.dir {
        c.dir = v;
    }
    if let Some(v) = args.advertise {
        c.advertise = Some(v);
    }
    if let Some(v) = args.max_sessions {
        c.max_sessions = v;
    }
    if let Some(v) = args.max_connections_per_ip {
        c.max_connections_per_ip = v;
    }
    if let Some(v) = args.rtp_timeout {
        c.silence_log_secs = v;
    }
    if let Some(v) = args.max_silence {
        c.max_silence_secs = v;
    }
    if let Some(v) = args.format {
        c.format = v;
    }
    if !args.allow.is_empty() {
        c.allow = args.allow;
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
    let shutdown = match shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(e) => {
            eprintln!("record_server: cannot install the SIGINT/SIGTERM handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match config_of(args) {
        Ok(config) => Server::bind(config).await,
        Err(e) => Err(e),
    };
    let server = match server {
        Ok(server) => server,
        Err(e) => {
            eprintln!("record_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = server.config();
    tracing::info!(
        control = %server.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
        rtp = %config.rtp_ports,
        dir = %config.dir.display(),
        "record_server listening"
    );
    let summary = server.run(shutdown).await;
    tracing::info!(
        connections = summary.connections,
        started = summary.recordings_started,
        finished = summary.recordings_finished,
        refused = summary.refused,
        packets = summary.packets,
        foreign = summary.foreign_packets,
        "record_server stopped; every recording finalized"
    );
    ExitCode::SUCCESS
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
