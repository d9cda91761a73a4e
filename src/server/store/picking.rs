//! Which deployment and artifact a polling device gets, as upstream picks: resume the oldest
//! unfinished one; else the oldest active deployment newer than the last one the device
//! finished; the smallest candidate artifact matching the device type; `already-installed`
//! when the device runs that artifact already.

use super::super::clock;
use super::artifacts::by_id;
use super::db::{args, Db};
use super::deployments::close_if_done;
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

fn set_final(db: &mut dyn Db, deployment_id: &str, device_id: &str, status: &str) -> Result<()> {
    let now = clock::unix_now();
    db.exec(
        "UPDATE device_deployments SET status=?3, finished=?4, started=COALESCE(started, ?4)
         WHERE deployment_id=?1 AND device_id=?2",
        args![deployment_id, device_id, status, now],
    )?;
    close_if_done(db, deployment_id, now)
}

/// Picks for `device_id` inside a transaction; see the module comment. `provides_json` is the
/// device's reported provides as a JSON object.
pub fn pick(
    db: &mut dyn Db,
    device_id: &str,
    artifact_name: &str,
    device_type: &str,
    provides_json: &str,
) -> Result<NextOutcome> {
    let active = db
        .row(
            "SELECT dd.deployment_id, dd.status, dd.artifact_id, dd.provides, d.force_installation
             FROM device_deployments dd JOIN deployments d ON d.id = dd.deployment_id
             WHERE dd.device_id=?1 AND dd.assigned=1 AND dd.finished IS NULL
             ORDER BY dd.seq LIMIT 1",
            args![device_id],
        )?
        .map(|r| -> Result<Assigned> {
            Ok(Assigned {
                deployment_id: r.get(0)?,
                status: r.get(1)?,
                artifact_id: r.get(2)?,
                provides: r.get(3)?,
                force: r.get(4)?,
                fresh: false,
            })
        })
        .transpose()?;
    let assigned = match active {
        Some(a) => {
            if a.provides.as_deref().is_some_and(|p| p != provides_json) {
                set_final(db, &a.deployment_id, device_id, "failure")?;
                return Ok(NextOutcome::Conflict);
            }
            a
        }
        None => match assign_new(db, device_id, device_type, provides_json)? {
            Some(a) => a,
            None => return Ok(NextOutcome::Nothing),
        },
    };
    let art = match assigned.artifact_id.as_deref() {
        Some(id) => by_id(db, id)?,
        None => None,
    };
    let Some(art) = art else {
        set_final(db, &assigned.deployment_id, device_id, "noartifact")?;
        return Ok(NextOutcome::Nothing);
    };
    if !assigned.force && assigned.status == "pending" && art.name == artifact_name {
        set_final(db, &assigned.deployment_id, device_id, "already-installed")?;
        return Ok(NextOutcome::Nothing);
    }
    if assigned.fresh {
        // Counted once per device, when the artifact is first handed out.
        db.exec(
            "UPDATE deployments SET total_size = total_size + ?2 WHERE id=?1",
            args![&assigned.deployment_id, art.size as i64],
        )?;
    }
    Ok(NextOutcome::Update {
        deployment_id: assigned.deployment_id,
        artifact: art,
    })
}

/// Assigns the device's next deployment, choosing its artifact; None when there is none.
fn assign_new(
    db: &mut dyn Db,
    device_id: &str,
    device_type: &str,
    provides_json: &str,
) -> Result<Option<Assigned>> {
    let last: i64 = db.one(
        "SELECT COALESCE(MAX(seq), 0) FROM device_deployments
         WHERE device_id=?1 AND finished IS NOT NULL",
        args![device_id],
    )?;
    let found = db.row(
        "SELECT d.id, d.artifacts, d.force_installation
         FROM device_deployments dd JOIN deployments d ON d.id = dd.deployment_id
         WHERE dd.device_id=?1 AND dd.assigned=0 AND dd.finished IS NULL
         AND d.finished IS NULL AND dd.seq > ?2 AND d.device_count < d.max_devices
         ORDER BY dd.seq LIMIT 1",
        args![device_id, last],
    )?;
    let Some(found) = found else {
        return Ok(None);
    };
    let (deployment_id, candidates, force): (String, String, bool) =
        (found.get(0)?, found.get(1)?, found.get(2)?);
    let candidates: Vec<String> = serde_json::from_str(&candidates)?;
    let mut best: Option<ArtifactRecord> = None;
    for id in &candidates {
        if let Some(a) = by_id(db, id)? {
            if a.device_types.iter().any(|t| t == device_type)
                && best.as_ref().is_none_or(|b| a.size < b.size)
            {
                best = Some(a);
            }
        }
    }
    let now = clock::unix_now();
    db.exec(
        "UPDATE device_deployments SET assigned=1, created=?3, artifact_id=?4, device_type=?5,
         provides=?6 WHERE deployment_id=?1 AND device_id=?2",
        args![
            &deployment_id,
            device_id,
            now,
            best.as_ref().map(|a| a.id.clone()),
            device_type,
            provides_json
        ],
    )?;
    db.exec(
        "UPDATE deployments SET device_count = device_count + 1 WHERE id=?1",
        args![&deployment_id],
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
