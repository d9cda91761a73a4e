//! State scripts (spec §4): storing an artifact's scripts, finding the ones for a state and
//! action by upstream's name grammar, and running them with retry-later and timeouts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::install::module::is_plain_name;
use crate::install::process::{self, Captured, Ending, DEFAULT_KILL_GRACE};

mod error;
#[cfg(test)]
mod tests;

use error::io_err;
pub use error::ScriptError;

/// The exit code with which a script asks to be run again later.
pub const RETRY_LATER: i32 = 21;

/// States that have scripts; Idle, Sync and Download use the root-filesystem dir.
const ROOTFS_STATES: [&str; 3] = ["Idle", "Sync", "Download"];
/// The Artifact* states, whose scripts come with the artifact (the same list the writer
/// accepts).
const ARTIFACT_STATES: [&str; 6] = crate::artifact::names::ARTIFACT_SCRIPT_STATES;

/// When in a state a script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Before the state's work.
    Enter,
    /// After it succeeded.
    Leave,
    /// After it failed.
    Error,
}

impl Action {
    /// The word used in script names.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Enter => "Enter",
            Action::Leave => "Leave",
            Action::Error => "Error",
        }
    }
}

/// What a failing script does to the rest of the list; which one applies depends on the state
/// (spec §4, "Error handling").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Stop at the first failure (Enter/Leave of Download, ArtifactInstall, ArtifactCommit_Enter).
    StopOnFirstError,
    /// Run every script and report all failures (Error scripts, rollback, failure, commit Leave).
    RunAllCollectErrors,
}

/// One script that ran successfully and what it wrote, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRun {
    /// The script's file name.
    pub name: String,
    /// Its output (bounded).
    pub output: Captured,
}

/// Finds and runs state scripts; the durations come from `mender.conf`.
#[derive(Debug, Clone)]
pub struct ScriptRunner {
    /// Root-filesystem scripts (`$MENDER_CONF_DIR/scripts`): Idle, Sync, Download.
    pub rootfs_dir: PathBuf,
    /// Artifact scripts (`<datastore>/scripts`), replaced at every install.
    pub artifact_dir: PathBuf,
    /// `StateScriptTimeoutSeconds`, per script run.
    pub timeout: Duration,
    /// `StateScriptRetryIntervalSeconds`: wait after exit code 21.
    pub retry_interval: Duration,
    /// `StateScriptRetryTimeoutSeconds`: total time a script may keep asking for retries.
    pub retry_timeout: Duration,
    /// Time between SIGTERM and SIGKILL on timeout (10 s upstream).
    pub kill_grace: Duration,
}

