//! TLS for the PostgreSQL connections, with libpq's meaning of `sslmode` and `sslrootcert`.
//!
//! The driver's URL parser knows only `sslmode=disable|prefer|require` and rejects other
//! parameters, so [`split_url`] takes libpq's TLS parameters out of the URL first and
//! [`PgTls`] does what they ask, on rustls (ring):
//!
//! - `disable`: plain TCP;
//! - `prefer` (the default) and `require`: encrypted, the certificate not checked (only the
//!   handshake signatures), unless `sslrootcert` is given: then as `verify-ca`; `prefer`
//!   falls back to plain TCP when the server does not offer TLS;
//! - `verify-ca`: the chain is checked against the roots, the host name is not;
//! - `verify-full`: the chain and the host name are checked.
//!
//! The roots are the PEM file `sslrootcert` names, or the webpki roots (also what
//! `sslrootcert=system` means; as in libpq it implies `verify-full`).
//!
//! The SCRAM channel binding `tls-server-end-point` is offered, so a server that asks for
//! SCRAM-SHA-256-PLUS gets it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use postgres::Socket;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it.
    Prefer,
    /// TLS or nothing.
    Require,
    /// TLS, the chain checked.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(format!(
                    "invalid sslmode {s:?} (expected disable, prefer, require, verify-ca or \
                     verify-full)"
                ))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The nearest mode the driver knows (it only decides whether TLS is asked for).
    fn driver(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }
}

/// The TLS parameters taken out of a connection URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file of trusted roots, or `system` for the webpki roots.
    pub root_cert: Option<String>,
}

/// Splits `url` (`postgres://...` or key=value form) into the URL for the driver, without
/// `sslrootcert` and with `sslmode` as the driver knows it, and the TLS parameters.
/// Everything else is left as it was, for the driver to judge.
pub fn split_url(url: &str) -> Result<(String, TlsParams), String> {
    let url_form = is_url(url);
    // (key, value, original text) of each parameter.
    let pairs: Vec<(String, String, &str)> = if url_form {
        match url_parts(url).query {
            None => Vec::new(),
            Some(q) => url[q..]
                .split('&')
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v), pair)
                })
                .collect(),
        }
    } else {
        // Malformed: the driver says how.
        key_values(url).unwrap_or_default()
    };
    let mut mode = None;
    let mut root_cert = None;
    for (k, v, _) in &pairs {
        match k.as_str() {
            "sslmode" => mode = Some(SslMode::parse(v)?),
            "sslrootcert" => root_cert = Some(v.clone()),
            _ => {}
        }
    }
    if mode.is_none() && root_cert.is_none() {
        return Ok((url.to_string(), TlsParams::default()));
    }
    let mode = match (mode, root_cert.as_deref()) {
        (None | Some(SslMode::VerifyFull), Some("system")) => SslMode::VerifyFull,
        (Some(m), Some("system")) => {
            return Err(format!(
                "weak sslmode {:?} may not be used with sslrootcert=system (use \"verify-full\")",
                m.name()
            ))
        }
        (m, _) => m.unwrap_or(SslMode::Prefer),
    };
    let mut kept: Vec<String> = pairs
        .iter()
        .filter(|(k, _, _)| k != "sslmode" && k != "sslrootcert")
        .map(|(_, _, raw)| raw.to_string())
        .collect();
    if mode != SslMode::Prefer {
        kept.push(format!("sslmode={}", mode.driver()));
    }
    let driver_url = if url_form {
        let q = url_parts(url).query.unwrap_or(url.len());
        let head = url[..q].strip_suffix('?').unwrap_or(&url[..q]);
        if kept.is_empty() {
            head.to_string()
        } else {
            format!("{head}?{}", kept.join("&"))
        }
    } else {
        kept.join(" ")
    };
    Ok((driver_url, TlsParams { mode, root_cert }))
}

