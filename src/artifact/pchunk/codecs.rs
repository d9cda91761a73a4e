//! The codecs: gzip members by libdeflate, zstd frames by libzstd.

use std::io;

use super::ChunkCodec;

/// gzip members by libdeflate.
pub struct GzipChunks {
    c: libdeflater::Compressor,
    /// libdeflate writes into a buffer of the worst-case size: kept at that length, so it
    /// is not zeroed again for every chunk; only the member is copied out.
    scratch: Vec<u8>,
}

impl GzipChunks {
    /// A codec at deflate `level` (1..=12; 4 to 6 are zlib-like).
    pub fn new(level: i32) -> io::Result<Self> {
        let lvl = libdeflater::CompressionLvl::new(level)
            .map_err(|_| io::Error::other(format!("invalid gzip level {level}")))?;
        Ok(GzipChunks {
            c: libdeflater::Compressor::new(lvl),
            scratch: Vec::new(),
        })
    }
}

impl ChunkCodec for GzipChunks {
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let bound = self.c.gzip_compress_bound(input.len());
        if self.scratch.len() < bound {
            self.scratch.resize(bound, 0);
        }
        let n = self
            .c
            .gzip_compress(input, &mut self.scratch)
            .map_err(|e| io::Error::other(format!("gzip: {e}")))?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(())
    }
}

/// zstd frames with content size and checksum.
pub struct ZstdChunks(zstd::bulk::Compressor<'static>);

impl ZstdChunks {
    /// A codec at zstd `level`.
    pub fn new(level: i32) -> io::Result<Self> {
        let mut c = zstd::bulk::Compressor::new(level)?;
        c.include_checksum(true)?;
        c.include_contentsize(true)?;
        Ok(ZstdChunks(c))
    }
}

impl ChunkCodec for ZstdChunks {
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        out.reserve(zstd::zstd_safe::compress_bound(input.len()));
        self.0.compress_to_buffer(input, out)?;
        Ok(())
    }
}

/// The chunked codecs behind `--compression`.
pub enum Chunks {
    /// gzip members.
    Gzip(GzipChunks),
    /// zstd frames.
    Zstd(ZstdChunks),
}

impl ChunkCodec for Chunks {
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Chunks::Gzip(c) => c.compress(input, out),
            Chunks::Zstd(c) => c.compress(input, out),
        }
    }
}
