//! SHA-256 on the fly: a reader that checks a payload file against its manifest checksum
//! inside `read()`, so no caller can forget the check, and hashes large files on a second
//! core while the first decompresses.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use super::error::ArtifactError;
use super::pchunk::all_zero;

/// Files at least this large are hashed on a worker thread.
const OFFLOAD_MIN: u64 = 4 << 20;
/// Bytes handed to the hashing thread at a time.
const CHUNK: usize = 1 << 20;
/// Data chunks in flight to the hashing thread (the memory it may hold).
const BUFFERS: usize = 4;
/// Messages that may wait for the hashing thread. Runs of zeros travel as a count, without
/// a buffer, so over the empty stretches of a disk image the caller may run far ahead and
/// the two threads work at the same time rather than in turn.
const QUEUE: usize = 256;

/// What the hashing thread is given.
pub enum Msg {
    /// Bytes to hash.
    Data(Vec<u8>),
    /// This many zero bytes.
    Zeros(usize),
}

/// SHA-256 that runs on a worker thread for large inputs, so hashing overlaps with
/// (de)compression on the calling thread.
pub enum StreamHasher {
    /// Small input: hashed on the calling thread.
    Inline(Sha256),
    /// Large input: chunks are sent to a hashing thread.
    Worker {
        /// Chunks to hash.
        tx: Option<SyncSender<Msg>>,
        /// The digest, once `tx` is closed.
        result: Receiver<[u8; 32]>,
        /// The hashing thread.
        handle: Option<JoinHandle<()>>,
        /// Data gathered into large chunks, so the thread is woken rarely.
        pending: Vec<u8>,
        /// Chunks the thread has hashed, to be filled again.
        back: Receiver<Vec<u8>>,
        /// Data buffers made so far, at most `BUFFERS`.
        buffers: usize,
    },
}

/// Adds `n` zero bytes to `h`.
pub(crate) fn hash_zeros(h: &mut Sha256, mut n: u64) {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        h.update(&ZEROS[..k]);
        n -= k as u64;
    }
}

impl StreamHasher {
    /// A hasher for an input of `size` bytes.
    pub fn new(size: u64) -> Self {
        if size < OFFLOAD_MIN {
            return StreamHasher::Inline(Sha256::new());
        }
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        let (rtx, result) = mpsc::sync_channel(1);
        // Hashed chunks come back to be filled again: no allocation (and no fresh pages to
        // fault in) per chunk.
        let (back_tx, back) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
        let handle = std::thread::spawn(move || {
            let mut h = Sha256::new();
            for msg in rx {
                match msg {
                    Msg::Data(mut chunk) => {
                        h.update(&chunk);
                        chunk.clear();
                        let _ = back_tx.try_send(chunk);
                    }
                    Msg::Zeros(n) => hash_zeros(&mut h, n as u64),
                }
            }
            let _ = rtx.send(h.finalize().into());
        });
        StreamHasher::Worker {
            tx: Some(tx),
            result,
            handle: Some(handle),
            pending: Vec::with_capacity(CHUNK),
            back,
            buffers: 1,
        }
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            StreamHasher::Inline(h) => h.update(data),
            StreamHasher::Worker {
                tx,
                pending,
                back,
                buffers,
                ..
            } => {
                let Some(tx) = tx else { return };
                let mut data = data;
                while !data.is_empty() {
                    if pending.is_empty() && data.len() >= CHUNK && all_zero(&data[..CHUNK]) {
                        let _ = tx.send(Msg::Zeros(CHUNK));
                        data = &data[CHUNK..];
                        continue;
                    }
                    let n = data.len().min(CHUNK - pending.len());
                    pending.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if pending.len() < CHUNK {
                        continue;
                    }
                    if all_zero(pending) {
                        pending.clear();
                        let _ = tx.send(Msg::Zeros(CHUNK));
                        continue;
                    }
                    let next = match back.try_recv() {
                        Ok(b) => b,
                        Err(_) if *buffers < BUFFERS => {
                            *buffers += 1;
                            Vec::with_capacity(CHUNK)
                        }
                        // All buffers are queued: wait for one (a dead thread shows at
                        // `finish`).
                        Err(_) => back.recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK)),
                    };
                    let full = std::mem::replace(pending, next);
                    let _ = tx.send(Msg::Data(full));
                }
            }
        }
    }

    /// The digest of everything added.
    pub fn finish(&mut self) -> io::Result<[u8; 32]> {
        match self {
            StreamHasher::Inline(h) => Ok(std::mem::take(h).finalize().into()),
            StreamHasher::Worker {
                tx,
                result,
                handle,
                pending,
                ..
            } => {
                if let Some(tx) = tx.take() {
                    if !pending.is_empty() {
                        let _ = tx.send(Msg::Data(std::mem::take(pending)));
                    }
                }
                let sum = result
                    .recv()
                    .map_err(|_| io::Error::other("hashing thread failed"))?;
                if let Some(h) = handle.take() {
                    let _ = h.join();
                }
                Ok(sum)
            }
        }
    }
}

