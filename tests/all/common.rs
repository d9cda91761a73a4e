//! Shared helpers: temp dirs, fixture paths and running the built or the upstream binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built `mender-artifact`.
pub fn ours() -> &'static str {
    env!("CARGO_BIN_EXE_mender-artifact")
}

/// The upstream `mender-artifact` (Debian's package); tests that need it fail loudly when it
/// is missing, because the test command installs it.
pub fn upstream() -> &'static str {
    let path = "/usr/bin/mender-artifact";
    assert!(
        Path::new(path).exists(),
        "the reference mender-artifact is not installed: run the test command from README.md"
    );
    path
}

/// The fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// An input file of the fixtures.
pub fn input(name: &str) -> String {
    fixtures().join("inputs").join(name).display().to_string()
}

/// An upstream-made fixture artifact.
pub fn upstream_fixture(name: &str) -> PathBuf {
    fixtures().join("upstream").join(name)
}

/// The result of running a command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the output unless the command succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The result of a finished command.
pub fn finish(out: Output) -> Run {
    Run {
        // Killed by a signal: minus the signal number (-9 for SIGKILL).
        code: out.status.code().unwrap_or_else(|| {
            -std::os::unix::process::ExitStatusExt::signal(&out.status).unwrap_or(1)
        }),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `bin` with `args` in `dir`.
pub fn run_in(dir: &Path, bin: &str, args: &[&str]) -> Run {
    finish(
        Command::new(bin)
            .args(args)
            .current_dir(dir)
            .env("TZ", "UTC")
            .output()
            .unwrap_or_else(|e| panic!("running {bin}: {e}")),
    )
}

/// Runs our `mender-artifact`.
pub fn ma(dir: &Path, args: &[&str]) -> Run {
    run_in(dir, ours(), args)
}

/// Runs upstream `mender-artifact`.
pub fn upstream_ma(dir: &Path, args: &[&str]) -> Run {
    run_in(dir, upstream(), args)
}

/// A fresh temp dir.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Reads one member of an outer artifact tar.
pub fn member(artifact: &Path, name: &str) -> Vec<u8> {
    let mut ar = tar::Archive::new(std::fs::File::open(artifact).expect("open artifact"));
    for e in ar.entries().expect("tar") {
        let mut e = e.expect("entry");
        if e.path_bytes().as_ref() == name.as_bytes() {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).expect("read member");
            return v;
        }
    }
    panic!("{name} not in {}", artifact.display());
}

/// Names of the members of an artifact, in order.
pub fn members(artifact: &Path) -> Vec<String> {
    let mut ar = tar::Archive::new(std::fs::File::open(artifact).expect("open artifact"));
    ar.entries()
        .expect("tar")
        .map(|e| String::from_utf8_lossy(&e.expect("entry").path_bytes()).into_owned())
        .collect()
}
