//! `mender-update` when things go wrong on the device: a module that hangs, a script that
//! fails, the process killed in the middle of a download; plus the directory and deb
//! modules, the bootstrap artifact and log levels.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;
use crate::update::Device;

fn module_artifact(dev: &Device, kind: &str, name: &str, files: &[&Path]) -> String {
    let out = dev.path(&format!("{name}.mender")).display().to_string();
    let mut args = vec![
        "write",
        "module-image",
        "-T",
        kind,
        "-t",
        "test-dev",
        "-n",
        name,
        "-o",
        &out,
    ];
    for f in files {
        args.extend(["-f", f.to_str().unwrap()]);
    }
    upstream_ma(dev.dir.path(), &args).ok();
    out
}

#[test]
fn hanging_module_is_killed_and_rolled_back() {
    let dev = Device::new();
    std::fs::write(
        dev.path("conf/mender.conf"),
        r#"{"ModuleTimeoutSeconds": 1}"#,
    )
    .unwrap();
    dev.module("hang", "#!/bin/sh\ncase \"$1\" in\nSupportsRollback) echo Yes;;\nArtifactInstall) sleep 600;;\nesac\nexit 0\n");
    std::fs::write(dev.path("art/p"), "p").unwrap();
    let art = module_artifact(&dev, "hang", "hang-1", &[&dev.path("art/p")]);
    let start = std::time::Instant::now();
    let r = dev.run(&["install", &art]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("Installation failed.") && r.stdout.contains("Rolled back."),
        "{}",
        r.stdout
    );
    assert!(
        start.elapsed().as_secs() < 60,
        "the hanging module was not killed in time"
    );
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "unknown\n");
}

