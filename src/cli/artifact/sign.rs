//! `mender-artifact sign`: adds (or with `-f` replaces) the manifest signature.

use std::path::PathBuf;

use clap::Args;

use super::super::exit::{CliError, CliResult, FAILED};
use super::keys::KeyArgs;
use crate::artifact::resign::sign_artifact;

/// `sign` arguments.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The artifact
    pub artifact: PathBuf,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Output file (default: sign in place)
    #[arg(short = 'o', long = "output-path")]
    pub output_path: Option<PathBuf>,
    /// Replace an existing signature
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

/// Runs `sign`.
pub fn run(a: SignArgs) -> CliResult {
    let signer = a
        .key
        .signer()?
        .ok_or_else(|| CliError::usage("missing signing key; give -k KEY or --key-pkcs11 URI"))?;
    let out = a.output_path.clone().unwrap_or_else(|| a.artifact.clone());
    sign_artifact(&a.artifact, &out, signer.as_ref(), a.force)
        .map_err(|e| CliError::artifact(&a.artifact.display().to_string(), e, FAILED))
}
