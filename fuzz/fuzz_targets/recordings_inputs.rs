//! Everything the recordings service parses from outside: search query
//! strings, times, cursors, HTTP ranges, the tokens file, audit-log lines,
//! WAV headers seen as PCM16.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callrec_recordings::fuzzing::check_inputs(data);
});
