//! `mender-update` on a simulated device (temp config, data and datastore dirs through
//! upstream's MENDER_*_DIR variables), running the real update modules of Debian's
//! mender-client package unmodified, with artifacts written by upstream mender-artifact.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

const MODULES: &str = "/usr/share/mender/modules/v3";

fn ours_update() -> &'static str {
    env!("CARGO_BIN_EXE_mender-update")
}

pub struct Device {
    pub dir: tempfile::TempDir,
}

impl Device {
    pub fn new() -> Device {
        assert!(
            Path::new(MODULES).join("single-file").exists(),
            "{MODULES} is missing: apt-get install mender-client"
        );
        let dir = tmp();
        let d = dir.path();
        for sub in ["conf/scripts", "data/modules/v3", "store", "dest", "art"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        for m in ["single-file", "directory", "script"] {
            std::os::unix::fs::symlink(
                Path::new(MODULES).join(m),
                d.join("data/modules/v3").join(m),
            )
            .unwrap();
        }
        std::fs::write(d.join("store/device_type"), "device_type=test-dev\n").unwrap();
        Device { dir }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn module(&self, name: &str, script: &str) {
        let p = self.path("data/modules/v3").join(name);
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_stdin(args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: Option<&Path>) -> Run {
        let mut c = Command::new(ours_update());
        c.args(args)
            .env("MENDER_CONF_DIR", self.path("conf"))
            .env("MENDER_DATA_DIR", self.path("data"))
            .env("MENDER_DATASTORE_DIR", self.path("store"))
            .current_dir(self.dir.path());
        c.stdin(match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
            None => Stdio::null(),
        });
        let out = c.output().unwrap();
        finish(out)
    }

    /// A single-file artifact (upstream-made) that puts `content` at dest/app.conf.
    pub fn single_file(&self, name: &str, content: &str, extra: &[&str]) -> String {
        self.single_file_by(upstream_ma, name, content.as_bytes(), extra)
    }

    /// A single-file artifact written by `writer` (ours or upstream's `mender-artifact`).
    pub fn single_file_by(
        &self,
        writer: fn(&Path, &[&str]) -> Run,
        name: &str,
        content: &[u8],
        extra: &[&str],
    ) -> String {
        let a = self.path("art");
        std::fs::write(a.join("dest_dir"), self.path("dest").display().to_string()).unwrap();
        std::fs::write(a.join("filename"), "app.conf").unwrap();
        std::fs::write(a.join("app.conf"), content).unwrap();
        let out = self.path(&format!("{name}.mender")).display().to_string();
        let (dd, fname, file) = (a.join("dest_dir"), a.join("filename"), a.join("app.conf"));
        let mut args = vec![
            "write",
            "module-image",
            "-T",
            "single-file",
            "-t",
            "test-dev",
            "-n",
            name,
            "-f",
            dd.to_str().unwrap(),
            "-f",
            fname.to_str().unwrap(),
            "-f",
            file.to_str().unwrap(),
            "-o",
            &out,
        ];
        args.extend_from_slice(extra);
        writer(self.dir.path(), &args).ok();
        out
    }

    pub fn dest(&self) -> Option<String> {
        std::fs::read_to_string(self.path("dest/app.conf")).ok()
    }
}

#[test]
fn install_commit_and_provides() {
    let dev = Device::new();
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "unknown\n");
    let art = dev.single_file("app-1", "v1\n", &["-p", "app.version:1"]);
    let r = dev.run(&["install", &art]).ok();
    assert_eq!(r.stdout, "Installing artifact...\nInstalled, but not committed.\nUse 'commit' to update, or 'rollback' to roll back the update.\n");
    assert_eq!(dev.dest().as_deref(), Some("v1\n"));
    assert_eq!(
        dev.run(&["show-artifact"]).ok().stdout,
        "unknown\n",
        "not committed yet"
    );
    let again = dev.run(&["install", &art]);
    assert_eq!(again.code, 1);
    assert!(again.stdout.contains("System not modified."));
    assert_eq!(dev.run(&["commit"]).ok().stdout, "Committed.\n");
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "app-1\n");
    let provides = dev.run(&["show-provides"]).ok().stdout;
    assert!(provides.contains("artifact_name=app-1\n"), "{provides}");
    assert!(provides.contains("app.version=1\n"), "{provides}");
    assert!(
        provides.contains("rootfs-image.single-file.version=app-1\n"),
        "{provides}"
    );
    let nothing = dev.run(&["commit"]);
    assert_eq!(
        (nothing.code, nothing.stdout.as_str()),
        (2, "No update in progress.\n")
    );
    assert_eq!(dev.run(&["rollback"]).code, 2);
    assert_eq!(dev.run(&["resume"]).code, 2);
    // The next release clears the module's old provides, keeps others.
    let art2 = dev.single_file("app-2", "v2\n", &[]);
    dev.run(&["install", &art2]).ok();
    dev.run(&["commit"]).ok();
    let provides = dev.run(&["show-provides"]).ok().stdout;
    assert!(
        provides.contains("rootfs-image.single-file.version=app-2\n"),
        "{provides}"
    );
    assert!(
        provides.contains("app.version=1\n"),
        "not cleared by rootfs-image.single-file.*: {provides}"
    );
}

