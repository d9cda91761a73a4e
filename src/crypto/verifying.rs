//! [`VerifyingKey`]: a public key loaded from PEM or DER that checks signatures made with
//! SHA-256 (RSA PKCS#1 v1.5, ECDSA P-256 raw or DER, pure Ed25519).

use std::fmt;

use ring::signature::{
    UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256,
};

use super::signature::ecdsa_der_to_raw;
use super::{oids, public_key};
use super::{KeyAlgorithm, KeyError, VerifyError};

/// A public key that verifies signatures, so artifacts can be checked against the key a user
/// trusts whatever its type (RSA 2048..=8192 bits, ECDSA P-256, Ed25519).
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    algorithm: KeyAlgorithm,
    /// The key in ring's form: PKCS#1 `RSAPublicKey` DER, uncompressed P-256 point, or the 32
    /// Ed25519 bytes.
    key: Vec<u8>,
}

impl VerifyingKey {
    /// Load a public key from PEM, so users can pass the public key files tools write:
    /// SubjectPublicKeyInfo "PUBLIC KEY" (RSA, EC P-256, Ed25519) or PKCS#1 "RSA PUBLIC KEY".
    /// A private key given here is refused with an error saying so.
    pub fn from_pem(pem: &[u8]) -> Result<VerifyingKey, KeyError> {
        public_key::from_pem(pem).map(VerifyingKey::new)
    }

    /// Load a public key from DER SubjectPublicKeyInfo, for keys that are stored or
    /// transmitted in binary form.
    pub fn from_spki_der(der: &[u8]) -> Result<VerifyingKey, KeyError> {
        public_key::from_spki_der(der).map(VerifyingKey::new)
    }

    /// Build a key from ring's representation (as a ring key pair reports its public half).
    pub(crate) fn from_ring_bytes(
        algorithm: KeyAlgorithm,
        bytes: &[u8],
    ) -> Result<VerifyingKey, KeyError> {
        public_key::from_ring_bytes(algorithm, bytes).map(VerifyingKey::new)
    }

    fn new((algorithm, key): (KeyAlgorithm, Vec<u8>)) -> VerifyingKey {
        VerifyingKey { algorithm, key }
    }

    /// The key as DER SubjectPublicKeyInfo, for storing or comparing keys in binary form.
    pub fn to_spki_der(&self) -> Vec<u8> {
        oids::encode_spki(self.algorithm, &self.key)
    }

    /// The key as a "PUBLIC KEY" PEM (64-column lines, LF endings, trailing newline), the same
    /// text `openssl pkey -pubout` writes, so users can distribute it to devices.
    pub fn to_spki_pem(&self) -> String {
        let block = pem::Pem::new("PUBLIC KEY", self.to_spki_der());
        pem::encode_config(
            &block,
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }

    /// The key's algorithm, so callers can report it.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Verify `signature` over `message` (SHA-256 is taken here), so an artifact's signature
    /// can be checked.
    ///
    /// RSA: PKCS#1 v1.5 with SHA-256 (not PSS). ECDSA: both the raw 64-byte `r||s` form and
    /// ASN.1 DER are accepted. Ed25519: the 64-byte signature over the message itself.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        if signature.is_empty() {
            return Err(VerifyError::Empty);
        }
        let algorithm = self.algorithm;
        let mismatch = VerifyError::Mismatch { algorithm };
        match algorithm {
            KeyAlgorithm::Rsa { .. } => {
                if signature.len() != algorithm.signature_len() {
                    return Err(self.length_error(signature));
                }
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.key)
                    .verify(message, signature)
                    .map_err(|_| mismatch)
            }
            KeyAlgorithm::EcdsaP256 => {
                let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.key);
                if signature.len() == 64 && key.verify(message, signature).is_ok() {
                    return Ok(());
                }
                // A DER signature can be 64 bytes long too (rarely), so try DER as well.
                match ecdsa_der_to_raw(signature) {
                    Ok(raw) => key.verify(message, &raw).map_err(|_| mismatch),
                    Err(_) if signature.len() == 64 => Err(mismatch),
                    Err(e) if looks_like_der(signature) => Err(e),
                    Err(_) => Err(self.length_error(signature)),
                }
            }
            KeyAlgorithm::Ed25519 => {
                if signature.len() != 64 {
                    return Err(self.length_error(signature));
                }
                UnparsedPublicKey::new(&ED25519, &self.key)
                    .verify(message, signature)
                    .map_err(|_| mismatch)
            }
        }
    }

    /// The error for a signature whose length does not fit: a key type mismatch when the length
    /// is typical of another algorithm, otherwise a plain wrong length.
    fn length_error(&self, signature: &[u8]) -> VerifyError {
        let len = signature.len();
        let algorithm = self.algorithm;
        let rsa_sized = matches!(len, 256 | 384 | 512 | 768 | 1024);
        let looks_like = if rsa_sized && !matches!(algorithm, KeyAlgorithm::Rsa { .. }) {
            format!("{len}-byte signature looks like RSA-{}", len * 8)
        } else if rsa_sized {
            format!("{len}-byte signature is from an RSA-{} key", len * 8)
        } else if len == 64 {
            format!("{len}-byte signature looks like ECDSA P-256 or ed25519")
        } else if algorithm != KeyAlgorithm::EcdsaP256 && ecdsa_der_to_raw(signature).is_ok() {
            format!("{len}-byte signature looks like DER-encoded ECDSA")
        } else {
            return VerifyError::WrongLength { len, algorithm };
        };
        VerifyError::KeyTypeMismatch(format!("{looks_like}, but the key is {algorithm}"))
    }
}

