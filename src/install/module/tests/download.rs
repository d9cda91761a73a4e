//! Download tests with shell-script modules: streams with and without sizes, `files/` mode,
//! modules that stop early, fail, hang, and a payload that fails its checksum mid-file.

use std::fs;
use std::io::{self, Cursor, Read, Write};
use std::time::{Duration, Instant};

use super::{context, read, Fixture};
use crate::install::module::{ModuleError, PayloadFiles};

/// A module that reads every stream into `tmp/<name>`, logs `name size` lines, checks the
/// announced size, and touches `tmp/end` only when it sees the end marker. It asks for sizes
/// when a file `<module>.sizes` exists.
const STREAMING: &str = r#"
case "$STATE" in
ProvidePayloadFileSizes) if [ -e "$0.sizes" ]; then echo Yes; fi ;;
Download|DownloadWithFileSizes)
    while :; do
        line=$(cat stream-next)
        [ -z "$line" ] && break
        set -- $line
        base=$(basename "$1")
        cat "$1" > "tmp/$base"
        if [ "$STATE" = DownloadWithFileSizes ]; then
            [ "$(wc -c < "tmp/$base")" -eq "$2" ] || { echo "size mismatch $2" >&2; exit 9; }
        else
            [ -z "$2" ] || exit 8
        fi
        echo "$line" >> tmp/log
    done
    touch tmp/end ;;
esac"#;

