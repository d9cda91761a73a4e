//! `POST /api/devices/v1/authentication/auth_requests`: a device proves it holds its key by
//! signing the exact request body; accepted devices get a token, everyone else 401.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::crypto::VerifyingKey;
use crate::server::app::{AppState, Peer};
use crate::server::auth::body_bytes;
use crate::server::clock;
use crate::server::error::{ApiError, ApiResult};
use crate::server::token::Claims;

#[derive(Deserialize)]
struct AuthRequest {
    id_data: Option<String>,
    pubkey: Option<String>,
}

/// The identity as one canonical string (sorted keys, compact), and its SHA-256 in hex: two
/// requests with the same attributes in any order are the same device.
pub fn canonical_identity(id_data: &Value) -> Result<(String, String), ApiError> {
    let obj = id_data
        .as_object()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| ApiError::bad_request("id_data must be a non-empty JSON object"))?;
    let sorted: BTreeMap<&String, &Value> = obj.iter().collect();
    let text = serde_json::to_string(&sorted).map_err(|e| ApiError::internal(e.to_string()))?;
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    Ok((text, hash))
}

/// Parses a PEM public key and returns it in canonical PKIX PEM form.
pub fn canonical_pubkey(pem: &str) -> Result<(VerifyingKey, String), ApiError> {
    let key = VerifyingKey::from_pem(pem.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("invalid public key: {e}")))?;
    let text = key.to_spki_pem();
    Ok((key, text))
}

/// Handles an authentication request. Requests are counted per source address, since
/// there is no identity to count them by before the signature is checked.
pub async fn auth_request(
    State(state): State<Arc<AppState>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    req: Request,
) -> ApiResult<Response> {
    crate::server::auth::limit(&state, &format!("ip:{}", peer.ip()))?;
    let signature = req
        .headers()
        .get("X-MEN-Signature")
        .map(|v| v.as_bytes().to_vec());
    let body = body_bytes(req, &state).await?;
    let parsed: AuthRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed request body: {e}")))?;
    let id_data = parsed
        .id_data
        .ok_or_else(|| ApiError::bad_request("id_data: non zero value required"))?;
    let pubkey = parsed
        .pubkey
        .ok_or_else(|| ApiError::bad_request("pubkey: non zero value required"))?;
    let id_value: Value = serde_json::from_str(&id_data)
        .map_err(|e| ApiError::bad_request(format!("id_data is not JSON: {e}")))?;
    let (identity, identity_hash) = canonical_identity(&id_value)?;
    let (key, pubkey) = canonical_pubkey(&pubkey)?;
    let signature =
        signature.ok_or_else(|| ApiError::bad_request("missing request signature header"))?;
    let signature = STANDARD
        .decode(signature.trim_ascii())
        .map_err(|_| ApiError::bad_request("request signature is not base64"))?;
    key.verify(&body, &signature)
        .map_err(|_| ApiError::unauthorized("signature verification failed"))?;
    let out = state
        .store
        .auth_request(&identity_hash, &identity, &pubkey)?;
    if out.status != "accepted" {
        return Err(ApiError::unauthorized("unauthorized"));
    }
    let now = clock::unix_now();
    let token = state.tokens.sign(&Claims {
        jti: out.auth_set_id,
        sub: out.device_id,
        iss: "Mender".into(),
        exp: now + state.config.token_lifetime,
        iat: now,
        device: true,
        user: false,
    });
    Ok(([(header::CONTENT_TYPE, "application/jwt")], token).into_response())
}
