//! Turns `write` flags into an artifact spec, adding the default provides and
//! clears_artifact_provides exactly as upstream does (software version, rootfs checksum).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::super::exit::CliError;
use super::write::{CommonArgs, ModuleArgs, RootfsArgs, SoftwareArgs};
use crate::artifact::{ArtifactSpec, AugmentSpec, Compression, HeaderInfo, PayloadSpec, TypeInfo};

/// Which `write` subcommand.
pub enum Kind<'a> {
    /// rootfs-image.
    Rootfs(&'a RootfsArgs),
    /// module-image.
    Module(&'a ModuleArgs),
    /// bootstrap-artifact.
    Bootstrap,
}

/// Splits `KEY:VALUE` at the first colon.
pub fn split_key_value(flag: &str, arg: &str) -> Result<(String, String), CliError> {
    match arg.split_once(':') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(CliError::usage(format!(
            "{flag} argument must have the form KEY:VALUE, got {arg:?}"
        ))),
    }
}

fn key_values(flag: &str, args: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut m = BTreeMap::new();
    for a in args {
        let (k, v) = split_key_value(flag, a)?;
        m.insert(k, v);
    }
    Ok(m)
}

/// Reads a meta-data file: its JSON object, `None` when it is `{}`.
pub fn read_meta_data(path: &Path) -> Result<Option<Map<String, Value>>, CliError> {
    let text =
        std::fs::read(path).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    let mut de = serde_json::Deserializer::from_slice(&text).into_iter::<Value>();
    match de.next() {
        Some(Ok(Value::Object(m))) => Ok((!m.is_empty()).then_some(m)),
        Some(Ok(_)) => Err(CliError::usage(format!(
            "{}: meta-data must be a JSON object",
            path.display()
        ))),
        Some(Err(e)) => Err(CliError::usage(format!(
            "{}: invalid JSON: {e}",
            path.display()
        ))),
        None => Err(CliError::usage(format!(
            "{}: empty meta-data file",
            path.display()
        ))),
    }
}

fn flag_matches(arg: &str, long: &str, short: Option<&str>) -> bool {
    arg == long || arg.starts_with(&format!("{long}=")) || short.is_some_and(|s| arg.starts_with(s))
}

/// Upstream's precedence between `-p KEY:...` and the software-version flags: the explicit
/// provide wins unless a software flag comes after the last `-p KEY:` on the command line.
fn software_flag_overrides(argv: &[String], key: &str) -> bool {
    let mut last_p = None;
    let mut last_sw = None;
    for (i, a) in argv.iter().enumerate() {
        let value_of_p = if a == "-p" || a == "--provides" {
            argv.get(i + 1).map(String::as_str)
        } else if let Some(v) = a.strip_prefix("--provides=") {
            Some(v)
        } else {
            a.strip_prefix("-p")
                .filter(|v| !v.is_empty() && !a.starts_with("--"))
        };
        if value_of_p.is_some_and(|v| v.starts_with(&format!("{key}:"))) {
            last_p = Some(i);
        }
        if [
            "--software-name",
            "--software-version",
            "--software-filesystem",
        ]
        .iter()
        .any(|f| flag_matches(a, f, None))
        {
            last_sw = Some(i);
        }
    }
    match (last_p, last_sw) {
        (Some(p), Some(s)) => s > p,
        (Some(_), None) => false,
        _ => true,
    }
}

/// Adds the software-version provide and default clears (upstream `write` rules).
fn apply_software_defaults(
    ti: &mut TypeInfo,
    sw: &SoftwareArgs,
    artifact_name: &str,
    default_name: Option<&str>,
    rootfs: bool,
    argv: &[String],
) {
    let fs = sw.software_filesystem.as_deref().unwrap_or("rootfs-image");
    let name = sw.software_name.as_deref().or(default_name);
    let prefix = match name {
        Some(n) => format!("{fs}.{n}"),
        None => fs.to_string(),
    };
    if !sw.no_default_software_version {
        let key = format!("{prefix}.version");
        let value = sw.software_version.as_deref().unwrap_or(artifact_name);
        if !ti.provides.contains_key(&key) || software_flag_overrides(argv, &key) {
            ti.provides.insert(key, value.to_string());
        }
    }
    if sw.no_default_clears_provides || sw.no_default_software_version {
        return;
    }
    let clears = ti.clears_provides.get_or_insert_with(Vec::new);
    let pattern = format!("{prefix}.*");
    let explicit = clears.contains(&pattern);
    if rootfs && sw.software_name.is_none() && fs == "rootfs-image" {
        clears.push("artifact_group".into());
        clears.push("rootfs_image_checksum".into());
    }
    if !explicit {
        clears.push(pattern);
    }
}

