//! The boundary: raw pointers in, statuses out, errors kept per thread.
//!
//! Everything unsafe about C's pointers is in the small `unsafe fn`s here;
//! each exported function calls them in `unsafe` blocks whose `SAFETY`
//! comment points at the contract the header states for that argument.

use core::cell::RefCell;
use core::ffi::{CStr, c_char};
use core::fmt::Display;
use core::panic::AssertUnwindSafe;
use std::ffi::CString;
use std::panic::catch_unwind;
use std::string::String;

use crate::{
    CALLREC_ERR_ARGUMENT, CALLREC_ERR_BUFFER_TOO_SMALL, CALLREC_ERR_NULL, CALLREC_ERR_PANIC,
    callrec_status,
};

/// Why a call failed: its status and message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: callrec_status,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: callrec_status, message: impl Display) -> Self {
        Self {
            status,
            message: message.to_string(),
        }
    }

    pub(crate) fn null(what: &str) -> Self {
        Self::new(CALLREC_ERR_NULL, format_args!("{what} is NULL"))
    }

    pub(crate) fn argument(message: impl Display) -> Self {
        Self::new(CALLREC_ERR_ARGUMENT, message)
    }

    pub(crate) fn too_small(what: &str, capacity: usize, needed: usize) -> Self {
        Self::new(
            CALLREC_ERR_BUFFER_TOO_SMALL,
            format_args!("{what} holds {capacity} bytes but {needed} are needed"),
        )
    }
}

pub(crate) type Result<T> = core::result::Result<T, Failure>;

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

pub(crate) fn last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_deref().unwrap_or(c"").as_ptr())
}

fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(text));
}

/// Runs an exported function's body: its status, or its error recorded and
/// its code returned; a panic is caught, never unwound into C.
pub(crate) fn run(name: &str, body: impl FnOnce() -> Result<callrec_status>) -> callrec_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic");
            set_last_error(&format!(
                "internal error in {name} (a bug in callrec, please report it): {what}"
            ));
            CALLREC_ERR_PANIC
        }
    }
}

/// `ptr` as a reference.
///
/// # Safety
/// `ptr` is NULL or points to a live, aligned `T` not written elsewhere
/// during `'a`.
pub(crate) unsafe fn get<'a, T>(ptr: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: non-null per the check; live and aligned per the contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// `ptr` as a mutable reference.
///
/// # Safety
/// `ptr` is NULL or points to a live, aligned `T` not accessed elsewhere
/// during `'a`.
pub(crate) unsafe fn get_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: non-null per the check; live, aligned and unaliased per the
    // contract.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null(what))
}

/// Writes `value` through an output pointer.
///
/// # Safety
/// As [`get_mut`].
pub(crate) unsafe fn put<T>(ptr: *mut T, what: &str, value: T) -> Result<()> {
    // SAFETY: forwarded contract.
    *unsafe { get_mut(ptr, what) }? = value;
    Ok(())
}

/// `len` elements at `ptr`. A NULL `ptr` is allowed when `len` is 0.
///
/// # Safety
/// When `len > 0`, `ptr` is NULL or points to `len` live, initialized,
/// aligned elements not written elsewhere during `'a`.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    check_len::<T>(len, what)?;
    // SAFETY: non-null, and `len` readable elements per the contract; the
    // total size fits `isize` (checked).
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// `len` writable elements at `ptr`. A NULL `ptr` is allowed when `len` is 0.
///
/// # Safety
/// When `len > 0`, `ptr` is NULL or points to `len` live, aligned elements
/// (initialized: C buffers of integers always are) not accessed elsewhere
/// during `'a`.
pub(crate) unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize, what: &str) -> Result<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    check_len::<T>(len, what)?;
    // SAFETY: non-null, `len` writable elements per the contract, not
    // aliased; the total size fits `isize` (checked).
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

fn check_len<T>(len: usize, what: &str) -> Result<()> {
    let fits = len
        .checked_mul(size_of::<T>())
        .is_some_and(|n| isize::try_from(n).is_ok());
    if fits {
        Ok(())
    } else {
        Err(Failure::argument(format_args!(
            "{what}: a length of {len} elements is larger than memory"
        )))
    }
}

/// A NUL-terminated UTF-8 string.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that lives, unchanged,
/// during `'a`.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-null and NUL-terminated per the contract.
    let cstr = unsafe { CStr::from_ptr(ptr) };
    cstr.to_str()
        .map_err(|e| Failure::argument(format_args!("{what} is not UTF-8: {e}")))
}

/// Like [`text`], with NULL read as the empty string (optional fields).
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn text_or_empty<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Ok("");
    }
    // SAFETY: forwarded contract.
    unsafe { text(ptr, what) }
}

/// Moves `value` to the heap for C; released by [`free`].
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Releases a handle made by [`into_handle`]; NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or came from [`into_handle`] for this `T` and was not
/// freed before.
pub(crate) unsafe fn free<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: made by `Box::into_raw` for `T`, freed once (contract).
        drop(unsafe { Box::from_raw(ptr) });
    }
}

