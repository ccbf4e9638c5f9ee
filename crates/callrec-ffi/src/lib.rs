//! The callrec crates as a C library.
//!
//! Phone firmware written in C links `libcallrec_ffi.a` (or `.so`) and
//! includes `include/callrec.h`, generated from this crate by cbindgen. The
//! API covers what a phone does when it records a call:
//!
//! - the local container (`callrec_recorder_*`: naming, rotation, the
//!   free-space check, pause/resume; `callrec_header_*`,
//!   `callrec_recording_*`, `callrec_reader_*`, `callrec_file_*`: parse,
//!   inspect, recover and iterate existing files);
//! - RTP (`callrec_packetizer_*` into caller buffers, `callrec_rtp_parse`);
//! - SIP (`callrec_sip_record_info_write`, `callrec_sip_response_parse`,
//!   `callrec_url_record_request`, `callrec_http_status_parse`);
//! - the network recording control protocol (`callrec_control_message_*`
//!   and the phone's session state machine, `callrec_phone_session_*`, with
//!   time passed in as milliseconds);
//! - G.711, G.722 and the mixer (`callrec_g711_*`, `callrec_g722_*`,
//!   `callrec_mix_*`).
//!
//! # Rules of the boundary
//! - Every function returns a status: [`CALLREC_OK`] (0), [`CALLREC_NONE`]
//!   (1, "nothing": no event, no more frames) or a negative error code.
//!   After an error, [`callrec_last_error`] gives the message, naming the
//!   value that was wrong.
//! - Objects with state are opaque handles made by `*_new` / `*_open` and
//!   released by `*_free`; everything else goes through caller-provided
//!   buffers and plain structs.
//! - NULL pointers and buffers too small are errors ([`CALLREC_ERR_NULL`],
//!   [`CALLREC_ERR_BUFFER_TOO_SMALL`]), never crashes; a panic (a bug) is
//!   caught and returned as [`CALLREC_ERR_PANIC`]; nothing unwinds into C.
//! - The per-packet calls (`callrec_packetizer_packetize*`,
//!   `callrec_rtp_parse`, `callrec_recorder_write_frame`, the codecs and the
//!   mixer) do not allocate, except to record an error's message.
//! - Handles are `Send` but not `Sync`: a handle may move between threads
//!   but must not be used by two threads at once. Functions without a
//!   handle are thread-safe. The last error is per thread.
//!
//! The Rust API of this crate is the C API (its functions are `unsafe` and
//! take raw pointers); Rust programs use the protocol crates directly. See
//! `docs/c-api.md` for building, linking, ownership and a complete example.
//!
//! ```
//! use callrec_ffi::*;
//!
//! // Encode 20 ms of A-law silence and packetize it, as C would.
//! let pcm = [0i16; 160];
//! let mut frame = [0u8; 160];
//! let mut written = 0usize;
//! // SAFETY: every pointer is to a live local of the length given.
//! let status = unsafe {
//!     callrec_g711_encode(CALLREC_LAW_ALAW, pcm.as_ptr(), pcm.len(), frame.as_mut_ptr(),
//!                         frame.len(), &mut written)
//! };
//! assert_eq!((status, written), (CALLREC_OK, 160));
//!
//! let mut config = callrec_packetizer_config::default();
//! // SAFETY: `config` is a live local.
//! unsafe { callrec_packetizer_config_init(&mut config, 8) };
//! let mut packetizer = core::ptr::null_mut();
//! // SAFETY: `config` and `packetizer` are live locals.
//! assert_eq!(unsafe { callrec_packetizer_new(&config, &mut packetizer) }, CALLREC_OK);
//! let mut packet = [0u8; 1500];
//! // SAFETY: the handle was just made; the buffers are live locals.
//! let status = unsafe {
//!     callrec_packetizer_packetize(packetizer, frame.as_ptr(), frame.len(), 160,
//!                                  packet.as_mut_ptr(), packet.len(), &mut written)
//! };
//! assert_eq!((status, written), (CALLREC_OK, 172));
//! // SAFETY: made by callrec_packetizer_new, freed once.
//! unsafe { callrec_packetizer_free(packetizer) };
//! ```