/// Reads exactly `size` bytes from the inner reader and, at the end, fails with a checksum
/// error (as an `io::Error` wrapping [`ArtifactError::Checksum`]) unless their SHA-256 is
/// `expected`.
pub struct HashingReader<R> {
    inner: R,
    path: String,
    expected: [u8; 32],
    remaining: u64,
    hasher: StreamHasher,
    verified: bool,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`, which must yield `size` bytes whose SHA-256 is `expected`.
    pub fn new(inner: R, path: &str, size: u64, expected: [u8; 32]) -> Self {
        HashingReader {
            inner,
            path: path.to_string(),
            expected,
            remaining: size,
            hasher: StreamHasher::new(size),
            verified: false,
        }
    }

    fn verify(&mut self) -> io::Result<()> {
        if self.verified {
            return Ok(());
        }
        let actual = self.hasher.finish()?;
        self.verified = true;
        if actual != self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                ArtifactError::Checksum {
                    path: self.path.clone(),
                    expected: hex::encode(self.expected),
                    actual: hex::encode(actual),
                },
            ));
        }
        Ok(())
    }

    /// Reads and checks whatever the consumer left unread; returns the number of bytes.
    pub fn drain(&mut self) -> io::Result<u64> {
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0;
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            self.verify()?;
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: unexpected end of data", self.path),
            ));
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        if self.remaining == 0 {
            self.verify()?;
        }
        Ok(n)
    }
}

/// SHA-256 of everything `r` yields, with the byte count.
pub fn sha256_reader<R: Read>(mut r: R) -> io::Result<([u8; 32], u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((h.finalize().into(), total))
}

/// SHA-256 of a byte slice.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_data_passes_bad_fails() {
        for size in [10usize, 5 << 20] {
            let data = vec![7u8; size];
            let sum = sha256(&data);
            let mut r = HashingReader::new(&data[..], "x", size as u64, sum);
            assert_eq!(r.drain().unwrap(), size as u64);
            let mut bad = data.clone();
            bad[size / 2] ^= 1;
            let mut r = HashingReader::new(&bad[..], "x", size as u64, sum);
            let err = r.drain().unwrap_err();
            assert!(err.to_string().contains("checksum mismatch for x"), "{err}");
        }
    }

    #[test]
    fn zero_runs_hash_as_zeros() {
        let mut data = vec![0u8; 9 << 20];
        data[(3 << 20) + 5] = 1;
        data[(9 << 20) - 1] = 2;
        for split in [1 << 20, 100_000, 3 << 20] {
            let mut h = StreamHasher::new(data.len() as u64);
            for piece in data[7..].chunks(split) {
                h.update(&data[..0]);
                h.update(piece);
            }
            let mut whole = Sha256::new();
            whole.update(&data[7..]);
            assert_eq!(h.finish().unwrap(), <[u8; 32]>::from(whole.finalize()));
        }
    }

    #[test]
    fn short_input_is_an_error() {
        let data = [1u8; 5];
        let mut r = HashingReader::new(&data[..], "x", 6, sha256(&data));
        assert_eq!(r.drain().unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
