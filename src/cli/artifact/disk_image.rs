//! `mender-artifact disk-image`: the first flashable image of a device (`.sdimg`, `.uefiimg`)
//! from a root filesystem image, in Mender's partition layout: boot, root filesystems A and
//! B, data, and U-Boot's environment where it asks for one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::super::exit::{CliError, CliResult, FAILED};
use crate::fsimage::disk::{self, Content, DiskSpec};
use crate::fsimage::layout::{self, partition_device, Layout, Role, Sizes, Table};
use crate::fsimage::ubootenv;

/// Partition table and boot partition kind.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LayoutArg {
    /// MBR, FAT boot partition (type 0x0c, active): for U-Boot boards
    Sdimg,
    /// GPT, EFI system partition: for UEFI (GRUB) devices
    Uefiimg,
}

/// `disk-image` arguments.
#[derive(Debug, Args)]
pub struct DiskImageArgs {
    /// Root filesystem image for partition A (ext4 or any filesystem image)
    #[arg(short = 'r', long = "rootfs", value_name = "IMAGE")]
    pub rootfs: PathBuf,
    /// Root filesystem image for partition B (default: B is left empty, as Yocto builds it;
    /// the first update fills it)
    #[arg(long = "rootfs-b", value_name = "IMAGE")]
    pub rootfs_b: Option<PathBuf>,
    /// Boot partition: a folder (a new vfat filesystem gets its files) or a filesystem image
    /// (default: an empty vfat filesystem)
    #[arg(long = "boot", value_name = "DIR|IMAGE")]
    pub boot: Option<PathBuf>,
    /// Data partition: a folder (a new ext4 filesystem gets its files) or a filesystem image
    /// (default: an empty ext4 filesystem)
    #[arg(long = "data", value_name = "DIR|IMAGE")]
    pub data: Option<PathBuf>,
    /// Writes mender/device_type on the data partition (/data/mender/device_type)
    #[arg(short = 't', long = "device-type")]
    pub device_type: Option<String>,
    /// Output disk image
    #[arg(short = 'o', long = "output-path", value_name = "FILE")]
    pub output: PathBuf,
    /// Partition table (default: uefiimg for an output ending in .uefiimg, else sdimg)
    #[arg(long = "layout", value_enum)]
    pub layout: Option<LayoutArg>,
    /// Whole storage size; the root filesystem partitions get what is left, as
    /// MENDER_STORAGE_TOTAL_SIZE_MB (default: each root filesystem partition is as large as
    /// the larger root filesystem image)
    #[arg(
        long = "storage-size",
        value_name = "SIZE",
        conflicts_with = "rootfs_size"
    )]
    pub storage_size: Option<String>,
    /// Size of each root filesystem partition
    #[arg(long = "rootfs-size", value_name = "SIZE")]
    pub rootfs_size: Option<String>,
    /// Boot partition size
    #[arg(long = "boot-size", value_name = "SIZE", default_value = "16M")]
    pub boot_size: String,
    /// Data partition size
    #[arg(long = "data-size", value_name = "SIZE", default_value = "128M")]
    pub data_size: String,
    /// Partition alignment, and the gap before the first partition
    #[arg(long = "alignment", value_name = "SIZE", default_value = "8M")]
    pub alignment: String,
    /// Reserve U-Boot's redundant environment after the first alignment block, each copy in
    /// an aligned block of its own, as meta-mender does (zeroed: a Mender-patched U-Boot
    /// saves its own there on the first boot)
    #[arg(long = "uboot-env")]
    pub uboot_env: bool,
    /// Size of one U-Boot environment copy (BOOTENV_SIZE)
    #[arg(
        long = "uboot-env-size",
        value_name = "SIZE",
        default_value = "0x20000"
    )]
    pub uboot_env_size: String,
    /// Write a first U-Boot environment into both copies: Mender's boot variables (bootcount=0,
    /// bootlimit=1, upgrade_available=0, mender_boot_part=2, mender_boot_part_hex=2), for
    /// boot loaders whose built-in environment lacks them (implies --uboot-env)
    #[arg(long = "uboot-env-init")]
    pub uboot_env_init: bool,
    /// A variable for the first U-Boot environment, NAME=VALUE, repeatable (implies
    /// --uboot-env-init)
    #[arg(long = "uboot-env-set", value_name = "NAME=VALUE")]
    pub uboot_env_set: Vec<String>,
    /// The storage device as Linux names it on the device, for the configuration printed at
    /// the end (fw_env.config, RootfsPartA/B)
    #[arg(
        long = "storage-device",
        value_name = "DEVICE",
        default_value = "/dev/mmcblk0"
    )]
    pub storage_device: String,
}

