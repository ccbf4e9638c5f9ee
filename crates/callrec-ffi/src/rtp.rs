//! RTP: the packetizer into caller buffers, and the packet view.

use core::time::Duration;

use callrec_rtp::{
    EncodingName, Packetizer, PacketizerConfig, PayloadFormat, RtpPacket, WriteError,
};
use rand_core::{OsRng, RngCore, TryRngCore};

use crate::abi::{self, Failure};
use crate::{CALLREC_ERR_BUFFER_TOO_SMALL, CALLREC_ERR_PARSE, CALLREC_OK, callrec_status};

/// [`callrec_packetizer_config::fixed`]: use `ssrc` instead of a random one.
pub const CALLREC_PACKETIZER_FIXED_SSRC: u32 = 1;
/// [`callrec_packetizer_config::fixed`]: use `sequence_number`.
pub const CALLREC_PACKETIZER_FIXED_SEQUENCE_NUMBER: u32 = 2;
/// [`callrec_packetizer_config::fixed`]: use `timestamp`.
pub const CALLREC_PACKETIZER_FIXED_TIMESTAMP: u32 = 4;
/// Bytes in front of the frame in a packetizer's packet (the fixed header).
pub const CALLREC_RTP_HEADER_LEN: usize = 12;
const _: () = assert!(CALLREC_RTP_HEADER_LEN == Packetizer::HEADER_LEN);
/// Most CSRCs a packet can carry.
pub const CALLREC_RTP_MAX_CSRCS: usize = 15;

/// How a packetizer starts. Fill with [`callrec_packetizer_config_init`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct callrec_packetizer_config {
    /// RTP payload type, 0–127 (8 for PCMA).
    pub payload_type: u8,
    /// RTP clock rate in Hz (8000 for G.711 and G.722).
    pub clock_rate: u32,
    /// Which of the next three fields to use (`CALLREC_PACKETIZER_FIXED_*`
    /// or-ed); the others are drawn from the OS random source, as RFC 3550
    /// asks.
    pub fixed: u32,
    /// The SSRC, when fixed.
    pub ssrc: u32,
    /// The first sequence number, when fixed.
    pub sequence_number: u16,
    /// The first timestamp, when fixed.
    pub timestamp: u32,
}

/// Fills `config` for `payload_type`: the clock rate of a static RFC 3551
/// payload type (8000 for 0, 8 and 9; 8000 for dynamic types, to be set by
/// the caller), all random.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for a payload type over 127.
///
/// # Safety
/// `config` points to a writable struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_packetizer_config_init(
    config: *mut callrec_packetizer_config,
    payload_type: u8,
) -> callrec_status {
    abi::run("callrec_packetizer_config_init", || {
        if payload_type > 127 {
            return Err(Failure::argument(format_args!(
                "payload type {payload_type} is over 127"
            )));
        }
        let clock_rate =
            PayloadFormat::from_payload_type(payload_type).map_or(8000, |f| f.clock_rate);
        let init = callrec_packetizer_config {
            payload_type,
            clock_rate,
            ..callrec_packetizer_config::default()
        };
        // SAFETY: `config` per this function's contract.
        unsafe { abi::put(config, "config", init) }?;
        Ok(CALLREC_OK)
    })
}

/// Turns frames into RTP packets. Made by [`callrec_packetizer_new`],
/// released by [`callrec_packetizer_free`]; `Send`, not `Sync`.
#[derive(Debug)]
pub struct callrec_packetizer {
    packetizer: Packetizer,
    clock_rate: u32,
}

