//! Handler tests on a simulated device: two plain files as partitions A (`part2`) and B
//! (`part3`), a [`MemoryEnv`], and a [`RootInfo`] naming the running file.

use std::fs;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use super::write::{check_capacity, CHUNK};
use super::*;
use crate::install::bootenv::MemoryEnv;

pub(super) const PART_SIZE: usize = 8 << 20;

/// A temporary device: partitions, a work directory and a boot environment booting A.
pub(super) struct Rig {
    _dir: tempfile::TempDir,
    pub a: PathBuf,
    pub b: PathBuf,
    pub work: PathBuf,
    pub env: MemoryEnv,
}

impl Rig {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("part2");
        let b = dir.path().join("part3");
        fs::write(&a, vec![0xaa; PART_SIZE]).unwrap();
        fs::write(&b, vec![0; PART_SIZE]).unwrap();
        let env = MemoryEnv::with(&[
            ("mender_boot_part", "2"),
            ("mender_boot_part_hex", "2"),
            ("upgrade_available", "0"),
            ("bootcount", "0"),
        ]);
        let work = dir.path().join("tree/tmp");
        Rig {
            _dir: dir,
            a,
            b,
            work,
            env,
        }
    }

    /// A handler on a device running `running`.
    pub fn handler_opts(&self, running: &Path, rcw: bool, fixed: bool) -> RootfsHandler<'_> {
        let config = RootfsConfig {
            part_a: self.a.clone(),
            part_b: self.b.clone(),
            read_compare_write: rcw,
            fixed_size_files: fixed,
        };
        let root = RootInfo::from_cmdline_root(running.to_str().unwrap());
        RootfsHandler::new(config, &self.env, root, &self.work)
    }

    pub fn handler(&self, running: &Path) -> RootfsHandler<'_> {
        self.handler_opts(running, false, false)
    }

    pub fn var(&self, name: &str) -> Option<String> {
        self.env.snapshot().get(name).cloned()
    }
}

/// Deterministic pseudo-random bytes, so chunks differ from each other and from the fill.
pub(super) fn image(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Passes all bytes, then fails where a checksumming reader reports a mismatch.
struct FailAtEnd(Cursor<Vec<u8>>);

impl Read for FailAtEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(io::Error::other("sha256 checksum mismatch")),
            n => Ok(n),
        }
    }
}

const IMG_LEN: usize = 3 * CHUNK + 12_345;

#[test]
fn slots_follow_env_and_root_and_refuse_pending() {
    let rig = Rig::new();
    let slots = rig.handler(&rig.a).slots().unwrap();
    assert_eq!((slots.active.number, slots.passive.number), (2, 3));
    assert_eq!(Path::new(&slots.passive.device), rig.b);
    let err = rig.handler(&rig.b).slots().unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    rig.env.set(&[("upgrade_available", "1")]).unwrap();
    let err = rig.handler(&rig.a).slots().unwrap_err();
    assert!(matches!(
        err,
        RootfsError::BootEnv(BootEnvError::UpdatePending)
    ));
}

#[test]
fn download_writes_passive_exactly_and_leaves_env_alone() {
    let rig = Rig::new();
    let before = rig.env.snapshot();
    let img = image(IMG_LEN, 1);
    let h = rig.handler(&rig.a);
    let stats = h
        .download("rootfs.ext4", IMG_LEN as u64, None, &mut &img[..])
        .unwrap();
    assert_eq!(stats.bytes_written, IMG_LEN as u64);
    assert_eq!((stats.chunks_written, stats.chunks_skipped), (4, 0));
    assert_eq!(
        fs::read(&rig.b).unwrap(),
        img,
        "a growable file takes the image's size"
    );
    assert_eq!(fs::read(&rig.a).unwrap(), vec![0xaa; PART_SIZE]);
    assert_eq!(rig.env.snapshot(), before);
    let rec = state::load_download(&rig.work).unwrap();
    assert_eq!((rec.partition, rec.size), (3, IMG_LEN as u64));
}

#[test]
fn failing_stream_fails_download_and_install_refuses() {
    let rig = Rig::new();
    let before = rig.env.snapshot();
    let img = image(IMG_LEN, 2);
    let h = rig.handler(&rig.a);
    h.download("rootfs.ext4", IMG_LEN as u64, None, &mut &img[..])
        .unwrap();
    let mut bad = FailAtEnd(Cursor::new(img.clone()));
    let err = h
        .download("rootfs.ext4", IMG_LEN as u64, None, &mut bad)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "reading payload rootfs.ext4: sha256 checksum mismatch"
    );
    let err = h.install().unwrap_err();
    assert!(matches!(err, RootfsError::NotDownloaded { .. }), "{err}");
    assert!(err.to_string().contains("rootfs-download-ok"));
    assert_eq!(rig.env.snapshot(), before);
    assert_eq!(state::load_original(&rig.work).unwrap(), None);
}

#[test]
fn with_the_manifest_checksum_the_read_back_must_match_it() {
    let rig = Rig::new();
    let img = image(IMG_LEN, 4);
    let sum = crate::artifact::hashing::sha256(&img);
    let h = rig.handler(&rig.a);
    h.download("rootfs.ext4", IMG_LEN as u64, Some(&sum), &mut &img[..])
        .unwrap();
    assert_eq!(fs::read(&rig.b).unwrap(), img);
    assert_eq!(
        state::load_download(&rig.work).unwrap().sha256,
        hex::encode(sum)
    );
    // A stream that does not check itself and does not match: refused at the read-back.
    let other = image(IMG_LEN, 5);
    let err = h
        .download("rootfs.ext4", IMG_LEN as u64, Some(&sum), &mut &other[..])
        .unwrap_err();
    assert!(matches!(err, RootfsError::VerifyFailed { .. }), "{err}");
    let err = h.install().unwrap_err();
    assert!(matches!(err, RootfsError::NotDownloaded { .. }), "{err}");
}

