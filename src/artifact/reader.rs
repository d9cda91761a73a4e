//! Streams an artifact: checks the version and manifest, verifies the signature before any
//! header is parsed, checks the header's checksum before parsing it, and hands every payload
//! file to a visitor through a reader that verifies its checksum at its end.

use std::collections::HashSet;
use std::io::{self, Read};

use indicatif::ProgressBar;
use serde::Deserialize;

use super::compression::{decoder, Compression};
use super::error::{ArtifactError, Result};
use super::hashing::{sha256, HashingReader};
use super::headertar::parse_header_tar;
use super::info::{ArtifactInfo, Augment, PayloadFile, SignatureStatus};
use super::manifest::{Manifest, MAX_MANIFEST_SIZE};
use super::names::{self, check_payload_file_name};

/// Checks a manifest signature; implemented by the key types in `crypto`.
pub trait ManifestVerifier {
    /// Ok when `signature` (decoded from base64) is a valid signature of `manifest`.
    fn verify_manifest(&self, manifest: &[u8], signature: &[u8])
        -> std::result::Result<(), String>;
}

/// What to do about signatures.
#[derive(Clone, Copy, Default)]
pub enum VerifyMode<'a> {
    /// Record whether there is a signature; check nothing.
    #[default]
    None,
    /// Check the signature if there is one and report the result in the info.
    Report(&'a dyn ManifestVerifier),
    /// Fail unless the artifact is signed and the signature verifies.
    Require(&'a dyn ManifestVerifier),
}

/// How to read.
#[derive(Default)]
pub struct ReadOptions<'a> {
    /// Signature checking.
    pub verify: VerifyMode<'a>,
    /// Progress over the artifact's bytes.
    pub progress: Option<ProgressBar>,
}

/// Receives the parts of an artifact as they stream past.
pub trait Visitor {
    /// Called once all headers are read and checked, before any payload data.
    fn header(&mut self, _info: &ArtifactInfo) -> Result<()> {
        Ok(())
    }
    /// Called for each payload file. `data` fails at its end if the checksum does not match;
    /// whatever the visitor leaves unread is read and checked after it returns.
    fn file(
        &mut self,
        _info: &ArtifactInfo,
        _payload: usize,
        _file: &PayloadFile,
        _data: &mut dyn Read,
    ) -> Result<()> {
        Ok(())
    }
}

/// A visitor that only checks.
pub struct Validate;
impl Visitor for Validate {}

const MAX_VERSION_SIZE: u64 = 4096;
const MAX_SIGNATURE_SIZE: u64 = 64 << 10;
/// Longest compressed header member accepted.
const MAX_HEADER_SIZE: u64 = 64 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionDoc {
    format: String,
    version: u32,
}

fn read_member<R: Read>(r: R, cap: u64, name: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ArtifactError::io(format!("reading {name}"), e))?;
    if buf.len() as u64 > cap {
        return Err(ArtifactError::format(format!(
            "{name} is larger than the limit of {cap} bytes"
        )));
    }
    Ok(buf)
}

