//! Power loss: the installer is killed with SIGKILL at every state boundary (the update
//! module kills its parent when called for that state), then `resume`, `commit` and
//! `rollback` must bring the device to a consistent state: either the new software
//! committed, or the old software in place and the old name kept.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn update(dir: &Path, args: &[&str], kill: Option<(&str, &str)>) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mender-update"));
    c.args(args)
        .env("MENDER_CONF_DIR", dir.join("conf"))
        .env("MENDER_DATA_DIR", dir.join("data"))
        .env("MENDER_DATASTORE_DIR", dir.join("store"))
        .env_remove("KILL_AT")
        .env_remove("KILL_AFTER");
    if let Some((var, state)) = kill {
        c.env(var, state);
    }
    let out = c.output().unwrap();
    finish(out)
}

/// A module that installs files/app.conf to dest/app.conf with a backup for rollback, and
/// kills the installer (its parent) once when called for $KILL_AT.
fn module(dir: &Path) -> String {
    format!(
        r#"#!/bin/sh
STATE="$1"; TREE="$2"; DEST="{dest}"; MARK="{mark}"
if [ "$STATE" = "$KILL_AT" ] && [ ! -e "$MARK" ]; then
  touch "$MARK"; kill -9 $PPID; sleep 2; exit 1
fi
case "$STATE" in
  SupportsRollback) echo Yes ;;
  ArtifactInstall) cp "$DEST" "$TREE/tmp/backup" && cp "$TREE/files/app.conf" "$DEST.tmp" && mv "$DEST.tmp" "$DEST" ;;
  ArtifactRollback) if [ -f "$TREE/tmp/backup" ]; then cp "$TREE/tmp/backup" "$DEST"; fi ;;
esac
if [ "$STATE" = "$KILL_AFTER" ] && [ ! -e "$MARK" ]; then
  touch "$MARK"; kill -9 $PPID; sleep 2
fi
exit 0
"#,
        dest = dir.join("dest/app.conf").display(),
        mark = dir.join("killed").display()
    )
}

fn scenario(var: &str, kill_at: &str, then: &str) {
    let dir = tmp();
    let d = dir.path();
    for sub in ["conf", "data/modules/v3", "store", "dest", "art"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("store/device_type"), "device_type=dev\n").unwrap();
    let m = d.join("data/modules/v3/app");
    std::fs::write(&m, module(d)).unwrap();
    std::fs::set_permissions(&m, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(d.join("dest/app.conf"), "old\n").unwrap();
    std::fs::write(d.join("art/app.conf"), "new\n").unwrap();
    let art = d.join("new.mender");
    upstream_ma(
        d,
        &[
            "write",
            "module-image",
            "-T",
            "app",
            "-t",
            "dev",
            "-n",
            "new-1",
            "-f",
            d.join("art/app.conf").to_str().unwrap(),
            "-o",
            art.to_str().unwrap(),
        ],
    )
    .ok();

    let first = update(d, &["install", art.to_str().unwrap()], Some((var, kill_at)));
    if first.code == 0 && first.stdout.contains("Installed, but not committed.") {
        update(d, &[then], Some((var, kill_at)));
    }
    assert!(
        d.join("killed").exists(),
        "{var} {kill_at}: the installer was never killed"
    );
    // Recover: resume until nothing is in progress, committing when asked to.
    for _ in 0..6 {
        let r = update(d, &["resume"], None);
        if r.code == 2 {
            break;
        }
        assert!(
            r.code == 0 || r.code == 1,
            "{var} {kill_at}/{then}: resume exit {}: {}{}",
            r.code,
            r.stdout,
            r.stderr
        );
        if r.stdout.contains("Installed, but not committed.") {
            let c = update(d, &[then], None);
            assert!(
                c.code == 0 || c.code == 1,
                "{var} {kill_at}/{then}: {}{}",
                c.stdout,
                c.stderr
            );
        }
    }
    assert_eq!(
        update(d, &["resume"], None).code,
        2,
        "{var} {kill_at}/{then}: still in progress"
    );
    let name = update(d, &["show-artifact"], None).stdout;
    let dest = std::fs::read_to_string(d.join("dest/app.conf")).unwrap();
    let consistent =
        (name == "new-1\n" && dest == "new\n") || (name == "unknown\n" && dest == "old\n");
    assert!(
        consistent,
        "{var} {kill_at}/{then}: inconsistent: artifact {name:?} with content {dest:?}"
    );
    assert!(
        !name.contains("INCONSISTENT"),
        "{var} {kill_at}/{then}: {name}"
    );
    // A fresh install works afterwards.
    std::fs::remove_file(d.join("killed")).unwrap();
    let again = update(d, &["install", art.to_str().unwrap()], None);
    assert_eq!(
        again.code, 0,
        "{var} {kill_at}/{then}: {}{}",
        again.stdout, again.stderr
    );
}

#[test]
fn sigkill_at_every_state_ends_consistent() {
    for kill_at in [
        "ProvidePayloadFileSizes",
        "Download",
        "ArtifactInstall",
        "NeedsArtifactReboot",
        "SupportsRollback",
        "ArtifactCommit",
        "Cleanup",
    ] {
        for var in ["KILL_AT", "KILL_AFTER"] {
            scenario(var, kill_at, "commit");
        }
    }
    for kill_at in ["ArtifactRollback", "ArtifactFailure", "Cleanup"] {
        for var in ["KILL_AT", "KILL_AFTER"] {
            scenario(var, kill_at, "rollback");
        }
    }
}

/// A device with module `m` (script given) and an artifact for it.
fn setup(script: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tmp();
    let d = dir.path();
    for sub in ["conf", "data/modules/v3", "store", "art"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("store/device_type"), "device_type=dev\n").unwrap();
    let m = d.join("data/modules/v3/m");
    std::fs::write(&m, script).unwrap();
    std::fs::set_permissions(&m, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(d.join("art/p"), "p").unwrap();
    let art = d.join("a.mender");
    upstream_ma(
        d,
        &[
            "write",
            "module-image",
            "-T",
            "m",
            "-t",
            "dev",
            "-n",
            "bad-1",
            "-p",
            "m.extra:1",
            "-f",
            d.join("art/p").to_str().unwrap(),
            "-o",
            art.to_str().unwrap(),
        ],
    )
    .ok();
    (dir, art)
}

#[test]
fn a_crash_after_a_failure_is_still_a_failure() {
    // No rollback support, ArtifactInstall fails, power is lost during ArtifactFailure.
    let (dir, art) = setup("#!/bin/sh\ncase \"$1\" in\nArtifactInstall) exit 1;;\nArtifactFailure) if [ ! -e \"$2/../../../../../killed\" ]; then touch \"$2/../../../../../killed\"; kill -9 $PPID; sleep 1; fi;;\nesac\nexit 0\n");
    let d = dir.path();
    let r = update(d, &["install", art.to_str().unwrap()], None);
    assert_eq!(r.code, -9, "killed: {}{}", r.stdout, r.stderr);
    let r = update(d, &["resume"], None);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        update(d, &["show-artifact"], None).stdout,
        "bad-1_INCONSISTENT\n"
    );
    let provides = update(d, &["show-provides"], None).stdout;
    assert!(
        provides.contains("m.extra=1"),
        "the broken artifact's provides are recorded: {provides}"
    );
}

#[test]
fn recovered_install_or_commit_rolls_back_cleanly() {
    let module = "#!/bin/sh\ncase \"$1\" in\nSupportsRollback) echo Yes;;\n$KILL_AT) if [ ! -e \"$2/../../../../../killed\" ]; then touch \"$2/../../../../../killed\"; kill -9 $PPID; sleep 1; fi;;\nesac\nexit 0\n";
    for (kill_at, then) in [("ArtifactInstall", "resume"), ("ArtifactCommit", "commit")] {
        let (dir, art) = setup(module);
        let d = dir.path();
        let first = update(
            d,
            &["install", art.to_str().unwrap()],
            Some(("KILL_AT", kill_at)),
        );
        if first.code == 0 {
            assert_eq!(update(d, &["commit"], Some(("KILL_AT", kill_at))).code, -9);
        }
        let r = update(d, &[then], None);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, "Rolled back.\n"),
            "{kill_at}: {}",
            r.stderr
        );
        assert_eq!(update(d, &["show-artifact"], None).stdout, "unknown\n");
    }
}