#[test]
fn rollback_restores_and_stdin_works() {
    let dev = Device::new();
    std::fs::write(dev.path("dest/app.conf"), "original\n").unwrap();
    let art = dev.single_file("app-1", "new\n", &[]);
    dev.run_stdin(&["install", "-"], Some(Path::new(&art))).ok();
    assert_eq!(dev.dest().as_deref(), Some("new\n"));
    let r = dev.run(&["rollback"]).ok();
    assert_eq!(r.stdout, "Rolled back.\n");
    assert_eq!(dev.dest().as_deref(), Some("original\n"));
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "unknown\n");
}

#[test]
fn module_without_rollback_commits_at_once() {
    let dev = Device::new();
    std::fs::write(
        dev.path("art/run.sh"),
        format!("#!/bin/sh\necho ran > {}\n", dev.path("dest/ran").display()),
    )
    .unwrap();
    let out = dev.path("s.mender").display().to_string();
    upstream_ma(
        dev.dir.path(),
        &[
            "write",
            "module-image",
            "-T",
            "script",
            "-t",
            "test-dev",
            "-n",
            "script-1",
            "-f",
            dev.path("art/run.sh").to_str().unwrap(),
            "-o",
            &out,
        ],
    )
    .ok();
    let r = dev.run(&["install", &out]).ok();
    assert_eq!(r.stdout, "Installing artifact...\nUpdate Module doesn't support rollback. Committing immediately.\nCommitted.\n");
    assert_eq!(
        std::fs::read_to_string(dev.path("dest/ran")).unwrap(),
        "ran\n"
    );
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "script-1\n");
}

#[test]
fn refusals_leave_the_device_untouched() {
    let dev = Device::new();
    std::fs::write(dev.path("dest/app.conf"), "original\n").unwrap();
    let key = fixtures().join("keys/rsa2048.pem").display().to_string();
    let other = fixtures()
        .join("keys/ecdsa-p256.pub.pem")
        .display()
        .to_string();
    let wrong_type = dev.path("wrong.mender").display().to_string();
    let a = dev.path("art");
    std::fs::write(a.join("x"), "x").unwrap();
    upstream_ma(
        dev.dir.path(),
        &[
            "write",
            "module-image",
            "-T",
            "single-file",
            "-t",
            "other-dev",
            "-n",
            "w",
            "-f",
            a.join("x").to_str().unwrap(),
            "-o",
            &wrong_type,
        ],
    )
    .ok();
    let depends = dev.single_file("dep", "bad\n", &["-N", "release-0"]);
    let signed = dev.single_file("signed", "bad\n", &["-k", &key]);
    let unsigned = dev.single_file("unsigned", "bad\n", &[]);
    for (art, conf) in [
        (wrong_type.as_str(), None),
        (depends.as_str(), None),
        (
            unsigned.as_str(),
            Some(fixtures().join("keys/rsa2048.pub.pem")),
        ),
        (signed.as_str(), Some(PathBuf::from(&other))),
    ] {
        match &conf {
            Some(k) => std::fs::write(
                dev.path("conf/mender.conf"),
                format!("{{\"ArtifactVerifyKey\":\"{}\"}}", k.display()),
            )
            .unwrap(),
            None => {
                let _ = std::fs::remove_file(dev.path("conf/mender.conf"));
            }
        }
        let r = dev.run(&["install", art]);
        assert_eq!(r.code, 1, "{art}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout
                .contains("Streaming failed.\nSystem not modified.\n"),
            "{art}: {}",
            r.stdout
        );
        assert_eq!(dev.dest().as_deref(), Some("original\n"));
        assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "unknown\n");
        assert_eq!(dev.run(&["commit"]).code, 2, "no journal left behind");
    }
    // The right key installs.
    std::fs::write(
        dev.path("conf/mender.conf"),
        format!(
            "{{\"ArtifactVerifyKey\":\"{}\"}}",
            fixtures().join("keys/rsa2048.pub.pem").display()
        ),
    )
    .unwrap();
    dev.run(&["install", &signed]).ok();
    assert_eq!(dev.dest().as_deref(), Some("bad\n"));
}

