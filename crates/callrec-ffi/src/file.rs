//! The local container: recording to a directory, and reading files back.

use core::ffi::c_char;
use core::num::NonZeroU32;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};

use callrec_file::{
    Codec, CodecName, DirStorage, Error, HEADER_LEN, Header, ReadMode, Reader, RecordTime,
    Recorder, RecorderConfig, RecorderState, Recording, Recovery,
};

use crate::abi::{self, Failure, Result};
use crate::{
    CALLREC_ERR_ARGUMENT, CALLREC_ERR_INTERRUPTED, CALLREC_ERR_IO, CALLREC_ERR_PARSE,
    CALLREC_ERR_STATE, CALLREC_ERR_STORAGE_FULL, CALLREC_NONE, CALLREC_OK, callrec_status,
};

/// G.711 µ-law; the value is its RFC 3551 payload type.
pub const CALLREC_CODEC_PCMU: u32 = 0;
/// G.711 A-law; the value is its RFC 3551 payload type.
pub const CALLREC_CODEC_PCMA: u32 = 8;
/// G.722; the value is its RFC 3551 payload type.
pub const CALLREC_CODEC_G722: u32 = 9;

/// Read mode: `dataSize` must match the body exactly.
pub const CALLREC_READ_STRICT: u32 = 0;
/// Read mode: trust the body (files cut off by a power failure or a pulled
/// drive); what was recovered is reported.
pub const CALLREC_READ_RECOVER: u32 = 1;

/// Bytes in a container header.
pub const CALLREC_HEADER_LEN: usize = 76;
const _: () = assert!(CALLREC_HEADER_LEN == HEADER_LEN);
/// Size of a codec name field: 64 characters and the NUL.
pub const CALLREC_CODEC_NAME_SIZE: usize = 65;
/// Size of a file name field: `Record_YYYYMMDD_HHMMSS_NNNN.wav` and the NUL,
/// with room to spare.
pub const CALLREC_FILE_NAME_SIZE: usize = 64;

/// Recorder state: not recording.
pub const CALLREC_RECORDER_IDLE: u32 = 0;
/// Recorder state: frames are written.
pub const CALLREC_RECORDER_RECORDING: u32 = 1;
/// Recorder state: frames are dropped until resume.
pub const CALLREC_RECORDER_PAUSED: u32 = 2;

/// A container header, as read or to write.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct callrec_header {
    /// The codec name, NUL-terminated (`"PCMA"`, `"PCMU"`, `"G722"`, or
    /// whatever the file says).
    pub codec: [c_char; CALLREC_CODEC_NAME_SIZE],
    /// Bytes per frame (`rtpLen`).
    pub rtp_len: u16,
    /// RTP clock ticks per frame (`increment`).
    pub increment: u16,
    /// Bytes of frames after the header (`dataSize`).
    pub data_size: u32,
    /// Whole frames: `data_size / rtp_len`. Ignored by
    /// [`callrec_header_write`].
    pub frame_count: u32,
    /// RTP clock rate of the codec, 0 when the codec is not known. Ignored
    /// by [`callrec_header_write`].
    pub clock_rate: u32,
    /// Media time in milliseconds, 0 when the codec is not known. Ignored by
    /// [`callrec_header_write`].
    pub duration_ms: u64,
}

impl Default for callrec_header {
    fn default() -> Self {
        Self {
            codec: [0; CALLREC_CODEC_NAME_SIZE],
            rtp_len: 0,
            increment: 0,
            data_size: 0,
            frame_count: 0,
            clock_rate: 0,
            duration_ms: 0,
        }
    }
}

impl callrec_header {
    fn from_header(header: &Header) -> Result<Self> {
        let mut out = Self::default();
        abi::put_text(&mut out.codec, header.codec().as_bytes(), "the codec name")?;
        out.rtp_len = header.rtp_len();
        out.increment = header.increment();
        out.data_size = header.data_size();
        out.frame_count = header.frame_count();
        out.clock_rate = header.clock_rate().map_or(0, NonZeroU32::get);
        out.duration_ms = header
            .duration()
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Ok(out)
    }
}

