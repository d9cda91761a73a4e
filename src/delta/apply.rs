//! Streaming patch application: reads the source where the patch says, writes the target
//! strictly sequentially, checks every source checkpoint and the target's SHA-256, in a
//! bounded amount of memory whatever the image size.

use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

use super::error::{DeltaError, Result};
use super::format::{
    get_svarint, get_u8, get_uvarint, op_stream_error, read_exact_op, tag, Codec, PatchHeader,
    WINDOW_LOG,
};

/// Bytes moved per read or write.
const CHUNK: usize = 256 << 10;
/// Decoder memory limit for xz (dictionary plus state).
const XZ_MEMLIMIT: u64 = 24 << 20;

/// The result of a successful application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Bytes written to the target.
    pub target_size: u64,
    /// SHA-256 of the bytes written (equal to the patch's; compare it with the artifact's
    /// `rootfs-image.checksum` before making the target bootable).
    pub target_sha256: [u8; 32],
}

/// Reads the patch header from `patch`, then applies the rest of it with
/// [`apply_after_header`].
pub fn apply<S: Read + Seek, P: Read, W: Write>(
    source: S,
    mut patch: P,
    target: W,
) -> Result<Applied> {
    let header = PatchHeader::read_from(&mut patch)?;
    apply_after_header(&header, source, patch, target)
}

/// Applies a patch whose header was already read (with [`PatchHeader::read_from`]), e.g. to
/// check that the target fits before writing anything.
pub fn apply_after_header<S: Read + Seek, P: Read, W: Write>(
    header: &PatchHeader,
    source: S,
    patch: P,
    target: W,
) -> Result<Applied> {
    let patch = BufReader::with_capacity(CHUNK, patch);
    match header.codec {
        Codec::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(patch)
                .map_err(|e| DeltaError::io("starting the zstd decoder", e))?
                .single_frame();
            d.window_log_max(WINDOW_LOG)
                .map_err(|e| DeltaError::io("starting the zstd decoder", e))?;
            let applied = run(header, source, &mut d, target)?;
            no_trailing_data(d.get_mut())?;
            Ok(applied)
        }
        Codec::Xz => {
            let stream = liblzma::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, 0)
                .map_err(|e| DeltaError::io("starting the xz decoder", io::Error::other(e)))?;
            let mut d = liblzma::bufread::XzDecoder::new_stream(patch, stream);
            let applied = run(header, source, &mut d, target)?;
            no_trailing_data(d.get_mut())?;
            Ok(applied)
        }
    }
}

/// Fails if anything follows the compressed stream.
fn no_trailing_data<R: BufRead>(r: &mut R) -> Result<()> {
    let rest = r
        .fill_buf()
        .map_err(|e| DeltaError::io("reading the delta patch", e))?;
    if !rest.is_empty() {
        return Err(DeltaError::CorruptPatch(
            "data after the end of the compressed op stream".into(),
        ));
    }
    Ok(())
}

struct Applier<S, W> {
    source: S,
    source_pos: Option<u64>,
    target: W,
    written: u64,
    target_size: u64,
    target_hash: Sha256,
    verify_hash: Sha256,
    /// First and end offsets of the source bytes read since the last checkpoint.
    unverified: Option<(u64, u64)>,
    buf: Vec<u8>,
    diff: Vec<u8>,
}

impl<S: Read + Seek, W: Write> Applier<S, W> {
    fn emit(&mut self, n: usize) -> Result<()> {
        self.target
            .write_all(&self.buf[..n])
            .map_err(|e| DeltaError::io("writing the target", e))?;
        self.target_hash.update(&self.buf[..n]);
        self.written += n as u64;
        Ok(())
    }

    fn claim(&self, len: u64) -> Result<()> {
        if len > self.target_size - self.written {
            return Err(DeltaError::CorruptPatch(format!(
                "an op writes past the target size of {} bytes",
                self.target_size
            )));
        }
        Ok(())
    }

