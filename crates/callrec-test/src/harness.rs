//! A test harness for test binaries whose tests need programs or servers
//! the machine may lack (sipp, ffmpeg, Garage, PostgreSQL …): such a test
//! shows as **ignored, with the reason** in cargo's summary instead of
//! passing without running. Under `CI=true` a missing one fails the test:
//! `.ci/run` installs them all.
//!
//! A test binary opts in with `harness = false` in its `[[test]]` entry and
//! a `main` that lists its tests:
//!
//! ```no_run
//! use callrec_test::harness::{SIPP, Test, run_tests};
//!
//! fn answers_options() { /* … */ }
//!
//! fn main() -> std::process::ExitCode {
//!     run_tests(vec![Test::new("answers_options", answers_options).needs(&[SIPP])])
//! }
//! ```

use std::process::ExitCode;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// How a [`Need`] is looked for.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// A program that starts as `program arg` (its exit status does not
    /// matter: `sipp -v` exits 99).
    Program(&'static str, &'static str),
    /// A PostgreSQL server installed the Debian way.
    Postgres,
}

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    name: &'static str,
    install: &'static str,
    check: Check,
}

const fn program(name: &'static str, arg: &'static str, install: &'static str) -> Need {
    Need {
        name,
        install,
        check: Check::Program(name, arg),
    }
}

/// sipp, a SIP peer.
pub const SIPP: Need = program("sipp", "-v", "apt-get install sip-tester");
/// tshark, Wireshark's decoder.
pub const TSHARK: Need = program("tshark", "--version", "apt-get install tshark");
/// ffmpeg.
pub const FFMPEG: Need = program("ffmpeg", "-version", "apt-get install ffmpeg");
/// ffprobe.
pub const FFPROBE: Need = program("ffprobe", "-version", "apt-get install ffmpeg");
/// sox.
pub const SOX: Need = program("sox", "--version", "apt-get install sox");
/// soxi.
pub const SOXI: Need = program("soxi", "-V0", "apt-get install sox");
/// Chromium, headless.
pub const CHROMIUM: Need = program("chromium", "--version", "apt-get install chromium");
/// chromedriver, to drive it.
pub const CHROMEDRIVER: Need = program(
    "chromedriver",
    "--version",
    "apt-get install chromium-driver",
);
/// OpenSSL's command line, an independent Ed25519 verifier.
pub const OPENSSL: Need = program("openssl", "version", "apt-get install openssl");
/// `age`, the reference tool of the age encryption format.
pub const AGE: Need = program("age", "--version", "apt-get install age");
/// `prlimit`, to run a program with few file descriptors.
pub const PRLIMIT: Need = program("prlimit", "--version", "apt-get install util-linux");
/// Garage, an S3-compatible store.
pub const GARAGE: Need = program(
    "garage",
    "--version",
    "cargo install garage --locked, as .ci/run does",
);
/// A PostgreSQL server (its programs, run in a temporary cluster).
pub const POSTGRES: Need = Need {
    name: "PostgreSQL",
    install: "apt-get install postgresql",
    check: Check::Postgres,
};

impl Need {
    fn available(&self) -> bool {
        match self.check {
            Check::Program(program, arg) => crate::starts(program, arg),
            Check::Postgres => crate::servers::postgres_installed(),
        }
    }
}

/// One test: its name, its function, and what it needs.
#[derive(Debug, Clone, Copy)]
pub struct Test {
    name: &'static str,
    run: fn(),
    needs: &'static [Need],
}

impl Test {
    /// A test that needs nothing from the machine.
    pub const fn new(name: &'static str, run: fn()) -> Self {
        Self {
            name,
            run,
            needs: &[],
        }
    }

    /// What it needs.
    #[must_use]
    pub const fn needs(mut self, needs: &'static [Need]) -> Self {
        self.needs = needs;
        self
    }
}

/// What of `needs` is missing, as the reason a test is ignored; `Err` under
/// `CI=true`, where a missing need fails the test.
fn missing(needs: &[Need]) -> Result<Option<String>, Failed> {
    let lacking: Vec<&Need> = needs.iter().filter(|n| !n.available()).collect();
    if lacking.is_empty() {
        return Ok(None);
    }
    let list = lacking
        .iter()
        .map(|n| format!("{} ({})", n.name, n.install))
        .collect::<Vec<_>>()
        .join(", ");
    if std::env::var("CI").as_deref() == Ok("true") {
        return Err(format!("needs {list}, which CI=true requires").into());
    }
    Ok(Some(format!("needs {list}")))
}

/// Runs `tests` as cargo's own harness would (the same flags: filters,
/// `--ignored`, `--test-threads` …), each test whose needs are missing
/// ignored with the reason.
pub fn run_tests(tests: Vec<Test>) -> ExitCode {
    let args = Arguments::from_args();
    let trials = tests
        .into_iter()
        .map(|test| {
            Trial::ignorable_test(test.name, move || {
                if let Some(reason) = missing(test.needs)? {
                    return Ok(Completion::ignored_with(reason));
                }
                (test.run)();
                Ok(Completion::Completed)
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}
