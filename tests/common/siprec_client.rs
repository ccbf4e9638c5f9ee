//! A SIPREC recording client written for the tests, sharing no code with
//! the server's SIP side: SIP as plain text over UDP, the answer's SDP read
//! with string operations, RTP headers and tones made by hand (G.711
//! through callrec-audio's encoder, whose output sox and ffmpeg check in
//! the audio crate's interop tests).

use core::net::SocketAddr;
use core::time::Duration;
use std::net::UdpSocket;
use std::time::Instant;

/// A response: its status code and its whole text.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) text: String,
}

impl Response {
    /// A header's value (the first).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let head = self.text.split("\r\n\r\n").next()?;
        head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// The body.
    pub(crate) fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
}

/// One stream as the answer gives it: the server's port (0: rejected), its
/// payload type and encoding name, and its direction.
#[derive(Debug, Clone)]
pub(crate) struct Answered {
    pub(crate) port: u16,
    pub(crate) payload_type: u8,
    pub(crate) encoding: String,
    pub(crate) direction: String,
}

/// Reads the answer's `m=` sections.
pub(crate) fn answered_streams(sdp: &str) -> Vec<Answered> {
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
pub(crate) fn rewrite_offer(body: &str, ports: &[u16]) -> String {
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
pub(crate) struct Client {
    pub(crate) sip: UdpSocket,
    pub(crate) server: SocketAddr,
    pub(crate) call_id: String,
    from_tag: String,
    to_tag: Option<String>,
    cseq: u32,
}

impl Client {
    pub(crate) fn new(server: SocketAddr, call_id: &str) -> Self {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Self {
            sip,
            server,
            call_id: call_id.to_owned(),
            from_tag: format!("t{}", std::process::id()),
            to_tag: None,
            cseq: 0,
        }
    }

    fn request(&mut self, method: &str, content: Option<(&str, &str)>) -> String {
        if method != "ACK" {
            self.cseq += 1;
        }
        let local = self.sip.local_addr().unwrap();
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
        text
    }

    /// Sends a request and waits for its final response (retransmitting
    /// over UDP every 500 ms, as RFC 3261's timer A does).
    pub(crate) fn send(&mut self, method: &str, content: Option<(&str, &str)>) -> Response {
        let request = self.request(method, content);
        let cseq = format!("{} {method}", self.cseq);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut next_send = Instant::now();
        let mut buf = vec![0u8; 65536];
        loop {
            assert!(
                Instant::now() < deadline,
                "no final response to {method} {}",
                self.call_id
            );
            if Instant::now() >= next_send {
                self.sip.send_to(request.as_bytes(), self.server).unwrap();
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
                return response;
            }
        }
    }

    /// INVITE with the offer, then ACK when it is a 2xx.
    pub(crate) fn invite(&mut self, content_type: &str, body: &str) -> Response {
        let response = self.send("INVITE", Some((content_type, body)));
        if (200..300).contains(&response.status) {
            let ack = self.request("ACK", None);
            self.sip.send_to(ack.as_bytes(), self.server).unwrap();
        }
        response
    }

    /// A re-INVITE in the dialog (ACKed when 2xx).
    pub(crate) fn reinvite(&mut self, content_type: &str, body: &str) -> Response {
        self.invite(content_type, body)
    }

    pub(crate) fn bye(&mut self) -> Response {
        self.send("BYE", None)
    }
}

/// One RTP stream this client sends: from `socket` to the server's port,
/// a sine of `hz` in the answered codec.
pub(crate) struct ToneStream {
    pub(crate) socket: UdpSocket,
    pub(crate) to: SocketAddr,
    pub(crate) payload_type: u8,
    pub(crate) encoding: String,
    pub(crate) hz: f64,
    pub(crate) ssrc: u32,
}

/// Sends every stream's tone for `seconds`, a 20 ms packet per stream at
/// a time, at real-time pace.
pub(crate) fn send_tones(streams: &[ToneStream], seconds: f64) {
    let packets = (seconds * 50.0) as u32;
    let start = Instant::now();
    let mut g722: Vec<callrec_audio::g722::Encoder> = streams
        .iter()
        .map(|_| callrec_audio::g722::Encoder::new())
        .collect();
    for n in 0..packets {
        for (s, stream) in streams.iter().enumerate() {
            let wide = stream.encoding.eq_ignore_ascii_case("G722");
            let rate = if wide { 16000.0 } else { 8000.0 };
            let samples = if wide { 320 } else { 160 };
            let pcm: Vec<i16> = (0..samples)
                .map(|i| {
                    let t = (f64::from(n) * f64::from(samples) + f64::from(i)) / rate;
                    (8000.0 * (2.0 * core::f64::consts::PI * stream.hz * t).sin()) as i16
                })
                .collect();
            let mut payload = vec![0u8; 160];
            match stream.encoding.to_ascii_uppercase().as_str() {
                "PCMU" => {
                    callrec_audio::g711::encode_ulaw(&pcm, &mut payload);
                }
                "G722" => {
                    g722[s].encode(&pcm, &mut payload);
                }
                _ => {
                    callrec_audio::g711::encode_alaw(&pcm, &mut payload);
                }
            }
            let mut packet = Vec::with_capacity(172);
            packet.push(0x80);
            packet.push(stream.payload_type & 0x7f);
            packet.extend_from_slice(&(n as u16).to_be_bytes());
            packet.extend_from_slice(&(n * 160).to_be_bytes());
            packet.extend_from_slice(&stream.ssrc.to_be_bytes());
            packet.extend_from_slice(&payload);
            stream.socket.send_to(&packet, stream.to).unwrap();
        }
        let due = start + Duration::from_millis(20 * u64::from(n + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// The power of `hz` in `samples` at `rate` (Goertzel), normalised by
/// length.
pub(crate) fn tone_power(samples: &[i16], rate: f64, hz: f64) -> f64 {
    let w = 2.0 * core::f64::consts::PI * hz / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len().max(1) as f64).powi(2)
}

/// The channels of a PCM16 WAV, read with plain byte offsets (the `fmt `
/// and `data` chunks found by name): rate, and each channel's samples.
pub(crate) fn wav_channels(bytes: &[u8]) -> (u32, Vec<Vec<i16>>) {
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let mut at = 12;
    let (mut channels, mut rate, mut data) = (0usize, 0u32, &bytes[0..0]);
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            channels = usize::from(u16::from_le_bytes([body[2], body[3]]));
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
            assert_eq!(u16::from_le_bytes([body[14], body[15]]), 16, "PCM16");
        } else if id == b"data" {
            data = body;
        }
        at += 8 + len + len % 2;
    }
    let mut out = vec![Vec::new(); channels];
    for (i, pair) in data.chunks_exact(2).enumerate() {
        out[i % channels].push(i16::from_le_bytes([pair[0], pair[1]]));
    }
    (rate, out)
}

pub(crate) const BOUNDARY: &str = "callrec-test-boundary";

/// A two-stream offer from Alice (+4930111, sends `a1`) and Bob (+4930222,
/// sends `b1`), RTP from `ports`.
pub(crate) fn two_party_offer(ports: [u16; 2]) -> String {
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=label:a1\r\na=sendonly\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:b1\r\na=sendonly\r\n",
        ports[0], ports[1]
    );
    let metadata = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
        <recording xmlns=\"urn:ietf:params:xml:ns:recording:1\">\r\n\
        <datamode>complete</datamode>\r\n\
        <session session_id=\"s1\"/>\r\n\
        <participant participant_id=\"p1\"><nameID aor=\"sip:+4930111@example.com\"><name>Alice Example</name></nameID></participant>\r\n\
        <participant participant_id=\"p2\"><nameID aor=\"sip:+4930222@example.com\"><name>Bob Example</name></nameID></participant>\r\n\
        <stream stream_id=\"st1\" session_id=\"s1\"><label>a1</label></stream>\r\n\
        <stream stream_id=\"st2\" session_id=\"s1\"><label>b1</label></stream>\r\n\
        <participantstreamassoc participant_id=\"p1\"><send>st1</send><recv>st2</recv></participantstreamassoc>\r\n\
        <participantstreamassoc participant_id=\"p2\"><send>st2</send><recv>st1</recv></participantstreamassoc>\r\n\
        </recording>\r\n";
    format!(
        "--{BOUNDARY}\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n\
         --{BOUNDARY}\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n{metadata}\r\n\
         --{BOUNDARY}--\r\n"
    )
}

/// Sockets to send each stream from.
pub(crate) fn rtp_sockets(n: usize) -> Vec<UdpSocket> {
    (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect()
}

/// A whole two-party session (see [`two_party_offer`]): INVITE, a 440 Hz
/// tone from Alice and a 1250 Hz tone from Bob for `seconds`, BYE.
pub(crate) fn two_party_session(sip: SocketAddr, call_id: &str, seconds: f64) {
    let sockets = rtp_sockets(2);
    let ports = [0, 1].map(|i| sockets[i].local_addr().unwrap().port());
    let mut client = Client::new(sip, call_id);
    let response = client.invite(
        &format!("multipart/mixed;boundary={BOUNDARY}"),
        &two_party_offer(ports),
    );
    assert_eq!(response.status, 200, "{}", response.text);
    assert!(
        response.header("Contact").unwrap().contains("+sip.srs"),
        "{}",
        response.text
    );
    let answered = answered_streams(response.body());
    assert_eq!(answered.len(), 2, "{}", response.body());
    assert!(answered.iter().all(|a| a.direction == "recvonly"));
    let streams: Vec<ToneStream> = sockets
        .into_iter()
        .zip(&answered)
        .zip([440.0, 1250.0])
        .enumerate()
        .map(|(i, ((socket, a), hz))| ToneStream {
            socket,
            to: SocketAddr::new(sip.ip(), a.port),
            payload_type: a.payload_type,
            encoding: a.encoding.clone(),
            hz,
            ssrc: 0x1000 + i as u32,
        })
        .collect();
    send_tones(&streams, seconds);
    assert_eq!(client.bye().status, 200);
}
