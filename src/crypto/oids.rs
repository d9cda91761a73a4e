//! Object identifiers and small ASN.1 helpers shared by private- and public-key parsing:
//! naming algorithms and curves for error messages, RSA modulus sizes, and SPKI encoding.

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use super::{KeyAlgorithm, KeyError};

/// rsaEncryption (PKCS#1).
pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey (X9.62).
pub(crate) const EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// prime256v1 / secp256r1 / NIST P-256.
pub(crate) const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// id-Ed25519 (RFC 8410).
pub(crate) const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Smallest RSA modulus accepted anywhere.
pub(crate) const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted for verification (ring's limit).
pub(crate) const RSA_MAX_VERIFY_BITS: usize = 8192;
/// Largest RSA modulus accepted for signing (ring's limit for private keys).
pub(crate) const RSA_MAX_SIGN_BITS: usize = 4096;

/// Human name of a key algorithm OID, for "unsupported key type" messages.
pub(crate) fn algorithm_name(oid: &ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.2.840.113549.1.1.10" => "RSA-PSS",
        "1.2.840.10045.2.1" => "EC",
        "1.3.101.112" => "ed25519",
        "1.3.101.113" => "ed448",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.2.840.10040.4.1" => "DSA",
        "1.2.840.10046.2.1" => "DH",
        "1.2.840.113549.1.3.1" => "DH",
        "1.3.132.1.12" => "ECDH",
        "1.2.156.10197.1.301" => "SM2",
        other => return format!("algorithm OID {other}"),
    };
    name.to_string()
}

/// Human name of a named-curve OID, for "only P-256 is supported" messages.
pub(crate) fn curve_name(oid: &ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.10045.3.1.7" => "prime256v1",
        "1.3.132.0.34" => "secp384r1",
        "1.3.132.0.35" => "secp521r1",
        "1.3.132.0.33" => "secp224r1",
        "1.3.132.0.10" => "secp256k1",
        "1.2.840.10045.3.1.1" => "prime192v1",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1",
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1",
        "1.2.156.10197.1.301" => "SM2",
        other => return format!("with OID {other}"),
    };
    name.to_string()
}

/// Check that a named curve is P-256, with the standard error for any other curve.
pub(crate) fn require_p256(curve: &ObjectIdentifier) -> Result<(), KeyError> {
    if *curve == P256 {
        Ok(())
    } else {
        Err(KeyError::UnsupportedKey(format!(
            "EC curve {} (only P-256 is supported)",
            curve_name(curve)
        )))
    }
}

/// The curve named by EC algorithm parameters (`namedCurve` OID), or why there is none.
pub(crate) fn ec_curve_from_params(
    params: Option<AnyRef<'_>>,
) -> Result<ObjectIdentifier, KeyError> {
    let params = params
        .ok_or_else(|| KeyError::UnsupportedKey("EC key without curve parameters".to_string()))?;
    ObjectIdentifier::try_from(params).map_err(|_| {
        KeyError::UnsupportedKey(
            "EC key with explicit curve parameters (only the named curve P-256 is supported)"
                .to_string(),
        )
    })
}

/// Size in bits of a big-endian unsigned integer (leading zero bytes ignored).
pub(crate) fn bit_length(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        None => 0,
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
    }
}

/// Parse a PKCS#1 `RSAPublicKey` and return its canonical DER and modulus size in bits,
/// checking the size is within `RSA_MIN_BITS..=max_bits`.
pub(crate) fn rsa_public_key(der: &[u8], max_bits: usize) -> Result<(Vec<u8>, usize), KeyError> {
    let key = pkcs1::RsaPublicKey::<der::asn1::UintRef<'_>>::from_der(der)
        .map_err(|e| KeyError::malformed("RSA public key", e))?;
    let bits = bit_length(key.modulus.as_bytes());
    check_rsa_bits(bits, max_bits, "")?;
    let canonical = key
        .to_der()
        .map_err(|e| KeyError::malformed("RSA public key", e))?;
    Ok((canonical, bits))
}

