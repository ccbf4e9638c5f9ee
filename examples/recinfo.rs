//! `recinfo`: show what is in a phone's local recording (the
//! `Record_<time>.wav` container from its USB drive) without reading the
//! frames: codec, rtpLen, increment, dataSize, frames, duration, and whether
//! the header had to be recovered.
//!
//! ```text
//! cargo run --example recinfo -- examples/data/Record_20261122_101500.wav
//! cargo run --example recinfo -- FILE --json
//! cargo run --example recinfo -- FILE --recover   # read a file cut off by a power failure
//! ```
//!
//! A bad file exits with status 1 and the reason on stderr.

use core::num::NonZeroU32;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use callrec::file::{Header, ReadMode, Recovery, inspect_with};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Show the header and duration of a phone's local call recording")]
struct Args {
    /// The recording (`Record_YYYYMMDD_HHMMSS.wav` from the phone's USB drive).
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Trust the body when the header's dataSize disagrees with it (after a
    /// power cut or a pulled drive), and say so.
    #[arg(long)]
    recover: bool,
    /// RTP clock rate in Hz for codecs other than PCMA, PCMU and G722.
    #[arg(long, value_name = "HZ")]
    clock_rate: Option<NonZeroU32>,
    #[command(flatten)]
    header: header_overrides::HeaderFlags,
}

#[path = "shared/header_overrides.rs"]
mod header_overrides;

fn main() -> ExitCode {
    let args = Args::parse();
    let mode = if args.recover {
        ReadMode::Recover
    } else {
        ReadMode::Strict
    };
    let result = File::open(&args.file)
        .map_err(callrec::file::Error::from)
        .and_then(|mut f| inspect_with(&mut f, mode, &args.header.overrides()));
    let (header, recovery) = match result {
        Ok(found) => found,
        Err(e) => {
            eprintln!("recinfo: {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let duration = match args.clock_rate {
        Some(rate) => Some(header.timeline_with_clock(rate).duration()),
        None => header.duration(),
    };
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        writeln!(out, "{}", json(&header, duration, recovery.as_ref()))
    } else {
        print_text(&mut out, &args, &header, duration, recovery.as_ref())
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // `recinfo … | head` closing the pipe early is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("recinfo: writing output: {e}");
            ExitCode::FAILURE
        }
    }
}

fn json(
    header: &Header,
    duration: Option<core::time::Duration>,
    recovery: Option<&Recovery>,
) -> serde_json::Value {
    serde_json::json!({
        "codec": header.codec().as_str(),
        "frame_len": header.rtp_len(),
        "increment": header.increment(),
        "data_size": header.data_size(),
        "frames": header.frame_count(),
        "duration_ms": duration.map(|d| d.as_millis() as u64),
        "recovered": recovery.is_some(),
    })
}

fn print_text(
    out: &mut impl Write,
    args: &Args,
    header: &Header,
    duration: Option<core::time::Duration>,
    recovery: Option<&Recovery>,
) -> std::io::Result<()> {
    writeln!(out, "file:      {}", args.file.display())?;
    writeln!(out, "codec:     {}", header.codec())?;
    writeln!(out, "rtpLen:    {} bytes per frame", header.rtp_len())?;
    writeln!(out, "increment: {} ticks per frame", header.increment())?;
    writeln!(out, "dataSize:  {} bytes", header.data_size())?;
    writeln!(out, "frames:    {}", header.frame_count())?;
    match duration {
        Some(d) => writeln!(out, "duration:  {:.3} s", d.as_secs_f64())?,
        None => writeln!(
            out,
            "duration:  unknown (codec clock rate unknown; pass --clock-rate HZ)"
        )?,
    }
    match recovery {
        Some(r) => writeln!(out, "recovered: yes: {r}"),
        None => writeln!(out, "recovered: no"),
    }
}
