//! `dump`: write → dump → write round trips (upstream fixtures and our own artifacts) compared
//! with `read --json` and, uncompressed, byte for byte; upstream validates the rebuilds; bad
//! input fails with the right status and leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

mod bad;

/// `read --json` of an artifact, with the state scripts sorted (our `write` stores them
/// sorted by name, upstream in command-line order).
fn read_json(dir: &Path, artifact: &Path) -> Value {
    let out = ma(dir, &["read", "--json", "--no-progress", path(artifact)]).ok();
    let mut v: Value = serde_json::from_str(&out.stdout).expect("read --json output");
    if let Some(Value::Array(s)) = v.get_mut("state_scripts") {
        s.sort_by_key(|x| x.as_str().unwrap_or_default().to_string());
    }
    v
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Dumps `artifact` into `dir/<out>` and returns the rebuild arguments from
/// `--print0-cmdline` and what went to stderr.
fn dump(dir: &Path, artifact: &Path, out: &str, extra: &[&str]) -> (Vec<String>, String) {
    let mut args = vec![
        "dump",
        "--no-progress",
        "--print0-cmdline",
        "--output-dir",
        out,
    ];
    args.extend_from_slice(extra);
    args.push(path(artifact));
    let r = ma(dir, &args).ok();
    assert!(
        r.stdout.ends_with('\0'),
        "arguments end with NUL: {:?}",
        r.stdout
    );
    let argv = r.stdout.split_terminator('\0').map(String::from).collect();
    (argv, r.stderr)
}

/// Runs the rebuild arguments (plus `extra`) with our binary.
fn rebuild(dir: &Path, argv: &[String], extra: &[&str]) {
    let mut args: Vec<&str> = argv.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    args.push("--no-progress");
    ma(dir, &args).ok();
}

/// Dump, rebuild and compare; returns the rebuilt artifact.
fn round_trip(dir: &Path, artifact: &Path, out: &str) -> PathBuf {
    let name = format!("{out}.rebuilt.mender");
    let (argv, _) = dump(dir, artifact, out, &["--output-name", &name]);
    assert_eq!(argv[0], "write");
    rebuild(dir, &argv, &[]);
    let rebuilt = dir.join(&name);
    assert_eq!(
        read_json(dir, artifact),
        read_json(dir, &rebuilt),
        "{} and its rebuild differ",
        artifact.display()
    );
    rebuilt
}

#[test]
fn upstream_fixtures_round_trip() {
    let dir = tmp();
    let d = dir.path();
    for (name, kind) in [
        ("module-image", "module-image"),
        ("module-none", "module-image"),
        ("module-nofiles", "module-image"),
        ("rootfs-gzip", "rootfs-image"),
        ("rootfs-lzma", "rootfs-image"),
        ("rootfs-scripts", "rootfs-image"),
        ("rootfs-swver", "rootfs-image"),
        ("rootfs-v2", "rootfs-image"),
        ("bootstrap", "bootstrap-artifact"),
        ("augmented", "module-image"),
    ] {
        let original = upstream_fixture(&format!("{name}.mender"));
        let (argv, _) = dump(d, &original, &format!("probe-{name}"), &[]);
        assert_eq!(argv[1], kind, "{name}: {argv:?}");
        let rebuilt = round_trip(d, &original, name);
        upstream_ma(d, &["validate", path(&rebuilt)]).ok();
        if name == "module-none" {
            // Our header encoding is upstream's, so the manifest is byte-identical.
            assert_eq!(member(&original, "manifest"), member(&rebuilt, "manifest"));
        }
    }
    // Payload files keep their time and mode; the augment file is beside them.
    let md = std::fs::metadata(d.join("augmented/augment/files/update.delta")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::mtime(&md), 1_700_000_000);
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o777,
        0o644
    );
    let scripts = d.join("rootfs-scripts/scripts/ArtifactInstall_Enter_01_hello");
    let md = std::fs::metadata(scripts).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o777,
        0o755
    );
}

