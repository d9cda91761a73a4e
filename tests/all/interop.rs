//! Both ways with upstream 3.9.0: what we write passes its `validate` and its `read` shows
//! the same fields; what it wrote passes ours and our `read` prints what it prints.

use std::io::{Read, Write};
use std::path::Path;

use crate::common::*;

const UPSTREAM_FIXTURES: [&str; 14] = [
    "rootfs-gzip",
    "rootfs-lzma",
    "rootfs-none",
    "rootfs-v2",
    "rootfs-swver",
    "rootfs-scripts",
    "module-image",
    "module-none",
    "module-nofiles",
    "bootstrap",
    "augmented",
    "signed-rsa",
    "signed-ecdsa",
    "module-signed-none",
];

#[test]
fn upstream_fixtures_pass_our_validate_and_read_the_same() {
    let dir = tmp();
    for name in UPSTREAM_FIXTURES {
        let f = upstream_fixture(&format!("{name}.mender"));
        let f = f.to_str().unwrap();
        ma(dir.path(), &["validate", f]).ok();
        let ours = ma(dir.path(), &["read", "--no-progress", f]).ok().stdout;
        let theirs =
            std::fs::read_to_string(upstream_fixture(&format!("{name}.read.txt"))).unwrap();
        if name == "rootfs-scripts" {
            // Upstream stores several scripts in random order; compare as sets of lines.
            let mut a: Vec<&str> = ours.lines().collect();
            let mut b: Vec<&str> = theirs.lines().collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{name}");
        } else {
            assert_eq!(ours, theirs, "read output of {name}");
        }
    }
}

/// Upstream's read of `ours`, with script order normalised.
fn upstream_read(dir: &Path, file: &str) -> Vec<String> {
    let out = upstream_ma(dir, &["read", "--no-progress", file])
        .ok()
        .stdout;
    let mut lines: Vec<String> = out.lines().map(String::from).collect();
    lines.sort();
    lines
}

fn write_both(dir: &Path, name: &str, args: &[&str]) {
    let ours_out = format!("ours-{name}.mender");
    let theirs_out = format!("theirs-{name}.mender");
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["-o", &ours_out]);
    ma(dir, &a).ok();
    let mut b: Vec<&str> = args.to_vec();
    b.extend(["-o", &theirs_out]);
    upstream_ma(dir, &b).ok();
    upstream_ma(dir, &["validate", &ours_out]).ok();
    let mut ours = upstream_read(dir, &ours_out);
    let mut theirs = upstream_read(dir, &theirs_out);
    // Only the payload mtimes may differ (none do: inputs have fixed mtimes).
    ours.retain(|l| !l.contains("Reading Artifact"));
    theirs.retain(|l| !l.contains("Reading Artifact"));
    assert_eq!(ours, theirs, "upstream read of {name}");
}

