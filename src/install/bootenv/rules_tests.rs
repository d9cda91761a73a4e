//! Table tests of the boot-variable rules.

use super::rules::*;
use super::{BootEnvError, Vars};

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
        .collect()
}

fn set(pairs: &[(&'static str, &str)]) -> Assignments {
    Assignments(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
}

#[test]
fn install_table() {
    let a_active = vars(&[("mender_boot_part", "2"), ("upgrade_available", "0")]);
    let b_active = vars(&[("mender_boot_part", "3"), ("upgrade_available", "0")]);
    let fresh = vars(&[("mender_boot_part", "2")]);
    let pending = vars(&[("mender_boot_part", "3"), ("upgrade_available", "1")]);
    let want = |n: &str, hex: &str| {
        set(&[
            ("mender_boot_part", n),
            ("mender_boot_part_hex", hex),
            ("upgrade_available", "1"),
            ("bootcount", "0"),
        ])
    };
    type Row<'a> = (&'a str, &'a Vars, u32, u32, Result<Assignments, &'a str>);
    let table: Vec<Row> = vec![
        ("from A", &a_active, 2, 3, Ok(want("3", "3"))),
        ("from B", &b_active, 3, 2, Ok(want("2", "2"))),
        ("upgrade_available unset", &fresh, 2, 3, Ok(want("3", "3"))),
        ("hex for 10", &a_active, 2, 10, Ok(want("10", "a"))),
        ("hex for 31", &a_active, 2, 31, Ok(want("31", "1f"))),
        (
            "while pending",
            &pending,
            3,
            2,
            Err("an update is already pending in the boot environment"),
        ),
        (
            "same slot",
            &a_active,
            2,
            2,
            Err("active and passive partition are both 2"),
        ),
    ];
    for (name, v, active, passive, want) in table {
        let got = install(v, active, passive).map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_owned), "{name}");
    }
}

#[test]
fn commit_table() {
    let booted_update = vars(&[
        ("mender_boot_part", "3"),
        ("upgrade_available", "1"),
        ("bootcount", "1"),
    ]);
    let fell_back = vars(&[
        ("mender_boot_part", "2"),
        ("upgrade_available", "0"),
        ("bootcount", "2"),
    ]);
    let not_rebooted = vars(&[("mender_boot_part", "3"), ("upgrade_available", "1")]);
    let no_part = vars(&[("upgrade_available", "1")]);
    let table: Vec<(&str, &Vars, u32, Result<Assignments, &str>)> = vec![
        (
            "after a successful reboot",
            &booted_update,
            3,
            Ok(set(&[("upgrade_available", "0")])),
        ),
        (
            "after the boot loader fell back",
            &fell_back,
            2,
            Err("Upgrade failed and was reverted: refusing to commit!"),
        ),
        (
            "before the reboot",
            &not_rebooted,
            2,
            Err("cannot commit: partition 2 is running but the boot loader environment selects 3 (reboot into the update first)"),
        ),
        (
            "boot part unset",
            &no_part,
            3,
            Err("mender_boot_part is not set in the boot loader environment"),
        ),
    ];
    for (name, v, running, want) in table {
        let got = commit(v, running).map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_owned), "{name}");
    }
}

#[test]
fn rollback_table() {
    let before_reboot = vars(&[("mender_boot_part", "3"), ("upgrade_available", "1")]);
    let after_reboot = vars(&[
        ("mender_boot_part", "3"),
        ("upgrade_available", "1"),
        ("bootcount", "1"),
    ]);
    let fell_back = vars(&[("mender_boot_part", "2"), ("upgrade_available", "0")]);
    let committed = vars(&[("mender_boot_part", "3"), ("upgrade_available", "0")]);
    let garbage = vars(&[("mender_boot_part", "x"), ("upgrade_available", "0")]);
    let back = set(&[
        ("mender_boot_part", "2"),
        ("mender_boot_part_hex", "2"),
        ("upgrade_available", "0"),
    ]);
    let table: Vec<(&str, &Vars, Result<Assignments, &str>)> = vec![
        ("before the reboot", &before_reboot, Ok(back.clone())),
        ("after the reboot", &after_reboot, Ok(back)),
        ("boot loader already fell back", &fell_back, Ok(set(&[]))),
        (
            "after a commit",
            &committed,
            Ok(set(&[
                ("mender_boot_part", "2"),
                ("mender_boot_part_hex", "2"),
            ])),
        ),
        (
            "unreadable boot part",
            &garbage,
            Err("mender_boot_part=\"x\" in the boot loader environment is not a number"),
        ),
    ];
    for (name, v, want) in table {
        let got = rollback(v, 2).map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_owned), "{name}");
    }
}

#[test]
fn partition_numbers() {
    for (dev, n) in [
        ("/dev/mmcblk0p2", 2),
        ("/dev/sda3", 3),
        ("/dev/nvme0n1p12", 12),
        ("ubi0_1", 1),
        ("/dev/ubi1_10", 10),
    ] {
        assert_eq!(partition_number(dev).unwrap(), n, "{dev}");
    }
    assert!(matches!(
        partition_number("/dev/root"),
        Err(BootEnvError::NoPartitionNumber(_))
    ));
    assert_eq!(Partition::parse("ubi0_1").unwrap().device, "/dev/ubi0_1");
}

