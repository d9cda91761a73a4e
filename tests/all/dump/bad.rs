//! `dump` on artifacts it must handle specially: several payloads, depends that `write`
//! cannot express, and bad input (missing, corrupt, truncated, wrong key, busy folder).

use std::path::{Path, PathBuf};

use mender::artifact::{
    write_artifact, ArtifactSpec, Compression, HeaderInfo, Output, PayloadSpec, TypeInfo,
    WriteOptions,
};
use serde_json::Value;

use super::{dump, path, rebuild};
use crate::common::*;

fn library_artifact(dir: &Path, payloads: usize, depends: Value) -> PathBuf {
    let file = dir.join("p.bin");
    std::fs::write(&file, b"payload").unwrap();
    let out = dir.join(format!("lib-{payloads}.mender"));
    let ti = |i: usize| TypeInfo {
        kind: Some(format!("t{i}")),
        depends: [("k".to_string(), depends.clone())].into_iter().collect(),
        ..Default::default()
    };
    let spec = ArtifactSpec {
        version: 3,
        header_info: HeaderInfo {
            payload_types: (0..payloads).map(|i| Some(format!("t{i}"))).collect(),
            artifact_name: "lib".into(),
            depends_device_type: vec!["dev".into()],
            ..Default::default()
        },
        payloads: (0..payloads)
            .map(|i| PayloadSpec {
                type_info: ti(i),
                files: vec![file.clone()],
                ..Default::default()
            })
            .collect(),
        scripts: vec![],
        augment: None,
        compression: Compression::None,
    };
    write_artifact(&spec, &Output::File(out.clone()), &WriteOptions::default()).unwrap();
    out
}

#[test]
fn several_payloads_and_list_depends() {
    let dir = tmp();
    let d = dir.path();
    let multi = library_artifact(d, 2, Value::String("v".into()));
    let (argv, stderr) = dump(d, &multi, "multi", &[]);
    assert!(stderr.contains("2 payloads"), "{stderr}");
    assert!(d.join("multi/payloads/0001/files/p.bin").is_file());
    rebuild(d, &argv, &[]);
    let r = ma(d, &["dump", "--files", "f", path(&multi)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!d.join("f").exists());

    let list = library_artifact(d, 1, serde_json::json!(["a", "b"]));
    let r = ma(
        d,
        &["dump", "--output-dir", "l", "--print-cmdline", path(&list)],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is a list"), "{}", r.stderr);
    assert!(!d.join("l").exists());
    ma(d, &["dump", "--output-dir", "l", path(&list)]).ok();
    assert!(d.join("l/files/p.bin").is_file());
}

#[test]
fn bad_input_leaves_nothing() {
    let dir = tmp();
    let d = dir.path();
    let r = ma(d, &["dump", "--output-dir", "o", "missing.mender"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(!d.join("o").exists());
    let r = ma(d, &["dump", path(&upstream_fixture("bootstrap.mender"))]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    // The second payload file is corrupt: the first, already written, must go too.
    let mut bytes = std::fs::read(upstream_fixture("module-none.mender")).unwrap();
    let at = bytes.windows(6).position(|w| w == b"second").unwrap();
    bytes[at] = b'S';
    std::fs::write(d.join("corrupt.mender"), &bytes).unwrap();
    let r = ma(d, &["dump", "--output-dir", "o", "corrupt.mender"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("checksum"), "{}", r.stderr);
    assert!(!d.join("o").exists());
    std::fs::create_dir(d.join("empty")).unwrap();
    let r = ma(d, &["dump", "--output-dir", "empty", "corrupt.mender"]);
    assert_eq!(r.code, 1);
    assert_eq!(std::fs::read_dir(d.join("empty")).unwrap().count(), 0);
    std::fs::write(d.join("truncated.mender"), &bytes[..bytes.len() / 2]).unwrap();
    let r = ma(d, &["dump", "--output-dir", "o", "truncated.mender"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!d.join("o").exists());

    // A folder that is not empty is refused unless --force.
    let good = upstream_fixture("module-image.mender");
    std::fs::create_dir(d.join("full")).unwrap();
    std::fs::write(d.join("full/keep"), b"mine").unwrap();
    let r = ma(d, &["dump", "--output-dir", "full", path(&good)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(std::fs::read_dir(d.join("full")).unwrap().count(), 1);
    ma(d, &["dump", "--output-dir", "full", "--force", path(&good)]).ok();
    ma(d, &["dump", "--output-dir", "full", "--force", path(&good)]).ok();
    assert!(d.join("full/keep").is_file() && d.join("full/files/file1.txt").is_file());
    assert_eq!(std::fs::read_dir(d.join("full")).unwrap().count(), 3);
}
