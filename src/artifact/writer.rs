//! Writes an artifact in two streaming passes over the inputs: one to hash the payload files
//! (the manifest comes first), one to compress them straight into the output. With a file as
//! output the data member is written in place and its tar size patched afterwards, so no temp
//! copy of the payload is made; stdout gets a temp file only for the data members.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::ProgressBar;

use super::error::{ArtifactError, Result};
use super::header::TypeInfo;
use super::names::{check_payload_file_name, parse_script_name};
use super::owner::{group_name, user_name};
use super::spec::{ArtifactSpec, PayloadSpec};
use super::tarw::{self, EntryMeta};

/// Signs manifest bytes; implemented by the key types in `crypto`.
pub trait ManifestSigner {
    /// The raw signature over `manifest` (base64 encoding is done by the writer).
    fn sign_manifest(&self, manifest: &[u8]) -> std::result::Result<Vec<u8>, String>;
}

/// Where the artifact goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// A file, written through a temp file beside it and renamed when complete.
    File(PathBuf),
    /// Standard output.
    Stdout,
}

/// How to write.
pub struct WriteOptions<'a> {
    /// Signs the manifest when set.
    pub signer: Option<&'a dyn ManifestSigner>,
    /// Progress over the bytes of both passes.
    pub progress: ProgressBar,
    /// Directory for temp files when writing to stdout (default: the system temp dir).
    pub tmp_dir: Option<PathBuf>,
}

impl Default for WriteOptions<'_> {
    fn default() -> Self {
        WriteOptions {
            signer: None,
            progress: ProgressBar::hidden(),
            tmp_dir: None,
        }
    }
}

/// A payload file, checked and stat'ed before any data is written.
struct Input {
    path: PathBuf,
    meta: EntryMeta,
}

fn io_err(path: &Path, e: io::Error) -> ArtifactError {
    ArtifactError::io(path.display().to_string(), e)
}

fn file_entry(path: &Path, name: String) -> Result<EntryMeta> {
    let md = fs::metadata(path).map_err(|e| io_err(path, e))?;
    if !md.is_file() {
        return Err(ArtifactError::Invalid(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    let mtime = md.mtime() + i64::from(md.mtime_nsec() >= 500_000_000);
    Ok(EntryMeta {
        name,
        mode: md.mode() & 0o7777,
        uid: u64::from(md.uid()),
        gid: u64::from(md.gid()),
        uname: user_name(u64::from(md.uid())),
        gname: group_name(u64::from(md.gid())),
        mtime,
        size: md.len(),
    })
}

fn base_name(path: &Path) -> Result<String> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        ArtifactError::Invalid(format!("{}: no usable file name", path.display()))
    })?;
    Ok(name.to_string())
}

/// Checks names (allowed characters, unique within the payload) and stats each file.
fn collect_inputs(files: &[PathBuf], taken: &mut Vec<String>) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for path in files {
        let name = base_name(path)?;
        check_payload_file_name(&name)
            .map_err(|e| ArtifactError::Invalid(format!("{}: {e}", path.display())))?;
        if taken.contains(&name) {
            return Err(ArtifactError::Invalid(format!(
                "{}: duplicate file name {name} in one payload",
                path.display()
            )));
        }
        taken.push(name.clone());
        let meta = file_entry(path, name)?;
        out.push(Input {
            path: path.clone(),
            meta,
        });
    }
    Ok(out)
}