    /// Reads `n` source bytes at `at` into `buf`, folding them into the checkpoint hash.
    fn read_source(&mut self, at: u64, n: usize) -> Result<()> {
        if self.source_pos != Some(at) {
            self.source
                .seek(SeekFrom::Start(at))
                .map_err(|e| DeltaError::io(format!("seeking the source to {at}"), e))?;
        }
        self.source.read_exact(&mut self.buf[..n]).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                DeltaError::SourceTooShort {
                    needed: at + n as u64,
                }
            } else {
                DeltaError::io(format!("reading the source at {at}"), e)
            }
        })?;
        self.source_pos = Some(at + n as u64);
        self.verify_hash.update(&self.buf[..n]);
        let end = at + n as u64;
        self.unverified = Some(match self.unverified {
            Some((lo, hi)) => (lo.min(at), hi.max(end)),
            None => (at, end),
        });
        Ok(())
    }

    fn source_op<P: Read>(&mut self, ops: &mut P, src: u64, len: u64, add: bool) -> Result<()> {
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            self.read_source(src + done, n)?;
            if add {
                read_exact_op(ops, &mut self.diff[..n])?;
                for (b, d) in self.buf[..n].iter_mut().zip(&self.diff[..n]) {
                    *b = b.wrapping_add(*d);
                }
            }
            self.emit(n)?;
            done += n as u64;
        }
        Ok(())
    }

    fn checkpoint(&mut self, expected: &[u8; 8]) -> Result<()> {
        let actual = self.verify_hash.finalize_reset();
        let range = self.unverified.take();
        if actual[..8] != expected[..] {
            return Err(match range {
                Some((lo, hi)) => DeltaError::WrongSource {
                    offset: lo,
                    len: hi - lo,
                },
                None => DeltaError::CorruptPatch("checkpoint with no source bytes read".into()),
            });
        }
        Ok(())
    }
}

fn run<S: Read + Seek, P: Read, W: Write>(
    header: &PatchHeader,
    source: S,
    mut ops: &mut P,
    target: W,
) -> Result<Applied> {
    let mut a = Applier {
        source,
        source_pos: None,
        target,
        written: 0,
        target_size: header.target_size,
        target_hash: Sha256::new(),
        verify_hash: Sha256::new(),
        unverified: None,
        buf: vec![0u8; CHUNK],
        diff: vec![0u8; CHUNK],
    };
    let mut next_src = 0u64;
    let mut written_at_src_end = 0u64;
    loop {
        let t = get_u8(&mut ops)?;
        match t {
            tag::COPY | tag::ADD => {
                let rel = get_svarint(&mut ops)?;
                let len = get_uvarint(&mut ops)?;
                a.claim(len)?;
                let predicted = next_src.wrapping_add(a.written - written_at_src_end);
                let src = predicted.wrapping_add(rel as u64);
                if src.checked_add(len).is_none_or(|e| e > header.source_size) {
                    return Err(DeltaError::CorruptPatch(format!(
                        "an op reads source bytes {src}+{len}, past the source size {}",
                        header.source_size
                    )));
                }
                a.source_op(&mut ops, src, len, t == tag::ADD)?;
                next_src = src + len;
                written_at_src_end = a.written;
            }
            tag::DATA => {
                let len = get_uvarint(&mut ops)?;
                a.claim(len)?;
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(CHUNK as u64) as usize;
                    read_exact_op(&mut ops, &mut a.buf[..n])?;
                    a.emit(n)?;
                    done += n as u64;
                }
            }
            tag::ZERO => {
                let len = get_uvarint(&mut ops)?;
                a.claim(len)?;
                a.buf.fill(0);
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(CHUNK as u64) as usize;
                    a.emit(n)?;
                    done += n as u64;
                }
            }
            tag::VERIFY => {
                let mut h = [0u8; 8];
                read_exact_op(&mut ops, &mut h)?;
                a.checkpoint(&h)?;
            }
            tag::END => break,
            t => return Err(DeltaError::CorruptPatch(format!("unknown op {t}"))),
        }
    }
    if a.unverified.is_some() {
        return Err(DeltaError::CorruptPatch(
            "source bytes read after the last checkpoint".into(),
        ));
    }
    if a.written != header.target_size {
        return Err(DeltaError::CorruptPatch(format!(
            "the ops produce {} bytes, the header says {}",
            a.written, header.target_size
        )));
    }
    // The compressed stream must end with the end marker (this also checks its checksum).
    let mut rest = [0u8; 1];
    match ops.read(&mut rest) {
        Ok(0) => {}
        Ok(_) => return Err(DeltaError::CorruptPatch("data after the end marker".into())),
        Err(e) => return Err(op_stream_error(e)),
    }
    a.target
        .flush()
        .map_err(|e| DeltaError::io("writing the target", e))?;
    let sha: [u8; 32] = a.target_hash.finalize().into();
    if sha != header.target_sha256 {
        return Err(DeltaError::TargetChecksum {
            expected: hex::encode(header.target_sha256),
            actual: hex::encode(sha),
        });
    }
    Ok(Applied {
        target_size: a.written,
        target_sha256: sha,
    })
}
