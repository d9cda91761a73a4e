//! [`Pkcs11Key`]: signing with a private key that never leaves a PKCS#11 token (HSM, TPM,
//! smart card, SoftHSM), addressed by an RFC 7512 `pkcs11:` URI.
//!
//! Signatures have exactly the form [`super::SigningKey`] produces, so artifacts signed in a
//! token and with a key file are interchangeable.

mod module;
mod objects;
#[cfg(test)]
mod tests;
mod token;
mod uri;

use std::fmt;

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{AttributeType, ObjectHandle};
use cryptoki::session::Session;
use der::asn1::UintRef;
use der::Encode;
use sha2::{Digest, Sha256};

use super::{oids, KeyAlgorithm, KeyError, VerifyingKey};
use module::Module;
use objects::{bytes, ec_point, key_algorithm, public_key_object, require_p256, required};
use token::{find_private_key, find_token, login, read_pin};
use uri::Pkcs11Uri;

/// A private key held in a PKCS#11 token (HSM, TPM, SoftHSM), addressed by an RFC 7512 URI,
/// so artifacts can be signed without the private key ever being on disk.
///
/// The session stays open and logged in for the life of the value, so many messages can be
/// signed with one PIN entry; dropping it closes the session (which logs out once it is the
/// token's last session) and finalises the module once no other key uses it. Not `Sync`:
/// a PKCS#11 session must not be used from two threads at once.
pub struct Pkcs11Key {
    // Fields drop in declaration order: the session must be closed before the module goes.
    session: Session,
    key: ObjectHandle,
    algorithm: KeyAlgorithm,
    token: String,
    _module: Module,
}

impl Pkcs11Key {
    /// Open the key named by `uri`, so users can point the tool at a key in their HSM, e.g.
    /// `pkcs11:token=mender;object=artifact-key;type=private?pin-value=1234&module-path=/usr/lib/softhsm/libsofthsm2.so`.
    ///
    /// Path attributes: `token`, `object` (the key's label), `id` (percent-encoded bytes),
    /// `serial`, `manufacturer`, `model`, `slot-id`, `type` (only `private`). Query attributes:
    /// `pin-value`, `pin-source` (`file:PATH` or a plain path; its first line is the PIN) and
    /// `module-path`; without `module-path` the `PKCS11_MODULE_PATH` environment variable names
    /// the module. Exactly one token and one private key must match; anything else, and unknown
    /// attributes, are errors. If this process is already logged in to the token (another open
    /// key), the token accepts the session without checking the PIN again.
    pub fn open(uri: &str) -> Result<Pkcs11Key, KeyError> {
        let uri = Pkcs11Uri::parse(uri)?;
        let path = module::resolve(
            uri.module_path.clone(),
            std::env::var_os(module::MODULE_ENV),
        )?;
        let pin = uri.pin.as_ref().map(read_pin).transpose()?;
        let module = Module::load(&path)?;
        let (slot, info) = find_token(module.context(), &uri)?;
        let token = info.label().to_string();
        let session = module.context().open_ro_session(slot).map_err(|e| {
            KeyError::Pkcs11(format!(
                "cannot open a session with token \"{token}\": {}",
                describe(&e)
            ))
        })?;
        login(&session, &info, pin)?;
        let key = find_private_key(&session, &uri, &token)?;
        let algorithm = key_algorithm(&session, key)?;
        Ok(Pkcs11Key {
            session,
            key,
            algorithm,
            token,
            _module: module,
        })
    }

