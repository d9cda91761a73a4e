//! A body reader that survives dropped connections by re-requesting the rest with `Range`.

use std::cmp::min;
use std::io::{self, Read};
use std::time::Duration;

use super::{HttpOptions, RetryCallback, SourceError};

/// Progress after which a connection counts as healthy again: the retry budget and back-off
/// start over, so a long download over a flaky link is not failed by old, unrelated drops.
const PROGRESS_RESET: u64 = 1024 * 1024;

/// One HTTP answer, reduced to what resuming needs. Keeping ureq out of this type lets the
/// resume rules be read (and changed) without the transport in the way.
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `Content-Length`, when the server sent one.
    pub content_length: Option<u64>,
    /// `Content-Range`, verbatim.
    pub content_range: Option<String>,
    /// `ETag`, verbatim (quotes and `W/` included).
    pub etag: Option<String>,
    /// `Last-Modified`, verbatim.
    pub last_modified: Option<String>,
    /// The body, not yet read.
    pub body: Box<dyn Read + Send>,
}

/// Issues the GET requests; the HTTP client implements it, and so could a test double.
pub trait Fetch: Send {
    /// Requests the resource from byte `offset` (the whole resource when 0), sending
    /// `if_range` as `If-Range` so the server answers 200 instead of mixing two versions.
    fn fetch(&mut self, offset: u64, if_range: Option<&str>) -> Result<Reply, SourceError>;
    /// The URL for messages, already redacted.
    fn url(&self) -> &str;
}

/// The identity of the resource as first seen, to notice when a resumed request gets a
/// different one.
#[derive(Debug, Clone, Default, PartialEq)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

impl Validators {
    fn of(reply: &Reply) -> Validators {
        Validators {
            etag: reply.etag.clone(),
            last_modified: reply.last_modified.clone(),
        }
    }

    /// RFC 9110 allows only strong validators in `If-Range`; a weak ETag would let the server
    /// splice different representations.
    fn if_range(&self) -> Option<&str> {
        match &self.etag {
            Some(etag) if !etag.starts_with("W/") => Some(etag),
            _ => self.last_modified.as_deref(),
        }
    }

    fn conflict(&self, other: &Validators) -> bool {
        let differ =
            |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
        differ(&self.etag, &other.etag) || differ(&self.last_modified, &other.last_modified)
    }
}

/// Streams an HTTP body and, when the connection drops, stalls or ends early, asks for the
/// rest with `Range: bytes=<offset>-`, so a multi-gigabyte artifact survives a flaky link
/// without a temporary copy. Bytes are delivered exactly once, in order.
pub struct ResumingReader<F: Fetch> {
    fetcher: F,
    body: Option<Box<dyn Read + Send>>,
    offset: u64,
    total: Option<u64>,
    validators: Validators,
    /// Bytes of a fresh 200 body still to drop before it lines up with `offset`.
    skip: u64,
    attempts: u32,
    progress: u64,
    delay: Duration,
    last_failure: String,
    max_retries: u32,
    first_delay: Duration,
    max_delay: Duration,
    on_retry: Option<RetryCallback>,
}

impl<F: Fetch> ResumingReader<F> {
    /// Sends the first request; anything but 200 is an error, because only a complete body
    /// can be an artifact.
    pub fn open(mut fetcher: F, opts: &HttpOptions) -> Result<Self, SourceError> {
        let reply = fetcher.fetch(0, None)?;
        if reply.status != 200 {
            return Err(status_error(fetcher.url(), reply.status));
        }
        Ok(ResumingReader {
            validators: Validators::of(&reply),
            total: reply.content_length,
            body: Some(reply.body),
            fetcher,
            offset: 0,
            skip: 0,
            attempts: 0,
            progress: 0,
            delay: opts.retry_delay,
            last_failure: String::new(),
            max_retries: opts.max_retries,
            first_delay: opts.retry_delay,
            max_delay: opts.max_retry_delay,
            on_retry: opts.on_retry.clone(),
        })
    }

    /// The full body length from the first response, when the server sent one.
    pub fn total_len(&self) -> Option<u64> {
        self.total
    }

    /// How many bytes have been delivered so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Gives up on the current connection; the next read reconnects.
    fn lost(&mut self, reason: String) -> Result<(), SourceError> {
        self.body = None;
        if self.total.is_none() {
            return Err(SourceError::NotResumable {
                url: self.fetcher.url().to_string(),
                offset: self.offset,
                reason,
            });
        }
        self.last_failure = reason;
        Ok(())
    }

    fn reconnect(&mut self) -> Result<(), SourceError> {
        let total = self.total.unwrap_or(0);
        let mut retrying = false;
        loop {
            if self.attempts >= self.max_retries {
                return Err(SourceError::RetriesExhausted {
                    url: self.fetcher.url().to_string(),
                    offset: self.offset,
                    total,
                    retries: self.attempts,
                    reason: self.last_failure.clone(),
                });
            }
            self.attempts += 1;
            if let Some(callback) = &self.on_retry {
                let what = if retrying {
                    "resume failed"
                } else {
                    "connection lost"
                };
                callback(&format!(
                    "{what} at byte {} of {} ({}), resuming (attempt {}/{})",
                    self.offset, total, self.last_failure, self.attempts, self.max_retries
                ));
            }
            std::thread::sleep(self.delay);
            self.delay = min(self.delay.saturating_mul(2), self.max_delay);
            match self.resume(total) {
                Ok(()) => return Ok(()),
                Err(err) if transient(&err) => self.last_failure = brief(&err),
                Err(err) => return Err(err),
            }
            retrying = true;
        }
    }

