//! Lays out the outer tar. Each payload is read once: its files are hashed (on a second
//! core) while the data tar is compressed into a temp file beside the output; then the
//! manifest, header and signature are written and the compressed data is copied in
//! (`copy_file_range`, so often without passing through user space).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{
    collect_inputs, compress_small, datatar, expand_scripts, header_tar, io_err, member_meta,
    push_payload_docs, Input, Output, WriteOptions,
};
use crate::artifact::error::{ArtifactError, Result};
use crate::artifact::hashing::{sha256, StreamHasher};
use crate::artifact::header::TypeInfo;
use crate::artifact::manifest::Manifest;
use crate::artifact::names::{self, check_artifact_name, VERSION_2, VERSION_3};
use crate::artifact::spec::{ArtifactSpec, PayloadSpec};
use crate::artifact::tarw::{self, EntryMeta};

/// Writes the uncompressed data tar of one payload into `w`, returning each file's SHA-256.
fn write_data_tar<W: Write>(
    w: &mut W,
    inputs: &[Input],
    opts: &WriteOptions,
) -> Result<Vec<[u8; 32]>> {
    let mut buf = vec![0u8; 1 << 20];
    let mut sums = Vec::new();
    for input in inputs {
        let ctx = || format!("writing payload file {}", input.path.display());
        tarw::write_header(w, &input.meta).map_err(|e| ArtifactError::io(ctx(), e))?;
        let mut f = File::open(&input.path).map_err(|e| io_err(&input.path, e))?;
        let mut h = StreamHasher::new(input.meta.size);
        let mut left = input.meta.size;
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = match f.read(&mut buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(&input.path, e)),
            };
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
        sums.push(h.finish().map_err(|e| ArtifactError::io(ctx(), e))?);
        let pad = tarw::padding(input.meta.size) as usize;
        w.write_all(&[0u8; 512][..pad])
            .map_err(|e| ArtifactError::io(ctx(), e))?;
    }
    tarw::write_end(w).map_err(|e| ArtifactError::io("writing data", e))?;
    Ok(sums)
}

/// The process umask, for giving the finished file the mode a plain `create` would.
pub(crate) fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
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
    if spec.augment.is_some() && spec.payloads.is_empty() {
        return Err(ArtifactError::Invalid(
            "an augment section needs a payload".into(),
        ));
    }
    Ok(())
}

/// Where the outer tar goes; a concrete `File` so that copies use `copy_file_range`.
enum Sink<'a> {
    File(&'a mut File),
    Stdout(io::StdoutLock<'static>),
}

impl Sink<'_> {
    fn copy_from(&mut self, f: &mut File) -> io::Result<u64> {
        match self {
            Sink::File(o) => io::copy(f, *o),
            Sink::Stdout(s) => io::copy(f, s),
        }
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Stdout(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Stdout(s) => s.flush(),
        }
    }
}

/// A compressed data member waiting in a temp file.
struct DataMember {
    name: String,
    file: File,
    size: u64,
}

