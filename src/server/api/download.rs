//! Artifact downloads through signed links: no Authorization header, the link itself carries an
//! expiry and an HMAC. Supports single `Range` requests (206/416) so interrupted downloads
//! resume.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::server::app::AppState;
use crate::server::clock;
use crate::server::error::{ApiError, ApiResult};
use crate::server::link::{EXPIRE, SIGNATURE};

/// A `Range` that cannot be served from the file (answered with 416).
#[derive(Debug, PartialEq)]
pub struct Unsatisfiable;

/// A parsed `Range: bytes=` header against a file of `len` bytes: Ok(None) for no or an
/// unsupported range (serve everything).
pub fn parse_range(h: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 {
            return Err(Unsatisfiable);
        }
        (
            len.saturating_sub(n),
            len.checked_sub(1).ok_or(Unsatisfiable)?,
        )
    } else {
        let start: u64 = a.parse().map_err(|_| Unsatisfiable)?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .min(len.saturating_sub(1))
        };
        (start, end)
    };
    if start >= len || end < start {
        return Err(Unsatisfiable);
    }
    Ok(Some((start, end)))
}

/// `GET /api/devices/v1/deployments/download/{id}`.
pub async fn download(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let path = format!("/api/devices/v1/deployments/download/{id}");
    state
        .links
        .verify(
            &path,
            q.get(EXPIRE).map(String::as_str),
            q.get(SIGNATURE).map(String::as_str),
            clock::unix_now(),
        )
        .map_err(|e| ApiError::forbidden(e.to_string()))?;
    if !state.blobs.serves_files() {
        return Err(ApiError::not_found(
            "artifacts are served by the object store",
        ));
    }
    let Ok(path) = state.blobs.local_path(&id) else {
        return Err(ApiError::not_found("no such artifact"));
    };
    let mut file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found("no such artifact"))
        }
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata().await?.len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match parse_range(range, len) {
        Ok(None) => (StatusCode::OK, 0, len.saturating_sub(1)),
        Ok(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Err(Unsatisfiable) => {
            let mut r = ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable")
                .into_response();
            if let Ok(v) = format!("bytes */{len}").parse() {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    file.seek(SeekFrom::Start(start)).await?;
    let body = Body::from_stream(ReaderStream::with_capacity(file.take(count), 64 << 10));
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/vnd.mender-artifact")
        .header(header::CONTENT_LENGTH, count)
        .header(header::ACCEPT_RANGES, "bytes");
    if status == StatusCode::PARTIAL_CONTENT {
        resp = resp.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    resp.body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::{parse_range, Unsatisfiable};
    use crate::server::app::{router, AppState};
    use crate::server::{clock, ServerConfig};

    #[tokio::test(flavor = "multi_thread")]
    async fn signed_links_to_ids_that_are_no_artifact_id_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig::new(dir.path().to_path_buf());
        let state = Arc::new(AppState::open(config, "http://localhost".into()).unwrap());
        // (as sent, as the handler sees it): a NUL byte made this a 500, `..` the directory.
        for (sent, id) in [("a%00b", "a\0b"), ("..", ".."), ("%2E", ".")] {
            let path = format!("/api/devices/v1/deployments/download/{id}");
            let query = state.links.query(&path, clock::unix_now() + 60);
            let uri = format!("/api/devices/v1/deployments/download/{sent}?{query}");
            let req = Request::get(uri).body(Body::empty()).unwrap();
            let resp = router(state.clone()).oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{sent}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=2-"), 10), Ok(Some((2, 9))));
        assert_eq!(parse_range(Some("bytes=2-4"), 10), Ok(Some((2, 4))));
        assert_eq!(parse_range(Some("bytes=2-40"), 10), Ok(Some((2, 9))));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some((7, 9))));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=x-"), 10), Err(Unsatisfiable));
        assert_eq!(parse_range(Some("items=1-2"), 10), Ok(None));
    }
}