#[test]
fn our_uncompressed_artifacts_round_trip_byte_for_byte() {
    let dir = tmp();
    let d = dir.path();
    let w = |args: &[&str]| {
        let mut all = vec!["write"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--compression", "none", "--no-progress"]);
        ma(d, &all).ok();
    };
    let (f1, f2, md, scripts) = (
        input("file1.txt"),
        input("file2.bin"),
        input("meta-data.json"),
        input("scripts"),
    );
    w(&[
        "module-image",
        "-T",
        "app",
        "-t",
        "devA",
        "-t",
        "devB",
        "-n",
        "app-1.0",
        "-o",
        "module.mender",
        "-f",
        &f1,
        "-f",
        &f2,
        "-m",
        &md,
        "-p",
        "app.config:x:y",
        "-p",
        "foo:bar baz",
        "-d",
        "dep.key:dep-value",
        "--clears-provides",
        "foo*",
        "-N",
        "prev-1",
        "-N",
        "prev-2",
        "-g",
        "group-new",
        "-G",
        "group-old",
        "-G",
        "group-older",
        "-s",
        &scripts,
    ]);
    w(&[
        "bootstrap-artifact",
        "-t",
        "devA",
        "-n",
        "boot-1",
        "-o",
        "bootstrap.mender",
        "-p",
        "custom.key:value",
        "--clears-provides",
        "custom.*",
    ]);
    w(&[
        "rootfs-image",
        "-t",
        "qemux86-64",
        "-n",
        "release-2",
        "-o",
        "rootfs.mender",
        "-f",
        &input("rootfs.img"),
        "-s",
        &scripts,
        "--software-version",
        "2.0",
    ]);
    w(&[
        "rootfs-image",
        "-t",
        "qemux86-64",
        "-n",
        "release-3",
        "-o",
        "legacy.mender",
        "-f",
        &input("rootfs.img"),
        "--legacy-rootfs-image-checksum",
    ]);
    for name in ["module", "bootstrap", "rootfs", "legacy"] {
        let original = d.join(format!("{name}.mender"));
        let rebuilt = round_trip(d, &original, name);
        assert_eq!(
            member(&original, "manifest"),
            member(&rebuilt, "manifest"),
            "{name}: manifest"
        );
        assert_eq!(
            member(&original, "header.tar"),
            member(&rebuilt, "header.tar"),
            "{name}: header"
        );
        assert_eq!(
            member(&original, "data/0000.tar"),
            member(&rebuilt, "data/0000.tar"),
            "{name}: data"
        );
        upstream_ma(d, &["validate", path(&rebuilt)]).ok();
    }
}

#[test]
fn printed_command_runs_in_a_shell() {
    let dir = tmp();
    let d = dir.path();
    ma(
        d,
        &[
            "write",
            "module-image",
            "-T",
            "my mod",
            "-t",
            "dev A",
            "-n",
            "n-1",
            "-o",
            "in.mender",
            "-f",
            &input("file1.txt"),
            "-p",
            "quote:it's here",
            "-p",
            "dash:-x",
            "-d",
            "k:$HOME `x`",
            "--clears-provides",
            "a*",
            "--no-progress",
        ],
    )
    .ok();
    let r = ma(
        d,
        &[
            "dump",
            "--output-dir",
            "out dir",
            "--print-cmdline",
            "--no-progress",
            "in.mender",
        ],
    )
    .ok();
    assert!(r.stdout.starts_with("mender-artifact write module-image "));
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    let bin_dir = Path::new(ours()).parent().unwrap();
    let path_env = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let status = Command::new("sh")
        .args(["-c", &format!("{} --no-progress", r.stdout.trim_end())])
        .current_dir(d)
        .env("PATH", path_env)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        read_json(d, &d.join("in.mender")),
        read_json(d, &d.join("rebuilt.mender"))
    );
}

#[test]
fn signed_artifact_rebuilds_with_the_same_signature() {
    let dir = tmp();
    let d = dir.path();
    let keys = fixtures().join("keys");
    let original = upstream_fixture("module-signed-none.mender");
    let public = keys.join("rsa2048.pub.pem");
    let (argv, stderr) = dump(d, &original, "out", &["-k", path(&public)]);
    assert!(stderr.contains("signature is not reproduced"), "{stderr}");
    rebuild(d, &argv, &["-k", path(&keys.join("rsa2048.pem"))]);
    let rebuilt = d.join("rebuilt.mender");
    for m in ["manifest", "manifest.sig"] {
        assert_eq!(member(&original, m), member(&rebuilt, m), "{m}");
    }
    // A wrong key: invalid artifact, nothing extracted.
    let other = keys.join("ecdsa-p256.pub.pem");
    let r = ma(
        d,
        &[
            "dump",
            "--output-dir",
            "bad",
            "-k",
            path(&other),
            path(&original),
        ],
    );
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(!d.join("bad").exists());
}

#[test]
fn upstream_folder_flags() {
    let dir = tmp();
    let d = dir.path();
    let original = upstream_fixture("augmented.mender");
    let r = ma(
        d,
        &[
            "dump",
            "--files",
            "f",
            "--meta-data",
            "m",
            "--scripts",
            "s",
            "--print0-cmdline",
            "--no-progress",
            path(&original),
        ],
    )
    .ok();
    assert!(d.join("f/file1.txt").is_file() && d.join("f/update.delta").is_file());
    assert!(d.join("m/0000.meta-data-augment").is_file());
    assert!(
        !d.join("m/0000.meta-data").exists(),
        "no original meta-data"
    );
    let argv: Vec<String> = r.stdout.split_terminator('\0').map(String::from).collect();
    assert!(argv
        .windows(2)
        .any(|w| w == ["--augment-file", "f/update.delta"]));
    rebuild(d, &argv, &[]);
    assert_eq!(
        read_json(d, &original),
        read_json(d, &d.join("rebuilt.mender"))
    );
    // The command line needs every part: here the files are missing.
    let r = ma(
        d,
        &[
            "dump",
            "--meta-data",
            "m2",
            "--print-cmdline",
            path(&upstream_fixture("module-image.mender")),
        ],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("--files"), "{}", r.stderr);
    assert!(!d.join("m2").exists());
}
