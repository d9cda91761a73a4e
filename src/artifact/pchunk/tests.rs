//! Tests of the chunked compressor.

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
