//! Any bytes: parsing never panics, and a packet that parses is written
//! and parsed back to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callrec_rtp::fuzzing::check_parse_write_parse(data);
});
