//! The compressions of header and data members, chosen by `--compression` when writing and by
//! the member name's suffix when reading. Encoders use every core the codec allows.

use std::io::{self, BufReader, Read, Write};
use std::str::FromStr;
use std::sync::Arc;

use super::pchunk::{ChunkSource, Chunks, GzipChunks, ParallelChunkWriter, ZstdChunks};
use super::pdecode::{Codec, ParallelDecoder, XzReader};

/// The compressions upstream names on its command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar (`--compression none`).
    None,
    /// gzip (`.gz`), upstream's default.
    Gzip,
    /// xz (`.xz`), named `lzma` upstream.
    Lzma,
    /// zstd (`.zst`) at the `zstd_fastest` level.
    ZstdFastest,
    /// zstd at the `zstd_fast` level.
    ZstdFast,
    /// zstd at the `zstd_better` level.
    ZstdBetter,
    /// zstd at the `zstd_best` level.
    ZstdBest,
}

/// The names `--compression` accepts.
pub const COMPRESSION_NAMES: [&str; 7] = [
    "none",
    "gzip",
    "lzma",
    "zstd_fastest",
    "zstd_fast",
    "zstd_better",
    "zstd_best",
];

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "none" => Compression::None,
            "gzip" => Compression::Gzip,
            "lzma" => Compression::Lzma,
            "zstd_fastest" => Compression::ZstdFastest,
            "zstd_fast" => Compression::ZstdFast,
            "zstd_better" => Compression::ZstdBetter,
            "zstd_best" => Compression::ZstdBest,
            other => {
                return Err(format!(
                    "unknown compression {other:?}; use one of {}",
                    COMPRESSION_NAMES.join(", ")
                ))
            }
        })
    }
}

/// gzip: libdeflate level 4 in 1 MiB members (one per chunk) gives a file a few percent
/// smaller than upstream's pgzip default on root filesystems, in less CPU time than zlib
/// at any level that is not larger. Smaller chunks cost size; larger ones memory and, past
/// the caches, speed.
const GZIP_LEVEL: i32 = 4;
const GZIP_CHUNK: usize = 1 << 20;
/// zstd: bytes of input per frame (one frame per chunk).
const ZSTD_CHUNK: usize = 4 << 20;
/// xz: preset 5 with an 8 MiB dictionary in 32 MiB blocks, one per core, comes within 5% of
/// upstream's single-threaded preset 9 on root filesystems in well under half the time and
/// memory, and a device needs 9 MiB instead of 65 MiB to decompress it.
const XZ_PRESET: u32 = 5;
const XZ_DICT_SIZE: u32 = 8 << 20;
const XZ_BLOCK_SIZE: u64 = 32 << 20;

impl Compression {
    /// The member-name suffix: `""`, `.gz`, `.xz` or `.zst`.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Lzma => ".xz",
            _ => ".zst",
        }
    }

    /// The `--compression` name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Lzma => "lzma",
            Compression::ZstdFastest => "zstd_fastest",
            Compression::ZstdFast => "zstd_fast",
            Compression::ZstdBetter => "zstd_better",
            Compression::ZstdBest => "zstd_best",
        }
    }

    /// The compression of a member from the suffix after `.tar`; an unknown suffix is
    /// refused rather than read as plain tar.
    pub fn from_suffix(ext: &str) -> Option<Compression> {
        match ext {
            "" => Some(Compression::None),
            ".gz" => Some(Compression::Gzip),
            ".xz" => Some(Compression::Lzma),
            ".zst" => Some(Compression::ZstdFast),
            _ => None,
        }
    }

    fn zstd_level(self) -> i32 {
        match self {
            Compression::ZstdFastest => 1,
            Compression::ZstdFast => 2,
            Compression::ZstdBetter => 3,
            _ => 12,
        }
    }

    /// How this compression works in independent chunks (gzip, zstd); `None` for the others.
    fn chunking(self) -> Option<Chunking> {
        match self {
            Compression::None | Compression::Lzma => None,
            Compression::Gzip => Some(Chunking::Gzip),
            _ => Some(Chunking::Zstd(self.zstd_level())),
        }
    }

    /// Whether this compression works in independent chunks that workers can read for
    /// themselves (see [`Compression::compress_source`]).
    pub fn is_chunked(self) -> bool {
        self.chunking().is_some()
    }

    /// Compresses all of `source` into `w` when this compression works in independent
    /// chunks (gzip, zstd), the workers reading their input from `source` themselves;
    /// `None` for the others. `progress` is told the input bytes done.
    pub fn compress_source<W: Write>(
        self,
        w: W,
        source: Arc<dyn ChunkSource>,
        progress: &mut dyn FnMut(u64),
    ) -> Option<io::Result<W>> {
        let c = self.chunking()?;
        Some(ParallelChunkWriter::compress_source(
            w,
            source,
            c.size(),
            threads(),
            move || c.codec(),
            progress,
        ))
    }

    /// Wraps `w` in an encoder; `finish` on the result completes the stream.
    pub fn encoder<W: Write + Send>(self, w: W) -> io::Result<Encoder<W>> {
        if let Some(c) = self.chunking() {
            let writer = ParallelChunkWriter::new(w, c.size(), threads(), move || c.codec())?;
            return Ok(Encoder::Chunked(writer));
        }
        Ok(match self {
            Compression::Lzma => {
                let mut opts = liblzma::stream::LzmaOptions::new_preset(XZ_PRESET)
                    .map_err(io::Error::other)?;
                opts.dict_size(XZ_DICT_SIZE);
                let mut filters = liblzma::stream::Filters::new();
                filters.lzma2(&opts);
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .threads(threads() as u32)
                    .filters(filters)
                    .check(liblzma::stream::Check::Crc64)
                    .block_size(XZ_BLOCK_SIZE)
                    .encoder()
                    .map_err(io::Error::other)?;
                Encoder::Xz(liblzma::write::XzEncoder::new_stream(w, stream))
            }
            _ => Encoder::None(w),
        })
    }
}

