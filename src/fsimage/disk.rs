//! Builds a flashable whole-disk image in Mender's layout (see [`layout`](super::layout)):
//! the partition table, the boot partition (vfat, made from a folder or copied from an
//! image), root filesystem A (and optionally B) copied from filesystem images, the data
//! partition (ext4) and U-Boot's environment. Filesystems are made in place inside the image
//! file (`mkfs.vfat --offset`, `mkfs.ext4 -E offset=`), images are copied without their runs
//! of zeros, so the result is a sparse file and nothing is staged elsewhere. The image is
//! written to a temporary file beside the output and renamed into place only when complete.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use gptman::{GPTPartitionEntry, GPT};
use ring::rand::{SecureRandom, SystemRandom};

use super::layout::{Layout, Part, Role, Table, SECTOR};
use super::{run, ubootenv, Filesystem, FsError, Result};

/// What goes into the boot or data partition.
#[derive(Debug, Clone)]
pub enum Content {
    /// A new filesystem holding this folder's files.
    Dir(PathBuf),
    /// This filesystem image, copied as it is.
    Image(PathBuf),
    /// A new, empty filesystem.
    Empty,
}

impl Content {
    /// A folder becomes a new filesystem, anything else is an image to copy.
    pub fn from_path(path: &Path) -> Content {
        if path.is_dir() {
            Content::Dir(path.to_path_buf())
        } else {
            Content::Image(path.to_path_buf())
        }
    }
}

/// Everything that goes on the disk.
#[derive(Debug, Clone)]
pub struct DiskSpec {
    /// Where each partition lies.
    pub layout: Layout,
    /// Boot partition (vfat when made here).
    pub boot: Content,
    /// Root filesystem image for partition A.
    pub rootfs_a: PathBuf,
    /// Root filesystem image for partition B; empty (zeros) when `None`, as Yocto builds it.
    pub rootfs_b: Option<PathBuf>,
    /// Data partition (ext4 when made here).
    pub data: Content,
    /// Written as `mender/device_type` on the data partition (`/data/mender/device_type`).
    pub device_type: Option<String>,
    /// A first U-Boot environment for both copies; `None` leaves the area zeroed, for a
    /// Mender-patched U-Boot to save its built-in environment on the first boot.
    pub uboot_env: Option<BTreeMap<String, String>>,
}

/// Sizes of inputs, checked against their partitions before anything is written.
fn input_size(path: &Path) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| FsError(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(FsError(format!(
            "{}: not a regular file (a filesystem image is expected)",
            path.display()
        )));
    }
    Ok(meta.len())
}

fn check_fits(path: &Path, part: Part) -> Result<()> {
    let size = input_size(path)?;
    if size > part.size {
        return Err(FsError(format!(
            "{}: {size} bytes do not fit the {} partition ({} bytes); give it a larger size",
            path.display(),
            part.role.name(),
            part.size
        )));
    }
    Ok(())
}

