//! Connects the key types of `crypto` to the artifact reader and writer.

use super::reader::ManifestVerifier;
use super::writer::ManifestSigner;
use crate::crypto::{Pkcs11Key, SigningKey, VerifyingKey};

impl ManifestSigner for SigningKey {
    fn sign_manifest(&self, manifest: &[u8]) -> Result<Vec<u8>, String> {
        self.sign(manifest).map_err(|e| e.to_string())
    }
}

impl ManifestVerifier for VerifyingKey {
    fn verify_manifest(&self, manifest: &[u8], signature: &[u8]) -> Result<(), String> {
        self.verify(manifest, signature).map_err(|e| e.to_string())
    }
}

impl ManifestSigner for Pkcs11Key {
    fn sign_manifest(&self, manifest: &[u8]) -> Result<Vec<u8>, String> {
        self.sign(manifest).map_err(|e| e.to_string())
    }
}
