//! The installer's persistent state in the datastore, in upstream's format: an LMDB
//! environment in the single file `<datastore>/mender-store` (lock file `mender-store-lock`,
//! mode 0600, default unnamed database, raw byte values) holding `artifact-name`,
//! `artifact-group`, `artifact-provides` (compact JSON) and, while an install is in progress,
//! its journal `standalone-state`. Every change is one durable LMDB transaction, so a power cut
//! leaves either the old or the new state, never a mix; upstream's clients read and write the
//! same file.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, MdbError, RwTxn};
use serde::{Deserialize, Serialize};

use super::provides::Installed;

/// The LMDB file in the datastore.
const DB_FILE: &str = "mender-store";
/// Where an unreadable LMDB file is moved before starting afresh.
const BROKEN_FILE: &str = "mender-store-broken";
/// The map size asked for; LMDB grows it to an existing file's data size when that is larger.
const MAP_SIZE: usize = 1 << 20;

const KEY_NAME: &[u8] = b"artifact-name";
const KEY_GROUP: &[u8] = b"artifact-group";
const KEY_PROVIDES: &[u8] = b"artifact-provides";
const KEY_JOURNAL: &[u8] = b"standalone-state";

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

/// The state store of a datastore directory.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    env: Env,
    db: Database<Bytes, Bytes>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Opens (creating if missing) the LMDB environment in the single file `path`.
#[allow(unsafe_code)]
fn open_env(path: &Path) -> heed::Result<Env> {
    let mut options = EnvOpenOptions::new();
    options.map_size(MAP_SIZE);
    // SAFETY: `flags` is unsafe only for flags that weaken LMDB's guarantees (NO_SYNC,
    // NO_META_SYNC, NO_LOCK); NO_SUB_DIR only names the file instead of a directory. `open` is
    // unsafe because the memory map must not be changed behind LMDB's back: the file is
    // opened once per process (`Store::open` is called once per command, and heed refuses a
    // second open of the same path while the first is alive), every process that writes it
    // (this installer and upstream's clients) goes through LMDB and its lock file, nothing in
    // this crate touches the file other than through this environment except renaming a file
    // LMDB could not open, and it lives on the device's local datastore, not a remote
    // filesystem. Transactions are short and never held across a process exit on purpose.
    unsafe {
        options.flags(EnvFlags::NO_SUB_DIR);
        options.open(path)
    }
}

/// Whether opening failed because the file is not a usable LMDB file (rather than because of
/// permissions or I/O).
fn is_corrupt(e: &heed::Error) -> bool {
    matches!(
        e,
        heed::Error::Mdb(
            MdbError::Invalid
                | MdbError::VersionMismatch
                | MdbError::Corrupted
                | MdbError::PageNotFound
                | MdbError::Incompatible
                | MdbError::BadValSize
        )
    )
}

fn utf8(key: &[u8], value: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(value.to_vec()).map_err(|_| {
        StoreError(format!(
            "{}: value is not utf-8 text",
            String::from_utf8_lossy(key)
        ))
    })
}

impl Store {
    /// The store in `datastore` (directory and LMDB file created if missing; a file LMDB cannot
    /// read is moved to `mender-store-broken` and a fresh one started, as upstream does).
    pub fn open(datastore: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(datastore)
            .map_err(|e| StoreError(format!("{}: {e}", datastore.display())))?;
        let path = datastore.join(DB_FILE);
        let err = |e: heed::Error| StoreError(format!("{}: {e}", path.display()));
        let env = match open_env(&path) {
            Ok(env) => env,
            Err(e) if is_corrupt(&e) => {
                let broken = datastore.join(BROKEN_FILE);
                fs::rename(&path, &broken)
                    .map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
                open_env(&path).map_err(err)?
            }
            Err(e) => return Err(err(e)),
        };
        let rtxn = env.read_txn().map_err(err)?;
        let db = env
            .open_database::<Bytes, Bytes>(&rtxn, None)
            .map_err(err)?
            .ok_or_else(|| StoreError(format!("{}: no main database", path.display())))?;
        rtxn.commit().map_err(err)?;
        Ok(Store { path, env, db })
    }

    fn err(&self, e: heed::Error) -> StoreError {
        StoreError(format!("{}: {e}", self.path.display()))
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let rtxn = self.env.read_txn().map_err(|e| self.err(e))?;
        let v = self.db.get(&rtxn, key).map_err(|e| self.err(e))?;
        Ok(v.map(<[u8]>::to_vec))
    }

