//! Signs an existing artifact: checks it whole first (a signature must never vouch for bad
//! content), then copies every outer member byte for byte, dropping any old signature and
//! putting the new `manifest.sig` right after `manifest`.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::error::{ArtifactError, Result};
use super::reader::{read_artifact, ReadOptions, Validate};
use super::tarw::{self, EntryMeta};
use super::writer::ManifestSigner;

fn io_err(path: &Path, e: io::Error) -> ArtifactError {
    ArtifactError::io(path.display().to_string(), e)
}

/// Signs `input` into `output` (which may be the same path). Refuses an already signed
/// artifact unless `force`. The result keeps the input's permissions.
pub fn sign_artifact(
    input: &Path,
    output: &Path,
    signer: &dyn ManifestSigner,
    force: bool,
) -> Result<()> {
    let f = File::open(input).map_err(|e| io_err(input, e))?;
    let info = read_artifact(
        BufReader::with_capacity(1 << 20, f),
        &ReadOptions::default(),
        &mut Validate,
    )?;
    if info.signature.is_some() && !force {
        return Err(ArtifactError::Invalid(
            "artifact already signed, refusing to re-sign; use -f to replace the signature".into(),
        ));
    }
    let raw_sig = signer
        .sign_manifest(&info.manifest_raw)
        .map_err(|e| ArtifactError::Signature(format!("signing the manifest: {e}")))?;
    let sig = crate::crypto::encode_signature(&raw_sig);

    let in_md = fs::metadata(input).map_err(|e| io_err(input, e))?;
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".mender-artifact-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| io_err(output, e))?;
    {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        copy_with_signature(input, &mut w, &sig).map_err(|e| io_err(output, e))?;
        w.flush().map_err(|e| io_err(output, e))?;
    }
    let f = tmp.as_file_mut();
    f.sync_all().map_err(|e| io_err(output, e))?;
    f.set_permissions(fs::Permissions::from_mode(in_md.mode() & 0o7777))
        .map_err(|e| io_err(output, e))?;
    if output == input {
        // Keep the owner too, as far as we are allowed to.
        let _ = std::os::unix::fs::fchown(f, Some(in_md.uid()), Some(in_md.gid()));
    }
    tmp.persist(output).map_err(|e| io_err(output, e.error))?;
    Ok(())
}

fn copy_with_signature<W: Write>(input: &Path, w: &mut W, sig: &str) -> io::Result<()> {
    let f = File::open(input)?;
    let mut ar = tar::Archive::new(BufReader::with_capacity(1 << 20, f));
    let mut entries = ar.entries()?;
    entries = entries.raw(true);
    // Extension headers (PAX, GNU long names) belong to the entry that follows them.
    let mut pending: Vec<Vec<u8>> = Vec::new();
    for entry in entries {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        let mut block = entry.header().as_bytes().to_vec();
        let size = entry.header().entry_size()?;
        let mut data = Vec::new();
        if kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_pax_global_extensions()
        {
            entry.read_to_end(&mut data)?;
            block.extend_from_slice(&data);
            block.resize(block.len() + tarw::padding(size) as usize, 0);
            pending.push(block);
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if name == "manifest.sig" {
            pending.clear();
            continue;
        }
        for p in pending.drain(..) {
            w.write_all(&p)?;
        }
        w.write_all(&block)?;
        let copied = io::copy(&mut entry, w)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name} is truncated"),
            ));
        }
        w.write_all(&[0u8; 512][..tarw::padding(size) as usize])?;
        if name == "manifest" {
            let meta = EntryMeta {
                mode: 0o644,
                ..EntryMeta::stream("manifest.sig", sig.len() as u64)
            };
            tarw::write_entry(w, &meta, sig.as_bytes())?;
        }
    }
    tarw::write_end(w)?;
    Ok(())
}
