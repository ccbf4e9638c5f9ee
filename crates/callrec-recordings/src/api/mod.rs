//! The HTTP API and the web page: the server and its routes. Each resource
//! has its own file: [`recordings`] (search, metadata, delete, hold),
//! [`audio`] (playback and download), [`audit`], with [`auth`] deciding who
//! calls and [`error`] turning every failure into a JSON answer.

mod audio;
mod audit;
mod auth;
mod error;
mod guard;
mod import;
mod live;
mod recordings;

use core::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::index;
use crate::settings::HttpLimits;
use crate::tokens::Tokens;
use crate::{Error, Recordings};

use auth::Caller;
pub(crate) use error::ApiError;
pub(crate) use guard::is_loopback_host;
pub(crate) use recordings::{SearchParams, query_of};

const PAGE_HTML: &str = include_str!("../../page/index.html");
const PAGE_JS: &str = include_str!("../../page/app.js");
const PAGE_CSS: &str = include_str!("../../page/style.css");
const PAGE_LIVE_WORKLET: &str = include_str!("../../page/live-worklet.js");

struct Api {
    recordings: Recordings,
    tokens: Option<Tokens>,
    sessions: std::sync::Mutex<crate::sessions::Sessions>,
    listeners: live::Listeners,
}

/// The HTTP API, bound and ready to serve.
#[derive(Debug)]
pub struct HttpApi {
    listener: tokio::net::TcpListener,
    router: Router,
    limits: HttpLimits,
}

impl HttpApi {
    /// Binds the API to `addr`. Without `tokens` anyone who can connect
    /// may do anything, so it then only binds to a loopback address.
    ///
    /// # Errors
    /// [`Error::Bind`]: the address is not loopback and there are no
    /// tokens, or it cannot be bound (in use, not local, no permission).
    pub async fn bind(
        addr: SocketAddr,
        tokens: Option<Tokens>,
        recordings: Recordings,
    ) -> Result<Self, Error> {
        if tokens.is_none() && !addr.ip().is_loopback() {
            return Err(Error::bind(
                &addr,
                "without API tokens (--api-tokens FILE) the API only listens on loopback (127.0.0.1 or [::1])",
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::bind(&addr, e))?;
        Ok(Self {
            listener,
            router: router(recordings, tokens),
            limits: HttpLimits::default(),
        })
    }

    /// The same API with these bounds on connections (the default is
    /// [`HttpLimits::default`]).
    #[must_use]
    pub fn with_limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets running requests end.
    /// A connection that has not sent a whole request head within
    /// [`HttpLimits::request_head_timeout`] of connecting or of its last
    /// answer is closed, and connections beyond the limits are closed when
    /// accepted (and logged).
    ///
    /// # Errors
    /// None today (errors accepting one connection are logged and the loop
    /// goes on); the `Result` leaves room for one.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            limits,
        } = self;
        let connections = Arc::new(Connections::default());
        // Told to every connection at shutdown: each ends its request in
        // flight and closes (hyper's graceful shutdown of a connection).
        let (stop, _) = tokio::sync::watch::channel(false);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.request_head_timeout);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors or a connection reset before
                        // it was accepted: log, pause a moment, go on.
                        tracing::warn!("HTTP API: cannot accept a connection: {e}");
                        tokio::time::sleep(core::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Answers and live frames leave as they are written (a live
            // frame held back by Nagle waits for the listener's delayed
            // ACK, up to 40 ms).
            let _ = stream.set_nodelay(true);
            let Some(slot) = connections.admit(peer.ip(), &limits) else {
                drop(stream);
                continue;
            };
            let router = router.clone();
            // Shared with each request: a live listener keeps its
            // connection's place (in the limits, and for the shutdown's
            // wait) until its WebSocket ends.
            let slot = ConnectionSlot {
                _held: Arc::new(slot),
            };
            let held = slot.clone();
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    request.extensions_mut().insert(held.clone());
                    let mut router = router.clone();
                    async move {
                        tower_service::Service::call(
                            &mut router,
                            request.map(axum::body::Body::new),
                        )
                        .await
                    }
                },
            );
            // With upgrades: live listening's WebSocket. An upgraded
            // connection leaves this task's head timeout, but its
            // listener keeps the connection's slot (and its address's)
            // while it listens, and has its own limits.
            let connection = http
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            let mut stopped = stop.subscribe();
            tokio::spawn(async move {
                let mut connection = std::pin::pin!(connection);
                // Timeouts and resets end a connection; nothing to report.
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                tokio::select! {
                    _ = connection.as_mut() => {}
                    () = stop => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
                drop(slot);
            });
        }
        drop(listener);
        let _ = stop.send(true);
        connections.all_closed().await;
        Ok(())
    }
}

/// The connections being served, in all and per address.
#[derive(Debug, Default)]
struct Connections {
    open: std::sync::Mutex<(usize, std::collections::HashMap<core::net::IpAddr, usize>)>,
    /// Told when the last connection closes.
    closed: tokio::sync::Notify,
}

/// A connection's place, shared by its requests (see
/// [`HttpApi::run`]): a WebSocket handler holds it for as long as it
/// serves the socket.
#[derive(Clone)]
pub(crate) struct ConnectionSlot {
    _held: Arc<Slot>,
}

/// One admitted connection; gives its place back when dropped.
struct Slot {
    connections: Arc<Connections>,
    address: core::net::IpAddr,
}