/// What recover mode did because `dataSize` disagreed with the body.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct callrec_recovery {
    /// Whether the header disagreed with the body (all else is 0 if not).
    pub recovered: bool,
    /// `dataSize` the header claimed.
    pub header_data_size: u32,
    /// Bytes found after the header.
    pub body_len: u64,
    /// Bytes after the header not used (a partial last frame).
    pub discarded_bytes: u64,
}

impl callrec_recovery {
    fn from_recovery(recovery: Option<&Recovery>) -> Self {
        recovery.map_or_else(Self::default, |r| Self {
            recovered: true,
            header_data_size: r.header_data_size,
            body_len: r.body_len,
            discarded_bytes: r.discarded_bytes(),
        })
    }
}

fn read_mode(mode: u32) -> Result<ReadMode> {
    match mode {
        CALLREC_READ_STRICT => Ok(ReadMode::Strict),
        CALLREC_READ_RECOVER => Ok(ReadMode::Recover),
        other => Err(Failure::argument(format_args!(
            "read mode {other} is neither CALLREC_READ_STRICT (0) nor CALLREC_READ_RECOVER (1)"
        ))),
    }
}

/// The codec of a `CALLREC_CODEC_*` value, which is its RFC 3551 payload
/// type.
pub(crate) fn codec(codec: u32) -> Result<Codec> {
    u8::try_from(codec)
        .ok()
        .and_then(Codec::from_payload_type)
        .ok_or_else(|| unknown_codec(codec))
}

/// The error for a value that is not a `CALLREC_CODEC_*`.
pub(crate) fn unknown_codec(codec: u32) -> Failure {
    Failure::argument(format_args!(
        "codec {codec} is not CALLREC_CODEC_PCMU (0), CALLREC_CODEC_PCMA (8) or CALLREC_CODEC_G722 (9)"
    ))
}

/// The status of a callrec-file error, and its message with `context` in
/// front (a path or a directory).
fn file_failure(context: &str, e: &Error) -> Failure {
    let status = match e {
        Error::Parse(_) | Error::BodyTooLarge { .. } => CALLREC_ERR_PARSE,
        Error::FrameLen { .. }
        | Error::SeekOutOfRange { .. }
        | Error::UnknownClockRate { .. }
        | Error::MaxFileSizeTooSmall { .. }
        | Error::TimeOutOfRange { .. } => CALLREC_ERR_ARGUMENT,
        Error::NotRecording | Error::AlreadyRecording | Error::DataSizeLimit { .. } => {
            CALLREC_ERR_STATE
        }
        Error::StorageFull { .. } => CALLREC_ERR_STORAGE_FULL,
        Error::Interrupted { .. } => CALLREC_ERR_INTERRUPTED,
        _ => CALLREC_ERR_IO,
    };
    Failure::new(status, format_args!("{context}: {e}"))
}

/// Parses a container header from the first `len` bytes at `buf` (at least
/// [`CALLREC_HEADER_LEN`]).
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_PARSE` naming the field that is wrong
/// (`buf` too short included).
///
/// # Safety
/// `buf` points to `len` readable bytes; `out` to a writable
/// `callrec_header`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_header_parse(
    buf: *const u8,
    len: usize,
    out: *mut callrec_header,
) -> callrec_status {
    abi::run("callrec_header_parse", || {
        // SAFETY: `buf`/`len` per this function's contract.
        let bytes = unsafe { abi::slice(buf, len, "buf") }?;
        let header = Header::parse(bytes).map_err(|e| Failure::new(CALLREC_ERR_PARSE, e))?;
        // SAFETY: `out` per this function's contract.
        unsafe { abi::put(out, "out", callrec_header::from_header(&header)?) }?;
        Ok(CALLREC_OK)
    })
}

/// Writes the [`CALLREC_HEADER_LEN`]-byte header for `header`'s codec,
/// `rtp_len`, `increment` and `data_size` into `buf`, for firmware that
/// writes the container itself.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_BUFFER_TOO_SMALL` when `capacity` is
/// below 76; `CALLREC_ERR_ARGUMENT` for an empty or unwritable codec name or
/// a zero `rtp_len`.
///
/// # Safety
/// `header` points to a readable `callrec_header`; `buf` to `capacity`
/// writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_header_write(
    header: *const callrec_header,
    buf: *mut u8,
    capacity: usize,
) -> callrec_status {
    abi::run("callrec_header_write", || {
        // SAFETY: `header` per this function's contract.
        let header = unsafe { abi::get(header, "header") }?;
        if capacity < HEADER_LEN {
            return Err(Failure::too_small("buf", capacity, HEADER_LEN));
        }
        // SAFETY: `buf`/`capacity` per this function's contract.
        let out = unsafe { abi::slice_mut(buf, capacity, "buf") }?;
        let name = abi::field_text(&header.codec, "header.codec")?;
        let codec = CodecName::new(name)
            .map_err(|e| Failure::argument(format_args!("header.codec: {e}")))?;
        let parsed = Header::new(codec, header.rtp_len, header.increment)
            .map_err(|e| Failure::argument(format_args!("header: {e}")))?
            .with_data_size(header.data_size);
        let mut bytes = [0u8; HEADER_LEN];
        parsed.write(&mut bytes);
        out[..HEADER_LEN].copy_from_slice(&bytes);
        Ok(CALLREC_OK)
    })
}