/// The chunked compressions: the codec and its chunk size.
#[derive(Clone, Copy)]
enum Chunking {
    Gzip,
    /// At this zstd level.
    Zstd(i32),
}

impl Chunking {
    fn size(self) -> usize {
        match self {
            Chunking::Gzip => GZIP_CHUNK,
            Chunking::Zstd(_) => ZSTD_CHUNK,
        }
    }

    fn codec(self) -> io::Result<Chunks> {
        Ok(match self {
            Chunking::Gzip => Chunks::Gzip(GzipChunks::new(GZIP_LEVEL)?),
            Chunking::Zstd(level) => Chunks::Zstd(ZstdChunks::new(level)?),
        })
    }
}

/// Threads to compress on: one per core.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A compressing writer for one member.
pub enum Encoder<W: Write + Send> {
    /// No compression.
    None(W),
    /// gzip or zstd in chunks on every core, one member (frame) each.
    Chunked(ParallelChunkWriter<W, Chunks>),
    /// Multi-threaded xz.
    Xz(liblzma::write::XzEncoder<W>),
}

impl<W: Write + Send> Encoder<W> {
    /// Flushes the codec and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Chunked(c) => c.finish(),
            Encoder::Xz(x) => x.finish(),
        }
    }
}

impl<W: Write + Send> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Chunked(c) => c.write(buf),
            Encoder::Xz(x) => x.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Chunked(c) => c.flush(),
            Encoder::Xz(x) => x.flush(),
        }
    }
}

/// Memory limit for the xz decoder: enough for preset 9 (64 MiB dictionary) on one thread.
const XZ_MEMLIMIT: u64 = 100 << 20;
/// Memory the xz decoder may use for decoding blocks in parallel; past it, fewer threads.
/// Our blocks (32 MiB, 8 MiB dictionary) take about 41 MiB a thread.
const XZ_MEMLIMIT_THREADING: u64 = 100 << 20;

/// Wraps `r` in the decoder for `c`. Each accepts a series of members (gzip), streams (xz)
/// or frames (zstd) as one, as upstream's readers do, and decodes the independent chunks
/// our writer makes on every core (see [`super::pdecode`]).
pub fn decoder<'a, R: Read + 'a>(c: Compression, r: R) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(ParallelDecoder::new(Codec::Gzip, r, threads())),
        Compression::Lzma => Box::new(XzReader::new(
            BufReader::with_capacity(256 << 10, r),
            threads(),
            XZ_MEMLIMIT_THREADING,
            XZ_MEMLIMIT,
        )),
        _ => Box::new(ParallelDecoder::new(Codec::Zstd, r, threads())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 13) as u8)
            .collect();
        for name in COMPRESSION_NAMES {
            let c: Compression = name.parse().unwrap();
            let mut e = c.encoder(Vec::new()).unwrap();
            e.write_all(&data).unwrap();
            let out = e.finish().unwrap();
            let mut back = Vec::new();
            decoder(Compression::from_suffix(c.suffix()).unwrap(), &out[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "{name}");
        }
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!("zstd".parse::<Compression>().is_err());
        assert!(Compression::from_suffix(".bz2").is_none());
    }
}
