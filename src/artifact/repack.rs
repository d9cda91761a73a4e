//! Changing an existing artifact: its payload files are extracted (verified) into a temp
//! folder beside the output, edited by the caller, and a new artifact is written from them
//! with the same headers plus the requested changes. The original is replaced only when the
//! new one is complete; a stale signature is never carried over.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::{ArtifactError, Result};
use super::info::{ArtifactInfo, PayloadFile};
use super::reader::{read_artifact, ReadOptions, Visitor};
use super::spec::{ArtifactSpec, PayloadSpec};
use super::writer::{write_artifact, ManifestSigner, Output, WriteOptions};
use super::Compression;

/// Checksum provides that are recomputed from the payload whenever it is written.
const CHECKSUM_KEYS: [&str; 2] = ["rootfs-image.checksum", "rootfs_image_checksum"];

/// An artifact unpacked for editing.
pub struct Unpacked {
    /// Holds the extracted files; removed on drop.
    pub dir: tempfile::TempDir,
    /// The artifact's description.
    pub info: ArtifactInfo,
    /// Payload 0's files, in order, inside `dir`.
    pub files: Vec<PathBuf>,
}

impl Unpacked {
    /// Whether the payload is a root filesystem image.
    pub fn is_rootfs(&self) -> bool {
        self.info.payload_type(0) == Some("rootfs-image")
    }
}

struct Extract<'a> {
    dir: &'a Path,
    files: Vec<PathBuf>,
}

impl Visitor for Extract<'_> {
    fn file(
        &mut self,
        _info: &ArtifactInfo,
        _payload: usize,
        file: &PayloadFile,
        data: &mut dyn Read,
    ) -> Result<()> {
        let path = self.dir.join("files").join(&file.name);
        let mut out =
            File::create(&path).map_err(|e| ArtifactError::io(path.display().to_string(), e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ArtifactError::io(format!("reading {}", file.name), e)),
            };
            out.write_all(&buf[..n])
                .map_err(|e| ArtifactError::io(path.display().to_string(), e))?;
        }
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(file.mode & 0o7777));
        self.files.push(path);
        Ok(())
    }
}

/// Unpacks `artifact` into a temp folder in `tmp_dir`. Only single-payload, non-augmented
/// artifacts can be changed (as upstream).
pub fn unpack(artifact: &Path, tmp_dir: &Path) -> Result<Unpacked> {
    let dir = tempfile::Builder::new()
        .prefix(".mender-artifact-edit-")
        .tempdir_in(tmp_dir)
        .map_err(|e| ArtifactError::io(tmp_dir.display().to_string(), e))?;
    fs::create_dir(dir.path().join("files"))
        .map_err(|e| ArtifactError::io(dir.path().display().to_string(), e))?;
    let f =
        File::open(artifact).map_err(|e| ArtifactError::io(artifact.display().to_string(), e))?;
    let mut v = Extract {
        dir: dir.path(),
        files: Vec::new(),
    };
    let info = read_artifact(
        BufReader::with_capacity(1 << 20, f),
        &ReadOptions::default(),
        &mut v,
    )?;
    if info.augment.is_some() {
        return Err(ArtifactError::Invalid(
            "changing augmented artifacts is not supported".into(),
        ));
    }
    if info.payloads.len() != 1 {
        return Err(ArtifactError::Invalid(format!(
            "changing artifacts with {} payloads is not supported (only one)",
            info.payloads.len()
        )));
    }
    let files = v.files;
    Ok(Unpacked { dir, info, files })
}

/// Header changes requested by `modify`.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// New artifact name.
    pub name: Option<String>,
    /// New compatible device types (replacing the list).
    pub device_types: Option<Vec<String>>,
    /// New artifact-name depends (replacing the list).
    pub depends_names: Option<Vec<String>>,
    /// New provided group.
    pub provides_group: Option<String>,
    /// New group depends (replacing the list).
    pub depends_groups: Option<Vec<String>>,
    /// Provides to set (added or replaced, one key at a time).
    pub provides: BTreeMap<String, String>,
    /// Depends to set (added or replaced, one key at a time).
    pub depends: BTreeMap<String, String>,
    /// New meta-data object.
    pub meta_data: Option<Map<String, Value>>,
    /// Clears-provides patterns to add.
    pub clears_add: Vec<String>,
    /// Clears-provides patterns to remove.
    pub clears_delete: Vec<String>,
}

