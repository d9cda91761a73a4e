//! Patch generation: plans the target against the source, encodes the op stream with
//! verification checkpoints and compresses it with the codec that gives the smaller patch.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::{DeltaError, Result};
use super::format::{put_svarint, put_uvarint, tag, Codec, PatchHeader, VERIFY_SPAN, WINDOW_LOG};
use super::index::{SourceIndex, STRIDE};
use super::matcher::{plan, Piece};

/// Which codec compresses the op stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodecChoice {
    /// xz after the branch filter (x86, ARM64 or none) for the executables found in the
    /// target: it beat Zstandard on every image pair measured.
    #[default]
    Auto,
    /// Zstandard (level 22), faster to apply.
    Zstd,
    /// xz without a branch filter.
    Xz,
}

/// Options of [`diff`].
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Codec of the op stream.
    pub codec: CodecChoice,
}

/// What a generated patch is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Source image size.
    pub source_size: u64,
    /// Target image size.
    pub target_size: u64,
    /// Bytes of the whole patch (header included).
    pub patch_size: u64,
    /// Bytes of the op stream before compression.
    pub ops_size: u64,
    /// The codec chosen.
    pub codec: Option<Codec>,
    /// Number of pieces planned.
    pub pieces: u64,
    /// Target bytes copied from the source.
    pub copied: u64,
    /// Target bytes made from the source plus a difference.
    pub added: u64,
    /// Target bytes stored literally.
    pub literal: u64,
    /// Target bytes that are zero runs.
    pub zero: u64,
    /// SHA-256 of the target.
    pub target_sha256: [u8; 32],
}

/// Largest image handled (the index stores offsets divided by its stride in 32 bits).
pub const MAX_IMAGE_SIZE: u64 = (u32::MAX as u64) * STRIDE as u64;

fn load(path: &Path, what: &str) -> Result<Vec<u8>> {
    let mut f = File::open(path).map_err(|e| DeltaError::io(format!("{}", path.display()), e))?;
    let len = f
        .metadata()
        .map_err(|e| DeltaError::io(format!("{}", path.display()), e))?
        .len();
    if len > MAX_IMAGE_SIZE {
        return Err(DeltaError::Unsupported(format!(
            "{}: {what} image of {len} bytes is larger than the supported {MAX_IMAGE_SIZE}",
            path.display()
        )));
    }
    let mut v = Vec::with_capacity(len as usize);
    f.read_to_end(&mut v)
        .map_err(|e| DeltaError::io(format!("reading {}", path.display()), e))?;
    Ok(v)
}

/// Generates a patch that turns the image at `old` into the image at `new`, writing it to
/// `out`. Memory: both images plus about a third of the source size for the index while
/// planning; the images are released before the op stream is compressed.
pub fn diff(old: &Path, new: &Path, out: impl Write, opts: &DiffOptions) -> Result<Stats> {
    let old = load(old, "source")?;
    let new = load(new, "target")?;
    let (ops, stats) = plan_ops(&old, &new)?;
    let branch = branch_for(&new);
    drop(old);
    drop(new);
    finish(ops, stats, branch, out, opts)
}

/// [`diff`] over images already in memory.
pub fn diff_bytes(old: &[u8], new: &[u8], out: impl Write, opts: &DiffOptions) -> Result<Stats> {
    let (ops, stats) = plan_ops(old, new)?;
    finish(ops, stats, branch_for(new), out, opts)
}

/// Plans and encodes the op stream.
fn plan_ops(old: &[u8], new: &[u8]) -> Result<(Vec<u8>, Stats)> {
    if old.len() as u64 > MAX_IMAGE_SIZE || new.len() as u64 > MAX_IMAGE_SIZE {
        return Err(DeltaError::Unsupported(format!(
            "images larger than {MAX_IMAGE_SIZE} bytes are not supported"
        )));
    }
    let (pieces, target_sha256) = std::thread::scope(|s| {
        let sha = s.spawn(|| Sha256::digest(new));
        let idx = SourceIndex::build(old);
        let pieces = plan(old, new, &idx);
        drop(idx);
        (pieces, sha.join().expect("hashing thread").into())
    });
    let mut stats = Stats {
        source_size: old.len() as u64,
        target_size: new.len() as u64,
        pieces: pieces.len() as u64,
        target_sha256,
        ..Default::default()
    };
    let ops = encode_ops(old, new, &pieces, &mut stats);
    stats.ops_size = ops.len() as u64;
    Ok((ops, stats))
}

/// Compresses the op stream and writes the patch.
fn finish(
    ops: Vec<u8>,
    mut stats: Stats,
    branch: Branch,
    mut out: impl Write,
    opts: &DiffOptions,
) -> Result<Stats> {
    let (codec, body) = compress(&ops, opts.codec, branch)?;
    drop(ops);
    let header = PatchHeader {
        codec,
        source_size: stats.source_size,
        target_size: stats.target_size,
        target_sha256: stats.target_sha256,
    }
    .encode();
    out.write_all(&header)
        .and_then(|_| out.write_all(&body))
        .and_then(|_| out.flush())
        .map_err(|e| DeltaError::io("writing the delta patch", e))?;
    stats.codec = Some(codec);
    stats.patch_size = (header.len() + body.len()) as u64;
    Ok(stats)
}

