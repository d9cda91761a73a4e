//! `mender-artifact disk-image`: Mender's layouts read back by sfdisk, libubootenv's
//! `fw_printenv`/`fw_setenv`, e2fsprogs, mtools and upstream `mender-artifact`; bad input
//! leaves nothing behind. (A disk it makes boots for real in `realboot`.)

use std::path::Path;
use std::process::Command;

use crate::common::*;

const MIB: u64 = 1 << 20;

/// A small ext4 root filesystem image holding /etc/rootfs-version.
fn rootfs(dir: &Path, name: &str, size: &str) -> String {
    let tree = dir.join(format!("tree-{name}"));
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("etc/rootfs-version"), format!("{name}\n")).unwrap();
    let img = dir.join(format!("{name}.ext4"));
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg(size)
        .output()
        .expect("mkfs.ext4 (e2fsprogs)");
    assert!(out.status.success(), "{out:?}");
    img.display().to_string()
}

fn sfdisk_dump(image: &Path) -> String {
    let out = Command::new("sfdisk")
        .arg("-d")
        .arg(image)
        .output()
        .expect("sfdisk (fdisk)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn fw_config(dir: &Path, image: &Path, offsets: [u64; 2], size: u64) -> String {
    let conf = dir.join("fw_env.config");
    std::fs::write(
        &conf,
        format!(
            "{img} 0x{:x} 0x{size:x}\n{img} 0x{:x} 0x{size:x}\n",
            offsets[0],
            offsets[1],
            img = image.display()
        ),
    )
    .unwrap();
    conf.display().to_string()
}

fn fw(tool: &str, conf: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(["-c", conf])
        .args(args)
        .output()
        .expect("fw_printenv (libubootenv-tool)");
    assert!(out.status.success(), "{tool} {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sdimg_with_uboot_environment() {
    let t = tmp();
    let d = t.path();
    let rootfs = rootfs(d, "release-1", "20M");
    std::fs::create_dir_all(d.join("boot/sub")).unwrap();
    std::fs::write(d.join("boot/boot.scr"), b"script").unwrap();
    std::fs::write(d.join("boot/sub/file.txt"), b"nested").unwrap();
    std::fs::create_dir_all(d.join("data/app")).unwrap();
    std::fs::write(d.join("data/app/state"), b"kept").unwrap();
    let run = ma(
        d,
        &[
            "disk-image",
            "-r",
            &rootfs,
            "--boot",
            "boot",
            "--data",
            "data",
            "-t",
            "raspberrypi4",
            "--storage-size",
            "256M",
            "--uboot-env-init",
            "--uboot-env-set",
            "mender_kernel_name=zImage",
            "--uboot-env-set",
            "bootlimit=3",
            "-o",
            "core.sdimg",
        ],
    )
    .ok();
    // Alignment 8 MiB, environment copies at 8 and 16 MiB, boot at 24 MiB; the root
    // filesystems share what is left of 256 MiB: (256 - 16 - 16 - 16 - 128) / 2 = 40 MiB.
    assert!(
        run.stdout
            .contains("/dev/mmcblk0 0x800000 0x20000 / /dev/mmcblk0 0x1000000 0x20000"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\"RootfsPartA\": \"/dev/mmcblk0p2\""),
        "{}",
        run.stdout
    );
    let img = d.join("core.sdimg");
    let meta = std::fs::metadata(&img).unwrap();
    assert_eq!(meta.len(), 248 * MIB);
    // The mode a plain create gives (not the temp file's 0600).
    let umask = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
        .unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o666 & !umask
    );
    let table = sfdisk_dump(&img);
    for line in [
        "label: dos",
        "core.sdimg1 : start=       49152, size=       32768, type=c, bootable",
        "core.sdimg2 : start=       81920, size=       81920, type=83",
        "core.sdimg3 : start=      163840, size=       81920, type=83",
        "core.sdimg4 : start=      245760, size=      262144, type=83",
    ] {
        assert!(table.contains(line), "{line:?} not in\n{table}");
    }
    // libubootenv reads the environment from both copies, and writes it.
    let conf = fw_config(d, &img, [0x800000, 0x1000000], 0x20000);
    assert_eq!(
        fw("fw_printenv", &conf, &[]),
        "bootcount=0\nbootlimit=3\nmender_boot_part=2\nmender_boot_part_hex=2\n\
         mender_kernel_name=zImage\nupgrade_available=0\n"
    );
    fw("fw_setenv", &conf, &["upgrade_available", "1"]);
    assert_eq!(
        fw("fw_printenv", &conf, &["-n", "upgrade_available"]),
        "1\n"
    );
    // fw_setenv wrote the second copy (the older one); with it torn, the first still reads.
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"torn", 0x1000000 + 100).unwrap();
    drop(f);
    assert_eq!(
        fw("fw_printenv", &conf, &["-n", "upgrade_available"]),
        "0\n"
    );

    // The partitions' files, through our tool and upstream's.
    for tool in [ours(), upstream()] {
        let cat = |path: &str| {
            run_in(d, tool, &["cat", &format!("core.sdimg:{path}")])
                .ok()
                .stdout
        };
        assert_eq!(cat("/etc/rootfs-version"), "release-1\n");
        assert_eq!(
            cat("/data/mender/device_type"),
            "device_type=raspberrypi4\n"
        );
        assert_eq!(cat("/data/app/state"), "kept");
        assert_eq!(cat("/uboot/boot.scr"), "script");
        assert_eq!(cat("/uboot/sub/file.txt"), "nested");
    }
    for offset in [81920 * 512u64, 245760 * 512] {
        let out = Command::new("e2fsck")
            .args(["-fn", &format!("{}?offset={offset}", img.display())])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    // B is empty, as Yocto leaves it.
    let b = std::fs::read(&img).unwrap();
    assert!(b[(81920 + 81920) * 512..(81920 + 2 * 81920) * 512]
        .iter()
        .all(|&x| x == 0));
}

#[test]
fn uefiimg_is_gpt_with_an_esp() {
    let t = tmp();
    let d = t.path();
    let a = rootfs(d, "release-1", "12M");
    let b = rootfs(d, "release-0", "10M");
    ma(
        d,
        &[
            "disk-image",
            "-r",
            &a,
            "--rootfs-b",
            &b,
            "--alignment",
            "4M",
            "--data-size",
            "16M",
            "--storage-device",
            "/dev/sda",
            "-o",
            "core.uefiimg",
        ],
    )
    .ok();
    let img = d.join("core.uefiimg");
    let table = sfdisk_dump(&img);
    // Partitions as large as the larger image, rounded up to the alignment; one more aligned
    // block at the end for the backup table.
    for line in [
        "label: gpt",
        "start=        8192, size=       32768, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        "name=\"boot\", attrs=\"LegacyBIOSBootable\"",
        "start=       40960, size=       24576, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        "start=       65536, size=       24576, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        "start=       90112, size=       32768, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        "name=\"data\"",
    ] {
        assert!(table.contains(line), "{line:?} not in\n{table}");
    }
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 64 * MIB);
    let verify = Command::new("sfdisk").arg("-V").arg(&img).output().unwrap();
    assert!(verify.status.success(), "{verify:?}");
    for tool in [ours(), upstream()] {
        let run = run_in(d, tool, &["cat", "core.uefiimg:/etc/rootfs-version"]).ok();
        assert_eq!(run.stdout, "release-1\n");
    }
    // Our cp writes into the data partition of the image.
    std::fs::write(d.join("note"), b"hello").unwrap();
    ma(d, &["cp", "note", "core.uefiimg:/data/note"]).ok();
    assert_eq!(
        ma(d, &["cat", "core.uefiimg:/data/note"]).ok().stdout,
        "hello"
    );
}

