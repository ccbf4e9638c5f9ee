//! The fuzz target's checks on its seed corpus and on random input, so
//! they run in every `cargo test` (the fuzzer itself needs nightly).

use proptest::prelude::*;

#[test]
fn seeds() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/corpus/recordings_inputs"
    );
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        callrec_recordings::fuzzing::check_inputs(&data);
        n += 1;
    }
    assert!(n >= 8, "{n} seeds");
}

proptest! {
    #[test]
    fn random_input(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        callrec_recordings::fuzzing::check_inputs(&data);
    }

    #[test]
    fn random_text(text in "\\PC{0,120}") {
        callrec_recordings::fuzzing::check_inputs(text.as_bytes());
    }
}
