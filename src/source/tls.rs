//! Certificate trust for URL sources: the webpki roots plus the device's own trusted
//! certificates (mender.conf `ServerCertificate`, `--trusted-certs`), or no checks at all for
//! `--skipverify`.
//!
//! ureq can only *replace* its roots, but a device that trusts its own server's certificate
//! must still reach public hosts (a CDN serving artifacts), so with extra certificates the TLS
//! layer is our own rustls connector in ureq's connector chain.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use ureq::config::Config;
use ureq::tls::TlsConfig;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    TcpConnector, Transport, TransportAdapter,
};
use ureq::Agent;

use super::{HttpOptions, SourceError};
use crate::crypto::tls_verify::FallbackVerifier;

/// The TLS settings ureq applies itself: everything except extra trusted certificates.
pub(super) fn ureq_tls(opts: &HttpOptions) -> TlsConfig {
    TlsConfig::builder()
        .disable_verification(opts.skip_verify)
        .build()
}

/// Builds the agent: ureq's own TLS unless extra certificates must be trusted.
pub(super) fn agent(config: Config, opts: &HttpOptions) -> Result<Agent, SourceError> {
    match &opts.trusted_certs {
        Some(path) if !opts.skip_verify => {
            let connector =
                ().chain(ConnectProxyConnector::default())
                    .chain(TcpConnector::default())
                    .chain(TlsConnector {
                        config: Arc::new(client_config(path)?),
                    });
            Ok(Agent::with_parts(
                config,
                connector,
                DefaultResolver::default(),
            ))
        }
        _ => Ok(Agent::new_with_config(config)),
    }
}

fn client_config(path: &Path) -> Result<ClientConfig, SourceError> {
    let fail = |reason: String| SourceError::TrustedCerts {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let pinned = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if pinned.is_empty() {
        return Err(fail("no certificate in it".to_string()));
    }
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots.add_parsable_certificates(pinned.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(FallbackVerifier::new(
            inner,
            "pinned certificates",
            // The chain is checked against the roots, and failing that the certificate may be
            // one of the trusted ones itself: a self-signed server certificate made with a plain
            // `openssl req -x509` (which marks it as a CA, so webpki refuses it as a server
            // certificate) works as a `ServerCertificate`, as it does with the C++ client.
            Box::new(move |_, end_entity| pinned.iter().any(|c| c.as_ref() == end_entity.as_ref())),
        )))
        .with_no_client_auth();
    Ok(config)
}

/// Wraps the TCP (or proxy tunnel) transport in TLS with our client configuration.
#[derive(Debug)]
struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .host()
            .ok_or(ureq::Error::Tls("no host name to verify"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ureq::Error::Tls("host name not usable for TLS"))?;
        let mut conn = ClientConnection::new(self.config.clone(), name)?;
        let boxed: Box<dyn Transport> = Box::new(transport);
        let mut sock = TransportAdapter::new(boxed, details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned::new(conn, sock),
        })))
    }
}

/// An established TLS session as a ureq transport.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        self.stream.write_all(&self.buffers.output()[..amount])?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
