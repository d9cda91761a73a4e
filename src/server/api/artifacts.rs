//! Artifact management: upload (multipart, validated while it streams; nothing is stored unless
//! the whole artifact checks out), list, show, describe, download link, delete.

use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::device_deployments::download_link;
use super::{paging_headers, Paging};
use crate::server::app::AppState;
use crate::server::auth::{JsonBody, UserAuth};
use crate::server::clock;
use crate::server::error::{ApiError, ApiResult};
use crate::server::ids;
use crate::server::store::{self, NewArtifact};
use crate::server::upload::{artifact_meta, UploadValidator};

const BASE: &str = "/api/management/v1/deployments/artifacts";

/// The routes of this file, except upload and list (which carry their own body limit).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(&format!("{BASE}/list"), get(list_paged))
        .route(
            &format!("{BASE}/{{id}}"),
            get(one).put(describe).delete(remove),
        )
        .route(&format!("{BASE}/{{id}}/download"), get(link))
}

/// List filters.
#[derive(Debug, Default, Deserialize)]
pub struct ArtifactFilter {
    name: Option<String>,
    description: Option<String>,
    device_type: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

fn filtered(state: &AppState, f: &ArtifactFilter) -> ApiResult<Vec<Value>> {
    Ok(state
        .store
        .list_artifacts(
            f.name.as_deref(),
            f.description.as_deref(),
            f.device_type.as_deref(),
        )?
        .iter()
        .map(|a| a.to_json())
        .collect())
}

/// `GET .../artifacts`: every artifact, unpaged (mender-cli 1.9).
pub async fn list(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Query(f): Query<ArtifactFilter>,
) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(filtered(&state, &f)?))
}

async fn list_paged(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Query(f): Query<ArtifactFilter>,
) -> ApiResult<Response> {
    let all = filtered(&state, &f)?;
    let (limit, offset) = store::page(f.page, f.per_page, 20);
    let p = Paging {
        page: f.page,
        per_page: f.per_page,
    };
    let total = all.len() as i64;
    let page: Vec<Value> = all
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    Ok((
        paging_headers(&format!("{BASE}/list"), &p, 20, total),
        Json(page),
    )
        .into_response())
}

async fn one(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = state
        .store
        .artifact(&id)?
        .ok_or_else(|| ApiError::not_found("artifact not found"))?;
    Ok(Json(a.to_json()))
}

#[derive(Deserialize)]
struct Description {
    description: String,
}

async fn describe(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Description>,
) -> ApiResult<StatusCode> {
    if state
        .store
        .set_artifact_description(&id, &body.description)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("artifact not found"))
    }
}

