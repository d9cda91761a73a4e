//! Decryption of OpenSSL's legacy encrypted PEM (`Proc-Type: 4,ENCRYPTED` with a `DEK-Info`
//! header), as written by `openssl rsa -aes256` or `openssl ec -aes256` without `-topk8`.
//!
//! The cipher key is derived with OpenSSL's `EVP_BytesToKey` (MD5, one iteration, the first
//! eight IV bytes as salt); the body is CBC-encrypted with PKCS#7 padding.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
use md5::{Digest, Md5};
use zeroize::Zeroizing;

use super::KeyError;

/// Ciphers that OpenSSL offers for legacy PEM encryption and that we can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cipher {
    Aes128,
    Aes192,
    Aes256,
    DesEde3,
    Des,
}

impl Cipher {
    fn from_name(name: &str) -> Option<Cipher> {
        match name.trim().to_ascii_uppercase().as_str() {
            "AES-128-CBC" => Some(Cipher::Aes128),
            "AES-192-CBC" => Some(Cipher::Aes192),
            "AES-256-CBC" => Some(Cipher::Aes256),
            "DES-EDE3-CBC" => Some(Cipher::DesEde3),
            "DES-CBC" => Some(Cipher::Des),
            _ => None,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128 => 16,
            Cipher::Aes192 | Cipher::DesEde3 => 24,
            Cipher::Aes256 => 32,
            Cipher::Des => 8,
        }
    }

    fn block_len(self) -> usize {
        match self {
            Cipher::Aes128 | Cipher::Aes192 | Cipher::Aes256 => 16,
            Cipher::DesEde3 | Cipher::Des => 8,
        }
    }
}

/// Whether a PEM block carries legacy encryption headers (then its body must be decrypted).
pub(crate) fn is_encrypted(headers: &pem::HeaderMap) -> bool {
    headers.get("Proc-Type").is_some() || headers.get("DEK-Info").is_some()
}

/// Decrypt the body of a legacy encrypted PEM block into the plain key DER.
pub(crate) fn decrypt(
    headers: &pem::HeaderMap,
    body: &[u8],
    passphrase: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    const WHAT: &str = "encrypted PEM headers";
    let proc_type = headers
        .get("Proc-Type")
        .ok_or_else(|| KeyError::malformed(WHAT, "DEK-Info without Proc-Type"))?;
    let proc_type_kind = proc_type.split(',').nth(1).map(str::trim);
    if proc_type_kind != Some("ENCRYPTED") {
        return Err(KeyError::UnsupportedEncryption(format!(
            "PEM Proc-Type \"{}\"",
            proc_type.trim()
        )));
    }
    let dek_info = headers
        .get("DEK-Info")
        .ok_or_else(|| KeyError::malformed(WHAT, "Proc-Type ENCRYPTED without DEK-Info"))?;
    let (cipher_name, iv_hex) = dek_info
        .split_once(',')
        .ok_or_else(|| KeyError::malformed(WHAT, "DEK-Info has no IV"))?;
    let cipher = Cipher::from_name(cipher_name).ok_or_else(|| {
        KeyError::UnsupportedEncryption(format!(
            "PEM cipher {} (supported: AES-128/192/256-CBC, DES-EDE3-CBC, DES-CBC)",
            cipher_name.trim()
        ))
    })?;
    let iv = hex::decode(iv_hex.trim())
        .map_err(|_| KeyError::malformed(WHAT, "DEK-Info IV is not hexadecimal"))?;
    if iv.len() != cipher.block_len() {
        return Err(KeyError::malformed(
            WHAT,
            format!(
                "DEK-Info IV has {} bytes, expected {}",
                iv.len(),
                cipher.block_len()
            ),
        ));
    }
    let passphrase = passphrase.ok_or(KeyError::PassphraseNeeded)?;
    if body.is_empty() || body.len() % cipher.block_len() != 0 {
        return Err(KeyError::malformed(
            "encrypted PEM body",
            "length is not a multiple of the cipher block size",
        ));
    }
    let key = evp_bytes_to_key(passphrase, &iv[..8], cipher.key_len());
    let plain = cbc_decrypt(cipher, &key, &iv, body)?;
    if !is_der_sequence(&plain) {
        return Err(KeyError::WrongPassphrase);
    }
    Ok(plain)
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration: D_i = MD5(D_{i-1} || pass || salt).
fn evp_bytes_to_key(passphrase: &[u8], salt: &[u8], key_len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(key_len + 16));
    let mut previous = Zeroizing::new([0u8; 16]);
    let mut first = true;
    while out.len() < key_len {
        let mut hasher = Md5::new();
        if !first {
            hasher.update(&previous[..]);
        }
        hasher.update(passphrase);
        hasher.update(salt);
        previous.copy_from_slice(&hasher.finalize()[..]);
        out.extend_from_slice(&previous[..]);
        first = false;
    }
    out.truncate(key_len);
    out
}

