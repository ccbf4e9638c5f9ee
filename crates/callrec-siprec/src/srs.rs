//! The recording server's SIP side, sans-IO: SIP messages and the time in,
//! SIP messages to send and recording events out ([`Srs`]).
//!
//! It answers SIPREC INVITEs (`Require: siprec` or a `+sip.src` Contact)
//! with `200 OK` and the SDP answer, retransmits the `200` over UDP until
//! the ACK comes (RFC 3261 §13.3.1.4: T1, doubling up to T2, for 64·T1,
//! then the dialog is ended with a BYE), takes re-INVITEs and UPDATEs
//! (hold, new streams, new metadata), ends the dialog on BYE, answers
//! CANCEL, OPTIONS and every other method, and refuses what it cannot
//! record with a 4xx or 5xx that says why. The caller owns the sockets,
//! the RTP ports and the clock.

use core::net::{IpAddr, SocketAddr};
use std::collections::HashMap;

use callrec_sip::{Limits, SipMessage, StartLine};

use crate::{Direction, Metadata, Participant, RecordingOffer, StreamChoice, answer};

/// The most metadata one session keeps (its documents merged), in bytes of
/// text: a later document that would pass it is refused.
pub const MAX_SESSION_METADATA: usize = crate::metadata::MAX_METADATA_LEN;

/// How the SIP side runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SrsConfig {
    /// The address written into SDP answers (where RTP is received).
    pub media_address: IpAddr,
    /// This server's SIP address for `Contact` and `Via` (`host:port`).
    pub sip_address: SocketAddr,
    /// Most dialogs (recording sessions) at once; more INVITEs get `503`.
    pub max_dialogs: usize,
    /// Longest SIP message read.
    pub max_message_len: usize,
    /// RFC 3261's T1 (the first retransmission interval), milliseconds.
    pub t1_ms: u64,
    /// RFC 3261's T2 (the longest retransmission interval), milliseconds.
    pub t2_ms: u64,
    /// Most dialogs from one IP address; more INVITEs from it get `503`
    /// (so one sender cannot take every slot).
    pub max_dialogs_per_address: usize,
    /// Most streams of one session given a port (the rest are answered
    /// with port 0, in `m=` line order).
    pub max_streams: usize,
}

impl SrsConfig {
    /// 500 dialogs (100 from one address), 8 streams a session, 64 KiB
    /// messages, T1 500 ms and T2 4 s.
    pub fn new(sip_address: SocketAddr, media_address: IpAddr) -> Self {
        Self {
            media_address,
            sip_address,
            max_dialogs: 500,
            max_message_len: 64 << 10,
            t1_ms: 500,
            t2_ms: 4000,
            max_dialogs_per_address: 100,
            max_streams: 8,
        }
    }
}

/// One stream of a recording session, as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordedStream {
    /// Its `a=label`.
    pub label: Option<String>,
    /// The local RTP port it is received on; `None`: rejected (not audio,
    /// SRTP, no codec a recorder stores).
    pub port: Option<u16>,
    /// The codec and payload types taken.
    pub choice: Option<StreamChoice>,
    /// `inactive` (on hold) or not.
    pub direction: Direction,
    /// Where the client said it sends from (its `c=` address and `m=`
    /// port), to lock the stream's RTP onto.
    pub source: Option<SocketAddr>,
    /// The participant that sends it, when the metadata says.
    pub sender: Option<Participant>,
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SrsEvent {
    /// Send `message` to `to`.
    Send {
        /// Where.
        to: SocketAddr,
        /// A whole SIP message.
        message: Vec<u8>,
    },
    /// A recording session was accepted: receive its streams on their
    /// ports and record them.
    Start {
        /// The session's Call-ID.
        call_id: String,
        /// Its streams, in `m=` line order.
        streams: Vec<RecordedStream>,
        /// Its participants, when the metadata says.
        participants: Vec<Participant>,
    },
    /// A re-INVITE or UPDATE changed the session: streams held or resumed,
    /// added (with new ports) or removed, or the participants.
    Update {
        /// The session's Call-ID.
        call_id: String,
        /// Its streams now.
        streams: Vec<RecordedStream>,
        /// Its participants now.
        participants: Vec<Participant>,
    },
    /// The session ended: finish its recording and free its ports.
    Stop {
        /// The session's Call-ID.
        call_id: String,
        /// Why: `BYE`, `no ACK`, `shutdown`.
        reason: &'static str,
    },
    /// A message was refused or dropped: for the log and the counters.
    Refused {
        /// Who sent it.
        from: SocketAddr,
        /// What was wrong, naming the value.
        reason: String,
    },
}

/// A 2xx being retransmitted until its ACK.
#[derive(Debug)]
struct Unacknowledged {
    /// The INVITE's CSeq number, which its ACK carries.
    cseq: u32,
    response: Vec<u8>,
    next_at: u64,
    interval: u64,
    give_up_at: u64,
}

#[derive(Debug)]
struct Dialog {
    local_tag: String,
    /// The client's From tag.
    remote_tag: String,
    /// The client's SIP address (where responses and the BYE go).
    peer: SocketAddr,
    /// Its Contact URI, the BYE's Request-URI.
    remote_target: String,
    /// Its From header value (the BYE's To) and our To (the BYE's From).
    remote_from: String,
    local_to: String,
    /// The CSeq of the INVITE or UPDATE answered last, and the response
    /// sent, for retransmitted requests.
    last_cseq: u32,
    last_response: Vec<u8>,
    /// The SDP answered last: the offer in a 200 to an INVITE without one.
    last_sdp: String,
    unacknowledged: Option<Unacknowledged>,
    streams: Vec<RecordedStream>,
    metadata: Option<Metadata>,
    sdp_version: u64,
    session_id: u64,
    local_cseq: u32,
}

/// Allocates RTP ports: `n` of them, or `None` when it cannot (the
/// session is then refused with `503`); `release` gives them back.
pub trait PortAllocator {
    /// `n` free ports, or `None`.
    fn allocate(&mut self, n: usize) -> Option<Vec<u16>>;
    /// Gives ports back.
    fn release(&mut self, ports: &[u16]);
}