/// Builds the disk image `output` from `spec`.
pub fn build(spec: &DiskSpec, output: &Path) -> Result<()> {
    let l = &spec.layout;
    check_fits(&spec.rootfs_a, l.part(Role::RootfsA))?;
    if let Some(b) = &spec.rootfs_b {
        check_fits(b, l.part(Role::RootfsB))?;
    }
    for (content, role) in [(&spec.boot, Role::Boot), (&spec.data, Role::Data)] {
        match content {
            Content::Image(p) => check_fits(p, l.part(role))?,
            Content::Dir(d) if !d.is_dir() => {
                return Err(FsError(format!("{}: not a directory", d.display())))
            }
            _ => {}
        }
    }
    let out_err = |e: std::io::Error| FsError(format!("{}: {e}", output.display()));
    // A device node (or anything else but a file) is not replaced by a file of that name.
    match std::fs::metadata(output) {
        Ok(m) if !m.is_file() => {
            return Err(FsError(format!(
                "{}: exists and is not a regular file; write the image to a file, then copy it \
                 to the device (dd, bmaptool)",
                output.display()
            )))
        }
        _ => {}
    }
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = output
        .file_name()
        .ok_or_else(|| FsError(format!("{}: not a file name", output.display())))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .tempfile_in(dir)
        .map_err(out_err)?;
    let file = tmp.as_file();
    file.set_len(l.total).map_err(out_err)?;
    let path = tmp.path();

    write_table(file, l)
        .map_err(|e| FsError(format!("{}: partition table: {e}", output.display())))?;
    copy_sparse(&spec.rootfs_a, file, l.part(Role::RootfsA).start, output)?;
    if let Some(b) = &spec.rootfs_b {
        copy_sparse(b, file, l.part(Role::RootfsB).start, output)?;
    }
    fill(&spec.boot, Role::Boot, file, path, l, output)?;
    fill(&spec.data, Role::Data, file, path, l, output)?;
    if let Some(kind) = &spec.device_type {
        put_device_type(path, l.part(Role::Data).start, kind, dir)?;
    }
    if let (Some(vars), Some((offsets, size))) = (&spec.uboot_env, l.uboot_env) {
        for (i, offset) in offsets.iter().enumerate() {
            // The first copy carries the higher flag, so both tools read it as the current one.
            let copy = ubootenv::image(vars, size as usize, Some(1 - i as u8))?;
            file.write_all_at(&copy, *offset).map_err(out_err)?;
        }
    }
    // The mode a plain create would give, not the temp file's 0600.
    file.set_permissions(std::fs::Permissions::from_mode(
        0o666 & !crate::artifact::writer::umask(),
    ))
    .map_err(out_err)?;
    file.sync_all().map_err(out_err)?;
    tmp.persist(output).map_err(|e| out_err(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(out_err)?;
    Ok(())
}

/// Copies `src` to `offset` of `dst`, leaving runs of zeros as holes.
fn copy_sparse(src: &Path, dst: &File, offset: u64, output: &Path) -> Result<()> {
    const CHUNK: usize = 1 << 20;
    let f = File::open(src).map_err(|e| FsError(format!("{}: {e}", src.display())))?;
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    loop {
        let mut n = 0;
        while n < CHUNK {
            match f.read_at(&mut buf[n..], at + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FsError(format!("{}: {e}", src.display()))),
            }
        }
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|&b| b != 0) {
            dst.write_all_at(&buf[..n], offset + at)
                .map_err(|e| FsError(format!("{}: {e}", output.display())))?;
        }
        at += n as u64;
    }
}

/// Makes or copies the filesystem of the boot or data partition.
fn fill(
    content: &Content,
    role: Role,
    file: &File,
    path: &Path,
    l: &Layout,
    output: &Path,
) -> Result<()> {
    let part = l.part(role);
    let dir = match content {
        Content::Image(src) => return copy_sparse(src, file, part.start, output),
        Content::Dir(d) => Some(d.as_path()),
        Content::Empty => None,
    };
    match role {
        Role::Boot => make_vfat(path, part, dir),
        _ => make_ext4(path, part, dir),
    }
}

fn tool_error(tool: &str, err: &str) -> FsError {
    FsError(format!(
        "{tool}: {}",
        err.trim().lines().collect::<Vec<_>>().join("; ")
    ))
}

/// A FAT filesystem labelled `boot` (as meta-mender's), with `dir`'s files copied in by mtools.
fn make_vfat(image: &Path, part: Part, dir: Option<&Path>) -> Result<()> {
    let img = image.to_string_lossy();
    let offset = format!("--offset={}", part.start / SECTOR);
    let blocks = (part.size / 1024).to_string();
    let (ok, _, err) = run("mkfs.vfat", &[&offset, "-n", "BOOT", &img, &blocks], &[])
        .map_err(|e| FsError(format!("{} (install dosfstools)", e.0)))?;
    if !ok {
        return Err(tool_error("mkfs.vfat", &err));
    }
    let Some(dir) = dir else { return Ok(()) };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .and_then(|rd| rd.map(|e| e.map(|e| e.path())).collect())
        .map_err(|e| FsError(format!("{}: {e}", dir.display())))?;
    if entries.is_empty() {
        return Ok(());
    }
    entries.sort();
    let target = format!("{img}@@{}", part.start);
    let mut args: Vec<String> = vec!["-i".into(), target, "-s".into(), "-m".into(), "-Q".into()];
    args.extend(entries.iter().map(|p| p.to_string_lossy().into_owned()));
    args.push("::/".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, _, err) = run("mcopy", &args, &[("MTOOLS_SKIP_CHECK", "1")])?;
    if !ok || !err.trim().is_empty() {
        return Err(tool_error("mcopy", &err));
    }
    Ok(())
}

