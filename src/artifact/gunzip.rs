//! A gzip reader for concatenated members that checks each member's CRC-32 with the
//! hardware-accelerated `crc32fast` (the inflate backend's own CRC is a software loop).

use std::io::{self, BufRead, Read};

use flate2::bufread::DeflateDecoder;

enum State<R: BufRead> {
    Header(R),
    Body(DeflateDecoder<R>),
    Done,
    Poisoned,
}

/// Decompresses a gzip stream of one or more members.
pub struct GzipReader<R: BufRead> {
    state: State<R>,
    crc: crc32fast::Hasher,
    size: u32,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("gzip: {msg}"))
}

fn read_exact_or_eof<R: BufRead>(r: &mut R, buf: &mut [u8]) -> io::Result<bool> {
    if r.fill_buf()?.is_empty() {
        return Ok(false);
    }
    r.read_exact(buf)
        .map_err(|_| bad("truncated header or trailer"))?;
    Ok(true)
}

fn skip_zero_terminated<R: BufRead>(r: &mut R) -> io::Result<()> {
    let mut byte = [0u8; 1];
    for _ in 0..(1 << 16) {
        r.read_exact(&mut byte)
            .map_err(|_| bad("truncated header"))?;
        if byte[0] == 0 {
            return Ok(());
        }
    }
    Err(bad("header field too long"))
}

/// Parses a member header; `Ok(false)` at a clean end of input.
fn read_header<R: BufRead>(r: &mut R) -> io::Result<bool> {
    let mut h = [0u8; 10];
    if !read_exact_or_eof(r, &mut h)? {
        return Ok(false);
    }
    if h[0] != 0x1f || h[1] != 0x8b {
        return Err(bad("invalid header"));
    }
    if h[2] != 8 {
        return Err(bad("unsupported compression method"));
    }
    let flags = h[3];
    if flags & 0xe0 != 0 {
        return Err(bad("reserved header flags set"));
    }
    if flags & 0x04 != 0 {
        let mut len = [0u8; 2];
        r.read_exact(&mut len)
            .map_err(|_| bad("truncated header"))?;
        let mut extra = vec![0u8; usize::from(u16::from_le_bytes(len))];
        r.read_exact(&mut extra)
            .map_err(|_| bad("truncated header"))?;
    }
    if flags & 0x08 != 0 {
        skip_zero_terminated(r)?;
    }
    if flags & 0x10 != 0 {
        skip_zero_terminated(r)?;
    }
    if flags & 0x02 != 0 {
        let mut crc = [0u8; 2];
        r.read_exact(&mut crc)
            .map_err(|_| bad("truncated header"))?;
    }
    Ok(true)
}

impl<R: BufRead> GzipReader<R> {
    /// Reads gzip from `r`.
    pub fn new(r: R) -> Self {
        GzipReader {
            state: State::Header(r),
            crc: crc32fast::Hasher::new(),
            size: 0,
        }
    }
}

impl<R: BufRead> Read for GzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match std::mem::replace(&mut self.state, State::Poisoned) {
                State::Header(mut r) => {
                    if !read_header(&mut r)? {
                        self.state = State::Done;
                        return Ok(0);
                    }
                    self.crc = crc32fast::Hasher::new();
                    self.size = 0;
                    self.state = State::Body(DeflateDecoder::new(r));
                }
                State::Body(mut d) => {
                    if buf.is_empty() {
                        self.state = State::Body(d);
                        return Ok(0);
                    }
                    let n = d.read(buf)?;
                    if n > 0 {
                        self.crc.update(&buf[..n]);
                        self.size = self.size.wrapping_add(n as u32);
                        self.state = State::Body(d);
                        return Ok(n);
                    }
                    let mut r = d.into_inner();
                    let mut t = [0u8; 8];
                    r.read_exact(&mut t).map_err(|_| bad("truncated trailer"))?;
                    let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                    let size = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
                    if crc != self.crc.clone().finalize() {
                        return Err(bad("CRC-32 mismatch (corrupt data)"));
                    }
                    if size != self.size {
                        return Err(bad("length mismatch (corrupt data)"));
                    }
                    self.state = State::Header(r);
                }
                State::Done => {
                    self.state = State::Done;
                    return Ok(0);
                }
                State::Poisoned => return Err(bad("reader used after an error")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_one_and_several_members() {
        let mut all = gz(b"hello ");
        all.extend(gz(b"world"));
        let mut out = String::new();
        GzipReader::new(&all[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn detects_corruption_and_truncation() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let good = gz(&data);
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 6] ^= 1;
        assert!(GzipReader::new(&bad_crc[..])
            .read_to_end(&mut Vec::new())
            .is_err());
        let truncated = &good[..good.len() - 3];
        assert!(GzipReader::new(truncated)
            .read_to_end(&mut Vec::new())
            .is_err());
        let mut garbage = good.clone();
        garbage.extend_from_slice(b"junk");
        assert!(GzipReader::new(&garbage[..])
            .read_to_end(&mut Vec::new())
            .is_err());
        let mut back = Vec::new();
        GzipReader::new(&good[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }
}
