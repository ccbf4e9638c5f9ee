//! A single message: parse → encode → parse gives the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callrec_control::fuzzing::check_message_round_trip(data);
});
