//! The recording client's SDP offer (RFC 4566) and the recording
//! server's answer (RFC 3264): one `recvonly` stream per offered audio
//! stream, labels kept.

use core::fmt::Write as _;
use core::net::IpAddr;

use crate::Error;

/// Most lines in one SDP.
pub const MAX_LINES: usize = 1024;
/// Longest SDP line.
pub const MAX_LINE_LEN: usize = 1024;
/// Most media descriptions (`m=` lines) in one SDP.
pub const MAX_MEDIA: usize = 16;
/// Most formats on one `m=` line.
pub const MAX_FORMATS: usize = 32;

/// Which way a stream flows, from the offerer's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Direction {
    /// `a=sendrecv` (the default).
    #[default]
    SendRecv,
    /// `a=sendonly`: what a recording client offers.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`: on hold; nothing flows.
    Inactive,
}

impl Direction {
    /// Its attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }
}

/// An `a=rtpmap:` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RtpMap<'a> {
    /// The payload type.
    pub payload_type: u8,
    /// The encoding name, as written (`PCMA`, `telephone-event` …).
    pub encoding: &'a str,
    /// The RTP clock rate.
    pub clock_rate: u32,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MediaDescription<'a> {
    /// `audio`, `video` …
    pub media: &'a str,
    /// The port the offerer receives on (`0`: the stream is disabled).
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP` …
    pub protocol: &'a str,
    /// The formats (payload types, for RTP), in the offerer's order.
    pub formats: Vec<&'a str>,
    /// The section's `c=` address, else the session's.
    pub address: Option<IpAddr>,
    /// Its `a=rtpmap:` attributes.
    pub rtpmaps: Vec<RtpMap<'a>>,
    /// `a=label:` (RFC 4574): how SIPREC metadata names the stream.
    pub label: Option<&'a str>,
    /// Its direction, else the session's.
    pub direction: Direction,
    /// `a=ptime:` in milliseconds.
    pub ptime: Option<u16>,
}

/// A parsed SDP: the session's address and its media descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionDescription<'a> {
    /// The session-level `c=` address.
    pub address: Option<IpAddr>,
    /// The `m=` sections, in order.
    pub media: Vec<MediaDescription<'a>>,
}

/// The codecs a recording server stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// G.711 A-law (static payload type 8).
    Pcma,
    /// G.711 µ-law (static payload type 0).
    Pcmu,
    /// G.722 (static payload type 9; RTP clock 8000, audio 16 kHz).
    G722,
}

impl Codec {
    /// The encoding name in `a=rtpmap`.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Self::Pcma => "PCMA",
            Self::Pcmu => "PCMU",
            Self::G722 => "G722",
        }
    }

    /// The static payload type.
    pub fn static_payload_type(self) -> u8 {
        match self {
            Self::Pcma => 8,
            Self::Pcmu => 0,
            Self::G722 => 9,
        }
    }

    fn of_name(name: &str) -> Option<Self> {
        [Self::Pcma, Self::Pcmu, Self::G722]
            .into_iter()
            .find(|c| c.encoding_name().eq_ignore_ascii_case(name))
    }
}

/// What the answer takes from one offered stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamChoice {
    /// The codec.
    pub codec: Codec,
    /// Its payload type in this offer.
    pub payload_type: u8,
    /// The payload type of `telephone-event/8000`, when offered.
    pub telephone_event: Option<u8>,
}

fn sdp_error(line: usize, reason: String) -> Error {
    Error::Sdp { line, reason }
}

fn address_of(value: &str, line: usize) -> Result<IpAddr, Error> {
    // c=IN IP4 192.0.2.1[/ttl]
    let mut fields = value.split_ascii_whitespace();
    let (net, kind, address) = (fields.next(), fields.next(), fields.next());
    if net != Some("IN") || !matches!(kind, Some("IP4" | "IP6")) {
        return Err(sdp_error(
            line,
            format!("c={value:?} is not IN IP4 or IN IP6"),
        ));
    }
    let address = address.unwrap_or("");
    let bare = address.split('/').next().unwrap_or("");
    bare.parse()
        .map_err(|_| sdp_error(line, format!("c= address {address:?} is not an IP address")))
}

impl<'a> SessionDescription<'a> {
    /// Parses an SDP: `v=`, `c=`, `m=` and the media attributes a recorder
    /// needs; other lines are skipped. CRLF or LF line ends.
    ///
    /// # Errors
    /// [`Error::Sdp`] naming the line and value that could not be read (not
    /// UTF-8, no `x=` form, a bad `m=`, `c=` or `a=rtpmap`), and the
    /// limits ([`MAX_LINES`], [`MAX_LINE_LEN`], [`MAX_MEDIA`],
    /// [`MAX_FORMATS`]).
    pub fn parse(sdp: &'a [u8]) -> Result<Self, Error> {
        let text = core::str::from_utf8(sdp).map_err(|e| {
            let line = sdp[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            sdp_error(line, "not UTF-8".to_owned())
        })?;
        let mut session = Self {
            address: None,
            media: Vec::new(),
        };
        let mut session_direction = Direction::default();
        let mut saw_version = false;
        for (index, raw) in text.split('\n').enumerate() {
            let n = index + 1;
            if n > MAX_LINES {
                return Err(Error::TooMany {
                    what: "SDP lines",
                    max: MAX_LINES,
                });
            }
            if raw.len() > MAX_LINE_LEN {
                return Err(Error::TooLong {
                    what: "SDP line",
                    max: MAX_LINE_LEN,
                });
            }
            let line = raw.strip_suffix('\r').unwrap_or(raw).trim_end();
            if line.is_empty() {
                continue;
            }
            if line.chars().any(|c| c.is_control() && c != '\t') {
                // A bare CR would end the line for another parser: an
                // answer that copies a label must not carry one.
                return Err(sdp_error(n, format!("{line:?} holds a control character")));
            }
            let Some((kind, value)) = line.split_once('=').filter(|(k, _)| k.len() == 1) else {
                return Err(sdp_error(n, format!("{line:?} is not a type=value line")));
            };
            if !saw_version {
                if kind != "v" || value.trim() != "0" {
                    return Err(sdp_error(n, format!("{line:?} where v=0 belongs")));
                }
                saw_version = true;
                continue;
            }
            match kind {
                "c" => {
                    let address = address_of(value, n)?;
                    match session.media.last_mut() {
                        Some(m) => m.address = Some(address),
                        None => session.address = Some(address),
                    }
                }
                "m" => {
                    if session.media.len() == MAX_MEDIA {
                        return Err(Error::TooMany {
                            what: "media descriptions",
                            max: MAX_MEDIA,
                        });
                    }
                    let media = media_line(value, n)?;
                    session.media.push(MediaDescription {
                        address: session.address,
                        direction: session_direction,
                        ..media
                    });
                }
                "a" => {
                    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                    let direction = match name {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    let Some(m) = session.media.last_mut() else {
                        if let Some(d) = direction {
                            session_direction = d;
                        }
                        continue;
                    };
                    if let Some(d) = direction {
                        m.direction = d;
                    }
                    match name {
                        "rtpmap" => {
                            if m.rtpmaps.len() == MAX_FORMATS {
                                return Err(Error::TooMany {
                                    what: "rtpmap attributes",
                                    max: MAX_FORMATS,
                                });
                            }
                            m.rtpmaps.push(rtpmap(arg, n)?);
                        }
                        "label" => m.label = Some(arg.trim()),
                        "ptime" => {
                            m.ptime = Some(arg.trim().parse().map_err(|_| {
                                sdp_error(
                                    n,
                                    format!("a=ptime:{arg} is not a number of milliseconds"),
                                )
                            })?);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if !saw_version {
            return Err(sdp_error(1, "empty: no v=0".to_owned()));
        }
        Ok(session)
    }
}

fn media_line(value: &str, n: usize) -> Result<MediaDescription<'_>, Error> {
    let mut fields = value.split_ascii_whitespace();
    let media = fields.next().unwrap_or("");
    let port_field = fields.next().unwrap_or("");
    let port = port_field
        .split('/')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| sdp_error(n, format!("m= port {port_field:?} is not a port number")))?;
    let protocol = fields
        .next()
        .ok_or_else(|| sdp_error(n, format!("m={value:?} has no protocol")))?;
    let formats: Vec<&str> = fields.collect();
    if formats.is_empty() {
        return Err(sdp_error(n, format!("m={value:?} has no formats")));
    }
    if formats.len() > MAX_FORMATS {
        return Err(Error::TooMany {
            what: "formats on an m= line",
            max: MAX_FORMATS,
        });
    }
    Ok(MediaDescription {
        media,
        port,
        protocol,
        formats,
        address: None,
        rtpmaps: Vec::new(),
        label: None,
        direction: Direction::default(),
        ptime: None,
    })
}

fn rtpmap(arg: &str, n: usize) -> Result<RtpMap<'_>, Error> {
    let bad = || sdp_error(n, format!("a=rtpmap:{arg} is not \"PT name/rate\""));
    let (pt, rest) = arg.trim().split_once(' ').ok_or_else(bad)?;
    let mut spec = rest.trim().split('/');
    let encoding = spec.next().filter(|e| !e.is_empty()).ok_or_else(bad)?;
    let clock_rate = spec.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
    let payload_type = pt
        .parse()
        .ok()
        .filter(|&pt: &u8| pt < 128)
        .ok_or_else(bad)?;
    Ok(RtpMap {
        payload_type,
        encoding,
        clock_rate,
    })
}

impl MediaDescription<'_> {
    /// The encoding and clock rate of payload type `pt`: its rtpmap, else
    /// the static assignment (RFC 3551).
    pub fn encoding_of(&self, pt: u8) -> Option<(&str, u32)> {
        if let Some(map) = self.rtpmaps.iter().find(|m| m.payload_type == pt) {
            return Some((map.encoding, map.clock_rate));
        }
        match pt {
            0 => Some(("PCMU", 8000)),
            8 => Some(("PCMA", 8000)),
            9 => Some(("G722", 8000)),
            _ => None,
        }
    }

    /// The codec a recorder takes from this stream: the first format in the
    /// offerer's order that is PCMA, PCMU or G722, with `telephone-event`
    /// when offered. `None` for a stream that is not RTP audio, is secured
    /// (`RTP/SAVP`: SRTP is not supported), or offers none of them.
    pub fn choose(&self) -> Option<StreamChoice> {
        if !self.media.eq_ignore_ascii_case("audio")
            || !self.protocol.eq_ignore_ascii_case("RTP/AVP")
        {
            return None;
        }
        let payload_types = || self.formats.iter().filter_map(|f| f.parse::<u8>().ok());
        let (codec, payload_type) = payload_types().find_map(|pt| {
            let (name, rate) = self.encoding_of(pt)?;
            Codec::of_name(name)
                .filter(|_| rate == 8000)
                .map(|c| (c, pt))
        })?;
        let telephone_event = payload_types().find(|&pt| {
            self.encoding_of(pt).is_some_and(|(name, rate)| {
                name.eq_ignore_ascii_case("telephone-event") && rate == 8000
            })
        });
        Some(StreamChoice {
            codec,
            payload_type,
            telephone_event,
        })
    }
}

/// Writes the answer to `offer`: a `recvonly` audio stream for each
/// offered stream that [`MediaDescription::choose`] takes and `ports`
/// gives a port (an `inactive` offer is answered `inactive`, a `recvonly`
/// one `inactive` too: the client sends nothing there), each with its
/// label; every other stream rejected with port 0 (RFC 3264 §6). `ports`
/// has one entry per offered `m=` line; `session_id` and `version` go on
/// the `o=` line.
///
/// # Errors
/// [`Error::Sdp`] when `ports` does not have one entry per `m=` line.
pub fn answer(
    offer: &SessionDescription<'_>,
    address: IpAddr,
    ports: &[Option<u16>],
    session_id: u64,
    version: u64,
) -> Result<String, Error> {
    if ports.len() != offer.media.len() {
        return Err(sdp_error(
            0,
            format!(
                "{} ports for {} media descriptions",
                ports.len(),
                offer.media.len()
            ),
        ));
    }
    let ip = if address.is_ipv4() { "IP4" } else { "IP6" };
    let mut out = String::new();
    let _ = write!(
        out,
        "v=0\r\no=callrec {session_id} {version} IN {ip} {address}\r\ns=callrec\r\nc=IN {ip} {address}\r\nt=0 0\r\n"
    );
    for (media, port) in offer.media.iter().zip(ports) {
        let choice = media.choose().filter(|_| media.port != 0);
        match (choice, port) {
            (Some(choice), Some(port)) => {
                let codec = choice.codec;
                let _ = write!(out, "m=audio {port} RTP/AVP {}", choice.payload_type);
                if let Some(te) = choice.telephone_event {
                    let _ = write!(out, " {te}");
                }
                let _ = write!(
                    out,
                    "\r\na=rtpmap:{} {}/8000\r\n",
                    choice.payload_type,
                    codec.encoding_name()
                );
                if let Some(te) = choice.telephone_event {
                    let _ = write!(
                        out,
                        "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-15\r\n"
                    );
                }
                if let Some(ptime) = media.ptime {
                    let _ = write!(out, "a=ptime:{ptime}\r\n");
                }
            }
            _ => {
                let _ = write!(
                    out,
                    "m={} 0 {} {}\r\n",
                    media.media, media.protocol, media.formats[0]
                );
            }
        }
        if let Some(label) = media.label {
            let _ = write!(out, "a=label:{label}\r\n");
        }
        let direction = match (choice.and(*port), media.direction) {
            (None, _) | (_, Direction::Inactive | Direction::RecvOnly) => Direction::Inactive,
            _ => Direction::RecvOnly,
        };
        let _ = write!(out, "a={}\r\n", direction.as_str());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=SRC 2890844526 2890844526 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 12240 RTP/AVP 0 4 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=label:1\r\na=sendonly\r\nm=audio 12242 RTP/AVP 9\r\nc=IN IP4 198.51.100.2\r\na=label:2\r\na=inactive\r\na=ptime:20\r\nm=video 12244 RTP/AVP 96\r\na=label:3\r\n";

    #[test]
    fn an_offer_with_labels_directions_and_addresses() {
        let sdp = SessionDescription::parse(OFFER.as_bytes()).unwrap();
        assert_eq!(sdp.media.len(), 3);
        let first = &sdp.media[0];
        assert_eq!(
            (first.port, first.label, first.direction),
            (12240, Some("1"), Direction::SendOnly)
        );
        assert_eq!(first.formats, ["0", "4", "8", "101"]);
        assert_eq!(
            first.choose(),
            Some(StreamChoice {
                codec: Codec::Pcmu,
                payload_type: 0,
                telephone_event: Some(101)
            })
        );
        let second = &sdp.media[1];
        assert_eq!(second.address, Some("198.51.100.2".parse().unwrap()));
        assert_eq!(
            (second.direction, second.ptime),
            (Direction::Inactive, Some(20))
        );
        assert_eq!(second.choose().unwrap().codec, Codec::G722);
        assert_eq!(sdp.media[2].choose(), None);
        let text = answer(
            &sdp,
            "127.0.0.1".parse().unwrap(),
            &[Some(40000), Some(40002), Some(40004)],
            7,
            1,
        )
        .unwrap();
        assert!(text.contains("m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=label:1\r\na=recvonly\r\n"), "{text}");
        assert!(text.contains("m=audio 40002 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\na=ptime:20\r\na=label:2\r\na=inactive\r\n"), "{text}");
        assert!(
            text.contains("m=video 0 RTP/AVP 96\r\na=label:3\r\na=inactive\r\n"),
            "{text}"
        );
        let again = SessionDescription::parse(text.as_bytes()).unwrap();
        assert_eq!(again.media.len(), 3);
    }

    #[test]
    fn errors_name_the_line_and_value() {
        let e = |sdp: &str| {
            SessionDescription::parse(sdp.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(e("x"), "SDP line 1: \"x\" is not a type=value line");
        assert_eq!(e("o=a\r\n"), "SDP line 1: \"o=a\" where v=0 belongs");
        assert_eq!(
            e("v=0\r\nm=audio 70000 RTP/AVP 0\r\n"),
            "SDP line 2: m= port \"70000\" is not a port number"
        );
        assert_eq!(
            e("v=0\r\nc=IN IP4 300.1.1.1\r\n"),
            "SDP line 2: c= address \"300.1.1.1\" is not an IP address"
        );
        assert_eq!(
            e("v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:x\r\n"),
            "SDP line 3: a=rtpmap:x is not \"PT name/rate\""
        );
        assert_eq!(e(""), "SDP line 1: empty: no v=0");
        assert_eq!(
            e("v=0\r\nm=audio 1 RTP/AVP 0\r\na=label:1\rm=audio 9 RTP/AVP 0\r\n"),
            "SDP line 3: \"a=label:1\\rm=audio 9 RTP/AVP 0\" holds a control character"
        );
        let srtp = SessionDescription::parse(b"v=0\nm=audio 1 RTP/SAVP 8\n").unwrap();
        assert_eq!(srtp.media[0].choose(), None, "SRTP is not taken");
    }
}
