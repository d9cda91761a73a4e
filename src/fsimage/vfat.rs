//! vfat through mtools (`mtype`, `mcopy`, `mmd`, `mdel`, `mdeltree`, `mdir`).

use std::io::Write;
use std::path::Path;

use super::{run, EntryKind, Filesystem, FsError, Result};

const ENV: [(&str, &str); 1] = [("MTOOLS_SKIP_CHECK", "1")];

fn image(fs: &Filesystem) -> String {
    if fs.offset == 0 {
        fs.image.display().to_string()
    } else {
        format!("{}@@{}", fs.image.display(), fs.offset)
    }
}

fn mtool(tool: &str, fs: &Filesystem, args: &[&str]) -> Result<Vec<u8>> {
    let img = image(fs);
    let mut all = vec!["-i", img.as_str()];
    all.extend_from_slice(args);
    let (ok, out, err) = run(tool, &all, &ENV)?;
    if !ok {
        return Err(FsError(format!(
            "{tool}: {}",
            err.trim().replace('\n', "; ")
        )));
    }
    Ok(out)
}

fn dos(path: &str) -> String {
    format!("::{path}")
}

pub(super) fn stat(fs: &Filesystem, path: &str) -> Result<Option<EntryKind>> {
    if path == "/" {
        return Ok(Some(EntryKind::Dir));
    }
    let img = image(fs);
    let target = dos(path);
    // `mdir -a -b DIR/` lists a directory's entries; it fails for files and missing paths.
    let dir_probe = run(
        "mdir",
        &["-i", &img, "-a", "-b", &format!("{target}/")],
        &ENV,
    )?;
    if dir_probe.0 {
        return Ok(Some(EntryKind::Dir));
    }
    let file_probe = run("mdir", &["-i", &img, "-a", "-b", &target], &ENV)?;
    Ok(file_probe.0.then_some(EntryKind::File))
}

pub(super) fn cat(fs: &Filesystem, path: &str, out: &mut dyn Write) -> Result<()> {
    let img = image(fs);
    super::run_streaming("mtype", &["-i", &img, &dos(path)], &ENV, out, |_| false)
}

pub(super) fn put(fs: &Filesystem, src: &Path, path: &str) -> Result<()> {
    let src = src
        .to_str()
        .ok_or_else(|| FsError(format!("{}: path is not UTF-8", src.display())))?;
    mtool("mcopy", fs, &["-o", "-n", src, &dos(path)])?;
    Ok(())
}

pub(super) fn mkdir(fs: &Filesystem, path: &str) -> Result<()> {
    mtool("mmd", fs, &[&dos(path)])?;
    Ok(())
}

pub(super) fn remove(fs: &Filesystem, path: &str, kind: EntryKind) -> Result<()> {
    match kind {
        EntryKind::File => mtool("mdel", fs, &[&dos(path)])?,
        EntryKind::Dir => mtool("mdeltree", fs, &[&dos(path)])?,
    };
    Ok(())
}
