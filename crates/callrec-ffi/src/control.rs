//! The network recording control protocol: its four messages, and the
//! phone's session state machine with time passed in as milliseconds.

use core::ffi::c_char;
use core::num::NonZeroU16;
use core::time::Duration;
use std::time::Instant;

use callrec_control::bytes::{Buf, Bytes, BytesMut};
use callrec_control::{
    Codec, Direction, Host, Mac, Message, MessageError, PhoneEvent, PhoneSession, PhoneState,
    RecordStartRequest, RecordStartResponse, RecordStopRequest, RecordStopResponse, SessionError,
    SessionId, StartResult, StopResult, TerminateCause,
};

use crate::abi::{self, Failure, Result};
use crate::file::CALLREC_CODEC_PCMA;
use crate::rtp::os_rng;
use crate::{
    CALLREC_ERR_BUFFER_TOO_SMALL, CALLREC_ERR_PARSE, CALLREC_ERR_STATE, CALLREC_NONE, CALLREC_OK,
    callrec_status,
};

/// `cmd=RecordStartRequest`.
pub const CALLREC_CMD_START_REQUEST: u32 = 1;
/// `cmd=RecordStartResponse`.
pub const CALLREC_CMD_START_RESPONSE: u32 = 2;
/// `cmd=RecordStopRequest`.
pub const CALLREC_CMD_STOP_REQUEST: u32 = 3;
/// `cmd=RecordStopResponse`.
pub const CALLREC_CMD_STOP_RESPONSE: u32 = 4;
/// `dir=in`.
pub const CALLREC_DIR_IN: u32 = 0;
/// `dir=out`.
pub const CALLREC_DIR_OUT: u32 = 1;
/// `result=success`.
pub const CALLREC_RESULT_SUCCESS: u32 = 0;
/// `result=failed`.
pub const CALLREC_RESULT_FAILED: u32 = 1;

/// Size of `id`: 64 characters and the NUL.
pub const CALLREC_ID_SIZE: usize = 65;
/// Size of a number field: 128 bytes and the NUL.
pub const CALLREC_NUMBER_SIZE: usize = 129;
/// Size of a name or reason field: 256 bytes and the NUL.
pub const CALLREC_NAME_SIZE: usize = 257;
/// Size of `server`: a 253-byte DNS name, a trailing dot and the NUL, or an
/// IP address.
pub const CALLREC_HOST_SIZE: usize = 256;

const _: () = assert!(CALLREC_ID_SIZE == callrec_control::MAX_ID_LEN + 1);
const _: () = assert!(CALLREC_NUMBER_SIZE == callrec_control::MAX_NUMBER_LEN + 1);
const _: () = assert!(CALLREC_NAME_SIZE == callrec_control::MAX_NAME_LEN + 1);
const _: () = assert!(CALLREC_HOST_SIZE >= callrec_control::MAX_HOST_LEN + 2);

/// One control message, any of the four. Which fields apply:
///
/// | command | fields |
/// |---|---|
/// | `START_REQUEST` | `id device remote_number remote_name local_number local_name dir codec` |
/// | `START_RESPONSE` | `id result`, then `server port` (success) or `reason` (failed) |
/// | `STOP_REQUEST` | `id remote_number remote_name local_number local_name reason` |
/// | `STOP_RESPONSE` | `id result`, `reason` when failed |
///
/// Text fields are NUL-terminated UTF-8; unused fields are ignored when
/// writing and zero after parsing.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct callrec_control_message {
    /// `CALLREC_CMD_*`.
    pub command: u32,
    /// The session id: 1–64 printable ASCII characters.
    pub id: [c_char; CALLREC_ID_SIZE],
    /// The phone's MAC.
    pub device: [u8; 6],
    /// `CALLREC_DIR_*`.
    pub dir: u32,
    /// `CALLREC_CODEC_*`.
    pub codec: u32,
    /// The remote party's number.
    pub remote_number: [c_char; CALLREC_NUMBER_SIZE],
    /// The remote party's display name.
    pub remote_name: [c_char; CALLREC_NAME_SIZE],
    /// The phone's number.
    pub local_number: [c_char; CALLREC_NUMBER_SIZE],
    /// The phone's display name.
    pub local_name: [c_char; CALLREC_NAME_SIZE],
    /// `CALLREC_RESULT_*`.
    pub result: u32,
    /// Where to send RTP: an IP address or a DNS name.
    pub server: [c_char; CALLREC_HOST_SIZE],
    /// The RTP port, 1–65535.
    pub port: u16,
    /// Why a request failed, or why the phone stops.
    pub reason: [c_char; CALLREC_NAME_SIZE],
}

