//! Devices and their auth sets (deviceauth): admission states, preauthorization, decommission,
//! and the revocation check behind every device token.

use rusqlite::{params, OptionalExtension, Row};
use serde_json::Value;

use super::super::{clock, ids};
use super::{Result, Store};

/// One identity/key pair of a device with its admission status.
#[derive(Debug, Clone)]
pub struct AuthSet {
    /// Auth set id.
    pub id: String,
    /// Public key, canonical PKIX PEM.
    pub pubkey: String,
    /// `pending`, `accepted`, `rejected` or `preauthorized`.
    pub status: String,
    /// Last change, unix seconds.
    pub ts: i64,
}

/// A device as deviceauth sees it.
#[derive(Debug, Clone)]
pub struct Device {
    /// Device id.
    pub id: String,
    /// Identity attributes (a JSON object).
    pub identity_data: Value,
    /// Best status among the auth sets, `noauth` when there are none.
    pub status: String,
    /// Creation time, unix seconds.
    pub created_ts: i64,
    /// Last change, unix seconds.
    pub updated_ts: i64,
    /// Last accepted authentication, unix seconds.
    pub check_in_time: Option<i64>,
    /// Auth sets, oldest first.
    pub auth_sets: Vec<AuthSet>,
}

/// What an authentication request found.
#[derive(Debug, Clone)]
pub struct AuthOutcome {
    /// Device id.
    pub device_id: String,
    /// Auth set id.
    pub auth_set_id: String,
    /// The auth set's status after the request.
    pub status: String,
}

/// A refused admission change.
#[derive(Debug, PartialEq)]
pub enum AdmissionError {
    /// No such device or auth set.
    NotFound,
    /// The transition is not allowed.
    Invalid(String),
}

const STATUS_SQL: &str = "COALESCE((SELECT CASE MIN(CASE a.status WHEN 'accepted' THEN 0 \
    WHEN 'preauthorized' THEN 1 WHEN 'pending' THEN 2 ELSE 3 END) WHEN 0 THEN 'accepted' \
    WHEN 1 THEN 'preauthorized' WHEN 2 THEN 'pending' ELSE 'rejected' END \
    FROM auth_sets a WHERE a.device_id = d.id), 'noauth')";

fn device_row(r: &Row) -> rusqlite::Result<(Device, String)> {
    let identity: String = r.get(1)?;
    Ok((
        Device {
            id: r.get(0)?,
            identity_data: serde_json::from_str(&identity).unwrap_or(Value::Null),
            created_ts: r.get(2)?,
            updated_ts: r.get(3)?,
            check_in_time: r.get(4)?,
            status: r.get(5)?,
            auth_sets: Vec::new(),
        },
        identity,
    ))
}

impl Store {
    /// Records an authentication request from the device with `identity` (canonical JSON,
    /// hashed to `identity_hash`) and key `pubkey`: creates the device and auth set as
    /// `pending` if new, and turns a matching preauthorized set into `accepted`.
    pub fn auth_request(
        &self,
        identity_hash: &str,
        identity: &str,
        pubkey: &str,
    ) -> Result<AuthOutcome> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let now = clock::unix_now();
        let device_id: String = match tx
            .query_row(
                "SELECT id FROM devices WHERE identity_hash=?1",
                [identity_hash],
                |r| r.get(0),
            )
            .optional()?
        {
            Some(id) => id,
            None => insert_device(&tx, identity_hash, identity, now)?,
        };
        let found: Option<(String, String)> = tx
            .query_row(
                "SELECT id, status FROM auth_sets WHERE device_id=?1 AND pubkey=?2",
                params![device_id, pubkey],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (auth_set_id, mut status) = match found {
            Some(f) => f,
            None => {
                let id = ids::uuid_v4();
                tx.execute(
                    "INSERT INTO auth_sets(id, device_id, pubkey, status, ts)
                     VALUES (?1, ?2, ?3, 'pending', ?4)",
                    params![id, device_id, pubkey, now],
                )?;
                tx.execute(
                    "UPDATE devices SET updated_ts=?2 WHERE id=?1",
                    params![device_id, now],
                )?;
                (id, "pending".to_string())
            }
        };
        if status == "preauthorized" {
            tx.execute(
                "UPDATE auth_sets SET status='accepted', ts=?2 WHERE id=?1",
                params![auth_set_id, now],
            )?;
            status = "accepted".into();
        }
        if status == "accepted" {
            tx.execute(
                "UPDATE devices SET check_in_time=?2 WHERE id=?1",
                params![device_id, now],
            )?;
        }
        tx.commit()?;
        Ok(AuthOutcome {
            device_id,
            auth_set_id,
            status,
        })
    }

