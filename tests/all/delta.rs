//! Binary delta patches: round trips over random and structured image pairs and real ext4
//! images, every failure mode of the applier, and delta artifacts end to end against upstream.

use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Stdio};

use mender::delta::{self, CodecChoice, DeltaError, DiffOptions, PatchHeader, HEADER_LEN};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use crate::common::{fixtures, ma, tmp, upstream_ma};

fn opts(codec: CodecChoice) -> DiffOptions {
    DiffOptions { codec }
}

fn make_patch(old: &[u8], new: &[u8], codec: CodecChoice) -> Vec<u8> {
    let mut p = Vec::new();
    delta::diff_bytes(old, new, &mut p, &opts(codec)).expect("diff");
    p
}

fn apply_patch(old: &[u8], patch: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let mut out = Vec::new();
    let applied = delta::apply(Cursor::new(old), patch, &mut out)?;
    assert_eq!(applied.target_size, out.len() as u64);
    assert_eq!(applied.target_sha256[..], Sha256::digest(&out)[..]);
    Ok(out)
}

fn round_trip(old: &[u8], new: &[u8]) -> usize {
    let patch = make_patch(old, new, CodecChoice::Xz);
    let out = apply_patch(old, &patch).expect("apply");
    assert!(out == new, "round trip differs");
    patch.len()
}

/// Deterministic pseudo-random bytes.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An edit applied to a copy of the source to make a target.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Move(usize, usize, usize),
    Flip(usize, u8),
}

fn edited(old: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = old.to_vec();
    for e in edits {
        let n = v.len();
        match e {
            Edit::Insert(at, bytes) => {
                let at = at % (n + 1);
                v.splice(at..at, bytes.iter().copied());
            }
            Edit::Delete(at, len) if n > 0 => {
                let at = at % n;
                let end = (at + len).min(n);
                v.drain(at..end);
            }
            Edit::Move(from, len, to) if n > 0 => {
                let from = from % n;
                let end = (from + len).min(n);
                let chunk: Vec<u8> = v.drain(from..end).collect();
                let to = to % (v.len() + 1);
                v.splice(to..to, chunk);
            }
            Edit::Flip(at, x) if n > 0 => v[at % n] ^= x | 1,
            _ => {}
        }
    }
    v
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..600))
            .prop_map(|(a, b)| Edit::Insert(a, b)),
        (any::<usize>(), 1usize..5000).prop_map(|(a, l)| Edit::Delete(a, l)),
        (any::<usize>(), 1usize..20000, any::<usize>()).prop_map(|(a, l, t)| Edit::Move(a, l, t)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, x)| Edit::Flip(a, x)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn delta_random_pairs_round_trip(
        old in prop::collection::vec(any::<u8>(), 0..3000),
        new in prop::collection::vec(any::<u8>(), 0..3000),
    ) {
        round_trip(&old, &new);
    }

    #[test]
    fn delta_edited_images_round_trip(
        seed in any::<u64>(),
        size in 0usize..200_000,
        zeros in 0usize..20_000,
        edits in prop::collection::vec(edit_strategy(), 0..12),
    ) {
        // Random content with a zero run, as free space in an image.
        let mut old = noise(seed, size);
        let z = zeros.min(old.len());
        let at = (seed as usize) % (old.len() - z + 1);
        old[at..at + z].fill(0);
        let new = edited(&old, &edits);
        round_trip(&old, &new);
    }
}

#[test]
fn delta_identical_and_empty_images() {
    let img = noise(1, 1 << 20);
    let n = round_trip(&img, &img);
    assert!(n < 300, "identical 1 MiB images gave a {n}-byte patch");
    round_trip(&[], &[]);
    round_trip(&img, &[]);
    let n = round_trip(&[], &img);
    assert!(n > img.len(), "random data cannot compress");
    round_trip(&[0u8; 100_000], &[0u8; 70_000]);
}

