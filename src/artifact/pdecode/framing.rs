//! Finding the independent units of a compressed stream without decompressing it: gzip
//! members that record their size in the `MC` extra subfield, and zstd frames that declare
//! their content size, whose end is found by walking their block headers. A unit that cannot
//! be cut out this way is left in the input for a sequential decoder.

use std::io::{self, BufRead, Read};

use crate::artifact::pchunk::{MEMBER_SIZE_ID, SIZED_HEADER_LEN};

/// The most bytes a unit may decompress to, to be decoded on a worker in one buffer (the
/// size of the zstd frames our writer makes; its gzip members hold 1 MiB).
pub const MAX_UNIT_OUT: usize = 4 << 20;
/// The most compressed bytes of one unit held in memory.
pub const MAX_UNIT_IN: usize = MAX_UNIT_OUT + (MAX_UNIT_OUT >> 7) + (64 << 10);

/// A reader that can look ahead: the unit scanners peek at headers before deciding.
pub struct PeekReader<R: Read> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes consumed so far (for error messages).
    pub offset: u64,
}

impl<R: Read> PeekReader<R> {
    /// Reads `inner` through a buffer of `capacity` bytes.
    pub fn new(inner: R, capacity: usize) -> Self {
        PeekReader {
            inner,
            buf: vec![0; capacity],
            start: 0,
            end: 0,
            offset: 0,
        }
    }

    /// The next `n` bytes without consuming them; fewer only at the end of the input.
    pub fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        debug_assert!(n <= self.buf.len());
        if self.end - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            while self.end < n {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(0) => break,
                    Ok(k) => self.end += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.start..self.end.min(self.start + n)])
    }

    /// Appends exactly `n` bytes to `out`; `UnexpectedEof` when the input ends first.
    pub fn take(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let buffered = (self.end - self.start).min(n);
        out.extend_from_slice(&self.buf[self.start..self.start + buffered]);
        self.start += buffered;
        self.offset += buffered as u64;
        let rest = n - buffered;
        if rest > 0 {
            let at = out.len();
            out.resize(at + rest, 0);
            self.inner.read_exact(&mut out[at..])?;
            self.offset += rest as u64;
        }
        Ok(())
    }

    /// Skips exactly `n` bytes.
    pub fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let avail = self.peek(1)?.len();
            if avail == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let k = (self.end - self.start).min(usize::try_from(n).unwrap_or(usize::MAX));
            self.consume(k);
            n -= k as u64;
        }
        Ok(())
    }
}

impl<R: Read> Read for PeekReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for PeekReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            loop {
                match self.inner.read(&mut self.buf) {
                    Ok(k) => {
                        self.end = k;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.start..self.end])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }
}

/// What comes next in the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// The end of the input.
    End,
    /// An independent unit, now in the caller's buffer, that decompresses to `out` bytes
    /// (the gzip trailer's ISIZE, the zstd frame's content size).
    Unit { out: usize },
    /// Something to hand to a sequential decoder (a member without its size, a frame without
    /// a content size or too large to hold): it and everything after it.
    Sequential,
}

fn bad(codec: &str, offset: u64, msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{codec}: {msg} at compressed offset {offset}"),
    )
}

/// The input ending early is a truncated unit; any other error (a failed read from a disk or
/// a network) is passed on as it is.
fn truncated(
    codec: &'static str,
    offset: u64,
    msg: &'static str,
) -> impl Fn(io::Error) -> io::Error {
    move |e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            bad(codec, offset, msg)
        } else {
            e
        }
    }
}

