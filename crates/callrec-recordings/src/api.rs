//! The HTTP API and the web page.

// Handlers return `Result<_, Response>`: the error is the answer itself,
// built once per failed request, not a value passed along hot paths.
#![allow(clippy::result_large_err)]

use core::fmt::Write as _;
use core::net::SocketAddr;
use core::sync::atomic::Ordering;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::audio::{Pcm16View, RangeAnswer, Source, parse_range};
use crate::index::{self, Cursor, MAX_LIMIT, MAX_TERM_LEN, RecordingSummary};
use crate::time::parse_time_ms;
use crate::tokens::{Role, Tokens};
use crate::{Actor, Error, Recordings};

/// The name of the cookie the web page keeps its token in (sent with the
/// audio element's requests, which cannot carry a header).
pub const TOKEN_COOKIE: &str = "callrec_token";

const PAGE_HTML: &str = include_str!("../page/index.html");
const PAGE_JS: &str = include_str!("../page/app.js");
const PAGE_CSS: &str = include_str!("../page/style.css");

struct Api {
    recordings: Recordings,
    tokens: Option<Tokens>,
}

/// The HTTP API, bound and ready to serve.
#[derive(Debug)]
pub struct HttpApi {
    listener: tokio::net::TcpListener,
    router: Router,
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
        })
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets running requests end.
    ///
    /// # Errors
    /// An accept error that is not about one connection.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

/// The API's routes, for embedding in another server. Handlers expect
/// `ConnectInfo<SocketAddr>` (serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`).
pub fn router(recordings: Recordings, tokens: Option<Tokens>) -> Router {
    let api = Arc::new(Api { recordings, tokens });
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
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/session", get(session))
        .route("/api/recordings", get(search))
        .route("/api/recordings/{id}", get(metadata).delete(delete))
        .route("/api/recordings/{id}/audio", get(audio))
        .route(
            "/api/recordings/{id}/hold",
            axum::routing::put(hold).delete(hold),
        )
        .route("/api/audit/verify", get(verify_audit))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "no such endpoint".into()) })
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

/// `{"error": message}` with `status`.
fn problem(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn error_response(e: &Error) -> Response {
    let status = match e {
        Error::UnknownRecording(_) => StatusCode::NOT_FOUND,
        Error::Busy { .. } => StatusCode::CONFLICT,
        _ => {
            tracing::error!("API: {e}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    problem(status, e.to_string())
}

/// Runs blocking index work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error_response(&e)),
        Err(e) => Err(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request's task failed: {e}"),
        )),
    }
}

/// Who is asking and what they may do; an extractor that answers 401
/// itself.
struct Caller {
    role: Role,
    actor: Actor,
}

impl Caller {
    fn require(&self, role: Role) -> Result<(), Response> {
        if self.role >= role {
            Ok(())
        } else {
            Err(problem(
                StatusCode::FORBIDDEN,
                format!(
                    "token {:?} may only read; this needs an admin token",
                    self.actor.name
                ),
            ))
        }
    }
}

fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == TOKEN_COOKIE && !value.is_empty()).then_some(value)
        })
}

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, Response> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string());
        let Some(tokens) = &api.tokens else {
            return Ok(Self {
                role: Role::Admin,
                actor: Actor::new("loopback", address),
            });
        };
        let unauthorized = |message: &str| {
            let mut response = problem(StatusCode::UNAUTHORIZED, message.to_owned());
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        };
        let token = presented_token(&parts.headers)
            .ok_or_else(|| unauthorized("an API token is needed (Authorization: Bearer TOKEN)"))?;
        let (role, name) = tokens
            .check(token)
            .ok_or_else(|| unauthorized("the API token is not known to this server"))?;
        Ok(Self {
            role,
            actor: Actor::new(name, address),
        })
    }
}

/// A recording id from the path: 1–64 ASCII letters and digits.
fn recording_id(id: &str) -> Result<&str, Response> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(id)
    } else {
        Err(problem(
            StatusCode::BAD_REQUEST,
            format!(
                "recording id {:?} is not one (1 to 64 letters and digits)",
                truncate(id)
            ),
        ))
    }
}

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
        Err(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the index {} cannot be read", recordings.index_location()),
        ),
    }
}

