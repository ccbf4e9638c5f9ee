//! The recordings as a resource: search, metadata, delete, legal hold.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::{Api, ApiError, blocking, recording_id};
use crate::Error;
use crate::index::{self, Cursor, MAX_LIMIT, MAX_TERM_LEN, RecordingSummary};
use crate::time::parse_time_ms;
use crate::tokens::Role;
use callrec_control::Mac;

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

/// The index's query from the search's parameters, or what is wrong with
/// them, naming the parameter and its value.
pub(crate) fn query_of(params: SearchParams) -> Result<index::Query, String> {
    let term = |name: &str, value: Option<String>| -> Result<Option<String>, String> {
        match value.map(|v| v.trim().to_owned()) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) if v.len() > MAX_TERM_LEN => Err(format!(
                "{name} is {} bytes long; at most {MAX_TERM_LEN}",
                v.len()
            )),
            Some(v) if v.chars().any(char::is_control) => Err(format!(
                "{name}={:?} holds a control character",
                super::truncate(&v)
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
    // Digits only: no sign, no spaces around.
    let limit = match params.limit.as_deref() {
        None | Some("") => 0,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) && text.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(format!(
                    "limit={:?} is not a number from 1 to {MAX_LIMIT}",
                    super::truncate(text)
                ));
            }
        },
    };
    let cursor = term("cursor", params.cursor)?
        .map(|c| c.parse::<Cursor>())
        .transpose()?;
    // Devices are MAC addresses, in any of their common spellings; the
    // index holds the 12 lowercase hex digits of `Mac`'s display.
    let device = term("device", params.device)?
        .map(|text| {
            text.parse::<Mac>().map(|mac| mac.to_string()).map_err(|_| {
                format!(
                    "device={:?} is not a MAC address (12 hex digits, or 6 pairs split by : or -, or 3 quads split by .)",
                    super::truncate(&text)
                )
            })
        })
        .transpose()?;
    let query = index::Query {
        device,
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

/// `GET /api/recordings`: one page of a search, newest first.
pub(super) async fn search(
    caller: Caller,
    State(api): State<Arc<Api>>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let _ = caller;
    let Query(params) = params?;
    let query =
        query_of(params).map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, message))?;
    let recordings = api.recordings.clone();
    let page = blocking(move || recordings.search(&query)).await?;
    Ok(axum::Json(page).into_response())
}

/// The recording with the id of a request's path, or `404`.
pub(super) async fn find(api: &Arc<Api>, id: &str) -> Result<RecordingSummary, ApiError> {
    let id = recording_id(id)?.to_owned();
    let recordings = api.recordings.clone();
    let found = blocking(move || recordings.get(&id).map(|r| (r, id))).await?;
    match found {
        (Some(recording), _) => Ok(recording),
        (None, id) => Err(Error::UnknownRecording(id).into()),
    }
}

/// `GET /api/recordings/{id}`: the index's entry and the sidecar.
pub(super) async fn metadata(
    caller: Caller,
    State(api): State<Arc<Api>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let _ = caller;
    let recording = find(&api, &id).await?;
    let sidecar = api.recordings.sidecar(&recording).await;
    // A call running on another node of a pool is heard there.
    let node_url = if recording.running && recording.node != api.recordings.node() {
        let recordings = api.recordings.clone();
        let node = recording.node.clone();
        blocking(move || recordings.shared.index.public_url(&node))
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let mut body = serde_json::to_value(&recording).unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.insert(
            "sidecar".into(),
            serde_json::to_value(sidecar).unwrap_or_default(),
        );
        if let Some(url) = node_url {
            object.insert("node_url".into(), url.into());
        }
    }
    Ok(axum::Json(body).into_response())
}

/// `DELETE /api/recordings/{id}` (admin).
pub(super) async fn delete(
    caller: Caller,
    State(api): State<Arc<Api>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    caller.require(Role::Admin)?;
    let id = recording_id(&id)?.to_owned();
    let recordings = api.recordings.clone();
    let actor = caller.actor;
    let (id, bytes) =
        blocking(move || recordings.delete(&id, &actor).map(|bytes| (id, bytes))).await?;
    Ok(axum::Json(json!({ "deleted": id, "bytes": bytes })).into_response())
}

/// `PUT` (hold) or `DELETE` (release) `/api/recordings/{id}/hold` (admin).
pub(super) async fn hold(
    caller: Caller,
    method: Method,
    State(api): State<Arc<Api>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    caller.require(Role::Admin)?;
    let id = recording_id(&id)?.to_owned();
    let on = method == Method::PUT;
    let recordings = api.recordings.clone();
    let actor = caller.actor;
    let id = blocking(move || recordings.set_hold(&id, on, &actor).map(|()| id)).await?;
    Ok(axum::Json(json!({ "recording_id": id, "hold": on })).into_response())
}
