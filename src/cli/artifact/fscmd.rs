//! `cat`, `cp`, `install` and `rm` on files inside the filesystem of a rootfs-image artifact,
//! a partitioned disk image or a bare ext4/vfat image (`FILE:/path`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;

use super::super::exit::{CliError, CliResult, FAILED};
use super::keys::KeyArgs;
use super::target::{edit, read_in, split_target, Container, EditOptions};
use crate::fsimage::EntryKind;

fn fs_err(e: crate::fsimage::FsError) -> CliError {
    CliError::new(FAILED, e.0)
}

fn target_arg(arg: &str) -> Result<(Container, String), CliError> {
    let (file, path) = split_target(arg).ok_or_else(|| {
        CliError::usage(format!(
            "{arg:?}: expected FILE:/path (an artifact or image, then a path in it)"
        ))
    })?;
    Ok((Container::open(&file)?, path))
}

/// `cat` arguments.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// ARTIFACT:/path or IMAGE:/path
    pub target: String,
    /// Directory for temporary files
    #[arg(long = "tmp")]
    pub tmp: Option<PathBuf>,
}

/// Runs `cat`: the file's content on stdout.
pub fn cat(a: CatArgs) -> CliResult {
    let (c, path) = target_arg(&a.target)?;
    read_in(&c, &path, a.tmp.as_deref(), |fs, inner| {
        let mut out = std::io::stdout().lock();
        fs.cat(inner, &mut out).map_err(fs_err)?;
        out.flush()
            .map_err(|e| CliError::new(FAILED, format!("stdout: {e}")))
    })
}

/// Options shared by the commands that change a file.
#[derive(Debug, Args)]
pub struct EditArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Compression of the rewritten artifact (default: as it was)
    #[arg(long)]
    pub compression: Option<String>,
    /// Directory for temporary files (default: beside the file)
    #[arg(long = "tmp")]
    pub tmp: Option<PathBuf>,
}

fn run_edit(
    c: &Container,
    e: &EditArgs,
    op: impl FnOnce(
        &dyn Fn(&str) -> Result<(crate::fsimage::Filesystem, String), CliError>,
    ) -> CliResult,
) -> CliResult {
    run_edit_with(c, e, Default::default(), op)
}

/// Runs an edit of `c` with the key, compression and temp folder of `e` and header `changes`.
pub fn run_edit_with(
    c: &Container,
    e: &EditArgs,
    changes: crate::artifact::repack::Changes,
    op: impl FnOnce(
        &dyn Fn(&str) -> Result<(crate::fsimage::Filesystem, String), CliError>,
    ) -> CliResult,
) -> CliResult {
    let signer = e.key.signer()?;
    let compression = e
        .compression
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(CliError::usage)?;
    let opts = EditOptions {
        tmp: e.tmp.as_deref(),
        signer: signer.as_deref(),
        compression,
        changes,
    };
    edit(c, &opts, op)
}

/// `cp` arguments.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Source: a host file, `-` for standard input, or FILE:/path
    pub src: String,
    /// Destination: FILE:/path, or a host file when the source is inside an image
    pub dst: String,
    #[command(flatten)]
    pub edit: EditArgs,
}

fn stdin_to_temp(dir: &Path) -> Result<tempfile::NamedTempFile, CliError> {
    let mut t = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| CliError::new(FAILED, format!("{}: {e}", dir.display())))?;
    let mut input = std::io::stdin().lock();
    std::io::copy(&mut input, t.as_file_mut())
        .map_err(|e| CliError::new(FAILED, format!("reading standard input: {e}")))?;
    Ok(t)
}

