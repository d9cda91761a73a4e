//! The Update Module protocol v3 (spec §5): runs `<modules dir>/<payload type>` for each
//! state with the work tree as its argument, parses query answers, and streams payload files
//! to it through FIFOs (or into `files/` when it does not read streams).

mod download;
mod error;
mod fifo;
mod pull;
mod tree;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use download::Download;
pub use error::ModuleError;
pub use pull::PayloadFiles;
pub use tree::TreeContext;

use crate::install::process::{self, Captured, Ending, DEFAULT_KILL_GRACE};

/// Where Debian and upstream install update modules (`$MENDER_DATA_DIR/modules/v3`).
pub const DEFAULT_MODULES_DIR: &str = "/usr/share/mender/modules/v3";

/// Upstream's `ModuleTimeoutSeconds` default: four hours per call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(14400);

/// A module call that does something (the queries have their own methods, because their
/// output is an answer rather than a log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Install the downloaded payload.
    ArtifactInstall,
    /// Reboot into the update (daemon mode only).
    ArtifactReboot,
    /// Check the reboot went well (daemon mode only).
    ArtifactVerifyReboot,
    /// Make the update permanent.
    ArtifactCommit,
    /// Restore the previous version.
    ArtifactRollback,
    /// Reboot into the previous version (daemon mode only).
    ArtifactRollbackReboot,
    /// Check the rollback reboot went well (daemon mode only).
    ArtifactVerifyRollbackReboot,
    /// Tidy up after a failed update.
    ArtifactFailure,
    /// Last call of every update; the tree is removed afterwards.
    Cleanup,
}

impl State {
    /// The state name as the module receives it in `argv[1]`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::ArtifactInstall => "ArtifactInstall",
            State::ArtifactReboot => "ArtifactReboot",
            State::ArtifactVerifyReboot => "ArtifactVerifyReboot",
            State::ArtifactCommit => "ArtifactCommit",
            State::ArtifactRollback => "ArtifactRollback",
            State::ArtifactRollbackReboot => "ArtifactRollbackReboot",
            State::ArtifactVerifyRollbackReboot => "ArtifactVerifyRollbackReboot",
            State::ArtifactFailure => "ArtifactFailure",
            State::Cleanup => "Cleanup",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to `NeedsArtifactReboot`: it decides what `install` prints and its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootAnswer {
    /// No reboot needed (also the answer to silence).
    No,
    /// The user must reboot before committing.
    Yes,
    /// The client may reboot by itself (treated like `Yes` in standalone mode).
    Automatic,
}

/// Drives one update module for one payload. Construction validates the payload type, so no
/// later path can escape the modules dir.
#[derive(Debug, Clone)]
pub struct ModuleRunner {
    modules_dir: PathBuf,
    work_dir: PathBuf,
    payload_type: String,
    timeout: Duration,
    kill_grace: Duration,
}

/// Ok when `name` is a single, ordinary path component (no separator, not `.` or `..`).
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

impl ModuleRunner {
    /// A runner for `payload_type` using the modules in `modules_dir` and the work tree under
    /// `work_dir` (`<datastore>/modules/v3`); `timeout` is `ModuleTimeoutSeconds`.
    pub fn new(
        modules_dir: impl Into<PathBuf>,
        work_dir: impl Into<PathBuf>,
        payload_type: &str,
        timeout: Duration,
    ) -> Result<Self, ModuleError> {
        if !is_plain_name(payload_type) {
            return Err(ModuleError::InvalidPayloadType(payload_type.to_string()));
        }
        Ok(ModuleRunner {
            modules_dir: modules_dir.into(),
            work_dir: work_dir.into(),
            payload_type: payload_type.to_string(),
            timeout,
            kill_grace: DEFAULT_KILL_GRACE,
        })
    }

    /// Changes the SIGTERM-to-SIGKILL grace period (10 s upstream), so tests need not wait.
    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// The payload type, which is also the module's file name.
    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    /// The module executable.
    pub fn module_path(&self) -> PathBuf {
        self.modules_dir.join(&self.payload_type)
    }

    /// `payloads/0000`, which stays (empty) after Cleanup.
    pub fn payload_dir(&self) -> PathBuf {
        self.work_dir.join("payloads").join("0000")
    }

    /// The work tree handed to the module (an absolute path when `work_dir` is one).
    pub fn tree_dir(&self) -> PathBuf {
        self.payload_dir().join("tree")
    }

    fn deadline(&self) -> Instant {
        Instant::now()
            .checked_add(self.timeout)
            .unwrap_or_else(process::far_future)
    }

    fn command(&self, state: &str) -> Result<Command, ModuleError> {
        let module = self.module_path();
        if !module.is_file() {
            return Err(ModuleError::NotFound {
                payload_type: self.payload_type.clone(),
                dir: self.modules_dir.clone(),
            });
        }
        let tree = absolute(&self.tree_dir())?;
        let mut cmd = Command::new(&module);
        cmd.arg(state).arg(&tree).current_dir(&tree);
        cmd.stdin(Stdio::inherit());
        Ok(cmd)
    }

