//! `Message::parse` against `serde_urlencoded` into a derived struct,
//! interleaved: batches of each alternate (A B A B …) so that a VM whose
//! speed drifts between criterion groups cannot tilt the ratio. Prints the
//! median of the per-round ratios (ours / peer); below 1.00 is faster.
//!
//! `cargo bench -p callrec-control --bench decode_ab`

use core::hint::black_box;
use std::time::Instant;

use callrec_control::Message;

mod common;
use common::{StartRequestForm, start_request};

fn main() {
    let wire = start_request().to_vec().unwrap();
    let bytes = &wire[..];
    const BATCH: u32 = 2_000;
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..BATCH {
            f();
        }
        start.elapsed().as_secs_f64() / f64::from(BATCH)
    };
    let ours = || {
        black_box(Message::parse(black_box(bytes)).unwrap());
    };
    let peer = || {
        let form: StartRequestForm = serde_urlencoded::from_bytes(black_box(bytes)).unwrap();
        black_box(form);
    };
    // Warm up both.
    for _ in 0..20 {
        time(&ours);
        time(&peer);
    }
    let mut ratios = Vec::new();
    let (mut ours_ns, mut peer_ns) = (Vec::new(), Vec::new());
    for round in 0..200 {
        // Alternate which goes first, too.
        let (a, b) = if round % 2 == 0 {
            let a = time(&ours);
            (a, time(&peer))
        } else {
            let b = time(&peer);
            (time(&ours), b)
        };
        ratios.push(a / b);
        ours_ns.push(a * 1e9);
        peer_ns.push(b * 1e9);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "Control decode, {} bytes: Message::parse {:.0} ns, serde_urlencoded into a derived struct {:.0} ns, ratio {:.3} (median of 200 interleaved rounds)",
        bytes.len(),
        median(&mut ours_ns),
        median(&mut peer_ns),
        median(&mut ratios)
    );
}
