//! `mender-artifact delta`: makes a binary delta artifact from two full rootfs-image
//! artifacts; with `--raw` works on bare images and patches, and with `--apply` applies a
//! delta (artifact or bare patch) to a source image.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::super::exit::{CliError, CliResult, FAILED, OPEN};
use super::keys;
use crate::artifact::info::PayloadFile;
use crate::artifact::{
    read_artifact, write_artifact, ArtifactError, ArtifactInfo, ArtifactSpec, Compression,
    HeaderInfo, Output, PayloadSpec, ReadOptions, TypeInfo, Visitor, WriteOptions,
};
use crate::delta::{self, CodecChoice, DeltaError, DiffOptions, Stats, PAYLOAD_TYPE};

/// The checksum provide of rootfs images.
const CHECKSUM_KEY: &str = "rootfs-image.checksum";
/// The version provide of rootfs images.
const VERSION_KEY: &str = "rootfs-image.version";

/// Codec of the patch's op stream.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum CodecArg {
    /// xz with the branch filter for the image's executables
    #[default]
    Auto,
    /// Zstandard
    Zstd,
    /// xz
    Xz,
}

/// `delta` arguments.
#[derive(Debug, Args)]
pub struct DeltaArgs {
    /// The full rootfs-image artifact the devices run (with --raw or --apply: its image)
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The new full rootfs-image artifact (with --raw: its image; with --apply: the delta
    /// artifact or bare patch)
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Output file: the delta artifact (with --raw: the bare patch; with --apply: the image)
    #[arg(short = 'o', long = "output-path", required = true)]
    pub output: PathBuf,
    /// Name of the delta artifact (default: the new artifact's name)
    #[arg(short = 'n', long = "artifact-name")]
    pub artifact_name: Option<String>,
    /// Compatible device type, repeatable (default: the new artifact's)
    #[arg(short = 't', long = "device-type")]
    pub device_type: Vec<String>,
    #[command(flatten)]
    pub key: keys::KeyArgs,
    /// Compression of the patch
    #[arg(long, value_enum, default_value_t = CodecArg::Auto)]
    pub codec: CodecArg,
    /// OLD and NEW are images; write a bare patch
    #[arg(long, conflicts_with = "apply")]
    pub raw: bool,
    /// Apply NEW (delta artifact or bare patch) to the image OLD, writing the new image
    #[arg(long)]
    pub apply: bool,
}

fn fail(e: impl std::fmt::Display) -> CliError {
    CliError::new(FAILED, e.to_string())
}

fn out_dir(output: &Path) -> PathBuf {
    match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn temp_beside(output: &Path) -> Result<tempfile::NamedTempFile, CliError> {
    tempfile::Builder::new()
        .prefix(".delta-")
        .suffix(".tmp")
        .tempfile_in(out_dir(output))
        .map_err(|e| fail(format!("{}: {e}", output.display())))
}

fn persist(tmp: tempfile::NamedTempFile, output: &Path) -> CliResult {
    tmp.persist(output)
        .map(|_| ())
        .map_err(|e| fail(format!("{}: {}", output.display(), e.error)))
}

fn summary(s: &Stats) {
    println!(
        "delta: {} -> {} bytes, patch {} bytes ({:.2} % of the target, {}); copied {}, \
         diffed {}, literal {}, zero {}",
        s.source_size,
        s.target_size,
        s.patch_size,
        100.0 * s.patch_size as f64 / s.target_size.max(1) as f64,
        s.codec.map_or("-", |c| c.name()),
        s.copied,
        s.added,
        s.literal,
        s.zero
    );
}

/// Runs `delta`.
pub fn run(a: DeltaArgs) -> CliResult {
    let opts = DiffOptions {
        codec: match a.codec {
            CodecArg::Auto => CodecChoice::Auto,
            CodecArg::Zstd => CodecChoice::Zstd,
            CodecArg::Xz => CodecChoice::Xz,
        },
    };
    if a.apply {
        return apply(&a);
    }
    if a.raw {
        let tmp = temp_beside(&a.output)?;
        let stats =
            delta::diff(&a.old, &a.new, BufWriter::new(tmp.as_file()), &opts).map_err(fail)?;
        persist(tmp, &a.output)?;
        summary(&stats);
        return Ok(());
    }
    make_artifact(&a, &opts)
}

/// The one rootfs-image payload of a full artifact, streamed to a file.
struct Extract<'a> {
    dest: &'a Path,
    file: Option<PayloadFile>,
}

impl Visitor for Extract<'_> {
    fn header(&mut self, info: &ArtifactInfo) -> crate::artifact::Result<()> {
        if info.payloads.len() != 1 || info.payload_type(0) != Some("rootfs-image") {
            return Err(ArtifactError::Invalid(
                "not a full rootfs-image artifact (one rootfs-image payload)".into(),
            ));
        }
        Ok(())
    }

