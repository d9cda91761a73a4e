//! The blob store: artifact files in a local directory or an S3 bucket. Uploads are written to
//! a local temporary file and moved into place only once validated, so a failed upload leaves
//! nothing behind.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::s3::S3Store;

/// Where artifact files are kept.
#[derive(Debug, Clone)]
pub enum BlobStore {
    /// One file per artifact id in a directory.
    Dir(PathBuf),
    /// One object per artifact id in a bucket; uploads are staged in `staging`.
    S3 {
        /// The bucket.
        store: S3Store,
        /// Local directory for uploads being validated.
        staging: PathBuf,
    },
}

/// An unusable storage URL.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The URL names a backend this build does not have.
    #[error("unsupported storage URL {0:?} (expected file:DIR or s3://BUCKET?endpoint=URL)")]
    Url(String),
    /// The S3 URL or credentials are wrong.
    #[error("{0}")]
    S3(#[from] super::s3::S3Error),
    /// The directory or bucket could not be made.
    #[error("{0}: {1}")]
    Io(String, io::Error),
}

impl BlobStore {
    /// Opens the store named by `url` (`file:DIR`, a bare path, or `s3://...`), creating the
    /// directory or bucket; S3 uploads are staged under `data_dir`.
    pub fn open_url(url: &str, data_dir: &Path) -> Result<BlobStore, BlobError> {
        if url.starts_with("s3://") {
            let store = S3Store::from_url(url)?;
            store
                .ensure_bucket()
                .map_err(|e| BlobError::Io(url.to_string(), e))?;
            let staging = data_dir.join("staging");
            fs::create_dir_all(&staging)
                .map_err(|e| BlobError::Io(staging.display().to_string(), e))?;
            return Ok(BlobStore::S3 { store, staging });
        }
        let dir = match url.split_once(':') {
            Some(("file", p)) => p.trim_start_matches("//"),
            Some((scheme, _)) if scheme.len() > 1 => return Err(BlobError::Url(url.into())),
            _ => url,
        };
        let dir = PathBuf::from(dir);
        fs::create_dir_all(dir.join(".tmp"))
            .map_err(|e| BlobError::Io(dir.display().to_string(), e))?;
        Ok(BlobStore::Dir(dir))
    }

    /// A new temporary file for an upload, removed when dropped unless committed.
    pub fn temp(&self) -> io::Result<tempfile::NamedTempFile> {
        match self {
            BlobStore::Dir(dir) => tempfile::NamedTempFile::new_in(dir.join(".tmp")),
            BlobStore::S3 { staging, .. } => tempfile::NamedTempFile::new_in(staging),
        }
    }

    /// Moves a validated upload into place as artifact `id` (blocking).
    pub fn commit(&self, temp: tempfile::NamedTempFile, id: &str) -> io::Result<()> {
        match self {
            BlobStore::Dir(_) => {
                temp.as_file().sync_all()?;
                let path = self.local_path(id).expect("a directory store");
                temp.persist(path).map_err(|e| e.error)?;
                Ok(())
            }
            BlobStore::S3 { store, .. } => store.put_file(id, temp.path()),
        }
    }

    /// The local file of artifact `id`, for a directory store.
    pub fn local_path(&self, id: &str) -> Option<PathBuf> {
        match self {
            BlobStore::Dir(dir) => Some(dir.join(Path::new(id).file_name().unwrap_or_default())),
            BlobStore::S3 { .. } => None,
        }
    }

    /// A pre-signed URL for artifact `id` valid for `secs`, for stores that serve files
    /// themselves; None when this server serves them.
    pub fn presigned(&self, id: &str, secs: i64) -> Option<String> {
        match self {
            BlobStore::Dir(_) => None,
            BlobStore::S3 { store, .. } => Some(store.presign_get(id, secs)),
        }
    }

    /// Removes artifact `id` (no error if already gone; blocking).
    pub fn delete(&self, id: &str) -> io::Result<()> {
        match self {
            BlobStore::Dir(_) => {
                match fs::remove_file(self.local_path(id).expect("a directory store")) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
            BlobStore::S3 { store, .. } => store.delete(id),
        }
    }
}
