//! Turns decrypted private-key DER (PKCS#1, SEC1 or PKCS#8) into `ring` key pairs, checking the
//! algorithm, curve and size first so that unsupported keys get a specific error message.

use der::asn1::{OctetStringRef, UintRef};
use der::Decode;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};

use super::oids;
use super::pem_input::PrivateDer;
use super::{KeyAlgorithm, KeyError};

/// A loaded private key, ready to sign.
pub(crate) enum KeyPair {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// Load a private key of any supported container format.
pub(crate) fn load(der: &PrivateDer) -> Result<(KeyPair, KeyAlgorithm), KeyError> {
    match der {
        PrivateDer::Pkcs1(der) => rsa_from_pkcs1(der),
        PrivateDer::Sec1(der) => ecdsa_from_sec1(der, None),
        PrivateDer::Pkcs8(der) => from_pkcs8(der),
    }
}

/// Words for ring's terse rejection codes.
fn reason(rejected: ring::error::KeyRejected) -> String {
    match rejected.to_string().as_str() {
        "InconsistentComponents" => "the key's components do not belong together".to_string(),
        "InvalidComponent" => "a key component is out of range".to_string(),
        "InvalidEncoding" => "the key encoding is invalid".to_string(),
        "PublicKeyIsMissing" => "the embedded public key is missing".to_string(),
        "TooSmall" => "the key is too small".to_string(),
        "TooLarge" => "the key is too large".to_string(),
        "VersionNotSupported" => "the key format version is not supported".to_string(),
        "WrongAlgorithm" => "the key is for a different algorithm".to_string(),
        "PrivateModulusLenNotMultipleOf512Bits" => {
            "only 2048-, 3072- and 4096-bit RSA keys can sign".to_string()
        }
        other => other.to_lowercase(),
    }
}

fn rsa_from_pkcs1(der: &[u8]) -> Result<(KeyPair, KeyAlgorithm), KeyError> {
    const WHAT: &str = "PKCS#1 RSA private key";
    let parsed = pkcs1::RsaPrivateKey::<UintRef<'_>>::from_der(der)
        .map_err(|e| KeyError::malformed(WHAT, e))?;
    if parsed.other_prime_infos.is_some() {
        return Err(KeyError::UnsupportedKey("multi-prime RSA".to_string()));
    }
    let bits = oids::bit_length(parsed.modulus.as_bytes());
    oids::check_rsa_bits(bits, oids::RSA_MAX_SIGN_BITS, " for signing")?;
    let algorithm = KeyAlgorithm::Rsa { bits };
    let pair = RsaKeyPair::from_der(der).map_err(|e| KeyError::Rejected {
        algorithm,
        reason: reason(e),
    })?;
    // ring does not check the private exponents against the modulus when loading; a key
    // whose numbers do not fit together only fails when it signs. Sign once now, so such a
    // key is refused where it is read rather than when an artifact is signed.
    let mut probe = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        b"probe",
        &mut probe,
    )
    .map_err(|_| KeyError::Rejected {
        algorithm,
        reason: "the key's components do not belong together".to_string(),
    })?;
    Ok((KeyPair::Rsa(pair), algorithm))
}

/// Load a SEC1 `ECPrivateKey`; `outer_curve` is the curve named by an enclosing PKCS#8
/// algorithm identifier, if any.
fn ecdsa_from_sec1(
    der: &[u8],
    outer_curve: Option<der::asn1::ObjectIdentifier>,
) -> Result<(KeyPair, KeyAlgorithm), KeyError> {
    const WHAT: &str = "SEC1 EC private key";
    let parsed = sec1::EcPrivateKey::from_der(der).map_err(|e| {
        if has_explicit_curve(der) {
            KeyError::UnsupportedKey(
                "EC key with explicit curve parameters (only the named curve P-256 is supported)"
                    .to_string(),
            )
        } else {
            KeyError::malformed(WHAT, e)
        }
    })?;
    let inner_curve = parsed.parameters.and_then(|p| p.named_curve());
    let curve = match (inner_curve, outer_curve) {
        (Some(inner), Some(outer)) if inner != outer => {
            return Err(KeyError::malformed(
                "PKCS#8 EC private key",
                "curve in the key does not match the algorithm identifier",
            ))
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => {
            return Err(KeyError::UnsupportedKey(
                "EC private key without curve parameters".to_string(),
            ))
        }
    };
    oids::require_p256(&curve)?;
    let algorithm = KeyAlgorithm::EcdsaP256;
    let scalar = parsed.private_key;
    if scalar.len() > 32 {
        return Err(KeyError::malformed(
            WHAT,
            "private scalar is longer than 32 bytes",
        ));
    }
    // Some encoders drop leading zero bytes; ring wants exactly 32.
    let mut padded = zeroize::Zeroizing::new([0u8; 32]);
    padded[32 - scalar.len()..].copy_from_slice(scalar);
    let public = parsed.public_key.ok_or_else(|| {
        KeyError::UnsupportedKey(
            "EC private key without its public key (re-export it with `openssl ec`)".to_string(),
        )
    })?;
    if public.first() != Some(&0x04) {
        return Err(KeyError::UnsupportedKey(
            "EC private key with a compressed public key (re-export it with `openssl ec -conv_form uncompressed`)"
                .to_string(),
        ));
    }
    let rng = SystemRandom::new();
    let pair = EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &padded[..],
        public,
        &rng,
    )
    .map_err(|e| KeyError::Rejected {
        algorithm,
        reason: reason(e),
    })?;
    Ok((KeyPair::Ecdsa(pair), algorithm))
}

