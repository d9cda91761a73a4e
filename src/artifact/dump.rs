//! `dump`: extracts every part of an artifact (payload files with their modes and times,
//! meta-data, state scripts, the augment section) into folders while every checksum is
//! verified, so that `write` can rebuild the artifact from them (see [`cmdline`]).
//!
//! Nothing unverified is left behind: everything is written into a hidden folder inside each
//! output folder and moved into place only once the whole artifact has been read.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::compression::{decoder, Compression};
use super::error::{ArtifactError, Result};
use super::hashing::sha256;
use super::headertar::{CappedReader, MAX_HEADER_UNCOMPRESSED};
use super::info::{ArtifactInfo, PayloadFile};
use super::names;
use super::reader::{read_artifact, ReadOptions, Visitor};

pub mod cmdline;
mod staging;

use staging::{out_err, Staging};

/// Where one part of a dump goes: `rel` (a folder or a file) under `Layout::roots[root]`;
/// an empty `rel` is the root itself.
#[derive(Debug, Clone)]
pub struct Place {
    /// Index into [`Layout::roots`].
    pub root: usize,
    /// Path relative to that root.
    pub rel: PathBuf,
}

/// Where each part of an artifact goes, so that the command-line layouts (one folder, or
/// upstream's separate folders) share one extractor. Parts without a place are verified
/// but not written.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The output folders as the user named them (paths in the command line use them).
    pub roots: Vec<PathBuf>,
    /// Folder for payload 0's files.
    pub files: Option<Place>,
    /// Folder for the augment files (payload 0's files listed in `manifest-augment`).
    pub augment_files: Option<Place>,
    /// File for payload 0's meta-data.
    pub meta_data: Option<Place>,
    /// File for the augment meta-data.
    pub augment_meta_data: Option<Place>,
    /// Folder for the state scripts.
    pub scripts: Option<Place>,
    /// Folder under which payload N >= 1 gets `NNNN/files/` and `NNNN/meta-data.json`.
    pub other_payloads: Option<Place>,
}

impl Layout {
    /// Everything under one folder: `files/`, `meta-data.json`, `scripts/`,
    /// `augment/files/`, `augment/meta-data.json` and `payloads/NNNN/` (names that cannot
    /// collide, since payload file names never hold `/`).
    pub fn in_folder(dir: &Path) -> Layout {
        let at = |rel: &str| {
            Some(Place {
                root: 0,
                rel: rel.into(),
            })
        };
        Layout {
            roots: vec![dir.to_path_buf()],
            files: at("files"),
            augment_files: at("augment/files"),
            meta_data: at("meta-data.json"),
            augment_meta_data: at("augment/meta-data.json"),
            scripts: at("scripts"),
            other_payloads: at("payloads"),
        }
    }

    /// Upstream's `--files DIR`, `--meta-data DIR` (`DIR/0000.meta-data` and
    /// `DIR/0000.meta-data-augment`) and `--scripts DIR`. Augment files go beside the
    /// others (names are unique within a payload); other payloads are not extracted.
    pub fn upstream(files: Option<&Path>, meta: Option<&Path>, scripts: Option<&Path>) -> Layout {
        let mut l = Layout::default();
        let place = |l: &mut Layout, dir: &Path, rel: &str| {
            let root = match l.roots.iter().position(|r| r == dir) {
                Some(i) => i,
                None => {
                    l.roots.push(dir.to_path_buf());
                    l.roots.len() - 1
                }
            };
            Some(Place {
                root,
                rel: rel.into(),
            })
        };
        if let Some(d) = files {
            l.files = place(&mut l, d, "");
            l.augment_files = l.files.clone();
        }
        if let Some(d) = meta {
            l.meta_data = place(&mut l, d, "0000.meta-data");
            l.augment_meta_data = place(&mut l, d, "0000.meta-data-augment");
        }
        if let Some(d) = scripts {
            l.scripts = place(&mut l, d, "");
        }
        l
    }