/// The recording server's SIP dialogs (see the module docs).
#[derive(Debug)]
pub struct Srs {
    config: SrsConfig,
    dialogs: HashMap<String, Dialog>,
    next_id: u64,
    /// SipHash with a key from the OS's random source: tags and branches
    /// nobody can predict from the ones they see.
    keys: std::collections::hash_map::RandomState,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A header's value as text, without line ends (for a reason phrase).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Srs {
    /// No dialogs yet.
    pub fn new(config: SrsConfig) -> Self {
        Self {
            config,
            dialogs: HashMap::new(),
            next_id: 1,
            keys: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Recording sessions open now.
    pub fn dialogs(&self) -> usize {
        self.dialogs.len()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due
    /// (milliseconds on the caller's clock), if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.dialogs
            .values()
            .filter_map(|d| {
                d.unacknowledged
                    .as_ref()
                    .map(|u| u.next_at.min(u.give_up_at))
            })
            .min()
    }

    /// Retransmits each unacknowledged `200` that is due; a dialog whose
    /// ACK did not come in 64·T1 is ended with a BYE.
    pub fn handle_timeout(&mut self, now: u64, ports: &mut dyn PortAllocator) -> Vec<SrsEvent> {
        let mut events = Vec::new();
        let mut dead = Vec::new();
        for (call_id, dialog) in &mut self.dialogs {
            let Some(u) = dialog.unacknowledged.as_mut() else {
                continue;
            };
            if now >= u.give_up_at {
                dead.push(call_id.clone());
            } else if now >= u.next_at {
                events.push(SrsEvent::Send {
                    to: dialog.peer,
                    message: u.response.clone(),
                });
                u.interval = (u.interval * 2).min(self.config.t2_ms);
                u.next_at = now + u.interval;
            }
        }
        for call_id in dead {
            events.extend(self.end(&call_id, "no ACK", ports));
        }
        events
    }

    /// Ends every session with a BYE (the server is stopping).
    pub fn shutdown(&mut self, ports: &mut dyn PortAllocator) -> Vec<SrsEvent> {
        let ids: Vec<String> = self.dialogs.keys().cloned().collect();
        ids.iter()
            .flat_map(|id| self.end(id, "shutdown", ports))
            .collect()
    }

    /// Ends one session with a BYE: for the caller's own reasons (no RTP
    /// for too long, an operator's request), and when no ACK comes or the
    /// server shuts down; nothing when it is not open.
    pub fn end(
        &mut self,
        call_id: &str,
        reason: &'static str,
        ports: &mut dyn PortAllocator,
    ) -> Vec<SrsEvent> {
        let Some(mut dialog) = self.dialogs.remove(call_id) else {
            return Vec::new();
        };
        release(&dialog.streams, ports);
        dialog.local_cseq += 1;
        let branch = self.next_id();
        let bye = format!(
            "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{branch:x}\r\nMax-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} BYE\r\nReason: SIP;text=\"{reason}\"\r\nContent-Length: 0\r\n\r\n",
            target = dialog.remote_target,
            via = self.config.sip_address,
            from = dialog.local_to,
            to = dialog.remote_from,
            cseq = dialog.local_cseq,
            call_id = one_line(call_id),
        );
        vec![
            SrsEvent::Send {
                to: dialog.peer,
                message: bye.into_bytes(),
            },
            SrsEvent::Stop {
                call_id: call_id.to_owned(),
                reason,
            },
        ]
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.keyed(&self.next_id.to_le_bytes())
    }

    /// SipHash of `bytes` under this server's random key.
    fn keyed(&self, bytes: &[u8]) -> u64 {
        use core::hash::BuildHasher;
        self.keys.hash_one(bytes)
    }

    /// Handles one SIP message from `from` at `now` (milliseconds).
    pub fn handle(
        &mut self,
        now: u64,
        from: SocketAddr,
        bytes: &[u8],
        ports: &mut dyn PortAllocator,
    ) -> Vec<SrsEvent> {
        let limits = Limits::default().max_message_len(self.config.max_message_len);
        let message = match SipMessage::parse_with(bytes, limits) {
            Ok(message) => message,
            Err(e) => {
                return vec![SrsEvent::Refused {
                    from,
                    reason: format!("not a SIP message: {e}"),
                }];
            }
        };
        let StartLine::Request { method, .. } = message.start_line() else {
            // Responses (to our BYE) need nothing.
            return Vec::new();
        };
        // RFC 3261 §8.1.1: every request has these; one without them
        // names no dialog and is answered 400 (an ACK, which gets no
        // response, is dropped).
        let missing: Vec<&str> = [
            ("Call-ID", message.call_id().is_some_and(|c| !c.is_empty())),
            ("From", message.header("From").is_some()),
            ("To", message.header("To").is_some()),
            ("CSeq", message.cseq().is_some()),
            ("Via", message.header("Via").is_some()),
        ]
        .iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| *name)
        .collect();
        if !missing.is_empty() {
            let reason = format!("{method} without {}", missing.join(", "));
            if method == "ACK" || message.header("Via").is_none() {
                // Nowhere to send a response (RFC 3261 §18.2.2 needs Via).
                return vec![SrsEvent::Refused { from, reason }];
            }
            return self.refuse(
                from,
                &message,
                400,
                &format!("Bad Request: no {}", missing.join(", ")),
                &[],
                reason,
            );
        }
        let call_id = message.call_id().map(text).unwrap_or_default();
        let in_dialog = self.dialogs.get(&call_id).is_some_and(|d| {
            message.from_tag() == Some(d.remote_tag.as_bytes())
                && message.to_tag() == Some(d.local_tag.as_bytes())
        });
        match method {
            "INVITE" | "UPDATE" => self.offer(now, from, &message, &call_id, ports),
            "ACK" => {
                let cseq = message.cseq().map(|c| c.number);
                if let Some(dialog) = self.dialogs.get_mut(&call_id).filter(|_| in_dialog) {
                    if dialog.unacknowledged.as_ref().map(|u| u.cseq) == cseq {
                        dialog.unacknowledged = None;
                    }
                }
                Vec::new()
            }
            "BYE" => {
                let found = if in_dialog {
                    self.dialogs.remove(&call_id)
                } else {
                    None
                };
                let Some(dialog) = found else {
                    return self.no_dialog(from, &message);
                };
                release(&dialog.streams, ports);
                let mut events =
                    self.respond_in(from, &message, 200, "OK", &dialog.local_tag, &[], None);
                events.push(SrsEvent::Stop {
                    call_id,
                    reason: "BYE",
                });
                events
            }
            "CANCEL" => {
                // Every INVITE is answered at once, so a CANCEL always
                // comes after the final response and has no effect
                // (RFC 3261 §9.2); the client sends a BYE next.
                let same_client = self
                    .dialogs
                    .get(&call_id)
                    .is_some_and(|d| message.from_tag() == Some(d.remote_tag.as_bytes()));
                if same_client {
                    self.respond(from, &message, 200, "OK", &[], None)
                } else {
                    self.no_dialog(from, &message)
                }
            }
            "OPTIONS" => self.respond(
                from,
                &message,
                200,
                "OK",
                &[
                    ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"),
                    (
                        "Accept",
                        "application/sdp, application/rs-metadata+xml, multipart/mixed",
                    ),
                    ("Supported", "siprec"),
                ],
                None,
            ),
            other => self.refuse(
                from,
                &message,
                405,
                "Method Not Allowed",
                &[("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE")],
                format!("method {other} is not one a recording server takes"),
            ),
        }
    }

    /// An INVITE, re-INVITE or UPDATE.
    fn offer(
        &mut self,
        now: u64,
        from: SocketAddr,
        message: &SipMessage<'_>,
        call_id: &str,
        ports: &mut dyn PortAllocator,
    ) -> Vec<SrsEvent> {
        let cseq = message.cseq().map_or(0, |c| c.number);
        let is_invite = message.method() == Some("INVITE");
        if let Some(dialog) = self.dialogs.get(call_id) {
            let from_tag = message.from_tag();
            let retransmitted_initial = message.to_tag().is_none() && cseq == dialog.last_cseq;
            let matches = from_tag == Some(dialog.remote_tag.as_bytes())
                && (retransmitted_initial || message.to_tag() == Some(dialog.local_tag.as_bytes()));
            if !matches {
                return self.no_dialog(from, message);
            }
            if cseq == dialog.last_cseq {
                // A retransmission: the same answer again.
                return vec![SrsEvent::Send {
                    to: from,
                    message: dialog.last_response.clone(),
                }];
            }
            if cseq < dialog.last_cseq {
                // RFC 3261 §12.2.2.
                let (tag, last) = (dialog.local_tag.clone(), dialog.last_cseq);
                let mut events = self.respond_in(
                    from,
                    message,
                    500,
                    "Server Internal Error: CSeq out of order",
                    &tag,
                    &[],
                    None,
                );
                events.push(SrsEvent::Refused {
                    from,
                    reason: format!("call {call_id:?}: CSeq {cseq} after {last}"),
                });
                return events;
            }
        } else if message.to_tag().is_some() || !is_invite {
            // In a dialog this server does not have (an UPDATE needs one).
            return self.no_dialog(from, message);
        } else {
            let require: Vec<String> = message
                .header_values("Require")
                .flat_map(|v| {
                    text(v)
                        .split(',')
                        .map(|t| t.trim().to_ascii_lowercase())
                        .collect::<Vec<_>>()
                })
                .collect();
            let unsupported: Vec<&String> =
                require.iter().filter(|t| t.as_str() != "siprec").collect();
            if !unsupported.is_empty() {
                let list = unsupported
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                return self.refuse(
                    from,
                    message,
                    420,
                    "Bad Extension",
                    &[("Unsupported", &list)],
                    format!(
                        "INVITE {call_id:?} requires {list}, which this server does not support"
                    ),
                );
            }
            let src = message
                .header("Contact")
                .is_some_and(|c| text(c).to_ascii_lowercase().contains("+sip.src"));
            if !src && !require.iter().any(|t| t == "siprec") {
                let reason = format!(
                    "INVITE {call_id:?} is not a SIPREC recording session (no Require: siprec, no +sip.src in Contact)"
                );
                return self.refuse(
                    from,
                    message,
                    403,
                    "Forbidden: not a SIPREC recording session",
                    &[],
                    reason,
                );
            }
            if message.from_tag().is_none_or(<[u8]>::is_empty) {
                return self.refuse(
                    from,
                    message,
                    400,
                    "Bad Request: no From tag",
                    &[],
                    format!("INVITE {call_id:?} has no From tag"),
                );
            }
            let from_here = self
                .dialogs
                .values()
                .filter(|d| d.peer.ip() == from.ip())
                .count();
            if from_here >= self.config.max_dialogs_per_address {
                return self.refuse(
                    from,
                    message,
                    503,
                    "Service Unavailable",
                    &[("Retry-After", "5")], format!(
                        "{from_here} recording sessions are open from {}, the most allowed from one address",
                        from.ip()
                    ));
            }
            if self.dialogs.len() >= self.config.max_dialogs {
                return self.refuse(
                    from,
                    message,
                    503,
                    "Service Unavailable",
                    &[("Retry-After", "5")],
                    format!(
                        "{} recording sessions are open, the most allowed",
                        self.config.max_dialogs
                    ),
                );
            }
        }
        let content_type = message.header("Content-Type").map(text).unwrap_or_default();
        let body = message.body();
        let existing = self.dialogs.get(call_id);
        if body.is_empty() {
            if existing.is_some() {
                // A session refresh: nothing changes. A re-INVITE without
                // an offer gets the last answer as this side's offer.
                return self.confirm(now, from, message, call_id, None);
            }
            return self.not_acceptable(
                from,
                message,
                "the INVITE has no SDP offer (offerless INVITEs are not supported)".into(),
            );
        }
        let metadata_only = crate::METADATA_TYPES.iter().any(|t| {
            content_type
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case(t)
        });
        if metadata_only {
            // Metadata alone, in a re-INVITE or UPDATE (RFC 7866 §7.2).
            let Some(dialog) = self.dialogs.get_mut(call_id) else {
                return self.not_acceptable(from, message, "metadata without an SDP offer".into());
            };
            let update = match Metadata::parse(body) {
                Ok(update) => update,
                Err(e) => {
                    return self.not_acceptable(from, message, format!("its metadata: {e}"));
                }
            };
            let merged = match dialog.metadata.clone() {
                Some(mut m) => {
                    m.update(update);
                    m
                }
                None => update,
            };
            if merged.size() > MAX_SESSION_METADATA {
                // A later document may not grow a session without bound.
                return self.not_acceptable(
                    from,
                    message,
                    format!("the session's metadata would pass {MAX_SESSION_METADATA} bytes"),
                );
            }
            dialog.metadata = Some(merged);
            refresh_senders(dialog);
            let (streams, participants) = (dialog.streams.clone(), participants_of(dialog));
            let update = SrsEvent::Update {
                call_id: call_id.to_owned(),
                streams,
                participants,
            };
            return self.confirm(now, from, message, call_id, Some(update));
        }
        let offer = match RecordingOffer::parse(&content_type, body) {
            Ok(offer) => offer,
            Err(e) => return self.not_acceptable(from, message, e.to_string()),
        };
        let kept = existing
            .and_then(|d| d.metadata.as_ref())
            .map_or(0, Metadata::size);
        let offered = offer.metadata.as_ref().map_or(0, Metadata::size);
        if kept + offered > MAX_SESSION_METADATA {
            return self.not_acceptable(
                from,
                message,
                format!("the session's metadata would pass {MAX_SESSION_METADATA} bytes"),
            );
        }
        let mut events = Vec::new();
        if let Some(e) = &offer.metadata_error {
            events.push(SrsEvent::Refused {
                from,
                reason: format!("call {call_id:?}: its metadata is not used: {e}"),
            });
        }
        // Ports: the ones already given to the same m= lines are kept.
        let old: Vec<Option<u16>> = existing
            .map(|d| d.streams.iter().map(|s| s.port).collect())
            .unwrap_or_default();
        // At most `max_streams` streams get a port: the rest are answered
        // with port 0, never told yes for audio that is not kept.
        let mut taken = 0;
        let wanted: Vec<bool> = offer
            .sdp
            .media
            .iter()
            .map(|m| {
                let take = m.port != 0 && m.choose().is_some() && taken < self.config.max_streams;
                taken += usize::from(take);
                take
            })
            .collect();
        let missing = wanted
            .iter()
            .enumerate()
            .filter(|&(i, &w)| w && old.get(i).copied().flatten().is_none())
            .count();
        if !wanted.iter().any(|&w| w) {
            return self.not_acceptable(
                from,
                message,
                "no offered stream is RTP/AVP audio in PCMA, PCMU or G722".into(),
            );
        }
        let Some(new_ports) = ports.allocate(missing) else {
            events.extend(self.refuse(
                from,
                message,
                503,
                "Service Unavailable",
                &[("Retry-After", "5")],
                format!("no {missing} free RTP ports for call {call_id:?}"),
            ));
            return events;
        };
        let mut new_ports = new_ports.into_iter();
        let assigned: Vec<Option<u16>> = wanted
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                if w {
                    old.get(i).copied().flatten().or_else(|| new_ports.next())
                } else {
                    None
                }
            })
            .collect();
        // Ports of m= lines no longer wanted go back.
        let dropped: Vec<u16> = old
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.filter(|_| assigned.get(i).copied().flatten().is_none()))
            .collect();
        ports.release(&dropped);
        let metadata = match (
            existing.and_then(|d| d.metadata.clone()),
            offer.metadata.clone(),
        ) {
            (Some(mut old), Some(new)) => {
                old.update(new);
                Some(old)
            }
            (old, new) => new.or(old),
        };
        let streams: Vec<RecordedStream> = offer
            .sdp
            .media
            .iter()
            .zip(&assigned)
            .map(|(m, &port)| RecordedStream {
                label: m.label.map(str::to_owned),
                port,
                choice: port.and(m.choose()),
                direction: m.direction,
                source: m.address.map(|a| SocketAddr::new(a, m.port)),
                sender: m
                    .label
                    .and_then(|l| metadata.as_ref()?.sender_of_label(l))
                    .cloned(),
            })
            .collect();
        let (session_id, version, local_tag) = match existing {
            Some(d) => (d.session_id, d.sdp_version + 1, d.local_tag.clone()),
            None => {
                let id = self.next_id();
                (id >> 1, 1, format!("{:x}", self.next_id()))
            }
        };
        let sdp = match answer(
            &offer.sdp,
            self.config.media_address,
            &assigned,
            session_id,
            version,
        ) {
            Ok(sdp) => sdp,
            Err(e) => return self.not_acceptable(from, message, e.to_string()),
        };
        let contact = format!("<sip:srs@{}>;+sip.srs", self.config.sip_address);
        // `Require: siprec` only to a client that named the option itself
        // (RFC 3261 §8.2.2.3).
        let named_siprec = ["Require", "Supported"].iter().any(|h| {
            message.header_values(h).any(|v| {
                text(v)
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("siprec"))
            })
        });
        let mut headers = vec![("Contact", contact.as_str())];
        if named_siprec {
            headers.push(("Require", "siprec"));
        }
        let response = response_to(
            message,
            200,
            "OK",
            &local_tag,
            &headers,
            Some(("application/sdp", sdp.as_bytes())),
        );
        let participants = metadata
            .as_ref()
            .map(|m| m.participants.clone())
            .unwrap_or_default();
        let event = match self.dialogs.get_mut(call_id) {
            Some(dialog) => {
                dialog.streams = streams.clone();
                dialog.metadata = metadata;
                dialog.sdp_version = version;
                dialog.last_cseq = cseq;
                dialog.last_response = response.clone();
                dialog.last_sdp = sdp;
                dialog.peer = from;
                SrsEvent::Update {
                    call_id: call_id.to_owned(),
                    streams,
                    participants,
                }
            }
            None => {
                let remote_target = message
                    .header("Contact")
                    .map(text)
                    .and_then(|c| contact_uri(&c))
                    .unwrap_or_else(|| format!("sip:{from}"));
                let remote_from = message.header("From").map(text).unwrap_or_default();
                let remote_tag = message.from_tag().map(text).unwrap_or_default();
                let to = message.header("To").map(text).unwrap_or_default();
                self.dialogs.insert(
                    call_id.to_owned(),
                    Dialog {
                        local_tag: local_tag.clone(),
                        remote_tag,
                        peer: from,
                        remote_target: one_line(&remote_target),
                        remote_from: one_line(&remote_from),
                        local_to: one_line(&format!("{to};tag={local_tag}")),
                        last_cseq: cseq,
                        last_response: response.clone(),
                        last_sdp: sdp,
                        unacknowledged: None,
                        streams: streams.clone(),
                        metadata,
                        sdp_version: version,
                        session_id,
                        local_cseq: 0,
                    },
                );
                SrsEvent::Start {
                    call_id: call_id.to_owned(),
                    streams,
                    participants,
                }
            }
        };
        if is_invite {
            if let Some(dialog) = self.dialogs.get_mut(call_id) {
                dialog.unacknowledged = Some(Unacknowledged {
                    cseq,
                    response: response.clone(),
                    next_at: now + self.config.t1_ms,
                    interval: self.config.t1_ms,
                    give_up_at: now + 64 * self.config.t1_ms,
                });
            }
        }
        events.push(SrsEvent::Send {
            to: from,
            message: response,
        });
        events.push(event);
        events
    }

    /// `200 OK` in a dialog for a request that changes no stream: with the
    /// last answer as this side's offer when it is an INVITE (which must get
    /// an SDP in its 2xx, RFC 3261 §13.3.1), retransmitted until its ACK;
    /// then `event`.
    fn confirm(
        &mut self,
        now: u64,
        from: SocketAddr,
        message: &SipMessage<'_>,
        call_id: &str,
        event: Option<SrsEvent>,
    ) -> Vec<SrsEvent> {
        let is_invite = message.method() == Some("INVITE");
        let cseq = message.cseq().map_or(0, |c| c.number);
        let contact = format!("<sip:srs@{}>;+sip.srs", self.config.sip_address);
        let t1 = self.config.t1_ms;
        let Some(dialog) = self.dialogs.get_mut(call_id) else {
            return Vec::new();
        };
        let body = is_invite.then_some(("application/sdp", dialog.last_sdp.as_bytes()));
        let response = response_to(
            message,
            200,
            "OK",
            &dialog.local_tag,
            &[("Contact", &contact)],
            body,
        );
        dialog.last_cseq = cseq;
        dialog.last_response = response.clone();
        if is_invite {
            dialog.unacknowledged = Some(Unacknowledged {
                cseq,
                response: response.clone(),
                next_at: now + t1,
                interval: t1,
                give_up_at: now + 64 * t1,
            });
        }
        let mut events = vec![SrsEvent::Send {
            to: from,
            message: response,
        }];
        events.extend(event);
        events
    }

    fn not_acceptable(
        &self,
        from: SocketAddr,
        message: &SipMessage<'_>,
        reason: String,
    ) -> Vec<SrsEvent> {
        let quoted = one_line(&reason).replace('\\', "\\\\").replace('"', "\\\"");
        let warning = format!("399 callrec \"{quoted}\"");
        self.refuse(
            from,
            message,
            488,
            "Not Acceptable Here",
            &[("Warning", &warning)],
            format!(
                "call {:?}: {reason}",
                message.call_id().map(text).unwrap_or_default()
            ),
        )
    }

    /// A refusal: the response, and a [`SrsEvent::Refused`] saying `why`
    /// for the log and the counters.
    fn refuse(
        &self,
        from: SocketAddr,
        message: &SipMessage<'_>,
        code: u16,
        reason: &str,
        headers: &[(&str, &str)],
        why: String,
    ) -> Vec<SrsEvent> {
        let mut events = self.respond(from, message, code, reason, headers, None);
        events.push(SrsEvent::Refused { from, reason: why });
        events
    }

    /// `481`: no such dialog (or not both of its tags).
    fn no_dialog(&self, from: SocketAddr, message: &SipMessage<'_>) -> Vec<SrsEvent> {
        self.respond(
            from,
            message,
            481,
            "Call/Transaction Does Not Exist",
            &[],
            None,
        )
    }

    /// A response outside a dialog (a fresh To tag).
    fn respond(
        &self,
        from: SocketAddr,
        message: &SipMessage<'_>,
        code: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Vec<SrsEvent> {
        // The same tag for the same request: a retransmission gets the
        // same response.
        let key = [
            message.call_id().unwrap_or_default(),
            message.from_tag().unwrap_or_default(),
        ]
        .concat();
        let tag = format!("{:x}", self.keyed(&key));
        self.respond_in(from, message, code, reason, &tag, headers, body)
    }

    #[allow(clippy::too_many_arguments)]
    fn respond_in(
        &self,
        from: SocketAddr,
        message: &SipMessage<'_>,
        code: u16,
        reason: &str,
        tag: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Vec<SrsEvent> {
        vec![SrsEvent::Send {
            to: from,
            message: response_to(message, code, reason, tag, headers, body),
        }]
    }
}

/// The URI of a Contact value: inside the `<>` of a name-addr (a quoted
/// display name may hold `<` itself), or an addr-spec up to its
/// parameters; `None` for `*` or nothing usable.
fn contact_uri(contact: &str) -> Option<String> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in contact.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => {
                let rest = &contact[i + 1..];
                let end = rest.find('>')?;
                return Some(one_line(rest[..end].trim())).filter(|u| !u.is_empty());
            }
            _ => {}
        }
    }
    let spec = contact.split(';').next().unwrap_or("").trim();
    (!spec.is_empty() && spec != "*" && !quoted).then(|| one_line(spec))
}

