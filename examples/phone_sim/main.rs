//! `phone_sim`: acts as an IP phone recording calls on a recording server.
//!
//! ```text
//! cargo run --release --example phone_sim -- --server 127.0.0.1:7700 --tone 440 --seconds 5
//! cargo run --release --example phone_sim -- --server 127.0.0.1:7700 --codec G722 speech.wav
//! cargo run --release --example phone_sim -- --server 127.0.0.1:7700 --calls 100 --speed 4
//! ```
//!
//! Sends `RecordStartRequest`, streams the audio as 20 ms RTP packets to
//! the port the server allocated (paced in real time, or `--speed N` times
//! faster), sends `RecordStopRequest` and prints the result. With
//! `--calls N` it runs N calls at once and prints a summary.

use core::net::SocketAddr;
use core::time::Duration;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use callrec::audio::wav::WavFile;
use callrec::control::{Codec, Direction, Mac, SessionId};
use clap::Parser;
use rand_core::{OsRng, TryRngCore};

use callrec_phone as phone;
use phone::{CallOptions, LocalOptions, record_local, run_call};

#[derive(Parser)]
#[command(about = "Simulate IP phones recording calls on a recording server")]
struct Args {
    /// The recording server's control address; repeated, the calls are
    /// spread over the servers in turn (a pool of nodes).
    #[arg(long, default_value = "127.0.0.1:7700")]
    server: Vec<SocketAddr>,
    /// The phone's MAC address.
    #[arg(long, default_value = "001565aabbcc")]
    device: Mac,
    #[arg(long, default_value = "1009")]
    local_number: String,
    #[arg(long, default_value = "Alice")]
    local_name: String,
    #[arg(long, default_value = "1010")]
    remote_number: String,
    #[arg(long, default_value = "Bob")]
    remote_name: String,
    /// Call direction: in or out.
    #[arg(long, default_value = "in")]
    dir: Direction,
    /// PCMA, PCMU or G722.
    #[arg(long, default_value = "PCMA")]
    codec: Codec,
    /// Audio to send: a WAV file (PCM16, A-law or µ-law, mono; 8 kHz for
    /// G.711, 16 kHz for G.722). Without it, a tone.
    wav: Option<PathBuf>,
    /// Tone frequency when no WAV is given.
    #[arg(long, value_name = "HZ", default_value_t = 440.0)]
    tone: f64,
    /// Tone length.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Pace: 1 is real time, 4 four times faster, 0 as fast as possible.
    /// A record_server keeps no more audio than the call's wall-clock time
    /// plus its `max_lead_ms` (1 s by default) and drops the rest (counted
    /// as `packets_ahead`): raise that setting to record faster than real
    /// time.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Calls to run at once.
    #[arg(long, default_value_t = 1)]
    calls: usize,
    /// Record locally into DIR (as onto the phone's USB drive) instead of
    /// on a server: the audio is the local side, mixed with a remote tone.
    #[arg(long, value_name = "DIR")]
    local: Option<PathBuf>,
    /// Remote party's tone for `--local`.
    #[arg(long, value_name = "HZ", default_value_t = 660.0)]
    remote_tone: f64,
    /// Largest recording file for `--local`, header included; longer calls
    /// continue in `Record_<time>_1.wav`, ….
    #[arg(long, value_name = "BYTES")]
    max_file_size: Option<u64>,
    /// Pause a `--local` recording this many seconds into the call.
    #[arg(long, value_name = "SECS")]
    pause_at: Option<f64>,
    /// Resume it at this many seconds.
    #[arg(long, value_name = "SECS")]
    resume_at: Option<f64>,
}

fn load_audio(args: &Args) -> Result<Vec<i16>, String> {
    let rate = if args.codec == Codec::G722 {
        16000
    } else {
        8000
    };
    match &args.wav {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let wav = WavFile::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            let spec = wav.spec();
            if spec.sample_rate() != rate || spec.channels() != 1 {
                return Err(format!(
                    "{}: {spec}; {} needs mono at {rate} Hz",
                    path.display(),
                    args.codec
                ));
            }
            Ok(wav.samples().collect())
        }
        None => {
            let n = (args.seconds.max(0.0) * f64::from(rate)) as usize;
            Ok((0..n)
                .map(|i| {
                    let t = i as f64 / f64::from(rate);
                    (10000.0 * (core::f64::consts::TAU * args.tone * t).sin()) as i16
                })
                .collect())
        }
    }
}

