//! The recording server's side of one control connection, sans-IO.

use core::fmt;
use core::num::NonZeroU16;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::fields::truncate_to_char_boundary;
use crate::framing::write_frame;
use crate::{
    Command, Host, Message, MessageError, MessageErrorKind, MessageSplitter, RecordStartRequest,
    RecordStartResponse, RecordStopRequest, RecordStopResponse, SessionId,
};

/// Default number of recordings one connection may hold open.
pub const DEFAULT_MAX_SESSIONS: usize = 4;

/// Default time a connection may stay without a recording before it is
/// dropped.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a session's RTP goes: the answer to a start request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RtpTarget {
    /// Address put in `server=`.
    pub server: Host,
    /// UDP port put in `port=`.
    pub port: NonZeroU16,
}

impl RtpTarget {
    /// A target.
    pub fn new(server: Host, port: NonZeroU16) -> Self {
        Self { server, port }
    }
}

/// Why the allocator refused a session; becomes the `reason=` of the
/// failed response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Every port of the range is in use.
    NoFreePort,
    /// The server-wide session limit is reached.
    TooManySessions,
    /// Anything else, said in words.
    Other(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFreePort => f.write_str("no free port"),
            Self::TooManySessions => f.write_str("too many sessions"),
            Self::Other(reason) => f.write_str(reason),
        }
    }
}

/// Hands out RTP ports: the server's resource, behind the session.
///
/// A real server binds the UDP socket in `allocate`, before the answer goes
/// out, so the port it advertises is already listening.
pub trait PortAllocator {
    /// Reserves a destination for `request`'s RTP.
    ///
    /// # Errors
    /// A [`Rejection`], sent to the phone as the reason.
    fn allocate(&mut self, request: &RecordStartRequest) -> Result<RtpTarget, Rejection>;

    /// Gives back what `allocate` returned for `id`.
    fn release(&mut self, id: &SessionId, target: &RtpTarget);
}

/// Limits of a [`ServerSession`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    max_sessions: usize,
    idle_timeout: Option<Duration>,
    max_message_len: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_sessions: DEFAULT_MAX_SESSIONS,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_message_len: crate::DEFAULT_MAX_MESSAGE_LEN,
        }
    }
}

impl ServerConfig {
    /// Recordings one connection may hold open (default 4).
    #[must_use]
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// How long a connection may stay without an open recording (default
    /// 10 s; `None`: forever), whatever it sends meanwhile: from the accept,
    /// and again from the end of its last recording. A recording can run for
    /// hours with no control traffic; junk lines do not keep a connection.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Longest message accepted (default 4 KiB).
    #[must_use]
    pub fn max_message_len(mut self, len: usize) -> Self {
        self.max_message_len = len;
        self
    }
}

/// What a [`ServerSession`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A recording started: expect RTP at `target`.
    Started {
        /// The request, validated.
        request: RecordStartRequest,
        /// Where its RTP goes.
        target: RtpTarget,
    },
    /// A start request was answered `failed`.
    Rejected {
        /// Its id, if it could be read (without one no answer is possible).
        id: Option<SessionId>,
        /// The reason sent.
        reason: String,
    },
    /// A recording stopped at the phone's request: finalize it. The request
    /// carries the call's final numbers and names (a transferred call's
    /// remote party differs from the start's).
    Stop {
        /// The stop request; for a malformed stop whose id could be read,
        /// only the id is set.
        request: RecordStopRequest,
    },
    /// A stop for an id this connection does not hold; answered `failed`.
    UnknownStop {
        /// The id.
        id: SessionId,
    },
    /// A message that got no answer: undecodable, or not a request.
    Ignored {
        /// What was wrong.
        error: IgnoredMessage,
    },
    /// The connection ended with this recording open: finalize it.
    Terminated {
        /// Session id.
        id: SessionId,
    },
    /// The connection held no recording for the idle timeout: close it.
    IdleTimeout,
}

/// Why a message was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoredMessage {
    /// It could not be decoded and carried no usable `cmd` and `id`.
    Malformed(MessageError),
    /// A response sent to the server.
    NotARequest(Command),
}

