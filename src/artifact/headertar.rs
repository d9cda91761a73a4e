//! Parses the header tar (`header.tar<ext>` or `header-augment.tar<ext>`) after its checksum
//! has been verified: `header-info`, state scripts, and per payload `type-info`, `meta-data`
//! (and the v2 `files` list), with size caps against hostile input.

use std::io::Read;

use super::compression::{decoder, Compression};
use super::error::{ArtifactError, Result};
use super::header::{parse_meta_data, HeaderInfo, TypeInfo, MAX_JSON_SIZE};
use super::info::{Payload, Script};

/// Most bytes a decompressed header tar may hold (caps decompression bombs).
pub const MAX_HEADER_UNCOMPRESSED: u64 = 64 << 20;
/// Longest state script accepted from a header.
const MAX_SCRIPT: u64 = 16 << 20;
/// Most payloads an artifact may declare.
pub const MAX_PAYLOADS: usize = 1024;

/// Fails once more than `left` bytes come out, so a decompression bomb is an error and not
/// an allocation.
pub struct CappedReader<R> {
    /// The reader.
    pub inner: R,
    /// Bytes still allowed.
    pub left: u64,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(
                    "decompressed size exceeds the limit (decompression bomb?)",
                )),
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The parsed documents of a header tar.
#[derive(Debug, Default)]
pub struct HeaderDocs {
    /// `header-info`.
    pub info: HeaderInfo,
    /// State scripts (main header only).
    pub scripts: Vec<Script>,
    /// Per payload documents.
    pub payloads: Vec<Payload>,
}

fn read_capped<R: Read>(r: R, cap: u64, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ArtifactError::io(format!("reading {what}"), e))?;
    if buf.len() as u64 > cap {
        return Err(ArtifactError::format(format!(
            "{what} is larger than the limit of {cap} bytes"
        )));
    }
    Ok(buf)
}

/// Parses header tar bytes (`compressed` with `compression`) of format `version`.
/// `member` names the tar in errors; `augment` forbids scripts.
pub fn parse_header_tar(
    compressed: &[u8],
    compression: Compression,
    version: u32,
    member: &str,
    augment: bool,
) -> Result<HeaderDocs> {
    let dec = decoder(compression, compressed).map_err(|e| ArtifactError::io(member, e))?;
    let mut ar = tar::Archive::new(CappedReader {
        inner: dec,
        left: MAX_HEADER_UNCOMPRESSED,
    });
    let mut docs = HeaderDocs::default();
    let mut have_info = false;
    let mut type_infos: Vec<Option<TypeInfo>> = Vec::new();
    let fmt = |m: String| ArtifactError::format(format!("{member}: {m}"));
    let entries = ar
        .entries()
        .map_err(|e| ArtifactError::io(format!("reading {member}"), e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ArtifactError::io(format!("reading {member}"), e))?;
        let name = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| fmt("entry name is not UTF-8".into()))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(fmt(format!("{name:?} is not a regular file")));
        }
        let name = name.trim_start_matches("./").to_string();
        if !have_info {
            if name != "header-info" {
                return Err(fmt(format!("the first entry is {name:?}, not header-info")));
            }
            let data = read_capped(&mut entry, MAX_JSON_SIZE, "header-info")?;
            docs.info = if version == 2 {
                HeaderInfo::parse_v2(&data)
            } else {
                HeaderInfo::parse_v3(&data)
            }
            .map_err(fmt)?;
            if docs.info.payload_types.len() > MAX_PAYLOADS {
                return Err(fmt(format!("more than {MAX_PAYLOADS} payloads")));
            }
            type_infos = vec![None; docs.info.payload_types.len()];
            docs.payloads = vec![Payload::default(); docs.info.payload_types.len()];
            have_info = true;
            continue;
        }
        if let Some(script) = name.strip_prefix("scripts/") {
            if augment
                || docs.payloads.iter().any(|p| p.v2_files.is_some())
                || type_infos.iter().any(Option::is_some)
            {
                return Err(fmt(format!("state script {name:?} out of place")));
            }
            if script.is_empty() || script.contains('/') || script == ".." || script == "." {
                return Err(fmt(format!("invalid state script name {name:?}")));
            }
            if docs.scripts.iter().any(|s| s.name == script) {
                return Err(fmt(format!("duplicate state script {script:?}")));
            }
            let data = read_capped(&mut entry, MAX_SCRIPT, &name)?;
            docs.scripts.push(Script {
                name: script.to_string(),
                mode: entry.header().mode().unwrap_or(0o755),
                data,
            });
            continue;
        }
        let (index, file) = name
            .strip_prefix("headers/")
            .and_then(|r| r.split_once('/'))
            .filter(|(n, _)| n.len() == 4 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(n, f)| Some((n.parse::<usize>().ok()?, f)))
            .ok_or_else(|| fmt(format!("unexpected entry {name:?}")))?;
        if index >= docs.payloads.len() {
            return Err(fmt(format!(
                "{name:?} belongs to payload {index}, but header-info declares {}",
                docs.payloads.len()
            )));
        }
        let data = read_capped(&mut entry, MAX_JSON_SIZE, &name)?;
        match file {
            "type-info" => {
                if type_infos[index].is_some() {
                    return Err(fmt(format!("duplicate {name:?}")));
                }
                type_infos[index] = Some(TypeInfo::parse(&data).map_err(fmt)?);
            }
            "meta-data" => {
                docs.payloads[index].meta_data = parse_meta_data(&data).map_err(fmt)?;
            }
            "files" if version == 2 => {
                #[derive(serde::Deserialize)]
                struct Files {
                    files: Vec<String>,
                }
                let f: Files = serde_json::from_slice(&data)
                    .map_err(|e| fmt(format!("invalid {name}: {e}")))?;
                docs.payloads[index].v2_files = Some(f.files);
            }
            _ => return Err(fmt(format!("unexpected entry {name:?}"))),
        }
    }
    if !have_info {
        return Err(fmt("no header-info".into()));
    }
    for (i, ti) in type_infos.into_iter().enumerate() {
        match ti {
            Some(ti) => docs.payloads[i].type_info = ti,
            None if augment => {}
            None => return Err(fmt(format!("payload {i} has no type-info"))),
        }
    }
    Ok(docs)
}
