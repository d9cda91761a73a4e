//! What an artifact is made of, as the writer takes it: the header documents and the files of
//! each payload, independent of any command line.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::compression::Compression;
use super::header::{HeaderInfo, TypeInfo};

/// One payload: its type-info, optional meta-data and files.
#[derive(Debug, Clone, Default)]
pub struct PayloadSpec {
    /// The payload's `type-info`.
    pub type_info: TypeInfo,
    /// The meta-data object; `None` writes no `meta-data` entry unless `empty_meta_data`.
    pub meta_data: Option<Map<String, Value>>,
    /// Write an empty `meta-data` entry (upstream does so for rootfs-image).
    pub empty_meta_data: bool,
    /// Payload files, stored under their base names, in this order.
    pub files: Vec<PathBuf>,
    /// Add a provide with this key whose value is the SHA-256 of the (single) payload file,
    /// as rootfs-image artifacts carry `rootfs-image.checksum`.
    pub checksum_provide: Option<String>,
}

/// The augment section: an unsigned header and extra files for payload 0.
#[derive(Debug, Clone, Default)]
pub struct AugmentSpec {
    /// The augment `header-info` (with the augment payload type).
    pub header_info: HeaderInfo,
    /// The augment `type-info` of payload 0.
    pub type_info: TypeInfo,
    /// Augment meta-data of payload 0.
    pub meta_data: Option<Map<String, Value>>,
    /// Augment files, appended to payload 0's data.
    pub files: Vec<PathBuf>,
}

/// A whole artifact to write.
#[derive(Debug, Clone)]
pub struct ArtifactSpec {
    /// Format version: 3, or 2 for a legacy rootfs-image artifact.
    pub version: u32,
    /// `header-info`.
    pub header_info: HeaderInfo,
    /// The payloads, `data/0000`, `data/0001`, ...
    pub payloads: Vec<PayloadSpec>,
    /// State-script files, stored as `scripts/<basename>`.
    pub scripts: Vec<PathBuf>,
    /// The augment section, if any.
    pub augment: Option<AugmentSpec>,
    /// Compression of header and data.
    pub compression: Compression,
}
