//! The database schema and its migrations, applied in order on open. The statements are
//! written for SQLite; PostgreSQL gets the same with its own names for the types (and byte-wise
//! text ordering, as SQLite's). SQLite records how far a database has come in `user_version`,
//! PostgreSQL in the table `schema_version`, migrated under an advisory lock so that servers
//! starting together do it once.

use super::db::{Db, Dialect};
use super::Result;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
CREATE TABLE settings (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE users (
    id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
    created_ts INTEGER NOT NULL);
CREATE TABLE devices (
    id TEXT PRIMARY KEY, identity_hash TEXT NOT NULL UNIQUE, identity_data TEXT NOT NULL,
    created_ts INTEGER NOT NULL, updated_ts INTEGER NOT NULL, check_in_time INTEGER,
    inventory_ts INTEGER, grp TEXT);
CREATE TABLE auth_sets (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    pubkey TEXT NOT NULL, status TEXT NOT NULL, ts INTEGER NOT NULL,
    UNIQUE (device_id, pubkey));
CREATE TABLE inventory (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE, name TEXT NOT NULL,
    value TEXT NOT NULL, description TEXT, ts INTEGER NOT NULL,
    PRIMARY KEY (device_id, name));
CREATE TABLE artifacts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,
    device_types TEXT NOT NULL, size INTEGER NOT NULL, modified INTEGER NOT NULL,
    meta TEXT NOT NULL);
CREATE INDEX artifacts_name ON artifacts(name);
CREATE TABLE deployments (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, artifact_name TEXT NOT NULL,
    created INTEGER NOT NULL, seq INTEGER NOT NULL, finished INTEGER,
    max_devices INTEGER NOT NULL, device_count INTEGER NOT NULL DEFAULT 0,
    force_installation INTEGER NOT NULL, total_size INTEGER NOT NULL DEFAULT 0,
    groups TEXT NOT NULL, artifacts TEXT NOT NULL, constructor TEXT NOT NULL);
CREATE INDEX deployments_seq ON deployments(seq);
CREATE TABLE device_deployments (
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    device_id TEXT NOT NULL, seq INTEGER NOT NULL, assigned INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL, substate TEXT, created INTEGER, started INTEGER, finished INTEGER,
    artifact_id TEXT, device_type TEXT, provides TEXT, log TEXT,
    PRIMARY KEY (deployment_id, device_id));
CREATE INDEX device_deployments_device ON device_deployments(device_id, seq);
"#,
    // 2: user tokens revoked by logout, kept until they would have expired.
    "CREATE TABLE revoked_tokens (jti TEXT PRIMARY KEY, exp INTEGER NOT NULL);",
    // 3: device listings page by creation time; groups are looked up by name.
    "CREATE INDEX devices_created ON devices(created_ts, id);
     CREATE INDEX devices_grp ON devices(grp);",
];

/// A migration in PostgreSQL's words.
fn postgres(m: &str) -> String {
    m.replace("INTEGER", "BIGINT")
        .replace("BLOB", "BYTEA")
        .replace(" TEXT", " TEXT COLLATE \"C\"")
}

/// Key of the advisory lock PostgreSQL migrations run under.
const PG_LOCK: i64 = 0x6d65_6e64_6572;

/// Brings the database up to the newest schema.
pub fn migrate(db: &mut dyn Db) -> Result<()> {
    match db.dialect() {
        Dialect::Sqlite => {
            let have: i64 = db.one("PRAGMA user_version", &[])?;
            for (i, m) in MIGRATIONS.iter().enumerate().skip(have as usize) {
                db.batch(&format!(
                    "BEGIN; {m}; PRAGMA user_version = {}; COMMIT;",
                    i + 1
                ))?;
            }
            Ok(())
        }
        Dialect::Postgres => {
            db.batch(&format!("SELECT pg_advisory_lock({PG_LOCK})"))?;
            let out = migrate_postgres(db);
            if out.is_err() {
                let _ = db.batch("ROLLBACK");
            }
            db.batch(&format!("SELECT pg_advisory_unlock({PG_LOCK})"))?;
            out
        }
    }
}

fn migrate_postgres(db: &mut dyn Db) -> Result<()> {
    db.batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let have: i64 = db.one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(have as usize) {
        db.batch(&format!(
            "BEGIN; {}; INSERT INTO schema_version(version) VALUES ({}); COMMIT;",
            postgres(m),
            i + 1
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::db::Backend;
    use super::*;

    #[test]
    fn migrating_twice_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let db = Backend::sqlite(&dir.path().join("s.db")).unwrap();
        db.read(migrate).unwrap();
        db.read(migrate).unwrap();
        let v: i64 = db.read(|d| d.one("PRAGMA user_version", &[])).unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
    }

    #[test]
    fn postgres_types() {
        let m = postgres(MIGRATIONS[1]);
        assert_eq!(
            m,
            "CREATE TABLE revoked_tokens (jti TEXT COLLATE \"C\" PRIMARY KEY, exp BIGINT NOT NULL);"
        );
    }
}
