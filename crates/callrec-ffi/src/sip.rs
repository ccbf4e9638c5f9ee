//! SIP: the `Record: on/off` INFO, the reply's status, and URL record.

use core::ffi::c_char;

use callrec_sip::{
    Dialog, NameAddr, Record, SipMessage, StartLine, Transport, UrlRecord, UrlVars, WriteError,
};

use crate::abi::{self, Failure};
use crate::rtp::os_rng;
use crate::{CALLREC_ERR_BUFFER_TOO_SMALL, CALLREC_ERR_PARSE, CALLREC_OK, callrec_status};

/// `Record: off`.
pub const CALLREC_RECORD_OFF: u32 = 0;
/// `Record: on`.
pub const CALLREC_RECORD_ON: u32 = 1;
/// SIP over UDP (`Via: SIP/2.0/UDP`).
pub const CALLREC_TRANSPORT_UDP: u32 = 0;
/// SIP over TCP.
pub const CALLREC_TRANSPORT_TCP: u32 = 1;
/// SIP over TLS.
pub const CALLREC_TRANSPORT_TLS: u32 = 2;
/// Most `Route` entries a dialog can carry here.
pub const CALLREC_SIP_MAX_ROUTES: usize = 16;

/// An established call's dialog, as the phone's SIP stack knows it. Strings
/// are NUL-terminated UTF-8; NULL optional ones are left out.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct callrec_sip_dialog {
    /// `Call-ID` (required).
    pub call_id: *const c_char,
    /// The phone's URI, for `From` (required).
    pub local_uri: *const c_char,
    /// The phone's display name (optional).
    pub local_display_name: *const c_char,
    /// The phone's tag (required).
    pub local_tag: *const c_char,
    /// The remote party's URI, for `To` (required).
    pub remote_uri: *const c_char,
    /// The remote display name (optional).
    pub remote_display_name: *const c_char,
    /// The remote tag (required).
    pub remote_tag: *const c_char,
    /// The remote target (the peer's `Contact`), the Request-URI (required).
    pub remote_target: *const c_char,
    /// The phone's `Contact` URI (required).
    pub local_contact: *const c_char,
    /// `host:port` of the phone for `Via` (required).
    pub sent_by: *const c_char,
    /// The route set, `route_count` URIs (NULL when empty).
    pub route_set: *const *const c_char,
    /// Entries in `route_set`, at most [`CALLREC_SIP_MAX_ROUTES`].
    pub route_count: usize,
    /// `CALLREC_TRANSPORT_*`.
    pub transport: u32,
    /// The CSeq number of the last request the phone sent in the dialog (1
    /// for the INVITE); each INFO written uses the next one and stores it
    /// here.
    pub local_cseq: u32,
}

impl Default for callrec_sip_dialog {
    fn default() -> Self {
        Self {
            call_id: core::ptr::null(),
            local_uri: core::ptr::null(),
            local_display_name: core::ptr::null(),
            local_tag: core::ptr::null(),
            remote_uri: core::ptr::null(),
            remote_display_name: core::ptr::null(),
            remote_tag: core::ptr::null(),
            remote_target: core::ptr::null(),
            local_contact: core::ptr::null(),
            sent_by: core::ptr::null(),
            route_set: core::ptr::null(),
            route_count: 0,
            transport: CALLREC_TRANSPORT_UDP,
            local_cseq: 1,
        }
    }
}