fn cbc_decrypt(
    cipher: Cipher,
    key: &[u8],
    iv: &[u8],
    body: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let mut buf = Zeroizing::new(body.to_vec());
    let bad_key = |_| KeyError::malformed("encrypted PEM headers", "bad key or IV length");
    let plain_len = match cipher {
        Cipher::Aes128 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        Cipher::Aes192 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        Cipher::Aes256 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        Cipher::DesEde3 => cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
        Cipher::Des => cbc::Decryptor::<des::Des>::new_from_slices(key, iv)
            .map_err(bad_key)?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map(<[u8]>::len),
    }
    .map_err(|_| KeyError::WrongPassphrase)?;
    buf.truncate(plain_len);
    Ok(buf)
}

/// Whether `data` is exactly one DER SEQUENCE (tag and length consistent with the data size).
/// A wrong passphrase yields random bytes that almost never pass this check.
pub(crate) fn is_der_sequence(data: &[u8]) -> bool {
    let Some((&0x30, rest)) = data.split_first() else {
        return false;
    };
    let Some((&first, rest)) = rest.split_first() else {
        return false;
    };
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n || rest[0] == 0 {
            return false;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        if len < 0x80 {
            return false;
        }
        (len, &rest[n..])
    };
    len == rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_keys::openssl;

    fn headers(lines: &[(&str, &str)]) -> pem::HeaderMap {
        let mut text = String::from("-----BEGIN RSA PRIVATE KEY-----\n");
        for (k, v) in lines {
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push_str("\nAAAA\n-----END RSA PRIVATE KEY-----\n");
        pem::parse(text).unwrap().headers().clone()
    }

    #[test]
    fn key_derivation_matches_openssl_enc() {
        // `openssl enc -P -md md5` uses EVP_BytesToKey with MD5 and one iteration, exactly the
        // legacy PEM key derivation.
        let out = openssl(&[
            "enc",
            "-aes-256-cbc",
            "-P",
            "-md",
            "md5",
            "-S",
            "0102030405060708",
            "-pass",
            "pass:xyz",
        ]);
        let text = String::from_utf8(out).unwrap();
        let key_hex = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("key="))
            .expect("openssl enc -P prints key=");
        let ours = evp_bytes_to_key(b"xyz", &[1, 2, 3, 4, 5, 6, 7, 8], 32);
        assert_eq!(hex::encode_upper(&ours[..]), key_hex.trim());
        let short = evp_bytes_to_key(b"xyz", &[1, 2, 3, 4, 5, 6, 7, 8], 8);
        assert_eq!(&short[..], &ours[..8]);
    }

    #[test]
    fn der_sequence_check() {
        assert!(is_der_sequence(&[0x30, 0x00]));
        assert!(is_der_sequence(&[0x30, 0x02, 0x05, 0x00]));
        assert!(!is_der_sequence(&[0x30, 0x03, 0x05, 0x00]));
        assert!(!is_der_sequence(&[0x31, 0x00]));
        assert!(!is_der_sequence(&[]));
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend(std::iter::repeat_n(0u8, 256));
        assert!(is_der_sequence(&long));
        long.push(0);
        assert!(!is_der_sequence(&long));
        // Non-minimal long form is not DER.
        assert!(!is_der_sequence(&[0x30, 0x81, 0x01, 0x00]));
    }

    #[test]
    fn header_errors() {
        let no_pass = decrypt(
            &headers(&[
                ("Proc-Type", "4,ENCRYPTED"),
                ("DEK-Info", "AES-128-CBC,00112233445566778899AABBCCDDEEFF"),
            ]),
            &[0u8; 16],
            None,
        );
        assert!(matches!(no_pass, Err(KeyError::PassphraseNeeded)));

        let bad_cipher = decrypt(
            &headers(&[
                ("Proc-Type", "4,ENCRYPTED"),
                (
                    "DEK-Info",
                    "CAMELLIA-128-CBC,00112233445566778899AABBCCDDEEFF",
                ),
            ]),
            &[0u8; 16],
            Some(b"x"),
        )
        .unwrap_err();
        assert!(
            bad_cipher.to_string().contains("CAMELLIA-128-CBC"),
            "{bad_cipher}"
        );

        let short_iv = decrypt(
            &headers(&[
                ("Proc-Type", "4,ENCRYPTED"),
                ("DEK-Info", "AES-256-CBC,0011"),
            ]),
            &[0u8; 16],
            Some(b"x"),
        )
        .unwrap_err();
        assert!(
            short_iv.to_string().contains("IV has 2 bytes"),
            "{short_iv}"
        );

        let wrong = decrypt(
            &headers(&[
                ("Proc-Type", "4,ENCRYPTED"),
                ("DEK-Info", "AES-128-CBC,00112233445566778899AABBCCDDEEFF"),
            ]),
            &[0x5au8; 32],
            Some(b"x"),
        );
        assert!(matches!(wrong, Err(KeyError::WrongPassphrase)), "{wrong:?}");
    }
}
