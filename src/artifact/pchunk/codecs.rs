//! The codecs: gzip members by libdeflate, zstd frames by libzstd.

use std::io;

use super::ChunkCodec;

/// gzip members by libdeflate.
pub struct GzipChunks(libdeflater::Compressor);

impl GzipChunks {
    /// A codec at deflate `level` (1..=12; 4 to 6 are zlib-like).
    pub fn new(level: i32) -> io::Result<Self> {
        let lvl = libdeflater::CompressionLvl::new(level)
            .map_err(|_| io::Error::other(format!("invalid gzip level {level}")))?;
        Ok(GzipChunks(libdeflater::Compressor::new(lvl)))
    }
}

impl ChunkCodec for GzipChunks {
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        out.resize(self.0.gzip_compress_bound(input.len()), 0);
        let n = self
            .0
            .gzip_compress(input, out)
            .map_err(|e| io::Error::other(format!("gzip: {e}")))?;
        out.truncate(n);
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
