//! The writing end of the download FIFOs, done without ever blocking for good: opening waits
//! for a reader while watching the module and the deadline, and writes wait with `poll`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::ExitStatus;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use crate::install::process::Supervised;

/// Creates a FIFO readable and writable by the owner only, replacing whatever was there.
pub(super) fn create(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(io::Error::from)
}

/// What happened while waiting for the module to open a FIFO for reading.
pub(super) enum Opened {
    /// The module is reading; the FIFO is open for writing.
    Writer(FifoWriter),
    /// The module exited without opening it.
    Exited(ExitStatus),
    /// The call's deadline passed first.
    TimedOut,
}

/// Opens `path` for writing once a reader has it open. A plain blocking open would hang for
/// ever if the module never opens the FIFO, so this retries a non-blocking open (which fails
/// with ENXIO while there is no reader) and checks in between whether the module has exited.
pub(super) fn open_writer(
    path: &Path,
    module: &mut Supervised,
    deadline: Instant,
) -> io::Result<Opened> {
    let mut nap = Duration::from_micros(100);
    loop {
        let opened = OpenOptions::new()
            .write(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(path);
        match opened {
            Ok(file) => return Ok(Opened::Writer(FifoWriter { file, deadline })),
            Err(e) if e.raw_os_error() == Some(Errno::ENXIO as i32) => {}
            Err(e) => return Err(e),
        }
        if let Some(status) = module.try_wait()? {
            return Ok(Opened::Exited(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Opened::TimedOut);
        }
        thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}

/// A non-blocking FIFO writer that waits for room with `poll` up to the call's deadline, then
/// fails with `TimedOut`; a reader that went away gives `BrokenPipe` (SIGPIPE is ignored by
/// Rust programs).
pub(super) struct FifoWriter {
    file: File,
    deadline: Instant,
}

impl Write for FifoWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.file.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            let now = Instant::now();
            if now >= self.deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the update module stopped reading",
                ));
            }
            let wait = (self.deadline - now).min(Duration::from_secs(1));
            let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLOUT)];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
