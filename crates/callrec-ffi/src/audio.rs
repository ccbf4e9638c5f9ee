//! G.711, G.722 and the mixer, into caller buffers, without allocating.

use callrec_audio::g711::Law;
use callrec_audio::g722;
use callrec_audio::mix::{mix_g711, mix_pcm16};

use crate::abi::{self, Failure, Result};
use crate::{CALLREC_OK, callrec_status};

/// G.711 A-law (the value is its RFC 3551 payload type, as
/// `CALLREC_CODEC_PCMA`).
pub const CALLREC_LAW_ALAW: u32 = 8;
/// G.711 µ-law (as `CALLREC_CODEC_PCMU`).
pub const CALLREC_LAW_ULAW: u32 = 0;
/// Most streams one mixer call takes (a conference of eight).
pub const CALLREC_MIX_MAX_INPUTS: usize = 8;

fn law(law: u32) -> Result<Law> {
    u8::try_from(law)
        .ok()
        .and_then(Law::from_payload_type)
        .ok_or_else(|| {
            Failure::argument(format_args!(
                "law {law} is neither CALLREC_LAW_ALAW (8) nor CALLREC_LAW_ULAW (0)"
            ))
        })
}

fn need(what: &str, capacity: usize, needed: usize) -> Result<()> {
    if capacity < needed {
        Err(Failure::too_small(what, capacity, needed))
    } else {
        Ok(())
    }
}

/// Encodes `count` 16-bit samples to G.711 (`CALLREC_LAW_*`), one byte
/// each, into `out`; `*written` = `count`.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for an unknown law;
/// `CALLREC_ERR_BUFFER_TOO_SMALL` when `capacity` < `count`.
///
/// # Safety
/// `pcm` points to `count` readable samples; `out` to `capacity` writable
/// bytes; `written` to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_g711_encode(
    law_id: u32,
    pcm: *const i16,
    count: usize,
    out: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> callrec_status {
    abi::run("callrec_g711_encode", || {
        let law = law(law_id)?;
        // SAFETY: `pcm`/`count` per this function's contract.
        let input = unsafe { abi::slice(pcm, count, "pcm") }?;
        // SAFETY: `out`/`capacity` per this function's contract.
        let output = unsafe { abi::slice_mut(out, capacity, "out") }?;
        need("out", capacity, count)?;
        let n = law.encode(input, output);
        // SAFETY: `written` per this function's contract.
        unsafe { abi::put(written, "written", n) }?;
        Ok(CALLREC_OK)
    })
}

/// Decodes `count` G.711 bytes into 16-bit samples in `out`;
/// `*written` = `count` (samples).
///
/// # Errors
/// As [`callrec_g711_encode`]; `capacity` counts samples.
///
/// # Safety
/// `codes` points to `count` readable bytes; `out` to `capacity` writable
/// samples; `written` to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_g711_decode(
    law_id: u32,
    codes: *const u8,
    count: usize,
    out: *mut i16,
    capacity: usize,
    written: *mut usize,
) -> callrec_status {
    abi::run("callrec_g711_decode", || {
        let law = law(law_id)?;
        // SAFETY: `codes`/`count` per this function's contract.
        let input = unsafe { abi::slice(codes, count, "codes") }?;
        // SAFETY: `out`/`capacity` per this function's contract.
        let output = unsafe { abi::slice_mut(out, capacity, "out") }?;
        need("out (samples)", capacity, count)?;
        let n = law.decode(input, output);
        // SAFETY: `written` per this function's contract.
        unsafe { abi::put(written, "written", n) }?;
        Ok(CALLREC_OK)
    })
}

/// A G.722 encoder (64 kbit/s, 16 kHz in). One per stream; made by
/// [`callrec_g722_encoder_new`], released by [`callrec_g722_encoder_free`];
/// `Send`, not `Sync`.
#[derive(Debug)]
pub struct callrec_g722_encoder(g722::Encoder);

