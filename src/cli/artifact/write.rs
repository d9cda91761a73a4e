//! `mender-artifact write rootfs-image | module-image | bootstrap-artifact`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::super::exit::{CliError, CliResult, FAILED};
use super::super::progress;
use super::keys;
use super::write_defaults::{build_spec, Kind};
use crate::artifact::{write_artifact, Compression, Output, WriteOptions};

/// The kinds of artifact `write` makes.
#[derive(Debug, Subcommand)]
pub enum WriteCommand {
    /// Write an artifact whose payload is a root filesystem image
    RootfsImage(RootfsArgs),
    /// Write an artifact for an update module
    ModuleImage(ModuleArgs),
    /// Write an artifact with an empty payload, to set provides on a device
    BootstrapArtifact(BootstrapArgs),
}

/// Flags every kind of artifact takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Name of the artifact
    #[arg(short = 'n', long = "artifact-name", alias = "name", required = true)]
    pub artifact_name: String,
    /// Compatible device type (repeat for several)
    #[arg(
        short = 't',
        long = "device-type",
        alias = "compatible-types",
        required = true
    )]
    pub device_type: Vec<String>,
    /// Output file, `-` for standard output
    #[arg(short = 'o', long = "output-path", default_value = "artifact.mender")]
    pub output_path: String,
    /// Artifact format version
    #[arg(short = 'v', long = "version", default_value_t = 3)]
    pub format_version: u32,
    /// Compression: none, gzip, lzma, zstd_fastest, zstd_fast, zstd_better, zstd_best
    #[arg(long)]
    pub compression: Option<String>,
    #[command(flatten)]
    pub key: keys::KeyArgs,
    /// Name of an artifact this one may be installed over (repeatable)
    #[arg(short = 'N', long = "artifact-name-depends")]
    pub artifact_name_depends: Vec<String>,
    /// Group the artifact provides
    #[arg(short = 'g', long = "provides-group")]
    pub provides_group: Option<String>,
    /// Group the artifact depends on (repeatable)
    #[arg(short = 'G', long = "depends-groups")]
    pub depends_groups: Vec<String>,
    /// KEY:VALUE added to the payload's artifact_depends (repeatable)
    #[arg(short = 'd', long = "depends", value_name = "KEY:VALUE")]
    pub depends: Vec<String>,
    /// KEY:VALUE added to the payload's artifact_provides (repeatable)
    #[arg(short = 'p', long = "provides", value_name = "KEY:VALUE")]
    pub provides: Vec<String>,
    /// Pattern added to the payload's clears_artifact_provides (repeatable)
    #[arg(long = "clears-provides")]
    pub clears_provides: Vec<String>,
    /// Do not show a progress bar
    #[arg(long = "no-progress")]
    pub no_progress: bool,
    /// Directory for temporary files (default: beside the output)
    #[arg(long = "tmp")]
    pub tmp: Option<PathBuf>,
}

/// Software-version flags of rootfs and module images.
#[derive(Debug, Args)]
pub struct SoftwareArgs {
    /// Do not add any default clears_artifact_provides
    #[arg(long = "no-default-clears-provides")]
    pub no_default_clears_provides: bool,
    /// Do not add the default software version provide (nor default clears)
    #[arg(long = "no-default-software-version")]
    pub no_default_software_version: bool,
    /// Name in the version provide: <filesystem>.<NAME>.version
    #[arg(long = "software-name")]
    pub software_name: Option<String>,
    /// Value of the version provide (default: the artifact name)
    #[arg(long = "software-version")]
    pub software_version: Option<String>,
    /// Filesystem in the version provide, instead of rootfs-image
    #[arg(long = "software-filesystem")]
    pub software_filesystem: Option<String>,
    /// State script file or directory of scripts (repeatable)
    #[arg(short = 's', long = "script")]
    pub script: Vec<PathBuf>,
}

/// `write rootfs-image`.
#[derive(Debug, Args)]
pub struct RootfsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub software: SoftwareArgs,
    /// The root filesystem image
    #[arg(short = 'f', long = "file", required = true)]
    pub file: PathBuf,
    /// Store the checksum provide under the legacy name rootfs_image_checksum
    #[arg(long = "legacy-rootfs-image-checksum")]
    pub legacy_rootfs_image_checksum: bool,
    /// Do not add the rootfs-image.checksum provide
    #[arg(long = "no-checksum-provide")]
    pub no_checksum_provide: bool,
}

/// `write module-image`.
#[derive(Debug, Args)]
pub struct ModuleArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub software: SoftwareArgs,
    /// Payload type: the name of the update module
    #[arg(short = 'T', long = "type", required = true)]
    pub payload_type: String,
    /// Payload file (repeatable)
    #[arg(short = 'f', long = "file")]
    pub file: Vec<PathBuf>,
    /// JSON object file stored as the payload's meta-data
    #[arg(short = 'm', long = "meta-data")]
    pub meta_data: Option<PathBuf>,
    /// Payload type of the augment section
    #[arg(long = "augment-type")]
    pub augment_type: Option<String>,
    /// File of the augment section (repeatable)
    #[arg(long = "augment-file")]
    pub augment_file: Vec<PathBuf>,
    /// KEY:VALUE for the augment type-info's artifact_provides (repeatable)
    #[arg(long = "augment-provides", value_name = "KEY:VALUE")]
    pub augment_provides: Vec<String>,
    /// KEY:VALUE for the augment type-info's artifact_depends (repeatable)
    #[arg(long = "augment-depends", value_name = "KEY:VALUE")]
    pub augment_depends: Vec<String>,
    /// JSON object file for the augment section's meta-data
    #[arg(long = "augment-meta-data")]
    pub augment_meta_data: Option<PathBuf>,
}

/// `write bootstrap-artifact`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs `write`; `global_compression` is the `--compression` given before the subcommand
/// and `argv` the raw arguments (upstream's precedence rules look at their order).
pub fn run(cmd: WriteCommand, global_compression: Option<&str>, argv: &[String]) -> CliResult {
    let (common, kind) = match &cmd {
        WriteCommand::RootfsImage(a) => (&a.common, Kind::Rootfs(a)),
        WriteCommand::ModuleImage(a) => (&a.common, Kind::Module(a)),
        WriteCommand::BootstrapArtifact(a) => (&a.common, Kind::Bootstrap),
    };
    let compression: Compression = common
        .compression
        .as_deref()
        .or(global_compression)
        .unwrap_or("gzip")
        .parse()
        .map_err(CliError::usage)?;
    let spec = build_spec(common, &kind, compression, argv)?;
    let signer = common.key.signer()?;
    let output = if common.output_path == "-" {
        Output::Stdout
    } else {
        Output::File(PathBuf::from(&common.output_path))
    };
    let opts = WriteOptions {
        signer: signer.as_deref(),
        progress: progress::bar("Writing artifact", !common.no_progress),
        tmp_dir: common.tmp.clone(),
    };
    write_artifact(&spec, &output, &opts)
        .map_err(|e| CliError::artifact(&common.output_path, e, FAILED))
}
