//! The `Download` call (spec §5.3): payload files go to the module one at a time through the
//! `stream-next` and `streams/<name>` FIFOs, or into `files/` when the module exits without
//! reading streams. A payload read error kills the module before it can see an end of stream.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::fifo::{self, FifoWriter, Opened};
use super::tree::{remove_tree, sync_dir};
use super::{is_plain_name, ModuleError, ModuleRunner};
use crate::install::process::{Captured, Ending, Supervised};

/// Why filling a file stopped: the data source failed, or the module side did.
pub(super) enum Fail {
    /// The payload could not be read (bad checksum, truncated artifact).
    Source(ModuleError),
    /// Writing to the module or to `files/` failed.
    Sink(io::Error),
}

enum Mode {
    /// The module has not opened `stream-next` yet, nor exited.
    Undecided,
    /// The module reads streams; holds `stream-next` when it is already open for the next line.
    Streaming(Option<FifoWriter>),
    /// The module exited 0 without reading: files go to `files/`.
    Files,
    /// An error ended the session.
    Failed,
}

/// A running `Download` call that receives the payload files in order, so the artifact
/// reader's callbacks can feed it directly. Dropping it without [`Download::finish`] kills the
/// module without sending the end marker.
pub struct Download {
    runner: ModuleRunner,
    state: &'static str,
    with_sizes: bool,
    module: Supervised,
    deadline: Instant,
    mode: Mode,
    tree: PathBuf,
}

impl ModuleRunner {
    /// Starts the `Download` (or `DownloadWithFileSizes`) call; feed it with
    /// [`Download::file`] and complete it with [`Download::finish`]. The tree must exist.
    /// The module timeout covers the whole session, time spent reading the payload included.
    pub fn start_download(&self, with_sizes: bool) -> Result<Download, ModuleError> {
        let state = if with_sizes {
            "DownloadWithFileSizes"
        } else {
            "Download"
        };
        let tree = self.tree_dir();
        let mut cmd = self.command(state)?;
        for stale in ["files", "streams"] {
            remove_tree(&tree.join(stale))?;
        }
        let ctx = |what: &str| format!("{state}: creating {}", tree.join(what).display());
        fifo::create(&tree.join("stream-next"))
            .map_err(|e| ModuleError::io(ctx("stream-next"), e))?;
        fs::create_dir(tree.join("streams")).map_err(|e| ModuleError::io(ctx("streams"), e))?;
        let deadline = self.deadline();
        let module =
            Supervised::spawn(&mut cmd, self.kill_grace).map_err(|e| self.spawn_error(state, e))?;
        Ok(Download {
            runner: self.clone(),
            state,
            with_sizes,
            module,
            deadline,
            mode: Mode::Undecided,
            tree,
        })
    }
}

impl Download {
    /// Whether the module reads streams (`Some(true)`), took the files from `files/`
    /// (`Some(false)`), or has not shown yet (`None`).
    pub fn streaming(&self) -> Option<bool> {
        match self.mode {
            Mode::Streaming(_) => Some(true),
            Mode::Files => Some(false),
            Mode::Undecided | Mode::Failed => None,
        }
    }

