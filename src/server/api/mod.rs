//! The HTTP handlers, one file per upstream service area, and the paging helpers they share.

pub mod artifacts;
pub mod deployments;
pub mod devauth;
pub mod device_auth;
pub mod device_deployments;
pub mod device_inventory;
pub mod download;
pub mod inventory;
pub mod users;

use axum::http::{HeaderMap, HeaderValue};
use serde::Deserialize;

/// `page` and `per_page` query parameters.
#[derive(Debug, Default, Deserialize)]
pub struct Paging {
    /// 1-based page.
    pub page: Option<u32>,
    /// Page size.
    pub per_page: Option<u32>,
}

/// `X-Total-Count` and an RFC 5988 `Link` header for a paged list at `path`.
pub fn paging_headers(path: &str, p: &Paging, default: u32, total: i64) -> HeaderMap {
    let per = p.per_page.unwrap_or(default).clamp(1, 500) as i64;
    let page = p.page.unwrap_or(1).max(1) as i64;
    let mut links = vec![format!("<{path}?page=1&per_page={per}>; rel=\"first\"")];
    if page > 1 {
        links.push(format!(
            "<{path}?page={}&per_page={per}>; rel=\"prev\"",
            page - 1
        ));
    }
    if page * per < total {
        links.push(format!(
            "<{path}?page={}&per_page={per}>; rel=\"next\"",
            page + 1
        ));
    }
    let mut h = HeaderMap::new();
    h.insert("X-Total-Count", HeaderValue::from(total));
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        h.insert(axum::http::header::LINK, v);
    }
    h
}
