//! Which deployment and artifact a polling device gets, as upstream picks: resume the oldest
//! unfinished one; else the oldest active deployment newer than the last one the device
//! finished; the smallest candidate artifact matching the device type; `already-installed`
//! when the device runs that artifact already.

use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{Map, Value};

use super::super::clock;
use super::artifacts::{row as artifact_row, COLS};
use super::{ArtifactRecord, NextOutcome, Result};

struct Assigned {
    deployment_id: String,
    status: String,
    artifact_id: Option<String>,
    provides: Option<String>,
    force: bool,
    /// Assigned by this request.
    fresh: bool,
}

fn artifact(tx: &Transaction, id: &str) -> Result<Option<ArtifactRecord>> {
    Ok(tx
        .prepare_cached(&format!("SELECT {COLS} FROM artifacts WHERE id=?1"))?
        .query_row([id], artifact_row)
        .optional()?)
}

fn set_final(tx: &Transaction, deployment_id: &str, device_id: &str, status: &str) -> Result<()> {
    let now = clock::unix_now();
    tx.execute(
        "UPDATE device_deployments SET status=?3, finished=?4, started=COALESCE(started, ?4)
         WHERE deployment_id=?1 AND device_id=?2",
        params![deployment_id, device_id, status, now],
    )?;
    tx.execute(
        "UPDATE deployments SET finished=?2 WHERE id=?1 AND finished IS NULL AND NOT EXISTS
         (SELECT 1 FROM device_deployments WHERE deployment_id=?1 AND finished IS NULL)",
        params![deployment_id, now],
    )?;
    Ok(())
}

/// Picks for `device_id` inside `tx`; see the module comment.
pub fn pick(
    tx: &Transaction,
    device_id: &str,
    artifact_name: &str,
    device_type: &str,
    provides: &Map<String, Value>,
) -> Result<NextOutcome> {
    let provides_json = serde_json::to_string(provides)?;
    let active = tx
        .prepare_cached(
            "SELECT dd.deployment_id, dd.status, dd.artifact_id, dd.provides, d.force_installation
             FROM device_deployments dd JOIN deployments d ON d.id = dd.deployment_id
             WHERE dd.device_id=?1 AND dd.assigned=1 AND dd.finished IS NULL
             ORDER BY dd.seq LIMIT 1",
        )?
        .query_row([device_id], |r| {
            Ok(Assigned {
                deployment_id: r.get(0)?,
                status: r.get(1)?,
                artifact_id: r.get(2)?,
                provides: r.get(3)?,
                force: r.get(4)?,
                fresh: false,
            })
        })
        .optional()?;
    let assigned = match active {
        Some(a) => {
            if a.provides.as_deref().is_some_and(|p| p != provides_json) {
                set_final(tx, &a.deployment_id, device_id, "failure")?;
                return Ok(NextOutcome::Conflict);
            }
            a
        }
        None => match assign_new(tx, device_id, device_type, &provides_json)? {
            Some(a) => a,
            None => return Ok(NextOutcome::Nothing),
        },
    };
    let Some(art) = assigned
        .artifact_id
        .as_deref()
        .map(|id| artifact(tx, id))
        .transpose()?
        .flatten()
    else {
        set_final(tx, &assigned.deployment_id, device_id, "noartifact")?;
        return Ok(NextOutcome::Nothing);
    };
    if !assigned.force && assigned.status == "pending" && art.name == artifact_name {
        set_final(tx, &assigned.deployment_id, device_id, "already-installed")?;
        return Ok(NextOutcome::Nothing);
    }
    if assigned.fresh {
        // Counted once per device, when the artifact is first handed out.
        tx.execute(
            "UPDATE deployments SET total_size = total_size + ?2 WHERE id=?1",
            params![assigned.deployment_id, art.size as i64],
        )?;
    }
    Ok(NextOutcome::Update {
        deployment_id: assigned.deployment_id,
        artifact: art,
    })
}

/// Assigns the device's next deployment, choosing its artifact; None when there is none.
fn assign_new(
    tx: &Transaction,
    device_id: &str,
    device_type: &str,
    provides_json: &str,
) -> Result<Option<Assigned>> {
    let last: i64 = tx
        .prepare_cached(
            "SELECT COALESCE(MAX(seq), 0) FROM device_deployments
             WHERE device_id=?1 AND finished IS NOT NULL",
        )?
        .query_row([device_id], |r| r.get(0))?;
    let found: Option<(String, String, bool)> = tx
        .prepare_cached(
            "SELECT d.id, d.artifacts, d.force_installation
             FROM device_deployments dd JOIN deployments d ON d.id = dd.deployment_id
             WHERE dd.device_id=?1 AND dd.assigned=0 AND dd.finished IS NULL
             AND d.finished IS NULL AND dd.seq > ?2 AND d.device_count < d.max_devices
             ORDER BY dd.seq LIMIT 1",
        )?
        .query_row(params![device_id, last], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((deployment_id, candidates, force)) = found else {
        return Ok(None);
    };
    let candidates: Vec<String> = serde_json::from_str(&candidates)?;
    let mut best: Option<ArtifactRecord> = None;
    for id in &candidates {
        if let Some(a) = artifact(tx, id)? {
            if a.device_types.iter().any(|t| t == device_type)
                && best.as_ref().is_none_or(|b| a.size < b.size)
            {
                best = Some(a);
            }
        }
    }
    let now = clock::unix_now();
    tx.execute(
        "UPDATE device_deployments SET assigned=1, created=?3, artifact_id=?4, device_type=?5,
         provides=?6 WHERE deployment_id=?1 AND device_id=?2",
        params![
            deployment_id,
            device_id,
            now,
            best.as_ref().map(|a| a.id.clone()),
            device_type,
            provides_json
        ],
    )?;
    tx.execute(
        "UPDATE deployments SET device_count = device_count + 1 WHERE id=?1",
        [&deployment_id],
    )?;
    Ok(Some(Assigned {
        deployment_id,
        status: "pending".into(),
        artifact_id: best.map(|a| a.id),
        provides: Some(provides_json.to_string()),
        force,
        fresh: true,
    }))
}