fn random_id() -> SessionId {
    let mut bytes = [0u8; 16];
    OsRng.try_fill_bytes(&mut bytes).expect("OS random numbers");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    SessionId::new(hex).expect("32 hex digits are a valid id")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let audio = match load_audio(&args) {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("phone_sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = &args.local {
        return local(&args, dir, &audio);
    }
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..args.calls.max(1) {
        let opts = CallOptions {
            local_number: args.local_number.clone(),
            local_name: args.local_name.clone(),
            remote_number: if args.calls > 1 {
                format!("{}{n:04}", args.remote_number)
            } else {
                args.remote_number.clone()
            },
            remote_name: args.remote_name.clone(),
            dir: args.dir,
            speed: args.speed,
            ..CallOptions::new(
                args.server[n % args.server.len()],
                random_id(),
                args.device,
                args.codec,
                audio.clone(),
            )
        };
        calls.spawn(async move { (opts.id.clone(), run_call(opts).await) });
    }
    let mut failed = 0;
    let mut packets = 0;
    let mut starts = Vec::new();
    let mut stops = Vec::new();
    while let Some(joined) = calls.join_next().await {
        let Ok((id, result)) = joined else {
            failed += 1;
            continue;
        };
        match result {
            Ok(r) => {
                packets += r.packets_sent;
                starts.push(r.start_latency);
                stops.extend(r.stop_latency);
                if args.calls <= 1 {
                    println!(
                        "call {id}: RTP to {}, {} packets sent, start {:.1} ms, stop {:.1} ms, result {:?}",
                        r.target,
                        r.packets_sent,
                        r.start_latency.as_secs_f64() * 1e3,
                        r.stop_latency.unwrap_or_default().as_secs_f64() * 1e3,
                        r.stop
                    );
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("call {id}: {e}");
            }
        }
    }
    starts.sort();
    stops.sort();
    if args.calls > 1 {
        println!(
            "{} calls: {} ok, {failed} failed; {packets} packets sent; start latency p50 {:.1} ms p99 {:.1} ms; stop latency p50 {:.1} ms p99 {:.1} ms",
            args.calls,
            args.calls - failed,
            percentile(&starts, 0.5).as_secs_f64() * 1e3,
            percentile(&starts, 0.99).as_secs_f64() * 1e3,
            percentile(&stops, 0.5).as_secs_f64() * 1e3,
            percentile(&stops, 0.99).as_secs_f64() * 1e3,
        );
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn local(args: &Args, dir: &std::path::Path, audio: &[i16]) -> ExitCode {
    let rate = if args.codec == Codec::G722 {
        16000.0
    } else {
        8000.0
    };
    let remote: Vec<i16> = (0..audio.len())
        .map(|i| {
            (6000.0 * (core::f64::consts::TAU * args.remote_tone * i as f64 / rate).sin()) as i16
        })
        .collect();
    let secs = |s: Option<f64>| s.map(|s| Duration::from_secs_f64(s.max(0.0)));
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let opts = LocalOptions {
        dir: dir.to_owned(),
        codec: args.codec,
        local: audio.to_vec(),
        remote,
        max_file_size: args.max_file_size,
        pause_at: secs(args.pause_at),
        resume_at: secs(args.resume_at),
        start_unix_seconds: start,
    };
    match record_local(&opts) {
        Ok(files) => {
            for f in files {
                println!(
                    "{}: {} frames, {:.3} s",
                    dir.join(&f.name).display(),
                    f.header.frame_count(),
                    f.header.duration().unwrap_or_default().as_secs_f64()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("phone_sim: {e}");
            ExitCode::FAILURE
        }
    }
}