    fn spawn_error(&self, state: &str, source: std::io::Error) -> ModuleError {
        ModuleError::Spawn {
            module: self.payload_type.clone(),
            state: state.to_string(),
            source,
        }
    }

    /// Maps how the module ended to our result; `Ok` only for exit status 0.
    fn judge(
        &self,
        state: &str,
        ending: Ending,
        output: Captured,
    ) -> Result<Captured, ModuleError> {
        let (module, state, output) = (
            self.payload_type.clone(),
            state.to_string(),
            Box::new(output),
        );
        match ending {
            Ending::Exited(0) => Ok(*output),
            Ending::Exited(code) => Err(ModuleError::Status {
                module,
                state,
                code,
                output,
            }),
            Ending::Signaled(signal) => Err(ModuleError::Signaled {
                module,
                state,
                signal,
                output,
            }),
            Ending::TimedOut => Err(ModuleError::Timeout {
                module,
                state,
                seconds: self.timeout.as_secs_f64(),
                output,
            }),
        }
    }

    fn run(&self, state: &str) -> Result<Captured, ModuleError> {
        let mut cmd = self.command(state)?;
        let deadline = self.deadline();
        let mut p = process::Supervised::spawn(&mut cmd, self.kill_grace)
            .map_err(|e| self.spawn_error(state, e))?;
        let ending = p
            .wait_until(deadline)
            .map_err(|e| ModuleError::io(format!("{state}: waiting for update module"), e))?;
        self.judge(state, ending, p.captured())
    }

    /// Calls the module for `state` and returns its output for the log. `Cleanup` is skipped
    /// when there is no tree, and removes the tree afterwards whatever the module said, so a
    /// later install always starts from scratch.
    pub fn call(&self, state: State) -> Result<Captured, ModuleError> {
        let tree = self.tree_dir();
        if state == State::Cleanup {
            if !tree.is_dir() {
                return Ok(Captured::default());
            }
            let result = self.run(state.as_str());
            tree::remove_tree(&tree)?;
            tree::sync_dir(&self.payload_dir())?;
            return result;
        }
        self.run(state.as_str())
    }

    fn query(&self, state: &str, answers: &[&str]) -> Result<usize, ModuleError> {
        let output = self.run(state)?;
        let module = self.payload_type.clone();
        match parse_answer(&output.stdout, answers) {
            Ok(i) => Ok(i),
            Err(AnswerError::TooManyLines) => Err(ModuleError::TooManyLines {
                module,
                state: state.to_string(),
                output: Box::new(output),
            }),
            Err(AnswerError::Unknown(answer)) => Err(ModuleError::UnknownAnswer {
                module,
                state: state.to_string(),
                answer,
                output: Box::new(output),
            }),
        }
    }

    /// `NeedsArtifactReboot`: whether the user has to reboot between install and commit.
    pub fn needs_reboot(&self) -> Result<RebootAnswer, ModuleError> {
        Ok(
            match self.query("NeedsArtifactReboot", &["No", "Yes", "Automatic"])? {
                0 => RebootAnswer::No,
                1 => RebootAnswer::Yes,
                _ => RebootAnswer::Automatic,
            },
        )
    }

    /// `SupportsRollback`: without it a failed install cannot be undone and standalone
    /// installs commit at once.
    pub fn supports_rollback(&self) -> Result<bool, ModuleError> {
        Ok(self.query("SupportsRollback", &["No", "Yes"])? == 1)
    }

    /// `ProvidePayloadFileSizes`: whether to call `DownloadWithFileSizes` instead of
    /// `Download`.
    pub fn provide_payload_file_sizes(&self) -> Result<bool, ModuleError> {
        Ok(self.query("ProvidePayloadFileSizes", &["No", "Yes"])? == 1)
    }
}

/// Why a module's answer to a query state was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// More than one non-empty line.
    TooManyLines,
    /// A line that is none of the accepted answers.
    Unknown(String),
}

/// Picks a module's answer to a query state out of its standard output: at most one
/// non-empty line (trailing blanks ignored), which must be one of `answers`; no output means
/// the first, the protocol's default. Public so that it can be fuzzed on its own.
pub fn parse_answer(stdout: &str, answers: &[&str]) -> Result<usize, AnswerError> {
    let mut lines = stdout.lines().map(str::trim_end).filter(|l| !l.is_empty());
    let answer = lines.next();
    if lines.next().is_some() {
        return Err(AnswerError::TooManyLines);
    }
    let answer = answer.or(answers.first().copied()).unwrap_or_default();
    answers
        .iter()
        .position(|a| *a == answer)
        .ok_or_else(|| AnswerError::Unknown(answer.to_string()))
}

fn absolute(p: &Path) -> Result<PathBuf, ModuleError> {
    std::path::absolute(p).map_err(|e| ModuleError::io(format!("resolving {}", p.display()), e))
}