/// Runs `cp`.
pub fn cp(a: CpArgs) -> CliResult {
    if let Some((file, path)) = split_target(&a.src) {
        if split_target(&a.dst).is_some() {
            return Err(CliError::usage(
                "copying from one image into another is not supported; copy through a host file",
            ));
        }
        let c = Container::open(&file)?;
        let dst = PathBuf::from(&a.dst);
        let dir = dst
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| CliError::new(FAILED, format!("{}: {e}", dir.display())))?;
        read_in(&c, &path, a.edit.tmp.as_deref(), |fs, inner| {
            fs.cat(inner, tmp.as_file_mut()).map_err(fs_err)
        })?;
        tmp.persist(&dst)
            .map_err(|e| CliError::new(FAILED, format!("{}: {}", dst.display(), e.error)))?;
        return Ok(());
    }
    let (c, path) = target_arg(&a.dst)?;
    let held;
    let src: &Path = if a.src == "-" {
        held = stdin_to_temp(&std::env::temp_dir())?;
        held.path()
    } else {
        Path::new(&a.src)
    };
    if !src.is_file() {
        return Err(CliError::usage(format!("{}: no such file", src.display())));
    }
    run_edit(&c, &a.edit, |locate| {
        let (fs, inner) = locate(&path)?;
        fs.put(src, &inner, None).map_err(fs_err)
    })
}

/// `install` arguments.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Permission bits of the installed file, in octal (e.g. 0755)
    #[arg(short = 'm', long = "mode")]
    pub mode: Option<String>,
    /// Create a directory (FILE:/dir) instead of installing a file
    #[arg(short = 'd', long = "directory")]
    pub directory: bool,
    /// HOSTFILE FILE:/path, or with -d just FILE:/dir
    #[arg(required = true, num_args = 1..=2)]
    pub args: Vec<String>,
    #[command(flatten)]
    pub edit: EditArgs,
}

/// Parses a mode as upstream does: a leading 0 means octal, 0x hex, else decimal... except
/// that modes are always meant as octal, so plain digits are read as octal too.
fn parse_mode(m: &str) -> Result<u32, CliError> {
    let v = if let Some(h) = m.strip_prefix("0x") {
        u32::from_str_radix(h, 16)
    } else {
        u32::from_str_radix(m, 8)
    }
    .map_err(|_| {
        CliError::usage(format!(
            "invalid mode {m:?}; give octal permission bits such as 0755"
        ))
    })?;
    if v > 0o7777 {
        return Err(CliError::usage(format!(
            "invalid mode {m:?}: more than permission bits"
        )));
    }
    Ok(v)
}

/// Runs `install`.
pub fn install(a: InstallArgs) -> CliResult {
    if a.directory {
        let [t] = a.args.as_slice() else {
            return Err(CliError::usage("install -d takes one FILE:/dir"));
        };
        let (c, path) = target_arg(t)?;
        return run_edit(&c, &a.edit, |locate| {
            let (fs, inner) = locate(&path)?;
            fs.mkdir(&inner).map_err(fs_err)
        });
    }
    let [src, t] = a.args.as_slice() else {
        return Err(CliError::usage("install takes -m MODE HOSTFILE FILE:/path"));
    };
    let mode = parse_mode(
        a.mode
            .as_deref()
            .ok_or_else(|| CliError::usage("install needs -m MODE"))?,
    )?;
    let (c, path) = target_arg(t)?;
    let src = Path::new(src);
    if !src.is_file() {
        return Err(CliError::usage(format!("{}: no such file", src.display())));
    }
    run_edit(&c, &a.edit, |locate| {
        let (fs, inner) = locate(&path)?;
        fs.put(src, &inner, Some(mode)).map_err(fs_err)
    })
}

/// `rm` arguments.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// FILE:/path to remove
    pub target: String,
    /// Remove directories and their contents
    #[arg(short = 'r', long = "recursive")]
    pub recursive: bool,
    #[command(flatten)]
    pub edit: EditArgs,
}

/// Runs `rm`.
pub fn rm(a: RmArgs) -> CliResult {
    let (c, path) = target_arg(&a.target)?;
    run_edit(&c, &a.edit, |locate| {
        let (fs, inner) = locate(&path)?;
        if fs.stat(&inner).map_err(fs_err)? == Some(EntryKind::Dir) && !a.recursive {
            return Err(CliError::new(
                FAILED,
                format!("{path}: is a directory (use -r)"),
            ));
        }
        fs.remove(&inner, a.recursive).map_err(fs_err)
    })
}

/// Reads a whole host file given to a flag.
pub fn read_host_file(flag: &str, p: &Path) -> Result<Vec<u8>, CliError> {
    let mut v = Vec::new();
    std::fs::File::open(p)
        .and_then(|mut f| f.read_to_end(&mut v))
        .map_err(|e| CliError::usage(format!("{flag} {}: {e}", p.display())))?;
    Ok(v)
}
