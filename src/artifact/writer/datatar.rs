//! The data tar of a payload compressed in independent chunks straight from the input files.
//!
//! The tar is described rather than streamed: headers and padding are held in memory and
//! file contents are read where they lie, so each compression worker reads its own chunk
//! (holes of sparse files are not read at all) and nothing waits in a buffer between the
//! stages. The SHA-256 of each file is taken by a thread of its own reading the files in
//! order, at its own pace: hashing is the one stage that cannot be split between cores,
//! and it no longer has to follow the compressors. A file whose size or change time moves
//! while this happens is an error, since hash and content might then differ.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::errno::Errno;
use nix::unistd::{lseek, Whence};
use sha2::{Digest, Sha256};

use super::{io_err, Input, WriteOptions};
use crate::artifact::compression::Compression;
use crate::artifact::error::{ArtifactError, Result};
use crate::artifact::hashing::hash_zeros;
use crate::artifact::pchunk::ChunkSource;
use crate::artifact::tarw;

/// One input file, as opened.
struct Opened {
    file: File,
    path: PathBuf,
    len: u64,
    stamp: (u64, i64, i64, i64, i64),
}

fn stamp(md: &std::fs::Metadata) -> (u64, i64, i64, i64, i64) {
    (
        md.len(),
        md.mtime(),
        md.mtime_nsec(),
        md.ctime(),
        md.ctime_nsec(),
    )
}

fn shrank(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        ArtifactError::Invalid(format!(
            "{}: file shrank while the artifact was being written",
            path.display()
        )),
    )
}

impl Opened {
    /// The extent of the file at `offset` (below its length): whether it holds data, and
    /// where it ends. Where the file system cannot tell holes apart, everything is data.
    fn extent(&self, offset: u64) -> io::Result<(bool, u64)> {
        match lseek(&self.file, offset as i64, Whence::SeekData) {
            Ok(d) if d as u64 > offset => Ok((false, (d as u64).min(self.len))),
            Ok(_) => {
                let hole = match lseek(&self.file, offset as i64, Whence::SeekHole) {
                    Ok(h) if h as u64 > offset => h as u64,
                    _ => u64::MAX,
                };
                Ok((true, hole.min(self.len)))
            }
            // No data from here on: a hole up to the end, unless the file shrank.
            Err(Errno::ENXIO) => {
                if self.file.metadata()?.len() <= offset {
                    return Err(shrank(&self.path));
                }
                Ok((false, self.len))
            }
            Err(_) => Ok((true, self.len)),
        }
    }

    /// Whether `len` bytes from `offset` are all in a hole (and so zeros).
    fn is_hole(&self, offset: u64, len: u64) -> io::Result<bool> {
        if offset + len > self.len {
            return Ok(false);
        }
        let (data, end) = self.extent(offset)?;
        Ok(!data && end >= offset + len)
    }

    /// Fills `buf` from `offset`; holes read as zeros without being read.
    fn read_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            if offset >= self.len {
                return Err(shrank(&self.path));
            }
            let (data, end) = self.extent(offset)?;
            let n = (end - offset).min(buf.len() as u64) as usize;
            if data {
                self.read_data(offset, &mut buf[..n])?;
            } else {
                buf[..n].fill(0);
            }
            offset += n as u64;
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// Reads all of `buf` from `offset`, where the file holds data.
    fn read_data(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.file.read_at(buf, offset) {
                Ok(0) => return Err(shrank(&self.path)),
                Ok(k) => {
                    offset += k as u64;
                    buf = &mut buf[k..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{}: {e}", self.path.display()),
                    ))
                }
            }
        }
        Ok(())
    }
}

enum Part {
    Bytes(Vec<u8>),
    Zeros,
    File(usize),
}

/// The data tar as a [`ChunkSource`].
struct DataTar {
    files: Vec<Arc<Opened>>,
    /// Set when the hashing thread failed: the rest is not worth compressing.
    stop: Arc<AtomicBool>,
    /// Each part's start offset, with the part; in order.
    parts: Vec<(u64, Part)>,
    len: u64,
}