/// The standard size check for RSA keys; `purpose` is appended to the message (e.g. " for signing").
pub(crate) fn check_rsa_bits(bits: usize, max_bits: usize, purpose: &str) -> Result<(), KeyError> {
    if bits < RSA_MIN_BITS {
        return Err(KeyError::UnsupportedKey(format!(
            "RSA-{bits}{purpose} (RSA keys need at least {RSA_MIN_BITS} bits)"
        )));
    }
    if bits > max_bits {
        return Err(KeyError::UnsupportedKey(format!(
            "RSA-{bits}{purpose} (at most {max_bits} bits are supported)"
        )));
    }
    Ok(())
}

/// Encode a public key as DER SubjectPublicKeyInfo. `key` is in the form ring uses: PKCS#1
/// `RSAPublicKey` DER for RSA, the uncompressed point for P-256, the 32 raw bytes for Ed25519.
pub(crate) fn encode_spki(algorithm: KeyAlgorithm, key: &[u8]) -> Vec<u8> {
    let p256_der = P256.to_der().expect("encoding a constant OID cannot fail");
    let algorithm_id = match algorithm {
        KeyAlgorithm::Rsa { .. } => AlgorithmIdentifierRef {
            oid: RSA_ENCRYPTION,
            parameters: Some(AnyRef::NULL),
        },
        KeyAlgorithm::EcdsaP256 => AlgorithmIdentifierRef {
            oid: EC_PUBLIC_KEY,
            parameters: Some(
                AnyRef::from_der(&p256_der).expect("decoding a constant OID cannot fail"),
            ),
        },
        KeyAlgorithm::Ed25519 => AlgorithmIdentifierRef {
            oid: ED25519,
            parameters: None,
        },
    };
    let spki = SubjectPublicKeyInfoRef {
        algorithm: algorithm_id,
        subject_public_key: BitStringRef::from_bytes(key)
            .expect("a public key is far below the DER length limit"),
    };
    spki.to_der()
        .expect("encoding a well-formed SubjectPublicKeyInfo cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        let mut n = vec![0u8; 257];
        n[1] = 0xc1;
        assert_eq!(bit_length(&n), 2048);
    }

    #[test]
    fn curve_names_and_p256_check() {
        let p384 = ObjectIdentifier::new_unwrap("1.3.132.0.34");
        assert_eq!(curve_name(&p384), "secp384r1");
        let err = require_p256(&p384).unwrap_err().to_string();
        assert_eq!(
            err,
            "unsupported key type: EC curve secp384r1 (only P-256 is supported)"
        );
        assert!(require_p256(&P256).is_ok());
        let odd = ObjectIdentifier::new_unwrap("1.2.3.4");
        assert_eq!(curve_name(&odd), "with OID 1.2.3.4");
        assert_eq!(algorithm_name(&ED25519), "ed25519");
        assert_eq!(algorithm_name(&odd), "algorithm OID 1.2.3.4");
    }

    #[test]
    fn rsa_size_limits() {
        assert!(check_rsa_bits(2048, RSA_MAX_SIGN_BITS, "").is_ok());
        assert!(check_rsa_bits(4096, RSA_MAX_SIGN_BITS, "").is_ok());
        let small = check_rsa_bits(1024, RSA_MAX_VERIFY_BITS, "").unwrap_err();
        assert_eq!(
            small.to_string(),
            "unsupported key type: RSA-1024 (RSA keys need at least 2048 bits)"
        );
        let big = check_rsa_bits(8192, RSA_MAX_SIGN_BITS, " for signing").unwrap_err();
        assert!(big.to_string().contains("RSA-8192 for signing"), "{big}");
    }

    #[test]
    fn ed25519_spki_has_the_rfc8410_prefix() {
        let der = encode_spki(KeyAlgorithm::Ed25519, &[7u8; 32]);
        // RFC 8410 section 10.1: 302a300506032b6570032100 || key
        let prefix = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        assert_eq!(&der[..12], &prefix);
        assert_eq!(&der[12..], &[7u8; 32]);
    }
}
