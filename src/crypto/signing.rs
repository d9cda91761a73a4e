//! [`SigningKey`]: a private key loaded from PEM that signs messages with SHA-256 (RSA
//! PKCS#1 v1.5, ECDSA P-256 in raw `r||s` form, or pure Ed25519).

use std::fmt;
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{KeyPair as _, RSA_PKCS1_SHA256};

use super::private_key::{self, KeyPair};
use super::{pem_input, KeyAlgorithm, KeyError, VerifyingKey};

/// A private key that can sign, so artifacts can be signed with whatever key type the user
/// has (RSA, ECDSA P-256, Ed25519) without the caller caring about key formats.
///
/// Cloning is cheap (the key material is shared, never copied). `Debug` shows only the
/// algorithm, never key material.
#[derive(Clone)]
pub struct SigningKey {
    pair: Arc<KeyPair>,
    algorithm: KeyAlgorithm,
}

impl SigningKey {
    /// Load a private key from PEM bytes, so users can pass the key files that `openssl`
    /// and other tools write.
    ///
    /// The type is detected from the content: PKCS#1 "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY"
    /// (P-256 only; other curves give a clear error), PKCS#8 "PRIVATE KEY" (RSA, EC P-256,
    /// Ed25519), encrypted PKCS#8 "ENCRYPTED PRIVATE KEY" (PBES2), and legacy OpenSSL encrypted
    /// PEM (`Proc-Type: 4,ENCRYPTED` with AES-128/192/256-CBC, DES-EDE3-CBC or DES-CBC).
    /// `passphrase` is needed only for encrypted keys and ignored otherwise. An "EC PARAMETERS"
    /// block before the key is skipped. RSA keys must be 2048, 3072 or 4096 bits.
    pub fn from_pem(pem: &[u8], passphrase: Option<&[u8]>) -> Result<SigningKey, KeyError> {
        let der = pem_input::read_private(pem, passphrase)?;
        let (pair, algorithm) = private_key::load(&der)?;
        Ok(SigningKey {
            pair: Arc::new(pair),
            algorithm,
        })
    }

    /// The key's algorithm, so callers can report it and pick matching verification.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Sign `message` (its SHA-256 digest is taken here), producing the bytes that go into an
    /// artifact's signature (before base64).
    ///
    /// RSA: PKCS#1 v1.5 with SHA-256, deterministic and byte-identical to
    /// `openssl dgst -sha256 -sign`. ECDSA P-256: the 64-byte raw `r||s` form (each half
    /// zero-padded to 32 bytes), not DER; use [`super::ecdsa_raw_to_der`] for DER.
    /// Ed25519: the 64-byte signature over the message itself (pure Ed25519, no prehash).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &*self.pair {
            KeyPair::Rsa(pair) => {
                let mut out = vec![0u8; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .map_err(|_| KeyError::SigningFailed("RSA signing failed".to_string()))?;
                Ok(out)
            }
            KeyPair::Ecdsa(pair) => pair
                .sign(&rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| {
                    KeyError::SigningFailed(
                        "ECDSA signing failed (no system randomness?)".to_string(),
                    )
                }),
            KeyPair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// The matching public key, so a signer can export it (`to_spki_pem`) or check its own
    /// signatures.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let public: &[u8] = match &*self.pair {
            KeyPair::Rsa(pair) => pair.public().as_ref(),
            KeyPair::Ecdsa(pair) => pair.public_key().as_ref(),
            KeyPair::Ed25519(pair) => pair.public_key().as_ref(),
        };
        VerifyingKey::from_ring_bytes(self.algorithm, public)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_keys::{key, openssl_in, Key};
    use crate::crypto::{ecdsa_raw_to_der, VerifyError};

    const MSG: &[u8] = b"manifest contents\nline two\n";

    fn load(k: Key) -> SigningKey {
        SigningKey::from_pem(&key(k), None).unwrap_or_else(|e| panic!("{k:?}: {e}"))
    }

