//! The fuzz checks on their committed seeds and on random input, so
//! `cargo test` exercises what `cargo fuzz` explores.

use proptest::prelude::*;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

#[test]
fn session_seeds() {
    for seed in seeds("server_session") {
        // Each seed reaches the files: calls start, get audio, finish.
        assert!(callrec_server::fuzzing::check_session(&seed) > 0);
    }
}

#[test]
fn receiver_seeds() {
    for seed in seeds("server_receiver") {
        callrec_server::fuzzing::check_receiver_with_server_settings(&seed);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_session_input(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = callrec_server::fuzzing::check_session(&data);
    }

    #[test]
    fn any_receiver_input(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        callrec_server::fuzzing::check_receiver_with_server_settings(&data);
    }
}