/// A whole recording in memory: its header and where its frames are.
///
/// `data` points into the caller's buffer given to
/// [`callrec_recording_parse`]: the struct is valid while that buffer is.
/// Read-only for the caller.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct callrec_recording {
    /// The header (`data_size` as recovered in recover mode).
    pub header: callrec_header,
    /// What recover mode did.
    pub recovery: callrec_recovery,
    /// The frames, `header.data_size` bytes.
    pub data: *const u8,
}

impl Default for callrec_recording {
    fn default() -> Self {
        Self {
            header: callrec_header::default(),
            recovery: callrec_recovery::default(),
            data: core::ptr::null(),
        }
    }
}

/// Parses a whole recording held in memory (`mode`: `CALLREC_READ_*`);
/// frames are then read with [`callrec_recording_frame`], without copying.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for an unknown mode;
/// `CALLREC_ERR_PARSE` naming what is wrong (in strict mode, a `dataSize`
/// that disagrees with the body).
///
/// # Safety
/// `buf` points to `len` readable bytes that stay unchanged while `out` is
/// used; `out` to a writable `callrec_recording`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recording_parse(
    buf: *const u8,
    len: usize,
    mode: u32,
    out: *mut callrec_recording,
) -> callrec_status {
    abi::run("callrec_recording_parse", || {
        // SAFETY: `buf`/`len` per this function's contract.
        let bytes = unsafe { abi::slice(buf, len, "buf") }?;
        let recording = Recording::parse_with(bytes, read_mode(mode)?)
            .map_err(|e| Failure::new(CALLREC_ERR_PARSE, e))?;
        let parsed = callrec_recording {
            header: callrec_header::from_header(recording.header())?,
            recovery: callrec_recovery::from_recovery(recording.recovery()),
            data: recording.data().as_ptr(),
        };
        // SAFETY: `out` per this function's contract.
        unsafe { abi::put(out, "out", parsed) }?;
        Ok(CALLREC_OK)
    })
}

/// Frame `index` of a parsed recording: `*frame` points to its
/// `header.rtp_len` bytes inside the parsed buffer.
///
/// Returns `CALLREC_NONE` (and sets nothing) when `index` is past the last
/// frame.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `recording` points to a `callrec_recording` filled by
/// [`callrec_recording_parse`] whose buffer is still valid; `frame` and
/// `frame_len` to writable locations.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recording_frame(
    recording: *const callrec_recording,
    index: u32,
    frame: *mut *const u8,
    frame_len: *mut usize,
) -> callrec_status {
    abi::run("callrec_recording_frame", || {
        // SAFETY: `recording` per this function's contract.
        let recording = unsafe { abi::get(recording, "recording") }?;
        if frame.is_null() || frame_len.is_null() {
            return Err(Failure::null(if frame.is_null() {
                "frame"
            } else {
                "frame_len"
            }));
        }
        let rtp_len = usize::from(recording.header.rtp_len);
        let data_len = recording.header.data_size as usize;
        // SAFETY: the parse set `data` to `data_size` bytes of the caller's
        // buffer, valid per this function's contract.
        let data = unsafe { abi::slice(recording.data, data_len, "recording.data") }?;
        let Some(bytes) = (index as usize)
            .checked_mul(rtp_len)
            .and_then(|start| data.get(start..start.checked_add(rtp_len)?))
            .filter(|b| !b.is_empty())
        else {
            return Ok(CALLREC_NONE);
        };
        // SAFETY: checked non-null above; writable per the contract.
        unsafe { abi::put(frame, "frame", bytes.as_ptr()) }?;
        // SAFETY: as above.
        unsafe { abi::put(frame_len, "frame_len", bytes.len()) }?;
        Ok(CALLREC_OK)
    })
}

