//! Write then read, through the library and the binary: every compression, several payloads,
//! long names, and random contents (property test).

use std::io::Read;
use std::path::PathBuf;

use mender::artifact::{
    read_artifact, write_artifact, ArtifactInfo, ArtifactSpec, Compression, HeaderInfo, Output,
    PayloadFile, PayloadSpec, ReadOptions, TypeInfo, Visitor, WriteOptions,
};
use proptest::prelude::*;

use crate::common::*;

/// Collects every payload file's content.
#[derive(Default)]
struct Collect(Vec<(usize, String, Vec<u8>)>);

impl Visitor for Collect {
    fn file(
        &mut self,
        _info: &ArtifactInfo,
        payload: usize,
        file: &PayloadFile,
        data: &mut dyn Read,
    ) -> mender::artifact::Result<()> {
        let mut v = Vec::new();
        data.read_to_end(&mut v)
            .map_err(|e| mender::artifact::ArtifactError::io("reading", e))?;
        self.0.push((payload, file.name.clone(), v));
        Ok(())
    }
}

fn spec(payloads: Vec<Vec<PathBuf>>, compression: Compression) -> ArtifactSpec {
    let n = payloads.len();
    ArtifactSpec {
        version: 3,
        header_info: HeaderInfo {
            payload_types: (0..n).map(|i| Some(format!("type-{i}"))).collect(),
            artifact_name: "multi".into(),
            depends_device_type: vec!["dev".into()],
            ..Default::default()
        },
        payloads: payloads
            .into_iter()
            .enumerate()
            .map(|(i, files)| PayloadSpec {
                type_info: TypeInfo {
                    kind: Some(format!("type-{i}")),
                    ..Default::default()
                },
                files,
                ..Default::default()
            })
            .collect(),
        scripts: vec![],
        augment: None,
        compression,
    }
}

#[test]
fn several_payloads_every_compression_and_long_names() {
    let dir = tmp();
    let d = dir.path();
    let long = "n".repeat(150);
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            "a.bin".into(),
            (0..300_000u32).map(|i| (i % 7) as u8).collect(),
        ),
        (long.clone(), b"long name".to_vec()),
        ("empty".into(), Vec::new()),
        ("b".into(), vec![9u8; 2 << 20]),
    ];
    for (name, data) in &files {
        std::fs::write(d.join(name), data).unwrap();
    }
    let p0 = vec![d.join("a.bin"), d.join(&long)];
    let p1 = vec![d.join("empty"), d.join("b")];
    for name in mender::artifact::compression::COMPRESSION_NAMES {
        let comp: Compression = name.parse().unwrap();
        let out = d.join(format!("multi-{name}.mender"));
        write_artifact(
            &spec(vec![p0.clone(), p1.clone(), vec![]], comp),
            &Output::File(out.clone()),
            &WriteOptions::default(),
        )
        .unwrap();
        let mut c = Collect::default();
        let info = read_artifact(
            std::fs::File::open(&out).unwrap(),
            &ReadOptions::default(),
            &mut c,
        )
        .unwrap();
        assert_eq!(info.payloads.len(), 3);
        let got: Vec<(usize, &str, usize)> =
            c.0.iter()
                .map(|(i, n, v)| (*i, n.as_str(), v.len()))
                .collect();
        assert_eq!(
            got,
            vec![
                (0, "a.bin", 300_000),
                (0, long.as_str(), 9),
                (1, "empty", 0),
                (1, "b", 2 << 20)
            ],
            "{name}"
        );
        assert_eq!(c.0[3].2, files[3].1);
        ma(d, &["validate", out.to_str().unwrap()]).ok();
        if matches!(name, "none" | "gzip" | "lzma") {
            upstream_ma(d, &["validate", out.to_str().unwrap()]).ok();
        }
    }
}

#[test]
fn stdout_output_equals_file_output_members() {
    let dir = tmp();
    let d = dir.path();
    let img = input("rootfs.img");
    let r = std::process::Command::new(ours())
        .args([
            "write",
            "rootfs-image",
            "-f",
            &img,
            "-t",
            "x",
            "-n",
            "r",
            "-o",
            "-",
        ])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(r.status.success());
    std::fs::write(d.join("stdout.mender"), &r.stdout).unwrap();
    let r2 = std::process::Command::new(ours())
        .args([
            "write",
            "rootfs-image",
            "-f",
            &img,
            "-t",
            "x",
            "-n",
            "r",
            "-o",
        ])
        .arg(d.join("file.mender"))
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .status()
        .unwrap();
    assert!(r2.success());
    assert_eq!(std::fs::read(d.join("file.mender")).unwrap(), r.stdout);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_files_round_trip(
        contents in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..5000), 1..5),
        comp in 0usize..7,
    ) {
        let dir = tmp();
        let d = dir.path();
        let mut paths = Vec::new();
        for (i, c) in contents.iter().enumerate() {
            let p = d.join(format!("f{i}"));
            std::fs::write(&p, c).unwrap();
            paths.push(p);
        }
        let comp: Compression = mender::artifact::compression::COMPRESSION_NAMES[comp].parse().unwrap();
        let out = d.join("p.mender");
        write_artifact(&spec(vec![paths], comp), &Output::File(out.clone()), &WriteOptions::default()).unwrap();
        let mut c = Collect::default();
        read_artifact(std::fs::File::open(&out).unwrap(), &ReadOptions::default(), &mut c).unwrap();
        let got: Vec<Vec<u8>> = c.0.into_iter().map(|(_, _, v)| v).collect();
        prop_assert_eq!(got, contents);
    }
}