fn size(flag: &str, text: &str) -> Result<u64, CliError> {
    layout::parse_size(text).map_err(|e| CliError::usage(format!("--{flag}: {}", e.0)))
}

fn file_len(path: &Path) -> Result<u64, CliError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| CliError::new(FAILED, format!("{}: {e}", path.display())))
}

/// Runs `disk-image`.
pub fn run(a: DiskImageArgs) -> CliResult {
    let table = match a.layout {
        Some(LayoutArg::Uefiimg) => Table::Gpt,
        Some(LayoutArg::Sdimg) => Table::Mbr,
        None if a.output.extension().is_some_and(|e| e == "uefiimg") => Table::Gpt,
        None => Table::Mbr,
    };
    let mut env_vars: Option<BTreeMap<String, String>> = None;
    if a.uboot_env_init || !a.uboot_env_set.is_empty() {
        let mut vars: BTreeMap<String, String> = ubootenv::MENDER_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for kv in &a.uboot_env_set {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                CliError::usage(format!("--uboot-env-set {kv:?}: expected NAME=VALUE"))
            })?;
            ubootenv::check_var(k, v).map_err(|e| CliError::usage(e.0))?;
            vars.insert(k.to_string(), v.to_string());
        }
        env_vars = Some(vars);
    }
    let with_env = a.uboot_env || env_vars.is_some();
    let mut sizes = Sizes {
        alignment: size("alignment", &a.alignment)?,
        boot: size("boot-size", &a.boot_size)?,
        rootfs: 0,
        data: size("data-size", &a.data_size)?,
        uboot_env: if with_env {
            Some(size("uboot-env-size", &a.uboot_env_size)?)
        } else {
            None
        },
    };
    sizes.rootfs = match (&a.storage_size, &a.rootfs_size) {
        (Some(s), _) => Layout::rootfs_size_for(size("storage-size", s)?, sizes)
            .map_err(|e| CliError::usage(format!("--storage-size: {}", e.0)))?,
        (None, Some(s)) => size("rootfs-size", s)?,
        (None, None) => {
            let b = match &a.rootfs_b {
                Some(b) => file_len(b)?,
                None => 0,
            };
            file_len(&a.rootfs)?.max(b).max(1)
        }
    };
    let layout = Layout::plan(table, sizes).map_err(|e| CliError::usage(e.0))?;
    let content = |p: &Option<PathBuf>| p.as_deref().map_or(Content::Empty, Content::from_path);
    let spec = DiskSpec {
        layout: layout.clone(),
        boot: content(&a.boot),
        rootfs_a: a.rootfs.clone(),
        rootfs_b: a.rootfs_b.clone(),
        data: content(&a.data),
        device_type: a.device_type.clone(),
        uboot_env: env_vars,
    };
    disk::build(&spec, &a.output).map_err(|e| CliError::new(FAILED, e.0))?;
    print_summary(&a, &layout);
    Ok(())
}

fn mib(bytes: u64) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} B")
    }
}

fn print_summary(a: &DiskImageArgs, l: &Layout) {
    let kind = match l.table {
        Table::Mbr => "MBR (sdimg)",
        Table::Gpt => "GPT (uefiimg)",
    };
    println!("{}: {}, {kind}", a.output.display(), mib(l.total));
    let dev = &a.storage_device;
    if let Some((offsets, each)) = l.uboot_env {
        println!(
            "  U-Boot environment at 0x{:x} and 0x{:x}, 0x{each:x} bytes each",
            offsets[0], offsets[1]
        );
    }
    for p in &l.parts {
        let what = match p.role {
            Role::Boot => "vfat".to_string(),
            Role::RootfsA => a.rootfs.display().to_string(),
            Role::RootfsB => a
                .rootfs_b
                .as_ref()
                .map_or("empty".into(), |b| b.display().to_string()),
            Role::Data => "ext4".to_string(),
        };
        println!(
            "  {} {:<8} at {:>9}, {:>9}  {what}",
            partition_device(dev, p.role.number()),
            p.role.name(),
            mib(p.start),
            mib(p.size)
        );
    }
    println!("On the device ({dev}):");
    println!(
        "  mender.conf: \"RootfsPartA\": \"{}\", \"RootfsPartB\": \"{}\"",
        partition_device(dev, 2),
        partition_device(dev, 3)
    );
    if let Some((offsets, each)) = l.uboot_env {
        println!(
            "  /etc/fw_env.config: {dev} 0x{:x} 0x{each:x} / {dev} 0x{:x} 0x{each:x}",
            offsets[0], offsets[1]
        );
    }
}
