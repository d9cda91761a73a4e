//! `FILE:/path` arguments of `cat`, `cp`, `install`, `rm` and `modify`: the file is an
//! artifact (its rootfs-image payload), a partitioned disk image (the partition Mender's
//! layout puts the path on) or a bare ext4/vfat image; edits are made on a copy that replaces
//! the original only when complete.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::super::exit::{CliError, FAILED, OPEN};
use crate::artifact::repack::{repack, unpack, Changes, RepackOptions, Unpacked};
use crate::artifact::{Compression, ManifestSigner};
use crate::fsimage::{self, partitions, Filesystem};

/// What a `FILE` in `FILE:/path` is.
pub enum Container {
    /// A Mender artifact.
    Artifact(PathBuf),
    /// A disk image with a partition table.
    Disk(PathBuf, Vec<partitions::Partition>),
    /// A bare filesystem image.
    Fs(PathBuf),
}

/// Splits `FILE:/path`.
pub fn split_target(arg: &str) -> Option<(PathBuf, String)> {
    let i = arg.find(":/")?;
    Some((PathBuf::from(&arg[..i]), arg[i + 1..].to_string()))
}

fn fs_err(e: fsimage::FsError) -> CliError {
    CliError::new(FAILED, e.0)
}

fn is_artifact(path: &Path) -> bool {
    let mut head = [0u8; 512];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head.starts_with(b"version\0")
}

impl Container {
    /// Identifies `path`.
    pub fn open(path: &Path) -> Result<Self, CliError> {
        if !path.is_file() {
            return Err(CliError::new(
                OPEN,
                format!("{}: no such file", path.display()),
            ));
        }
        if is_artifact(path) {
            return Ok(Container::Artifact(path.to_path_buf()));
        }
        if fsimage::detect(path, 0).map_err(fs_err)?.is_some() {
            return Ok(Container::Fs(path.to_path_buf()));
        }
        let parts = partitions::read(path).map_err(fs_err)?;
        if parts.is_empty() {
            return Err(CliError::new(
                FAILED,
                format!(
                    "{}: not an artifact, an ext4/vfat image or a partitioned disk image",
                    path.display()
                ),
            ));
        }
        Ok(Container::Disk(path.to_path_buf(), parts))
    }

    fn path(&self) -> &Path {
        match self {
            Container::Artifact(p) | Container::Disk(p, _) | Container::Fs(p) => p,
        }
    }

    /// The filesystem holding `path` inside `image` (a copy or the original) and the path
    /// inside that filesystem.
    fn locate(&self, image: &Path, path: &str) -> Result<(Filesystem, String), CliError> {
        let path = fsimage::clean_path(path).map_err(fs_err)?;
        match self {
            Container::Disk(_, parts) => {
                let (number, inner) = partitions::route(&path);
                let part = parts.iter().find(|p| p.number == number).ok_or_else(|| {
                    CliError::new(
                        FAILED,
                        format!(
                            "{}: no partition {number} for {path}",
                            self.path().display()
                        ),
                    )
                })?;
                Ok((Filesystem::open(image, part.start).map_err(fs_err)?, inner))
            }
            _ => {
                if matches!(self, Container::Artifact(_)) && partitions::route(&path).0 != 2 {
                    return Err(CliError::usage(format!(
                        "{path}: an artifact holds only the root filesystem, not the boot or data partition"
                    )));
                }
                Ok((Filesystem::open(image, 0).map_err(fs_err)?, path))
            }
        }
    }
}

fn rootfs_of(u: &Unpacked, artifact: &Path) -> Result<PathBuf, CliError> {
    if !u.is_rootfs() || u.files.len() != 1 {
        return Err(CliError::new(
            FAILED,
            format!(
                "{}: only rootfs-image artifacts hold a filesystem (ext4 or vfat) to work on",
                artifact.display()
            ),
        ));
    }
    Ok(u.files[0].clone())
}

fn tmp_dir_for(path: &Path, tmp: Option<&Path>) -> PathBuf {
    match tmp {
        Some(t) => t.to_path_buf(),
        None => path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    }
}

