//! Binary delta artifacts installed on the simulated A/B device: a full install of v2, then a
//! delta to v3 rebuilt from the running partition into the other one, reboot, commit; and the
//! ways it must refuse: the wrong source (by provides, and by content), a corrupt patch.

use std::path::PathBuf;

use crate::abdevice::{AbDevice, Loader};
use crate::common::*;

/// A device with a read-only root that runs committed full v2, and the delta from v2 to v3.
fn device_on_v2(loader: Loader) -> (AbDevice, PathBuf) {
    on_v2(AbDevice::new(loader, "").read_only_root())
}

/// Installs and commits full v2 on `dev`; returns it with the delta from v2 to v3.
fn on_v2(mut dev: AbDevice) -> (AbDevice, PathBuf) {
    let v2 = dev.artifact(ours(), "rootfs-v2", &[]);
    assert_eq!(dev.install(&v2, &[]).code, 0);
    assert_eq!(dev.reboot(), "rootfs-v2");
    dev.update(&["commit"]).ok();
    let v3 = dev.artifact(ours(), "rootfs-v3", &[]);
    let delta = dev.path("v2-v3.mender");
    ma(
        &dev.path(""),
        &[
            "delta",
            v2.to_str().unwrap(),
            v3.to_str().unwrap(),
            "-o",
            delta.to_str().unwrap(),
        ],
    )
    .ok();
    (dev, delta)
}

