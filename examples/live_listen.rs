//! `live_listen`: supervisors listening to running recordings of a callrec
//! node (`GET /api/recordings/{id}/live`), for load tests: finds the
//! running recordings through the API, opens one listener each on the first
//! N (all on one thread, as a load generator should be), reads every frame
//! until the recordings end, and
//! reports what was heard.
//!
//! ```text
//! cargo run --release --example record_server -- --http 127.0.0.1:8080
//! cargo run --release --example phone_sim -- --calls 100 --seconds 30 &
//! cargo run --release --example live_listen -- --api http://127.0.0.1:8080 --listeners 100
//! ```
//!
//! Exits non-zero when a listener could not connect, failed, or was closed
//! with another code than 1000 (the recording ended).

use core::time::Duration;
use std::process::ExitCode;
use std::time::Instant;

use callrec_phone::listener::{self, CloseCode};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Listen to running recordings of a callrec node, as supervisors do")]
struct Args {
    /// The node's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Listeners to open, one per running recording.
    #[arg(long, default_value_t = 1)]
    listeners: usize,
    /// An API token with the role `listen` (without: a loopback node).
    #[arg(long)]
    token: Option<String>,
    /// How long to wait for enough running recordings.
    #[arg(long, default_value_t = 20)]
    wait_secs: u64,
    /// Hang up after this many seconds [default: listen until each
    /// recording ends].
    #[arg(long)]
    seconds: Option<f64>,
}

/// The ids of up to `n` running recordings, once there are `n` (or the
/// deadline passed).
fn running(args: &Args, auth: &[(&str, &str)]) -> Result<Vec<String>, String> {
    let deadline = Instant::now() + Duration::from_secs(args.wait_secs);
    let url = format!("{}/api/recordings?limit=1000", args.api);
    loop {
        let mut request = ureq::get(&url);
        for (name, value) in auth {
            request = request.header(*name, *value);
        }
        let page: serde_json::Value = request
            .call()
            .map_err(|e| format!("{url}: {e}"))?
            .body_mut()
            .read_json()
            .map_err(|e| format!("{url}: {e}"))?;
        let ids: Vec<String> = page["recordings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["running"] == true)
            .filter_map(|r| r["recording_id"].as_str().map(str::to_owned))
            .take(args.listeners)
            .collect();
        if ids.len() == args.listeners || Instant::now() >= deadline {
            return Ok(ids);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let bearer = args.token.as_ref().map(|t| format!("Bearer {t}"));
    let auth: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("Authorization", b)])
        .unwrap_or_default();
    let ids = match running(&args, &auth) {
        Ok(ids) => ids,
        Err(e) => {
            eprintln!("live_listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if ids.len() < args.listeners {
        eprintln!(
            "live_listen: only {} of {} recordings running after {} s",
            ids.len(),
            args.listeners,
            args.wait_secs
        );
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("live_listen: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop_after = args.seconds.map(Duration::from_secs_f64);
    let outcomes = runtime.block_on(listener::listen_all(&args.api, &ids, &auth, stop_after));
    let mut frames = Vec::new();
    let mut failed = 0;
    for outcome in outcomes {
        match outcome.end {
            Ok(Some(CloseCode::Normal)) => frames.push(outcome.frames as usize),
            // Hung up at --seconds, having heard something.
            Ok(None) if stop_after.is_some() && outcome.frames > 0 => {
                frames.push(outcome.frames as usize);
            }
            other => {
                failed += 1;
                eprintln!(
                    "live_listen: listener of {} ended with {other:?}",
                    outcome.id
                );
            }
        }
    }
    let total: usize = frames.iter().sum();
    println!(
        "live_listen: {} listeners heard their recordings to the end (or to --seconds), {failed} failed; {total} frames \
         ({} to {} per listener)",
        frames.len(),
        frames.iter().min().unwrap_or(&0),
        frames.iter().max().unwrap_or(&0)
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
