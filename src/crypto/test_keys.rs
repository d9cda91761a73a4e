//! Test support: keys made on the fly with the `openssl` command (generated once per test run
//! and cached in memory), plus helpers to run `openssl` for cross-checks.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The keys the tests use. Variants derived from another key (e.g. `Rsa2048Pkcs1` from
/// `Rsa2048Pkcs8`) hold the same key material in a different container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Rsa2048Pkcs8,
    Rsa2048Pkcs1,
    Rsa3072Pkcs1,
    Rsa4096Pkcs1,
    Rsa1024Pkcs1,
    Rsa2048Pkcs8Encrypted,
    Rsa2048LegacyAes128,
    Rsa2048LegacyAes192,
    Rsa2048LegacyAes256,
    Rsa2048LegacyDes3,
    EcSec1,
    EcSec1WithParams,
    EcPkcs8,
    EcPkcs8Encrypted,
    EcPkcs8Des3Sha1,
    EcLegacyAes256,
    EcP384Sec1,
    EcP384Pkcs8,
    EcExplicitParams,
    Ed25519Pkcs8,
    Ed25519Other,
    Ed25519Pkcs8Encrypted,
    Ed448Pkcs8,
}

const COUNT: usize = Key::Ed448Pkcs8 as usize + 1;
static CACHE: [OnceLock<Vec<u8>>; COUNT] = [const { OnceLock::new() }; COUNT];

/// The PEM text of a test key (encrypted ones use the passphrase "xyz").
pub(crate) fn key(k: Key) -> Vec<u8> {
    CACHE[k as usize].get_or_init(|| generate(k)).clone()
}

fn generate(k: Key) -> Vec<u8> {
    const PASS: &str = "pass:xyz";
    let rsa = |bits: &str| fresh(&["genpkey", "-algorithm", "RSA", "-pkeyopt", bits]);
    let traditional = |base| derive(base, &["rsa", "-traditional"]);
    let topk8 = |base| {
        derive(
            base,
            &["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", PASS],
        )
    };
    let legacy = |cipher| {
        derive(
            Key::Rsa2048Pkcs8,
            &["rsa", "-traditional", cipher, "-passout", PASS],
        )
    };
    match k {
        Key::Rsa2048Pkcs8 => rsa("rsa_keygen_bits:2048"),
        Key::Rsa2048Pkcs1 => traditional(Key::Rsa2048Pkcs8),
        Key::Rsa3072Pkcs1 => derive_pem(&rsa("rsa_keygen_bits:3072"), &["rsa", "-traditional"]),
        Key::Rsa4096Pkcs1 => derive_pem(&rsa("rsa_keygen_bits:4096"), &["rsa", "-traditional"]),
        Key::Rsa1024Pkcs1 => derive_pem(&rsa("rsa_keygen_bits:1024"), &["rsa", "-traditional"]),
        Key::Rsa2048Pkcs8Encrypted => topk8(Key::Rsa2048Pkcs8),
        Key::Rsa2048LegacyAes128 => legacy("-aes128"),
        Key::Rsa2048LegacyAes192 => legacy("-aes192"),
        Key::Rsa2048LegacyAes256 => legacy("-aes256"),
        Key::Rsa2048LegacyDes3 => legacy("-des3"),
        Key::EcSec1 => fresh(&["ecparam", "-name", "prime256v1", "-genkey", "-noout"]),
        Key::EcSec1WithParams => fresh(&["ecparam", "-name", "prime256v1", "-genkey"]),
        Key::EcPkcs8 => derive(Key::EcSec1, &["pkcs8", "-topk8", "-nocrypt"]),
        Key::EcPkcs8Encrypted => topk8(Key::EcSec1),
        Key::EcPkcs8Des3Sha1 => derive(
            Key::EcSec1,
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "des3",
                "-v2prf",
                "hmacWithSHA1",
                "-passout",
                PASS,
            ],
        ),
        Key::EcLegacyAes256 => derive(Key::EcSec1, &["ec", "-aes256", "-passout", PASS]),
        Key::EcP384Sec1 => fresh(&["ecparam", "-name", "secp384r1", "-genkey", "-noout"]),
        Key::EcP384Pkcs8 => derive(Key::EcP384Sec1, &["pkcs8", "-topk8", "-nocrypt"]),
        Key::EcExplicitParams => derive(Key::EcSec1, &["ec", "-param_enc", "explicit"]),
        Key::Ed25519Pkcs8 | Key::Ed25519Other => fresh(&["genpkey", "-algorithm", "ed25519"]),
        Key::Ed25519Pkcs8Encrypted => topk8(Key::Ed25519Pkcs8),
        Key::Ed448Pkcs8 => fresh(&["genpkey", "-algorithm", "ed448"]),
    }
}

/// Run `openssl ARGS -out out.pem` in a scratch directory and return the output file.
fn fresh(args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut all = args.to_vec();
    all.extend(["-out", "out.pem"]);
    openssl_in(dir.path(), &all);
    std::fs::read(dir.path().join("out.pem")).unwrap()
}

/// Run `openssl ARGS -in in.pem -out out.pem` on another test key's PEM.
pub(crate) fn derive(base: Key, args: &[&str]) -> Vec<u8> {
    derive_pem(&key(base), args)
}

/// Run `openssl ARGS -in in.pem -out out.pem` on the given PEM text.
pub(crate) fn derive_pem(input: &[u8], args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.pem"), input).unwrap();
    let mut all = args.to_vec();
    all.extend(["-in", "in.pem", "-out", "out.pem"]);
    openssl_in(dir.path(), &all);
    std::fs::read(dir.path().join("out.pem")).unwrap()
}

/// Run `openssl` in a scratch directory; panics (failing the test) if it fails.
pub(crate) fn openssl(args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    openssl_in(dir.path(), args)
}

/// Run `openssl` in `dir` and return its standard output; panics if it cannot run or fails.
pub(crate) fn openssl_in(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the tests need the `openssl` command on PATH");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_share_material_and_labels_are_as_expected() {
        let pkcs1 = String::from_utf8(key(Key::Rsa2048Pkcs1)).unwrap();
        assert!(
            pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
            "{pkcs1}"
        );
        let sec1 = String::from_utf8(key(Key::EcSec1)).unwrap();
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let legacy = String::from_utf8(key(Key::EcLegacyAes256)).unwrap();
        assert!(legacy.contains("Proc-Type: 4,ENCRYPTED"), "{legacy}");
        assert!(legacy.contains("DEK-Info: AES-256-CBC,"), "{legacy}");
        let enc = String::from_utf8(key(Key::Ed25519Pkcs8Encrypted)).unwrap();
        assert!(enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert_ne!(key(Key::Ed25519Pkcs8), key(Key::Ed25519Other));
    }
}
