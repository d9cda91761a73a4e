//! Whole update cycles through the handler, with [`bootloader_step`] playing U-Boot at each
//! reboot and a fresh [`RootInfo`] for whatever partition booted.

use std::path::Path;

use super::tests::{image, Rig};
use crate::install::bootenv::rules::{bootloader_step, Bootloader, VARIABLES};
use crate::install::bootenv::{apply, BootEnv};

const UBOOT: Bootloader = Bootloader::Uboot { bootlimit: 1 };

/// A reboot: the boot loader acts on the environment; returns the partition file that runs.
fn reboot(rig: &Rig, kind: Bootloader) -> &Path {
    let vars = rig.env.get(&VARIABLES).unwrap();
    let boot = bootloader_step(&vars, kind, 2, 3).unwrap();
    apply(&rig.env, &boot.changes).unwrap();
    if boot.partition == 2 {
        &rig.a
    } else {
        &rig.b
    }
}

fn download_and_install(rig: &Rig) {
    let h = rig.handler(&rig.a);
    let img = image(300_000, 11);
    h.download("rootfs.ext4", img.len() as u64, None, &mut &img[..])
        .unwrap();
    h.install().unwrap();
}

#[test]
fn update_boots_and_commits() {
    for kind in [UBOOT, Bootloader::Grub] {
        let rig = Rig::new();
        download_and_install(&rig);
        let running = reboot(&rig, kind);
        assert_eq!(running, rig.b, "{kind:?}");
        rig.handler(running).commit().unwrap();
        assert_eq!(rig.var("upgrade_available").as_deref(), Some("0"));
        assert_eq!(rig.var("mender_boot_part").as_deref(), Some("3"));
        assert_eq!(reboot(&rig, kind), rig.b, "committed update stays");
        // The next update goes the other way.
        let slots = rig.handler(&rig.b).slots().unwrap();
        assert_eq!((slots.active.number, slots.passive.number), (3, 2));
    }
}

#[test]
fn failed_boot_reverts_commit_refused_and_rollback_stays_on_a() {
    let rig = Rig::new();
    download_and_install(&rig);
    assert_eq!(reboot(&rig, UBOOT), rig.b);
    let running = reboot(&rig, UBOOT);
    assert_eq!(running, rig.a, "bootlimit exceeded: back on A");
    let h = rig.handler(running);
    let err = h.commit().unwrap_err();
    assert_eq!(
        err.to_string(),
        "Upgrade failed and was reverted: refusing to commit!"
    );
    h.rollback().unwrap();
    assert_eq!(rig.var("mender_boot_part").as_deref(), Some("2"));
    assert_eq!(rig.var("mender_boot_part_hex").as_deref(), Some("2"));
    assert_eq!(rig.var("upgrade_available").as_deref(), Some("0"));
    assert_eq!(reboot(&rig, UBOOT), rig.a);
}

#[test]
fn commit_before_reboot_is_refused_and_rollback_undoes_install() {
    let rig = Rig::new();
    download_and_install(&rig);
    let h = rig.handler(&rig.a);
    let err = h.commit().unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert_eq!(rig.var("upgrade_available").as_deref(), Some("1"));
    h.rollback().unwrap();
    assert_eq!(rig.var("mender_boot_part").as_deref(), Some("2"));
    assert_eq!(rig.var("upgrade_available").as_deref(), Some("0"));
    assert_eq!(reboot(&rig, UBOOT), rig.a);
}

#[test]
fn rollback_after_commit_restores_saved_original() {
    let rig = Rig::new();
    download_and_install(&rig);
    let running = reboot(&rig, UBOOT);
    rig.handler(running).commit().unwrap();
    rig.handler(running).rollback().unwrap();
    assert_eq!(rig.var("mender_boot_part").as_deref(), Some("2"));
    assert_eq!(reboot(&rig, UBOOT), rig.a);
}

#[test]
fn rollback_without_install_changes_nothing() {
    let rig = Rig::new();
    let before = rig.env.snapshot();
    rig.handler(&rig.a).rollback().unwrap();
    assert_eq!(rig.env.snapshot(), before);
}