/// The server's side of one control connection, without sockets or clocks.
///
/// Feed it the bytes the phone sends ([`handle_data`](Self::handle_data)),
/// the end of the connection, and the time; write what
/// [`poll_transmit`](Self::poll_transmit) returns; act on
/// [`poll_event`](Self::poll_event). Ports come from a [`PortAllocator`] and
/// go back to it when a session stops or the connection ends.
#[derive(Debug)]
pub struct ServerSession<A: PortAllocator> {
    allocator: A,
    config: ServerConfig,
    sessions: BTreeMap<SessionId, RtpTarget>,
    deadline: Option<Instant>,
    splitter: MessageSplitter,
    received: BytesMut,
    to_send: BytesMut,
    events: VecDeque<ServerEvent>,
    closed: bool,
}

impl<A: PortAllocator> ServerSession<A> {
    /// A session for a connection accepted at `now`.
    pub fn new(allocator: A, config: ServerConfig, now: Instant) -> Self {
        Self {
            allocator,
            config,
            sessions: BTreeMap::new(),
            deadline: config.idle_timeout.map(|t| now + t),
            splitter: MessageSplitter::with_max_len(config.max_message_len),
            received: BytesMut::new(),
            to_send: BytesMut::new(),
            events: VecDeque::new(),
            closed: false,
        }
    }

    /// The allocator.
    pub fn allocator(&self) -> &A {
        &self.allocator
    }