fn big(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

struct Files {
    files: Vec<(String, Vec<u8>)>,
    next: usize,
}

impl PayloadFiles for Files {
    fn next_file(&mut self) -> Result<Option<(String, u64)>, ModuleError> {
        Ok(self
            .files
            .get(self.next)
            .map(|(n, d)| (n.clone(), d.len() as u64)))
    }
    fn copy_current(&mut self, out: &mut dyn Write) -> Result<(), ModuleError> {
        let (_, d) = &self.files[self.next];
        self.next += 1;
        out.write_all(d)
            .map_err(|e| ModuleError::io("test sink", e))
    }
}

fn sample() -> Vec<(String, Vec<u8>)> {
    vec![
        ("a".into(), b"alpha".to_vec()),
        ("big".into(), big(300_000)),
        ("empty".into(), vec![]),
    ]
}

#[test]
fn streams_with_sizes_reach_the_module_in_order() {
    let f = Fixture::new();
    let r = f.module("s", STREAMING);
    fs::write(f.modules.join("s.sizes"), "").unwrap();
    r.prepare_tree(&context("s")).unwrap();
    assert!(r.provide_payload_file_sizes().unwrap());
    r.download(&mut Files {
        files: sample(),
        next: 0,
    })
    .unwrap();
    let tree = r.tree_dir();
    assert_eq!(
        read(tree.join("tmp/log")),
        "streams/a 5\nstreams/big 300000\nstreams/empty 0\n"
    );
    assert_eq!(fs::read(tree.join("tmp/big")).unwrap(), big(300_000));
    assert!(tree.join("tmp/end").exists());
    assert!(!tree.join("stream-next").exists() && !tree.join("streams").exists());
    assert!(!tree.join("files").exists());
}

#[test]
fn streams_without_sizes_through_the_session_api() {
    let f = Fixture::new();
    let r = f.module("s", STREAMING);
    r.prepare_tree(&context("s")).unwrap();
    let mut d = r.start_download(false).unwrap();
    for (name, data) in sample() {
        d.file(&name, data.len() as u64, &mut Cursor::new(&data))
            .unwrap();
        assert_eq!(d.streaming(), Some(true));
    }
    d.finish().unwrap();
    let tree = r.tree_dir();
    assert_eq!(
        read(tree.join("tmp/log")),
        "streams/a\nstreams/big\nstreams/empty\n"
    );
    assert_eq!(read(tree.join("tmp/a")), "alpha");
}

#[test]
fn no_files_means_just_the_end_marker() {
    let f = Fixture::new();
    let r = f.module("s", STREAMING);
    r.prepare_tree(&context("s")).unwrap();
    r.start_download(false).unwrap().finish().unwrap();
    assert!(r.tree_dir().join("tmp/end").exists());
}

#[test]
fn a_module_that_does_not_read_streams_gets_files() {
    let f = Fixture::new();
    let r = f.module("nostream", "exit 0");
    r.prepare_tree(&context("nostream")).unwrap();
    let mut d = r.start_download(false).unwrap();
    for (name, data) in sample() {
        d.file(&name, data.len() as u64, &mut Cursor::new(&data))
            .unwrap();
        assert_eq!(d.streaming(), Some(false));
    }
    d.finish().unwrap();
    let tree = r.tree_dir();
    assert_eq!(read(tree.join("files/a")), "alpha");
    assert_eq!(fs::read(tree.join("files/big")).unwrap(), big(300_000));
    assert_eq!(fs::read(tree.join("files/empty")).unwrap(), b"");
    assert!(!tree.join("stream-next").exists() && !tree.join("streams").exists());
}

fn unfinished(e: &ModuleError) -> bool {
    e.to_string() == "Download: update module half started downloading but did not finish"
}

#[test]
fn a_module_that_reads_half_a_stream_fails_the_download() {
    let f = Fixture::new();
    let r = f.module(
        "half",
        r#"line=$(cat stream-next); head -c 1000 "$line" > /dev/null; exit 0"#,
    );
    r.prepare_tree(&context("half")).unwrap();
    let mut d = r.start_download(false).unwrap();
    let data = big(1 << 20);
    let e = d
        .file("big", data.len() as u64, &mut Cursor::new(&data))
        .unwrap_err();
    assert!(unfinished(&e), "{e}");
}

#[test]
fn a_module_that_stops_before_the_end_marker_fails_the_download() {
    let f = Fixture::new();
    let r = f.module(
        "half",
        r#"line=$(cat stream-next); cat "$line" > /dev/null; exit 0"#,
    );
    r.prepare_tree(&context("half")).unwrap();
    let mut d = r.start_download(false).unwrap();
    d.file("a", 5, &mut Cursor::new(b"alpha")).unwrap();
    let e = d.finish().unwrap_err();
    assert!(unfinished(&e), "{e}");
}

#[test]
fn a_non_zero_download_exit_is_reported() {
    let f = Fixture::new();
    let r = f.module("bad", "echo nope >&2; exit 7");
    r.prepare_tree(&context("bad")).unwrap();
    let mut d = r.start_download(false).unwrap();
    let e = d.file("a", 5, &mut Cursor::new(b"alpha")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Download: update module bad returned non-zero status 7"
    );
    assert_eq!(e.output().unwrap().stderr, "nope\n");

    let r = f.module(
        "bad2",
        r#"line=$(cat stream-next); cat "$line" > /dev/null; exit 4"#,
    );
    r.prepare_tree(&context("bad2")).unwrap();
    let mut d = r.start_download(false).unwrap();
    d.file("a", 5, &mut Cursor::new(b"alpha")).unwrap();
    let e = d.finish().unwrap_err();
    assert_eq!(
        e.to_string(),
        "Download: update module bad2 returned non-zero status 4"
    );
}

#[test]
fn hanging_modules_time_out_wherever_they_hang() {
    let f = Fixture::new();
    let cases = [
        ("never-opens", "sleep 100"),
        (
            "never-reads",
            r#"line=$(cat stream-next); exec 3< "$line"; sleep 100"#,
        ),
    ];
    for (name, body) in cases {
        f.module(name, body);
        let r = f.runner(name, Duration::from_millis(300));
        r.prepare_tree(&context(name)).unwrap();
        let t = Instant::now();
        let mut d = r.start_download(false).unwrap();
        let data = big(1 << 20);
        let e = d
            .file("big", data.len() as u64, &mut Cursor::new(&data))
            .unwrap_err();
        assert!(matches!(e, ModuleError::Timeout { .. }), "{name}: {e}");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{name}: {:?}",
            t.elapsed()
        );
    }
}

/// Yields `good` bytes, then fails as the artifact reader does on a checksum mismatch.
struct Corrupt {
    good: usize,
}

