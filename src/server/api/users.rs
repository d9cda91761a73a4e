//! Users (useradm): login with HTTP Basic credentials for a token, logout, the current user,
//! and the password hashing behind them (argon2id).

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::server::app::AppState;
use crate::server::auth::UserAuth;
use crate::server::clock;
use crate::server::error::{ApiError, ApiResult};
use crate::server::ids;
use crate::server::token::Claims;

const BASE: &str = "/api/management/v1/useradm";

/// The routes of this file.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(&format!("{BASE}/auth/login"), post(login))
        .route(&format!("{BASE}/auth/logout"), post(logout))
        .route(&format!("{BASE}/users/me"), get(me))
}

/// The argon2id PHC string of `password` with a fresh salt.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&ids::random_bytes(16)).expect("16 bytes make a salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters")
        .to_string()
}

/// True when `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b = h
        .strip_prefix("Basic ")
        .or_else(|| h.strip_prefix("basic "))?;
    let text = String::from_utf8(STANDARD.decode(b.trim()).ok()?).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Logs a user in.
async fn login(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Response> {
    let (email, password) =
        basic(&headers).ok_or_else(|| ApiError::unauthorized("missing Basic credentials"))?;
    if let Err(secs) = state.limiter.check(&format!("login:{email}")) {
        return Err(ApiError {
            retry_after: Some(secs),
            ..ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too many requests",
            )
        });
    }
    let user = state.store.user_by_email(&email)?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    // Hash even for unknown users so the answer takes as long either way.
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => verify_password(&password, &h),
        None => {
            let _ = hash_password(&password);
            false
        }
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        return Err(ApiError::unauthorized("unauthorized"));
    };
    let now = clock::unix_now();
    let token = state.tokens.sign(&Claims {
        jti: ids::uuid_v4(),
        sub: user.id,
        iss: "mender.useradm".into(),
        exp: now + state.config.token_lifetime,
        iat: now,
        device: false,
        user: true,
    });
    Ok(([(header::CONTENT_TYPE, "application/jwt")], token).into_response())
}

/// Revokes the token the request carries.
async fn logout(State(state): State<Arc<AppState>>, u: UserAuth) -> ApiResult<StatusCode> {
    state.store.revoke_token(&u.jti, u.exp)?;
    Ok(StatusCode::ACCEPTED)
}

/// The logged-in user.
async fn me(State(state): State<Arc<AppState>>, u: UserAuth) -> ApiResult<Json<Value>> {
    let user = state
        .store
        .user_by_id(&u.user_id)?
        .ok_or_else(|| ApiError::unauthorized("user no longer exists"))?;
    let created = clock::rfc3339(user.created_ts);
    Ok(Json(json!({
        "id": user.id, "email": user.email, "created_ts": created, "updated_ts": created,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        let h = hash_password("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("other", &h));
        assert!(!verify_password("s3cret", "garbage"));
    }
}
