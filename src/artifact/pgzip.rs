//! A gzip writer that deflates 1 MiB blocks on every core, each primed with the last 32 KiB
//! of the block before, and joins them with sync flushes into one ordinary gzip member (the
//! scheme of pigz and of upstream's pgzip), so any gzip reader reads it.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress};

const BLOCK_SIZE: usize = 1 << 20;
const DICT_SIZE: usize = 32 << 10;
/// The gzip header: deflate, no flags, no mtime, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// What a worker sends back: the compressed block, and the input buffer for reuse.
type Done = (io::Result<Vec<u8>>, Vec<u8>);

struct Job {
    dict: Vec<u8>,
    block: Vec<u8>,
    done: SyncSender<Done>,
}

/// Parallel gzip compressor; `finish` must be called to complete the stream.
pub struct ParallelGzipWriter<W: Write> {
    inner: Option<W>,
    level: u32,
    block: Vec<u8>,
    dict: Vec<u8>,
    crc: crc32fast::Hasher,
    size: u64,
    jobs: Option<SyncSender<Job>>,
    pending: VecDeque<Receiver<Done>>,
    spare: Vec<Vec<u8>>,
    zero_block: Option<Vec<u8>>,
    max_pending: usize,
    workers: Vec<JoinHandle<()>>,
    header_done: bool,
}

fn deflate_block(level: u32, dict: &[u8], input: &[u8]) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(input.len() / 2 + 4096);
    let mut pos = 0;
    loop {
        if out.capacity() - out.len() < 16 << 10 {
            out.reserve(256 << 10);
        }
        let before = c.total_in();
        c.compress_vec(&input[pos..], &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        pos += (c.total_in() - before) as usize;
        if pos == input.len() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

impl<W: Write> ParallelGzipWriter<W> {
    /// A writer at deflate `level` using up to `threads` worker threads.
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        let mut workers = Vec::new();
        let jobs = if threads > 1 {
            let (tx, rx) = mpsc::sync_channel::<Job>(threads);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..threads {
                let rx = Arc::clone(&rx);
                workers.push(std::thread::spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let out = deflate_block(level, &job.dict, &job.block);
                    let _ = job.done.send((out, job.block));
                }));
            }
            Some(tx)
        } else {
            None
        };
        ParallelGzipWriter {
            inner: Some(inner),
            level,
            block: Vec::with_capacity(BLOCK_SIZE),
            dict: Vec::new(),
            crc: crc32fast::Hasher::new(),
            size: 0,
            jobs,
            pending: VecDeque::new(),
            spare: Vec::new(),
            zero_block: None,
            max_pending: threads.max(1) * 2,
            workers,
            header_done: false,
        }
    }

    fn inner(&mut self) -> &mut W {
        self.inner.as_mut().expect("writer used after finish")
    }

    fn write_out(&mut self, data: &[u8]) -> io::Result<()> {
        if !self.header_done {
            self.header_done = true;
            self.inner().write_all(&GZIP_HEADER)?;
        }
        self.inner().write_all(data)
    }

    fn collect_one(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let (out, mut block) = rx
                .recv()
                .map_err(|_| io::Error::other("gzip worker thread failed"))?;
            self.write_out(&out?)?;
            block.clear();
            self.spare.push(block);
        }
        Ok(())
    }

    fn submit_block(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK_SIZE));
        let block = std::mem::replace(&mut self.block, next);
        let dict = std::mem::take(&mut self.dict);
        self.dict = block[block.len().saturating_sub(DICT_SIZE)..].to_vec();
        // Disk images are mostly zero blocks: a full block of zeros compresses the same
        // whatever precedes it, so it is deflated once and its bytes reused.
        if block.len() == BLOCK_SIZE && block.iter().all(|&b| b == 0) {
            while !self.pending.is_empty() {
                self.collect_one()?;
            }
            if self.zero_block.is_none() {
                self.zero_block = Some(deflate_block(self.level, &[], &block)?);
            }
            let zeros = self.zero_block.take().expect("set above");
            let r = self.write_out(&zeros);
            self.zero_block = Some(zeros);
            let mut block = block;
            block.clear();
            self.spare.push(block);
            return r;
        }
        match &self.jobs {
            Some(tx) => {
                let (done, rx) = mpsc::sync_channel(1);
                tx.send(Job { dict, block, done })
                    .map_err(|_| io::Error::other("gzip worker thread failed"))?;
                self.pending.push_back(rx);
                while self.pending.len() >= self.max_pending {
                    self.collect_one()?;
                }
            }
            None => {
                let out = deflate_block(self.level, &dict, &block)?;
                self.write_out(&out)?;
            }
        }
        Ok(())
    }

    /// Compresses what is buffered, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit_block()?;
        while !self.pending.is_empty() {
            self.collect_one()?;
        }
        // A final empty fixed-Huffman block, then CRC-32 and size modulo 2^32.
        self.write_out(&[0x03, 0x00])?;
        let crc = self.crc.clone().finalize();
        let size = self.size as u32;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.to_le_bytes());
        trailer[4..].copy_from_slice(&size.to_le_bytes());
        self.write_out(&trailer)?;
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        Ok(self.inner.take().expect("finish called once"))
    }
}

impl<W: Write> Write for ParallelGzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.size += n as u64;
        if self.block.len() == BLOCK_SIZE {
            self.submit_block()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParallelGzipWriter<W> {
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

    fn round_trip(data: &[u8], threads: usize) {
        let mut w = ParallelGzipWriter::new(Vec::new(), 6, threads);
        for chunk in data.chunks(70_001) {
            w.write_all(chunk).unwrap();
        }
        let out = w.finish().unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn single_member_gzip_any_thread_count() {
        let data: Vec<u8> = (0..5_500_000u32)
            .map(|i| ((i * 7) % 253) as u8 ^ (i >> 11) as u8)
            .collect();
        round_trip(&data, 1);
        round_trip(&data, 3);
        round_trip(&[], 2);
        round_trip(b"x", 2);
    }

    #[test]
    fn priming_keeps_repeats_across_blocks_small() {
        let unit: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 256) as u8).collect();
        let data = unit.repeat(200);
        let mut w = ParallelGzipWriter::new(Vec::new(), 6, 2);
        w.write_all(&data).unwrap();
        let out = w.finish().unwrap();
        assert!(out.len() < 120_000, "{} bytes", out.len());
    }
}