    /// True when `auth_set_id` of `device_id` is accepted: a device token is valid only then.
    pub fn token_valid(&self, device_id: &str, auth_set_id: &str) -> Result<bool> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT 1 FROM auth_sets WHERE id=?1 AND device_id=?2 AND status='accepted'",
        )?;
        Ok(st.exists(params![auth_set_id, device_id])?)
    }

    /// Devices, optionally only those with `status` and only `ids`; with the total count.
    pub fn list_devices(
        &self,
        status: Option<&str>,
        ids_filter: &[String],
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Device>, i64)> {
        let db = self.db();
        let mut conds = vec!["1=1".to_string()];
        let mut args: Vec<String> = Vec::new();
        if let Some(s) = status {
            args.push(s.into());
            conds.push(format!("{STATUS_SQL} = ?{}", args.len()));
        }
        if !ids_filter.is_empty() {
            let mut marks = Vec::new();
            for id in ids_filter {
                args.push(id.clone());
                marks.push(format!("?{}", args.len()));
            }
            conds.push(format!("d.id IN ({})", marks.join(",")));
        }
        let cond = conds.join(" AND ");
        let total: i64 = db.query_row(
            &format!("SELECT COUNT(*) FROM devices d WHERE {cond}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let sql = format!(
            "SELECT d.id, d.identity_data, d.created_ts, d.updated_ts, d.check_in_time, \
             {STATUS_SQL} FROM devices d WHERE {cond} ORDER BY d.created_ts, d.id \
             LIMIT {limit} OFFSET {offset}"
        );
        let mut st = db.prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), device_row)?;
        let mut out = Vec::new();
        for row in rows {
            let (mut d, _) = row?;
            d.auth_sets = auth_sets(&db, &d.id)?;
            out.push(d);
        }
        Ok((out, total))
    }

    /// One device.
    pub fn device(&self, id: &str) -> Result<Option<Device>> {
        Ok(self
            .list_devices(None, &[id.to_string()], 1, 0)?
            .0
            .into_iter()
            .next())
    }

    /// Changes the status of auth set `aid` of device `id` following upstream's transitions.
    /// Accepting one set rejects the device's other accepted sets.
    pub fn set_auth_status(
        &self,
        id: &str,
        aid: &str,
        to: &str,
    ) -> Result<std::result::Result<(), AdmissionError>> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let from: Option<String> = tx
            .query_row(
                "SELECT status FROM auth_sets WHERE id=?1 AND device_id=?2",
                params![aid, id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(from) = from else {
            return Ok(Err(AdmissionError::NotFound));
        };
        let allowed = match to {
            "accepted" => from == "pending" || from == "rejected" || from == "accepted",
            "rejected" => from == "pending" || from == "accepted" || from == "rejected",
            "pending" => from != "preauthorized",
            _ => {
                return Ok(Err(AdmissionError::Invalid(format!(
                    "invalid status {to:?}"
                ))))
            }
        };
        if !allowed {
            return Ok(Err(AdmissionError::Invalid(format!(
                "cannot change an auth set from {from} to {to}"
            ))));
        }
        let now = clock::unix_now();
        if to == "accepted" {
            tx.execute(
                "UPDATE auth_sets SET status='rejected', ts=?3
                 WHERE device_id=?1 AND id<>?2 AND status='accepted'",
                params![id, aid, now],
            )?;
        }
        tx.execute(
            "UPDATE auth_sets SET status=?2, ts=?3 WHERE id=?1",
            params![aid, to, now],
        )?;
        tx.execute(
            "UPDATE devices SET updated_ts=?2 WHERE id=?1",
            params![id, now],
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Removes one auth set; false if there was none.
    pub fn delete_auth_set(&self, id: &str, aid: &str) -> Result<bool> {
        Ok(self.db().execute(
            "DELETE FROM auth_sets WHERE id=?1 AND device_id=?2",
            params![aid, id],
        )? > 0)
    }

    /// Decommissions a device: its active device deployments become `decommissioned`, and the
    /// device, its auth sets and inventory are removed. False if there was no such device.
    pub fn decommission(&self, id: &str) -> Result<bool> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let exists = tx.query_row("SELECT COUNT(*) FROM devices WHERE id=?1", [id], |r| {
            r.get::<_, i64>(0)
        })? > 0;
        if exists {
            super::deployments::finish_device(&tx, id, "decommissioned")?;
            tx.execute("DELETE FROM devices WHERE id=?1", [id])?;
        }
        tx.commit()?;
        Ok(exists)
    }

    /// Preauthorizes `identity` with `pubkey`. Returns the new device id, or the existing
    /// device when one has this identity (unless `force`).
    pub fn preauthorize(
        &self,
        identity_hash: &str,
        identity: &str,
        pubkey: &str,
        force: bool,
    ) -> Result<std::result::Result<String, Device>> {
        let existing: Option<String> = self
            .db()
            .query_row(
                "SELECT id FROM devices WHERE identity_hash=?1",
                [identity_hash],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = &existing {
            if !force {
                if let Some(d) = self.device(id)? {
                    return Ok(Err(d));
                }
            }
        }
        let mut db = self.db();
        let tx = db.transaction()?;
        let now = clock::unix_now();
        let id = match existing {
            Some(id) => id,
            None => insert_device(&tx, identity_hash, identity, now)?,
        };
        tx.execute(
            "INSERT INTO auth_sets(id, device_id, pubkey, status, ts)
             VALUES (?1, ?2, ?3, 'preauthorized', ?4)
             ON CONFLICT(device_id, pubkey) DO UPDATE SET status='preauthorized', ts=?4",
            params![ids::uuid_v4(), id, pubkey, now],
        )?;
        tx.commit()?;
        Ok(Ok(id))
    }

    /// Ids of all accepted devices.
    pub fn accepted_device_ids(&self) -> Result<Vec<String>> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT DISTINCT device_id FROM auth_sets WHERE status='accepted' ORDER BY device_id",
        )?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Creates a device with no auth sets; returns its id.
fn insert_device(
    tx: &rusqlite::Transaction,
    hash: &str,
    identity: &str,
    now: i64,
) -> Result<String> {
    let id = ids::uuid_v4();
    tx.execute(
        "INSERT INTO devices(id, identity_hash, identity_data, created_ts, updated_ts)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![id, hash, identity, now],
    )?;
    Ok(id)
}

fn auth_sets(db: &rusqlite::Connection, device_id: &str) -> Result<Vec<AuthSet>> {
    let mut st = db.prepare_cached(
        "SELECT id, pubkey, status, ts FROM auth_sets WHERE device_id=?1 ORDER BY ts, id",
    )?;
    let rows = st.query_map([device_id], |r| {
        Ok(AuthSet {
            id: r.get(0)?,
            pubkey: r.get(1)?,
            status: r.get(2)?,
            ts: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
