//! Parallel compression in independent chunks: the input is cut into fixed-size chunks, each
//! compressed on a worker thread into a complete gzip member or zstd frame, and the results
//! are written in order. Concatenated members (frames) are one stream to every gzip (zstd)
//! reader: RFC 1952 §2.2 and the zstd format both define a file as a series of them, and Go's
//! `compress/gzip` and pgzip, klauspost's zstd, libarchive (the C++ client's decompressor),
//! zlib's `gzread` and the `gzip`/`zstd` tools all read on past the first.
//!
//! A chunk that is all zero bytes (most of a disk image) is not compressed again: its
//! member is made once and reused.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Compresses one chunk into a self-contained member (frame).
pub trait ChunkCodec: Send + 'static {
    /// Appends the member holding `input` to `out` (which arrives empty).
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()>;
}

/// Whether `b` holds only zero bytes (64 bytes at a time, so that it vectorises).
pub(crate) fn all_zero(b: &[u8]) -> bool {
    let mut blocks = b.chunks_exact(64);
    blocks
        .by_ref()
        .all(|c| c.iter().fold(0u8, |a, &x| a | x) == 0)
        && blocks.remainder().iter().all(|&x| x == 0)
}

/// Makes the calling thread yield to the rest of the pipeline. The thread hashing the
/// input is the one stage that cannot be split between cores; with as many workers as
/// cores, an even share of the CPU leaves it behind, and its backlog is then hashed on one
/// core while the others idle. Niceness is per thread on Linux.
fn lower_priority() {
    if let Ok(nice) = rustix::process::getpriority_process(None) {
        let _ = rustix::process::setpriority_process(None, (nice + WORKER_NICE).min(19));
    }
}

/// How much lower the compression workers run than the threads feeding and hashing.
const WORKER_NICE: i32 = 5;

/// Where chunks can be read from directly, at any offset: the workers then read their own
/// input, and nothing has to pass through (or wait in) the caller's buffers.
pub trait ChunkSource: Send + Sync {
    /// Bytes in the stream.
    fn size(&self) -> u64;
    /// Fills `buf` with the stream's bytes from `offset`.
    fn fill(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Whether the `len` bytes from `offset` are known to be zeros without reading them
    /// (a hole); `false` when unknown.
    fn is_zero(&self, _offset: u64, _len: usize) -> io::Result<bool> {
        Ok(false)
    }
}

/// What a worker hands back: whether the chunk was all zeros (no member made), and both
/// buffers for reuse.
type Done = (io::Result<bool>, Vec<u8>, Vec<u8>);

struct Job {
    chunk: Vec<u8>,
    /// Read the chunk from the source first: offset and length.
    fill: Option<(u64, usize)>,
    out: Vec<u8>,
    done: SyncSender<Done>,
}

/// A chunk on its way out, in order.
enum Pending {
    /// Compressing on a worker; its input length.
    Job(Receiver<Done>, usize),
    /// A full chunk of zeros.
    Zero,
}

/// Fills (when asked) and compresses one chunk; `Ok(true)`: a full chunk of zeros, left
/// for the caller.
fn work<C: ChunkCodec>(
    codec: &mut C,
    source: Option<&dyn ChunkSource>,
    chunk_size: usize,
    job: &mut Job,
) -> io::Result<bool> {
    job.out.clear();
    if let (Some((offset, len)), Some(src)) = (job.fill, source) {
        if len == chunk_size && src.is_zero(offset, len)? {
            return Ok(true);
        }
        job.chunk.resize(len, 0);
        src.fill(offset, &mut job.chunk)?;
        if len == chunk_size && all_zero(&job.chunk) {
            return Ok(true);
        }
    }
    codec.compress(&job.chunk, &mut job.out).map(|()| false)
}

/// A writer compressing in chunks on `threads` workers; `finish` completes the stream.
pub struct ParallelChunkWriter<W: Write, C: ChunkCodec> {
    inner: Option<W>,
    chunk_size: usize,
    chunk: Vec<u8>,
    make: Arc<dyn Fn() -> io::Result<C> + Send + Sync>,
    source: Option<Arc<dyn ChunkSource>>,
    /// The codec of the calling thread: for one thread, and for the zero member.
    local: Option<C>,
    zero_member: Option<Vec<u8>>,
    /// Members written so far, and the input bytes they hold.
    members: u64,
    done_bytes: u64,
    jobs: Option<SyncSender<Job>>,
    pending: VecDeque<Pending>,
    /// Jobs in `pending`.
    in_flight: usize,
    spare_in: Vec<Vec<u8>>,
    spare_out: Vec<Vec<u8>>,
    max_in_flight: usize,
    workers: Vec<JoinHandle<()>>,
}

impl<W: Write, C: ChunkCodec> ParallelChunkWriter<W, C> {
    /// A writer of `chunk_size`-byte chunks, each compressed by a codec `make` returns (one
    /// per worker), on up to `threads` workers.
    pub fn new<F>(inner: W, chunk_size: usize, threads: usize, make: F) -> io::Result<Self>
    where
        F: Fn() -> io::Result<C> + Send + Sync + 'static,
    {
        Self::build(inner, chunk_size, threads, Arc::new(make), None)
    }

