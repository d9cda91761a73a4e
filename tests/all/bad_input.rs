//! Bad input, table-driven through the binary: every case fails with a one-line message
//! naming the problem and a non-zero status, never a panic, and leaves no output behind.

use std::path::Path;

use mender::artifact::hashing::sha256;

use crate::common::*;
use crate::craft::{build, raw_tar};

const VERSION: &[u8] = br#"{"format":"mender","version":3}"#;
const HEADER_INFO: &str = r#"{"payloads":[{"type":"m"}],"artifact_provides":{"artifact_name":"a"},"artifact_depends":{"device_type":["d"]}}"#;

/// The parts of a small module artifact (uncompressed), for tweaking.
struct Parts {
    version: Vec<u8>,
    header_info: Vec<u8>,
    type_info: Vec<u8>,
    data: Vec<(String, Vec<u8>, u8)>,
    /// Manifest lines for data files; `None` computes them from `data`.
    data_sums: Option<Vec<(String, [u8; 32])>>,
}

impl Parts {
    fn new() -> Self {
        Parts {
            version: VERSION.to_vec(),
            header_info: HEADER_INFO.as_bytes().to_vec(),
            type_info: br#"{"type":"m"}"#.to_vec(),
            data: vec![("file.bin".into(), b"payload bytes".to_vec(), b'0')],
            data_sums: None,
        }
    }

    fn header(&self) -> Vec<u8> {
        raw_tar(&[
            ("header-info", &self.header_info, b'0'),
            ("headers/0000/type-info", &self.type_info, b'0'),
        ])
    }

    fn data_tar(&self) -> Vec<u8> {
        let e: Vec<(&str, &[u8], u8)> = self
            .data
            .iter()
            .map(|(n, d, k)| (n.as_str(), d.as_slice(), *k))
            .collect();
        raw_tar(&e)
    }

    fn manifest(&self, header: &[u8]) -> Vec<u8> {
        let sums = self.data_sums.clone().unwrap_or_else(|| {
            self.data
                .iter()
                .map(|(n, d, _)| (format!("data/0000/{n}"), sha256(d)))
                .collect()
        });
        let mut m = String::new();
        for (p, s) in sums {
            m += &format!("{}  {p}\n", hex::encode(s));
        }
        m += &format!("{}  header.tar\n", hex::encode(sha256(header)));
        m += &format!("{}  version\n", hex::encode(sha256(&self.version)));
        m.into_bytes()
    }

    fn members(&self) -> Vec<(String, Vec<u8>)> {
        let header = self.header();
        vec![
            ("version".into(), self.version.clone()),
            ("manifest".into(), self.manifest(&header)),
            ("header.tar".into(), header),
            ("data/0000.tar".into(), self.data_tar()),
        ]
    }

    fn build(&self) -> Vec<u8> {
        build(&self.members())
    }
}

fn good() -> Vec<u8> {
    Parts::new().build()
}

fn gzip_artifact(dir: &Path) -> Vec<u8> {
    ma(
        dir,
        &[
            "write",
            "module-image",
            "-T",
            "m",
            "-t",
            "d",
            "-n",
            "a",
            "-f",
            &input("rootfs.img"),
            "-o",
            "gz.mender",
        ],
    )
    .ok();
    std::fs::read(dir.join("gz.mender")).unwrap()
}

