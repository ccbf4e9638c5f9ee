//! `GET /api/recordings/{id}/live`: a running recording's audio over a
//! WebSocket, as it is recorded (role `listen`).
//!
//! The first message is text, `{"rate": 8000|16000, "channels": n,
//! "codec": "pcm16"}`; then one binary message per 20 ms of media: 4 bytes
//! of big-endian media time (samples per channel since the recording
//! started) and the interleaved 16-bit little-endian samples. The socket
//! closes with code 1000 and the recording's stop reason when it ends,
//! and 1008 when the listener fell behind or stopped reading (it is
//! dropped, never waited for). Every start and
//! end is audited: who, which recording, from where, for how long.

use core::net::SocketAddr;
use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::PathRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use callrec_server::live::{FRAMES_PER_CHUNK, Listener, LiveChunk, LiveError, LiveFormat};
use core::sync::atomic::Ordering;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;

use super::auth::Caller;
use super::recordings::find;
use super::{Api, ApiError, audit, blocking, recording_id};
use crate::tokens::Role;

/// A send that takes longer is a listener that stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the listener is pinged; one that has not answered for
/// [`PONG_TIMEOUT`] stopped reading and is dropped.
const PING_EVERY: Duration = Duration::from_secs(1);
const PONG_TIMEOUT: Duration = Duration::from_secs(4);

/// The next ping's payload: unpredictable, so that only a listener that
/// reads its pings can answer them (a client could send other messages,
/// or pongs of its own, without reading any).
fn next_ping(state: &mut u64) -> u64 {
    // xorshift64*, seeded from the system's random source per listener.
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Most bytes of frames waiting to be written to one listener.
const MAX_WRITE_BUFFER: usize = 512 * 1024;

/// Largest message a listener may send (it sends none but control
/// frames).
const MAX_LISTENER_MESSAGE: usize = 1024;

/// The upgrade, or why the request is not one (answered after the
/// recording was found, so a plain GET learns 404 or 409 first).
pub(super) struct Upgrade(Result<WebSocketUpgrade, String>);

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = core::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            WebSocketUpgrade::from_request_parts(parts, state)
                .await
                .map_err(|e| e.body_text()),
        ))
    }
}

/// `GET /api/recordings/{id}/live`.
pub(super) async fn live(
    caller: Caller,
    State(api): State<Arc<Api>>,
    id: Result<Path<String>, PathRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    slot: Option<axum::Extension<super::ConnectionSlot>>,
    Upgrade(upgrade): Upgrade,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    caller.require(Role::Listen)?;
    let id = recording_id(&id)?.to_owned();
    let recordings = &api.recordings;
    let subscribed = match recordings.shared.live.get() {
        Some(live) => live.subscribe(&id, recordings.settings().listen_limits),
        None => Err(LiveError::NotRunning(id.clone())),
    };
    let listener = match subscribed {
        Ok(listener) => listener,
        Err(LiveError::NotRunning(_)) => return Err(not_here(&api, &id).await),
        Err(e) => {
            return Err(
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).with_header(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("5"),
                ),
            );
        }
    };
    let upgrade = upgrade.map_err(|e| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            format!(
                "GET /api/recordings/{id}/live is a WebSocket, and this request is not one: {e}"
            ),
        )
    })?;
    let format = listener.format();
    audit(
        &api,
        "listen",
        &id,
        &caller.actor,
        Some(format!(
            "live, {} Hz, {} channel{}",
            format.rate,
            format.channels,
            if format.channels == 1 { "" } else { "s" }
        )),
    )
    .await?;
    tracing::info!(recording_id = id, actor = caller.actor.name, %peer, "live listener started");
    let actor = caller.actor.clone();
    // An upgrade that fails after the 101 still ends the audited listen.
    let (failed_api, failed_id, failed_actor) = (api.clone(), id.clone(), actor.clone());
    Ok(upgrade
        .max_message_size(MAX_LISTENER_MESSAGE)
        .max_frame_size(MAX_LISTENER_MESSAGE)
        // A listener sends only pongs and a close: a small read buffer
        // (tungstenite's default is 128 KiB, zeroed as it grows).
        .read_buffer_size(4 * MAX_LISTENER_MESSAGE)
        // What waits for a listener is bounded by the feed and the write
        // deadline; this bounds it again (tungstenite's default has no
        // bound): a chunk of silence is 64 KiB at most.
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_failed_upgrade(move |e| {
            tokio::spawn(async move {
                let detail = format!("listened 0.0 s; the WebSocket upgrade failed: {e}");
                let _ = audit(&failed_api, "listen end", &failed_id, &failed_actor, Some(detail)).await;
            });
        })
        .on_upgrade(move |socket| async move {
            // The connection's place stays taken while it listens.
            let _slot = slot;
            let started = Instant::now();
            let (code, reason) = serve(socket, listener, &api, caller).await;
            let seconds = started.elapsed().as_secs_f64();
            tracing::info!(recording_id = id, actor = actor.name, %peer, seconds, code, reason, "live listener ended");
            let detail = format!("listened {seconds:.1} s; {reason}");
            if let Err(e) = audit(&api, "listen end", &id, &actor, Some(detail)).await {
                tracing::error!(recording_id = id, "the end of a live listener was not audited: {e:?}");
            }
        })
        .into_response())
}

