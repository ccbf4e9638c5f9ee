//! `include/callrec.h` is what cbindgen makes of this crate today.
//!
//! `CALLREC_BLESS=1 cargo test -p callrec-ffi --test header` rewrites it.

use std::path::Path;

#[test]
fn checked_in_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml parses");
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