impl Default for callrec_control_message {
    fn default() -> Self {
        Self {
            command: 0,
            id: [0; CALLREC_ID_SIZE],
            device: [0; 6],
            dir: CALLREC_DIR_IN,
            codec: CALLREC_CODEC_PCMA,
            remote_number: [0; CALLREC_NUMBER_SIZE],
            remote_name: [0; CALLREC_NAME_SIZE],
            local_number: [0; CALLREC_NUMBER_SIZE],
            local_name: [0; CALLREC_NAME_SIZE],
            result: CALLREC_RESULT_SUCCESS,
            server: [0; CALLREC_HOST_SIZE],
            port: 0,
            reason: [0; CALLREC_NAME_SIZE],
        }
    }
}

/// The codec of a `CALLREC_CODEC_*` value (its RFC 3551 payload type).
fn codec(codec: u32) -> Result<Codec> {
    u8::try_from(codec)
        .ok()
        .and_then(Codec::from_payload_type)
        .ok_or_else(|| crate::file::unknown_codec(codec))
}

fn session_id(m: &callrec_control_message) -> Result<SessionId> {
    let id = abi::field_text(&m.id, "message.id")?;
    SessionId::new(id).map_err(|_| {
        Failure::argument(format_args!(
            "message.id {id:?} is not 1-64 printable ASCII characters"
        ))
    })
}

fn start_request(m: &callrec_control_message) -> Result<RecordStartRequest> {
    let dir = match m.dir {
        CALLREC_DIR_IN => Direction::In,
        CALLREC_DIR_OUT => Direction::Out,
        other => {
            return Err(Failure::argument(format_args!(
                "message.dir {other} is neither CALLREC_DIR_IN (0) nor CALLREC_DIR_OUT (1)"
            )));
        }
    };
    let mut request =
        RecordStartRequest::new(session_id(m)?, Mac::new(m.device), dir, codec(m.codec)?);
    request.remote_number = abi::field_text(&m.remote_number, "message.remote_number")?.into();
    request.remote_name = abi::field_text(&m.remote_name, "message.remote_name")?.into();
    request.local_number = abi::field_text(&m.local_number, "message.local_number")?.into();
    request.local_name = abi::field_text(&m.local_name, "message.local_name")?.into();
    Ok(request)
}

fn is_success(m: &callrec_control_message) -> Result<bool> {
    match m.result {
        CALLREC_RESULT_SUCCESS => Ok(true),
        CALLREC_RESULT_FAILED => Ok(false),
        other => Err(Failure::argument(format_args!(
            "message.result {other} is neither CALLREC_RESULT_SUCCESS (0) nor CALLREC_RESULT_FAILED (1)"
        ))),
    }
}

