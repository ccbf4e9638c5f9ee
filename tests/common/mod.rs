#![allow(dead_code)] // each test binary uses a different subset
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

/// Whether `tool` can be run (its exit status does not matter: `sipp -v`
/// exits 99); panics under `CI=true` when it cannot.
pub(crate) fn have_tool(tool: &str, version_arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(version_arg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required under CI=true (see .ci/run for the Debian packages)"
        );
        eprintln!("skipping: {tool} not installed");
    }
    ok
}
