//! The handler's persisted state in its work directory: the marker a successful download leaves
//! for install, and the original partition number rollback restores. Both are written
//! atomically (temporary file, fsync, rename, fsync of the directory) so a power cut leaves
//! either the old file or the new one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::RootfsError;

/// Written by a successful download; install refuses without it.
pub const DOWNLOAD_MARKER: &str = "rootfs-download-ok";
/// Upstream's file name for the saved original partition (`tmp/orig-part`).
pub const ORIG_PART: &str = "orig-part";

/// What a download proved: which partition now holds which image. Install checks the partition
/// is still the passive one, so a changed boot environment cannot make it boot something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRecord {
    /// The partition number written.
    pub partition: u32,
    /// Bytes of the image.
    pub size: u64,
    /// SHA-256 of the image, lowercase hex.
    pub sha256: String,
}

impl DownloadRecord {
    fn render(&self) -> String {
        format!(
            "partition={}\nsize={}\nsha256={}\n",
            self.partition, self.size, self.sha256
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .map(str::trim)
        };
        Some(DownloadRecord {
            partition: field("partition")?.parse().ok()?,
            size: field("size")?.parse().ok()?,
            sha256: field("sha256")?.to_owned(),
        })
    }
}

fn io_err(path: &Path, source: io::Error) -> RootfsError {
    RootfsError::State {
        path: path.to_owned(),
        source,
    }
}

/// Replaces `dir/name` with `contents` atomically and durably.
pub fn write_atomic(dir: &Path, name: &str, contents: &str) -> Result<(), RootfsError> {
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let path = dir.join(name);
    crate::install::store::atomic_write(&path, contents.as_bytes()).map_err(|e| io_err(&path, e))
}

/// Reads `dir/name`; `None` when it does not exist, which callers treat as "not recorded".
fn read_optional(dir: &Path, name: &str) -> Result<Option<(PathBuf, String)>, RootfsError> {
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some((path, text))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path, e)),
    }
}

/// Removes `dir/name` if present, so a failed download cannot leave an earlier marker behind.
pub fn remove(dir: &Path, name: &str) -> Result<(), RootfsError> {
    let path = dir.join(name);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&path, e)),
    }
}

/// Records a finished, verified download.
pub fn save_download(dir: &Path, record: &DownloadRecord) -> Result<(), RootfsError> {
    write_atomic(dir, DOWNLOAD_MARKER, &record.render())
}

/// The record of this update's download; an error when there is none or it is unreadable.
pub fn load_download(dir: &Path) -> Result<DownloadRecord, RootfsError> {
    let (path, text) =
        read_optional(dir, DOWNLOAD_MARKER)?.ok_or_else(|| RootfsError::NotDownloaded {
            marker: dir.join(DOWNLOAD_MARKER),
        })?;
    DownloadRecord::parse(&text).ok_or(RootfsError::BadState {
        path,
        reason: "not a download record",
    })
}

/// Saves the partition to return to, in upstream's `orig_part_num` form.
pub fn save_original(dir: &Path, number: u32) -> Result<(), RootfsError> {
    let text = format!("orig_part_num={number}\norig_part_num_hex={number:x}\n");
    write_atomic(dir, ORIG_PART, &text)
}

/// The saved original partition, `None` when install never got that far.
pub fn load_original(dir: &Path) -> Result<Option<u32>, RootfsError> {
    let Some((path, text)) = read_optional(dir, ORIG_PART)? else {
        return Ok(None);
    };
    text.lines()
        .find_map(|l| l.strip_prefix("orig_part_num="))
        .and_then(|v| v.trim().parse().ok())
        .map(Some)
        .ok_or(RootfsError::BadState {
            path,
            reason: "no orig_part_num",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_missing_is_distinct() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_download(dir.path()),
            Err(RootfsError::NotDownloaded { .. })
        ));
        assert_eq!(load_original(dir.path()).unwrap(), None);
        let rec = DownloadRecord {
            partition: 3,
            size: 42,
            sha256: "ab".repeat(32),
        };
        save_download(dir.path(), &rec).unwrap();
        assert_eq!(load_download(dir.path()).unwrap(), rec);
        save_original(dir.path(), 10).unwrap();
        let text = fs::read_to_string(dir.path().join(ORIG_PART)).unwrap();
        assert_eq!(text, "orig_part_num=10\norig_part_num_hex=a\n");
        assert_eq!(load_original(dir.path()).unwrap(), Some(10));
        remove(dir.path(), DOWNLOAD_MARKER).unwrap();
        remove(dir.path(), DOWNLOAD_MARKER).unwrap();
        fs::write(dir.path().join(ORIG_PART), "garbage").unwrap();
        assert!(matches!(
            load_original(dir.path()),
            Err(RootfsError::BadState { .. })
        ));
    }
}