/// A G.722 decoder (16 kHz out). One per stream; `Send`, not `Sync`.
#[derive(Debug)]
pub struct callrec_g722_decoder(g722::Decoder);

/// Makes a G.722 encoder in its initial state.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `out` points to a writable handle pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_g722_encoder_new(
    out: *mut *mut callrec_g722_encoder,
) -> callrec_status {
    abi::run("callrec_g722_encoder_new", || {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let handle = abi::into_handle(callrec_g722_encoder(g722::Encoder::new()));
        // SAFETY: `out` per this function's contract.
        unsafe { abi::put(out, "out", handle) }?;
        Ok(CALLREC_OK)
    })
}

/// Encodes `count` 16 kHz samples (an even number: a 20 ms frame is 320)
/// into `count / 2` code bytes in `out`.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for an odd `count`;
/// `CALLREC_ERR_BUFFER_TOO_SMALL`.
///
/// # Safety
/// `encoder` is a live handle; `pcm` points to `count` readable samples;
/// `out` to `capacity` writable bytes; `written` to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_g722_encode(
    encoder: *mut callrec_g722_encoder,
    pcm: *const i16,
    count: usize,
    out: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> callrec_status {
    abi::run("callrec_g722_encode", || {
        // SAFETY: `encoder` per this function's contract.
        let encoder = unsafe { abi::get_mut(encoder, "encoder") }?;
        // SAFETY: `pcm`/`count` per this function's contract.
        let input = unsafe { abi::slice(pcm, count, "pcm") }?;
        // SAFETY: `out`/`capacity` per this function's contract.
        let output = unsafe { abi::slice_mut(out, capacity, "out") }?;
        if count % 2 != 0 {
            return Err(Failure::argument(format_args!(
                "count {count} is odd: G.722 encodes samples in pairs"
            )));
        }
        need("out", capacity, count / 2)?;
        let n = encoder.0.encode(input, output);
        // SAFETY: `written` per this function's contract.
        unsafe { abi::put(written, "written", n) }?;
        Ok(CALLREC_OK)
    })
}

/// Releases an encoder. NULL is a no-op.
///
/// # Safety
/// `encoder` is NULL or a handle from [`callrec_g722_encoder_new`] not
/// freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_g722_encoder_free(encoder: *mut callrec_g722_encoder) {
    // SAFETY: per this function's contract.
    unsafe { abi::free(encoder) }
}

/// Makes a G.722 decoder in its initial state.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `out` points to a writable handle pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_g722_decoder_new(
    out: *mut *mut callrec_g722_decoder,
) -> callrec_status {
    abi::run("callrec_g722_decoder_new", || {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let handle = abi::into_handle(callrec_g722_decoder(g722::Decoder::new()));
        // SAFETY: `out` per this function's contract.
        unsafe { abi::put(out, "out", handle) }?;
        Ok(CALLREC_OK)
    })
}

/// Decodes `count` G.722 code bytes into `2 * count` 16 kHz samples in
/// `out`.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_BUFFER_TOO_SMALL` (`capacity` counts
/// samples).
///
/// # Safety
/// `decoder` is a live handle; `codes` points to `count` readable bytes;
/// `out` to `capacity` writable samples; `written` to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_g722_decode(
    decoder: *mut callrec_g722_decoder,
    codes: *const u8,
    count: usize,
    out: *mut i16,
    capacity: usize,
    written: *mut usize,
) -> callrec_status {
    abi::run("callrec_g722_decode", || {
        // SAFETY: `decoder` per this function's contract.
        let decoder = unsafe { abi::get_mut(decoder, "decoder") }?;
        // SAFETY: `codes`/`count` per this function's contract.
        let input = unsafe { abi::slice(codes, count, "codes") }?;
        // SAFETY: `out`/`capacity` per this function's contract.
        let output = unsafe { abi::slice_mut(out, capacity, "out") }?;
        need("out (samples)", capacity, count.saturating_mul(2))?;
        let n = decoder.0.decode(input, output);
        // SAFETY: `written` per this function's contract.
        unsafe { abi::put(written, "written", n) }?;
        Ok(CALLREC_OK)
    })
}

