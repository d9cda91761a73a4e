//! Hand-made artifacts for tests that need what no writer produces: tar entries of any type,
//! name and declared size, members in any order, compression bombs, lying manifests.

use std::io::{self, Read, Write};

use mender::artifact::hashing::sha256;
use mender::artifact::tarw::{write_end, write_entry, write_header, EntryMeta};
use mender::crypto::{encode_signature, SigningKey};

/// Builds a tar from (name, content, typeflag) with no checks on names.
pub fn raw_tar(entries: &[(&str, &[u8], u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data, kind) in entries {
        let start = out.len();
        write_entry(&mut out, &EntryMeta::stream(name, data.len() as u64), data).unwrap();
        if *kind != b'0' {
            let h = &mut out[start..start + 512];
            h[156] = *kind;
            h[148..156].copy_from_slice(b"        ");
            let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
            h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        }
    }
    write_end(&mut out).unwrap();
    out
}

/// An outer artifact tar of regular-file members, in the given order.
pub fn build(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let e: Vec<(&str, &[u8], u8)> = members
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice(), b'0'))
        .collect();
    raw_tar(&e)
}

/// The header block(s) of a regular file declaring `size` bytes (PAX for huge sizes), with
/// none of its data: whatever follows is what a reader gets.
pub fn tar_header(name: &str, size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write_header(&mut out, &EntryMeta::stream(name, size)).unwrap();
    out
}

/// A member compression, by its name suffix.
#[derive(Clone, Copy, Debug)]
pub enum Codec {
    Gzip,
    Xz,
    Zstd,
}

impl Codec {
    /// The member name suffix (`".gz"`, `".xz"`, `".zst"`).
    pub fn ext(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
            Codec::Xz => ".xz",
            Codec::Zstd => ".zst",
        }
    }

    /// Compresses everything `r` yields, streaming, so a bomb never exists uncompressed.
    pub fn compress(self, mut r: impl Read) -> Vec<u8> {
        let out = Vec::new();
        match self {
            Codec::Gzip => {
                let mut w = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
                io::copy(&mut r, &mut w).unwrap();
                w.finish().unwrap()
            }
            Codec::Xz => {
                let mut w = liblzma::write::XzEncoder::new(out, 0);
                io::copy(&mut r, &mut w).unwrap();
                w.finish().unwrap()
            }
            Codec::Zstd => {
                let mut w = zstd::Encoder::new(out, 1).unwrap();
                io::copy(&mut r, &mut w).unwrap();
                w.finish().unwrap()
            }
        }
    }
}

pub const VERSION: &[u8] = br#"{"format":"mender","version":3}"#;

/// A one-payload update-module artifact, every part of it replaceable.
pub struct Module {
    pub version: Vec<u8>,
    pub header_info: Vec<u8>,
    pub type_info: Vec<u8>,
    /// State scripts: (name under `scripts/`, content).
    pub scripts: Vec<(String, Vec<u8>)>,
    /// Extra entries of the header tar, after the type-info.
    pub header_extra: Vec<(String, Vec<u8>, u8)>,
    pub header_codec: Codec,
    /// Payload files: (name, content, tar typeflag).
    pub files: Vec<(String, Vec<u8>, u8)>,
    /// Manifest lines for the payload files; `None` computes them from `files`.
    pub sums: Option<Vec<(String, [u8; 32])>>,
    /// The data member as (name suffix, bytes); `None` makes it from `files`.
    pub data: Option<(String, Vec<u8>)>,
    pub data_codec: Codec,
    /// Signs the manifest when set.
    pub key: Option<SigningKey>,
}

impl Module {
    /// A valid artifact `name` for payload type `kind` on device type `device`.
    pub fn new(kind: &str, device: &str, name: &str) -> Module {
        Module {
            version: VERSION.to_vec(),
            header_info: format!(
                r#"{{"payloads":[{{"type":"{kind}"}}],"artifact_provides":{{"artifact_name":"{name}"}},"artifact_depends":{{"device_type":["{device}"]}}}}"#
            )
            .into_bytes(),
            type_info: format!(r#"{{"type":"{kind}"}}"#).into_bytes(),
            scripts: Vec::new(),
            header_extra: Vec::new(),
            header_codec: Codec::Gzip,
            files: vec![("file.bin".into(), b"payload bytes".to_vec(), b'0')],
            sums: None,
            data: None,
            data_codec: Codec::Gzip,
            key: None,
        }
    }

    /// The header tar, compressed.
    pub fn header(&self) -> Vec<u8> {
        let scripts: Vec<(String, &[u8])> = self
            .scripts
            .iter()
            .map(|(n, d)| (format!("scripts/{n}"), d.as_slice()))
            .collect();
        let mut e: Vec<(&str, &[u8], u8)> = vec![("header-info", &self.header_info, b'0')];
        e.extend(scripts.iter().map(|(n, d)| (n.as_str(), *d, b'0')));
        e.push(("headers/0000/type-info", &self.type_info, b'0'));
        e.extend(
            self.header_extra
                .iter()
                .map(|(n, d, k)| (n.as_str(), d.as_slice(), *k)),
        );
        self.header_codec.compress(&raw_tar(&e)[..])
    }

    /// The data member's name suffix and bytes.
    pub fn data(&self) -> (String, Vec<u8>) {
        if let Some(d) = &self.data {
            return d.clone();
        }
        let e: Vec<(&str, &[u8], u8)> = self
            .files
            .iter()
            .map(|(n, d, k)| (n.as_str(), d.as_slice(), *k))
            .collect();
        let tar = raw_tar(&e);
        (
            self.data_codec.ext().into(),
            self.data_codec.compress(&tar[..]),
        )
    }

    /// The manifest for `header` (the compressed header tar).
    pub fn manifest(&self, header: &[u8]) -> Vec<u8> {
        let sums = self.sums.clone().unwrap_or_else(|| {
            self.files
                .iter()
                .map(|(n, d, _)| (format!("data/0000/{n}"), sha256(d)))
                .collect()
        });
        let mut m = String::new();
        for (p, s) in sums {
            m += &format!("{}  {p}\n", hex::encode(s));
        }
        let h = format!("header.tar{}", self.header_codec.ext());
        m += &format!("{}  {h}\n", hex::encode(sha256(header)));
        m += &format!("{}  version\n", hex::encode(sha256(&self.version)));
        m.into_bytes()
    }

    /// The outer members in the order the format requires.
    pub fn members(&self) -> Vec<(String, Vec<u8>)> {
        let header = self.header();
        let manifest = self.manifest(&header);
        let mut m = vec![
            ("version".into(), self.version.clone()),
            ("manifest".into(), manifest.clone()),
        ];
        if let Some(key) = &self.key {
            let sig = encode_signature(&key.sign(&manifest).unwrap());
            m.push(("manifest.sig".into(), sig.into_bytes()));
        }
        m.push((format!("header.tar{}", self.header_codec.ext()), header));
        let (ext, data) = self.data();
        m.push((format!("data/0000.tar{ext}"), data));
        m
    }

    /// The whole artifact.
    pub fn build(&self) -> Vec<u8> {
        build(&self.members())
    }
}

/// Writes `bytes` to `path`, for handing an artifact to a binary.
pub fn save(path: &std::path::Path, bytes: &[u8]) {
    std::fs::File::create(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}
