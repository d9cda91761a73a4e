//! The output folders of a dump and the hidden staging folder inside each: parts are
//! written there and moved into place only once the whole artifact has been verified.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Layout, Place};
use crate::artifact::error::{ArtifactError, Result};

pub(super) fn out_err(path: &Path, e: impl std::fmt::Display) -> ArtifactError {
    ArtifactError::Aborted(format!("writing {}: {e}", path.display()))
}

/// The output folders with their hidden staging folders; dropping it removes the staging
/// folders and any output folder it created.
pub(super) struct Staging {
    /// Per root: the staging folder (shared when two roots are the same folder).
    stage_of: Vec<usize>,
    stages: Vec<(tempfile::TempDir, PathBuf)>,
    created: Vec<PathBuf>,
    committed: bool,
}

impl Staging {
    pub(super) fn prepare(layout: &Layout, force: bool) -> Result<Staging> {
        let mut s = Staging {
            stage_of: Vec::new(),
            stages: Vec::new(),
            created: Vec::new(),
            committed: false,
        };
        let mut canon: Vec<PathBuf> = Vec::new();
        for root in &layout.roots {
            let bad = |e: io::Error| {
                ArtifactError::Invalid(format!("output folder {}: {e}", root.display()))
            };
            match fs::metadata(root) {
                Ok(md) if !md.is_dir() => {
                    return Err(ArtifactError::Invalid(format!(
                        "output folder {} exists and is not a folder",
                        root.display()
                    )))
                }
                Ok(_) => {
                    if !force && fs::read_dir(root).map_err(bad)?.next().is_some() {
                        return Err(ArtifactError::Invalid(format!(
                            "output folder {} is not empty; use --force to replace what is there",
                            root.display()
                        )));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir_all(root).map_err(bad)?;
                    s.created.push(root.clone());
                }
                Err(e) => return Err(bad(e)),
            }
            canon.push(fs::canonicalize(root).map_err(bad)?);
        }
        for (i, c) in canon.iter().enumerate() {
            match canon[..i].iter().position(|x| x == c) {
                Some(j) => s.stage_of.push(s.stage_of[j]),
                None => {
                    let dir = tempfile::Builder::new()
                        .prefix(".mender-dump-")
                        .tempdir_in(c)
                        .map_err(|e| {
                            ArtifactError::Invalid(format!("output folder {}: {e}", c.display()))
                        })?;
                    s.stages.push((dir, c.clone()));
                    s.stage_of.push(s.stages.len() - 1);
                }
            }
        }
        Ok(s)
    }

    /// Where a place is while the dump is running.
    pub(super) fn staged(&self, p: &Place) -> PathBuf {
        self.stages[self.stage_of[p.root]].0.path().join(&p.rel)
    }

    /// Moves everything staged into the output folders.
    pub(super) fn commit(&mut self, force: bool) -> Result<()> {
        for (dir, root) in &self.stages {
            let entries = fs::read_dir(dir.path()).map_err(|e| out_err(dir.path(), e))?;
            for e in entries {
                let e = e.map_err(|e| out_err(dir.path(), e))?;
                let target = root.join(e.file_name());
                if let Ok(md) = fs::symlink_metadata(&target) {
                    if !force {
                        return Err(out_err(&target, "already exists"));
                    }
                    if md.is_dir() {
                        fs::remove_dir_all(&target)
                    } else {
                        fs::remove_file(&target)
                    }
                    .map_err(|e| out_err(&target, e))?;
                }
                fs::rename(e.path(), &target).map_err(|e| out_err(&target, e))?;
            }
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.stages.clear();
        if !self.committed {
            for d in self.created.iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
    }
}