/// Reads: runs `op` on the filesystem holding `path`.
pub fn read_in(
    c: &Container,
    path: &str,
    tmp: Option<&Path>,
    op: impl FnOnce(&Filesystem, &str) -> Result<(), CliError>,
) -> Result<(), CliError> {
    match c {
        Container::Artifact(a) => {
            let dir = tmp.map_or_else(std::env::temp_dir, Path::to_path_buf);
            let u = unpack(a, &dir)
                .map_err(|e| CliError::artifact(&a.display().to_string(), e, FAILED))?;
            let img = rootfs_of(&u, a)?;
            let (fs, inner) = c.locate(&img, path)?;
            op(&fs, &inner)
        }
        _ => {
            let (fs, inner) = c.locate(c.path(), path)?;
            op(&fs, &inner)
        }
    }
}

/// How to write an edited artifact.
pub struct EditOptions<'a> {
    /// Temp folder (default: beside the file).
    pub tmp: Option<&'a Path>,
    /// Signer for artifacts.
    pub signer: Option<&'a dyn ManifestSigner>,
    /// Compression override for artifacts.
    pub compression: Option<Compression>,
    /// Header changes for artifacts.
    pub changes: Changes,
}

/// Edits: runs `op` with a function that locates paths, on a copy of the image (or the
/// unpacked payload), then replaces the original.
pub fn edit(
    c: &Container,
    opts: &EditOptions,
    op: impl FnOnce(&dyn Fn(&str) -> Result<(Filesystem, String), CliError>) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let target = c.path();
    let dir = tmp_dir_for(target, opts.tmp);
    let name = target.display().to_string();
    let md = fs::metadata(target).map_err(|e| CliError::new(OPEN, format!("{name}: {e}")))?;
    if md.permissions().readonly() {
        return Err(CliError::new(
            FAILED,
            format!("{name}: the file is read-only"),
        ));
    }
    match c {
        Container::Artifact(a) => {
            let u = unpack(a, &dir).map_err(|e| CliError::artifact(&name, e, FAILED))?;
            if u.is_rootfs() {
                let img = rootfs_of(&u, a)?;
                Filesystem::open(&img, 0)
                    .and_then(|f| f.check())
                    .map_err(fs_err)?;
                op(&|p: &str| c.locate(&img, p))?;
            } else {
                op(&|_: &str| {
                    Err(CliError::new(
                        FAILED,
                        format!("{name}: only rootfs-image artifacts hold a filesystem (ext4 or vfat) to edit"),
                    ))
                })?;
            }
            if u.info.signature.is_some() && opts.signer.is_none() {
                eprintln!("mender-artifact: {name}: the old signature no longer matches and is removed; sign again with -k");
            }
            let ropts = RepackOptions {
                compression: opts.compression,
                signer: opts.signer,
                progress: indicatif::ProgressBar::hidden(),
            };
            repack(&u, &opts.changes, a, &ropts).map_err(|e| CliError::artifact(&name, e, FAILED))
        }
        _ => {
            let mut tmp = tempfile::Builder::new()
                .prefix(".mender-artifact-")
                .suffix(".tmp")
                .tempfile_in(&dir)
                .map_err(|e| CliError::new(FAILED, format!("{}: {e}", dir.display())))?;
            let mut src =
                File::open(target).map_err(|e| CliError::new(OPEN, format!("{name}: {e}")))?;
            std::io::copy(&mut src, tmp.as_file_mut())
                .map_err(|e| CliError::new(FAILED, format!("copying {name}: {e}")))?;
            if let Container::Fs(_) = c {
                Filesystem::open(tmp.path(), 0)
                    .and_then(|f| f.check())
                    .map_err(fs_err)?;
            }
            let copy = tmp.path().to_path_buf();
            op(&|p: &str| c.locate(&copy, p))?;
            let mode = fs::metadata(target)
                .map(|m| m.permissions().mode())
                .unwrap_or(0o644);
            let f = tmp.as_file_mut();
            f.sync_all()
                .and_then(|_| f.set_permissions(fs::Permissions::from_mode(mode & 0o7777)))
                .map_err(|e| CliError::new(FAILED, format!("{name}: {e}")))?;
            tmp.persist(target)
                .map_err(|e| CliError::new(FAILED, format!("{name}: {}", e.error)))?;
            Ok(())
        }
    }
}
