//! The blob store: artifact files in a local directory or an S3 bucket. Uploads are written to
//! a local temporary file and moved into place only once validated, so a failed upload leaves
//! nothing behind.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::ids::is_uuid;
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

    /// Moves a validated upload into place as artifact `id` (blocking). Never replaces an
    /// existing artifact: if `id` is taken (two uploads choosing the same id at once), the
    /// error is `AlreadyExists` and the other upload's file stays.
    pub fn commit(&self, temp: tempfile::NamedTempFile, id: &str) -> io::Result<()> {
        match self {
            BlobStore::Dir(_) => {
                temp.as_file().sync_all()?;
                temp.persist_noclobber(self.local_path(id)?)
                    .map_err(|e| e.error)?;
                Ok(())
            }
            BlobStore::S3 { store, .. } => store.put_new_file(id, temp.path()),
        }
    }

    /// Whether this server serves the artifact files itself (a directory store).
    pub fn serves_files(&self) -> bool {
        matches!(self, BlobStore::Dir(_))
    }

    /// The local file of artifact `id`, for a directory store; `NotFound` for an id that
    /// is no artifact id (artifact ids are UUIDs, so `..` or a NUL byte names no file).
    pub fn local_path(&self, id: &str) -> io::Result<PathBuf> {
        match self {
            BlobStore::Dir(dir) if is_uuid(id) => Ok(dir.join(id)),
            BlobStore::Dir(_) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "not an artifact id",
            )),
            BlobStore::S3 { .. } => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "artifacts are in the object store",
            )),
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
            BlobStore::Dir(_) => match self.local_path(id).and_then(fs::remove_file) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            BlobStore::S3 { store, .. } => store.delete(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn upload(store: &BlobStore, content: &[u8]) -> tempfile::NamedTempFile {
        let mut t = store.temp().unwrap();
        t.write_all(content).unwrap();
        t
    }

    #[test]
    fn a_taken_id_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_url(dir.path().to_str().unwrap(), dir.path()).unwrap();
        let id = crate::server::ids::uuid_v4();
        store.commit(upload(&store, b"first"), &id).unwrap();
        let err = store.commit(upload(&store, b"second"), &id).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(store.local_path(&id).unwrap()).unwrap(), b"first");
        store.delete(&id).unwrap();
        store.delete(&id).unwrap();
        assert!(!store.local_path(&id).unwrap().exists());
    }

    #[test]
    fn ids_that_are_no_uuids_name_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_url(dir.path().to_str().unwrap(), dir.path()).unwrap();
        for id in ["..", "../x", "a\0b", ".tmp", ""] {
            let err = store.local_path(id).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotFound, "{id:?}");
            assert!(store.commit(upload(&store, b"x"), id).is_err(), "{id:?}");
            store.delete(id).unwrap();
        }
    }
}
