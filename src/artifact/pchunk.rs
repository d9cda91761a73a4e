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

    fn submit_fill(&mut self, offset: u64, len: usize) -> io::Result<()> {
        let chunk = self
            .spare_in
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.chunk_size));
        let out = self.spare_out.pop().unwrap_or_default();
        let (done, rx) = mpsc::sync_channel(1);
        let job = Job {
            chunk,
            fill: Some((offset, len)),
            out,
            done,
        };
        self.dispatch(job, len, rx)
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
        let next = self
            .spare_in
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.chunk_size));
        let chunk = std::mem::replace(&mut self.chunk, next);
        let len = chunk.len();
        let out = self.spare_out.pop().unwrap_or_default();
        let (done, rx) = mpsc::sync_channel(1);
        let job = Job {
            chunk,
            fill: None,
            out,
            done,
        };
        self.dispatch(job, len, rx)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|i| ((i * 7) % 253) as u8 ^ (i >> 11) as u8)
            .collect()
    }

    fn gzip(data: &[u8], chunk: usize, threads: usize) -> Vec<u8> {
        let mut w =
            ParallelChunkWriter::new(Vec::new(), chunk, threads, || GzipChunks::new(4)).unwrap();
        for piece in data.chunks(70_001) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn zstd(data: &[u8], chunk: usize, threads: usize) -> Vec<u8> {
        let mut w =
            ParallelChunkWriter::new(Vec::new(), chunk, threads, || ZstdChunks::new(3)).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    /// Data with stretches of zeros: whole zero chunks, and zeros inside others.
    fn with_zeros() -> Vec<u8> {
        let mut data = sample(300_000);
        data.extend(vec![0u8; 1 << 20]);
        data.extend(sample(100_000));
        data.extend(vec![0u8; 3 << 18]);
        data
    }

    #[test]
    fn gzip_members_read_back_whatever_the_thread_count() {
        for data in [sample(5_500_000), with_zeros(), Vec::new(), b"x".to_vec()] {
            for threads in [1, 2, 3] {
                let out = gzip(&data, 1 << 18, threads);
                let mut back = Vec::new();
                flate2::read::MultiGzDecoder::new(&out[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, data, "{threads} threads, {} bytes", data.len());
                let mut ours = Vec::new();
                crate::artifact::gunzip::GzipReader::new(&out[..])
                    .read_to_end(&mut ours)
                    .unwrap();
                assert_eq!(ours, data);
            }
        }
    }

    #[test]
    fn zstd_frames_read_back_whatever_the_thread_count() {
        for data in [sample(5_500_000), with_zeros(), Vec::new()] {
            for threads in [1, 2] {
                let out = zstd(&data, 1 << 18, threads);
                assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), data);
            }
        }
    }

    #[test]
    fn zero_chunks_reuse_one_member() {
        let data = vec![0u8; 8 << 18];
        let out = gzip(&data, 1 << 18, 2);
        let one = gzip(&data[..1 << 18], 1 << 18, 1);
        assert_eq!(out, one.repeat(8));
    }

    struct Mem(Vec<u8>);

    impl ChunkSource for Mem {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn fill(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            let at = offset as usize;
            buf.copy_from_slice(&self.0[at..at + buf.len()]);
            Ok(())
        }
    }

    #[test]
    fn a_source_compresses_as_its_bytes_written() {
        for data in [with_zeros(), sample(1 << 20), Vec::new()] {
            for threads in [1, 2] {
                let direct = gzip(&data, 1 << 18, threads);
                let mut seen = Vec::new();
                let src: Arc<dyn ChunkSource> = Arc::new(Mem(data.clone()));
                let out = ParallelChunkWriter::compress_source(
                    Vec::new(),
                    src,
                    1 << 18,
                    threads,
                    || GzipChunks::new(4),
                    &mut |n| seen.push(n),
                )
                .unwrap();
                assert_eq!(out, direct, "{threads} threads, {} bytes", data.len());
                assert_eq!(seen.last(), Some(&(data.len() as u64)));
                assert!(seen.windows(2).all(|w| w[0] <= w[1]));
            }
        }
    }

    struct Failing;

    impl ChunkSource for Failing {
        fn size(&self) -> u64 {
            10 << 20
        }
        fn fill(&self, offset: u64, _: &mut [u8]) -> io::Result<()> {
            if offset >= 3 << 20 {
                return Err(io::Error::other("input shrank"));
            }
            Ok(())
        }
    }

    #[test]
    fn a_failing_source_fails_the_stream() {
        for threads in [1, 2] {
            let err = ParallelChunkWriter::compress_source(
                Vec::new(),
                Arc::new(Failing),
                1 << 20,
                threads,
                || ZstdChunks::new(3),
                &mut |_| {},
            )
            .unwrap_err();
            assert_eq!(err.to_string(), "input shrank");
        }
    }

    #[test]
    fn all_zero_checks_every_byte() {
        let mut b = vec![0u8; 4099];
        assert!(all_zero(&b));
        assert!(all_zero(&b[1..]));
        for i in [0, 1, 17, 2048, 4098] {
            b[i] = 1;
            assert!(!all_zero(&b), "byte {i}");
            b[i] = 0;
        }
    }
}
