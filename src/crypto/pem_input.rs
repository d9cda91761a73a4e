//! Reading key files: finds the key block in PEM text, tells private from public keys by the
//! PEM label, and removes passphrase protection (legacy PEM and encrypted PKCS#8), yielding the
//! plain DER of the key together with its container format.

use der::Decode;
use zeroize::Zeroizing;

use super::{legacy_pem, KeyError};

/// A private key's DER, decrypted, tagged with its container format.
pub(crate) enum PrivateDer {
    /// PKCS#1 `RSAPrivateKey` ("RSA PRIVATE KEY").
    Pkcs1(Zeroizing<Vec<u8>>),
    /// SEC1 `ECPrivateKey` ("EC PRIVATE KEY").
    Sec1(Zeroizing<Vec<u8>>),
    /// PKCS#8 `PrivateKeyInfo` ("PRIVATE KEY", or decrypted "ENCRYPTED PRIVATE KEY").
    Pkcs8(Zeroizing<Vec<u8>>),
}

/// A public key's DER tagged with its container format.
pub(crate) enum PublicDer {
    /// SubjectPublicKeyInfo ("PUBLIC KEY").
    Spki(Vec<u8>),
    /// PKCS#1 `RSAPublicKey` ("RSA PUBLIC KEY").
    Pkcs1Rsa(Vec<u8>),
}

/// Labels of PEM blocks that hold a private key of some kind.
const PRIVATE_LABELS: &[&str] = &[
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "DSA PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "ANY PRIVATE KEY",
];

/// Labels of PEM blocks that hold a public key.
const PUBLIC_LABELS: &[&str] = &["PUBLIC KEY", "RSA PUBLIC KEY"];

/// Parse all PEM blocks and return the first one that is not mere EC curve parameters
/// (`openssl ecparam -genkey` writes those before the key).
fn key_block(input: &[u8]) -> Result<pem::Pem, KeyError> {
    let blocks = pem::parse_many(input).map_err(|e| KeyError::CorruptPem(pem_error_text(&e)))?;
    if blocks.is_empty() {
        return Err(if contains(input, b"-----BEGIN ") {
            KeyError::CorruptPem("missing or broken END line".to_string())
        } else {
            KeyError::NotPem
        });
    }
    let found = blocks.len();
    blocks
        .into_iter()
        .find(|b| b.tag() != "EC PARAMETERS")
        .ok_or_else(|| {
            KeyError::CorruptPem(format!(
                "only EC PARAMETERS found ({found} block(s)), no key"
            ))
        })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn pem_error_text(e: &pem::PemError) -> String {
    match e {
        pem::PemError::MismatchedTags(b, e) => {
            format!("BEGIN label \"{b}\" does not match END label \"{e}\"")
        }
        pem::PemError::MalformedFraming => "malformed BEGIN/END lines".to_string(),
        pem::PemError::MissingBeginTag => "missing BEGIN line".to_string(),
        pem::PemError::MissingEndTag => "missing END line".to_string(),
        pem::PemError::MissingData => "no data between BEGIN and END lines".to_string(),
        pem::PemError::InvalidData(_) => "body is not valid base64".to_string(),
        pem::PemError::InvalidHeader(h) => format!("invalid header line \"{h}\""),
        pem::PemError::NotUtf8(_) => "label or headers are not UTF-8".to_string(),
    }
}

/// Extra advice for labels we recognise but cannot use.
fn label_hint(label: &str) -> &'static str {
    match label {
        "OPENSSH PRIVATE KEY" => {
            "; convert it with `ssh-keygen -p -m PKCS8 -f FILE` or `openssl pkey`"
        }
        "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE" => {
            "; extract the public key with `openssl x509 -pubkey -noout`"
        }
        _ => "",
    }
}