/// Writes the artifact described by `spec` to `output`. On any error nothing is left at the
/// output path (a previous file there is untouched) and no temp file remains.
pub fn write_artifact(spec: &ArtifactSpec, output: &Output, opts: &WriteOptions) -> Result<()> {
    check_spec(spec)?;
    let scripts = expand_scripts(&spec.scripts)?;
    let ext = spec.compression.suffix();

    // Check every input before any work.
    let mut inputs: Vec<Vec<Input>> = Vec::new();
    let mut augment_inputs = Vec::new();
    for (i, p) in spec.payloads.iter().enumerate() {
        let mut taken = Vec::new();
        inputs.push(collect_inputs(&p.files, &mut taken)?);
        if i == 0 {
            if let Some(a) = &spec.augment {
                augment_inputs = collect_inputs(&a.files, &mut taken)?;
            }
        }
    }
    let total: u64 = inputs
        .iter()
        .flatten()
        .chain(&augment_inputs)
        .map(|i| i.meta.size)
        .sum();
    opts.progress.set_length(total);

    let out_dir = match output {
        Output::File(p) => p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        Output::Stdout => std::env::temp_dir(),
    };
    let tmp_dir = opts.tmp_dir.clone().unwrap_or_else(|| out_dir.clone());
    let out_ctx = match output {
        Output::File(p) => p.display().to_string(),
        Output::Stdout => "standard output".to_string(),
    };
    let werr = |e: io::Error| ArtifactError::io(format!("writing {out_ctx}"), e);

    // The one pass over the payloads: hash and compress.
    let mut manifest = Manifest::new();
    let mut augment_manifest = Manifest::new();
    let mut data = Vec::new();
    for (i, payload_inputs) in inputs.iter_mut().enumerate() {
        let count = payload_inputs.len();
        if i == 0 {
            payload_inputs.append(&mut augment_inputs);
        }
        let mut tmp = tempfile::tempfile_in(&tmp_dir).map_err(|e| io_err(&tmp_dir, e))?;
        let sink = BufWriter::with_capacity(1 << 20, &mut tmp);
        let sums = match datatar::write_chunked(spec.compression, sink, payload_inputs, opts, &werr)
        {
            Some(sums) => sums?,
            None => {
                let mut enc = spec
                    .compression
                    .encoder(BufWriter::with_capacity(1 << 20, &mut tmp))
                    .map_err(werr)?;
                let sums = write_data_tar(&mut enc, payload_inputs, opts)?;
                enc.finish().map_err(werr)?.flush().map_err(werr)?;
                sums
            }
        };
        let size = tmp.stream_position().map_err(werr)?;
        tmp.seek(SeekFrom::Start(0)).map_err(werr)?;
        for (k, (input, sum)) in payload_inputs.iter().zip(sums).enumerate() {
            let m = if k < count {
                &mut manifest
            } else {
                &mut augment_manifest
            };
            m.push(&names::manifest_data_path(i, &input.meta.name), sum)
                .map_err(ArtifactError::Invalid)?;
        }
        payload_inputs.truncate(count);
        data.push(DataMember {
            name: names::data_member_name(i, ext),
            file: tmp,
            size,
        });
    }

    let type_infos: Vec<TypeInfo> = spec
        .payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut ti = p.type_info.clone();
            if let (Some(key), Some(first)) = (&p.checksum_provide, inputs[i].first()) {
                let sum = manifest
                    .get(&names::manifest_data_path(i, &first.meta.name))
                    .expect("hashed above");
                ti.provides.insert(key.clone(), hex::encode(sum));
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

    let augment = match &spec.augment {
        Some(a) => {
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
            augment_manifest
                .push(&format!("header-augment.tar{ext}"), sha256(&compressed))
                .map_err(ArtifactError::Invalid)?;
            Some(compressed)
        }
        None => None,
    };

    let manifest_text = manifest.to_text();
    let signature = match opts.signer {
        Some(s) => Some(crate::crypto::encode_signature(
            &s.sign_manifest(manifest_text.as_bytes())
                .map_err(|e| ArtifactError::Signature(format!("signing the manifest: {e}")))?,
        )),
        None => None,
    };

    let mut file_out = match output {
        Output::File(path) => Some(
            tempfile::Builder::new()
                .prefix(".mender-artifact-")
                .suffix(".tmp")
                .tempfile_in(&out_dir)
                .map_err(|e| io_err(path, e))?,
        ),
        Output::Stdout => None,
    };
    let owner = {
        let md = match &file_out {
            Some(t) => t.as_file().metadata(),
            None => data
                .first()
                .map_or_else(|| fs::metadata("/proc/self"), |d| d.file.metadata()),
        }
        .map_err(werr)?;
        (u64::from(md.uid()), u64::from(md.gid()))
    };
    let mut sink = match &mut file_out {
        Some(t) => Sink::File(t.as_file_mut()),
        None => Sink::Stdout(io::stdout().lock()),
    };
    let w = &mut sink;
    {
        let mut bw = BufWriter::with_capacity(256 << 10, &mut *w);
        let stream = |w: &mut dyn Write, name: &str, data: &[u8]| {
            tarw::write_entry(w, &EntryMeta::stream(name, data.len() as u64), data)
        };
        stream(&mut bw, "version", version).map_err(werr)?;
        stream(&mut bw, "manifest", manifest_text.as_bytes()).map_err(werr)?;
        if let Some(sig) = &signature {
            stream(&mut bw, "manifest.sig", sig.as_bytes()).map_err(werr)?;
        }
        if spec.augment.is_some() {
            stream(
                &mut bw,
                "manifest-augment",
                augment_manifest.to_text().as_bytes(),
            )
            .map_err(werr)?;
        }
        tarw::write_entry(
            &mut bw,
            &member_meta(&header_name, header.len() as u64, owner),
            &header,
        )
        .map_err(werr)?;
        if let Some(h) = &augment {
            let name = format!("header-augment.tar{ext}");
            tarw::write_entry(&mut bw, &member_meta(&name, h.len() as u64, owner), h)
                .map_err(werr)?;
        }
        bw.flush().map_err(werr)?;
    }
    for mut d in data {
        tarw::write_header(w, &member_meta(&d.name, d.size, owner)).map_err(werr)?;
        let copied = w.copy_from(&mut d.file).map_err(werr)?;
        if copied != d.size {
            return Err(ArtifactError::Invalid(format!(
                "{}: temp data changed size while being copied",
                d.name
            )));
        }
        w.write_all(&[0u8; 512][..tarw::padding(d.size) as usize])
            .map_err(werr)?;
    }
    tarw::write_end(w).map_err(werr)?;
    w.flush().map_err(werr)?;
    drop(sink);
    if let (Some(mut tmp), Output::File(path)) = (file_out, output) {
        let f = tmp.as_file_mut();
        f.sync_all().map_err(werr)?;
        f.set_permissions(fs::Permissions::from_mode(0o666 & !umask()))
            .map_err(werr)?;
        tmp.persist(path)
            .map_err(|e| ArtifactError::io(format!("writing {}", path.display()), e.error))?;
    }
    opts.progress.finish_and_clear();
    Ok(())
}