// `unsafe` is allowed in this crate only; `unsafe_op_in_unsafe_fn`,
// `undocumented_unsafe_blocks` and `multiple_unsafe_ops_per_block` make
// every unsafe operation its own block with a `// SAFETY:` comment.
#![allow(non_camel_case_types)]

mod abi;
mod audio;
mod control;
mod file;
mod rtp;
mod sip;

use core::ffi::c_char;

pub use audio::*;
pub use control::*;
pub use file::*;
pub use rtp::*;
pub use sip::*;

/// What a call returns: [`CALLREC_OK`], [`CALLREC_NONE`] or a negative
/// `CALLREC_ERR_*` code.
pub type callrec_status = i32;

/// Done.
pub const CALLREC_OK: callrec_status = 0;
/// Nothing to report (no event, no packet to send, no more frames); not an
/// error.
pub const CALLREC_NONE: callrec_status = 1;
/// A required pointer was NULL.
pub const CALLREC_ERR_NULL: callrec_status = -1;
/// An output buffer is too small; nothing was written and no state changed.
pub const CALLREC_ERR_BUFFER_TOO_SMALL: callrec_status = -2;
/// An argument is out of range (a codec number, a length, text that is not
/// UTF-8 or breaks a field rule).
pub const CALLREC_ERR_ARGUMENT: callrec_status = -3;
/// Input bytes do not form what was expected (a header, a packet, a
/// message); the message says what is wrong.
pub const CALLREC_ERR_PARSE: callrec_status = -4;
/// The call does not fit the object's state (a frame while not recording,
/// stop when not started).
pub const CALLREC_ERR_STATE: callrec_status = -5;
/// The file system failed; the message names the path and the reason.
pub const CALLREC_ERR_IO: callrec_status = -6;
/// Free space is below the recorder's threshold; no file was opened.
pub const CALLREC_ERR_STORAGE_FULL: callrec_status = -7;
/// Writing failed mid-recording (drive full or pulled): the recording was
/// stopped and its files finished up to the last whole frame.
pub const CALLREC_ERR_INTERRUPTED: callrec_status = -8;
/// A bug in callrec was caught at the boundary (a Rust panic); the message
/// says where. The handle involved should be freed.
pub const CALLREC_ERR_PANIC: callrec_status = -100;

/// The message of the last error on this thread, NUL-terminated UTF-8,
/// never NULL (empty before the first error).
///
/// The pointer stays valid until the next failing call on this thread;
/// copy the text to keep it. Successful calls leave it as it is.
#[unsafe(no_mangle)]
pub extern "C" fn callrec_last_error() -> *const c_char {
    abi::last_error()
}

/// A static, NUL-terminated name of a status code
/// (`"CALLREC_ERR_BUFFER_TOO_SMALL"`), or `"unknown status"`.
#[unsafe(no_mangle)]
pub extern "C" fn callrec_status_str(status: callrec_status) -> *const c_char {
    let name: &'static core::ffi::CStr = match status {
        CALLREC_OK => c"CALLREC_OK",
        CALLREC_NONE => c"CALLREC_NONE",
        CALLREC_ERR_NULL => c"CALLREC_ERR_NULL",
        CALLREC_ERR_BUFFER_TOO_SMALL => c"CALLREC_ERR_BUFFER_TOO_SMALL",
        CALLREC_ERR_ARGUMENT => c"CALLREC_ERR_ARGUMENT",
        CALLREC_ERR_PARSE => c"CALLREC_ERR_PARSE",
        CALLREC_ERR_STATE => c"CALLREC_ERR_STATE",
        CALLREC_ERR_IO => c"CALLREC_ERR_IO",
        CALLREC_ERR_STORAGE_FULL => c"CALLREC_ERR_STORAGE_FULL",
        CALLREC_ERR_INTERRUPTED => c"CALLREC_ERR_INTERRUPTED",
        CALLREC_ERR_PANIC => c"CALLREC_ERR_PANIC",
        _ => c"unknown status",
    };
    name.as_ptr()
}

/// The library's version, NUL-terminated (`"0.1.0"`), static.
#[unsafe(no_mangle)]
pub extern "C" fn callrec_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}