#[test]
fn our_artifacts_pass_upstream_validate_with_the_same_fields() {
    let dir = tmp();
    let d = dir.path();
    let (rootfs, f1, f2, meta) = (
        input("rootfs.img"),
        input("file1.txt"),
        input("file2.bin"),
        input("meta-data.json"),
    );
    let scripts = input("scripts");
    for comp in ["gzip", "lzma", "none"] {
        write_both(
            d,
            &format!("rootfs-{comp}"),
            &[
                "write",
                "rootfs-image",
                "-f",
                &rootfs,
                "-t",
                "qemux86-64",
                "-t",
                "other",
                "-n",
                "release-1",
                "--compression",
                comp,
                "--no-progress",
            ],
        );
    }
    write_both(
        d,
        "rootfs-v2",
        &[
            "write",
            "rootfs-image",
            "-f",
            &rootfs,
            "-t",
            "qemux86-64",
            "-n",
            "release-v2",
            "-v",
            "2",
            "--no-progress",
        ],
    );
    write_both(
        d,
        "rootfs-sw",
        &[
            "write",
            "rootfs-image",
            "-f",
            &rootfs,
            "-t",
            "dev",
            "-n",
            "rel",
            "--software-name",
            "app",
            "--software-version",
            "2.0",
            "--legacy-rootfs-image-checksum",
            "-N",
            "old",
            "-g",
            "grp",
            "-G",
            "oldgrp",
            "--no-progress",
        ],
    );
    write_both(
        d,
        "rootfs-scripts",
        &[
            "write",
            "rootfs-image",
            "-f",
            &rootfs,
            "-t",
            "dev",
            "-n",
            "rel",
            "-s",
            &scripts,
            "--no-progress",
        ],
    );
    write_both(
        d,
        "rootfs-fs",
        &[
            "write",
            "rootfs-image",
            "-f",
            &rootfs,
            "-t",
            "dev",
            "-n",
            "rel",
            "--software-filesystem",
            "data-partition",
            "--software-name",
            "app",
            "--clears-provides",
            "x.*",
            "-p",
            "rootfs-image.version:p",
            "--software-version",
            "sw",
            "--no-progress",
        ],
    );
    write_both(
        d,
        "module",
        &[
            "write",
            "module-image",
            "-T",
            "my-module",
            "-t",
            "devA",
            "-t",
            "devB",
            "-n",
            "module-1.0",
            "-f",
            &f1,
            "-f",
            &f2,
            "-m",
            &meta,
            "-p",
            "my-module.config:a:b",
            "-d",
            "dep.key:v",
            "--clears-provides",
            "foo*",
            "-N",
            "p1",
            "-N",
            "p2",
            "-g",
            "g",
            "-G",
            "og",
        ],
    );
    write_both(
        d,
        "module-nodefault",
        &[
            "write",
            "module-image",
            "-T",
            "m",
            "-t",
            "d",
            "-n",
            "n",
            "--no-default-software-version",
        ],
    );
    write_both(
        d,
        "bootstrap",
        &[
            "write",
            "bootstrap-artifact",
            "-t",
            "qemux86-64",
            "-n",
            "bootstrap-1",
            "-p",
            "custom.key:value",
            "--clears-provides",
            "custom.*",
            "--no-progress",
        ],
    );
    write_both(
        d,
        "augmented",
        &[
            "write",
            "module-image",
            "-T",
            "orig",
            "-t",
            "dev",
            "-n",
            "aug-1",
            "-f",
            &f1,
            "--augment-type",
            "delta",
            "--augment-file",
            &input("update.delta"),
            "--augment-provides",
            "aug.p:1",
            "--augment-depends",
            "aug.d:2",
            "--augment-meta-data",
            &input("augment-meta-data.json"),
        ],
    );
}

#[test]
fn module_manifest_is_byte_identical_to_upstream_uncompressed() {
    let dir = tmp();
    let d = dir.path();
    let (f1, f2, meta) = (
        input("file1.txt"),
        input("file2.bin"),
        input("meta-data.json"),
    );
    let common = [
        "write",
        "module-image",
        "-T",
        "my-module",
        "-t",
        "devA",
        "-t",
        "devB",
        "-n",
        "module-1.0",
        "-f",
        &f1,
        "-f",
        &f2,
        "-m",
        &meta,
        "-p",
        "a:b",
        "-d",
        "c:d",
        "--clears-provides",
        "x*",
        "-N",
        "p",
        "-g",
        "g",
        "-G",
        "h",
        "--compression",
        "none",
    ];
    let mut a = common.to_vec();
    a.extend(["-o", "ours.mender"]);
    ma(d, &a).ok();
    let mut b = common.to_vec();
    b.extend(["-o", "theirs.mender"]);
    upstream_ma(d, &b).ok();
    assert_eq!(
        member(&d.join("ours.mender"), "manifest"),
        member(&d.join("theirs.mender"), "manifest")
    );
    assert_eq!(
        member(&d.join("ours.mender"), "header.tar"),
        member(&d.join("theirs.mender"), "header.tar")
    );
    assert_eq!(
        members(&d.join("ours.mender")),
        members(&d.join("theirs.mender"))
    );
    // Bootstrap too.
    let boot = [
        "write",
        "bootstrap-artifact",
        "-t",
        "d",
        "-n",
        "b",
        "-p",
        "k:v",
        "--compression",
        "none",
        "--no-progress",
    ];
    let mut a = boot.to_vec();
    a.extend(["-o", "ours-b.mender"]);
    ma(d, &a).ok();
    let mut b = boot.to_vec();
    b.extend(["-o", "theirs-b.mender"]);
    upstream_ma(d, &b).ok();
    assert_eq!(
        member(&d.join("ours-b.mender"), "manifest"),
        member(&d.join("theirs-b.mender"), "manifest")
    );
}