/// Checks a recording file without reading its frames: its header
/// (`data_size` as recovered in recover mode) and what recover mode did.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` (mode, path not UTF-8);
/// `CALLREC_ERR_IO` naming the path; `CALLREC_ERR_PARSE` naming the path and
/// what is wrong.
///
/// # Safety
/// `path` is a NUL-terminated string; `header` and `recovery` point to
/// writable structs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_file_inspect(
    path: *const c_char,
    mode: u32,
    header: *mut callrec_header,
    recovery: *mut callrec_recovery,
) -> callrec_status {
    abi::run("callrec_file_inspect", || {
        // SAFETY: `path` per this function's contract.
        let path = unsafe { abi::text(path, "path") }?;
        let mode = read_mode(mode)?;
        let mut file = File::open(path)
            .map_err(|e| Failure::new(CALLREC_ERR_IO, format_args!("cannot open {path}: {e}")))?;
        let (parsed, recovered) =
            callrec_file::inspect(&mut file, mode).map_err(|e| file_failure(path, &e))?;
        // SAFETY: `header` per this function's contract.
        unsafe { abi::put(header, "header", callrec_header::from_header(&parsed)?) }?;
        let recovered = callrec_recovery::from_recovery(recovered.as_ref());
        // SAFETY: `recovery` per this function's contract.
        unsafe { abi::put(recovery, "recovery", recovered) }?;
        Ok(CALLREC_OK)
    })
}

/// Repairs a recording file in place after a crash: rewrites `dataSize` to
/// the body's whole frames and cuts a partial last frame, so it reads
/// strictly again. `*recovery` says what changed (`recovered` false: the
/// file was consistent and was not written).
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_IO`/`CALLREC_ERR_PARSE` naming the path
/// (the file is left untouched on a header error).
///
/// # Safety
/// `path` is a NUL-terminated string; `recovery` points to a writable
/// struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_file_repair(
    path: *const c_char,
    recovery: *mut callrec_recovery,
) -> callrec_status {
    abi::run("callrec_file_repair", || {
        // SAFETY: `path` per this function's contract.
        let path = unsafe { abi::text(path, "path") }?;
        if recovery.is_null() {
            return Err(Failure::null("recovery"));
        }
        let repaired = callrec_file::repair(path).map_err(|e| file_failure(path, &e))?;
        let repaired = callrec_recovery::from_recovery(repaired.as_ref());
        // SAFETY: `recovery` per this function's contract.
        unsafe { abi::put(recovery, "recovery", repaired) }?;
        Ok(CALLREC_OK)
    })
}

/// A recording file opened for reading frame by frame (for files larger
/// than memory). Made by [`callrec_reader_open`], released by
/// [`callrec_reader_free`]; `Send`, not `Sync`.
#[derive(Debug)]
pub struct callrec_reader {
    path: String,
    /// The header as checked against the file's length (`dataSize` as
    /// recovered in recover mode), and what recover mode did.
    header: Header,
    recovery: Option<Recovery>,
    reader: Reader<BufReader<File>>,
}

/// Opens a recording file for reading (`mode`: `CALLREC_READ_*`); its
/// `dataSize` is checked against the file's length first, as
/// [`callrec_file_inspect`] does.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT`; `CALLREC_ERR_IO` and
/// `CALLREC_ERR_PARSE` naming the path.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` points to a writable handle
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_reader_open(
    path: *const c_char,
    mode: u32,
    out: *mut *mut callrec_reader,
) -> callrec_status {
    abi::run("callrec_reader_open", || {
        // SAFETY: `path` per this function's contract.
        let path = unsafe { abi::text(path, "path") }?;
        let mode = read_mode(mode)?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let mut file = File::open(path)
            .map_err(|e| Failure::new(CALLREC_ERR_IO, format_args!("cannot open {path}: {e}")))?;
        // A file has a length: check `dataSize` against it now, so strict
        // mode fails at open and recover mode reports what it did up front.
        let (header, recovery) =
            callrec_file::inspect(&mut file, mode).map_err(|e| file_failure(path, &e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Failure::new(CALLREC_ERR_IO, format_args!("cannot seek {path}: {e}")))?;
        let reader =
            Reader::with_mode(BufReader::new(file), mode).map_err(|e| file_failure(path, &e))?;
        let handle = abi::into_handle(callrec_reader {
            path: path.to_owned(),
            header,
            recovery,
            reader,
        });
        // SAFETY: `out` per this function's contract.
        unsafe { abi::put(out, "out", handle) }?;
        Ok(CALLREC_OK)
    })
}

/// The header the reader reads by, and what recover mode did.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `reader` is a live handle; `header` and `recovery` point to writable
/// structs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_reader_header(
    reader: *const callrec_reader,
    header: *mut callrec_header,
    recovery: *mut callrec_recovery,
) -> callrec_status {
    abi::run("callrec_reader_header", || {
        // SAFETY: `reader` per this function's contract.
        let reader = unsafe { abi::get(reader, "reader") }?;
        let parsed = callrec_header::from_header(&reader.header)?;
        // SAFETY: `header` per this function's contract.
        unsafe { abi::put(header, "header", parsed) }?;
        let recovered = callrec_recovery::from_recovery(reader.recovery.as_ref());
        // SAFETY: `recovery` per this function's contract.
        unsafe { abi::put(recovery, "recovery", recovered) }?;
        Ok(CALLREC_OK)
    })
}