/// Releases a decoder. NULL is a no-op.
///
/// # Safety
/// `decoder` is NULL or a handle from [`callrec_g722_decoder_new`] not
/// freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_g722_decoder_free(decoder: *mut callrec_g722_decoder) {
    // SAFETY: per this function's contract.
    unsafe { abi::free(decoder) }
}

/// The `count` input streams, `len` elements each, as slices on the stack.
///
/// # Safety
/// `inputs` points to `count` pointers, each to `len` readable elements.
unsafe fn streams<'a, T>(
    inputs: *const *const T,
    count: usize,
    len: usize,
) -> Result<([&'a [T]; CALLREC_MIX_MAX_INPUTS], usize)> {
    if count == 0 || count > CALLREC_MIX_MAX_INPUTS {
        return Err(Failure::argument(format_args!(
            "input_count {count} is not 1-{CALLREC_MIX_MAX_INPUTS}"
        )));
    }
    // SAFETY: `count` pointers per this function's contract.
    let pointers = unsafe { abi::slice(inputs, count, "inputs") }?;
    let mut slices: [&[T]; CALLREC_MIX_MAX_INPUTS] = [&[]; CALLREC_MIX_MAX_INPUTS];
    for (slot, &ptr) in slices.iter_mut().zip(pointers) {
        // SAFETY: each input has `len` elements per this function's
        // contract.
        *slot = unsafe { abi::slice(ptr, len, "an input stream") }?;
    }
    Ok((slices, count))
}

/// Mixes `input_count` streams of `len` 16-bit samples into `out` (`len`
/// samples), saturating. `out` may be one of the inputs' buffers only if
/// it is not also read; use a separate buffer.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for 0 or more than
/// [`CALLREC_MIX_MAX_INPUTS`] inputs.
///
/// # Safety
/// `inputs` points to `input_count` pointers to `len` readable samples
/// each; `out` to `len` writable samples not overlapping any input.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_mix_pcm16(
    inputs: *const *const i16,
    input_count: usize,
    len: usize,
    out: *mut i16,
) -> callrec_status {
    abi::run("callrec_mix_pcm16", || {
        // SAFETY: `inputs` per this function's contract.
        let (slices, count) = unsafe { streams(inputs, input_count, len) }?;
        // SAFETY: `out`/`len` per this function's contract, not overlapping.
        let output = unsafe { abi::slice_mut(out, len, "out") }?;
        mix_pcm16(&slices[..count], output).map_err(Failure::argument)?;
        Ok(CALLREC_OK)
    })
}

/// Mixes `input_count` G.711 streams (`CALLREC_LAW_*`) of `len` bytes into
/// `out`, decoding, summing with saturation and re-encoding.
///
/// # Errors
/// As [`callrec_mix_pcm16`], and `CALLREC_ERR_ARGUMENT` for an unknown law.
///
/// # Safety
/// As [`callrec_mix_pcm16`], in bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_mix_g711(
    law_id: u32,
    inputs: *const *const u8,
    input_count: usize,
    len: usize,
    out: *mut u8,
) -> callrec_status {
    abi::run("callrec_mix_g711", || {
        let law = law(law_id)?;
        // SAFETY: `inputs` per this function's contract.
        let (slices, count) = unsafe { streams(inputs, input_count, len) }?;
        // SAFETY: `out`/`len` per this function's contract, not overlapping.
        let output = unsafe { abi::slice_mut(out, len, "out") }?;
        mix_g711(law, &slices[..count], output).map_err(Failure::argument)?;
        Ok(CALLREC_OK)
    })
}
