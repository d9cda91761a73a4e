//! The errors of reading and writing artifacts, with what a user needs to fix the input.

use std::io;

/// What went wrong reading or writing an artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The artifact does not follow the format.
    #[error("{0}")]
    Format(String),
    /// A checksum did not match the manifest.
    #[error("checksum mismatch for {path}: manifest says {expected}, content is {actual}")]
    Checksum {
        /// Manifest path of the member or file.
        path: String,
        /// The checksum in the manifest.
        expected: String,
        /// The checksum of what was read.
        actual: String,
    },
    /// A signature is missing, malformed or does not verify.
    #[error("{0}")]
    Signature(String),
    /// Invalid parameters given by the caller (names, files, options).
    #[error("{0}")]
    Invalid(String),
    /// The caller's visitor stopped the read.
    #[error("{0}")]
    Aborted(String),
}

impl ArtifactError {
    /// Wraps an I/O error with context. Errors that carry an `ArtifactError` (from a reader
    /// inside the pipeline, such as a checksum check) are unwrapped, not re-wrapped.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        if source.get_ref().is_some_and(|e| e.is::<ArtifactError>()) {
            let inner = source.into_inner().expect("checked above");
            return *inner.downcast::<ArtifactError>().expect("checked above");
        }
        ArtifactError::Io {
            context: context.into(),
            source,
        }
    }

    /// Shorthand for a format error.
    pub fn format(msg: impl Into<String>) -> Self {
        ArtifactError::Format(msg.into())
    }
}

/// Result alias for this module.
pub type Result<T, E = ArtifactError> = std::result::Result<T, E>;
