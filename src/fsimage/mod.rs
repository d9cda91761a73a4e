//! Filesystem images: files inside ext4 (e2fsprogs' `debugfs`) and vfat (mtools),
//! whether the filesystem is a whole file or a partition of a disk image. Knows nothing about
//! artifacts.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod disk;
mod ext4;
pub mod layout;
pub mod partitions;
pub mod ubootenv;
mod vfat;

/// An error working on a filesystem image, as one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FsError(pub String);

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, FsError>;

/// The filesystems files can be edited in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// ext2/3/4.
    Ext4,
    /// FAT12/16/32.
    Vfat,
}

/// What a path in an image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (or anything that is not a directory).
    File,
    /// A directory.
    Dir,
}

/// A filesystem at `offset` bytes into the file `image`.
#[derive(Debug, Clone)]
pub struct Filesystem {
    /// The image file.
    pub image: PathBuf,
    /// Byte offset of the filesystem inside it.
    pub offset: u64,
    /// The filesystem type.
    pub kind: FsKind,
}

/// Detects ext2/3/4 (superblock magic) or FAT (boot sector) at `offset` of `image`.
pub fn detect(image: &Path, offset: u64) -> Result<Option<FsKind>> {
    let mut f = File::open(image).map_err(|e| FsError(format!("{}: {e}", image.display())))?;
    let mut buf = vec![0u8; 2048];
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read(&mut buf))
        .map_err(|e| FsError(format!("{}: {e}", image.display())))?;
    if buf[1080] == 0x53 && buf[1081] == 0xef {
        return Ok(Some(FsKind::Ext4));
    }
    let boot_sig = buf[510] == 0x55 && buf[511] == 0xaa;
    let fat_label = &buf[54..57] == b"FAT" || &buf[82..87] == b"FAT32";
    if boot_sig && fat_label {
        return Ok(Some(FsKind::Vfat));
    }
    Ok(None)
}

/// Checks that `p` is an absolute path without `..` and returns it without a trailing `/`.
pub fn clean_path(p: &str) -> Result<String> {
    if !p.starts_with('/') {
        return Err(FsError(format!(
            "{p:?}: paths inside an image must be absolute"
        )));
    }
    if p.split('/').any(|c| c == ".." || c == ".") {
        return Err(FsError(format!("{p:?}: `.` and `..` are not allowed")));
    }
    let trimmed = p.trim_end_matches('/');
    Ok(if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    })
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

impl Filesystem {
    /// Opens the filesystem at `offset` of `image`, which must be ext4 or vfat.
    pub fn open(image: &Path, offset: u64) -> Result<Self> {
        let kind = detect(image, offset)?.ok_or_else(|| {
            FsError(format!(
                "{}: not an ext4 or vfat filesystem; only those can be edited",
                image.display()
            ))
        })?;
        Ok(Filesystem {
            image: image.to_path_buf(),
            offset,
            kind,
        })
    }

    /// What `path` is, or `None` if it does not exist.
    pub fn stat(&self, path: &str) -> Result<Option<EntryKind>> {
        let path = clean_path(path)?;
        match self.kind {
            FsKind::Ext4 => ext4::stat(self, &path),
            FsKind::Vfat => vfat::stat(self, &path),
        }
    }

    /// Writes the content of file `path` to `out`.
    pub fn cat(&self, path: &str, out: &mut dyn Write) -> Result<()> {
        let path = clean_path(path)?;
        match self.stat(&path)? {
            Some(EntryKind::File) => {}
            Some(EntryKind::Dir) => return Err(FsError(format!("{path}: is a directory"))),
            None => return Err(FsError(format!("{path}: no such file in the image"))),
        }
        match self.kind {
            FsKind::Ext4 => ext4::cat(self, &path, out),
            FsKind::Vfat => vfat::cat(self, &path, out),
        }
    }