#[test]
fn delta_moved_blocks_cost_little() {
    // A 4 MiB image of 4 KiB blocks, shuffled, with a few bytes changed in some blocks:
    // the patch holds positions and the changed bytes, not data.
    let old = noise(7, 4 << 20);
    let blocks: Vec<&[u8]> = old.chunks(4096).collect();
    let mut new = Vec::new();
    for i in 0..blocks.len() {
        let j = (i * 389) % blocks.len();
        let mut b = blocks[j].to_vec();
        if i % 16 == 0 {
            b[100] ^= 0x55;
            b[2000] = b[2000].wrapping_add(3);
        }
        new.extend_from_slice(&b);
    }
    let n = round_trip(&old, &new);
    assert!(n < 40_000, "shuffled blocks gave a {n}-byte patch");
    // Both codecs produce patches the applier reads.
    for codec in [CodecChoice::Zstd, CodecChoice::Auto] {
        let p = make_patch(&old, &new, codec);
        assert!(apply_patch(&old, &p).unwrap() == new);
    }
}

fn sample_pair() -> (Vec<u8>, Vec<u8>) {
    let old = noise(3, 600_000);
    let mut new = old.clone();
    new[100_000..100_050].fill(9);
    new.extend_from_slice(&noise(4, 50_000));
    (old, new)
}

