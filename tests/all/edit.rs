//! `modify`, `cat`, `cp`, `install` and `rm` on real ext4 and vfat images made here, inside
//! artifacts, bare and in a partitioned disk image; results checked with debugfs, mtools and
//! upstream `mender-artifact`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn sh(dir: &Path, cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An ext4 image with /etc/mender/mender.conf, made with mkfs.ext4 -d.
fn ext4(dir: &Path, name: &str) -> PathBuf {
    sh(dir, &format!(
        "rm -rf tree && mkdir -p tree/etc/mender tree/usr/bin && \
         echo '{{\"ServerURL\":\"https://old.example.com\",\"Extra\":1}}' > tree/etc/mender/mender.conf && \
         mkfs.ext4 -q -F -d tree {name} 16M"
    ));
    dir.join(name)
}

fn vfat(dir: &Path, name: &str) -> PathBuf {
    sh(dir, &format!("rm -f {name} && mkfs.vfat -C {name} 8192 >/dev/null && echo boot > b.txt && MTOOLS_SKIP_CHECK=1 mcopy -i {name} b.txt ::/b.txt"));
    dir.join(name)
}

/// The rootfs image inside an artifact, extracted with tar (independent of our reader).
fn rootfs_of(dir: &Path, artifact: &str) -> PathBuf {
    sh(dir, &format!("rm -rf x && mkdir x && cd x && tar xf ../{artifact} data/0000.tar.gz && tar xzf data/0000.tar.gz"));
    let entries: Vec<_> = std::fs::read_dir(dir.join("x"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    entries[0].clone()
}

fn debugfs(img: &Path, req: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", req])
        .arg(img)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn modify_an_ext4_rootfs_artifact() {
    let dir = tmp();
    let d = dir.path();
    ext4(d, "rootfs.ext4");
    let key = fixtures().join("keys/rsa2048.pem").display().to_string();
    let pubk = fixtures()
        .join("keys/rsa2048.pub.pem")
        .display()
        .to_string();
    ma(
        d,
        &[
            "write",
            "rootfs-image",
            "-f",
            "rootfs.ext4",
            "-t",
            "dev",
            "-n",
            "rel-1",
            "-k",
            &key,
            "-o",
            "a.mender",
        ],
    )
    .ok();
    std::fs::write(d.join("server.crt"), "CERT\n").unwrap();
    std::fs::write(d.join("verify.pem"), "PUBKEY\n").unwrap();
    std::fs::write(d.join("token"), "tenant-token-123\n").unwrap();
    // Without a key the stale signature is dropped, with a note.
    let r = ma(
        d,
        &[
            "modify",
            "-n",
            "rel-2",
            "-u",
            "https://new.example.com",
            "-c",
            "server.crt",
            "-v",
            "verify.pem",
            "-t",
            "token",
            "--device-type",
            "dev2",
            "-p",
            "extra.key:v",
            "a.mender",
        ],
    )
    .ok();
    assert!(r.stderr.contains("signature"), "{}", r.stderr);
    upstream_ma(d, &["validate", "a.mender"]).ok();
    let conf = upstream_ma(d, &["cat", "a.mender:/etc/mender/mender.conf"])
        .ok()
        .stdout;
    let conf: serde_json::Value = serde_json::from_str(&conf).unwrap();
    assert_eq!(conf["ServerURL"], "https://new.example.com");
    assert_eq!(conf["TenantToken"], "tenant-token-123");
    assert_eq!(conf["Extra"], 1, "other keys are kept");
    assert_eq!(
        upstream_ma(d, &["cat", "a.mender:/etc/mender/server.crt"])
            .ok()
            .stdout,
        "CERT\n"
    );
    assert_eq!(
        upstream_ma(d, &["cat", "a.mender:/etc/mender/artifact-verify-key.pem"])
            .ok()
            .stdout,
        "PUBKEY\n"
    );
    assert_eq!(
        upstream_ma(d, &["cat", "a.mender:/etc/mender/artifact_info"])
            .ok()
            .stdout,
        "artifact_name=rel-2\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ma(d, &["read", "--json", "a.mender"]).ok().stdout).unwrap();
    assert_eq!(json["name"], "rel-2");
    assert_eq!(json["compatible_devices"][0], "dev2");
    assert_eq!(json["signed"], false);
    let provides = &json["payloads"][0]["provides"];
    assert_eq!(provides["extra.key"], "v");
    assert_eq!(provides["rootfs-image.version"], "rel-2");
    // The checksum provide follows the new content.
    let img = rootfs_of(d, "a.mender");
    let sum = sh(d, &format!("sha256sum {}", img.display()));
    assert_eq!(
        provides["rootfs-image.checksum"],
        sum.split_whitespace().next().unwrap()
    );
    // With a key it is re-signed.
    ma(
        d,
        &[
            "modify",
            "-u",
            "https://third.example.com",
            "-k",
            &key,
            "a.mender",
        ],
    )
    .ok();
    upstream_ma(d, &["validate", "-k", &pubk, "a.mender"]).ok();
}

#[test]
fn cp_install_rm_cat_in_an_artifact() {
    let dir = tmp();
    let d = dir.path();
    ext4(d, "rootfs.ext4");
    ma(
        d,
        &[
            "write",
            "rootfs-image",
            "-f",
            "rootfs.ext4",
            "-t",
            "dev",
            "-n",
            "r",
            "-o",
            "a.mender",
        ],
    )
    .ok();
    std::fs::write(d.join("tool.sh"), "#!/bin/sh\necho hi\n").unwrap();
    ma(
        d,
        &["install", "-m", "0750", "tool.sh", "a.mender:/usr/bin/tool"],
    )
    .ok();
    ma(d, &["cp", "tool.sh", "a.mender:/etc/mender/copied"]).ok();
    ma(d, &["install", "-d", "a.mender:/opt/app/conf"]).ok();
    upstream_ma(d, &["validate", "a.mender"]).ok();
    assert_eq!(
        upstream_ma(d, &["cat", "a.mender:/usr/bin/tool"])
            .ok()
            .stdout,
        "#!/bin/sh\necho hi\n"
    );
    let img = rootfs_of(d, "a.mender");
    let st = debugfs(&img, "stat /usr/bin/tool");
    assert!(st.contains("Mode:  0750"), "{st}");
    assert!(debugfs(&img, "stat /opt/app/conf").contains("Type: directory"));
    ma(d, &["cp", "a.mender:/etc/mender/copied", "out.txt"]).ok();
    assert_eq!(
        std::fs::read_to_string(d.join("out.txt")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    assert_eq!(
        ma(d, &["cat", "a.mender:/etc/mender/mender.conf"])
            .ok()
            .stdout,
        upstream_ma(d, &["cat", "a.mender:/etc/mender/mender.conf"])
            .ok()
            .stdout
    );
    ma(d, &["rm", "a.mender:/usr/bin/tool"]).ok();
    let r = ma(d, &["rm", "a.mender:/opt"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("-r"), "{}", r.stderr);
    ma(d, &["rm", "-r", "a.mender:/opt"]).ok();
    let img = rootfs_of(d, "a.mender");
    assert!(debugfs(&img, "ls /").contains("usr") && !debugfs(&img, "ls /").contains("opt"));
    assert!(upstream_ma(d, &["cat", "a.mender:/usr/bin/tool"]).code != 0);
    sh(d, &format!("e2fsck -fn {}", img.display()));
    // Standard input as the source.
    let out = Command::new(ours())
        .args(["cp", "-", "a.mender:/etc/from-stdin"])
        .current_dir(d)
        .stdin(std::fs::File::open(d.join("tool.sh")).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        upstream_ma(d, &["cat", "a.mender:/etc/from-stdin"])
            .ok()
            .stdout,
        "#!/bin/sh\necho hi\n"
    );
}

#[test]
fn vfat_and_partitioned_disk_images() {
    let dir = tmp();
    let d = dir.path();
    vfat(d, "boot.vfat");
    std::fs::write(d.join("new.txt"), "new\n").unwrap();
    ma(d, &["cp", "new.txt", "boot.vfat:/new.txt"]).ok();
    assert_eq!(
        sh(d, "MTOOLS_SKIP_CHECK=1 mtype -i boot.vfat ::/new.txt"),
        "new\n"
    );
    assert_eq!(ma(d, &["cat", "boot.vfat:/b.txt"]).ok().stdout, "boot\n");
    ma(d, &["rm", "boot.vfat:/b.txt"]).ok();
    assert!(!sh(d, "MTOOLS_SKIP_CHECK=1 mdir -b -i boot.vfat ::/").contains("b.txt"));

    // boot (vfat), rootfs A, rootfs B, data (ext4), as a Mender .sdimg.
    ext4(d, "root.ext4");
    sh(d, "mkfs.ext4 -q -F data.ext4 8M && truncate -s 64M disk.sdimg && \
           printf 'label: dos\\nstart=2048, size=16384, type=c\\nstart=18432, size=32768, type=83\\nstart=51200, size=32768, type=83\\nstart=83968, size=16384, type=83\\n' | sfdisk -q disk.sdimg && \
           dd if=boot.vfat of=disk.sdimg bs=512 seek=2048 conv=notrunc status=none && \
           dd if=root.ext4 of=disk.sdimg bs=512 seek=18432 conv=notrunc status=none && \
           dd if=data.ext4 of=disk.sdimg bs=512 seek=83968 conv=notrunc status=none");
    ma(d, &["cp", "new.txt", "disk.sdimg:/data/state.txt"]).ok();
    ma(d, &["cp", "new.txt", "disk.sdimg:/uboot/env.txt"]).ok();
    ma(
        d,
        &["modify", "-u", "https://disk.example.com", "disk.sdimg"],
    )
    .ok();
    assert_eq!(
        sh(
            d,
            &format!(
                "debugfs -R 'cat /state.txt' 'disk.sdimg?offset={}' 2>/dev/null",
                83968 * 512
            )
        ),
        "new\n"
    );
    assert_eq!(
        sh(
            d,
            &format!(
                "MTOOLS_SKIP_CHECK=1 mtype -i disk.sdimg@@{} ::/env.txt",
                2048 * 512
            )
        ),
        "new\n"
    );
    let conf = sh(
        d,
        &format!(
            "debugfs -R 'cat /etc/mender/mender.conf' 'disk.sdimg?offset={}' 2>/dev/null",
            18432 * 512
        ),
    );
    assert!(conf.contains("https://disk.example.com"), "{conf}");
    assert_eq!(
        ma(d, &["cat", "disk.sdimg:/data/state.txt"]).ok().stdout,
        "new\n"
    );
    // A bare ext4 image.
    ma(
        d,
        &["modify", "-u", "https://bare.example.com", "root.ext4"],
    )
    .ok();
    assert!(ma(d, &["cat", "root.ext4:/etc/mender/mender.conf"])
        .ok()
        .stdout
        .contains("bare.example.com"));
}

#[test]
fn bad_edits_leave_the_original_intact() {
    let dir = tmp();
    let d = dir.path();
    ext4(d, "rootfs.ext4");
    ma(
        d,
        &[
            "write",
            "rootfs-image",
            "-f",
            "rootfs.ext4",
            "-t",
            "dev",
            "-n",
            "r",
            "-o",
            "a.mender",
        ],
    )
    .ok();
    ma(
        d,
        &[
            "write",
            "module-image",
            "-T",
            "m",
            "-t",
            "dev",
            "-n",
            "m",
            "-f",
            &input("file1.txt"),
            "-o",
            "m.mender",
        ],
    )
    .ok();
    let before = std::fs::read(d.join("a.mender")).unwrap();
    std::fs::write(d.join("f.txt"), "x").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["cat", "a.mender:/etc/nonexistent"], "no such file"),
        (
            vec!["cp", "f.txt", "a.mender:/no/such/dir/f"],
            "does not exist",
        ),
        (vec!["rm", "a.mender:/etc/nonexistent"], "no such file"),
        (vec!["cat", "m.mender:/etc/x"], "rootfs-image"),
        (vec!["cp", "f.txt", "m.mender:/etc/x"], "rootfs-image"),
        (vec!["cp", "f.txt", "a.mender:/data/x"], "data partition"),
        (
            vec!["modify", "-c", "/nonexistent/cert", "a.mender"],
            "/nonexistent/cert",
        ),
        (
            vec!["install", "-m", "999", "f.txt", "a.mender:/etc/f"],
            "invalid mode",
        ),
        (vec!["cat", "a.mender:relative/path"], "FILE:/path"),
        (vec!["cat", "a.mender:/etc/../etc/passwd"], ".."),
        (
            vec!["modify", "-p", "k:v", "rootfs.ext4"],
            "only be used with an artifact",
        ),
        (vec!["cat", "f.txt:/x"], "not an artifact"),
    ];
    for (args, needle) in cases {
        let r = ma(d, &args);
        assert_ne!(r.code, 0, "{args:?} succeeded");
        assert!(
            r.stderr.contains(needle),
            "{args:?}: expected {needle:?} in {}",
            r.stderr
        );
        assert_eq!(
            r.stderr.trim_end().lines().count(),
            1,
            "{args:?}: {}",
            r.stderr
        );
    }
    assert_eq!(std::fs::read(d.join("a.mender")).unwrap(), before);
    // A read-only artifact is refused, untouched.
    let mut p = std::fs::metadata(d.join("a.mender")).unwrap().permissions();
    p.set_readonly(true);
    std::fs::set_permissions(d.join("a.mender"), p).unwrap();
    let r = ma(d, &["cp", "f.txt", "a.mender:/etc/f"]);
    assert!(
        r.code != 0 && r.stderr.contains("read-only"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(d.join("a.mender")).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with(".mender-artifact")),
        "temp files left: {names:?}"
    );
}
