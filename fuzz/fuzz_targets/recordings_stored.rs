//! What the recordings service reads back from its storage or an import:
//! archives (Ogg Opus, FLAC), sealed files' age headers, phone recording
//! file names, WAVs to be archived.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callrec_recordings::fuzzing::check_stored(data);
});