/// How to write the changed artifact.
pub struct RepackOptions<'a> {
    /// Compression; the original's data compression when `None`.
    pub compression: Option<Compression>,
    /// Signs the result; without one the result is unsigned.
    pub signer: Option<&'a dyn ManifestSigner>,
    /// Progress.
    pub progress: indicatif::ProgressBar,
}

/// Writes `u` (with `changes`) to `output`, replacing it atomically.
pub fn repack(u: &Unpacked, changes: &Changes, output: &Path, opts: &RepackOptions) -> Result<()> {
    let info = &u.info;
    let mut hi = info.header_info.clone();
    let old_name = hi.artifact_name.clone();
    if let Some(n) = &changes.name {
        hi.artifact_name = n.clone();
    }
    if let Some(d) = &changes.device_types {
        hi.depends_device_type = d.clone();
    }
    if let Some(d) = &changes.depends_names {
        hi.depends_artifact_name = d.clone();
    }
    if let Some(g) = &changes.provides_group {
        hi.artifact_group = Some(g.clone());
    }
    if let Some(g) = &changes.depends_groups {
        hi.depends_artifact_group = g.clone();
    }
    let mut ti = info.payloads[0].type_info.clone();
    if u.is_rootfs() {
        ti.kind = Some("rootfs-image".into());
        hi.payload_types = vec![Some("rootfs-image".into())];
    }
    // A version provide that named the artifact follows a rename.
    if changes.name.is_some() {
        for (k, v) in ti.provides.iter_mut() {
            if k.ends_with(".version") && *v == old_name {
                *v = hi.artifact_name.clone();
            }
        }
    }
    ti.provides.extend(changes.provides.clone());
    ti.depends.extend(
        changes
            .depends
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone()))),
    );
    if !changes.clears_add.is_empty() || !changes.clears_delete.is_empty() {
        let mut c = ti.clears_provides.take().unwrap_or_default();
        c.retain(|x| !changes.clears_delete.contains(x));
        for x in &changes.clears_add {
            if !c.contains(x) {
                c.push(x.clone());
            }
        }
        ti.clears_provides = (!c.is_empty()).then_some(c);
    }
    let checksum_provide = CHECKSUM_KEYS
        .iter()
        .find(|k| ti.provides.contains_key(**k))
        .map(|k| k.to_string());
    if let Some(k) = &checksum_provide {
        ti.provides.remove(k);
    }
    let scripts_dir = u.dir.path().join("scripts");
    let mut scripts = Vec::new();
    if !info.scripts.is_empty() {
        fs::create_dir_all(&scripts_dir)
            .map_err(|e| ArtifactError::io(scripts_dir.display().to_string(), e))?;
        for s in &info.scripts {
            let p = scripts_dir.join(&s.name);
            fs::write(&p, &s.data).map_err(|e| ArtifactError::io(p.display().to_string(), e))?;
            let _ = fs::set_permissions(&p, fs::Permissions::from_mode(s.mode & 0o7777));
            scripts.push(p);
        }
    }
    let payload = PayloadSpec {
        meta_data: changes
            .meta_data
            .clone()
            .or_else(|| info.payloads[0].meta_data.clone()),
        empty_meta_data: u.is_rootfs(),
        files: u.files.clone(),
        checksum_provide,
        type_info: ti,
    };
    let spec = ArtifactSpec {
        version: info.version,
        header_info: hi,
        payloads: vec![payload],
        scripts,
        augment: None,
        compression: opts
            .compression
            .or(info.data_compression)
            .unwrap_or(info.header_compression),
    };
    let wopts = WriteOptions {
        signer: opts.signer,
        progress: opts.progress.clone(),
        tmp_dir: Some(u.dir.path().to_path_buf()),
    };
    write_artifact(&spec, &Output::File(output.to_path_buf()), &wopts)
}
