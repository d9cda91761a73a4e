//! Deployments and device deployments: creation, the per-device `next` pick, status reports,
//! logs, abort and statistics. Every deployment gets one device-deployment row per target
//! device at creation (`pending`, unassigned); `next` assigns it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::clock;
use super::db::{args, Db, Row};
use super::{ArtifactRecord, Result, Store};

/// Every status a device deployment can have (the keys of the statistics).
pub const STATUSES: &[&str] = &[
    "success",
    "pending",
    "downloading",
    "rebooting",
    "installing",
    "failure",
    "noartifact",
    "already-installed",
    "aborted",
    "decommissioned",
    "pause_before_installing",
    "pause_before_rebooting",
    "pause_before_committing",
];

/// Statuses that end a device deployment.
pub const FINAL_STATUSES: &[&str] = &[
    "success",
    "failure",
    "noartifact",
    "already-installed",
    "aborted",
    "decommissioned",
];

/// A deployment with its statistics.
#[derive(Debug, Clone)]
pub struct DeploymentRecord {
    /// Deployment id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Artifact name.
    pub artifact_name: String,
    /// Creation, unix seconds.
    pub created: i64,
    /// Finish, unix seconds.
    pub finished: Option<i64>,
    /// Target device count.
    pub max_devices: i64,
    /// Devices that asked for it so far.
    pub device_count: i64,
    /// Candidate artifact ids.
    pub artifacts: Vec<String>,
    /// Groups it was created for.
    pub groups: Vec<String>,
    /// Bytes handed out.
    pub total_size: i64,
    /// Count per device-deployment status (every status present).
    pub stats: BTreeMap<String, i64>,
}

impl DeploymentRecord {
    /// `pending`, `inprogress` or `finished`, computed from the statistics as upstream does.
    pub fn status(&self) -> &'static str {
        let done: i64 = FINAL_STATUSES.iter().map(|s| self.stats[*s]).sum();
        if self.finished.is_some() || done >= self.max_devices {
            "finished"
        } else if self.stats.iter().any(|(k, v)| k != "pending" && *v > 0) {
            "inprogress"
        } else {
            "pending"
        }
    }
}

/// One device's part in a deployment.
#[derive(Debug, Clone)]
pub struct DeviceDeployment {
    /// Device id.
    pub device_id: String,
    /// Status.
    pub status: String,
    /// Free-text substate.
    pub substate: Option<String>,
    /// When the device was assigned, unix seconds.
    pub created: Option<i64>,
    /// First report.
    pub started: Option<i64>,
    /// Final report.
    pub finished: Option<i64>,
    /// Assigned artifact.
    pub artifact_id: Option<String>,
    /// Reported device type.
    pub device_type: Option<String>,
    /// True when a log was uploaded.
    pub has_log: bool,
}

/// What `next` found for a device.
#[derive(Debug)]
pub enum NextOutcome {
    /// Nothing to install.
    Nothing,
    /// The device reported different provides for its current deployment (now failed).
    Conflict,
    /// Install `artifact` for deployment `deployment_id`.
    Update {
        /// Deployment id.
        deployment_id: String,
        /// The artifact to install.
        artifact: ArtifactRecord,
    },
}

/// What a status report did.
#[derive(Debug, PartialEq)]
pub enum StatusOutcome {
    /// Recorded (or a repeat).
    Done,
    /// The device has no such deployment.
    NotFound,
    /// Aborted, decommissioned or otherwise finished: the device must give up.
    Conflict,
}

/// Why a deployment could not be created.
#[derive(Debug, PartialEq)]
pub enum CreateError {
    /// No artifact has that name.
    NoArtifact,
    /// An active deployment was made from the same request.
    Duplicate,
}

const DCOLS: &str = "id, name, artifact_name, created, finished, max_devices, device_count, \
                     artifacts, groups, total_size";

fn is_final(s: &str) -> bool {
    FINAL_STATUSES.contains(&s)
}

/// Ends every unfinished device deployment of `device_id` with `status`.
pub(super) fn finish_device(db: &mut dyn Db, device_id: &str, status: &str) -> Result<()> {
    let now = clock::unix_now();
    let ids: Vec<String> = db.col(
        "SELECT deployment_id FROM device_deployments WHERE device_id=?1 AND finished IS NULL",
        args![device_id],
    )?;
    db.exec(
        "UPDATE device_deployments SET status=?2, finished=?3 WHERE device_id=?1 AND finished IS NULL",
        args![device_id, status, now],
    )?;
    for id in ids {
        close_if_done(db, &id, now)?;
    }
    Ok(())
}

