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
use callrec_server::live::{Listener, LiveChunk, LiveError};
use core::sync::atomic::{AtomicU64, Ordering};
use futures_util::stream::SplitSink;
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
            let (code, reason) = serve(socket, listener, &api, &caller).await;
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

/// Sends the feed until it ends, the listener goes or falls behind, or
/// the caller's session ends (checked with each ping); the close code and
/// reason. The socket is split: this task only writes (a
/// frame is one write, and the read side is not polled per frame), and a
/// reader task takes the listener's pongs and close.
async fn serve(
    socket: WebSocket,
    mut listener: Listener,
    api: &Arc<Api>,
    caller: &Caller,
) -> (u16, String) {
    let format = listener.format();
    let counters = listener_counters(api);
    if let Some(counters) = &counters {
        counters.listeners_started.fetch_add(1, Ordering::Relaxed);
    }
    let (mut sink, mut stream) = socket.split();
    let started = Instant::now();
    // Milliseconds after `started` of the listener's last pong of a ping,
    // and the last ping's payload.
    let answered = Arc::new(AtomicU64::new(0));
    let heard = answered.clone();
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    let mut ping_state = u64::from_le_bytes(seed) | 1;
    // The last two pings' payloads: a pong may cross the next ping.
    let pinged = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let expected = pinged.clone();
    let mut reader = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Close(_) => break,
                Message::Pong(payload)
                    if expected.iter().any(|p| {
                        let p = p.load(Ordering::Relaxed);
                        p != 0 && payload.as_ref() == p.to_be_bytes().as_slice()
                    }) =>
                {
                    heard.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    });
    let head = json!({"rate": format.rate, "channels": format.channels, "codec": "pcm16"});
    if send(&mut sink, Message::Text(head.to_string().into()))
        .await
        .is_err()
    {
        listener.dropped();
        reader.abort();
        return (
            close_code::POLICY,
            "the listener did not take the first message".into(),
        );
    }
    // Heard from the newest audio on, not from when it subscribed.
    if let Some(LiveChunk::End(reason)) = listener.skip_to_live_edge() {
        let reason = format!("recording ended: {reason}");
        let _ = send(&mut sink, close_frame(close_code::NORMAL, &reason)).await;
        reader.abort();
        return (close_code::NORMAL, reason);
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (code, reason) = loop {
        tokio::select! {
            chunk = listener.next() => match chunk {
                Ok(LiveChunk::End(reason)) => break (close_code::NORMAL, format!("recording ended: {reason}")),
                Ok(chunk) => {
                    // The chunk's frames in one write: each fed, then one
                    // flush.
                    let arrived = match &chunk {
                        LiveChunk::Audio { arrived, .. } => *arrived,
                        _ => Default::default(),
                    };
                    let mut sent = 0;
                    let write = async {
                        for message in chunk.messages(format) {
                            sink.feed(Message::Binary(message)).await?;
                            sent += 1;
                        }
                        sink.flush().await
                    };
                    // One deadline for the chunk's write: a timer per frame
                    // costs more than the write.
                    if !within(write).await {
                        listener.dropped();
                        break (close_code::POLICY, format!("the listener did not read for {} s", SEND_TIMEOUT.as_secs()));
                    }
                    if let Some(counters) = &counters {
                        for k in 0..sent {
                            let latency = arrived.get(k).copied().flatten().map(|a| a.elapsed());
                            counters.frame_sent(latency);
                        }
                    }
                }
                Err(e) => break (close_code::POLICY, e.to_string()),
            },
            _ = &mut reader => return (close_code::AWAY, "the listener closed".into()),
            _ = ping.tick() => {
                if let Some(why) = caller.ended(api) {
                    break (close_code::POLICY, why.to_owned());
                }
                let silent = started.elapsed().saturating_sub(Duration::from_millis(answered.load(Ordering::Relaxed)));
                if silent > PONG_TIMEOUT {
                    listener.dropped();
                    break (close_code::POLICY, format!("the listener answered no ping for {} s", PONG_TIMEOUT.as_secs()));
                }
                let payload = next_ping(&mut ping_state);
                pinged[1].store(pinged[0].load(Ordering::Relaxed), Ordering::Relaxed);
                pinged[0].store(payload, Ordering::Relaxed);
                let ping = Message::Ping(Bytes::copy_from_slice(&payload.to_be_bytes()));
                if send(&mut sink, ping).await.is_err() {
                    listener.dropped();
                    break (close_code::POLICY, format!("the listener did not read for {} s", SEND_TIMEOUT.as_secs()));
                }
            }
        }
    };
    let _ = send(&mut sink, close_frame(code, &reason)).await;
    reader.abort();
    (code, reason)
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
async fn send(sink: &mut SplitSink<WebSocket, Message>, message: Message) -> Result<(), ()> {
    if within(sink.send(message)).await {
        Ok(())
    } else {
        Err(())
    }
}

/// Whether a write finished, and within [`SEND_TIMEOUT`].
async fn within<E>(write: impl Future<Output = Result<(), E>>) -> bool {
    matches!(tokio::time::timeout(SEND_TIMEOUT, write).await, Ok(Ok(())))
}
