//! URL sources against the loopback test server: dropped, stalled and misanswered
//! connections must still deliver every byte exactly once, or fail with a clear message.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::testserver::{Plan, TestServer};
use super::{open, HttpOptions, SourceError, SourceSpec};

/// Deterministic bytes that make a shifted or repeated block visible in the hash.
fn body(len: usize) -> Arc<Vec<u8>> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let bytes = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    Arc::new(bytes)
}

struct Run {
    opts: HttpOptions,
    retries: Arc<Mutex<Vec<String>>>,
}

fn run(max_retries: u32) -> Run {
    let retries = Arc::new(Mutex::new(Vec::new()));
    let log = retries.clone();
    let opts = HttpOptions {
        max_retries,
        retry_delay: Duration::from_millis(5),
        max_retry_delay: Duration::from_millis(20),
        stall_timeout: Duration::from_secs(3),
        on_retry: Some(Arc::new(move |msg: &str| {
            log.lock().unwrap().push(msg.to_string());
        })),
        ..HttpOptions::default()
    };
    Run { opts, retries }
}

impl Run {
    /// Reads with awkward buffer sizes, as a tar or gzip reader above would.
    fn fetch(&self, url: &str) -> io::Result<Vec<u8>> {
        let mut source = open(&SourceSpec::Url(url.to_string()), &self.opts)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 70_000];
        for size in [1, 7, 4096, 65_536, 13].into_iter().cycle() {
            match source.read(&mut buf[..size])? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
        unreachable!()
    }

    fn retries(&self) -> Vec<String> {
        self.retries.lock().unwrap().clone()
    }
}

fn sha(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

fn source_error(err: &io::Error) -> &SourceError {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<SourceError>())
        .unwrap_or_else(|| panic!("not a source error: {err}"))
}

#[test]
fn five_mib_arrive_intact_through_two_cuts() {
    let data = body(5 * 1024 * 1024);
    let server = TestServer::start(Plan {
        body: data.clone(),
        etags: vec!["\"v1\"".into()],
        cut: vec![1_000_003, 1_500_000],
        ..Plan::default()
    });
    let run = run(3);
    let got = run.fetch(&server.url("/a.mender")).unwrap();
    assert_eq!(sha(&got), sha(&data));
    let seen = server.requests();
    let ranges: Vec<_> = seen.iter().map(|s| s.range.as_deref()).collect();
    assert_eq!(
        ranges,
        [None, Some("bytes=1000003-"), Some("bytes=2500003-")]
    );
    assert_eq!(seen[1].if_range.as_deref(), Some("\"v1\""));
    assert!(seen[0]
        .user_agent
        .as_deref()
        .unwrap()
        .starts_with("Mender/"));
    let retries = run.retries();
    assert_eq!(retries.len(), 2, "{retries:?}");
    assert!(retries[0].starts_with("connection lost at byte 1000003 of 5242880 ("));
    // 1.5 MB of progress in between reset the budget.
    assert!(
        retries[1].ends_with("resuming (attempt 1/3)"),
        "{retries:?}"
    );
}

#[test]
fn a_server_ignoring_range_is_skipped_forward() {
    let data = body(1_000_000);
    let server = TestServer::start(Plan {
        body: data.clone(),
        ignore_range: true,
        last_modified: Some("Tue, 01 Apr 2025 10:00:00 GMT".into()),
        cut: vec![300_001, 20_000],
        ..Plan::default()
    });
    let run = run(3);
    let got = run.fetch(&server.url("/a.mender")).unwrap();
    assert_eq!(sha(&got), sha(&data));
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].range.as_deref(), Some("bytes=300001-"));
    assert_eq!(
        seen[2].if_range.as_deref(),
        Some("Tue, 01 Apr 2025 10:00:00 GMT")
    );
    assert_eq!(run.retries().len(), 2);
}

#[test]
fn a_changed_etag_fails_the_download() {
    let server = TestServer::start(Plan {
        body: body(200_000),
        etags: vec!["\"v1\"".into(), "\"v2\"".into()],
        cut: vec![100_000],
        ..Plan::default()
    });
    let url = server.url("/a.mender");
    let err = run(3).fetch(&url).unwrap_err();
    let expected = format!("the artifact changed on the server while downloading {url}");
    assert_eq!(err.to_string(), expected);
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(
        server.requests().len(),
        2,
        "a changed artifact is not retried"
    );
}