/// Why recording `id` cannot be heard here: unknown (404), not running
/// (409), or running on another node of the pool: `307` to that node's
/// public URL when the index has one, else 409 naming the node.
async fn not_here(api: &Arc<Api>, id: &str) -> ApiError {
    let recording = match find(api, id).await {
        Ok(recording) => recording,
        Err(e) => return e,
    };
    let here = api.recordings.node();
    if !recording.running || recording.node == here {
        return ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "recording {id} is not running: play it instead (GET /api/recordings/{id}/audio)"
            ),
        );
    }
    let node = recording.node.clone();
    let recordings = api.recordings.clone();
    let looked_up = node.clone();
    let url = blocking(move || recordings.shared.index.public_url(&looked_up)).await;
    match url {
        Ok(Some(url)) => {
            let location = format!("{url}/api/recordings/{id}/live");
            match axum::http::HeaderValue::from_str(&location) {
                Ok(value) => ApiError::new(
                    StatusCode::TEMPORARY_REDIRECT,
                    format!(
                        "recording {id} is being recorded on node {node:?}: listen at {location}"
                    ),
                )
                .with_header(axum::http::header::LOCATION, value),
                Err(_) => ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "recording {id} is being recorded on node {node:?}, whose public URL {url:?} is not a header value"
                    ),
                ),
            }
        }
        Ok(None) => ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "recording {id} is being recorded on node {node:?}, not this one ({here:?}), and that node \
                 gave no --public-url: listen through its API"
            ),
        ),
        Err(e) => e,
    }
}

/// Serves one listener: the first message, then hands the socket to the
/// listeners' writer until the feed ends, the listener goes or falls
/// behind, or the caller's session ends; then the close. The close code
/// and reason.
async fn serve(
    mut socket: WebSocket,
    mut listener: Listener,
    api: &Arc<Api>,
    caller: Caller,
) -> (u16, String) {
    let format = listener.format();
    if let Some(counters) = listener_counters(api) {
        counters.listeners_started.fetch_add(1, Ordering::Relaxed);
    }
    let head = json!({"rate": format.rate, "channels": format.channels, "codec": "pcm16"});
    if send(&mut socket, Message::Text(head.to_string().into()))
        .await
        .is_err()
    {
        listener.dropped();
        return (
            close_code::POLICY,
            "the listener did not take the first message".into(),
        );
    }
    // Heard from the newest audio on, not from when it subscribed.
    if let Some(LiveChunk::End(reason)) = listener.skip_to_live_edge() {
        let reason = format!("recording ended: {reason}");
        let _ = send(&mut socket, close_frame(close_code::NORMAL, &reason)).await;
        return (close_code::NORMAL, reason);
    }
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    let (done, ended) = tokio::sync::oneshot::channel();
    api.listeners.add(
        api,
        Served {
            socket,
            listener,
            caller,
            format,
            clock: ListenerClock::new(Instant::now()),
            ping_state: u64::from_le_bytes(seed) | 1,
            pinged: [0; 2],
            unflushed: Vec::with_capacity(FRAMES_PER_CHUNK),
            dirty: false,
            done,
        },
    );
    match ended.await {
        Ok(Ended {
            code,
            reason,
            mut socket,
            unflushed,
        }) => {
            let closed = if reason == LISTENER_CLOSED {
                // The reply to its close is queued: flushed, not replaced.
                if within(SinkExt::close(&mut socket)).await {
                    Ok(())
                } else {
                    Err(())
                }
            } else {
                send(&mut socket, close_frame(code, &reason)).await
            };
            // The close flushed the frames written before it.
            if let (Ok(()), Some(counters)) = (closed, listener_counters(api)) {
                for arrived in unflushed {
                    counters.frame_sent(arrived.map(|a| a.elapsed()));
                }
            }
            (code, reason)
        }
        // The writer went (the runtime is shutting down), and the socket
        // with it.
        Err(_) => (
            close_code::ERROR,
            "the server stopped serving its listeners".into(),
        ),
    }
}

