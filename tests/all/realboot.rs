//! Real boot: `scripts/real-boot` with the binaries under test. A QEMU x86 machine (software
//! emulation, no KVM) with Debian's U-Boot boots a disk made by `mender-artifact disk-image`;
//! inside it our `mender-update` installs full and delta artifacts, the machine reboots through
//! U-Boot, which counts boots and falls back past `bootlimit`. The script checks the whole
//! transcript; this test reads the console log again for the boot loader's decisions and the
//! boot variables as the guest read them back.
//!
//! Skipped, saying why, where QEMU or Debian's U-Boot is not installed, unless
//! `MENDER_TEST_REQUIRE_QEMU` is set: the test command sets it, so CI never skips it.

use std::path::Path;
use std::process::Command;

use crate::common::ours;

const UBOOT_ROM: &str = "/usr/lib/u-boot/qemu-x86/u-boot.rom";

/// Why QEMU cannot run here, if it cannot.
fn qemu_unavailable() -> Option<String> {
    match Command::new("qemu-system-x86_64").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Some(format!(
                "qemu-system-x86_64 --version failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
        Err(e) => return Some(format!("qemu-system-x86_64 cannot run: {e}")),
    }
    if !Path::new(UBOOT_ROM).exists() {
        return Some(format!("{UBOOT_ROM} is missing (Debian's u-boot-qemu)"));
    }
    None
}

#[test]
fn uboot_full_and_delta_updates_with_rollback() {
    if let Some(why) = qemu_unavailable() {
        assert!(
            std::env::var_os("MENDER_TEST_REQUIRE_QEMU").is_none(),
            "the real-boot test must run here, but {why}"
        );
        eprintln!(
            "SKIPPED realboot::uboot_full_and_delta_updates_with_rollback: {why} \
             (scripts/test installs qemu-system-x86 and u-boot-qemu)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(ours()).parent().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/real-boot");
    let out = Command::new(&script)
        .arg(dir.path())
        .env("MENDER_BIN_DIR", bin)
        .output()
        .expect("running scripts/real-boot");
    let console = std::fs::read_to_string(dir.path().join("console.log")).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/real-boot failed:\n{stdout}\n{}\n--- console.log (end) ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        console
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("{}", stdout.lines().last().unwrap_or_default());

    // What U-Boot decided at each of the seven boots, in order.
    let boots: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("mender: booting partition") || l.contains("falling back"))
        .collect();
    assert_eq!(
        boots,
        [
            "mender: booting partition 2 (upgrade_available=0 bootcount=0)",
            "mender: booting partition 3 (upgrade_available=1 bootcount=1)",
            "mender: booting partition 2 (upgrade_available=1 bootcount=1)",
            "mender: bootcount 2 exceeds bootlimit 1: falling back",
            "mender: booting partition 3 (upgrade_available=0 bootcount=2)",
            "mender: booting partition 2 (upgrade_available=1 bootcount=1)",
            "mender: booting partition 3 (upgrade_available=1 bootcount=1)",
            "mender: bootcount 2 exceeds bootlimit 1: falling back",
            "mender: booting partition 2 (upgrade_available=0 bootcount=2)",
        ],
        "{console}"
    );
    // The running system, as the guest saw it after each boot that reached user space: the
    // broken images never did, and the boot variables read back from inside agree with U-Boot.
    let booted: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("@@ booted") || l.starts_with("@@ boot env"))
        .collect();
    assert_eq!(
        booted,
        [
            "@@ booted release-1 from /dev/vda2",
            "@@ boot env: mender_boot_part=2 upgrade_available=0 bootcount=0 ",
            "@@ booted release-2 from /dev/vda3",
            "@@ boot env: mender_boot_part=3 upgrade_available=1 bootcount=1 ",
            "@@ booted release-2 from /dev/vda3",
            "@@ boot env: mender_boot_part=3 upgrade_available=0 bootcount=2 ",
            "@@ booted release-3 from /dev/vda2",
            "@@ boot env: mender_boot_part=2 upgrade_available=1 bootcount=1 ",
            "@@ booted release-3 from /dev/vda2",
            "@@ boot env: mender_boot_part=2 upgrade_available=0 bootcount=2 ",
        ],
        "{console}"
    );
    // Commit after each fallback refuses, as upstream's does, and the committed artifact stays.
    let exits: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("@@ step") && l.contains(" exit "))
        .collect();
    for (step, code) in [(2, 0), (3, 1), (4, 0), (5, 1)] {
        let line = format!("@@ step {step} exit {code}: mender-update commit");
        assert!(exits.contains(&line.as_str()), "{line} missing: {exits:#?}");
    }
    assert_eq!(
        console
            .matches("Upgrade failed and was reverted: refusing to commit!")
            .count(),
        2
    );
}
