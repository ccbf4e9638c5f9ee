//! The recordings service at scale: an index of 1,000,000 recordings
//! filled through the server's observer (as a year of a 2,000-phone call
//! centre would; the last 100,000 as calls, start and end, timed), then
//! searched; and audio downloads over HTTP next to a plain file read.
//!
//! Before criterion's groups it measures each search kind's latency
//! percentiles over 2,000 random queries and exits with an error when the
//! p99 of the number and device + date searches is 20 ms or more (the
//! target in docs/PERFORMANCE.md). `CALLREC_BENCH_RECORDINGS=N` changes the
//! index size.

use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use callrec_recordings::{HttpApi, Query, Recordings, Settings, format_time_ms};
use callrec_server::{Observer, Sidecar};
use callrec_test::SplitMix64;
use criterion::{Criterion, Throughput};
use rand_core::RngCore;

const DEVICES: u64 = 2000;
const REMOTES: u64 = 200_000;
const YEAR_MS: i64 = 365 * 86_400_000;
const START_MS: i64 = 1_767_225_600_000; // 2026-01-01

/// The shared deterministic generator, with a bound.
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMES: [&str; 8] = [
    "Smith", "Garcia", "Müller", "Rossi", "Dubois", "Kowalski", "Nakamura", "Okafor",
];

fn device(i: u64) -> String {
    format!("001565{i:06x}")
}

fn sidecar(i: u64, rng: &mut Rng) -> Sidecar {
    let d = rng.below(DEVICES);
    let started = START_MS + (i as i64 * YEAR_MS / 1_000_000) / 1000 * 1000;
    let secs = 30 + rng.below(600);
    let mut s = Sidecar::default();
    s.recording_id = format!("{:012x}{:020x}", started, i);
    s.session_id = format!("{:016x}", rng.next());
    s.device = device(d);
    s.direction = if rng.below(2) == 0 { "in" } else { "out" }.into();
    s.codec = "PCMA".into();
    s.started_at = format_time_ms(started);
    s.stopped_at = Some(format_time_ms(started + secs as i64 * 1000));
    s.stop_reason = Some("stop request: call ended".into());
    s.complete = true;
    s.duration_ms = secs * 1000;
    s.start_parties.local_number = format!("{}", 1000 + d);
    s.start_parties.local_name = format!("Agent {d}");
    s.start_parties.remote_number = format!("+4930{:06}", rng.below(REMOTES));
    s.start_parties.remote_name = NAMES[rng.below(NAMES.len() as u64) as usize].into();
    s.final_parties = s.start_parties.clone();
    let stem = format!("{}/{}/{i}", s.device, &s.started_at[..10]);
    s.files = vec![
        serde_json::from_value(serde_json::json!({
            "path": format!("{stem}.wav"), "kind": "wav",
            "bytes": secs * 8000 + 58, "sha256": format!("{:064x}", i)
        }))
        .unwrap(),
    ];
    s
}

/// CPU seconds the index writer thread (`callrec-index`) has used, from
/// /proc (Linux).
fn index_thread_cpu() -> Option<f64> {
    let ticks = 100.0; // USER_HZ on Linux
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).ok()?;
        if comm.trim() == "callrec-index" {
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            return Some((user + system) / ticks);
        }
    }
    None
}

/// Calls entered as the server enters them (at the start, then complete at
/// the end): the writer's throughput is measured on these.
const MEASURED_CALLS: u64 = 100_000;