/// Writes the in-dialog `INFO` with `Record: on` or `off`
/// (`CALLREC_RECORD_*`) into `buf` and advances `dialog->local_cseq` to its
/// CSeq;
/// `*written` is its length. `user_agent` may be NULL. The `Via` branch is
/// random (OS source). Header injection (CR, LF, NUL in any value) is
/// refused.
///
/// # Errors
/// `CALLREC_ERR_NULL` for a required pointer; `CALLREC_ERR_ARGUMENT` naming
/// the field that cannot be carried, or too many routes;
/// `CALLREC_ERR_BUFFER_TOO_SMALL`. The dialog is unchanged on error.
///
/// # Safety
/// `dialog` points to a writable struct whose strings are NUL-terminated
/// and whose `route_set` has `route_count` string pointers; `user_agent` is
/// NULL or NUL-terminated; `buf` points to `capacity` writable bytes;
/// `written` to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_sip_record_info_write(
    dialog: *mut callrec_sip_dialog,
    record: u32,
    user_agent: *const c_char,
    buf: *mut u8,
    capacity: usize,
    written: *mut usize,
) -> callrec_status {
    abi::run("callrec_sip_record_info_write", || {
        // SAFETY: `dialog` per this function's contract.
        let d = unsafe { abi::get_mut(dialog, "dialog") }?;
        let record = match record {
            CALLREC_RECORD_OFF => Record::Off,
            CALLREC_RECORD_ON => Record::On,
            other => {
                return Err(Failure::argument(format_args!(
                    "record {other} is neither CALLREC_RECORD_OFF (0) nor CALLREC_RECORD_ON (1)"
                )));
            }
        };
        let transport = match d.transport {
            CALLREC_TRANSPORT_UDP => Transport::Udp,
            CALLREC_TRANSPORT_TCP => Transport::Tcp,
            CALLREC_TRANSPORT_TLS => Transport::Tls,
            other => {
                return Err(Failure::argument(format_args!(
                    "dialog->transport {other} is not CALLREC_TRANSPORT_UDP, _TCP or _TLS"
                )));
            }
        };
        if d.route_count > CALLREC_SIP_MAX_ROUTES {
            return Err(Failure::argument(format_args!(
                "dialog->route_count {} is over {CALLREC_SIP_MAX_ROUTES}",
                d.route_count
            )));
        }
        // SAFETY: `route_set` has `route_count` pointers per the contract.
        let route_ptrs = unsafe { abi::slice(d.route_set, d.route_count, "dialog->route_set") }?;
        let mut routes = [""; CALLREC_SIP_MAX_ROUTES];
        for (slot, &ptr) in routes.iter_mut().zip(route_ptrs) {
            // SAFETY: each route is NUL-terminated per the contract.
            *slot = unsafe { abi::text(ptr, "dialog->route_set entry") }?;
        }
        // SAFETY: every string below is NUL-terminated per the contract.
        let text = |ptr: *const c_char, what: &str| unsafe { abi::text(ptr, what) };
        // SAFETY: as above; NULL is allowed.
        let optional = |ptr: *const c_char, what: &str| unsafe { abi::text_or_empty(ptr, what) };
        let local = NameAddr::new(text(d.local_uri, "dialog->local_uri")?)
            .display_name(optional(
                d.local_display_name,
                "dialog->local_display_name",
            )?)
            .tag(text(d.local_tag, "dialog->local_tag")?);
        let remote = NameAddr::new(text(d.remote_uri, "dialog->remote_uri")?)
            .display_name(optional(
                d.remote_display_name,
                "dialog->remote_display_name",
            )?)
            .tag(text(d.remote_tag, "dialog->remote_tag")?);
        let mut sip_dialog = Dialog::new(text(d.call_id, "dialog->call_id")?)
            .local(local)
            .remote(remote)
            .remote_target(text(d.remote_target, "dialog->remote_target")?)
            .local_contact(text(d.local_contact, "dialog->local_contact")?)
            .sent_by(text(d.sent_by, "dialog->sent_by")?)
            .route_set(&routes[..d.route_count])
            .transport(transport)
            .local_cseq(d.local_cseq);
        let user_agent = optional(user_agent, "user_agent")?;
        // SAFETY: `buf`/`capacity` per this function's contract.
        let out = unsafe { abi::slice_mut(buf, capacity, "buf") }?;
        if written.is_null() {
            return Err(Failure::null("written"));
        }
        let mut builder = sip_dialog.record_info(record);
        if !user_agent.is_empty() {
            builder = builder.user_agent(user_agent);
        }
        let n = builder.write(&mut os_rng()?, out).map_err(|e| match e {
            WriteError::BufferTooShort { .. } => Failure::new(CALLREC_ERR_BUFFER_TOO_SMALL, e),
            _ => Failure::argument(e),
        })?;
        d.local_cseq = sip_dialog.local_cseq;
        // SAFETY: `written` per this function's contract.
        unsafe { abi::put(written, "written", n) }?;
        Ok(CALLREC_OK)
    })
}