fn expect_invalid(dir: &Path, name: &str, bytes: &[u8], needle: &str) {
    let path = dir.join(format!("{name}.mender"));
    std::fs::write(&path, bytes).unwrap();
    let r = ma(dir, &["validate", path.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{name}: validate accepted it");
    assert!(
        !r.stderr.contains("panicked"),
        "{name}: panic: {}",
        r.stderr
    );
    assert_eq!(
        r.stderr.trim_end().lines().count(),
        1,
        "{name}: not one line: {}",
        r.stderr
    );
    assert!(
        r.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "{name}: expected {needle:?} in {:?}",
        r.stderr
    );
    let rd = ma(dir, &["read", path.to_str().unwrap()]);
    assert_ne!(rd.code, 0, "{name}: read accepted it");
}

#[test]
fn the_good_case_is_valid() {
    let dir = tmp();
    let p = dir.path().join("good.mender");
    std::fs::write(&p, good()).unwrap();
    ma(dir.path(), &["validate", p.to_str().unwrap()]).ok();
    upstream_ma(dir.path(), &["validate", p.to_str().unwrap()]).ok();
}

#[test]
fn hostile_and_broken_artifacts_are_refused() {
    let dir = tmp();
    let d = dir.path();
    let good = good();
    let gz = gzip_artifact(d);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();

    cases.push(("empty", Vec::new(), "not a mender artifact"));
    cases.push(("not-tar", b"hello world, not a tar".repeat(40), "tar"));
    for cut in [100usize, 1024 + 300, 2048 + 100, good.len() - 1536 - 300] {
        cases.push(("truncated", good[..cut].to_vec(), ""));
    }
    for cut in [gz.len() / 2, gz.len() - 1100] {
        cases.push(("truncated-gz", gz[..cut].to_vec(), ""));
    }
    let mut corrupt = gz.clone();
    let at = corrupt.len() - 1024 - 2000;
    corrupt[at] ^= 0x55;
    cases.push(("corrupt-gzip", corrupt, "data/0000"));

    let mut p = Parts::new();
    p.data_sums = Some(vec![("data/0000/file.bin".into(), sha256(b"other bytes"))]);
    cases.push((
        "checksum",
        p.build(),
        "checksum mismatch for data/0000/file.bin",
    ));

    let mut m = Parts::new().members();
    m.swap(1, 2);
    cases.push(("order", build(&m), "out of place"));
    let mut m = Parts::new().members();
    let data = m.remove(3);
    m.insert(2, data);
    cases.push(("data-before-header", build(&m), "out of place"));
    let mut m = Parts::new().members();
    m.push(("version".into(), VERSION.to_vec()));
    cases.push(("member-after-data", build(&m), "out of place"));
    let mut m = Parts::new().members();
    m.push(("data/0000.tar".into(), Parts::new().data_tar()));
    cases.push(("duplicate-data-member", build(&m), "out of order"));

    let mut p = Parts::new();
    p.version = br#"{"format":"mender","version":4}"#.to_vec();
    cases.push((
        "version-4",
        p.build(),
        "unsupported artifact format version 4",
    ));
    let mut p = Parts::new();
    p.version = br#"{"format":"mender","version":3,"x":1}"#.to_vec();
    cases.push(("version-extra-key", p.build(), "invalid version"));

    for (n, name) in [
        ("traversal", "../evil"),
        ("absolute", "/etc/passwd"),
        ("subdir", "a/b"),
    ] {
        let mut p = Parts::new();
        p.data = vec![(name.into(), b"x".to_vec(), b'0')];
        p.data_sums = Some(vec![(format!("data/0000/{name}"), sha256(b"x"))]);
        cases.push((n, p.build(), "forbidden characters"));
    }
    for (n, kind) in [
        ("symlink", b'2'),
        ("hardlink", b'1'),
        ("device", b'3'),
        ("fifo", b'6'),
        ("dir", b'5'),
    ] {
        let mut p = Parts::new();
        p.data = vec![("link".into(), Vec::new(), kind)];
        p.data_sums = Some(vec![("data/0000/link".into(), sha256(b""))]);
        cases.push((n, p.build(), "not a regular file"));
    }
    let mut m = Parts::new().members();
    m[0].0 = "../version".into();
    cases.push(("outer-traversal", build(&m), "not a mender artifact"));

    let mut m = Parts::new().members();
    m[1].1 = vec![b'a'; 5 << 20];
    cases.push(("oversized-manifest", build(&m), "larger than the limit"));
    let mut p = Parts::new();
    p.header_info = b"{not json".to_vec();
    cases.push(("bad-json", p.build(), "invalid header-info"));
    let mut p = Parts::new();
    p.header_info = format!("{}{}{}", "[".repeat(10_000), "1", "]".repeat(10_000)).into_bytes();
    cases.push(("deep-json", p.build(), "invalid header-info"));
    let mut p = Parts::new();
    p.type_info = br#"{"type":"m","artifact_provides":{"a":["not","string"]}}"#.to_vec();
    cases.push(("bad-provides", p.build(), "invalid type-info"));

    let mut p = Parts::new();
    p.data = vec![
        ("f".into(), b"1".to_vec(), b'0'),
        ("f".into(), b"1".to_vec(), b'0'),
    ];
    p.data_sums = Some(vec![("data/0000/f".into(), sha256(b"1"))]);
    cases.push(("duplicate-file", p.build(), "duplicate payload file"));
    let mut p = Parts::new();
    p.data_sums = Some(vec![
        ("data/0000/file.bin".into(), sha256(b"payload bytes")),
        ("data/0000/missing".into(), sha256(b"")),
    ]);
    cases.push(("missing-file", p.build(), "missing from the artifact"));
    let mut p = Parts::new();
    p.data_sums = Some(vec![]);
    cases.push(("unlisted-file", p.build(), "not in the manifest"));

    let mut m = Parts::new().members();
    m[1].1.pop();
    m[1].1.extend_from_slice(b"0\n");
    cases.push(("header-checksum", build(&m), "version"));

    for (name, bytes, needle) in cases {
        expect_invalid(d, name, &bytes, needle);
    }
}

#[test]
fn decompression_bomb_in_header_is_capped() {
    let dir = tmp();
    let d = dir.path();
    // 100 MiB of zeros in the header tar compresses to ~100 KiB.
    let mut p = Parts::new();
    p.header_info = vec![b' '; 100 << 20];
    let header = raw_tar(&[("header-info", &p.header_info, b'0')]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &header).unwrap();
    let gz = enc.finish().unwrap();
    let manifest = format!(
        "{}  header.tar.gz\n{}  version\n",
        hex::encode(sha256(&gz)),
        hex::encode(sha256(VERSION))
    );
    let art = build(&[
        ("version".into(), VERSION.to_vec()),
        ("manifest".into(), manifest.into_bytes()),
        ("header.tar.gz".into(), gz),
    ]);
    expect_invalid(d, "bomb", &art, "limit");
}

fn write_fails(dir: &Path, args: &[&str], needle: &str, code: i32) {
    let r = ma(dir, args);
    assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
    assert!(
        r.stderr.contains(needle),
        "{args:?}: expected {needle:?} in {:?}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"));
}

#[test]
fn invalid_write_parameters_fail_and_leave_nothing() {
    let dir = tmp();
    let d = dir.path();
    let img = input("rootfs.img");
    std::fs::write(d.join("keep.mender"), b"previous").unwrap();
    let base = [
        "write",
        "rootfs-image",
        "-f",
        &img,
        "-t",
        "dev",
        "-o",
        "keep.mender",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let cases: Vec<(Vec<String>, &str, i32)> = vec![
        (with(&["-n", "has space"]), "whitespace", 2),
        (with(&["-n", ""]), "must not be empty", 2),
        (with(&["-n", "ok", "-p", "nocolon"]), "KEY:VALUE", 2),
        (
            with(&["-n", "ok", "--compression", "bzip2"]),
            "unknown compression",
            2,
        ),
        (
            with(&["-n", "ok", "-s", &input("file1.txt")]),
            "invalid script name",
            2,
        ),
        (
            with(&["-n", "ok", "-v", "1"]),
            "unsupported artifact format version 1",
            2,
        ),
    ];
    for (args, needle, code) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        write_fails(d, &a, needle, code);
    }
    write_fails(
        d,
        &[
            "write",
            "rootfs-image",
            "-f",
            "/nonexistent/x.img",
            "-t",
            "dev",
            "-n",
            "a",
            "-o",
            "keep.mender",
        ],
        "/nonexistent/x.img",
        1,
    );
    write_fails(
        d,
        &[
            "write",
            "module-image",
            "-T",
            "m",
            "-t",
            "d",
            "-n",
            "a",
            "-f",
            &input("file1.txt"),
            "-f",
            &input("file1.txt"),
            "-o",
            "keep.mender",
        ],
        "duplicate file name",
        2,
    );
    write_fails(
        d,
        &[
            "write",
            "module-image",
            "-T",
            "m",
            "-t",
            "d",
            "-n",
            "a",
            "-m",
            &input("file1.txt"),
            "-o",
            "keep.mender",
        ],
        "invalid JSON",
        2,
    );
    write_fails(
        d,
        &[
            "write",
            "module-image",
            "-T",
            "m",
            "-t",
            "d",
            "-n",
            "a",
            "--augment-file",
            &input("file1.txt"),
            "-o",
            "keep.mender",
        ],
        "--augment-type",
        2,
    );
    assert_eq!(std::fs::read(d.join("keep.mender")).unwrap(), b"previous");
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temp files left: {leftovers:?}");
}

#[test]
fn missing_artifact_is_an_open_error() {
    let dir = tmp();
    let r = ma(dir.path(), &["validate", "/nonexistent.mender"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("/nonexistent.mender"));
}
