//! Loading signing and verification keys named on the command line.

use std::path::Path;

use crate::crypto::{SigningKey, VerifyingKey};

use super::super::exit::CliError;

/// Loads the private key at `path`, decrypting it with the passphrase from
/// `passphrase_file` (first line) when given.
pub fn signing_key(path: &Path, passphrase_file: Option<&Path>) -> Result<SigningKey, CliError> {
    let pem =
        std::fs::read(path).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    let pass = match passphrase_file {
        Some(p) => {
            let text =
                std::fs::read(p).map_err(|e| CliError::usage(format!("{}: {e}", p.display())))?;
            let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
            Some(line.strip_suffix(b"\r").unwrap_or(line).to_vec())
        }
        None => std::env::var("MENDER_ARTIFACT_PASSPHRASE")
            .ok()
            .map(String::into_bytes),
    };
    SigningKey::from_pem(&pem, pass.as_deref())
        .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
}

/// Loads the public key at `path`.
pub fn verifying_key(path: &Path) -> Result<VerifyingKey, CliError> {
    let pem =
        std::fs::read(path).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    VerifyingKey::from_pem(&pem).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
}