#[test]
fn fresh_device_output_matches_upstream() {
    let (dir, art) =
        setup("#!/bin/sh\ncase \"$1\" in\nSupportsRollback) echo Yes;;\nesac\nexit 0\n");
    let d = dir.path();
    assert_eq!(
        update(d, &["show-provides"], None).stdout,
        "artifact_name=unknown\n"
    );
    // A depends failure still announces the install first.
    let dep = d.join("dep.mender");
    upstream_ma(
        d,
        &[
            "write",
            "module-image",
            "-T",
            "m",
            "-t",
            "dev",
            "-n",
            "x",
            "-N",
            "rel-0",
            "-f",
            d.join("art/p").to_str().unwrap(),
            "-o",
            dep.to_str().unwrap(),
        ],
    )
    .ok();
    let r = update(d, &["install", dep.to_str().unwrap()], None);
    assert_eq!(
        r.stdout,
        "Installing artifact...\nStreaming failed.\nSystem not modified.\n"
    );
    // rollback from before ArtifactInstall goes through ArtifactRollback.
    let log = d.join("calls");
    let m = d.join("data/modules/v3/m");
    std::fs::write(&m, format!("#!/bin/sh\necho \"$1\" >> {}\ncase \"$1\" in\nSupportsRollback) echo Yes;;\nesac\nexit 0\n", log.display())).unwrap();
    update(
        d,
        &[
            "install",
            "--stop-before",
            "ArtifactInstall_Enter",
            art.to_str().unwrap(),
        ],
        None,
    )
    .ok();
    let r = update(d, &["rollback"], None).ok();
    assert_eq!(r.stdout, "Rolled back.\n");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains("ArtifactRollback\n") && !calls.contains("ArtifactInstall\n"),
        "{calls}"
    );
    // Empty payload: the sentence comes right after the announcement.
    let boot = d.join("boot.mender");
    upstream_ma(
        d,
        &[
            "write",
            "bootstrap-artifact",
            "-t",
            "dev",
            "-n",
            "b-1",
            "-o",
            boot.to_str().unwrap(),
        ],
    )
    .ok();
    let r = update(d, &["install", boot.to_str().unwrap()], None).ok();
    assert_eq!(r.stdout, "Installing artifact...\nArtifact with empty payload. Committing immediately.\nInstalled and committed.\n");
}