/// Expands `-s` arguments (files, or directories whose entries are all scripts) into a
/// sorted list, checking names and duplicates.
pub fn expand_scripts(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for arg in args {
        let md = fs::metadata(arg).map_err(|e| io_err(arg, e))?;
        if md.is_dir() {
            let mut entries: Vec<PathBuf> = fs::read_dir(arg)
                .map_err(|e| io_err(arg, e))?
                .map(|e| e.map(|e| e.path()))
                .collect::<io::Result<_>>()
                .map_err(|e| io_err(arg, e))?;
            entries.sort();
            out.extend(entries);
        } else {
            out.push(arg.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    for p in &out {
        let name = base_name(p)?;
        parse_script_name(&name)
            .map_err(|e| ArtifactError::Invalid(format!("{}: {e}", p.display())))?;
        if !seen.insert(name.clone()) {
            return Err(ArtifactError::Invalid(format!(
                "script already exists: {name}"
            )));
        }
    }
    out.sort_by_key(|p| p.file_name().map(|n| n.to_os_string()));
    Ok(out)
}

fn push_doc(tar: &mut Vec<u8>, name: &str, doc: &[u8]) {
    tarw::write_entry(tar, &EntryMeta::stream(name, doc.len() as u64), doc)
        .expect("writing to memory");
}

/// Longest state script stored in a header.
const MAX_SCRIPT_SIZE: u64 = 16 << 20;

fn header_tar(
    spec: &ArtifactSpec,
    scripts: &[PathBuf],
    type_infos: &[TypeInfo],
) -> Result<Vec<u8>> {
    let mut tar = Vec::new();
    let hi = if spec.version == 2 {
        spec.header_info.to_json_v2()
    } else {
        spec.header_info.to_json_v3()
    };
    push_doc(&mut tar, "header-info", hi.as_bytes());
    for s in scripts {
        let meta = file_entry(s, format!("scripts/{}", base_name(s)?))?;
        if meta.size > MAX_SCRIPT_SIZE {
            return Err(ArtifactError::Invalid(format!(
                "{}: state script larger than 16 MiB",
                s.display()
            )));
        }
        let data = fs::read(s).map_err(|e| io_err(s, e))?;
        let meta = EntryMeta {
            size: data.len() as u64,
            ..meta
        };
        tarw::write_entry(&mut tar, &meta, &data).map_err(|e| io_err(s, e))?;
    }
    for (i, p) in spec.payloads.iter().enumerate() {
        if spec.version == 2 {
            let names: Vec<serde_json::Value> = p
                .files
                .iter()
                .map(|f| base_name(f).map(serde_json::Value::String))
                .collect::<Result<_>>()?;
            let files = format!(
                "{{\"files\":{}}}",
                super::gojson::to_string(&serde_json::Value::Array(names))
            );
            push_doc(&mut tar, &format!("headers/{i:04}/files"), files.as_bytes());
        }
        push_payload_docs(&mut tar, i, &type_infos[i], p);
    }
    tarw::write_end(&mut tar).expect("writing to memory");
    Ok(tar)
}

fn push_payload_docs(tar: &mut Vec<u8>, i: usize, ti: &TypeInfo, p: &PayloadSpec) {
    push_doc(
        tar,
        &format!("headers/{i:04}/type-info"),
        ti.to_json().as_bytes(),
    );
    match &p.meta_data {
        Some(m) if !m.is_empty() => {
            let doc = super::gojson::to_string(&serde_json::Value::Object(m.clone()));
            push_doc(tar, &format!("headers/{i:04}/meta-data"), doc.as_bytes());
        }
        _ if p.empty_meta_data => push_doc(tar, &format!("headers/{i:04}/meta-data"), b""),
        _ => {}
    }
}

fn compress_small(spec: &ArtifactSpec, data: &[u8]) -> Result<Vec<u8>> {
    let mut e = spec
        .compression
        .encoder(Vec::new())
        .map_err(|e| ArtifactError::io("compressing header", e))?;
    e.write_all(data)
        .and_then(|_| e.finish())
        .map_err(|e| ArtifactError::io("compressing header", e))
}

fn now() -> i64 {
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        return epoch;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The outer-tar fields upstream gives the members it writes from temp files.
fn member_meta(name: &str, size: u64, owner: (u64, u64)) -> EntryMeta {
    EntryMeta {
        name: name.to_string(),
        mode: 0o600,
        uid: owner.0,
        gid: owner.1,
        uname: user_name(owner.0),
        gname: group_name(owner.1),
        mtime: now(),
        size,
    }
}

mod datatar;
mod stream;
pub(crate) use stream::umask;
pub use stream::write_artifact;
