//! How the handler learns which root filesystem is running: the device numbers of `/` and the
//! kernel command line, gathered once and injectable so tests can pretend any partition boots.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The facts about the running root that [`super::super::bootenv::rules::active_partition`]
/// compares with the boot environment. A value rather than live queries, so a simulated reboot
/// is just a new `RootInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootInfo {
    /// `(major, minor)` of the device holding `/` (`stat -c %D /`); `None` when unknown or not
    /// meaningful (UBI, tests with plain files).
    pub mounted_root: Option<(u32, u32)>,
    /// The kernel command line (`/proc/cmdline`), whose `root=` is the fallback comparison.
    pub cmdline: Option<String>,
}

impl RootInfo {
    /// Reads the running system's facts; either may be missing (in a container, say), in which
    /// case the comparison falls back or refuses rather than guessing.
    pub fn detect() -> Self {
        RootInfo {
            mounted_root: fs::metadata("/").ok().map(|m| split_dev(m.dev())),
            cmdline: fs::read_to_string("/proc/cmdline").ok(),
        }
    }

    /// A root known only by the kernel command line's `root=<device>`, as for UBI, and the way
    /// tests name a plain file as the running partition.
    pub fn from_cmdline_root(device: &str) -> Self {
        RootInfo {
            mounted_root: None,
            cmdline: Some(format!("console=ttyS0 root={device} rw")),
        }
    }
}

/// Splits a Linux `dev_t` into `(major, minor)` the way glibc's `gnu_dev_major`/`minor` do,
/// without unsafe code.
pub fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// The `(major, minor)` of a block device node (following symlinks such as by-partlabel);
/// `None` for anything else, since only a block device can be the mounted root.
pub fn device_number(path: &str) -> Option<(u32, u32)> {
    let meta = fs::metadata(Path::new(path)).ok()?;
    meta.file_type()
        .is_block_device()
        .then(|| split_dev(meta.rdev()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_dev_t_like_glibc() {
        // glibc's makedev: low 12 bits of major at 8, the rest at 32; low 8 bits of minor at
        // 0, the rest at 12.
        let makedev = |major: u64, minor: u64| {
            ((major & 0xfff) << 8) | ((major >> 12) << 44) | (minor & 0xff) | ((minor >> 8) << 20)
        };
        assert_eq!(split_dev(makedev(179, 2)), (179, 2));
        assert_eq!(split_dev((179 << 8) | 2), (179, 2));
        let dev = makedev(0x1004, 70000);
        assert_eq!(split_dev(dev), (0x1004, 70000));
    }

    #[test]
    fn plain_files_have_no_device_number() {
        let f = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(device_number(f.path().to_str().unwrap()), None);
        assert!(RootInfo::from_cmdline_root("/dev/x2")
            .cmdline
            .unwrap()
            .contains(" root=/dev/x2 "));
    }
}