/// How often the listeners' writer wakes: a published chunk waits at most
/// this long. One wake serves every listener; a wake per chunk and
/// listener cost more than its write (docs/PERFORMANCE.md).
const WRITE_EVERY: Duration = Duration::from_millis(10);

/// The end of a listener that closed.
const LISTENER_CLOSED: &str = "the listener closed";

/// How often what a listener sent is read: it sends a pong a second and
/// its close, and reading every socket at every wake cost more than
/// the pongs are worth.
const READ_EVERY: Duration = Duration::from_millis(100);

/// Most messages taken from one listener per read: a listener that sends
/// much is read a little at a time (and within the writer's budget of
/// socket reads per wake, which a flood of empty frames spends).
const MAX_READS_PER_WAKE: usize = 16;

/// The node's listeners, served by one task (the writer) that runs while
/// there are any.
#[derive(Default)]
pub(super) struct Listeners {
    state: std::sync::Mutex<ListenersState>,
}

#[derive(Default)]
struct ListenersState {
    /// Whether the writer runs.
    running: bool,
    /// Listeners the writer has not taken yet.
    added: Vec<Served>,
}

impl Listeners {
    fn state(&self) -> std::sync::MutexGuard<'_, ListenersState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves `served` from the writer's next wake, starting the writer
    /// when it does not run.
    fn add(&self, api: &Arc<Api>, served: Served) {
        let start = {
            let mut state = self.state();
            state.added.push(served);
            !core::mem::replace(&mut state.running, true)
        };
        if start {
            // Made before the task: a writer dropped before it first runs
            // (the runtime shutting down) still says it stopped.
            let running = Running {
                api: api.clone(),
                armed: true,
            };
            tokio::spawn(write_to_listeners(running));
        }
    }
}

/// The writer's hold on its place: unless it ends normally (disarmed),
/// dropping it says the writer stopped, so that the next listener starts
/// another, and ends the listeners not yet taken.
struct Running {
    api: Arc<Api>,
    armed: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.api.listeners.state();
            state.running = false;
            state.added.clear();
        }
    }
}

/// The writer: every [`WRITE_EVERY`] it serves each listener
/// ([`Served::write`], then [`Served::read`]) and hands the ended ones
/// back to their tasks; it
/// ends when none is left. A publication wakes nobody: the writer takes
/// what the feeds hold when it wakes.
async fn write_to_listeners(mut running: Running) {
    let api = running.api.clone();
    let counters = listener_counters(&api);
    let mut served: Vec<Served> = Vec::new();
    let mut tick = tokio::time::interval(WRITE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Where this wake's reads start: each wake starts one further, so
    // that a listener whose read used up the budget delays others by a
    // wake at most.
    let mut first_read = 0;
    loop {
        tick.tick().await;
        {
            let mut state = api.listeners.state();
            served.append(&mut state.added);
            if served.is_empty() {
                state.running = false;
                running.armed = false;
                return;
            }
        }
        let now = Instant::now();
        let mut ended: Vec<Option<(u16, String)>> = vec![None; served.len()];
        // Writes first, outside tokio's budget of socket operations per
        // wake, which this one task would share among every listener
        // and run out of for the last ones; each listener writes at most
        // one flush.
        tokio::task::coop::unconstrained(core::future::poll_fn(|_| {
            let mut cx = quiet();
            for (listener, end) in served.iter_mut().zip(ended.iter_mut()) {
                *end = isolated(|| listener.write(&mut cx, now, &api, counters.as_deref()));
            }
            core::task::Poll::Ready(())
        }))
        .await;
        // Then what the listeners sent, within the budget: a listener
        // that floods reads only until it is spent.
        core::future::poll_fn(|_| {
            let mut cx = quiet();
            let n = served.len();
            for k in (0..n).map(|i| (first_read + i) % n) {
                if !tokio::task::coop::has_budget_remaining() {
                    break;
                }
                if ended[k].is_none() && served[k].clock.read_due(now) {
                    let listener = &mut served[k];
                    ended[k] = isolated(|| listener.read(&mut cx, now));
                }
            }
            core::task::Poll::Ready(())
        })
        .await;
        first_read = first_read.wrapping_add(1);
        // From the last, so that each index still names its listener.
        for (k, end) in ended.into_iter().enumerate().rev() {
            let Some((code, reason)) = end else { continue };
            let listener = served.swap_remove(k);
            let _ = listener.done.send(Ended {
                code,
                reason,
                socket: listener.socket,
                unflushed: listener.unflushed,
            });
        }
    }
}

/// A context whose waker does nothing, to poll the listeners' sockets
/// with: the writer comes back at its next wake anyway, and a pong or a
/// socket that drains would otherwise wake it for nothing.
fn quiet() -> core::task::Context<'static> {
    core::task::Context::from_waker(core::task::Waker::noop())
}

