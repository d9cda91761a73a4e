//! Runs update modules and state scripts as supervised child processes: each in its own process
//! group so a timeout can kill everything it started, with its output kept in bounded buffers.

use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Most output kept per stream: a runaway program must not exhaust memory, and the end of its
/// output is what explains a failure.
pub const OUTPUT_CAP: usize = 64 << 10;

/// Grace period between SIGTERM and SIGKILL, as upstream uses for modules and scripts.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);

/// How long to wait for output still buffered in the pipes once the program has exited; more
/// only happens when a background process it started keeps the pipe open.
const DRAIN_WAIT: Duration = Duration::from_millis(200);

/// What a program wrote, for the log: the last [`OUTPUT_CAP`] bytes of each stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

/// How a supervised program ended, so callers can word their own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it (not ours).
    Signaled(i32),
    /// The deadline passed and it was terminated.
    TimedOut,
}

impl From<ExitStatus> for Ending {
    fn from(s: ExitStatus) -> Self {
        match (s.code(), s.signal()) {
            (Some(c), _) => Ending::Exited(c),
            (None, Some(sig)) => Ending::Signaled(sig),
            (None, None) => Ending::Exited(-1),
        }
    }
}

type Tail = Arc<Mutex<Vec<u8>>>;

fn collect<R: Read + Send + 'static>(mut r: R) -> (Tail, JoinHandle<()>) {
    let tail: Tail = Arc::default();
    let t = tail.clone();
    let h = thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut v = t.lock().unwrap_or_else(|e| e.into_inner());
                    v.extend_from_slice(&buf[..n]);
                    if v.len() > 2 * OUTPUT_CAP {
                        let cut = v.len() - OUTPUT_CAP;
                        v.drain(..cut);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    (tail, h)
}

fn snapshot(tail: &Tail) -> String {
    let v = tail.lock().unwrap_or_else(|e| e.into_inner());
    let start = v.len().saturating_sub(OUTPUT_CAP);
    String::from_utf8_lossy(&v[start..]).into_owned()
}

/// A child running in its own process group whose output is being collected. Dropping it
/// before it was reaped terminates the whole group, so no error path leaves a module running.
pub struct Supervised {
    child: Child,
    pgid: Pid,
    reaped: Option<ExitStatus>,
    kill_grace: Duration,
    out: (Tail, JoinHandle<()>),
    err: (Tail, JoinHandle<()>),
}

impl Supervised {
    /// Starts `cmd` in a new process group with stdout and stderr piped; stdin, environment
    /// and working directory are whatever `cmd` says.
    pub fn spawn(cmd: &mut Command, kill_grace: Duration) -> io::Result<Self> {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // A program written a moment ago can still be open for writing in a child that another
        // thread is forking (ETXTBSY until that child execs); that passes within milliseconds.
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Err(e) if e.raw_os_error() == Some(Errno::ETXTBSY as i32) && tries < 100 => {
                    tries += 1;
                    thread::sleep(Duration::from_millis(5));
                }
                other => break other?,
            }
        };
        let stdout: ChildStdout = child.stdout.take().expect("stdout is piped");
        let stderr: ChildStderr = child.stderr.take().expect("stderr is piped");
        let pgid = Pid::from_raw(child.id() as i32);
        Ok(Supervised {
            child,
            pgid,
            reaped: None,
            kill_grace,
            out: collect(stdout),
            err: collect(stderr),
        })
    }

    /// The exit status if the program has ended, without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait()?;
        }
        Ok(self.reaped)
    }

    /// Waits for the program to end; past `deadline` it is terminated and `TimedOut` returned.
    pub fn wait_until(&mut self, deadline: Instant) -> io::Result<Ending> {
        let mut nap = Duration::from_micros(200);
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(s.into());
            }
            let now = Instant::now();
            if now >= deadline {
                self.terminate()?;
                return Ok(Ending::TimedOut);
            }
            thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM to the process group, SIGKILL once the grace period is over (or once the
    /// leader has gone, for anything it left behind), and reaps the leader.
    pub fn terminate(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.reaped {
            return Ok(s);
        }
        signal_group(self.pgid, Signal::SIGTERM)?;
        let deadline = Instant::now() + self.kill_grace;
        while Instant::now() < deadline {
            if self.try_wait()?.is_some() {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        signal_group(self.pgid, Signal::SIGKILL)?;
        let s = self.child.wait()?;
        self.reaped = Some(s);
        Ok(s)
    }

    /// The output collected so far; after the program has ended, waits briefly for what is
    /// still in the pipes.
    pub fn captured(&mut self) -> Captured {
        if self.reaped.is_some() {
            let deadline = Instant::now() + DRAIN_WAIT;
            while !(self.out.1.is_finished() && self.err.1.is_finished())
                && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(1));
            }
        }
        Captured {
            stdout: snapshot(&self.out.0),
            stderr: snapshot(&self.err.0),
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = self.terminate();
        }
    }
}

fn signal_group(pgid: Pid, sig: Signal) -> io::Result<()> {
    match killpg(pgid, sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        // A zombie leader whose group is otherwise empty answers EPERM on some systems.
        Err(Errno::EPERM) => Ok(()),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Runs `cmd` to completion under `timeout`, returning how it ended and what it wrote.
pub fn run(
    cmd: &mut Command,
    timeout: Duration,
    kill_grace: Duration,
) -> io::Result<(Ending, Captured)> {
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(far_future);
    let mut p = Supervised::spawn(cmd, kill_grace)?;
    let ending = p.wait_until(deadline)?;
    Ok((ending, p.captured()))
}

/// A deadline that never comes, for timeouts too large to add to `Instant::now()`.
pub fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script).stdin(Stdio::null());
        c
    }

    #[test]
    fn captures_both_streams_and_exit_code() {
        let (end, out) = run(
            &mut sh("echo out; echo err >&2; exit 3"),
            Duration::from_secs(10),
            DEFAULT_KILL_GRACE,
        )
        .unwrap();
        assert_eq!(end, Ending::Exited(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
    }

    #[test]
    fn output_is_bounded_to_its_tail() {
        let (end, out) = run(
            &mut sh("head -c 300000 /dev/zero | tr '\\0' a; echo END"),
            Duration::from_secs(10),
            DEFAULT_KILL_GRACE,
        )
        .unwrap();
        assert_eq!(end, Ending::Exited(0));
        assert_eq!(out.stdout.len(), OUTPUT_CAP);
        assert!(out.stdout.ends_with("aaaEND\n"));
    }

    #[test]
    fn timeout_kills_the_whole_group_even_if_term_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let script = format!(
            "trap '' TERM; (sleep 1; touch {}) & sleep 100",
            marker.display()
        );
        let t = Instant::now();
        let (end, _) = run(
            &mut sh(&script),
            Duration::from_millis(200),
            Duration::from_millis(200),
        )
        .unwrap();
        assert_eq!(end, Ending::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        thread::sleep(Duration::from_millis(1200));
        assert!(!marker.exists(), "a process of the group survived the kill");
    }
}
