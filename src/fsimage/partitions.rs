//! Partition tables of disk images (`.sdimg`, `.uefiimg`, `.img`): MBR and GPT, read
//! natively.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::{FsError, Result};

/// One partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1-based number, as in `/dev/sda2`.
    pub number: u32,
    /// Byte offset.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

const SECTOR: u64 = 512;

/// The partitions of `image`, or an empty list when it has no partition table.
pub fn read(image: &Path) -> Result<Vec<Partition>> {
    let mut f = File::open(image).map_err(|e| FsError(format!("{}: {e}", image.display())))?;
    let mut mbr = [0u8; 512];
    if f.read_exact(&mut mbr).is_err() || mbr[510] != 0x55 || mbr[511] != 0xaa {
        return Ok(Vec::new());
    }
    let mut parts = Vec::new();
    for i in 0..4 {
        let e = &mbr[446 + i * 16..446 + (i + 1) * 16];
        let kind = e[4];
        let lba = u64::from(u32::from_le_bytes([e[8], e[9], e[10], e[11]]));
        let count = u64::from(u32::from_le_bytes([e[12], e[13], e[14], e[15]]));
        if kind == 0xee {
            return read_gpt(&mut f, image);
        }
        if kind == 0 || count == 0 {
            continue;
        }
        if e[0] & 0x7f != 0 {
            // Not a partition table: a FAT boot sector also ends in 55 aa.
            return Ok(Vec::new());
        }
        parts.push(Partition {
            number: i as u32 + 1,
            start: lba * SECTOR,
            size: count * SECTOR,
        });
    }
    Ok(parts)
}

fn read_gpt(f: &mut File, image: &Path) -> Result<Vec<Partition>> {
    let err = |e: std::io::Error| FsError(format!("{}: {e}", image.display()));
    let mut hdr = [0u8; 92];
    f.seek(SeekFrom::Start(SECTOR)).map_err(err)?;
    f.read_exact(&mut hdr).map_err(err)?;
    if &hdr[0..8] != b"EFI PART" {
        return Err(FsError(format!(
            "{}: protective MBR without a GPT header",
            image.display()
        )));
    }
    let entries_lba = u64::from_le_bytes(hdr[72..80].try_into().expect("8 bytes"));
    let count = u32::from_le_bytes(hdr[80..84].try_into().expect("4 bytes")).min(1024);
    let size = u32::from_le_bytes(hdr[84..88].try_into().expect("4 bytes"));
    if !(128..=4096).contains(&size) {
        return Err(FsError(format!(
            "{}: invalid GPT entry size {size}",
            image.display()
        )));
    }
    let mut parts = Vec::new();
    let mut entry = vec![0u8; size as usize];
    for i in 0..count {
        f.seek(SeekFrom::Start(
            entries_lba * SECTOR + u64::from(i) * u64::from(size),
        ))
        .map_err(err)?;
        f.read_exact(&mut entry).map_err(err)?;
        if entry[0..16].iter().all(|&b| b == 0) {
            continue;
        }
        let first = u64::from_le_bytes(entry[32..40].try_into().expect("8 bytes"));
        let last = u64::from_le_bytes(entry[40..48].try_into().expect("8 bytes"));
        if last < first {
            continue;
        }
        parts.push(Partition {
            number: i + 1,
            start: first * SECTOR,
            size: (last - first + 1) * SECTOR,
        });
    }
    Ok(parts)
}

/// Which partition of a Mender disk image holds `path`, and the path inside it, following
/// Mender's layout: `/uboot` and `/boot/efi` on the boot partition (1), `/data` on the data
/// partition (4), everything else on root filesystem A (2).
pub fn route(path: &str) -> (u32, String) {
    for (prefix, number) in [("/uboot", 1), ("/boot/efi", 1), ("/data", 4)] {
        if path == prefix || path.starts_with(&format!("{prefix}/")) {
            let rest = &path[prefix.len()..];
            return (
                number,
                if rest.is_empty() {
                    "/".into()
                } else {
                    rest.to_string()
                },
            );
        }
    }
    (2, path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_like_mender() {
        assert_eq!(route("/data/mender/x"), (4, "/mender/x".into()));
        assert_eq!(route("/uboot/uboot.env"), (1, "/uboot.env".into()));
        assert_eq!(route("/boot/efi/EFI/x"), (1, "/EFI/x".into()));
        assert_eq!(
            route("/etc/mender/mender.conf"),
            (2, "/etc/mender/mender.conf".into())
        );
        assert_eq!(route("/database"), (2, "/database".into()));
    }
}
