//! The metadata store: users, devices and their auth sets, inventory, artifacts, deployments.
//! SQLite (WAL mode, the default) or PostgreSQL (see `db`); the schema migrates itself on
//! open.

mod artifacts;
pub mod db;
mod deployments;
mod devices;
mod inventory;
mod pgtls;
mod pgurl;
mod picking;
mod schema;
mod users;

use std::path::Path;

use db::{args, Backend, Db, Dialect};

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
    /// SQLite failed.
    #[error("{0}")]
    Sql(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("database: {}", pg_message(.0))]
    Pg(#[from] postgres::Error),
    /// No database connection could be made.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// A column did not hold what was expected.
    #[error("stored data is corrupt: {0}")]
    Column(String),
    /// A stored JSON column did not parse.
    #[error("stored data is corrupt: {0}")]
    Json(#[from] serde_json::Error),
    /// The URL names a backend this build does not have.
    #[error("unsupported database URL {0} (expected sqlite:PATH or postgres://...)")]
    Url(String),
}

/// PostgreSQL's own message where there is one (the driver's display is only "db error").
pub(crate) fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => d.message().to_string(),
        None => {
            let mut s = e.to_string();
            if let Some(src) = std::error::Error::source(e) {
                s = format!("{s}: {src}");
            }
            s
        }
    }
}

/// Result of a store call.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Connections a server keeps to PostgreSQL at most.
pub const PG_POOL_SIZE: u32 = 16;

/// The metadata store.
pub struct Store {
    db: Backend,
}

impl Store {
    /// Opens the store named by `url`: `sqlite:PATH` (or a bare path), or
    /// `postgres://USER:PASSWORD@HOST[:PORT]/DB` (also `postgresql://`); creates and migrates
    /// the schema as needed.
    pub fn open_url(url: &str) -> Result<Store> {
        match url.split_once(':') {
            Some(("postgres" | "postgresql", _)) => {
                let store = Store {
                    db: Backend::postgres(url, PG_POOL_SIZE)?,
                };
                store.db.read(schema::migrate)?;
                Ok(store)
            }
            Some(("sqlite", p)) => Self::open(Path::new(p.trim_start_matches("//"))),
            Some((scheme, _)) if scheme.len() > 1 => Err(StoreError::Url(format!("{url:?}"))),
            _ => Self::open(Path::new(url)),
        }
    }

    /// Opens (creating and migrating) the SQLite database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let store = Store {
            db: Backend::sqlite(path)?,
        };
        store.db.read(schema::migrate)?;
        Ok(store)
    }

    /// Runs `f` on the database outside a transaction.
    fn read<T: Send>(&self, f: impl FnMut(&mut dyn Db) -> Result<T> + Send) -> Result<T> {
        self.db.read(f)
    }

    /// Runs `f` in a transaction (run again on PostgreSQL if it loses a race).
    fn write<T: Send>(&self, f: impl FnMut(&mut dyn Db) -> Result<T> + Send) -> Result<T> {
        self.db.write(f)
    }

    /// Which backend the store is on.
    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// The server secret named `name`, created with `make` on first use. Servers sharing a
    /// database agree on it: the first one to store it wins.
    pub fn secret(&self, name: &str, make: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>> {
        let sql = "SELECT value FROM settings WHERE name=?1";
        if let Some(v) = self.read(|db| db.opt(sql, args![name]))? {
            return Ok(v);
        }
        let v = make();
        self.write(|db| {
            db.exec(
                "INSERT INTO settings(name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                args![name, &v[..]],
            )?;
            db.one(sql, args![name])
        })
    }
}

/// Clamps paging parameters: (limit, offset).
pub fn page(page: Option<u32>, per_page: Option<u32>, default: u32) -> (i64, i64) {
    let per = per_page.unwrap_or(default).clamp(1, 500) as i64;
    let page = page.unwrap_or(1).max(1) as i64;
    (per, (page - 1) * per)
}
