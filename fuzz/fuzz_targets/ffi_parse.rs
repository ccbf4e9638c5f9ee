//! Any bytes through every parser of the C API, as C calls them: each
//! returns a status (never panics: a caught panic would be
//! CALLREC_ERR_PANIC, which fails here), and what parses points inside the
//! input.
#![no_main]

use callrec_ffi::*;
use libfuzzer_sys::fuzz_target;

fn ok_or_parse_error(status: callrec_status) -> bool {
    assert!(
        status == CALLREC_OK || status == CALLREC_ERR_PARSE,
        "unexpected status {status}"
    );
    status == CALLREC_OK
}

fn inside(data: &[u8], ptr: *const u8, len: usize) -> bool {
    let range = data.as_ptr_range();
    len == 0 || (range.start <= ptr && ptr.wrapping_add(len) <= range.end)
}

fuzz_target!(|data: &[u8]| {
    let (ptr, len) = (data.as_ptr(), data.len());
    // SAFETY (every call below): `data` is `len` readable bytes and each
    // output is a live local.
    let mut rtp = callrec_rtp_packet::default();
    if ok_or_parse_error(unsafe { callrec_rtp_parse(ptr, len, &mut rtp) }) {
        assert!(inside(data, rtp.payload, rtp.payload_len));
        assert!(inside(data, rtp.extension, rtp.extension_len));
    }
    let mut header = callrec_header::default();
    ok_or_parse_error(unsafe { callrec_header_parse(ptr, len, &mut header) });
    for mode in [CALLREC_READ_STRICT, CALLREC_READ_RECOVER] {
        let mut rec = callrec_recording::default();
        if ok_or_parse_error(unsafe { callrec_recording_parse(ptr, len, mode, &mut rec) }) {
            let (mut frame, mut frame_len) = (core::ptr::null(), 0);
            let mut index = 0;
            while unsafe { callrec_recording_frame(&rec, index, &mut frame, &mut frame_len) } == CALLREC_OK {
                assert!(inside(data, frame, frame_len));
                index += 1;
            }
            assert_eq!(index, rec.header.frame_count);
        }
    }
    let mut response = callrec_sip_response::default();
    if ok_or_parse_error(unsafe { callrec_sip_response_parse(ptr, len, &mut response) }) {
        assert!(inside(data, response.reason, response.reason_len));
        assert!(inside(data, response.call_id, response.call_id_len));
    }
    let mut message = callrec_control_message::default();
    if ok_or_parse_error(unsafe { callrec_control_message_parse(ptr, len, &mut message) }) {
        let mut wire = [0u8; 4096];
        let mut n = 0;
        let status = unsafe { callrec_control_message_write(&message, wire.as_mut_ptr(), wire.len(), &mut n) };
        assert_eq!(status, CALLREC_OK, "a parsed message writes back");
    }
    let mut code = 0u16;
    ok_or_parse_error(unsafe { callrec_http_status_parse(ptr, len, &mut code) });
});