impl DataTar {
    fn new(files: Vec<Arc<Opened>>, inputs: &[Input], stop: Arc<AtomicBool>) -> Self {
        let mut parts = Vec::new();
        let mut at = 0u64;
        for (i, input) in inputs.iter().enumerate() {
            let mut header = Vec::new();
            tarw::write_header(&mut header, &input.meta).expect("writing to memory");
            let header_len = header.len() as u64;
            parts.push((at, Part::Bytes(header)));
            at += header_len;
            parts.push((at, Part::File(i)));
            at += input.meta.size;
            parts.push((at, Part::Zeros));
            at += tarw::padding(input.meta.size);
        }
        let mut end = Vec::new();
        tarw::write_end(&mut end).expect("writing to memory");
        parts.push((at, Part::Bytes(end)));
        at += 1024;
        DataTar {
            files,
            stop,
            parts,
            len: at,
        }
    }

    /// The index of the part holding `offset`.
    fn part_at(&self, offset: u64) -> usize {
        self.parts.partition_point(|(start, _)| *start <= offset) - 1
    }

    /// Part `i`: where it starts and ends, and what it is.
    fn part(&self, i: usize) -> (u64, u64, &Part) {
        let (start, part) = &self.parts[i];
        let end = self.parts.get(i + 1).map_or(self.len, |(s, _)| *s);
        (*start, end, part)
    }

    /// The file part holding all of `len` bytes from `offset`, and the offset in it.
    fn within_file(&self, offset: u64, len: u64) -> Option<(&Opened, u64)> {
        match self.part(self.part_at(offset)) {
            (start, end, Part::File(f)) if offset + len <= end => {
                Some((&self.files[*f], offset - start))
            }
            _ => None,
        }
    }
}

impl ChunkSource for DataTar {
    fn is_zero(&self, offset: u64, len: usize) -> io::Result<bool> {
        match self.within_file(offset, len as u64) {
            Some((f, at)) => f.is_hole(at, len as u64),
            None => Ok(false),
        }
    }

    fn size(&self) -> u64 {
        self.len
    }

    fn fill(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("stopped: hashing the payload failed"));
        }
        let mut i = self.part_at(offset);
        while !buf.is_empty() {
            let (start, end, part) = self.part(i);
            let n = (end - offset).min(buf.len() as u64) as usize;
            let within = offset - start;
            match part {
                Part::Bytes(b) => buf[..n].copy_from_slice(&b[within as usize..][..n]),
                Part::Zeros => buf[..n].fill(0),
                Part::File(f) => self.files[*f].read_at(within, &mut buf[..n])?,
            }
            offset += n as u64;
            buf = &mut buf[n..];
            i += 1;
        }
        Ok(())
    }
}

/// Reads each file in order and returns their SHA-256s (or stops early, when `stop` is
/// set, with whatever it has).
fn hash_files(files: &[Arc<Opened>], stop: &AtomicBool) -> io::Result<Vec<[u8; 32]>> {
    let mut buf = vec![0u8; 256 << 10];
    let mut sums = Vec::new();
    for f in files {
        let mut h = Sha256::new();
        let mut at = 0;
        while at < f.len && !stop.load(Ordering::Relaxed) {
            let (data, end) = f.extent(at)?;
            if !data {
                hash_zeros(&mut h, end - at);
                at = end;
            }
            while at < end && !stop.load(Ordering::Relaxed) {
                let n = (end - at).min(buf.len() as u64) as usize;
                f.read_data(at, &mut buf[..n])?;
                h.update(&buf[..n]);
                at += n as u64;
            }
        }
        sums.push(h.finalize().into());
    }
    Ok(sums)
}

/// Writes the compressed data tar of `inputs` into `w` when `compression` works in
/// chunks, returning each file's SHA-256; `None` (having done nothing) otherwise.
pub(super) fn write_chunked<W: Write>(
    compression: Compression,
    w: W,
    inputs: &[Input],
    opts: &WriteOptions,
    werr: &dyn Fn(io::Error) -> ArtifactError,
) -> Option<Result<Vec<[u8; 32]>>> {
    if !compression.is_chunked() {
        return None;
    }
    Some(write(compression, w, inputs, opts, werr))
}