/// Takes the next gzip member into `unit` when its header records its size.
pub fn next_gzip<R: Read>(r: &mut PeekReader<R>, unit: &mut Vec<u8>) -> io::Result<Next> {
    let offset = r.offset;
    let h = r.peek(SIZED_HEADER_LEN)?;
    if h.is_empty() {
        return Ok(Next::End);
    }
    if h.len() < SIZED_HEADER_LEN
        || h[..4] != [0x1f, 0x8b, 8, 0x04]
        || h[10..12] != [8, 0]
        || h[12..14] != MEMBER_SIZE_ID
        || h[14..16] != [4, 0]
    {
        return Ok(Next::Sequential);
    }
    let len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]) as usize;
    if len < SIZED_HEADER_LEN + 2 + 8 {
        return Err(bad(
            "gzip",
            offset,
            "member shorter than its header and trailer",
        ));
    }
    if len > MAX_UNIT_IN {
        return Ok(Next::Sequential);
    }
    unit.clear();
    unit.reserve_exact(len);
    r.take(len, unit)
        .map_err(truncated("gzip", offset, "truncated member"))?;
    let isize = &unit[len - 4..];
    let out = u32::from_le_bytes([isize[0], isize[1], isize[2], isize[3]]) as usize;
    Ok(Next::Unit { out })
}

const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// Takes the next zstd frame into `unit` when it declares a content size small enough; its
/// end is found by walking its block headers. Skippable frames are skipped.
pub fn next_zstd<R: Read>(r: &mut PeekReader<R>, unit: &mut Vec<u8>) -> io::Result<Next> {
    loop {
        let offset = r.offset;
        let h = r.peek(18)?;
        if h.is_empty() {
            return Ok(Next::End);
        }
        if h.len() < 8 {
            return Ok(Next::Sequential);
        }
        let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            let size = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            r.skip(8 + u64::from(size)).map_err(truncated(
                "zstd",
                offset,
                "truncated skippable frame",
            ))?;
            continue;
        }
        if magic != ZSTD_MAGIC {
            return Ok(Next::Sequential);
        }
        let fhd = h[4];
        let single_segment = fhd & 0x20 != 0;
        let fcs_flag = fhd >> 6;
        let dict_bytes = [0, 1, 2, 4][usize::from(fhd & 3)];
        let fcs_bytes = match fcs_flag {
            0 if single_segment => 1,
            0 => 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        if fcs_bytes == 0 || dict_bytes != 0 || fhd & 0x08 != 0 {
            // No content size, a dictionary, or the reserved bit: the sequential decoder
            // decides.
            return Ok(Next::Sequential);
        }
        let header = 5 + usize::from(!single_segment) + fcs_bytes;
        if h.len() < header {
            return Ok(Next::Sequential);
        }
        let field = &h[header - fcs_bytes..header];
        let mut fcs = 0u64;
        for (i, b) in field.iter().enumerate() {
            fcs |= u64::from(*b) << (8 * i);
        }
        if fcs_bytes == 2 {
            fcs += 256;
        }
        if fcs > MAX_UNIT_OUT as u64 {
            return Ok(Next::Sequential);
        }
        let checksum = fhd & 0x04 != 0;
        // Room for the whole frame at once: its blocks hold at most the content and three bytes
        // of header per 128 KiB block (raw blocks), then the checksum.
        unit.clear();
        unit.reserve_exact(
            (header + fcs as usize + (fcs as usize / (128 << 10) + 1) * 3 + 4).min(MAX_UNIT_IN),
        );
        r.take(header, unit)?;
        loop {
            let at = r.offset;
            r.take(3, unit)
                .map_err(truncated("zstd", at, "truncated frame"))?;
            let b = &unit[unit.len() - 3..];
            let bh = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
            let last = bh & 1 != 0;
            let size = (bh >> 3) as usize;
            let body = match (bh >> 1) & 3 {
                0 | 2 => size,
                1 => 1,
                _ => return Err(bad("zstd", at, "reserved block type")),
            };
            if unit.len() + body > MAX_UNIT_IN {
                return Err(bad(
                    "zstd",
                    offset,
                    "frame larger than its content size allows",
                ));
            }
            r.take(body, unit)
                .map_err(truncated("zstd", at, "truncated frame"))?;
            if last {
                break;
            }
        }
        if checksum {
            let at = r.offset;
            r.take(4, unit)
                .map_err(truncated("zstd", at, "truncated frame checksum"))?;
        }
        return Ok(Next::Unit { out: fcs as usize });
    }
}
