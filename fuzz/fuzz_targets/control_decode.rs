//! An arbitrary byte stream decodes to the same messages and errors however
//! it is split, and the splitter's buffer stays bounded.
//!
//! Input: byte `n`, byte `m`, then `n % 8` split-size bytes, then the
//! stream. The message limit is `m + 1` bytes, or the 4 KiB default when
//! `m` is 255.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [n, m, rest @ ..] = data else {
        return;
    };
    let (splits, stream) = rest.split_at(usize::from(n % 8).min(rest.len()));
    let max = match m {
        255 => callrec_control::DEFAULT_MAX_MESSAGE_LEN,
        m => usize::from(*m) + 1,
    };
    callrec_control::fuzzing::check_split_independent(stream, splits, max);
});