    /// Copies host file `src` to `path` (replacing a file there), with permission bits
    /// `mode` when given (ext4; vfat has none). The parent directory must exist.
    pub fn put(&self, src: &Path, path: &str, mode: Option<u32>) -> Result<()> {
        let path = clean_path(path)?;
        if self.stat(parent(&path))? != Some(EntryKind::Dir) {
            return Err(FsError(format!(
                "{}: directory does not exist in the image",
                parent(&path)
            )));
        }
        if self.stat(&path)? == Some(EntryKind::Dir) {
            return Err(FsError(format!("{path}: is a directory")));
        }
        match self.kind {
            FsKind::Ext4 => ext4::put(self, src, &path, mode),
            FsKind::Vfat => vfat::put(self, src, &path),
        }
    }

    /// Creates directory `path` (and missing parents).
    pub fn mkdir(&self, path: &str) -> Result<()> {
        let path = clean_path(path)?;
        match self.stat(&path)? {
            Some(EntryKind::Dir) => return Ok(()),
            Some(EntryKind::File) => return Err(FsError(format!("{path}: exists and is a file"))),
            None => {}
        }
        if path != "/" {
            self.mkdir(parent(&path))?;
        }
        match self.kind {
            FsKind::Ext4 => ext4::mkdir(self, &path),
            FsKind::Vfat => vfat::mkdir(self, &path),
        }
    }

    /// Removes `path`; a directory only with `recursive`.
    pub fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        let path = clean_path(path)?;
        if path == "/" {
            return Err(FsError("refusing to remove the root directory".into()));
        }
        match self.stat(&path)? {
            None => Err(FsError(format!(
                "{path}: no such file or directory in the image"
            ))),
            Some(EntryKind::Dir) if !recursive => {
                Err(FsError(format!("{path}: is a directory (use -r)")))
            }
            Some(kind) => match self.kind {
                FsKind::Ext4 => ext4::remove(self, &path, kind),
                FsKind::Vfat => vfat::remove(self, &path, kind),
            },
        }
    }

    /// Checks (and for ext4, repairs what is safe to repair) the filesystem, as upstream does
    /// before editing.
    pub fn check(&self) -> Result<()> {
        match self.kind {
            FsKind::Ext4 => ext4::check(self),
            FsKind::Vfat => Ok(()),
        }
    }
}

/// `tool` from `PATH`, or from `/usr/sbin` or `/sbin` (where e2fsprogs and dosfstools put
/// theirs, which a user's `PATH` may lack).
fn program(tool: &str) -> PathBuf {
    let in_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    if !in_path {
        for dir in ["/usr/sbin", "/sbin"] {
            let p = Path::new(dir).join(tool);
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from(tool)
}

/// Runs `tool` and returns (success, stdout, stderr); a missing tool is a clear error.
fn run(tool: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(bool, Vec<u8>, String)> {
    let out = Command::new(program(tool))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            FsError(format!(
                "cannot run {tool}: {e} (install e2fsprogs for ext4, mtools for vfat)"
            ))
        })?;
    Ok((
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Runs `tool`, streaming its stdout into `out` (file contents can be large); fails unless
/// it exits 0 with nothing on stderr but lines `quiet` accepts.
fn run_streaming(
    tool: &str,
    args: &[&str],
    env: &[(&str, &str)],
    out: &mut dyn Write,
    quiet: impl Fn(&str) -> bool,
) -> Result<()> {
    let mut child = Command::new(program(tool))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            FsError(format!(
                "cannot run {tool}: {e} (install e2fsprogs for ext4, mtools for vfat)"
            ))
        })?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let copied = std::io::copy(&mut stdout, out);
    let status = child.wait().map_err(|e| FsError(format!("{tool}: {e}")))?;
    let err = err_thread.join().unwrap_or_default();
    copied.map_err(|e| FsError(format!("{tool}: writing output: {e}")))?;
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| !l.trim().is_empty() && !quiet(l))
        .collect();
    if !status.success() || !problems.is_empty() {
        return Err(FsError(format!("{tool}: {}", problems.join("; "))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(clean_path("/etc/x/").unwrap(), "/etc/x");
        assert_eq!(clean_path("/").unwrap(), "/");
        assert!(clean_path("etc").is_err());
        assert!(clean_path("/etc/../x").is_err());
        assert_eq!(parent("/etc/x"), "/etc");
        assert_eq!(parent("/etc"), "/");
    }
}
