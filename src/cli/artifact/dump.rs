//! `mender-artifact dump`: extracts every part of an artifact into folders, checking every
//! checksum as it streams, and prints the `write` command that rebuilds the artifact.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::super::exit::{CliError, CliResult, FAILED, INVALID, OPEN};
use super::super::progress;
use super::keys;
use crate::artifact::dump::cmdline::{shell_quote, write_args, Paths};
use crate::artifact::dump::{dump_artifact, Layout};
use crate::artifact::{ArtifactError, ArtifactInfo, ReadOptions, VerifyMode};

/// `dump` arguments.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The artifact
    pub artifact: PathBuf,
    #[command(flatten)]
    pub key: keys::VerifyKeyArgs,
    /// Folder for every part: files/, meta-data.json, scripts/, augment/files/,
    /// augment/meta-data.json and payloads/NNNN/ for payloads after the first
    #[arg(
        long = "output-dir",
        value_name = "DIR",
        conflicts_with_all = ["files", "meta_data", "scripts"]
    )]
    pub output_dir: Option<PathBuf>,
    /// Folder for the payload files, augment files included (upstream's layout)
    #[arg(long = "files", value_name = "DIR")]
    pub files: Option<PathBuf>,
    /// Folder for the meta-data: 0000.meta-data and 0000.meta-data-augment (upstream's
    /// layout)
    #[arg(long = "meta-data", value_name = "DIR")]
    pub meta_data: Option<PathBuf>,
    /// Folder for the state scripts (upstream's layout)
    #[arg(long = "scripts", value_name = "DIR")]
    pub scripts: Option<PathBuf>,
    /// Print the `mender-artifact write` command that rebuilds the artifact, shell-quoted
    #[arg(long = "print-cmdline", conflicts_with = "print0_cmdline")]
    pub print_cmdline: bool,
    /// Print the arguments of that command (from `write` on) each ended by a NUL, unquoted,
    /// for `xargs -0 mender-artifact`
    #[arg(long = "print0-cmdline")]
    pub print0_cmdline: bool,
    /// Output file named in the printed command
    #[arg(
        long = "output-name",
        value_name = "NAME",
        default_value = "rebuilt.mender"
    )]
    pub output_name: String,
    /// Dump into non-empty folders, replacing entries of the same names
    #[arg(long)]
    pub force: bool,
    /// Do not show a progress bar
    #[arg(long = "no-progress")]
    pub no_progress: bool,
}

/// Runs `dump`.
pub fn run(a: DumpArgs) -> CliResult {
    let layout =
        match &a.output_dir {
            Some(d) => Layout::in_folder(d),
            None if a.files.is_some() || a.meta_data.is_some() || a.scripts.is_some() => {
                Layout::upstream(
                    a.files.as_deref(),
                    a.meta_data.as_deref(),
                    a.scripts.as_deref(),
                )
            }
            None => return Err(CliError::usage(
                "nowhere to dump to: give --output-dir DIR (or --files, --meta-data, --scripts)",
            )),
        };
    let name = a.artifact.display().to_string();
    let vk = a.key.verifier()?;
    let file = File::open(&a.artifact)
        .map_err(|e| CliError::new(OPEN, format!("can not open artifact {name}: {e}")))?;
    let pb = progress::bar("Reading artifact", !a.no_progress);
    if let Ok(md) = file.metadata() {
        pb.set_length(md.len());
    }
    let opts = ReadOptions {
        verify: vk.as_deref().map_or(VerifyMode::None, VerifyMode::Require),
        progress: Some(pb.clone()),
    };
    let printing = a.print_cmdline || a.print0_cmdline;
    let paths = Paths::of(&layout, &a.output_name);
    let check = |info: &ArtifactInfo| match printing {
        true => write_args(info, &paths).map(|_| ()),
        false => Ok(()),
    };
    let r = dump_artifact(file, &opts, &layout, a.force, &check);
    pb.finish_and_clear();
    let dump = r.map_err(|e| match e {
        ArtifactError::Aborted(m) => CliError::new(FAILED, format!("{name}: {m}")),
        e => CliError::artifact(&name, e, if vk.is_some() { INVALID } else { FAILED }),
    })?;
    for w in &dump.warnings {
        eprintln!("warning: {w}");
    }
    if !printing {
        return Ok(());
    }
    let cmd = write_args(&dump.info, &paths).map_err(|e| CliError::new(FAILED, e))?;
    for n in &cmd.notes {
        eprintln!("# {n}");
    }
    let mut out = std::io::stdout().lock();
    let text = if a.print0_cmdline {
        cmd.args
            .iter()
            .map(|x| format!("{x}\0"))
            .collect::<String>()
    } else {
        let quoted: Vec<String> = cmd.args.iter().map(|x| shell_quote(x)).collect();
        format!("mender-artifact {}\n", quoted.join(" "))
    };
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| CliError::new(FAILED, format!("writing standard output: {e}")))
}