/// Makes a packetizer.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for a payload type over 127,
/// a zero clock rate or unknown `fixed` bits; `CALLREC_ERR_IO` when the OS
/// random source fails.
///
/// # Safety
/// `config` points to a readable struct; `out` to a writable handle
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_packetizer_new(
    config: *const callrec_packetizer_config,
    out: *mut *mut callrec_packetizer,
) -> callrec_status {
    abi::run("callrec_packetizer_new", || {
        // SAFETY: `config` per this function's contract.
        let c = unsafe { abi::get(config, "config") }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        if c.payload_type > 127 {
            return Err(Failure::argument(format_args!(
                "config->payload_type {} is over 127",
                c.payload_type
            )));
        }
        if c.clock_rate == 0 {
            return Err(Failure::argument("config->clock_rate is 0"));
        }
        let known = CALLREC_PACKETIZER_FIXED_SSRC
            | CALLREC_PACKETIZER_FIXED_SEQUENCE_NUMBER
            | CALLREC_PACKETIZER_FIXED_TIMESTAMP;
        if c.fixed & !known != 0 {
            return Err(Failure::argument(format_args!(
                "config->fixed {:#x} has bits other than CALLREC_PACKETIZER_FIXED_*",
                c.fixed
            )));
        }
        let encoding = EncodingName::new("audio")
            .map_err(|e| Failure::argument(format_args!("config: {e}")))?;
        let format = PayloadFormat::new(c.payload_type, encoding, c.clock_rate, 1);
        let mut settings = PacketizerConfig::new(&format);
        if c.fixed & CALLREC_PACKETIZER_FIXED_SSRC != 0 {
            settings = settings.ssrc(c.ssrc);
        }
        if c.fixed & CALLREC_PACKETIZER_FIXED_SEQUENCE_NUMBER != 0 {
            settings = settings.sequence_number(c.sequence_number);
        }
        if c.fixed & CALLREC_PACKETIZER_FIXED_TIMESTAMP != 0 {
            settings = settings.timestamp(c.timestamp);
        }
        let packetizer = Packetizer::new(settings, &mut os_rng()?);
        let handle = abi::into_handle(callrec_packetizer {
            packetizer,
            clock_rate: c.clock_rate,
        });
        // SAFETY: `out` per this function's contract.
        unsafe { abi::put(out, "out", handle) }?;
        Ok(CALLREC_OK)
    })
}

fn write_failure(e: &WriteError, capacity: usize) -> Failure {
    match e {
        WriteError::BufferTooShort { .. } => Failure::new(
            CALLREC_ERR_BUFFER_TOO_SMALL,
            format_args!("buf of {capacity} bytes: {e}"),
        ),
        _ => Failure::argument(e),
    }
}

/// Writes `frame` as the next packet into `buf` and advances the timestamp
/// by `samples` RTP ticks; `*written` is the packet length
/// ([`CALLREC_RTP_HEADER_LEN`] + `frame_len`). Does not allocate.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_BUFFER_TOO_SMALL` (the packetizer is
/// unchanged).
///
/// # Safety
/// `packetizer` is a live handle; `frame` points to `frame_len` readable
/// bytes, `buf` to `capacity` writable bytes not overlapping `frame`,
/// `written` to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_packetizer_packetize(
    packetizer: *mut callrec_packetizer,
    frame: *const u8,
    frame_len: usize,
    samples: u32,
    buf: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> callrec_status {
    abi::run("callrec_packetizer_packetize", || {
        // SAFETY: `packetizer` per this function's contract.
        let p = unsafe { abi::get_mut(packetizer, "packetizer") }?;
        // SAFETY: `frame`/`frame_len` per this function's contract.
        let frame = unsafe { abi::slice(frame, frame_len, "frame") }?;
        // SAFETY: `buf`/`capacity` per this function's contract, not
        // overlapping `frame`.
        let out = unsafe { abi::slice_mut(buf, capacity, "buf") }?;
        if written.is_null() {
            return Err(Failure::null("written"));
        }
        let n = p
            .packetizer
            .packetize(frame, samples, out)
            .map_err(|e| write_failure(&e, capacity))?;
        // SAFETY: `written` per this function's contract.
        unsafe { abi::put(written, "written", n) }?;
        Ok(CALLREC_OK)
    })
}

/// The zero-copy form of [`callrec_packetizer_packetize`]: the frame is
/// already at `buf + CALLREC_RTP_HEADER_LEN` (an encoder wrote it there) and
/// only the header is written in front of it.
///
/// # Errors
/// As [`callrec_packetizer_packetize`].
///
/// # Safety
/// `packetizer` is a live handle; `buf` points to `capacity` writable bytes;
/// `written` to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_packetizer_packetize_in_place(
    packetizer: *mut callrec_packetizer,
    buf: *mut u8,
    capacity: usize,
    frame_len: usize,
    samples: u32,
    written: *mut usize,
) -> callrec_status {
    abi::run("callrec_packetizer_packetize_in_place", || {
        // SAFETY: `packetizer` per this function's contract.
        let p = unsafe { abi::get_mut(packetizer, "packetizer") }?;
        // SAFETY: `buf`/`capacity` per this function's contract.
        let out = unsafe { abi::slice_mut(buf, capacity, "buf") }?;
        if written.is_null() {
            return Err(Failure::null("written"));
        }
        let n = p
            .packetizer
            .packetize_in_place(out, frame_len, samples)
            .map_err(|e| write_failure(&e, capacity))?;
        // SAFETY: `written` per this function's contract.
        unsafe { abi::put(written, "written", n) }?;
        Ok(CALLREC_OK)
    })
}

