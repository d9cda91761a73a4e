//! The running server: shared state, the route table, and the listener with graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use axum::Router;

use super::api;
use super::blob::BlobStore;
use super::config::ServerConfig;
use super::error::ApiError;
use super::ids;
use super::link::LinkSigner;
use super::ratelimit::RateLimiter;
use super::store::Store;
use super::token::TokenSigner;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A file or socket operation failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The metadata store failed to open.
    #[error("database: {0}")]
    Store(#[from] super::store::StoreError),
    /// The TLS certificate or key could not be used.
    #[error("{0}")]
    Tls(#[from] super::tls::TlsError),
    /// The blob store failed to open.
    #[error("storage: {0}")]
    Blob(#[from] super::blob::BlobError),
}

/// What every handler shares.
pub struct AppState {
    /// Settings.
    pub config: ServerConfig,
    /// Metadata.
    pub store: Store,
    /// Artifact files.
    pub blobs: BlobStore,
    /// Token signing.
    pub tokens: TokenSigner,
    /// Download-link signing.
    pub links: LinkSigner,
    /// Request quotas.
    pub limiter: RateLimiter,
    /// Absolute base URL for links.
    pub base_url: String,
}

impl AppState {
    /// Opens the stores named in `config`; links will start with `base_url`.
    pub fn open(config: ServerConfig, base_url: String) -> Result<AppState, ServeError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| ServeError::Io(config.data_dir.display().to_string(), e))?;
        let store = Store::open_url(&config.database_url())?;
        let blobs = BlobStore::open_url(&config.storage_url(), &config.data_dir)?;
        let mut config = config;
        if matches!(blobs, BlobStore::S3 { .. }) {
            // One S3 PUT stores at most 5 GiB: larger uploads are refused up front (413)
            // rather than after they were received and checked.
            config.max_artifact_size = config.max_artifact_size.min(5 << 30);
        }
        let token_key = store.secret("token-key", || ids::random_bytes(32))?;
        let link_key = store.secret("link-key", || ids::random_bytes(32))?;
        Ok(AppState {
            limiter: RateLimiter::new(
                config.rate_quota,
                Duration::from_secs(config.rate_interval.max(1)),
            ),
            tokens: TokenSigner::new(&token_key),
            links: LinkSigner::new(&link_key),
            store,
            blobs,
            base_url,
            config,
        })
    }
}

/// The address a request came from, over plain TCP or TLS.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, super::tls::TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, super::tls::TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// The route table.
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config.max_body;
    let dev = "/api/devices/v1";
    let dep = "/api/management/v1/deployments";
    let upload = Router::new()
        .route(
            &format!("{dep}/artifacts"),
            post(api::artifacts::upload).get(api::artifacts::list),
        )
        .layer(DefaultBodyLimit::disable());
    Router::new()
        .route(
            &format!("{dev}/authentication/auth_requests"),
            post(api::device_auth::auth_request),
        )
        .merge(api::device_deployments::routes())
        .merge(api::device_inventory::routes())
        .route(
            &format!("{dev}/deployments/download/{{id}}"),
            get(api::download::download),
        )
        .merge(api::users::routes())
        .merge(api::devauth::routes())
        .merge(api::artifacts::routes())
        .merge(api::deployments::routes())
        .merge(api::inventory::routes())
        .layer(DefaultBodyLimit::max(max_body))
        .merge(upload)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .with_state(state)
}

/// Serves `config` until SIGTERM or SIGINT, then finishes in-flight requests and returns.
/// `ready` is called with the bound address once the server accepts connections.
pub async fn serve(config: ServerConfig, ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let listen = config.listen;
    let io = move |e| ServeError::Io(format!("listening on {listen}"), e);
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let tls = match &config.tls {
        Some((cert, key)) => Some(super::tls::acceptor(cert, key)?),
        None => None,
    };
    let base = config.base_url(addr, tls.is_some());
    let state = Arc::new(AppState::open(config, base)?);
    let app = router(state).into_make_service_with_connect_info::<Peer>();
    ready(addr);
    match tls {
        Some(acceptor) => {
            let listener = super::tls::TlsListener::new(listener, acceptor).map_err(io)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
    }
    .map_err(io)?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