    /// Compresses all of `source` into `inner` and returns it; `progress` is told the
    /// input bytes done so far.
    pub fn compress_source<F>(
        inner: W,
        source: Arc<dyn ChunkSource>,
        chunk_size: usize,
        threads: usize,
        make: F,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<W>
    where
        F: Fn() -> io::Result<C> + Send + Sync + 'static,
    {
        let total = source.size();
        let mut w = Self::build(inner, chunk_size, threads, Arc::new(make), Some(source))?;
        let mut offset = 0;
        while offset < total {
            let len = (total - offset).min(chunk_size as u64) as usize;
            w.submit_fill(offset, len)?;
            offset += len as u64;
            progress(w.done_bytes);
        }
        let w = w.finish()?;
        progress(total);
        Ok(w)
    }

    fn build(
        inner: W,
        chunk_size: usize,
        threads: usize,
        make: Arc<dyn Fn() -> io::Result<C> + Send + Sync>,
        source: Option<Arc<dyn ChunkSource>>,
    ) -> io::Result<Self> {
        let mut workers = Vec::new();
        let jobs = if threads > 1 {
            let (tx, rx) = mpsc::sync_channel::<Job>(threads);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..threads {
                let rx = Arc::clone(&rx);
                let source = source.clone();
                let mut codec = make()?;
                workers.push(std::thread::spawn(move || {
                    lower_priority();
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        let Ok(mut job) = job else { return };
                        let r = work(&mut codec, source.as_deref(), chunk_size, &mut job);
                        let _ = job.done.send((r, job.chunk, job.out));
                    }
                }));
            }
            Some(tx)
        } else {
            None
        };
        Ok(ParallelChunkWriter {
            inner: Some(inner),
            chunk_size,
            chunk: Vec::new(),
            make,
            source,
            local: None,
            zero_member: None,
            members: 0,
            done_bytes: 0,
            jobs,
            pending: VecDeque::new(),
            in_flight: 0,
            spare_in: Vec::new(),
            spare_out: Vec::new(),
            max_in_flight: threads.max(1) * 2,
            workers,
        })
    }

    fn local(&mut self) -> io::Result<&mut C> {
        if self.local.is_none() {
            self.local = Some((self.make)()?);
        }
        Ok(self.local.as_mut().expect("set above"))
    }

    /// Writes a finished chunk's member (`None`: the zero chunk's).
    fn emit(&mut self, member: Option<&[u8]>) -> io::Result<()> {
        self.members += 1;
        if member.is_none() && self.zero_member.is_none() {
            let zeros = vec![0u8; self.chunk_size];
            let mut m = Vec::new();
            self.local()?.compress(&zeros, &mut m)?;
            self.zero_member = Some(m);
        }
        let m = member.or(self.zero_member.as_deref()).expect("set above");
        self.inner
            .as_mut()
            .expect("writer used after finish")
            .write_all(m)
    }

