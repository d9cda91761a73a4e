//! A small HTTP/1.1 file server on loopback for installer tests: supports `Range`, and can
//! drop the connection after a number of bytes on the first request.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A running server; requests counted in `requests`.
pub struct Server {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
}

/// Serves `body` at `/artifact.mender`; the first response is cut after `cut_after` bytes.
pub fn serve(body: Vec<u8>, cut_after: Option<usize>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/artifact.mender", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut start = 0usize;
            let mut path = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if line.starts_with("GET ") {
                    path = line.split(' ').nth(1).unwrap_or("").to_string();
                }
                if let Some(r) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    start = r.trim().trim_end_matches('-').parse().unwrap_or(0);
                }
            }
            if path != "/artifact.mender" {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            let total = body.len();
            let head = if start > 0 {
                format!("HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n", total - start, start, total - 1, total)
            } else {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nAccept-Ranges: bytes\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n")
            };
            let _ = stream.write_all(head.as_bytes());
            let end = match cut_after {
                Some(c) if n == 0 => (start + c).min(total),
                _ => total,
            };
            let _ = stream.write_all(&body[start..end]);
            let _ = stream.flush();
        }
    });
    Server { url, requests }
}