    /// The allocator, mutably (to take what it prepared for a session).
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.allocator
    }

    /// Open recordings: id and RTP target.
    pub fn sessions(&self) -> impl Iterator<Item = (&SessionId, &RtpTarget)> {
        self.sessions.iter()
    }

    /// Bytes to write to the connection, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.to_send.is_empty()).then(|| self.to_send.split().freeze())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the connection is over (lost or timed out).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes read from the connection at `now`.
    pub fn handle_data(&mut self, data: &[u8], now: Instant) {
        if self.closed {
            return;
        }
        self.received.extend_from_slice(data);
        while let Some(message) = self.splitter.next_message(&mut self.received) {
            self.handle_message(message, now);
        }
    }

    /// The phone closed its side: an unterminated last message still counts,
    /// then every open recording is terminated.
    pub fn handle_eof(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        while let Some(message) = self.splitter.next_message_eof(&mut self.received) {
            self.handle_message(message, now);
        }
        self.connection_lost();
    }

    /// One decoded message received at `now`, for callers doing their own
    /// framing.
    pub fn handle_message(&mut self, message: Result<Message, MessageError>, now: Instant) {
        if self.closed {
            return;
        }
        match message {
            Ok(Message::StartRequest(request)) => self.start(request),
            Ok(Message::StopRequest(request)) => self.stop(request),
            Ok(other) => self.events.push_back(ServerEvent::Ignored {
                error: IgnoredMessage::NotARequest(other.command()),
            }),
            Err(error) => self.malformed(error),
        }
        self.rearm(now);
    }

    /// The server ends a recording itself (a write error, a full disk,
    /// shutdown): its port is released and the phone is told with an
    /// unsolicited `RecordStopResponse` with `result=failed` and `reason`.
    /// Returns whether `id` was open. No event is reported: the caller knows.
    pub fn end_session(&mut self, id: &SessionId, reason: &str, now: Instant) -> bool {
        if self.closed {
            return false;
        }
        let Some(target) = self.sessions.remove(id) else {
            return false;
        };
        self.allocator.release(id, &target);
        self.answer(RecordStopResponse::failed(id.clone(), bounded(reason)));
        self.rearm(now);
        true
    }

    /// The idle deadline runs while no recording is open.
    fn rearm(&mut self, now: Instant) {
        if !self.sessions.is_empty() {
            self.deadline = None;
        } else if self.deadline.is_none() {
            self.deadline = self.config.idle_timeout.map(|t| now + t);
        }
    }

    fn start(&mut self, request: RecordStartRequest) {
        let id = request.id.clone();
        let target = if self.sessions.contains_key(&id) {
            Err("session id already in use".to_owned())
        } else if self.sessions.len() >= self.config.max_sessions {
            Err(Rejection::TooManySessions.to_string())
        } else {
            self.allocator.allocate(&request).map_err(|r| r.to_string())
        };
        match target {
            Ok(target) => {
                self.answer(RecordStartResponse::success(
                    id.clone(),
                    target.server.clone(),
                    target.port,
                ));
                self.sessions.insert(id, target.clone());
                self.events
                    .push_back(ServerEvent::Started { request, target });
            }
            Err(reason) => self.reject(Some(id), reason),
        }
    }

    fn stop(&mut self, request: RecordStopRequest) {
        let id = request.id.clone();
        match self.sessions.remove(&id) {
            Some(target) => {
                self.allocator.release(&id, &target);
                self.answer(RecordStopResponse::success(id));
                self.events.push_back(ServerEvent::Stop { request });
            }
            None => {
                self.answer(RecordStopResponse::failed(id.clone(), "unknown session id"));
                self.events.push_back(ServerEvent::UnknownStop { id });
            }
        }
    }

    /// A message that did not decode. Every request whose `cmd` could be
    /// read gets an answer, so no phone waits for one: a start request is
    /// answered `failed` with the error as the reason, echoing its id even
    /// when the id itself is what is wrong (missing, empty, too long); a
    /// stop request with a valid id is honoured (the phone wants to stop, and
    /// refusing would leave the recording running), one without is answered
    /// `failed`. A message without a readable `cmd` is reported only.
    fn malformed(&mut self, error: MessageError) {
        let reason = match error.kind() {
            MessageErrorKind::UnsupportedCodec(_) => error.to_string(),
            _ => format!("malformed request: {error}"),
        };
        match (error.command(), error.id().cloned()) {
            (Some(Command::StartRequest), Some(id)) => self.reject(Some(id), reason),
            (Some(Command::StopRequest), Some(id)) => self.stop(RecordStopRequest {
                id,
                remote_number: String::new(),
                remote_name: String::new(),
                local_number: String::new(),
                local_name: String::new(),
                reason: String::new(),
            }),
            (Some(command @ (Command::StartRequest | Command::StopRequest)), None) => {
                let answer = match command {
                    Command::StartRequest => Command::StartResponse,
                    _ => Command::StopResponse,
                };
                self.answer_raw(answer, error.raw_id().unwrap_or(""), &reason);
                self.events
                    .push_back(ServerEvent::Rejected { id: None, reason });
            }
            _ => self.events.push_back(ServerEvent::Ignored {
                error: IgnoredMessage::Malformed(error),
            }),
        }
    }

    /// A `failed` answer echoing an id that is not a valid [`SessionId`]
    /// (already cut to a bound by [`MessageError::raw_id`]).
    fn answer_raw(&mut self, command: Command, raw_id: &str, reason: &str) {
        let reason = bounded(reason);
        let pairs = [
            ("cmd", command.as_str()),
            ("id", raw_id),
            ("result", "failed"),
            ("reason", reason.as_str()),
        ];
        if let Ok(wire) = serde_urlencoded::to_string(pairs) {
            self.to_send.extend_from_slice(wire.as_bytes());
            self.to_send.extend_from_slice(b"\r\n");
        }
    }

    fn reject(&mut self, id: Option<SessionId>, reason: String) {
        if let Some(id) = &id {
            self.answer(RecordStartResponse::failed(id.clone(), bounded(&reason)));
        }
        self.events.push_back(ServerEvent::Rejected { id, reason });
    }

    fn answer(&mut self, message: impl Into<Message>) {
        // Every field of an answer is built here within its limit.
        let _ = write_frame(&message.into(), &mut self.to_send);
    }

    /// Time has passed: a connection without a recording for the idle
    /// timeout is closed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline = None;
            self.closed = true;
            self.events.push_back(ServerEvent::IdleTimeout);
        }
    }

    /// The connection failed or closed: every open recording is terminated
    /// and its port released.
    pub fn connection_lost(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.deadline = None;
        self.received.clear();
        self.to_send.clear();
        for (id, target) in core::mem::take(&mut self.sessions) {
            self.allocator.release(&id, &target);
            self.events.push_back(ServerEvent::Terminated { id });
        }
    }
}

/// A reason cut to what an answer carries. Reasons are ours or error
/// messages, well under the limit; cut anyway so an answer always encodes.
fn bounded(reason: &str) -> String {
    let mut reason = reason.to_owned();
    truncate_to_char_boundary(&mut reason, crate::fields::MAX_NAME_LEN);
    reason
}
