//! Plans the target as a sequence of pieces: copies of source ranges found through the
//! index (extended both ways), zero runs, bsdiff-style "source plus difference" ranges around
//! the copies, and literal data for the rest.

use super::index::{window_hash, SourceIndex, WINDOW};

/// Shortest zero run encoded as a zero piece.
const ZERO_MIN: usize = 128;
/// Shortest match accepted on the diagonal of the previous match. Shorter runs of equal
/// bytes between changed fields cost more as ops than as literals (measured on ext4 pairs).
const REP_MIN: usize = 32;
/// Shortest match accepted on a new diagonal: its source offset costs about four bytes, so
/// shorter matches do not pay (measured on ext4 pairs).
const MIN_MATCH: usize = 64;
/// Candidates compared per lookup.
const MAX_CANDIDATES: usize = 64;
/// Bytes compared when ranking candidates; the winner is then extended fully.
const RANK_CAP: usize = 64 << 10;
/// Copies shorter than this next to a difference range on the same diagonal are merged into
/// it (their zero difference bytes cost less than an op).
const MERGE_MAX: u64 = 64;
/// Weight of a differing byte against an equal one when extending a difference range. bsdiff
/// uses 1 (half the bytes equal); measured on root filesystem pairs, difference bytes only
/// beat literal bytes under xz when nearly all of them are zero.
const MISMATCH_COST: isize = 7;

/// One piece of the target, in target order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// `len` bytes copied from source offset `src`.
    Copy {
        /// Source offset.
        src: u64,
        /// Length.
        len: u64,
    },
    /// `len` bytes from source offset `src`, each plus a stored difference byte.
    Add {
        /// Source offset.
        src: u64,
        /// Length.
        len: u64,
    },
    /// `len` literal bytes.
    Data {
        /// Length.
        len: u64,
    },
    /// `len` zero bytes.
    Zero {
        /// Length.
        len: u64,
    },
}

impl Piece {
    /// Number of target bytes the piece produces.
    pub fn len(&self) -> u64 {
        match *self {
            Piece::Copy { len, .. }
            | Piece::Add { len, .. }
            | Piece::Data { len }
            | Piece::Zero { len } => len,
        }
    }
}

