//! Parallel decompression of chunked payloads: gzip members that record their size (our
//! writer's) and zstd frames with a content size are cut out of the stream on the calling
//! thread, decompressed on worker threads (every core), and handed out in order, each with
//! its own check (gzip CRC-32 and length, zstd checksum and content size). Whatever cannot
//! be cut out (upstream's single gzip member or zstd frame) is read on by the sequential
//! decoder, at its usual speed.
//!
//! Memory: at most one unit in flight per worker (one per core, at most [`MAX_WORKERS`]),
//! each at most [`MAX_UNIT_IN`] compressed and [`MAX_UNIT_OUT`] (4 MiB) decompressed, plus
//! the one being read out: `(workers + 1) × 8.1 MiB` at worst; with our writer's 1 MiB gzip
//! members about `(workers + 1) × 1.5 MiB`, with its 4 MiB zstd frames about
//! `(workers + 1) × 5.5 MiB`.
//!
//! xz is decoded by liblzma's multi-threaded decoder, which decodes the blocks of a stream
//! in parallel when their headers carry their sizes (ours do); see [`XzReader`].

mod framing;
mod inflate;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use self::framing::{next_gzip, next_zstd, Next, PeekReader};
pub use self::framing::{MAX_UNIT_IN, MAX_UNIT_OUT};
use self::inflate::Inflater;
use super::gunzip::GzipReader;
use super::pchunk::SIZED_HEADER_LEN;

/// The chunked codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// gzip members.
    Gzip,
    /// zstd frames.
    Zstd,
}

/// Largest zstd window the sequential decoder accepts (128 MiB, zstd's own default limit),
/// so that a hostile frame cannot make a device allocate more.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Input read ahead for the scanners and the sequential decoders.
const PEEK_BUF: usize = 256 << 10;

/// Most workers one decoder starts: four inflate (decode) faster than one SHA-256 chain
/// hashes, so more would only hold more memory (a server validates several uploads at once).
pub const MAX_WORKERS: usize = 4;

/// A unit for a worker: compressed bytes, a buffer for the output and its expected size.
struct Job {
    codec: Codec,
    input: Vec<u8>,
    out: Vec<u8>,
    size: usize,
    /// Compressed offset of the unit, for messages.
    offset: u64,
    done: SyncSender<Done>,
}

/// The output (or the error) and the input buffer, for reuse.
type Done = (io::Result<Vec<u8>>, Vec<u8>);

/// What comes out next, in stream order.
enum Pending {
    /// On a worker.
    Job(Receiver<Done>),
    /// Decoded here, streaming, from an in-memory unit larger than a worker's buffer.
    Inline(Box<dyn Read>),
    /// A scanning error, reported once everything before it was read.
    Failed(io::Error),
}

fn decode(job: &mut Job, gz: &mut Inflater, zs: &mut zstd::bulk::Decompressor) -> io::Result<()> {
    job.out.clear();
    // Exactly the declared size: a recycled buffer does not grow past what a unit needs.
    job.out.reserve_exact(job.size);
    job.out.resize(job.size, 0);
    let bad = |codec: &str, what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{codec}: {what} in the unit at compressed offset {}",
                job.offset
            ),
        )
    };
    match job.codec {
        Codec::Gzip => {
            // The member is exactly our header, raw deflate data that must end where the
            // trailer begins (a size that runs into the next member is corruption, not a
            // member to skip), then the CRC-32 and length of the data.
            let input = &job.input;
            let body = &input[SIZED_HEADER_LEN..input.len() - 8];
            let trailer = &input[input.len() - 8..];
            gz.inflate_exact(body, &mut job.out)
                .map_err(|what| bad("gzip", what.into()))?;
            let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
            if crc32fast::hash(&job.out) != crc {
                return Err(bad("gzip", "CRC-32 mismatch (corrupt data)".into()));
            }
        }
        Codec::Zstd => {
            // zstd checks the content checksum and the declared content size.
            let n = zs
                .decompress_to_buffer(&job.input, &mut job.out[..])
                .map_err(|e| bad("zstd", format!("corrupt frame ({e})")))?;
            if n != job.size {
                return Err(bad("zstd", "content size mismatch (corrupt data)".into()));
            }
        }
    }
    Ok(())
}

/// The worker threads: they live as long as the job channel.
fn spawn_workers(n: usize) -> io::Result<SyncSender<Job>> {
    let (tx, rx) = mpsc::sync_channel::<Job>(n);
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..n {
        let rx = Arc::clone(&rx);
        let mut zs = zstd::bulk::Decompressor::new()?;
        zs.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
        let mut gz = Inflater::new()?;
        std::thread::Builder::new()
            .name("decompress".into())
            .spawn(move || loop {
                let job = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                let Ok(mut job) = job else { return };
                let result = decode(&mut job, &mut gz, &mut zs);
                let Job {
                    input, out, done, ..
                } = job;
                let _ = done.send((result.map(|()| out), input));
            })?;
    }
    Ok(tx)
}

