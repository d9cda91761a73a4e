//! What the server is told at start-up: where to listen, where to keep its data, and its limits.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory: the default database and artifact directory live here.
    pub data_dir: PathBuf,
    /// Metadata store URL (`sqlite:PATH`); default `sqlite:<data>/server.db`.
    pub database: Option<String>,
    /// Blob store URL (`file:DIR`); default `file:<data>/artifacts`.
    pub storage: Option<String>,
    /// Base URL devices and tools reach this server at, for absolute download links;
    /// default `http(s)://<listen>`.
    pub external_url: Option<String>,
    /// TLS certificate chain and private key (PEM files); plain HTTP when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Lifetime of download links, seconds.
    pub link_lifetime: i64,
    /// Lifetime of device and user tokens, seconds.
    pub token_lifetime: i64,
    /// Requests a device or user may make per `rate_interval` (0: no limit).
    pub rate_quota: u32,
    /// Length of a rate-limit window, seconds.
    pub rate_interval: u64,
    /// Largest JSON request body, bytes.
    pub max_body: usize,
    /// Largest artifact upload, bytes.
    pub max_artifact_size: u64,
}

impl ServerConfig {
    /// Defaults for a server keeping its data in `data_dir`.
    pub fn new(data_dir: PathBuf) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir,
            database: None,
            storage: None,
            external_url: None,
            tls: None,
            link_lifetime: 24 * 3600,
            token_lifetime: 7 * 24 * 3600,
            rate_quota: 600,
            rate_interval: 60,
            max_body: 1 << 20,
            max_artifact_size: 10 << 30,
        }
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir.join("server.db").display()))
    }

    /// The storage URL in force.
    pub fn storage_url(&self) -> String {
        self.storage
            .clone()
            .unwrap_or_else(|| format!("file:{}", self.data_dir.join("artifacts").display()))
    }

    /// The base URL for links, without a trailing slash, given the address actually bound.
    pub fn base_url(&self, bound: SocketAddr, tls: bool) -> String {
        match &self.external_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None if tls => format!("https://{bound}"),
            None => format!("http://{bound}"),
        }
    }
}
