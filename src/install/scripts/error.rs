//! What can go wrong with state scripts, as one line naming the script; the script's output
//! rides along for the log.

use std::io;
use std::path::PathBuf;

use crate::install::process::Captured;

/// A state-script failure, as one line; script output is kept for the log.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The caller named a state that has no scripts.
    #[error("unknown state {0:?} for state scripts")]
    UnknownState(String),
    /// An artifact script name that would escape the scripts dir.
    #[error("invalid state script name {0:?}: it must be a plain file name")]
    InvalidName(String),
    /// The dir's `version` file is neither 2 nor 3.
    #[error("unexpected script version {found:?} in {}", dir.display())]
    Version {
        /// The scripts dir.
        dir: PathBuf,
        /// What the file said.
        found: String,
    },
    /// The script could not be started.
    #[error("cannot run state script {script}: {source}")]
    Spawn {
        /// The script name.
        script: String,
        /// Why.
        source: io::Error,
    },
    /// The script failed.
    #[error("state script {script} returned exit code {code}")]
    Status {
        /// The script name.
        script: String,
        /// Its exit code.
        code: i32,
        /// What it wrote.
        output: Box<Captured>,
    },
    /// A signal we did not send ended it.
    #[error("state script {script} was killed by signal {signal}")]
    Signaled {
        /// The script name.
        script: String,
        /// The signal number.
        signal: i32,
        /// What it wrote.
        output: Box<Captured>,
    },
    /// `StateScriptTimeoutSeconds` passed; its process group was terminated.
    #[error("state script {script} timed out after {seconds} s and was killed")]
    Timeout {
        /// The script name.
        script: String,
        /// The timeout.
        seconds: f64,
        /// What it wrote.
        output: Box<Captured>,
    },
    /// It kept returning 21 until `StateScriptRetryTimeoutSeconds` ran out.
    #[error("state script {script} still asked to be retried (exit code 21) after {seconds} s: operation canceled")]
    RetryTimeout {
        /// The script name.
        script: String,
        /// The retry budget.
        seconds: f64,
        /// What its last run wrote.
        output: Box<Captured>,
    },
    /// Several scripts failed under [`RunAllCollectErrors`](super::Policy::RunAllCollectErrors).
    #[error("{} state scripts failed, the first: {}", .0.len(), .0[0])]
    Several(Vec<ScriptError>),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// Why.
        source: io::Error,
    },
}

pub(super) fn io_err(context: impl Into<String>, source: io::Error) -> ScriptError {
    ScriptError::Io {
        context: context.into(),
        source,
    }
}

impl ScriptError {
    /// The script's output, when the error came from running one, so the caller can log it.
    pub fn output(&self) -> Option<&Captured> {
        match self {
            ScriptError::Status { output, .. }
            | ScriptError::Signaled { output, .. }
            | ScriptError::Timeout { output, .. }
            | ScriptError::RetryTimeout { output, .. } => Some(output),
            _ => None,
        }
    }
}
