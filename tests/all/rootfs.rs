//! rootfs-image A/B updates on the simulated device (`abdevice`): install, reboot, commit or
//! roll back, the boot loader falling back, bad artifacts, power loss at every step, and the
//! boot environment next to upstream's client.

use crate::abdevice::{AbDevice, Loader};
use crate::common::*;

const INSTALLED: &str = "Installed, but not committed.";
const REBOOT: &str = "At least one payload requested a reboot of the device it updated.";

/// Installs v2 and checks the boot variables point at B for one trial boot.
fn install_v2(dev: &AbDevice, tool: &str) {
    let (_, b) = dev.numbers();
    let art = dev.artifact(tool, "rootfs-v2", &[]);
    let r = dev.install(&art, &["--reboot-exit-code"]);
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(INSTALLED), "{}", r.stdout);
    assert!(r.stdout.contains(REBOOT), "{}", r.stdout);
    assert_eq!(dev.var("mender_boot_part"), b.to_string());
    assert_eq!(dev.var("upgrade_available"), "1");
    assert_eq!(dev.var("bootcount"), "0");
}

/// Nothing pending, A selected, v1 running and recorded.
fn assert_back_on_v1(dev: &mut AbDevice) {
    let (a, _) = dev.numbers();
    assert_eq!(dev.var("upgrade_available"), "0");
    assert_eq!(dev.var("mender_boot_part"), a.to_string());
    assert_eq!(dev.reboot(), "rootfs-v1");
    assert_eq!(dev.installed(), "rootfs-v1");
    assert_eq!(
        dev.update(&["resume"]).code,
        2,
        "nothing may be left in progress"
    );
}

fn full_cycle(loader: Loader) {
    let mut dev = AbDevice::new(loader, "");
    let (_, b) = dev.numbers();
    assert_eq!(dev.running(), "rootfs-v1");
    // Written by upstream's mender-artifact: its artifacts install.
    install_v2(&dev, upstream());
    assert_eq!(dev.reboot(), "rootfs-v2");
    let r = dev.update(&["commit"]).ok();
    assert!(r.stdout.contains("Committed."), "{}", r.stdout);
    assert_eq!(dev.var("upgrade_available"), "0");
    assert_eq!(dev.var("mender_boot_part"), b.to_string());
    assert_eq!(dev.installed(), "rootfs-v2");
    assert_eq!(dev.reboot(), "rootfs-v2");
    assert_eq!(dev.booted(), b);
    // The next update goes to A, now the passive partition.
    let art = dev.artifact(ours(), "rootfs-v3", &[]);
    assert_eq!(dev.install(&art, &[]).code, 0);
    assert_eq!(dev.reboot(), "rootfs-v3");
    dev.update(&["commit"]).ok();
    assert_eq!(dev.installed(), "rootfs-v3");
}

#[test]
fn uboot_install_reboot_commit() {
    full_cycle(Loader::Uboot);
}

#[test]
fn grub_install_reboot_commit() {
    full_cycle(Loader::Grub);
}

fn reboot_then_rollback(loader: Loader) {
    let mut dev = AbDevice::new(loader, "");
    install_v2(&dev, ours());
    assert_eq!(dev.reboot(), "rootfs-v2");
    let r = dev.update(&["rollback"]).ok();
    assert!(r.stdout.contains("Rolled back."), "{}", r.stdout);
    assert_back_on_v1(&mut dev);
}

#[test]
fn uboot_install_reboot_rollback() {
    reboot_then_rollback(Loader::Uboot);
}

#[test]
fn grub_install_reboot_rollback() {
    reboot_then_rollback(Loader::Grub);
}

#[test]
fn rollback_before_the_reboot_switches_back() {
    let mut dev = AbDevice::new(Loader::Uboot, "");
    install_v2(&dev, ours());
    let r = dev.update(&["rollback"]).ok();
    assert!(r.stdout.contains("Rolled back."), "{}", r.stdout);
    assert_back_on_v1(&mut dev);
}

