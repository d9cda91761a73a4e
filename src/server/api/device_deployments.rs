//! Device deployment API: `next` (v2 POST, v1 POST and GET), status reports and log upload.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::server::app::AppState;
use crate::server::auth::{DeviceAuth, JsonBody};
use crate::server::clock;
use crate::server::error::{ApiError, ApiResult};
use crate::server::store::{ArtifactRecord, NextOutcome, StatusOutcome};

const DEV: &str = "/api/devices/v1/deployments/device/deployments";

/// The routes of this file.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/devices/v2/deployments/device/deployments/next",
            post(next_v2),
        )
        .route(&format!("{DEV}/next"), post(next_post).get(next_get))
        .route(&format!("{DEV}/{{id}}/status"), put(status))
        .route(&format!("{DEV}/{{id}}/log"), put(log))
}

/// Statuses a device may report.
pub const DEVICE_STATUSES: &[&str] = &[
    "downloading",
    "installing",
    "rebooting",
    "success",
    "failure",
    "already-installed",
    "pause_before_installing",
    "pause_before_rebooting",
    "pause_before_committing",
];

/// The signed absolute download link of `artifact`, with its expiry (unix seconds): the
/// object store's pre-signed URL, or this server's own signed link.
pub fn download_link(state: &AppState, artifact_id: &str) -> (String, i64) {
    let path = format!("/api/devices/v1/deployments/download/{artifact_id}");
    let expire = clock::unix_now() + state.config.link_lifetime;
    if let Some(url) = state
        .blobs
        .presigned(artifact_id, state.config.link_lifetime)
    {
        return (url, expire);
    }
    let query = state.links.query(&path, expire);
    (format!("{}{path}?{query}", state.base_url), expire)
}

fn required(provides: &Map<String, Value>, key: &str) -> ApiResult<String> {
    match provides.get(key) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 4096 => Ok(s.clone()),
        _ => Err(ApiError::bad_request(format!(
            "{key}: a non-empty string of at most 4096 characters is required"
        ))),
    }
}

fn answer(
    state: &AppState,
    device: &DeviceAuth,
    provides: Map<String, Value>,
) -> ApiResult<Response> {
    let name = required(&provides, "artifact_name")?;
    let device_type = required(&provides, "device_type")?;
    match state
        .store
        .next_for_device(&device.device_id, &name, &device_type, &provides)?
    {
        NextOutcome::Nothing => Ok(StatusCode::NO_CONTENT.into_response()),
        NextOutcome::Conflict => Err(ApiError::conflict(
            "the device reported different provides for its ongoing deployment",
        )),
        NextOutcome::Update {
            deployment_id,
            artifact,
        } => Ok(Json(instructions(state, &deployment_id, &artifact)).into_response()),
    }
}

fn instructions(state: &AppState, deployment_id: &str, a: &ArtifactRecord) -> Value {
    let (uri, expire) = download_link(state, &a.id);
    json!({
        "id": deployment_id,
        "artifact": {
            "id": a.id,
            "artifact_name": a.name,
            "source": { "uri": uri, "expire": clock::rfc3339(expire) },
            "device_types_compatible": a.device_types,
        }
    })
}

/// `POST /api/devices/v1/deployments/device/deployments/next`: the body is the flat provides.
async fn next_post(
    State(state): State<Arc<AppState>>,
    device: DeviceAuth,
    JsonBody(provides): JsonBody<Map<String, Value>>,
) -> ApiResult<Response> {
    answer(&state, &device, provides)
}

/// `GET .../next?artifact_name=&device_type=`.
async fn next_get(
    State(state): State<Arc<AppState>>,
    device: DeviceAuth,
    Query(q): Query<Map<String, Value>>,
) -> ApiResult<Response> {
    answer(&state, &device, q)
}

#[derive(Deserialize)]
struct NextV2 {
    device_provides: Map<String, Value>,
}

/// `POST /api/devices/v2/deployments/device/deployments/next`: answered like v1 (no update
/// control maps).
async fn next_v2(
    State(state): State<Arc<AppState>>,
    device: DeviceAuth,
    JsonBody(body): JsonBody<NextV2>,
) -> ApiResult<Response> {
    answer(&state, &device, body.device_provides)
}

#[derive(Deserialize)]
struct StatusReport {
    status: String,
    substate: Option<String>,
}

/// `PUT .../deployments/{id}/status`.
async fn status(
    State(state): State<Arc<AppState>>,
    device: DeviceAuth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StatusReport>,
) -> ApiResult<StatusCode> {
    if !DEVICE_STATUSES.contains(&body.status.as_str()) {
        return Err(ApiError::bad_request(format!(
            "invalid status {:?}",
            body.status
        )));
    }
    let substate: Option<String> = body.substate.map(|s| s.chars().take(4096).collect());
    match state
        .store
        .device_status(&device.device_id, &id, &body.status, substate.as_deref())?
    {
        StatusOutcome::Done => Ok(StatusCode::NO_CONTENT),
        StatusOutcome::NotFound => Err(ApiError::not_found("no such deployment for this device")),
        StatusOutcome::Conflict => Err(ApiError::conflict("deployment aborted or finished")),
    }
}

#[derive(Deserialize)]
struct LogMessage {
    timestamp: String,
    level: String,
    message: String,
}

#[derive(Deserialize)]
struct DeploymentLog {
    messages: Vec<LogMessage>,
}

/// `PUT .../deployments/{id}/log`.
async fn log(
    State(state): State<Arc<AppState>>,
    device: DeviceAuth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DeploymentLog>,
) -> ApiResult<StatusCode> {
    let text: String = body
        .messages
        .iter()
        .map(|m| format!("{} {} {}\n", m.timestamp, m.level, m.message))
        .collect();
    if state.store.put_log(&device.device_id, &id, &text)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such deployment for this device"))
    }
}
