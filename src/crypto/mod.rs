//! Keys and signatures: loading PEM keys, signing and verifying messages, and the signature text
//! form stored in artifacts. This module knows nothing about artifacts themselves.
//!
//! Supported key types are RSA (PKCS#1 v1.5 with SHA-256), ECDSA on P-256 with SHA-256 and
//! Ed25519. Private keys are used through `ring`; parsing of the key containers (PKCS#1, SEC1,
//! PKCS#8, SubjectPublicKeyInfo, encrypted PEM) happens in this module.

mod error;
mod legacy_pem;
mod oids;
mod pem_input;
mod pkcs11;
mod private_key;
mod public_key;
mod signature;
mod signing;
#[cfg(test)]
mod test_keys;
pub(crate) mod tls_verify;
mod verifying;

use std::fmt;

pub use error::{KeyError, VerifyError};
pub use pkcs11::Pkcs11Key;
pub use signature::{decode_signature, ecdsa_der_to_raw, ecdsa_raw_to_der, encode_signature};
pub use signing::SigningKey;
pub use verifying::VerifyingKey;

/// The kind of a key, so callers can report and check which algorithm a key or signature uses
/// without looking inside the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA with PKCS#1 v1.5 padding and SHA-256; `bits` is the modulus size (e.g. 2048).
    Rsa {
        /// Size of the RSA modulus in bits.
        bits: usize,
    },
    /// ECDSA over NIST P-256 (prime256v1) with SHA-256.
    EcdsaP256,
    /// Pure Ed25519 (no prehash).
    Ed25519,
}

impl KeyAlgorithm {
    /// Length in bytes of the signatures that [`SigningKey::sign`] produces for this algorithm,
    /// so callers can sanity-check stored signatures before verifying them.
    ///
    /// For ECDSA this is the raw `r||s` form (64); DER-encoded ECDSA signatures are 8 to 72 bytes.
    pub fn signature_len(&self) -> usize {
        match self {
            KeyAlgorithm::Rsa { bits } => bits.div_ceil(8),
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::Ed25519 => 64,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyAlgorithm::EcdsaP256 => f.write_str("ECDSA P-256"),
            KeyAlgorithm::Ed25519 => f.write_str("ed25519"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert_eq!(KeyAlgorithm::Rsa { bits: 2048 }.to_string(), "RSA-2048");
        assert_eq!(KeyAlgorithm::Rsa { bits: 3072 }.to_string(), "RSA-3072");
        assert_eq!(KeyAlgorithm::EcdsaP256.to_string(), "ECDSA P-256");
        assert_eq!(KeyAlgorithm::Ed25519.to_string(), "ed25519");
    }

    #[test]
    fn keys_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + Clone>() {}
        shareable::<SigningKey>();
        shareable::<VerifyingKey>();
    }

    #[test]
    fn signature_lengths() {
        assert_eq!(KeyAlgorithm::Rsa { bits: 2048 }.signature_len(), 256);
        assert_eq!(KeyAlgorithm::Rsa { bits: 4096 }.signature_len(), 512);
        assert_eq!(KeyAlgorithm::EcdsaP256.signature_len(), 64);
        assert_eq!(KeyAlgorithm::Ed25519.signature_len(), 64);
    }
}
