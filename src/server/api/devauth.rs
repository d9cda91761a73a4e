//! Device admission for operators (deviceauth management v2): list, count, accept/reject,
//! remove auth sets, decommission and preauthorize.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::device_auth::{canonical_identity, canonical_pubkey};
use super::{paging_headers, Paging};
use crate::server::app::AppState;
use crate::server::auth::{JsonBody, UserAuth};
use crate::server::clock;
use crate::server::error::{ApiError, ApiResult};
use crate::server::store::{self, AdmissionError, Device};

const BASE: &str = "/api/management/v2/devauth/devices";

/// The routes of this file.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(BASE, get(list).post(preauthorize))
        .route(&format!("{BASE}/count"), get(count))
        .route(&format!("{BASE}/{{id}}"), get(one).delete(decommission))
        .route(
            &format!("{BASE}/{{id}}/auth/{{aid}}/status"),
            put(set_status).get(get_status),
        )
        .route(
            &format!("{BASE}/{{id}}/auth/{{aid}}"),
            delete(remove_auth_set),
        )
}

/// A device as the API shows it.
pub fn device_json(d: &Device) -> Value {
    let sets: Vec<Value> = d
        .auth_sets
        .iter()
        .map(|a| {
            json!({
                "id": a.id, "device_id": d.id, "identity_data": d.identity_data,
                "pubkey": a.pubkey, "status": a.status, "ts": clock::rfc3339(a.ts),
            })
        })
        .collect();
    let mut v = json!({
        "id": d.id, "identity_data": d.identity_data, "status": d.status,
        "created_ts": clock::rfc3339(d.created_ts), "updated_ts": clock::rfc3339(d.updated_ts),
        "decommissioning": false, "auth_sets": sets,
    });
    if let Some(t) = d.check_in_time {
        v["check_in_time"] = json!(clock::rfc3339(t));
    }
    v
}

const DEVICE_STATUSES: &[&str] = &["pending", "accepted", "rejected", "preauthorized", "noauth"];

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

async fn list(State(state): State<Arc<AppState>>, _u: UserAuth, uri: Uri) -> ApiResult<Response> {
    let pairs = query_pairs(&uri);
    let mut paging = Paging::default();
    let mut status = None;
    let mut ids = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "page" => paging.page = Some(v.parse().map_err(|_| ApiError::bad_request("bad page"))?),
            "per_page" => {
                paging.per_page = Some(
                    v.parse()
                        .map_err(|_| ApiError::bad_request("bad per_page"))?,
                )
            }
            "status" if DEVICE_STATUSES.contains(&v.as_str()) => status = Some(v),
            "status" => return Err(ApiError::bad_request(format!("invalid status {v:?}"))),
            "id" => ids.push(v),
            _ => {}
        }
    }
    let (limit, offset) = store::page(paging.page, paging.per_page, 20);
    let (devices, total) = state
        .store
        .list_devices(status.as_deref(), &ids, limit, offset)?;
    let body: Vec<Value> = devices.iter().map(device_json).collect();
    Ok((paging_headers(BASE, &paging, 20, total), Json(body)).into_response())
}

async fn count(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let status = query_pairs(&uri)
        .into_iter()
        .find(|(k, _)| k == "status")
        .map(|(_, v)| v);
    if let Some(s) = &status {
        if !DEVICE_STATUSES.contains(&s.as_str()) {
            return Err(ApiError::bad_request(format!("invalid status {s:?}")));
        }
    }
    let (_, total) = state.store.list_devices(status.as_deref(), &[], 1, 0)?;
    Ok(Json(json!({ "count": total })))
}

async fn one(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = state
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("device not found"))?;
    Ok(Json(device_json(&d)))
}

async fn decommission(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.store.decommission(&id)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("device not found"))
    }
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

async fn set_status(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path((id, aid)): Path<(String, String)>,
    JsonBody(body): JsonBody<StatusBody>,
) -> ApiResult<StatusCode> {
    match state.store.set_auth_status(&id, &aid, &body.status)? {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(AdmissionError::NotFound) => Err(ApiError::not_found("device or auth set not found")),
        Err(AdmissionError::Invalid(m)) => Err(ApiError::bad_request(m)),
    }
}

async fn get_status(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path((id, aid)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let d = state
        .store
        .device(&id)?
        .ok_or_else(|| ApiError::not_found("device not found"))?;
    let a = d
        .auth_sets
        .iter()
        .find(|a| a.id == aid)
        .ok_or_else(|| ApiError::not_found("auth set not found"))?;
    Ok(Json(json!({ "status": a.status })))
}

async fn remove_auth_set(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path((id, aid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    if state.store.delete_auth_set(&id, &aid)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("device or auth set not found"))
    }
}

#[derive(Deserialize)]
struct Preauth {
    identity_data: Value,
    pubkey: String,
    #[serde(default)]
    force: bool,
}

async fn preauthorize(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    JsonBody(body): JsonBody<Preauth>,
) -> ApiResult<Response> {
    let (identity, hash) = canonical_identity(&body.identity_data)?;
    let (_, pubkey) = canonical_pubkey(&body.pubkey)?;
    match state
        .store
        .preauthorize(&hash, &identity, &pubkey, body.force)?
    {
        Ok(id) => Ok((
            StatusCode::CREATED,
            [(header::LOCATION, format!("{BASE}/{id}"))],
        )
            .into_response()),
        Err(existing) => Ok((StatusCode::CONFLICT, Json(device_json(&existing))).into_response()),
    }
}