fn to_message(m: &callrec_control_message) -> Result<Message> {
    let reason = || abi::field_text(&m.reason, "message.reason");
    Ok(match m.command {
        CALLREC_CMD_START_REQUEST => start_request(m)?.into(),
        CALLREC_CMD_START_RESPONSE if is_success(m)? => {
            let server = abi::field_text(&m.server, "message.server")?;
            let host: Host = server.parse().map_err(|_| {
                Failure::argument(format_args!(
                    "message.server {server:?} is neither an IP address nor a DNS name"
                ))
            })?;
            let port =
                NonZeroU16::new(m.port).ok_or_else(|| Failure::argument("message.port is 0"))?;
            RecordStartResponse::success(session_id(m)?, host, port).into()
        }
        CALLREC_CMD_START_RESPONSE => RecordStartResponse::failed(session_id(m)?, reason()?).into(),
        CALLREC_CMD_STOP_REQUEST => {
            let mut stop = RecordStopRequest::for_start(
                &RecordStartRequest::new(
                    session_id(m)?,
                    Mac::new([0; 6]),
                    Direction::In,
                    Codec::Pcma,
                ),
                reason()?,
            );
            stop.remote_number = abi::field_text(&m.remote_number, "message.remote_number")?.into();
            stop.remote_name = abi::field_text(&m.remote_name, "message.remote_name")?.into();
            stop.local_number = abi::field_text(&m.local_number, "message.local_number")?.into();
            stop.local_name = abi::field_text(&m.local_name, "message.local_name")?.into();
            stop.into()
        }
        CALLREC_CMD_STOP_RESPONSE if is_success(m)? => {
            RecordStopResponse::success(session_id(m)?).into()
        }
        CALLREC_CMD_STOP_RESPONSE => RecordStopResponse::failed(session_id(m)?, reason()?).into(),
        other => {
            return Err(Failure::argument(format_args!(
                "message.command {other} is not one of CALLREC_CMD_* (1-4)"
            )));
        }
    })
}

fn from_message(message: &Message) -> Result<callrec_control_message> {
    let mut m = callrec_control_message::default();
    abi::put_text(&mut m.id, message.id().as_str().as_bytes(), "id")?;
    let mut names =
        |remote_number: &str, remote_name: &str, local_number: &str, local_name: &str| {
            abi::put_text(
                &mut m.remote_number,
                remote_number.as_bytes(),
                "remote_number",
            )?;
            abi::put_text(&mut m.remote_name, remote_name.as_bytes(), "remote_name")?;
            abi::put_text(&mut m.local_number, local_number.as_bytes(), "local_number")?;
            abi::put_text(&mut m.local_name, local_name.as_bytes(), "local_name")
        };
    match message {
        Message::StartRequest(r) => {
            names(
                &r.remote_number,
                &r.remote_name,
                &r.local_number,
                &r.local_name,
            )?;
            m.command = CALLREC_CMD_START_REQUEST;
            m.device = r.device.octets();
            m.dir = match r.dir {
                Direction::Out => CALLREC_DIR_OUT,
                _ => CALLREC_DIR_IN,
            };
            m.codec = u32::from(r.codec.payload_type());
        }
        Message::StopRequest(r) => {
            names(
                &r.remote_number,
                &r.remote_name,
                &r.local_number,
                &r.local_name,
            )?;
            m.command = CALLREC_CMD_STOP_REQUEST;
            abi::put_text(&mut m.reason, r.reason.as_bytes(), "reason")?;
        }
        Message::StartResponse(r) => {
            m.command = CALLREC_CMD_START_RESPONSE;
            match &r.result {
                StartResult::Success { server, port } => {
                    abi::put_text(&mut m.server, server.to_string().as_bytes(), "server")?;
                    m.port = port.get();
                }
                StartResult::Failed { reason } => {
                    m.result = CALLREC_RESULT_FAILED;
                    abi::put_text(&mut m.reason, reason.as_bytes(), "reason")?;
                }
                _ => {}
            }
        }
        Message::StopResponse(r) => {
            m.command = CALLREC_CMD_STOP_RESPONSE;
            if let StopResult::Failed { reason } = &r.result {
                m.result = CALLREC_RESULT_FAILED;
                abi::put_text(&mut m.reason, reason.as_bytes(), "reason")?;
            }
        }
        _ => {}
    }
    Ok(m)
}

fn message_failure(e: &MessageError) -> Failure {
    Failure::new(CALLREC_ERR_PARSE, e)
}

/// Empties `message` and sets its command (`CALLREC_CMD_*`), ready to fill.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for an unknown command.
///
/// # Safety
/// `message` points to a writable struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_control_message_init(
    message: *mut callrec_control_message,
    command: u32,
) -> callrec_status {
    abi::run("callrec_control_message_init", || {
        if !(CALLREC_CMD_START_REQUEST..=CALLREC_CMD_STOP_RESPONSE).contains(&command) {
            return Err(Failure::argument(format_args!(
                "command {command} is not one of CALLREC_CMD_* (1-4)"
            )));
        }
        let init = callrec_control_message {
            command,
            ..callrec_control_message::default()
        };
        // SAFETY: `message` per this function's contract.
        unsafe { abi::put(message, "message", init) }?;
        Ok(CALLREC_OK)
    })
}

