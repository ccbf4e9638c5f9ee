//! The recording server against real peers from Debian, on loopback:
//! ffmpeg streams PCMA and G.722 RTP (`-f rtp`) into a session's port and
//! the WAV decodes to exactly what ffmpeg encoded; ffprobe and soxi read the
//! files with the right format and duration; tshark decodes the RTP that
//! phone_sim sends with no loss, sequence errors or malformed packets.
//!
//! With `CI=true` a missing tool fails the test; elsewhere it is skipped.

mod common;

use callrec_phone as phone;

use core::net::SocketAddr;
use core::time::Duration;
use std::path::Path;
use std::process::{Command, Stdio};

use callrec::audio::wav::WavFile;
use callrec::control::{Codec, SessionId};
use callrec_server::{Config, OutputFormat, PortRange, Server, Summary};
use callrec_test::have_tool;
use phone::{CallOptions, run_call};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(
    ports: core::ops::RangeInclusive<u16>,
) -> (
    SocketAddr,
    tempfile::TempDir,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Summary>,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".into();
    config.rtp_ports = PortRange::new(*ports.start(), *ports.end()).unwrap();
    config.dir = dir.path().to_owned();
    config.format = OutputFormat::Wav;
    config.min_free_space = 1 << 20;
    // ffmpeg without -re sends faster than real time.
    config.max_lead_ms = 3_600_000;
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    (addr, dir, tx, done)
}

/// Starts a session by hand; returns the control connection and RTP port.
async fn start_session(addr: SocketAddr, id: &str, codec: &str) -> (TcpStream, u16) {
    let mut control = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "cmd=RecordStartRequest&id={id}&device=001565aabbcc&dir=out&codec={codec}&remoteNumber=1010\r\n"
    );
    control.write_all(request.as_bytes()).await.unwrap();
    let answer = phone::read_crlf_line(&mut control).await.unwrap();
    assert!(answer.contains("result=success"), "{answer}");
    let port = answer
        .trim_end()
        .rsplit_once("port=")
        .unwrap()
        .1
        .parse()
        .unwrap();
    (control, port)
}

async fn stop_session(mut control: TcpStream, id: &str) {
    control
        .write_all(format!("cmd=RecordStopRequest&id={id}&reason=done\r\n").as_bytes())
        .await
        .unwrap();
    let answer = phone::read_crlf_line(&mut control).await.unwrap();
    assert!(answer.contains("result=success"), "{answer}");
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn write_tone(path: &Path, rate: u32, seconds: f64) {
    let n = (f64::from(rate) * seconds) as usize;
    let bytes: Vec<u8> = (0..n)
        .flat_map(|i| {
            let t = i as f64 / f64::from(rate);
            let s = 9000.0 * (core::f64::consts::TAU * 440.0 * t).sin()
                + 4000.0 * (core::f64::consts::TAU * 3100.0 * t).sin();
            (s as i16).to_le_bytes()
        })
        .collect();
    std::fs::write(path, bytes).unwrap();
}

fn ffprobe_and_soxi(path: &Path, codec_name: &str, rate: u32, seconds: f64) {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate:format=duration",
            "-of",
            "default=nw=1",
        ])
        .arg(path));
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(&format!("codec_name={codec_name}")), "{text}");
    assert!(text.contains(&format!("sample_rate={rate}")), "{text}");
    let duration: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("duration="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((duration - seconds).abs() < 1e-3, "ffprobe: {duration} s");
    let soxi = String::from_utf8(run(Command::new("soxi").arg("-D").arg(path))).unwrap();
    let soxi: f64 = soxi.trim().parse().unwrap();
    assert!((soxi - seconds).abs() < 1e-3, "soxi: {soxi} s");
}

/// The WAV of session `id` under `dir`.
fn wav_path(dir: &Path, id: &str) -> std::path::PathBuf {
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(&format!("_{id}.wav")) {
                return path;
            }
        }
    }
    panic!("no WAV for {id} under {}", dir.display())
}

