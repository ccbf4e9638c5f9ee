//! `rec2wav`: convert a phone's local recording (the `Record_<time>.wav`
//! container) into a WAV file every player opens.
//!
//! ```text
//! cargo run --example rec2wav -- IN OUT            # PCMA/PCMU copied into an A-law/µ-law WAV
//! cargo run --example rec2wav -- IN OUT --pcm      # decoded to 16-bit PCM
//! cargo run --example rec2wav -- IN OUT --recover  # a file whose header was never patched
//! ```
//!
//! G.722 recordings always become 16-bit PCM at 16 kHz. A bad recording
//! exits with status 1 and the reason on stderr; the frames before the bad
//! spot are kept in OUT, which is a finalized, playable WAV.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

use callrec::audio::convert::{WavOutput, recording_to_wav};
use callrec::file::{ReadMode, Reader};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Convert a phone's local call recording into a WAV file")]
struct Args {
    /// The recording (`Record_YYYYMMDD_HHMMSS.wav` from the phone's USB drive).
    input: PathBuf,
    /// The WAV file to write (replaced if it exists, but never the input).
    /// Written beside itself as `OUTPUT.partial` and renamed when complete,
    /// so a failed conversion leaves nothing behind.
    output: PathBuf,
    /// Decode G.711 to 16-bit PCM instead of copying it into an A-law/µ-law WAV.
    #[arg(long)]
    pcm: bool,
    /// Trust the body when the header's dataSize disagrees with it (after a
    /// power cut or a pulled drive), and say so.
    #[arg(long)]
    recover: bool,
    #[command(flatten)]
    header: header_overrides::HeaderFlags,
}

#[path = "shared/header_overrides.rs"]
mod header_overrides;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rec2wav: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn core::error::Error>> {
    let input = BufReader::new(
        File::open(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?,
    );
    let mode = if args.recover {
        ReadMode::Recover
    } else {
        ReadMode::Strict
    };
    let mut reader = Reader::with_overrides(input, mode, &args.header.overrides())
        .map_err(|e| format!("{}: {e}", args.input.display()))?;
    // The same file under another name (a link, `./x`) is still the input.
    if let Ok(out) = std::fs::canonicalize(&args.output) {
        if std::fs::canonicalize(&args.input).is_ok_and(|input| input == out) {
            return Err(format!(
                "{}: refusing to overwrite the recording being converted",
                args.output.display()
            )
            .into());
        }
    }
    let mut partial = args.output.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = convert(args, &mut reader, &partial);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        let hint = if args.recover {
            ""
        } else {
            " (nothing written; --recover converts what is whole)"
        };
        return Err(format!("{e}{hint}").into());
    }
    Ok(())
}

fn convert(
    args: &Args,
    reader: &mut Reader<BufReader<File>>,
    partial: &std::path::Path,
) -> Result<(), Box<dyn core::error::Error>> {
    let output =
        BufWriter::new(File::create(partial).map_err(|e| format!("{}: {e}", partial.display()))?);
    let mode = if args.pcm {
        WavOutput::Pcm16
    } else {
        WavOutput::AsRecorded
    };
    let codec = reader.header().codec().as_str().to_owned();
    let (written, summary) = recording_to_wav(reader, output, mode)
        .map_err(|e| format!("{}: {e}", args.input.display()))?;
    let file = written
        .into_inner()
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    file.sync_all()
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    std::fs::rename(partial, &args.output)
        .map_err(|e| format!("{}: {e}", args.output.display()))?;
    println!(
        "{} ({codec}, {} frames) -> {} ({}, {:.3} s)",
        args.input.display(),
        summary.frames,
        args.output.display(),
        summary.spec,
        summary.duration.as_secs_f64()
    );
    if let Some(r) = summary.recovery {
        println!("recovered: {r}");
    }
    Ok(())
}
