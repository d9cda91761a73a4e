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

#[test]
fn https_with_a_given_certificate_works_for_curl_and_mender_cli() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let gen = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let srv = Srv::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(srv.url.starts_with("https://127.0.0.1:"), "{}", srv.url);
    // curl checks the chain and the name against the certificate it is given.
    let login = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "-X",
            "POST",
            "--cacert",
            cert.to_str().unwrap(),
        ])
        .args(["-u", &format!("{USER}:{PASSWORD}")])
        .arg(format!("{}/api/management/v1/useradm/auth/login", srv.url))
        .output()
        .expect("curl is installed by scripts/test");
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert!(String::from_utf8_lossy(&login.stdout).starts_with("eyJ"));
    let plain = Command::new("curl")
        .args(["-sS", "--fail", "--cacert", cert.to_str().unwrap()])
        .arg(format!("{}/", srv.url.replace("https://", "http://")))
        .output()
        .unwrap();
    assert!(
        !plain.status.success(),
        "plain HTTP must not be served on the TLS port"
    );
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let run = |args: &[&str]| {
        crate::common::finish(
            Command::new("/usr/bin/mender-cli")
                .current_dir(h)
                .env("HOME", h)
                .env_remove("XDG_CACHE_HOME")
                .args(["--server", &srv.url, "-k"])
                .args(args)
                .output()
                .unwrap(),
        )
    };
    run(&["login", "--username", USER, "--password", PASSWORD]).ok();
    run(&["devices", "list"]).ok();
}

super::pg::on_postgres!(mender_cli_logs_in_uploads_and_lists);

#[test]
fn link_lifetimes_s3_cannot_sign_are_refused() {
    for bad in ["0", "604801"] {
        let out = std::process::Command::new(super::bin())
            .args(["serve", "--link-lifetime", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--link-lifetime {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not in 1..=604800"), "{err}");
    }
}
