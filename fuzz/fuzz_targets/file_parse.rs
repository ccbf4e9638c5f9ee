//! Whole-buffer parse and streaming reader (reads split at fuzzer-chosen
//! points) must agree on every input, in strict and recover mode.
//!
//! Input: one byte `n`, then `n % 8` split-size bytes, then the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (splits, file) = rest.split_at(usize::from(n % 8).min(rest.len()));
    callrec_file::fuzzing::check_whole_and_streaming_agree(file, splits);
});