impl Default for TlsParams {
    fn default() -> TlsParams {
        TlsParams {
            mode: SslMode::Prefer,
            root_cert: None,
        }
    }
}

fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Where the pieces of a `postgres://` URL are.
pub(crate) struct UrlParts {
    /// The byte range of `USER[:PASSWORD]`, before the `@`.
    pub creds: Option<(usize, usize)>,
    /// Where the query starts (after the `?`).
    pub query: Option<usize>,
}

/// Finds the credentials and the query of a `postgres://` URL as the driver does: the query
/// starts at the first `?` after the first `@`; the credentials end at the last `@` before it
/// (the driver would stop at the first, but an unencoded `@` in a password is better hidden
/// whole in messages).
pub(crate) fn url_parts(url: &str) -> UrlParts {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let first_at = rest.find('@');
    let from = first_at.map_or(0, |a| a + 1);
    let query = rest[from..].find('?').map(|i| from + i);
    let creds = first_at.and_then(|_| rest[..query.unwrap_or(rest.len())].rfind('@'));
    UrlParts {
        creds: creds.map(|at| (start, start + at)),
        query: query.map(|q| start + q + 1),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `key=value` pairs of a libpq keyword/value string (values optionally single-quoted,
/// backslash escapes), each with its unquoted value and its original text; `None` when
/// malformed.
fn key_values(s: &str) -> Option<Vec<(String, String, &str)>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i == b.len() {
            return Some(out);
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = s[start..i].to_string();
        skip_ws(&mut i);
        if i == b.len() || b[i] != b'=' || key.is_empty() {
            return None;
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                match b.get(i)? {
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        value.push(*b.get(i + 1)?);
                        i += 2;
                    }
                    c => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                if b[i] == b'\\' {
                    value.push(*b.get(i + 1)?);
                    i += 2;
                } else {
                    value.push(b[i]);
                    i += 1;
                }
            }
        }
        let value = String::from_utf8(value).ok()?;
        out.push((key, value, &s[start..i]));
    }
}

// ---- The connector ----

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Nothing but the handshake signatures.
    Nothing,
    /// The chain, against the roots.
    Chain,
    /// The chain and the host name.
    Full,
}

/// Makes TLS connections as [`TlsParams`] ask.
#[derive(Clone)]
pub struct PgTls {
    config: Arc<ClientConfig>,
}

impl PgTls {
    /// The connector for `params`; fails when the roots cannot be loaded.
    pub fn new(params: &TlsParams) -> Result<PgTls, String> {
        let file = params.root_cert.as_deref().filter(|f| *f != "system");
        let check = match params.mode {
            SslMode::Disable => Check::Nothing,
            SslMode::Prefer | SslMode::Require if file.is_none() => Check::Nothing,
            SslMode::Prefer | SslMode::Require | SslMode::VerifyCa => Check::Chain,
            SslMode::VerifyFull => Check::Full,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = if check == Check::Nothing {
            Arc::new(NoCheck(provider.clone()))
        } else {
            let mut roots = RootCertStore::empty();
            match file {
                Some(path) => {
                    let fail = |e: &dyn std::fmt::Display| format!("sslrootcert {path}: {e}");
                    let pem = std::fs::read(path).map_err(|e| fail(&e))?;
                    let certs = CertificateDer::pem_slice_iter(&pem)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| fail(&e))?;
                    let (added, _) = roots.add_parsable_certificates(certs);
                    if added == 0 {
                        return Err(fail(&"no usable certificate in it"));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let inner =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| e.to_string())?;
            if check == Check::Full {
                inner
            } else {
                Arc::new(ChainOnly(inner))
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(PgTls {
            config: Arc::new(config),
        })
    }
}

impl MakeTlsConnect<Socket> for PgTls {
    type Stream = PgTlsStream;
    type TlsConnect = PgTlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<PgTlsConnect> {
        // Called for Unix sockets too (with no name), where TLS is never used.
        Ok(PgTlsConnect {
            config: self.config.clone(),
            name: ServerName::try_from(domain.to_string()).ok(),
            domain: domain.to_string(),
        })
    }
}

/// One TLS handshake to come.
pub struct PgTlsConnect {
    config: Arc<ClientConfig>,
    name: Option<ServerName<'static>>,
    domain: String,
}

impl TlsConnect<Socket> for PgTlsConnect {
    type Stream = PgTlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<PgTlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let name = self.name.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("host name {:?} not usable for TLS", self.domain),
                )
            })?;
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await?;
            Ok(PgTlsStream(tls))
        })
    }
}

