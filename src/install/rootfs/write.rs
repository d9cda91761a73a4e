//! Streaming an image onto a partition: bounded memory (two 1 MiB buffers at most), optional
//! read-compare-write to spare flash, fsync, then a read-back whose SHA-256 must equal that of
//! the bytes received.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
use sha2::{Digest, Sha256};

use super::RootfsError;

/// Chunk size for writing, comparing and verifying: large enough for throughput, small enough
/// to keep memory bounded on small devices.
pub const CHUNK: usize = 1 << 20;

/// A callback run on the partition after the sync and before the read-back (fault injection).
pub type PostWrite<'a> = dyn Fn(&Path) -> io::Result<()> + 'a;

/// What a download did to the partition, so callers (and tests) can see read-compare-write at
/// work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DownloadStats {
    /// Bytes actually written to the partition.
    pub bytes_written: u64,
    /// Bytes left alone because the partition already held them (read-compare-write).
    pub bytes_skipped: u64,
    /// Chunks written.
    pub chunks_written: u64,
    /// Chunks skipped.
    pub chunks_skipped: u64,
}

/// An opened partition and how much it can hold.
#[derive(Debug)]
pub struct Target {
    /// The configured path, for messages.
    pub path: PathBuf,
    file: File,
    /// `None`: a regular file that may grow or shrink to the image's size.
    pub capacity: Option<u64>,
}

fn io_err(path: &Path, source: io::Error) -> RootfsError {
    RootfsError::Partition {
        path: path.to_owned(),
        source,
    }
}

/// Opens a partition for reading and writing. A block device holds exactly its size; a regular
/// file (a disk image in simulations) may take any size unless `fixed_size_files` says it stands
/// for a fixed partition. Nothing is created: a missing partition is a configuration error.
pub fn open_target(path: &Path, fixed_size_files: bool) -> Result<Target, RootfsError> {
    let meta = path.metadata().map_err(|e| io_err(path, e))?;
    let kind = meta.file_type();
    if !kind.is_block_device() && !kind.is_file() {
        return Err(RootfsError::NotAPartition(path.to_owned()));
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    let capacity = if kind.is_block_device() {
        Some(file.seek(SeekFrom::End(0)).map_err(|e| io_err(path, e))?)
    } else {
        fixed_size_files.then_some(meta.len())
    };
    Ok(Target {
        path: path.to_owned(),
        file,
        capacity,
    })
}

/// Refuses an image that does not fit, before a single byte is written.
pub fn check_capacity(path: &Path, capacity: Option<u64>, size: u64) -> Result<(), RootfsError> {
    match capacity {
        Some(capacity) if size > capacity => Err(RootfsError::TooLarge {
            path: path.to_owned(),
            size,
            capacity,
        }),
        _ => Ok(()),
    }
}

/// Fills `buf` from `data`; returns how many bytes came before end of stream.
fn read_full(data: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match data.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads `buf.len()` bytes at `offset`, or fewer at the end of the partition.
fn read_at_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Writes a stream sequentially onto a partition in [`CHUNK`]s, hashing what it is given and,
/// with read-compare-write, leaving chunks alone that the partition already holds. Any producer
/// can write into it: a plain image stream, or a delta applier rebuilding the image.
pub struct PartitionWriter<'t> {
    target: &'t Target,
    read_compare_write: bool,
    buf: Vec<u8>,
    current: Vec<u8>,
    offset: u64,
    /// SHA-256 of what is written, unless the producer checks its own output.
    hasher: Option<Sha256>,
    stats: DownloadStats,
}

impl<'t> PartitionWriter<'t> {
    /// A writer at the start of `target` that hashes what it writes.
    pub fn new(target: &'t Target, read_compare_write: bool) -> Self {
        PartitionWriter {
            target,
            read_compare_write,
            buf: Vec::with_capacity(CHUNK),
            current: Vec::new(),
            offset: 0,
            hasher: Some(Sha256::new()),
            stats: DownloadStats::default(),
        }
    }

    /// A writer for a producer that checksums its own output (the delta applier): hashing
    /// it a second time would only cost the device CPU.
    pub fn unhashed(target: &'t Target, read_compare_write: bool) -> Self {
        PartitionWriter {
            hasher: None,
            ..Self::new(target, read_compare_write)
        }
    }

    /// Bytes accepted so far.
    pub fn position(&self) -> u64 {
        self.offset + self.buf.len() as u64
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        let chunk = std::mem::take(&mut self.buf);
        let r = self.put(&chunk);
        self.buf = chunk;
        self.buf.clear();
        r
    }

    /// Writes one chunk at the current offset (nothing may be buffered): hashed, compared
    /// with what the partition holds when asked, written unless the same.
    fn put(&mut self, chunk: &[u8]) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let n = chunk.len();
        if let Some(capacity) = self.target.capacity {
            if self.offset + n as u64 > capacity {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!("image does not fit the partition ({capacity} bytes)"),
                ));
            }
        }
        if let Some(h) = &mut self.hasher {
            h.update(chunk);
        }
        let same = self.read_compare_write && {
            self.current.resize(n, 0);
            let have = read_at_full(&self.target.file, &mut self.current, self.offset)?;
            have == n && self.current == chunk
        };
        if same {
            self.stats.bytes_skipped += n as u64;
            self.stats.chunks_skipped += 1;
        } else {
            self.target.file.write_all_at(chunk, self.offset)?;
            self.stats.bytes_written += n as u64;
            self.stats.chunks_written += 1;
        }
        self.offset += n as u64;
        Ok(())
    }

    /// Writes what is buffered and returns the statistics, the size and (unless made
    /// [`unhashed`](Self::unhashed)) the SHA-256 of everything written; the partition is
    /// not synced yet (see [`seal`]).
    pub fn finish(mut self) -> Result<(DownloadStats, u64, Option<[u8; 32]>), RootfsError> {
        let path = self.target.path.clone();
        self.flush_chunk().map_err(|e| io_err(&path, e))?;
        let sha = self.hasher.take().map(|h| h.finalize().into());
        Ok((self.stats, self.offset, sha))
    }
}

