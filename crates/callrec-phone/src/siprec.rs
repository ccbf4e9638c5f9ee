//! A SIPREC recording client (an SRC, as a PBX or SBC is), for tests and
//! load: it shares no code with the server's SIP side. SIP is plain text
//! over UDP, the answer's SDP is read with string operations, RTP headers
//! and tones are made by hand (G.711 and G.722 through callrec-audio's
//! encoders, whose output sox and ffmpeg check in that crate's interop
//! tests). Blocking, a thread per session: [`run_sessions`] runs many.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::io;
use std::net::UdpSocket;
use std::time::Instant;

/// A response: its status code and its whole text.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The whole message as text.
    pub text: String,
}

impl Response {
    /// A header's value (the first), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.text.split("\r\n\r\n").next()?;
        head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// The body.
    pub fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
}

/// One stream as the answer gives it: the server's port (0: rejected), its
/// payload type and encoding name, and its direction.
#[derive(Debug, Clone)]
pub struct Answered {
    /// The server's RTP port (0: rejected).
    pub port: u16,
    /// The first payload type of the `m=` line.
    pub payload_type: u8,
    /// Its encoding name (`PCMA`, …).
    pub encoding: String,
    /// `recvonly`, `inactive`, …
    pub direction: String,
}

/// Reads the answer's `m=` sections.
pub fn answered_streams(sdp: &str) -> Vec<Answered> {
    let mut out: Vec<Answered> = Vec::new();
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            let fields: Vec<&str> = m.split_whitespace().collect();
            out.push(Answered {
                port: fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0),
                payload_type: fields.get(3).and_then(|p| p.parse().ok()).unwrap_or(255),
                encoding: String::new(),
                direction: "sendrecv".into(),
            });
        } else if let Some(last) = out.last_mut() {
            if let Some(map) = line.strip_prefix("a=rtpmap:") {
                let (pt, rest) = map.split_once(' ').unwrap_or((map, ""));
                if pt.parse::<u8>().ok() == Some(last.payload_type) {
                    last.encoding = rest.split('/').next().unwrap_or("").to_owned();
                }
            }
            for d in ["recvonly", "sendonly", "inactive", "sendrecv"] {
                if line == format!("a={d}") {
                    last.direction = d.to_owned();
                }
            }
        }
    }
    for a in &mut out {
        if a.encoding.is_empty() {
            a.encoding = match a.payload_type {
                0 => "PCMU",
                8 => "PCMA",
                9 => "G722",
                _ => "",
            }
            .to_owned();
        }
    }
    out
}

/// An offer body with every `c=` address made 127.0.0.1 and each `m=`
/// line's port made `ports[i]` (where this client sends from).
pub fn rewrite_offer(body: &str, ports: &[u16]) -> String {
    let mut m = 0;
    let mut out = String::new();
    for line in body.split_inclusive('\n') {
        let (text, end) = match line.strip_suffix("\r\n") {
            Some(t) => (t, "\r\n"),
            None => match line.strip_suffix('\n') {
                Some(t) => (t, "\n"),
                None => (line, ""),
            },
        };
        let text = if text.starts_with("c=IN IP4 ") || text.starts_with("c=IN IP6 ") {
            "c=IN IP4 127.0.0.1".to_owned()
        } else if let Some(rest) = text.strip_prefix("m=audio ") {
            let (_, after) = rest.split_once(' ').unwrap_or((rest, ""));
            let port = ports.get(m).copied().unwrap_or(9);
            m += 1;
            format!("m=audio {port} {after}")
        } else if let Some(rest) = text.strip_prefix("m=") {
            m += 1;
            format!("m={rest}")
        } else {
            text.to_owned()
        };
        out.push_str(&text);
        out.push_str(end);
    }
    out
}

/// A SIPREC client on loopback.
pub struct Client {
    /// Its SIP socket.
    pub sip: UdpSocket,
    /// The server's SIP address.
    pub server: SocketAddr,
    /// The session's Call-ID.
    pub call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    cseq: u32,
}

impl Client {
    /// A client on a new loopback UDP socket, for the session `call_id`.
    ///
    /// # Errors
    /// The socket's.
    pub fn new(server: SocketAddr, call_id: &str) -> io::Result<Self> {
        let sip = UdpSocket::bind("127.0.0.1:0")?;
        sip.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(Self {
            sip,
            server,
            call_id: call_id.to_owned(),
            from_tag: format!("t{}", std::process::id()),
            to_tag: None,
            cseq: 0,
        })
    }

