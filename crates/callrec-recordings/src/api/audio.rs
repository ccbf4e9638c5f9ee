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
use super::{Api, ApiError, audit, blocking, truncate};
use crate::Recordings;
use crate::audio::{ArchiveInput, ArchivePcmView, Pcm16View, RangeAnswer, Source, parse_range};
use crate::codec::ArchiveFormat;
use crate::index::ArchiveSummary;
use crate::index::RecordingSummary;
use crate::locate::Location;

/// The audio request's query string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AudioParams {
    format: Option<String>,
    download: Option<String>,
}

/// `GET`/`HEAD /api/recordings/{id}/audio[?format=wav|pcm16|rec|opus|flac][&download=true]`.
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
    let format = params.format.as_deref();
    if let Some(format) = format {
        if !matches!(format, "wav" | "pcm16" | "rec" | "opus" | "flac") {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "format={:?} is none of wav, pcm16, rec, opus, flac",
                    truncate(format)
                ),
            ));
        }
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
    let served = choose(&recording, format)?;
    let relative = served.relative.clone();
    let mut source = source_of(&api.recordings, &recording, &relative).await?;
    let file_len = source
        .len()
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))?;
    let unreadable = |e: String| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("recording {}: {e}", recording.recording_id),
        )
    };
    let view = match &served.view {
        View::Stored => None,
        View::Pcm16 => {
            let head = source
                .read_at(0, file_len.min(4096))
                .await
                .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
            Some(Converted::Wav(
                Pcm16View::new(&head, file_len).map_err(unreadable)?,
            ))
        }
        View::Decoded(format, archive) => Some(Converted::Archive(
            ArchivePcmView::new(*format, archive.rate, archive.channels, archive.frames)
                .map_err(unreadable)?,
        )),
    };
    let len = match &view {
        None => file_len,
        Some(Converted::Wav(view)) => view.len(),
        Some(Converted::Archive(view)) => view.len(),
    };
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
        let action = if download { "download" } else { "play" };
        let detail = Some(format!("format {}", served.name));
        audit(&api, action, &recording.recording_id, &caller.actor, detail).await?;
    }
    let body = match view {
        Some(Converted::Wav(view)) => Body::from_stream(view.stream(source, start, end)),
        Some(Converted::Archive(view)) => {
            let input = match source {
                sealed @ Source::Sealed { .. } => match sealed.into_sealed_reader() {
                    Some(reader) => ArchiveInput::Sealed(reader),
                    None => {
                        return Err(ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "the sealed archive's reader is shared",
                        ));
                    }
                },
                Source::File { file, .. } => ArchiveInput::File(file.into_std().await),
                Source::Object { .. } if file_len > MAX_ARCHIVE_READ => {
                    return Err(ApiError::new(
                        StatusCode::INSUFFICIENT_STORAGE,
                        format!(
                            "recording {}: its archive of {file_len} bytes is more than the \
                             {MAX_ARCHIVE_READ} this node decodes from the object store",
                            recording.recording_id
                        ),
                    ));
                }
                mut object => ArchiveInput::Bytes(
                    object
                        .read_at(0, file_len)
                        .await
                        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?,
                ),
            };
            Body::from_stream(view.stream(input, start, end))
        }
        None => Body::from_stream(
            source
                .stream(start, end)
                .await
                .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))?,
        ),
    };
    let (content_type, ext) = (served.content_type, served.extension);
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, end - start)
        .header(header::CACHE_CONTROL, "no-store");
    if let (Some(sha), false) = (&served.sha256, recording.running) {
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

/// Largest archive read whole from the object store to be decoded (an
/// hour of Opus is about 6 MB, of FLAC about 60 MB).
const MAX_ARCHIVE_READ: u64 = 512 << 20;

/// How a stored file is served.
enum View<'a> {
    /// As it is.
    Stored,
    /// A WAV converted to 16-bit PCM, sample by sample.
    Pcm16,
    /// An archive decoded to 16-bit PCM.
    Decoded(ArchiveFormat, &'a ArchiveSummary),
}

/// A converted representation.
enum Converted {
    Wav(Pcm16View),
    Archive(ArchivePcmView),
}

/// What a request for `format` of `recording` is answered with.
struct Served<'a> {
    /// The stored file read.
    relative: String,
    view: View<'a>,
    /// The format's name, for the audit log.
    name: &'static str,
    content_type: &'static str,
    extension: &'static str,
    /// The SHA-256 of what is sent, when it is a stored file whose hash
    /// is known (its ETag).
    sha256: Option<String>,
}

