//! Inventory management: devices with their attributes (identity, inventory and system
//! scopes), and static groups.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{paging_headers, Paging};
use crate::server::app::AppState;
use crate::server::auth::{JsonBody, UserAuth};
use crate::server::clock;
use crate::server::error::{ApiError, ApiResult};
use crate::server::store;

const BASE: &str = "/api/management/v1/inventory";

/// The routes of this file.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(&format!("{BASE}/devices"), get(list))
        .route(&format!("{BASE}/devices/{{id}}"), get(one))
        .route(
            &format!("{BASE}/devices/{{id}}/group"),
            get(get_group).put(put_group),
        )
        .route(
            &format!("{BASE}/devices/{{id}}/group/{{name}}"),
            delete(remove_group),
        )
        .route(&format!("{BASE}/groups"), get(groups))
        .route(&format!("{BASE}/groups/{{name}}"), delete(delete_group))
        .route(
            &format!("{BASE}/groups/{{name}}/devices"),
            get(group_devices)
                .patch(add_group_devices)
                .delete(remove_group_devices),
        )
}

fn device_json(state: &AppState, id: &str, group: Option<String>) -> ApiResult<Option<Value>> {
    let Some(d) = state.store.device(id)? else {
        return Ok(None);
    };
    let mut attrs = Vec::new();
    if let Some(obj) = d.identity_data.as_object() {
        for (k, v) in obj {
            attrs.push(json!({ "name": k, "value": v, "scope": "identity" }));
        }
    }
    attrs.push(json!({ "name": "status", "value": d.status, "scope": "identity" }));
    let mut updated = d.updated_ts;
    for (a, ts) in state.store.inventory(id)? {
        updated = updated.max(ts);
        let mut v = json!({
            "name": a.name, "value": a.value, "scope": "inventory",
            "timestamp": clock::rfc3339(ts),
        });
        if let Some(desc) = a.description {
            v["description"] = json!(desc);
        }
        attrs.push(v);
    }
    attrs.push(
        json!({ "name": "created_ts", "value": clock::rfc3339(d.created_ts), "scope": "system" }),
    );
    attrs
        .push(json!({ "name": "updated_ts", "value": clock::rfc3339(updated), "scope": "system" }));
    if let Some(t) = d.check_in_time {
        attrs.push(
            json!({ "name": "check_in_time", "value": clock::rfc3339(t), "scope": "system" }),
        );
    }
    if let Some(g) = group {
        attrs.push(json!({ "name": "group", "value": g, "scope": "system" }));
    }
    Ok(Some(json!({
        "id": d.id, "updated_ts": clock::rfc3339(updated), "attributes": attrs,
    })))
}

async fn list(State(state): State<Arc<AppState>>, _u: UserAuth, uri: Uri) -> ApiResult<Response> {
    let mut paging = Paging::default();
    let mut group = None;
    let mut has_group = None;
    let mut attrs = Vec::new();
    for kv in uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let bad = || ApiError::bad_request(format!("invalid query parameter {k:?}"));
        match k {
            "page" => paging.page = Some(v.parse().map_err(|_| bad())?),
            "per_page" => paging.per_page = Some(v.parse().map_err(|_| bad())?),
            "group" => group = Some(v.to_string()),
            "has_group" => has_group = Some(v.parse().map_err(|_| bad())?),
            "sort" => {}
            _ => attrs.push((k.to_string(), v.to_string())),
        }
    }
    let (limit, offset) = store::page(paging.page, paging.per_page, 10);
    let (ids, total) =
        state
            .store
            .inventory_device_ids(group.as_deref(), has_group, &attrs, limit, offset)?;
    let mut out = Vec::new();
    for (id, grp) in ids {
        if let Some(v) = device_json(&state, &id, grp)? {
            out.push(v);
        }
    }
    Ok((
        paging_headers(&format!("{BASE}/devices"), &paging, 10, total),
        Json(out),
    )
        .into_response())
}

fn group_of(state: &AppState, id: &str) -> ApiResult<Option<String>> {
    Ok(state.store.device_group(id)?)
}

async fn one(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let g = group_of(&state, &id)?;
    device_json(&state, &id, g)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("device not found"))
}

async fn get_group(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    if state.store.device(&id)?.is_none() {
        return Err(ApiError::not_found("device not found"));
    }
    Ok(Json(json!({ "group": group_of(&state, &id)? })))
}

fn check_group_name(g: &str) -> ApiResult<()> {
    if g.is_empty()
        || g.len() > 256
        || !g
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::bad_request(
            "group names are 1 to 256 letters, digits, '-' or '_'",
        ));
    }
    Ok(())
}

async fn group_devices(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(name): Path<String>,
    axum::extract::Query(p): axum::extract::Query<Paging>,
) -> ApiResult<Response> {
    let (limit, offset) = store::page(p.page, p.per_page, 10);
    let (ids, total) = state
        .store
        .inventory_device_ids(Some(&name), None, &[], limit, offset)?;
    if total == 0 {
        return Err(ApiError::not_found("no such group"));
    }
    let ids: Vec<String> = ids.into_iter().map(|(id, _)| id).collect();
    let path = format!("{BASE}/groups/{name}/devices");
    Ok((paging_headers(&path, &p, 10, total), Json(ids)).into_response())
}

async fn add_group_devices(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(name): Path<String>,
    JsonBody(ids): JsonBody<Vec<String>>,
) -> ApiResult<Json<Value>> {
    check_group_name(&name)?;
    let (matched, updated) = state.store.add_to_group(&ids, &name)?;
    Ok(Json(
        json!({ "matched_count": matched, "updated_count": updated }),
    ))
}

async fn remove_group_devices(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(name): Path<String>,
    JsonBody(ids): JsonBody<Vec<String>>,
) -> ApiResult<Json<Value>> {
    let updated = state.store.remove_from_group(Some(&ids), &name)?;
    Ok(Json(json!({ "updated_count": updated })))
}

async fn delete_group(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let updated = state.store.remove_from_group(None, &name)?;
    if updated == 0 {
        return Err(ApiError::not_found("no such group"));
    }
    Ok(Json(json!({ "updated_count": updated })))
}

#[derive(Deserialize)]
struct GroupBody {
    group: String,
}

async fn put_group(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<GroupBody>,
) -> ApiResult<StatusCode> {
    let g = &body.group;
    check_group_name(g)?;
    if state.store.set_group(&id, Some(g))? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("device not found"))
    }
}

async fn remove_group(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    if group_of(&state, &id)?.as_deref() != Some(name.as_str()) {
        return Err(ApiError::not_found("device is not in that group"));
    }
    state.store.set_group(&id, None)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn groups(State(state): State<Arc<AppState>>, _u: UserAuth) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(state.store.groups()?))
}