async fn remove(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.store.artifact(&id)?.is_none() {
        return Err(ApiError::not_found("artifact not found"));
    }
    if state.store.artifact_in_use(&id)? {
        return Err(ApiError::conflict(
            "artifact is used by an active deployment",
        ));
    }
    state.store.delete_artifact(&id)?;
    // The artifact is gone once its row is: a file left behind is logged, not an error.
    if let Err(e) = blocking(&state, move |s| s.blobs.delete(&id)).await {
        eprintln!("mender-server: artifact deleted, its file was not: {e}");
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn link(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    if state.store.artifact(&id)?.is_none() {
        return Err(ApiError::not_found("artifact not found"));
    }
    let (uri, expire) = download_link(&state, &id);
    Ok(Json(
        json!({ "uri": uri, "expire": clock::rfc3339(expire) }),
    ))
}

/// `text` as one readable ASCII line of at most 300 characters: parser messages can quote raw
/// bytes of a bad upload.
fn printable(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .collect();
    match clean.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &clean[..i]),
        None => clean,
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::new(e.status(), format!("reading the upload: {}", e.body_text()))
}

/// `POST .../artifacts`: multipart with optional `size`, `description`, `artifact_id`, then
/// `artifact` last.
pub async fn upload(
    State(state): State<Arc<AppState>>,
    _u: UserAuth,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<Response> {
    let mut multipart = multipart.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let max = state.config.max_artifact_size;
    let mut size: Option<u64> = None;
    let mut description = String::new();
    let mut id = ids::uuid_v4();
    let validated = loop {
        let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? else {
            return Err(ApiError::bad_request("the upload has no artifact part"));
        };
        match field.name().unwrap_or_default() {
            "size" => {
                let text = field.text().await.map_err(multipart_error)?;
                let n: u64 = text
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::bad_request("size must be a byte count"))?;
                if n > max {
                    return Err(ApiError::too_large(format!(
                        "artifact is larger than the limit of {max} bytes"
                    )));
                }
                size = Some(n);
            }
            "description" => description = field.text().await.map_err(multipart_error)?,
            "artifact_id" => {
                let text = field.text().await.map_err(multipart_error)?;
                if !ids::is_uuid(text.trim()) {
                    return Err(ApiError::bad_request("artifact_id must be a UUID"));
                }
                id = text.trim().to_lowercase();
            }
            "artifact" => {
                let mut v = UploadValidator::start(state.blobs.temp()?);
                let mut seen: u64 = 0;
                let mut feeding = true;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    seen += chunk.len() as u64;
                    if seen > max || size.is_some_and(|s| seen > s) {
                        let what = if seen > max {
                            "the limit"
                        } else {
                            "the given size"
                        };
                        return Err(ApiError::too_large(format!(
                            "artifact is larger than {what}"
                        )));
                    }
                    // Once the artifact is known to be invalid the rest is read and dropped,
                    // so the client gets the answer instead of a broken connection.
                    if feeding {
                        feeding = v.feed(chunk).await;
                    }
                }
                let result = v.finish().await.map_err(|e| {
                    ApiError::bad_request(format!("invalid artifact: {}", printable(&e)))
                })?;
                if size.is_some_and(|s| s != result.size) {
                    return Err(ApiError::bad_request(format!(
                        "the artifact is {} bytes, not the {} given",
                        result.size,
                        size.unwrap_or(0)
                    )));
                }
                break result;
            }
            _ => {}
        }
    };
    let info = &validated.info;
    let artifact = NewArtifact {
        id: id.clone(),
        name: info.name().to_string(),
        description,
        device_types: info.header_info.depends_device_type.clone(),
        size: validated.size,
        meta: artifact_meta(info),
    };
    if artifact.device_types.is_empty() {
        return Err(ApiError::bad_request(
            "the artifact names no compatible device type",
        ));
    }
    if state.store.artifact(&id)?.is_some() {
        return Err(ApiError::conflict("an artifact with this id exists"));
    }
    if let Some(other) = state.store.artifact_conflict(&artifact)? {
        let mut resp =
            ApiError::conflict("an artifact with the same name and depends exists").into_response();
        let body = json!({
            "error": "an artifact with the same name and depends exists",
            "request_id": ids::uuid_v4(),
            "metadata": { "conflict": other.to_json() },
        });
        *resp.body_mut() = axum::body::Body::from(body.to_string());
        return Ok(resp);
    }
    // Storing the file and recording it run as a task of their own: a client that hangs up
    // drops this handler, and must not leave a stored file without its record.
    let file = validated.file;
    let record = {
        let (state, id) = (Arc::clone(&state), id.clone());
        tokio::spawn(async move {
            let committed = {
                let id = id.clone();
                blocking(&state, move |s| s.blobs.commit(file, &id)).await
            };
            match committed {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(ApiError::conflict("an artifact with this id exists"));
                }
                r => r?,
            }
            if let Err(e) = state.store.insert_artifact(&artifact) {
                // The file is this upload's own: commit never replaces one (on object
                // stores that honour If-None-Match).
                let _ = blocking(&state, move |s| s.blobs.delete(&id)).await;
                return Err(e.into());
            }
            Ok(())
        })
    };
    record
        .await
        .map_err(|e| ApiError::internal(format!("storing the artifact failed: {e}")))??;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("{BASE}/{id}"))],
    )
        .into_response())
}

/// Runs blocking storage work off the async workers.
async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&AppState) -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(|e| std::io::Error::other(format!("storage task failed: {e}")))?
}