/// Whether a signature that failed to parse as DER was probably meant to be DER (SEQUENCE tag
/// and a declared length near the real one), so the DER error is the useful one to report.
fn looks_like_der(signature: &[u8]) -> bool {
    match signature {
        [0x30, declared, ..] if *declared < 0x80 => {
            (*declared as usize + 2).abs_diff(signature.len()) <= 8
        }
        _ => false,
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.to_spki_der());
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm)
            .field("spki_sha256", &hex::encode(digest))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_keys::{key, openssl_in, Key};
    use crate::crypto::{decode_signature, encode_signature, SigningKey};

    const MSG: &[u8] = b"header.tar.gz checksums\n";

    fn signer(k: Key) -> SigningKey {
        SigningKey::from_pem(&key(k), None).unwrap()
    }

    fn public(k: Key) -> VerifyingKey {
        signer(k).verifying_key().unwrap()
    }

    /// Sign MSG with `openssl dgst -sha256 -sign` (DER for ECDSA).
    fn openssl_signature(k: Key) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.pem"), key(k)).unwrap();
        std::fs::write(dir.path().join("msg"), MSG).unwrap();
        if k == Key::Ed25519Pkcs8 {
            let args = [
                "pkeyutl", "-sign", "-inkey", "key.pem", "-rawin", "-in", "msg",
            ];
            openssl_in(dir.path(), &args)
        } else {
            openssl_in(dir.path(), &["dgst", "-sha256", "-sign", "key.pem", "msg"])
        }
    }

    #[test]
    fn openssl_signatures_verify() {
        for k in [
            Key::Rsa2048Pkcs1,
            Key::Rsa4096Pkcs1,
            Key::EcSec1,
            Key::Ed25519Pkcs8,
        ] {
            let sig = openssl_signature(k);
            public(k)
                .verify(MSG, &sig)
                .unwrap_or_else(|e| panic!("{k:?}: {e}"));
            // And through the artifact text form.
            let text = encode_signature(&sig);
            let back = decode_signature(text.as_bytes()).unwrap();
            public(k).verify(MSG, &back).unwrap();
        }
        // openssl writes DER for ECDSA; the raw form of the same signature verifies too.
        let der = openssl_signature(Key::EcPkcs8);
        assert_eq!(der[0], 0x30);
        let raw = ecdsa_der_to_raw(&der).unwrap();
        public(Key::EcPkcs8).verify(MSG, &raw).unwrap();
    }

    #[test]
    fn tampering_and_wrong_keys_are_mismatches() {
        for (k, other) in [
            (Key::Rsa2048Pkcs1, Key::Rsa2048Pkcs8Encrypted),
            (Key::EcSec1, Key::EcP384Sec1),
            (Key::Ed25519Pkcs8, Key::Ed25519Other),
        ] {
            let sig = signer(k).sign(MSG).unwrap();
            let key = public(k);
            let e = key.verify(b"header.tar.gz checksums!", &sig).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("signature does not match ({} key)", key.algorithm())
            );
            let mut flipped = sig.clone();
            flipped[10] ^= 1;
            assert!(matches!(
                key.verify(MSG, &flipped),
                Err(VerifyError::Mismatch { .. })
            ));
            if other != Key::EcP384Sec1 && other != Key::Rsa2048Pkcs8Encrypted {
                let e = public(other).verify(MSG, &sig).unwrap_err();
                assert!(matches!(e, VerifyError::Mismatch { .. }), "{e}");
            }
        }
        let other_rsa = signer(Key::Rsa3072Pkcs1).sign(MSG).unwrap();
        let e = public(Key::Rsa2048Pkcs1)
            .verify(MSG, &other_rsa)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "key type mismatch: 384-byte signature is from an RSA-3072 key, but the key is RSA-2048"
        );
    }

    #[test]
    fn truncated_signatures_have_wrong_length() {
        let rsa = signer(Key::Rsa2048Pkcs1).sign(MSG).unwrap();
        let e = public(Key::Rsa2048Pkcs1)
            .verify(MSG, &rsa[..255])
            .unwrap_err();
        assert_eq!(e.to_string(), "signature has wrong length 255 for RSA-2048");
        let ec = loop {
            let sig = signer(Key::EcSec1).sign(MSG).unwrap();
            if sig[0] != 0x30 {
                break sig;
            }
        };
        let e = public(Key::EcSec1).verify(MSG, &ec[..63]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "signature has wrong length 63 for ECDSA P-256"
        );
        let ed = signer(Key::Ed25519Pkcs8).sign(MSG).unwrap();
        let e = public(Key::Ed25519Pkcs8)
            .verify(MSG, &ed[..40])
            .unwrap_err();
        assert_eq!(e.to_string(), "signature has wrong length 40 for ed25519");
        let der = openssl_signature(Key::EcSec1);
        let e = public(Key::EcSec1)
            .verify(MSG, &der[..der.len() - 1])
            .unwrap_err();
        assert!(matches!(e, VerifyError::MalformedEcdsa(_)), "{e}");
        assert!(matches!(
            public(Key::EcSec1).verify(MSG, &[]),
            Err(VerifyError::Empty)
        ));
    }

    #[test]
    fn signatures_of_other_key_types_are_named() {
        let rsa = signer(Key::Rsa2048Pkcs1).sign(MSG).unwrap();
        let e = public(Key::EcSec1).verify(MSG, &rsa).unwrap_err();
        assert_eq!(
            e.to_string(),
            "key type mismatch: 256-byte signature looks like RSA-2048, but the key is ECDSA P-256"
        );
        let ec = signer(Key::EcSec1).sign(MSG).unwrap();
        let e = public(Key::Rsa2048Pkcs1).verify(MSG, &ec).unwrap_err();
        assert!(matches!(e, VerifyError::KeyTypeMismatch(_)), "{e}");
        assert!(e.to_string().ends_with("but the key is RSA-2048"), "{e}");
        let der = openssl_signature(Key::EcSec1);
        let e = public(Key::Ed25519Pkcs8).verify(MSG, &der).unwrap_err();
        assert!(
            e.to_string().contains("looks like DER-encoded ECDSA"),
            "{e}"
        );
    }

    #[test]
    fn debug_shows_algorithm_and_fingerprint() {
        let text = format!("{:?}", public(Key::Ed25519Pkcs8));
        assert!(
            text.starts_with("VerifyingKey { algorithm: Ed25519, spki_sha256: \""),
            "{text}"
        );
    }
}
