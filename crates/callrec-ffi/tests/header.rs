//! `include/callrec.h` is what cbindgen makes of this crate today.
//!
//! `CALLREC_BLESS=1 cargo test -p callrec-ffi --test header` rewrites it.

use std::path::Path;

#[test]
fn checked_in_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = crate_dir.join("include/callrec.h");
    if std::env::var_os("CALLREC_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("include/callrec.h is writable");
        return;
    }
    let checked_in = std::fs::read(&path).expect("include/callrec.h exists");
    assert!(
        checked_in == generated,
        "{} is out of date: run CALLREC_BLESS=1 cargo test -p callrec-ffi --test header",
        path.display()
    );
}

/// The C suite (tests/c/test_callrec.c, run by `.ci/run` under ASan, UBSan
/// and valgrind) calls every function the header declares.
#[test]
fn c_suite_calls_every_function() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(crate_dir.join("include/callrec.h")).unwrap();
    let suite = std::fs::read_to_string(crate_dir.join("tests/c/test_callrec.c")).unwrap();
    let functions: Vec<&str> = header
        .lines()
        .filter(|l| {
            l.starts_with("callrec_status ")
                || l.starts_with("void ")
                || l.starts_with("const char *")
        })
        .filter_map(|l| l.split('(').next()?.split([' ', '*']).next_back())
        .collect();
    assert!(functions.len() >= 60, "found only {functions:?}");
    let missing: Vec<_> = functions
        .iter()
        .filter(|f| !suite.contains(&format!("{f}(")))
        .collect();
    assert!(missing.is_empty(), "the C suite never calls {missing:?}");
}
