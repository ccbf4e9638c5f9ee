//! `POST /api/import`: a phone's own recording files, uploaded as
//! `multipart/form-data`, taken in as recordings (admin).

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::auth::Caller;
use super::{Api, ApiError, blocking, truncate};
use crate::Error;
use crate::import::{ImportRequest, parse_name};
use crate::settings::STATE_DIR;
use crate::tokens::Role;

/// Largest upload of one import request, all files together (an hour of
/// G.722 from a phone is about 58 MB).
pub(super) const MAX_IMPORT_BYTES: usize = 1 << 30;

/// Files in one import request at most.
const MAX_FILES: usize = 1000;

/// The import request's query string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportParams {
    device: String,
    number: Option<String>,
    remote_number: Option<String>,
}

/// `POST /api/import?device=MAC[&number=N][&remote_number=R]` (admin), a
/// `multipart/form-data` body with one part per file, each named by its
/// `filename` as the phone named it (`Record_YYYYMMDD_HHMMSS.wav`,
/// `…_1.wav`, …). Answers `{"imported": [{"recording_id", "files",
/// "duration_ms"}]}`; `409` when a file was imported before, `422` when
/// one is not a phone's recording.
pub(super) async fn import(
    caller: Caller,
    State(api): State<Arc<Api>>,
    params: Result<Query<ImportParams>, QueryRejection>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin)?;
    let Query(params) = params?;
    let mut multipart =
        multipart.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let recordings = api.recordings.clone();
    let mut random = [0u8; 8];
    getrandom::fill(&mut random)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let staging = recordings
        .shared
        .settings
        .dir
        .join(STATE_DIR)
        .join("import")
        .join(crate::store::hex(&random));
    let staged = stage(&mut multipart, &staging).await;
    let files = match staged {
        Ok(files) => files,
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&staging).await;
            return Err(e);
        }
    };
    let request = ImportRequest {
        device: params.device,
        local_number: params.number.unwrap_or_default(),
        remote_number: params.remote_number.unwrap_or_default(),
        files,
    };
    let actor = caller.actor;
    let done = blocking(move || {
        let result = recordings.import(&request, &actor);
        let _ = std::fs::remove_dir_all(&staging);
        // Name the files as the client did, not where they were staged.
        result.map_err(|e| match e {
            Error::Import { path, message } => Error::Import {
                path: path.file_name().map_or(path.clone(), PathBuf::from),
                message,
            },
            Error::AlreadyImported { path, recording_id } => Error::AlreadyImported {
                path: path.file_name().map_or(path.clone(), PathBuf::from),
                recording_id,
            },
            e => e,
        })
    })
    .await?;
    let imported: Vec<_> = done
        .iter()
        .map(|i| {
            json!({
                "recording_id": i.recording_id,
                "files": i.files.iter().filter_map(|f| f.file_name()).map(|f| f.to_string_lossy()).collect::<Vec<_>>(),
                "duration_ms": i.duration_ms,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "imported": imported })).into_response())
}

/// Writes each part to `staging` under its file name, which must be a
/// phone recording's.
async fn stage(
    multipart: &mut Multipart,
    staging: &std::path::Path,
) -> Result<Vec<PathBuf>, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
    tokio::fs::create_dir_all(staging).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot create {}: {e}", staging.display()),
        )
    })?;
    let mut files = Vec::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(format!("the multipart body: {e}")))?
    {
        let name = field.file_name().unwrap_or_default().to_owned();
        let plain = std::path::Path::new(&name)
            .file_name()
            .is_some_and(|n| n == name.as_str());
        if !plain || parse_name(std::path::Path::new(&name)).is_none() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "part file name {:?} is not a phone recording's (Record_YYYYMMDD_HHMMSS.wav, or _1, _2 … for its parts)",
                    truncate(&name)
                ),
            ));
        }
        if files.len() >= MAX_FILES {
            return Err(bad(format!("more than {MAX_FILES} files")));
        }
        let path = staging.join(&name);
        if files.contains(&path) {
            return Err(bad(format!("{name:?} is given twice")));
        }
        let mut out = tokio::fs::File::create(&path).await.map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot create {}: {e}", path.display()),
            )
        })?;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| bad(format!("the multipart body: {e}")))?
        {
            out.write_all(&chunk).await.map_err(|e| {
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
        }
        out.flush().await.map_err(|e| {
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
        files.push(path);
    }
    if files.is_empty() {
        return Err(bad("no files in the request".to_owned()));
    }
    Ok(files)
}
