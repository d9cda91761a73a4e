//! The fuzz entry points, one per target: each takes arbitrary bytes and must neither panic,
//! hang nor allocate without bound. Shared by the targets in `fuzz_targets/` and by the test
//! that replays saved findings (`tests/all/fuzz_regressions.rs`), so both run the same code.

use std::io::{self, Read};

use mender::artifact::gunzip::GzipReader;
use mender::artifact::header::{parse_meta_data, HeaderInfo, TypeInfo};
use mender::artifact::headertar::parse_header_tar;
use mender::artifact::names::{parse_script_name, split_script_name};
use mender::artifact::pdecode::{self, ParallelDecoder, XzReader};
use mender::artifact::{
    read_artifact, ArtifactInfo, Compression, Manifest, ManifestVerifier, PayloadFile, ReadOptions,
    Validate, VerifyMode, Visitor,
};
use mender::crypto::{SigningKey, VerifyingKey};
use mender::delta::{apply, Codec, PatchHeader};
use mender::install::bootenv::grubenv::EnvBlock;
use mender::install::bootenv::parse_listing;
use mender::install::config::Config;
use mender::install::module::parse_answer;

#[path = "server.rs"]
mod server;
pub use server::server_requests;

/// A fuzz entry point.
pub type Entry = fn(&[u8]);

/// Every target by name, as `scripts/fuzz` and the regression test know them.
pub const TARGETS: &[(&str, Entry)] = &[
    ("artifact", artifact),
    ("manifest", manifest),
    ("header_json", header_json),
    ("header_tar", header_tar),
    ("script_name", script_name),
    ("module_answer", module_answer),
    ("grubenv", grubenv),
    ("uboot_listing", uboot_listing),
    ("config", config),
    ("pem_keys", pem_keys),
    ("delta_apply", delta_apply),
    ("decompress", decompress),
    ("server_requests", server_requests),
];

/// A whole `.mender` file, read twice: with the `Validate` visitor, and through short reads
/// with a visitor that consumes every payload byte and a verifier that rejects every
/// signature. A successful read must have handed over exactly the declared payload sizes.
pub fn artifact(data: &[u8]) {
    let _ = read_artifact(data, &ReadOptions::default(), &mut Validate);
    let opts = ReadOptions {
        verify: VerifyMode::Report(&RejectAll),
        progress: None,
    };
    let mut sink = Sink::default();
    let short = ShortReads { inner: data, n: 0 };
    if let Ok(info) = read_artifact(short, &opts, &mut sink) {
        let declared: u64 = info
            .payloads
            .iter()
            .flat_map(|p| &p.files)
            .map(|f| f.size)
            .sum();
        assert_eq!(
            sink.bytes, declared,
            "payload bytes handed over vs declared"
        );
    }
}

/// The `manifest` member; what parses must print and parse back to the same thing.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = Manifest::parse(data) {
        let again = Manifest::parse(m.to_text().as_bytes()).expect("printed manifest parses");
        assert_eq!(m, again);
    }
}

/// `header-info` (v3 and v2), `type-info` and `meta-data` documents.
pub fn header_json(data: &[u8]) {
    if let Ok(h) = HeaderInfo::parse_v3(data) {
        let again = HeaderInfo::parse_v3(h.to_json_v3().as_bytes()).expect("printed v3 parses");
        assert_eq!(h, again);
    }
    let _ = HeaderInfo::parse_v2(data);
    if let Ok(t) = TypeInfo::parse(data) {
        TypeInfo::parse(t.to_json().as_bytes()).expect("printed type-info parses");
    }
    let _ = parse_meta_data(data);
}

/// A header tar: the first byte picks compression, format version and augment; the rest is
/// the (compressed) tar.
pub fn header_tar(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let compression = match sel & 3 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Lzma,
        _ => Compression::ZstdFast,
    };
    let version = if sel & 4 == 0 { 3 } else { 2 };
    let _ = parse_header_tar(rest, compression, version, "header.tar", sel & 8 != 0);
}

/// State-script names as found in header tars.
pub fn script_name(data: &[u8]) {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let _ = split_script_name(name);
    if let Ok(s) = parse_script_name(name) {
        let canonical = format!("{}_{}_{:02}", s.state, s.action, s.order);
        assert_eq!(parse_script_name(&canonical), Ok(s));
    }
}

/// An update module's standard output for a query state.
pub fn module_answer(data: &[u8]) {
    let out = String::from_utf8_lossy(data);
    let _ = parse_answer(&out, &["No", "Yes", "Automatic"]);
    let _ = parse_answer(&out, &["No", "Yes"]);
}

/// A GRUB environment block: what parses must write back unchanged, and a variable that fits
/// must read back after a write and a re-parse.
pub fn grubenv(data: &[u8]) {
    let Ok(mut block) = EnvBlock::parse(data) else {
        return;
    };
    assert_eq!(
        block.to_bytes(),
        data,
        "unchanged block writes back identically"
    );
    let _ = block.vars();
    if block.set("mender_boot_part", "2\\x\n").is_ok() {
        let again = EnvBlock::parse(&block.to_bytes()).expect("written block parses");
        assert_eq!(again.get("mender_boot_part").as_deref(), Some("2\\x\n"));
    }
}

/// `fw_printenv` output.
pub fn uboot_listing(data: &[u8]) {
    let _ = parse_listing(&String::from_utf8_lossy(data));
}

