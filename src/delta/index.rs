//! Index of the source image: a hash of the 32-byte window at every 16th offset, in a
//! bucketed table, to find where target data occurs in the source, aligned or not.

/// Bytes hashed per window.
pub const WINDOW: usize = 32;
/// Distance between indexed source offsets; every common run of at least
/// `WINDOW + STRIDE - 1` bytes is found.
pub const STRIDE: usize = 16;
/// Most source offsets kept per bucket (runs of repeated content would otherwise swamp it).
const BUCKET_CAP: u32 = 24;

/// Hash of the `WINDOW` bytes at the start of `w` (which must hold at least that many).
#[inline]
pub fn window_hash(w: &[u8]) -> u64 {
    let word = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&w[i * 8..i * 8 + 8]);
        u64::from_le_bytes(a)
    };
    let h = word(0).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ word(1).rotate_left(17).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ word(2).rotate_left(31).wrapping_mul(0x1656_67B1_9E37_79F9)
        ^ word(3).rotate_left(47).wrapping_mul(0x85EB_CA77_C2B2_AE63);
    h ^ (h >> 29)
}

/// Whether the window at the start of `w` is all zero bytes (those are not indexed: zero
/// runs are encoded as such).
#[inline]
fn is_zero_window(w: &[u8]) -> bool {
    w[..WINDOW].iter().all(|&b| b == 0)
}

/// The source index.
pub struct SourceIndex {
    bits: u32,
    /// `starts[b]..starts[b + 1]` are bucket `b`'s entries.
    starts: Vec<u32>,
    /// Source offsets divided by `STRIDE`.
    entries: Vec<u32>,
}

impl SourceIndex {
    /// Indexes `src`, which must be shorter than `u32::MAX * STRIDE` bytes.
    pub fn build(src: &[u8]) -> Self {
        let windows = if src.len() >= WINDOW {
            (src.len() - WINDOW) / STRIDE + 1
        } else {
            0
        };
        // About four entries per bucket keeps the table small; collisions are resolved by
        // comparing bytes.
        let bits = (windows / 4)
            .max(1)
            .next_power_of_two()
            .trailing_zeros()
            .max(4);
        let nb = 1usize << bits;
        let bucket = |h: u64| (h >> (64 - bits)) as usize;
        let mut counts = vec![0u32; nb + 1];
        for k in 0..windows {
            let w = &src[k * STRIDE..];
            if is_zero_window(w) {
                continue;
            }
            let c = &mut counts[bucket(window_hash(w))];
            *c = (*c + 1).min(BUCKET_CAP);
        }
        let mut total = 0u32;
        for c in counts.iter_mut() {
            let n = *c;
            *c = total;
            total += n;
        }
        let starts = counts;
        let mut fill = starts.clone();
        let mut entries = vec![0u32; total as usize];
        for k in 0..windows {
            let w = &src[k * STRIDE..];
            if is_zero_window(w) {
                continue;
            }
            let b = bucket(window_hash(w));
            if fill[b] < starts[b + 1] {
                entries[fill[b] as usize] = k as u32;
                fill[b] += 1;
            }
        }
        SourceIndex {
            bits,
            starts,
            entries,
        }
    }

    /// Source offsets whose window may hash to `h` (callers compare bytes).
    #[inline]
    pub fn candidates(&self, h: u64) -> impl Iterator<Item = usize> + '_ {
        let b = (h >> (64 - self.bits)) as usize;
        self.entries[self.starts[b] as usize..self.starts[b + 1] as usize]
            .iter()
            .map(|&k| k as usize * STRIDE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_indexed_window() {
        let src: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let idx = SourceIndex::build(&src);
        for k in (0..src.len() - WINDOW).step_by(STRIDE) {
            let h = window_hash(&src[k..]);
            assert!(idx.candidates(h).any(|c| c == k), "offset {k} not found");
        }
        assert_eq!(SourceIndex::build(&[]).candidates(0).count(), 0);
    }
}
