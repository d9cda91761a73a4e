//! Why an artifact source could not be opened or read to its end.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while fetching artifact bytes. URLs in these messages are
/// always the redacted form (no credentials, no query), so they are safe to log.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A local file (or mounted USB stick) that cannot be opened or inspected.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The path as given by the user.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The `install` argument looked like a URL but cannot be requested.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The redacted URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The `trusted_certs` bundle is missing or holds no usable certificate.
    #[error("cannot load trusted certificates from {}: {reason}", path.display())]
    TrustedCerts {
        /// The PEM bundle.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The request failed below HTTP: DNS, connection, TLS handshake, timeout.
    #[error("cannot download {url}: {reason}")]
    Request {
        /// The redacted URL.
        url: String,
        /// The transport's own description, certificate errors included.
        reason: String,
    },
    /// The server answered, but not with the body we asked for.
    #[error("unexpected HTTP response: {status} {reason} from {url}")]
    Status {
        /// The redacted URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The canonical reason phrase for `status`.
        reason: String,
    },
    /// A resumed request returned a different resource than the one being streamed, so the
    /// bytes already passed on cannot be continued.
    #[error("the artifact changed on the server while downloading {url}")]
    Changed {
        /// The redacted URL.
        url: String,
    },
    /// A range request was answered with a range other than the one asked for; retried,
    /// because proxies and load balancers get this wrong transiently.
    #[error(
        "server answered a range request from byte {offset} with Content-Range {content_range:?}"
    )]
    BadRange {
        /// The byte the request asked to start from.
        offset: u64,
        /// The header as received, or `(none)`.
        content_range: String,
    },
    /// The connection dropped and the server gave no length to resume against.
    #[error(
        "connection to {url} lost at byte {offset} ({reason}); the server sent no Content-Length, so the download cannot be resumed"
    )]
    NotResumable {
        /// The redacted URL.
        url: String,
        /// How many bytes had been delivered.
        offset: u64,
        /// Why the connection was considered lost.
        reason: String,
    },
    /// Resuming was tried `retries` times without enough progress in between.
    #[error(
        "download of {url} failed at byte {offset} of {total} after {retries} retries: {reason}"
    )]
    RetriesExhausted {
        /// The redacted URL.
        url: String,
        /// How many bytes had been delivered.
        offset: u64,
        /// The full length of the body.
        total: u64,
        /// How many resume attempts were made.
        retries: u32,
        /// The last failure.
        reason: String,
    },
}

impl SourceError {
    /// The `io::ErrorKind` that best describes this error, so readers above (tar, gzip) that
    /// only see `io::Error` still classify it sensibly.
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            SourceError::Open { source, .. } => source.kind(),
            SourceError::InvalidUrl { .. } => io::ErrorKind::InvalidInput,
            SourceError::TrustedCerts { .. } => io::ErrorKind::InvalidInput,
            SourceError::Changed { .. } => io::ErrorKind::InvalidData,
            SourceError::NotResumable { .. } => io::ErrorKind::UnexpectedEof,
            SourceError::Status { status: 404, .. } => io::ErrorKind::NotFound,
            _ => io::ErrorKind::Other,
        }
    }
}

impl From<SourceError> for io::Error {
    fn from(err: SourceError) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}
