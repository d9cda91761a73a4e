//! Where `mender-update install` gets artifact bytes from: a local file (a USB stick is just a
//! mounted path), standard input, or an HTTP(S) URL streamed without a temporary copy and
//! resumed with `Range` requests when the connection drops.

mod error;
mod http;
mod resume;
mod tls;

#[cfg(test)]
mod resume_tests;
#[cfg(test)]
mod testserver;
#[cfg(test)]
mod tls_tests;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::SourceError;
pub use http::{redact_url, HttpFetcher};
pub use resume::{Fetch, Reply, ResumingReader};

/// Where an artifact comes from, decided from the `install` argument alone so that the CLI and
/// the daemon agree on what a string means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A path on the device, including mounted removable media.
    File(PathBuf),
    /// `-`: piped in by a script or over ssh; cannot be resumed.
    Stdin,
    /// `http://` or `https://`: streamed, and resumed after a dropped connection.
    Url(String),
}

impl SourceSpec {
    /// `-` is standard input and `http://`/`https://` (any case) a URL; everything else is a
    /// path, so a file named like a URL can still be given as `./http:/...`.
    pub fn parse(arg: &str) -> SourceSpec {
        let has_scheme = |scheme: &str| {
            arg.get(..scheme.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme))
        };
        if arg == "-" {
            SourceSpec::Stdin
        } else if has_scheme("http://") || has_scheme("https://") {
            SourceSpec::Url(arg.to_string())
        } else {
            SourceSpec::File(PathBuf::from(arg))
        }
    }
}

/// Called with a one-line, human-readable message before each resume attempt, so the
/// installer can tell the user why the download pauses without this module printing.
pub type RetryCallback = Arc<dyn Fn(&str) + Send + Sync>;

/// TLS and retry settings for URL sources, filled from mender.conf and command-line flags.
#[derive(Clone)]
pub struct HttpOptions {
    /// A PEM bundle of extra CA or server certificates (`ServerCertificate`,
    /// `--trusted-certs`), trusted in addition to the built-in webpki roots. A certificate in
    /// it that the server presents verbatim is accepted even if it is not a valid CA chain.
    pub trusted_certs: Option<PathBuf>,
    /// `--skipverify`: no certificate checks at all. For testing only: anyone on the path can
    /// then serve the device any artifact that passes the remaining (signature) checks.
    pub skip_verify: bool,
    /// How many resume attempts are allowed without 1 MiB of progress in between
    /// (mender.conf `RetryDownloadCount`).
    pub max_retries: u32,
    /// The first back-off delay; it doubles with each attempt up to `max_retry_delay`.
    pub retry_delay: Duration,
    /// The cap on the back-off delay.
    pub max_retry_delay: Duration,
    /// A connect or read that receives nothing for this long counts as a dropped
    /// connection; zero disables the check.
    pub stall_timeout: Duration,
    /// Sent as `User-Agent`, so server logs show which client downloaded.
    pub user_agent: String,
    /// Told about every resume attempt.
    pub on_retry: Option<RetryCallback>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            trusted_certs: None,
            skip_verify: false,
            max_retries: 10,
            retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(60),
            stall_timeout: Duration::from_secs(60),
            user_agent: format!("Mender/{}", env!("CARGO_PKG_VERSION")),
            on_retry: None,
        }
    }
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field("trusted_certs", &self.trusted_certs)
            .field("skip_verify", &self.skip_verify)
            .field("max_retries", &self.max_retries)
            .field("retry_delay", &self.retry_delay)
            .field("max_retry_delay", &self.max_retry_delay)
            .field("stall_timeout", &self.stall_timeout)
            .field("user_agent", &self.user_agent)
            .field("on_retry", &self.on_retry.as_ref().map(|_| "callback"))
            .finish()
    }
}

/// Opens the source: a file or standard input as is, a URL with one GET that must answer 200
/// (the body is then streamed as it is read, never stored).
pub fn open(spec: &SourceSpec, opts: &HttpOptions) -> Result<Source, SourceError> {
    match spec {
        SourceSpec::File(path) => {
            let opened = File::open(path).and_then(|file| Ok((file.metadata()?, file)));
            let (meta, file) = opened.map_err(|source| SourceError::Open {
                path: path.clone(),
                source,
            })?;
            if meta.is_dir() {
                return Err(SourceError::Open {
                    path: path.clone(),
                    source: io::Error::new(io::ErrorKind::IsADirectory, "is a directory"),
                });
            }
            // Block devices and pipes report 0; only a regular file's size means anything.
            let len = meta.is_file().then_some(meta.len());
            let description = path.display().to_string();
            Ok(Source::from_reader(file, len, description))
        }
        SourceSpec::Stdin => Ok(Source::from_reader(
            io::stdin(),
            None,
            "standard input".to_string(),
        )),
        SourceSpec::Url(url) => {
            let reader = ResumingReader::open(HttpFetcher::new(url, opts)?, opts)?;
            Ok(Source {
                description: redact_url(url),
                len: reader.total_len(),
                inner: Inner::Http(Box::new(reader)),
            })
        }
    }
}