    /// The final path of a place, as the user will see it.
    pub fn path(&self, p: &Place) -> PathBuf {
        let root = &self.roots[p.root];
        if p.rel.as_os_str().is_empty() {
            root.clone()
        } else {
            root.join(&p.rel)
        }
    }
}

/// What a dump found and wrote.
#[derive(Debug)]
pub struct Dump {
    /// The artifact, fully verified.
    pub info: ArtifactInfo,
    /// Things the user should know (permission bits not restored, times not restored).
    pub warnings: Vec<String>,
}

fn time_of(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// Creates `path` (and its folders) with `data`, then gives it `mtime` and `mode`.
fn write_new(
    path: &Path,
    data: &mut dyn Read,
    what: &str,
    mtime: Option<i64>,
    mode: u32,
) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| out_err(parent, e))?;
    }
    let f = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| out_err(path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ArtifactError::io(format!("reading {what}"), e)),
        };
        w.write_all(&buf[..n]).map_err(|e| out_err(path, e))?;
    }
    let f = w.into_inner().map_err(|e| out_err(path, e.error()))?;
    mtime
        .map_or(Ok(()), |t| f.set_modified(time_of(t)))
        .and_then(|_| f.set_permissions(fs::Permissions::from_mode(mode & 0o777)))
        .map_err(|e| out_err(path, e))
}

/// Meta-data as a file `write -m` takes: Go's encoding, one line.
fn meta_data_text(m: &Map<String, Value>) -> String {
    super::gojson::to_string(&Value::Object(m.clone())) + "\n"
}

/// The visitor that writes each part into the staging folders.
struct Extract<'a> {
    layout: &'a Layout,
    staging: &'a Staging,
    check: &'a dyn Fn(&ArtifactInfo) -> std::result::Result<(), String>,
    warnings: Vec<String>,
}

impl Extract<'_> {
    fn write_meta(&self, place: &Option<Place>, m: &Option<Map<String, Value>>) -> Result<()> {
        let (Some(p), Some(m)) = (place, m) else {
            return Ok(());
        };
        let text = meta_data_text(m);
        write_new(
            &self.staging.staged(p),
            &mut text.as_bytes(),
            "",
            None,
            0o644,
        )
    }
}

impl Visitor for Extract<'_> {
    fn header(&mut self, info: &ArtifactInfo) -> Result<()> {
        (self.check)(info).map_err(ArtifactError::Aborted)?;
        if info.payloads.len() > 1 && self.layout.other_payloads.is_none() {
            return Err(ArtifactError::Aborted(format!(
                "the artifact has {} payloads; only --output-dir extracts more than one",
                info.payloads.len()
            )));
        }
        self.write_meta(
            &self.layout.meta_data,
            &info.payloads.first().and_then(|p| p.meta_data.clone()),
        )?;
        let aug_meta = info.augment.as_ref().and_then(|a| a.payloads.first());
        self.write_meta(
            &self.layout.augment_meta_data,
            &aug_meta.and_then(|p| p.meta_data.clone()),
        )?;
        for (i, p) in info.payloads.iter().enumerate().skip(1) {
            let place = self.layout.other_payloads.as_ref().map(|o| Place {
                root: o.root,
                rel: o.rel.join(format!("{i:04}/meta-data.json")),
            });
            self.write_meta(&place, &p.meta_data)?;
        }
        Ok(())
    }

    fn file(
        &mut self,
        info: &ArtifactInfo,
        payload: usize,
        file: &PayloadFile,
        data: &mut dyn Read,
    ) -> Result<()> {
        let path = names::manifest_data_path(payload, &file.name);
        let augment = info
            .augment
            .as_ref()
            .is_some_and(|a| a.manifest.get(&path).is_some());
        let place = match (payload, augment) {
            (0, false) => self.layout.files.clone(),
            (0, true) => self.layout.augment_files.clone(),
            (i, _) => self.layout.other_payloads.as_ref().map(|o| Place {
                root: o.root,
                rel: o.rel.join(format!("{i:04}/files")),
            }),
        };
        let Some(place) = place else {
            return Ok(());
        };
        if file.mode & 0o7000 != 0 {
            self.warnings.push(format!(
                "{path}: set-id and sticky bits ({:o}) not restored",
                file.mode
            ));
        }
        let target = self.staging.staged(&place).join(&file.name);
        write_new(&target, data, &path, Some(file.mtime), file.mode)
    }
}

