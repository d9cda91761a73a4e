//! The Mender Artifact format (v3, and v2 for reading and legacy writing): names, manifest,
//! header documents, compression, and the streaming reader and writer.

pub mod compression;
pub mod dump;
pub mod error;
pub mod gojson;
pub mod gunzip;
pub mod hashing;
pub mod header;
pub mod headertar;
pub mod info;
pub mod manifest;
pub mod names;
pub mod owner;
pub mod pchunk;
pub mod pdecode;
pub mod reader;
pub mod repack;
pub mod resign;
pub mod signing;
pub mod spec;
pub mod tarw;
pub mod writer;

pub use compression::Compression;
pub use error::{ArtifactError, Result};
pub use header::{HeaderInfo, TypeInfo};
pub use info::{ArtifactInfo, PayloadFile, SignatureStatus};
pub use manifest::Manifest;
pub use reader::{read_artifact, ManifestVerifier, ReadOptions, Validate, VerifyMode, Visitor};
pub use spec::{ArtifactSpec, AugmentSpec, PayloadSpec};
pub use writer::{write_artifact, ManifestSigner, Output, WriteOptions};