#[test]
fn a_wrong_content_range_is_retried() {
    let data = body(200_000);
    let server = TestServer::start(Plan {
        body: data.clone(),
        cut: vec![50_000],
        bad_range: vec![false, true],
        ..Plan::default()
    });
    let run = run(3);
    assert_eq!(sha(&run.fetch(&server.url("/a")).unwrap()), sha(&data));
    let retries = run.retries();
    assert_eq!(retries.len(), 2);
    assert_eq!(
        retries[1],
        "resume failed at byte 50000 of 200000 (server answered a range request from byte 50000 \
         with Content-Range \"bytes 50001-199999/200000\"), resuming (attempt 2/3)"
    );
}

#[test]
fn a_reply_longer_than_its_range_is_cut_at_the_total() {
    let data = body(200_000);
    let server = TestServer::start(Plan {
        body: data.clone(),
        cut: vec![150_000],
        overlong: 100,
        ..Plan::default()
    });
    assert_eq!(sha(&run(3).fetch(&server.url("/a")).unwrap()), sha(&data));
}

#[test]
fn a_persistently_wrong_content_range_fails() {
    let server = TestServer::start(Plan {
        body: body(200_000),
        cut: vec![50_000],
        bad_range: vec![false, true, true, true, true],
        ..Plan::default()
    });
    let url = server.url("/a");
    let err = run(3).fetch(&url).unwrap_err();
    assert!(matches!(
        source_error(&err),
        SourceError::RetriesExhausted { retries: 3, .. }
    ));
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "download of {url} failed at byte 50000 of 200000 after 3 retries: server answered"
        )),
        "{msg}"
    );
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn too_many_drops_without_progress_give_up() {
    let server = TestServer::start(Plan {
        body: body(100_000),
        cut: vec![10; 10],
        ..Plan::default()
    });
    let run = run(4);
    let err = run.fetch(&server.url("/a")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("failed at byte 50 of 100000 after 4 retries"),
        "{msg}"
    );
    assert_eq!(server.requests().len(), 5);
    let retries = run.retries();
    assert_eq!(retries.len(), 4);
    assert!(retries[3].ends_with("(attempt 4/4)"));
}

#[test]
fn a_stall_counts_as_a_dropped_connection() {
    let data = body(400_000);
    let server = TestServer::start(Plan {
        body: data.clone(),
        stall: vec![Duration::from_secs(2)],
        stall_after: 100_000,
        ..Plan::default()
    });
    let mut run = run(2);
    run.opts.stall_timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    assert_eq!(sha(&run.fetch(&server.url("/a")).unwrap()), sha(&data));
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "waited out the stall"
    );
    let retries = run.retries();
    assert_eq!(retries.len(), 1);
    assert!(retries[0].contains("(no data, timed out)"), "{retries:?}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn not_found_names_status_and_url_without_secrets() {
    let server = TestServer::start(Plan {
        status: Some(404),
        ..Plan::default()
    });
    let url = server.url("/missing.mender?token=secret");
    let err = open(&SourceSpec::Url(url), &run(3).opts).unwrap_err();
    let shown = server.url("/missing.mender?…");
    assert_eq!(
        err.to_string(),
        format!("unexpected HTTP response: 404 Not Found from {shown}")
    );
    assert_eq!(server.requests().len(), 1, "no retry on 404");
}

#[test]
fn a_body_without_length_streams_but_cannot_resume() {
    let data = body(300_000);
    let plan = Plan {
        body: data.clone(),
        no_content_length: true,
        ..Plan::default()
    };
    let whole = TestServer::start(plan.clone());
    let source = open(&SourceSpec::Url(whole.url("/a")), &run(3).opts).unwrap();
    assert_eq!(source.len(), None);
    assert_eq!(sha(&run(3).fetch(&whole.url("/a")).unwrap()), sha(&data));

    // Without a length a cut looks like the end of a close-delimited body, so the artifact
    // reader's checksums catch it; a stall is what this layer can detect.
    let cut = TestServer::start(Plan {
        stall: vec![Duration::from_secs(2)],
        stall_after: 50_000,
        ..plan
    });
    let mut run = run(3);
    run.opts.stall_timeout = Duration::from_millis(200);
    let err = run.fetch(&cut.url("/a")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("lost at byte "), "{msg}");
    assert!(msg.ends_with("the server sent no Content-Length, so the download cannot be resumed"));
    assert!(run.retries().is_empty());
}

#[test]
fn connection_refused_is_a_clear_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/a.mender");
    let err = open(&SourceSpec::Url(url.clone()), &run(3).opts).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot download {url}: ")),
        "{err}"
    );
}