impl Connections {
    /// A place for a connection from `address`, or `None` (logged) when
    /// the limits are reached.
    fn admit(self: &Arc<Self>, address: core::net::IpAddr, limits: &HttpLimits) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from_address = open.1.get(&address).copied().unwrap_or(0);
        if open.0 >= limits.max_connections {
            tracing::warn!(%address, "HTTP API: connection refused: {} connections open, the limit", open.0);
            return None;
        }
        if from_address >= limits.max_connections_per_address {
            tracing::warn!(%address, "HTTP API: connection refused: {from_address} connections open from {address}, the limit");
            return None;
        }
        open.0 += 1;
        *open.1.entry(address).or_insert(0) += 1;
        Some(Slot {
            connections: self.clone(),
            address,
        })
    }
}

impl Connections {
    /// Waits until no connection is open.
    async fn all_closed(&self) {
        loop {
            let notified = self.closed.notified();
            if self.open.lock().unwrap_or_else(|e| e.into_inner()).0 == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.0 -= 1;
        if open.0 == 0 {
            self.connections.closed.notify_waiters();
        }
        if let Some(n) = open.1.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.address);
            }
        }
    }
}

/// The API's routes, for embedding in another server. Handlers expect
/// `ConnectInfo<SocketAddr>` (serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`).
pub fn router(recordings: Recordings, tokens: Option<Tokens>) -> Router {
    let api = Arc::new(Api {
        recordings,
        tokens,
        sessions: std::sync::Mutex::default(),
        listeners: live::Listeners::default(),
    });
    Router::new()
        .route(
            "/",
            get(|| async { page(PAGE_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(PAGE_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { page(PAGE_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/live-worklet.js",
            get(|| async { page(PAGE_LIVE_WORKLET, "text/javascript; charset=utf-8") }),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(
            "/api/session",
            get(session).post(auth::sign_in).delete(auth::sign_out),
        )
        .route("/api/recordings", get(recordings::search))
        .route(
            "/api/recordings/{id}",
            get(recordings::metadata).delete(recordings::delete),
        )
        .route("/api/recordings/{id}/audio", get(audio::audio))
        .route("/api/recordings/{id}/live", get(live::live))
        .route(
            "/api/recordings/{id}/hold",
            axum::routing::put(recordings::hold).delete(recordings::hold),
        )
        .route("/api/audit/verify", get(audit::verify))
        .route(
            "/api/import",
            axum::routing::post(import::import).layer(axum::extract::DefaultBodyLimit::max(
                import::MAX_IMPORT_BYTES,
            )),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            guard::guard,
        ))
        .with_state(api)
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Runs blocking index work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request's task failed: {e}"),
        )),
    }
}

/// Writes an access to a recording (`play`, `download`, `listen`, …) to
/// the audit log, off the async threads; the request fails when it cannot
/// be written.
async fn audit(
    api: &Arc<Api>,
    action: &'static str,
    recording_id: &str,
    actor: &crate::Actor,
    detail: Option<String>,
) -> Result<(), ApiError> {
    let recordings = api.recordings.clone();
    let actor = actor.clone();
    let recording_id = recording_id.to_owned();
    blocking(move || {
        let shared = &recordings.shared;
        shared.audit.append(
            &shared.audit_anchor(),
            crate::audit::AuditLine {
                action,
                recording_id: &recording_id,
                actor: &actor.name,
                address: actor.address,
                detail,
                time: crate::time::format_time_ms(crate::service::unix_ms()),
            },
        )
    })
    .await
}

/// A recording id from the path: 1–64 ASCII letters and digits.
pub(crate) fn recording_id(id: &str) -> Result<&str, ApiError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "recording id {:?} is not one (1 to 64 letters and digits)",
                truncate(id)
            ),
        ))
    }
}

/// At most the first 80 bytes of `text`, for quoting a value in an error.
fn truncate(text: &str) -> &str {
    let mut end = text.len().min(80);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

async fn healthz(State(api): State<Arc<Api>>) -> Response {
    let recordings = api.recordings.clone();
    let checked = blocking(move || {
        recordings.search(&index::Query {
            limit: 1,
            ..index::Query::default()
        })
    })
    .await;
    let free = fs4::available_space(&api.recordings.settings().dir).ok();
    let recordings = &api.recordings;
    match checked {
        Ok(_) => (
            StatusCode::OK,
            axum::Json(json!({
                "status": "ok",
                "free_bytes": free,
                "node": recordings.node(),
                "uploads_queued": recordings.uploads_queued(),
            })),
        )
            .into_response(),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the index {} cannot be read", recordings.index_location()),
        )
        .into_response(),
    }
}

async fn session(caller: Caller, State(api): State<Arc<Api>>) -> Response {
    axum::Json(json!({
        "name": caller.actor.name,
        "role": caller.role,
        "session": caller.session.is_some(),
        "node": api.recordings.node(),
    }))
    .into_response()
}

/// Prometheus text of the node's counters (see [`crate::metrics`]).
async fn metrics(caller: Caller, State(api): State<Arc<Api>>) -> Response {
    let _ = caller;
    let recordings = api.recordings.clone();
    let totals = blocking(move || recordings.shared.index.totals())
        .await
        .ok();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.recordings.metrics_text(totals),
    )
        .into_response()
}
