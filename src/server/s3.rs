//! Artifact files in S3-compatible object storage: objects written and deleted with AWS
//! Signature V4 requests, and handed to devices and tools as pre-signed GET URLs (the object
//! store then serves `Range` itself), as upstream Mender does.
//!
//! URL form: `s3://BUCKET?endpoint=http://HOST:PORT&region=REGION`; credentials come from
//! `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`. Without `endpoint`, AWS itself is used.

use std::io::{self, Read};
use std::path::Path;

use ring::hmac;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// A bucket and how to reach it.
#[derive(Debug, Clone)]
pub struct S3Store {
    endpoint: String,
    host: String,
    bucket: String,
    region: String,
    access_key: String,
    secret_key: String,
    /// One agent for every request: connections are reused, and none waits forever.
    agent: ureq::Agent,
}

/// A storage URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct S3Error(pub String);

fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hmac_sha256(key: &[u8], msg: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), msg.as_bytes())
        .as_ref()
        .to_vec()
}

fn stamps(now: OffsetDateTime) -> (String, String) {
    let date = format!("{:04}{:02}{:02}", now.year(), now.month() as u8, now.day());
    let full = format!(
        "{date}T{:02}{:02}{:02}Z",
        now.hour(),
        now.minute(),
        now.second()
    );
    (date, full)
}

fn io_err(what: String) -> io::Error {
    io::Error::other(what)
}

/// An object store that stops answering is given up on after this long without progress.
const STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// The HTTP agent the store's requests go through.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(STALL))
        .timeout_per_read(Some(STALL))
        .timeout_per_write(Some(STALL))
        .build()
        .into()
}

