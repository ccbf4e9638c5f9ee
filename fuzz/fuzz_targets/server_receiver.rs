//! The RTP receiver with the recording server's own settings: output time
//! never exceeds input wall-clock time (plus the server's lead).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callrec_server::fuzzing::check_receiver_with_server_settings(data);
});