/// `serve`'s end, or a panic in it as that listener's end alone (1011):
/// the writer and the other listeners go on.
fn isolated(serve: impl FnOnce() -> Option<(u16, String)>) -> Option<(u16, String)> {
    match std::panic::catch_unwind(core::panic::AssertUnwindSafe(serve)) {
        Ok(end) => end,
        Err(_) => {
            tracing::error!("serving a live listener panicked; that listener is ended");
            Some((
                close_code::ERROR,
                "the server failed serving this listener".into(),
            ))
        }
    }
}

/// A listener the writer serves.
struct Served {
    socket: WebSocket,
    listener: Listener,
    caller: Caller,
    format: LiveFormat,
    clock: ListenerClock,
    ping_state: u64,
    /// The last two pings' payloads: a pong may cross the next ping.
    pinged: [u64; 2],
    /// When the newest packet of each frame written but not yet flushed
    /// arrived, for the latency.
    unflushed: Vec<Option<Instant>>,
    /// Whether something was written and not yet flushed.
    dirty: bool,
    done: tokio::sync::oneshot::Sender<Ended>,
}

/// How a listener ended, its socket for the close, and the frames
/// written that no flush has sent yet.
struct Ended {
    code: u16,
    reason: String,
    socket: WebSocket,
    unflushed: Vec<Option<Instant>>,
}

