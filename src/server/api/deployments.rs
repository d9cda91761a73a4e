//! Deployment management: create (device list, all devices, static group), list, show,
//! statistics, abort, the device deployments of one, and their logs.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{paging_headers, Paging};
use crate::server::app::AppState;
use crate::server::auth::{JsonBody, UserAuth};
use crate::server::clock;
use crate::server::error::{ApiError, ApiResult};
use crate::server::ids;
use crate::server::store::{self, CreateError, DeploymentRecord};

const BASE: &str = "/api/management/v1/deployments/deployments";

/// The routes of this file.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(BASE, get(list).post(create))
        .route(&format!("{BASE}/group/{{name}}"), post(create_for_group))
        .route(&format!("{BASE}/{{id}}"), get(one))
        .route(&format!("{BASE}/{{id}}/statistics"), get(statistics))
        .route(&format!("{BASE}/{{id}}/status"), axum::routing::put(abort))
        .route(&format!("{BASE}/{{id}}/devices"), get(devices))
        .route(&format!("{BASE}/{{id}}/devices/{{device}}/log"), get(log))
}

fn opt_ts(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(clock::rfc3339(t)))
}

/// A deployment as the API shows it.
pub fn deployment_json(d: &DeploymentRecord) -> Value {
    let mut v = json!({
        "id": d.id, "name": d.name, "artifact_name": d.artifact_name,
        "created": clock::rfc3339(d.created), "status": d.status(),
        "device_count": d.device_count, "max_devices": d.max_devices,
        "artifacts": d.artifacts, "groups": d.groups, "type": "software",
        "statistics": { "status": d.stats, "total_size": d.total_size },
    });
    if let Some(f) = d.finished {
        v["finished"] = json!(clock::rfc3339(f));
    }
    v
}

#[derive(Deserialize)]
struct NewDeployment {
    name: String,
    artifact_name: String,
    devices: Option<Vec<String>>,
    #[serde(default)]
    all_devices: bool,
    #[serde(default)]
    force_installation: bool,
}

fn check_names(name: &str, artifact_name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || artifact_name.trim().is_empty() {
        return Err(ApiError::bad_request("name and artifact_name are required"));
    }
    Ok(())
}

fn created(
    state: &AppState,
    name: &str,
    artifact_name: &str,
    devices: &[String],
    groups: &[String],
    force: bool,
    constructor: &str,
) -> ApiResult<Response> {
    match state
        .store
        .create_deployment(name, artifact_name, devices, groups, force, constructor)?
    {
        Ok(id) => Ok((
            StatusCode::CREATED,
            [(header::LOCATION, format!("{BASE}/{id}"))],
        )
            .into_response()),
        Err(CreateError::NoArtifact) => Err(ApiError::unprocessable(format!(
            "no artifact named {artifact_name:?}"
        ))),
        Err(CreateError::Duplicate) => Err(ApiError::conflict(
            "an active deployment with the same parameters exists",
        )),
    }
}

async fn create(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    JsonBody(body): JsonBody<NewDeployment>,
) -> ApiResult<Response> {
    check_names(&body.name, &body.artifact_name)?;
    let devices = match (&body.devices, body.all_devices) {
        (Some(d), false) if !d.is_empty() => {
            let mut d = d.clone();
            d.sort();
            d.dedup();
            d
        }
        (None, true) => {
            let all = state.store.accepted_device_ids()?;
            if all.is_empty() {
                return Err(ApiError::bad_request("there are no accepted devices"));
            }
            all
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of a non-empty devices list or all_devices",
            ))
        }
    };
    let constructor = json!({
        "name": body.name, "artifact_name": body.artifact_name, "devices": body.devices,
        "all_devices": body.all_devices, "force_installation": body.force_installation,
    })
    .to_string();
    created(
        &state,
        &body.name,
        &body.artifact_name,
        &devices,
        &[],
        body.force_installation,
        &constructor,
    )
}

#[derive(Deserialize)]
struct GroupDeployment {
    name: String,
    artifact_name: String,
    #[serde(default)]
    force_installation: bool,
}

async fn create_for_group(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(group): Path<String>,
    JsonBody(body): JsonBody<GroupDeployment>,
) -> ApiResult<Response> {
    check_names(&body.name, &body.artifact_name)?;
    let devices = state.store.accepted_in_group(&group)?;
    if devices.is_empty() {
        return Err(ApiError::bad_request(format!(
            "group {group:?} has no accepted devices"
        )));
    }
    let constructor = json!({
        "name": body.name, "artifact_name": body.artifact_name, "group": group,
        "force_installation": body.force_installation,
    })
    .to_string();
    created(
        &state,
        &body.name,
        &body.artifact_name,
        &devices,
        std::slice::from_ref(&group),
        body.force_installation,
        &constructor,
    )
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    search: Option<String>,
    sort: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    if let Some(s) = &q.status {
        if !["pending", "inprogress", "finished"].contains(&s.as_str()) {
            return Err(ApiError::bad_request(format!("invalid status {s:?}")));
        }
    }
    let (limit, offset) = store::page(q.page, q.per_page, 20);
    let (ds, total) = state.store.list_deployments(
        q.status.as_deref(),
        q.search.as_deref(),
        q.sort.as_deref() == Some("asc"),
        limit,
        offset,
    )?;
    let p = Paging {
        page: q.page,
        per_page: q.per_page,
    };
    let body: Vec<Value> = ds.iter().map(deployment_json).collect();
    Ok((paging_headers(BASE, &p, 20, total), Json(body)).into_response())
}

fn find(state: &AppState, id: &str) -> ApiResult<DeploymentRecord> {
    state
        .store
        .deployment(id)?
        .ok_or_else(|| ApiError::not_found("deployment not found"))
}

async fn one(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(deployment_json(&find(&state, &id)?)))
}

async fn statistics(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(find(&state, &id)?.stats)))
}

#[derive(Deserialize)]
struct AbortBody {
    status: String,
}

async fn abort(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AbortBody>,
) -> ApiResult<StatusCode> {
    if body.status != "aborted" {
        return Err(ApiError::bad_request("status must be \"aborted\""));
    }
    if !ids::is_uuid(&id) {
        return Err(ApiError::bad_request("deployment id must be a UUID"));
    }
    match state.store.abort_deployment(&id)? {
        None => Err(ApiError::not_found("deployment not found")),
        Some(false) => Err(ApiError::unprocessable("deployment already finished")),
        Some(true) => Ok(StatusCode::NO_CONTENT),
    }
}

async fn devices(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    find(&state, &id)?;
    let list = state.store.deployment_devices(&id)?;
    Ok(Json(
        list.iter()
            .map(|d| {
                json!({
                    "id": d.device_id, "status": d.status, "substate": d.substate,
                    "created": opt_ts(d.created), "started": opt_ts(d.started),
                    "finished": opt_ts(d.finished), "device_type": d.device_type,
                    "log": d.has_log, "image": { "id": d.artifact_id },
                })
            })
            .collect(),
    ))
}

async fn log(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path((id, device)): Path<(String, String)>,
) -> ApiResult<Response> {
    let text = state
        .store
        .device_log(&id, &device)?
        .ok_or_else(|| ApiError::not_found("no log for this device deployment"))?;
    Ok(([(header::CONTENT_TYPE, "text/plain")], text).into_response())
}