#[test]
fn short_and_long_streams_are_refused() {
    let rig = Rig::new();
    let img = image(1000, 3);
    let h = rig.handler(&rig.a);
    let err = h.download("r", 1001, None, &mut &img[..]).unwrap_err();
    assert_eq!(err.to_string(), "payload r ended after 1000 of 1001 bytes");
    let err = h.download("r", 999, None, &mut &img[..]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "payload r is longer than its announced 999 bytes"
    );
    assert!(h.install().is_err());
}

#[test]
fn image_larger_than_fixed_partition_is_refused_before_writing() {
    let rig = Rig::new();
    let h = rig.handler_opts(&rig.a, false, true);
    let img = image(PART_SIZE + 1, 4);
    let mut data = Cursor::new(img);
    let err = h
        .download("big", PART_SIZE as u64 + 1, None, &mut data)
        .unwrap_err();
    assert!(matches!(err, RootfsError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("part3"), "{err}");
    assert_eq!(data.position(), 0, "nothing consumed");
    assert_eq!(fs::read(&rig.b).unwrap(), vec![0; PART_SIZE]);
    // A fixed partition keeps its size: a smaller image leaves the tail.
    let small = image(100, 5);
    h.download("small", 100, None, &mut &small[..]).unwrap();
    let b = fs::read(&rig.b).unwrap();
    assert_eq!((b.len(), &b[..100]), (PART_SIZE, &small[..]));
    assert!(check_capacity(&rig.b, Some(10), 10).is_ok());
    assert!(check_capacity(&rig.b, Some(10), 11).is_err());
    assert!(check_capacity(&rig.b, None, u64::MAX).is_ok());
}

#[test]
fn read_compare_write_skips_equal_chunks() {
    let rig = Rig::new();
    let h = rig.handler_opts(&rig.a, true, false);
    let mut img = image(IMG_LEN, 6);
    let first = h
        .download("r", IMG_LEN as u64, None, &mut &img[..])
        .unwrap();
    assert_eq!((first.chunks_written, first.chunks_skipped), (4, 0));
    let again = h
        .download("r", IMG_LEN as u64, None, &mut &img[..])
        .unwrap();
    assert_eq!((again.chunks_written, again.chunks_skipped), (0, 4));
    assert_eq!(
        (again.bytes_written, again.bytes_skipped),
        (0, IMG_LEN as u64)
    );
    img[CHUNK + 7] ^= 0xff;
    img[IMG_LEN - 1] ^= 0xff;
    let changed = h
        .download("r", IMG_LEN as u64, None, &mut &img[..])
        .unwrap();
    assert_eq!((changed.chunks_written, changed.chunks_skipped), (2, 2));
    assert_eq!(changed.bytes_written, (CHUNK + 12_345) as u64);
    assert_eq!(fs::read(&rig.b).unwrap(), img);
}

#[test]
fn read_back_catches_corruption() {
    let rig = Rig::new();
    let img = image(IMG_LEN, 7);
    let h = rig.handler(&rig.a).with_post_write(|path| {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().write(true).open(path)?;
        f.write_all_at(&[0x5a], 2 * CHUNK as u64 + 3)?;
        f.sync_all()
    });
    let err = h
        .download("r", IMG_LEN as u64, None, &mut &img[..])
        .unwrap_err();
    assert!(matches!(err, RootfsError::VerifyFailed { .. }), "{err}");
    assert!(
        err.to_string().contains("part3 does not read back"),
        "{err}"
    );
    assert!(
        h.install().is_err(),
        "no marker after a failed verification"
    );
}

#[test]
fn install_saves_original_and_arms_the_boot_loader() {
    let rig = Rig::new();
    let h = rig.handler(&rig.a);
    assert!(matches!(
        h.install(),
        Err(RootfsError::NotDownloaded { .. })
    ));
    assert_eq!(h.needs_reboot(), RebootAnswer::Automatic);
    assert!(h.supports_rollback());
    let img = image(5000, 8);
    h.download("r", 5000, None, &mut &img[..]).unwrap();
    h.install().unwrap();
    assert_eq!(state::load_original(&rig.work).unwrap(), Some(2));
    assert_eq!(rig.var("mender_boot_part").as_deref(), Some("3"));
    assert_eq!(rig.var("mender_boot_part_hex").as_deref(), Some("3"));
    assert_eq!(rig.var("upgrade_available").as_deref(), Some("1"));
    assert_eq!(rig.var("bootcount").as_deref(), Some("0"));
    let err = h.install().unwrap_err();
    assert!(matches!(
        err,
        RootfsError::BootEnv(BootEnvError::UpdatePending)
    ));
}

#[test]
fn install_refuses_a_download_to_a_partition_no_longer_passive() {
    let rig = Rig::new();
    let img = image(5000, 9);
    rig.handler(&rig.a)
        .download("r", 5000, None, &mut &img[..])
        .unwrap();
    rig.env
        .set(&[("mender_boot_part", "3"), ("mender_boot_part_hex", "3")])
        .unwrap();
    let err = rig.handler(&rig.b).install().unwrap_err();
    assert_eq!(
        err.to_string(),
        "downloaded image is on partition 3 but the passive partition is now 2"
    );
}