/// The new root never reaches `commit`: the boot loader falls back by itself (U-Boot past
/// `bootlimit`, GRUB at the second boot), and `commit` then refuses with upstream's message
/// and records the rollback.
fn failed_boot(loader: Loader) {
    let mut dev = AbDevice::new(loader, "");
    install_v2(&dev, ours());
    assert_eq!(dev.reboot(), "rootfs-v2");
    assert_eq!(dev.reboot(), "rootfs-v1", "the boot loader must fall back");
    assert_eq!(dev.var("upgrade_available"), "0");
    let r = dev.update(&["commit"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("Upgrade failed and was reverted: refusing to commit!"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("Committing failed."), "{}", r.stdout);
    assert!(r.stdout.contains("Rolled back."), "{}", r.stdout);
    assert_back_on_v1(&mut dev);
    // And the device takes the next update normally.
    install_v2(&dev, ours());
}

#[test]
fn uboot_failed_boot_rolls_back() {
    failed_boot(Loader::Uboot);
}

#[test]
fn grub_failed_boot_rolls_back() {
    failed_boot(Loader::Grub);
}

#[test]
fn commit_without_reboot_is_refused_and_rolled_back() {
    let mut dev = AbDevice::new(Loader::Uboot, "");
    install_v2(&dev, ours());
    let r = dev.update(&["commit"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("does not match the boot loader environment"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("Rolled back."), "{}", r.stdout);
    assert_back_on_v1(&mut dev);
}

/// Nothing about the device changed: same boot environment bytes, B never written or made
/// bootable, nothing in progress.
fn assert_untouched(dev: &mut AbDevice, env: &[u8], b_head: &[u8]) {
    assert_eq!(dev.env_bytes(), env, "the boot environment changed");
    assert_eq!(dev.partition_b(b_head.len()), b_head);
    assert_back_on_v1(dev);
}

#[test]
fn wrong_device_type_changes_nothing() {
    let mut dev = AbDevice::new(Loader::Uboot, "");
    let (env, b) = (dev.env_bytes(), dev.partition_b(1 << 20));
    let art = dev.artifact_for(ours(), "rootfs-v2", "other-board", &[]);
    let r = dev.install(&art, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Streaming failed."), "{}", r.stdout);
    assert!(r.stderr.contains("other-board"), "{}", r.stderr);
    assert_untouched(&mut dev, &env, &b);
}

#[test]
fn corrupt_image_is_never_made_bootable() {
    let mut dev = AbDevice::new(Loader::Uboot, "");
    let env = dev.env_bytes();
    let art = dev.artifact(ours(), "rootfs-v2", &["--compression", "none"]);
    let mut bytes = std::fs::read(&art).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&art, &bytes).unwrap();
    let r = dev.install(&art, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Streaming failed."), "{}", r.stdout);
    assert!(r.stderr.contains("checksum"), "{}", r.stderr);
    assert_eq!(
        dev.env_bytes(),
        env,
        "a corrupt image must not touch the boot variables"
    );
    assert_back_on_v1(&mut dev);
}

#[test]
fn truncated_stream_is_never_made_bootable() {
    let mut dev = AbDevice::new(Loader::Grub, "");
    let env = dev.env_bytes();
    let art = dev.artifact(ours(), "rootfs-v2", &[]);
    let bytes = std::fs::read(&art).unwrap();
    std::fs::write(&art, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let r = dev.install(&art, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Streaming failed."), "{}", r.stdout);
    assert_eq!(dev.env_bytes(), env);
    assert_back_on_v1(&mut dev);
}

/// The byte counts the installer logs for a rootfs download.
fn written_and_skipped(log: &str) -> (u64, u64) {
    let line = log
        .lines()
        .find(|l| l.contains("bytes already in place"))
        .unwrap_or_else(|| panic!("no download summary in {log}"));
    let msg = &line[line.find(": ").unwrap() + 2..];
    let nums: Vec<u64> = msg
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[test]
fn read_compare_write_skips_what_is_already_there() {
    let mut dev = AbDevice::new(Loader::Uboot, "\"RootfsReadCompareWrite\": true,");
    let art = dev.artifact(ours(), "rootfs-v2", &[]);
    let size = std::fs::metadata(dev.path("rootfs-v2.ext4")).unwrap().len();
    let first = dev.install(&art, &[]).ok();
    let (written, skipped) = written_and_skipped(&first.stderr);
    assert_eq!(written + skipped, size);
    assert!(written > 0, "{}", first.stderr);
    dev.update(&["rollback"]).ok();
    assert_back_on_v1(&mut dev);
    let again = dev.install(&art, &[]).ok();
    assert_eq!(
        written_and_skipped(&again.stderr),
        (0, size),
        "{}",
        again.stderr
    );
    assert_eq!(dev.reboot(), "rootfs-v2");
    dev.update(&["commit"]).ok();
    assert_eq!(dev.installed(), "rootfs-v2");
}

/// States whose scripts kill the installer (SIGKILL, as a power cut) when `KILL_AT` names
/// them, once per device.
const KILL_STATES: [&str; 7] = [
    "ArtifactInstall_Enter",
    "ArtifactInstall_Leave",
    "ArtifactCommit_Enter",
    "ArtifactCommit_Leave",
    "ArtifactRollback_Enter",
    "ArtifactRollback_Leave",
    "ArtifactFailure_Enter",
];

fn killing_artifact(dev: &AbDevice) -> std::path::PathBuf {
    let mut args: Vec<String> = Vec::new();
    for state in KILL_STATES {
        let script = dev.path(&format!("{state}_00"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nif [ \"$KILL_AT\" = {state} ] && [ ! -e /data/killed ]; then\n\
                 touch /data/killed; sync; kill -9 $PPID; sleep 5\nfi\nexit 0\n"
            ),
        )
        .unwrap();
        args.push("-s".into());
        args.push(script.to_str().unwrap().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dev.artifact(ours(), "rootfs-v2", &args)
}

/// Kills the installer at `state`, cuts the power (reboot), runs `resume`, reboots again, and
/// checks the device runs what its records say, with nothing pending.
fn power_cut_at(loader: Loader, state: &str) {
    let mut dev = AbDevice::new(loader, "");
    let art = killing_artifact(&dev);
    let kill = [("KILL_AT", state)];
    let r = dev.install_env(&art, &[], &kill);
    if !state.starts_with("ArtifactInstall") {
        assert_eq!(r.code, 0, "{state}: {}{}", r.stdout, r.stderr);
        assert_eq!(dev.reboot(), "rootfs-v2");
        let cmd = if state.starts_with("ArtifactCommit") {
            "commit"
        } else {
            "rollback"
        };
        let r = dev.update_env(&[cmd], &kill);
        assert_eq!(
            r.code, -9,
            "{state}: {cmd} must be killed: {}{}",
            r.stdout, r.stderr
        );
    } else {
        assert_eq!(
            r.code, -9,
            "{state}: install must be killed: {}{}",
            r.stdout, r.stderr
        );
    }
    assert!(dev.data().join("killed").exists());
    dev.reboot();
    let r = dev.update(&["resume"]);
    assert!(
        r.code == 0 || r.code == 1,
        "{state}: resume: {}{}",
        r.stdout,
        r.stderr
    );
    let expected = if state == "ArtifactCommit_Leave" {
        "rootfs-v2"
    } else {
        "rootfs-v1"
    };
    assert_eq!(dev.var("upgrade_available"), "0", "{state}");
    assert_eq!(dev.reboot(), expected, "{state}");
    assert_eq!(dev.installed(), expected, "{state}");
    assert_eq!(dev.update(&["resume"]).code, 2, "{state}");
}

#[test]
fn uboot_power_cut_at_every_state() {
    for state in KILL_STATES {
        power_cut_at(Loader::Uboot, state);
    }
}

#[test]
fn grub_power_cut_at_every_state() {
    for state in KILL_STATES {
        power_cut_at(Loader::Grub, state);
    }
}

/// A power cut while the image streams onto B: the boot variables were never touched, so the
/// device boots v1 and nothing is pending.
#[test]
fn power_cut_while_writing_the_partition() {
    let mut dev = AbDevice::new(Loader::Uboot, "");
    let env = dev.env_bytes();
    let art = dev.artifact(ours(), "rootfs-v2", &["--compression", "none"]);
    dev.install_killed_midway(&art);
    assert_eq!(dev.env_bytes(), env);
    assert_back_on_v1(&mut dev);
    // The interrupted write does not get in the way of the next install.
    install_v2(&dev, ours());
}

/// The environment in use as U-Boot reads it: from the copy with the newer flag among those
/// whose CRC holds, the variables up to the terminating empty string. (What lies beyond is not
/// part of the environment; libubootenv 0.3 leaves bytes of its own memory there, different in
/// every process, so no two writers agree on them.)
fn current_uboot_vars(bytes: &[u8]) -> Vec<u8> {
    let (one, two) = bytes.split_at(bytes.len() / 2);
    let valid = |c: &[u8]| {
        let crc = u32::from_le_bytes(c[..4].try_into().unwrap());
        crc32fast::hash(&c[5..]) == crc
    };
    let pick = match (valid(one), valid(two)) {
        (true, false) => one,
        (false, true) => two,
        (true, true) if two[4] == one[4].wrapping_add(1) => two,
        (true, true) => one,
        (false, false) => panic!("no valid environment copy"),
    };
    let data = &pick[5..];
    let end = data
        .windows(2)
        .position(|w| w == [0, 0])
        .expect("terminated")
        + 2;
    data[..end].to_vec()
}

/// Upstream's client (3.4, whose rootfs-image handler is built in) and ours, on identical
/// devices: after install and after commit the environment in use is the same, byte for byte.
#[test]
fn boot_environment_matches_upstream_client() {
    let mut dev = AbDevice::new(Loader::Uboot, "");
    let art = dev.artifact(upstream(), "rootfs-v2", &[]);
    std::fs::copy(&art, dev.data().join("v2.mender")).unwrap();
    dev.save_data();
    let mut cycle = |bin: &str| -> (Vec<u8>, Vec<u8>) {
        dev.restore_data();
        let r = finish(
            dev.command(&[bin, "install", "/data/v2.mender"])
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{bin}: {}{}", r.stdout, r.stderr);
        let installed = current_uboot_vars(&dev.env_bytes());
        assert_eq!(dev.reboot(), "rootfs-v2");
        let r = finish(dev.command(&[bin, "commit"]).output().unwrap());
        assert_eq!(r.code, 0, "{bin}: {}{}", r.stdout, r.stderr);
        (installed, current_uboot_vars(&dev.env_bytes()))
    };
    let theirs = cycle("mender");
    let ours = cycle("/opt/mender/mender-update");
    let text = |b: &[u8]| String::from_utf8_lossy(b).replace('\0', " ");
    assert_eq!(text(&theirs.0), text(&ours.0), "after install");
    assert_eq!(text(&theirs.1), text(&ours.1), "after commit");
    assert!(text(&ours.0).contains("upgrade_available=1"));
}