#[test]
fn rootfs_type_info_names_the_type() {
    let dir = tmp();
    let d = dir.path();
    ma(
        d,
        &[
            "write",
            "rootfs-image",
            "-f",
            &input("rootfs.img"),
            "-t",
            "x",
            "-n",
            "r",
            "--compression",
            "none",
            "-o",
            "r.mender",
        ],
    )
    .ok();
    let header = member(&d.join("r.mender"), "header.tar");
    let mut ar = tar::Archive::new(&header[..]);
    let ti = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path_bytes().as_ref() == b"headers/0000/type-info")
        .map(|mut e| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            s
        })
        .unwrap();
    assert!(ti.starts_with(r#"{"type":"rootfs-image","#), "{ti}");
}

/// A payload of several compression chunks: data, whole chunks of zeros, data again, and an
/// odd length.
fn chunky_image(path: &Path) -> Vec<u8> {
    let mut img: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    img.extend(vec![0u8; 9 << 20]);
    img.extend((0..700_001u32).map(|i| b"mender artifact "[(i % 16) as usize] ^ (i >> 9) as u8));
    std::fs::write(path, &img).unwrap();
    img
}

/// Writes `chunky.img` in `d` as a rootfs-image artifact `out` with compression `comp`.
fn write_chunky(d: &Path, comp: &str, out: &str) {
    ma(
        d,
        &[
            "write",
            "rootfs-image",
            "-f",
            "chunky.img",
            "-t",
            "dev",
            "-n",
            "chunky",
            "--compression",
            comp,
            "--no-progress",
            "-o",
            out,
        ],
    )
    .ok();
}

/// Our gzip is a series of members and our zstd a series of frames, one per chunk; the
/// readers of the other Mender tools take each as one stream: upstream's Go reader (gzip;
/// 3.9 has no zstd), libarchive (the C++ client's reader, here through bsdtar) and the
/// gzip and zstd tools.
#[test]
fn chunked_streams_read_as_one_by_other_readers() {
    let dir = tmp();
    let d = dir.path();
    let img = chunky_image(&d.join("chunky.img"));
    for (comp, ext, tool) in [
        ("gzip", "gz", "gzip"),
        ("zstd_better", "zst", "zstd"),
        ("lzma", "xz", "xz"),
    ] {
        let out = format!("{comp}.mender");
        write_chunky(d, comp, &out);
        if comp != "zstd_better" {
            upstream_ma(d, &["validate", &out]).ok();
            let read = upstream_read(d, &out).join("\n");
            assert!(read.contains("chunky.img"), "{read}");
        }
        let data = d.join(format!("data-{ext}"));
        std::fs::write(
            &data,
            member(&d.join(&out), &format!("data/0000.tar.{ext}")),
        )
        .unwrap();
        let data = data.to_str().unwrap();
        let via_libarchive = std::process::Command::new("bsdtar")
            .args(["-xOf", data, "chunky.img"])
            .output()
            .expect("bsdtar (apt-get install libarchive-tools)");
        assert!(via_libarchive.status.success(), "bsdtar failed ({comp})");
        assert!(
            via_libarchive.stdout == img,
            "bsdtar read other bytes ({comp})"
        );
        let tar = std::process::Command::new(tool)
            .args(["-dc", data])
            .output()
            .unwrap();
        assert!(tar.status.success(), "{tool} -dc failed");
        let mut ar = tar::Archive::new(&tar.stdout[..]);
        let mut e = ar.entries().unwrap().next().unwrap().unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut back).unwrap();
        assert!(back == img, "{tool} read other bytes");
    }
}

/// An xz data member made of several concatenated streams (as parallel xz tools write
/// them) is one stream to upstream and to us.
#[test]
fn concatenated_xz_streams_read_as_one() {
    let dir = tmp();
    let d = dir.path();
    chunky_image(&d.join("chunky.img"));
    write_chunky(d, "lzma", "one.mender");
    let one = d.join("one.mender");
    let mut tar = Vec::new();
    liblzma::read::XzDecoder::new(&member(&one, "data/0000.tar.xz")[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut streams = Vec::new();
    for part in tar.chunks(tar.len() / 3 + 1) {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(part).unwrap();
        streams.extend(e.finish().unwrap());
    }
    let mut out = tar::Builder::new(std::fs::File::create(d.join("multi.mender")).unwrap());
    for name in members(&one) {
        let data = if name == "data/0000.tar.xz" {
            streams.clone()
        } else {
            member(&one, &name)
        };
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        out.append_data(&mut h, &name, &data[..]).unwrap();
    }
    out.finish().unwrap();
    drop(out);
    upstream_ma(d, &["validate", "multi.mender"]).ok();
    ma(d, &["validate", "multi.mender"]).ok();
    ma(d, &["read", "--no-progress", "multi.mender"]).ok();
}