/// Read a private key from PEM text, decrypting it with `passphrase` if it is encrypted.
pub(crate) fn read_private(
    input: &[u8],
    passphrase: Option<&[u8]>,
) -> Result<PrivateDer, KeyError> {
    let block = key_block(input)?;
    let label = block.tag().to_string();
    if PUBLIC_LABELS.contains(&label.as_str()) {
        return Err(KeyError::PublicKeyGiven);
    }
    match label.as_str() {
        "DSA PRIVATE KEY" => return Err(KeyError::UnsupportedKey("DSA".to_string())),
        "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {}
        _ => {
            return Err(KeyError::UnsupportedPem {
                hint: label_hint(&label).to_string(),
                label,
            })
        }
    }
    let legacy_encrypted = legacy_pem::is_encrypted(block.headers());
    let headers = block.headers().clone();
    let body = Zeroizing::new(block.into_contents());
    let der = if legacy_encrypted {
        legacy_pem::decrypt(&headers, &body, passphrase)?
    } else {
        body
    };
    Ok(match label.as_str() {
        "RSA PRIVATE KEY" => PrivateDer::Pkcs1(der),
        "EC PRIVATE KEY" => PrivateDer::Sec1(der),
        "PRIVATE KEY" => PrivateDer::Pkcs8(der),
        _ => PrivateDer::Pkcs8(decrypt_pkcs8(&der, passphrase)?),
    })
}

/// Decrypt a PKCS#8 `EncryptedPrivateKeyInfo` (PBES2 with PBKDF2 or scrypt and AES-CBC or
/// DES-EDE3-CBC) into a plain `PrivateKeyInfo`.
fn decrypt_pkcs8(der: &[u8], passphrase: Option<&[u8]>) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(der)
        .map_err(|e| KeyError::malformed("encrypted PKCS#8 private key", e))?;
    let passphrase = passphrase.ok_or(KeyError::PassphraseNeeded)?;
    match info.decrypt(passphrase) {
        Ok(doc) => Ok(Zeroizing::new(doc.as_bytes().to_vec())),
        Err(pkcs8::Error::EncryptedPrivateKey(e)) => Err(match e {
            pkcs8::pkcs5::Error::DecryptFailed => KeyError::WrongPassphrase,
            pkcs8::pkcs5::Error::UnsupportedAlgorithm { oid } => {
                KeyError::UnsupportedEncryption(format!(
                    "PKCS#8 algorithm {} (supported: PBES2 with AES-CBC or DES-EDE3-CBC)",
                    oid
                ))
            }
            pkcs8::pkcs5::Error::NoPbes1CryptSupport => KeyError::UnsupportedEncryption(
                "PKCS#8 PBES1 (re-encrypt with `openssl pkcs8 -topk8 -v2 aes-256-cbc`)".to_string(),
            ),
            other => KeyError::UnsupportedEncryption(format!("PKCS#8: {other}")),
        }),
        // The plaintext did not parse as DER: with CBC and a wrong key this is what happens
        // when the padding check passes by chance.
        Err(pkcs8::Error::Asn1(_)) => Err(KeyError::WrongPassphrase),
        Err(other) => Err(KeyError::malformed("encrypted PKCS#8 private key", other)),
    }
}

