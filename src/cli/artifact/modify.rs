//! `mender-artifact modify`: changes an artifact's name, device types, depends and provides,
//! and inside its root filesystem (or in a disk or filesystem image) the server URL,
//! server certificate, verification key and tenant token.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use super::super::exit::{CliError, CliResult, FAILED};
use super::fscmd::{read_host_file, run_edit_with, EditArgs};
use super::target::Container;
use super::write_defaults::{read_meta_data, split_key_value};
use crate::artifact::gojson;
use crate::artifact::names::check_artifact_name;
use crate::artifact::repack::Changes;
use crate::fsimage::{EntryKind, Filesystem};

/// `modify` arguments.
#[derive(Debug, Args)]
pub struct ModifyArgs {
    /// The artifact, or a disk or filesystem image
    pub target: PathBuf,
    /// New artifact name (also written to /etc/mender/artifact_info in the root filesystem)
    #[arg(short = 'n', long = "artifact-name", alias = "name")]
    pub artifact_name: Option<String>,
    /// New compatible device types, replacing the list (repeatable)
    #[arg(long = "device-type")]
    pub device_type: Vec<String>,
    /// Artifact names this one may be installed over, replacing the list (repeatable)
    #[arg(short = 'N', long = "artifact-name-depends")]
    pub artifact_name_depends: Vec<String>,
    /// Group the artifact provides
    #[arg(short = 'g', long = "provides-group")]
    pub provides_group: Option<String>,
    /// Groups the artifact depends on, replacing the list (repeatable)
    #[arg(short = 'G', long = "depends-groups")]
    pub depends_groups: Vec<String>,
    /// KEY:VALUE provide to set (repeatable); other provides are kept
    #[arg(short = 'p', long = "provides", value_name = "KEY:VALUE")]
    pub provides: Vec<String>,
    /// KEY:VALUE depend to set (repeatable); other depends are kept
    #[arg(short = 'd', long = "depends", value_name = "KEY:VALUE")]
    pub depends: Vec<String>,
    /// JSON object file replacing the payload's meta-data
    #[arg(short = 'm', long = "meta-data")]
    pub meta_data: Option<PathBuf>,
    /// Pattern to add to clears_artifact_provides (repeatable)
    #[arg(long = "clears-provides")]
    pub clears_provides: Vec<String>,
    /// Pattern to remove from clears_artifact_provides (repeatable)
    #[arg(long = "delete-clears-provides")]
    pub delete_clears_provides: Vec<String>,
    /// Mender server URL, set as ServerURL in /etc/mender/mender.conf
    #[arg(short = 'u', long = "server-uri")]
    pub server_uri: Option<String>,
    /// Server certificate file, installed as /etc/mender/server.crt
    #[arg(short = 'c', long = "server-cert")]
    pub server_cert: Option<PathBuf>,
    /// Artifact verification public key file, installed as /etc/mender/artifact-verify-key.pem
    #[arg(short = 'v', long = "verification-key")]
    pub verification_key: Option<PathBuf>,
    /// Tenant token file, set as TenantToken in /etc/mender/mender.conf
    #[arg(short = 't', long = "tenant-token")]
    pub tenant_token: Option<PathBuf>,
    #[command(flatten)]
    pub edit: EditArgs,
}

