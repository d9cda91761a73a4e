//! The state store against upstream's Go client 3.4 (`/usr/bin/mender`, Debian's
//! mender-client): each reads what the other installed and committed in the datastore's LMDB
//! file `mender-store`.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use crate::update::Device;

const GO_CLIENT: &str = "/usr/bin/mender";

/// Runs the Go client on the device's datastore, with an empty config file.
fn go_client(dev: &Device, args: &[&str]) -> Run {
    assert!(
        Path::new(GO_CLIENT).exists(),
        "{GO_CLIENT} is missing: apt-get install mender-client (upstream's Go client 3.4)"
    );
    let conf = dev.path("mender.conf");
    std::fs::write(&conf, "{}\n").unwrap();
    let (conf, store) = (
        conf.display().to_string(),
        dev.path("store").display().to_string(),
    );
    let mut all = vec!["--no-syslog", "--config", &conf, "--data", &store];
    all.extend_from_slice(args);
    run_in(dev.dir.path(), GO_CLIENT, &all)
}

/// Installs and commits `art` with the Go client.
fn go_install_commit(dev: &Device, art: &str) {
    // The Go client reads /etc/mender/artifact_info while its store has no name yet; give it
    // one in a private mount namespace rather than touching the real /etc.
    let etc = dev.path("etc-mender");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("artifact_info"), "artifact_name=base\n").unwrap();
    go_client(dev, &["show-artifact"]); // checks the client is there, creates mender.conf
    let go = |cmd: &str| {
        format!(
            "{GO_CLIENT} --no-syslog --config '{}' --data '{}' {cmd}",
            dev.path("mender.conf").display(),
            dev.path("store").display()
        )
    };
    let script = format!(
        "set -e; mount --bind '{}' /etc/mender; {}; {}",
        etc.display(),
        go(&format!("install '{art}'")),
        go("commit")
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .current_dir(dev.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go client install/commit failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn go_client_reads_what_we_installed() {
    let dev = Device::new();
    let art = dev.single_file("ours-1", "v1\n", &["-g", "grp", "-p", "app.version:1"]);
    dev.run(&["install", &art]).ok();
    dev.run(&["commit"]).ok();
    assert_eq!(go_client(&dev, &["show-artifact"]).ok().stdout, "ours-1\n");
    let provides = go_client(&dev, &["show-provides"]).ok().stdout;
    for line in [
        "artifact_name=ours-1",
        "artifact_group=grp",
        "app.version=1",
        "rootfs-image.single-file.version=ours-1",
    ] {
        assert!(provides.lines().any(|l| l == line), "{line}:\n{provides}");
    }
}

#[test]
fn we_read_what_the_go_client_installed() {
    let dev = Device::new();
    let art = dev.single_file("theirs-1", "v2\n", &["-g", "grp", "-p", "app.version:2"]);
    go_install_commit(&dev, &art);
    assert_eq!(dev.dest().as_deref(), Some("v2\n"));
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "theirs-1\n");
    let provides = dev.run(&["show-provides"]).ok().stdout;
    for line in [
        "artifact_name=theirs-1",
        "artifact_group=grp",
        "app.version=2",
        "rootfs-image.single-file.version=theirs-1",
    ] {
        assert!(provides.lines().any(|l| l == line), "{line}:\n{provides}");
    }
    // And we carry on from their store: install and commit on top of it.
    let next = dev.single_file("ours-2", "v3\n", &[]);
    dev.run(&["install", &next]).ok();
    dev.run(&["commit"]).ok();
    assert_eq!(go_client(&dev, &["show-artifact"]).ok().stdout, "ours-2\n");
}

/// Our gzip payloads are a series of members (one per chunk); the Go client's reader takes
/// them as one stream, whole chunks of zeros included.
#[test]
fn go_client_installs_our_multi_member_gzip() {
    let dev = Device::new();
    let mut img: Vec<u8> = (0..1_200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    img.extend(vec![0u8; 5 << 20]);
    img.extend(b"end of image\n");
    let out = dev.single_file_by(ma, "chunky-1", &img, &["--compression", "gzip"]);
    go_install_commit(&dev, &out);
    assert!(std::fs::read(dev.path("dest/app.conf")).unwrap() == img);
    assert_eq!(
        go_client(&dev, &["show-artifact"]).ok().stdout,
        "chunky-1\n"
    );
}
