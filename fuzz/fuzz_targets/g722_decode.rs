//! Any bytes as G.722 codes: decoding never panics, and decoding in two
//! calls gives the same samples as in one.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callrec_audio::fuzzing::g722_decode(data);
});