#[test]
fn corrupt_payload_never_reaches_the_module_install() {
    let dev = Device::new();
    std::fs::write(dev.path("dest/app.conf"), "original\n").unwrap();
    let art = dev.single_file("c", &"payload ".repeat(20000), &["--compression", "none"]);
    let mut bytes = std::fs::read(&art).unwrap();
    let at = bytes.len() - 1024 - 512 - 5000;
    bytes[at] ^= 1;
    std::fs::write(&art, &bytes).unwrap();
    let r = dev.run(&["install", &art]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("System not modified."), "{}", r.stdout);
    assert!(r.stderr.contains("checksum"), "{}", r.stderr);
    assert_eq!(dev.dest().as_deref(), Some("original\n"));
}

#[test]
fn failing_install_rolls_back_and_reboot_exit_code() {
    let dev = Device::new();
    let log = dev.path("calls.log");
    dev.module("failer", &format!("#!/bin/sh\necho \"$1\" >> {}\ncase \"$1\" in\nSupportsRollback) echo Yes;;\nArtifactInstall) exit 3;;\nesac\nexit 0\n", log.display()));
    dev.module("rebooter", "#!/bin/sh\ncase \"$1\" in\nSupportsRollback) echo Yes;;\nNeedsArtifactReboot) echo Yes;;\nesac\nexit 0\n");
    let a = dev.path("art");
    std::fs::write(a.join("p"), "p").unwrap();
    for t in ["failer", "rebooter"] {
        let out = dev.path(&format!("{t}.mender")).display().to_string();
        upstream_ma(
            dev.dir.path(),
            &[
                "write",
                "module-image",
                "-T",
                t,
                "-t",
                "test-dev",
                "-n",
                t,
                "-f",
                a.join("p").to_str().unwrap(),
                "-o",
                &out,
            ],
        )
        .ok();
    }
    let r = dev.run(&["install", dev.path("failer.mender").to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "Installing artifact...\nInstallation failed.\nRolled back.\n"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains("ArtifactRollback\nArtifactFailure\nCleanup\n"),
        "{calls}"
    );
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "unknown\n");
    let r = dev.run(&[
        "install",
        "--reboot-exit-code",
        dev.path("rebooter.mender").to_str().unwrap(),
    ]);
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(r
        .stdout
        .contains("At least one payload requested a reboot of the device it updated."));
    dev.run(&["commit"]).ok();
}

#[test]
fn stop_before_and_resume() {
    let dev = Device::new();
    let art = dev.single_file("app-1", "v1\n", &[]);
    let r = dev
        .run(&["install", "--stop-before", "ArtifactInstall_Enter", &art])
        .ok();
    assert!(
        r.stdout
            .contains("Streamed to storage, but not installed/enabled."),
        "{}",
        r.stdout
    );
    assert!(dev.dest().is_none());
    assert_eq!(
        dev.run(&["commit"]).code,
        1,
        "cannot commit before installing"
    );
    dev.run(&["resume"]).ok();
    assert_eq!(dev.dest().as_deref(), Some("v1\n"));
    dev.run(&["commit", "--stop-before", "Cleanup"]).ok();
    dev.run(&["resume"]).ok();
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "app-1\n");
    let bad = dev.run(&["install", "--stop-before", "Bogus", &art]);
    assert_eq!(bad.code, 1);
}

#[test]
fn artifact_state_scripts_run() {
    let dev = Device::new();
    let s = dev.path("art/ArtifactInstall_Enter_01_mark");
    std::fs::write(
        &s,
        format!(
            "#!/bin/sh\necho enter >> {}\n",
            dev.path("dest/marks").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&s, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let c = dev.path("art/ArtifactCommit_Leave_01_mark");
    std::fs::write(
        &c,
        format!(
            "#!/bin/sh\necho commit >> {}\n",
            dev.path("dest/marks").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&c, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let art = dev.single_file(
        "app-1",
        "v1\n",
        &["-s", s.to_str().unwrap(), "-s", c.to_str().unwrap()],
    );
    dev.run(&["install", &art]).ok();
    dev.run(&["commit"]).ok();
    assert_eq!(
        std::fs::read_to_string(dev.path("dest/marks")).unwrap(),
        "enter\ncommit\n"
    );
}

#[test]
fn install_from_url_resumes_after_a_dropped_connection() {
    let dev = Device::new();
    let art = dev.single_file(
        "url-1",
        &"0123456789".repeat(50_000),
        &["--compression", "none"],
    );
    let bytes = std::fs::read(&art).unwrap();
    let server = crate::http::serve(bytes.clone(), Some(bytes.len() / 2));
    let r = dev.run(&["install", &server.url]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        server.requests.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "a second (Range) request was made"
    );
    assert_eq!(dev.dest().map(|s| s.len()), Some(500_000));
    dev.run(&["commit"]).ok();
    let missing = dev.run(&[
        "install",
        &server.url.replace("artifact.mender", "nope.mender"),
    ]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("404"), "{}", missing.stderr);
}
