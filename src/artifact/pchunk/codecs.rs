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

/// The extra-field subfield that records a member's size: `M`, `C` ("Mender chunk"), four
/// bytes of data (see doc/chunked-compression.md).
pub const MEMBER_SIZE_ID: [u8; 2] = *b"MC";
/// Header of a member with its size: the fixed ten bytes, XLEN, and the one subfield.
pub const SIZED_HEADER_LEN: usize = 10 + 2 + 8;

impl ChunkCodec for GzipChunks {
    /// A gzip member whose header records its own length in an extra field, which gzip
    /// readers skip (RFC 1952 2.3.1.1) and ours use to decompress members on every core.
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let bound = self.0.deflate_compress_bound(input.len());
        out.resize(SIZED_HEADER_LEN + bound + 8, 0);
        let n = self
            .0
            .deflate_compress(input, &mut out[SIZED_HEADER_LEN..])
            .map_err(|e| io::Error::other(format!("gzip: {e}")))?;
        let total = SIZED_HEADER_LEN + n + 8;
        let size = u32::try_from(total)
            .map_err(|_| io::Error::other("gzip: a chunk too large for one member"))?;
        // ID1 ID2 CM=deflate FLG=FEXTRA MTIME=0 XFL=0 OS=unknown, then XLEN and the subfield.
        out[..12].copy_from_slice(&[0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 0xff, 8, 0]);
        out[12..14].copy_from_slice(&MEMBER_SIZE_ID);
        out[14..16].copy_from_slice(&4u16.to_le_bytes());
        out[16..20].copy_from_slice(&size.to_le_bytes());
        let trailer = SIZED_HEADER_LEN + n;
        out[trailer..trailer + 4].copy_from_slice(&crc32fast::hash(input).to_le_bytes());
        out[trailer + 4..total].copy_from_slice(&(input.len() as u32).to_le_bytes());
        out.truncate(total);
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
