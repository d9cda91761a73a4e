//! Mender's partition layout for a whole-disk image, as meta-mender builds `.sdimg` (MBR) and
//! `.uefiimg` (GPT): an alignment gap, U-Boot's two environment copies when asked, then boot,
//! root filesystem A, root filesystem B and data, each aligned. Pure arithmetic, no I/O.

use super::{FsError, Result};

/// One sector; partition tables count in these.
pub const SECTOR: u64 = 512;
/// meta-mender's `MENDER_PARTITION_ALIGNMENT` (the default flash erase block).
pub const DEFAULT_ALIGNMENT: u64 = 8 << 20;
/// meta-mender's `MENDER_BOOT_PART_SIZE_MB`.
pub const DEFAULT_BOOT_SIZE: u64 = 16 << 20;
/// meta-mender's `MENDER_DATA_PART_SIZE_MB`.
pub const DEFAULT_DATA_SIZE: u64 = 128 << 20;
/// meta-mender's `BOOTENV_SIZE`.
pub const DEFAULT_UBOOT_ENV_SIZE: u64 = 0x20000;

/// The partition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// MBR with a FAT boot partition (type 0x0c, active): Mender's `.sdimg`.
    Mbr,
    /// GPT with an EFI system partition: Mender's `.uefiimg`.
    Gpt,
}

/// What a partition is for; the numbers are Mender's (boot 1, A 2, B 3, data 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Boot partition (vfat): U-Boot files, or the EFI system partition.
    Boot,
    /// Root filesystem A, active on the first boot.
    RootfsA,
    /// Root filesystem B, the first update's target.
    RootfsB,
    /// Persistent data (`/data`).
    Data,
}

impl Role {
    /// The four roles in partition order.
    pub const ALL: [Role; 4] = [Role::Boot, Role::RootfsA, Role::RootfsB, Role::Data];

    /// The partition number (`/dev/mmcblk0pN`).
    pub fn number(self) -> u32 {
        match self {
            Role::Boot => 1,
            Role::RootfsA => 2,
            Role::RootfsB => 3,
            Role::Data => 4,
        }
    }

    /// A short name for listings and GPT partition names.
    pub fn name(self) -> &'static str {
        match self {
            Role::Boot => "boot",
            Role::RootfsA => "rootfs-a",
            Role::RootfsB => "rootfs-b",
            Role::Data => "data",
        }
    }
}

/// The sizes asked for; [`Layout::plan`] aligns them.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Partition alignment (and the gap before the first partition).
    pub alignment: u64,
    /// Boot partition.
    pub boot: u64,
    /// Each root filesystem partition.
    pub rootfs: u64,
    /// Data partition.
    pub data: u64,
    /// Size of one U-Boot environment copy, when the disk carries U-Boot's environment.
    pub uboot_env: Option<u64>,
}

/// One planned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// What it holds.
    pub role: Role,
    /// Byte offset on the disk.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

/// A planned disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Partition table kind.
    pub table: Table,
    /// Alignment used.
    pub alignment: u64,
    /// Byte offsets of the two U-Boot environment copies, and the size of each.
    pub uboot_env: Option<([u64; 2], u64)>,
    /// Boot, rootfs A, rootfs B, data.
    pub parts: [Part; 4],
    /// Length of the image file.
    pub total: u64,
}

/// The smallest alignment taken: room for a GPT (34 sectors) before the first partition and
/// after the last.
pub const MIN_ALIGNMENT: u64 = 64 << 10;

fn too_large() -> FsError {
    FsError("the sizes add up to more than a disk can hold".into())
}

fn round_up(v: u64, to: u64) -> Result<u64> {
    v.div_ceil(to).checked_mul(to).ok_or_else(too_large)
}

fn add(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b).ok_or_else(too_large)
}

fn check_alignment(a: u64) -> Result<()> {
    if a < MIN_ALIGNMENT || a % SECTOR != 0 {
        return Err(FsError(format!(
            "alignment {a} must be a multiple of {SECTOR} bytes and at least {MIN_ALIGNMENT}"
        )));
    }
    Ok(())
}

/// The largest U-Boot environment copy taken (boards use 16 to 256 KiB).
pub const MAX_UBOOT_ENV_SIZE: u64 = 16 << 20;

fn check_env_size(env: u64) -> Result<()> {
    if env < 1024 || env % SECTOR != 0 || env > MAX_UBOOT_ENV_SIZE {
        return Err(FsError(format!(
            "U-Boot environment size {env} must be a multiple of {SECTOR} bytes from 1 KiB to \
             16 MiB"
        )));
    }
    Ok(())
}

