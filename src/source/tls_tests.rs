//! HTTPS sources against the loopback test server with certificates made by `openssl`:
//! extra trusted CAs, a pinned self-signed server certificate, refusal, and `--skipverify`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::testserver::{Plan, TestServer};
use super::{open, HttpOptions, SourceSpec};

const P256: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .expect("the HTTPS tests need the openssl command");
    assert!(status.success(), "openssl {args:?} failed");
}

/// `openssl req -x509` as people run it: the certificate comes out marked as a CA.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    let mut args = vec![
        "req",
        "-x509",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
    ];
    args.extend(P256);
    args.extend(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]);
    args.extend(["-keyout", &key, "-out", &cert]);
    openssl(dir, &args);
    (dir.join(cert), dir.join(key))
}

/// A CA and a server certificate it signed: (CA certificate, server certificate, key).
fn ca_and_server(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca = vec![
        "req",
        "-x509",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
    ];
    ca.extend(P256);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-new", "-nodes", "-subj", "/CN=localhost"];
    csr.extend(P256);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    let ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
               extendedKeyUsage=serverAuth\n";
    std::fs::write(dir.join("server.ext"), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
    let path = |name: &str| dir.join(name);
    (path("ca.pem"), path("server.pem"), path("server.key"))
}

fn https_server(cert: &Path, key: &Path, body: &[u8], cut: Vec<usize>) -> TestServer {
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    TestServer::start(Plan {
        body: Arc::new(body.to_vec()),
        etags: vec!["\"tls\"".into()],
        cut,
        tls: Some(Arc::new(config)),
        ..Plan::default()
    })
}

fn fetch(server: &TestServer, opts: HttpOptions) -> Result<Vec<u8>, String> {
    let opts = HttpOptions {
        retry_delay: std::time::Duration::from_millis(5),
        ..opts
    };
    let spec = SourceSpec::Url(server.url("/a.mender"));
    let mut source = open(&spec, &opts).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    source.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn trusting(path: &Path) -> HttpOptions {
    HttpOptions {
        trusted_certs: Some(path.to_path_buf()),
        ..HttpOptions::default()
    }
}

#[test]
fn a_trusted_self_signed_server_certificate_works_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "server");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let server = https_server(&cert, &key, &body, vec![100_000]);
    assert_eq!(fetch(&server, trusting(&cert)).unwrap(), body);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "server");
    let (other, _) = self_signed(dir.path(), "other");
    let server = https_server(&cert, &key, b"body", vec![]);
    let prefix = format!("cannot download {}: ", server.url("/a.mender"));
    for opts in [HttpOptions::default(), trusting(&other)] {
        let err = fetch(&server, opts).unwrap_err();
        assert!(err.starts_with(&prefix), "{err}");
        assert!(err.contains("invalid peer certificate"), "{err}");
    }
}

#[test]
fn a_server_signed_by_a_trusted_ca_works() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = ca_and_server(dir.path());
    let server = https_server(&cert, &key, b"signed by the CA", vec![]);
    assert_eq!(fetch(&server, trusting(&ca)).unwrap(), b"signed by the CA");
    assert!(fetch(&server, HttpOptions::default()).is_err());
}

#[test]
fn skip_verify_accepts_any_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path(), "server");
    let server = https_server(&cert, &key, b"insecure", vec![]);
    let opts = HttpOptions {
        skip_verify: true,
        ..HttpOptions::default()
    };
    assert_eq!(fetch(&server, opts).unwrap(), b"insecure");
}

#[test]
fn an_unusable_certificate_bundle_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let spec = SourceSpec::Url("https://127.0.0.1:1/a".into());
    let err = open(&spec, &trusting(&junk)).unwrap_err().to_string();
    let expected = format!("cannot load trusted certificates from {}: ", junk.display());
    assert_eq!(err, expected + "no certificate in it");
    let err = open(&spec, &trusting(&missing)).unwrap_err().to_string();
    assert!(
        err.starts_with("cannot load trusted certificates from "),
        "{err}"
    );
}
