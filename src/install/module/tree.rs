//! The module work tree ("File API", spec §5.2): what an update module may read about the
//! device and the artifact, laid out exactly as upstream does, newlines included.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use serde_json::{Map, Value};

use super::{ModuleError, ModuleRunner};

/// What the tree tells the module. The JSON documents are re-serialised pretty-printed, as
/// upstream does, so the caller passes parsed values rather than the raw header bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeContext {
    /// The installed artifact's name (empty file when unknown).
    pub current_artifact_name: Option<String>,
    /// The installed artifact's group (empty file when none).
    pub current_artifact_group: Option<String>,
    /// The device type from the `device_type` file.
    pub device_type: String,
    /// The new artifact's name.
    pub artifact_name: String,
    /// The new artifact's group.
    pub artifact_group: Option<String>,
    /// The payload type; normally the runner's.
    pub payload_type: String,
    /// The artifact's `header-info` document.
    pub header_info_json: Value,
    /// The payload's `type-info` document.
    pub type_info_json: Value,
    /// The payload's meta-data; written as `null` when absent.
    pub meta_data: Option<Map<String, Value>>,
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ModuleError> {
    let mut f = File::create(path)
        .map_err(|e| ModuleError::io(format!("creating {}", path.display()), e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| ModuleError::io(format!("writing {}", path.display()), e))
}

/// Flushes a directory's entries to disk, so a file created in it survives power loss.
pub(crate) fn sync_dir(path: &Path) -> Result<(), ModuleError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| ModuleError::io(format!("syncing {}", path.display()), e))
}

fn create_dir(path: &Path) -> Result<(), ModuleError> {
    fs::create_dir_all(path).map_err(|e| ModuleError::io(format!("creating {}", path.display()), e))
}

fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("a JSON value always serialises")
}

/// Removes a directory tree; a tree that is not there is already removed.
pub(crate) fn remove_tree(path: &Path) -> Result<(), ModuleError> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(ModuleError::io(format!("removing {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

impl ModuleRunner {
    /// Replaces any old tree with a fresh one for `ctx`, fsync'ed, so that a module starting
    /// after a power loss never sees a half-written or stale tree.
    pub fn prepare_tree(&self, ctx: &TreeContext) -> Result<(), ModuleError> {
        let tree = self.tree_dir();
        remove_tree(&tree)?;
        let header = tree.join("header");
        create_dir(&header)?;
        create_dir(&tree.join("tmp"))?;
        let line = |v: &Option<String>| v.as_deref().map(|s| format!("{s}\n")).unwrap_or_default();
        let files: [(&Path, &str, Vec<u8>); 10] = [
            (&tree, "version", b"3\n".to_vec()),
            (
                &tree,
                "current_artifact_name",
                line(&ctx.current_artifact_name).into_bytes(),
            ),
            (
                &tree,
                "current_artifact_group",
                line(&ctx.current_artifact_group).into_bytes(),
            ),
            (
                &tree,
                "current_device_type",
                format!("{}\n", ctx.device_type).into_bytes(),
            ),
            (
                &header,
                "artifact_name",
                ctx.artifact_name.clone().into_bytes(),
            ),
            (
                &header,
                "artifact_group",
                ctx.artifact_group.clone().unwrap_or_default().into_bytes(),
            ),
            (
                &header,
                "payload_type",
                ctx.payload_type.clone().into_bytes(),
            ),
            (&header, "header-info", pretty(&ctx.header_info_json)),
            (&header, "type-info", pretty(&ctx.type_info_json)),
            (
                &header,
                "meta-data",
                match &ctx.meta_data {
                    Some(m) => pretty(&Value::Object(m.clone())),
                    None => b"null".to_vec(),
                },
            ),
        ];
        for (dir, name, bytes) in &files {
            write_synced(&dir.join(name), bytes)?;
        }
        for dir in [&header, &tree.join("tmp"), &tree, &self.payload_dir()] {
            sync_dir(dir)?;
        }
        if let Some(payloads) = self.payload_dir().parent() {
            sync_dir(payloads)?;
            sync_dir(&self.work_dir)?;
        }
        Ok(())
    }
}