fn check_sum(manifest: &Manifest, name: &str, data: &[u8]) -> Result<()> {
    let expected = manifest
        .get(name)
        .ok_or_else(|| ArtifactError::format(format!("{name} is not listed in the manifest")))?;
    let actual = sha256(data);
    if &actual != expected {
        return Err(ArtifactError::Checksum {
            path: name.to_string(),
            expected: hex::encode(expected),
            actual: hex::encode(actual),
        });
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Start,
    Version,
    Manifest,
    Signature,
    ManifestAugment,
    Header,
    HeaderAugment,
    Data,
}

struct State {
    stage: Stage,
    version: u32,
    manifest: Option<(Manifest, Vec<u8>)>,
    signature: Option<Vec<u8>>,
    augment_manifest: Option<Manifest>,
    info: Option<ArtifactInfo>,
    next_data: usize,
    seen: HashSet<String>,
}

fn check_signature(st: &State, mode: VerifyMode) -> Result<SignatureStatus> {
    let (_, raw) = st
        .manifest
        .as_ref()
        .expect("manifest read before the header");
    let verifier = match mode {
        VerifyMode::None => {
            return Ok(match st.signature {
                Some(_) => SignatureStatus::NotChecked,
                None => SignatureStatus::Unsigned,
            })
        }
        VerifyMode::Report(v) | VerifyMode::Require(v) => v,
    };
    let require = matches!(mode, VerifyMode::Require(_));
    let Some(sig) = &st.signature else {
        if require {
            return Err(ArtifactError::Signature(
                "the artifact is not signed, but a verification key was given".into(),
            ));
        }
        return Ok(SignatureStatus::Unsigned);
    };
    let result = crate::crypto::decode_signature(sig)
        .map_err(|e| e.to_string())
        .and_then(|s| verifier.verify_manifest(raw, &s));
    match result {
        Ok(()) => Ok(SignatureStatus::Verified),
        Err(e) if require => Err(ArtifactError::Signature(format!(
            "signature verification failed: {e}"
        ))),
        Err(e) => Ok(SignatureStatus::Failed(e)),
    }
}

/// Reads a whole artifact from `r`, calling `visitor` for the headers and each payload file.
/// Returns the artifact's description once every checksum has been verified.
pub fn read_artifact<R: Read>(
    r: R,
    opts: &ReadOptions,
    visitor: &mut dyn Visitor,
) -> Result<ArtifactInfo> {
    let r: Box<dyn Read> = match &opts.progress {
        Some(p) => Box::new(p.wrap_read(r)),
        None => Box::new(r),
    };
    let mut ar = tar::Archive::new(r);
    let mut st = State {
        stage: Stage::Start,
        version: 0,
        manifest: None,
        signature: None,
        augment_manifest: None,
        info: None,
        next_data: 0,
        seen: HashSet::new(),
    };
    let entries = ar
        .entries()
        .map_err(|e| ArtifactError::io("reading the artifact tar", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArtifactError::io("reading the artifact tar", e))?;
        let name = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| ArtifactError::format("artifact member name is not UTF-8"))?;
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            return Err(ArtifactError::format(format!(
                "artifact member {name:?} is not a regular file ({kind:?})"
            )));
        }
        let out_of_order = |st: &State| {
            ArtifactError::format(format!(
                "artifact member {name:?} is out of place (after {:?})",
                st.stage
            ))
        };
        match name.as_str() {
            "version" if st.stage == Stage::Start => {
                let data = read_member(&mut entry, MAX_VERSION_SIZE, "version")?;
                let doc: VersionDoc = serde_json::from_slice(&data)
                    .map_err(|e| ArtifactError::format(format!("invalid version member: {e}")))?;
                if doc.format != "mender" {
                    return Err(ArtifactError::format(format!(
                        "not a Mender artifact: format is {:?}",
                        doc.format
                    )));
                }
                if doc.version != 2 && doc.version != 3 {
                    return Err(ArtifactError::format(format!(
                        "unsupported artifact format version {}",
                        doc.version
                    )));
                }
                st.version = doc.version;
                st.stage = Stage::Version;
                st.manifest = Some((Manifest::new(), data));
            }
            "manifest" if st.stage == Stage::Version => {
                let version_bytes = st.manifest.take().map(|(_, v)| v).unwrap_or_default();
                let raw = read_member(&mut entry, MAX_MANIFEST_SIZE, "manifest")?;
                let m = Manifest::parse(&raw)
                    .map_err(|e| ArtifactError::format(format!("invalid manifest: {e}")))?;
                check_sum(&m, "version", &version_bytes)?;
                st.manifest = Some((m, raw));
                st.stage = Stage::Manifest;
            }
            "manifest.sig" if st.stage == Stage::Manifest => {
                st.signature = Some(read_member(&mut entry, MAX_SIGNATURE_SIZE, "manifest.sig")?);
                st.stage = Stage::Signature;
            }
            "manifest-augment"
                if st.version == 3 && matches!(st.stage, Stage::Manifest | Stage::Signature) =>
            {
                let raw = read_member(&mut entry, MAX_MANIFEST_SIZE, "manifest-augment")?;
                st.augment_manifest = Some(Manifest::parse(&raw).map_err(|e| {
                    ArtifactError::format(format!("invalid manifest-augment: {e}"))
                })?);
                st.stage = Stage::ManifestAugment;
            }
            n if n.starts_with("header.tar")
                && matches!(
                    st.stage,
                    Stage::Manifest | Stage::Signature | Stage::ManifestAugment
                ) =>
            {
                let status = check_signature(&st, opts.verify)?;
                let comp = Compression::from_suffix(&n["header.tar".len()..]).ok_or_else(|| {
                    ArtifactError::format(format!("unknown compression of {n:?}"))
                })?;
                let data = read_member(&mut entry, MAX_HEADER_SIZE, n)?;
                let (manifest, raw) = st.manifest.take().expect("manifest stage passed");
                check_sum(&manifest, n, &data)?;
                let docs = parse_header_tar(&data, comp, st.version, n, false)?;
                st.info = Some(ArtifactInfo {
                    version: st.version,
                    manifest,
                    manifest_raw: raw,
                    signature: st.signature.take(),
                    signature_status: status,
                    header_info: docs.info,
                    scripts: docs.scripts,
                    payloads: docs.payloads,
                    augment: None,
                    header_compression: comp,
                    data_compression: None,
                });
                st.stage = Stage::Header;
                if st.augment_manifest.is_none() {
                    visitor.header(st.info.as_ref().expect("just set"))?;
                }
            }
            n if n.starts_with("header-augment.tar") && st.stage == Stage::Header => {
                let Some(am) = st.augment_manifest.take() else {
                    return Err(out_of_order(&st));
                };
                let info = st.info.as_mut().expect("header read");
                let comp = Compression::from_suffix(&n["header-augment.tar".len()..]).ok_or_else(
                    || ArtifactError::format(format!("unknown compression of {n:?}")),
                )?;
                let data = read_member(&mut entry, MAX_HEADER_SIZE, n)?;
                check_sum(&am, n, &data)?;
                let docs = parse_header_tar(&data, comp, 3, n, true)?;
                info.augment = Some(Augment {
                    manifest: am,
                    header_info: docs.info,
                    payloads: docs.payloads,
                });
                st.stage = Stage::HeaderAugment;
                visitor.header(info)?;
            }
            n if n.starts_with("data/")
                && matches!(st.stage, Stage::Header | Stage::HeaderAugment | Stage::Data) =>
            {
                if st.augment_manifest.is_some() {
                    return Err(ArtifactError::format(
                        "manifest-augment is present but header-augment is missing",
                    ));
                }
                let (index, ext) = names::parse_data_member(n).ok_or_else(|| {
                    ArtifactError::format(format!("invalid data member name {n:?}"))
                })?;
                if index != st.next_data {
                    return Err(ArtifactError::format(format!(
                        "data member {n:?} out of order; expected payload {}",
                        st.next_data
                    )));
                }
                let comp = Compression::from_suffix(ext).ok_or_else(|| {
                    ArtifactError::format(format!("unknown compression of {n:?}"))
                })?;
                let info = st.info.as_mut().expect("header read");
                if index >= info.payloads.len() {
                    return Err(ArtifactError::format(format!(
                        "data member {n:?} has no header (header-info declares {} payloads)",
                        info.payloads.len()
                    )));
                }
                info.data_compression.get_or_insert(comp);
                read_data(&mut entry, comp, index, n, info, &mut st.seen, visitor)?;
                st.next_data += 1;
                st.stage = Stage::Data;
            }
            _ => {
                return Err(if st.stage == Stage::Start {
                    ArtifactError::format(format!(
                        "not a Mender artifact: first member is {name:?}, not version"
                    ))
                } else {
                    out_of_order(&st)
                })
            }
        }
    }
    let Some(info) = st.info else {
        return Err(ArtifactError::format(match st.stage {
            Stage::Start => "not a Mender artifact: empty or not a tar archive".to_string(),
            s => format!("artifact is truncated: it ends after {s:?} without a header"),
        }));
    };
    if st.augment_manifest.is_some() {
        return Err(ArtifactError::format(
            "manifest-augment is present but header-augment is missing",
        ));
    }
    let listed = info
        .manifest
        .entries()
        .chain(info.augment.iter().flat_map(|a| a.manifest.entries()))
        .map(|(p, _)| p)
        .filter(|p| p.starts_with("data/"));
    for path in listed {
        if !st.seen.contains(path) {
            return Err(ArtifactError::format(format!(
                "{path} is listed in the manifest but missing from the artifact (truncated?)"
            )));
        }
    }
    Ok(info)
}

