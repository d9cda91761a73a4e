//! What can go wrong when driving an update module, worded as one line that names the module
//! and the state; the module's output rides along for the log.

use std::io;
use std::path::PathBuf;

use crate::install::process::Captured;

/// An update-module failure. `Display` is one line; the module's output, when there is any,
/// is available through [`ModuleError::output`] so the caller can log it separately.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The payload type would name a file outside the modules dir.
    #[error("invalid payload type {0:?}: it must be a plain file name")]
    InvalidPayloadType(String),
    /// No module is installed for the payload type.
    #[error("update module not found for payload type {payload_type} (looked in {dir})")]
    NotFound {
        /// The payload type.
        payload_type: String,
        /// The modules dir searched.
        dir: PathBuf,
    },
    /// A payload file name would escape `streams/` or `files/`.
    #[error("invalid payload file name {0:?}: it must be a plain file name")]
    InvalidFileName(String),
    /// The module could not be started.
    #[error("{state}: cannot run update module {module}: {source}")]
    Spawn {
        /// The module name (payload type).
        module: String,
        /// The state it was called for.
        state: String,
        /// Why.
        source: io::Error,
    },
    /// The module reported failure.
    #[error("{state}: update module {module} returned non-zero status {code}")]
    Status {
        /// The module name.
        module: String,
        /// The state.
        state: String,
        /// Its exit code.
        code: i32,
        /// What it wrote.
        output: Box<Captured>,
    },
    /// A signal we did not send ended the module.
    #[error("{state}: update module {module} was killed by signal {signal}")]
    Signaled {
        /// The module name.
        module: String,
        /// The state.
        state: String,
        /// The signal number.
        signal: i32,
        /// What it wrote.
        output: Box<Captured>,
    },
    /// `ModuleTimeoutSeconds` passed; the module's process group was terminated.
    #[error("{state}: update module {module} timed out after {seconds} s and was killed")]
    Timeout {
        /// The module name.
        module: String,
        /// The state.
        state: String,
        /// The timeout.
        seconds: f64,
        /// What it wrote.
        output: Box<Captured>,
    },
    /// A query answer had more than one non-empty line.
    #[error("{state}: too many lines when querying update module {module}")]
    TooManyLines {
        /// The module name.
        module: String,
        /// The query.
        state: String,
        /// What it wrote.
        output: Box<Captured>,
    },
    /// A query answer that the protocol does not define.
    #[error("{state}: update module {module} gave the unknown answer {answer:?}")]
    UnknownAnswer {
        /// The module name.
        module: String,
        /// The query.
        state: String,
        /// The first line of its output.
        answer: String,
        /// What it wrote.
        output: Box<Captured>,
    },
    /// The module opened the streams but stopped before the end marker: what it has is
    /// incomplete.
    #[error("{state}: update module {module} started downloading but did not finish")]
    Unfinished {
        /// The module name.
        module: String,
        /// `Download` or `DownloadWithFileSizes`.
        state: String,
        /// What it wrote.
        output: Box<Captured>,
    },
    /// The payload data could not be read (for instance a checksum mismatch); the module was
    /// killed before it could see the end of the stream.
    #[error("Download: reading payload file {file}: {source}")]
    Payload {
        /// The payload file name.
        file: String,
        /// The reader's error, kind preserved.
        source: io::Error,
    },
    /// A file-system operation of the client itself failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// Why it failed.
        source: io::Error,
    },
}

impl ModuleError {
    /// The module's output, when the error came from a module run, so the caller can log it.
    pub fn output(&self) -> Option<&Captured> {
        match self {
            ModuleError::Status { output, .. }
            | ModuleError::Signaled { output, .. }
            | ModuleError::Timeout { output, .. }
            | ModuleError::TooManyLines { output, .. }
            | ModuleError::UnknownAnswer { output, .. }
            | ModuleError::Unfinished { output, .. } => Some(output),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        ModuleError::Io {
            context: context.into(),
            source,
        }
    }
}