/// Fills an index of `n` recordings through the observer. The last
/// [`MEASURED_CALLS`] are entered as the server enters a call (running at
/// its start, complete at its end) and timed with the writer thread's CPU,
/// into an index already holding the others (its largest, so the figure is
/// the slowest); the ones before are entered complete, one event each (as
/// `--reindex` enters them): the same rows at half the writes, so the
/// million costs CI minutes less. Returns the time and writer CPU seconds
/// of the measured calls.
fn fill(recordings: &Recordings, n: u64) -> (Duration, Option<f64>) {
    let observer: Arc<dyn Observer> = recordings.observer();
    let mut rng = Rng(SplitMix64(7));
    let first_measured = n.saturating_sub(MEASURED_CALLS);
    let start = Instant::now();
    let mut measured_from = (start, index_thread_cpu());
    for i in 0..n {
        if i == first_measured {
            recordings.flush();
            println!(
                "entered {i} recordings complete (one event each) in {:.1} s",
                start.elapsed().as_secs_f64()
            );
            measured_from = (Instant::now(), index_thread_cpu());
        }
        let mut s = sidecar(i, &mut rng);
        let finished = s.clone();
        if i >= first_measured {
            s.complete = false;
            s.stopped_at = None;
            s.stop_reason = None;
            s.files[0].sha256 = None;
            s.files[0].bytes = None;
            observer.recording_started(&s);
        }
        observer.recording_finished(&finished);
        if i % 100_000 == 99_999 {
            recordings.flush();
        }
    }
    recordings.flush();
    let cpu = index_thread_cpu()
        .zip(measured_from.1)
        .map(|(after, before)| after - before);
    (measured_from.0.elapsed(), cpu)
}

fn random_query(kind: &str, rng: &mut Rng) -> Query {
    let mut q = Query::default();
    q.limit = 50;
    let week = |rng: &mut Rng| {
        let from = START_MS + rng.below(358) as i64 * 86_400_000;
        (Some(from), Some(from + 7 * 86_400_000))
    };
    match kind {
        "remote number" => q.number = Some(format!("+4930{:06}", rng.below(REMOTES))),
        "local number" => q.number = Some(format!("{}", 1000 + rng.below(DEVICES))),
        "device + week" => {
            q.device = Some(device(rng.below(DEVICES)));
            (q.from_ms, q.to_ms) = week(rng);
        }
        "number + week" => {
            q.number = Some(format!("{}", 1000 + rng.below(DEVICES)));
            (q.from_ms, q.to_ms) = week(rng);
        }
        "newest" => {}
        "week" => (q.from_ms, q.to_ms) = week(rng),
        "text" => q.text = Some(NAMES[rng.below(NAMES.len() as u64) as usize].to_lowercase()),
        "text, no match" => q.text = Some(format!("nobody{}", rng.below(1000))),
        "text + device" => {
            q.text = Some(format!("+4930{:03}", rng.below(1000)));
            q.device = Some(device(rng.below(DEVICES)));
        }
        _ => unreachable!("{kind}"),
    }
    q
}

const KINDS: [&str; 9] = [
    "remote number",
    "local number",
    "device + week",
    "number + week",
    "newest",
    "week",
    "text",
    "text + device",
    "text, no match",
];

/// The kinds the 20 ms p99 target covers.
const TARGETED: [&str; 4] = [
    "remote number",
    "local number",
    "device + week",
    "number + week",
];

fn percentiles(recordings: &Recordings, n: u64) -> bool {
    let mut ok = true;
    println!(
        "search latency over an index of {n} recordings (2,000 random queries each, 20 of a full scan; limit 50):"
    );
    for kind in KINDS {
        // A text nothing matches walks the whole index: fewer of those.
        let count = if kind == "text, no match" { 20 } else { 2000 };
        let mut rng = Rng(SplitMix64(11));
        let mut times = Vec::with_capacity(count);
        let mut hits = 0;
        for _ in 0..count {
            let query = random_query(kind, &mut rng);
            let start = Instant::now();
            let page = recordings.search(&query).unwrap();
            times.push(start.elapsed());
            hits += page.recordings.len();
        }
        times.sort();
        let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let p99 = p(0.99);
        let target = TARGETED.contains(&kind);
        println!(
            "  {kind:14} p50 {:>8.3} ms  p99 {:>8.3} ms  max {:>8.3} ms  ({:.1} results per page){}",
            p(0.5).as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            hits as f64 / count as f64,
            if target { "  [target p99 < 20 ms]" } else { "" }
        );
        if target && p99 >= Duration::from_millis(20) {
            ok = false;
        }
    }
    ok
}