/// An edit of a file in the root filesystem.
enum FsEdit {
    /// Set a key of mender.conf.
    Conf(&'static str, String),
    /// Replace a file's content.
    File(&'static str, Vec<u8>, u32),
}

fn fs_err(e: crate::fsimage::FsError) -> CliError {
    CliError::new(FAILED, e.0)
}

fn apply(fs: &Filesystem, inner: &str, edit: &FsEdit) -> CliResult {
    let dir = std::env::temp_dir();
    let mut host = tempfile::NamedTempFile::new_in(&dir)
        .map_err(|e| CliError::new(FAILED, format!("{}: {e}", dir.display())))?;
    let (content, mode) = match edit {
        FsEdit::Conf(key, value) => {
            let mut conf = serde_json::Map::new();
            if fs.stat(inner).map_err(fs_err)? == Some(EntryKind::File) {
                let mut old = Vec::new();
                fs.cat(inner, &mut old).map_err(fs_err)?;
                match serde_json::from_slice::<Value>(&old) {
                    Ok(Value::Object(m)) => conf = m,
                    _ => {
                        return Err(CliError::new(
                            FAILED,
                            format!("{inner} in the image is not a JSON object; fix it first"),
                        ))
                    }
                }
            }
            conf.insert(key.to_string(), Value::String(value.clone()));
            (gojson::to_string(&Value::Object(conf)).into_bytes(), None)
        }
        FsEdit::File(_, data, mode) => (data.clone(), Some(*mode)),
    };
    host.write_all(&content)
        .map_err(|e| CliError::new(FAILED, format!("{}: {e}", host.path().display())))?;
    fs.put(host.path(), inner, mode).map_err(fs_err)
}

fn path_of(edit: &FsEdit) -> &'static str {
    match edit {
        FsEdit::Conf(..) => "/etc/mender/mender.conf",
        FsEdit::File(p, ..) => p,
    }
}

/// Runs `modify`.
pub fn run(a: ModifyArgs) -> CliResult {
    let c = Container::open(&a.target)?;
    let is_artifact = matches!(c, Container::Artifact(_));
    for (flag, given) in [
        ("--device-type", !a.device_type.is_empty()),
        ("-N", !a.artifact_name_depends.is_empty()),
        ("-g", a.provides_group.is_some()),
        ("-G", !a.depends_groups.is_empty()),
        ("-p", !a.provides.is_empty()),
        ("-d", !a.depends.is_empty()),
        ("-m", a.meta_data.is_some()),
        ("--clears-provides", !a.clears_provides.is_empty()),
        (
            "--delete-clears-provides",
            !a.delete_clears_provides.is_empty(),
        ),
        (
            "-k",
            a.edit.key.key.is_some() || a.edit.key.key_pkcs11.is_some(),
        ),
        ("--compression", a.edit.compression.is_some()),
    ] {
        if given && !is_artifact {
            return Err(CliError::usage(format!(
                "{flag} can only be used with an artifact"
            )));
        }
    }
    if let Some(n) = &a.artifact_name {
        check_artifact_name("artifact name", n).map_err(CliError::usage)?;
    }
    let mut changes = Changes {
        name: a.artifact_name.clone(),
        device_types: (!a.device_type.is_empty()).then(|| a.device_type.clone()),
        depends_names: (!a.artifact_name_depends.is_empty())
            .then(|| a.artifact_name_depends.clone()),
        provides_group: a.provides_group.clone(),
        depends_groups: (!a.depends_groups.is_empty()).then(|| a.depends_groups.clone()),
        meta_data: a
            .meta_data
            .as_deref()
            .map(read_meta_data)
            .transpose()?
            .flatten(),
        clears_add: a.clears_provides.clone(),
        clears_delete: a.delete_clears_provides.clone(),
        ..Default::default()
    };
    for p in &a.provides {
        let (k, v) = split_key_value("--provides", p)?;
        changes.provides.insert(k, v);
    }
    for d in &a.depends {
        let (k, v) = split_key_value("--depends", d)?;
        changes.depends.insert(k, v);
    }
    let mut edits = Vec::new();
    if let Some(u) = &a.server_uri {
        edits.push(FsEdit::Conf("ServerURL", u.clone()));
    }
    if let Some(t) = &a.tenant_token {
        let token = String::from_utf8(read_host_file("--tenant-token", t)?)
            .map_err(|_| CliError::usage("--tenant-token: the token file is not text"))?;
        edits.push(FsEdit::Conf("TenantToken", token.trim().to_string()));
    }
    if let Some(c) = &a.server_cert {
        edits.push(FsEdit::File(
            "/etc/mender/server.crt",
            read_host_file("--server-cert", c)?,
            0o444,
        ));
    }
    if let Some(v) = &a.verification_key {
        edits.push(FsEdit::File(
            "/etc/mender/artifact-verify-key.pem",
            read_host_file("--verification-key", v)?,
            0o444,
        ));
    }
    let info_edit = a.artifact_name.as_ref().map(|n| {
        FsEdit::File(
            "/etc/mender/artifact_info",
            format!("artifact_name={n}\n").into_bytes(),
            0o644,
        )
    });
    run_edit_with(&c, &a.edit, changes, |locate| {
        for e in &edits {
            let (fs, inner) = locate(path_of(e))?;
            apply(&fs, &inner, e)?;
        }
        if let Some(e) = &info_edit {
            // Only where the image has Mender's configuration directory (a root filesystem).
            if let Ok((fs, inner)) = locate(path_of(e)) {
                let dir = inner.rsplit_once('/').map_or("/", |(d, _)| d).to_string();
                if fs.stat(&dir).map_err(fs_err)? == Some(EntryKind::Dir) {
                    apply(&fs, &inner, e)?;
                }
            }
        }
        Ok(())
    })
}