/// Builds the spec for a `write` subcommand.
pub fn build_spec(
    common: &CommonArgs,
    kind: &Kind,
    compression: Compression,
    argv: &[String],
) -> Result<ArtifactSpec, CliError> {
    let payload_type = match kind {
        Kind::Rootfs(_) => Some("rootfs-image".to_string()),
        Kind::Module(m) => Some(m.payload_type.clone()),
        Kind::Bootstrap => None,
    };
    if let Kind::Module(_) | Kind::Bootstrap = kind {
        if common.format_version != 3 {
            return Err(CliError::usage(
                "module images and bootstrap artifacts need artifact format version 3",
            ));
        }
    }
    let header_info = HeaderInfo {
        payload_types: vec![payload_type.clone()],
        artifact_name: common.artifact_name.clone(),
        artifact_group: common.provides_group.clone(),
        depends_artifact_name: common.artifact_name_depends.clone(),
        depends_device_type: common.device_type.clone(),
        depends_artifact_group: common.depends_groups.clone(),
    };
    let mut ti = TypeInfo {
        kind: payload_type.clone(),
        provides: key_values("--provides", &common.provides)?,
        depends: key_values("--depends", &common.depends)?
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
        clears_provides: (!common.clears_provides.is_empty())
            .then(|| common.clears_provides.clone()),
    };
    let mut payload = PayloadSpec::default();
    let mut scripts: Vec<PathBuf> = Vec::new();
    let mut augment = None;
    match kind {
        Kind::Rootfs(r) => {
            if r.file.to_string_lossy().starts_with("ssh://") {
                return Err(CliError::usage(
                    "ssh:// snapshots are not supported; make the image file on the device and pass its path",
                ));
            }
            payload.files = vec![r.file.clone()];
            payload.empty_meta_data = true;
            if !r.no_checksum_provide {
                payload.checksum_provide = Some(if r.legacy_rootfs_image_checksum {
                    "rootfs_image_checksum".into()
                } else {
                    "rootfs-image.checksum".into()
                });
            }
            apply_software_defaults(
                &mut ti,
                &r.software,
                &common.artifact_name,
                None,
                true,
                argv,
            );
            scripts = r.software.script.clone();
        }
        Kind::Module(m) => {
            payload.files = m.file.clone();
            payload.meta_data = m
                .meta_data
                .as_deref()
                .map(read_meta_data)
                .transpose()?
                .flatten();
            apply_software_defaults(
                &mut ti,
                &m.software,
                &common.artifact_name,
                Some(&m.payload_type),
                false,
                argv,
            );
            scripts = m.software.script.clone();
            augment = module_augment(m, &header_info)?;
        }
        Kind::Bootstrap => {}
    }
    if ti.clears_provides.as_ref().is_some_and(Vec::is_empty) {
        ti.clears_provides = None;
    }
    payload.type_info = ti;
    Ok(ArtifactSpec {
        version: common.format_version,
        header_info,
        payloads: vec![payload],
        scripts,
        augment,
        compression,
    })
}

fn module_augment(m: &ModuleArgs, hi: &HeaderInfo) -> Result<Option<AugmentSpec>, CliError> {
    let any = !m.augment_file.is_empty()
        || !m.augment_provides.is_empty()
        || !m.augment_depends.is_empty()
        || m.augment_meta_data.is_some();
    let Some(t) = &m.augment_type else {
        if any {
            return Err(CliError::usage(
                "--augment-type is needed to make an augmented artifact",
            ));
        }
        return Ok(None);
    };
    let ti = TypeInfo {
        kind: Some(t.clone()),
        provides: key_values("--augment-provides", &m.augment_provides)?,
        depends: key_values("--augment-depends", &m.augment_depends)?
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
        clears_provides: None,
    };
    Ok(Some(AugmentSpec {
        header_info: HeaderInfo {
            payload_types: vec![Some(t.clone())],
            ..hi.clone()
        },
        type_info: ti,
        meta_data: m
            .augment_meta_data
            .as_deref()
            .map(read_meta_data)
            .transpose()?
            .flatten(),
        files: m.augment_file.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn later_software_flag_wins() {
        let key = "rootfs-image.version";
        assert!(software_flag_overrides(
            &argv("w -p rootfs-image.version:x --software-version y"),
            key
        ));
        assert!(!software_flag_overrides(
            &argv("w --software-version y -p rootfs-image.version:x"),
            key
        ));
        assert!(!software_flag_overrides(
            &argv("w --provides=rootfs-image.version:x"),
            key
        ));
    }

    #[test]
    fn key_value_split_at_first_colon() {
        assert_eq!(
            split_key_value("-p", "a:b:c").unwrap(),
            ("a".into(), "b:c".into())
        );
        assert!(split_key_value("-p", "nocolon").is_err());
    }
}
