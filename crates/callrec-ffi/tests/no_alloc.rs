//! The per-packet calls of the C API do not allocate: a counting global
//! allocator sees no allocation across 1,000 rounds of packetize, parse,
//! G.711 and G.722 encode/decode, both mixers and the recorder's
//! write_frame (file rotation excluded: opening the next file names it).
//!
//! Its own process without the test harness, whose threads allocate
//! meanwhile.
#![allow(
    unsafe_code,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block,
    missing_docs
)]
// SAFETY (whole file): pointers are to live locals of the lengths given;
// handles are freed once; the allocator forwards to `System`.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::alloc::System;
use std::ffi::CString;

use callrec_ffi::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let dir_c = CString::new(dir.path().to_str().unwrap()).unwrap();
    let mut config = callrec_recorder_config::default();
    unsafe { callrec_recorder_config_init(&mut config) };
    config.dir = dir_c.as_ptr();
    config.min_free_space = 0;
    let mut recorder = ptr::null_mut();
    assert_eq!(
        unsafe { callrec_recorder_new(&config, &mut recorder) },
        CALLREC_OK
    );
    let time = callrec_record_time {
        year: 2026,
        month: 12,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };
    assert_eq!(
        unsafe { callrec_recorder_start(recorder, &time) },
        CALLREC_OK
    );

    let mut pconfig = callrec_packetizer_config::default();
    unsafe { callrec_packetizer_config_init(&mut pconfig, 8) };
    let mut packetizer = ptr::null_mut();
    assert_eq!(
        unsafe { callrec_packetizer_new(&pconfig, &mut packetizer) },
        CALLREC_OK
    );
    let (mut encoder, mut decoder) = (ptr::null_mut(), ptr::null_mut());
    assert_eq!(
        unsafe { callrec_g722_encoder_new(&mut encoder) },
        CALLREC_OK
    );
    assert_eq!(
        unsafe { callrec_g722_decoder_new(&mut decoder) },
        CALLREC_OK
    );

    let pcm: Vec<i16> = (0..320)
        .map(|i| (i * 97 % 20_000 - 10_000) as i16)
        .collect();
    let mut frame = [0u8; 160];
    let mut packet = [0u8; 1500];
    let mut decoded = [0i16; 320];
    let mut mixed16 = [0i16; 160];
    let mut mixed8 = [0u8; 160];
    let mut parsed = callrec_rtp_packet::default();
    let mut n = 0usize;

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        unsafe {
            assert_eq!(
                callrec_g711_encode(
                    CALLREC_LAW_ALAW,
                    pcm.as_ptr(),
                    160,
                    frame.as_mut_ptr(),
                    160,
                    &mut n
                ),
                CALLREC_OK
            );
            assert_eq!(
                callrec_g711_decode(
                    CALLREC_LAW_ALAW,
                    frame.as_ptr(),
                    160,
                    decoded.as_mut_ptr(),
                    320,
                    &mut n
                ),
                CALLREC_OK
            );
            assert_eq!(
                callrec_recorder_write_frame(recorder, frame.as_ptr(), 160),
                CALLREC_OK
            );
            assert_eq!(
                callrec_packetizer_packetize(
                    packetizer,
                    frame.as_ptr(),
                    160,
                    160,
                    packet.as_mut_ptr(),
                    packet.len(),
                    &mut n
                ),
                CALLREC_OK
            );
            assert_eq!(
                callrec_rtp_parse(packet.as_ptr(), n, &mut parsed),
                CALLREC_OK
            );
            assert_eq!(
                callrec_g722_encode(encoder, pcm.as_ptr(), 320, frame.as_mut_ptr(), 160, &mut n),
                CALLREC_OK
            );
            assert_eq!(
                callrec_g722_decode(
                    decoder,
                    frame.as_ptr(),
                    160,
                    decoded.as_mut_ptr(),
                    320,
                    &mut n
                ),
                CALLREC_OK
            );
            let inputs = [pcm.as_ptr(), decoded.as_ptr()];
            assert_eq!(
                callrec_mix_pcm16(inputs.as_ptr(), 2, 160, mixed16.as_mut_ptr()),
                CALLREC_OK
            );
            let laws = [frame.as_ptr(), frame.as_ptr()];
            assert_eq!(
                callrec_mix_g711(CALLREC_LAW_ALAW, laws.as_ptr(), 2, 160, mixed8.as_mut_ptr()),
                CALLREC_OK
            );
        }
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "the per-packet calls allocated {allocations} times in 1,000 rounds"
    );

    unsafe {
        assert_eq!(callrec_recorder_stop(recorder), CALLREC_OK);
        callrec_recorder_free(recorder);
        callrec_packetizer_free(packetizer);
        callrec_g722_encoder_free(encoder);
        callrec_g722_decoder_free(decoder);
    }
    println!("no allocation in 1,000 rounds of the per-packet calls");
}