/// Writes the op stream of `pieces`: source offsets relative to the end of the previous source
/// range, copies and differences split at `VERIFY_SPAN` and a checkpoint whenever that many
/// source bytes were read.
fn encode_ops(old: &[u8], new: &[u8], pieces: &[Piece], stats: &mut Stats) -> Vec<u8> {
    let mut ops = Vec::new();
    let mut dst = 0usize;
    let mut next_src = 0u64;
    let mut dst_at_src_end = 0usize;
    let mut hasher = Sha256::new();
    let mut unverified = 0u64;
    let checkpoint = |ops: &mut Vec<u8>, hasher: &mut Sha256, unverified: &mut u64| {
        ops.push(tag::VERIFY);
        ops.extend_from_slice(&hasher.finalize_reset()[..8]);
        *unverified = 0;
    };
    for p in pieces {
        match *p {
            Piece::Copy { src, len } | Piece::Add { src, len } => {
                let is_add = matches!(p, Piece::Add { .. });
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(VERIFY_SPAN - unverified);
                    let s = src + done;
                    ops.push(if is_add { tag::ADD } else { tag::COPY });
                    // Predicted: the diagonal of the previous source range.
                    let predicted = next_src.wrapping_add((dst - dst_at_src_end) as u64);
                    put_svarint(&mut ops, s.wrapping_sub(predicted) as i64);
                    put_uvarint(&mut ops, n);
                    let from = &old[s as usize..(s + n) as usize];
                    hasher.update(from);
                    if is_add {
                        let to = &new[dst..dst + n as usize];
                        ops.extend(to.iter().zip(from).map(|(t, f)| t.wrapping_sub(*f)));
                        stats.added += n;
                    } else {
                        stats.copied += n;
                    }
                    next_src = s + n;
                    dst += n as usize;
                    dst_at_src_end = dst;
                    done += n;
                    unverified += n;
                    if unverified >= VERIFY_SPAN {
                        checkpoint(&mut ops, &mut hasher, &mut unverified);
                    }
                }
            }
            Piece::Data { len } => {
                ops.push(tag::DATA);
                put_uvarint(&mut ops, len);
                ops.extend_from_slice(&new[dst..dst + len as usize]);
                dst += len as usize;
                stats.literal += len;
            }
            Piece::Zero { len } => {
                ops.push(tag::ZERO);
                put_uvarint(&mut ops, len);
                dst += len as usize;
                stats.zero += len;
            }
        }
    }
    if unverified > 0 {
        checkpoint(&mut ops, &mut hasher, &mut unverified);
    }
    debug_assert_eq!(dst, new.len());
    ops.push(tag::END);
    ops
}

fn zstd_compress(ops: &[u8]) -> io::Result<Vec<u8>> {
    let mut e = zstd::stream::Encoder::new(Vec::new(), 22)?;
    e.window_log(WINDOW_LOG)?;
    e.include_checksum(true)?;
    e.set_pledged_src_size(Some(ops.len() as u64))?;
    e.write_all(ops)?;
    e.finish()
}

/// Branch-call filter run before LZMA2: makes machine code in literal data compress better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Branch {
    None,
    X86,
    Arm64,
}

fn xz_compress(ops: &[u8], branch: Branch) -> io::Result<Vec<u8>> {
    use liblzma::stream::{Check, Filters, LzmaOptions, Stream, PRESET_EXTREME};
    let mut lz = LzmaOptions::new_preset(9 | PRESET_EXTREME).map_err(io::Error::other)?;
    // The decoder allocates the whole dictionary: no larger than the stream needs.
    let dict = (ops.len() as u64)
        .next_power_of_two()
        .clamp(1 << 12, 1 << WINDOW_LOG);
    lz.dict_size(dict as u32);
    let mut filters = Filters::new();
    match branch {
        Branch::None => {}
        Branch::X86 => {
            // x86 code is not aligned: no position bits, more literal context (measured).
            lz.position_bits(0).literal_context_bits(4);
            filters.x86();
        }
        Branch::Arm64 => {
            filters.arm64();
        }
    }
    filters.lzma2(&lz);
    let stream = Stream::new_stream_encoder(&filters, Check::Crc64).map_err(io::Error::other)?;
    let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    e.write_all(ops)?;
    e.finish()
}

/// Compresses the op stream; [`CodecChoice::Auto`] is xz after the branch filter for the
/// machine code found in the target.
fn compress(ops: &[u8], choice: CodecChoice, branch: Branch) -> Result<(Codec, Vec<u8>)> {
    let err = |e| DeltaError::io("compressing the op stream", e);
    match choice {
        CodecChoice::Zstd => Ok((Codec::Zstd, zstd_compress(ops).map_err(err)?)),
        CodecChoice::Xz => Ok((Codec::Xz, xz_compress(ops, Branch::None).map_err(err)?)),
        CodecChoice::Auto => Ok((Codec::Xz, xz_compress(ops, branch).map_err(err)?)),
    }
}

/// The branch filter for the executables in `image`: ELF files start on a block boundary in a
/// filesystem image, so the headers at 4 KiB boundaries are counted by machine type.
fn branch_for(image: &[u8]) -> Branch {
    let (mut x86, mut arm64) = (0usize, 0usize);
    for block in image.chunks_exact(4096) {
        if block.starts_with(b"\x7fELF") {
            match u16::from_le_bytes([block[18], block[19]]) {
                3 | 62 => x86 += 1,
                183 => arm64 += 1,
                _ => {}
            }
        }
    }
    if x86 == 0 && arm64 == 0 {
        Branch::None
    } else if x86 >= arm64 {
        Branch::X86
    } else {
        Branch::Arm64
    }
}