async fn session(caller: Caller) -> Response {
    axum::Json(json!({ "name": caller.actor.name, "role": caller.role })).into_response()
}

/// The search's parameters as the query string gives them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchParams {
    device: Option<String>,
    number: Option<String>,
    direction: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub(crate) fn query_of(params: SearchParams) -> Result<index::Query, String> {
    let term = |name: &str, value: Option<String>| -> Result<Option<String>, String> {
        match value.map(|v| v.trim().to_owned()) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) if v.len() > MAX_TERM_LEN => Err(format!(
                "{name} is {} bytes long; at most {MAX_TERM_LEN}",
                v.len()
            )),
            Some(v) => Ok(Some(v)),
        }
    };
    let time = |name: &str,
                value: Option<String>,
                end_of_day: bool|
     -> Result<Option<i64>, String> {
        let Some(text) = term(name, value)? else {
            return Ok(None);
        };
        let ms = parse_time_ms(&text).ok_or_else(|| {
            format!("{name}={text:?} is not a date (YYYY-MM-DD) or an RFC 3339 time (2026-12-01T08:00:00Z)")
        })?;
        // A bare date as `to` means the whole of that day.
        Ok(Some(if end_of_day && text.len() == 10 {
            ms + 86_400_000
        } else {
            ms
        }))
    };
    let direction = term("direction", params.direction)?;
    if let Some(d) = &direction {
        if d != "in" && d != "out" {
            return Err(format!("direction={d:?} is neither in nor out"));
        }
    }
    let limit = match term("limit", params.limit)? {
        None => 0,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(format!(
                    "limit={text:?} is not a number from 1 to {MAX_LIMIT}"
                ));
            }
        },
    };
    let cursor = term("cursor", params.cursor)?
        .map(|c| c.parse::<Cursor>())
        .transpose()?;
    let query = index::Query {
        device: term("device", params.device)?,
        number: term("number", params.number)?,
        direction,
        from_ms: time("from", params.from, false)?,
        to_ms: time("to", params.to, true)?,
        text: term("q", params.q)?,
        limit,
        cursor,
    };
    if let (Some(from), Some(to)) = (query.from_ms, query.to_ms) {
        if from >= to {
            return Err("from is not before to".into());
        }
    }
    Ok(query)
}

fn bad_query(rejection: QueryRejection) -> Response {
    problem(StatusCode::BAD_REQUEST, rejection.body_text())
}

async fn search(
    caller: Caller,
    State(api): State<Arc<Api>>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Response {
    let _ = caller;
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return bad_query(rejection),
    };
    let query = match query_of(params) {
        Ok(query) => query,
        Err(message) => return problem(StatusCode::BAD_REQUEST, message),
    };
    let recordings = api.recordings.clone();
    match blocking(move || recordings.search(&query)).await {
        Ok(page) => axum::Json(page).into_response(),
        Err(response) => response,
    }
}

async fn find(api: &Arc<Api>, id: &str) -> Result<RecordingSummary, Response> {
    let id = recording_id(id)?.to_owned();
    let recordings = api.recordings.clone();
    let found = blocking(move || recordings.get(&id).map(|r| (r, id))).await?;
    match found {
        (Some(recording), _) => Ok(recording),
        (None, id) => Err(error_response(&Error::UnknownRecording(id))),
    }
}

async fn metadata(caller: Caller, State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    let _ = caller;
    let recording = match find(&api, &id).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let sidecar = {
        let (recordings, recording) = (api.recordings.clone(), recording.clone());
        tokio::task::spawn_blocking(move || recordings.sidecar(&recording))
            .await
            .ok()
            .flatten()
    };
    let mut body = serde_json::to_value(&recording).unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.insert(
            "sidecar".into(),
            serde_json::to_value(sidecar).unwrap_or_default(),
        );
    }
    axum::Json(body).into_response()
}