/// A parsed SIP response: its status and the headers that match it to the
/// request. Pointers go into the parsed buffer (valid while it is); text is
/// not NUL-terminated (use the lengths).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct callrec_sip_response {
    /// The status code (200, 403, 481, …).
    pub status_code: u16,
    /// The reason phrase.
    pub reason: *const u8,
    /// Bytes of the reason phrase.
    pub reason_len: usize,
    /// The CSeq number, 0 when the header is missing or malformed.
    pub cseq: u32,
    /// The CSeq method (`INFO`), NULL when missing.
    pub cseq_method: *const u8,
    /// Bytes of the CSeq method.
    pub cseq_method_len: usize,
    /// The `Call-ID`, NULL when missing.
    pub call_id: *const u8,
    /// Bytes of the `Call-ID`.
    pub call_id_len: usize,
}

impl Default for callrec_sip_response {
    fn default() -> Self {
        Self {
            status_code: 0,
            reason: core::ptr::null(),
            reason_len: 0,
            cseq: 0,
            cseq_method: core::ptr::null(),
            cseq_method_len: 0,
            call_id: core::ptr::null(),
            call_id_len: 0,
        }
    }
}

/// Parses the response to the INFO (or any SIP response): status code,
/// reason, CSeq and Call-ID, to match it to the request. Does not allocate
/// beyond the parser's header table.
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_PARSE` naming what is wrong, or that the
/// message is a request.
///
/// # Safety
/// `message` points to `len` readable bytes that stay unchanged while
/// `out`'s pointers are used; `out` points to a writable struct.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_sip_response_parse(
    message: *const u8,
    len: usize,
    out: *mut callrec_sip_response,
) -> callrec_status {
    abi::run("callrec_sip_response_parse", || {
        // SAFETY: `message`/`len` per this function's contract.
        let bytes = unsafe { abi::slice(message, len, "message") }?;
        // SAFETY: `out` per this function's contract.
        let out = unsafe { abi::get_mut(out, "out") }?;
        let parsed = SipMessage::parse(bytes).map_err(|e| Failure::new(CALLREC_ERR_PARSE, e))?;
        let (status_code, reason) = match parsed.start_line() {
            StartLine::Response { code, reason } => (code, reason),
            StartLine::Request { method, .. } => {
                return Err(Failure::new(
                    CALLREC_ERR_PARSE,
                    format_args!("a {method} request, not a response"),
                ));
            }
            _ => return Err(Failure::new(CALLREC_ERR_PARSE, "not a SIP response")),
        };
        let mut response = callrec_sip_response {
            status_code,
            reason: reason.as_ptr(),
            reason_len: reason.len(),
            ..callrec_sip_response::default()
        };
        if let Some(cseq) = parsed.cseq() {
            response.cseq = cseq.number;
            response.cseq_method = cseq.method.as_ptr();
            response.cseq_method_len = cseq.method.len();
        }
        if let Some(call_id) = parsed.call_id() {
            response.call_id = call_id.as_ptr();
            response.call_id_len = call_id.len();
        }
        *out = response;
        Ok(CALLREC_OK)
    })
}

/// Values for the URL record placeholders (`$mac`, `$local`, `$remote`,
/// `$call_id`, `$display_local`, `$display_remote`); NULL ones are empty.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct callrec_url_vars {
    /// `$mac`.
    pub mac: *const c_char,
    /// `$local`.
    pub local: *const c_char,
    /// `$remote`.
    pub remote: *const c_char,
    /// `$call_id`.
    pub call_id: *const c_char,
    /// `$display_local`.
    pub display_local: *const c_char,
    /// `$display_remote`.
    pub display_remote: *const c_char,
}

impl Default for callrec_url_vars {
    fn default() -> Self {
        Self {
            mac: core::ptr::null(),
            local: core::ptr::null(),
            remote: core::ptr::null(),
            call_id: core::ptr::null(),
            display_local: core::ptr::null(),
            display_remote: core::ptr::null(),
        }
    }
}

/// Expands a URL record (`http://host[:port]/path?query` with
/// placeholders, each value percent-encoded) into the HTTP/1.1 GET request
/// in `buf`, and names where to send it: `host` (NUL-terminated) and
/// `*port`. `vars` may be NULL (every placeholder empty).
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_ARGUMENT` naming the part of the URL
/// that is wrong; `CALLREC_ERR_BUFFER_TOO_SMALL` for `buf` or `host`.
///
/// # Safety
/// `url` and `user_agent` are NUL-terminated; `vars` is NULL or points to a
/// readable struct of NULL or NUL-terminated strings; `buf` points to
/// `capacity` writable bytes, `host` to `host_capacity`; `written` and
/// `port` to writable integers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_url_record_request(
    url: *const c_char,
    vars: *const callrec_url_vars,
    user_agent: *const c_char,
    buf: *mut u8,
    capacity: usize,
    written: *mut usize,
    host: *mut c_char,
    host_capacity: usize,
    port: *mut u16,
) -> callrec_status {
    abi::run("callrec_url_record_request", || {
        // SAFETY: `url` per this function's contract.
        let url = unsafe { abi::text(url, "url") }?;
        // SAFETY: `user_agent` per this function's contract.
        let user_agent = unsafe { abi::text(user_agent, "user_agent") }?;
        let mut values = UrlVars::new();
        // SAFETY: `vars` is NULL or readable per this function's contract.
        if let Some(v) = unsafe { vars.as_ref() } {
            // SAFETY: each is NULL or NUL-terminated per the contract.
            let optional =
                |ptr: *const c_char, what: &str| unsafe { abi::text_or_empty(ptr, what) };
            values.mac = optional(v.mac, "vars->mac")?;
            values.local = optional(v.local, "vars->local")?;
            values.remote = optional(v.remote, "vars->remote")?;
            values.call_id = optional(v.call_id, "vars->call_id")?;
            values.display_local = optional(v.display_local, "vars->display_local")?;
            values.display_remote = optional(v.display_remote, "vars->display_remote")?;
        }
        let parsed = UrlRecord::parse(url)
            .map_err(|e| Failure::argument(format_args!("url {url:?}: {e}")))?;
        // SAFETY: `host`/`host_capacity` per this function's contract.
        let host_out = unsafe { abi::slice_mut(host, host_capacity, "host") }?;
        if port.is_null() {
            return Err(Failure::null("port"));
        }
        let request = parsed.request(&values, user_agent);
        // Both sizes are checked before either output is written.
        if request.len() > capacity {
            return Err(Failure::too_small("buf", capacity, request.len()));
        }
        abi::put_text(host_out, parsed.host().as_bytes(), "host")?;
        // SAFETY: `buf`/`capacity`/`written` per this function's contract.
        unsafe { abi::write_out(&request, buf, capacity, written, "buf") }?;
        // SAFETY: `port` per this function's contract.
        unsafe { abi::put(port, "port", parsed.port()) }?;
        Ok(CALLREC_OK)
    })
}

/// The status code of the URL record server's HTTP response (its status
/// line).
///
/// # Errors
/// `CALLREC_ERR_NULL`; `CALLREC_ERR_PARSE` when the bytes do not start with
/// an HTTP/1.x status line.
///
/// # Safety
/// `response` points to `len` readable bytes; `status_code` to a writable
/// `uint16_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn callrec_http_status_parse(
    response: *const u8,
    len: usize,
    status_code: *mut u16,
) -> callrec_status {
    abi::run("callrec_http_status_parse", || {
        // SAFETY: `response`/`len` per this function's contract.
        let bytes = unsafe { abi::slice(response, len, "response") }?;
        let (code, _) = callrec_sip::parse_http_status(bytes)
            .map_err(|e| Failure::new(CALLREC_ERR_PARSE, e))?;
        // SAFETY: `status_code` per this function's contract.
        unsafe { abi::put(status_code, "status_code", code) }?;
        Ok(CALLREC_OK)
    })
}