impl io::Write for PartitionWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Streams exactly `size` bytes from `data` onto `target` and returns what was done and the
/// SHA-256 of the image. After the last byte the stream is read once more, so a checksumming
/// reader can report a mismatch and an over-long stream is caught. With `expected` (the
/// manifest's checksum, which the artifact reader checks on the stream) the bytes are not
/// hashed again on their way to the partition: the read-back must match `expected`; without
/// it they are, and the read-back must match what was received. `post_write` runs after the
/// fsync and before the read-back (fault injection in tests).
pub fn write_image(
    target: &Target,
    name: &str,
    size: u64,
    expected: Option<&[u8; 32]>,
    data: &mut dyn Read,
    read_compare_write: bool,
    post_write: Option<&PostWrite<'_>>,
) -> Result<(DownloadStats, [u8; 32]), RootfsError> {
    check_capacity(&target.path, target.capacity, size)?;
    let path = target.path.as_path();
    let stream_err = |source| RootfsError::Stream {
        name: name.to_owned(),
        source,
    };
    let mut writer = match expected {
        Some(_) => PartitionWriter::unhashed(target, read_compare_write),
        None => PartitionWriter::new(target, read_compare_write),
    };
    let mut buf = vec![0u8; CHUNK.min(size as usize)];
    let mut offset = 0u64;
    while offset < size {
        let n = CHUNK.min((size - offset) as usize);
        let got = read_full(data, &mut buf[..n]).map_err(stream_err)?;
        if got < n {
            return Err(RootfsError::ShortImage {
                name: name.to_owned(),
                size,
                got: offset + got as u64,
            });
        }
        // Whole chunks go straight from this buffer to the partition, without a copy.
        writer.put(&buf[..n]).map_err(|e| io_err(path, e))?;
        offset += n as u64;
    }
    let mut probe = [0u8; 1];
    if read_full(data, &mut probe).map_err(stream_err)? != 0 {
        return Err(RootfsError::LongImage {
            name: name.to_owned(),
            size,
        });
    }
    let (stats, _, received) = writer.finish()?;
    let received = expected.copied().or(received).expect("one of the two");
    seal(target, size, &received, &mut buf, post_write)?;
    Ok((stats, received))
}

/// Makes what was written durable and proves it: trims a file partition to the image's size,
/// syncs, then reads the image back from the medium and compares its SHA-256 with `expected`.
pub fn seal(
    target: &Target,
    size: u64,
    expected: &[u8; 32],
    buf: &mut Vec<u8>,
    post_write: Option<&PostWrite<'_>>,
) -> Result<(), RootfsError> {
    let path = target.path.as_path();
    if target.capacity.is_none() {
        // A regular file stands for a partition of exactly the image's size.
        target.file.set_len(size).map_err(|e| io_err(path, e))?;
    }
    target.file.sync_all().map_err(|e| io_err(path, e))?;
    if let Some(hook) = post_write {
        hook(path).map_err(|e| io_err(path, e))?;
    }
    if buf.is_empty() {
        buf.resize(CHUNK.min(size.max(1) as usize), 0);
    }
    let written = hash_back(target, size, buf)?;
    if written != *expected {
        return Err(RootfsError::VerifyFailed {
            path: path.to_owned(),
            expected: hex::encode(expected),
            found: hex::encode(written),
        });
    }
    Ok(())
}

/// SHA-256 of the first `size` bytes of the partition, read back after dropping clean cached
/// pages where the kernel allows, so the check sees the medium rather than memory.
fn hash_back(target: &Target, size: u64, buf: &mut [u8]) -> Result<[u8; 32], RootfsError> {
    let path = target.path.as_path();
    // Advisory only: a failure just means the read may come from the cache.
    let _ = posix_fadvise(&target.file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    let mut hasher = Sha256::new();
    let mut offset = 0u64;
    while offset < size {
        let n = buf.len().min((size - offset) as usize);
        let got = read_at_full(&target.file, &mut buf[..n], offset).map_err(|e| io_err(path, e))?;
        if got < n {
            return Err(RootfsError::Partition {
                path: path.to_owned(),
                source: io::Error::new(io::ErrorKind::UnexpectedEof, "shorter than the image"),
            });
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(hasher.finalize().into())
}
