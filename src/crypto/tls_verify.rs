//! A TLS certificate verifier with a second chance: webpki checks the chain (and the name),
//! and when it refuses, a rule may still let the certificate through. The device's pinned
//! `ServerCertificate` and PostgreSQL's `verify-ca` (chain, not name) are both this.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::DigitallySignedStruct;

/// Decides whether a certificate webpki refused (with this error) may pass after all.
pub type Rule = Box<dyn Fn(&rustls::Error, &CertificateDer<'_>) -> bool + Send + Sync>;

/// webpki's verdict, overruled where `rule` says so; handshake signatures are always
/// checked by webpki.
pub struct FallbackVerifier {
    inner: Arc<WebPkiServerVerifier>,
    rule: Rule,
    what: &'static str,
}

impl FallbackVerifier {
    /// `inner` with `rule`; `what` names the rule in debug output.
    pub fn new(inner: Arc<WebPkiServerVerifier>, what: &'static str, rule: Rule) -> Self {
        FallbackVerifier { inner, rule, what }
    }
}

impl fmt::Debug for FallbackVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FallbackVerifier({})", self.what)
    }
}

impl ServerCertVerifier for FallbackVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e) if (self.rule)(&e, end_entity) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