fn have_ffmpeg_tools() -> bool {
    have_tool("ffmpeg", "-version") && have_tool("ffprobe", "-version") && have_tool("soxi", "-V0")
}

/// ffmpeg's raw-PCM input arguments for `rate`, reading `input`.
fn ffmpeg_input(rate: u32, input: &Path) -> Command {
    let mut cmd = Command::new("ffmpeg");
    let rate = rate.to_string();
    cmd.args(["-v", "error", "-f", "s16le", "-ar", &rate, "-ac", "1", "-i"])
        .arg(input);
    cmd
}

/// A server session of `codec` fed by `ffmpeg -acodec ACODEC -f rtp` with
/// two seconds of tone at `rate`; returns the WAV written and the input.
async fn record_from_ffmpeg(
    ports: core::ops::RangeInclusive<u16>,
    id: &str,
    codec: &str,
    acodec: &str,
    rate: u32,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let (addr, dir, shutdown, done) = start(ports).await;
    let input = dir.path().join("in.s16");
    write_tone(&input, rate, 2.0);
    let (control, port) = start_session(addr, id, codec).await;
    let ffmpeg = ffmpeg_input(rate, &input)
        .args([
            "-acodec",
            acodec,
            "-f",
            "rtp",
            &format!("rtp://127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ffmpeg.success());
    // ffmpeg has sent every packet: on loopback they are queued on the
    // server's socket, and a stop records what is queued before it ends.
    stop_session(control, id).await;
    let _ = shutdown.send(());
    done.await.unwrap();
    let wav = wav_path(dir.path(), id);
    (dir, wav, input)
}

async fn ffmpeg_pcma_rtp_is_recorded_exactly_as_ffmpeg_encoded_it() {
    let _serial = SERIAL.lock().await;
    if !have_ffmpeg_tools() {
        return;
    }
    let (_dir, wav, input) =
        record_from_ffmpeg(45600..=45609, "ffpcma", "PCMA", "pcm_alaw", 8000).await;
    // What ffmpeg encoded, straight to a file.
    let expected = run(ffmpeg_input(8000, &input).args(["-acodec", "pcm_alaw", "-f", "alaw", "-"]));
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!(WavFile::parse(&bytes).unwrap().data(), &expected[..]);
    ffprobe_and_soxi(&wav, "pcm_alaw", 8000, 2.0);
}

async fn ffmpeg_g722_rtp_decodes_to_ffmpegs_own_decoding() {
    let _serial = SERIAL.lock().await;
    if !have_ffmpeg_tools() {
        return;
    }
    let (dir, wav, input) =
        record_from_ffmpeg(45610..=45619, "ffg722", "G722", "g722", 16000).await;
    let encoded = dir.path().join("in.g722");
    run(ffmpeg_input(16000, &input)
        .args(["-acodec", "g722", "-f", "g722"])
        .arg(&encoded));
    let expected = run(Command::new("ffmpeg")
        .args(["-v", "error", "-f", "g722", "-i"])
        .arg(&encoded)
        .args(["-f", "s16le", "-acodec", "pcm_s16le", "-"]));
    let bytes = std::fs::read(&wav).unwrap();
    let ours = WavFile::parse(&bytes).unwrap();
    assert_eq!(ours.spec().sample_rate(), 16000);
    assert_eq!(ours.data(), &expected[..]);
    ffprobe_and_soxi(&wav, "pcm_s16le", 16000, 2.0);
}

async fn tshark_decodes_phone_sim_rtp_without_errors() {
    let _serial = SERIAL.lock().await;
    if !have_tool("tshark", "-v") {
        return;
    }
    let (addr, dir, shutdown, done) = start(45620..=45629).await;
    let pcap = dir.path().join("phone.pcap");
    // Capture the first session port's traffic on loopback, printing a line
    // per packet (-P -l) beside the file, decoded as RTP.
    let mut capture = Command::new("tshark")
        .args([
            "-i",
            "lo",
            "-f",
            "udp dst port 45620",
            "-d",
            "udp.port==45620,rtp",
            "-a",
            "duration:30",
            "-P",
            "-l",
            "-w",
        ])
        .arg(&pcap)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stdout = capture.stdout.take().unwrap();
    let lines = printed.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            lines.lock().unwrap().push(line);
        }
    });
    // "Capturing on" comes a moment before the filter is live: probe the
    // port (4-byte datagrams, nobody listens yet) until the capture shows
    // one.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    tokio::task::block_in_place(|| {
        callrec_test::wait_until("tshark captures", Duration::from_secs(20), || {
            probe.send_to(b"ping", "127.0.0.1:45620").unwrap();
            !printed.lock().unwrap().is_empty()
        })
    });
    let id = SessionId::new("tsharked").unwrap();
    let device = "001565aabbcc".parse().unwrap();
    let result = run_call(CallOptions {
        local_number: "1009".into(),
        remote_number: "1010".into(),
        speed: 4.0,
        ..CallOptions::new(addr, id, device, Codec::Pcmu, vec![500; 16000])
    })
    .await
    .unwrap();
    assert_eq!(result.target.port(), 45620);
    // The capture has seen the call's 100 packets, then stops.
    tokio::task::block_in_place(|| {
        callrec_test::wait_until(
            "tshark sees 100 PCMU packets",
            Duration::from_secs(20),
            || {
                printed
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|l| l.contains("PCMU"))
                    .count()
                    >= 100
            },
        )
    });
    common::send_signal(capture.id(), "INT");
    assert!(capture.wait().unwrap().success());
    let _ = shutdown.send(());
    done.await.unwrap();
    let streams = String::from_utf8(run(Command::new("tshark").arg("-r").arg(&pcap).args([
        "-d",
        "udp.port==45620,rtp",
        "-q",
        "-z",
        "rtp,streams",
    ])))
    .unwrap();
    let row = streams
        .lines()
        .find(|l| l.contains("g711U"))
        .unwrap_or_else(|| panic!("no PCMU stream in:\n{streams}"));
    let fields: Vec<&str> = row.split_whitespace().collect();
    // Start End SrcIP SrcPort DstIP DstPort SSRC Payload Pkts Lost (pct) …
    assert_eq!(fields[8], "100", "{row}");
    assert_eq!(fields[9], "0", "{row}");
    assert!(
        !row.trim_end().ends_with('X'),
        "tshark flags a problem: {row}"
    );
    let problems = run(Command::new("tshark").arg("-r").arg(&pcap).args([
        "-d",
        "udp.port==45620,rtp",
        "-Y",
        // The probes (4-byte payloads, udp.length 12) are not RTP.
        "udp.length != 12 && (_ws.malformed || _ws.expert.severity >= warning)",
    ]));
    assert!(
        problems.is_empty(),
        "{}",
        String::from_utf8_lossy(&problems)
    );
}

/// The tests, each ignored with the reason when what it needs is missing
/// (a failure under `CI=true`).
fn main() -> std::process::ExitCode {
    use callrec_test::harness::{FFMPEG, FFPROBE, SOXI, TSHARK, Test, run_tests};
    use common::on_tokio;
    run_tests(vec![
        Test::new(
            "ffmpeg_pcma_rtp_is_recorded_exactly_as_ffmpeg_encoded_it",
            || on_tokio(ffmpeg_pcma_rtp_is_recorded_exactly_as_ffmpeg_encoded_it()),
        )
        .needs(&[FFMPEG, FFPROBE, SOXI]),
        Test::new("ffmpeg_g722_rtp_decodes_to_ffmpegs_own_decoding", || {
            on_tokio(ffmpeg_g722_rtp_decodes_to_ffmpegs_own_decoding())
        })
        .needs(&[FFMPEG, FFPROBE, SOXI]),
        Test::new("tshark_decodes_phone_sim_rtp_without_errors", || {
            on_tokio(tshark_decodes_phone_sim_rtp_without_errors())
        })
        .needs(&[TSHARK]),
    ])
}