impl S3Store {
    /// Parses `s3://BUCKET?endpoint=...&region=...` and reads the credentials.
    pub fn from_url(url: &str) -> Result<S3Store, S3Error> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| S3Error(format!("not an s3:// URL: {url:?}")))?;
        let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
        let bucket = bucket.trim_end_matches('/');
        if bucket.is_empty() || bucket.contains('/') {
            return Err(S3Error(format!("{url:?} does not name one bucket")));
        }
        let mut region = "us-east-1".to_string();
        let mut endpoint = None;
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some(("region", v)) => region = v.to_string(),
                Some(("endpoint", v)) => endpoint = Some(v.trim_end_matches('/').to_string()),
                _ => return Err(S3Error(format!("unknown storage URL parameter {kv:?}"))),
            }
        }
        let endpoint = endpoint.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let (scheme, host) = endpoint
            .split_once("://")
            .ok_or_else(|| S3Error(format!("endpoint {endpoint:?} has no scheme")))?;
        if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains(['/', '?', '#'])
        {
            return Err(S3Error(format!(
                "endpoint {endpoint:?} must be http://HOST[:PORT] or https://HOST[:PORT]"
            )));
        }
        // The Host header is signed: an explicit default port is dropped, as HTTP clients
        // (ours included) leave it out of the header they send.
        let default_port = if scheme == "http" { ":80" } else { ":443" };
        let host = host.strip_suffix(default_port).unwrap_or(host).to_string();
        let endpoint = format!("{scheme}://{host}");
        let var = |name: &str| {
            std::env::var(name)
                .map_err(|_| S3Error(format!("{name} must be set for s3:// storage")))
        };
        Ok(S3Store {
            access_key: var("AWS_ACCESS_KEY_ID")?,
            secret_key: var("AWS_SECRET_ACCESS_KEY")?,
            endpoint,
            host,
            bucket: bucket.to_string(),
            region,
            agent: agent(),
        })
    }

    fn scope(&self, date: &str) -> String {
        format!("{date}/{}/s3/aws4_request", self.region)
    }

    fn signature(&self, date: &str, full: &str, canonical: &str) -> String {
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{full}\n{}\n{}",
            self.scope(date),
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let k = hmac_sha256(format!("AWS4{}", self.secret_key).as_bytes(), date);
        let k = hmac_sha256(&k, &self.region);
        let k = hmac_sha256(&k, "s3");
        let k = hmac_sha256(&k, "aws4_request");
        hex::encode(hmac_sha256(&k, &to_sign))
    }

    fn path(&self, key: &str) -> String {
        if key.is_empty() {
            format!("/{}", encode(&self.bucket, false))
        } else {
            format!("/{}/{}", encode(&self.bucket, false), encode(key, true))
        }
    }

    /// A pre-signed GET URL for `key`, valid for `secs` seconds.
    pub fn presign_get(&self, key: &str, secs: i64) -> String {
        let (date, full) = stamps(OffsetDateTime::now_utc());
        let credential = format!("{}/{}", self.access_key, self.scope(&date));
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={full}\
             &X-Amz-Expires={}&X-Amz-SignedHeaders=host",
            encode(&credential, false),
            secs.clamp(1, 604_800)
        );
        let path = self.path(key);
        let canonical = format!(
            "GET\n{path}\n{query}\nhost:{}\n\nhost\nUNSIGNED-PAYLOAD",
            self.host
        );
        let sig = self.signature(&date, &full, &canonical);
        format!("{}{path}?{query}&X-Amz-Signature={sig}", self.endpoint)
    }

    /// Sends a signed request for `key` (the bucket itself when empty), with `extra`
    /// headers (unsigned: S3 signs only `host` and `x-amz-*` necessarily).
    fn request(
        &self,
        method: &str,
        key: &str,
        body: Body<'_>,
        extra: &[(&str, &str)],
    ) -> io::Result<Answer> {
        let (date, full) = stamps(OffsetDateTime::now_utc());
        let path = self.path(key);
        let canonical = format!(
            "{method}\n{path}\n\nhost:{}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n\
             x-amz-date:{full}\n\nhost;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD",
            self.host
        );
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders=host;x-amz-content-sha256;\
             x-amz-date, Signature={}",
            self.access_key,
            self.scope(&date),
            self.signature(&date, &full, &canonical)
        );
        let agent = &self.agent;
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint))
            .header("x-amz-date", &full)
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .header("authorization", auth);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        fn built<B>(
            r: Result<ureq::http::Request<B>, ureq::http::Error>,
        ) -> io::Result<ureq::http::Request<B>> {
            r.map_err(|e| io_err(e.to_string()))
        }
        let resp = match body {
            Body::File(p) => {
                let file = std::fs::File::open(p)?;
                let len = file.metadata()?.len();
                agent.run(built(
                    req.header("content-length", len)
                        .body(ureq::SendBody::from_owned_reader(file)),
                )?)
            }
            // S3 wants a length on every PUT (411 otherwise), an empty body's too.
            Body::Bytes(b) => agent.run(built(req.header("content-length", b.len()).body(b))?),
            Body::None => agent.run(built(req.body(()))?),
        }
        .map_err(|e| io_err(format!("{method} {path}: {e}")))?;
        let status = resp.status().as_u16();
        // An error's body names what is wrong (`<Code>NoSuchBucket</Code>`...).
        let code = if status >= 300 {
            let mut text = String::new();
            let _ = resp
                .into_body()
                .into_reader()
                .take(4096)
                .read_to_string(&mut text);
            error_code(&text)
        } else {
            None
        };
        Ok(Answer { status, code })
    }

    /// Creates the bucket unless it exists (in the store's region: outside us-east-1 S3
    /// wants it named).
    pub fn ensure_bucket(&self) -> io::Result<()> {
        let a = self.request("HEAD", "", Body::None, &[])?;
        if a.status == 200 {
            return Ok(());
        }
        if a.status != 404 {
            return Err(a.error(&format!("bucket {}", self.bucket)));
        }
        let config = if self.region == "us-east-1" {
            Vec::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            )
            .into_bytes()
        };
        let a = self.request("PUT", "", Body::Bytes(config), &[])?;
        match a.status {
            200 | 409 => Ok(()),
            _ => Err(a.error(&format!("creating bucket {}", self.bucket))),
        }
    }

    /// Uploads the file at `path` as `key`, unless `key` exists (`AlreadyExists`; object
    /// stores without conditional writes store it regardless).
    pub fn put_new_file(&self, key: &str, path: &Path) -> io::Result<()> {
        let a = self.request("PUT", key, Body::File(path), &[("if-none-match", "*")])?;
        match a.status {
            200 => Ok(()),
            412 => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{key} exists in the object store"),
            )),
            _ => Err(a.error(&format!("storing {key}"))),
        }
    }

    /// Deletes `key` (no error if absent).
    pub fn delete(&self, key: &str) -> io::Result<()> {
        let a = self.request("DELETE", key, Body::None, &[])?;
        match a.status {
            200 | 204 | 404 => Ok(()),
            _ => Err(a.error(&format!("deleting {key}"))),
        }
    }
}

