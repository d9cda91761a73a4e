//! mender-server driven by the real Debian `mender-cli` 1.9: login, artifact upload and list,
//! device list.

use std::path::Path;
use std::process::Command;

use super::{artifact, Dev, Srv, PASSWORD, USER};

fn cli(home: &Path, srv: &Srv, args: &[&str]) -> crate::common::Run {
    assert!(
        Path::new("/usr/bin/mender-cli").exists(),
        "mender-cli is not installed: run scripts/test"
    );
    crate::common::finish(
        Command::new("/usr/bin/mender-cli")
            .current_dir(home)
            .env("HOME", home)
            .env_remove("XDG_CACHE_HOME")
            .args(["--server", &srv.url])
            .args(args)
            .output()
            .unwrap(),
    )
}

#[test]
fn mender_cli_logs_in_uploads_and_lists() {
    let srv = Srv::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let bad = cli(
        h,
        &srv,
        &["login", "--username", USER, "--password", "wrong-password"],
    );
    assert_ne!(bad.code, 0, "{}", bad.stdout);
    cli(
        h,
        &srv,
        &["login", "--username", USER, "--password", PASSWORD],
    )
    .ok();
    assert!(std::fs::read_to_string(h.join(".cache/mender/authtoken"))
        .unwrap()
        .starts_with("eyJ"));

    let art = artifact(h, "cli-rel", "cli-dev", 6000);
    let up = cli(
        h,
        &srv,
        &[
            "artifacts",
            "upload",
            "--no-progress",
            "--description",
            "from cli",
            art.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(!up.stderr.contains("failed"), "{}", up.stderr);
    let list = cli(h, &srv, &["artifacts", "list", "-d", "3"]).ok();
    assert!(list.stdout.contains("cli-rel"), "{}", list.stdout);
    assert!(list.stdout.contains("cli-dev"), "{}", list.stdout);
    let again = cli(
        h,
        &srv,
        &[
            "artifacts",
            "upload",
            "--no-progress",
            art.to_str().unwrap(),
        ],
    );
    assert_ne!(
        again.code, 0,
        "a duplicate upload must fail: {}",
        again.stdout
    );

    let user = srv.login();
    Dev::new("ed25519", "cli-mac").auth(&srv);
    let devs = cli(h, &srv, &["devices", "list", "-d", "3"]).ok();
    assert!(devs.stdout.contains("cli-mac"), "{}", devs.stdout);
    assert!(devs.stdout.contains("pending"), "{}", devs.stdout);
    srv.accept(&user, "cli-mac");
    let devs = cli(h, &srv, &["devices", "list", "-d", "3"]).ok();
    assert!(devs.stdout.contains("accepted"), "{}", devs.stdout);
}
