//! A tiny blocking HTTP/1.1 server on loopback for the source tests, scriptable per request to
//! misbehave the ways real networks and servers do.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How to answer; request `i` (counting from 0) uses entry `i` of the per-request lists, and
/// requests past a list's end get the default behaviour.
#[derive(Clone, Default)]
pub struct Plan {
    /// The resource.
    pub body: Arc<Vec<u8>>,
    /// The ETag sent with request `i`; the last entry repeats. Empty: no ETag.
    pub etags: Vec<String>,
    /// Sent as `Last-Modified`, and the validator when there is no ETag.
    pub last_modified: Option<String>,
    /// Leave out `Content-Length`; the body then ends when the connection closes.
    pub no_content_length: bool,
    /// Answer Range requests with 200 and the full body.
    pub ignore_range: bool,
    /// Request `i` closes the connection after this many body bytes.
    pub cut: Vec<usize>,
    /// Request `i` sleeps this long after `stall_after` body bytes.
    pub stall: Vec<Duration>,
    /// Where in the body the stall happens.
    pub stall_after: usize,
    /// Answer every request with this status and a short text body.
    pub status: Option<u16>,
    /// Request `i` (a Range request) gets a Content-Range one byte off.
    pub bad_range: Vec<bool>,
    /// 206 replies carry this many bytes past the end of the range they announce.
    pub overlong: usize,
    /// Serve TLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// What the server saw, for assertions on the requests the client sent.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// The `Range` header.
    pub range: Option<String>,
    /// The `If-Range` header.
    pub if_range: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

/// A running server; it stops accepting when dropped.
pub struct TestServer {
    /// The loopback port it listens on.
    pub port: u16,
    tls: bool,
    /// Every request so far, in arrival order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    /// Listens on an ephemeral loopback port; each connection gets its own thread, so a
    /// stalled response does not hold up the client's reconnect.
    pub fn start(plan: Plan) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tls = plan.tls.is_some();
        let plan = Arc::new(plan);
        let count = Arc::new(AtomicUsize::new(0));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (plan, seen, count) = (plan.clone(), seen2.clone(), count.clone());
                thread::spawn(move || serve(stream, &plan, &seen, &count));
            }
        });
        TestServer {
            port,
            tls,
            seen,
            stop,
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// A snapshot of the requests seen so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, plan: &Plan, seen: &Mutex<Vec<Seen>>, count: &AtomicUsize) {
    let _ = stream.set_nodelay(true);
    match &plan.tls {
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let _ = respond(&mut tls, plan, seen, count);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
        None => {
            let mut tcp = stream;
            let _ = respond(&mut tcp, plan, seen, count);
            let _ = tcp.shutdown(Shutdown::Both);
        }
    }
}

fn respond<S: Read + Write>(
    stream: &mut S,
    plan: &Plan,
    seen: &Mutex<Vec<Seen>>,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    let request = read_request(stream)?;
    let index = count.fetch_add(1, Ordering::SeqCst);
    seen.lock().expect("seen lock").push(request.clone());
    if let Some(status) = plan.status {
        let text = format!("status {status}\n");
        let head = format!(
            "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            text.len()
        );
        return stream.write_all(format!("{head}{text}").as_bytes());
    }
    let body = &plan.body;
    let etag = plan.etags.get(index).or(plan.etags.last());
    let validator = etag.or(plan.last_modified.as_ref());
    let fresh = match (&request.if_range, validator) {
        (Some(asked), Some(current)) => asked == current,
        (Some(_), None) => false,
        (None, _) => true,
    };
    let start = request
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok())
        .filter(|_| fresh && !plan.ignore_range);
    let mut head = match start {
        Some(start) if start >= body.len() => {
            let head = "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n";
            return stream.write_all(head.as_bytes());
        }
        Some(start) => {
            let shift = usize::from(plan.bad_range.get(index).copied().unwrap_or(false));
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {}-{}/{}\r\n",
                start + shift,
                body.len() - 1,
                body.len()
            )
        }
        None => "HTTP/1.1 200 OK\r\n".to_string(),
    };
    let mut part = body[start.unwrap_or(0)..].to_vec();
    if start.is_some() {
        part.extend(std::iter::repeat_n(b'!', plan.overlong));
    }
    if !plan.no_content_length {
        head += &format!("Content-Length: {}\r\n", part.len());
    }
    if let Some(etag) = etag {
        head += &format!("ETag: {etag}\r\n");
    }
    if let Some(date) = &plan.last_modified {
        head += &format!("Last-Modified: {date}\r\n");
    }
    head += "Connection: close\r\n\r\n";
    stream.write_all(head.as_bytes())?;
    let cut = plan.cut.get(index).copied().unwrap_or(usize::MAX);
    let mut sent = 0;
    let mut stall = plan.stall.get(index).copied();
    for chunk in part.chunks(16 * 1024) {
        if let Some(pause) = stall.filter(|_| sent >= plan.stall_after) {
            stream.flush()?;
            thread::sleep(pause);
            stall = None;
        }
        let n = chunk.len().min(cut.saturating_sub(sent));
        stream.write_all(&chunk[..n])?;
        sent += n;
        if sent >= cut {
            return stream.flush();
        }
    }
    stream.flush()
}

fn read_request<S: Read>(stream: &mut S) -> std::io::Result<Seen> {
    let mut reader = BufReader::new(stream);
    let mut seen = Seen::default();
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            return Ok(seen);
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = Some(value.trim().to_string());
        match name.trim().to_ascii_lowercase().as_str() {
            "range" => seen.range = value,
            "if-range" => seen.if_range = value,
            "user-agent" => seen.user_agent = value,
            _ => {}
        }
    }
}