/// Copies the next frame into `buf` (`*frame_len` = `rtp_len`); returns
/// `CALLREC_NONE` after the last frame.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_BUFFER_TOO_SMALL` (the frame is not
/// consumed); `CALLREC_ERR_IO`/`CALLREC_ERR_PARSE` naming the path (a file
/// shorter than its header says, in strict mode).
///
/// # Safety
/// `reader` is a live handle; `buf` points to `capacity` writable bytes;
/// `frame_len` to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_reader_next_frame(
    reader: *mut callrec_reader,
    buf: *mut u8,
    capacity: usize,
    frame_len: *mut usize,
) -> callrec_status {
    abi::run("callrec_reader_next_frame", || {
        // SAFETY: `reader` per this function's contract.
        let reader = unsafe { abi::get_mut(reader, "reader") }?;
        let rtp_len = usize::from(reader.reader.header().rtp_len());
        if frame_len.is_null() {
            return Err(Failure::null("frame_len"));
        }
        if capacity < rtp_len {
            return Err(Failure::too_small("buf", capacity, rtp_len));
        }
        let path = &reader.path;
        match reader
            .reader
            .next_frame()
            .map_err(|e| file_failure(path, &e))?
        {
            // SAFETY: `buf`/`capacity` and `frame_len` per this function's
            // contract.
            Some(frame) => unsafe { abi::write_out(frame, buf, capacity, frame_len, "buf") }?,
            None => return Ok(CALLREC_NONE),
        }
        Ok(CALLREC_OK)
    })
}