fn write<W: Write>(
    compression: Compression,
    w: W,
    inputs: &[Input],
    opts: &WriteOptions,
    werr: &dyn Fn(io::Error) -> ArtifactError,
) -> Result<Vec<[u8; 32]>> {
    let mut files = Vec::new();
    for input in inputs {
        let file = File::open(&input.path).map_err(|e| io_err(&input.path, e))?;
        let md = file.metadata().map_err(|e| io_err(&input.path, e))?;
        if md.len() != input.meta.size {
            return Err(changed(&input.path));
        }
        files.push(Arc::new(Opened {
            file,
            path: input.path.clone(),
            len: md.len(),
            stamp: stamp(&md),
        }));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let source = Arc::new(DataTar::new(files.clone(), inputs, Arc::clone(&stop)));
    let tar_len = source.len;
    let total: u64 = inputs.iter().map(|i| i.meta.size).sum();
    let base = opts.progress.position();
    let hashing = {
        let (files, stop) = (files.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let r = hash_files(&files, &stop);
            if r.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            r
        })
    };
    let written = compression
        .compress_source(w, source, &mut |n| {
            // Tar bytes done, as a share of the files' bytes.
            let done = (u128::from(n) * u128::from(total) / u128::from(tar_len.max(1))) as u64;
            opts.progress.set_position(base + done.min(total));
        })
        .expect("a chunked compression");
    if written.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    let sums = hashing
        .join()
        .map_err(|_| ArtifactError::Invalid("the hashing thread failed".into()))?;
    // A failed hash stops the compressors too; its error is the one to report.
    let sums = sums.map_err(|e| ArtifactError::io("hashing payload files", e))?;
    let mut w = written.map_err(werr)?;
    w.flush().map_err(werr)?;
    for f in &files {
        let md = f.file.metadata().map_err(|e| io_err(&f.path, e))?;
        if stamp(&md) != f.stamp {
            return Err(changed(&f.path));
        }
    }
    Ok(sums)
}

fn changed(path: &Path) -> ArtifactError {
    ArtifactError::Invalid(format!(
        "{}: file changed while the artifact was being written",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom};

    fn opened(file: File, len: u64) -> Opened {
        let md = file.metadata().unwrap();
        Opened {
            file,
            path: PathBuf::from("img"),
            len,
            stamp: stamp(&md),
        }
    }

    #[test]
    fn holes_read_as_zeros_and_data_as_data() {
        let mut f = tempfile::tempfile().unwrap();
        // data, a hole of 3 MiB, data, a trailing hole
        f.write_all(&[7u8; 5000]).unwrap();
        f.seek(SeekFrom::Start(5000 + (3 << 20))).unwrap();
        f.write_all(&[9u8; 100]).unwrap();
        let len = 5000 + (3 << 20) + 100 + (2 << 20);
        f.set_len(len).unwrap();
        let o = opened(f, len);
        let mut want = vec![7u8; 5000];
        want.extend(vec![0u8; 3 << 20]);
        want.extend([9u8; 100]);
        want.extend(vec![0u8; 2 << 20]);
        let o = Arc::new(o);
        let sums = hash_files(&[Arc::clone(&o)], &AtomicBool::new(false)).unwrap();
        assert_eq!(sums, vec![crate::artifact::hashing::sha256(&want)]);
        assert!(o.is_hole(1 << 20, 1 << 20).unwrap());
        assert!(o.is_hole(len - 4096, 4096).unwrap());
        assert!(!o.is_hole(0, 100).unwrap());
        assert!(!o.is_hole(5000 + (3 << 20) - 10, 200).unwrap());
        assert!(!o.is_hole(len - 10, 20).unwrap(), "past the end");
        for (at, n) in [
            (0, len as usize),
            (4000, 2000),
            (5000 + (3 << 20) - 10, 200),
            (len - 7, 7),
        ] {
            let mut buf = vec![1u8; n];
            o.read_at(at, &mut buf).unwrap();
            assert!(
                buf == want[at as usize..at as usize + n],
                "at {at}, {n} bytes"
            );
        }
    }

    #[test]
    fn a_file_shorter_than_announced_is_an_error() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[1u8; 1000]).unwrap();
        let o = opened(f, 2000);
        let mut buf = vec![0u8; 1500];
        let err = o.read_at(0, &mut buf).unwrap_err();
        let err = ArtifactError::io("x", err).to_string();
        assert!(err.contains("img: file shrank"), "{err}");
    }
}
