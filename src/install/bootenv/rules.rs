//! Mender's boot-variable protocol as pure functions: what install, commit and rollback write,
//! which partition is active, and what the boot loader does at a reboot. No I/O, so every rule
//! is tested against a table and the handlers only glue it to a [`super::BootEnv`].

use super::{BootEnvError, Vars};

/// The partition the boot loader boots (decimal).
pub const BOOT_PART: &str = "mender_boot_part";
/// The same number in lowercase hex, for U-Boot's `<interface> <dev>:<part>` syntax.
pub const BOOT_PART_HEX: &str = "mender_boot_part_hex";
/// `1` while an update waits for its commit; the boot loader rolls back when it stays set.
pub const UPGRADE_AVAILABLE: &str = "upgrade_available";
/// Boots attempted since the install; the boot loader compares it with its limit.
pub const BOOTCOUNT: &str = "bootcount";
/// Every variable the rules read, so a caller can fetch them in one `get`.
pub const VARIABLES: [&str; 4] = [BOOT_PART, BOOT_PART_HEX, UPGRADE_AVAILABLE, BOOTCOUNT];

/// Variables a rule wants written, in the order upstream writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignments(pub Vec<(&'static str, String)>);

impl Assignments {
    /// True when the rule found nothing to change, so no write is needed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Borrowed pairs in the shape [`super::BootEnv::set`] takes.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.0.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// Applies the assignments to a variable map, as a write followed by a read would; used by
    /// simulations that keep the environment in a map.
    pub fn apply_to(&self, vars: &mut Vars) {
        for (k, v) in &self.0 {
            let v = Some(v.clone()).filter(|v| !v.is_empty());
            vars.insert((*k).to_owned(), v);
        }
    }

    fn boot_part(&mut self, number: u32) {
        self.0.push((BOOT_PART, number.to_string()));
        self.0.push((BOOT_PART_HEX, format!("{number:x}")));
    }

    fn push(&mut self, name: &'static str, value: &str) {
        self.0.push((name, value.to_owned()));
    }
}

/// A rootfs partition: its device name (normalised) and the number the boot loader knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Device path; `ubiX_Y` becomes `/dev/ubiX_Y`, as every userspace tool expects.
    pub device: String,
    /// The trailing digits of the device name.
    pub number: u32,
}

impl Partition {
    /// Parses a configured device name (`RootfsPartA`/`B`); the number is what
    /// `mender_boot_part` holds, so a name without trailing digits cannot be used.
    pub fn parse(device: &str) -> Result<Self, BootEnvError> {
        let device = normalize_device(device);
        let number = partition_number(&device)?;
        Ok(Partition { device, number })
    }
}

/// The partition running now and the one an update is written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slots {
    /// Selected by `mender_boot_part` and confirmed to be the mounted root.
    pub active: Partition,
    /// The other one: the install target.
    pub passive: Partition,
}

/// Which boot loader [`bootloader_step`] imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootloader {
    /// U-Boot with meta-mender's `bootcount`/`altbootcmd` integration.
    Uboot {
        /// Boots allowed while `upgrade_available=1` before falling back (meta-mender: 1).
        bootlimit: u32,
    },
    /// grub-mender-grubenv's boot script.
    Grub,
}

/// What a simulated reboot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// The partition number that boots.
    pub partition: u32,
    /// What the boot loader saved to its environment on the way.
    pub changes: Assignments,
}

/// `ubiX_Y` is how the kernel command line names UBI volumes; tools want `/dev/ubiX_Y`.
pub fn normalize_device(device: &str) -> String {
    if device.starts_with("ubi") {
        format!("/dev/{device}")
    } else {
        device.to_owned()
    }
}

/// The trailing digits of a device name: `/dev/mmcblk0p2` → 2, `/dev/sda3` → 3,
/// `ubi0_1` → 1.
pub fn partition_number(device: &str) -> Result<u32, BootEnvError> {
    let digits = device.len() - device.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    device[device.len() - digits..]
        .parse()
        .map_err(|_| BootEnvError::NoPartitionNumber(device.to_owned()))
}

fn value<'a>(vars: &'a Vars, name: &str) -> Option<&'a str> {
    vars.get(name)
        .and_then(|v| v.as_deref())
        .filter(|v| !v.is_empty())
}

fn number(vars: &Vars, name: &'static str) -> Result<Option<u32>, BootEnvError> {
    value(vars, name)
        .map(|v| {
            v.trim().parse().map_err(|_| BootEnvError::NotANumber {
                name,
                value: v.to_owned(),
            })
        })
        .transpose()
}

fn boot_part(vars: &Vars) -> Result<u32, BootEnvError> {
    number(vars, BOOT_PART)?.ok_or(BootEnvError::Missing(BOOT_PART))
}

fn pending(vars: &Vars) -> bool {
    value(vars, UPGRADE_AVAILABLE) == Some("1")
}

/// ArtifactInstall: point the boot loader at the freshly written passive partition and arm the
/// fallback. Refuses while another update is pending, which would lose the way back.
pub fn install(vars: &Vars, active: u32, passive: u32) -> Result<Assignments, BootEnvError> {
    if active == passive {
        return Err(BootEnvError::SameSlot(active));
    }
    if !matches!(value(vars, UPGRADE_AVAILABLE), None | Some("0")) {
        return Err(BootEnvError::UpdatePending);
    }
    let mut a = Assignments::default();
    a.boot_part(passive);
    a.push(UPGRADE_AVAILABLE, "1");
    a.push(BOOTCOUNT, "0");
    Ok(a)
}

