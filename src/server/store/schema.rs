//! The database schema and its migrations, applied in order on open; `user_version` records how
//! far a database has come.

use rusqlite::Connection;

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
];

/// Brings the database at `conn` up to the newest schema.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let have: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(have as usize) {
        conn.execute_batch(&format!(
            "BEGIN; {m}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_harmless() {
        let c = Connection::open_in_memory().unwrap();
        migrate(&c).unwrap();
        migrate(&c).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
    }
}
