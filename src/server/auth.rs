//! Request extractors: the authenticated device or user behind a bearer token (checked for
//! signature, expiry, kind and revocation, then counted against the rate limit), and JSON
//! bodies that answer 400 for malformed JSON and 413 past the size cap.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::app::AppState;
use super::clock;
use super::error::ApiError;
use super::token::Claims;

/// An accepted device.
#[derive(Debug, Clone)]
pub struct DeviceAuth {
    /// Device id.
    pub device_id: String,
    /// Auth set the token was issued for.
    pub auth_set_id: String,
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct UserAuth {
    /// User id.
    pub user_id: String,
    /// Token id.
    pub jti: String,
    /// Token expiry, unix seconds.
    pub exp: i64,
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let h = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::unauthorized("missing Authorization header"))?;
    let t = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("expected a Bearer token"))?;
    Ok(t)
}

fn claims(state: &AppState, parts: &Parts) -> Result<Claims, ApiError> {
    let t = bearer(parts)?;
    state
        .tokens
        .verify(t, clock::unix_now())
        .map_err(|e| ApiError::unauthorized(e.to_string()))
}

/// Counts a request by `key` against the quota: 429 with `Retry-After` when over it.
pub fn limit(state: &AppState, key: &str) -> Result<(), ApiError> {
    state.limiter.check(key).map_err(|secs| ApiError {
        retry_after: Some(secs),
        ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many requests")
    })
}

impl FromRequestParts<Arc<AppState>> for DeviceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let c = claims(state, parts)?;
        if !c.device {
            return Err(ApiError::unauthorized("not a device token"));
        }
        if !state.store.token_valid(&c.sub, &c.jti)? {
            return Err(ApiError::unauthorized("device token revoked"));
        }
        limit(state, &c.sub)?;
        Ok(DeviceAuth {
            device_id: c.sub,
            auth_set_id: c.jti,
        })
    }
}

impl FromRequestParts<Arc<AppState>> for UserAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let c = claims(state, parts)?;
        if !c.user {
            return Err(ApiError::unauthorized("not a user token"));
        }
        if state.store.user_by_id(&c.sub)?.is_none() {
            return Err(ApiError::unauthorized("user no longer exists"));
        }
        if state.store.token_revoked(&c.jti)? {
            return Err(ApiError::unauthorized("token revoked"));
        }
        limit(state, &c.sub)?;
        Ok(UserAuth {
            user_id: c.sub,
            jti: c.jti,
            exp: c.exp,
        })
    }
}

/// The request body, whole, within the size cap (413 beyond it).
pub async fn body_bytes(req: Request, state: &Arc<AppState>) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(format!(
                "request body is larger than {} bytes",
                state.config.max_body
            ))
        } else {
            ApiError::new(r.status(), r.body_text())
        }
    })
}

/// A JSON body; malformed or mistyped JSON is a 400 with the parser's message.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("malformed request body: {e}")))
    }
}