    /// Sign `message` in the token, producing the same bytes as [`super::SigningKey::sign`]
    /// would with the same key: RSA PKCS#1 v1.5 with SHA-256 (deterministic, byte-identical),
    /// or ECDSA P-256 over the SHA-256 digest as 64-byte raw `r||s`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let signature = match self.algorithm {
            KeyAlgorithm::Rsa { .. } => {
                match self
                    .session
                    .sign(&Mechanism::Sha256RsaPkcs, self.key, message)
                {
                    // Some tokens only do raw PKCS#1 v1.5; the result is the same.
                    Err(Error::Pkcs11(RvError::MechanismInvalid, _)) => {
                        self.sign_rsa_digest_info(message)
                    }
                    other => other,
                }
            }
            KeyAlgorithm::EcdsaP256 => {
                let digest = Sha256::digest(message);
                self.session.sign(&Mechanism::Ecdsa, self.key, &digest)
            }
            KeyAlgorithm::Ed25519 => return Err(ed25519_unsupported()),
        };
        let signature = signature.map_err(|e| {
            KeyError::SigningFailed(format!("token \"{}\": {}", self.token, describe(&e)))
        })?;
        let expected = self.algorithm.signature_len();
        if signature.len() != expected {
            return Err(KeyError::SigningFailed(format!(
                "token \"{}\" returned a {}-byte signature, expected {expected} bytes",
                self.token,
                signature.len()
            )));
        }
        Ok(signature)
    }

    /// RSA PKCS#1 v1.5 signing with CKM_RSA_PKCS: the token only pads, so the SHA-256
    /// `DigestInfo` (RFC 8017 section 9.2) is built here.
    fn sign_rsa_digest_info(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ];
        let mut digest_info = SHA256_DIGEST_INFO_PREFIX.to_vec();
        digest_info.extend_from_slice(&Sha256::digest(message));
        self.session
            .sign(&Mechanism::RsaPkcs, self.key, &digest_info)
    }

    /// The key's algorithm, so callers can report it and pick matching verification.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The matching public key, read from the token's public-key object with the same id (or
    /// label), so a signer can export it for devices or check its own signatures.
    ///
    /// For RSA keys without a public-key object the private key's public components are used.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let session = &self.session;
        let public = public_key_object(session, self.key)?;
        let spki = match self.algorithm {
            KeyAlgorithm::Rsa { .. } => {
                let source = public.unwrap_or(self.key);
                let modulus = required(session, source, AttributeType::Modulus)?;
                let exponent = required(session, source, AttributeType::PublicExponent)?;
                let modulus = UintRef::new(&modulus).map_err(|e| bad_public(e.to_string()))?;
                let private = bytes(session, self.key, AttributeType::Modulus)?;
                if private.is_some_and(|n| UintRef::new(&n).ok() != Some(modulus)) {
                    return Err(bad_public("its modulus differs from the private key's"));
                }
                let der = pkcs1::RsaPublicKey {
                    modulus,
                    public_exponent: UintRef::new(&exponent)
                        .map_err(|e| bad_public(e.to_string()))?,
                }
                .to_der()
                .map_err(|e| bad_public(e.to_string()))?;
                oids::encode_spki(self.algorithm, &der)
            }
            KeyAlgorithm::EcdsaP256 => {
                let public = public.ok_or_else(|| {
                    KeyError::Pkcs11(format!(
                        "token \"{}\" has no public-key object for this EC key (import the \
                         public key with the same id)",
                        self.token
                    ))
                })?;
                require_p256(&required(session, public, AttributeType::EcParams)?)?;
                let point = required(session, public, AttributeType::EcPoint)?;
                oids::encode_spki(self.algorithm, ec_point(&point)?)
            }
            KeyAlgorithm::Ed25519 => return Err(ed25519_unsupported()),
        };
        let key = VerifyingKey::from_spki_der(&spki)?;
        if key.algorithm() != self.algorithm {
            return Err(bad_public(format!("it is {}", key.algorithm())));
        }
        Ok(key)
    }
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("algorithm", &self.algorithm)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// The error for a public-key object that does not fit the private key.
fn bad_public(why: impl fmt::Display) -> KeyError {
    KeyError::Pkcs11(format!(
        "the token's public key does not match the private key: {why}"
    ))
}

/// The error for Ed25519 keys, which token signing does not cover.
fn ed25519_unsupported() -> KeyError {
    KeyError::UnsupportedKey("ed25519 keys in PKCS#11 tokens".to_string())
}

/// A cryptoki error as one line: `C_Login failed with CKR_PIN_INCORRECT` for token errors,
/// as the PKCS#11 documentation and token vendors name them.
fn describe(error: &Error) -> String {
    let Error::Pkcs11(rv, function) = error else {
        return error.to_string();
    };
    let code = match rv {
        RvError::VendorDefined(code) | RvError::UnknownErrorCode(code) => format!("CKR 0x{code:x}"),
        named => format!("{named:?}")
            .chars()
            .fold("CKR".to_string(), |mut name, c| {
                if c.is_ascii_uppercase() {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
                name
            }),
    };
    format!("C_{function:?} failed with {code}")
}
