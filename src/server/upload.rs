//! Validating artifact uploads while they stream in: the bytes go through a channel to a
//! blocking thread that writes them to a temporary file and, at the same time, reads them as an
//! artifact, checking every checksum. The file is kept only if the artifact is valid.

use std::io::{self, BufWriter, Read, Write};

use axum::body::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::artifact::{read_artifact, ArtifactInfo, ReadOptions, Validate};

/// A validated upload: what was read, its size, and the file holding it.
pub struct Validated {
    /// The artifact's description.
    pub info: ArtifactInfo,
    /// Bytes received.
    pub size: u64,
    /// The file holding them.
    pub file: tempfile::NamedTempFile,
}

/// Feeds chunks to the validating thread.
pub struct UploadValidator {
    tx: Option<mpsc::Sender<Bytes>>,
    worker: tokio::task::JoinHandle<Result<Validated, String>>,
}

struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

struct TeeReader<W: Write> {
    inner: ChannelReader,
    out: W,
    count: u64,
}

impl<W: Write> Read for TeeReader<W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        self.count += n as u64;
        Ok(n)
    }
}

impl UploadValidator {
    /// Starts a validator writing to `file`.
    pub fn start(file: tempfile::NamedTempFile) -> Self {
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let worker = tokio::task::spawn_blocking(move || {
            let out =
                BufWriter::with_capacity(256 << 10, file.reopen().map_err(|e| e.to_string())?);
            let mut tee = TeeReader {
                inner: ChannelReader {
                    rx,
                    cur: Bytes::new(),
                },
                out,
                count: 0,
            };
            let info = read_artifact(&mut tee, &ReadOptions::default(), &mut Validate)
                .map_err(|e| e.to_string())?;
            io::copy(&mut tee, &mut io::sink()).map_err(|e| e.to_string())?;
            tee.out.flush().map_err(|e| e.to_string())?;
            Ok(Validated {
                info,
                size: tee.count,
                file,
            })
        });
        UploadValidator {
            tx: Some(tx),
            worker,
        }
    }

    /// Passes on a chunk. False when the validator has already stopped (invalid artifact).
    pub async fn feed(&mut self, chunk: Bytes) -> bool {
        match &self.tx {
            Some(tx) => tx.send(chunk).await.is_ok(),
            None => false,
        }
    }

    /// Ends the input and waits for the verdict.
    pub async fn finish(mut self) -> Result<Validated, String> {
        self.tx.take();
        self.worker
            .await
            .map_err(|e| format!("validation stopped: {e}"))?
    }
}

/// The management API fields of an artifact, from what was read.
pub fn artifact_meta(info: &ArtifactInfo) -> Map<String, Value> {
    let h = &info.header_info;
    let mut provides = Map::new();
    provides.insert("artifact_name".into(), json!(h.artifact_name));
    if let Some(g) = &h.artifact_group {
        provides.insert("artifact_group".into(), json!(g));
    }
    let mut depends = Map::new();
    depends.insert("device_type".into(), json!(h.depends_device_type));
    if !h.depends_artifact_name.is_empty() {
        depends.insert("artifact_name".into(), json!(h.depends_artifact_name));
    }
    if !h.depends_artifact_group.is_empty() {
        depends.insert("artifact_group".into(), json!(h.depends_artifact_group));
    }
    let mut clears: Vec<String> = Vec::new();
    let mut updates = Vec::new();
    for (i, p) in info.payloads.iter().enumerate() {
        for (k, v) in info.merged_provides(i) {
            provides.insert(k, json!(v));
        }
        for (k, v) in info.merged_depends(i) {
            let v = match v {
                Value::Array(a) => Value::Array(a),
                other => json!([other]),
            };
            depends.insert(k, v);
        }
        for c in p.type_info.clears_provides.iter().flatten() {
            if !clears.contains(c) {
                clears.push(c.clone());
            }
        }
        let files: Vec<Value> = p
            .files
            .iter()
            .map(|f| {
                json!({
                    "name": f.name, "checksum": hex::encode(f.checksum), "size": f.size,
                    "date": crate::server::clock::rfc3339(f.mtime),
                })
            })
            .collect();
        updates.push(json!({
            "type_info": { "type": info.payload_type(i) },
            "files": files,
            // An array, as upstream's clients (mender-cli 1.9) decode it.
            "meta_data": info.merged_meta_data(i).map(|m| vec![Value::Object(m)]).unwrap_or_default(),
        }));
    }
    let mut m = Map::new();
    m.insert(
        "info".into(),
        json!({ "format": "mender", "version": info.version }),
    );
    m.insert("signed".into(), json!(info.signature.is_some()));
    m.insert("updates".into(), json!(updates));
    m.insert("artifact_provides".into(), Value::Object(provides));
    m.insert("artifact_depends".into(), Value::Object(depends));
    m.insert("clears_artifact_provides".into(), json!(clears));
    m
}
