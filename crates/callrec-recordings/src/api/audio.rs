//! A recording's audio: playback and download, byte ranges, the stored
//! WAV or phone container as it is, or 16-bit PCM for browsers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::auth::Caller;
use super::recordings::find;
use super::{Api, ApiError, blocking, truncate};
use crate::Recordings;
use crate::audio::{Pcm16View, RangeAnswer, Source, parse_range};
use crate::index::RecordingSummary;
use crate::locate::Location;

/// The audio request's query string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AudioParams {
    format: Option<String>,
    download: Option<String>,
}

/// `GET`/`HEAD /api/recordings/{id}/audio[?format=wav|pcm16|rec][&download=true]`.
pub(super) async fn audio(
    caller: Caller,
    method: Method,
    State(api): State<Arc<Api>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    params: Result<Query<AudioParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let Query(params) = params?;
    let format = params.format.as_deref().unwrap_or("wav");
    if !matches!(format, "wav" | "pcm16" | "rec") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("format={:?} is none of wav, pcm16, rec", truncate(format)),
        ));
    }
    let download = match params.download.as_deref() {
        None | Some("0" | "false") => false,
        Some("1" | "true" | "") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("download={:?} is neither true nor false", truncate(other)),
            ));
        }
    };
    let recording = find(&api, &id).await?;
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
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "recording {} has no {kind} file (see the server's format setting)",
                recording.recording_id
            ),
        ));
    };
    let mut source = source_of(&api.recordings, &recording, &relative).await?;
    let file_len = source
        .len()
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))?;
    let view = if format == "pcm16" {
        let head = source
            .read_at(0, file_len.min(4096))
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
        let view = Pcm16View::new(&head, file_len).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("recording {}: {e}", recording.recording_id),
            )
        })?;
        Some(view)
    } else {
        None
    };
    let len = view.as_ref().map_or(file_len, Pcm16View::len);
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let answer = parse_range(range, len);
    if answer == RangeAnswer::Unsatisfiable {
        let error = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!(
                "the range {:?} starts past the end ({len} bytes)",
                range.map(truncate).unwrap_or("")
            ),
        );
        return Err(match HeaderValue::from_str(&format!("bytes */{len}")) {
            Ok(value) => error.with_header(header::CONTENT_RANGE, value),
            Err(_) => error,
        });
    }
    let (start, end) = match answer {
        RangeAnswer::Partial(start, end) => (start, end),
        _ => (0, len),
    };
    // A playback (`play`) or download (`download`) that starts at the
    // beginning is logged; the range requests of a seeking player after it
    // are not, nor a HEAD (which reads nothing). The page's player loads
    // nothing before it plays (preload="none"), so opening a recording's
    // details logs nothing.
    if start == 0 && method != Method::HEAD {
        let recordings = api.recordings.clone();
        let actor = caller.actor.clone();
        let recording_id = recording.recording_id.clone();
        let detail = Some(format!("format {format}"));
        blocking(move || {
            let shared = &recordings.shared;
            shared.audit.append(
                &shared.audit_anchor(),
                crate::audit::AuditLine {
                    action: if download { "download" } else { "play" },
                    recording_id: &recording_id,
                    actor: &actor.name,
                    address: actor.address,
                    detail,
                    time: crate::time::format_time_ms(crate::service::unix_ms()),
                },
            )
        })
        .await?;
    }
    let body = match view {
        Some(view) => Body::from_stream(view.stream(source, start, end)),
        None => Body::from_stream(
            source
                .stream(start, end)
                .await
                .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))?,
        ),
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
        .header(header::CACHE_CONTROL, "no-store");
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
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Opens the file `relative` of `recording` where [`Recordings::locate`]
/// finds it; a recording still on another node's disk is `503` with
/// `Retry-After` (it is uploaded when it ends).
async fn source_of(
    recordings: &Recordings,
    recording: &RecordingSummary,
    relative: &str,
) -> Result<Source, ApiError> {
    let unavailable = |message: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message);
    match recordings.locate(recording, relative)? {
        Location::Object { store, key } => Ok(Source::Object { store, key }),
        Location::NoStore => Err(unavailable(format!(
            "recording {} is in the object store, and this node has none (--store)",
            recording.recording_id
        ))),
        Location::OtherNode(node) => Err(unavailable(format!(
            "recording {} is on node {node}'s disk until it is uploaded; try again shortly",
            recording.recording_id
        ))
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))),
        Location::Disk(path) => match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Source::File { file, path }),
            Err(e) => {
                // Uploaded (and removed here) since the index was read?
                let (again, id) = (recordings.clone(), recording.recording_id.clone());
                if let Ok(Some(now)) = blocking(move || again.get(&id)).await {
                    if let Location::Object { store, key } = recordings.locate(&now, relative)? {
                        return Ok(Source::Object { store, key });
                    }
                }
                Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "the audio of recording {} cannot be opened: {e}",
                        recording.recording_id
                    ),
                ))
            }
        },
    }
}