/// `bytes` with every control character but tab made a space: a header
/// value copied into a message this side writes can never end its line
/// (a bare CR, a folded line) or carry a NUL.
fn clean(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| {
            if b < 0x20 && b != b'\t' || b == 0x7f {
                b' '
            } else {
                b
            }
        })
        .collect()
}

fn release(streams: &[RecordedStream], ports: &mut dyn PortAllocator) {
    let held: Vec<u16> = streams.iter().filter_map(|s| s.port).collect();
    ports.release(&held);
}

fn participants_of(dialog: &Dialog) -> Vec<Participant> {
    dialog
        .metadata
        .as_ref()
        .map(|m| m.participants.clone())
        .unwrap_or_default()
}

fn refresh_senders(dialog: &mut Dialog) {
    let Some(metadata) = &dialog.metadata else {
        return;
    };
    for stream in &mut dialog.streams {
        stream.sender = stream
            .label
            .as_deref()
            .and_then(|l| metadata.sender_of_label(l))
            .cloned();
    }
}

/// A response to `request` (RFC 3261 §8.2.6.2): every `Via`, `From`, `To`
/// with `tag` added when it has none, `Call-ID`, `CSeq`, then `headers`
/// and the body.
pub fn response_to(
    request: &SipMessage<'_>,
    code: u16,
    reason: &str,
    tag: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {}\r\n", one_line(reason)).into_bytes();
    for via in request.header_values("Via") {
        out.extend_from_slice(b"Via: ");
        out.extend_from_slice(&clean(via));
        out.extend_from_slice(b"\r\n");
    }
    let copy = |out: &mut Vec<u8>, name: &str| {
        if let Some(value) = request.header(name) {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(&clean(value));
            if name == "To" && request.to_tag().is_none() {
                out.extend_from_slice(b";tag=");
                out.extend_from_slice(&clean(tag.as_bytes()));
            }
            out.extend_from_slice(b"\r\n");
        }
    };
    for name in ["From", "To", "Call-ID", "CSeq"] {
        copy(&mut out, name);
    }
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {}\r\n", one_line(value)).as_bytes());
    }
    out.extend_from_slice(b"Server: callrec\r\n");
    match body {
        Some((content_type, body)) => {
            out.extend_from_slice(
                format!(
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(body);
        }
        None => out.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ports 40000, 40002, … handed out and given back, as the server's
    /// allocator does.
    #[derive(Default)]
    struct Ports {
        next: u16,
        out: Vec<u16>,
        limit: Option<usize>,
    }

    impl PortAllocator for Ports {
        fn allocate(&mut self, n: usize) -> Option<Vec<u16>> {
            if self.limit.is_some_and(|l| self.out.len() + n > l) {
                return None;
            }
            let ports: Vec<u16> = (0..n as u16).map(|i| 40000 + 2 * (self.next + i)).collect();
            self.next += n as u16;
            self.out.extend(&ports);
            Some(ports)
        }

        fn release(&mut self, ports: &[u16]) {
            self.out.retain(|p| !ports.contains(p));
        }
    }

    const SRC: &str = "192.0.2.5:5060";

    fn sdp(directions: &[&str]) -> String {
        let mut sdp = String::from(
            "v=0\r\no=SRC 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n",
        );
        for (i, d) in directions.iter().enumerate() {
            sdp += &format!(
                "m=audio {} RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=label:{}\r\na={d}\r\n",
                30000 + 2 * i,
                i + 1
            );
        }
        sdp
    }

    fn metadata() -> String {
        "<recording xmlns='urn:ietf:params:xml:ns:recording:1'>\
         <participant participant_id='a'><nameID aor='sip:1001@pbx'><name>Ann</name></nameID></participant>\
         <participant participant_id='b'><nameID aor='sip:1002@pbx'/></participant>\
         <stream stream_id='s1'><label>1</label></stream><stream stream_id='s2'><label>2</label></stream>\
         <participantstreamassoc participant_id='a'><send>s1</send></participantstreamassoc>\
         <participantstreamassoc participant_id='b'><send>s2</send></participantstreamassoc>\
         </recording>"
            .to_owned()
    }

    fn request(
        method: &str,
        cseq: u32,
        to_tag: Option<&str>,
        extra: &str,
        content_type: &str,
        body: &str,
    ) -> Vec<u8> {
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{method} sip:srs@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK{method}{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:src@192.0.2.5>;tag=src1\r\nTo: <sip:srs@192.0.2.10>{to_tag}\r\n\
             Call-ID: call-1@192.0.2.5\r\nCSeq: {cseq} {method}\r\nContact: <sip:src@192.0.2.5:5060>;+sip.src\r\n{extra}\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn invite(cseq: u32, to_tag: Option<&str>, directions: &[&str]) -> Vec<u8> {
        let body = crate::multipart::write(
            "b",
            &[
                ("application/sdp", sdp(directions).as_bytes()),
                ("application/rs-metadata+xml", metadata().as_bytes()),
            ],
        );
        request(
            "INVITE",
            cseq,
            to_tag,
            "Require: siprec\r\n",
            "multipart/mixed;boundary=b",
            &String::from_utf8(body).unwrap(),
        )
    }

    fn srs() -> Srs {
        Srs::new(SrsConfig::new(
            "192.0.2.10:5060".parse().unwrap(),
            "192.0.2.10".parse().unwrap(),
        ))
    }

    fn sent(events: &[SrsEvent]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                SrsEvent::Send { message, .. } => {
                    Some(String::from_utf8_lossy(message).into_owned())
                }
                _ => None,
            })
            .collect()
    }

    fn tag_of(response: &str) -> String {
        let to = response.lines().find(|l| l.starts_with("To:")).unwrap();
        to.split(";tag=").nth(1).unwrap().trim().to_owned()
    }

    #[test]
    fn a_session_is_answered_retransmitted_until_ack_and_ended_by_bye() {
        let (mut srs, mut ports, from) = (srs(), Ports::default(), SRC.parse().unwrap());
        let events = srs.handle(
            0,
            from,
            &invite(1, None, &["sendonly", "sendonly"]),
            &mut ports,
        );
        let ok = &sent(&events)[0];
        assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("m=audio 40000 RTP/AVP 8 101\r\n")
                && ok.contains("m=audio 40002 RTP/AVP 8 101\r\n"),
            "{ok}"
        );
        assert!(ok.contains("Contact: <sip:srs@192.0.2.10:5060>;+sip.srs\r\n"));
        let SrsEvent::Start {
            streams,
            participants,
            ..
        } = &events[1]
        else {
            panic!("{events:?}")
        };
        assert_eq!(participants.len(), 2);
        assert_eq!(
            streams[0].sender.as_ref().and_then(|p| p.name.as_deref()),
            Some("Ann")
        );
        assert_eq!(
            streams[1].sender.as_ref().and_then(|p| p.aor.as_deref()),
            Some("sip:1002@pbx")
        );
        assert_eq!(streams[1].source, Some("192.0.2.5:30002".parse().unwrap()));
        assert_eq!(ports.out, [40000, 40002]);
        // The 200 again at T1, then 2·T1 later, …, until the ACK.
        assert_eq!(srs.poll_timeout(), Some(500));
        assert!(srs.handle_timeout(499, &mut ports).is_empty());
        assert_eq!(
            sent(&srs.handle_timeout(500, &mut ports)),
            core::slice::from_ref(ok)
        );
        assert_eq!(srs.poll_timeout(), Some(1500));
        assert_eq!(sent(&srs.handle_timeout(1500, &mut ports)).len(), 1);
        assert_eq!(srs.poll_timeout(), Some(3500));
        let tag = tag_of(ok);
        assert!(
            srs.handle(
                2000,
                from,
                &request("ACK", 1, Some(&tag), "", "text/plain", ""),
                &mut ports
            )
            .is_empty()
        );
        assert_eq!(srs.poll_timeout(), None);
        // A retransmitted INVITE gets the same answer.
        assert_eq!(
            sent(&srs.handle(
                2100,
                from,
                &invite(1, None, &["sendonly", "sendonly"]),
                &mut ports
            )),
            core::slice::from_ref(ok)
        );
        let events = srs.handle(
            9000,
            from,
            &request("BYE", 2, Some(&tag), "", "text/plain", ""),
            &mut ports,
        );
        assert!(sent(&events)[0].starts_with("SIP/2.0 200 OK\r\n"));
        assert_eq!(
            events[1],
            SrsEvent::Stop {
                call_id: "call-1@192.0.2.5".into(),
                reason: "BYE"
            }
        );
        assert!(ports.out.is_empty(), "ports given back");
        assert_eq!(srs.dialogs(), 0);
    }

    #[test]
    fn requests_without_both_dialog_tags_do_not_reach_the_session() {
        let (mut srs, mut ports, from) = (srs(), Ports::default(), SRC.parse().unwrap());
        let ok = sent(&srs.handle(0, from, &invite(1, None, &["sendonly"]), &mut ports))[0].clone();
        let tag = tag_of(&ok);
        // A BYE that knows the Call-ID but guesses the tag.
        let forged = srs.handle(
            5,
            from,
            &request("BYE", 2, Some("guess"), "", "text/plain", ""),
            &mut ports,
        );
        assert!(sent(&forged)[0].starts_with("SIP/2.0 481 "), "{forged:?}");
        let wrong_from = String::from_utf8(request("BYE", 2, Some(&tag), "", "text/plain", ""))
            .unwrap()
            .replace("tag=src1", "tag=other");
        let forged = srs.handle(5, from, wrong_from.as_bytes(), &mut ports);
        assert!(sent(&forged)[0].starts_with("SIP/2.0 481 "), "{forged:?}");
        let reinvite = srs.handle(
            6,
            from,
            &invite(3, Some("guess"), &["inactive"]),
            &mut ports,
        );
        assert!(
            sent(&reinvite)[0].starts_with("SIP/2.0 481 "),
            "{reinvite:?}"
        );
        assert_eq!(srs.dialogs(), 1, "the session goes on");
        let bye = srs.handle(
            7,
            from,
            &request("BYE", 4, Some(&tag), "", "text/plain", ""),
            &mut ports,
        );
        assert!(sent(&bye)[0].starts_with("SIP/2.0 200 OK"));
        assert_eq!(srs.dialogs(), 0);
    }

    #[test]
    fn what_the_server_writes_never_carries_a_line_end_from_the_request() {
        let (mut srs, mut ports, from) = (srs(), Ports::default(), SRC.parse().unwrap());
        let sneaky = String::from_utf8(invite(1, None, &["sendonly"]))
            .unwrap()
            .replace("Call-ID: call-1@192.0.2.5", "Call-ID: cid\rX-Injected: 1")
            .replace(
                "Contact: <sip:src@192.0.2.5:5060>",
                "Contact: \"A <b>\" <sip:src@192.0.2.5:5060>",
            );
        let events = srs.handle(0, from, sneaky.as_bytes(), &mut ports);
        let ok = &sent(&events)[0];
        assert!(ok.contains("Call-ID: cid X-Injected: 1\r\n"), "{ok}");
        assert!(!ok.contains('\r') || ok.split("\r\n").all(|line| !line.contains('\r')));
        let bye = sent(&srs.end("cid\rX-Injected: 1", "test", &mut ports))[0].clone();
        assert!(
            bye.starts_with("BYE sip:src@192.0.2.5:5060 SIP/2.0\r\n"),
            "{bye}"
        );
        assert!(bye.contains("Call-ID: cid X-Injected: 1\r\n"), "{bye}");
        assert_eq!(
            contact_uri("<sip:a@b>;expires=60").as_deref(),
            Some("sip:a@b")
        );
        assert_eq!(
            contact_uri("sip:a@b;transport=tcp").as_deref(),
            Some("sip:a@b")
        );
        assert_eq!(contact_uri("*"), None);
    }

    #[test]
    fn one_address_cannot_take_every_slot_and_acks_match_their_invite() {
        let from: SocketAddr = SRC.parse().unwrap();
        let config = SrsConfig {
            max_dialogs_per_address: 1,
            ..SrsConfig::new(from, "192.0.2.10".parse().unwrap())
        };
        let (mut srs, mut ports) = (Srs::new(config), Ports::default());
        let ok = sent(&srs.handle(0, from, &invite(1, None, &["sendonly"]), &mut ports))[0].clone();
        let other = String::from_utf8(invite(1, None, &["sendonly"]))
            .unwrap()
            .replace("call-1@", "call-2@");
        let events = srs.handle(0, from, other.as_bytes(), &mut ports);
        assert!(sent(&events)[0].starts_with("SIP/2.0 503 "), "{events:?}");
        assert!(
            matches!(&events[1], SrsEvent::Refused { reason, .. } if reason.contains("from 192.0.2.5"))
        );
        // An ACK with another CSeq does not stop the 200's retransmission.
        let tag = tag_of(&ok);
        srs.handle(
            10,
            from,
            &request("ACK", 7, Some(&tag), "", "text/plain", ""),
            &mut ports,
        );
        assert_eq!(srs.poll_timeout(), Some(500));
        srs.handle(
            20,
            from,
            &request("ACK", 1, Some(&tag), "", "text/plain", ""),
            &mut ports,
        );
        assert_eq!(srs.poll_timeout(), None);
        // A re-INVITE without an offer gets the last answer as an offer.
        let reoffer = srs.handle(
            30,
            from,
            &request("INVITE", 2, Some(&tag), "", "application/sdp", ""),
            &mut ports,
        );
        assert!(
            sent(&reoffer)[0].contains("m=audio 40000 RTP/AVP 8 101\r\n"),
            "{reoffer:?}"
        );
        assert_eq!(srs.poll_timeout(), Some(530));
        // A lower CSeq: 500.
        let late = srs.handle(40, from, &invite(1, Some(&tag), &["sendonly"]), &mut ports);
        assert!(sent(&late)[0].starts_with("SIP/2.0 500 "), "{late:?}");
        // No From tag: 400.
        let untagged = String::from_utf8(invite(1, None, &["sendonly"]))
            .unwrap()
            .replace(";tag=src1", "")
            .replace("call-1@", "call-3@");
        let events = srs.handle(
            50,
            "192.0.2.6:5060".parse().unwrap(),
            untagged.as_bytes(),
            &mut ports,
        );
        assert!(
            sent(&events)[0].starts_with("SIP/2.0 400 Bad Request: no From tag"),
            "{events:?}"
        );
    }

    #[test]
    fn later_metadata_cannot_grow_a_session_without_bound() {
        let (mut srs, mut ports, from) = (srs(), Ports::default(), SRC.parse().unwrap());
        let ok = sent(&srs.handle(0, from, &invite(1, None, &["sendonly"]), &mut ports))[0].clone();
        let tag = tag_of(&ok);
        let mut refused = 0;
        for n in 0..200u32 {
            let ids: String = (0..30)
                .map(|i| format!("<send>{}{n}-{i}</send>", "x".repeat(900)))
                .collect();
            let doc = format!(
                "<recording xmlns='urn:ietf:params:xml:ns:recording:1'><participantstreamassoc participant_id='p{n}'>{ids}</participantstreamassoc></recording>"
            );
            let events = srs.handle(
                n.into(),
                from,
                &request(
                    "UPDATE",
                    n + 2,
                    Some(&tag),
                    "",
                    "application/rs-metadata+xml",
                    &doc,
                ),
                &mut ports,
            );
            if sent(&events)[0].starts_with("SIP/2.0 488 ") {
                refused += 1;
            }
        }
        assert!(refused > 150, "{refused} refused");
        let kept = srs.dialogs[&"call-1@192.0.2.5".to_owned()]
            .metadata
            .as_ref()
            .unwrap()
            .size();
        assert!(kept <= MAX_SESSION_METADATA, "{kept}");
    }

    #[test]
    fn no_ack_in_64_t1_ends_the_session_with_a_bye() {
        let (mut srs, mut ports, from) = (srs(), Ports::default(), SRC.parse().unwrap());
        srs.handle(0, from, &invite(1, None, &["sendonly"]), &mut ports);
        let mut now = 0;
        let mut retransmissions = 0;
        while let Some(at) = srs.poll_timeout() {
            now = at;
            let events = srs.handle_timeout(now, &mut ports);
            if let Some(SrsEvent::Stop { reason, .. }) = events.last() {
                assert_eq!(*reason, "no ACK");
                assert!(
                    sent(&events)[0].starts_with("BYE sip:src@192.0.2.5:5060 SIP/2.0\r\n"),
                    "{events:?}"
                );
                assert!(sent(&events)[0].contains("\r\nTo: <sip:src@192.0.2.5>;tag=src1\r\n"));
                break;
            }
            retransmissions += sent(&events).len();
        }
        assert_eq!(now, 32_000);
        // 0.5, 1.5, 3.5, 7.5, 11.5, … every 4 s up to 32 s.
        assert_eq!(retransmissions, 10);
        assert!(ports.out.is_empty());
    }

    #[test]
    fn hold_and_a_new_stream_in_a_re_invite_keep_the_ports() {
        let (mut srs, mut ports, from) = (srs(), Ports::default(), SRC.parse().unwrap());
        let ok = sent(&srs.handle(0, from, &invite(1, None, &["sendonly"]), &mut ports))[0].clone();
        let tag = tag_of(&ok);
        srs.handle(
            10,
            from,
            &request("ACK", 1, Some(&tag), "", "text/plain", ""),
            &mut ports,
        );
        let events = srs.handle(
            1000,
            from,
            &invite(2, Some(&tag), &["inactive", "sendonly"]),
            &mut ports,
        );
        let answer = &sent(&events)[0];
        assert!(
            answer.contains("o=callrec ") && answer.contains(" 2 IN IP4 192.0.2.10\r\n"),
            "{answer}"
        );
        assert!(
            answer.contains("m=audio 40000 RTP/AVP 8 101\r\n") && answer.contains("a=inactive\r\n"),
            "{answer}"
        );
        assert!(
            answer.contains("m=audio 40002 RTP/AVP 8 101\r\n"),
            "{answer}"
        );
        let SrsEvent::Update { streams, .. } = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(streams[0].direction, Direction::Inactive);
        assert_eq!(
            (streams[0].port, streams[1].port),
            (Some(40000), Some(40002))
        );
        // An offer with fewer m= lines (RFC 3264 wants port 0 instead;
        // taken anyway) gives the dropped stream's port back.
        let events = srs.handle(
            2000,
            from,
            &invite(3, Some(&tag), &["sendonly"]),
            &mut ports,
        );
        assert!(matches!(&events[1], SrsEvent::Update { streams, .. } if streams.len() == 1));
        assert_eq!(ports.out, [40000]);
    }

    /// A request without Call-ID (or From, To, CSeq) names no dialog: an
    /// INVITE gets 400 naming what is missing and starts nothing; one
    /// without Via, or an ACK, gets nothing.
    #[test]
    fn a_request_without_its_mandatory_headers_starts_nothing() {
        let (mut srs, mut ports, from) = (srs(), Ports::default(), SRC.parse().unwrap());
        let no_call_id = String::from_utf8(invite(1, None, &["sendonly"]))
            .unwrap()
            .replace("Call-ID: call-1@192.0.2.5\r\n", "");
        let events = srs.handle(0, from, no_call_id.as_bytes(), &mut ports);
        assert_eq!(
            sent(&events)[0].lines().next().unwrap(),
            "SIP/2.0 400 Bad Request: no Call-ID"
        );
        assert!(!events.iter().any(|e| matches!(e, SrsEvent::Start { .. })));
        assert_eq!(srs.dialogs(), 0);
        assert!(ports.out.is_empty());
        let no_via = String::from_utf8(invite(1, None, &["sendonly"]))
            .unwrap()
            .replace(
                "Via: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bKINVITE1\r\n",
                "",
            )
            .replace("CSeq: 1 INVITE\r\n", "");
        let events = srs.handle(0, from, no_via.as_bytes(), &mut ports);
        assert!(
            matches!(&events[..], [SrsEvent::Refused { reason, .. }] if reason == "INVITE without CSeq, Via"),
            "{events:?}"
        );
    }

    /// Streams beyond `max_streams` are answered with port 0: the client
    /// is never told yes for audio that is not kept.
    #[test]
    fn streams_beyond_the_limit_are_answered_with_port_0() {
        let (mut srs, mut ports, from) = (srs(), Ports::default(), SRC.parse().unwrap());
        let events = srs.handle(0, from, &invite(1, None, &["sendonly"; 10]), &mut ports);
        let Some(SrsEvent::Start { streams, .. }) =
            events.iter().find(|e| matches!(e, SrsEvent::Start { .. }))
        else {
            panic!("{events:?}")
        };
        let given: Vec<bool> = streams.iter().map(|s| s.port.is_some()).collect();
        assert_eq!(given, [[true; 8].as_slice(), &[false; 2]].concat());
        assert_eq!(ports.out.len(), 8);
        let answer = &sent(&events)[0];
        assert_eq!(answer.matches("m=audio 0 ").count(), 2, "{answer}");
    }

    #[test]
    fn what_cannot_be_recorded_is_refused_saying_why() {
        let (mut srs, mut ports, from) = (srs(), Ports::default(), SRC.parse().unwrap());
        let first_line = |events: &[SrsEvent]| sent(events)[0].lines().next().unwrap().to_owned();
        let plain = request(
            "INVITE",
            1,
            None,
            "",
            "application/sdp",
            &sdp(&["sendrecv"]),
        )
        .to_vec();
        let plain = String::from_utf8(plain).unwrap().replace(";+sip.src", "");
        let events = srs.handle(0, from, plain.as_bytes(), &mut ports);
        assert_eq!(
            first_line(&events),
            "SIP/2.0 403 Forbidden: not a SIPREC recording session"
        );
        assert!(
            matches!(&events[1], SrsEvent::Refused { reason, .. } if reason.contains("no Require: siprec"))
        );
        let events = srs.handle(
            0,
            from,
            &request(
                "INVITE",
                1,
                None,
                "Require: siprec, 100rel\r\n",
                "application/sdp",
                &sdp(&["sendonly"]),
            ),
            &mut ports,
        );
        assert_eq!(first_line(&events), "SIP/2.0 420 Bad Extension");
        assert!(sent(&events)[0].contains("\r\nUnsupported: 100rel\r\n"));
        let srtp = sdp(&["sendonly"]).replace("RTP/AVP", "RTP/SAVP");
        let events = srs.handle(
            0,
            from,
            &request("INVITE", 1, None, "", "application/sdp", &srtp),
            &mut ports,
        );
        assert_eq!(first_line(&events), "SIP/2.0 488 Not Acceptable Here");
        assert!(
            sent(&events)[0].contains("Warning: 399 callrec \"no offered stream is RTP/AVP audio"),
            "{events:?}"
        );
        let events = srs.handle(
            0,
            from,
            &request("INVITE", 1, None, "", "multipart/mixed", "x"),
            &mut ports,
        );
        assert!(
            sent(&events)[0].contains(
                r#"Warning: 399 callrec "content type \"multipart/mixed\" has no usable boundary""#
            ),
            "{events:?}"
        );
        assert_eq!(
            first_line(&srs.handle(
                0,
                from,
                &request("BYE", 1, Some("x"), "", "text/plain", ""),
                &mut ports
            )),
            "SIP/2.0 481 Call/Transaction Does Not Exist"
        );
        let options = srs.handle(
            0,
            from,
            &request("OPTIONS", 1, None, "", "text/plain", ""),
            &mut ports,
        );
        assert!(
            sent(&options)[0].starts_with("SIP/2.0 200 OK\r\n")
                && sent(&options)[0].contains("Allow: INVITE, ACK, BYE")
        );
        assert_eq!(
            first_line(&srs.handle(
                0,
                from,
                &request("INFO", 1, None, "", "text/plain", ""),
                &mut ports
            )),
            "SIP/2.0 405 Method Not Allowed"
        );
        assert!(matches!(
            &srs.handle(0, from, b"garbage", &mut ports)[0],
            SrsEvent::Refused { .. }
        ));
        // No ports left: 503, nothing kept.
        ports.limit = Some(1);
        let events = srs.handle(
            0,
            from,
            &invite(1, None, &["sendonly", "sendonly"]),
            &mut ports,
        );
        assert_eq!(first_line(&events), "SIP/2.0 503 Service Unavailable");
        assert_eq!(srs.dialogs(), 0);
        // The dialog limit.
        let mut srs = Srs::new(SrsConfig {
            max_dialogs: 0,
            ..SrsConfig::new(from, "192.0.2.10".parse().unwrap())
        });
        let events = srs.handle(
            0,
            from,
            &invite(1, None, &["sendonly"]),
            &mut Ports::default(),
        );
        assert_eq!(first_line(&events), "SIP/2.0 503 Service Unavailable");
    }

    #[test]
    fn metadata_alone_in_an_update_changes_the_participants() {
        let (mut srs, mut ports, from) = (srs(), Ports::default(), SRC.parse().unwrap());
        let ok = sent(&srs.handle(
            0,
            from,
            &invite(1, None, &["sendonly", "sendonly"]),
            &mut ports,
        ))[0]
            .clone();
        let tag = tag_of(&ok);
        let later = "<recording xmlns='urn:ietf:params:xml:ns:recording:1'><participant participant_id='b'><nameID aor='sip:1003@pbx'><name>Carl</name></nameID></participant></recording>";
        let events = srs.handle(
            5,
            from,
            &request(
                "UPDATE",
                2,
                Some(&tag),
                "",
                "application/rs-metadata+xml",
                later,
            ),
            &mut ports,
        );
        assert!(sent(&events)[0].starts_with("SIP/2.0 200 OK\r\n"));
        let SrsEvent::Update { streams, .. } = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(
            streams[1].sender.as_ref().and_then(|p| p.name.as_deref()),
            Some("Carl")
        );
        assert_eq!(srs.shutdown(&mut ports).len(), 2, "a BYE and a stop");
        assert!(ports.out.is_empty());
    }
}