/// An ext4 filesystem labelled `data` (as meta-mender's), holding `dir`'s files.
fn make_ext4(image: &Path, part: Part, dir: Option<&Path>) -> Result<()> {
    let img = image.to_string_lossy();
    let ext = format!("offset={},nodiscard", part.start);
    let size = format!("{}k", part.size / 1024);
    let dir_s = dir.map(|d| d.to_string_lossy().into_owned());
    let mut args = vec!["-q", "-F", "-t", "ext4", "-L", "data", "-E", &ext];
    if let Some(d) = &dir_s {
        args.extend(["-d", d.as_str()]);
    }
    args.extend([img.as_ref(), size.as_str()]);
    let (ok, _, err) = run("mke2fs", &args, &[])?;
    if !ok {
        return Err(tool_error("mke2fs", &err));
    }
    Ok(())
}

/// Writes `mender/device_type` into the data filesystem, where the client reads it.
fn put_device_type(image: &Path, offset: u64, kind: &str, tmpdir: &Path) -> Result<()> {
    if kind.is_empty() || kind.contains(['\n', '\0']) {
        return Err(FsError(format!("{kind:?}: not a device type")));
    }
    let fs = Filesystem::open(image, offset)?;
    fs.mkdir("/mender")?;
    let mut src = tempfile::NamedTempFile::new_in(tmpdir)
        .map_err(|e| FsError(format!("{}: {e}", tmpdir.display())))?;
    writeln!(src, "device_type={kind}").map_err(|e| FsError(format!("{e}")))?;
    fs.put(src.path(), "/mender/device_type", Some(0o644))
}

fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| std::io::Error::other("no randomness for disk identifiers"))?;
    Ok(b)
}

/// A random (version 4) GUID in the on-disk byte order.
fn random_guid() -> std::io::Result<[u8; 16]> {
    let mut g = random_bytes::<16>()?;
    g[7] = (g[7] & 0x0f) | 0x40;
    g[8] = (g[8] & 0x3f) | 0x80;
    Ok(g)
}

/// A GUID written as text (`C12A7328-F81F-11D2-BA4B-00A0C93EC93B`) in GPT's byte order: the
/// first three fields little-endian, the rest as written.
pub fn guid_bytes(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("a GUID constant");
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

/// EFI system partition.
pub const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// Linux filesystem data.
pub const LINUX_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

fn write_table(file: &File, l: &Layout) -> std::io::Result<()> {
    let mut f = file;
    match l.table {
        Table::Mbr => {
            // Written by hand: sixteen bytes a partition (the maintained crate for this,
            // mbrman, depends on the unmaintained bincode, RUSTSEC-2025-0141).
            let mut mbr = [0u8; 512];
            mbr[440..444].copy_from_slice(&random_bytes::<4>()?);
            for p in &l.parts {
                let e = &mut mbr[446 + 16 * (p.role.number() as usize - 1)..][..16];
                let (active, kind) = match p.role {
                    Role::Boot => (0x80, 0x0c),
                    _ => (0, 0x83),
                };
                e[0] = active;
                // CHS fields say "use LBA", as for any partition past the CHS limit.
                e[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
                e[4] = kind;
                e[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
                e[8..12].copy_from_slice(&((p.start / SECTOR) as u32).to_le_bytes());
                e[12..16].copy_from_slice(&((p.size / SECTOR) as u32).to_le_bytes());
            }
            mbr[510] = 0x55;
            mbr[511] = 0xaa;
            file.write_all_at(&mbr, 0)
        }
        Table::Gpt => {
            let err = |e: gptman::Error| std::io::Error::other(e.to_string());
            let mut gpt = GPT::new_from(&mut f, SECTOR, random_guid()?).map_err(err)?;
            for p in &l.parts {
                let (kind, attributes) = match p.role {
                    // Bit 2, "legacy BIOS bootable", as wic sets on Mender's ESP.
                    Role::Boot => (ESP_TYPE, 1 << 2),
                    _ => (LINUX_TYPE, 0),
                };
                gpt[p.role.number()] = GPTPartitionEntry {
                    partition_type_guid: guid_bytes(kind),
                    unique_partition_guid: random_guid()?,
                    starting_lba: p.start / SECTOR,
                    ending_lba: (p.start + p.size) / SECTOR - 1,
                    attribute_bits: attributes,
                    partition_name: p.role.name().into(),
                };
            }
            gpt.write_into(&mut f).map_err(err)?;
            GPT::write_protective_mbr_into(&mut f, SECTOR).map_err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_in_disk_order() {
        assert_eq!(
            guid_bytes(ESP_TYPE),
            [
                0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
                0xc9, 0x3b
            ]
        );
        let g = random_guid().unwrap();
        assert_eq!(g[7] >> 4, 4);
        assert_eq!(g[8] >> 6, 2);
    }
}