    /// Runs `f` in one write transaction and commits it (durably) only if `f` succeeded.
    fn write(
        &self,
        f: impl FnOnce(&mut RwTxn<'_>, Database<Bytes, Bytes>) -> heed::Result<()>,
    ) -> Result<(), StoreError> {
        let mut wtxn = self.env.write_txn().map_err(|e| self.err(e))?;
        f(&mut wtxn, self.db).map_err(|e| self.err(e))?;
        wtxn.commit().map_err(|e| self.err(e))
    }

    /// What is installed (nothing known yet: default).
    pub fn installed(&self) -> Result<Installed, StoreError> {
        let name = match self.get(KEY_NAME)? {
            Some(v) => Some(utf8(KEY_NAME, &v)?),
            None => None,
        };
        let group = match self.get(KEY_GROUP)? {
            Some(v) => Some(utf8(KEY_GROUP, &v)?).filter(|g| !g.is_empty()),
            None => None,
        };
        let mut provides: BTreeMap<String, String> = match self.get(KEY_PROVIDES)? {
            Some(v) => serde_json::from_slice(&v).map_err(|e| {
                StoreError(format!(
                    "{}: corrupt artifact-provides: {e}",
                    self.path.display()
                ))
            })?,
            None => BTreeMap::new(),
        };
        provides.remove("artifact_name");
        provides.remove("artifact_group");
        Ok(Installed {
            artifact_name: name,
            artifact_group: group,
            provides,
        })
    }

    /// Records what is installed.
    pub fn set_installed(&self, i: &Installed) -> Result<(), StoreError> {
        self.write(|w, db| put_installed(w, db, i))
    }

    /// The journal of the install in progress, if any; upstream's version 1 (no `InState`)
    /// is read as waiting for `commit` and returned as version 2.
    pub fn journal(&self) -> Result<Option<Journal>, StoreError> {
        let Some(data) = self.get(KEY_JOURNAL)? else {
            return Ok(None);
        };
        let corrupt = |e: serde_json::Error| {
            StoreError(format!(
                "{}: corrupt standalone-state: {e}",
                self.path.display()
            ))
        };
        let mut value: serde_json::Value = serde_json::from_slice(&data).map_err(corrupt)?;
        let version = value.get("Version").and_then(serde_json::Value::as_u64);
        match (version, value.as_object_mut()) {
            (Some(1), Some(obj)) => {
                obj.insert("Version".into(), 2.into());
                obj.insert("InState".into(), "Before_ArtifactCommit_Enter".into());
                obj.insert("Failed".into(), false.into());
                obj.insert("RolledBack".into(), false.into());
            }
            (Some(2), Some(_)) => {}
            _ => {
                return Err(StoreError(format!(
                    "{}: unsupported standalone-state version {}",
                    self.path.display(),
                    version.map_or("(none)".to_string(), |v| v.to_string())
                )))
            }
        }
        let j: Journal = serde_json::from_value(value).map_err(corrupt)?;
        if j.artifact_name.is_empty() || j.payload_types.len() != 1 {
            return Err(StoreError(format!(
                "{}: unsupported standalone-state (artifact name {:?}, {} payloads)",
                self.path.display(),
                j.artifact_name,
                j.payload_types.len()
            )));
        }
        Ok(Some(j))
    }

    /// Saves the journal; called before every step that changes the device.
    pub fn save_journal(&self, j: &Journal) -> Result<(), StoreError> {
        let data = serde_json::to_vec(j).expect("serialisable");
        self.write(|w, db| db.put(w, KEY_JOURNAL, &data))
    }

    /// Ends the install: records `installed` (if any) and removes the journal in one
    /// transaction, so a power cut leaves either the whole old or the whole new state.
    pub fn finish(&self, installed: Option<&Installed>) -> Result<(), StoreError> {
        self.write(|w, db| {
            if let Some(i) = installed {
                put_installed(w, db, i)?;
            }
            db.delete(w, KEY_JOURNAL)?;
            Ok(())
        })
    }
}

/// Writes name, group and provides as upstream does: empty group and provides are removed.
fn put_installed(w: &mut RwTxn<'_>, db: Database<Bytes, Bytes>, i: &Installed) -> heed::Result<()> {
    match &i.artifact_name {
        Some(n) => db.put(w, KEY_NAME, n.as_bytes())?,
        None => {
            db.delete(w, KEY_NAME)?;
        }
    }
    match i.artifact_group.as_deref().filter(|g| !g.is_empty()) {
        Some(g) => db.put(w, KEY_GROUP, g.as_bytes())?,
        None => {
            db.delete(w, KEY_GROUP)?;
        }
    }
    let provides: BTreeMap<&String, &String> = i
        .provides
        .iter()
        .filter(|(k, _)| *k != "artifact_name" && *k != "artifact_group")
        .collect();
    if provides.is_empty() {
        db.delete(w, KEY_PROVIDES)?;
    } else {
        let data = serde_json::to_vec(&provides).expect("serialisable");
        db.put(w, KEY_PROVIDES, &data)?;
    }
    Ok(())
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

    fn put_raw(s: &Store, key: &[u8], value: &[u8]) {
        s.write(|w, db| db.put(w, key, value)).unwrap();
    }

    #[test]
    fn round_trips_and_finishes() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.installed().unwrap(), Installed::default());
        assert!(s.journal().unwrap().is_none());
        s.save_journal(&journal()).unwrap();
        assert_eq!(s.journal().unwrap(), Some(journal()));
        let text = String::from_utf8(s.get(KEY_JOURNAL).unwrap().unwrap()).unwrap();
        assert_eq!(text, serde_json::to_string(&journal()).unwrap());
        let i = Installed {
            artifact_name: Some("art-1".into()),
            artifact_group: Some("grp".into()),
            provides: [("foo.bar".to_string(), "1".to_string())]
                .into_iter()
                .collect(),
        };
        s.finish(Some(&i)).unwrap();
        assert!(s.journal().unwrap().is_none());
        assert_eq!(s.installed().unwrap(), i);
        assert_eq!(s.get(KEY_NAME).unwrap().as_deref(), Some(&b"art-1"[..]));
        assert_eq!(s.get(KEY_GROUP).unwrap().as_deref(), Some(&b"grp"[..]));
        assert_eq!(
            s.get(KEY_PROVIDES).unwrap().as_deref(),
            Some(&br#"{"foo.bar":"1"}"#[..])
        );
        drop(s);
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.installed().unwrap(), i, "durable across a reopen");
        let none = Installed {
            artifact_name: Some("art-2".into()),
            artifact_group: Some(String::new()),
            provides: Default::default(),
        };
        s.set_installed(&none).unwrap();
        assert_eq!(s.get(KEY_GROUP).unwrap(), None, "empty group removed");
        assert_eq!(
            s.get(KEY_PROVIDES).unwrap(),
            None,
            "no provides: key absent"
        );
        assert_eq!(s.installed().unwrap().artifact_group, None);
        s.finish(None).unwrap();
        assert_eq!(
            s.installed().unwrap().artifact_name.as_deref(),
            Some("art-2")
        );
        let mut names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["mender-store", "mender-store-lock"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.path().join("mender-store"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn version_1_journal_waits_for_commit() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        put_raw(
            &s,
            KEY_JOURNAL,
            br#"{"Version":1,"ArtifactName":"art-1","ArtifactGroup":"","ArtifactTypeInfoProvides":null,"ArtifactClearsProvides":null,"PayloadTypes":["single-file"]}"#,
        );
        let j = s.journal().unwrap().unwrap();
        assert_eq!(j.version, 2);
        assert_eq!(j.in_state, Step::BeforeCommit);
        assert_eq!(j.payload_types, ["single-file"]);
        assert_eq!(j.artifact_type_info_provides, None);
        assert!(!j.failed && !j.rolled_back);
    }

    #[test]
    fn corrupt_state_is_an_error_not_a_guess() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        put_raw(&s, KEY_JOURNAL, b"{");
        assert!(s.journal().is_err());
        let mut j = journal();
        j.payload_types.push("x".into());
        s.save_journal(&j).unwrap();
        assert!(s.journal().is_err());
        let mut j = journal();
        j.version = 3;
        s.save_journal(&j).unwrap();
        let e = s.journal().unwrap_err().0;
        assert!(e.contains("unsupported standalone-state version 3"), "{e}");
        put_raw(&s, KEY_PROVIDES, br#"{"a":1}"#);
        assert!(s.installed().is_err(), "non-string provides");
    }

    #[test]
    fn unreadable_file_is_set_aside() {
        let d = tempfile::tempdir().unwrap();
        let junk = vec![0x5a_u8; 20000];
        fs::write(d.path().join("mender-store"), &junk).unwrap();
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.installed().unwrap(), Installed::default());
        assert_eq!(
            fs::read(d.path().join("mender-store-broken")).unwrap(),
            junk
        );
        s.set_installed(&Installed {
            artifact_name: Some("a".into()),
            ..Default::default()
        })
        .unwrap();
    }

    #[test]
    fn io_errors_are_errors() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("mender-store")).unwrap();
        assert!(Store::open(d.path()).is_err());
        assert!(d.path().join("mender-store").is_dir(), "not set aside");
        assert!(!d.path().join("mender-store-broken").exists());
    }
}