/// Nothing was sent for `samples` RTP ticks (pause, silence suppression):
/// the timestamp jumps and the next packet has the marker bit.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `packetizer` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_packetizer_skip_samples(
    packetizer: *mut callrec_packetizer,
    samples: u32,
) -> callrec_status {
    abi::run("callrec_packetizer_skip_samples", || {
        // SAFETY: `packetizer` per this function's contract.
        let p = unsafe { abi::get_mut(packetizer, "packetizer") }?;
        p.packetizer.skip_samples(samples);
        Ok(CALLREC_OK)
    })
}

/// Nothing was sent for `ms` milliseconds: as
/// [`callrec_packetizer_skip_samples`] at the clock rate, without drift
/// over repeated calls.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `packetizer` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_packetizer_skip_ms(
    packetizer: *mut callrec_packetizer,
    ms: u32,
) -> callrec_status {
    abi::run("callrec_packetizer_skip_ms", || {
        // SAFETY: `packetizer` per this function's contract.
        let p = unsafe { abi::get_mut(packetizer, "packetizer") }?;
        p.packetizer.skip_time(Duration::from_millis(u64::from(ms)));
        Ok(CALLREC_OK)
    })
}

/// Where a packetizer is.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct callrec_packetizer_state {
    /// The SSRC.
    pub ssrc: u32,
    /// The next packet's sequence number.
    pub next_sequence_number: u16,
    /// The next packet's timestamp.
    pub next_timestamp: u32,
    /// The clock rate.
    pub clock_rate: u32,
    /// Packets written (for RTCP sender reports).
    pub packets_sent: u64,
    /// Payload bytes written.
    pub octets_sent: u64,
}

/// The packetizer's SSRC, next sequence number and timestamp, and counts.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `packetizer` is a live handle; `out` points to a writable struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_packetizer_get_state(
    packetizer: *const callrec_packetizer,
    out: *mut callrec_packetizer_state,
) -> callrec_status {
    abi::run("callrec_packetizer_get_state", || {
        // SAFETY: `packetizer` per this function's contract.
        let p = unsafe { abi::get(packetizer, "packetizer") }?;
        let state = callrec_packetizer_state {
            ssrc: p.packetizer.ssrc(),
            next_sequence_number: p.packetizer.next_sequence_number(),
            next_timestamp: p.packetizer.next_timestamp(),
            clock_rate: p.clock_rate,
            packets_sent: p.packetizer.packets_sent(),
            octets_sent: p.packetizer.octets_sent(),
        };
        // SAFETY: `out` per this function's contract.
        unsafe { abi::put(out, "out", state) }?;
        Ok(CALLREC_OK)
    })
}

/// Releases a packetizer. NULL is a no-op.
///
/// # Safety
/// `packetizer` is NULL or a handle from [`callrec_packetizer_new`] not
/// freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_packetizer_free(packetizer: *mut callrec_packetizer) {
    // SAFETY: per this function's contract.
    unsafe { abi::free(packetizer) }
}

/// A parsed RTP packet: its fields, and pointers into the parsed buffer
/// (valid while that buffer is).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct callrec_rtp_packet {
    /// Always 2.
    pub version: u8,
    /// The marker bit.
    pub marker: bool,
    /// The payload type.
    pub payload_type: u8,
    /// The sequence number.
    pub sequence_number: u16,
    /// The timestamp.
    pub timestamp: u32,
    /// The SSRC.
    pub ssrc: u32,
    /// CSRCs in `csrcs`.
    pub csrc_count: u8,
    /// The contributing sources.
    pub csrcs: [u32; CALLREC_RTP_MAX_CSRCS],
    /// Whether the packet has a header extension.
    pub has_extension: bool,
    /// The extension's profile (0xBEDE for RFC 8285 one-byte elements).
    pub extension_profile: u16,
    /// The extension data (NULL when none).
    pub extension: *const u8,
    /// Bytes of extension data.
    pub extension_len: usize,
    /// Padding bytes at the end (0 when none).
    pub padding_len: usize,
    /// Bytes before the payload.
    pub header_len: usize,
    /// The payload (NULL when empty).
    pub payload: *const u8,
    /// Bytes of payload.
    pub payload_len: usize,
}

