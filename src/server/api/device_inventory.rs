//! `PUT`/`PATCH /api/devices/v1/inventory/device/attributes`: a device reports its inventory.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put as put_route;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

use crate::server::app::AppState;
use crate::server::auth::{DeviceAuth, JsonBody};
use crate::server::error::{ApiError, ApiResult};
use crate::server::store::Attribute;

#[derive(Deserialize)]
struct AttributeIn {
    name: String,
    value: Value,
    description: Option<String>,
}

/// The routes of this file.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route(
        "/api/devices/v1/inventory/device/attributes",
        put_route(put).patch(patch),
    )
}

fn scalar(v: &Value) -> Option<bool> {
    match v {
        Value::String(_) => Some(true),
        Value::Number(_) => Some(false),
        _ => None,
    }
}

fn check(a: AttributeIn) -> ApiResult<Attribute> {
    if a.name.is_empty() || a.name.len() > 1024 {
        return Err(ApiError::bad_request(
            "attribute name must be 1 to 1024 characters",
        ));
    }
    let ok = match &a.value {
        Value::Array(items) => {
            let kinds: Option<Vec<bool>> = items.iter().map(scalar).collect();
            kinds.is_some_and(|k| k.windows(2).all(|w| w[0] == w[1]))
        }
        v => scalar(v).is_some(),
    };
    if !ok {
        return Err(ApiError::bad_request(format!(
            "attribute {:?}: value must be a string, a number, or an array of one of them",
            a.name
        )));
    }
    Ok(Attribute {
        name: a.name,
        value: a.value,
        description: a.description,
    })
}

async fn store(
    state: &AppState,
    device: &DeviceAuth,
    attrs: Vec<AttributeIn>,
    replace: bool,
) -> ApiResult<StatusCode> {
    let attrs: Vec<Attribute> = attrs.into_iter().map(check).collect::<ApiResult<_>>()?;
    state
        .store
        .put_inventory(&device.device_id, &attrs, replace)?;
    Ok(StatusCode::OK)
}

/// Replaces the device's inventory.
async fn put(
    State(state): State<Arc<AppState>>,
    device: DeviceAuth,
    JsonBody(attrs): JsonBody<Vec<AttributeIn>>,
) -> ApiResult<StatusCode> {
    store(&state, &device, attrs, true).await
}

/// Merges into the device's inventory.
async fn patch(
    State(state): State<Arc<AppState>>,
    device: DeviceAuth,
    JsonBody(attrs): JsonBody<Vec<AttributeIn>>,
) -> ApiResult<StatusCode> {
    store(&state, &device, attrs, false).await
}