/// Parses one message (`key=value&…`; a trailing `\r\n`, `\n` or NUL is
/// allowed).
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_PARSE` naming the missing, repeated or
/// bad key, with the message's `cmd` and `id` when they could be read.
///
/// # Safety
/// `bytes` points to `len` readable bytes; `out` to a writable struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_control_message_parse(
    bytes: *const u8,
    len: usize,
    out: *mut callrec_control_message,
) -> callrec_status {
    abi::run("callrec_control_message_parse", || {
        // SAFETY: `bytes`/`len` per this function's contract.
        let mut input = unsafe { abi::slice(bytes, len, "bytes") }?;
        // SAFETY: `out` per this function's contract.
        let out = unsafe { abi::get_mut(out, "out") }?;
        for terminator in [&b"\0"[..], b"\n", b"\r"] {
            input = input.strip_suffix(terminator).unwrap_or(input);
        }
        let message = Message::parse(input).map_err(|e| message_failure(&e))?;
        *out = from_message(&message)?;
        Ok(CALLREC_OK)
    })
}

/// Writes `message` as it goes on the wire, terminator (`\r\n`) included,
/// into `buf`.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` naming the field that breaks
/// its rule; `CALLREC_ERR_BUFFER_TOO_SMALL` (the longest message is about
/// 2.5 KiB).
///
/// # Safety
/// `message` points to a readable struct; `buf` to `capacity` writable
/// bytes; `written` to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_control_message_write(
    message: *const callrec_control_message,
    buf: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> callrec_status {
    abi::run("callrec_control_message_write", || {
        // SAFETY: `message` per this function's contract.
        let message = unsafe { abi::get(message, "message") }?;
        let message = to_message(message)?;
        let mut frame = BytesMut::new();
        callrec_control::write_frame(&message, &mut frame)
            .map_err(|e| Failure::argument(format_args!("message: {e}")))?;
        // SAFETY: `buf`/`capacity`/`written` per this function's contract.
        unsafe { abi::write_out(&frame, buf, capacity, written, "buf") }?;
        Ok(CALLREC_OK)
    })
}