fn sha256_hex(path: &std::path::Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn delta_cycle(loader: Loader) {
    let (mut dev, delta) = device_on_v2(loader);
    upstream_ma(&dev.path(""), &["validate", delta.to_str().unwrap()]).ok();
    let (a, _) = dev.numbers();
    let r = dev.install(&delta, &["--reboot-exit-code"]);
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert_eq!(dev.var("mender_boot_part"), a.to_string());
    assert_eq!(dev.var("upgrade_available"), "1");
    assert_eq!(dev.reboot(), "rootfs-v3");
    dev.update(&["commit"]).ok();
    assert_eq!(dev.installed(), "rootfs-v3");
    let provides = dev.update(&["show-provides"]).ok().stdout;
    let want = sha256_hex(&dev.path("rootfs-v3.ext4"));
    assert!(
        provides.contains(&format!("rootfs-image.checksum={want}")),
        "{provides}"
    );
}

#[test]
fn uboot_delta_install_reboot_commit() {
    delta_cycle(Loader::Uboot);
}

#[test]
fn grub_delta_install_reboot_commit() {
    delta_cycle(Loader::Grub);
}

#[test]
fn delta_for_another_source_is_refused_by_its_depends() {
    let (mut dev, _) = device_on_v2(Loader::Uboot);
    // A delta from v3 to v4: the device runs v2.
    let v3 = dev.path("rootfs-v3.mender");
    let v4 = dev.artifact(ours(), "rootfs-v4", &[]);
    let delta = dev.path("v3-v4.mender");
    ma(
        &dev.path(""),
        &[
            "delta",
            v3.to_str().unwrap(),
            v4.to_str().unwrap(),
            "-o",
            delta.to_str().unwrap(),
        ],
    )
    .ok();
    let env = dev.env_bytes();
    let r = dev.install(&delta, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Streaming failed."), "{}", r.stdout);
    assert!(r.stderr.contains("rootfs-image.checksum"), "{}", r.stderr);
    assert_eq!(dev.env_bytes(), env);
    assert_eq!(dev.reboot(), "rootfs-v2");
    assert_eq!(dev.installed(), "rootfs-v2");
}

#[test]
fn delta_over_a_changed_source_is_refused_and_never_bootable() {
    let (dev, delta) = device_on_v2(Loader::Uboot);
    // The running partition no longer holds what its provides claim: every block of it
    // differs from the image the delta was made from.
    let (_, b) = dev.numbers();
    assert_eq!(dev.booted(), b);
    dev.host("for off in $(seq 0 64 6000); do printf 'XXXXXXXX' | dd of=\"$D/b.img\" bs=4096 seek=$off conv=notrunc status=none; done; sync");
    let env = dev.env_bytes();
    let r = dev.install(&delta, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Streaming failed."), "{}", r.stdout);
    assert!(r.stderr.contains("wrong source"), "{}", r.stderr);
    assert_eq!(dev.env_bytes(), env, "nothing may be made bootable");
    assert_eq!(dev.update(&["resume"]).code, 2);
    assert_eq!(dev.installed(), "rootfs-v2");
}

#[test]
fn corrupt_delta_is_refused_and_never_bootable() {
    let (mut dev, delta) = device_on_v2(Loader::Grub);
    let mut bytes = std::fs::read(&delta).unwrap();
    let at = bytes.len() - 1024 - 3000;
    bytes[at] ^= 0x40;
    std::fs::write(&delta, &bytes).unwrap();
    let env = dev.env_bytes();
    let r = dev.install(&delta, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Streaming failed."), "{}", r.stdout);
    assert_eq!(dev.env_bytes(), env);
    assert_eq!(dev.reboot(), "rootfs-v2");
    assert_eq!(dev.installed(), "rootfs-v2");
}

/// A root mounted read-write: each mount rewrites the ext4 superblock (and journal blocks), so
/// the delta's copies from there no longer match and it is refused by content, with the
/// offset, before anything is made bootable.
#[test]
fn delta_over_a_read_write_mounted_source_is_checked_by_content() {
    let (mut dev, delta) = on_v2(AbDevice::new(Loader::Uboot, ""));
    let env = dev.env_bytes();
    let r = dev.install(&delta, &[]);
    if r.code == 0 {
        // Every range the patch copies was still intact: the result was verified.
        assert_eq!(dev.reboot(), "rootfs-v3");
        return;
    }
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("wrong source"), "{}", r.stderr);
    assert!(r.stderr.contains("at offset"), "{}", r.stderr);
    assert_eq!(dev.env_bytes(), env);
    assert_eq!(dev.reboot(), "rootfs-v2");
    assert_eq!(dev.installed(), "rootfs-v2");
}

/// A power cut while the image is rebuilt from a delta: the boot variables were never
/// touched, the device boots v2, and the delta installs afterwards.
#[test]
fn power_cut_while_applying_a_delta() {
    let (mut dev, delta) = device_on_v2(Loader::Uboot);
    let env = dev.env_bytes();
    dev.install_killed_midway(&delta);
    assert_eq!(dev.env_bytes(), env);
    assert_eq!(dev.reboot(), "rootfs-v2");
    assert_eq!(dev.update(&["resume"]).code, 2);
    assert_eq!(dev.installed(), "rootfs-v2");
    assert_eq!(dev.install(&delta, &[]).code, 0);
    assert_eq!(dev.reboot(), "rootfs-v3");
    dev.update(&["commit"]).ok();
    assert_eq!(dev.installed(), "rootfs-v3");
}

/// A delta whose artifact promises another image than the patch builds is refused before
/// the passive partition is written.
#[test]
fn delta_building_another_image_than_promised_is_refused_up_front() {
    let (mut dev, delta) = device_on_v2(Loader::Uboot);
    let other = "0".repeat(64);
    ma(
        &dev.path(""),
        &[
            "modify",
            delta.to_str().unwrap(),
            "-p",
            &format!("rootfs-image.checksum:{other}"),
        ],
    )
    .ok();
    // v2 runs from B: A is the passive partition.
    let passive = dev.partition_a(4 << 20);
    let env = dev.env_bytes();
    let r = dev.install(&delta, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("builds an image with sha256"),
        "{}",
        r.stderr
    );
    assert_eq!(
        dev.partition_a(4 << 20),
        passive,
        "the passive partition was written"
    );
    assert_eq!(dev.env_bytes(), env);
    assert_eq!(dev.reboot(), "rootfs-v2");
}