    fn request(&mut self, method: &str, content: Option<(&str, &str)>) -> io::Result<String> {
        if method != "ACK" {
            self.cseq += 1;
        }
        let local = self.sip.local_addr()?;
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let (content_type, body) = content.unwrap_or(("", ""));
        let mut text = format!(
            "{method} sip:srs@{server} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{method}{cseq}{id}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:src@{local}>;tag={from_tag}\r\n\
             To: <sip:srs@{server}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:src@{local}>;+sip.src\r\n",
            server = self.server,
            cseq = self.cseq,
            id = std::process::id(),
            from_tag = self.from_tag,
            call_id = self.call_id,
        );
        if method == "INVITE" {
            text.push_str("Require: siprec\r\n");
        }
        if !content_type.is_empty() {
            text.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        Ok(text)
    }

    /// Sends a request and waits for its final response (retransmitting
    /// over UDP every 500 ms, as RFC 3261's timer A does).
    ///
    /// # Errors
    /// The socket's, or `TimedOut` after 10 s without a final response.
    pub fn send(&mut self, method: &str, content: Option<(&str, &str)>) -> io::Result<Response> {
        let request = self.request(method, content)?;
        let cseq = format!("{} {method}", self.cseq);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut next_send = Instant::now();
        let mut buf = vec![0u8; 65536];
        loop {
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no final response to {method} {} from {}",
                        self.call_id, self.server
                    ),
                ));
            }
            if Instant::now() >= next_send {
                self.sip.send_to(request.as_bytes(), self.server)?;
                next_send = Instant::now() + Duration::from_millis(500);
            }
            let Ok((n, _)) = self.sip.recv_from(&mut buf) else {
                continue;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let status: u16 = text
                .strip_prefix("SIP/2.0 ")
                .and_then(|s| s.get(..3))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let response = Response { status, text };
            let same = response.header("CSeq").as_deref() == Some(cseq.as_str())
                && response.header("Call-ID").as_deref() == Some(self.call_id.as_str());
            if status == 0 || !same {
                // A request from the server (its BYE): answered 200.
                continue;
            }
            if status >= 200 {
                if let Some(to) = response.header("To") {
                    if let Some((_, tag)) = to.split_once(";tag=") {
                        self.to_tag = Some(tag.split(';').next().unwrap_or(tag).to_owned());
                    }
                }
                return Ok(response);
            }
        }
    }

    /// INVITE with the offer (or, once in the dialog, a re-INVITE), then
    /// ACK when it is a 2xx.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn invite(&mut self, content_type: &str, body: &str) -> io::Result<Response> {
        let response = self.send("INVITE", Some((content_type, body)))?;
        if (200..300).contains(&response.status) {
            let ack = self.request("ACK", None)?;
            self.sip.send_to(ack.as_bytes(), self.server)?;
        }
        Ok(response)
    }

    /// BYE: the session ends.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn bye(&mut self) -> io::Result<Response> {
        self.send("BYE", None)
    }
}

/// One RTP stream this client sends: from `socket` to the server's port,
/// a sine of `hz` in the answered codec.
pub struct ToneStream {
    /// Where it is sent from.
    pub socket: UdpSocket,
    /// The server's port for it.
    pub to: SocketAddr,
    /// The answered payload type.
    pub payload_type: u8,
    /// `PCMA`, `PCMU` or `G722`.
    pub encoding: String,
    /// The tone.
    pub hz: f64,
    /// Its SSRC.
    pub ssrc: u32,
}

impl ToneStream {
    /// A tone of `hz` from `socket` to the stream the server `server`
    /// answered as `answered` (its port and codec), with SSRC `ssrc`.
    pub fn new(socket: UdpSocket, server: IpAddr, answered: &Answered, hz: f64, ssrc: u32) -> Self {
        Self {
            socket,
            to: SocketAddr::new(server, answered.port),
            payload_type: answered.payload_type,
            encoding: answered.encoding.clone(),
            hz,
            ssrc,
        }
    }
}

/// One 20 ms payload of `stream`'s tone: packet `n`.
fn tone_payload(stream: &ToneStream, n: u32, g722: &mut callrec_audio::g722::Encoder) -> [u8; 160] {
    let wide = stream.encoding.eq_ignore_ascii_case("G722");
    let rate = if wide { 16000.0 } else { 8000.0 };
    let samples: u32 = if wide { 320 } else { 160 };
    let mut pcm = [0i16; 320];
    for (i, x) in pcm[..samples as usize].iter_mut().enumerate() {
        let t = (f64::from(n) * f64::from(samples) + i as f64) / rate;
        *x = (8000.0 * (2.0 * core::f64::consts::PI * stream.hz * t).sin()) as i16;
    }
    let pcm = &pcm[..samples as usize];
    let mut payload = [0u8; 160];
    match stream.encoding.to_ascii_uppercase().as_str() {
        "PCMU" => {
            callrec_audio::g711::encode_ulaw(pcm, &mut payload);
        }
        "G722" => {
            g722.encode(pcm, &mut payload);
        }
        _ => {
            callrec_audio::g711::encode_alaw(pcm, &mut payload);
        }
    }
    payload
}

