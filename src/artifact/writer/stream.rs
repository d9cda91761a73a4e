//! The second pass: lays out the outer tar and streams compressed data members into it.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    collect_inputs, compress_small, expand_scripts, header_tar, io_err, member_meta,
    push_payload_docs, Input, Output, WriteOptions,
};
use crate::artifact::error::{ArtifactError, Result};
use crate::artifact::hashing::sha256;
use crate::artifact::header::TypeInfo;
use crate::artifact::manifest::Manifest;
use crate::artifact::names::{self, check_artifact_name, VERSION_2, VERSION_3};
use crate::artifact::spec::{ArtifactSpec, PayloadSpec};
use crate::artifact::tarw::{self, EntryMeta, USTAR_MAX_SIZE};

/// Counts the bytes written through it.
struct Counter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the uncompressed data tar of one payload: the files again (second read), each
/// checked against the first pass so that a file changed meanwhile is an error, not a
/// corrupt artifact.
fn write_data_tar<W: Write>(w: &mut W, inputs: &[Input], opts: &WriteOptions) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    for input in inputs {
        let ctx = || format!("writing payload file {}", input.path.display());
        tarw::write_header(w, &input.meta).map_err(|e| ArtifactError::io(ctx(), e))?;
        let mut f = File::open(&input.path).map_err(|e| io_err(&input.path, e))?;
        let mut h = Sha256::new();
        let mut left = input.meta.size;
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = f
                .read(&mut buf[..want])
                .map_err(|e| io_err(&input.path, e))?;
            if n == 0 {
                return Err(ArtifactError::Invalid(format!(
                    "{}: file shrank while the artifact was being written",
                    input.path.display()
                )));
            }
            h.update(&buf[..n]);
            w.write_all(&buf[..n])
                .map_err(|e| ArtifactError::io(ctx(), e))?;
            opts.progress.inc(n as u64);
            left -= n as u64;
        }
        let sum: [u8; 32] = h.finalize().into();
        if sum != input.sum {
            return Err(ArtifactError::Invalid(format!(
                "{}: file changed while the artifact was being written",
                input.path.display()
            )));
        }
        let pad = tarw::padding(input.meta.size) as usize;
        w.write_all(&[0u8; 512][..pad])
            .map_err(|e| ArtifactError::io(ctx(), e))?;
    }
    tarw::write_end(w).map_err(|e| ArtifactError::io("writing data", e))?;
    Ok(())
}

fn data_tar_bound(inputs: &[Input]) -> u64 {
    inputs
        .iter()
        .map(|i| 2048 + i.meta.size + tarw::padding(i.meta.size))
        .sum::<u64>()
        + 1024
}

/// The process umask, for giving the finished file the mode a plain `create` would.
fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

enum Sink {
    File(tempfile::NamedTempFile, PathBuf),
    Stdout(BufWriter<io::Stdout>),
}

fn check_spec(spec: &ArtifactSpec) -> Result<()> {
    if spec.version != 2 && spec.version != 3 {
        return Err(ArtifactError::Invalid(format!(
            "unsupported artifact format version {}; use 2 or 3",
            spec.version
        )));
    }
    check_artifact_name("artifact name", &spec.header_info.artifact_name)
        .map_err(ArtifactError::Invalid)?;
    if let Some(g) = &spec.header_info.artifact_group {
        check_artifact_name("artifact group", g).map_err(ArtifactError::Invalid)?;
    }
    if spec.header_info.depends_device_type.is_empty() {
        return Err(ArtifactError::Invalid(
            "at least one device type is needed".into(),
        ));
    }
    if spec.header_info.payload_types.len() != spec.payloads.len() {
        return Err(ArtifactError::Invalid(
            "header-info names a different number of payloads than given".into(),
        ));
    }
    if spec.version == 2 && (spec.augment.is_some() || spec.payloads.len() != 1) {
        return Err(ArtifactError::Invalid(
            "format version 2 holds exactly one payload and no augment section".into(),
        ));
    }
    Ok(())
}

