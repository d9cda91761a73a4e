//! Artifact metadata: what was read from each uploaded .mender file, kept as the JSON the
//! management API shows, plus the columns deployments pick by (name, device types, size).

use rusqlite::{params, OptionalExtension, Row};
use serde_json::{json, Map, Value};

use super::super::clock;
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

pub(super) fn row(r: &Row) -> rusqlite::Result<ArtifactRecord> {
    let types: String = r.get(3)?;
    let meta: String = r.get(6)?;
    Ok(ArtifactRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        device_types: serde_json::from_str(&types).unwrap_or_default(),
        size: r.get::<_, i64>(4)? as u64,
        modified: r.get(5)?,
        meta: serde_json::from_str(&meta).unwrap_or_default(),
    })
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
        let mut db = self.db();
        let tx = db.transaction()?;
        tx.execute(
            &format!("INSERT INTO artifacts({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                a.id,
                a.name,
                a.description,
                serde_json::to_string(&a.device_types)?,
                a.size as i64,
                clock::unix_now(),
                serde_json::to_string(&a.meta)?
            ],
        )?;
        tx.execute(
            "UPDATE deployments SET artifacts = json_insert(artifacts, '$[#]', ?2)
             WHERE artifact_name=?1 AND finished IS NULL",
            params![a.name, a.id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Artifacts, optionally filtered by exact name, description substring and device type.
    pub fn list_artifacts(
        &self,
        name: Option<&str>,
        description: Option<&str>,
        device_type: Option<&str>,
    ) -> Result<Vec<ArtifactRecord>> {
        let db = self.db();
        let mut st = db.prepare(&format!(
            "SELECT {COLS} FROM artifacts WHERE (?1 IS NULL OR name=?1)
             AND (?2 IS NULL OR instr(description, ?2) > 0)
             AND (?3 IS NULL OR EXISTS (SELECT 1 FROM json_each(device_types) WHERE value=?3))
             ORDER BY modified, id"
        ))?;
        let rows = st.query_map(params![name, description, device_type], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Artifacts named `name`.
    pub fn artifacts_named(&self, name: &str) -> Result<Vec<ArtifactRecord>> {
        self.list_artifacts(Some(name), None, None)
    }

    /// One artifact.
    pub fn artifact(&self, id: &str) -> Result<Option<ArtifactRecord>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!("SELECT {COLS} FROM artifacts WHERE id=?1"))?;
        Ok(st.query_row([id], row).optional()?)
    }

    /// Changes an artifact's description; false if there is no such artifact.
    pub fn set_artifact_description(&self, id: &str, description: &str) -> Result<bool> {
        Ok(self.db().execute(
            "UPDATE artifacts SET description=?2 WHERE id=?1",
            params![id, description],
        )? > 0)
    }

    /// True when an unfinished deployment may still hand out artifact `id`.
    pub fn artifact_in_use(&self, id: &str) -> Result<bool> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT 1 FROM deployments WHERE finished IS NULL
             AND EXISTS (SELECT 1 FROM json_each(artifacts) WHERE value=?1)",
        )?;
        Ok(st.exists([id])?)
    }

    /// Removes an artifact's metadata; false if there was none.
    pub fn delete_artifact(&self, id: &str) -> Result<bool> {
        Ok(self
            .db()
            .execute("DELETE FROM artifacts WHERE id=?1", [id])?
            > 0)
    }
}