/// Marks deployment `id` finished once every device deployment has ended.
pub(super) fn close_if_done(db: &mut dyn Db, id: &str, now: i64) -> Result<()> {
    db.exec(
        "UPDATE deployments SET finished=?2 WHERE id=?1 AND finished IS NULL AND NOT EXISTS
         (SELECT 1 FROM device_deployments WHERE deployment_id=?1 AND finished IS NULL)",
        args![id, now],
    )?;
    Ok(())
}

fn deployment_row(r: &Row) -> Result<DeploymentRecord> {
    let arts: String = r.get(7)?;
    let groups: String = r.get(8)?;
    Ok(DeploymentRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        artifact_name: r.get(2)?,
        created: r.get(3)?,
        finished: r.get(4)?,
        max_devices: r.get(5)?,
        device_count: r.get(6)?,
        artifacts: serde_json::from_str(&arts).unwrap_or_default(),
        groups: serde_json::from_str(&groups).unwrap_or_default(),
        total_size: r.get(9)?,
        // Every status present; the counts are added by the caller.
        stats: STATUSES.iter().map(|s| (s.to_string(), 0)).collect(),
    })
}

impl Store {
    /// Creates a deployment of `artifact_name` to `devices`; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn create_deployment(
        &self,
        name: &str,
        artifact_name: &str,
        devices: &[String],
        groups: &[String],
        force: bool,
        constructor: &str,
    ) -> Result<std::result::Result<String, CreateError>> {
        let candidates: Vec<String> = self
            .artifacts_named(artifact_name)?
            .into_iter()
            .map(|a| a.id)
            .collect();
        if candidates.is_empty() {
            return Ok(Err(CreateError::NoArtifact));
        }
        let groups = serde_json::to_string(groups)?;
        let candidates = serde_json::to_string(&candidates)?;
        self.write(|db| {
            if db.exists(
                "SELECT 1 FROM deployments WHERE constructor=?1 AND finished IS NULL",
                args![constructor],
            )? {
                return Ok(Err(CreateError::Duplicate));
            }
            let id = super::super::ids::uuid_v4();
            let seq = clock::unix_nanos();
            db.exec(
                "INSERT INTO deployments(id, name, artifact_name, created, seq, max_devices,
                 force_installation, groups, artifacts, constructor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                args![
                    &id,
                    name,
                    artifact_name,
                    clock::unix_now(),
                    seq,
                    devices.len() as i64,
                    force,
                    &groups,
                    &candidates,
                    constructor
                ],
            )?;
            for d in devices {
                db.exec(
                    "INSERT INTO device_deployments(deployment_id, device_id, seq, status)
                     VALUES (?1, ?2, ?3, 'pending') ON CONFLICT DO NOTHING",
                    args![&id, d, seq],
                )?;
            }
            Ok(Ok(id))
        })
    }

    /// Deployments filtered by computed status and a name/artifact-name substring, newest
    /// first unless `ascending`; with the total count.
    pub fn list_deployments(
        &self,
        status: Option<&str>,
        search: Option<&str>,
        ascending: bool,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<DeploymentRecord>, i64)> {
        let order = if ascending { "ASC" } else { "DESC" };
        let sql = format!("SELECT {DCOLS} FROM deployments ORDER BY seq {order}");
        // Every deployment's counts in one query rather than one query a deployment.
        let (rows, counts) = self.read(|db| {
            Ok((
                db.rows(&sql, &[])?,
                db.rows(
                    "SELECT deployment_id, status, COUNT(*) FROM device_deployments \
                     GROUP BY deployment_id, status",
                    &[],
                )?,
            ))
        })?;
        let mut by_id: std::collections::HashMap<String, Vec<(String, i64)>> = Default::default();
        for c in &counts {
            by_id
                .entry(c.get(0)?)
                .or_default()
                .push((c.get(1)?, c.get(2)?));
        }
        let mut matched = Vec::new();
        for r in &rows {
            let mut d = deployment_row(r)?;
            if search.is_some_and(|s| !d.name.contains(s) && !d.artifact_name.contains(s)) {
                continue;
            }
            d.stats.extend(by_id.remove(&d.id).unwrap_or_default());
            if status.is_none_or(|s| s == d.status()) {
                matched.push(d);
            }
        }
        let total = matched.len() as i64;
        let page = matched
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        Ok((page, total))
    }

    /// One deployment with its statistics.
    pub fn deployment(&self, id: &str) -> Result<Option<DeploymentRecord>> {
        let sql = format!("SELECT {DCOLS} FROM deployments WHERE id=?1");
        let (row, counts) = self.read(|db| {
            Ok((
                db.row(&sql, args![id])?,
                db.rows(
                    "SELECT status, COUNT(*) FROM device_deployments WHERE deployment_id=?1 \
                     GROUP BY status",
                    args![id],
                )?,
            ))
        })?;
        let Some(r) = row else {
            return Ok(None);
        };
        let mut d = deployment_row(&r)?;
        for c in counts {
            d.stats.insert(c.get(0)?, c.get(1)?);
        }
        Ok(Some(d))
    }

    /// Aborts deployment `id`. `Ok(None)`: no such deployment; `Ok(Some(false))`: already
    /// finished.
    pub fn abort_deployment(&self, id: &str) -> Result<Option<bool>> {
        let Some(d) = self.deployment(id)? else {
            return Ok(None);
        };
        if d.status() == "finished" {
            return Ok(Some(false));
        }
        self.write(|db| {
            let now = clock::unix_now();
            db.exec(
                "UPDATE device_deployments SET status='aborted', finished=?2
                 WHERE deployment_id=?1 AND finished IS NULL",
                args![id, now],
            )?;
            db.exec(
                "UPDATE deployments SET finished=?2 WHERE id=?1",
                args![id, now],
            )?;
            Ok(Some(true))
        })
    }

    /// The device deployments of deployment `id`.
    pub fn deployment_devices(&self, id: &str) -> Result<Vec<DeviceDeployment>> {
        let rows = self.read(|db| {
            db.rows(
                "SELECT device_id, status, substate, created, started, finished, artifact_id,
                 device_type, CASE WHEN log IS NULL THEN 0 ELSE 1 END
                 FROM device_deployments WHERE deployment_id=?1 ORDER BY device_id",
                args![id],
            )
        })?;
        rows.iter()
            .map(|r| {
                Ok(DeviceDeployment {
                    device_id: r.get(0)?,
                    status: r.get(1)?,
                    substate: r.get(2)?,
                    created: r.get(3)?,
                    started: r.get(4)?,
                    finished: r.get(5)?,
                    artifact_id: r.get(6)?,
                    device_type: r.get(7)?,
                    has_log: r.get(8)?,
                })
            })
            .collect()
    }

    /// Records a status report from `device_id` for `deployment_id`.
    pub fn device_status(
        &self,
        device_id: &str,
        deployment_id: &str,
        status: &str,
        substate: Option<&str>,
    ) -> Result<StatusOutcome> {
        self.write(|db| {
            let cur = db.row(
                "SELECT status, finished FROM device_deployments
                 WHERE deployment_id=?1 AND device_id=?2 AND assigned=1",
                args![deployment_id, device_id],
            )?;
            let Some(cur) = cur else {
                return Ok(StatusOutcome::NotFound);
            };
            let (cur, finished): (String, Option<i64>) = (cur.get(0)?, cur.get(1)?);
            if cur == "aborted" || cur == "decommissioned" {
                return Ok(StatusOutcome::Conflict);
            }
            if cur == status {
                return Ok(StatusOutcome::Done);
            }
            if finished.is_some() {
                return Ok(StatusOutcome::Conflict);
            }
            let now = clock::unix_now();
            let fin = is_final(status).then_some(now);
            db.exec(
                "UPDATE device_deployments SET status=?3, substate=COALESCE(?4, substate),
                 started=COALESCE(started, ?5), finished=?6 WHERE deployment_id=?1 AND device_id=?2",
                args![deployment_id, device_id, status, substate, now, fin],
            )?;
            if fin.is_some() {
                close_if_done(db, deployment_id, now)?;
            }
            Ok(StatusOutcome::Done)
        })
    }

    /// Stores the deployment log of `device_id`; false if it has no such deployment.
    pub fn put_log(&self, device_id: &str, deployment_id: &str, text: &str) -> Result<bool> {
        self.write(|db| {
            db.exec(
                "UPDATE device_deployments SET log=?3 WHERE deployment_id=?1 AND device_id=?2
                 AND assigned=1",
                args![deployment_id, device_id, text],
            )
        })
        .map(|n| n > 0)
    }

    /// The stored deployment log of a device.
    pub fn device_log(&self, deployment_id: &str, device_id: &str) -> Result<Option<String>> {
        self.read(|db| {
            db.opt(
                "SELECT log FROM device_deployments WHERE deployment_id=?1 AND device_id=?2",
                args![deployment_id, device_id],
            )
        })
        .map(Option::flatten)
    }

    /// Picks what `device_id` should install (see `picking`), given its reported provides.
    pub fn next_for_device(
        &self,
        device_id: &str,
        artifact_name: &str,
        device_type: &str,
        provides: &Map<String, Value>,
    ) -> Result<NextOutcome> {
        // Most polls find nothing: a read settles those without a write transaction.
        let open = self.read(|db| {
            db.exists(
                "SELECT 1 FROM device_deployments WHERE device_id=?1 AND finished IS NULL",
                args![device_id],
            )
        })?;
        if !open {
            return Ok(NextOutcome::Nothing);
        }
        let provides = serde_json::to_string(provides)?;
        self.write(|db| super::picking::pick(db, device_id, artifact_name, device_type, &provides))
    }
}
