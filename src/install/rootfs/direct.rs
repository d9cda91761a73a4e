//! Reads the running root filesystem's partition as it is on the medium, for delta updates.
//!
//! A mounted filesystem can change the kernel's cached view of its block device without
//! writing anything: ext4 mounted read-only still loads its journal, and jbd2 updates the
//! journal superblock in the buffer cache (seen with Debian's 6.1 kernel), so a buffered read
//! of the partition returns bytes that are not the image that was installed, and a delta made
//! from that image would be refused as having the wrong source. Reading with `O_DIRECT`
//! bypasses the cache and returns what the medium holds. `O_DIRECT` wants the file offset,
//! the length and the buffer address aligned to the device's logical block size, so reads go
//! through an aligned window; files that refuse `O_DIRECT` (a partition stood in for by a file
//! on tmpfs) are read normally. (An `O_DIRECT` read first writes back dirty cached pages of
//! its range; the journal superblock's cached copy is changed but never marked dirty on a
//! read-only mount, so nothing is written and the medium's bytes are read.)

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Alignment of offsets, lengths and the buffer: a multiple of every logical block size.
const ALIGN: usize = 4096;
/// Most bytes read from the medium at a time.
const WINDOW: usize = 1 << 20;
/// Fewest bytes read at a time: a read is sized to what the caller asks for (a delta's copy
/// may be a few KiB far from the last one), within these bounds.
const MIN_READ: usize = 64 << 10;

/// A reader over an aligned window of a file opened with `O_DIRECT` (or not).
pub struct DirectReader {
    file: File,
    /// `WINDOW + ALIGN` bytes; the window starts at `base`, which is aligned in memory.
    buf: Vec<u8>,
    base: usize,
    /// File offset of the window's first byte and how many bytes it holds.
    start: u64,
    len: usize,
    pos: u64,
}

impl DirectReader {
    /// Opens `path` for reading past the page cache, or normally where `O_DIRECT` is refused.
    pub fn open(path: &Path) -> io::Result<DirectReader> {
        let direct = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_DIRECT.bits())
            .open(path);
        let file = match direct {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => File::open(path)?,
            Err(e) => return Err(e),
        };
        Ok(DirectReader::new(file))
    }

    /// Reads `file` through the aligned window.
    pub fn new(file: File) -> DirectReader {
        let buf = vec![0u8; WINDOW + ALIGN];
        let base = (ALIGN - buf.as_ptr() as usize % ALIGN) % ALIGN;
        DirectReader {
            file,
            buf,
            base,
            start: 0,
            len: 0,
            pos: 0,
        }
    }

    /// Loads an aligned window holding `pos` and, as far as it goes, the `want` bytes after
    /// it; false at the end of the file.
    fn fill(&mut self, want: usize) -> io::Result<bool> {
        let start = self.pos / ALIGN as u64 * ALIGN as u64;
        let lead = (self.pos - start) as usize;
        let size = (lead + want)
            .next_multiple_of(ALIGN)
            .clamp(MIN_READ, WINDOW);
        let window = &mut self.buf[self.base..self.base + size];
        let mut n = 0;
        // A short read ends at the end of the file, whose size is a multiple of the block
        // size for a device; a read at an unaligned offset would be refused.
        while n < size {
            match self.file.read_at(&mut window[n..], start + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if n % ALIGN != 0 {
                break;
            }
        }
        self.start = start;
        self.len = n;
        Ok(self.pos < start + n as u64)
    }
}

impl Read for DirectReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let in_window = self.pos >= self.start && self.pos < self.start + self.len as u64;
        if !in_window && !self.fill(out.len())? {
            return Ok(0);
        }
        let from = (self.pos - self.start) as usize;
        let n = out.len().min(self.len - from);
        out[..n].copy_from_slice(&self.buf[self.base + from..self.base + from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for DirectReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.file.seek(SeekFrom::End(0))?.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_any_range_through_aligned_windows() {
        let data: Vec<u8> = (0..3 * WINDOW + 777).map(|i| (i * 7 % 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        let mut r = DirectReader::open(f.path()).unwrap();
        for (at, len) in [
            (0, 10),
            (5, WINDOW),
            (WINDOW as u64 - 3, 9),
            (2 * WINDOW as u64 + 1, WINDOW + 700),
            (123, 1),
        ] {
            r.seek(SeekFrom::Start(at)).unwrap();
            let mut got = vec![0u8; len];
            r.read_exact(&mut got).unwrap();
            assert_eq!(got, data[at as usize..at as usize + len], "at {at}");
        }
        r.seek(SeekFrom::End(-2)).unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, data[data.len() - 2..]);
        r.seek(SeekFrom::Start(data.len() as u64 + 10)).unwrap();
        assert_eq!(r.read(&mut [0u8; 4]).unwrap(), 0);
        assert!(r.seek(SeekFrom::Current(-1_000_000_000)).is_err());
    }
}
