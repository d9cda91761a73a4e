//! `mender-artifact`: write, read, validate and sign Mender Artifacts, with upstream's
//! command names, flags and short forms.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use super::exit::{CliError, CliResult};

pub mod delta;
pub mod disk_image;
pub mod dump;
pub mod fscmd;
pub mod keys;
pub mod modify;
pub mod read;
pub mod sign;
mod target;
pub mod validate;
pub mod write;
mod write_defaults;

/// Command-line definition of `mender-artifact`.
#[derive(Debug, Parser)]
#[command(
    name = "mender-artifact",
    about = "Writes, reads, validates and signs Mender Artifacts (format v3)",
    disable_version_flag = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Print the version and exit
    #[arg(short = 'v', long = "version", global = false)]
    pub version: bool,
    /// Compression for artifacts written (also accepted after the subcommand)
    #[arg(long, hide = true, global = false)]
    pub compression: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write an artifact
    #[command(subcommand)]
    Write(Box<write::WriteCommand>),
    /// Print what an artifact holds, checking every checksum
    Read(read::ReadArgs),
    /// Check an artifact's structure, checksums and (with -k) signature
    Validate(validate::ValidateArgs),
    /// Sign an artifact, or with -f replace its signature
    Sign(sign::SignArgs),
    /// Change an artifact's headers, or files in its root filesystem or in a disk image
    Modify(Box<modify::ModifyArgs>),
    /// Print a file from inside an artifact or image (FILE:/path)
    Cat(fscmd::CatArgs),
    /// Copy a file into or out of an artifact or image
    Cp(fscmd::CpArgs),
    /// Install a file with given permissions, or a directory, into an artifact or image
    Install(fscmd::InstallArgs),
    /// Remove a file or directory from an artifact or image
    Rm(fscmd::RmArgs),
    /// Extract every part of an artifact into a folder and print the write command that rebuilds it
    Dump(dump::DumpArgs),
    /// Make a binary delta artifact from two full rootfs-image artifacts (or apply one)
    Delta(delta::DeltaArgs),
    /// Make the first flashable disk image (.sdimg, .uefiimg) from a root filesystem image,
    /// in Mender's partition layout
    DiskImage(disk_image::DiskImageArgs),
}

/// Parses `args` (including the program name) and runs the command.
pub fn run<I, T>(args: I) -> CliResult
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // clap's usage errors exit 2, as they always have here.
    let Some(cli) = super::exit::parse_or_print::<Cli, _, _>(&argv, 2)? else {
        return Ok(());
    };
    if cli.version {
        println!("mender-artifact version {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let raw: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match cli.command {
        Some(Command::Write(w)) => write::run(*w, cli.compression.as_deref(), &raw),
        Some(Command::Read(a)) => read::run(a),
        Some(Command::Validate(a)) => validate::run(a),
        Some(Command::Sign(a)) => sign::run(a),
        Some(Command::Modify(a)) => modify::run(*a),
        Some(Command::Cat(a)) => fscmd::cat(a),
        Some(Command::Cp(a)) => fscmd::cp(a),
        Some(Command::Install(a)) => fscmd::install(a),
        Some(Command::Rm(a)) => fscmd::rm(a),
        Some(Command::Dump(a)) => dump::run(a),
        Some(Command::Delta(a)) => delta::run(a),
        Some(Command::DiskImage(a)) => disk_image::run(a),
        None => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            Err(CliError::usage("no command given"))
        }
    }
}
