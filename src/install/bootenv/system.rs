//! Which boot environment a device has, found the way upstream's rootfs-image module finds it:
//! Mender's GRUB tools when installed, else GRUB's Mender env files where grub-mender-grubenv
//! keeps them, else U-Boot's `fw_printenv`/`fw_setenv`.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use super::{BootEnv, GrubEnv, GrubTools, UbootEnv};

/// grub-mender-grubenv's configuration file, whose `ENV_DIR=` moves the env files.
pub const GRUBENV_CONFIG: &str = "etc/mender_grubenv.config";

/// Where grub-mender-grubenv keeps its env files, newest layout first.
pub const GRUBENV_DIRS: [&str; 3] = [
    "boot/efi/grub-mender-grubenv",
    "boot/grub/grub-mender-grubenv",
    "boot/efi/EFI/BOOT",
];

/// The boot environment found on the system whose root directory is `root` (`/` on a device),
/// looking up tools in `path_list` (`PATH`).
pub fn detect(root: &Path, path_list: Option<&OsStr>) -> Box<dyn BootEnv> {
    if let Some(tools) = path_list.and_then(GrubTools::find) {
        return Box::new(GrubEnv::with_tools(tools));
    }
    if let Some(dir) = grubenv_dir(root) {
        return Box::new(GrubEnv::native(dir));
    }
    Box::new(UbootEnv::new())
}

/// The directory holding `mender_grubenv1/env`: `ENV_DIR` from the config file when it names
/// one, else the first standard place that has the files.
pub fn grubenv_dir(root: &Path) -> Option<PathBuf> {
    let has_env = |dir: &Path| dir.join("mender_grubenv1").join("env").is_file();
    if let Ok(text) = fs::read_to_string(root.join(GRUBENV_CONFIG)) {
        let configured = text.lines().find_map(|l| {
            let v = l.trim().strip_prefix("ENV_DIR=")?;
            Some(v.trim().trim_matches('"').trim_matches('\''))
        });
        if let Some(dir) = configured.filter(|d| !d.is_empty()) {
            let dir = root.join(dir.trim_start_matches('/'));
            if has_env(&dir) {
                return Some(dir);
            }
        }
    }
    GRUBENV_DIRS
        .iter()
        .map(|d| root.join(d))
        .find(|d| has_env(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grubenv_dir_from_config_or_standard_places() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert_eq!(grubenv_dir(r), None);
        let std_dir = r.join(GRUBENV_DIRS[1]);
        GrubEnv::provision(&std_dir, &[("mender_boot_part", "2")]).unwrap();
        assert_eq!(grubenv_dir(r), Some(std_dir.clone()));
        let custom = r.join("data/env");
        GrubEnv::provision(&custom, &[("mender_boot_part", "2")]).unwrap();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(r.join(GRUBENV_CONFIG), "ENV_DIR=\"/data/env\"\n").unwrap();
        assert_eq!(grubenv_dir(r), Some(custom));
        // A config naming a place without files falls back to the standard places.
        fs::write(r.join(GRUBENV_CONFIG), "ENV_DIR=/nowhere\n").unwrap();
        assert_eq!(grubenv_dir(r), Some(std_dir));
    }
}