fn read_data<R: Read>(
    entry: R,
    comp: Compression,
    index: usize,
    member: &str,
    info: &mut ArtifactInfo,
    seen: &mut HashSet<String>,
    visitor: &mut dyn Visitor,
) -> Result<()> {
    let dec = decoder(comp, entry).map_err(|e| ArtifactError::io(member, e))?;
    let mut inner = tar::Archive::new(dec);
    {
        let entries = inner
            .entries()
            .map_err(|e| ArtifactError::io(format!("reading {member}"), e))?;
        for e in entries {
            let mut e = e.map_err(|e| ArtifactError::io(format!("reading {member}"), e))?;
            let raw_name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let kind = e.header().entry_type();
            if !kind.is_file() {
                return Err(ArtifactError::format(format!(
                    "{member}: {raw_name:?} is not a regular file ({kind:?}); payloads hold only regular files"
                )));
            }
            check_payload_file_name(&raw_name)
                .map_err(|m| ArtifactError::format(format!("{member}: {m}")))?;
            let path = names::manifest_data_path(index, &raw_name);
            let expected = *info
                .manifest
                .get(&path)
                .or_else(|| info.augment.as_ref().and_then(|a| a.manifest.get(&path)))
                .ok_or_else(|| {
                    ArtifactError::format(format!("{path} is in the data but not in the manifest"))
                })?;
            if !seen.insert(path.clone()) {
                return Err(ArtifactError::format(format!(
                    "duplicate payload file {path}"
                )));
            }
            let h = e.header();
            let file = PayloadFile {
                name: raw_name,
                size: e.size(),
                mtime: h.mtime().map_or(0, |m| m as i64),
                mode: h.mode().unwrap_or(0o644),
                checksum: expected,
            };
            let mut hr = HashingReader::new(&mut e, &path, file.size, expected);
            visitor.file(info, index, &file, &mut hr)?;
            hr.drain()
                .map_err(|e| ArtifactError::io(format!("reading {path}"), e))?;
            info.payloads[index].files.push(file);
        }
    }
    // Read the compressed stream to its end so that its own checksum (gzip CRC, xz check,
    // zstd checksum) is verified too.
    let mut rest = inner.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| ArtifactError::io(format!("reading {member}"), e))?;
    Ok(())
}
