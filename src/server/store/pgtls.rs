//! TLS for the PostgreSQL connections, with libpq's meaning of `sslmode` and `sslrootcert`.
//!
//! [`super::pgurl::split_url`] takes libpq's TLS parameters out of the URL first (the
//! driver's parser knows only some of them) and [`PgTls`] does what they ask, on rustls
//! (ring):
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

use super::pgurl::{SslMode, TlsParams};
use crate::crypto::tls_verify::FallbackVerifier;

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
                // The name is checked last: a wrong name means the chain was good.
                Arc::new(FallbackVerifier::new(
                    inner,
                    "chain only",
                    Box::new(|e, _| {
                        matches!(
                            e,
                            rustls::Error::InvalidCertificate(
                                CertificateError::NotValidForName
                                    | CertificateError::NotValidForNameContext { .. }
                            )
                        )
                    }),
                ))
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
