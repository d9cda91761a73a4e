//! ext4 through `debugfs`, which reports most errors only on stderr: every command's stderr
//! is checked, not just its exit status.

use std::io::Write;
use std::path::Path;

use super::{run, EntryKind, Filesystem, FsError, Result};

fn spec(fs: &Filesystem) -> String {
    if fs.offset == 0 {
        fs.image.display().to_string()
    } else {
        format!("{}?offset={}", fs.image.display(), fs.offset)
    }
}

/// Runs one debugfs request; fails on any stderr line but the version banner.
fn debugfs(fs: &Filesystem, write: bool, request: &str) -> Result<Vec<u8>> {
    let image = spec(fs);
    let mut args = vec![];
    if write {
        args.push("-w");
    }
    args.extend(["-R", request, image.as_str()]);
    let (ok, out, err) = run("debugfs", &args, &[])?;
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
        .collect();
    if !ok || !problems.is_empty() {
        return Err(FsError(format!(
            "debugfs {request}: {}",
            problems.join("; ").trim()
        )));
    }
    Ok(out)
}

fn quote(p: &str) -> Result<String> {
    if p.contains('"') || p.contains('\n') {
        return Err(FsError(format!("{p:?}: unsupported character in path")));
    }
    Ok(format!("\"{p}\""))
}

pub(super) fn stat(fs: &Filesystem, path: &str) -> Result<Option<EntryKind>> {
    let image = spec(fs);
    let req = format!("stat {}", quote(path)?);
    let (_, out, err) = run("debugfs", &["-R", &req, &image], &[])?;
    if err.contains("File not found") || err.contains("not found by ext2_lookup") {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out);
    if let Some(line) = text.lines().find(|l| l.contains("Type:")) {
        return Ok(Some(if line.contains("Type: directory") {
            EntryKind::Dir
        } else {
            EntryKind::File
        }));
    }
    Err(FsError(format!(
        "debugfs stat {path}: {}",
        err.lines()
            .filter(|l| !l.starts_with("debugfs "))
            .collect::<Vec<_>>()
            .join("; ")
    )))
}

pub(super) fn cat(fs: &Filesystem, path: &str, out: &mut dyn Write) -> Result<()> {
    let image = spec(fs);
    let req = format!("cat {}", quote(path)?);
    super::run_streaming("debugfs", &["-R", &req, &image], &[], out, |l| {
        l.starts_with("debugfs ")
    })
}

pub(super) fn put(fs: &Filesystem, src: &Path, path: &str, mode: Option<u32>) -> Result<()> {
    let src_s = src
        .to_str()
        .ok_or_else(|| FsError(format!("{}: path is not UTF-8", src.display())))?;
    // An existing file keeps its owner and, unless a mode is given, its permissions.
    let old_mode = if stat(fs, path)? == Some(EntryKind::File) {
        let out = debugfs(fs, false, &format!("stat {}", quote(path)?))?;
        let text = String::from_utf8_lossy(&out).into_owned();
        debugfs(fs, true, &format!("rm {}", quote(path)?))?;
        text.lines()
            .find_map(|l| l.split("Mode:").nth(1))
            .and_then(|m| u32::from_str_radix(m.split_whitespace().next()?, 8).ok())
    } else {
        None
    };
    debugfs(
        fs,
        true,
        &format!("write {} {}", quote(src_s)?, quote(path)?),
    )?;
    let perm = mode.or(old_mode).map(|m| m & 0o7777);
    if let Some(perm) = perm {
        debugfs(
            fs,
            true,
            &format!("sif {} mode 0{:o}", quote(path)?, 0o100000 | perm),
        )?;
    }
    if old_mode.is_none() {
        debugfs(fs, true, &format!("sif {} uid 0", quote(path)?))?;
        debugfs(fs, true, &format!("sif {} gid 0", quote(path)?))?;
    }
    Ok(())
}

pub(super) fn mkdir(fs: &Filesystem, path: &str) -> Result<()> {
    debugfs(fs, true, &format!("mkdir {}", quote(path)?))?;
    Ok(())
}

fn list(fs: &Filesystem, dir: &str) -> Result<Vec<(String, bool)>> {
    let out = debugfs(fs, false, &format!("ls -p {}", quote(dir)?))?;
    let mut v = Vec::new();
    for line in String::from_utf8_lossy(&out).lines() {
        // /inode/mode/uid/gid/name/size/
        let f: Vec<&str> = line.split('/').collect();
        if f.len() < 7 || f[5] == "." || f[5] == ".." || f[5].is_empty() {
            continue;
        }
        let is_dir = u32::from_str_radix(f[2], 8).is_ok_and(|m| m & 0o170000 == 0o040000);
        v.push((f[5].to_string(), is_dir));
    }
    Ok(v)
}

pub(super) fn remove(fs: &Filesystem, path: &str, kind: EntryKind) -> Result<()> {
    match kind {
        EntryKind::File => {
            debugfs(fs, true, &format!("rm {}", quote(path)?))?;
        }
        EntryKind::Dir => {
            for (name, is_dir) in list(fs, path)? {
                let child = format!("{path}/{name}");
                remove(
                    fs,
                    &child,
                    if is_dir {
                        EntryKind::Dir
                    } else {
                        EntryKind::File
                    },
                )?;
            }
            debugfs(fs, true, &format!("rmdir {}", quote(path)?))?;
        }
    }
    Ok(())
}

pub(super) fn check(fs: &Filesystem) -> Result<()> {
    if fs.offset != 0 {
        // e2fsck takes no offset; debugfs checks what it touches.
        return Ok(());
    }
    let image = fs.image.display().to_string();
    let out = std::process::Command::new("e2fsck")
        .args(["-p", "-f", &image])
        .output()
        .map_err(|e| FsError(format!("cannot run e2fsck: {e} (install e2fsprogs)")))?;
    // 0: clean, 1: errors fixed; anything else needs a human.
    match out.status.code() {
        Some(0) | Some(1) => Ok(()),
        _ => Err(FsError(format!(
            "{}: e2fsck found errors it cannot fix safely: {}",
            image,
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap_or("")
        ))),
    }
}
