//! Hostile artifacts made here, each installed by `mender-update` on a simulated device whose
//! update module records every call and payload byte it gets and whose state scripts record
//! that they ran. Every one must be refused with a clear message, and nothing unverified may
//! be installed: the module's ArtifactInstall never runs, provides never change.

use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mender::artifact::hashing::sha256;
use mender::crypto::SigningKey;

use crate::common::*;
use crate::craft::*;
use crate::update::Device;

/// A device with the recording module `rec` and the artifact `base` installed through it;
/// everything the module notices, and what the scripts of `module()` artifacts notice, lands
/// in `rec/`.
fn device() -> Device {
    let dev = Device::new();
    let rec = dev.path("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let rec = rec.display();
    dev.module(
        "rec",
        &format!(
            r#"#!/bin/sh
echo "$1" >>{rec}/calls
case "$1" in
SupportsRollback) echo Yes ;;
Download|DownloadWithFileSizes)
    while :; do
        s=$(cat stream-next) || exit 1
        [ -z "$s" ] && break
        set -- $s
        cat "$1" | {{ head -c 64 >>{rec}/received; cat >/dev/null; }} || exit 1
        echo "$1" >>{rec}/complete
    done ;;
ArtifactInstall) touch {rec}/installed ;;
esac
exit 0
"#
        ),
    );
    // Something installed and committed, so there are provides that must not change.
    let base = dev.path("base.mender");
    save(&base, &module("base").build());
    install(&dev, &base).ok();
    dev.run(&["commit"]).ok();
    take_seen(&dev);
    dev
}

/// The state scripts every `module()` artifact carries: each records that it ran.
const SCRIPTS: [&str; 3] = [
    "ArtifactInstall_Enter_00_rec",
    "ArtifactInstall_Leave_00_rec",
    "ArtifactCommit_Enter_00_rec",
];

/// A valid artifact for the recording module, with recording scripts.
fn module(name: &str) -> Module {
    let mut m = Module::new("rec", "test-dev", name);
    m.scripts = SCRIPTS
        .iter()
        .map(|s| {
            (
                s.to_string(),
                b"#!/bin/sh\ntouch \"$REC/script-ran\"\n".to_vec(),
            )
        })
        .collect();
    m
}

/// What the module and scripts saw, cleared for the next case.
struct Seen {
    calls: String,
    /// The first bytes of each stream (up to 64), the rest is discarded.
    received: usize,
    complete: bool,
    installed: bool,
    script_ran: bool,
}

fn take_seen(dev: &Device) -> Seen {
    let rec = dev.path("rec");
    let read = |n: &str| std::fs::read(rec.join(n)).ok();
    let seen = Seen {
        calls: String::from_utf8_lossy(&read("calls").unwrap_or_default()).into_owned(),
        received: read("received").map_or(0, |v| v.len()),
        complete: read("complete").is_some(),
        installed: read("installed").is_some(),
        script_ran: read("script-ran").is_some(),
    };
    std::fs::remove_dir_all(&rec).unwrap();
    std::fs::create_dir_all(&rec).unwrap();
    seen
}

/// Installs `bytes` (under a 1 GiB address-space limit, so nothing may buffer a payload)
/// and checks the refusal: exit 1, the upstream result lines, `needle` in a one-line error
/// without a panic, and the device exactly as before. Returns what the module saw.
fn refused(dev: &Device, case: &str, bytes: &[u8], needle: &str) -> Seen {
    let provides = dev.run(&["show-provides"]).ok().stdout;
    let art = dev.path(&format!("{case}.mender"));
    save(&art, bytes);
    let r = install(dev, &art);
    std::fs::remove_file(&art).unwrap();
    let seen = take_seen(dev);
    eprintln!(
        "{case}: {}",
        r.stderr.trim_end().lines().last().unwrap_or("")
    );
    let all = format!("{case}: {}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{all}");
    assert!(
        r.stdout
            .contains("Streaming failed.\nSystem not modified.\n"),
        "{all}"
    );
    assert!(!r.stderr.contains("panicked"), "{all}");
    assert!(
        r.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "{case}: expected {needle:?} in {}",
        r.stderr
    );
    assert!(!seen.installed, "{case}: the module installed it");
    assert!(!seen.script_ran, "{case}: a state script ran");
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "base\n", "{case}");
    assert_eq!(dev.run(&["show-provides"]).ok().stdout, provides, "{case}");
    assert_eq!(dev.run(&["commit"]).code, 2, "{case}: journal left behind");
    seen
}

