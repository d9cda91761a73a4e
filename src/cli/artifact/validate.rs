//! `mender-artifact validate`: reads the whole artifact, checking structure, every checksum
//! and, with `-k`, the signature.

use std::path::PathBuf;

use clap::Args;

use super::super::exit::CliResult;
use super::read::load;

/// `validate` arguments.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The artifact
    pub artifact: PathBuf,
    #[command(flatten)]
    pub key: super::keys::VerifyKeyArgs,
    /// Do not show a progress bar
    #[arg(long = "no-progress")]
    pub no_progress: bool,
}

/// Runs `validate`.
pub fn run(a: ValidateArgs) -> CliResult {
    load(&a.artifact, &a.key, true, !a.no_progress)?;
    println!(
        "Artifact file '{}' validated successfully",
        a.artifact.display()
    );
    Ok(())
}