    #[test]
    fn rsa_signatures_are_byte_identical_to_openssl() {
        for (k, bits) in [
            (Key::Rsa2048Pkcs1, 2048),
            (Key::Rsa2048Pkcs8, 2048),
            (Key::Rsa3072Pkcs1, 3072),
            (Key::Rsa4096Pkcs1, 4096),
        ] {
            let signer = load(k);
            assert_eq!(signer.algorithm(), KeyAlgorithm::Rsa { bits });
            let ours = signer.sign(MSG).unwrap();
            assert_eq!(ours.len(), bits / 8);
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("key.pem"), key(k)).unwrap();
            std::fs::write(dir.path().join("msg"), MSG).unwrap();
            let theirs = openssl_in(dir.path(), &["dgst", "-sha256", "-sign", "key.pem", "msg"]);
            assert_eq!(ours, theirs, "{k:?}");
            assert_eq!(
                signer.sign(MSG).unwrap(),
                ours,
                "RSA signing is deterministic"
            );
        }
    }

    /// Our signature verifies with `openssl dgst -verify` (ECDSA after conversion to DER).
    fn openssl_verifies(k: Key, signature: &[u8]) {
        let signer = load(k);
        let dir = tempfile::tempdir().unwrap();
        let pub_pem = signer.verifying_key().unwrap().to_spki_pem();
        std::fs::write(dir.path().join("pub.pem"), pub_pem).unwrap();
        std::fs::write(dir.path().join("msg"), MSG).unwrap();
        std::fs::write(dir.path().join("sig"), signature).unwrap();
        let args: &[&str] = if signer.algorithm() == KeyAlgorithm::Ed25519 {
            &[
                "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg",
                "-sigfile", "sig",
            ]
        } else {
            &[
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "sig",
                "msg",
            ]
        };
        let out = openssl_in(dir.path(), args);
        assert!(String::from_utf8_lossy(&out).contains("Verified"), "{k:?}");
    }

    #[test]
    fn ecdsa_signatures_are_raw_and_verify_with_openssl() {
        for k in [Key::EcSec1, Key::EcPkcs8, Key::EcSec1WithParams] {
            let signer = load(k);
            let raw = signer.sign(MSG).unwrap();
            assert_eq!(raw.len(), 64);
            let raw: [u8; 64] = raw.try_into().unwrap();
            openssl_verifies(k, &ecdsa_raw_to_der(&raw));
            signer.verifying_key().unwrap().verify(MSG, &raw).unwrap();
        }
    }

    #[test]
    fn ed25519_signatures_verify_with_openssl() {
        let signer = load(Key::Ed25519Pkcs8);
        let sig = signer.sign(MSG).unwrap();
        assert_eq!(sig.len(), 64);
        openssl_verifies(Key::Ed25519Pkcs8, &sig);
        assert_eq!(signer.sign(MSG).unwrap(), sig, "ed25519 is deterministic");
    }

    #[test]
    fn rsa_signature_verifies_with_openssl() {
        let sig = load(Key::Rsa3072Pkcs1).sign(MSG).unwrap();
        openssl_verifies(Key::Rsa3072Pkcs1, &sig);
    }

    #[test]
    fn encrypted_keys_need_the_right_passphrase() {
        for k in [
            Key::Rsa2048Pkcs8Encrypted,
            Key::Rsa2048LegacyAes256,
            Key::Rsa2048LegacyAes128,
            Key::Rsa2048LegacyAes192,
            Key::Rsa2048LegacyDes3,
            Key::EcLegacyAes256,
            Key::EcPkcs8Encrypted,
            Key::EcPkcs8Des3Sha1,
            Key::Ed25519Pkcs8Encrypted,
        ] {
            let pem = key(k);
            let e = SigningKey::from_pem(&pem, None).unwrap_err();
            assert_eq!(
                e.to_string(),
                "encrypted private key needs a passphrase",
                "{k:?}"
            );
            let e = SigningKey::from_pem(&pem, Some(b"wrong")).unwrap_err();
            assert_eq!(
                e.to_string(),
                "wrong passphrase or corrupt encrypted key",
                "{k:?}"
            );
            let signer =
                SigningKey::from_pem(&pem, Some(b"xyz")).unwrap_or_else(|e| panic!("{k:?}: {e}"));
            let sig = signer.sign(MSG).unwrap();
            signer.verifying_key().unwrap().verify(MSG, &sig).unwrap();
        }
    }

    #[test]
    fn crlf_files_and_leading_text_are_accepted() {
        for k in [Key::Rsa2048LegacyAes256, Key::EcPkcs8Encrypted, Key::EcSec1] {
            let text = String::from_utf8(key(k)).unwrap();
            let crlf = format!(
                "Bag Attributes: from a PKCS#12 export\r\n{}",
                text.replace('\n', "\r\n")
            );
            let signer = SigningKey::from_pem(crlf.as_bytes(), Some(b"xyz"))
                .unwrap_or_else(|e| panic!("{k:?}: {e}"));
            assert_eq!(
                signer.verifying_key().unwrap(),
                SigningKey::from_pem(&key(k), Some(b"xyz"))
                    .unwrap()
                    .verifying_key()
                    .unwrap()
            );
        }
    }

    #[test]
    fn public_key_given_as_private_is_refused() {
        let public = load(Key::EcSec1).verifying_key().unwrap().to_spki_pem();
        let e = SigningKey::from_pem(public.as_bytes(), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "this is a public key; a private key is needed"
        );
    }

    #[test]
    fn big_and_odd_keys_are_refused_clearly() {
        let e = SigningKey::from_pem(&key(Key::EcP384Sec1), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported key type: EC curve secp384r1 (only P-256 is supported)"
        );
        let e = SigningKey::from_pem(&key(Key::EcExplicitParams), None).unwrap_err();
        assert!(e.to_string().contains("explicit curve parameters"), "{e}");
        let e = SigningKey::from_pem(b"not a key", None).unwrap_err();
        assert_eq!(e.to_string(), "not a PEM file");
    }

    #[test]
    fn corrupt_pem_is_reported() {
        let mut pem = key(Key::Rsa2048Pkcs1);
        let mid = pem.len() / 2;
        pem[mid] = b'*';
        let e = SigningKey::from_pem(&pem, None).unwrap_err();
        assert!(matches!(e, KeyError::CorruptPem(_)), "{e}");
    }

    #[test]
    fn wrong_key_does_not_verify() {
        let a = load(Key::Ed25519Pkcs8).sign(MSG).unwrap();
        let other = load(Key::Ed25519Other);
        let e = other.verifying_key().unwrap().verify(MSG, &a).unwrap_err();
        assert!(matches!(e, VerifyError::Mismatch { .. }), "{e}");
    }

    #[test]
    fn debug_shows_no_secrets() {
        let text = format!("{:?}", load(Key::EcSec1));
        assert_eq!(text, "SigningKey { algorithm: EcdsaP256, .. }");
    }
}
