//! Binary delta patches between filesystem images: generation ([`diff`]) against a source
//! image, and streaming application ([`apply`]) in bounded memory that verifies the source
//! ranges it reads and the target's SHA-256. The format is specified in
//! `doc/delta-format.md`.

mod apply;
mod encode;
mod error;
mod format;
mod index;
mod matcher;

pub use apply::{apply, apply_after_header, Applied};
pub use encode::{diff, diff_bytes, CodecChoice, DiffOptions, Stats, MAX_IMAGE_SIZE};
pub use error::{DeltaError, Result};
pub use format::{Codec, PatchHeader, FORMAT_VERSION, HEADER_LEN, MAGIC};

/// Payload type of delta artifacts, as upstream's `mender-binary-delta` update module names it.
pub const PAYLOAD_TYPE: &str = "mender-binary-delta";
