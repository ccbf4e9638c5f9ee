//! A supervisor listening to a running recording
//! (`GET /api/recordings/{id}/live` of a callrec node), blocking: connect,
//! then read the format and every 20 ms frame until the node closes the
//! socket. The live tests and the `live_listen` load tool use it.

use core::time::Duration;
use std::net::TcpStream;

pub use tungstenite::Message;
use tungstenite::WebSocket;
use tungstenite::client::IntoClientRequest;
pub use tungstenite::protocol::frame::coding::CloseCode;

/// A listener's socket.
pub type LiveSocket = WebSocket<TcpStream>;

/// The upgrade request for recording `id` on the node whose API is `base`
/// (`http://HOST:PORT`), with these headers: the host to connect to, the
/// URL (for errors) and the request.
fn request<'a>(
    base: &'a str,
    id: &str,
    headers: &[(&str, &str)],
) -> Result<(&'a str, String, tungstenite::handshake::client::Request), String> {
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("{base:?} is not an http:// URL"))?;
    let url = format!("ws://{host}/api/recordings/{id}/live");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("{url}: {e}"))?;
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("header {name:?}: {e}"))?;
        let value = value.parse().map_err(|e| format!("header {name}: {e}"))?;
        request.headers_mut().insert(name, value);
    }
    Ok((host, url, request))
}

/// Opens the live socket of recording `id` on the node whose API is
/// `base` (`http://HOST:PORT`), with these request headers
/// (`Authorization`, `Origin`).
///
/// # Errors
/// The connection's or the handshake's error, naming the URL.
pub fn connect(base: &str, id: &str, headers: &[(&str, &str)]) -> Result<LiveSocket, String> {
    let (host, url, request) = request(base, id, headers)?;
    let stream = TcpStream::connect(host).map_err(|e| format!("cannot connect to {host}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| format!("{host}: {e}"))?;
    let (socket, _) = tungstenite::client(request, stream).map_err(|e| format!("{url}: {e}"))?;
    Ok(socket)
}

/// What a listener heard.
#[derive(Debug, Clone, Default)]
pub struct Heard {
    /// The first message: `{"rate", "channels", "codec"}`.
    pub format: String,
    /// Each frame's media time and interleaved samples.
    pub frames: Vec<(u32, Vec<i16>)>,
    /// The close frame's code and reason, when there was one.
    pub close: Option<(CloseCode, String)>,
}

/// Reads the format, then every frame until the socket closes (pings are
/// answered as they come).
///
/// # Errors
/// The socket's error, or a first message that is not text.
pub fn listen_to_the_end(socket: &mut LiveSocket) -> Result<Heard, String> {
    let first = socket.read().map_err(|e| e.to_string())?;
    let format = first
        .into_text()
        .map_err(|e| format!("the first message is not text: {e}"))?
        .to_string();
    let mut heard = Heard {
        format,
        ..Heard::default()
    };
    loop {
        match socket.read() {
            Ok(Message::Binary(bytes)) if bytes.len() >= 4 => {
                let time = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                let samples = bytes[4..]
                    .chunks_exact(2)
                    .map(|p| i16::from_le_bytes([p[0], p[1]]))
                    .collect();
                heard.frames.push((time, samples));
            }
            Ok(Message::Close(frame)) => {
                heard.close = frame.map(|f| (f.code, f.reason.to_string()));
                return Ok(heard);
            }
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(heard);
            }
            Err(e) => return Err(format!("after {} frames: {e}", heard.frames.len())),
        }
    }
}

/// What [`listen_all`] heard from one recording.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The recording.
    pub id: String,
    /// Frames heard.
    pub frames: u64,
    /// The close frame's code, or why the listener failed.
    pub end: Result<Option<CloseCode>, String>,
}

/// Listens to each of `ids` on the node whose API is `base`, all at once
/// on the calling task (one thread for every socket, as a load generator
/// must be to stay out of the server's way), each until its socket closes
/// or, given `stop_after`, until that time has passed since its socket
/// opened (the listener then
/// hangs up: its outcome's end is `Ok(None)`).
pub async fn listen_all(
    base: &str,
    ids: &[String],
    headers: &[(&str, &str)],
    stop_after: Option<Duration>,
) -> Vec<Outcome> {
    let listeners = ids.iter().map(|id| async move {
        let counted = core::cell::Cell::new(0u64);
        // `stop_after` counts from the open socket, not from connecting.
        let end = match open(base, id, headers).await {
            Err(e) => Err(e),
            Ok((socket, url)) => {
                let listening = listen_counting(socket, &url, &counted);
                match stop_after {
                    Some(limit) => match tokio::time::timeout(limit, listening).await {
                        Ok(end) => end,
                        Err(_) => Ok((counted.get(), None)),
                    },
                    None => listening.await,
                }
            }
        };
        let (frames, end) = match end {
            Ok((frames, close)) => (frames, Ok(close)),
            Err(e) => (0, Err(e)),
        };
        Outcome {
            id: id.clone(),
            frames,
            end,
        }
    });
    futures_util::future::join_all(listeners).await
}

/// The live socket of recording `id`, open, and its URL.
async fn open(
    base: &str,
    id: &str,
    headers: &[(&str, &str)],
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        String,
    ),
    String,
> {
    let (host, url, request) = request(base, id, headers)?;
    let stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| format!("cannot connect to {host}: {e}"))?;
    let (socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    Ok((socket, url))
}

async fn listen_counting(
    mut socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    url: &str,
    counted: &core::cell::Cell<u64>,
) -> Result<(u64, Option<CloseCode>), String> {
    use futures_util::StreamExt;
    let mut frames = 0;
    while let Some(message) = socket.next().await {
        match message {
            Ok(Message::Binary(_)) => {
                frames += 1;
                counted.set(frames);
            }
            Ok(Message::Close(frame)) => return Ok((frames, frame.map(|f| f.code))),
            Ok(_) => {}
            Err(e) => return Err(format!("{url} after {frames} frames: {e}")),
        }
    }
    Ok((frames, None))
}