/// Writes the artifact described by `spec` to `output`. On any error nothing is left at the
/// output path (a previous file there is untouched).
pub fn write_artifact(spec: &ArtifactSpec, output: &Output, opts: &WriteOptions) -> Result<()> {
    check_spec(spec)?;
    let scripts = expand_scripts(&spec.scripts)?;
    let mut total: u64 = 0;
    for p in spec.payloads.iter().flat_map(|p| p.files.iter()) {
        total += fs::metadata(p).map_err(|e| io_err(p, e))?.len();
    }
    if let Some(a) = &spec.augment {
        for p in &a.files {
            total += fs::metadata(p).map_err(|e| io_err(p, e))?.len();
        }
    }
    opts.progress.set_length(total * 2);

    // First pass: hash every payload file.
    let mut manifest = Manifest::new();
    let mut inputs: Vec<Vec<Input>> = Vec::new();
    for (i, p) in spec.payloads.iter().enumerate() {
        inputs.push(collect_inputs(&p.files, i, &mut manifest, &opts.progress)?);
    }
    let ext = spec.compression.suffix();
    let type_infos: Vec<TypeInfo> = spec
        .payloads
        .iter()
        .zip(&inputs)
        .map(|(p, ins)| {
            let mut ti = p.type_info.clone();
            if let (Some(key), Some(first)) = (&p.checksum_provide, ins.first()) {
                ti.provides.insert(key.clone(), hex::encode(first.sum));
            }
            ti
        })
        .collect();
    let header = compress_small(spec, &header_tar(spec, &scripts, &type_infos)?)?;
    let header_name = format!("header.tar{ext}");
    let version: &[u8] = if spec.version == 2 {
        VERSION_2
    } else {
        VERSION_3
    };
    manifest
        .push(&header_name, sha256(&header))
        .and_then(|_| manifest.push("version", sha256(version)))
        .map_err(ArtifactError::Invalid)?;

    let mut augment: Option<(Manifest, Vec<u8>)> = None;
    if let Some(a) = &spec.augment {
        let mut am = Manifest::new();
        let aug_inputs = collect_inputs(&a.files, 0, &mut am, &opts.progress)?;
        for (path, _) in am.entries() {
            if manifest.get(path).is_some() {
                return Err(ArtifactError::Invalid(format!(
                    "augment file {path} has the same name as a payload file"
                )));
            }
        }
        let mut tar = Vec::new();
        let hi = a.header_info.to_json_v3();
        tarw::write_entry(
            &mut tar,
            &EntryMeta::stream("header-info", hi.len() as u64),
            hi.as_bytes(),
        )
        .expect("writing to memory");
        let pspec = PayloadSpec {
            meta_data: a.meta_data.clone(),
            ..Default::default()
        };
        push_payload_docs(&mut tar, 0, &a.type_info, &pspec);
        tarw::write_end(&mut tar).expect("writing to memory");
        let compressed = compress_small(spec, &tar)?;
        am.push(&format!("header-augment.tar{ext}"), sha256(&compressed))
            .map_err(ArtifactError::Invalid)?;
        match inputs.first_mut() {
            Some(first) => first.extend(aug_inputs),
            None => {
                return Err(ArtifactError::Invalid(
                    "an augment section needs a payload".into(),
                ))
            }
        }
        augment = Some((am, compressed));
    }

    let manifest_text = manifest.to_text();
    let signature = match opts.signer {
        Some(s) => Some(crate::crypto::encode_signature(
            &s.sign_manifest(manifest_text.as_bytes())
                .map_err(|e| ArtifactError::Signature(format!("signing the manifest: {e}")))?,
        )),
        None => None,
    };

    let mut sink = match output {
        Output::File(path) => {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let tmp = tempfile::Builder::new()
                .prefix(".mender-artifact-")
                .suffix(".tmp")
                .tempfile_in(&dir)
                .map_err(|e| io_err(path, e))?;
            Sink::File(tmp, path.clone())
        }
        Output::Stdout => Sink::Stdout(BufWriter::with_capacity(1 << 20, io::stdout())),
    };
    let owner = match &sink {
        Sink::File(tmp, _) => {
            let md = tmp
                .as_file()
                .metadata()
                .map_err(|e| io_err(tmp.path(), e))?;
            (u64::from(md.uid()), u64::from(md.gid()))
        }
        Sink::Stdout(_) => {
            let md = fs::metadata("/proc/self").map_err(|e| io_err(Path::new("/proc/self"), e))?;
            (u64::from(md.uid()), u64::from(md.gid()))
        }
    };

    let out_ctx = match output {
        Output::File(p) => p.display().to_string(),
        Output::Stdout => "standard output".to_string(),
    };
    let werr = |e: io::Error| ArtifactError::io(format!("writing {out_ctx}"), e);
    {
        let w: &mut dyn Write = match &mut sink {
            Sink::File(tmp, _) => tmp.as_file_mut(),
            Sink::Stdout(s) => s,
        };
        let mut w = BufWriter::with_capacity(256 << 10, w);
        let stream = |w: &mut dyn Write, name: &str, data: &[u8]| {
            tarw::write_entry(w, &EntryMeta::stream(name, data.len() as u64), data)
        };
        stream(&mut w, "version", version).map_err(werr)?;
        stream(&mut w, "manifest", manifest_text.as_bytes()).map_err(werr)?;
        if let Some(sig) = &signature {
            stream(&mut w, "manifest.sig", sig.as_bytes()).map_err(werr)?;
        }
        if let Some((am, _)) = &augment {
            stream(&mut w, "manifest-augment", am.to_text().as_bytes()).map_err(werr)?;
        }
        tarw::write_entry(
            &mut w,
            &member_meta(&header_name, header.len() as u64, owner),
            &header,
        )
        .map_err(werr)?;
        if let Some((_, h)) = &augment {
            let name = format!("header-augment.tar{ext}");
            tarw::write_entry(&mut w, &member_meta(&name, h.len() as u64, owner), h)
                .map_err(werr)?;
        }
        w.flush().map_err(werr)?;
    }

    for (i, inputs) in inputs.iter().enumerate() {
        let name = names::data_member_name(i, ext);
        let bound = data_tar_bound(inputs);
        let in_place =
            matches!(sink, Sink::File(..)) && bound / 100 * 101 + (1 << 20) < USTAR_MAX_SIZE;
        if in_place {
            let Sink::File(tmp, _) = &mut sink else {
                unreachable!()
            };
            let f = tmp.as_file_mut();
            let start = f.stream_position().map_err(werr)?;
            f.write_all(&[0u8; 512]).map_err(werr)?;
            let counter = Counter {
                inner: BufWriter::with_capacity(1 << 20, &mut *f),
                count: 0,
            };
            let mut enc = spec.compression.encoder(counter).map_err(werr)?;
            write_data_tar(&mut enc, inputs, opts)?;
            let mut counter = enc.finish().map_err(werr)?;
            counter.flush().map_err(werr)?;
            let size = counter.count;
            drop(counter);
            if size > USTAR_MAX_SIZE {
                return Err(ArtifactError::Invalid(format!(
                    "{name}: compressed data grew past the size reserved for it"
                )));
            }
            f.write_all(&[0u8; 512][..tarw::padding(size) as usize])
                .map_err(werr)?;
            let end = f.stream_position().map_err(werr)?;
            f.seek(SeekFrom::Start(start)).map_err(werr)?;
            tarw::write_header(f, &member_meta(&name, size, owner)).map_err(werr)?;
            f.seek(SeekFrom::Start(end)).map_err(werr)?;
        } else {
            let dir = match (&sink, &opts.tmp_dir) {
                (_, Some(d)) => d.clone(),
                (Sink::File(_, p), None) => p
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
                (Sink::Stdout(_), None) => std::env::temp_dir(),
            };
            let mut tmp = tempfile::tempfile_in(&dir).map_err(|e| io_err(&dir, e))?;
            let mut enc = spec
                .compression
                .encoder(BufWriter::with_capacity(1 << 20, &mut tmp))
                .map_err(werr)?;
            write_data_tar(&mut enc, inputs, opts)?;
            enc.finish().map_err(werr)?.flush().map_err(werr)?;
            let size = tmp.stream_position().map_err(werr)?;
            tmp.seek(SeekFrom::Start(0)).map_err(werr)?;
            let w: &mut dyn Write = match &mut sink {
                Sink::File(t, _) => t.as_file_mut(),
                Sink::Stdout(s) => s,
            };
            tarw::write_header(w, &member_meta(&name, size, owner)).map_err(werr)?;
            io::copy(&mut tmp, w).map_err(werr)?;
            w.write_all(&[0u8; 512][..tarw::padding(size) as usize])
                .map_err(werr)?;
        }
    }

    match sink {
        Sink::File(mut tmp, path) => {
            let f = tmp.as_file_mut();
            tarw::write_end(f).map_err(werr)?;
            f.sync_all().map_err(werr)?;
            f.set_permissions(fs::Permissions::from_mode(0o666 & !umask()))
                .map_err(werr)?;
            tmp.persist(&path)
                .map_err(|e| ArtifactError::io(format!("writing {}", path.display()), e.error))?;
        }
        Sink::Stdout(mut s) => {
            tarw::write_end(&mut s).map_err(werr)?;
            s.flush().map_err(werr)?;
        }
    }
    opts.progress.finish_and_clear();
    Ok(())
}