    /// One resume request: accepts a 206 that starts exactly at `offset`, or a 200 of the same
    /// resource whose first `offset` bytes are then skipped.
    fn resume(&mut self, total: u64) -> Result<(), SourceError> {
        let reply = self
            .fetcher
            .fetch(self.offset, self.validators.if_range())?;
        let url = self.fetcher.url().to_string();
        if self.validators.conflict(&Validators::of(&reply)) {
            return Err(SourceError::Changed { url });
        }
        match reply.status {
            206 => {
                let range = reply.content_range.as_deref();
                if range.and_then(parse_content_range) != Some((self.offset, total - 1, total)) {
                    return Err(SourceError::BadRange {
                        offset: self.offset,
                        content_range: range.unwrap_or("(none)").to_string(),
                    });
                }
                self.skip = 0;
            }
            200 => {
                if reply.content_length.is_some_and(|len| len != total) {
                    return Err(SourceError::Changed { url });
                }
                self.skip = self.offset;
            }
            status => return Err(status_error(&url, status)),
        }
        self.body = Some(reply.body);
        Ok(())
    }

    fn advance(&mut self, n: usize) {
        self.offset += n as u64;
        self.progress += n as u64;
        if self.progress >= PROGRESS_RESET {
            self.progress = 0;
            self.attempts = 0;
            self.delay = self.first_delay;
        }
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> Result<usize, SourceError> {
        loop {
            let left = self.total.map(|total| total - self.offset);
            if buf.is_empty() || left == Some(0) {
                return Ok(0);
            }
            let Some(body) = self.body.as_mut() else {
                self.reconnect()?;
                continue;
            };
            let result = if self.skip > 0 {
                let mut scratch = [0u8; 8192];
                let want = min(self.skip, scratch.len() as u64) as usize;
                body.read(&mut scratch[..want]).map(|n| (n, true))
            } else {
                let want = min(buf.len() as u64, left.unwrap_or(u64::MAX)) as usize;
                body.read(&mut buf[..want]).map(|n| (n, false))
            };
            match result {
                Ok((0, _)) if left.is_none() => return Ok(0),
                Ok((0, _)) => {
                    let reason = format!("connection closed after {} bytes", self.offset);
                    self.lost(reason)?;
                }
                Ok((n, true)) => self.skip -= n as u64,
                Ok((n, false)) => {
                    self.advance(n);
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => self.lost(describe(&err))?,
            }
        }
    }
}

impl<F: Fetch> Read for ResumingReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf).map_err(io::Error::from)
    }
}

/// Failures worth another attempt: the network, the server being briefly unwell, or a proxy
/// mangling a range. Anything else would fail the same way again.
fn transient(err: &SourceError) -> bool {
    match err {
        SourceError::Request { .. } | SourceError::BadRange { .. } => true,
        SourceError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
        _ => false,
    }
}

pub(super) fn status_error(url: &str, status: u16) -> SourceError {
    let reason = ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("");
    SourceError::Status {
        url: url.to_string(),
        status,
        reason: reason.to_string(),
    }
}

/// A failed resume in a few words; the URL is already in the message around it.
fn brief(err: &SourceError) -> String {
    match err {
        SourceError::Request { reason, .. } => reason.clone(),
        SourceError::Status { status, reason, .. } => format!("HTTP {status} {reason}"),
        other => other.to_string(),
    }
}

/// A read error in a few words for the retry message and the final error.
fn describe(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "no data, timed out".to_string(),
        io::ErrorKind::UnexpectedEof => "connection closed early".to_string(),
        _ => err.to_string(),
    }
}

/// Parses `bytes <first>-<last>/<complete>`; an unknown complete length (`*`) is useless for
/// checking a resume, so it does not parse.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim();
    let (unit, rest) = rest.split_once(' ')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (range, complete) = rest.trim().split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last, complete) = (
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        complete.trim().parse().ok()?,
    );
    (first <= last && last < complete).then_some((first, last, complete))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses_only_complete_ranges() {
        assert_eq!(parse_content_range("bytes 10-99/100"), Some((10, 99, 100)));
        assert_eq!(parse_content_range("Bytes  0-0/1"), Some((0, 0, 1)));
        assert_eq!(parse_content_range("bytes 10-99/*"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("bytes 50-10/100"), None);
        assert_eq!(parse_content_range("bytes 10-100/100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range(""), None);
    }

    #[test]
    fn if_range_prefers_a_strong_etag() {
        let v = |etag: Option<&str>, lm: Option<&str>| Validators {
            etag: etag.map(str::to_string),
            last_modified: lm.map(str::to_string),
        };
        assert_eq!(v(Some("\"a\""), Some("d")).if_range(), Some("\"a\""));
        assert_eq!(v(Some("W/\"a\""), Some("d")).if_range(), Some("d"));
        assert_eq!(v(Some("W/\"a\""), None).if_range(), None);
        assert!(v(Some("\"a\""), None).conflict(&v(Some("\"b\""), None)));
        assert!(!v(Some("\"a\""), None).conflict(&v(None, Some("d"))));
        assert!(v(None, Some("d1")).conflict(&v(Some("\"x\""), Some("d2"))));
    }

    #[test]
    fn only_network_and_server_trouble_is_retried() {
        let status = |code| status_error("http://h/a", code);
        assert!(transient(&status(503)));
        assert!(transient(&status(429)));
        assert!(!transient(&status(404)));
        assert!(!transient(&SourceError::Changed { url: "u".into() }));
        assert_eq!(
            status(404).to_string(),
            "unexpected HTTP response: 404 Not Found from http://h/a"
        );
    }
}