/// A request body.
enum Body<'a> {
    None,
    File(&'a Path),
    Bytes(Vec<u8>),
}

/// What the object store answered.
struct Answer {
    status: u16,
    /// The S3 error code of an error answer.
    code: Option<String>,
}

impl Answer {
    fn error(&self, what: &str) -> io::Error {
        match &self.code {
            Some(c) => io_err(format!("{what}: status {} ({c})", self.status)),
            None => io_err(format!("{what}: status {}", self.status)),
        }
    }
}

/// The `<Code>` of an S3 error document, if it is a short printable one.
fn error_code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    let code = &body[start..start + len];
    (!code.is_empty() && code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_matches_the_aws_documentation_example() {
        // The pre-signed URL example of the S3 SigV4 documentation (GET /test.txt).
        let s = S3Store {
            endpoint: "https://examplebucket.s3.amazonaws.com".into(),
            host: "examplebucket.s3.amazonaws.com".into(),
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            agent: agent(),
        };
        let canonical = "GET\n/test.txt\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=\
            AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=\
            20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n\
            host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD";
        assert_eq!(
            s.signature("20130524", "20130524T000000Z", canonical),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    /// The head of the one request a fake S3 server on loopback gets for `f`.
    fn sent(f: impl FnOnce(&S3Store) -> io::Result<()>) -> String {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
            reader.get_mut().write_all(answer).unwrap();
            head
        });
        let store = S3Store {
            endpoint: format!("http://127.0.0.1:{port}"),
            host: format!("127.0.0.1:{port}"),
            bucket: "b".into(),
            region: "us-east-1".into(),
            access_key: "k".into(),
            secret_key: "s".into(),
            agent: agent(),
        };
        f(&store).unwrap();
        let head = server.join().unwrap();
        assert!(
            head.contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")),
            "{head}"
        );
        head
    }

    #[test]
    fn bucket_creation_sends_a_length() {
        let head = sent(|s| s.request("PUT", "", Body::Bytes(Vec::new()), &[]).map(drop));
        assert!(head.starts_with("put /b http/1.1\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-length: 0\r\n"), "{head}");
        let head = sent(|s| s.delete("id"));
        assert!(head.starts_with("delete /b/id http/1.1\r\n"), "{head}");
        assert!(!head.contains("content-length"), "{head}");
    }

    #[test]
    fn new_objects_are_put_only_if_absent() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        std::fs::write(&f, b"abc").unwrap();
        let head = sent(|s| s.put_new_file("id", &f));
        assert!(head.starts_with("put /b/id http/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nif-none-match: *\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-length: 3\r\n"), "{head}");
    }

    #[test]
    fn error_codes_are_taken_from_error_documents() {
        let doc = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
                   <Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(error_code(doc).as_deref(), Some("NoSuchBucket"));
        assert_eq!(error_code("<Code>a b</Code>"), None);
        assert_eq!(error_code("<html>busy</html>"), None);
    }

    #[test]
    fn urls_are_parsed_and_checked() {
        std::env::set_var("AWS_ACCESS_KEY_ID", "k");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "s");
        let s =
            S3Store::from_url("s3://b?endpoint=http://127.0.0.1:9000&region=eu-west-1").unwrap();
        assert_eq!(s.host, "127.0.0.1:9000");
        assert_eq!(s.region, "eu-west-1");
        assert!(S3Store::from_url("s3://a/b").is_err());
        assert!(S3Store::from_url("s3://b?color=red").is_err());
        assert!(S3Store::from_url("s3://b?endpoint=http://h:9000/prefix").is_err());
        assert!(S3Store::from_url("s3://b?endpoint=ftp://h").is_err());
        // The signed Host is the one clients send: without an explicit default port.
        for (url, endpoint, host) in [
            ("s3://b?endpoint=http://h:80/", "http://h", "h"),
            ("s3://b?endpoint=https://h:443", "https://h", "h"),
            ("s3://b?endpoint=https://h:80", "https://h:80", "h:80"),
        ] {
            let s = S3Store::from_url(url).unwrap();
            assert_eq!((s.endpoint.as_str(), s.host.as_str()), (endpoint, host));
        }
        assert!(s
            .presign_get("id", 60)
            .starts_with("http://127.0.0.1:9000/b/id?X-Amz-"));
    }
}