/// Positions the reader at frame `index` (the frame count itself is the
/// end).
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` past the end; `CALLREC_ERR_IO`.
///
/// # Safety
/// `reader` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_reader_seek_frame(
    reader: *mut callrec_reader,
    index: u32,
) -> callrec_status {
    abi::run("callrec_reader_seek_frame", || {
        // SAFETY: `reader` per this function's contract.
        let reader = unsafe { abi::get_mut(reader, "reader") }?;
        let path = &reader.path;
        reader
            .reader
            .seek_to_frame(index)
            .map_err(|e| file_failure(path, &e))?;
        Ok(CALLREC_OK)
    })
}

/// Closes a reader. NULL is a no-op.
///
/// # Safety
/// `reader` is NULL or a handle from [`callrec_reader_open`] not freed
/// before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_reader_free(reader: *mut callrec_reader) {
    // SAFETY: per this function's contract.
    unsafe { abi::free(reader) }
}

/// How a recorder records; fill with [`callrec_recorder_config_init`], then
/// set `dir` and what differs.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct callrec_recorder_config {
    /// The directory to record into (it must exist), NUL-terminated; copied
    /// by [`callrec_recorder_new`].
    pub dir: *const c_char,
    /// `CALLREC_CODEC_*`.
    pub codec: u32,
    /// Bytes per frame (160 for 20 ms of G.711).
    pub rtp_len: u16,
    /// RTP clock ticks per frame (160 for 20 ms at 8 kHz).
    pub increment: u16,
    /// Size limit of one file, header included; the recording goes on in
    /// `…_1.wav`, `…_2.wav` past it.
    pub max_file_size: u64,
    /// No file is opened with less free space than this (bytes).
    pub min_free_space: u64,
    /// Patch the header every this many frames so a power cut loses little;
    /// 0 only when a file is finished.
    pub header_interval: u32,
}

impl Default for callrec_recorder_config {
    fn default() -> Self {
        Self {
            dir: core::ptr::null(),
            codec: CALLREC_CODEC_PCMA,
            rtp_len: 160,
            increment: 160,
            max_file_size: callrec_file::DEFAULT_MAX_FILE_SIZE,
            min_free_space: callrec_file::DEFAULT_MIN_FREE_SPACE,
            header_interval: callrec_file::DEFAULT_HEADER_INTERVAL,
        }
    }
}

/// Fills `config` with the defaults: no directory, PCMA, 160-byte frames of
/// 160 ticks (20 ms), files up to 4 GiB, 1 MiB free space required, the
/// header patched every 250 frames (5 s).
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `config` points to a writable struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recorder_config_init(
    config: *mut callrec_recorder_config,
) -> callrec_status {
    abi::run("callrec_recorder_config_init", || {
        // SAFETY: `config` per this function's contract.
        unsafe { abi::put(config, "config", callrec_recorder_config::default()) }?;
        Ok(CALLREC_OK)
    })
}

/// The phone's local recorder. Made by [`callrec_recorder_new`], released
/// by [`callrec_recorder_free`]; `Send`, not `Sync`.
#[derive(Debug)]
pub struct callrec_recorder {
    recorder: Recorder<DirStorage>,
}

/// Makes a recorder for `config` (nothing is opened until start).
///
/// # Errors
/// `CALLREC_ERR_NULL` (`config`, `config->dir`, `out`);
/// `CALLREC_ERR_ARGUMENT` for an unknown codec, a zero `rtp_len` or a size
/// limit that cannot hold one frame.
///
/// # Safety
/// `config` points to a readable struct whose `dir` is a NUL-terminated
/// string; `out` to a writable handle pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recorder_new(
    config: *const callrec_recorder_config,
    out: *mut *mut callrec_recorder,
) -> callrec_status {
    abi::run("callrec_recorder_new", || {
        // SAFETY: `config` per this function's contract.
        let config = unsafe { abi::get(config, "config") }?;
        // SAFETY: `config->dir` per this function's contract.
        let dir = unsafe { abi::text(config.dir, "config->dir") }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let format = Header::new(
            codec(config.codec)?.into(),
            config.rtp_len,
            config.increment,
        )
        .map_err(|e| Failure::argument(format_args!("config: {e}")))?;
        let recorder_config = RecorderConfig::new(format)
            .max_file_size(config.max_file_size)
            .min_free_space(config.min_free_space)
            .header_interval(NonZeroU32::new(config.header_interval));
        let recorder = Recorder::new(DirStorage::new(dir), recorder_config)
            .map_err(|e| file_failure(&format!("recorder for {dir}"), &e))?;
        let handle = abi::into_handle(callrec_recorder { recorder });
        // SAFETY: `out` per this function's contract.
        unsafe { abi::put(out, "out", handle) }?;
        Ok(CALLREC_OK)
    })
}

/// The phone's local wall-clock time, which names the files
/// (`Record_YYYYMMDD_HHMMSS.wav`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct callrec_record_time {
    /// Year, 1970–9999.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day of the month, 1–31.
    pub day: u8,
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–59.
    pub second: u8,
}

fn recorder_failure(recorder: &callrec_recorder, e: &Error) -> Failure {
    let dir = recorder.recorder.storage().dir().display();
    file_failure(&format!("recording in {dir}"), e)
}

/// Starts a recording named after `time` (`_1`, `_2`, … when the name is
/// taken) after checking free space.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for a time out of range;
/// `CALLREC_ERR_STATE` when already recording; `CALLREC_ERR_STORAGE_FULL`
/// below the free-space threshold; `CALLREC_ERR_IO`. The recorder stays idle
/// on error.
///
/// # Safety
/// `recorder` is a live handle; `time` points to a readable struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recorder_start(
    recorder: *mut callrec_recorder,
    time: *const callrec_record_time,
) -> callrec_status {
    abi::run("callrec_recorder_start", || {
        // SAFETY: `recorder` per this function's contract.
        let recorder = unsafe { abi::get_mut(recorder, "recorder") }?;
        // SAFETY: `time` per this function's contract.
        let t = unsafe { abi::get(time, "time") }?;
        let time = RecordTime::new(t.year, t.month, t.day, t.hour, t.minute, t.second)
            .map_err(|e| file_failure("time", &e))?;
        let result = recorder.recorder.start(time);
        result.map_err(|e| recorder_failure(recorder, &e))?;
        Ok(CALLREC_OK)
    })
}

/// Records one frame of exactly `rtp_len` bytes (dropped while paused),
/// rotating to the next file at the size limit. Does not allocate.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for a frame of another length
/// (nothing written, the recording goes on); `CALLREC_ERR_STATE` when not
/// recording; `CALLREC_ERR_STORAGE_FULL` (the size limit was reached and too
/// little space is left for another file) and `CALLREC_ERR_INTERRUPTED`
/// (writing failed): both end the recording with every file finished and
/// playable.
///
/// # Safety
/// `recorder` is a live handle; `frame` points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recorder_write_frame(
    recorder: *mut callrec_recorder,
    frame: *const u8,
    len: usize,
) -> callrec_status {
    abi::run("callrec_recorder_write_frame", || {
        // SAFETY: `recorder` per this function's contract.
        let recorder = unsafe { abi::get_mut(recorder, "recorder") }?;
        // SAFETY: `frame`/`len` per this function's contract.
        let frame = unsafe { abi::slice(frame, len, "frame") }?;
        let result = recorder.recorder.write_frame(frame);
        result.map_err(|e| recorder_failure(recorder, &e))?;
        Ok(CALLREC_OK)
    })
}

/// Runs `op` on the recorder, its error named after the directory.
///
/// # Safety
/// `recorder` is NULL or a live handle.
unsafe fn recorder_call(
    name: &str,
    recorder: *mut callrec_recorder,
    op: impl FnOnce(&mut Recorder<DirStorage>) -> core::result::Result<(), Error>,
) -> callrec_status {
    abi::run(name, || {
        // SAFETY: forwarded contract.
        let handle = unsafe { abi::get_mut(recorder, "recorder") }?;
        let result = op(&mut handle.recorder);
        result.map_err(|e| recorder_failure(handle, &e))?;
        Ok(CALLREC_OK)
    })
}

/// Pauses: frames are dropped until resume; the header is patched now, so
/// the file is complete while paused.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_STATE` when idle;
/// `CALLREC_ERR_INTERRUPTED`.
///
/// # Safety
/// `recorder` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recorder_pause(recorder: *mut callrec_recorder) -> callrec_status {
    // SAFETY: `recorder` per this function's contract.
    unsafe { recorder_call("callrec_recorder_pause", recorder, |r| r.pause().map(drop)) }
}