/// `mender-update install` with its address space limited to 1 GiB, so that a bomb that were
/// buffered or a size that were trusted for an allocation fails the case; the artifact's
/// scripts find `rec/` in `$REC`.
fn install(dev: &Device, art: &Path) -> Run {
    let out = Command::new("sh")
        .args(["-c", "ulimit -v 1048576 && exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_mender-update"))
        .arg("install")
        .arg(art)
        .env("MENDER_CONF_DIR", dev.path("conf"))
        .env("MENDER_DATA_DIR", dev.path("data"))
        .env("MENDER_DATASTORE_DIR", dev.path("store"))
        .env("REC", dev.path("rec"))
        .current_dir(dev.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    finish(out)
}

/// As `refused`, and no payload byte reached the module.
fn refused_untouched(dev: &Device, case: &str, bytes: &[u8], needle: &str) {
    let seen = refused(dev, case, bytes, needle);
    assert_eq!(seen.received, 0, "{case}: the module got payload bytes");
    assert!(!seen.complete, "{case}: the module got a whole file");
}

/// A payload file that is one entry in the data tar, with its manifest line.
fn one_file(name: &str, data: &[u8], kind: u8) -> Module {
    let mut m = module("a");
    m.files = vec![(name.into(), data.to_vec(), kind)];
    m.sums = Some(vec![(format!("data/0000/{name}"), sha256(data))]);
    m
}

#[test]
fn the_recorder_sees_a_good_install() {
    let dev = device();
    let art = dev.path("good.mender");
    save(&art, &module("good").build());
    install(&dev, &art).ok();
    let seen = take_seen(&dev);
    assert_eq!(seen.received, b"payload bytes".len().min(64));
    assert!(
        seen.complete && seen.installed && seen.script_ran,
        "{}",
        seen.calls
    );
}

#[test]
fn links_devices_and_escaping_paths_in_the_payload() {
    let dev = device();
    for (case, kind) in [
        ("symlink", b'2'),
        ("hardlink", b'1'),
        ("char-device", b'3'),
        ("block-device", b'4'),
        ("fifo", b'6'),
        ("directory", b'5'),
    ] {
        let bytes = one_file("f", b"", kind).build();
        refused_untouched(&dev, case, &bytes, "not a regular file");
    }
    for (case, name) in [
        ("dot-dot", "../../etc/passwd"),
        ("absolute", "/etc/passwd"),
        ("subdir", "a/../b"),
    ] {
        let bytes = one_file(name, b"x", b'0').build();
        refused_untouched(&dev, case, &bytes, "forbidden characters");
    }
}

/// A tar holding one file that declares `size` bytes of zeros, compressed as it is made.
fn zero_tar(codec: Codec, name: &str, size: u64) -> Vec<u8> {
    let zeros = io::repeat(0).take(size);
    codec.compress(io::Cursor::new(tar_header(name, size)).chain(zeros))
}

#[test]
fn decompression_bombs_in_the_header_are_capped() {
    let dev = device();
    for codec in [Codec::Gzip, Codec::Xz, Codec::Zstd] {
        let mut m = module("a");
        m.header_codec = codec;
        // Past every header cap (1 MiB a document, 64 MiB a header tar).
        let bomb = zero_tar(codec, "header-info", 128 << 20);
        let manifest = m.manifest(&bomb);
        let members = vec![
            ("version".into(), VERSION.to_vec()),
            ("manifest".into(), manifest),
            (format!("header.tar{}", codec.ext()), bomb),
            ("data/0000.tar.gz".into(), m.data().1),
        ];
        refused_untouched(
            &dev,
            &format!("header-bomb-{codec:?}"),
            &build(&members),
            "limit",
        );
    }
}

#[test]
fn decompression_bombs_in_the_data_stop_at_the_checksum() {
    let dev = device();
    for codec in [Codec::Gzip, Codec::Xz, Codec::Zstd] {
        let mut m = module("a");
        // As large as the address-space limit: buffering it would fail.
        m.data = Some((codec.ext().into(), zero_tar(codec, "file.bin", 1 << 30)));
        let case = format!("data-bomb-{codec:?}");
        let seen = refused(&dev, &case, &m.build(), "checksum mismatch");
        assert!(
            !seen.complete,
            "{case}: the module saw the end of the stream"
        );
    }
}

#[test]
fn gigantic_declared_sizes() {
    let dev = device();
    let m = module("a");
    // Outer members that claim a terabyte and end after a few bytes.
    for (i, name) in ["version", "manifest", "header.tar.gz"]
        .into_iter()
        .enumerate()
    {
        let members = m.members();
        let mut raw = build(&members[..i]);
        raw.truncate(raw.len() - 1024);
        raw.extend(tar_header(name, 1 << 40));
        raw.extend(&members[i].1);
        refused_untouched(&dev, &format!("huge-{name}"), &raw, "unexpected EOF");
    }
    // Small members that really are too big.
    for (i, size) in [(0, 1 << 20), (1, 5 << 20)] {
        let mut members = m.members();
        members[i].1.resize(size, b' ');
        let case = format!("oversized-{}", members[i].0);
        refused_untouched(&dev, &case, &build(&members), "larger than the limit");
    }
    // A header-info inside the header tar that claims a terabyte.
    let mut h = module("a");
    let header = Codec::Gzip
        .compress(io::Cursor::new(tar_header("header-info", 1 << 40)).chain(&h.header_info[..]));
    let members = vec![
        ("version".into(), VERSION.to_vec()),
        ("manifest".into(), h.manifest(&header)),
        ("header.tar.gz".into(), header),
        ("data/0000.tar.gz".into(), h.data().1),
    ];
    refused_untouched(&dev, "huge-header-info", &build(&members), "unexpected EOF");
    // A payload file that claims a petabyte and ends after a few bytes.
    h.data = Some((
        ".gz".into(),
        Codec::Gzip.compress(io::Cursor::new(tar_header("file.bin", 1 << 50)).chain(&b"short"[..])),
    ));
    let seen = refused(
        &dev,
        "huge-payload-file",
        &h.build(),
        "unexpected end of data",
    );
    assert!(
        !seen.complete,
        "huge-payload-file: the module saw the end of the stream"
    );
}

#[test]
fn deeply_nested_json_in_every_document() {
    let dev = device();
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let mut m = module("a");
    m.header_info = deep.clone();
    refused_untouched(&dev, "deep-header-info", &m.build(), "header-info");
    let mut m = module("a");
    m.type_info = deep.clone();
    refused_untouched(&dev, "deep-type-info", &m.build(), "type-info");
    let mut m = module("a");
    m.header_extra = vec![("headers/0000/meta-data".into(), deep, b'0')];
    refused_untouched(&dev, "deep-meta-data", &m.build(), "meta-data");
}

#[test]
fn duplicate_and_misplaced_members() {
    let dev = device();
    let m = module("a");
    let members = m.members();
    for (i, name) in ["version", "manifest", "header.tar.gz"]
        .into_iter()
        .enumerate()
    {
        let mut twice = members.clone();
        twice.insert(i + 1, members[i].clone());
        refused_untouched(
            &dev,
            &format!("duplicate-{name}"),
            &build(&twice),
            "out of place",
        );
    }
    let mut twice = m.members();
    twice.push(members[3].clone());
    refused(&dev, "duplicate-data", &build(&twice), "out of order");
    // Found only after the payload streamed: the module may have it all, but never installs.
    for (case, extra, needle) in [
        (
            "version-after-data",
            ("version".to_string(), VERSION.to_vec()),
            "out of place",
        ),
        (
            "signature-after-data",
            ("manifest.sig".into(), b"AAAA".to_vec()),
            "out of place",
        ),
        (
            "undeclared-data",
            ("data/0001.tar.gz".into(), members[3].1.clone()),
            "has no header",
        ),
        (
            "stray-member",
            ("evil".into(), b"x".to_vec()),
            "out of place",
        ),
    ] {
        let mut after = m.members();
        after.push(extra);
        refused(&dev, case, &build(&after), needle);
    }
    let mut m = module("a");
    m.header_extra = vec![("header-info".into(), m.header_info.clone(), b'0')];
    refused_untouched(
        &dev,
        "duplicate-header-info",
        &m.build(),
        "unexpected entry",
    );
    let mut m = module("a");
    m.header_extra = vec![("headers/0000/type-info".into(), m.type_info.clone(), b'0')];
    refused_untouched(&dev, "duplicate-type-info", &m.build(), "duplicate");
}

#[test]
fn a_valid_signature_over_a_manifest_that_lies() {
    let dev = device();
    let keys = fixtures().join("keys");
    std::fs::write(
        dev.path("conf/mender.conf"),
        format!(
            r#"{{"ArtifactVerifyKey": "{}"}}"#,
            keys.join("rsa2048.pub.pem").display()
        ),
    )
    .unwrap();
    let key =
        SigningKey::from_pem(&std::fs::read(keys.join("rsa2048.pem")).unwrap(), None).unwrap();
    let mut m = module("signed");
    m.key = Some(key);
    m.files = vec![("file.bin".into(), b"evil bytes!!!".to_vec(), b'0')];
    m.sums = Some(vec![(
        "data/0000/file.bin".into(),
        sha256(b"payload bytes"),
    )]);
    let seen = refused(&dev, "lying-manifest", &m.build(), "checksum mismatch");
    assert!(
        !seen.complete,
        "the module saw the end of the unverified stream"
    );
    // The same artifact with an honest manifest installs: the key and module work.
    m.sums = None;
    let art = dev.path("honest.mender");
    save(&art, &m.build());
    install(&dev, &art).ok();
    assert!(take_seen(&dev).installed);
}

#[test]
fn a_stalled_download_times_out() {
    let dev = device();
    let bytes = module("a").build();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/a.mender", listener.local_addr().unwrap());
    // Every connection gets the headers and half the artifact, then silence.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in listener.incoming().flatten() {
            let mut req = [0u8; 4096];
            let _ = io::Read::read(&mut s, &mut req);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = io::Write::write_all(&mut s, head.as_bytes());
            let _ = io::Write::write_all(&mut s, &bytes[..bytes.len() / 2]);
            held.push(s);
        }
    });
    std::fs::write(dev.path("conf/mender.conf"), r#"{"RetryDownloadCount": 1}"#).unwrap();
    let start = Instant::now();
    let r = dev.run(&["install", &url]);
    let took = start.elapsed();
    let all = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{all}");
    assert!(r.stdout.contains("System not modified."), "{all}");
    assert!(
        r.stderr.contains("failed at byte") && r.stderr.contains("timed out"),
        "{all}"
    );
    assert!(took < Duration::from_secs(200), "took {took:?}");
    let seen = take_seen(&dev);
    assert!(!seen.installed && !seen.complete, "{}", seen.calls);
}

