//! Whole update cycles on a simulated A/B device: the rules write through a [`MemoryEnv`], and
//! [`bootloader_step`] plays the boot loader at each reboot.

use super::rules::{self, bootloader_step, Bootloader, VARIABLES};
use super::{apply, BootEnv, BootEnvError, MemoryEnv};

const A: &str = "/dev/mmcblk0p2";
const B: &str = "/dev/mmcblk0p3";

fn node(dev: &str) -> Option<(u32, u32)> {
    rules::partition_number(dev).ok().map(|n| (179, n))
}

struct Device {
    env: MemoryEnv,
    kind: Bootloader,
    running: u32,
    original: Option<u32>,
}

impl Device {
    fn new(kind: Bootloader) -> Self {
        let env = MemoryEnv::with(&[
            ("mender_boot_part", "2"),
            ("mender_boot_part_hex", "2"),
            ("upgrade_available", "0"),
            ("bootcount", "0"),
        ]);
        Device {
            env,
            kind,
            running: 2,
            original: None,
        }
    }

    fn slots(&self) -> Result<rules::Slots, BootEnvError> {
        let vars = self.env.get(&VARIABLES)?;
        rules::active_partition(&vars, A, B, Some((179, self.running)), node, None)
    }

    fn install(&mut self) -> Result<(), BootEnvError> {
        let slots = self.slots()?;
        let vars = self.env.get(&VARIABLES)?;
        apply(
            &self.env,
            &rules::install(&vars, slots.active.number, slots.passive.number)?,
        )?;
        self.original = Some(slots.active.number);
        Ok(())
    }

    fn reboot(&mut self) {
        let vars = self.env.get(&VARIABLES).unwrap();
        let boot = bootloader_step(&vars, self.kind, 2, 3).unwrap();
        apply(&self.env, &boot.changes).unwrap();
        self.running = boot.partition;
    }

    fn commit(&self) -> Result<(), BootEnvError> {
        let slots = self.slots()?;
        let vars = self.env.get(&VARIABLES)?;
        apply(&self.env, &rules::commit(&vars, slots.active.number)?)
    }

    fn rollback(&self) -> Result<(), BootEnvError> {
        let vars = self.env.get(&VARIABLES)?;
        apply(&self.env, &rules::rollback(&vars, self.original.unwrap())?)
    }

    fn var(&self, name: &str) -> Option<String> {
        self.env.snapshot().get(name).cloned()
    }
}

fn both() -> [Bootloader; 2] {
    [Bootloader::Uboot { bootlimit: 1 }, Bootloader::Grub]
}

#[test]
fn install_reboot_commit_stays_on_the_update() {
    for kind in both() {
        let mut d = Device::new(kind);
        d.install().unwrap();
        assert_eq!(d.running, 2, "{kind:?}: nothing changes before the reboot");
        d.reboot();
        assert_eq!(d.running, 3, "{kind:?}");
        d.commit().unwrap();
        assert_eq!(d.var("upgrade_available").as_deref(), Some("0"));
        d.reboot();
        d.reboot();
        assert_eq!(d.running, 3, "{kind:?}: committed update survives reboots");
        // A second update now goes the other way.
        d.install().unwrap();
        assert_eq!(d.var("mender_boot_part").as_deref(), Some("2"));
        d.reboot();
        assert_eq!(d.running, 2, "{kind:?}");
        d.commit().unwrap();
    }
}

#[test]
fn second_reboot_without_commit_returns_to_the_old_partition() {
    for kind in both() {
        let mut d = Device::new(kind);
        d.install().unwrap();
        d.reboot();
        assert_eq!(d.running, 3, "{kind:?}");
        d.reboot();
        assert_eq!(d.running, 2, "{kind:?}: boot loader fell back");
        assert_eq!(d.var("upgrade_available").as_deref(), Some("0"));
        let err = d.commit().unwrap_err();
        assert_eq!(
            err.to_string(),
            "Upgrade failed and was reverted: refusing to commit!"
        );
        d.rollback().unwrap();
        d.reboot();
        assert_eq!(d.running, 2, "{kind:?}");
        d.install().unwrap();
    }
}

#[test]
fn rollback_before_the_reboot_keeps_the_old_partition() {
    for kind in both() {
        let mut d = Device::new(kind);
        d.install().unwrap();
        // The environment already selects the new partition, so the device-level checks stop
        // a second install before the rule would.
        assert!(matches!(
            d.install(),
            Err(BootEnvError::RootMismatch { .. })
        ));
        let vars = d.env.get(&VARIABLES).unwrap();
        assert!(matches!(
            rules::install(&vars, 3, 2),
            Err(BootEnvError::UpdatePending)
        ));
        assert!(matches!(d.commit(), Err(BootEnvError::RootMismatch { .. })));
        d.rollback().unwrap();
        assert_eq!(d.var("mender_boot_part").as_deref(), Some("2"));
        d.reboot();
        assert_eq!(d.running, 2, "{kind:?}");
        assert_eq!(d.var("upgrade_available").as_deref(), Some("0"));
    }
}

#[test]
fn rollback_after_the_reboot_returns_to_the_old_partition() {
    for kind in both() {
        let mut d = Device::new(kind);
        d.install().unwrap();
        d.reboot();
        assert_eq!(d.running, 3);
        d.rollback().unwrap();
        d.reboot();
        assert_eq!(d.running, 2, "{kind:?}");
        assert_eq!(d.var("mender_boot_part_hex").as_deref(), Some("2"));
    }
}

#[test]
fn uboot_bootlimit_allows_more_tries() {
    let mut d = Device::new(Bootloader::Uboot { bootlimit: 3 });
    d.install().unwrap();
    for _ in 0..3 {
        d.reboot();
        assert_eq!(d.running, 3);
    }
    d.reboot();
    assert_eq!(d.running, 2);
}