impl Read for Corrupt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "checksum mismatch",
            ));
        }
        let n = buf.len().min(self.good).min(4096);
        buf[..n].fill(b'x');
        self.good -= n;
        Ok(n)
    }
}

#[test]
fn a_payload_read_error_kills_the_module_before_any_end_marker() {
    let f = Fixture::new();
    let r = f.module("s", STREAMING);
    r.prepare_tree(&context("s")).unwrap();
    let mut d = r.start_download(false).unwrap();
    d.file("a", 5, &mut Cursor::new(b"alpha")).unwrap();
    let e = d
        .file("big", 200_000, &mut Corrupt { good: 100_000 })
        .unwrap_err();
    match &e {
        ModuleError::Payload { file, source } => {
            assert_eq!(
                (file.as_str(), source.kind()),
                ("big", io::ErrorKind::InvalidData)
            )
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    assert!(d.finish().is_err());
    std::thread::sleep(Duration::from_millis(100));
    let tree = r.tree_dir();
    assert!(
        !tree.join("tmp/end").exists(),
        "the module saw an end marker"
    );
    assert_eq!(
        read(tree.join("tmp/log")),
        "streams/a\n",
        "the truncated file was taken as complete"
    );
    assert!(!tree.join("stream-next").exists() && !tree.join("streams").exists());
}

#[test]
fn bad_file_names_and_wrong_sizes_are_rejected() {
    let f = Fixture::new();
    let r = f.module("s", STREAMING);
    r.prepare_tree(&context("s")).unwrap();
    for name in ["../x", "a/b", "..", ""] {
        let mut d = r.start_download(false).unwrap();
        let e = d.file(name, 1, &mut Cursor::new(b"x")).unwrap_err();
        assert!(
            matches!(e, ModuleError::InvalidFileName(_)),
            "{name:?}: {e}"
        );
    }
    let mut d = r.start_download(false).unwrap();
    let e = d.file("a", 10, &mut Cursor::new(b"alpha")).unwrap_err();
    assert!(
        e.to_string()
            .contains("5 bytes where the header announced 10"),
        "{e}"
    );
    assert!(!r.tree_dir().join("tmp/end").exists());
}

#[test]
fn a_payload_read_error_in_files_mode_leaves_no_unverified_file() {
    let f = Fixture::new();
    let r = f.module("nostream", "exit 0");
    r.prepare_tree(&context("nostream")).unwrap();
    let mut d = r.start_download(false).unwrap();
    d.file("a", 5, &mut Cursor::new(b"alpha")).unwrap();
    let e = d
        .file("big", 200_000, &mut Corrupt { good: 100_000 })
        .unwrap_err();
    assert!(matches!(e, ModuleError::Payload { .. }), "{e}");
    assert!(!r.tree_dir().join("files/big").exists());
}

#[test]
fn the_pull_form_tells_module_failures_from_payload_failures() {
    let f = Fixture::new();
    let r = f.module(
        "half",
        r#"line=$(cat stream-next); head -c 1000 "$line" > /dev/null; exit 0"#,
    );
    r.prepare_tree(&context("half")).unwrap();
    let files = vec![("big".to_string(), big(1 << 20))];
    let e = r.download(&mut Files { files, next: 0 }).unwrap_err();
    assert!(unfinished(&e), "{e}");

    struct Failing;
    impl PayloadFiles for Failing {
        fn next_file(&mut self) -> Result<Option<(String, u64)>, ModuleError> {
            Ok(Some(("a".into(), 10)))
        }
        fn copy_current(&mut self, out: &mut dyn Write) -> Result<(), ModuleError> {
            out.write_all(b"12345").unwrap();
            let source = io::Error::new(io::ErrorKind::InvalidData, "checksum mismatch");
            Err(ModuleError::Payload {
                file: "a".into(),
                source,
            })
        }
    }
    let r = f.module("s", STREAMING);
    r.prepare_tree(&context("s")).unwrap();
    let e = r.download(&mut Failing).unwrap_err();
    assert!(matches!(e, ModuleError::Payload { .. }), "{e}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!r.tree_dir().join("tmp/end").exists());
    assert!(!r.tree_dir().join("tmp/log").exists());
}
