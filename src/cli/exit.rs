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

/// Parses a command line with clap: `Ok(Some(cli))` to run, `Ok(None)` when clap printed help
/// or a version (exit 0), or an error with `usage_code` after clap printed why.
pub fn parse_or_print<C: clap::Parser, I, T>(
    args: I,
    usage_code: i32,
) -> Result<Option<C>, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match C::try_parse_from(args) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            if code == 0 {
                Ok(None)
            } else {
                Err(CliError::new(usage_code, String::new()))
            }
        }
    }
}
