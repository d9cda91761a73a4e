//! Real boot: `scripts/real-boot` with the binaries under test. A QEMU x86 machine (software
//! emulation, no KVM) boots a disk made by `mender-artifact disk-image` through Debian's
//! U-Boot (`.sdimg`), or through OVMF and Debian's GRUB (`.uefiimg`); inside it our
//! `mender-update` installs full and delta artifacts, the machine reboots through the boot
//! loader, which counts boots and falls back from images that do not boot. The script checks
//! the whole transcript; these tests read the console log again for the boot loader's
//! decisions and the boot variables as the guest read them back.
//!
//! Skipped, saying why, where QEMU, Debian's U-Boot or OVMF is not installed, unless
//! `MENDER_TEST_REQUIRE_QEMU` is set: the test command sets it, so CI never skips them.

use std::path::Path;
use std::process::Command;

use crate::common::ours;

const UBOOT_ROM: &str = "/usr/lib/u-boot/qemu-x86/u-boot.rom";
const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";

/// Why QEMU cannot run here, if it cannot (with OVMF for `uefi`).
fn qemu_unavailable(uefi: bool) -> Option<String> {
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
    if uefi && !Path::new(OVMF_CODE).exists() {
        return Some(format!("{OVMF_CODE} is missing (Debian's ovmf)"));
    }
    None
}

/// Runs `scripts/real-boot` with `args` and the binaries under test; the console log, or
/// `None` when QEMU cannot run here (and the test is allowed to skip).
fn real_boot(test: &str, args: &[&str]) -> Option<String> {
    if let Some(why) = qemu_unavailable(args.contains(&"--grub")) {
        assert!(
            std::env::var_os("MENDER_TEST_REQUIRE_QEMU").is_none(),
            "the real-boot test must run here, but {why}"
        );
        eprintln!(
            "SKIPPED realboot::{test}: {why} (scripts/test installs qemu-system-x86, \
             u-boot-qemu and ovmf)"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(ours()).parent().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/real-boot");
    let out = Command::new(&script)
        .args(args)
        .arg(dir.path())
        .env("MENDER_BIN_DIR", bin)
        .output()
        .expect("running scripts/real-boot");
    let console = std::fs::read_to_string(dir.path().join("console.log")).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = console.lines().rev().take(60).collect();
    assert!(
        out.status.success(),
        "scripts/real-boot failed:\n{stdout}\n{}\n--- console.log (end) ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    eprintln!("{}", stdout.lines().last().unwrap_or_default());
    Some(console)
}

/// What the boot loader decided at each boot, in order.
fn decisions(console: &str) -> Vec<&str> {
    console
        .lines()
        .filter(|l| l.starts_with("mender: booting partition") || l.contains("falling back"))
        .collect()
}

/// The running system and the boot variables as the guest read them after each boot that
/// reached user space (the broken images never did), and the commits: refused after each
/// fallback, as upstream's are, with the committed artifact kept.
fn check_guest(console: &str, after_fallback: &str) {
    let booted: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("@@ booted") || l.starts_with("@@ boot env"))
        .collect();
    let after = format!("@@ boot env: mender_boot_part=3 {after_fallback} ");
    let after_a = format!("@@ boot env: mender_boot_part=2 {after_fallback} ");
    assert_eq!(
        booted,
        [
            "@@ booted release-1 from /dev/vda2",
            "@@ boot env: mender_boot_part=2 upgrade_available=0 bootcount=0 ",
            "@@ booted release-2 from /dev/vda3",
            "@@ boot env: mender_boot_part=3 upgrade_available=1 bootcount=1 ",
            "@@ booted release-2 from /dev/vda3",
            &after,
            "@@ booted release-3 from /dev/vda2",
            "@@ boot env: mender_boot_part=2 upgrade_available=1 bootcount=1 ",
            "@@ booted release-3 from /dev/vda2",
            &after_a,
        ],
        "{console}"
    );
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

/// The boot loader's decisions for the plan's seven boots: boot A, try B, try A (broken),
/// fall back to B, try A (the delta), try B (broken), fall back to A. `fallback` is the
/// loader's line when it gives up on a trial, `after` the variables it boots with then.
fn expected_decisions(fallback: &str, after: &str) -> Vec<String> {
    let boot = |part: u32, vars: &str| format!("mender: booting partition {part} ({vars})");
    let trial = "upgrade_available=1 bootcount=1";
    vec![
        boot(2, "upgrade_available=0 bootcount=0"),
        boot(3, trial),
        boot(2, trial),
        fallback.to_string(),
        boot(3, after),
        boot(2, trial),
        boot(3, trial),
        fallback.to_string(),
        boot(2, after),
    ]
}

#[test]
fn uboot_full_and_delta_updates_with_rollback() {
    let Some(console) = real_boot("uboot_full_and_delta_updates_with_rollback", &[]) else {
        return;
    };
    // U-Boot counts every boot of an update on trial and falls back past bootlimit=1.
    let after = "upgrade_available=0 bootcount=2";
    assert_eq!(
        decisions(&console),
        expected_decisions(
            "mender: bootcount 2 exceeds bootlimit 1: falling back",
            after
        ),
        "{console}"
    );
    check_guest(&console, after);
}

#[test]
fn grub_uefi_full_and_delta_updates_with_rollback() {
    let Some(console) = real_boot(
        "grub_uefi_full_and_delta_updates_with_rollback",
        &["--grub"],
    ) else {
        return;
    };
    // GRUB marks the trial boot with bootcount=1 and falls back when it finds it still so.
    let after = "upgrade_available=0 bootcount=0";
    assert_eq!(
        decisions(&console),
        expected_decisions(
            "mender: bootcount 1: the update was not committed, falling back",
            after
        ),
        "{console}"
    );
    check_guest(&console, after);
}