/// Writes a new random session id (32 hex digits from the OS random
/// source, NUL-terminated) into `id`, which holds at least 33 bytes
/// ([`CALLREC_ID_SIZE`] fits).
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_BUFFER_TOO_SMALL`; `CALLREC_ERR_IO` when
/// the OS random source fails.
///
/// # Safety
/// `id` points to `capacity` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_control_session_id_generate(
    id: *mut c_char,
    capacity: usize,
) -> callrec_status {
    abi::run("callrec_control_session_id_generate", || {
        // SAFETY: `id`/`capacity` per this function's contract.
        let out = unsafe { abi::slice_mut(id, capacity, "id") }?;
        if out.is_empty() {
            return Err(Failure::null("id"));
        }
        let generated = SessionId::generate(&mut os_rng()?);
        abi::put_text(out, generated.as_str().as_bytes(), "id")?;
        Ok(CALLREC_OK)
    })
}

/// Phone session state: start request sent, waiting for the answer.
pub const CALLREC_PHONE_AWAITING_START: u32 = 0;
/// Phone session state: accepted; stream RTP to the event's server and port.
pub const CALLREC_PHONE_RECORDING: u32 = 1;
/// Phone session state: stop request sent, waiting for the answer.
pub const CALLREC_PHONE_AWAITING_STOP: u32 = 2;
/// Phone session state: the server refused (final).
pub const CALLREC_PHONE_FAILED: u32 = 3;
/// Phone session state: the recording ended normally (final).
pub const CALLREC_PHONE_STOPPED: u32 = 4;
/// Phone session state: the connection failed, timed out or broke the
/// protocol (final); close the connection.
pub const CALLREC_PHONE_TERMINATED: u32 = 5;

/// Event: start RTP towards `server:port`.
pub const CALLREC_PHONE_EVENT_RECORDING: u32 = 1;
/// Event: the server refused (`reason`); show the failure prompt.
pub const CALLREC_PHONE_EVENT_FAILED: u32 = 2;
/// Event: recording stopped (`result`, `reason`); stop sending RTP.
pub const CALLREC_PHONE_EVENT_STOPPED: u32 = 3;
/// Event: the session is over (`cause`, `reason` describes it); stop RTP,
/// close the connection.
pub const CALLREC_PHONE_EVENT_TERMINATED: u32 = 4;

/// Termination cause: the TCP connection closed or failed.
pub const CALLREC_TERMINATE_CONNECTION_LOST: u32 = 1;
/// Termination cause: no answer within the timeout.
pub const CALLREC_TERMINATE_TIMEOUT: u32 = 2;
/// Termination cause: the server broke the protocol.
pub const CALLREC_TERMINATE_PROTOCOL: u32 = 3;

/// What a phone session reports.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct callrec_phone_event {
    /// `CALLREC_PHONE_EVENT_*`.
    pub kind: u32,
    /// `RECORDING`: the RTP destination address (IP or DNS name).
    pub server: [c_char; CALLREC_HOST_SIZE],
    /// `RECORDING`: the RTP destination port.
    pub port: u16,
    /// `STOPPED`: `CALLREC_RESULT_*`.
    pub result: u32,
    /// `TERMINATED`: `CALLREC_TERMINATE_*`.
    pub cause: u32,
    /// `FAILED`, `STOPPED` (failed): the server's reason; `TERMINATED`: a
    /// description of the cause (cut to fit).
    pub reason: [c_char; CALLREC_NAME_SIZE],
}

impl Default for callrec_phone_event {
    fn default() -> Self {
        Self {
            kind: 0,
            server: [0; CALLREC_HOST_SIZE],
            port: 0,
            result: CALLREC_RESULT_SUCCESS,
            cause: 0,
            reason: [0; CALLREC_NAME_SIZE],
        }
    }
}

/// Up to `max` bytes of `text`, cut at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn event_struct(event: &PhoneEvent) -> Result<callrec_phone_event> {
    let mut out = callrec_phone_event::default();
    match event {
        PhoneEvent::Recording { server, port } => {
            out.kind = CALLREC_PHONE_EVENT_RECORDING;
            abi::put_text(&mut out.server, server.to_string().as_bytes(), "server")?;
            out.port = port.get();
        }
        PhoneEvent::Failed { reason } => {
            out.kind = CALLREC_PHONE_EVENT_FAILED;
            abi::put_text(
                &mut out.reason,
                cut(reason, CALLREC_NAME_SIZE - 1).as_bytes(),
                "reason",
            )?;
        }
        PhoneEvent::Stopped { result } => {
            out.kind = CALLREC_PHONE_EVENT_STOPPED;
            if let StopResult::Failed { reason } = result {
                out.result = CALLREC_RESULT_FAILED;
                abi::put_text(
                    &mut out.reason,
                    cut(reason, CALLREC_NAME_SIZE - 1).as_bytes(),
                    "reason",
                )?;
            }
        }
        PhoneEvent::Terminated(cause) => {
            out.kind = CALLREC_PHONE_EVENT_TERMINATED;
            let (code, text) = match cause {
                TerminateCause::ConnectionLost => (
                    CALLREC_TERMINATE_CONNECTION_LOST,
                    "the connection was lost".to_owned(),
                ),
                TerminateCause::Timeout { waiting_for } => (
                    CALLREC_TERMINATE_TIMEOUT,
                    format!("no {waiting_for} within the timeout"),
                ),
                TerminateCause::Protocol(e) => (CALLREC_TERMINATE_PROTOCOL, e.to_string()),
                _ => (CALLREC_TERMINATE_PROTOCOL, format!("{cause:?}")),
            };
            out.cause = code;
            let text = text.replace('\0', " ");
            abi::put_text(
                &mut out.reason,
                cut(&text, CALLREC_NAME_SIZE - 1).as_bytes(),
                "reason",
            )?;
        }
        _ => {}
    }
    Ok(out)
}

/// The phone's side of one network recording: start → recording → stop.
/// Made by [`callrec_phone_session_new`], released by
/// [`callrec_phone_session_free`]; `Send`, not `Sync`.
///
/// It does no I/O: the caller writes what `poll_transmit` gives to the TCP
/// connection, hands it what it reads (`handle_data`, `handle_eof`), and
/// calls `handle_timeout` at `poll_timeout`.
#[derive(Debug)]
pub struct callrec_phone_session {
    session: PhoneSession,
    /// The `Instant` standing for `epoch_ms` (the time given at creation).
    epoch: Instant,
    epoch_ms: u64,
    /// Bytes taken from the session but not yet given to the caller.
    pending: Bytes,
}

impl callrec_phone_session {
    fn instant(&self, now_ms: u64) -> Result<Instant> {
        let at = if now_ms >= self.epoch_ms {
            self.epoch
                .checked_add(Duration::from_millis(now_ms - self.epoch_ms))
        } else {
            self.epoch
                .checked_sub(Duration::from_millis(self.epoch_ms - now_ms))
        };
        at.ok_or_else(|| {
            Failure::argument(format_args!(
                "now_ms {now_ms} is too far from the session's start at {} ms",
                self.epoch_ms
            ))
        })
    }

    fn millis(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch);
        let ms = u64::try_from(since.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        self.epoch_ms.saturating_add(ms)
    }
}

/// Starts a session for `start` (a `CALLREC_CMD_START_REQUEST` message):
/// the start request is queued for sending and its answer awaited for
/// `timeout_ms` (0: 5000). `now_ms` is the caller's monotonic clock in
/// milliseconds (any epoch); every later call passes the same clock.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` when `start` is not a start
/// request or breaks a field rule.
///
/// # Safety
/// `start` points to a readable struct; `out` to a writable handle pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_phone_session_new(
    start: *const callrec_control_message,
    timeout_ms: u32,
    now_ms: u64,
    out: *mut *mut callrec_phone_session,
) -> callrec_status {
    abi::run("callrec_phone_session_new", || {
        // SAFETY: `start` per this function's contract.
        let start = unsafe { abi::get(start, "start") }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        if start.command != CALLREC_CMD_START_REQUEST {
            return Err(Failure::argument(format_args!(
                "start.command is {}, not CALLREC_CMD_START_REQUEST (1)",
                start.command
            )));
        }
        let request = start_request(start)?;
        let timeout = match timeout_ms {
            0 => callrec_control::DEFAULT_RESPONSE_TIMEOUT,
            ms => Duration::from_millis(u64::from(ms)),
        };
        let epoch = Instant::now();
        let session = PhoneSession::with_timeout(request, timeout, epoch)
            .map_err(|e| Failure::argument(format_args!("start: {e}")))?;
        let handle = abi::into_handle(callrec_phone_session {
            session,
            epoch,
            epoch_ms: now_ms,
            pending: Bytes::new(),
        });
        // SAFETY: `out` per this function's contract.
        unsafe { abi::put(out, "out", handle) }?;
        Ok(CALLREC_OK)
    })
}