#[test]
fn failing_script_stops_the_install() {
    let dev = Device::new();
    std::fs::write(dev.path("dest/app.conf"), "original\n").unwrap();
    let s = dev.path("art/ArtifactInstall_Enter_10_fail");
    std::fs::write(&s, "#!/bin/sh\necho refusing >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&s, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let art = dev.single_file("app-1", "new\n", &["-s", s.to_str().unwrap()]);
    let r = dev.run(&["install", &art]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("Installation failed."), "{}", r.stdout);
    assert_eq!(dev.dest().as_deref(), Some("original\n"));
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "unknown\n");
    // A rootfs Download_Enter script that fails: nothing modified.
    let d = dev.path("conf/scripts/Download_Enter_01_no");
    std::fs::write(&d, "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let art2 = dev.single_file("app-2", "new\n", &[]);
    let r = dev.run(&["install", &art2]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("System not modified."), "{}", r.stdout);
}

#[test]
fn killed_during_a_long_download_leaves_nothing_pending() {
    let dev = Device::new();
    std::fs::write(dev.path("dest/app.conf"), "original\n").unwrap();
    let art = dev.single_file("big", &"x".repeat(4 << 20), &["--compression", "none"]);
    let bytes = std::fs::read(&art).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mender-update"))
        .args(["install", "-"])
        .env("MENDER_CONF_DIR", dev.path("conf"))
        .env("MENDER_DATA_DIR", dev.path("data"))
        .env("MENDER_DATASTORE_DIR", dev.path("store"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&bytes[..bytes.len() / 2]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    let _ = child.wait();
    drop(stdin);
    assert_eq!(
        dev.run(&["resume"]).code,
        2,
        "nothing was installed, so nothing is pending"
    );
    assert_eq!(dev.dest().as_deref(), Some("original\n"));
    dev.run(&["install", &art]).ok();
    dev.run(&["commit"]).ok();
    assert_eq!(dev.dest().map(|s| s.len()), Some(4 << 20));
}

#[test]
fn directory_module_installs_and_rolls_back() {
    let dev = Device::new();
    let target = dev.path("dest/site");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("old.html"), "old").unwrap();
    let content = dev.path("art/content");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("index.html"), "new").unwrap();
    let r = Command::new("tar")
        .args(["-cf", "update.tar", "-C"])
        .arg(&content)
        .arg(".")
        .current_dir(dev.path("art"))
        .status()
        .unwrap();
    assert!(r.success());
    std::fs::write(dev.path("art/dest_dir"), target.display().to_string()).unwrap();
    let art = module_artifact(
        &dev,
        "directory",
        "site-1",
        &[&dev.path("art/update.tar"), &dev.path("art/dest_dir")],
    );
    dev.run(&["install", &art]).ok();
    assert_eq!(
        std::fs::read_to_string(target.join("index.html")).unwrap(),
        "new"
    );
    assert!(!target.join("old.html").exists());
    dev.run(&["rollback"]).ok();
    assert_eq!(
        std::fs::read_to_string(target.join("old.html")).unwrap(),
        "old"
    );
    assert!(!target.join("index.html").exists());
}

#[test]
fn deb_module_in_a_throwaway_root() {
    // dpkg works on a private copy of its database and a private /opt, in a mount
    // namespace, so the test machine's packages are never touched.
    let dev = Device::new();
    std::os::unix::fs::symlink(
        Path::new("/usr/share/mender/modules/v3/deb"),
        dev.path("data/modules/v3/deb"),
    )
    .unwrap();
    let pkg = dev.path("pkg");
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(pkg.join("opt/mender-test")).unwrap();
    std::fs::write(pkg.join("DEBIAN/control"), "Package: mender-rs-test\nVersion: 1.0\nArchitecture: all\nMaintainer: test <test@example.com>\nDescription: test package\n").unwrap();
    std::fs::write(pkg.join("opt/mender-test/hello"), "hello\n").unwrap();
    let st = Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&pkg)
        .arg(dev.path("art/test.deb"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let art = module_artifact(&dev, "deb", "deb-1", &[&dev.path("art/test.deb")]);
    std::fs::create_dir_all(dev.path("dpkg")).unwrap();
    std::fs::create_dir_all(dev.path("opt")).unwrap();
    let script = format!(
        "set -e; cp -a /var/lib/dpkg/. {dpkg}/; mount --bind {dpkg} /var/lib/dpkg; mount --bind {opt} /opt; \
         {bin} install {art}; test -f /opt/mender-test/hello; dpkg -s mender-rs-test >/dev/null; {bin} show-artifact",
        dpkg = dev.path("dpkg").display(),
        opt = dev.path("opt").display(),
        bin = env!("CARGO_BIN_EXE_mender-update"),
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env("MENDER_CONF_DIR", dev.path("conf"))
        .env("MENDER_DATA_DIR", dev.path("data"))
        .env("MENDER_DATASTORE_DIR", dev.path("store"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Committed.") && stdout.ends_with("deb-1\n"),
        "{stdout}"
    );
    assert!(
        !Path::new("/opt/mender-test/hello").exists(),
        "the host was touched"
    );
    assert_eq!(
        std::fs::read_to_string(dev.path("opt/mender-test/hello")).unwrap(),
        "hello\n"
    );
}

#[test]
fn bootstrap_artifact_and_log_levels() {
    let dev = Device::new();
    let out = dev.path("store/bootstrap.mender").display().to_string();
    upstream_ma(
        dev.dir.path(),
        &[
            "write",
            "bootstrap-artifact",
            "-t",
            "test-dev",
            "-n",
            "factory-1",
            "-p",
            "hw.rev:3",
            "-o",
            &out,
        ],
    )
    .ok();
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "factory-1\n");
    assert!(
        !Path::new(&out).exists(),
        "the bootstrap artifact is removed"
    );
    assert!(dev
        .run(&["show-provides"])
        .ok()
        .stdout
        .contains("hw.rev=3\n"));
    let art = dev.single_file("app-1", "v1\n", &[]);
    let loud = dev.run(&["install", &art]).ok();
    assert!(loud.stderr.contains("severity=info"), "{}", loud.stderr);
    dev.run(&["rollback"]).ok();
    let quiet = dev.run(&["--log-level", "error", "install", &art]).ok();
    assert!(!quiet.stderr.contains("severity=info"), "{}", quiet.stderr);
    assert_eq!(dev.run(&["--log-level", "chatty", "show-artifact"]).code, 1);
}
