//! `record_server`: a recording server for IP phones' network recording.
//!
//! Phones open a TCP control connection (`cmd=RecordStartRequest&…`), get
//! a UDP port, and stream the call's mixed RTP (PCMA, PCMU or G722) there
//! until they send `RecordStopRequest`. Each recording becomes
//! `DIR/<device>/<YYYY-MM-DD>/<HHMMSS>_<dir>_<remote_number>_<id>.wav`
//! (UTC) with a JSON sidecar of the call's details and RTP statistics.
//!
//! ```text
//! cargo run --release --example record_server
//! cargo run --release --example record_server -- --listen 0.0.0.0:7700 \
//!     --rtp-ports 40000-40999 --dir recordings --format wav
//! ```
//!
//! SIGINT/SIGTERM finalize every open recording before exiting. Logs go to
//! stderr (`RUST_LOG=debug` for more).

use core::net::{IpAddr, SocketAddr};
use core::ops::RangeInclusive;
use core::time::Duration;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

#[path = "server.rs"]
mod server;
use server::{Options, OutputFormat, Server};

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// WAV (A-law/µ-law as received; G.722 decoded to 16 kHz PCM).
    Wav,
    /// The phone's own recording container.
    Rec,
    /// Both, side by side.
    Both,
}

#[derive(Parser)]
#[command(about = "Recording server for IP phones: TCP control, RTP over UDP, WAV files")]
struct Args {
    /// Control address (TCP).
    #[arg(long, default_value_t = Options::default().listen)]
    listen: SocketAddr,
    /// UDP ports for RTP, one per recording.
    #[arg(long, value_name = "LO-HI", default_value = "40000-40999", value_parser = parse_range)]
    rtp_ports: RangeInclusive<u16>,
    /// Where recordings go.
    #[arg(long, default_value = "recordings")]
    dir: PathBuf,
    /// Address to put in `server=` (default: the local address of each
    /// control connection).
    #[arg(long, value_name = "IP")]
    advertise: Option<IpAddr>,
    /// Recordings open at once.
    #[arg(long, value_name = "N", default_value_t = Options::default().max_sessions)]
    max_sessions: usize,
    /// Finalize a recording whose RTP stays silent this long.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    rtp_timeout: u64,
    /// What to write per recording.
    #[arg(long, value_enum, default_value = "wav")]
    format: Format,
    /// Benchmark baseline: receive and count RTP, write nothing.
    #[arg(long, hide = true)]
    discard_rtp: bool,
}

fn parse_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("expected LO-HI, got {s:?}"))?;
    let lo: u16 = lo.parse().map_err(|e| format!("{lo:?}: {e}"))?;
    let hi: u16 = hi.parse().map_err(|e| format!("{hi:?}: {e}"))?;
    if lo == 0 || lo > hi {
        return Err(format!("need 1 <= LO <= HI, got {lo}-{hi}"));
    }
    Ok(lo..=hi)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let options = Options {
        listen: args.listen,
        rtp_ports: args.rtp_ports,
        dir: args.dir,
        advertise: args.advertise,
        max_sessions: args.max_sessions,
        rtp_timeout: Duration::from_secs(args.rtp_timeout.max(1)),
        format: match args.format {
            Format::Wav => OutputFormat::Wav,
            Format::Rec => OutputFormat::Rec,
            Format::Both => OutputFormat::Both,
        },
        discard_rtp: args.discard_rtp,
        ..Options::default()
    };
    let dir = options.dir.clone();
    let ports = options.rtp_ports.clone();
    let server = match Server::bind(options).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("record_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        control = %server.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
        rtp = %format!("{}-{}", ports.start(), ports.end()),
        dir = %dir.display(),
        "record_server listening"
    );
    let counters = server.counters();
    let reports = server.run(shutdown_signal()).await;
    let count = |c: &core::sync::atomic::AtomicU64| c.load(core::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        recordings = reports.len(),
        connections = count(&counters.connections),
        started = count(&counters.recordings_started),
        finished = count(&counters.recordings_finished),
        refused = count(&counters.rejected),
        packets = count(&counters.packets),
        foreign = count(&counters.foreign_packets),
        "record_server stopped; every recording finalized"
    );
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