impl Default for callrec_rtp_packet {
    fn default() -> Self {
        Self {
            version: 0,
            marker: false,
            payload_type: 0,
            sequence_number: 0,
            timestamp: 0,
            ssrc: 0,
            csrc_count: 0,
            csrcs: [0; CALLREC_RTP_MAX_CSRCS],
            has_extension: false,
            extension_profile: 0,
            extension: core::ptr::null(),
            extension_len: 0,
            padding_len: 0,
            header_len: 0,
            payload: core::ptr::null(),
            payload_len: 0,
        }
    }
}

fn non_empty_ptr(bytes: &[u8]) -> *const u8 {
    if bytes.is_empty() {
        core::ptr::null()
    } else {
        bytes.as_ptr()
    }
}

/// Parses an RTP packet (RFC 3550, strict: padding, CSRCs and the extension
/// must fit). Does not allocate or copy.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_PARSE` naming what is wrong.
///
/// # Safety
/// `data` points to `len` readable bytes that stay unchanged while `out`'s
/// pointers are used; `out` points to a writable struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_rtp_parse(
    data: *const u8,
    len: usize,
    out: *mut callrec_rtp_packet,
) -> callrec_status {
    abi::run("callrec_rtp_parse", || {
        // SAFETY: `data`/`len` per this function's contract.
        let bytes = unsafe { abi::slice(data, len, "data") }?;
        // SAFETY: `out` per this function's contract.
        let out = unsafe { abi::get_mut(out, "out") }?;
        let packet = RtpPacket::parse(bytes).map_err(|e| Failure::new(CALLREC_ERR_PARSE, e))?;
        // Field by field into the caller's struct: no temporary to copy.
        out.version = packet.version();
        out.marker = packet.marker();
        out.payload_type = packet.payload_type();
        out.sequence_number = packet.sequence_number();
        out.timestamp = packet.timestamp();
        out.ssrc = packet.ssrc();
        out.csrc_count = packet.csrc_count();
        out.csrcs = [0; CALLREC_RTP_MAX_CSRCS];
        if out.csrc_count > 0 {
            for (slot, csrc) in out.csrcs.iter_mut().zip(packet.csrcs()) {
                *slot = csrc;
            }
        }
        let extension = packet.extension();
        out.has_extension = extension.is_some();
        out.extension_profile = extension.as_ref().map_or(0, |e| e.profile());
        let extension_data = extension.as_ref().map_or(&[][..], |e| e.data());
        out.extension = non_empty_ptr(extension_data);
        out.extension_len = extension_data.len();
        out.padding_len = packet.padding_len();
        out.header_len = packet.header_len();
        out.payload = non_empty_ptr(packet.payload());
        out.payload_len = packet.payload().len();
        Ok(CALLREC_OK)
    })
}

/// Random bytes drawn from the OS up front, so an OS failure is an error
/// returned to C rather than a panic inside a crate that takes an
/// infallible RNG. Enough for one packetizer, SIP branch or session id.
#[derive(Debug)]
pub(crate) struct Prefetched {
    bytes: [u8; 64],
    used: usize,
}

impl RngCore for Prefetched {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            // Never wraps for the ≤ 20 bytes its users take.
            *b = self.bytes[self.used % self.bytes.len()];
            self.used += 1;
        }
    }
}

/// 64 bytes from the OS random source.
pub(crate) fn os_rng() -> abi::Result<Prefetched> {
    let mut bytes = [0u8; 64];
    OsRng.try_fill_bytes(&mut bytes).map_err(|e| {
        Failure::new(
            crate::CALLREC_ERR_IO,
            format_args!("the OS random source failed: {e}"),
        )
    })?;
    Ok(Prefetched { bytes, used: 0 })
}