    /// Writes out the oldest pending chunk, waiting for its worker if need be.
    fn collect_one(&mut self) -> io::Result<()> {
        match self.pending.pop_front() {
            None => Ok(()),
            Some(Pending::Zero) => {
                self.done_bytes += self.chunk_size as u64;
                self.emit(None)
            }
            Some(Pending::Job(rx, len)) => {
                self.in_flight -= 1;
                self.done_bytes += len as u64;
                let (r, mut chunk, out) = rx
                    .recv()
                    .map_err(|_| io::Error::other("compression worker thread failed"))?;
                let r = r.and_then(|zero| self.emit((!zero).then_some(&out[..])));
                chunk.clear();
                self.spare_in.push(chunk);
                self.spare_out.push(out);
                r
            }
        }
    }

    /// Hands a job to the workers (or does it here with one thread).
    fn dispatch(&mut self, mut job: Job, len: usize, rx: Receiver<Done>) -> io::Result<()> {
        match &self.jobs {
            Some(tx) => {
                tx.send(job)
                    .map_err(|_| io::Error::other("compression worker thread failed"))?;
                self.pending.push_back(Pending::Job(rx, len));
                self.in_flight += 1;
                while self.in_flight >= self.max_in_flight {
                    self.collect_one()?;
                }
                Ok(())
            }
            None => {
                let chunk_size = self.chunk_size;
                let source = self.source.clone();
                let r = work(self.local()?, source.as_deref(), chunk_size, &mut job);
                self.done_bytes += len as u64;
                let r = r.and_then(|zero| self.emit((!zero).then_some(&job.out[..])));
                job.chunk.clear();
                self.spare_in.push(job.chunk);
                self.spare_out.push(job.out);
                r
            }
        }
    }

    /// A spare input buffer (or a new one).
    fn spare_chunk(&mut self) -> Vec<u8> {
        self.spare_in
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.chunk_size))
    }

    /// Hands `chunk` (or the `fill` range of the source) of `len` bytes to the workers.
    fn submit_job(
        &mut self,
        chunk: Vec<u8>,
        fill: Option<(u64, usize)>,
        len: usize,
    ) -> io::Result<()> {
        let out = self.spare_out.pop().unwrap_or_default();
        let (done, rx) = mpsc::sync_channel(1);
        let job = Job {
            chunk,
            fill,
            out,
            done,
        };
        self.dispatch(job, len, rx)
    }

    fn submit_fill(&mut self, offset: u64, len: usize) -> io::Result<()> {
        let chunk = self.spare_chunk();
        self.submit_job(chunk, Some((offset, len)), len)
    }

    fn submit(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        // Zero chunks are recognised here rather than by a worker: they take no buffer
        // and no place among the jobs, so the caller is never held up by them.
        if self.chunk.len() == self.chunk_size && all_zero(&self.chunk) {
            self.chunk.clear();
            self.pending.push_back(Pending::Zero);
            while let Some(Pending::Zero) = self.pending.front() {
                self.collect_one()?;
            }
            return Ok(());
        }
        let next = self.spare_chunk();
        let chunk = std::mem::replace(&mut self.chunk, next);
        let len = chunk.len();
        self.submit_job(chunk, None, len)
    }

    /// Compresses what is buffered, waits for the workers and returns the inner writer.
    /// An empty input still gives one (empty) member, as a stream must hold one.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit()?;
        while !self.pending.is_empty() {
            self.collect_one()?;
        }
        if self.members == 0 {
            let mut m = Vec::new();
            self.local()?.compress(&[], &mut m)?;
            self.emit(Some(&m))?;
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        Ok(self.inner.take().expect("finish called once"))
    }
}

impl<W: Write, C: ChunkCodec> Write for ParallelChunkWriter<W, C> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.chunk.capacity() == 0 {
            self.chunk.reserve_exact(self.chunk_size);
        }
        let n = buf.len().min(self.chunk_size - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == self.chunk_size {
            self.submit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write, C: ChunkCodec> Drop for ParallelChunkWriter<W, C> {
    fn drop(&mut self) {
        self.jobs = None;
        self.pending.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

mod codecs;
pub use codecs::{Chunks, GzipChunks, ZstdChunks, MEMBER_SIZE_ID, SIZED_HEADER_LEN};

#[cfg(test)]
mod tests;
