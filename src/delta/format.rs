//! The patch container: fixed header, compressed op stream and its op encoding (see
//! `doc/delta-format.md`).

use std::io::{self, Read};

use super::error::{DeltaError, Result};

/// First eight bytes of every patch.
pub const MAGIC: [u8; 8] = *b"MDELTA\r\n";
/// The format version written and understood.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the fixed header, its CRC-32 included.
pub const HEADER_LEN: usize = 68;
/// Source bytes read between two verification checkpoints (at most).
pub const VERIFY_SPAN: u64 = 1 << 20;
/// Largest window the patch compressor may use: bounds the applier's memory.
pub const WINDOW_LOG: u32 = 24;

/// Op tags in the decompressed op stream.
pub mod tag {
    /// End of the op stream.
    pub const END: u8 = 0;
    /// Copy source bytes.
    pub const COPY: u8 = 1;
    /// Source bytes plus stored difference bytes.
    pub const ADD: u8 = 2;
    /// Literal bytes.
    pub const DATA: u8 = 3;
    /// Zero bytes.
    pub const ZERO: u8 = 4;
    /// Checkpoint: hash of the source bytes read since the previous one.
    pub const VERIFY: u8 = 5;
}

/// Compression of the op stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Zstandard, window at most 16 MiB.
    Zstd,
    /// xz (LZMA2, optionally after a branch filter), dictionary at most 16 MiB.
    Xz,
}

impl Codec {
    fn to_byte(self) -> u8 {
        match self {
            Codec::Zstd => 1,
            Codec::Xz => 2,
        }
    }

    fn from_byte(b: u8) -> Result<Self> {
        match b {
            1 => Ok(Codec::Zstd),
            2 => Ok(Codec::Xz),
            _ => Err(DeltaError::CorruptPatch(format!("unknown codec {b}"))),
        }
    }

    /// Lower-case name, as shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Zstd => "zstd",
            Codec::Xz => "xz",
        }
    }
}

/// The fixed patch header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchHeader {
    /// Compression of the op stream.
    pub codec: Codec,
    /// Size of the source image the patch was made against.
    pub source_size: u64,
    /// Size of the target image the patch produces.
    pub target_size: u64,
    /// SHA-256 of the target image.
    pub target_sha256: [u8; 32],
}

impl PatchHeader {
    /// The header's bytes, CRC-32 included.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10] = self.codec.to_byte();
        b[16..24].copy_from_slice(&self.source_size.to_le_bytes());
        b[24..32].copy_from_slice(&self.target_size.to_le_bytes());
        b[32..64].copy_from_slice(&self.target_sha256);
        let crc = crc32fast::hash(&b[..64]);
        b[64..68].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses a header.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Self> {
        if b[..8] != MAGIC {
            return Err(DeltaError::CorruptPatch(
                "not a delta patch (bad magic)".into(),
            ));
        }
        let crc = u32::from_le_bytes([b[64], b[65], b[66], b[67]]);
        if crc != crc32fast::hash(&b[..64]) {
            return Err(DeltaError::CorruptPatch("header checksum mismatch".into()));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FORMAT_VERSION {
            return Err(DeltaError::UnsupportedVersion(version));
        }
        if b[11..16].iter().any(|&x| x != 0) {
            return Err(DeltaError::CorruptPatch(
                "reserved header bytes are set".into(),
            ));
        }
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let mut target_sha256 = [0u8; 32];
        target_sha256.copy_from_slice(&b[32..64]);
        Ok(PatchHeader {
            codec: Codec::from_byte(b[10])?,
            source_size: u64_at(16),
            target_size: u64_at(24),
            target_sha256,
        })
    }

    /// Reads and parses the header at the start of `patch`.
    pub fn read_from<R: Read>(patch: &mut R) -> Result<Self> {
        let mut b = [0u8; HEADER_LEN];
        patch.read_exact(&mut b).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                DeltaError::TruncatedPatch("shorter than its header".into())
            } else {
                DeltaError::io("reading the delta patch", e)
            }
        })?;
        Self::decode(&b)
    }
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a varint.
pub fn put_svarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Reads an unsigned LEB128 varint.
pub fn get_uvarint<R: Read>(r: &mut R) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = get_u8(r)?;
        let bits = u64::from(b & 0x7f);
        if shift == 63 && bits > 1 {
            return Err(DeltaError::CorruptPatch("varint overflows 64 bits".into()));
        }
        v |= bits << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DeltaError::CorruptPatch(
        "varint longer than 10 bytes".into(),
    ))
}

/// Reads a zigzag varint.
pub fn get_svarint<R: Read>(r: &mut R) -> Result<i64> {
    let u = get_uvarint(r)?;
    Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
}

/// Reads one byte of the op stream.
pub fn get_u8<R: Read>(r: &mut R) -> Result<u8> {
    let mut b = [0u8; 1];
    read_exact_op(r, &mut b)?;
    Ok(b[0])
}

/// Fills `buf` from the op stream, mapping a short stream to [`DeltaError::TruncatedPatch`]
/// and decoder failures to [`DeltaError::CorruptPatch`].
pub fn read_exact_op<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf).map_err(op_stream_error)
}

/// Classifies an error reading the decompressed op stream.
pub fn op_stream_error(e: io::Error) -> DeltaError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            DeltaError::TruncatedPatch("the op stream ends before its end marker".into())
        }
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::Other => {
            DeltaError::CorruptPatch(format!("cannot decompress the op stream: {e}"))
        }
        _ => DeltaError::io("reading the delta patch", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(get_uvarint(&mut &b[..]).unwrap(), v);
        }
        for v in [0i64, -1, 1, -300, i64::MIN, i64::MAX] {
            let mut b = Vec::new();
            put_svarint(&mut b, v);
            assert_eq!(get_svarint(&mut &b[..]).unwrap(), v);
        }
        assert!(matches!(
            get_uvarint(&mut &[0xff; 11][..]),
            Err(DeltaError::CorruptPatch(_))
        ));
        assert!(matches!(
            get_uvarint(&mut &[0x80][..]),
            Err(DeltaError::TruncatedPatch(_))
        ));
    }

    #[test]
    fn header_round_trip_and_crc() {
        let h = PatchHeader {
            codec: Codec::Xz,
            source_size: 1 << 33,
            target_size: 12345,
            target_sha256: [7; 32],
        };
        let mut b = h.encode();
        assert_eq!(PatchHeader::decode(&b).unwrap(), h);
        b[20] ^= 1;
        assert!(matches!(
            PatchHeader::decode(&b),
            Err(DeltaError::CorruptPatch(_))
        ));
    }
}