/// Hands the session `len` bytes read from the connection; events follow
/// from `poll_event`.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for `now_ms` out of range.
///
/// # Safety
/// `session` is a live handle; `data` points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_phone_session_handle_data(
    session: *mut callrec_phone_session,
    data: *const u8,
    len: usize,
    now_ms: u64,
) -> callrec_status {
    abi::run("callrec_phone_session_handle_data", || {
        // SAFETY: `session` per this function's contract.
        let s = unsafe { abi::get_mut(session, "session") }?;
        // SAFETY: `data`/`len` per this function's contract.
        let data = unsafe { abi::slice(data, len, "data") }?;
        let now = s.instant(now_ms)?;
        s.session.handle_data(data, now);
        Ok(CALLREC_OK)
    })
}

/// Runs `event` on the session at `now_ms` on the caller's clock.
///
/// # Safety
/// `session` is NULL or a live handle.
unsafe fn at_time(
    name: &str,
    session: *mut callrec_phone_session,
    now_ms: u64,
    event: impl FnOnce(&mut PhoneSession, Instant),
) -> callrec_status {
    abi::run(name, || {
        // SAFETY: forwarded contract.
        let s = unsafe { abi::get_mut(session, "session") }?;
        let now = s.instant(now_ms)?;
        event(&mut s.session, now);
        Ok(CALLREC_OK)
    })
}

