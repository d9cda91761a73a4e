//! Exit statuses and the one-line error a command ends with.

use crate::artifact::ArtifactError;

/// Success.
pub const OK: i32 = 0;
/// A command failed.
pub const FAILED: i32 = 1;
/// Invalid parameters (usage), or the output could not be created.
pub const USAGE: i32 = 2;
/// The artifact could not be opened.
pub const OPEN: i32 = 3;
/// The artifact is invalid (validation failed).
pub const INVALID: i32 = 4;

/// A failed command: the message for stderr and the exit status.
#[derive(Debug)]
pub struct CliError {
    /// Exit status.
    pub code: i32,
    /// One-line message.
    pub message: String,
}

impl CliError {
    /// A failure with status `code`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }

    /// Invalid parameters.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(USAGE, message)
    }

    /// An artifact error while working on `file`: invalid parameters map to the usage
    /// status, everything else to `code`.
    pub fn artifact(file: &str, e: ArtifactError, code: i32) -> Self {
        let code = match e {
            ArtifactError::Invalid(_) => USAGE,
            _ => code,
        };
        CliError::new(code, format!("{file}: {e}"))
    }
}

/// Result of a command.
pub type CliResult = Result<(), CliError>;
