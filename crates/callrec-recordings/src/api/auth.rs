//! Who calls the API and what they may do: a bearer token in the
//! `Authorization` header, or the page's session cookie (set by signing in
//! with a token, `HttpOnly`, so no script holds the token), checked
//! against [`Tokens`]; or anyone on loopback when the node has no tokens.

use core::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Api, ApiError};
use crate::Actor;
use crate::sessions::{SESSION_COOKIE, SESSION_LIFETIME_MS};
use crate::tokens::Role;

/// Who is asking and what they may do; an extractor that answers 401
/// itself.
pub(super) struct Caller {
    pub(super) role: Role,
    pub(super) actor: Actor,
    /// The page's session it came with (the page then offers to sign
    /// out); a live listen ends when it does.
    pub(super) session: Option<String>,
}

impl Caller {
    /// `403` unless the caller has `role` or more.
    pub(super) fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "token {:?} has the role {}; this needs the role {}",
                    self.actor.name,
                    self.role.name(),
                    role.name()
                ),
            ))
        }
    }
}

/// The token of an `Authorization: Bearer` header. Another scheme (a
/// proxy's `Basic`) is not this API's and is ignored.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// `401` saying what is missing or wrong, with `WWW-Authenticate: Bearer`.
fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

/// The session id of the page's cookie.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE && !value.is_empty()).then_some(value)
        })
}

/// The session cookie for `id` (`Max-Age` 0: its removal); `Secure` when
/// the request came over HTTPS through a proxy.
fn session_cookie(id: &str, max_age_secs: i64, headers: &HeaderMap) -> HeaderValue {
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    );
    // Hex ids and fixed words only: always a valid header value.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `POST /api/session` with `Authorization: Bearer TOKEN`: a session for
/// the token, as an `HttpOnly` cookie that holds a random id, not the
/// token.
pub(super) async fn sign_in(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(tokens) = &api.tokens else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "this service has no API tokens (loopback mode): there is nothing to sign in to",
        ));
    };
    let token = bearer_token(&headers)
        .ok_or_else(|| unauthorized("signing in needs the token as Authorization: Bearer TOKEN"))?;
    let (role, name) = tokens
        .check(token)
        .ok_or_else(|| unauthorized("the API token is not known to this server"))?;
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no random bytes for a session id: {e}"),
        )
    })?;
    let id = crate::store::hex(&random);
    let now = crate::service::unix_ms();
    let expires =
        api.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .open(id.clone(), role, name, now);
    let cookie = session_cookie(&id, SESSION_LIFETIME_MS / 1000, &headers);
    Ok((
        [(header::SET_COOKIE, cookie)],
        axum::Json(json!({
            "name": name,
            "role": role,
            "expires_at": crate::time::format_time_ms(expires),
        })),
    )
        .into_response())
}

/// `DELETE /api/session`: ends the cookie's session and removes the
/// cookie.
pub(super) async fn sign_out(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let ended = session_id(&headers).is_some_and(|id| {
        api.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .close(id)
    });
    (
        [(header::SET_COOKIE, session_cookie("", 0, &headers))],
        axum::Json(json!({ "signed_out": ended })),
    )
        .into_response()
}

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, ApiError> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string());
        let Some(tokens) = &api.tokens else {
            return Ok(Self {
                role: Role::Admin,
                actor: Actor::new("loopback", address),
                session: None,
            });
        };
        if let Some(token) = bearer_token(&parts.headers) {
            let (role, name) = tokens
                .check(token)
                .ok_or_else(|| unauthorized("the API token is not known to this server"))?;
            return Ok(Self {
                role,
                actor: Actor::new(name, address),
                session: None,
            });
        }
        let id = session_id(&parts.headers).ok_or_else(|| {
            unauthorized(
                "an API token is needed (Authorization: Bearer TOKEN, or sign in: POST /api/session)",
            )
        })?;
        let session = api
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id, crate::service::unix_ms())
            .ok_or_else(|| unauthorized("the session has ended or is not known: sign in again"))?;
        Ok(Self {
            role: session.role,
            actor: Actor::new(&session.name, address),
            session: Some(id.to_owned()),
        })
    }
}

impl Caller {
    /// Why the caller may no longer act, if so: its session was signed
    /// out or expired (a token stays valid while the node runs).
    pub(super) fn ended(&self, api: &Api) -> Option<&'static str> {
        let id = self.session.as_deref()?;
        let live = api
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id, crate::service::unix_ms());
        live.is_none()
            .then_some("the session was signed out or has expired")
    }
}
