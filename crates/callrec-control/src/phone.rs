//! The phone side of one recording: start → recording → stop, sans-IO.

use core::num::NonZeroU16;
use core::time::Duration;
use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::framing::write_frame;
use crate::{
    Command, Host, Message, MessageError, MessageSplitter, RecordStartRequest, RecordStopRequest,
    SessionId, StartResult, StopResult,
};

/// Default time to wait for a response: 5 s.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a [`PhoneSession`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhoneState {
    /// Start request sent, waiting for the response.
    AwaitingStart,
    /// The server accepted: stream RTP to `server:port`.
    Recording {
        /// RTP destination address.
        server: Host,
        /// RTP destination port.
        port: NonZeroU16,
    },
    /// Stop request sent, waiting for the response.
    AwaitingStop,
    /// The server refused; the phone shows a failure prompt. Final.
    Failed {
        /// The server's reason.
        reason: String,
    },
    /// The recording ended normally. Final.
    Stopped,
    /// The connection failed, timed out or broke the protocol; all state is
    /// cleared and the connection should be closed. Final.
    Terminated(TerminateCause),
}

/// Why a session was terminated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TerminateCause {
    /// The TCP connection closed or failed.
    ConnectionLost,
    /// No response within the timeout.
    Timeout {
        /// The response that did not come.
        waiting_for: Command,
    },
    /// The peer broke the protocol.
    Protocol(ProtocolError),
}

/// A peer's protocol violation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A message for another session id.
    WrongId {
        /// Our id.
        expected: SessionId,
        /// The id received.
        got: SessionId,
    },
    /// A message that makes no sense in the current state.
    Unexpected {
        /// Its command.
        command: Command,
    },
    /// A message that could not be parsed.
    Malformed(MessageError),
}

impl core::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::WrongId { expected, got } => write!(
                f,
                "a message for session {got} on the connection of session {expected}"
            ),
            Self::Unexpected { command } => {
                write!(f, "{command} does not fit the session's state")
            }
            Self::Malformed(e) => write!(f, "a malformed message: {e}"),
        }
    }
}

impl core::error::Error for ProtocolError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

/// What a [`PhoneSession`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhoneEvent {
    /// Start RTP towards `server:port`.
    Recording {
        /// RTP destination address.
        server: Host,
        /// RTP destination port.
        port: NonZeroU16,
    },
    /// The server refused; show the failure prompt.
    Failed {
        /// The server's reason.
        reason: String,
    },
    /// Recording stopped: stop sending RTP.
    Stopped {
        /// The server's answer (a server may also end a recording on its own).
        result: StopResult,
    },
    /// Session over, state cleared: stop RTP, close the connection.
    Terminated(TerminateCause),
}

/// The error of an operation that does not fit the session's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// `stop` when not recording or awaiting the start response.
    NotActive,
    /// The message to send breaks a field rule.
    Write(MessageError),
}

impl core::fmt::Display for SessionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotActive => f.write_str("no recording to stop"),
            Self::Write(e) => write!(f, "cannot write the message: {e}"),
        }
    }
}

impl core::error::Error for SessionError {}

/// The phone's side of one network recording, without sockets or clocks.
///
/// Feed it what arrives on the TCP connection ([`handle_data`]), the time
/// ([`handle_timeout`] at [`poll_timeout`]) and the user's stop; send what
/// [`poll_transmit`] returns; act on [`poll_event`].
///
/// [`handle_data`]: Self::handle_data
/// [`handle_timeout`]: Self::handle_timeout
/// [`poll_timeout`]: Self::poll_timeout
/// [`poll_transmit`]: Self::poll_transmit
/// [`poll_event`]: Self::poll_event
///
/// ```
/// use callrec_control::*;
/// use std::time::Instant;
///
/// let now = Instant::now();
/// let id = SessionId::new("c0ffee")?;
/// let req = RecordStartRequest::new(id, "001565aabbcc".parse()?, Direction::In, Codec::Pcmu);
/// let mut phone = PhoneSession::new(req, now)?;
/// let request = phone.poll_transmit().unwrap();
/// assert!(request.starts_with(b"cmd=RecordStartRequest&id=c0ffee&"));
///
/// phone.handle_data(b"cmd=RecordStartResponse&id=c0ffee&result=success&server=10.0.0.9&port=40000\r\n", now);
/// assert_eq!(
///     phone.poll_event(),
///     Some(PhoneEvent::Recording { server: "10.0.0.9".parse()?, port: 40000.try_into()? })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PhoneSession {
    request: RecordStartRequest,
    state: PhoneState,
    timeout: Duration,
    deadline: Option<Instant>,
    splitter: MessageSplitter,
    received: BytesMut,
    to_send: BytesMut,
    events: VecDeque<PhoneEvent>,
}

impl PhoneSession {
    /// Starts a session: the start request is queued for sending and the
    /// response is awaited for [`DEFAULT_RESPONSE_TIMEOUT`].
    ///
    /// # Errors
    /// A [`MessageError`] if the request breaks a field rule.
    pub fn new(request: RecordStartRequest, now: Instant) -> Result<Self, MessageError> {
        Self::with_timeout(request, DEFAULT_RESPONSE_TIMEOUT, now)
    }