impl Layout {
    /// Lays the partitions out as meta-mender does: the first `alignment` bytes hold the
    /// partition table (and a boot loader, on boards that need one there); U-Boot's
    /// environment copies follow, each in its own aligned block (`0x800000` and `0x1000000`
    /// with the defaults, as meta-mender's `fw_env.config`); then the partitions, each
    /// rounded up to the alignment. A GPT disk ends with one more aligned block, where the
    /// backup table lives.
    pub fn plan(table: Table, sizes: Sizes) -> Result<Layout> {
        let a = sizes.alignment;
        check_alignment(a)?;
        for (what, size) in [
            ("boot partition", sizes.boot),
            ("root filesystem partition", sizes.rootfs),
            ("data partition", sizes.data),
        ] {
            if size == 0 {
                return Err(FsError(format!("the {what} size must not be 0")));
            }
        }
        let mut offset = a;
        let uboot_env = match sizes.uboot_env {
            Some(env) => {
                check_env_size(env)?;
                let slot = round_up(env, a)?;
                let copies = [offset, add(offset, slot)?];
                offset = add(copies[1], slot)?;
                Some((copies, env))
            }
            None => None,
        };
        let wanted = |role| match role {
            Role::Boot => sizes.boot,
            Role::RootfsA | Role::RootfsB => sizes.rootfs,
            Role::Data => sizes.data,
        };
        let mut parts = Vec::with_capacity(4);
        for role in Role::ALL {
            let size = round_up(wanted(role), a)?;
            parts.push(Part {
                role,
                start: offset,
                size,
            });
            offset = add(offset, size)?;
        }
        let parts: [Part; 4] = parts.try_into().expect("four roles");
        let total = match table {
            Table::Mbr => offset,
            Table::Gpt => add(offset, a)?,
        };
        if table == Table::Mbr && total / SECTOR > u64::from(u32::MAX) {
            return Err(FsError(format!(
                "an MBR disk cannot address {total} bytes (2 TiB at most); use GPT (uefiimg)"
            )));
        }
        Ok(Layout {
            table,
            alignment: a,
            uboot_env,
            parts,
            total,
        })
    }

    /// The root filesystem partition size that fills a disk of `storage` bytes, as
    /// meta-mender's `MENDER_STORAGE_TOTAL_SIZE_MB` does: what is left after the alignment
    /// gap, the environment, boot, data and one aligned block at the end, halved and rounded
    /// down to the alignment.
    pub fn rootfs_size_for(storage: u64, sizes: Sizes) -> Result<u64> {
        let a = sizes.alignment;
        check_alignment(a)?;
        let env = match sizes.uboot_env {
            Some(e) => {
                check_env_size(e)?;
                round_up(e, a)?.checked_mul(2).ok_or_else(too_large)?
            }
            None => 0,
        };
        let fixed = add(
            add(a.checked_mul(2).ok_or_else(too_large)?, env)?,
            add(round_up(sizes.boot, a)?, round_up(sizes.data, a)?)?,
        )?;
        let each = storage.saturating_sub(fixed) / 2 / a * a;
        if each == 0 {
            return Err(FsError(format!(
                "a {storage}-byte disk leaves no room for the root filesystems \
                 ({fixed} bytes go to alignment, boot loader environment, boot and data)"
            )));
        }
        Ok(each)
    }

    /// The partition with `role`.
    pub fn part(&self, role: Role) -> Part {
        self.parts[role.number() as usize - 1]
    }
}

/// Parses a size: bytes, or with a suffix K, M, G or T (powers of 1024, an optional `iB` or
/// `B` after it), or hexadecimal with `0x`.
pub fn parse_size(text: &str) -> Result<u64> {
    let bad = || FsError(format!("{text:?}: not a size (e.g. 16M, 1G, 0x20000)"));
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|_| bad());
    }
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let num: u64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_end_matches("iB").trim_end_matches('B');
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad()),
    };
    num.checked_mul(1 << shift).ok_or_else(bad)
}

