//! The HTTP side of a URL source: one ureq agent configured from `HttpOptions`, and the GET
//! requests the resuming reader asks for.

use std::io::{self, Read};
use std::time::Duration;

use ureq::http::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use ureq::http::{HeaderMap, Uri};
use ureq::Agent;

use super::resume::{Fetch, Reply};
use super::{tls, HttpOptions, SourceError};

/// Issues GET requests for one URL. The agent is kept so a resumed request reuses its TLS
/// configuration (and a pooled connection, when one is still alive).
pub struct HttpFetcher {
    agent: Agent,
    /// The URL as given, credentials and all.
    target: String,
    /// The redacted URL, for messages.
    url: String,
}

impl HttpFetcher {
    /// Checks the URL and builds the agent; no request is sent yet.
    pub fn new(url: &str, opts: &HttpOptions) -> Result<HttpFetcher, SourceError> {
        let shown = redact_url(url);
        let invalid = |reason: String| SourceError::InvalidUrl {
            url: shown.clone(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|e| invalid(format!("{e}")))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("no host".to_string()));
        }
        let stall = Some(opts.stall_timeout).filter(|t| *t > Duration::ZERO);
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(opts.user_agent.clone())
            // Artifacts are compressed already, and a content encoding would make `Range`
            // offsets count encoded bytes.
            .accept_encoding("identity")
            .timeout_connect(stall)
            .timeout_per_read(stall)
            .timeout_per_write(stall)
            .tls_config(tls::ureq_tls(opts))
            .build();
        Ok(HttpFetcher {
            agent: tls::agent(config, opts)?,
            target: url.to_string(),
            url: shown,
        })
    }
}

impl Fetch for HttpFetcher {
    fn fetch(&mut self, offset: u64, if_range: Option<&str>) -> Result<Reply, SourceError> {
        let mut request = self.agent.get(&self.target);
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
            if let Some(validator) = if_range {
                request = request.header(IF_RANGE, validator);
            }
        }
        let response = request.call().map_err(|err| SourceError::Request {
            url: self.url.clone(),
            reason: describe(err),
        })?;
        let headers = response.headers();
        let text = |name| header(headers, name);
        Ok(Reply {
            status: response.status().as_u16(),
            content_length: text(CONTENT_LENGTH).and_then(|v| v.trim().parse().ok()),
            content_range: text(CONTENT_RANGE),
            etag: text(ETAG),
            last_modified: text(LAST_MODIFIED),
            body: Box::new(BodyReader(response.into_body().into_reader())),
        })
    }

    fn url(&self) -> &str {
        &self.url
    }
}

/// The response body with ureq's errors turned into plain `io::Error`s of the right kind, so
/// the resume logic (and its retry messages) need not know about ureq.
struct BodyReader(ureq::BodyReader<'static>);

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|err| {
            let kind = err.kind();
            match err
                .into_inner()
                .map(|inner| inner.downcast::<ureq::Error>())
            {
                Some(Ok(ureq)) => match *ureq {
                    ureq::Error::Io(io) => io,
                    ureq::Error::Timeout(_) => io::Error::new(io::ErrorKind::TimedOut, "stalled"),
                    other => io::Error::new(kind, other.to_string()),
                },
                Some(Err(inner)) => io::Error::new(kind, inner),
                None => io::Error::from(kind),
            }
        })
    }
}

fn header(headers: &HeaderMap, name: ureq::http::HeaderName) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(value.trim().to_string())
}

/// ureq prefixes I/O errors with "io: "; certificate problems arrive that way and read better
/// without it.
fn describe(err: ureq::Error) -> String {
    match err {
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// The URL as it may appear in messages and logs: user information is dropped and the query
/// (where pre-signed URLs keep their signatures and tokens) is replaced by `?…`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (before_query, query) = match rest.split_once('?') {
        Some((before, _)) => (before, "?…"),
        None => (rest, ""),
    };
    let authority_end = before_query.find('/').unwrap_or(before_query.len());
    let (authority, path) = before_query.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}{query}"),
        None => format!("{host}{path}{query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_credentials_and_query() {
        assert_eq!(
            redact_url("https://user:secret@example.com:8443/a/b.mender?X-Amz-Signature=abc#frag"),
            "https://example.com:8443/a/b.mender?…"
        );
        assert_eq!(redact_url("http://h/a@b"), "http://h/a@b");
        assert_eq!(redact_url("http://h"), "http://h");
        assert_eq!(redact_url("http://u@h?t=1"), "http://h?…");
    }

    #[test]
    fn bad_urls_are_rejected_before_any_request() {
        let opts = HttpOptions::default();
        for url in ["http://", "http://exa mple.com/x", "https://:80/x"] {
            let err = HttpFetcher::new(url, &opts).err().expect(url);
            assert!(err.to_string().starts_with("invalid URL "), "{err}");
        }
    }
}