fn main() {
    let n: u64 = std::env::var("CALLREC_BENCH_RECORDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let recordings = Recordings::open(Settings::new(dir.path())).unwrap();
    let (took, cpu) = fill(&recordings, n);
    let calls = MEASURED_CALLS.min(n);
    if let Some(cpu) = cpu {
        println!(
            "index writer thread: {cpu:.1} s CPU for {calls} calls, {:.1} µs per call",
            cpu * 1e6 / calls as f64
        );
    }
    let size = std::fs::metadata(recordings.index_location()).map_or(0, |m| m.len());
    println!(
        "indexed {calls} calls through the observer (entered at start, completed at the end) in {:.1} s ({:.0} calls per second, {:.1} µs per call); index of {n} recordings {} MiB",
        took.as_secs_f64(),
        calls as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / calls as f64,
        size >> 20
    );
    let met = percentiles(&recordings, n);

    let mut c = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let mut group = c.benchmark_group("search_1m");
    for kind in KINDS.iter().filter(|k| **k != "text, no match") {
        let mut rng = Rng(SplitMix64(5));
        group.bench_function(*kind, |b| {
            b.iter(|| recordings.search(&random_query(kind, &mut rng)).unwrap())
        });
    }
    group.finish();
    download(&mut c);
    c.final_summary();
    if !met {
        eprintln!("search p99 target (20 ms) missed; see above");
        std::process::exit(1);
    }
}

/// A 1-hour A-law recording (28.8 MB) served over HTTP on loopback, as
/// stored and as PCM16, next to reading the file.
fn download(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("001565aabbcc/2026-12-01");
    std::fs::create_dir_all(&day).unwrap();
    let data_len = 3600 * 8000u32;
    let spec = callrec_audio::wav::WavSpec::g711(callrec_audio::g711::Law::Alaw);
    let mut header = [0u8; callrec_audio::wav::MAX_HEADER_LEN];
    let n = spec.write_header(data_len, &mut header);
    let mut wav = header[..n].to_vec();
    let mut rng = Rng(SplitMix64(3));
    wav.extend((0..data_len).map(|_| rng.next() as u8));
    let wav_path = day.join("080000_in_1010_bench.wav");
    std::fs::write(&wav_path, &wav).unwrap();
    let recordings = Recordings::open(Settings::new(dir.path())).unwrap();
    let id = recordings.search(&Query::default()).unwrap().recordings[0]
        .recording_id
        .clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = runtime.block_on(async {
        let api = HttpApi::bind("127.0.0.1:0".parse().unwrap(), None, recordings)
            .await
            .unwrap();
        let base = format!("http://{}", api.local_addr().unwrap());
        tokio::spawn(api.run(core::future::pending()));
        base
    });
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let fetch = |url: &str| {
        let mut response = agent.get(url).call().unwrap();
        let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
        std::io::copy(&mut reader, &mut std::io::sink()).unwrap()
    };
    let mut group = c.benchmark_group("download_1h_alaw");
    group.throughput(Throughput::Bytes(wav.len() as u64));
    group.sample_size(10);
    group.bench_function("read the file (std::fs::read)", |b| {
        b.iter(|| std::fs::read(&wav_path).unwrap().len())
    });
    let url = format!("{base}/api/recordings/{id}/audio");
    group.bench_function("HTTP audio, as stored", |b| b.iter(|| fetch(&url)));
    let pcm = format!("{url}?format=pcm16");
    group.bench_function("HTTP audio, as PCM16 (2x the bytes)", |b| {
        b.iter(|| fetch(&pcm))
    });
    group.finish();
}