/// An established TLS session to the server.
pub struct PgTlsStream(tokio_rustls::client::TlsStream<Socket>);

impl TlsStream for PgTlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, conn) = self.0.get_ref();
        conn.peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| server_end_point(c))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

impl AsyncRead for PgTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PgTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The `tls-server-end-point` channel binding (RFC 5929): the certificate hashed with its
/// signature's hash (SHA-256 for MD5 and SHA-1); `None` for other signature algorithms.
fn server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    let oid = signature_oid(cert)?;
    let hash = match oid {
        [p @ .., n] if p == RSA => match n {
            4 | 5 | 11 => 256,
            12 => 384,
            13 => 512,
            14 => 224,
            _ => return None,
        },
        _ if oid == ECDSA_SHA1 => 256,
        [p @ .., n] if p == ECDSA_SHA2 => match n {
            1 => 224,
            2 => 256,
            3 => 384,
            4 => 512,
            _ => return None,
        },
        _ => return None,
    };
    Some(match hash {
        224 => sha2::Sha224::digest(cert).to_vec(),
        256 => sha2::Sha256::digest(cert).to_vec(),
        384 => sha2::Sha384::digest(cert).to_vec(),
        _ => sha2::Sha512::digest(cert).to_vec(),
    })
}

/// The OID of a certificate's `signatureAlgorithm`.
fn signature_oid(cert: &[u8]) -> Option<&[u8]> {
    let (0x30, body, _) = der_next(cert)? else {
        return None;
    };
    let (_, _, rest) = der_next(body)?;
    let (0x30, alg, _) = der_next(rest)? else {
        return None;
    };
    let (0x06, oid, _) = der_next(alg)? else {
        return None;
    };
    Some(oid)
}

/// The first DER element of `b`: its tag, its contents and what follows it.
fn der_next(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = b
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |l, &x| l << 8 | usize::from(x));
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let contents = b.get(header..end)?;
    Some((tag, contents, &b[end..]))
}