/// Sends every stream's tone for `seconds`, a 20 ms packet per stream at
/// a time, at real-time pace, from the calling thread. A G.711 tone of a
/// whole number of hertz repeats every second: its 50 payloads are made
/// once.
///
/// # Errors
/// The first send error.
pub fn send_tones(streams: &[ToneStream], seconds: f64) -> io::Result<()> {
    let packets = (seconds * 50.0) as u32;
    let start = Instant::now();
    let mut g722: Vec<callrec_audio::g722::Encoder> = streams
        .iter()
        .map(|_| callrec_audio::g722::Encoder::new())
        .collect();
    let periodic: Vec<Option<Vec<[u8; 160]>>> = streams
        .iter()
        .zip(&mut g722)
        .map(|(stream, encoder)| {
            let g711 = !stream.encoding.eq_ignore_ascii_case("G722");
            (g711 && stream.hz.fract() == 0.0)
                .then(|| (0..50).map(|n| tone_payload(stream, n, encoder)).collect())
        })
        .collect();
    let mut packet = Vec::with_capacity(172);
    for n in 0..packets {
        for (s, stream) in streams.iter().enumerate() {
            let payload = match &periodic[s] {
                Some(second) => second[(n % 50) as usize],
                None => tone_payload(stream, n, &mut g722[s]),
            };
            packet.clear();
            packet.push(0x80);
            packet.push(stream.payload_type & 0x7f);
            packet.extend_from_slice(&(n as u16).to_be_bytes());
            packet.extend_from_slice(&(n * 160).to_be_bytes());
            packet.extend_from_slice(&stream.ssrc.to_be_bytes());
            packet.extend_from_slice(&payload);
            stream.socket.send_to(&packet, stream.to)?;
        }
        let due = start + Duration::from_millis(20 * u64::from(n + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(())
}

/// The multipart boundary of [`two_party_offer`].
pub const BOUNDARY: &str = "callrec-test-boundary";

/// The numbers of [`two_party_offer`]'s usual parties, Alice and Bob.
pub const ALICE_AND_BOB: [&str; 2] = ["+4930111", "+4930222"];

/// A two-stream offer (`multipart/mixed` with [`BOUNDARY`]): Alice
/// (`sip:NUMBER@example.com`, `numbers[0]`) sends stream `a1` in PCMA,
/// Bob (`numbers[1]`) sends `b1` in PCMU, RTP from `ports`.
pub fn two_party_offer(ports: [u16; 2], numbers: [&str; 2]) -> String {
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=label:a1\r\na=sendonly\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:b1\r\na=sendonly\r\n",
        ports[0], ports[1]
    );
    let [alice, bob] = numbers;
    let metadata = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
        <recording xmlns=\"urn:ietf:params:xml:ns:recording:1\">\r\n\
        <datamode>complete</datamode>\r\n\
        <session session_id=\"s1\"/>\r\n\
        <participant participant_id=\"p1\"><nameID aor=\"sip:{alice}@example.com\"><name>Alice Example</name></nameID></participant>\r\n\
        <participant participant_id=\"p2\"><nameID aor=\"sip:{bob}@example.com\"><name>Bob Example</name></nameID></participant>\r\n\
        <stream stream_id=\"st1\" session_id=\"s1\"><label>a1</label></stream>\r\n\
        <stream stream_id=\"st2\" session_id=\"s1\"><label>b1</label></stream>\r\n\
        <participantstreamassoc participant_id=\"p1\"><send>st1</send><recv>st2</recv></participantstreamassoc>\r\n\
        <participantstreamassoc participant_id=\"p2\"><send>st2</send><recv>st1</recv></participantstreamassoc>\r\n\
        </recording>\r\n"
    );
    format!(
        "--{BOUNDARY}\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n\
         --{BOUNDARY}\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n{metadata}\r\n\
         --{BOUNDARY}--\r\n"
    )
}

/// `n` loopback UDP sockets to send streams from.
///
/// # Errors
/// The first bind error.
pub fn rtp_sockets(n: usize) -> io::Result<Vec<UdpSocket>> {
    (0..n).map(|_| UdpSocket::bind("127.0.0.1:0")).collect()
}

/// A two-party session (see [`two_party_offer`]) started against the
/// SIPREC server at `sip`: INVITE answered and ACKed. Returns the client
/// (for the BYE) and the two streams to send: a 440 Hz tone from the first
/// party and a 1250 Hz tone from the second.
///
/// # Errors
/// What went wrong, naming the session: a socket error, no answer, an
/// answer other than `200` with two `recvonly` streams and a `+sip.srs`
/// Contact.
pub fn start_two_party(
    sip: SocketAddr,
    call_id: &str,
    numbers: [&str; 2],
) -> Result<(Client, Vec<ToneStream>), String> {
    let fail = |e: io::Error| format!("{call_id}: {e}");
    let sockets = rtp_sockets(2).map_err(fail)?;
    let mut ports = [0u16; 2];
    for (port, socket) in ports.iter_mut().zip(&sockets) {
        *port = socket.local_addr().map_err(fail)?.port();
    }
    let mut client = Client::new(sip, call_id).map_err(fail)?;
    let response = client
        .invite(
            &format!("multipart/mixed;boundary={BOUNDARY}"),
            &two_party_offer(ports, numbers),
        )
        .map_err(fail)?;
    let answered = answered_streams(response.body());
    let srs = response
        .header("Contact")
        .is_some_and(|c| c.contains("+sip.srs"));
    if response.status != 200
        || !srs
        || answered.len() != 2
        || answered.iter().any(|a| a.direction != "recvonly")
    {
        return Err(format!("{call_id}: answered {}", response.text));
    }
    let streams = sockets
        .into_iter()
        .zip(&answered)
        .zip([440.0, 1250.0])
        .enumerate()
        .map(|(i, ((socket, a), hz))| ToneStream::new(socket, sip.ip(), a, hz, 0x1000 + i as u32))
        .collect();
    Ok((client, streams))
}

/// Ends a session with a BYE answered `200`.
///
/// # Errors
/// What went wrong, naming the session.
pub fn end_session(client: &mut Client) -> Result<(), String> {
    let bye = client
        .bye()
        .map_err(|e| format!("{}: {e}", client.call_id))?;
    if bye.status != 200 {
        return Err(format!("{}: BYE answered {}", client.call_id, bye.text));
    }
    Ok(())
}

/// A whole two-party session: [`start_two_party`], the tones for
/// `seconds`, [`end_session`].
///
/// # Errors
/// As those two, or a send error.
pub fn two_party_session(
    sip: SocketAddr,
    call_id: &str,
    numbers: [&str; 2],
    seconds: f64,
) -> Result<(), String> {
    let (mut client, streams) = start_two_party(sip, call_id, numbers)?;
    send_tones(&streams, seconds).map_err(|e| format!("{call_id}: {e}"))?;
    end_session(&mut client)
}

/// What [`run_sessions`] did.
#[derive(Debug, Clone)]
pub struct LoadSummary {
    /// Sessions run to their BYE's `200`.
    pub completed: usize,
    /// The ones that failed, and why.
    pub failed: Vec<String>,
    /// From the first INVITE to the last BYE's answer.
    pub elapsed: Duration,
}

/// Runs `sessions` two-party sessions at once against `sip`, each
/// `seconds` long: all started (one after another), then every stream's
/// tone sent from one thread in real time (as phone_sim's calls share one
/// runtime: the load generator's own scheduling stays out of the server's
/// way), then all ended. Session `i` has Call-ID `load-<i>@127.0.0.1` and
/// the numbers `+49301<i>` and `+49302<i>` (five digits).
pub fn run_sessions(sip: SocketAddr, sessions: usize, seconds: f64) -> LoadSummary {
    let start = Instant::now();
    let mut failed = Vec::new();
    let mut clients = Vec::new();
    let mut streams = Vec::new();
    for i in 0..sessions {
        let numbers = [format!("+49301{i:05}"), format!("+49302{i:05}")];
        match start_two_party(
            sip,
            &format!("load-{i}@127.0.0.1"),
            [&numbers[0], &numbers[1]],
        ) {
            Ok((client, two)) => {
                clients.push(client);
                streams.extend(two);
            }
            Err(e) => failed.push(e),
        }
    }
    if let Err(e) = send_tones(&streams, seconds) {
        failed.push(format!("sending the tones: {e}"));
    }
    let mut completed = 0;
    for client in &mut clients {
        match end_session(client) {
            Ok(()) => completed += 1,
            Err(e) => failed.push(e),
        }
    }
    LoadSummary {
        completed,
        failed,
        elapsed: start.elapsed(),
    }
}