impl Served {
    /// Takes what the listener sent (pongs, its close), at most
    /// [`MAX_READS_PER_WAKE`] messages; its end, if it closed.
    fn read(&mut self, cx: &mut core::task::Context<'_>, now: Instant) -> Option<(u16, String)> {
        use core::task::Poll;
        for _ in 0..MAX_READS_PER_WAKE {
            match self.socket.poll_next_unpin(cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(Message::Pong(payload)))) => {
                    if self
                        .pinged
                        .iter()
                        .any(|&p| p != 0 && payload.as_ref() == p.to_be_bytes().as_slice())
                    {
                        self.clock.pong(now);
                    }
                }
                Poll::Ready(Some(Ok(Message::Close(_))) | None) => {
                    return Some((close_code::AWAY, LISTENER_CLOSED.into()));
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => {
                    return Some((
                        close_code::AWAY,
                        format!("the listener's connection failed: {e}"),
                    ));
                }
            }
        }
        None
    }

    /// Serves the listener at `now`, without waiting: pings it when due
    /// (and checks the caller's session), and writes what its feed holds
    /// in one flush; while an earlier flush is still in the socket's way,
    /// it takes nothing new from the feed (which holds it, or drops a
    /// listener that falls too far behind). The close code and reason
    /// once it ended.
    fn write(
        &mut self,
        cx: &mut core::task::Context<'_>,
        now: Instant,
        api: &Api,
        counters: Option<&callrec_server::live::LiveCounters>,
    ) -> Option<(u16, String)> {
        use core::task::Poll;
        match self.clock.due(now) {
            Due::Stalled => {
                self.listener.dropped();
                return Some((
                    close_code::POLICY,
                    format!("the listener did not read for {} s", SEND_TIMEOUT.as_secs()),
                ));
            }
            Due::Silent => {
                self.listener.dropped();
                return Some((
                    close_code::POLICY,
                    format!(
                        "the listener answered no ping for {} s",
                        PONG_TIMEOUT.as_secs()
                    ),
                ));
            }
            Due::Ping => {
                if let Some(why) = self.caller.ended(api) {
                    return Some((close_code::POLICY, why.to_owned()));
                }
                // Queued behind a flush still waiting, if one is (the
                // write's deadline covers that listener).
                if self.socket.poll_ready_unpin(cx).is_ready() {
                    let payload = next_ping(&mut self.ping_state);
                    self.pinged = [payload, self.pinged[0]];
                    let ping = Message::Ping(Bytes::copy_from_slice(&payload.to_be_bytes()));
                    if let Err(e) = self.socket.start_send_unpin(ping) {
                        return Some(broke(&e));
                    }
                    self.dirty = true;
                }
            }
            Due::Nothing => {}
        }
        let mut ending = None;
        if !self.clock.writing() {
            while self.socket.poll_ready_unpin(cx).is_ready() {
                let chunk = match self.listener.try_next() {
                    Ok(None) => break,
                    Ok(Some(LiveChunk::End(reason))) => {
                        // What was written goes out before the close.
                        ending = Some(format!("recording ended: {reason}"));
                        break;
                    }
                    Ok(Some(chunk)) => chunk,
                    Err(e) => return Some((close_code::POLICY, e.to_string())),
                };
                let arrived = match &chunk {
                    LiveChunk::Audio { arrived, .. } => arrived.as_slice(),
                    _ => &[],
                };
                for (k, message) in chunk.messages(self.format).enumerate() {
                    if let Err(e) = self.socket.start_send_unpin(Message::Binary(message)) {
                        return Some(broke(&e));
                    }
                    self.unflushed.push(arrived.get(k).copied().flatten());
                    self.dirty = true;
                }
            }
        }
        if self.dirty {
            match self.socket.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    self.dirty = false;
                    self.clock.flushed();
                    if let Some(counters) = counters {
                        let flushed = Instant::now();
                        for arrived in self.unflushed.drain(..) {
                            counters
                                .frame_sent(arrived.map(|a| flushed.saturating_duration_since(a)));
                        }
                    }
                    self.unflushed.clear();
                }
                Poll::Ready(Err(e)) => return Some(broke(&e)),
                Poll::Pending => self.clock.writing_since(now),
            }
        }
        ending.map(|reason| (close_code::NORMAL, reason))
    }
}

/// The end of a listener whose connection failed.
fn broke(e: &axum::Error) -> (u16, String) {
    (
        close_code::AWAY,
        format!("the listener's connection failed: {e}"),
    )
}

/// What is due for a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Nothing,
    /// Time to ping it (and check the caller's session).
    Ping,
    /// It answered none of its pings for [`PONG_TIMEOUT`].
    Silent,
    /// A write has waited for it for [`SEND_TIMEOUT`].
    Stalled,
}

/// A listener's deadlines, sans-IO (the time is passed in): when to ping
/// it, when its silence means it stopped reading, and when a write took
/// too long.
#[derive(Debug, Clone, Copy)]
struct ListenerClock {
    next_ping: Instant,
    next_read: Instant,
    answered: Instant,
    writing_since: Option<Instant>,
}

impl ListenerClock {
    /// A listener that starts at `now` (pinged at once).
    fn new(now: Instant) -> Self {
        Self {
            next_ping: now,
            next_read: now,
            answered: now,
            writing_since: None,
        }
    }

    /// Whether what the listener sent is to be read at `now` (every
    /// [`READ_EVERY`]).
    fn read_due(&mut self, now: Instant) -> bool {
        if now < self.next_read {
            return false;
        }
        self.next_read = now + READ_EVERY;
        true
    }

    /// It answered one of its pings at `now`.
    fn pong(&mut self, now: Instant) {
        self.answered = now;
    }

    /// A flush found the socket full at `now` (the first time counts).
    fn writing_since(&mut self, now: Instant) {
        self.writing_since.get_or_insert(now);
    }

    /// Everything written went out.
    fn flushed(&mut self) {
        self.writing_since = None;
    }

    /// Whether a flush is still waiting for the socket.
    fn writing(&self) -> bool {
        self.writing_since.is_some()
    }

    /// What is due at `now`: a stalled write first, then a silent
    /// listener, then a ping (after which the next is [`PING_EVERY`]
    /// later).
    fn due(&mut self, now: Instant) -> Due {
        if self
            .writing_since
            .is_some_and(|since| now.saturating_duration_since(since) > SEND_TIMEOUT)
        {
            return Due::Stalled;
        }
        if now < self.next_ping {
            return Due::Nothing;
        }
        if now.saturating_duration_since(self.answered) > PONG_TIMEOUT {
            return Due::Silent;
        }
        self.next_ping = now + PING_EVERY;
        Due::Ping
    }
}