/// The server closed the connection (a read returned 0): an unterminated
/// last message still counts, then the session ends.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for `now_ms` out of range.
///
/// # Safety
/// `session` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_phone_session_handle_eof(
    session: *mut callrec_phone_session,
    now_ms: u64,
) -> callrec_status {
    // SAFETY: `session` per this function's contract.
    unsafe {
        at_time(
            "callrec_phone_session_handle_eof",
            session,
            now_ms,
            PhoneSession::handle_eof,
        )
    }
}

/// Time has passed: an answer not received by its deadline ends the
/// session (`TERMINATED`, cause `TIMEOUT`).
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` for `now_ms` out of range.
///
/// # Safety
/// `session` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_phone_session_handle_timeout(
    session: *mut callrec_phone_session,
    now_ms: u64,
) -> callrec_status {
    // SAFETY: `session` per this function's contract.
    unsafe {
        at_time(
            "callrec_phone_session_handle_timeout",
            session,
            now_ms,
            PhoneSession::handle_timeout,
        )
    }
}

/// The connection failed (a read or write error): the session ends.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `session` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_phone_session_connection_lost(
    session: *mut callrec_phone_session,
) -> callrec_status {
    abi::run("callrec_phone_session_connection_lost", || {
        // SAFETY: `session` per this function's contract.
        let s = unsafe { abi::get_mut(session, "session") }?;
        s.session.connection_lost();
        Ok(CALLREC_OK)
    })
}

/// The user stops recording: the stop request (repeating the start's
/// numbers and names, with `reason`, which may be NULL) is queued and its
/// answer awaited.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_STATE` unless recording or awaiting the
/// start's answer; `CALLREC_ERR_ARGUMENT` for a reason over 256 bytes or
/// `now_ms` out of range.
///
/// # Safety
/// `session` is a live handle; `reason` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_phone_session_stop(
    session: *mut callrec_phone_session,
    reason: *const c_char,
    now_ms: u64,
) -> callrec_status {
    abi::run("callrec_phone_session_stop", || {
        // SAFETY: `session` per this function's contract.
        let s = unsafe { abi::get_mut(session, "session") }?;
        // SAFETY: `reason` per this function's contract.
        let reason = unsafe { abi::text_or_empty(reason, "reason") }?;
        let now = s.instant(now_ms)?;
        s.session.stop(reason, now).map_err(|e| match e {
            SessionError::NotActive => Failure::new(
                CALLREC_ERR_STATE,
                format_args!("session {}: {e}", s.session.id()),
            ),
            _ => Failure::argument(format_args!("session {}: {e}", s.session.id())),
        })?;
        Ok(CALLREC_OK)
    })
}

