//! `sip_record`: start or stop recording through the SIP server, as a phone
//! does when its record key is pressed: an in-dialog `INFO` with
//! `Record: on` or `Record: off` over UDP, or (Yealink "URL record") an HTTP
//! GET to a configured URL.
//!
//! ```text
//! cargo run --example sip_record -- --server 10.0.0.20:5060 --call-id a84b4c76e66710 \
//!     --from sip:1009@pbx.example --from-tag 1928301774 \
//!     --to sip:1010@pbx.example --to-tag a6c85cf --target sip:1010@10.0.0.20 on
//! cargo run --example sip_record -- --url 'http://10.2.1.5/rec?start=1&mac=$mac&remote=$remote' \
//!     --mac 001565aabbcc --remote 1010 on
//! ```
//!
//! Prints the final response's status line; exits 0 on 2xx, 1 otherwise.
//! The INFO is retransmitted on RFC 3261 timer A (0.5 s, doubling) until a
//! final response or `--timeout`.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Instant;

use callrec::sip::{
    Dialog, NameAddr, Record, SipMessage, StartLine, UrlRecord, UrlVars, parse_http_status,
};
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Parser)]
#[command(about = "Send a Record: on/off INFO (or a URL-record GET) and print the reply")]
struct Args {
    /// `on` to start recording, `off` to stop.
    record: OnOff,
    /// The SIP server (or the remote party) to send the INFO to.
    #[arg(long, value_name = "ADDR:PORT", required_unless_present = "url")]
    server: Option<SocketAddr>,
    /// Local UDP address to send from (its port goes into Via and Contact).
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddr,
    /// The dialog's Call-ID.
    #[arg(long, required_unless_present = "url")]
    call_id: Option<String>,
    /// Our URI (the dialog's local party; `From`).
    #[arg(long, value_name = "URI", required_unless_present = "url")]
    from: Option<String>,
    /// Our tag.
    #[arg(long, required_unless_present = "url")]
    from_tag: Option<String>,
    /// Our display name.
    #[arg(long)]
    from_name: Option<String>,
    /// The remote party's URI (`To`).
    #[arg(long, value_name = "URI", required_unless_present = "url")]
    to: Option<String>,
    /// The remote tag.
    #[arg(long, required_unless_present = "url")]
    to_tag: Option<String>,
    /// The remote target (Request-URI; the remote Contact).
    #[arg(long, value_name = "URI", required_unless_present = "url")]
    target: Option<String>,
    /// CSeq of the last request we sent in the dialog; the INFO uses one more.
    #[arg(long, default_value_t = 1)]
    cseq: u32,
    /// Give up after this many seconds without a final response.
    #[arg(long, default_value_t = 8.0)]
    timeout: f64,
    /// URL record: send an HTTP GET to this URL instead of an INFO.
    /// Placeholders: $mac $local $remote $call_id $display_local $display_remote.
    #[arg(long)]
    url: Option<String>,
    /// `$mac` for URL record.
    #[arg(long, default_value = "")]
    mac: String,
    /// `$local` for URL record.
    #[arg(long, default_value = "")]
    local: String,
    /// `$remote` for URL record.
    #[arg(long, default_value = "")]
    remote: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = if args.url.is_some() {
        url_record(&args)
    } else {
        info(&args)
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sip_record: {e}");
            ExitCode::FAILURE
        }
    }
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, String> {
    value
        .as_deref()
        .ok_or_else(|| format!("--{name} is required"))
}

fn info(args: &Args) -> Result<bool, String> {
    let server = args.server.ok_or("--server is required")?;
    let socket = UdpSocket::bind(args.bind).map_err(|e| format!("bind {}: {e}", args.bind))?;
    // The address the server sees: connect picks the route's source address.
    socket
        .connect(server)
        .map_err(|e| format!("{server}: {e}"))?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let mut from =
        NameAddr::new(required(&args.from, "from")?).tag(required(&args.from_tag, "from-tag")?);
    if let Some(name) = &args.from_name {
        from = from.display_name(name.as_str());
    }
    let to = NameAddr::new(required(&args.to, "to")?).tag(required(&args.to_tag, "to-tag")?);
    let user = required(&args.from, "from")?
        .trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap_or("")
        .to_owned();
    let (contact, sent_by) = (format!("sip:{user}@{local}"), local.to_string());
    let mut dialog = Dialog::new(required(&args.call_id, "call-id")?)
        .local(from)
        .remote(to)
        .remote_target(required(&args.target, "target")?)
        .local_contact(&contact)
        .sent_by(&sent_by)
        .local_cseq(args.cseq);
    let record = match args.record {
        OnOff::On => Record::On,
        OnOff::Off => Record::Off,
    };
    let request = dialog
        .record_info(record)
        .user_agent("callrec sip_record")
        .to_vec(&mut rand_core::UnwrapErr(rand_core::OsRng))
        .map_err(|e| format!("cannot build the INFO: {e}"))?;

    let give_up = Instant::now() + Duration::from_secs_f64(args.timeout.max(0.1));
    let mut interval = Duration::from_millis(500);
    let mut next_send = Instant::now();
    let mut buf = vec![0u8; 65_535];
    loop {
        let now = Instant::now();
        if now >= give_up {
            return Err(format!(
                "no final response from {server} within {} s",
                args.timeout
            ));
        }
        if now >= next_send {
            socket
                .send(&request)
                .map_err(|e| format!("send to {server}: {e}"))?;
            next_send = now + interval;
            interval = (interval * 2).min(Duration::from_secs(4));
        }
        let wait = next_send
            .min(give_up)
            .saturating_duration_since(Instant::now());
        socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        // ICMP port unreachable: nobody listens yet; retransmit.
                        | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                continue;
            }
            Err(e) => return Err(format!("receive from {server}: {e}")),
        };
        let Ok(reply) = SipMessage::parse(&buf[..n]) else {
            continue; // not SIP, or not ours
        };
        let StartLine::Response { code, reason } = reply.start_line() else {
            continue;
        };
        if reply.call_id() != Some(dialog.call_id.as_bytes()) {
            continue;
        }
        if code < 200 {
            continue; // provisional; keep waiting (the server has it)
        }
        println!("SIP/2.0 {code} {}", String::from_utf8_lossy(reason));
        return Ok((200..300).contains(&code));
    }
}

fn url_record(args: &Args) -> Result<bool, String> {
    let url_text = args.url.as_deref().expect("checked by the caller");
    let url = UrlRecord::parse(url_text).map_err(|e| format!("{url_text}: {e}"))?;
    let mut vars = UrlVars::new();
    vars.mac = &args.mac;
    vars.local = &args.local;
    vars.remote = &args.remote;
    let call_id = args.call_id.clone().unwrap_or_default();
    vars.call_id = &call_id;
    let request = url.request(&vars, "callrec sip_record");
    let host = url.host().trim_start_matches('[').trim_end_matches(']');
    let authority = (host, url.port());
    let timeout = Duration::from_secs_f64(args.timeout.max(0.1));
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", url.host()))?
        .next()
        .ok_or_else(|| format!("{}: no address", url.host()))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&request)
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    // The status line is all we need; read until it is complete (bounded).
    while !response.contains(&b'\n') && response.len() < 8192 {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("{addr}: {e}")),
        }
    }
    let (code, reason) = parse_http_status(&response).map_err(|e| format!("{addr}: {e}"))?;
    println!("HTTP {code} {}", String::from_utf8_lossy(reason));
    Ok((200..300).contains(&code))
}