/// Checks the chain but not the host name (`verify-ca`).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is checked last: a wrong name means the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Takes any certificate, but checks that the server holds its key (`prefer`, `require`).
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, SslMode, Option<String>) {
        let (u, p) = split_url(url).unwrap();
        (u, p.mode, p.root_cert)
    }

    #[test]
    fn urls_without_tls_parameters_pass_unchanged() {
        for url in [
            "postgres://m:s@db:5432/mender",
            "postgresql://db/mender?connect_timeout=5&application_name=x",
            "host=db user=m password='a b' dbname=mender",
            "postgres://m:pa?ss@db/mender",
        ] {
            assert_eq!(split(url), (url.to_string(), SslMode::Prefer, None));
        }
    }

    #[test]
    fn url_form_parameters_are_taken_out() {
        assert_eq!(
            split("postgres://m:s@db/y?sslmode=verify-full&sslrootcert=/etc/ca.pem"),
            (
                "postgres://m:s@db/y?sslmode=require".into(),
                SslMode::VerifyFull,
                Some("/etc/ca.pem".into())
            )
        );
        assert_eq!(
            split("postgres://db/y?connect_timeout=3&sslmode=verify-ca&application_name=a"),
            (
                "postgres://db/y?connect_timeout=3&application_name=a&sslmode=require".into(),
                SslMode::VerifyCa,
                None
            )
        );
        assert_eq!(
            split("postgresql://db?sslrootcert=%2Ftmp%2Fa%40b%20c.pem"),
            (
                "postgresql://db".into(),
                SslMode::Prefer,
                Some("/tmp/a@b c.pem".into())
            )
        );
        assert_eq!(
            split("postgres://m:s@db/y?sslrootcert=/x/a@b.pem&sslmode=disable"),
            (
                "postgres://m:s@db/y?sslmode=disable".into(),
                SslMode::Disable,
                Some("/x/a@b.pem".into())
            )
        );
        assert_eq!(
            split("postgres://db/y?sslmode=require").0,
            "postgres://db/y?sslmode=require"
        );
        assert_eq!(split("postgres://db/y?sslmode=prefer").0, "postgres://db/y");
    }

    #[test]
    fn key_value_parameters_are_taken_out() {
        assert_eq!(
            split("host=db sslmode = verify-full user=m sslrootcert='/a b/ca.pem' dbname=y"),
            (
                "host=db user=m dbname=y sslmode=require".into(),
                SslMode::VerifyFull,
                Some("/a b/ca.pem".into())
            )
        );
        assert_eq!(
            split("host=db password='x\\'y' sslmode=disable"),
            (
                "host=db password='x\\'y' sslmode=disable".into(),
                SslMode::Disable,
                None
            )
        );
    }

    #[test]
    fn system_roots_mean_verify_full() {
        assert_eq!(
            split("postgres://db/y?sslrootcert=system"),
            (
                "postgres://db/y?sslmode=require".into(),
                SslMode::VerifyFull,
                Some("system".into())
            )
        );
        let e = split_url("host=db sslrootcert=system sslmode=require").unwrap_err();
        assert!(e.contains("weak sslmode \"require\""), "{e}");
    }

    #[test]
    fn bad_modes_are_refused() {
        let e = split_url("postgres://db/y?sslmode=verify").unwrap_err();
        assert_eq!(
            e,
            "invalid sslmode \"verify\" (expected disable, prefer, require, verify-ca or \
             verify-full)"
        );
        assert!(split_url("sslmode=allow host=db").is_err());
    }

    #[test]
    fn missing_root_file_is_named() {
        let params = TlsParams {
            mode: SslMode::VerifyFull,
            root_cert: Some("/nonexistent/ca.pem".into()),
        };
        let e = PgTls::new(&params).err().unwrap();
        assert!(e.starts_with("sslrootcert /nonexistent/ca.pem: "), "{e}");
        let empty = tempfile::NamedTempFile::new().unwrap();
        let params = TlsParams {
            mode: SslMode::Require,
            root_cert: Some(empty.path().display().to_string()),
        };
        let e = PgTls::new(&params).err().unwrap();
        assert!(e.ends_with("no usable certificate in it"), "{e}");
        for mode in [SslMode::Prefer, SslMode::VerifyFull, SslMode::Disable] {
            let params = TlsParams {
                mode,
                root_cert: None,
            };
            assert!(PgTls::new(&params).is_ok());
        }
    }

    #[test]
    fn end_point_hash_follows_the_signature() {
        // SEQUENCE { SEQUENCE {} (tbs), SEQUENCE { OID sha384WithRSAEncryption }, BIT STRING }
        let cert = [
            0x30, 0x12, 0x30, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
            0x01, 0x01, 0x0c, 0x03, 0x01, 0x00,
        ];
        assert_eq!(
            signature_oid(&cert).unwrap(),
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c]
        );
        assert_eq!(server_end_point(&cert).unwrap().len(), 48);
        let mut sha1 = cert;
        sha1[16] = 0x05;
        assert_eq!(
            server_end_point(&sha1).unwrap(),
            sha2::Sha256::digest(sha1).to_vec()
        );
        assert_eq!(server_end_point(&[0x30, 0x05]), None);
    }
}