#[test]
fn bad_input_leaves_nothing() {
    let t = tmp();
    let d = t.path();
    let image = rootfs(d, "release-1", "20M");
    std::fs::write(d.join("keep.sdimg"), b"old").unwrap();
    let cases: [(&[&str], i32, &str); 9] = [
        (
            &["-r", "release-1.ext4", "--rootfs-size", "8M"],
            1,
            "do not fit the rootfs-a partition",
        ),
        (&["-r", "missing.ext4"], 1, "missing.ext4"),
        (&["-r", &image, "--boot-size", "1.5M"], 2, "not a size"),
        (
            &["-r", &image, "--storage-size", "64M"],
            2,
            "no room for the root filesystems",
        ),
        (&["-r", &image, "--alignment", "1000"], 2, "multiple of 512"),
        (
            &["-r", &image, "--uboot-env-set", "bad name=1"],
            2,
            "not a U-Boot environment variable name",
        ),
        (
            &["-r", &image, "--rootfs-size", "8388608T"],
            2,
            "more than a disk can hold",
        ),
        (
            &["-r", &image, "--uboot-env-init", "--uboot-env-size", "16G"],
            2,
            "U-Boot environment size",
        ),
        (&["-r", &image, "-o", "/dev/null"], 1, "not a regular file"),
    ];
    for (args, code, message) in cases {
        let mut all = vec!["disk-image"];
        all.extend_from_slice(args);
        if !args.contains(&"-o") {
            all.extend(["-o", "keep.sdimg"]);
        }
        let run = ma(d, &all);
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        assert_eq!(std::fs::read(d.join("keep.sdimg")).unwrap(), b"old");
    }
    // A data image larger than the partition, and a failing mkfs.vfat (a boot partition too
    // small for FAT), both after the output was started: no temp file stays.
    let big = rootfs(d, "big", "40M");
    let run = ma(
        d,
        &[
            "disk-image",
            "-r",
            &image,
            "--data",
            &big,
            "--data-size",
            "16M",
            "-o",
            "keep.sdimg",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    // A boot folder that does not fit its partition: mcopy fails once the image is begun.
    std::fs::create_dir_all(d.join("bigboot")).unwrap();
    std::fs::write(d.join("bigboot/blob"), vec![7u8; 3 << 20]).unwrap();
    let run = ma(
        d,
        &[
            "disk-image",
            "-r",
            &image,
            "--boot",
            "bigboot",
            "--boot-size",
            "2M",
            "--alignment",
            "1M",
            "-o",
            "keep.sdimg",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("mcopy"), "{}", run.stderr);
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(std::fs::read(d.join("keep.sdimg")).unwrap(), b"old");
}
