//! Tests of [`Pkcs11Key`] against a real SoftHSM token made in a scratch directory.
//!
//! SoftHSM reads its configuration from `SOFTHSM2_CONF` when the module is initialised, and
//! that variable is process-wide, so everything that uses the token runs in one test, in order.

use std::path::Path;
use std::process::Command;

use super::*;
use crate::crypto::test_keys::{derive, key, Key};
use crate::crypto::SigningKey;

/// Where Debian's `softhsm2` package installs the module.
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
const MSG: &[u8] = b"manifest contents\nline two\n";

/// A scratch SoftHSM configuration with two tokens, "mender" (PIN 1234) holding the test
/// keys and an empty "other".
struct Softhsm {
    dir: tempfile::TempDir,
}

impl Softhsm {
    fn create() -> Softhsm {
        assert!(
            Path::new(SOFTHSM).exists(),
            "{SOFTHSM} is missing: the PKCS#11 tests need SoftHSM (apt-get install softhsm2)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let conf = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.path().join("tokens").display()
        );
        std::fs::write(dir.path().join("softhsm2.conf"), conf).unwrap();
        // Safe in edition 2021; the module reads it when it is initialised.
        std::env::set_var("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"));
        let hsm = Softhsm { dir };
        for label in ["mender", "other"] {
            hsm.util(&[
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                "5678",
            ]);
        }
        hsm.import(Key::Rsa2048Pkcs8, "artifact-key", "01", &[]);
        hsm.import(Key::EcPkcs8, "ec-key", "02", &[]);
        hsm.import(Key::Rsa3072Pkcs1, "twin", "03", &[]);
        hsm.import(Key::EcP384Pkcs8, "twin", "04", &[]);
        hsm.import(Key::Rsa2048Pkcs8, "no-public", "05", &["--no-public-key"]);
        hsm.import(Key::EcPkcs8, "ec-no-public", "06", &["--no-public-key"]);
        hsm
    }

    /// Import a test key (converted to PKCS#8 as softhsm2-util wants) into "mender".
    fn import(&self, k: Key, label: &str, id: &str, extra: &[&str]) {
        let path = self.dir.path().join(format!("{label}-{id}.pem"));
        std::fs::write(&path, derive(k, &["pkcs8", "-topk8", "-nocrypt"])).unwrap();
        let path = path.to_str().unwrap();
        let mut args = vec!["--import", path, "--token", "mender", "--label", label];
        args.extend(["--id", id]);
        args.extend(extra);
        self.util(&args);
    }

    /// Run `softhsm2-util ARGS --pin 1234`; panics if it fails.
    fn util(&self, args: &[&str]) {
        let out = Command::new("softhsm2-util")
            .args(args)
            .args(["--pin", "1234"])
            .env("SOFTHSM2_CONF", self.dir.path().join("softhsm2.conf"))
            .output()
            .expect("the PKCS#11 tests need softhsm2-util (apt-get install softhsm2)");
        assert!(
            out.status.success(),
            "softhsm2-util {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A URI for a key in the "mender" token with PIN 1234 and the SoftHSM module.
fn uri(path: &str) -> String {
    format!("pkcs11:token=mender;{path}?pin-value=1234&module-path={SOFTHSM}")
}

fn open(uri: &str) -> Pkcs11Key {
    Pkcs11Key::open(uri).unwrap_or_else(|e| panic!("{uri}: {e}"))
}

/// The message of the error opening `uri` gives.
fn open_error(uri: &str) -> String {
    match Pkcs11Key::open(uri) {
        Ok(key) => panic!("{uri} opened {key:?}"),
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains('\n') && !message.ends_with('.'),
                "{message}"
            );
            assert!(!message.contains("1234"), "PIN in message: {message}");
            message
        }
    }
}

#[test]
fn softhsm_token() {
    let hsm = Softhsm::create();
    rsa_matches_software_signing();
    ecdsa_verifies_with_the_pem_public_key(&hsm);
    keys_without_public_objects();
    lookup_and_login_errors();
    module_from_environment();
}

fn rsa_matches_software_signing() {
    let token = open(&uri("object=artifact-key;type=private"));
    let software = SigningKey::from_pem(&key(Key::Rsa2048Pkcs8), None).unwrap();
    assert_eq!(token.algorithm(), KeyAlgorithm::Rsa { bits: 2048 });
    let expected = software.sign(MSG).unwrap();
    // The session stays usable: sign several times.
    for message in [MSG, MSG] {
        assert_eq!(token.sign(message).unwrap(), expected);
    }
    assert_ne!(token.sign(b"other").unwrap(), expected);
    assert_eq!(token.sign_rsa_digest_info(MSG).unwrap(), expected);
    let public = token.verifying_key().unwrap();
    assert_eq!(public, software.verifying_key().unwrap());
    public.verify(MSG, &expected).unwrap();
    let text = format!("{token:?}");
    assert!(text.contains("Rsa") && text.contains("mender"), "{text}");
}

