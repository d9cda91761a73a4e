//! Errors of delta generation and application.

use std::io;

use thiserror::Error;

/// What can go wrong making or applying a delta patch.
#[derive(Debug, Error)]
pub enum DeltaError {
    /// Reading or writing a file, the source, the patch or the target failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The patch is not a delta patch this version understands, or its contents are
    /// inconsistent.
    #[error("corrupt delta patch: {0}")]
    CorruptPatch(String),
    /// The patch ends before its end marker.
    #[error("truncated delta patch: {0}")]
    TruncatedPatch(String),
    /// The patch's format version is newer than this reader.
    #[error("unsupported delta format version {0} (this reader knows version 1)")]
    UnsupportedVersion(u16),
    /// Source bytes the patch copies differ from those the patch was made against.
    #[error(
        "wrong source: the {len} source bytes at offset {offset} differ from those the delta was made from"
    )]
    WrongSource {
        /// First source offset of the range whose checksum failed.
        offset: u64,
        /// Length of that range.
        len: u64,
    },
    /// The source ends before a range the patch copies from.
    #[error("wrong source: it ends before offset {needed}, which the delta reads from")]
    SourceTooShort {
        /// The end offset of the range that could not be read.
        needed: u64,
    },
    /// The output does not have the checksum the patch promises.
    #[error("target checksum mismatch: expected {expected}, got {actual}")]
    TargetChecksum {
        /// SHA-256 recorded in the patch (hex).
        expected: String,
        /// SHA-256 of what was written (hex).
        actual: String,
    },
    /// An input is outside what the format supports.
    #[error("{0}")]
    Unsupported(String),
}

impl DeltaError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        DeltaError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result of delta operations.
pub type Result<T> = std::result::Result<T, DeltaError>;