/// Device numbers of a simulated disk: A is 179:2, B is 179:3.
fn nodes(dev: &str) -> Option<(u32, u32)> {
    match dev {
        "/dev/mmcblk0p2" => Some((179, 2)),
        "/dev/mmcblk0p3" => Some((179, 3)),
        _ => None,
    }
}

#[test]
fn active_partition_table() {
    const A: &str = "/dev/mmcblk0p2";
    const B: &str = "/dev/mmcblk0p3";
    let on_a = vars(&[("mender_boot_part", "2")]);
    let on_b = vars(&[("mender_boot_part", "3")]);
    let on_9 = vars(&[("mender_boot_part", "9")]);
    type Row<'a> = (
        &'a str,
        &'a Vars,
        Option<(u32, u32)>,
        Option<&'a str>,
        Result<&'a str, &'a str>,
    );
    let table: Vec<Row> = vec![
        ("A, root matches", &on_a, Some((179, 2)), None, Ok(A)),
        ("B, root matches", &on_b, Some((179, 3)), None, Ok(B)),
        (
            "env says B, A mounted",
            &on_b,
            Some((179, 2)),
            None,
            Err("mounted root /dev/mmcblk0p2 does not match the boot loader environment (mender_boot_part=3)"),
        ),
        (
            "env says A, unknown root",
            &on_a,
            Some((8, 1)),
            Some("root=/dev/mmcblk0p2"),
            Err("mounted root 8:1 does not match the boot loader environment (mender_boot_part=2)"),
        ),
        (
            "no stat, cmdline agrees",
            &on_b,
            None,
            Some("console=ttyS0 root=/dev/mmcblk0p3 rw"),
            Ok(B),
        ),
        (
            "no stat, cmdline disagrees",
            &on_b,
            None,
            Some("root=/dev/mmcblk0p2 rootwait"),
            Err("mounted root /dev/mmcblk0p2 does not match the boot loader environment (mender_boot_part=3)"),
        ),
        (
            "nothing to compare with",
            &on_a,
            None,
            Some("quiet"),
            Err("cannot determine the mounted root device to compare with /dev/mmcblk0p2"),
        ),
        (
            "boot part is neither",
            &on_9,
            Some((179, 2)),
            None,
            Err("mender_boot_part=9 matches neither rootfs partition a (/dev/mmcblk0p2) nor b (/dev/mmcblk0p3)"),
        ),
    ];
    for (name, v, root, cmdline, want) in table {
        let got = active_partition(v, A, B, root, nodes, cmdline)
            .map(|s| {
                assert_ne!(s.active, s.passive);
                s.active.device
            })
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            want.map(str::to_owned).map_err(str::to_owned),
            "{name}"
        );
    }
}

#[test]
fn active_partition_on_ubi_uses_the_command_line() {
    let v = vars(&[("mender_boot_part", "1")]);
    let any = |_: &str| Some((0, 17));
    let s = active_partition(
        &v,
        "ubi0_1",
        "ubi0_2",
        Some((0, 17)),
        any,
        Some("root=ubi0_1"),
    );
    assert_eq!(s.unwrap().passive.device, "/dev/ubi0_2");
    let err = active_partition(
        &v,
        "ubi0_1",
        "ubi0_2",
        Some((0, 17)),
        any,
        Some("root=ubi0_2"),
    );
    assert!(matches!(err, Err(BootEnvError::RootMismatch { .. })));
    let same = active_partition(&v, "/dev/sda1", "/dev/sdb1", None, nodes, None);
    assert!(matches!(
        same,
        Err(BootEnvError::SamePartitionNumber { .. })
    ));
}

#[test]
fn bootloader_step_table() {
    let uboot = Bootloader::Uboot { bootlimit: 1 };
    let pending0 = vars(&[
        ("mender_boot_part", "3"),
        ("upgrade_available", "1"),
        ("bootcount", "0"),
    ]);
    let pending1 = vars(&[
        ("mender_boot_part", "3"),
        ("upgrade_available", "1"),
        ("bootcount", "1"),
    ]);
    let settled = vars(&[("mender_boot_part", "2"), ("upgrade_available", "0")]);
    let table: Vec<(&str, &Vars, Bootloader, u32, Assignments)> = vec![
        (
            "u-boot first boot",
            &pending0,
            uboot,
            3,
            set(&[("bootcount", "1")]),
        ),
        (
            "u-boot past the limit",
            &pending1,
            uboot,
            2,
            set(&[
                ("bootcount", "2"),
                ("mender_boot_part", "2"),
                ("mender_boot_part_hex", "2"),
                ("upgrade_available", "0"),
            ]),
        ),
        ("u-boot settled", &settled, uboot, 2, set(&[])),
        (
            "grub first boot",
            &pending0,
            Bootloader::Grub,
            3,
            set(&[("bootcount", "1")]),
        ),
        (
            "grub second boot",
            &pending1,
            Bootloader::Grub,
            2,
            set(&[
                ("mender_boot_part", "2"),
                ("upgrade_available", "0"),
                ("bootcount", "0"),
            ]),
        ),
        ("grub settled", &settled, Bootloader::Grub, 2, set(&[])),
    ];
    for (name, v, kind, part, changes) in table {
        let boot = bootloader_step(v, kind, 2, 3).unwrap();
        assert_eq!((boot.partition, boot.changes), (part, changes), "{name}");
    }
}