/// ArtifactCommit: make the running update permanent. Refuses when the boot loader already
/// fell back (upstream's message) or when the update has not been booted yet.
pub fn commit(vars: &Vars, running: u32) -> Result<Assignments, BootEnvError> {
    if !pending(vars) {
        return Err(BootEnvError::UpgradeReverted);
    }
    let selected = boot_part(vars)?;
    if selected != running {
        return Err(BootEnvError::NotBootedIntoUpdate { running, selected });
    }
    let mut a = Assignments::default();
    a.push(UPGRADE_AVAILABLE, "0");
    Ok(a)
}

/// ArtifactRollback: boot the original partition again, whether or not the update was booted.
/// Nothing is written when the boot loader already fell back on its own.
pub fn rollback(vars: &Vars, original: u32) -> Result<Assignments, BootEnvError> {
    let mut a = Assignments::default();
    if pending(vars) {
        a.boot_part(original);
        a.push(UPGRADE_AVAILABLE, "0");
    } else if number(vars, BOOT_PART)? != Some(original) {
        // Committed, or the variables were lost: restore the saved original, as upstream's
        // module does from its orig-part file.
        a.boot_part(original);
    }
    Ok(a)
}

/// Which configured partition runs now: the one `mender_boot_part` selects, confirmed against
/// the mounted root so an update is never written over the running system.
///
/// `mounted_root` is the `(major, minor)` of `/`; `device_number` looks up a device node's
/// numbers; `cmdline` (the kernel command line) is the fallback when numbers are unavailable,
/// and the only way for UBI, whose volumes' numbers never match the mounted root's.
pub fn active_partition(
    vars: &Vars,
    part_a: &str,
    part_b: &str,
    mounted_root: Option<(u32, u32)>,
    device_number: impl Fn(&str) -> Option<(u32, u32)>,
    cmdline: Option<&str>,
) -> Result<Slots, BootEnvError> {
    let a = Partition::parse(part_a)?;
    let b = Partition::parse(part_b)?;
    if a.number == b.number {
        return Err(BootEnvError::SamePartitionNumber {
            a: a.device,
            b: b.device,
        });
    }
    let selected = boot_part(vars)?;
    let (active, passive) = if selected == a.number {
        (a, b)
    } else if selected == b.number {
        (b, a)
    } else {
        return Err(BootEnvError::UnknownBootPart {
            number: selected,
            a: a.device,
            b: b.device,
        });
    };
    let mismatch = |mounted: String| BootEnvError::RootMismatch {
        mounted,
        number: selected,
    };
    let is_ubi = active.device.starts_with("/dev/ubi");
    let numbers = mounted_root.zip(device_number(&active.device));
    match numbers {
        Some((root, dev)) if !is_ubi => {
            if root == dev {
                return Ok(Slots { active, passive });
            }
            let name = if device_number(&passive.device) == Some(root) {
                passive.device.clone()
            } else {
                format!("{}:{}", root.0, root.1)
            };
            Err(mismatch(name))
        }
        _ => {
            let root = cmdline
                .and_then(|c| c.split_whitespace().find_map(|w| w.strip_prefix("root=")))
                .filter(|r| !r.is_empty())
                .ok_or_else(|| BootEnvError::RootUnknown(active.device.clone()))?;
            let root = normalize_device(root);
            let same_node = || {
                let r = device_number(&root);
                r.is_some() && r == device_number(&active.device)
            };
            if root == active.device || (!is_ubi && same_node()) {
                Ok(Slots { active, passive })
            } else {
                Err(mismatch(root))
            }
        }
    }
}

/// Imitates the boot loader at a reboot, for simulated devices: U-Boot counts boots while an
/// update is pending and falls back past `bootlimit`; GRUB allows exactly one boot of a pending
/// update. Returns the partition that boots and what the boot loader saved.
pub fn bootloader_step(
    vars: &Vars,
    kind: Bootloader,
    part_a: u32,
    part_b: u32,
) -> Result<Boot, BootEnvError> {
    let current = boot_part(vars)?;
    let other = if current == part_a { part_b } else { part_a };
    let mut changes = Assignments::default();
    let mut partition = current;
    if pending(vars) {
        match kind {
            Bootloader::Uboot { bootlimit } => {
                let count = number(vars, BOOTCOUNT)?.unwrap_or(0).saturating_add(1);
                changes.push(BOOTCOUNT, &count.to_string());
                if count > bootlimit {
                    changes.boot_part(other);
                    changes.push(UPGRADE_AVAILABLE, "0");
                    partition = other;
                }
            }
            Bootloader::Grub => {
                if value(vars, BOOTCOUNT) != Some("0") {
                    // grub-mender-grubenv keeps only mender_boot_part, not the hex form.
                    changes.push(BOOT_PART, &other.to_string());
                    changes.push(UPGRADE_AVAILABLE, "0");
                    changes.push(BOOTCOUNT, "0");
                    partition = other;
                } else {
                    changes.push(BOOTCOUNT, "1");
                }
            }
        }
    }
    Ok(Boot { partition, changes })
}