#[test]
fn a_hanging_state_script_is_killed_after_its_timeout() {
    let dev = device();
    std::fs::write(
        dev.path("conf/mender.conf"),
        r#"{"StateScriptTimeoutSeconds": 1}"#,
    )
    .unwrap();
    let pid_file = dev.path("hang.pid");
    let mut m = module("a");
    m.scripts.push((
        "ArtifactInstall_Enter_01_hang".into(),
        format!(
            "#!/bin/sh\necho $$ >{}\nexec sleep 600\n",
            pid_file.display()
        )
        .into_bytes(),
    ));
    let art = dev.path("a.mender");
    save(&art, &m.build());
    let start = Instant::now();
    let r = install(&dev, &art);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "the script was not killed in time"
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let proc_dir = Path::new("/proc").join(pid.trim());
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !proc_dir.exists()
            || std::fs::read_to_string(proc_dir.join("stat"))
                .unwrap_or_default()
                .contains(") Z")
    });
    assert!(gone, "the hanging script is still running");
    assert!(
        !take_seen(&dev).installed,
        "the module installed after a failed Enter script"
    );
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "base\n");
}

#[test]
fn a_module_hanging_in_download_is_killed_after_its_timeout() {
    let dev = device();
    std::fs::write(
        dev.path("conf/mender.conf"),
        r#"{"ModuleTimeoutSeconds": 1}"#,
    )
    .unwrap();
    dev.module(
        "stuck",
        "#!/bin/sh\ncase \"$1\" in\nDownload) exec sleep 600 ;;\nesac\nexit 0\n",
    );
    let art = dev.path("a.mender");
    save(&art, &Module::new("stuck", "test-dev", "a").build());
    let start = Instant::now();
    let r = dev.run(&["install", art.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("System not modified."), "{}", r.stdout);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "the module was not killed in time"
    );
    assert_eq!(dev.run(&["show-artifact"]).ok().stdout, "base\n");
}
