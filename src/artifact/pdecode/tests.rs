//! Tests of the parallel decoders: chunked streams, streams they must leave to the sequential
//! decoder, mixtures of both, and damage anywhere.

use std::io::{Read, Write};

use super::*;
use crate::artifact::pchunk::{GzipChunks, ParallelChunkWriter, ZstdChunks};

fn sample(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| ((i * 7) % 253) as u8 ^ (i >> 11) as u8)
        .collect()
}

fn ours_gzip(data: &[u8], chunk: usize) -> Vec<u8> {
    let mut w = ParallelChunkWriter::new(Vec::new(), chunk, 2, || GzipChunks::new(4)).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

fn ours_zstd(data: &[u8], chunk: usize) -> Vec<u8> {
    let mut w = ParallelChunkWriter::new(Vec::new(), chunk, 2, || ZstdChunks::new(3)).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

fn plain_gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Reads everything through reads of `step` bytes.
fn decode(codec: Codec, input: &[u8], threads: usize, step: usize) -> io::Result<Vec<u8>> {
    let mut d = ParallelDecoder::new(codec, input, threads);
    let mut out = Vec::new();
    let mut buf = vec![0u8; step];
    loop {
        let n = d.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn chunked_streams_decode_in_order_on_any_number_of_threads() {
    let mut data = sample(3_000_001);
    data.extend(vec![0u8; 2 << 20]);
    data.extend(sample(77));
    for threads in [1, 2, 3] {
        for step in [1 << 16, 4093] {
            let gz = ours_gzip(&data, 1 << 18);
            assert_eq!(decode(Codec::Gzip, &gz, threads, step).unwrap(), data);
            let zs = ours_zstd(&data, 1 << 20);
            assert_eq!(decode(Codec::Zstd, &zs, threads, step).unwrap(), data);
        }
    }
    assert!(decode(Codec::Gzip, b"", 2, 10).unwrap().is_empty());
    assert!(decode(Codec::Zstd, b"", 2, 10).unwrap().is_empty());
}

#[test]
fn members_record_their_size_and_other_readers_skip_it() {
    let data = sample(600_000);
    let gz = ours_gzip(&data, 1 << 18);
    // FEXTRA with the one MC subfield holding the member's length.
    assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 4]);
    assert_eq!(&gz[12..14], b"MC");
    let len = u32::from_le_bytes(gz[16..20].try_into().unwrap()) as usize;
    assert_eq!(&gz[len..len + 4], &[0x1f, 0x8b, 8, 4]);
    let mut back = Vec::new();
    flate2::read::MultiGzDecoder::new(&gz[..])
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, data);
}

#[test]
fn what_cannot_be_cut_out_is_read_sequentially() {
    let a = sample(500_000);
    let b = sample(300_000);
    let ab: Vec<u8> = a.iter().chain(&b).copied().collect();
    // Upstream's single member; a plain member after chunked ones; chunked ones after a
    // plain one.
    assert_eq!(decode(Codec::Gzip, &plain_gzip(&ab), 2, 8192).unwrap(), ab);
    let mut mixed = ours_gzip(&a, 1 << 17);
    mixed.extend(plain_gzip(&b));
    assert_eq!(decode(Codec::Gzip, &mixed, 2, 8192).unwrap(), ab);
    let mut mixed = plain_gzip(&a);
    mixed.extend(ours_gzip(&b, 1 << 17));
    assert_eq!(decode(Codec::Gzip, &mixed, 2, 8192).unwrap(), ab);
    // zstd: a streamed frame has no content size; skippable frames are skipped.
    let streamed = zstd::stream::encode_all(&ab[..], 3).unwrap();
    assert_eq!(decode(Codec::Zstd, &streamed, 2, 8192).unwrap(), ab);
    let mut with_skippable = ours_zstd(&a, 1 << 17);
    with_skippable.extend([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
    with_skippable.extend(ours_zstd(&b, 1 << 17));
    assert_eq!(decode(Codec::Zstd, &with_skippable, 2, 8192).unwrap(), ab);
}

#[test]
fn units_larger_than_a_worker_buffer_are_decoded_inline() {
    let data = sample(MAX_UNIT_OUT + 12345);
    let gz = ours_gzip(&data, MAX_UNIT_OUT + 12345);
    assert_eq!(decode(Codec::Gzip, &gz, 2, 1 << 16).unwrap(), data);
    let zs = ours_zstd(&data, MAX_UNIT_OUT + 12345);
    assert_eq!(decode(Codec::Zstd, &zs, 2, 1 << 16).unwrap(), data);
}

/// Decodes `input`, which must fail, and returns the error and how many bytes came first.
/// Reading on after the error fails too.
fn damaged(codec: Codec, input: &[u8]) -> (io::Error, usize) {
    let mut d = ParallelDecoder::new(codec, input, 2);
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match d.read(&mut buf) {
            Ok(0) => panic!("{codec:?}: damaged input decoded without an error"),
            Ok(n) => got += n,
            Err(e) => {
                assert!(d.read(&mut buf).is_err(), "{codec:?}: read on after {e}");
                return (e, got);
            }
        }
    }
}

#[test]
fn damage_is_found_after_the_good_data_before_it() {
    let data = sample(1 << 20);
    let gz = ours_gzip(&data, 1 << 18);
    let second = u32::from_le_bytes(gz[16..20].try_into().unwrap()) as usize;
    let third =
        second + u32::from_le_bytes(gz[second + 16..second + 20].try_into().unwrap()) as usize;
    // Deflate data, CRC-32 and length of the second member.
    for at in [second + 40, third - 8, third - 4] {
        let mut bad = gz.clone();
        bad[at] ^= 0x55;
        let (e, got) = damaged(Codec::Gzip, &bad);
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert_eq!(got, 1 << 18, "{e}");
        assert!(e.to_string().contains(&format!("offset {second}")), "{e}");
    }
    // A length past what a worker holds: the member is decoded as it is read, and fails at
    // its trailer.
    let mut bad = gz.clone();
    bad[third - 2] ^= 0x55;
    let (e, got) = damaged(Codec::Gzip, &bad);
    assert!(e.to_string().contains("length mismatch"), "{e}");
    assert_eq!(got, 2 << 18);
    // Truncated in the middle of a member.
    let (e, got) = damaged(Codec::Gzip, &gz[..third - 100]);
    assert!(e.to_string().contains("truncated member"), "{e}");
    assert_eq!(got, 1 << 18);
    // A size field that lies.
    let mut bad = gz.clone();
    bad[second + 16] = bad[second + 16].wrapping_sub(1);
    assert!(damaged(Codec::Gzip, &bad).0.kind() == io::ErrorKind::InvalidData);
    let mut bad = gz.clone();
    bad[second + 16..second + 20].copy_from_slice(&10u32.to_le_bytes());
    assert!(damaged(Codec::Gzip, &bad)
        .0
        .to_string()
        .contains("shorter than"));
    // A size that covers the next member too: two members of zeros are alike to the byte,
    // so the trailer at the end of the claimed length matches the first member's data; the
    // deflate data must still end where the size says.
    let zeros = ours_gzip(&vec![0u8; 3 << 18], 1 << 18);
    let one = u32::from_le_bytes(zeros[16..20].try_into().unwrap());
    let mut bad = zeros.clone();
    bad[16..20].copy_from_slice(&(2 * one).to_le_bytes());
    let (e, got) = damaged(Codec::Gzip, &bad);
    assert!(
        e.to_string()
            .contains("member size does not match its deflate data"),
        "{e}"
    );
    assert_eq!(got, 0);

    let zs = ours_zstd(&data, 1 << 18);
    let (e, _) = damaged(Codec::Zstd, &zs[..zs.len() - 3]);
    assert!(e.to_string().contains("truncated"), "{e}");
    let mut bad = zs.clone();
    let n = bad.len();
    bad[n - 1] ^= 1; // the last frame's checksum
    let (e, got) = damaged(Codec::Zstd, &bad);
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    assert_eq!(got, 3 << 18);
    // A block header claiming more than there is (single-segment frame header: magic,
    // descriptor, four bytes of content size), and a reserved block type.
    assert_eq!(zs[4] & 0xe0, 0xa0);
    let mut bad = zs.clone();
    bad[9..12].copy_from_slice(&[0xfc, 0xff, 0xff]);
    let (e, _) = damaged(Codec::Zstd, &bad);
    assert!(
        e.to_string()
            .contains("truncated frame at compressed offset 9"),
        "{e}"
    );
    let mut bad = zs.clone();
    bad[9] |= 0x06;
    let (e, _) = damaged(Codec::Zstd, &bad);
    assert!(e.to_string().contains("reserved block type"), "{e}");
}

#[test]
fn dropping_the_reader_midway_stops_the_workers() {
    let data = sample(4 << 20);
    let gz = ours_gzip(&data, 1 << 16);
    for _ in 0..20 {
        let mut d = ParallelDecoder::new(Codec::Gzip, &gz[..], 2);
        let mut buf = [0u8; 1000];
        d.read_exact(&mut buf).unwrap();
        drop(d);
    }
}

fn xz(data: &[u8], block: u64) -> Vec<u8> {
    let stream = liblzma::stream::MtStreamBuilder::new()
        .threads(2)
        .preset(1)
        .block_size(block)
        .encoder()
        .unwrap();
    let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn unxz(input: &[u8], threads: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    XzReader::new(input, threads, 100 << 20, 100 << 20).read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn xz_blocks_streams_and_padding() {
    let data = sample(3_000_000);
    let blocks = xz(&data, 1 << 19);
    for threads in [1, 2, 3] {
        assert_eq!(unxz(&blocks, threads).unwrap(), data);
    }
    // Two streams with padding between them are one file.
    let mut two = xz(&data[..1000], 0);
    two.extend([0u8; 8]);
    two.extend(xz(&data[1000..], 1 << 20));
    assert_eq!(unxz(&two, 2).unwrap(), data);
    // Single-threaded (upstream) xz: one block without sizes in its header.
    let mut single = Vec::new();
    let mut e = liblzma::write::XzEncoder::new(&mut single, 6);
    e.write_all(&data).unwrap();
    e.finish().unwrap();
    assert_eq!(unxz(&single, 2).unwrap(), data);
    assert!(unxz(&blocks[..blocks.len() / 2], 2).is_err());
    let mut bad_pad = xz(&data[..10], 0);
    bad_pad.extend([0u8; 3]);
    assert!(unxz(&bad_pad, 2).is_err());
    let mut corrupt = blocks.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x40;
    assert!(unxz(&corrupt, 2).is_err());
    assert!(unxz(b"", 2).is_err());
}
