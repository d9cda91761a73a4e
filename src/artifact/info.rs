//! What a reader learns of an artifact: its headers, scripts, signature state and, as the
//! data streams past, its payload files.

use serde_json::{Map, Value};

use super::compression::Compression;
use super::header::{HeaderInfo, TypeInfo};
use super::manifest::Manifest;

/// The signature state of an artifact after reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// No `manifest.sig`.
    Unsigned,
    /// Signed, but no key was given to check it.
    NotChecked,
    /// Signed and verified with the given key.
    Verified,
    /// Signed, and the given key does not verify it (only when the caller asked to be told
    /// rather than to fail).
    Failed(String),
}

/// A state script carried in the header.
#[derive(Debug, Clone)]
pub struct Script {
    /// Base name, e.g. `ArtifactInstall_Enter_01_hello`.
    pub name: String,
    /// Permission bits recorded in the header.
    pub mode: u32,
    /// The script itself.
    pub data: Vec<u8>,
}

/// A payload file as seen in the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFile {
    /// Base name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds since the epoch).
    pub mtime: i64,
    /// Permission bits.
    pub mode: u32,
    /// SHA-256 from the manifest (verified once the file has been read).
    pub checksum: [u8; 32],
}

/// Per-payload header documents.
#[derive(Debug, Clone, Default)]
pub struct Payload {
    /// `type-info`.
    pub type_info: TypeInfo,
    /// `meta-data`, when present and non-empty.
    pub meta_data: Option<Map<String, Value>>,
    /// v2 only: the file names listed in `headers/NNNN/files`.
    pub v2_files: Option<Vec<String>>,
    /// Files seen in the data, in order.
    pub files: Vec<PayloadFile>,
}

/// The unsigned augment section.
#[derive(Debug, Clone, Default)]
pub struct Augment {
    /// `manifest-augment`.
    pub manifest: Manifest,
    /// The augment `header-info`.
    pub header_info: HeaderInfo,
    /// Augment type-info and meta-data per payload.
    pub payloads: Vec<Payload>,
}

/// Everything known about an artifact.
#[derive(Debug, Clone)]
pub struct ArtifactInfo {
    /// Format version (2 or 3).
    pub version: u32,
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest bytes as stored (what the signature covers).
    pub manifest_raw: Vec<u8>,
    /// The stored signature text, if any.
    pub signature: Option<Vec<u8>>,
    /// Signature state.
    pub signature_status: SignatureStatus,
    /// `header-info`.
    pub header_info: HeaderInfo,
    /// State scripts, in header order.
    pub scripts: Vec<Script>,
    /// Payload headers and files.
    pub payloads: Vec<Payload>,
    /// The augment section.
    pub augment: Option<Augment>,
    /// Compression of the header member.
    pub header_compression: Compression,
    /// Compression of the data members (of the first one seen).
    pub data_compression: Option<Compression>,
}

impl ArtifactInfo {
    /// The artifact name.
    pub fn name(&self) -> &str {
        &self.header_info.artifact_name
    }

    /// The effective type of payload `i`: the augment type when an augment section sets one.
    pub fn payload_type(&self, i: usize) -> Option<&str> {
        let aug = self
            .augment
            .as_ref()
            .and_then(|a| a.payloads.get(i))
            .and_then(|p| p.type_info.kind.as_deref())
            .filter(|t| !t.is_empty());
        aug.or_else(|| self.header_info.payload_types.get(i)?.as_deref())
    }

    /// Provides of payload `i`, with augment values overriding.
    pub fn merged_provides(&self, i: usize) -> std::collections::BTreeMap<String, String> {
        let mut m = self
            .payloads
            .get(i)
            .map(|p| p.type_info.provides.clone())
            .unwrap_or_default();
        if let Some(ap) = self.augment.as_ref().and_then(|a| a.payloads.get(i)) {
            m.extend(ap.type_info.provides.clone());
        }
        m
    }

    /// Depends of payload `i`, with augment values overriding.
    pub fn merged_depends(&self, i: usize) -> std::collections::BTreeMap<String, Value> {
        let mut m = self
            .payloads
            .get(i)
            .map(|p| p.type_info.depends.clone())
            .unwrap_or_default();
        if let Some(ap) = self.augment.as_ref().and_then(|a| a.payloads.get(i)) {
            m.extend(ap.type_info.depends.clone());
        }
        m
    }

    /// Meta-data of payload `i`, with augment objects merged over the original.
    pub fn merged_meta_data(&self, i: usize) -> Option<Map<String, Value>> {
        let base = self.payloads.get(i).and_then(|p| p.meta_data.clone());
        let aug = self
            .augment
            .as_ref()
            .and_then(|a| a.payloads.get(i))
            .and_then(|p| p.meta_data.clone());
        match (base, aug) {
            (b, None) => b,
            (None, a) => a,
            (Some(mut b), Some(a)) => {
                merge_objects(&mut b, a);
                Some(b)
            }
        }
    }
}

fn merge_objects(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => merge_objects(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}
