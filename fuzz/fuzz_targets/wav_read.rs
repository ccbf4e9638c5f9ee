//! Any bytes as a WAV file (chunk sizes past the end, odd sizes, missing
//! `fmt `, …): the header parser and both read modes never panic, and what
//! strict mode accepts, recover mode accepts identically.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callrec_audio::fuzzing::wav_read(data);
});
