//! The `write` command line that rebuilds a dumped artifact: the right kind
//! (`rootfs-image`, `module-image -T TYPE`, `bootstrap-artifact`) and every flag needed to
//! reproduce its headers exactly, or a clear error when `write` cannot express them.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Layout;
use crate::artifact::info::ArtifactInfo;

/// Where the dumped parts are, as the rebuild command will name them.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    /// Folder of payload 0's files.
    pub files: Option<PathBuf>,
    /// Folder of the augment files.
    pub augment_files: Option<PathBuf>,
    /// Payload 0's meta-data file.
    pub meta_data: Option<PathBuf>,
    /// The augment meta-data file.
    pub augment_meta_data: Option<PathBuf>,
    /// Folder of the state scripts.
    pub scripts: Option<PathBuf>,
    /// The `-o` of the command.
    pub output: String,
}

impl Paths {
    /// The paths of a dump made with `layout`, rebuilding into `output`.
    pub fn of(layout: &Layout, output: &str) -> Paths {
        let p = |x: &Option<super::Place>| x.as_ref().map(|x| layout.path(x));
        Paths {
            files: p(&layout.files),
            augment_files: p(&layout.augment_files),
            meta_data: p(&layout.meta_data),
            augment_meta_data: p(&layout.augment_meta_data),
            scripts: p(&layout.scripts),
            output: output.to_string(),
        }
    }
}

/// A rebuild command: its arguments after the program name, and notes on what it does not
/// reproduce.
#[derive(Debug, Clone, Default)]
pub struct Cmdline {
    /// The arguments, starting with `write`.
    pub args: Vec<String>,
    /// What the user should know (signature, other payloads, compression level).
    pub notes: Vec<String>,
}

impl Cmdline {
    fn opt(&mut self, short: &str, long: &str, value: &str) {
        // A value starting with `-` would be taken for a flag after a separate flag word.
        if value.starts_with('-') {
            self.args.push(format!("{long}={value}"));
        } else {
            self.args.push(short.to_string());
            self.args.push(value.to_string());
        }
    }

    fn long(&mut self, long: &str, value: &str) {
        self.opt(long, long, value);
    }

    fn path(&mut self, short: &str, long: &str, p: &Path) -> Result<(), String> {
        let s = p
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8", p.display()))?;
        self.opt(short, long, s);
        Ok(())
    }
}

/// Quotes `s` for a POSIX shell: as is when it holds only safe characters, otherwise in
/// single quotes.
pub fn shell_quote(s: &str) -> String {
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b);
    if !s.is_empty() && s.bytes().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn key_value(what: &str, k: &str, v: &str) -> Result<String, String> {
    if k.is_empty() || k.contains(':') {
        return Err(format!(
            "{what} key {k:?} cannot be given to write as KEY:VALUE"
        ));
    }
    Ok(format!("{k}:{v}"))
}

fn depend_text(what: &str, k: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => key_value(what, k, s),
        _ => Err(format!(
            "{what} {k:?} is a list ({v}); write can only give string depends (-d KEY:VALUE)"
        )),
    }
}

/// Payload 0's file names in data order, split into original and augment files; from the
/// manifests when the data has not been read yet.
fn payload0_files(info: &ArtifactInfo) -> (Vec<String>, Vec<String>) {
    let in_augment = |path: &str| {
        info.augment
            .as_ref()
            .is_some_and(|a| a.manifest.get(path).is_some())
    };
    let mut orig = Vec::new();
    let mut aug = Vec::new();
    let seen = info.payloads.first().map(|p| &p.files[..]).unwrap_or(&[]);
    if seen.is_empty() {
        let listed = info
            .manifest
            .entries()
            .chain(info.augment.iter().flat_map(|a| a.manifest.entries()));
        for (path, _) in listed {
            if let Some(name) = path.strip_prefix("data/0000/") {
                let list = if in_augment(path) {
                    &mut aug
                } else {
                    &mut orig
                };
                list.push(name.to_string());
            }
        }
    }
    for f in seen {
        let list = if in_augment(&format!("data/0000/{}", f.name)) {
            &mut aug
        } else {
            &mut orig
        };
        list.push(f.name.clone());
    }
    (orig, aug)
}

