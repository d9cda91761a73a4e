//! Error types for key loading ([`KeyError`]) and signature checking ([`VerifyError`]).
//!
//! Messages are one lowercase line without a trailing period so that callers can prefix them
//! with context (file name, command) and show them to users unchanged.

use super::KeyAlgorithm;

/// Why a key could not be loaded or used, so the user learns what to fix in the key file
/// (wrong format, missing passphrase, unsupported curve, ...).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The input has no PEM `-----BEGIN ...-----` block at all.
    #[error("not a PEM file")]
    NotPem,
    /// The PEM framing or its base64 body is broken.
    #[error("corrupt PEM: {0}")]
    CorruptPem(String),
    /// A PEM block of a kind that holds no usable key (e.g. `CERTIFICATE` where a key is needed).
    #[error("unsupported PEM block \"{label}\"{hint}")]
    UnsupportedPem {
        /// The PEM label as found in the file.
        label: String,
        /// Extra advice (may be empty), starting with a separator.
        hint: String,
    },
    /// A well-formed key of a type or size this tool cannot use.
    #[error("unsupported key type: {0}")]
    UnsupportedKey(String),
    /// The key is encrypted and no passphrase was given.
    #[error("encrypted private key needs a passphrase")]
    PassphraseNeeded,
    /// Decryption failed: wrong passphrase or damaged ciphertext (the two cannot be told apart).
    #[error("wrong passphrase or corrupt encrypted key")]
    WrongPassphrase,
    /// The key is encrypted with a cipher or key-derivation scheme that is not implemented.
    #[error("unsupported key encryption: {0}")]
    UnsupportedEncryption(String),
    /// A private key was given where a public key is expected.
    #[error("this is a private key; a public key is needed")]
    PrivateKeyGiven,
    /// A public key was given where a private key is expected.
    #[error("this is a public key; a private key is needed")]
    PublicKeyGiven,
    /// The key container could be identified but its contents do not parse.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which structure was being read, e.g. "PKCS#8 private key".
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The key parsed but the cryptographic library refused it (inconsistent components etc.).
    #[error("invalid {algorithm} key: {reason}")]
    Rejected {
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
        /// Why it was refused.
        reason: String,
    },
    /// Signing itself failed (should not happen with a valid key; e.g. no system randomness).
    #[error("signing failed: {0}")]
    SigningFailed(String),
    /// A key in a PKCS#11 token could not be reached (module not loadable, no such token or
    /// key, wrong PIN), so hardware-token problems are told apart from key-file problems.
    #[error("pkcs11: {0}")]
    Pkcs11(String),
}

impl KeyError {
    /// Shorthand for [`KeyError::Malformed`].
    pub(crate) fn malformed(what: &'static str, detail: impl ToString) -> KeyError {
        KeyError::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}

/// Why a signature was not accepted, so the user can tell a real mismatch (tampered data, wrong
/// key) from a damaged or wrongly encoded signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature is well-formed but does not match the message under this key.
    #[error("signature does not match ({algorithm} key)")]
    Mismatch {
        /// The algorithm of the key that was used.
        algorithm: KeyAlgorithm,
    },
    /// The signature length cannot be right for the key's algorithm.
    #[error("signature has wrong length {len} for {algorithm}")]
    WrongLength {
        /// Length of the signature that was given, in bytes.
        len: usize,
        /// The algorithm of the key that was used.
        algorithm: KeyAlgorithm,
    },
    /// The signature looks like it was made with a different kind of key.
    #[error("key type mismatch: {0}")]
    KeyTypeMismatch(String),
    /// An ECDSA signature in ASN.1 DER form that does not parse.
    #[error("malformed ECDSA signature: {0}")]
    MalformedEcdsa(String),
    /// The stored signature text is not valid base64.
    #[error("signature is not valid base64: {0}")]
    Base64(String),
    /// The signature is empty.
    #[error("signature is empty")]
    Empty,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_lowercase_line_without_period() {
        let samples: Vec<String> = vec![
            KeyError::NotPem.to_string(),
            KeyError::CorruptPem("missing END line".into()).to_string(),
            KeyError::UnsupportedKey("EC curve secp384r1 (only P-256 is supported)".into())
                .to_string(),
            KeyError::PassphraseNeeded.to_string(),
            KeyError::WrongPassphrase.to_string(),
            KeyError::PrivateKeyGiven.to_string(),
            KeyError::PublicKeyGiven.to_string(),
            KeyError::malformed("PKCS#8 private key", "bad tag").to_string(),
            VerifyError::Mismatch {
                algorithm: KeyAlgorithm::Rsa { bits: 2048 },
            }
            .to_string(),
            VerifyError::WrongLength {
                len: 63,
                algorithm: KeyAlgorithm::EcdsaP256,
            }
            .to_string(),
            VerifyError::Empty.to_string(),
        ];
        for m in &samples {
            assert!(!m.contains('\n'), "{m}");
            assert!(!m.ends_with('.'), "{m}");
            assert!(m.chars().next().unwrap().is_lowercase(), "{m}");
        }
        assert_eq!(
            samples[8], "signature does not match (RSA-2048 key)",
            "mismatch message"
        );
        assert_eq!(samples[9], "signature has wrong length 63 for ECDSA P-256");
        assert_eq!(
            samples[2],
            "unsupported key type: EC curve secp384r1 (only P-256 is supported)"
        );
    }
}