#[test]
fn delta_corrupt_patch_is_refused() {
    let (old, new) = sample_pair();
    let patch = make_patch(&old, &new, CodecChoice::Xz);
    // Header bytes, body bytes, the magic.
    for at in [3, 20, HEADER_LEN + 40, patch.len() / 2] {
        let mut p = patch.clone();
        p[at] ^= 0x10;
        match apply_patch(&old, &p) {
            Err(DeltaError::CorruptPatch(_)) => {}
            other => panic!("flip at {at}: {other:?}"),
        }
    }
    let mut p = patch.clone();
    p.extend_from_slice(b"trailing");
    match apply_patch(&old, &p) {
        Err(DeltaError::CorruptPatch(_)) => {}
        other => panic!("trailing data: {other:?}"),
    }
    match apply_patch(
        &old,
        b"not a patch at all, just some text that is long enough to hold a header",
    ) {
        Err(e @ DeltaError::CorruptPatch(_)) => assert!(e.to_string().contains("bad magic")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn delta_truncated_patch_is_refused() {
    let (old, new) = sample_pair();
    for codec in [CodecChoice::Xz, CodecChoice::Zstd] {
        let patch = make_patch(&old, &new, codec);
        for cut in [10, HEADER_LEN, HEADER_LEN + 10, patch.len() - 1] {
            match apply_patch(&old, &patch[..cut]) {
                Err(DeltaError::TruncatedPatch(_)) => {}
                other => panic!("{codec:?} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn delta_wrong_source_names_the_offset() {
    let (old, new) = sample_pair();
    let patch = make_patch(&old, &new, CodecChoice::Xz);
    let mut bad = old.clone();
    bad[300_000] ^= 1;
    match apply_patch(&bad, &patch) {
        Err(e @ DeltaError::WrongSource { offset, len }) => {
            assert!(
                offset <= 300_000 && 300_000 < offset + len,
                "{offset}+{len}"
            );
            assert!(len <= 1 << 20);
            assert!(e.to_string().contains(&offset.to_string()), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // A shorter source.
    assert!(matches!(
        apply_patch(&old[..500_000], &patch),
        Err(DeltaError::SourceTooShort { .. })
    ));
    // Source bytes the patch never reads may change (a source mounted read-write).
    let mut old2 = noise(11, 200_000);
    let new2 = old2[..100_000].to_vec();
    let patch2 = make_patch(&old2, &new2, CodecChoice::Xz);
    old2[150_000..150_100].fill(0xee);
    assert!(apply_patch(&old2, &patch2).unwrap() == new2);
}

#[test]
fn delta_target_checksum_is_checked() {
    let (old, new) = sample_pair();
    let mut patch = make_patch(&old, &new, CodecChoice::Xz);
    let mut h = PatchHeader::decode(patch[..HEADER_LEN].try_into().unwrap()).unwrap();
    assert_eq!(h.target_size, new.len() as u64);
    h.target_sha256[0] ^= 1;
    patch[..HEADER_LEN].copy_from_slice(&h.encode());
    match apply_patch(&old, &patch) {
        Err(e @ DeltaError::TargetChecksum { .. }) => {
            assert!(e.to_string().contains("target checksum mismatch"))
        }
        other => panic!("{other:?}"),
    }
}

/// Writes a tree of files, deterministic from `seed`, with `variant` changing some of them.
fn write_tree(dir: &Path, variant: u64) {
    for i in 0..120u64 {
        let sub = dir.join(format!("d{}", i % 7));
        std::fs::create_dir_all(&sub).unwrap();
        if variant == 2 && i % 17 == 0 {
            continue; // removed in v2
        }
        let mut data = noise(i, 2_000 + (i as usize * 1_237) % 60_000);
        if variant == 2 && i % 5 == 0 {
            let at = data.len() / 3;
            data.splice(at..at, b"inserted by version two".iter().copied());
            let n = data.len();
            data[n - 1] ^= 0xff;
        }
        std::fs::write(sub.join(format!("f{i}.bin")), data).unwrap();
    }
    if variant == 2 {
        std::fs::write(dir.join("d3/new.bin"), noise(999, 150_000)).unwrap();
        std::fs::write(dir.join("etc-release"), b"product-version=2\n").unwrap();
    }
}

fn mkfs(dir: &Path, tree: &Path, img: &Path) {
    let st = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-E", "root_owner=0:0", "-U"])
        .arg("11111111-2222-3333-4444-555555555555")
        .arg("-d")
        .arg(tree)
        .arg(img)
        .arg("16M")
        .current_dir(dir)
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .stdout(Stdio::null())
        .status()
        .expect("mkfs.ext4 (e2fsprogs) is installed by the test command");
    assert!(st.success());
}

/// Two ext4 images made from trees v1 and v2.
fn ext4_pair(d: &Path) {
    for v in [1u64, 2] {
        let tree = d.join(format!("tree{v}"));
        write_tree(&tree, v);
        mkfs(d, &tree, &d.join(format!("v{v}.ext4")));
    }
}

#[test]
fn delta_ext4_images_round_trip_through_the_cli() {
    let t = tmp();
    let d = t.path();
    ext4_pair(d);
    let r = ma(
        d,
        &["delta", "--raw", "v1.ext4", "v2.ext4", "-o", "p.delta"],
    )
    .ok();
    assert!(r.stdout.contains("patch"), "{}", r.stdout);
    let patch = std::fs::metadata(d.join("p.delta")).unwrap().len();
    let target = std::fs::metadata(d.join("v2.ext4")).unwrap().len();
    assert!(
        patch * 20 < target,
        "patch {patch} of a {target}-byte image"
    );
    ma(
        d,
        &["delta", "--apply", "v1.ext4", "p.delta", "-o", "out.ext4"],
    )
    .ok();
    assert!(
        std::fs::read(d.join("out.ext4")).unwrap() == std::fs::read(d.join("v2.ext4")).unwrap()
    );
    // The wrong source: nothing is left behind.
    let r = ma(
        d,
        &["delta", "--apply", "v2.ext4", "p.delta", "-o", "bad.ext4"],
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("wrong source"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(!d.join("bad.ext4").exists());
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".delta-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn delta_artifact_end_to_end_with_upstream() {
    let t = tmp();
    let d = t.path();
    ext4_pair(d);
    let key = |n: &str| fixtures().join("keys").join(n).display().to_string();
    for v in ["1", "2"] {
        ma(
            d,
            &[
                "write",
                "rootfs-image",
                "-n",
                &format!("release-{v}"),
                "-t",
                "beaglebone",
                "-t",
                "qemux86-64",
                "-f",
                &format!("v{v}.ext4"),
                "-o",
                &format!("v{v}.mender"),
                "--no-progress",
            ],
        )
        .ok();
    }
    ma(
        d,
        &[
            "delta",
            "v1.mender",
            "v2.mender",
            "-o",
            "d.mender",
            "-k",
            &key("rsa2048.pem"),
        ],
    )
    .ok();
    upstream_ma(d, &["validate", "-k", &key("rsa2048.pub.pem"), "d.mender"]).ok();
    let r = upstream_ma(d, &["read", "--no-progress", "d.mender"]).ok();
    let sum = |f: &str| hex::encode(Sha256::digest(std::fs::read(d.join(f)).unwrap()));
    assert!(r.stdout.contains("mender-binary-delta"), "{}", r.stdout);
    assert!(r.stdout.contains("release-2"), "{}", r.stdout);
    let ours = ma(d, &["read", "--json", "d.mender"]).ok();
    let j: serde_json::Value = serde_json::from_str(&ours.stdout).unwrap();
    let text = j.to_string();
    assert!(
        text.contains(&format!("\"rootfs-image.checksum\":\"{}\"", sum("v1.ext4"))),
        "{text}"
    );
    assert!(text.contains(&sum("v2.ext4")), "{text}");
    assert!(
        text.contains("\"rootfs-image.version\":\"release-2\""),
        "{text}"
    );
    assert!(text.contains("qemux86-64"), "{text}");
    // Applying the artifact reproduces the new image.
    ma(
        d,
        &["delta", "--apply", "v1.ext4", "d.mender", "-o", "out.ext4"],
    )
    .ok();
    assert_eq!(sum("out.ext4"), sum("v2.ext4"));
    // A delta artifact is not a full artifact.
    let r = ma(d, &["delta", "d.mender", "v2.mender", "-o", "x.mender"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("not a full rootfs-image artifact"),
        "{}",
        r.stderr
    );
    assert!(!d.join("x.mender").exists());
}

#[test]
fn delta_artifact_takes_scripts_name_and_device_types() {
    let t = tmp();
    let d = t.path();
    let a: Vec<u8> = noise(21, 300_000);
    let mut b = a.clone();
    b[1000..1100].fill(1);
    std::fs::write(d.join("a.img"), &a).unwrap();
    std::fs::write(d.join("b.img"), &b).unwrap();
    let scripts = fixtures().join("inputs/scripts").display().to_string();
    ma(
        d,
        &[
            "write",
            "rootfs-image",
            "-n",
            "r1",
            "-t",
            "dev",
            "-f",
            "a.img",
            "-o",
            "a.mender",
        ],
    )
    .ok();
    ma(
        d,
        &[
            "write",
            "rootfs-image",
            "-n",
            "r2",
            "-t",
            "dev",
            "-f",
            "b.img",
            "-o",
            "b.mender",
            "-s",
            &scripts,
            "-g",
            "fleet",
        ],
    )
    .ok();
    ma(
        d,
        &[
            "delta", "a.mender", "b.mender", "-o", "d.mender", "-n", "r2-delta", "-t", "dev", "-t",
            "dev2",
        ],
    )
    .ok();
    let r = upstream_ma(d, &["read", "--no-progress", "d.mender"]).ok();
    for want in [
        "Name: r2-delta",
        "[dev dev2]",
        "Provides group: fleet",
        "ArtifactInstall_Enter_01_hello",
        "ArtifactCommit_Leave_50",
        "rootfs-image.version: r2",
    ] {
        assert!(r.stdout.contains(want), "{want} not in {}", r.stdout);
    }
    // The same image twice is refused.
    let r = ma(d, &["delta", "a.mender", "a.mender", "-o", "e.mender"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("same image"), "{}", r.stderr);
    assert!(!d.join("e.mender").exists());
}
