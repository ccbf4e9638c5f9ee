//! `siprec_sim`: acts as a PBX or SBC forking calls to a SIPREC recording
//! server (RFC 7866): each session is an INVITE with a two-stream SDP offer
//! and RFC 7865 metadata (Alice and Bob), a tone per stream in real time,
//! then BYE.
//!
//! ```text
//! cargo run --release --example record_server -- --sip 127.0.0.1:5060
//! cargo run --release --example siprec_sim -- --server 127.0.0.1:5060 --seconds 5
//! cargo run --release --example siprec_sim -- --server 127.0.0.1:5060 --sessions 200 --seconds 10
//! ```
//!
//! Prints how many sessions completed and why the others failed; exits
//! non-zero when any failed.

use core::net::SocketAddr;
use std::process::ExitCode;

use callrec_phone::siprec::{ALICE_AND_BOB, run_sessions, two_party_session};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Simulate a SIPREC recording client (a PBX or SBC) against a recording server")]
struct Args {
    /// The recording server's SIP address (UDP).
    #[arg(long, default_value = "127.0.0.1:5060")]
    server: SocketAddr,
    /// Sessions at once (each two streams, from its own numbers
    /// +49301NNNNN and +49302NNNNN); 1: one session as Alice (+4930111)
    /// and Bob (+4930222).
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Length of each session.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.sessions <= 1 {
        let call_id = format!("siprec-sim-{}@127.0.0.1", std::process::id());
        return match two_party_session(args.server, &call_id, ALICE_AND_BOB, args.seconds) {
            Ok(()) => {
                println!("session {call_id}: recorded {} s", args.seconds);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("siprec_sim: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let summary = run_sessions(args.server, args.sessions, args.seconds);
    println!(
        "sessions: {} completed, {} failed, in {:.1} s",
        summary.completed,
        summary.failed.len(),
        summary.elapsed.as_secs_f64()
    );
    for e in summary.failed.iter().take(10) {
        eprintln!("  failed: {e}");
    }
    if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
