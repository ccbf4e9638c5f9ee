//! Arbitrary packet sequences, timeouts and flushes: the receiver never
//! panics, releases payloads in order, bounds gaps and memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callrec_rtp::fuzzing::check_receiver(data);
});
