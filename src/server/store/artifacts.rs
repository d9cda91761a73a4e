//! Artifact metadata: what was read from each uploaded .mender file, kept as the JSON the
//! management API shows, plus the columns deployments pick by (name, device types, size).

use serde_json::{json, Map, Value};

use super::super::clock;
use super::db::{args, Db, Row};
use super::{Result, Store};

/// An artifact to record.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    /// Artifact id.
    pub id: String,
    /// Artifact name.
    pub name: String,
    /// Free-text description.
    pub description: String,
    /// Compatible device types.
    pub device_types: Vec<String>,
    /// Size of the .mender file, bytes.
    pub size: u64,
    /// The rest of the API fields: `info`, `signed`, `updates`, `artifact_provides`,
    /// `artifact_depends`, `clears_artifact_provides`.
    pub meta: Map<String, Value>,
}

/// A stored artifact.
#[derive(Debug, Clone)]
pub struct ArtifactRecord {
    /// Artifact id.
    pub id: String,
    /// Artifact name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Compatible device types.
    pub device_types: Vec<String>,
    /// Size of the .mender file, bytes.
    pub size: u64,
    /// Upload time, unix seconds.
    pub modified: i64,
    /// The other API fields.
    pub meta: Map<String, Value>,
}

impl ArtifactRecord {
    /// The artifact as the management API shows it.
    pub fn to_json(&self) -> Value {
        let mut m = self.meta.clone();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("description".into(), json!(self.description));
        m.insert("device_types_compatible".into(), json!(self.device_types));
        m.insert("size".into(), json!(self.size));
        m.insert("modified".into(), json!(clock::rfc3339(self.modified)));
        Value::Object(m)
    }

    /// Depends other than the device type, for the uniqueness rule.
    fn other_depends(&self) -> Value {
        let mut d = self
            .meta
            .get("artifact_depends")
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_default();
        d.remove("device_type");
        Value::Object(d)
    }
}

pub(super) const COLS: &str = "id, name, description, device_types, size, modified, meta";

pub(super) fn row(r: &Row) -> Result<ArtifactRecord> {
    let types: String = r.get(3)?;
    let meta: String = r.get(6)?;
    Ok(ArtifactRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        device_types: serde_json::from_str(&types).unwrap_or_default(),
        size: r.get::<i64>(4)? as u64,
        modified: r.get(5)?,
        meta: serde_json::from_str(&meta).unwrap_or_default(),
    })
}

/// The artifact `id`, read inside a transaction.
pub(super) fn by_id(db: &mut dyn Db, id: &str) -> Result<Option<ArtifactRecord>> {
    let sql = "SELECT id, name, description, device_types, size, modified, meta \
               FROM artifacts WHERE id=?1";
    db.row(sql, args![id])?.as_ref().map(row).transpose()
}

impl Store {
    /// The stored artifact that `a` would clash with: same name, a common device type and the
    /// same other depends.
    pub fn artifact_conflict(&self, a: &NewArtifact) -> Result<Option<ArtifactRecord>> {
        let mine = ArtifactRecord {
            id: a.id.clone(),
            name: a.name.clone(),
            description: String::new(),
            device_types: a.device_types.clone(),
            size: 0,
            modified: 0,
            meta: a.meta.clone(),
        };
        Ok(self.artifacts_named(&a.name)?.into_iter().find(|b| {
            b.device_types.iter().any(|t| a.device_types.contains(t))
                && b.other_depends() == mine.other_depends()
        }))
    }

    /// Records an artifact and adds it to the candidates of active deployments of its name.
    pub fn insert_artifact(&self, a: &NewArtifact) -> Result<()> {
        let types = serde_json::to_string(&a.device_types)?;
        let meta = serde_json::to_string(&a.meta)?;
        self.write(|db| {
            db.exec(
                &format!("INSERT INTO artifacts({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                args![
                    &a.id,
                    &a.name,
                    &a.description,
                    &types,
                    a.size as i64,
                    clock::unix_now(),
                    &meta
                ],
            )?;
            let active = db.rows(
                "SELECT id, artifacts FROM deployments WHERE artifact_name=?1 AND finished IS NULL",
                args![&a.name],
            )?;
            for r in active {
                let mut ids: Vec<String> = serde_json::from_str(&r.get::<String>(1)?)?;
                ids.push(a.id.clone());
                db.exec(
                    "UPDATE deployments SET artifacts=?2 WHERE id=?1",
                    args![r.get::<String>(0)?, serde_json::to_string(&ids)?],
                )?;
            }
            Ok(())
        })
    }

    /// Artifacts, optionally filtered by exact name, description substring and device type.
    pub fn list_artifacts(
        &self,
        name: Option<&str>,
        description: Option<&str>,
        device_type: Option<&str>,
    ) -> Result<Vec<ArtifactRecord>> {
        let rows = self.read(|db| {
            db.rows(
                &format!(
                    "SELECT {COLS} FROM artifacts WHERE (CAST(?1 AS TEXT) IS NULL OR name=?1) \
                     ORDER BY modified, id"
                ),
                args![name],
            )
        })?;
        let mut out = Vec::new();
        for r in &rows {
            let a = row(r)?;
            if description.is_none_or(|d| a.description.contains(d))
                && device_type.is_none_or(|t| a.device_types.iter().any(|x| x == t))
            {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Artifacts named `name`.
    pub fn artifacts_named(&self, name: &str) -> Result<Vec<ArtifactRecord>> {
        self.list_artifacts(Some(name), None, None)
    }

    /// One artifact.
    pub fn artifact(&self, id: &str) -> Result<Option<ArtifactRecord>> {
        self.read(|db| by_id(db, id))
    }

    /// Changes an artifact's description; false if there is no such artifact.
    pub fn set_artifact_description(&self, id: &str, description: &str) -> Result<bool> {
        self.write(|db| {
            db.exec(
                "UPDATE artifacts SET description=?2 WHERE id=?1",
                args![id, description],
            )
        })
        .map(|n| n > 0)
    }

    /// True when an unfinished deployment may still hand out artifact `id`.
    pub fn artifact_in_use(&self, id: &str) -> Result<bool> {
        let lists: Vec<String> = self.read(|db| {
            db.col(
                "SELECT artifacts FROM deployments WHERE finished IS NULL",
                &[],
            )
        })?;
        for l in lists {
            let ids: Vec<String> = serde_json::from_str(&l)?;
            if ids.iter().any(|x| x == id) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Removes an artifact's metadata; false if there was none.
    pub fn delete_artifact(&self, id: &str) -> Result<bool> {
        self.write(|db| db.exec("DELETE FROM artifacts WHERE id=?1", args![id]))
            .map(|n| n > 0)
    }
}