fn ecdsa_verifies_with_the_pem_public_key(hsm: &Softhsm) {
    // Select by id alone, PIN from a file given as file: and as a plain path.
    let pin_file = hsm.dir.path().join("pin");
    std::fs::write(&pin_file, "1234\nignored second line\n").unwrap();
    let pin_file = pin_file.display();
    let pem_public = derive(Key::EcPkcs8, &["pkey", "-pubout"]);
    let pem_public = VerifyingKey::from_pem(&pem_public).unwrap();
    for source in [format!("file:{pin_file}"), pin_file.to_string()] {
        let token = open(&format!(
            "pkcs11:token=mender;id=%02?pin-source={source}&module-path={SOFTHSM}"
        ));
        assert_eq!(token.algorithm(), KeyAlgorithm::EcdsaP256);
        let first = token.sign(MSG).unwrap();
        let second = token.sign(MSG).unwrap();
        assert_eq!(first.len(), 64);
        assert_ne!(first, second, "ECDSA signatures are randomised");
        pem_public.verify(MSG, &first).unwrap();
        pem_public.verify(MSG, &second).unwrap();
        assert!(pem_public.verify(b"tampered", &first).is_err());
        assert_eq!(token.verifying_key().unwrap(), pem_public);
    }
    // Two keys of one module at once share its initialisation; dropping one keeps the other.
    let rsa = open(&uri("object=artifact-key"));
    let ec = open(&uri("id=%02"));
    drop(rsa);
    pem_public.verify(MSG, &ec.sign(MSG).unwrap()).unwrap();
}

fn keys_without_public_objects() {
    let rsa = open(&uri("object=no-public"));
    let software = SigningKey::from_pem(&key(Key::Rsa2048Pkcs8), None).unwrap();
    assert_eq!(
        rsa.verifying_key().unwrap(),
        software.verifying_key().unwrap()
    );
    let ec = open(&uri("object=ec-no-public"));
    let e = ec.verifying_key().unwrap_err().to_string();
    assert!(e.contains("no public-key object"), "{e}");
    assert_eq!(ec.sign(MSG).unwrap().len(), 64);
}

fn lookup_and_login_errors() {
    let e = open_error(&uri("object=artifact-key").replace("1234", "0000"));
    assert_eq!(e, "pkcs11: cannot log in to token \"mender\": wrong PIN");
    let e = open_error(&format!(
        "pkcs11:token=mender;object=artifact-key?module-path={SOFTHSM}"
    ));
    assert!(e.contains("token \"mender\" needs a PIN"), "{e}");
    let e = open_error(&uri("object=missing-key"));
    assert_eq!(
        e,
        "pkcs11: no private key with object=missing-key in token \"mender\""
    );
    let e = open_error(&uri("object=artifact-key;id=01"));
    assert!(e.contains("write id=%01 for the byte 0x01"), "{e}");
    let e = open_error(&uri("object=twin"));
    assert!(e.contains("2 private keys with object=twin"), "{e}");
    // The P-384 twin is found when picked by id, and refused for its curve.
    let e = open_error(&uri("object=twin;id=%04"));
    assert!(
        e.contains("EC curve secp384r1 (only P-256 is supported)"),
        "{e}"
    );
    let e = open_error(&uri("serial=0000"));
    assert!(
        e.contains("no token matches the URI (tokens found: "),
        "{e}"
    );
    assert!(e.contains("\"mender\"") && e.contains("\"other\""), "{e}");
    let e = open_error(&format!(
        "pkcs11:object=artifact-key?pin-value=1234&module-path={SOFTHSM}"
    ));
    assert!(
        e.contains("2 tokens match the URI; add token= or serial="),
        "{e}"
    );
    let e = open_error(&uri("object=artifact-key;colour=blue"));
    assert!(e.contains("unknown attribute \"colour\""), "{e}");
    let e = open_error(&uri("object=artifact-key").replacen("pkcs11:", "pkcs12:", 1));
    assert!(e.contains("must start with \"pkcs11:\""), "{e}");
    let e = open_error(&uri("object=artifact%2"));
    assert!(e.contains("bad percent-encoding in \"object\""), "{e}");
    let e = open_error(
        &uri("object=artifact-key").replace("pin-value=1234", "pin-source=/nonexistent/pin"),
    );
    assert!(
        e.starts_with("pkcs11: cannot read the PIN from pin-source /nonexistent/pin"),
        "{e}"
    );
    // Still usable after all those failures.
    open(&uri("object=artifact-key")).sign(MSG).unwrap();
}

fn module_from_environment() {
    let saved = std::env::var_os(module::MODULE_ENV);
    let without_module = "pkcs11:token=mender;object=artifact-key?pin-value=1234";
    std::env::set_var(module::MODULE_ENV, SOFTHSM);
    let opened = Pkcs11Key::open(without_module).map(|key| key.algorithm());
    std::env::remove_var(module::MODULE_ENV);
    let missing = Pkcs11Key::open(without_module).map(|key| key.algorithm());
    if let Some(value) = saved {
        std::env::set_var(module::MODULE_ENV, value);
    }
    assert_eq!(opened.unwrap(), KeyAlgorithm::Rsa { bits: 2048 });
    let e = missing.unwrap_err().to_string();
    assert!(
        e.contains("module-path=") && e.contains("PKCS11_MODULE_PATH"),
        "{e}"
    );
}

#[test]
fn token_error_codes_are_named_as_in_the_standard() {
    let e = Error::Pkcs11(RvError::PinIncorrect, cryptoki::context::Function::Login);
    assert_eq!(describe(&e), "C_Login failed with CKR_PIN_INCORRECT");
    let e = Error::Pkcs11(
        RvError::VendorDefined(0x8000_0001),
        cryptoki::context::Function::Sign,
    );
    assert_eq!(describe(&e), "C_Sign failed with CKR 0x80000001");
}

#[test]
fn ec_points_are_accepted_wrapped_and_bare() {
    let mut point = vec![0x04; 65];
    point[1] = 0x3f;
    let mut wrapped = vec![0x04, 65];
    wrapped.extend_from_slice(&point);
    assert_eq!(ec_point(&wrapped).unwrap(), &point[..]);
    assert_eq!(ec_point(&point).unwrap(), &point[..]);
    assert!(ec_point(&[0x04, 3, 1]).is_err());
}