    /// Hands one payload file to the module. A read error from `data` (a checksum mismatch)
    /// kills the module and fails the download.
    pub fn file(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<(), ModuleError> {
        self.put(name, size, &mut |out| copy(name, data, out))
    }

    pub(super) fn put(
        &mut self,
        name: &str,
        size: u64,
        fill: &mut dyn FnMut(&mut dyn Write) -> Result<u64, Fail>,
    ) -> Result<(), ModuleError> {
        let r = self.put_inner(name, size, fill);
        if r.is_err() {
            self.abort();
        }
        r
    }

    fn put_inner(
        &mut self,
        name: &str,
        size: u64,
        fill: &mut dyn FnMut(&mut dyn Write) -> Result<u64, Fail>,
    ) -> Result<(), ModuleError> {
        if !is_plain_name(name) {
            return Err(ModuleError::InvalidFileName(name.to_string()));
        }
        if matches!(self.mode, Mode::Undecided) {
            self.decide()?;
        }
        let check = |n: u64| match n == size {
            true => Ok(()),
            false => Err(Fail::Source(ModuleError::Payload {
                file: name.to_string(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{n} bytes where the header announced {size}"),
                ),
            })),
        };
        match std::mem::replace(&mut self.mode, Mode::Failed) {
            Mode::Files => {
                let path = self.tree.join("files").join(name);
                let ctx = format!("{}: writing {}", self.state, path.display());
                let mut f = File::create(&path).map_err(|e| ModuleError::io(&ctx, e))?;
                match fill(&mut f).and_then(check) {
                    Err(Fail::Source(e)) => {
                        // Unverified data must not stay where a module looks for payloads.
                        let _ = fs::remove_file(&path);
                        return Err(e);
                    }
                    Err(Fail::Sink(e)) => return Err(ModuleError::io(ctx, e)),
                    Ok(()) => f.sync_all().map_err(|e| ModuleError::io(ctx, e))?,
                }
                self.mode = Mode::Files;
            }
            Mode::Streaming(next) => {
                let mut next = match next {
                    Some(w) => w,
                    None => self.open("stream-next")?,
                };
                let rel = format!("streams/{name}");
                fifo::create(&self.tree.join(&rel))
                    .map_err(|e| ModuleError::io(format!("{}: creating {rel}", self.state), e))?;
                let line = match self.with_sizes {
                    true => format!("{rel} {size}\n"),
                    false => format!("{rel}\n"),
                };
                let sent = next.write_all(line.as_bytes());
                drop(next);
                sent.map_err(|e| self.sink_error(e))?;
                let mut stream = self.open(&rel)?;
                match fill(&mut stream).and_then(check) {
                    Ok(()) => {}
                    Err(Fail::Sink(e)) => return Err(self.sink_error(e)),
                    Err(Fail::Source(e)) => {
                        // Kill while the stream is still open: the module must not see its end.
                        let _ = self.module.terminate();
                        drop(stream);
                        return Err(e);
                    }
                }
                drop(stream);
                self.mode = Mode::Streaming(None);
            }
            Mode::Undecided | Mode::Failed => {
                return Err(ModuleError::io(
                    format!("{}: sending {name}", self.state),
                    io::Error::other("the download already failed"),
                ))
            }
        }
        Ok(())
    }

    /// Waits until the module either opens `stream-next` or exits, which tells whether it
    /// reads streams.
    fn decide(&mut self) -> Result<(), ModuleError> {
        match fifo::open_writer(
            &self.tree.join("stream-next"),
            &mut self.module,
            self.deadline,
        ) {
            Ok(Opened::Writer(w)) => self.mode = Mode::Streaming(Some(w)),
            Ok(Opened::Exited(s)) if s.success() => {
                self.remove_fifos();
                let files = self.tree.join("files");
                fs::create_dir(&files)
                    .map_err(|e| ModuleError::io(format!("creating {}", files.display()), e))?;
                self.mode = Mode::Files;
            }
            Ok(Opened::Exited(s)) => return Err(self.exited_early(s)),
            Ok(Opened::TimedOut) => return Err(self.timed_out()),
            Err(e) => {
                return Err(ModuleError::io(
                    format!("{}: opening stream-next", self.state),
                    e,
                ))
            }
        }
        Ok(())
    }

    fn open(&mut self, rel: &str) -> Result<FifoWriter, ModuleError> {
        match fifo::open_writer(&self.tree.join(rel), &mut self.module, self.deadline) {
            Ok(Opened::Writer(w)) => Ok(w),
            Ok(Opened::Exited(s)) => Err(self.exited_early(s)),
            Ok(Opened::TimedOut) => Err(self.timed_out()),
            Err(e) => Err(ModuleError::io(format!("{}: opening {rel}", self.state), e)),
        }
    }

    fn ended(&mut self, ending: Ending) -> ModuleError {
        let out = self.module.captured();
        match self.runner.judge(self.state, ending, out.clone()) {
            Err(e) => e,
            Ok(_) => ModuleError::Unfinished {
                module: self.runner.payload_type.clone(),
                state: self.state.to_string(),
                output: Box::new(out),
            },
        }
    }

    /// The module exited while we still had data or the end marker for it.
    fn exited_early(&mut self, status: ExitStatus) -> ModuleError {
        self.ended(status.into())
    }

    fn timed_out(&mut self) -> ModuleError {
        let _ = self.module.terminate();
        self.ended(Ending::TimedOut)
    }

    /// A write to a FIFO failed: the module stopped reading (broken pipe), or the deadline
    /// passed while it was not reading.
    fn sink_error(&mut self, e: io::Error) -> ModuleError {
        match e.kind() {
            io::ErrorKind::TimedOut => self.timed_out(),
            io::ErrorKind::BrokenPipe => {
                // It normally exits right after closing; give it a moment to report a status.
                let soon = (Instant::now() + Duration::from_secs(1)).min(self.deadline);
                match self.module.wait_until(soon) {
                    Ok(Ending::TimedOut) | Err(_) => self.ended(Ending::Exited(0)),
                    Ok(ending) => self.ended(ending),
                }
            }
            _ => {
                let _ = self.module.terminate();
                ModuleError::io(format!("{}: writing to the update module", self.state), e)
            }
        }
    }

    /// Sends the end marker (an empty `stream-next`) and waits for the module's verdict; in
    /// `files/` mode, makes the files durable.
    pub fn finish(mut self) -> Result<Captured, ModuleError> {
        let r = self.finish_inner();
        if r.is_err() {
            self.abort();
        }
        r
    }

    fn finish_inner(&mut self) -> Result<Captured, ModuleError> {
        if matches!(self.mode, Mode::Undecided) {
            self.decide()?;
        }
        match std::mem::replace(&mut self.mode, Mode::Failed) {
            Mode::Streaming(next) => {
                let marker = match next {
                    Some(w) => w,
                    None => self.open("stream-next")?,
                };
                drop(marker);
                let ending = self.module.wait_until(self.deadline).map_err(|e| {
                    ModuleError::io(format!("{}: waiting for update module", self.state), e)
                })?;
                self.remove_fifos();
                let out = self.module.captured();
                self.runner.judge(self.state, ending, out)
            }
            Mode::Files => {
                sync_dir(&self.tree.join("files"))?;
                sync_dir(&self.tree)?;
                Ok(self.module.captured())
            }
            Mode::Undecided | Mode::Failed => Err(ModuleError::io(
                format!("{}: finishing", self.state),
                io::Error::other("the download already failed"),
            )),
        }
    }

    fn abort(&mut self) {
        let _ = self.module.terminate();
        self.mode = Mode::Failed;
        self.remove_fifos();
    }

    fn remove_fifos(&self) {
        let _ = fs::remove_file(self.tree.join("stream-next"));
        let _ = fs::remove_dir_all(self.tree.join("streams"));
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        if !matches!(self.module.try_wait(), Ok(Some(_))) {
            let _ = self.module.terminate();
        }
        self.remove_fifos();
    }
}

/// Copies `data` to `out`, telling a read failure (the payload is bad) from a write failure
/// (the module side is), which `io::copy` would conflate.
fn copy(name: &str, data: &mut dyn Read, out: &mut dyn Write) -> Result<u64, Fail> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                let file = name.to_string();
                return Err(Fail::Source(ModuleError::Payload { file, source }));
            }
        };
        out.write_all(&buf[..n]).map_err(Fail::Sink)?;
        total += n as u64;
    }
}