impl ScriptRunner {
    /// A runner with upstream's default durations.
    pub fn new(rootfs_dir: impl Into<PathBuf>, artifact_dir: impl Into<PathBuf>) -> Self {
        ScriptRunner {
            rootfs_dir: rootfs_dir.into(),
            artifact_dir: artifact_dir.into(),
            timeout: Duration::from_secs(3600),
            retry_interval: Duration::from_secs(60),
            retry_timeout: Duration::from_secs(1800),
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }

    /// Replaces the artifact scripts dir with `scripts` (mode 0700) and a `version` file of
    /// `3`, fsync'ed, so a resumed update after power loss runs the same scripts.
    pub fn store_artifact_scripts(&self, scripts: &[(String, Vec<u8>)]) -> Result<(), ScriptError> {
        if let Some((bad, _)) = scripts
            .iter()
            .find(|(n, _)| !is_plain_name(n) || n == "version" || n.contains(".."))
        {
            return Err(ScriptError::InvalidName(bad.clone()));
        }
        let dir = &self.artifact_dir;
        match fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err(format!("removing {}", dir.display()), e))
            }
            _ => {}
        }
        fs::create_dir_all(dir).map_err(|e| io_err(format!("creating {}", dir.display()), e))?;
        let files = scripts
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice(), 0o700))
            .chain([("version", b"3".as_slice(), 0o600)]);
        for (name, data, mode) in files {
            let path = dir.join(name);
            let write = || -> io::Result<()> {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&path)?;
                f.set_permissions(fs::Permissions::from_mode(mode))?;
                f.write_all(data)?;
                f.sync_all()
            };
            write().map_err(|e| io_err(format!("writing {}", path.display()), e))?;
        }
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
        for d in std::iter::once(dir.as_path()).chain(parent) {
            File::open(d)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_err(format!("syncing {}", d.display()), e))?;
        }
        Ok(())
    }

    /// The dir holding scripts for `state`.
    pub fn dir_for(&self, state: &str) -> Result<&Path, ScriptError> {
        if ROOTFS_STATES.contains(&state) {
            Ok(&self.rootfs_dir)
        } else if ARTIFACT_STATES.contains(&state) {
            Ok(&self.artifact_dir)
        } else {
            Err(ScriptError::UnknownState(state.to_string()))
        }
    }

    /// The executable scripts for `state` and `action`, in run order; anything else in the
    /// dir is silently ignored, as upstream does. Checks the dir's `version` file first.
    pub fn discover(&self, state: &str, action: Action) -> Result<Vec<PathBuf>, ScriptError> {
        let dir = self.dir_for(state)?;
        check_version(dir)?;
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(format!("reading {}", dir.display()), e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err(format!("reading {}", dir.display()), e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let wanted = crate::artifact::names::split_script_name(&name)
                .is_some_and(|(s, a, _)| s == state && a == action.as_str());
            if !wanted {
                continue;
            }
            let path = entry.path();
            match fs::metadata(&path) {
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                    found.push((name, path))
                }
                _ => {}
            }
        }
        found.sort();
        Ok(found.into_iter().map(|(_, p)| p).collect())
    }

    /// Runs the scripts for `state` and `action` in order, returning their output for the
    /// log. With [`Policy::RunAllCollectErrors`] every script runs and all failures come back
    /// together.
    pub fn run(
        &self,
        state: &str,
        action: Action,
        policy: Policy,
    ) -> Result<Vec<ScriptRun>, ScriptError> {
        let mut ran = Vec::new();
        let mut errors = Vec::new();
        for path in self.discover(state, action)? {
            match self.run_one(&path) {
                Ok(run) => ran.push(run),
                Err(e) if policy == Policy::StopOnFirstError => return Err(e),
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Ok(ran),
            1 => Err(errors.remove(0)),
            _ => Err(ScriptError::Several(errors)),
        }
    }

    /// Runs one script, repeating it while it answers "retry later" within the retry budget.
    fn run_one(&self, path: &Path) -> Result<ScriptRun, ScriptError> {
        let script = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let started = Instant::now();
        loop {
            let mut cmd = Command::new(path);
            cmd.stdin(Stdio::null());
            let (ending, output) =
                process::run(&mut cmd, self.timeout, self.kill_grace).map_err(|source| {
                    ScriptError::Spawn {
                        script: script.clone(),
                        source,
                    }
                })?;
            let (script, output) = (script.clone(), Box::new(output));
            let retry_left = started.elapsed() + self.retry_interval <= self.retry_timeout;
            let error = match ending {
                Ending::Exited(0) => {
                    let output = *output;
                    return Ok(ScriptRun {
                        name: script,
                        output,
                    });
                }
                Ending::Exited(RETRY_LATER) if retry_left => {
                    thread::sleep(self.retry_interval);
                    continue;
                }
                Ending::Exited(RETRY_LATER) => {
                    let seconds = self.retry_timeout.as_secs_f64();
                    ScriptError::RetryTimeout {
                        script,
                        seconds,
                        output,
                    }
                }
                Ending::Exited(code) => ScriptError::Status {
                    script,
                    code,
                    output,
                },
                Ending::Signaled(signal) => ScriptError::Signaled {
                    script,
                    signal,
                    output,
                },
                Ending::TimedOut => {
                    let seconds = self.timeout.as_secs_f64();
                    ScriptError::Timeout {
                        script,
                        seconds,
                        output,
                    }
                }
            };
            return Err(error);
        }
    }
}

/// A missing `version` file is fine; otherwise it must say 2 or 3, the formats this runner
/// understands.
fn check_version(dir: &Path) -> Result<(), ScriptError> {
    let path = dir.join("version");
    match fs::read(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("reading {}", path.display()), e)),
        Ok(v) => match String::from_utf8_lossy(&v).trim() {
            "2" | "3" => Ok(()),
            found => Err(ScriptError::Version {
                dir: dir.to_path_buf(),
                found: found.chars().take(20).collect(),
            }),
        },
    }
}