fn need<'a>(p: &'a Option<PathBuf>, what: &str, flag: &str) -> Result<&'a Path, String> {
    p.as_deref().ok_or_else(|| {
        format!("the artifact has {what}, which is not being extracted (give {flag} DIR)")
    })
}

/// The `write` command that rebuilds `info` from a dump at `paths`. Before the data has been
/// read it checks that such a command exists (file names then come from the manifest).
pub fn write_args(info: &ArtifactInfo, paths: &Paths) -> Result<Cmdline, String> {
    let hi = &info.header_info;
    let p0 = info.payloads.first().ok_or("the artifact has no payload")?;
    let ti = &p0.type_info;
    let (files, aug_files) = payload0_files(info);
    let meta = p0.meta_data.as_ref().filter(|m| !m.is_empty());
    let mut c = Cmdline::default();
    c.args.push("write".into());
    let (rootfs, module) = match hi.payload_types.first().cloned().flatten() {
        None => (false, None),
        Some(t) if t == "rootfs-image" || t.is_empty() => (true, None),
        Some(t) => (false, Some(t)),
    };
    if info.version != 3 && !rootfs {
        return Err("format version 2 artifacts hold only rootfs-image payloads".into());
    }
    if rootfs {
        c.args.push("rootfs-image".into());
        if files.len() != 1 || info.augment.is_some() || meta.is_some() {
            return Err(format!(
                "this rootfs-image payload has {} files{}{}; write rootfs-image takes exactly one file, no meta-data and no augment",
                files.len(),
                if meta.is_some() { " and meta-data" } else { "" },
                if info.augment.is_some() { " and an augment section" } else { "" },
            ));
        }
        if info.version == 2 {
            c.opt("-v", "--version", "2");
        }
    } else if let Some(t) = &module {
        c.args.push("module-image".into());
        c.opt("-T", "--type", t);
    } else {
        c.args.push("bootstrap-artifact".into());
        if !files.is_empty() || !aug_files.is_empty() || meta.is_some() {
            return Err("this empty (bootstrap) payload carries files or meta-data, which write bootstrap-artifact cannot add".into());
        }
        if !info.scripts.is_empty() || info.augment.is_some() {
            return Err(
                "write bootstrap-artifact cannot add state scripts or an augment section".into(),
            );
        }
    }
    c.opt("-n", "--artifact-name", &hi.artifact_name);
    c.opt("-o", "--output-path", &paths.output);
    for d in &hi.depends_device_type {
        c.opt("-t", "--device-type", d);
    }
    for n in &hi.depends_artifact_name {
        c.opt("-N", "--artifact-name-depends", n);
    }
    if let Some(g) = &hi.artifact_group {
        c.opt("-g", "--provides-group", g);
    }
    for g in &hi.depends_artifact_group {
        c.opt("-G", "--depends-groups", g);
    }
    let data_comp = info.data_compression.unwrap_or(info.header_compression);
    c.long("--compression", data_comp.name());
    if data_comp != info.header_compression {
        c.notes.push(format!(
            "the header is compressed with {} and the data with {}; the command uses {} for both",
            info.header_compression.name(),
            data_comp.name(),
            data_comp.name()
        ));
    }
    if data_comp.suffix() == ".zst" {
        c.notes.push(format!(
            "the zstd level is not recorded in an artifact; the command uses {}",
            data_comp.name()
        ));
    }
    if !files.is_empty() {
        let dir = need(&paths.files, "payload files", "--files")?;
        for f in &files {
            c.path("-f", "--file", &dir.join(f))?;
        }
    }
    if rootfs {
        // Every provide, the checksum included, is given explicitly below.
        c.args.push("--no-checksum-provide".into());
    }
    if meta.is_some() {
        c.path(
            "-m",
            "--meta-data",
            need(&paths.meta_data, "meta-data", "--meta-data")?,
        )?;
    }
    if !info.scripts.is_empty() {
        let dir = need(&paths.scripts, "state scripts", "--scripts")?;
        let mut sorted: Vec<&str> = info.scripts.iter().map(|s| s.name.as_str()).collect();
        sorted.sort_unstable();
        if sorted.iter().zip(&info.scripts).any(|(a, b)| *a != b.name) {
            c.notes.push(
                "write stores state scripts sorted by name; the original order differs".into(),
            );
        }
        for s in &info.scripts {
            c.path("-s", "--script", &dir.join(&s.name))?;
        }
    }
    for (k, v) in &ti.provides {
        c.opt("-p", "--provides", &key_value("provide", k, v)?);
    }
    for (k, v) in &ti.depends {
        c.opt("-d", "--depends", &depend_text("depend", k, v)?);
    }
    for pattern in ti.clears_provides.iter().flatten() {
        c.long("--clears-provides", pattern);
    }
    if module.is_some() || rootfs {
        c.args.push("--no-default-software-version".into());
        c.args.push("--no-default-clears-provides".into());
    }
    if let Some(a) = &info.augment {
        if module.is_none() {
            return Err("write can add an augment section to module images only".into());
        }
        let ap = a.payloads.first().cloned().unwrap_or_default();
        if a.payloads
            .iter()
            .skip(1)
            .any(|p| p.type_info.kind.is_some() || p.meta_data.is_some())
        {
            return Err(
                "the augment section covers several payloads; write augments payload 0 only".into(),
            );
        }
        let t = a
            .header_info
            .payload_types
            .first()
            .cloned()
            .flatten()
            .or(ap.type_info.kind.clone());
        let t = t.ok_or("the augment section names no payload type")?;
        if ap
            .type_info
            .clears_provides
            .as_ref()
            .is_some_and(|c| !c.is_empty())
        {
            return Err("the augment type-info clears provides, which write cannot express".into());
        }
        c.long("--augment-type", &t);
        if !aug_files.is_empty() {
            let dir = need(&paths.augment_files, "augment files", "--files")?;
            for f in &aug_files {
                c.path("--augment-file", "--augment-file", &dir.join(f))?;
            }
        }
        for (k, v) in &ap.type_info.provides {
            c.long("--augment-provides", &key_value("augment provide", k, v)?);
        }
        for (k, v) in &ap.type_info.depends {
            c.long("--augment-depends", &depend_text("augment depend", k, v)?);
        }
        if ap.meta_data.as_ref().is_some_and(|m| !m.is_empty()) {
            let p = need(&paths.augment_meta_data, "augment meta-data", "--meta-data")?;
            c.path("--augment-meta-data", "--augment-meta-data", p)?;
        }
    }
    if info.signature.is_some() {
        c.notes.push("the original is signed; the signature is not reproduced unless -k PRIVATE-KEY is added to the command".into());
    }
    if info.payloads.len() > 1 {
        c.notes.push(format!(
            "the artifact has {} payloads; the command rebuilds payload 0 only (the others are extracted under payloads/)",
            info.payloads.len()
        ));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("release-1.0"), "release-1.0");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("foo*"), "'foo*'");
    }

    #[test]
    fn keys_with_colons_and_list_depends_are_refused() {
        assert!(key_value("provide", "a:b", "c").is_err());
        assert_eq!(key_value("provide", "a", "b:c").unwrap(), "a:b:c");
        assert!(depend_text("depend", "k", &serde_json::json!(["x"])).is_err());
    }

    #[test]
    fn hyphen_values_use_the_long_form() {
        let mut c = Cmdline::default();
        c.opt("-n", "--artifact-name", "-odd");
        c.opt("-n", "--artifact-name", "plain");
        assert_eq!(c.args, ["--artifact-name=-odd", "-n", "plain"]);
    }
}
