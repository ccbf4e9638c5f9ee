//! Helpers shared by the tests that run example binaries.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The path of the example `name`, which `cargo test` builds next to the
/// test binaries' directory.
pub(crate) fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

/// Runs the example `name` to completion.
pub(crate) fn run_example(name: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(example_path(name))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap()
}

/// The bundled sample recording: 3 s of PCMA.
pub(crate) const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/data/Record_20261122_101500.wav"
);
