//! The installer's persistent state in the datastore: what is installed (`provides.json`)
//! and the journal of an install in progress (`standalone-state.json`). Every write is
//! atomic and durable (temp file, fsync, rename, fsync of the directory), so a power cut
//! leaves either the old or the new content, never a mix.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::provides::Installed;

/// Writes `data` to `path` atomically and durably.
pub fn atomic_write(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(&dir)?.sync_all()
}

/// Where an install stands, saved before each step that changes the device, named as
/// upstream's `InState` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Downloaded; ArtifactInstall not started.
    #[serde(rename = "Before_ArtifactInstall_Enter")]
    BeforeInstall,
    /// ArtifactInstall started (its outcome unknown after a power cut).
    #[serde(rename = "ArtifactInstall_Enter")]
    Installing,
    /// Installed; waiting for `commit` (the reboot window).
    #[serde(rename = "Before_ArtifactCommit_Enter")]
    BeforeCommit,
    /// ArtifactCommit started.
    #[serde(rename = "ArtifactCommit_Enter")]
    Committing,
    /// Committed; ArtifactCommit_Leave scripts not started.
    #[serde(rename = "Before_ArtifactCommit_Leave")]
    BeforeCommitLeave,
    /// ArtifactCommit_Leave scripts started.
    #[serde(rename = "ArtifactCommit_Leave")]
    CommitLeave,
    /// Rolling back.
    #[serde(rename = "ArtifactRollback_Enter")]
    RollingBack,
    /// In the failure state.
    #[serde(rename = "ArtifactFailure_Enter")]
    Failing,
    /// Cleaning up.
    #[serde(rename = "Cleanup")]
    Cleanup,
}

/// The journal of the install in progress (upstream's `standalone-state`, version 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Journal {
    /// Schema version: 2.
    pub version: u32,
    /// The artifact being installed.
    pub artifact_name: String,
    /// Its group, empty when none.
    #[serde(default)]
    pub artifact_group: String,
    /// Payload types (exactly one).
    pub payload_types: Vec<String>,
    /// Payload provides, absent when the artifact had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type_info_provides: Option<BTreeMap<String, String>>,
    /// Clears-provides patterns, absent when the artifact had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_clears_provides: Option<Vec<String>>,
    /// Where the install stands.
    pub in_state: Step,
    /// Whether this run failed.
    #[serde(default)]
    pub failed: bool,
    /// Whether the update was rolled back.
    #[serde(default)]
    pub rolled_back: bool,
}

/// A problem with the stored state.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// The state files in a datastore directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `datastore` (created if missing).
    pub fn open(datastore: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(datastore)
            .map_err(|e| StoreError(format!("{}: {e}", datastore.display())))?;
        Ok(Store {
            dir: datastore.to_path_buf(),
        })
    }

    fn provides_path(&self) -> PathBuf {
        self.dir.join("provides.json")
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join("standalone-state.json")
    }

    fn write(&self, path: &Path, value: &impl Serialize) -> Result<(), StoreError> {
        let data = serde_json::to_vec_pretty(value).expect("serialisable");
        atomic_write(path, &data).map_err(|e| StoreError(format!("{}: {e}", path.display())))
    }

    /// What is installed (nothing known yet: default).
    pub fn installed(&self) -> Result<Installed, StoreError> {
        let p = self.provides_path();
        match fs::read(&p) {
            Ok(data) => serde_json::from_slice(&data)
                .map_err(|e| StoreError(format!("{}: corrupt provides store: {e}", p.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Installed::default()),
            Err(e) => Err(StoreError(format!("{}: {e}", p.display()))),
        }
    }

    /// Records what is installed.
    pub fn set_installed(&self, i: &Installed) -> Result<(), StoreError> {
        self.write(&self.provides_path(), i)
    }

    /// The journal of the install in progress, if any.
    pub fn journal(&self) -> Result<Option<Journal>, StoreError> {
        let p = self.journal_path();
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError(format!("{}: {e}", p.display()))),
        };
        let j: Journal = serde_json::from_slice(&data)
            .map_err(|e| StoreError(format!("{}: corrupt install journal: {e}", p.display())))?;
        if j.version != 2 || j.artifact_name.is_empty() || j.payload_types.len() != 1 {
            return Err(StoreError(format!(
                "{}: unsupported install journal (version {}, {} payloads)",
                p.display(),
                j.version,
                j.payload_types.len()
            )));
        }
        Ok(Some(j))
    }

    /// Saves the journal; called before every step that changes the device.
    pub fn save_journal(&self, j: &Journal) -> Result<(), StoreError> {
        self.write(&self.journal_path(), j)
    }

    /// Ends the install: the journal is removed, after `installed` (if any) was recorded, so a
    /// power cut in between repeats only this final, idempotent step.
    pub fn finish(&self, installed: Option<&Installed>) -> Result<(), StoreError> {
        if let Some(i) = installed {
            self.set_installed(i)?;
        }
        let p = self.journal_path();
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError(format!("{}: {e}", p.display()))),
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError(format!("{}: {e}", self.dir.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal() -> Journal {
        Journal {
            version: 2,
            artifact_name: "art-1".into(),
            artifact_group: String::new(),
            payload_types: vec!["logmod".into()],
            artifact_type_info_provides: Some(
                [("foo.bar".to_string(), "1".to_string())]
                    .into_iter()
                    .collect(),
            ),
            artifact_clears_provides: Some(vec!["rootfs-image.logmod.*".into()]),
            in_state: Step::BeforeCommit,
            failed: false,
            rolled_back: false,
        }
    }

    #[test]
    fn journal_is_upstreams_schema() {
        let text = serde_json::to_string(&journal()).unwrap();
        assert_eq!(
            text,
            r#"{"Version":2,"ArtifactName":"art-1","ArtifactGroup":"","PayloadTypes":["logmod"],"ArtifactTypeInfoProvides":{"foo.bar":"1"},"ArtifactClearsProvides":["rootfs-image.logmod.*"],"InState":"Before_ArtifactCommit_Enter","Failed":false,"RolledBack":false}"#
        );
    }

    #[test]
    fn round_trips_and_finishes() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.installed().unwrap(), Installed::default());
        assert!(s.journal().unwrap().is_none());
        s.save_journal(&journal()).unwrap();
        assert_eq!(s.journal().unwrap(), Some(journal()));
        let i = Installed {
            artifact_name: Some("art-1".into()),
            artifact_group: None,
            provides: Default::default(),
        };
        s.finish(Some(&i)).unwrap();
        assert!(s.journal().unwrap().is_none());
        assert_eq!(s.installed().unwrap(), i);
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp files left: {names:?}");
    }

    #[test]
    fn corrupt_state_is_an_error_not_a_guess() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        fs::write(d.path().join("standalone-state.json"), "{").unwrap();
        assert!(s.journal().is_err());
        let mut j = journal();
        j.payload_types.push("x".into());
        s.save_journal(&j).unwrap();
        assert!(s.journal().is_err());
    }
}