/// Bytes to write to the connection: copies up to `capacity` of them into
/// `buf` (`*written`); the rest comes from the next call. Returns
/// `CALLREC_NONE` when there is nothing to send.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_BUFFER_TOO_SMALL` for a zero capacity.
///
/// # Safety
/// `session` is a live handle; `buf` points to `capacity` writable bytes;
/// `written` to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_phone_session_poll_transmit(
    session: *mut callrec_phone_session,
    buf: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> callrec_status {
    abi::run("callrec_phone_session_poll_transmit", || {
        // SAFETY: `session` per this function's contract.
        let s = unsafe { abi::get_mut(session, "session") }?;
        // SAFETY: `buf`/`capacity` per this function's contract.
        let out = unsafe { abi::slice_mut(buf, capacity, "buf") }?;
        if written.is_null() {
            return Err(Failure::null("written"));
        }
        if matches!(s.session.state(), PhoneState::Terminated(_)) {
            // A terminated session sends nothing more, as the session itself
            // clears its queue; bytes handed out in part are dropped too.
            s.pending = Bytes::new();
        }
        if s.pending.is_empty() {
            s.pending = s.session.poll_transmit().unwrap_or_default();
        }
        if s.pending.is_empty() {
            return Ok(CALLREC_NONE);
        }
        if out.is_empty() {
            return Err(Failure::new(
                CALLREC_ERR_BUFFER_TOO_SMALL,
                "buf has no room (capacity 0)",
            ));
        }
        let n = out.len().min(s.pending.len());
        out[..n].copy_from_slice(&s.pending[..n]);
        s.pending.advance(n);
        // SAFETY: `written` per this function's contract.
        unsafe { abi::put(written, "written", n) }?;
        Ok(CALLREC_OK)
    })
}

/// The next event into `*event`, or `CALLREC_NONE`.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `session` is a live handle; `event` points to a writable struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_phone_session_poll_event(
    session: *mut callrec_phone_session,
    event: *mut callrec_phone_event,
) -> callrec_status {
    abi::run("callrec_phone_session_poll_event", || {
        // SAFETY: `session` per this function's contract.
        let s = unsafe { abi::get_mut(session, "session") }?;
        // SAFETY: `event` per this function's contract.
        let out = unsafe { abi::get_mut(event, "event") }?;
        let Some(next) = s.session.poll_event() else {
            return Ok(CALLREC_NONE);
        };
        *out = event_struct(&next)?;
        Ok(CALLREC_OK)
    })
}

/// When `handle_timeout` must be called next (`*deadline_ms`, on the
/// caller's clock), or `CALLREC_NONE` when nothing is awaited.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `session` is a live handle; `deadline_ms` points to a writable
/// `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_phone_session_poll_timeout(
    session: *const callrec_phone_session,
    deadline_ms: *mut u64,
) -> callrec_status {
    abi::run("callrec_phone_session_poll_timeout", || {
        // SAFETY: `session` per this function's contract.
        let s = unsafe { abi::get(session, "session") }?;
        if deadline_ms.is_null() {
            return Err(Failure::null("deadline_ms"));
        }
        let Some(deadline) = s.session.poll_timeout() else {
            return Ok(CALLREC_NONE);
        };
        // SAFETY: `deadline_ms` per this function's contract.
        unsafe { abi::put(deadline_ms, "deadline_ms", s.millis(deadline)) }?;
        Ok(CALLREC_OK)
    })
}

/// Where the session is (`CALLREC_PHONE_*`); `FAILED`, `STOPPED` and
/// `TERMINATED` are final.
///
/// # Errors
/// `CALLREC_ERR_NULL`.
///
/// # Safety
/// `session` is a live handle; `state` points to a writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_phone_session_state(
    session: *const callrec_phone_session,
    state: *mut u32,
) -> callrec_status {
    abi::run("callrec_phone_session_state", || {
        // SAFETY: `session` per this function's contract.
        let s = unsafe { abi::get(session, "session") }?;
        let value = match s.session.state() {
            PhoneState::AwaitingStart => CALLREC_PHONE_AWAITING_START,
            PhoneState::Recording { .. } => CALLREC_PHONE_RECORDING,
            PhoneState::AwaitingStop => CALLREC_PHONE_AWAITING_STOP,
            PhoneState::Failed { .. } => CALLREC_PHONE_FAILED,
            PhoneState::Stopped => CALLREC_PHONE_STOPPED,
            _ => CALLREC_PHONE_TERMINATED,
        };
        // SAFETY: `state` per this function's contract.
        unsafe { abi::put(state, "state", value) }?;
        Ok(CALLREC_OK)
    })
}

/// Releases a session. NULL is a no-op.
///
/// # Safety
/// `session` is NULL or a handle from [`callrec_phone_session_new`] not
/// freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_phone_session_free(session: *mut callrec_phone_session) {
    // SAFETY: per this function's contract.
    unsafe { abi::free(session) }
}
