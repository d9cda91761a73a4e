//! The blob store: artifact files in a local directory, written to a temporary name and renamed
//! into place only once validated, so a failed upload leaves nothing behind.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Artifact files in a directory, one file per artifact id.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

/// An unknown storage URL.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The URL names a backend this build does not have.
    #[error("unsupported storage URL {0:?} (expected file:DIR)")]
    Url(String),
    /// The directory could not be made.
    #[error("{0}: {1}")]
    Io(String, io::Error),
}

impl BlobStore {
    /// Opens the store named by `url` (`file:DIR` or a bare path), creating the directory.
    pub fn open_url(url: &str) -> Result<BlobStore, BlobError> {
        let dir = match url.split_once(':') {
            Some(("file", p)) => p.trim_start_matches("//"),
            Some((scheme, _)) if scheme.len() > 1 => return Err(BlobError::Url(url.into())),
            _ => url,
        };
        let dir = PathBuf::from(dir);
        fs::create_dir_all(dir.join(".tmp"))
            .map_err(|e| BlobError::Io(dir.display().to_string(), e))?;
        Ok(BlobStore { dir })
    }

    /// A new temporary file for an upload, removed when dropped unless committed.
    pub fn temp(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::NamedTempFile::new_in(self.dir.join(".tmp"))
    }

    /// Moves a validated upload into place as artifact `id`.
    pub fn commit(&self, temp: tempfile::NamedTempFile, id: &str) -> io::Result<()> {
        temp.as_file().sync_all()?;
        temp.persist(self.path(id)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Where artifact `id` is kept.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(Path::new(id).file_name().unwrap_or_default())
    }

    /// Removes artifact `id` (no error if already gone).
    pub fn delete(&self, id: &str) -> io::Result<()> {
        match fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