/// Decompresses a gzip or zstd stream, on every core where it is chunked.
pub struct ParallelDecoder<'a, R: Read + 'a> {
    codec: Codec,
    /// The compressed input, until a sequential decoder takes it over.
    input: Option<PeekReader<R>>,
    /// The sequential decoder for the rest of the stream.
    sequential: Option<Box<dyn Read + 'a>>,
    threads: usize,
    jobs: Option<SyncSender<Job>>,
    pending: VecDeque<Pending>,
    /// Output being read out, and how far.
    current: Vec<u8>,
    pos: usize,
    inline: Option<Box<dyn Read>>,
    /// Buffers to reuse.
    free_in: Vec<Vec<u8>>,
    free_out: Vec<Vec<u8>>,
    /// No more units: the input ended or a sequential decoder takes over after `pending`.
    scanned: bool,
    /// An error was returned: the stream is not read on past it (the units after a corrupt
    /// one would come out as if nothing were missing).
    failed: bool,
}

impl<'a, R: Read + 'a> ParallelDecoder<'a, R> {
    /// Decodes `r` with `codec` on up to `threads` workers, at most [`MAX_WORKERS`] (started
    /// when the first unit that can be cut out is seen).
    pub fn new(codec: Codec, r: R, threads: usize) -> Self {
        ParallelDecoder {
            codec,
            input: Some(PeekReader::new(r, PEEK_BUF)),
            sequential: None,
            threads: threads.clamp(1, MAX_WORKERS),
            jobs: None,
            pending: VecDeque::new(),
            current: Vec::new(),
            pos: 0,
            inline: None,
            free_in: Vec::new(),
            free_out: Vec::new(),
            scanned: false,
            failed: false,
        }
    }

    /// Cuts the next unit out of the input and queues it; false when there are no more. An
    /// error is queued too, to come out after everything before it.
    fn scan_one(&mut self) -> bool {
        match self.try_scan_one() {
            Ok(more) => more,
            Err(e) => {
                self.pending.push_back(Pending::Failed(e));
                self.input = None;
                false
            }
        }
    }

    fn try_scan_one(&mut self) -> io::Result<bool> {
        let Some(input) = self.input.as_mut() else {
            return Ok(false);
        };
        let offset = input.offset;
        let mut unit = self.free_in.pop().unwrap_or_default();
        let next = match self.codec {
            Codec::Gzip => next_gzip(input, &mut unit)?,
            Codec::Zstd => next_zstd(input, &mut unit)?,
        };
        match next {
            Next::End => {
                self.input = None;
                Ok(false)
            }
            Next::Sequential => {
                let r = self.input.take().expect("input present");
                self.sequential = Some(match self.codec {
                    Codec::Gzip => Box::new(GzipReader::new(r)),
                    Codec::Zstd => zstd_sequential(r)?,
                });
                Ok(false)
            }
            Next::Unit { out } if out > MAX_UNIT_OUT => {
                // Larger than a worker's buffer: decoded here as it is read, from memory.
                let r: Box<dyn Read> = match self.codec {
                    Codec::Gzip => Box::new(GzipReader::new(io::Cursor::new(unit))),
                    Codec::Zstd => zstd_sequential(io::Cursor::new(unit))?,
                };
                self.pending.push_back(Pending::Inline(r));
                Ok(true)
            }
            Next::Unit { out } => {
                if self.jobs.is_none() {
                    self.jobs = Some(spawn_workers(self.threads)?);
                }
                let (done, result) = mpsc::sync_channel(1);
                let job = Job {
                    codec: self.codec,
                    input: unit,
                    out: self.free_out.pop().unwrap_or_default(),
                    size: out,
                    offset,
                    done,
                };
                self.jobs
                    .as_ref()
                    .expect("workers started")
                    .send(job)
                    .map_err(|_| io::Error::other("decompression workers stopped"))?;
                self.pending.push_back(Pending::Job(result));
                Ok(true)
            }
        }
    }

    /// Keeps the workers busy: as many units in flight as there are workers (one more
    /// costs a unit's memory for no measurable speed).
    fn fill_pipeline(&mut self) {
        while !self.scanned && self.pending.len() < self.threads {
            if !self.scan_one() {
                self.scanned = true;
            }
        }
    }
}

fn zstd_sequential<'a, R: BufRead + 'a>(r: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut d = zstd::stream::read::Decoder::with_buffer(r)?;
    d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
    Ok(Box::new(d))
}