/// A close frame with `code` and `reason`, cut to the 123 bytes a close
/// frame's reason may have (RFC 6455 §5.5): the stop reason comes from
/// the phone and may be longer.
fn close_frame(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].to_owned().into(),
    }))
}

fn listener_counters(api: &Arc<Api>) -> Option<Arc<callrec_server::live::LiveCounters>> {
    api.recordings
        .shared
        .live
        .get()
        .map(|live| live.counters().clone())
}

/// One message, given at most [`SEND_TIMEOUT`].
async fn send(socket: &mut WebSocket, message: Message) -> Result<(), ()> {
    if within(socket.send(message)).await {
        Ok(())
    } else {
        Err(())
    }
}

/// Whether a write finished, and within [`SEND_TIMEOUT`].
async fn within<E>(write: impl Future<Output = Result<(), E>>) -> bool {
    matches!(tokio::time::timeout(SEND_TIMEOUT, write).await, Ok(Ok(())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn a_listener_is_pinged_at_once_then_every_second_and_read_every_tenth() {
        let t0 = Instant::now();
        let mut clock = ListenerClock::new(t0);
        assert_eq!(clock.due(t0), Due::Ping);
        assert_eq!(clock.due(at(t0, 10)), Due::Nothing);
        clock.pong(at(t0, 30));
        assert_eq!(clock.due(at(t0, 999)), Due::Nothing);
        assert_eq!(clock.due(at(t0, 1000)), Due::Ping);
        assert!(clock.read_due(t0));
        assert!(!clock.read_due(at(t0, 90)));
        assert!(clock.read_due(at(t0, 100)));
        assert!(!clock.read_due(at(t0, 150)));
    }

    #[test]
    fn a_listener_that_answers_no_ping_for_four_seconds_is_silent() {
        let t0 = Instant::now();
        let mut clock = ListenerClock::new(t0);
        for s in 0..=4 {
            assert_eq!(clock.due(at(t0, s * 1000)), Due::Ping, "{s} s");
        }
        // Only when a ping is due, and only past the timeout.
        assert_eq!(clock.due(at(t0, 4500)), Due::Nothing);
        assert_eq!(clock.due(at(t0, 5000)), Due::Silent);
        // A pong in time keeps it.
        let mut answered = ListenerClock::new(t0);
        for s in 0..=8 {
            answered.pong(at(t0, s * 1000 + 20));
            assert_eq!(answered.due(at(t0, s * 1000 + 1000)), Due::Ping, "{s} s");
        }
    }

    #[test]
    fn a_write_that_waits_over_two_seconds_is_stalled_and_a_flush_clears_it() {
        let t0 = Instant::now();
        let mut clock = ListenerClock::new(t0);
        assert_eq!(clock.due(t0), Due::Ping);
        assert!(!clock.writing());
        clock.writing_since(at(t0, 100));
        // A later wait does not move its start.
        clock.writing_since(at(t0, 900));
        assert!(clock.writing());
        // Exactly two seconds is not over them.
        assert_eq!(clock.due(at(t0, 2100)), Due::Ping);
        assert_eq!(clock.due(at(t0, 2101)), Due::Stalled);
        clock.flushed();
        assert!(!clock.writing());
        clock.pong(at(t0, 2101));
        clock.writing_since(at(t0, 2200));
        assert_eq!(clock.due(at(t0, 3000)), Due::Nothing);
        assert_eq!(clock.due(at(t0, 4200)), Due::Ping);
        assert_eq!(clock.due(at(t0, 4201)), Due::Stalled);
    }

    #[test]
    fn ping_payloads_differ_and_a_close_reason_is_cut_on_a_char_boundary() {
        let mut state = 1;
        let first = next_ping(&mut state);
        let second = next_ping(&mut state);
        assert_ne!(first, second);
        assert_ne!(first, 0);
        let reason = "é".repeat(100);
        match close_frame(close_code::NORMAL, &reason) {
            Message::Close(Some(frame)) => {
                assert!(frame.reason.len() <= 123);
                assert_eq!(frame.reason.len(), 122);
            }
            other => panic!("expected a close, got {other:?}"),
        }
    }
}