/// Copies `value` into a fixed C string field, NUL-terminated.
pub(crate) fn put_text(field: &mut [c_char], value: &[u8], what: &str) -> Result<()> {
    if value.contains(&0) {
        return Err(Failure::new(
            crate::CALLREC_ERR_PARSE,
            format_args!("{what} contains a NUL byte and cannot be a C string"),
        ));
    }
    if value.len() >= field.len() {
        return Err(Failure::too_small(what, field.len(), value.len() + 1));
    }
    for (dst, &src) in field.iter_mut().zip(value) {
        *dst = src as c_char;
    }
    field[value.len()] = 0;
    Ok(())
}

/// The text of a fixed C string field: up to its first NUL, which must be
/// there.
pub(crate) fn field_text<'a>(field: &'a [c_char], what: &str) -> Result<&'a str> {
    let len = field
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| Failure::argument(format_args!("{what} is not NUL-terminated")))?;
    let bytes: &[u8] = c_chars_as_bytes(&field[..len]);
    core::str::from_utf8(bytes)
        .map_err(|e| Failure::argument(format_args!("{what} is not UTF-8: {e}")))
}

fn c_chars_as_bytes(chars: &[c_char]) -> &[u8] {
    // SAFETY: `c_char` is `i8` or `u8`, of the size and alignment of `u8`,
    // and every bit pattern is valid for both: the same memory, read as
    // bytes for the same lifetime.
    unsafe { core::slice::from_raw_parts(chars.as_ptr().cast::<u8>(), chars.len()) }
}

/// Copies `data` into a caller buffer of `capacity` bytes and reports the
/// length through `written`.
///
/// # Safety
/// As [`slice_mut`] for `buf` and `capacity`, and [`put`] for `written`.
pub(crate) unsafe fn write_out(
    data: &[u8],
    buf: *mut u8,
    capacity: usize,
    written: *mut usize,
    what: &str,
) -> Result<()> {
    if written.is_null() {
        return Err(Failure::null("written"));
    }
    if data.len() > capacity {
        return Err(Failure::too_small(what, capacity, data.len()));
    }
    // SAFETY: forwarded contract for `buf`/`capacity`.
    let out = unsafe { slice_mut(buf, capacity, what) }?;
    out[..data.len()].copy_from_slice(data);
    // SAFETY: forwarded contract for `written`.
    unsafe { put(written, "written", data.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CALLREC_OK, callrec_last_error};

    fn last_error_text() -> String {
        // SAFETY: callrec_last_error returns a NUL-terminated string that
        // lives until the next failing call on this thread.
        unsafe { CStr::from_ptr(callrec_last_error()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_panic_is_caught_and_named() {
        let status = run("callrec_test", || panic!("boom {}", 7));
        assert_eq!(status, CALLREC_ERR_PANIC);
        assert_eq!(
            last_error_text(),
            "internal error in callrec_test (a bug in callrec, please report it): boom 7"
        );
        // A success leaves the message.
        assert_eq!(run("callrec_test", || Ok(CALLREC_OK)), CALLREC_OK);
        assert!(last_error_text().contains("boom 7"));
    }

    #[test]
    fn a_message_with_nul_is_kept_whole() {
        let status = run("callrec_test", || Err(Failure::argument("a\0b")));
        assert_eq!(status, CALLREC_ERR_ARGUMENT);
        assert_eq!(last_error_text(), "a\\0b");
    }

    #[test]
    fn slices_check_null_and_size() {
        // SAFETY: a zero length never dereferences.
        let empty = unsafe { slice::<u8>(core::ptr::null(), 0, "x") };
        assert!(empty.unwrap().is_empty());
        // SAFETY: NULL is checked before use.
        let e = unsafe { slice::<u8>(core::ptr::null(), 3, "x") }.unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (CALLREC_ERR_NULL, "x is NULL")
        );
        let one = [0u32; 1];
        // SAFETY: the length is refused before any access.
        let e = unsafe { slice(one.as_ptr(), usize::MAX / 2, "x") }.unwrap_err();
        assert_eq!(e.status, CALLREC_ERR_ARGUMENT);
    }

    #[test]
    fn fixed_fields_need_room_and_a_terminator() {
        let mut field = [1 as c_char; 4];
        put_text(&mut field, b"abc", "f").unwrap();
        assert_eq!(field_text(&field, "f").unwrap(), "abc");
        assert_eq!(
            put_text(&mut field, b"abcd", "f").unwrap_err().status,
            CALLREC_ERR_BUFFER_TOO_SMALL
        );
        assert_eq!(
            put_text(&mut field, b"a\0", "f").unwrap_err().status,
            crate::CALLREC_ERR_PARSE
        );
        let unterminated = [b'x' as c_char; 4];
        assert_eq!(
            field_text(&unterminated, "f").unwrap_err().message,
            "f is not NUL-terminated"
        );
    }
}