    fn file(
        &mut self,
        _info: &ArtifactInfo,
        _payload: usize,
        file: &PayloadFile,
        data: &mut dyn Read,
    ) -> crate::artifact::Result<()> {
        if self.file.is_some() {
            return Err(ArtifactError::Invalid(
                "the rootfs-image payload has more than one file".into(),
            ));
        }
        let ctx = || self.dest.display().to_string();
        let mut out = BufWriter::with_capacity(
            1 << 20,
            File::create(self.dest).map_err(|e| ArtifactError::io(ctx(), e))?,
        );
        io::copy(data, &mut out)
            .and_then(|_| out.flush())
            .map_err(|e| ArtifactError::io(ctx(), e))?;
        self.file = Some(file.clone());
        Ok(())
    }
}

/// Reads the full artifact at `path`, writing its image to `dest`.
fn extract(path: &Path, dest: &Path) -> Result<(ArtifactInfo, PayloadFile), CliError> {
    let f = File::open(path).map_err(|e| {
        CliError::new(
            OPEN,
            format!("can not open artifact {}: {e}", path.display()),
        )
    })?;
    let mut v = Extract { dest, file: None };
    let info = read_artifact(
        BufReader::with_capacity(1 << 20, f),
        &ReadOptions::default(),
        &mut v,
    )
    .map_err(|e| CliError::artifact(&path.display().to_string(), e, FAILED))?;
    let file = v.file.ok_or_else(|| {
        fail(format!(
            "{}: the rootfs-image payload has no file",
            path.display()
        ))
    })?;
    Ok((info, file))
}

fn make_artifact(a: &DeltaArgs, opts: &DiffOptions) -> CliResult {
    let work = tempfile::Builder::new()
        .prefix(".delta-")
        .tempdir_in(out_dir(&a.output))
        .map_err(|e| fail(format!("{}: {e}", a.output.display())))?;
    let (old_img, new_img) = (
        work.path().join("source.tmp"),
        work.path().join("target.tmp"),
    );
    let (old_info, old_file) = extract(&a.old, &old_img)?;
    let (new_info, new_file) = extract(&a.new, &new_img)?;
    if old_file.checksum == new_file.checksum {
        return Err(fail(format!(
            "{} and {} hold the same image",
            a.old.display(),
            a.new.display()
        )));
    }
    let patch = work.path().join(format!("{}.delta", new_file.name));
    let stats = {
        let f = File::create(&patch).map_err(|e| fail(format!("{}: {e}", patch.display())))?;
        delta::diff(&old_img, &new_img, BufWriter::new(f), opts).map_err(fail)?
    };
    if stats.target_sha256 != new_file.checksum {
        return Err(fail("the new image changed while it was read"));
    }
    let _ = fs::remove_file(&old_img);
    let _ = fs::remove_file(&new_img);

    let name = a
        .artifact_name
        .clone()
        .unwrap_or_else(|| new_info.name().to_string());
    let device_types = if a.device_type.is_empty() {
        new_info.header_info.depends_device_type.clone()
    } else {
        a.device_type.clone()
    };
    let mut provides = new_info.merged_provides(0);
    provides.remove("rootfs_image_checksum");
    provides.insert(CHECKSUM_KEY.into(), hex::encode(new_file.checksum));
    provides
        .entry(VERSION_KEY.into())
        .or_insert_with(|| new_info.name().to_string());
    let mut depends = BTreeMap::new();
    depends.insert(
        CHECKSUM_KEY.to_string(),
        Value::String(hex::encode(old_file.checksum)),
    );
    let clears = new_info.payloads[0]
        .type_info
        .clears_provides
        .clone()
        .unwrap_or_else(|| {
            ["artifact_group", "rootfs_image_checksum", "rootfs-image.*"]
                .map(String::from)
                .to_vec()
        });
    let scripts = write_scripts(&new_info, work.path())?;
    let spec = ArtifactSpec {
        version: 3,
        header_info: HeaderInfo {
            payload_types: vec![Some(PAYLOAD_TYPE.into())],
            artifact_name: name,
            artifact_group: new_info.header_info.artifact_group.clone(),
            depends_artifact_name: Vec::new(),
            depends_device_type: device_types,
            depends_artifact_group: Vec::new(),
        },
        payloads: vec![PayloadSpec {
            type_info: TypeInfo {
                kind: Some(PAYLOAD_TYPE.into()),
                depends,
                provides,
                clears_provides: Some(clears),
            },
            meta_data: None,
            empty_meta_data: false,
            files: vec![patch],
            checksum_provide: None,
        }],
        scripts,
        augment: None,
        // The patch is compressed already.
        compression: Compression::None,
    };
    let signer = a.key.signer()?;
    let wopts = WriteOptions {
        signer: signer.as_deref(),
        ..Default::default()
    };
    write_artifact(&spec, &Output::File(a.output.clone()), &wopts)
        .map_err(|e| CliError::artifact(&a.output.display().to_string(), e, FAILED))?;
    let _ = old_info;
    summary(&stats);
    Ok(())
}