/// Read a public key from PEM text; private keys are refused with a message saying so.
pub(crate) fn read_public(input: &[u8]) -> Result<PublicDer, KeyError> {
    let block = key_block(input)?;
    let label = block.tag();
    if PRIVATE_LABELS.contains(&label) {
        return Err(KeyError::PrivateKeyGiven);
    }
    match label {
        "PUBLIC KEY" => Ok(PublicDer::Spki(block.into_contents())),
        "RSA PUBLIC KEY" => Ok(PublicDer::Pkcs1Rsa(block.into_contents())),
        _ => Err(KeyError::UnsupportedPem {
            label: label.to_string(),
            hint: label_hint(label).to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "MAA=";

    fn block(label: &str) -> String {
        format!("-----BEGIN {label}-----\n{BODY}\n-----END {label}-----\n")
    }

    #[test]
    fn labels_select_the_container() {
        let d = read_private(block("RSA PRIVATE KEY").as_bytes(), None).unwrap();
        assert!(matches!(d, PrivateDer::Pkcs1(ref v) if v[..] == [0x30, 0]));
        let d = read_private(block("EC PRIVATE KEY").as_bytes(), None).unwrap();
        assert!(matches!(d, PrivateDer::Sec1(_)));
        let d = read_private(block("PRIVATE KEY").as_bytes(), None).unwrap();
        assert!(matches!(d, PrivateDer::Pkcs8(_)));
        let d = read_public(block("PUBLIC KEY").as_bytes()).unwrap();
        assert!(matches!(d, PublicDer::Spki(_)));
        let d = read_public(block("RSA PUBLIC KEY").as_bytes()).unwrap();
        assert!(matches!(d, PublicDer::Pkcs1Rsa(_)));
    }

    #[test]
    fn ec_parameters_block_is_skipped() {
        let text = format!("{}{}", block("EC PARAMETERS"), block("EC PRIVATE KEY"));
        let d = read_private(text.as_bytes(), None).unwrap();
        assert!(matches!(d, PrivateDer::Sec1(_)));
        let only = read_private(block("EC PARAMETERS").as_bytes(), None);
        assert!(matches!(only, Err(KeyError::CorruptPem(_))));
    }

    #[test]
    fn wrong_kind_of_key_is_reported() {
        for label in ["PUBLIC KEY", "RSA PUBLIC KEY"] {
            let e = read_private(block(label).as_bytes(), None).err().unwrap();
            assert_eq!(
                e.to_string(),
                "this is a public key; a private key is needed"
            );
        }
        for label in PRIVATE_LABELS {
            let e = read_public(block(label).as_bytes()).err().unwrap();
            assert_eq!(
                e.to_string(),
                "this is a private key; a public key is needed"
            );
        }
    }

    #[test]
    fn unusable_blocks_are_named() {
        let e = read_public(block("CERTIFICATE").as_bytes()).err().unwrap();
        assert!(e
            .to_string()
            .starts_with("unsupported PEM block \"CERTIFICATE\""));
        assert!(e.to_string().contains("openssl x509 -pubkey"));
        let e = read_private(block("OPENSSH PRIVATE KEY").as_bytes(), None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("ssh-keygen"), "{e}");
        let e = read_private(block("DSA PRIVATE KEY").as_bytes(), None)
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "unsupported key type: DSA");
    }

    #[test]
    fn not_pem_and_corrupt_pem() {
        assert!(matches!(
            read_private(b"hello", None),
            Err(KeyError::NotPem)
        ));
        assert!(matches!(read_public(b""), Err(KeyError::NotPem)));
        assert!(matches!(
            read_public(&[0x30, 0x82, 1, 2]),
            Err(KeyError::NotPem)
        ));
        let bad64 = "-----BEGIN PUBLIC KEY-----\nMA*A\n-----END PUBLIC KEY-----\n";
        let e = read_public(bad64.as_bytes()).err().unwrap();
        assert_eq!(e.to_string(), "corrupt PEM: body is not valid base64");
        let no_end = "-----BEGIN PUBLIC KEY-----\nMAA=\n";
        let e = read_public(no_end.as_bytes()).err().unwrap();
        assert!(matches!(e, KeyError::CorruptPem(_)), "{e}");
        let mismatch = "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PRIVATE KEY-----\n";
        let e = read_public(mismatch.as_bytes()).err().unwrap();
        assert!(e.to_string().contains("does not match"), "{e}");
    }

    #[test]
    fn encrypted_pkcs8_needs_passphrase_and_rejects_garbage() {
        let e = read_private(block("ENCRYPTED PRIVATE KEY").as_bytes(), Some(b"x"))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("malformed encrypted PKCS#8 private key"),
            "{e}"
        );
    }
}
