//! The Mender server: the device and management HTTP APIs over a metadata store (SQLite) and a
//! blob store (a local directory or an S3 bucket), in one process.

pub mod api;
pub mod app;
pub mod auth;
pub mod blob;
pub mod clock;
pub mod config;
pub mod error;
pub mod ids;
pub mod link;
pub mod ratelimit;
pub mod s3;
pub mod store;
pub mod tls;
pub mod token;
pub mod upload;

pub use app::{serve, AppState, ServeError};
pub use config::ServerConfig;
pub use error::ApiError;
pub use store::Store;
