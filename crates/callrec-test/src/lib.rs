//! Helpers shared by callrec's tests and benches; not published. Only ever
//! a dev-dependency, so it uses `std` even where the crate under test is
//! `no_std`.
#![forbid(unsafe_code)]

use std::process::{Command, Stdio};

use rand_core::RngCore;

pub mod harness;
pub mod servers;

/// Whether the external `tool` (ffmpeg, sox, sipp, tshark, ...) can be
/// started, tried as `tool version_arg`; its exit status does not matter
/// (`sipp -v` exits 99). When it cannot, interop tests skip, except under
/// `CI=true`, where a missing tool is a failure: `.ci/run` installs them.
///
/// # Panics
/// Under `CI=true` when the tool cannot be started.
pub fn have_tool(tool: &str, version_arg: &str) -> bool {
    let ok = starts(tool, version_arg);
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required under CI=true (see .ci/run for the Debian packages)"
        );
        eprintln!("skipping: {tool} not installed");
    }
    ok
}

/// Whether `program arg` can be started (its exit status does not matter).
pub(crate) fn starts(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// SplitMix64: a tiny, deterministic RNG, so tests that draw SSRCs,
/// branches or session ids give the same result on every run.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl RngCore for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dst);
    }
}

/// Asks `probe` every 20 ms until it gives a value or `timeout` has passed:
/// the one way tests wait for something another thread or process does
/// (never a fixed sleep).
///
/// # Panics
/// When the time is up, naming `what` was waited for.
pub fn poll_until<T>(
    what: &str,
    timeout: core::time::Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited {timeout:?} for {what}"
        );
        std::thread::sleep(core::time::Duration::from_millis(20));
    }
}

/// [`poll_until`] for a condition.
///
/// # Panics
/// When the time is up, naming `what` was waited for.
pub fn wait_until(what: &str, timeout: core::time::Duration, mut done: impl FnMut() -> bool) {
    poll_until(what, timeout, || done().then_some(()));
}

/// Every file below `dir`, in subdirectories too (none when it cannot be
/// read).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_not_constant() {
        let (mut a, mut b) = (SplitMix64(5), SplitMix64(5));
        let xs: [u64; 4] = core::array::from_fn(|_| a.next_u64());
        let ys: [u64; 4] = core::array::from_fn(|_| b.next_u64());
        assert_eq!(xs, ys);
        assert!(xs.windows(2).all(|w| w[0] != w[1]));
    }
}
