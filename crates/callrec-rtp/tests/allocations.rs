//! No allocation per packet: after warm-up, packetizing, parsing and
//! receiving (with reordering, loss and duplicates) allocate nothing.
//!
//! dhat's testing mode counts every allocation through a global allocator,
//! in the whole process. This file is its own test binary with no test
//! harness (`harness = false` in Cargo.toml): libtest would run the test on a
//! second thread while its main thread allocates, and those allocations
//! raced with the counts below. Here `main` is the only thread.

use core::num::NonZeroU32;
use core::time::Duration;

use callrec_rtp::{
    Event, Packetizer, PacketizerConfig, PayloadFormat, Receiver, ReceiverConfig, RtpPacket,
};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// dhat allows one profiler per process, so the scenarios run one after
/// the other; a failed assertion panics and the test binary exits non-zero.
fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    steady_state_does_not_allocate();
    println!("steady state: no allocation in 40,000 packets");
    a_source_that_never_passes_probation_does_not_allocate();
    println!("source on probation: no allocation in 10,000 packets");
}

fn steady_state_does_not_allocate() {
    let mut packetizer = Packetizer::new(
        PacketizerConfig::new(&PayloadFormat::PCMA),
        &mut callrec_test::SplitMix64(7),
    );
    let mut rx = Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()));
    let mut packets = vec![[0u8; 200]; 4];
    let mut lens = [0usize; 4];
    let frame = [0xd5u8; 160];
    let mut copied = 0u64;
    let mut step = |i: u64, rx: &mut Receiver, packetizer: &mut Packetizer| {
        // Four packets per round, delivered 1, 0, 3, 3 (2 lost, 3 duplicated).
        for (buf, len) in packets.iter_mut().zip(lens.iter_mut()) {
            *len = packetizer.packetize(&frame, 160, buf).unwrap();
        }
        // The first round arrives in order, so the source passes probation
        // (RFC 3550 A.1 needs sequential arrivals).
        let order: &[usize] = if i == 0 { &[0, 1, 2, 3] } else { &[1, 0, 3, 3] };
        for (k, &j) in order.iter().enumerate() {
            let p = RtpPacket::parse(&packets[j][..lens[j]]).unwrap();
            rx.handle_packet(&p, Duration::from_millis(80 * i + 20 * k as u64));
            while let Some(e) = rx.poll() {
                if let Event::Payload(pl) = e {
                    copied += pl.data.len() as u64;
                }
            }
        }
        rx.handle_timeout(Duration::from_millis(80 * i + 500));
        while rx.poll().is_some() {}
    };
    for i in 0..100 {
        step(i, &mut rx, &mut packetizer);
    }
    let before = dhat::HeapStats::get();
    for i in 100..10_100 {
        step(i, &mut rx, &mut packetizer);
    }
    let after = dhat::HeapStats::get();
    assert_eq!(
        after.total_blocks, before.total_blocks,
        "allocations in 40,000 packets of steady state"
    );
    let stats = rx.stats();
    assert!(stats.released >= 29_000, "{stats:?}");
    assert!(stats.duplicates >= 9_000, "{stats:?}");
    assert!(copied > 0);
}

fn a_source_that_never_passes_probation_does_not_allocate() {
    let mut rx = Receiver::new(ReceiverConfig::new(NonZeroU32::new(8000).unwrap()));
    let mut buf = [0u8; 200];
    let mut send = |rx: &mut Receiver, seq: u16| {
        let n = callrec_rtp::RtpPacketBuilder::new()
            .ssrc(9)
            .sequence_number(seq)
            .payload(&[1; 160])
            .write(&mut buf)
            .unwrap();
        rx.handle_packet(&RtpPacket::parse(&buf[..n]).unwrap(), Duration::ZERO);
        while rx.poll().is_some() {}
    };
    // Sequence numbers that never follow each other: probation restarts
    // on every packet.
    for i in 0..100u16 {
        send(&mut rx, i.wrapping_mul(7));
    }
    let before = dhat::HeapStats::get();
    for i in 100..10_100u16 {
        send(&mut rx, i.wrapping_mul(7));
    }
    assert_eq!(dhat::HeapStats::get().total_blocks, before.total_blocks);
    assert_eq!(rx.stats().released, 0);
    assert!(rx.stats().invalid >= 10_000);
}