impl<'a, R: Read + 'a> Read for ParallelDecoder<'a, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other(
                "decompression: reader used after an error",
            ));
        }
        let result = self.read_on(buf);
        if result.is_err() {
            self.failed = true;
            // What is queued is dropped; the workers stop with the job channel.
            self.pending.clear();
            self.jobs = None;
            self.input = None;
            self.sequential = None;
            self.inline = None;
        }
        result
    }
}

impl<'a, R: Read + 'a> ParallelDecoder<'a, R> {
    fn read_on(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos < self.current.len() {
                let n = buf.len().min(self.current.len() - self.pos);
                buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some(r) = self.inline.as_mut() {
                let n = r.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.inline = None;
            }
            if !self.current.is_empty() {
                self.free_out.push(std::mem::take(&mut self.current));
                self.pos = 0;
            }
            self.fill_pipeline();
            match self.pending.pop_front() {
                Some(Pending::Job(rx)) => {
                    let (out, input) = rx
                        .recv()
                        .map_err(|_| io::Error::other("a decompression worker stopped"))?;
                    self.free_in.push(input);
                    self.current = out?;
                    self.pos = 0;
                }
                Some(Pending::Inline(r)) => self.inline = Some(r),
                Some(Pending::Failed(e)) => return Err(e),
                None => {
                    return match self.sequential.as_mut() {
                        Some(r) => r.read(buf),
                        None => Ok(0),
                    }
                }
            }
        }
    }
}

/// xz through liblzma's multi-threaded decoder, stream after stream (a series of streams is
/// one file, as the xz format defines and upstream reads). Blocks whose headers carry their
/// sizes are decoded on `threads` threads while memory stays under `memlimit_threading`;
/// others (upstream's single block) are decoded on the calling thread as before.
pub struct XzReader<R: BufRead> {
    input: R,
    stream: Option<liblzma::stream::Stream>,
    /// A stream was decoded to its end: before another, the padding is checked.
    after_stream: bool,
    threads: u32,
    memlimit_threading: u64,
    memlimit: u64,
    ended: bool,
}

impl<R: BufRead> XzReader<R> {
    /// Decodes `input` on up to `threads` threads within `memlimit_threading` bytes, never
    /// allocating more than `memlimit`.
    pub fn new(input: R, threads: usize, memlimit_threading: u64, memlimit: u64) -> Self {
        XzReader {
            input,
            stream: None,
            after_stream: false,
            threads: threads.clamp(1, 64) as u32,
            memlimit_threading,
            memlimit,
            ended: false,
        }
    }

    fn start(&mut self) -> io::Result<()> {
        let stream = liblzma::stream::MtStreamBuilder::new()
            .threads(self.threads)
            .memlimit_threading(self.memlimit_threading)
            .memlimit_stop(self.memlimit)
            .timeout_ms(0)
            .decoder()
            .map_err(|e| io::Error::other(format!("xz: {e}")))?;
        self.stream = Some(stream);
        Ok(())
    }

    /// After a stream: skips its padding (zero bytes, a multiple of four) and says whether
    /// another stream follows.
    fn another_stream(&mut self) -> io::Result<bool> {
        let mut padding = 0usize;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let zeros = buf.iter().take_while(|&&b| b == 0).count();
            let all = zeros == buf.len();
            self.input.consume(zeros);
            padding += zeros;
            if !all {
                if padding % 4 != 0 {
                    return Err(xz_bad("stream padding is not a multiple of four bytes"));
                }
                return Ok(true);
            }
        }
        if padding % 4 != 0 {
            return Err(xz_bad("stream padding is not a multiple of four bytes"));
        }
        Ok(false)
    }
}

fn xz_bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("xz: {msg}"))
}

impl<R: BufRead> Read for XzReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.ended {
            return Ok(0);
        }
        loop {
            if self.stream.is_none() {
                if self.after_stream && !self.another_stream()? {
                    self.ended = true;
                    return Ok(0);
                }
                self.start()?;
            }
            let stream = self.stream.as_mut().expect("started");
            let input = self.input.fill_buf()?;
            let eof = input.is_empty();
            let (before_in, before_out) = (stream.total_in(), stream.total_out());
            let action = if eof {
                liblzma::stream::Action::Finish
            } else {
                liblzma::stream::Action::Run
            };
            let status = stream
                .process(input, buf, action)
                .map_err(|e| xz_bad(&e.to_string()))?;
            let consumed = (stream.total_in() - before_in) as usize;
            let written = (stream.total_out() - before_out) as usize;
            self.input.consume(consumed);
            if status == liblzma::stream::Status::StreamEnd {
                self.stream = None;
                self.after_stream = true;
                if written > 0 {
                    return Ok(written);
                }
                continue;
            }
            if written > 0 {
                return Ok(written);
            }
            if eof {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "xz: truncated stream",
                ));
            }
            if consumed == 0 {
                return Err(xz_bad("corrupt stream"));
            }
        }
    }
}