    /// Like [`PhoneSession::new`] with another response timeout.
    ///
    /// # Errors
    /// As [`PhoneSession::new`].
    pub fn with_timeout(
        request: RecordStartRequest,
        timeout: Duration,
        now: Instant,
    ) -> Result<Self, MessageError> {
        let mut to_send = BytesMut::new();
        write_frame(&Message::StartRequest(request.clone()), &mut to_send)?;
        Ok(Self {
            request,
            state: PhoneState::AwaitingStart,
            timeout,
            deadline: Some(now + timeout),
            splitter: MessageSplitter::new(),
            received: BytesMut::new(),
            to_send,
            events: VecDeque::new(),
        })
    }

    /// The session id.
    pub fn id(&self) -> &SessionId {
        &self.request.id
    }

    /// Where the session is.
    pub fn state(&self) -> &PhoneState {
        &self.state
    }

    /// Whether the session has ended (stopped, failed or terminated); the
    /// connection can be closed.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            PhoneState::Failed { .. } | PhoneState::Stopped | PhoneState::Terminated(_)
        )
    }

    /// Bytes to write to the connection, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.to_send.is_empty()).then(|| self.to_send.split().freeze())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<PhoneEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Bytes read from the connection.
    pub fn handle_data(&mut self, data: &[u8], now: Instant) {
        self.received.extend_from_slice(data);
        while !self.is_finished() {
            match self.splitter.next_message(&mut self.received) {
                Some(message) => self.handle_message(message, now),
                None => break,
            }
        }
    }

    /// The server closed the connection: an unterminated last message
    /// still counts, then the connection is lost.
    pub fn handle_eof(&mut self, now: Instant) {
        while !self.is_finished() {
            match self.splitter.next_message_eof(&mut self.received) {
                Some(message) => self.handle_message(message, now),
                None => break,
            }
        }
        self.connection_lost();
    }

    /// One decoded message, for callers doing their own framing (for
    /// example with [`ControlCodec`](crate::ControlCodec)).
    pub fn handle_message(&mut self, message: Result<Message, MessageError>, _now: Instant) {
        if self.is_finished() {
            return;
        }
        let message = match message {
            Ok(m) => m,
            Err(e) => return self.terminate(TerminateCause::Protocol(ProtocolError::Malformed(e))),
        };
        if message.id() != self.id() {
            let got = message.id().clone();
            let expected = self.id().clone();
            return self.terminate(TerminateCause::Protocol(ProtocolError::WrongId {
                expected,
                got,
            }));
        }
        match (&self.state, message) {
            (PhoneState::AwaitingStart, Message::StartResponse(r)) => match r.result {
                StartResult::Success { server, port } => {
                    self.deadline = None;
                    self.state = PhoneState::Recording {
                        server: server.clone(),
                        port,
                    };
                    self.events
                        .push_back(PhoneEvent::Recording { server, port });
                }
                StartResult::Failed { reason } => {
                    self.deadline = None;
                    self.state = PhoneState::Failed {
                        reason: reason.clone(),
                    };
                    self.events.push_back(PhoneEvent::Failed { reason });
                }
            },
            // Stop pressed before the start was answered: the late answer
            // changes nothing; the stop response ends the session.
            (PhoneState::AwaitingStop, Message::StartResponse(_)) => {}
            // A repeated start answer is harmless.
            (PhoneState::Recording { .. }, Message::StartResponse(_)) => {}
            // Our stop answered, or the server ending the recording itself.
            (PhoneState::AwaitingStop | PhoneState::Recording { .. }, Message::StopResponse(r)) => {
                self.deadline = None;
                self.state = PhoneState::Stopped;
                self.events
                    .push_back(PhoneEvent::Stopped { result: r.result });
            }
            (_, other) => {
                let command = other.command();
                self.terminate(TerminateCause::Protocol(ProtocolError::Unexpected {
                    command,
                }));
            }
        }
    }

    /// The user stops recording: queues the stop request (repeating the
    /// start request's numbers and names) and awaits the response.
    ///
    /// # Errors
    /// [`SessionError::NotActive`] unless recording or awaiting the start
    /// response; [`SessionError::Write`] if `reason` is over 256 bytes.
    pub fn stop(&mut self, reason: &str, now: Instant) -> Result<(), SessionError> {
        if !matches!(
            self.state,
            PhoneState::AwaitingStart | PhoneState::Recording { .. }
        ) {
            return Err(SessionError::NotActive);
        }
        let stop = RecordStopRequest::for_start(&self.request, reason);
        write_frame(&Message::StopRequest(stop), &mut self.to_send).map_err(SessionError::Write)?;
        self.state = PhoneState::AwaitingStop;
        self.deadline = Some(now + self.timeout);
        Ok(())
    }

    /// Time has passed: a response not received by its deadline terminates
    /// the session.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            let waiting_for = match self.state {
                PhoneState::AwaitingStop => Command::StopResponse,
                _ => Command::StartResponse,
            };
            self.terminate(TerminateCause::Timeout { waiting_for });
        }
    }

    /// The connection failed or closed: the session ends and state is
    /// cleared (seed: "on socket error, both sides terminate the session").
    pub fn connection_lost(&mut self) {
        if !self.is_finished() {
            self.terminate(TerminateCause::ConnectionLost);
        }
    }

    fn terminate(&mut self, cause: TerminateCause) {
        self.deadline = None;
        self.received.clear();
        self.to_send.clear();
        self.state = PhoneState::Terminated(cause.clone());
        self.events.push_back(PhoneEvent::Terminated(cause));
    }
}
