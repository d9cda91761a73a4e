//! Devices and their auth sets (deviceauth): admission states, preauthorization, decommission,
//! and the revocation check behind every device token.

use serde_json::Value;

use super::super::{clock, ids};
use super::db::{args, Db, Row, Val};
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

fn device_row(r: &Row) -> Result<Device> {
    let identity: String = r.get(1)?;
    Ok(Device {
        id: r.get(0)?,
        identity_data: serde_json::from_str(&identity).unwrap_or(Value::Null),
        created_ts: r.get(2)?,
        updated_ts: r.get(3)?,
        check_in_time: r.get(4)?,
        status: r.get(5)?,
        auth_sets: Vec::new(),
    })
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
        self.write(|db| {
            let now = clock::unix_now();
            let device_id: String = match db.opt(
                "SELECT id FROM devices WHERE identity_hash=?1",
                args![identity_hash],
            )? {
                Some(id) => id,
                None => insert_device(db, identity_hash, identity, now)?,
            };
            let found = db.row(
                "SELECT id, status FROM auth_sets WHERE device_id=?1 AND pubkey=?2",
                args![&device_id, pubkey],
            )?;
            let (auth_set_id, mut status): (String, String) = match found {
                Some(r) => (r.get(0)?, r.get(1)?),
                None => {
                    let id = ids::uuid_v4();
                    db.exec(
                        "INSERT INTO auth_sets(id, device_id, pubkey, status, ts)
                         VALUES (?1, ?2, ?3, 'pending', ?4)",
                        args![&id, &device_id, pubkey, now],
                    )?;
                    db.exec(
                        "UPDATE devices SET updated_ts=?2 WHERE id=?1",
                        args![&device_id, now],
                    )?;
                    (id, "pending".to_string())
                }
            };
            if status == "preauthorized" {
                db.exec(
                    "UPDATE auth_sets SET status='accepted', ts=?2 WHERE id=?1",
                    args![&auth_set_id, now],
                )?;
                status = "accepted".into();
            }
            if status == "accepted" {
                db.exec(
                    "UPDATE devices SET check_in_time=?2 WHERE id=?1",
                    args![&device_id, now],
                )?;
            }
            Ok(AuthOutcome {
                device_id,
                auth_set_id,
                status,
            })
        })
    }

    /// True when `auth_set_id` of `device_id` is accepted: a device token is valid only then.
    pub fn token_valid(&self, device_id: &str, auth_set_id: &str) -> Result<bool> {
        self.read(|db| {
            db.exists(
                "SELECT 1 FROM auth_sets WHERE id=?1 AND device_id=?2 AND status='accepted'",
                args![auth_set_id, device_id],
            )
        })
    }

    /// Devices, optionally only those with `status` and only `ids`; with the total count.
    pub fn list_devices(
        &self,
        status: Option<&str>,
        ids_filter: &[String],
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Device>, i64)> {
        let mut conds = vec!["1=1".to_string()];
        let mut vals: Vec<Val> = Vec::new();
        if let Some(s) = status {
            vals.push(s.into());
            conds.push(format!("{STATUS_SQL} = ?{}", vals.len()));
        }
        if !ids_filter.is_empty() {
            let mut marks = Vec::new();
            for id in ids_filter {
                vals.push(id.into());
                marks.push(format!("?{}", vals.len()));
            }
            conds.push(format!("d.id IN ({})", marks.join(",")));
        }
        let cond = conds.join(" AND ");
        let count = format!("SELECT COUNT(*) FROM devices d WHERE {cond}");
        let list = format!(
            "SELECT d.id, d.identity_data, d.created_ts, d.updated_ts, d.check_in_time, \
             {STATUS_SQL} FROM devices d WHERE {cond} ORDER BY d.created_ts, d.id \
             LIMIT {limit} OFFSET {offset}"
        );
        self.read(|db| {
            let total: i64 = db.one(&count, &vals)?;
            let mut out = Vec::new();
            for r in db.rows(&list, &vals)? {
                let mut d = device_row(&r)?;
                d.auth_sets = auth_sets(db, &d.id)?;
                out.push(d);
            }
            Ok((out, total))
        })
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
        self.write(|db| {
            let from: Option<String> = db.opt(
                "SELECT status FROM auth_sets WHERE id=?1 AND device_id=?2",
                args![aid, id],
            )?;
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
                db.exec(
                    "UPDATE auth_sets SET status='rejected', ts=?3
                     WHERE device_id=?1 AND id<>?2 AND status='accepted'",
                    args![id, aid, now],
                )?;
            }
            db.exec(
                "UPDATE auth_sets SET status=?2, ts=?3 WHERE id=?1",
                args![aid, to, now],
            )?;
            db.exec(
                "UPDATE devices SET updated_ts=?2 WHERE id=?1",
                args![id, now],
            )?;
            Ok(Ok(()))
        })
    }

    /// Removes one auth set; false if there was none.
    pub fn delete_auth_set(&self, id: &str, aid: &str) -> Result<bool> {
        self.write(|db| {
            db.exec(
                "DELETE FROM auth_sets WHERE id=?1 AND device_id=?2",
                args![aid, id],
            )
        })
        .map(|n| n > 0)
    }

    /// Decommissions a device: its active device deployments become `decommissioned`, and the
    /// device, its auth sets and inventory are removed. False if there was no such device.
    pub fn decommission(&self, id: &str) -> Result<bool> {
        self.write(|db| {
            let exists = db.exists("SELECT 1 FROM devices WHERE id=?1", args![id])?;
            if exists {
                super::deployments::finish_device(db, id, "decommissioned")?;
                db.exec("DELETE FROM devices WHERE id=?1", args![id])?;
            }
            Ok(exists)
        })
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
        let existing: Option<String> = self.read(|db| {
            db.opt(
                "SELECT id FROM devices WHERE identity_hash=?1",
                args![identity_hash],
            )
        })?;
        if let Some(id) = &existing {
            if !force {
                if let Some(d) = self.device(id)? {
                    return Ok(Err(d));
                }
            }
        }
        self.write(|db| {
            let now = clock::unix_now();
            let id = match db.opt(
                "SELECT id FROM devices WHERE identity_hash=?1",
                args![identity_hash],
            )? {
                Some(id) => id,
                None => insert_device(db, identity_hash, identity, now)?,
            };
            db.exec(
                "INSERT INTO auth_sets(id, device_id, pubkey, status, ts)
                 VALUES (?1, ?2, ?3, 'preauthorized', ?4)
                 ON CONFLICT(device_id, pubkey) DO UPDATE SET status='preauthorized', ts=?4",
                args![ids::uuid_v4(), &id, pubkey, now],
            )?;
            Ok(Ok(id))
        })
    }

    /// Ids of all accepted devices.
    pub fn accepted_device_ids(&self) -> Result<Vec<String>> {
        self.read(|db| {
            db.col(
                "SELECT DISTINCT device_id FROM auth_sets WHERE status='accepted' \
                 ORDER BY device_id",
                &[],
            )
        })
    }
}

/// Creates a device with no auth sets; returns its id.
fn insert_device(db: &mut dyn Db, hash: &str, identity: &str, now: i64) -> Result<String> {
    let id = ids::uuid_v4();
    db.exec(
        "INSERT INTO devices(id, identity_hash, identity_data, created_ts, updated_ts)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        args![&id, hash, identity, now],
    )?;
    Ok(id)
}

fn auth_sets(db: &mut dyn Db, device_id: &str) -> Result<Vec<AuthSet>> {
    db.rows(
        "SELECT id, pubkey, status, ts FROM auth_sets WHERE device_id=?1 ORDER BY ts, id",
        args![device_id],
    )?
    .iter()
    .map(|r| {
        Ok(AuthSet {
            id: r.get(0)?,
            pubkey: r.get(1)?,
            status: r.get(2)?,
            ts: r.get(3)?,
        })
    })
    .collect()
}
