//! Any bytes: the SIP parser never panics; a request that parses gets a
//! reply that parses with the same Call-ID, CSeq and Via headers; the
//! stream framer never panics and frames within the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callrec_sip::fuzzing::check_parse_reply_parse(data);
    callrec_sip::fuzzing::check_frame(data);
});