/// Writes the new artifact's state scripts into `dir` so the delta artifact carries them.
fn write_scripts(info: &ArtifactInfo, dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    if info.scripts.is_empty() {
        return Ok(Vec::new());
    }
    let sdir = dir.join("scripts");
    fs::create_dir(&sdir).map_err(|e| fail(format!("{}: {e}", sdir.display())))?;
    let mut out = Vec::new();
    for s in &info.scripts {
        let p = sdir.join(&s.name);
        fs::write(&p, &s.data)
            .and_then(|_| fs::set_permissions(&p, fs::Permissions::from_mode(s.mode & 0o7777)))
            .map_err(|e| fail(format!("{}: {e}", p.display())))?;
        out.push(p);
    }
    Ok(out)
}

/// Applies the delta payload of an artifact as it streams past.
struct ApplyVisitor<'a> {
    source: &'a Path,
    target: &'a File,
    result: Option<Result<delta::Applied, DeltaError>>,
    expected: Option<String>,
}

impl Visitor for ApplyVisitor<'_> {
    fn header(&mut self, info: &ArtifactInfo) -> crate::artifact::Result<()> {
        if info.payloads.len() != 1 || info.payload_type(0) != Some(PAYLOAD_TYPE) {
            return Err(ArtifactError::Invalid(format!(
                "not a delta artifact (one {PAYLOAD_TYPE} payload)"
            )));
        }
        self.expected = info.merged_provides(0).get(CHECKSUM_KEY).cloned();
        Ok(())
    }

    fn file(
        &mut self,
        _info: &ArtifactInfo,
        _payload: usize,
        _file: &PayloadFile,
        data: &mut dyn Read,
    ) -> crate::artifact::Result<()> {
        if self.result.is_some() {
            return Err(ArtifactError::Invalid(
                "the delta payload has more than one file".into(),
            ));
        }
        let source = File::open(self.source)
            .map_err(|e| ArtifactError::io(self.source.display().to_string(), e))?;
        // Not buffered: the applier reads whole ranges, and a buffer is dropped at each seek.
        let r = delta::apply(
            source,
            BufReader::with_capacity(256 << 10, data),
            BufWriter::with_capacity(1 << 20, self.target),
        );
        let failed = r.as_ref().err().map(|e| e.to_string());
        self.result = Some(r);
        match failed {
            Some(msg) => Err(ArtifactError::Aborted(msg)),
            None => Ok(()),
        }
    }
}

fn apply(a: &DeltaArgs) -> CliResult {
    let mut patch = File::open(&a.new)
        .map_err(|e| CliError::new(OPEN, format!("can not open {}: {e}", a.new.display())))?;
    let mut magic = [0u8; 8];
    let is_raw = patch.read_exact(&mut magic).is_ok() && magic == delta::MAGIC;
    drop(patch);
    let tmp = temp_beside(&a.output)?;
    let applied = if is_raw {
        let source = File::open(&a.old)
            .map_err(|e| CliError::new(OPEN, format!("can not open {}: {e}", a.old.display())))?;
        let patch = File::open(&a.new).map_err(|e| fail(format!("{}: {e}", a.new.display())))?;
        delta::apply(
            source,
            BufReader::with_capacity(256 << 10, patch),
            BufWriter::with_capacity(1 << 20, tmp.as_file()),
        )
        .map_err(fail)?
    } else {
        let mut v = ApplyVisitor {
            source: &a.old,
            target: tmp.as_file(),
            result: None,
            expected: None,
        };
        let f = File::open(&a.new).map_err(|e| fail(format!("{}: {e}", a.new.display())))?;
        let r = read_artifact(BufReader::new(f), &ReadOptions::default(), &mut v);
        if let Some(Err(e)) = v.result {
            return Err(fail(format!("{}: {e}", a.new.display())));
        }
        r.map_err(|e| CliError::artifact(&a.new.display().to_string(), e, FAILED))?;
        let applied = match v.result {
            Some(Ok(x)) => x,
            _ => {
                return Err(fail(format!(
                    "{}: the delta payload has no file",
                    a.new.display()
                )))
            }
        };
        if let Some(exp) = v.expected {
            if exp != hex::encode(applied.target_sha256) {
                return Err(fail(format!(
                    "{}: target checksum {} differs from the artifact's {CHECKSUM_KEY} {exp}",
                    a.new.display(),
                    hex::encode(applied.target_sha256)
                )));
            }
        }
        applied
    };
    tmp.as_file()
        .sync_all()
        .map_err(|e| fail(format!("{}: {e}", a.output.display())))?;
    persist(tmp, &a.output)?;
    println!(
        "applied: {} bytes, sha256 {}",
        applied.target_size,
        hex::encode(applied.target_sha256)
    );
    Ok(())
}