/// Whether a SEC1 key that failed to parse has explicit curve parameters: a `[0]` field holding
/// a SEQUENCE (specifiedCurve) instead of a named-curve OID.
fn has_explicit_curve(der: &[u8]) -> bool {
    let Ok(outer) = der::asn1::AnyRef::from_der(der) else {
        return false;
    };
    let Ok(mut reader) = der::SliceReader::new(outer.value()) else {
        return false;
    };
    while let Ok(item) = der::asn1::AnyRef::decode(&mut reader) {
        let tag = der::Tagged::tag(&item);
        if tag.is_context_specific() && tag.number().value() == 0 {
            return item.value().first() == Some(&0x30);
        }
    }
    false
}

fn from_pkcs8(der: &[u8]) -> Result<(KeyPair, KeyAlgorithm), KeyError> {
    const WHAT: &str = "PKCS#8 private key";
    let info = pkcs8::PrivateKeyInfoRef::from_der(der).map_err(|e| KeyError::malformed(WHAT, e))?;
    let oid = info.algorithm.oid;
    let inner: &OctetStringRef = info.private_key;
    if oid == oids::RSA_ENCRYPTION {
        rsa_from_pkcs1(inner.as_bytes())
    } else if oid == oids::EC_PUBLIC_KEY {
        let curve = oids::ec_curve_from_params(info.algorithm.parameters)?;
        oids::require_p256(&curve)?;
        ecdsa_from_sec1(inner.as_bytes(), Some(curve))
    } else if oid == oids::ED25519 {
        let algorithm = KeyAlgorithm::Ed25519;
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| KeyError::Rejected {
                algorithm,
                reason: reason(e),
            })?;
        Ok((KeyPair::Ed25519(pair), algorithm))
    } else {
        Err(KeyError::UnsupportedKey(oids::algorithm_name(&oid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pem_input::read_private;
    use crate::crypto::test_keys::{key, Key};

    fn load_pem(pem: &[u8], pass: Option<&[u8]>) -> Result<KeyAlgorithm, KeyError> {
        let der = read_private(pem, pass)?;
        load(&der).map(|(_, a)| a)
    }

    #[test]
    fn all_supported_containers_load() {
        let rsa = KeyAlgorithm::Rsa { bits: 2048 };
        assert_eq!(load_pem(&key(Key::Rsa2048Pkcs1), None).unwrap(), rsa);
        assert_eq!(load_pem(&key(Key::Rsa2048Pkcs8), None).unwrap(), rsa);
        let ec = KeyAlgorithm::EcdsaP256;
        assert_eq!(load_pem(&key(Key::EcSec1), None).unwrap(), ec);
        assert_eq!(load_pem(&key(Key::EcSec1WithParams), None).unwrap(), ec);
        assert_eq!(load_pem(&key(Key::EcPkcs8), None).unwrap(), ec);
        assert_eq!(
            load_pem(&key(Key::Ed25519Pkcs8), None).unwrap(),
            KeyAlgorithm::Ed25519
        );
    }

    #[test]
    fn other_curves_and_algorithms_are_refused_by_name() {
        for k in [Key::EcP384Sec1, Key::EcP384Pkcs8] {
            let e = load_pem(&key(k), None).unwrap_err();
            assert_eq!(
                e.to_string(),
                "unsupported key type: EC curve secp384r1 (only P-256 is supported)"
            );
        }
        let e = load_pem(&key(Key::Ed448Pkcs8), None).unwrap_err();
        assert_eq!(e.to_string(), "unsupported key type: ed448");
    }

    #[test]
    fn small_rsa_is_refused() {
        let e = load_pem(&key(Key::Rsa1024Pkcs1), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported key type: RSA-1024 for signing (RSA keys need at least 2048 bits)"
        );
    }

    #[test]
    fn corrupt_der_inside_valid_pem_is_malformed() {
        let pem = pem::Pem::new("EC PRIVATE KEY", vec![0x30, 0x03, 0x02, 0x01, 0x07]);
        let e = load_pem(pem::encode(&pem).as_bytes(), None).unwrap_err();
        assert!(
            e.to_string().starts_with("malformed SEC1 EC private key"),
            "{e}"
        );
        let pem = pem::Pem::new("PRIVATE KEY", vec![0x04, 0x00]);
        let e = load_pem(pem::encode(&pem).as_bytes(), None).unwrap_err();
        assert!(
            e.to_string().starts_with("malformed PKCS#8 private key"),
            "{e}"
        );
        let pem = pem::Pem::new("RSA PRIVATE KEY", vec![0x30, 0x00]);
        let e = load_pem(pem::encode(&pem).as_bytes(), None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("malformed PKCS#1 RSA private key"),
            "{e}"
        );
    }

    /// Found by the `pem_keys` fuzz target: an RSA key with one digit of a private component
    /// changed loaded, then failed to sign.
    #[test]
    fn rsa_key_with_inconsistent_components_is_refused_when_loaded() {
        let pem = include_bytes!(
            "../../tests/fixtures/fuzz-regressions/pem_keys/crash-8c2d78c6cd73acee7c6f8ff7d3e3f1976421ff3e"
        );
        let e = load_pem(pem, None).unwrap_err();
        assert!(
            e.to_string().contains("components do not belong together"),
            "{e}"
        );
    }
}