async fn delete(caller: Caller, State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    if let Err(response) = caller.require(Role::Admin) {
        return response;
    }
    let id = match recording_id(&id) {
        Ok(id) => id.to_owned(),
        Err(response) => return response,
    };
    let recordings = api.recordings.clone();
    let actor = caller.actor;
    match blocking(move || recordings.delete(&id, &actor).map(|bytes| (id, bytes))).await {
        Ok((id, bytes)) => axum::Json(json!({ "deleted": id, "bytes": bytes })).into_response(),
        Err(response) => response,
    }
}

async fn hold(
    caller: Caller,
    method: Method,
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = caller.require(Role::Admin) {
        return response;
    }
    let id = match recording_id(&id) {
        Ok(id) => id.to_owned(),
        Err(response) => return response,
    };
    let on = method == Method::PUT;
    let recordings = api.recordings.clone();
    let actor = caller.actor;
    match blocking(move || recordings.set_hold(&id, on, &actor).map(|()| id)).await {
        Ok(id) => axum::Json(json!({ "recording_id": id, "hold": on })).into_response(),
        Err(response) => response,
    }
}

async fn verify_audit(caller: Caller, State(api): State<Arc<Api>>) -> Response {
    if let Err(response) = caller.require(Role::Admin) {
        return response;
    }
    let recordings = api.recordings.clone();
    let report = tokio::task::spawn_blocking(move || recordings.verify_audit()).await;
    match report {
        Ok(Ok(report)) => axum::Json(json!({
            "valid": true, "entries": report.entries, "head": report.head
        }))
        .into_response(),
        Ok(Err(e)) => axum::Json(json!({ "valid": false, "error": e.to_string() })).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AudioParams {
    format: Option<String>,
    download: Option<String>,
}

async fn audio(
    caller: Caller,
    method: Method,
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Result<Query<AudioParams>, QueryRejection>,
) -> Response {
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return bad_query(rejection),
    };
    let format = params.format.as_deref().unwrap_or("wav");
    if !matches!(format, "wav" | "pcm16" | "rec") {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("format={:?} is none of wav, pcm16, rec", truncate(format)),
        );
    }
    let download = match params.download.as_deref() {
        None | Some("0" | "false") => false,
        Some("1" | "true" | "") => true,
        Some(other) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("download={:?} is neither true nor false", truncate(other)),
            );
        }
    };
    let recording = match find(&api, &id).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let stored = if format == "rec" {
        &recording.rec_path
    } else {
        &recording.wav_path
    };
    let Some(relative) = stored.clone() else {
        let kind = if format == "rec" {
            "phone container (.rec)"
        } else {
            "WAV"
        };
        return problem(
            StatusCode::NOT_FOUND,
            format!(
                "recording {} has no {kind} file (see the server's format setting)",
                recording.recording_id
            ),
        );
    };
    let mut source = match source_of(&api.recordings, &recording, &relative).await {
        Ok(source) => source,
        Err(response) => return response,
    };
    let file_len = match source.len().await {
        Ok(len) => len,
        Err(e) => return problem(StatusCode::BAD_GATEWAY, e),
    };
    let view = if format == "pcm16" {
        let head = match source.read_at(0, file_len.min(4096)).await {
            Ok(head) => head,
            Err(e) => return problem(StatusCode::BAD_GATEWAY, e.to_string()),
        };
        match Pcm16View::new(&head, file_len) {
            Ok(view) => Some(view),
            Err(e) => {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("recording {}: {e}", recording.recording_id),
                );
            }
        }
    } else {
        None
    };
    let len = view.as_ref().map_or(file_len, Pcm16View::len);
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let answer = parse_range(range, len);
    if answer == RangeAnswer::Unsatisfiable {
        let mut response = problem(
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!(
                "the range {:?} starts past the end ({len} bytes)",
                range.map(truncate).unwrap_or("")
            ),
        );
        if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        return response;
    }
    let (start, end) = match answer {
        RangeAnswer::Partial(start, end) => (start, end),
        _ => (0, len),
    };
    // A playback or download that starts at the beginning is logged;
    // the range requests of a seeking player after it are not, nor a HEAD
    // (which reads nothing).
    if start == 0 && method != Method::HEAD {
        let recordings = api.recordings.clone();
        let actor = caller.actor.clone();
        let recording_id = recording.recording_id.clone();
        let detail = Some(format!("format {format}"));
        let logged = blocking(move || {
            recordings.shared.audit.append(
                "download",
                &recording_id,
                &actor.name,
                actor.address,
                detail,
                crate::time::format_time_ms(crate::service::unix_ms()),
            )
        })
        .await;
        if let Err(response) = logged {
            return response;
        }
    }
    let body = match view {
        Some(view) => Body::from_stream(view.stream(source, start, end)),
        None => match source.stream(start, end).await {
            Ok(stream) => Body::from_stream(stream),
            Err(e) => return problem(StatusCode::BAD_GATEWAY, e),
        },
    };
    let content_type = match format {
        "rec" => "application/octet-stream",
        _ => "audio/wav",
    };
    let ext = if format == "rec" { "rec" } else { "wav" };
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, end - start)
        .header(header::CACHE_CONTROL, "private, no-cache");
    if let (Some(sha), false) = (&recording.sha256, format == "pcm16" || recording.running) {
        builder = builder.header(header::ETAG, format!("\"{sha}\""));
    }
    if download {
        builder = builder.header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}.{ext}\"", recording.recording_id),
        );
    }
    if let RangeAnswer::Partial(..) = answer {
        builder = builder.status(StatusCode::PARTIAL_CONTENT).header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    builder
        .body(body)
        .unwrap_or_else(|e| problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Where the file `relative` of `recording` is read from: the object store
/// once it is uploaded, this node's disk until then; a recording still on
/// another node's disk is `503` with `Retry-After` (it is uploaded when it
/// ends).
async fn source_of(
    recordings: &Recordings,
    recording: &RecordingSummary,
    relative: &str,
) -> Result<Source, Response> {
    let object = |recording: &RecordingSummary| match &recordings.shared.store {
        Some((store, _)) => Ok(Source::Object {
            store: store.clone(),
            key: store.key(relative),
        }),
        None => Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "recording {} is in the object store, and this node has none (--store)",
                recording.recording_id
            ),
        )),
    };
    if recording.uploaded {
        return object(recording);
    }
    if !recordings.is_local(recording) {
        let mut response = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "recording {} is on node {}'s disk until it is uploaded; try again shortly",
                recording.recording_id, recording.node
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return Err(response);
    }
    let path = recordings.file(relative).map_err(|e| error_response(&e))?;
    match tokio::fs::File::open(&path).await {
        Ok(file) => Ok(Source::File { file, path }),
        Err(e) => {
            // Uploaded (and removed here) since the index was read?
            let (again, id) = (recordings.clone(), recording.recording_id.clone());
            if let Ok(Some(now)) = blocking(move || again.get(&id)).await {
                if now.uploaded {
                    return object(&now);
                }
            }
            Err(problem(
                StatusCode::NOT_FOUND,
                format!(
                    "the audio of recording {} cannot be opened: {e}",
                    recording.recording_id
                ),
            ))
        }
    }
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(caller: Caller, State(api): State<Arc<Api>>) -> Response {
    let _ = caller;
    let recordings = api.recordings.clone();
    let totals = blocking(move || recordings.shared.index.totals()).await;
    let shared = &api.recordings.shared;
    let live = &shared.live;
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |v: u64| [(String::new(), v)];
    let get = |c: &core::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    if let Some(c) = shared.counters.get() {
        let started = get(&c.recordings_started);
        let finished = get(&c.recordings_finished);
        metric(
            "callrec_recordings_active",
            "gauge",
            "Recordings running now.",
            &one(started.saturating_sub(finished)),
        );
        metric(
            "callrec_recordings_started_total",
            "counter",
            "Recordings started.",
            &one(started),
        );
        metric(
            "callrec_recordings_finished_total",
            "counter",
            "Recordings finished (files final).",
            &one(finished),
        );
        let refusals: Vec<(String, u64)> = c
            .refusals()
            .iter()
            .map(|(reason, n)| (format!("{{reason=\"{reason}\"}}"), *n))
            .collect();
        metric(
            "callrec_start_refused_total",
            "counter",
            "Start requests refused, by reason.",
            &refusals,
        );
        metric(
            "callrec_connections_total",
            "counter",
            "Control connections accepted.",
            &one(get(&c.connections)),
        );
        metric(
            "callrec_connections_refused_total",
            "counter",
            "Control connections refused (limits).",
            &one(get(&c.connections_refused)),
        );
        metric(
            "callrec_rtp_datagrams_total",
            "counter",
            "UDP datagrams read on RTP ports.",
            &one(get(&c.packets)),
        );
    }
    metric(
        "callrec_rtp_packets_received_total",
        "counter",
        "RTP packets of the calls' streams.",
        &one(get(&live.packets_received)),
    );
    metric(
        "callrec_rtp_packets_lost_total",
        "counter",
        "RTP packets never received (filled with silence).",
        &one(get(&live.packets_lost)),
    );
    metric(
        "callrec_rtp_packets_foreign_total",
        "counter",
        "Datagrams from senders a call is not locked onto.",
        &one(get(&live.packets_foreign)),
    );
    metric(
        "callrec_rtp_packets_malformed_total",
        "counter",
        "Datagrams that are not RTP.",
        &one(get(&live.packets_malformed)),
    );
    metric(
        "callrec_audio_bytes_written_total",
        "counter",
        "Audio payload bytes written.",
        &one(get(&live.bytes_written)),
    );
    if let Ok(free) = fs4::available_space(&shared.settings.dir) {
        metric(
            "callrec_disk_free_bytes",
            "gauge",
            "Free space where recordings go.",
            &one(free),
        );
    }
    if let Ok((bytes, count)) = totals {
        metric(
            "callrec_recordings_stored",
            "gauge",
            "Recordings in the index.",
            &one(count),
        );
        metric(
            "callrec_recordings_stored_bytes",
            "gauge",
            "Bytes the indexed recordings take.",
            &one(bytes),
        );
    }
    metric(
        "callrec_index_entries_written_total",
        "counter",
        "Index writes of recordings (start and end).",
        &one(get(&live.indexed)),
    );
    metric(
        "callrec_index_errors_total",
        "counter",
        "Recordings the index could not enter (--reindex does).",
        &one(get(&live.index_errors)),
    );
    metric(
        "callrec_index_available",
        "gauge",
        "1 while the index answers (new calls are refused while it does not).",
        &one(u64::from(shared.index.available())),
    );
    if shared.store.is_some() {
        metric(
            "callrec_uploads_total",
            "counter",
            "Recordings uploaded to the object store and verified.",
            &one(get(&live.uploads)),
        );
        metric(
            "callrec_upload_bytes_total",
            "counter",
            "Bytes uploaded to the object store and verified.",
            &one(get(&live.upload_bytes)),
        );
        metric(
            "callrec_upload_failures_total",
            "counter",
            "Upload attempts that failed (each is tried again).",
            &one(get(&live.upload_failures)),
        );
        metric(
            "callrec_uploads_queued",
            "gauge",
            "Recordings on this node's disk waiting for upload.",
            &one(shared.uploads.len()),
        );
    }
    metric(
        "callrec_retention_deleted_total",
        "counter",
        "Recordings deleted by retention.",
        &one(get(&live.retention_deleted)),
    );
    metric(
        "callrec_audit_entries",
        "gauge",
        "Lines in the audit log.",
        &one(shared.audit.entries()),
    );
    let devices: Vec<(String, u64)> = {
        let map = live.devices.lock().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<_> = map
            .iter()
            .map(|(device, ms)| {
                (
                    format!("{{device=\"{}\"}}", label(device)),
                    (*ms / 1000).max(0) as u64,
                )
            })
            .collect();
        list.sort();
        list
    };
    metric(
        "callrec_device_last_recording_timestamp_seconds",
        "gauge",
        "Unix time of each phone's latest recording start (alert when it grows old).",
        &devices,
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
