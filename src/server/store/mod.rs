//! The metadata store: users, devices and their auth sets, inventory, artifacts, deployments.
//! One SQLite database (WAL mode) that migrates itself on open.

mod artifacts;
mod deployments;
mod devices;
mod inventory;
mod picking;
mod schema;
mod users;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension};

pub use artifacts::{ArtifactRecord, NewArtifact};
pub use deployments::{
    CreateError, DeploymentRecord, DeviceDeployment, NextOutcome, StatusOutcome, FINAL_STATUSES,
    STATUSES,
};
pub use devices::{AdmissionError, AuthOutcome, AuthSet, Device};
pub use inventory::Attribute;
pub use users::User;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("{0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored JSON column did not parse.
    #[error("stored data is corrupt: {0}")]
    Json(#[from] serde_json::Error),
    /// The URL names a backend this build does not have.
    #[error("unsupported database URL {0:?} (expected sqlite:PATH)")]
    Url(String),
}

/// Result of a store call.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The metadata store.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens the store named by `url` (`sqlite:PATH`, or a bare path), creating and migrating
    /// it as needed.
    pub fn open_url(url: &str) -> Result<Store> {
        let path = match url.split_once(':') {
            Some(("sqlite", p)) => p.trim_start_matches("//"),
            Some((scheme, _)) if scheme.len() > 1 => return Err(StoreError::Url(url.into())),
            _ => url,
        };
        Self::open(Path::new(path))
    }

    /// Opens (creating and migrating) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;
             PRAGMA busy_timeout=5000;",
        )?;
        schema::migrate(&conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server secret named `name`, created with `make` on first use.
    pub fn secret(&self, name: &str, make: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>> {
        let db = self.db();
        let found: Option<Vec<u8>> = db
            .query_row("SELECT value FROM settings WHERE name=?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(v) = found {
            return Ok(v);
        }
        let v = make();
        db.execute(
            "INSERT INTO settings(name, value) VALUES (?1, ?2)",
            rusqlite::params![name, v],
        )?;
        Ok(v)
    }
}

/// Clamps paging parameters: (limit, offset).
pub fn page(page: Option<u32>, per_page: Option<u32>, default: u32) -> (i64, i64) {
    let per = per_page.unwrap_or(default).clamp(1, 500) as i64;
    let page = page.unwrap_or(1).max(1) as i64;
    (per, (page - 1) * per)
}
