//! The server's session logic: control bytes, canned starts and stops, RTP
//! from the phone and from strangers, time, the connection's end and
//! server-ended calls, interleaved. Nothing panics; every finished
//! recording parses, is never longer than the call's wall-clock time, and
//! never holds audio from another address.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = callrec_server::fuzzing::check_session(data);
});
