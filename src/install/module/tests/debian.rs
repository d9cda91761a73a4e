//! Interop: Debian's `mender-client` update modules (single-file, directory, script), run
//! unmodified through the runner against temp destinations.

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::context;
use crate::install::module::{ModuleRunner, RebootAnswer, State, DEFAULT_MODULES_DIR};

/// The installed modules; their absence is a broken CI image, never a reason to skip.
fn debian_modules() -> PathBuf {
    let dir = PathBuf::from(DEFAULT_MODULES_DIR);
    assert!(
        dir.join("single-file").is_file()
            && dir.join("directory").is_file()
            && dir.join("script").is_file(),
        "Debian's update modules are missing from {}: apt-get install mender-client",
        dir.display()
    );
    dir
}

fn runner(work: &Path, payload_type: &str) -> ModuleRunner {
    let r = ModuleRunner::new(
        debian_modules(),
        work,
        payload_type,
        Duration::from_secs(30),
    )
    .unwrap();
    r.prepare_tree(&context(payload_type)).unwrap();
    r
}

/// Runs Download over `files` as the installer would: ask about sizes, then stream.
fn download(r: &ModuleRunner, files: &[(&str, &[u8])]) {
    let mut d = r
        .start_download(r.provide_payload_file_sizes().unwrap())
        .unwrap();
    for (name, data) in files {
        d.file(name, data.len() as u64, &mut Cursor::new(data))
            .unwrap();
    }
    assert_eq!(
        d.streaming(),
        Some(false),
        "Debian's modules take files from files/"
    );
    d.finish().unwrap();
}

fn call(r: &ModuleRunner, state: State) {
    if let Err(e) = r.call(state) {
        panic!("{e}: {:?}", e.output());
    }
}

#[test]
fn single_file_installs_rolls_back_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("etc/app");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("app.conf"), "old\n").unwrap();
    let r = runner(&tmp.path().join("work"), "single-file");
    let dest_dir = dest.to_str().unwrap().as_bytes();
    let files: [(&str, &[u8]); 4] = [
        ("dest_dir", dest_dir),
        ("filename", b"app.conf"),
        ("permissions", b"640"),
        ("app.conf", b"new\n"),
    ];
    download(&r, &files);
    call(&r, State::ArtifactInstall);
    assert_eq!(fs::read_to_string(dest.join("app.conf")).unwrap(), "new\n");
    let mode = fs::metadata(dest.join("app.conf"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(r.needs_reboot().unwrap(), RebootAnswer::No);
    assert!(r.supports_rollback().unwrap());
    call(&r, State::ArtifactRollback);
    assert_eq!(fs::read_to_string(dest.join("app.conf")).unwrap(), "old\n");
    call(&r, State::ArtifactFailure);
    call(&r, State::Cleanup);
    assert!(!r.tree_dir().exists());
    assert!(r.payload_dir().is_dir());
}

fn tarball(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn directory_replaces_the_dir_and_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("srv/www");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("old.txt"), "old").unwrap();
    let r = runner(&tmp.path().join("work"), "directory");
    let tar = tarball(&[("index.html", b"<p>new</p>"), ("sub/b.txt", b"b")]);
    download(
        &r,
        &[
            ("update.tar", &tar),
            ("dest_dir", dest.to_str().unwrap().as_bytes()),
        ],
    );
    call(&r, State::ArtifactInstall);
    assert_eq!(
        fs::read_to_string(dest.join("index.html")).unwrap(),
        "<p>new</p>"
    );
    assert_eq!(fs::read_to_string(dest.join("sub/b.txt")).unwrap(), "b");
    assert!(!dest.join("old.txt").exists());
    assert_eq!(r.needs_reboot().unwrap(), RebootAnswer::No);
    assert!(r.supports_rollback().unwrap());
    call(&r, State::ArtifactRollback);
    assert_eq!(fs::read_to_string(dest.join("old.txt")).unwrap(), "old");
    assert!(!dest.join("index.html").exists());
    call(&r, State::Cleanup);
    assert!(!r.tree_dir().exists());
}

#[test]
fn script_runs_the_payload_and_has_no_rollback() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("ran");
    let r = runner(&tmp.path().join("work"), "script");
    let body = format!("#!/bin/sh\necho \"$(pwd)\" > {}\n", marker.display());
    download(&r, &[("run.sh", body.as_bytes())]);
    call(&r, State::ArtifactInstall);
    let cwd = fs::read_to_string(&marker).unwrap();
    assert_eq!(
        cwd.trim_end(),
        fs::canonicalize(r.tree_dir()).unwrap().to_str().unwrap()
    );
    assert_eq!(r.needs_reboot().unwrap(), RebootAnswer::No);
    assert!(!r.supports_rollback().unwrap());
    call(&r, State::ArtifactCommit);
    call(&r, State::Cleanup);
    assert!(!r.tree_dir().exists());
}