/// The modification times of the state scripts in the header, read again from `f` after the
/// reader verified the artifact (the reader does not keep them); the header's checksum is
/// checked again against the verified manifest.
fn script_times(f: &mut File, info: &ArtifactInfo) -> Result<HashMap<String, i64>> {
    let mut times = HashMap::new();
    let ctx = |e| ArtifactError::io("reading the artifact again for script times", e);
    f.seek(SeekFrom::Start(0)).map_err(ctx)?;
    let mut ar = tar::Archive::new(BufReader::new(f));
    for e in ar.entries().map_err(ctx)? {
        let mut e = e.map_err(ctx)?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let Some(ext) = name.strip_prefix("header.tar") else {
            continue;
        };
        let mut data = Vec::new();
        (&mut e)
            .take(64 << 20)
            .read_to_end(&mut data)
            .map_err(ctx)?;
        if info.manifest.get(&name) != Some(&sha256(&data)) {
            return Err(ArtifactError::format(format!(
                "{name} changed while the artifact was being read"
            )));
        }
        let comp = Compression::from_suffix(ext)
            .ok_or_else(|| ArtifactError::format(format!("unknown compression of {name}")))?;
        let capped = CappedReader {
            inner: decoder(comp, &data[..]).map_err(ctx)?,
            left: MAX_HEADER_UNCOMPRESSED,
        };
        let mut inner = tar::Archive::new(capped);
        for h in inner.entries().map_err(ctx)? {
            let h = h.map_err(ctx)?;
            let n = String::from_utf8_lossy(&h.path_bytes()).into_owned();
            if let Some(s) = n.trim_start_matches("./").strip_prefix("scripts/") {
                times.insert(s.to_string(), h.header().mtime().map_or(0, |t| t as i64));
            }
        }
        break;
    }
    Ok(times)
}

/// Reads the artifact in `file` with `opts`, extracting its parts as `layout` says.
/// `check` is called with the headers before anything is written (to refuse an artifact
/// the caller cannot use, such as one whose command line cannot be built). Output folders
/// must be missing or empty unless `force`; with `force`, entries of the same names are
/// replaced. On any error, nothing is left in the output folders.
pub fn dump_artifact(
    file: File,
    opts: &ReadOptions,
    layout: &Layout,
    force: bool,
    check: &dyn Fn(&ArtifactInfo) -> std::result::Result<(), String>,
) -> Result<Dump> {
    let mut staging = Staging::prepare(layout, force)?;
    let mut again = file
        .try_clone()
        .map_err(|e| ArtifactError::io("reading the artifact", e))?;
    let mut ex = Extract {
        layout,
        staging: &staging,
        check,
        warnings: Vec::new(),
    };
    let info = read_artifact(BufReader::with_capacity(1 << 20, file), opts, &mut ex)?;
    let mut warnings = ex.warnings;
    if let (Some(place), false) = (&layout.scripts, info.scripts.is_empty()) {
        // Written now, once their times are known, so that any mode can be given.
        let times = script_times(&mut again, &info).unwrap_or_else(|e| {
            warnings.push(format!("state script times not restored: {e}"));
            HashMap::new()
        });
        let dir = staging.staged(place);
        for s in &info.scripts {
            if s.mode & 0o7000 != 0 {
                warnings.push(format!(
                    "state script {}: set-id and sticky bits ({:o}) not restored",
                    s.name, s.mode
                ));
            }
            let t = times.get(&s.name).copied();
            write_new(&dir.join(&s.name), &mut &s.data[..], &s.name, t, s.mode)?;
        }
    }
    staging.commit(force)?;
    Ok(Dump { info, warnings })
}
