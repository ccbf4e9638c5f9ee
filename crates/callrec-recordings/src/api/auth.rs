//! Who calls the API and what they may do: a bearer token (header or the
//! page's cookie) checked against [`Tokens`], or anyone on loopback when
//! the node has no tokens.

use core::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;

use super::{Api, ApiError};
use crate::Actor;
use crate::tokens::Role;

/// The name of the cookie the web page keeps its token in (sent with the
/// audio element's requests, which cannot carry a header).
pub const TOKEN_COOKIE: &str = "callrec_token";

/// Who is asking and what they may do; an extractor that answers 401
/// itself.
pub(super) struct Caller {
    pub(super) role: Role,
    pub(super) actor: Actor,
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
                    "token {:?} may only read; this needs an admin token",
                    self.actor.name
                ),
            ))
        }
    }
}

/// The token of the `Authorization: Bearer` header, else of the page's
/// cookie.
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
            });
        };
        let unauthorized = |message: &str| {
            ApiError::new(StatusCode::UNAUTHORIZED, message)
                .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
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
