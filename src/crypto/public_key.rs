//! Reads public keys (SubjectPublicKeyInfo or PKCS#1 `RSAPublicKey`) into the form `ring`
//! verifies with, checking algorithm, curve and size so unsupported keys get a clear error.

use der::Decode;

use super::pem_input::{self, PublicDer};
use super::{oids, KeyAlgorithm, KeyError};

/// A parsed public key: its algorithm and ring's representation of it (PKCS#1 `RSAPublicKey`
/// DER, the uncompressed P-256 point, or the 32 Ed25519 bytes).
pub(crate) type Parsed = (KeyAlgorithm, Vec<u8>);

/// Read a public key from PEM ("PUBLIC KEY" or "RSA PUBLIC KEY").
pub(crate) fn from_pem(pem: &[u8]) -> Result<Parsed, KeyError> {
    match pem_input::read_public(pem)? {
        PublicDer::Spki(der) => from_spki_der(&der),
        PublicDer::Pkcs1Rsa(der) => rsa(&der),
    }
}

fn rsa(pkcs1: &[u8]) -> Result<Parsed, KeyError> {
    let (key, bits) = oids::rsa_public_key(pkcs1, oids::RSA_MAX_VERIFY_BITS)?;
    Ok((KeyAlgorithm::Rsa { bits }, key))
}

/// Read a DER SubjectPublicKeyInfo; private-key DER is recognised and refused as such.
pub(crate) fn from_spki_der(der: &[u8]) -> Result<Parsed, KeyError> {
    const WHAT: &str = "public key (SubjectPublicKeyInfo)";
    let spki = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|e| {
        if looks_like_private_key(der) {
            KeyError::PrivateKeyGiven
        } else {
            KeyError::malformed(WHAT, e)
        }
    })?;
    let oid = spki.algorithm.oid;
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| KeyError::malformed(WHAT, "key bit string has unused bits"))?;
    if oid == oids::RSA_ENCRYPTION {
        rsa(bits)
    } else if oid == oids::EC_PUBLIC_KEY {
        let curve = oids::ec_curve_from_params(spki.algorithm.parameters)?;
        oids::require_p256(&curve)?;
        from_ring_bytes(KeyAlgorithm::EcdsaP256, bits)
    } else if oid == oids::ED25519 {
        if spki.algorithm.parameters.is_some() {
            return Err(KeyError::malformed(
                WHAT,
                "ed25519 key has algorithm parameters",
            ));
        }
        from_ring_bytes(KeyAlgorithm::Ed25519, bits)
    } else {
        Err(KeyError::UnsupportedKey(oids::algorithm_name(&oid)))
    }
}

/// Check a key given in ring's representation and return it normalised.
pub(crate) fn from_ring_bytes(algorithm: KeyAlgorithm, bytes: &[u8]) -> Result<Parsed, KeyError> {
    match algorithm {
        KeyAlgorithm::Rsa { .. } => rsa(bytes),
        KeyAlgorithm::EcdsaP256 => match (bytes.len(), bytes.first()) {
            (65, Some(0x04)) => Ok((algorithm, bytes.to_vec())),
            (33, Some(0x02 | 0x03)) => Err(KeyError::UnsupportedKey(
                "compressed EC public key (convert it with `openssl ec -pubin -conv_form uncompressed`)"
                    .to_string(),
            )),
            (len, _) => Err(KeyError::malformed(
                "EC public key",
                format!("{len}-byte point is not an uncompressed P-256 point"),
            )),
        },
        KeyAlgorithm::Ed25519 => {
            if bytes.len() != 32 {
                return Err(KeyError::malformed(
                    "ed25519 public key",
                    format!("{} bytes instead of 32", bytes.len()),
                ));
            }
            Ok((algorithm, bytes.to_vec()))
        }
    }
}

/// Whether DER that is not a SubjectPublicKeyInfo is a private key (PKCS#8, PKCS#1, SEC1), to
/// tell the user they passed the wrong file.
fn looks_like_private_key(der: &[u8]) -> bool {
    pkcs8::PrivateKeyInfoRef::from_der(der).is_ok()
        || pkcs8::EncryptedPrivateKeyInfoRef::from_der(der).is_ok()
        || pkcs1::RsaPrivateKey::<der::asn1::UintRef<'_>>::from_der(der).is_ok()
        || sec1::EcPrivateKey::from_der(der).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_keys::{derive, key, Key};
    use crate::crypto::{SigningKey, VerifyingKey};

    fn public(k: Key) -> VerifyingKey {
        SigningKey::from_pem(&key(k), None)
            .unwrap()
            .verifying_key()
            .unwrap()
    }

    #[test]
    fn openssl_public_pems_load_and_match_ours_exactly() {
        for k in [Key::Rsa2048Pkcs1, Key::EcSec1, Key::Ed25519Pkcs8] {
            let theirs = derive(k, &["pkey", "-pubout"]);
            let loaded = VerifyingKey::from_pem(&theirs).unwrap();
            let ours = public(k);
            assert_eq!(loaded, ours, "{k:?}");
            assert_eq!(ours.to_spki_pem().as_bytes(), &theirs[..], "{k:?}");
            assert_eq!(
                VerifyingKey::from_spki_der(&ours.to_spki_der()).unwrap(),
                ours
            );
        }
        let pkcs1 = derive(Key::Rsa2048Pkcs1, &["rsa", "-RSAPublicKey_out"]);
        assert!(pkcs1.starts_with(b"-----BEGIN RSA PUBLIC KEY-----"));
        let loaded = VerifyingKey::from_pem(&pkcs1).unwrap();
        assert_eq!(loaded, public(Key::Rsa2048Pkcs1));
        assert_eq!(loaded.algorithm().to_string(), "RSA-2048");
    }

    #[test]
    fn private_keys_are_refused_as_public() {
        for k in [
            Key::Rsa2048Pkcs1,
            Key::EcSec1,
            Key::Ed25519Pkcs8,
            Key::EcLegacyAes256,
        ] {
            let e = VerifyingKey::from_pem(&key(k)).unwrap_err();
            assert_eq!(
                e.to_string(),
                "this is a private key; a public key is needed"
            );
        }
        let der = pem::parse(key(Key::EcPkcs8)).unwrap().into_contents();
        let e = VerifyingKey::from_spki_der(&der).unwrap_err();
        assert!(matches!(e, KeyError::PrivateKeyGiven), "{e}");
    }

    #[test]
    fn unsupported_public_keys_are_named() {
        let p384 = derive(Key::EcP384Sec1, &["ec", "-pubout"]);
        let e = VerifyingKey::from_pem(&p384).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported key type: EC curve secp384r1 (only P-256 is supported)"
        );
        let small = derive(Key::Rsa1024Pkcs1, &["rsa", "-pubout"]);
        let e = VerifyingKey::from_pem(&small).unwrap_err();
        assert!(e.to_string().contains("RSA-1024"), "{e}");
        let ed448 = derive(Key::Ed448Pkcs8, &["pkey", "-pubout"]);
        let e = VerifyingKey::from_pem(&ed448).unwrap_err();
        assert_eq!(e.to_string(), "unsupported key type: ed448");
        let compressed = derive(Key::EcSec1, &["ec", "-pubout", "-conv_form", "compressed"]);
        let e = VerifyingKey::from_pem(&compressed).unwrap_err();
        assert!(e.to_string().contains("compressed EC public key"), "{e}");
        let e = VerifyingKey::from_spki_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).unwrap_err();
        assert!(e.to_string().starts_with("malformed public key"), "{e}");
    }
}