/// Chooses the file and view for `format` (`None`: the audio as stored,
/// the archive once there is one):
/// - `opus`, `flac`: the archive, as stored;
/// - `wav`: the WAV as stored while it is there, else the archive decoded
///   to a 16-bit PCM WAV;
/// - `pcm16`: a 16-bit PCM WAV, converted from the WAV or decoded from the
///   archive;
/// - `rec`: the phone's container.
fn choose<'a>(
    recording: &'a RecordingSummary,
    format: Option<&str>,
) -> Result<Served<'a>, ApiError> {
    let archive = recording
        .archive
        .as_ref()
        .zip(recording.archive_path.as_ref())
        .and_then(|(a, path)| Some((ArchiveFormat::of_kind(&a.format)?, a, path.clone())));
    let wav_sha256 = match &archive {
        Some((_, a, _)) => Some(a.wav_sha256.clone()),
        None => recording.sha256.clone(),
    };
    let stored_archive = |(format, a, path): (ArchiveFormat, &'a ArchiveSummary, String)| Served {
        relative: path,
        view: View::Stored,
        name: format.extension(),
        content_type: format.content_type(),
        extension: format.extension(),
        sha256: Some(a.sha256.clone()),
    };
    let decoded = |(format, a, path): (ArchiveFormat, &'a ArchiveSummary, String), name| Served {
        relative: path,
        view: View::Decoded(format, a),
        name,
        content_type: "audio/wav",
        extension: "wav",
        sha256: None,
    };
    let wav = |path: &String, view, name| Served {
        relative: path.clone(),
        view,
        name,
        content_type: "audio/wav",
        extension: "wav",
        sha256: if name == "wav" {
            wav_sha256.clone()
        } else {
            None
        },
    };
    // An archive the index knows only by its path (a sealed recording
    // entered from its file names): served as stored, by its extension.
    let bare_archive = || {
        let path = recording.archive_path.as_ref()?;
        let plain = path
            .strip_suffix(crate::seal::SEALED_SUFFIX)
            .unwrap_or(path);
        let format = ArchiveFormat::of_kind(plain.rsplit_once('.')?.1)?;
        Some(Served {
            relative: path.clone(),
            view: View::Stored,
            name: format.extension(),
            content_type: format.content_type(),
            extension: format.extension(),
            sha256: None,
        })
    };
    let served = match format {
        None => archive
            .map(stored_archive)
            .or_else(|| {
                recording
                    .wav_path
                    .as_ref()
                    .map(|p| wav(p, View::Stored, "wav"))
            })
            .or_else(bare_archive),
        Some(name @ ("opus" | "flac")) => archive
            .filter(|(f, _, _)| f.extension() == name)
            .map(stored_archive),
        Some("wav") => recording
            .wav_path
            .as_ref()
            .map(|p| wav(p, View::Stored, "wav"))
            .or_else(|| archive.map(|a| decoded(a, "wav"))),
        Some("pcm16") => recording
            .wav_path
            .as_ref()
            .map(|p| wav(p, View::Pcm16, "pcm16"))
            .or_else(|| archive.map(|a| decoded(a, "pcm16"))),
        Some(_) => recording.rec_path.as_ref().map(|p| Served {
            relative: p.clone(),
            view: View::Stored,
            name: "rec",
            content_type: "application/octet-stream",
            extension: "rec",
            sha256: None,
        }),
    };
    served.ok_or_else(|| {
        let kind = match format {
            Some("rec") => "phone container (.rec)",
            Some("opus") => "Opus archive",
            Some("flac") => "FLAC archive",
            _ => "audio",
        };
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "recording {} has no {kind} file (see the server's format and archive settings)",
                recording.recording_id
            ),
        )
    })
}

/// Opens the file `relative` of `recording` where [`Recordings::locate`]
/// finds it; a recording still on another node's disk is `503` with
/// `Retry-After` (it is uploaded when it ends).
async fn source_of(
    recordings: &Recordings,
    recording: &RecordingSummary,
    relative: &str,
) -> Result<Source, ApiError> {
    let source = plain_source_of(recordings, recording, relative).await?;
    if !relative.ends_with(crate::seal::SEALED_SUFFIX) {
        return Ok(source);
    }
    let identities = recordings.shared.identities.clone();
    if identities.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "recording {} is sealed, and this node has no identity to open it (--identity)",
                recording.recording_id
            ),
        ));
    }
    let unreadable = |e: String| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("recording {}: {e}", recording.recording_id),
        )
    };
    let reader = match source {
        Source::File { file, path } => {
            let file = file.into_std().await;
            tokio::task::spawn_blocking(move || {
                crate::seal::open_sealed(std::io::BufReader::new(file), &identities)
                    .map_err(|e| format!("{}: {e}", path.display()))
            })
            .await
            .map_err(|e| unreadable(e.to_string()))?
            .map_err(unreadable)?
        }
        mut object => {
            let len = object
                .len()
                .await
                .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e))?;
            if len > MAX_ARCHIVE_READ {
                return Err(ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    format!(
                        "recording {}: its sealed file of {len} bytes is more than the \
                         {MAX_ARCHIVE_READ} this node opens from the object store",
                        recording.recording_id
                    ),
                ));
            }
            let bytes = object
                .read_at(0, len)
                .await
                .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
            tokio::task::spawn_blocking(move || {
                crate::seal::open_sealed(std::io::Cursor::new(bytes), &identities)
            })
            .await
            .map_err(|e| unreadable(e.to_string()))?
            .map_err(unreadable)?
        }
    };
    Source::sealed(reader).await.map_err(unreadable)
}

/// Opens the stored file `relative` of `recording` where
/// [`Recordings::locate`] finds it, as it is stored; a recording still on
/// another node's disk is `503` with `Retry-After` (it is uploaded when it
/// ends).
async fn plain_source_of(
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