/// A readable artifact stream, whatever its origin, so the installer has one code path.
pub struct Source {
    inner: Inner,
    len: Option<u64>,
    description: String,
}

enum Inner {
    Plain(Box<dyn Read + Send>),
    Http(Box<ResumingReader<HttpFetcher>>),
}

impl Source {
    /// Wraps any reader, for callers (and tests) that already have the bytes at hand.
    pub fn from_reader(
        reader: impl Read + Send + 'static,
        len: Option<u64>,
        description: String,
    ) -> Source {
        Source {
            inner: Inner::Plain(Box::new(reader)),
            len,
            description,
        }
    }

    /// The total size when known (a regular file's size, `Content-Length`), for progress.
    pub fn len(&self) -> Option<u64> {
        self.len
    }

    /// True only when the size is known to be zero, which no artifact can be.
    pub fn is_empty(&self) -> bool {
        self.len == Some(0)
    }

    /// What to call the source in messages: the path, "standard input", or the URL without
    /// credentials or query.
    pub fn description(&self) -> String {
        self.description.clone()
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(reader) => reader.read(buf),
            Inner::Http(reader) => reader.read(buf),
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("description", &self.description)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    #[test]
    fn parse_tells_urls_stdin_and_paths_apart() {
        let url = |s: &str| SourceSpec::Url(s.to_string());
        let file = |s: &str| SourceSpec::File(PathBuf::from(s));
        assert_eq!(SourceSpec::parse("-"), SourceSpec::Stdin);
        assert_eq!(
            SourceSpec::parse("http://h/a.mender"),
            url("http://h/a.mender")
        );
        assert_eq!(SourceSpec::parse("HTTPS://h/a"), url("HTTPS://h/a"));
        assert_eq!(
            SourceSpec::parse("/media/usb/a.mender"),
            file("/media/usb/a.mender")
        );
        assert_eq!(SourceSpec::parse("a.mender"), file("a.mender"));
        assert_eq!(SourceSpec::parse("--"), file("--"));
        assert_eq!(SourceSpec::parse("ftp://h/a"), file("ftp://h/a"));
        assert_eq!(SourceSpec::parse("./http://x"), file("./http://x"));
        assert_eq!(SourceSpec::parse("http:/x"), file("http:/x"));
        assert_eq!(SourceSpec::parse("é"), file("é"));
    }

    #[test]
    fn file_source_reports_size_and_path() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(b"artifact bytes").unwrap();
        let spec = SourceSpec::File(tmp.path().to_path_buf());
        let mut source = open(&spec, &HttpOptions::default()).unwrap();
        assert_eq!(source.len(), Some(14));
        assert_eq!(source.description(), tmp.path().display().to_string());
        let mut got = Vec::new();
        source.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"artifact bytes");
    }

    #[test]
    fn missing_file_and_directory_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.mender");
        let err = open(&SourceSpec::File(missing.clone()), &HttpOptions::default()).unwrap_err();
        assert!(err
            .to_string()
            .starts_with(&format!("cannot open {}: ", missing.display())));
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::NotFound);
        let spec = SourceSpec::File(dir.path().to_path_buf());
        let err = open(&spec, &HttpOptions::default()).unwrap_err();
        assert!(err.to_string().ends_with("is a directory"), "{err}");
    }

    #[test]
    fn reader_source_streams_unknown_length() {
        let mut source = Source::from_reader(Cursor::new(vec![7u8; 100_000]), None, "pipe".into());
        assert_eq!((source.len(), source.is_empty()), (None, false));
        assert_eq!(source.description(), "pipe");
        let mut got = Vec::new();
        source.read_to_end(&mut got).unwrap();
        assert_eq!(got, vec![7u8; 100_000]);
    }

    #[test]
    fn stdin_source_is_described_and_unsized() {
        let source = open(&SourceSpec::Stdin, &HttpOptions::default()).unwrap();
        assert_eq!(source.description(), "standard input");
        assert_eq!(source.len(), None);
    }

    #[test]
    fn sources_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Source>();
        assert_send::<HttpOptions>();
    }

    #[test]
    fn options_default_to_mender_conf_defaults() {
        let opts = HttpOptions::default();
        assert_eq!(opts.max_retries, 10);
        assert_eq!(opts.retry_delay, Duration::from_secs(1));
        assert_eq!(opts.max_retry_delay, Duration::from_secs(60));
        assert!(opts.user_agent.starts_with("Mender/"));
        assert!(format!("{opts:?}").contains("on_retry: None"));
    }
}