/// Length of the common prefix of `a` and `b`, compared eight bytes at a time, up to `cap`.
#[inline]
fn common_prefix(a: &[u8], b: &[u8], cap: usize) -> usize {
    let n = a.len().min(b.len()).min(cap);
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x != y {
            return i + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Length of the common suffix of `a` and `b`.
#[inline]
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// Length of the run of zero bytes at the start of `a`.
#[inline]
fn zero_run(a: &[u8]) -> usize {
    let mut i = 0;
    while i + 8 <= a.len() {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + a[i..].iter().take_while(|&&b| b == 0).count()
}

/// A region found by the scan.
#[derive(Debug, Clone, Copy)]
enum Region {
    Match { dst: usize, src: usize, len: usize },
    Zero { dst: usize, len: usize },
}

impl Region {
    fn start(&self) -> usize {
        match *self {
            Region::Match { dst, .. } | Region::Zero { dst, .. } => dst,
        }
    }
    fn end(&self) -> usize {
        match *self {
            Region::Match { dst, len, .. } | Region::Zero { dst, len } => dst + len,
        }
    }
    /// `src - dst` for matches.
    fn delta(&self) -> Option<isize> {
        match *self {
            Region::Match { dst, src, .. } => Some(src as isize - dst as isize),
            Region::Zero { .. } => None,
        }
    }
}

/// Greedy scan of `new` for zero runs and source matches.
fn scan(old: &[u8], new: &[u8], idx: &SourceIndex) -> Vec<Region> {
    let n = new.len();
    let mut out = Vec::new();
    let mut i = 0;
    let mut gap_start = 0;
    let mut last: Option<isize> = None;
    while i < n {
        if new[i] == 0 {
            let z = zero_run(&new[i..]);
            if z >= ZERO_MIN {
                out.push(Region::Zero { dst: i, len: z });
                i += z;
                gap_start = i;
                continue;
            }
        }
        if let Some(d) = last {
            let s = i as isize + d;
            if s >= 0 && (s as usize) < old.len() {
                let l = common_prefix(&new[i..], &old[s as usize..], usize::MAX);
                if l >= REP_MIN {
                    out.push(Region::Match {
                        dst: i,
                        src: s as usize,
                        len: l,
                    });
                    i += l;
                    gap_start = i;
                    continue;
                }
            }
        }
        if i + WINDOW <= n {
            let w = &new[i..i + WINDOW];
            let mut best: Option<(usize, usize, usize)> = None; // (score, back, src)
            for c in idx.candidates(window_hash(w)).take(MAX_CANDIDATES) {
                if &old[c..c + WINDOW] != w {
                    continue;
                }
                let fwd = WINDOW + common_prefix(&new[i + WINDOW..], &old[c + WINDOW..], RANK_CAP);
                let back = common_suffix(&new[gap_start..i], &old[..c]);
                let score = fwd + back;
                if best.is_none_or(|(s, _, _)| score > s) {
                    best = Some((score, back, c));
                }
            }
            if let Some((_, back, c)) = best.filter(|&(score, _, _)| score >= MIN_MATCH) {
                let fwd =
                    WINDOW + common_prefix(&new[i + WINDOW..], &old[c + WINDOW..], usize::MAX);
                let (dst, src) = (i - back, c - back);
                out.push(Region::Match {
                    dst,
                    src,
                    len: back + fwd,
                });
                last = Some(src as isize - dst as isize);
                i += fwd;
                gap_start = i;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Best extension (length) of a difference range of `len` bytes whose `k`th byte matches or
/// not as `eq(k)` says: the length maximising `equal - MISMATCH_COST * unequal`, zero if none
/// is positive.
fn best_extension(len: usize, eq: impl Fn(usize) -> bool) -> usize {
    let (mut score, mut best, mut best_len) = (0isize, 0isize, 0usize);
    for k in 0..len {
        score += if eq(k) { 1 } else { -MISMATCH_COST };
        if score > best {
            best = score;
            best_len = k + 1;
        }
    }
    best_len
}

/// Splits the gap `[a, b)` between a match on diagonal `d1` before it and one on `d2` after
/// it into (forward difference, literal, backward difference) lengths.
fn split_gap(
    old: &[u8],
    new: &[u8],
    a: usize,
    b: usize,
    d1: Option<isize>,
    d2: Option<isize>,
) -> (usize, usize, usize) {
    let gap = b - a;
    let src_eq = |k: usize, d: isize| {
        let s = k as isize + d;
        s >= 0 && (s as usize) < old.len() && old[s as usize] == new[k]
    };
    let mut lf = d1.map_or(0, |d| best_extension(gap, |k| src_eq(a + k, d)));
    let mut lb = d2.map_or(0, |d| best_extension(gap, |k| src_eq(b - 1 - k, d)));
    if lf + lb > gap {
        if let (Some(d1), Some(d2)) = (d1, d2) {
            // Choose the split that keeps the most equal bytes.
            let (lo, hi) = (b - lb, a + lf);
            let (mut s, mut best, mut at) = (0isize, 0isize, lo);
            for k in lo..hi {
                s += isize::from(src_eq(k, d1)) - isize::from(src_eq(k, d2));
                if s > best {
                    best = s;
                    at = k + 1;
                }
            }
            lf = at - a;
            lb = b - at;
        }
    }
    (lf, gap - lf - lb, lb)
}

/// Appends `p`, merging it with the last piece where that is cheaper.
fn push(out: &mut Vec<Piece>, p: Piece) {
    if p.len() == 0 {
        return;
    }
    if let Some(last) = out.last_mut() {
        let merged = match (*last, p) {
            (Piece::Data { len: a }, Piece::Data { len: b }) => Some(Piece::Data { len: a + b }),
            (Piece::Zero { len: a }, Piece::Zero { len: b }) => Some(Piece::Zero { len: a + b }),
            (Piece::Copy { src, len: a }, Piece::Copy { src: s2, len: b }) if src + a == s2 => {
                Some(Piece::Copy { src, len: a + b })
            }
            (Piece::Add { src, len: a }, Piece::Add { src: s2, len: b })
            | (Piece::Add { src, len: a }, Piece::Copy { src: s2, len: b })
                if src + a == s2 && (b < MERGE_MAX || matches!(p, Piece::Add { .. })) =>
            {
                Some(Piece::Add { src, len: a + b })
            }
            (Piece::Copy { src, len: a }, Piece::Add { src: s2, len: b })
                if src + a == s2 && a < MERGE_MAX =>
            {
                Some(Piece::Add { src, len: a + b })
            }
            _ => None,
        };
        if let Some(m) = merged {
            *last = m;
            return;
        }
    }
    out.push(p);
}

/// Plans `new` against `old` (indexed as `idx`). The pieces' lengths sum to `new.len()`.
pub fn plan(old: &[u8], new: &[u8], idx: &SourceIndex) -> Vec<Piece> {
    let regions = scan(old, new, idx);
    let mut out = Vec::with_capacity(regions.len() * 2);
    let mut pos = 0usize;
    let mut prev: Option<isize> = None;
    for (k, r) in regions.iter().enumerate() {
        if r.start() > pos {
            gap_pieces(&mut out, old, new, pos, r.start(), prev, r.delta());
        }
        match *r {
            Region::Match { src, len, .. } => push(
                &mut out,
                Piece::Copy {
                    src: src as u64,
                    len: len as u64,
                },
            ),
            Region::Zero { len, .. } => push(&mut out, Piece::Zero { len: len as u64 }),
        }
        pos = r.end();
        prev = regions[k].delta();
    }
    if pos < new.len() {
        gap_pieces(&mut out, old, new, pos, new.len(), prev, None);
    }
    out
}

fn gap_pieces(
    out: &mut Vec<Piece>,
    old: &[u8],
    new: &[u8],
    a: usize,
    b: usize,
    d1: Option<isize>,
    d2: Option<isize>,
) {
    let (lf, lit, lb) = split_gap(old, new, a, b, d1, d2);
    if let Some(d) = d1 {
        push(
            out,
            Piece::Add {
                src: (a as isize + d) as u64,
                len: lf as u64,
            },
        );
    }
    push(out, Piece::Data { len: lit as u64 });
    if let Some(d) = d2 {
        push(
            out,
            Piece::Add {
                src: ((b - lb) as isize + d) as u64,
                len: lb as u64,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_suffix_and_zero_runs() {
        assert_eq!(common_prefix(b"abcdefghijXl", b"abcdefghijYl", 100), 10);
        assert_eq!(common_prefix(b"abc", b"abc", 2), 2);
        assert_eq!(common_suffix(b"xxabc", b"yabc"), 3);
        assert_eq!(zero_run(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]), 10);
        assert_eq!(zero_run(&[0; 5]), 5);
    }

    #[test]
    fn gap_split_diffs_sparse_changes_and_keeps_dense_ones_literal() {
        let old: Vec<u8> = (0..64u8).collect();
        // One changed byte in a 20-byte gap on the diagonal: all of it is a difference range.
        let mut new = old.clone();
        new[30] = 0xff;
        let (lf, lit, lb) = split_gap(&old, &new, 20, 40, Some(0), Some(0));
        assert_eq!((lf + lb, lit), (20, 0));
        // Every other byte changed: literal.
        let mut new = old.clone();
        for b in new[20..40].iter_mut().step_by(2) {
            *b = 0xee;
        }
        let (lf, lit, lb) = split_gap(&old, &new, 20, 40, Some(0), Some(0));
        assert_eq!(lf + lit + lb, 20);
        assert!(lit >= 18, "{lf} {lit} {lb}");
    }
}