/// The Linux name of partition `n` of `device`, as meta-mender forms it: `/dev/sda2`, but
/// `/dev/mmcblk0p2`, `/dev/nvme0n1p2` (a `p` when the device name ends in a digit).
pub fn partition_device(device: &str, n: u32) -> String {
    if device.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{device}p{n}")
    } else {
        format!("{device}{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn defaults(rootfs: u64, env: bool) -> Sizes {
        Sizes {
            alignment: DEFAULT_ALIGNMENT,
            boot: DEFAULT_BOOT_SIZE,
            rootfs,
            data: DEFAULT_DATA_SIZE,
            uboot_env: env.then_some(DEFAULT_UBOOT_ENV_SIZE),
        }
    }

    #[test]
    fn meta_mender_uboot_sdimg() {
        // meta-mender's defaults with mender-uboot: 1024 MiB storage, env at 8 and 16 MiB,
        // boot 24-40 MiB, rootfs 424 MiB each, data 888-1016 MiB.
        let sizes = defaults(0, true);
        let rootfs = Layout::rootfs_size_for(1024 * MIB, sizes).unwrap();
        assert_eq!(rootfs, 424 * MIB);
        let l = Layout::plan(Table::Mbr, Sizes { rootfs, ..sizes }).unwrap();
        assert_eq!(l.uboot_env, Some(([0x800000, 0x1000000], 0x20000)));
        let starts: Vec<u64> = l.parts.iter().map(|p| p.start / MIB).collect();
        assert_eq!(starts, [24, 40, 464, 888]);
        assert_eq!(l.part(Role::Data).size, 128 * MIB);
        assert_eq!(l.total, 1016 * MIB);
    }

    #[test]
    fn meta_mender_uefiimg() {
        // Without U-Boot: boot at 8 MiB, rootfs 432 MiB each, padded to 1024 MiB.
        let sizes = defaults(0, false);
        let rootfs = Layout::rootfs_size_for(1024 * MIB, sizes).unwrap();
        assert_eq!(rootfs, 432 * MIB);
        let l = Layout::plan(Table::Gpt, Sizes { rootfs, ..sizes }).unwrap();
        assert_eq!(l.part(Role::Boot).start, 8 * MIB);
        assert_eq!(l.part(Role::RootfsB).start, (8 + 16 + 432) * MIB);
        assert_eq!(l.total, 1024 * MIB);
        assert_eq!(l.uboot_env, None);
    }

    #[test]
    fn sizes_round_up_to_the_alignment() {
        let l = Layout::plan(Table::Mbr, defaults(30 * MIB + 1, false)).unwrap();
        assert_eq!(l.part(Role::RootfsA).size, 32 * MIB);
        let small_env = Sizes {
            alignment: 4 * MIB,
            uboot_env: Some(0x4000),
            ..defaults(64 * MIB, true)
        };
        // mender-convert's Raspberry Pi layout: env at 4 and 8 MiB, boot at 12 MiB.
        let l = Layout::plan(Table::Mbr, small_env).unwrap();
        assert_eq!(l.uboot_env, Some(([4 * MIB, 8 * MIB], 0x4000)));
        assert_eq!(l.part(Role::Boot).start, 12 * MIB);
    }

    #[test]
    fn refuses_what_cannot_be_laid_out() {
        assert!(Layout::rootfs_size_for(100 * MIB, defaults(0, true)).is_err());
        for alignment in [1000, 4096, (1 << 20) + 1] {
            let odd = Sizes {
                alignment,
                ..defaults(MIB, false)
            };
            assert!(Layout::plan(Table::Mbr, odd).is_err(), "{alignment}");
        }
        // Sizes that overflow are refused, not wrapped.
        assert!(Layout::plan(Table::Gpt, defaults(1 << 63, false)).is_err());
        assert!(Layout::plan(Table::Gpt, defaults(u64::MAX - 100, false)).is_err());
        let huge_env = Sizes {
            uboot_env: Some(1 << 40),
            ..defaults(MIB, true)
        };
        assert!(Layout::plan(Table::Mbr, huge_env).is_err());
        assert!(Layout::rootfs_size_for(u64::MAX, huge_env).is_err());
        assert!(Layout::plan(Table::Mbr, defaults(0, false)).is_err());
        assert!(Layout::plan(Table::Mbr, defaults(4 << 40, false)).is_err());
        assert!(Layout::plan(Table::Gpt, defaults(4 << 40, false)).is_ok());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("16M").unwrap(), 16 * MIB);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("0x20000").unwrap(), 0x20000);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("8k").unwrap(), 8192);
        for bad in ["", "M", "1.5G", "12Q", "-1", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn partition_names() {
        assert_eq!(partition_device("/dev/mmcblk0", 2), "/dev/mmcblk0p2");
        assert_eq!(partition_device("/dev/sda", 3), "/dev/sda3");
        assert_eq!(partition_device("/dev/vda", 4), "/dev/vda4");
        assert_eq!(partition_device("/dev/nvme0n1", 1), "/dev/nvme0n1p1");
    }
}