/// `mender.conf`.
pub fn config(data: &[u8]) {
    if let Ok(obj) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(data) {
        let _ = Config::from_object(&obj);
    }
}

/// Public and private PEM keys (with and without a passphrase); a private key that loads must
/// sign, and its public half must verify that signature.
pub fn pem_keys(data: &[u8]) {
    let _ = VerifyingKey::from_pem(data);
    for pass in [None, Some(&b"fuzz"[..])] {
        if let Ok(key) = SigningKey::from_pem(data, pass) {
            let sig = key.sign(b"message").expect("a loaded key signs");
            let public = key.verifying_key().expect("a loaded key has a public half");
            public
                .verify(b"message", &sig)
                .expect("own signature verifies");
        }
    }
}

struct RejectAll;
impl ManifestVerifier for RejectAll {
    fn verify_manifest(&self, _manifest: &[u8], _signature: &[u8]) -> Result<(), String> {
        Err("rejected".into())
    }
}

/// Reads every payload byte, in odd-sized pieces.
#[derive(Default)]
struct Sink {
    bytes: u64,
}
impl Visitor for Sink {
    fn file(
        &mut self,
        _info: &ArtifactInfo,
        _payload: usize,
        _file: &PayloadFile,
        data: &mut dyn Read,
    ) -> mender::artifact::Result<()> {
        let mut buf = [0u8; 777];
        loop {
            match data.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => self.bytes += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(mender::artifact::ArtifactError::io("payload", e)),
            }
        }
    }
}

/// Returns fewer bytes than asked for, so no parser may assume `read` fills its buffer.
struct ShortReads<'a> {
    inner: &'a [u8],
    n: usize,
}
impl Read for ShortReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.n = self.n.wrapping_add(1);
        let want = buf.len().min(1 + (self.n * 193) % 1021);
        self.inner.read(&mut buf[..want])
    }
}

/// Output the delta target accepts before it stops a patch (a header may announce any size).
const DELTA_OUTPUT_CAP: u64 = 4 << 20;

/// Counts what the applier writes and refuses more than [`DELTA_OUTPUT_CAP`].
struct CappedSink(u64);

impl io::Write for CappedSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        if self.0 > DELTA_OUTPUT_CAP {
            return Err(io::Error::other("output cap"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A delta patch applied to a fixed 64 KiB source. With an odd first byte the rest is the
/// patch as it is; with an even one the rest is an op stream, which gets a valid header (target
/// size from the first byte) and a zstd frame, so the fuzzer reaches the op interpreter past
/// the header CRC and the decompressor. Whatever the patch says, the applier must fail
/// cleanly or write exactly the size it announced.
pub fn delta_apply(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let source: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let patch = if mode & 1 == 1 {
        rest.to_vec()
    } else {
        let header = PatchHeader {
            codec: Codec::Zstd,
            source_size: source.len() as u64,
            target_size: u64::from(mode) << 10,
            target_sha256: [0; 32],
        };
        let mut p = header.encode().to_vec();
        p.extend(zstd::encode_all(rest, 1).expect("compressing in memory"));
        p
    };
    let mut sink = CappedSink(0);
    if let Ok(applied) = apply(io::Cursor::new(&source), &patch[..], &mut sink) {
        assert_eq!(applied.target_size, sink.0);
    }
}

/// Most output read from one decompression input.
const DECOMPRESS_CAP: usize = 64 << 20;

/// Reads `r` through short reads of varying size, up to [`DECOMPRESS_CAP`] bytes.
fn drain(mut r: impl Read, step: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; step];
    while out.len() < DECOMPRESS_CAP {
        let want = buf.len().min(DECOMPRESS_CAP - out.len());
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

/// The parallel decoders against the sequential ones they stand in for. The first byte
/// picks the codec (gzip, zstd, xz) and the worker count; the rest is the compressed
/// stream. Output is read through short reads, at most 64 MiB. Where both decoders read the
/// input to its end, they must agree byte for byte (the libraries' checks of corrupt input may
/// differ, so one failing alone is not a finding).
pub fn decompress(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let threads = usize::from(sel >> 2 & 3) + 1;
    let step = [1, 7, 4096, 65536][usize::from(sel >> 4 & 3)];
    let (parallel, sequential) = match sel & 3 {
        0 => (
            drain(
                ParallelDecoder::new(pdecode::Codec::Gzip, rest, threads),
                step,
            ),
            drain(GzipReader::new(rest), 65536),
        ),
        1 => {
            let mut d = zstd::stream::read::Decoder::new(rest).expect("zstd decoder");
            d.window_log_max(pdecode::ZSTD_WINDOW_LOG_MAX)
                .expect("window limit");
            (
                drain(
                    ParallelDecoder::new(pdecode::Codec::Zstd, rest, threads),
                    step,
                ),
                drain(d, 65536),
            )
        }
        _ => {
            let stream = liblzma::stream::Stream::new_stream_decoder(
                100 << 20,
                liblzma::stream::CONCATENATED,
            )
            .expect("xz decoder");
            (
                drain(XzReader::new(rest, threads, 100 << 20, 100 << 20), step),
                drain(liblzma::read::XzDecoder::new_stream(rest, stream), 65536),
            )
        }
    };
    if let (Ok(p), Ok(s)) = (parallel, sequential) {
        if p.len() < DECOMPRESS_CAP && s.len() < DECOMPRESS_CAP {
            assert!(p == s, "parallel and sequential decoders disagree");
        }
    }
}
