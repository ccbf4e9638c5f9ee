//! The audit log as a resource: checking its chain.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::Caller;
use super::{Api, ApiError};
use crate::Error;
use crate::tokens::Role;

/// `GET /api/audit/verify` (admin): whether the chain is intact and ends
/// where the index's anchor says; a broken one is a `200` with
/// `valid: false` and what is wrong (an index that does not answer is the
/// index's error, not a verdict on the log).
pub(super) async fn verify(
    caller: Caller,
    State(api): State<Arc<Api>>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let recordings = api.recordings.clone();
    let report = tokio::task::spawn_blocking(move || recordings.verify_audit())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(match report {
        Ok(report) => axum::Json(json!({
            "valid": true, "entries": report.entries, "head": report.head,
            "anchored": report.anchored,
        }))
        .into_response(),
        Err(e @ (Error::Audit { .. } | Error::Io { .. })) => {
            axum::Json(json!({ "valid": false, "error": e.to_string() })).into_response()
        }
        Err(e) => return Err(e.into()),
    })
}
