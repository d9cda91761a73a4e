//! The pull-style form of `Download`, for callers that hand out payload files on request
//! rather than from inside the artifact reader's callbacks.

use std::io::{self, Write};

use super::download::Fail;
use super::{ModuleError, ModuleRunner};
use crate::install::process::Captured;

/// A pull-style source of payload files, for callers that can hand out files on request.
pub trait PayloadFiles {
    /// The next file's name and size, or `None` after the last one.
    fn next_file(&mut self) -> Result<Option<(String, u64)>, ModuleError>;
    /// Writes the current file's bytes to `out`, failing (for instance on a checksum
    /// mismatch) rather than returning short data.
    fn copy_current(&mut self, out: &mut dyn Write) -> Result<(), ModuleError>;
}

/// Counts what goes through and keeps the writer's own error, so a failure of the module side
/// is not mistaken for a failure of the data source.
struct Recording<'w> {
    inner: &'w mut dyn Write,
    written: u64,
    error: Option<io::Error>,
}

impl Write for Recording<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.written += n as u64;
                Ok(n)
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(copy)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl ModuleRunner {
    /// Runs a whole `Download` call over `files`, asking the module first whether it wants
    /// file sizes.
    pub fn download(&self, files: &mut dyn PayloadFiles) -> Result<Captured, ModuleError> {
        let with_sizes = self.provide_payload_file_sizes()?;
        let mut d = self.start_download(with_sizes)?;
        while let Some((name, size)) = files.next_file()? {
            d.put(&name, size, &mut |out| {
                let mut rec = Recording {
                    inner: out,
                    written: 0,
                    error: None,
                };
                match files.copy_current(&mut rec) {
                    Ok(()) => Ok(rec.written),
                    Err(e) => Err(rec.error.map(Fail::Sink).unwrap_or(Fail::Source(e))),
                }
            })?;
        }
        d.finish()
    }
}