/// Resumes after a pause, in the same file.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_STATE` when idle.
///
/// # Safety
/// `recorder` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recorder_resume(
    recorder: *mut callrec_recorder,
) -> callrec_status {
    // SAFETY: `recorder` per this function's contract.
    unsafe {
        recorder_call("callrec_recorder_resume", recorder, |r| {
            r.resume().map(drop)
        })
    }
}

/// Stops and finishes the recording; its files are then listed by
/// [`callrec_recorder_get_status`] and [`callrec_recorder_file`].
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_STATE` when idle;
/// `CALLREC_ERR_INTERRUPTED` if finishing the last file failed (it still
/// reads in recover mode). The recorder is idle afterwards either way.
///
/// # Safety
/// `recorder` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recorder_stop(recorder: *mut callrec_recorder) -> callrec_status {
    // SAFETY: `recorder` per this function's contract.
    unsafe { recorder_call("callrec_recorder_stop", recorder, |r| r.stop().map(drop)) }
}

/// A recorder's state and counters.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct callrec_recorder_status {
    /// `CALLREC_RECORDER_IDLE`, `_RECORDING` or `_PAUSED`.
    pub state: u32,
    /// Frames recorded in this (or the last) recording.
    pub frames: u64,
    /// Frames dropped while paused.
    pub frames_dropped: u64,
    /// Recorded media time in milliseconds.
    pub duration_ms: u64,
    /// Files of this (or the last) recording; the last one is being written
    /// while recording.
    pub file_count: usize,
}

/// What the recorder is doing and has recorded.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `recorder` is a live handle; `out` points to a writable struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recorder_get_status(
    recorder: *const callrec_recorder,
    out: *mut callrec_recorder_status,
) -> callrec_status {
    abi::run("callrec_recorder_get_status", || {
        // SAFETY: `recorder` per this function's contract.
        let recorder = unsafe { abi::get(recorder, "recorder") }?;
        let status = recorder.recorder.status();
        let state = match status.state {
            RecorderState::Recording => CALLREC_RECORDER_RECORDING,
            RecorderState::Paused => CALLREC_RECORDER_PAUSED,
            _ => CALLREC_RECORDER_IDLE,
        };
        let summary = callrec_recorder_status {
            state,
            frames: status.frames,
            frames_dropped: status.frames_dropped,
            duration_ms: status
                .duration
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            file_count: status.files.len(),
        };
        // SAFETY: `out` per this function's contract.
        unsafe { abi::put(out, "out", summary) }?;
        Ok(CALLREC_OK)
    })
}

/// File `index` of the current (or last) recording: its name in the
/// directory (NUL-terminated into `name`, at most
/// [`CALLREC_FILE_NAME_SIZE`] bytes are needed) and its header.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` when `index` is not below
/// `file_count`; `CALLREC_ERR_BUFFER_TOO_SMALL` for `name`.
///
/// # Safety
/// `recorder` is a live handle; `name` points to `name_capacity` writable
/// bytes; `header` to a writable struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recorder_file(
    recorder: *const callrec_recorder,
    index: usize,
    name: *mut c_char,
    name_capacity: usize,
    header: *mut callrec_header,
) -> callrec_status {
    abi::run("callrec_recorder_file", || {
        // SAFETY: `recorder` per this function's contract.
        let recorder = unsafe { abi::get(recorder, "recorder") }?;
        let files = recorder.recorder.status().files;
        let file = files.get(index).ok_or_else(|| {
            Failure::argument(format_args!(
                "file index {index}: the recording has {} files",
                files.len()
            ))
        })?;
        // SAFETY: `name`/`name_capacity` per this function's contract.
        let name = unsafe { abi::slice_mut(name, name_capacity, "name") }?;
        abi::put_text(name, file.name.as_bytes(), "name")?;
        // SAFETY: `header` per this function's contract.
        unsafe { abi::put(header, "header", callrec_header::from_header(&file.header)?) }?;
        Ok(CALLREC_OK)
    })
}

/// Releases a recorder; a recording in progress is stopped and finished
/// first. NULL is a no-op.
///
/// # Safety
/// `recorder` is NULL or a handle from [`callrec_recorder_new`] not freed
/// before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_recorder_free(recorder: *mut callrec_recorder) {
    abi::run("callrec_recorder_free", || {
        // SAFETY: per this function's contract; taken back once.
        if let Ok(handle) = unsafe { abi::get_mut(recorder, "recorder") } {
            // Finish what was written; an error here has no one to go to,
            // and the file still reads in recover mode.
            let _ = handle.recorder.stop();
        }
        // SAFETY: per this function's contract.
        unsafe { abi::free(recorder) };
        Ok(CALLREC_OK)
    });
}
