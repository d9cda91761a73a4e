//! Keys named on the command line: a PEM file (`-k`), optionally encrypted, or a key in a
//! PKCS#11 token (`--key-pkcs11`).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::artifact::{ManifestSigner, ManifestVerifier};
use crate::crypto::{Pkcs11Key, SigningKey, VerifyingKey};

use super::super::exit::CliError;

/// Flags that name a signing key.
#[derive(Debug, Args, Default)]
pub struct KeyArgs {
    /// Private key (PEM: RSA, ECDSA P-256 or ed25519) to sign with
    #[arg(short = 'k', long = "key")]
    pub key: Option<PathBuf>,
    /// File whose first line is the passphrase of an encrypted private key (default: the
    /// MENDER_ARTIFACT_PASSPHRASE environment variable)
    #[arg(long = "passphrase-file")]
    pub passphrase_file: Option<PathBuf>,
    /// Key in a PKCS#11 token (RFC 7512 URI, e.g.
    /// pkcs11:token=T;object=O?pin-value=1234&module-path=/usr/lib/softhsm/libsofthsm2.so)
    #[arg(long = "key-pkcs11", value_name = "URI", conflicts_with = "key")]
    pub key_pkcs11: Option<String>,
}

impl KeyArgs {
    /// The signer the flags name, if any.
    pub fn signer(&self) -> Result<Option<Box<dyn ManifestSigner>>, CliError> {
        if let Some(uri) = &self.key_pkcs11 {
            let key =
                Pkcs11Key::open(uri).map_err(|e| CliError::usage(format!("--key-pkcs11: {e}")))?;
            return Ok(Some(Box::new(key)));
        }
        match &self.key {
            Some(k) => Ok(Some(Box::new(signing_key(
                k,
                self.passphrase_file.as_deref(),
            )?))),
            None => Ok(None),
        }
    }
}

/// Flags that name a verification key.
#[derive(Debug, Args, Default)]
pub struct VerifyKeyArgs {
    /// Public key (PEM) to verify the signature with
    #[arg(short = 'k', long = "key")]
    pub key: Option<PathBuf>,
    /// Verify with the public key of a PKCS#11 token object (RFC 7512 URI)
    #[arg(long = "key-pkcs11", value_name = "URI", conflicts_with = "key")]
    pub key_pkcs11: Option<String>,
}

impl VerifyKeyArgs {
    /// The verifier the flags name, if any.
    pub fn verifier(&self) -> Result<Option<Box<dyn ManifestVerifier>>, CliError> {
        if let Some(uri) = &self.key_pkcs11 {
            let key = Pkcs11Key::open(uri)
                .and_then(|k| k.verifying_key())
                .map_err(|e| CliError::usage(format!("--key-pkcs11: {e}")))?;
            return Ok(Some(Box::new(key)));
        }
        match &self.key {
            Some(k) => Ok(Some(Box::new(verifying_key(k)?))),
            None => Ok(None),
        }
    }
}

/// Loads the private key at `path`, decrypting it with the passphrase from
/// `passphrase_file` (first line) when given.
pub fn signing_key(path: &Path, passphrase_file: Option<&Path>) -> Result<SigningKey, CliError> {
    let pem =
        std::fs::read(path).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    let pass = match passphrase_file {
        Some(p) => {
            let text =
                std::fs::read(p).map_err(|e| CliError::usage(format!("{}: {e}", p.display())))?;
            let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
            Some(line.strip_suffix(b"\r").unwrap_or(line).to_vec())
        }
        None => std::env::var("MENDER_ARTIFACT_PASSPHRASE")
            .ok()
            .map(String::into_bytes),
    };
    SigningKey::from_pem(&pem, pass.as_deref())
        .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
}

/// Loads the public key at `path`.
pub fn verifying_key(path: &Path) -> Result<VerifyingKey, CliError> {
    let pem =
        std::fs::read(path).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    VerifyingKey::from_pem(&pem).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
}
