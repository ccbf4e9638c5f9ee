//! The C API driven from Rust as C would drive it: raw pointers, caller
//! buffers, statuses. These run under Miri in CI (`cargo +nightly miri test
//! -p callrec-ffi`), which checks every pointer the boundary touches; the
//! tests that need the file system's free space (statvfs, which Miri cannot
//! run) are skipped there and covered by the C suite.
#![allow(
    unsafe_code,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]
// SAFETY (whole file): every pointer passed is to a live local of the length
// given, or deliberately NULL; handles are freed once.

use core::ffi::{CStr, c_char};
use core::ptr;

use callrec_ffi::*;

fn last_error() -> String {
    unsafe { CStr::from_ptr(callrec_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn text(field: &[c_char]) -> &str {
    unsafe { CStr::from_ptr(field.as_ptr()) }.to_str().unwrap()
}

fn set(field: &mut [c_char], value: &str) {
    for (dst, &src) in field.iter_mut().zip(value.as_bytes().iter().chain([&0])) {
        *dst = src as c_char;
    }
}

#[test]
fn statuses_have_names() {
    let name = |s| {
        unsafe { CStr::from_ptr(callrec_status_str(s)) }
            .to_str()
            .unwrap()
    };
    assert_eq!(
        name(CALLREC_ERR_BUFFER_TOO_SMALL),
        "CALLREC_ERR_BUFFER_TOO_SMALL"
    );
    assert_eq!(name(-55), "unknown status");
    let version = unsafe { CStr::from_ptr(callrec_version()) }
        .to_str()
        .unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn packetize_then_parse() {
    let mut config = callrec_packetizer_config::default();
    assert_eq!(
        unsafe { callrec_packetizer_config_init(&mut config, 0) },
        CALLREC_OK
    );
    config.fixed = CALLREC_PACKETIZER_FIXED_SEQUENCE_NUMBER | CALLREC_PACKETIZER_FIXED_TIMESTAMP;
    config.sequence_number = 7;
    config.timestamp = 0;
    let mut p = ptr::null_mut();
    assert_eq!(
        unsafe { callrec_packetizer_new(&config, &mut p) },
        CALLREC_OK
    );
    let frame = [0xffu8; 160];
    let mut buf = [0u8; 200];
    let mut n = 0;
    for i in 0..3u16 {
        let status = unsafe {
            callrec_packetizer_packetize(
                p,
                frame.as_ptr(),
                160,
                160,
                buf.as_mut_ptr(),
                buf.len(),
                &mut n,
            )
        };
        assert_eq!((status, n), (CALLREC_OK, 172));
        let mut packet = callrec_rtp_packet::default();
        assert_eq!(
            unsafe { callrec_rtp_parse(buf.as_ptr(), n, &mut packet) },
            CALLREC_OK
        );
        assert_eq!(packet.sequence_number, 7 + i);
        assert_eq!(packet.timestamp, u32::from(i) * 160);
        assert_eq!(packet.payload, buf[12..].as_ptr());
        let payload = unsafe { core::slice::from_raw_parts(packet.payload, packet.payload_len) };
        assert_eq!(payload, &frame[..]);
    }
    // Too small: an error, and nothing moved.
    let status = unsafe {
        callrec_packetizer_packetize(p, frame.as_ptr(), 160, 160, buf.as_mut_ptr(), 171, &mut n)
    };
    assert_eq!(status, CALLREC_ERR_BUFFER_TOO_SMALL);
    assert!(
        last_error().contains("buf of 171 bytes"),
        "{}",
        last_error()
    );
    let mut state = callrec_packetizer_state::default();
    assert_eq!(
        unsafe { callrec_packetizer_get_state(p, &mut state) },
        CALLREC_OK
    );
    assert_eq!((state.next_sequence_number, state.packets_sent), (10, 3));
    // In place.
    buf[12..172].fill(0x7f);
    let status = unsafe {
        callrec_packetizer_packetize_in_place(p, buf.as_mut_ptr(), buf.len(), 160, 160, &mut n)
    };
    assert_eq!((status, n), (CALLREC_OK, 172));
    assert_eq!(unsafe { callrec_packetizer_skip_ms(p, 20) }, CALLREC_OK);
    assert_eq!(unsafe { callrec_packetizer_skip_samples(p, 1) }, CALLREC_OK);
    unsafe { callrec_packetizer_free(p) };
    // Hostile bytes never crash the parser.
    let mut packet = callrec_rtp_packet::default();
    for len in 0..40 {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 0x80) as u8).collect();
        let status = unsafe { callrec_rtp_parse(junk.as_ptr(), junk.len(), &mut packet) };
        assert!(status == CALLREC_OK || status == CALLREC_ERR_PARSE);
    }
}

#[test]
fn recording_in_memory() {
    let mut header = callrec_header::default();
    set(&mut header.codec, "G722");
    header.rtp_len = 160;
    header.increment = 160;
    header.data_size = 480;
    let mut file = vec![0u8; 76 + 480 + 10];
    assert_eq!(
        unsafe { callrec_header_write(&header, file.as_mut_ptr(), file.len()) },
        CALLREC_OK
    );
    let mut rec = callrec_recording::default();
    let status = unsafe {
        callrec_recording_parse(file.as_ptr(), file.len(), CALLREC_READ_RECOVER, &mut rec)
    };
    assert_eq!(status, CALLREC_OK);
    assert_eq!(text(&rec.header.codec), "G722");
    assert_eq!(
        (rec.header.frame_count, rec.recovery.discarded_bytes),
        (3, 10)
    );
    let (mut frame, mut len) = (ptr::null(), 0);
    assert_eq!(
        unsafe { callrec_recording_frame(&rec, 2, &mut frame, &mut len) },
        CALLREC_OK
    );
    assert_eq!((frame, len), (file[76 + 320..].as_ptr(), 160));
    assert_eq!(
        unsafe { callrec_recording_frame(&rec, 3, &mut frame, &mut len) },
        CALLREC_NONE
    );
    let mut parsed = callrec_header::default();
    assert_eq!(
        unsafe { callrec_header_parse(file.as_ptr(), 76, &mut parsed) },
        CALLREC_OK
    );
    assert_eq!(parsed.duration_ms, 60);
    assert_eq!(
        unsafe { callrec_header_parse(file.as_ptr(), 10, &mut parsed) },
        CALLREC_ERR_PARSE
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "the recorder asks statvfs for free space, which Miri cannot run"
)]
fn record_then_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let dir_c = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
    let mut config = callrec_recorder_config::default();
    assert_eq!(
        unsafe { callrec_recorder_config_init(&mut config) },
        CALLREC_OK
    );
    config.dir = dir_c.as_ptr();
    config.min_free_space = 0;
    let mut rec = ptr::null_mut();
    assert_eq!(
        unsafe { callrec_recorder_new(&config, &mut rec) },
        CALLREC_OK
    );
    let time = callrec_record_time {
        year: 2026,
        month: 12,
        day: 1,
        hour: 8,
        minute: 0,
        second: 0,
    };
    assert_eq!(unsafe { callrec_recorder_start(rec, &time) }, CALLREC_OK);
    for i in 0..10u8 {
        let frame = [i; 160];
        assert_eq!(
            unsafe { callrec_recorder_write_frame(rec, frame.as_ptr(), 160) },
            CALLREC_OK
        );
    }
    assert_eq!(unsafe { callrec_recorder_stop(rec) }, CALLREC_OK);
    let mut name = [0 as c_char; CALLREC_FILE_NAME_SIZE];
    let mut header = callrec_header::default();
    let status =
        unsafe { callrec_recorder_file(rec, 0, name.as_mut_ptr(), name.len(), &mut header) };
    assert_eq!(status, CALLREC_OK);
    assert_eq!(text(&name), "Record_20261201_080000.wav");
    unsafe { callrec_recorder_free(rec) };

    let path = std::ffi::CString::new(dir.path().join(text(&name)).to_str().unwrap()).unwrap();
    let mut reader = ptr::null_mut();
    assert_eq!(
        unsafe { callrec_reader_open(path.as_ptr(), CALLREC_READ_STRICT, &mut reader) },
        CALLREC_OK
    );
    let mut frame = [0u8; 160];
    let mut len = 0;
    let mut frames = 0u8;
    while unsafe { callrec_reader_next_frame(reader, frame.as_mut_ptr(), frame.len(), &mut len) }
        == CALLREC_OK
    {
        assert_eq!(frame, [frames; 160]);
        frames += 1;
    }
    assert_eq!(frames, 10);
    unsafe { callrec_reader_free(reader) };
}

#[test]
fn codecs_and_mixer() {
    let pcm: Vec<i16> = (0..320).map(|i| ((i % 50) * 400 - 10_000) as i16).collect();
    let mut codes = [0u8; 160];
    let mut n = 0;
    let mut enc = ptr::null_mut();
    assert_eq!(unsafe { callrec_g722_encoder_new(&mut enc) }, CALLREC_OK);
    let status =
        unsafe { callrec_g722_encode(enc, pcm.as_ptr(), 320, codes.as_mut_ptr(), 160, &mut n) };
    assert_eq!((status, n), (CALLREC_OK, 160));
    unsafe { callrec_g722_encoder_free(enc) };
    let mut dec = ptr::null_mut();
    assert_eq!(unsafe { callrec_g722_decoder_new(&mut dec) }, CALLREC_OK);
    let mut out = [0i16; 320];
    let status =
        unsafe { callrec_g722_decode(dec, codes.as_ptr(), 160, out.as_mut_ptr(), 320, &mut n) };
    assert_eq!((status, n), (CALLREC_OK, 320));
    unsafe { callrec_g722_decoder_free(dec) };

    let mut alaw = [0u8; 320];
    let status = unsafe {
        callrec_g711_encode(
            CALLREC_LAW_ALAW,
            pcm.as_ptr(),
            320,
            alaw.as_mut_ptr(),
            320,
            &mut n,
        )
    };
    assert_eq!(status, CALLREC_OK);
    let mut back = [0i16; 320];
    let status = unsafe {
        callrec_g711_decode(
            CALLREC_LAW_ALAW,
            alaw.as_ptr(),
            320,
            back.as_mut_ptr(),
            320,
            &mut n,
        )
    };
    assert_eq!(status, CALLREC_OK);
    let a = [1000i16; 160];
    let b = [-400i16; 160];
    let inputs = [a.as_ptr(), b.as_ptr()];
    let mut mixed = [0i16; 160];
    assert_eq!(
        unsafe { callrec_mix_pcm16(inputs.as_ptr(), 2, 160, mixed.as_mut_ptr()) },
        CALLREC_OK
    );
    assert_eq!(mixed, [600; 160]);
    let la = [0xd5u8; 160];
    let laws = [la.as_ptr(); 3];
    let mut lout = [0u8; 160];
    assert_eq!(
        unsafe { callrec_mix_g711(CALLREC_LAW_ALAW, laws.as_ptr(), 3, 160, lout.as_mut_ptr()) },
        CALLREC_OK
    );
}

#[test]
fn sip_info_and_response() {
    let s = |v: &'static CStr| v.as_ptr();
    let routes = [s(c"sip:proxy.example.com;lr")];
    let mut dialog = callrec_sip_dialog {
        call_id: s(c"abc@10.0.0.2"),
        local_uri: s(c"sip:1001@example.com"),
        local_tag: s(c"t1"),
        remote_uri: s(c"sip:2002@example.com"),
        remote_tag: s(c"t2"),
        remote_target: s(c"sip:2002@10.0.0.3"),
        local_contact: s(c"sip:1001@10.0.0.2"),
        sent_by: s(c"10.0.0.2:5060"),
        route_set: routes.as_ptr(),
        route_count: 1,
        ..callrec_sip_dialog::default()
    };
    let mut buf = [0u8; 1024];
    let mut n = 0;
    let status = unsafe {
        callrec_sip_record_info_write(
            &mut dialog,
            CALLREC_RECORD_ON,
            ptr::null(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut n,
        )
    };
    assert_eq!(status, CALLREC_OK, "{}", last_error());
    let info = core::str::from_utf8(&buf[..n]).unwrap();
    assert!(
        info.contains("\r\nRecord: on\r\nContent-Length: 0\r\n\r\n")
            || info.contains("\r\nRecord: on\r\n")
    );
    assert_eq!(dialog.local_cseq, 2);

    let reply = b"SIP/2.0 481 Call/Transaction Does Not Exist\r\nCSeq: 2 INFO\r\nCall-ID: abc@10.0.0.2\r\n\r\n";
    let mut r = callrec_sip_response::default();
    assert_eq!(
        unsafe { callrec_sip_response_parse(reply.as_ptr(), reply.len(), &mut r) },
        CALLREC_OK
    );
    assert_eq!((r.status_code, r.cseq), (481, 2));

    let mut host = [0 as c_char; 64];
    let mut port = 0u16;
    let status = unsafe {
        callrec_url_record_request(
            s(c"http://[::1]:9000/r?$mac"),
            ptr::null(),
            s(c"ua"),
            buf.as_mut_ptr(),
            buf.len(),
            &mut n,
            host.as_mut_ptr(),
            host.len(),
            &mut port,
        )
    };
    assert_eq!(status, CALLREC_OK, "{}", last_error());
    assert_eq!((text(&host), port), ("[::1]", 9000));
    let mut code = 0;
    let ok = b"HTTP/1.0 200 OK\r\n\r\n";
    assert_eq!(
        unsafe { callrec_http_status_parse(ok.as_ptr(), ok.len(), &mut code) },
        CALLREC_OK
    );
    assert_eq!(code, 200);
}

#[test]
fn a_phone_session_from_start_to_stop() {
    let mut start = callrec_control_message::default();
    assert_eq!(
        unsafe { callrec_control_message_init(&mut start, CALLREC_CMD_START_REQUEST) },
        CALLREC_OK
    );
    assert_eq!(
        unsafe { callrec_control_session_id_generate(start.id.as_mut_ptr(), start.id.len()) },
        CALLREC_OK
    );
    start.device = [0, 0x15, 0x65, 1, 2, 3];
    set(&mut start.remote_number, "5550123");
    let id = text(&start.id).to_owned();

    let mut session = ptr::null_mut();
    assert_eq!(
        unsafe { callrec_phone_session_new(&start, 1000, 50, &mut session) },
        CALLREC_OK
    );
    let mut wire = [0u8; 7]; // small on purpose: the request comes out in pieces
    let mut sent = Vec::new();
    let mut n = 0;
    while unsafe {
        callrec_phone_session_poll_transmit(session, wire.as_mut_ptr(), wire.len(), &mut n)
    } == CALLREC_OK
    {
        sent.extend_from_slice(&wire[..n]);
    }
    let mut parsed = callrec_control_message::default();
    assert_eq!(
        unsafe { callrec_control_message_parse(sent.as_ptr(), sent.len(), &mut parsed) },
        CALLREC_OK
    );
    assert_eq!(
        (text(&parsed.id), text(&parsed.remote_number)),
        (id.as_str(), "5550123")
    );

    let mut answer = callrec_control_message::default();
    assert_eq!(
        unsafe { callrec_control_message_init(&mut answer, CALLREC_CMD_START_RESPONSE) },
        CALLREC_OK
    );
    answer.id = start.id;
    set(&mut answer.server, "::1");
    answer.port = 30000;
    let mut frame = [0u8; 4096];
    let status =
        unsafe { callrec_control_message_write(&answer, frame.as_mut_ptr(), frame.len(), &mut n) };
    assert_eq!(status, CALLREC_OK, "{}", last_error());
    assert_eq!(
        unsafe { callrec_phone_session_handle_data(session, frame.as_ptr(), n, 60) },
        CALLREC_OK
    );
    let mut event = callrec_phone_event::default();
    assert_eq!(
        unsafe { callrec_phone_session_poll_event(session, &mut event) },
        CALLREC_OK
    );
    assert_eq!(
        (event.kind, text(&event.server), event.port),
        (CALLREC_PHONE_EVENT_RECORDING, "::1", 30000)
    );

    assert_eq!(
        unsafe { callrec_phone_session_stop(session, ptr::null(), 2000) },
        CALLREC_OK
    );
    let mut deadline = 0;
    assert_eq!(
        unsafe { callrec_phone_session_poll_timeout(session, &mut deadline) },
        CALLREC_OK
    );
    assert_eq!(deadline, 3000);
    assert_eq!(
        unsafe { callrec_phone_session_handle_timeout(session, 3000) },
        CALLREC_OK
    );
    assert_eq!(
        unsafe { callrec_phone_session_poll_event(session, &mut event) },
        CALLREC_OK
    );
    assert_eq!(
        (event.kind, event.cause),
        (CALLREC_PHONE_EVENT_TERMINATED, CALLREC_TERMINATE_TIMEOUT)
    );
    let mut state = 0;
    assert_eq!(
        unsafe { callrec_phone_session_state(session, &mut state) },
        CALLREC_OK
    );
    assert_eq!(state, CALLREC_PHONE_TERMINATED);
    assert_eq!(
        unsafe { callrec_phone_session_handle_eof(session, 3001) },
        CALLREC_OK
    );
    assert_eq!(
        unsafe { callrec_phone_session_connection_lost(session) },
        CALLREC_OK
    );
    unsafe { callrec_phone_session_free(session) };
}

#[test]
fn null_handles_are_errors() {
    let mut n = 0;
    assert_eq!(
        unsafe {
            callrec_packetizer_packetize(
                ptr::null_mut(),
                ptr::null(),
                0,
                0,
                ptr::null_mut(),
                0,
                &mut n,
            )
        },
        CALLREC_ERR_NULL
    );
    assert_eq!(last_error(), "packetizer is NULL");
    assert_eq!(
        unsafe { callrec_recorder_write_frame(ptr::null_mut(), ptr::null(), 0) },
        CALLREC_ERR_NULL
    );
    assert_eq!(
        unsafe { callrec_reader_seek_frame(ptr::null_mut(), 0) },
        CALLREC_ERR_NULL
    );
    assert_eq!(
        unsafe { callrec_phone_session_poll_event(ptr::null_mut(), ptr::null_mut()) },
        CALLREC_ERR_NULL
    );
    unsafe {
        callrec_packetizer_free(ptr::null_mut());
        callrec_recorder_free(ptr::null_mut());
        callrec_reader_free(ptr::null_mut());
        callrec_phone_session_free(ptr::null_mut());
        callrec_g722_encoder_free(ptr::null_mut());
        callrec_g722_decoder_free(ptr::null_mut());
    }
}
