//! The boot environment: the few variables that tell the boot loader which root filesystem to
//! boot, read and written through U-Boot's tools, GRUB's env blocks, or memory in tests.

/// GRUB: grub-mender-grubenv's redundant env files, or its tools when installed.
pub mod grub;
/// GRUB's env-block file format, kept byte-compatible with `grub-editenv`.
pub mod grubenv;
/// An in-memory environment for tests and simulations.
pub mod memory;
/// Mender's boot-variable protocol as pure functions.
pub mod rules;
/// Finding the device's boot environment as upstream's rootfs-image module does.
pub mod system;
/// U-Boot through libubootenv's `fw_printenv`/`fw_setenv`.
pub mod uboot;

#[cfg(test)]
mod cycle_tests;
#[cfg(test)]
mod rules_tests;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use grub::{GrubEnv, GrubTools};
pub use memory::MemoryEnv;
pub use rules::{Assignments, Bootloader, Partition, Slots};
pub use uboot::UbootEnv;

/// Variables as read from a boot environment: every requested name, `None` when unset, so a
/// caller cannot mistake a missing variable for an empty one by forgetting a lookup.
pub type Vars = BTreeMap<String, Option<String>>;

/// Access to the boot loader's variables. Both operations go through the real tool or file each
/// time: the boot loader may have changed the environment since the last call (at a reboot).
pub trait BootEnv {
    /// Reads the named variables; unset ones map to `None`.
    fn get(&self, names: &[&str]) -> Result<Vars, BootEnvError>;

    /// Sets all variables in one write where the backend allows it, then reads them back and
    /// fails unless every one took effect (tools have been seen to ignore input and exit 0).
    /// An empty value removes the variable, as `fw_setenv` does.
    fn set(&self, vars: &[(&str, &str)]) -> Result<(), BootEnvError>;
}

/// What went wrong reading or writing the boot environment, or why a boot-variable rule refused.
#[derive(Debug, thiserror::Error)]
pub enum BootEnvError {
    /// The tool could not be started (usually: not installed).
    #[error("cannot run {tool}: {source}")]
    Spawn {
        /// The tool as it was invoked.
        tool: String,
        /// The error from the operating system.
        source: io::Error,
    },
    /// The tool ran and reported failure.
    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed {
        /// The tool as it was invoked.
        tool: String,
        /// Its exit status.
        status: String,
        /// Its standard error, folded into one line.
        stderr: String,
    },
    /// The write reported success but reading back shows a different value.
    #[error("{tool} did not apply {name}: wanted {wanted:?}, read back {found:?}")]
    NotApplied {
        /// The tool or file that was written.
        tool: String,
        /// The variable that differs.
        name: String,
        /// The value that was set (`None`: removal).
        wanted: Option<String>,
        /// The value read back.
        found: Option<String>,
    },
    /// A variable name that no backend can store unambiguously.
    #[error("invalid boot variable name {0:?}")]
    InvalidName(String),
    /// A value that no backend can store unambiguously.
    #[error("invalid value for boot variable {name}: {reason}")]
    InvalidValue {
        /// The variable.
        name: String,
        /// Why the value cannot be stored.
        reason: &'static str,
    },
    /// The same variable given twice in one `set`.
    #[error("boot variable {0} given twice in one write")]
    Duplicate(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error from the operating system.
        source: io::Error,
    },
    /// A file is not a GRUB environment block.
    #[error("{}: not a grub environment block: {reason}", path.display())]
    BadEnvBlock {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The variables do not fit in the fixed-size GRUB environment block.
    #[error("{}: grub environment block is full", path.display())]
    EnvBlockFull {
        /// The file.
        path: PathBuf,
    },
    /// Neither redundant GRUB copy is intact, so there is nothing to repair from.
    #[error("{}: both grubenv copies are torn or unreadable", dir.display())]
    BothCopiesTorn {
        /// The grubenv directory.
        dir: PathBuf,
    },
    /// An install while the previous one has not been committed or rolled back.
    #[error("an update is already pending in the boot environment")]
    UpdatePending,
    /// A commit after the boot loader gave up on the update; the wording is upstream's, which
    /// users and scripts know.
    #[error("Upgrade failed and was reverted: refusing to commit!")]
    UpgradeReverted,
    /// A commit from a partition other than the one the update installed.
    #[error("cannot commit: partition {running} is running but the boot loader environment selects {selected} (reboot into the update first)")]
    NotBootedIntoUpdate {
        /// The running partition number.
        running: u32,
        /// `mender_boot_part`.
        selected: u32,
    },
    /// A variable the rules need is unset.
    #[error("{0} is not set in the boot loader environment")]
    Missing(&'static str),
    /// A variable the rules need is not a number.
    #[error("{name}={value:?} in the boot loader environment is not a number")]
    NotANumber {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// A device name without a trailing partition number.
    #[error("no partition number at the end of device name {0:?}")]
    NoPartitionNumber(String),
    /// Partitions A and B cannot be told apart by number.
    #[error("rootfs partitions a ({a}) and b ({b}) have the same number")]
    SamePartitionNumber {
        /// RootfsPartA.
        a: String,
        /// RootfsPartB.
        b: String,
    },
    /// Install asked to switch to the partition that is already active.
    #[error("active and passive partition are both {0}")]
    SameSlot(u32),
    /// `mender_boot_part` names neither rootfs partition.
    #[error("mender_boot_part={number} matches neither rootfs partition a ({a}) nor b ({b})")]
    UnknownBootPart {
        /// `mender_boot_part`.
        number: u32,
        /// RootfsPartA.
        a: String,
        /// RootfsPartB.
        b: String,
    },
    /// The mounted root is not the partition the boot loader was told to boot.
    #[error("mounted root {mounted} does not match the boot loader environment (mender_boot_part={number})")]
    RootMismatch {
        /// The mounted root, as a device name or major:minor.
        mounted: String,
        /// `mender_boot_part`.
        number: u32,
    },
    /// Neither the device numbers nor the kernel command line tell which root is mounted.
    #[error("cannot determine the mounted root device to compare with {0}")]
    RootUnknown(String),
}

/// Rejects names and values that would be read back differently by some backend: all of them
/// are line based, and `=` splits name from value.
pub(crate) fn validate(vars: &[(&str, &str)]) -> Result<(), BootEnvError> {
    for (i, (name, value)) in vars.iter().enumerate() {
        let bad_name = name.is_empty()
            || name.starts_with('#')
            || name
                .chars()
                .any(|c| c == '=' || c.is_whitespace() || c.is_control());
        if bad_name {
            return Err(BootEnvError::InvalidName((*name).to_owned()));
        }
        if value.contains(['\n', '\r', '\0']) {
            return Err(BootEnvError::InvalidValue {
                name: (*name).to_owned(),
                reason: "line breaks and nul bytes cannot be stored",
            });
        }
        if vars[..i].iter().any(|(n, _)| n == name) {
            return Err(BootEnvError::Duplicate((*name).to_owned()));
        }
    }
    Ok(())
}

/// Picks the requested names out of everything a backend holds.
pub(crate) fn select(all: &BTreeMap<String, String>, names: &[&str]) -> Vars {
    names
        .iter()
        .map(|n| ((*n).to_owned(), all.get(*n).cloned()))
        .collect()
}

/// Compares what was set with what was read back; an empty value and an unset variable are the
/// same thing here, since the tools disagree on which one an empty value produces.
pub(crate) fn verify_applied(
    tool: &str,
    wanted: &[(&str, &str)],
    found: &BTreeMap<String, String>,
) -> Result<(), BootEnvError> {
    for (name, value) in wanted {
        let got = found.get(*name).filter(|v| !v.is_empty());
        let want = Some(*value).filter(|v| !v.is_empty());
        if got.map(String::as_str) != want {
            return Err(BootEnvError::NotApplied {
                tool: tool.to_owned(),
                name: (*name).to_owned(),
                wanted: want.map(str::to_owned),
                found: got.cloned(),
            });
        }
    }
    Ok(())
}

/// Parses `key=value` lines as the print tools write them; lines without `=` (continuations of
/// multi-line values) are skipped, since no variable Mender uses has one. Public so that it
/// can be fuzzed on its own.
pub fn parse_listing(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Folds a tool's standard error into one line for an error message.
pub(crate) fn one_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let mut out: String = joined.chars().take(400).collect();
    if out.is_empty() {
        out.push_str("no error output");
    }
    out
}

/// Runs a boot environment tool and returns its standard output; a non-zero exit becomes an
/// error carrying its standard error, since that is where these tools explain themselves.
pub(crate) fn run_tool(
    tool: &Path,
    args: &[&OsStr],
    stdin: Option<&[u8]>,
) -> Result<String, BootEnvError> {
    let name = tool.display().to_string();
    let spawn_err = |source| BootEnvError::Spawn {
        tool: name.clone(),
        source,
    };
    let mut child = Command::new(tool)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A tool that exits without reading shows up in its status, not as a broken pipe.
        let _ = pipe.write_all(input);
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if !out.status.success() {
        return Err(BootEnvError::ToolFailed {
            tool: name,
            status: out.status.to_string(),
            stderr: one_line(&out.stderr),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Applies what a rule decided; nothing to set means no write at all, so a no-op rollback does
/// not touch the boot loader's storage.
pub fn apply(env: &dyn BootEnv, changes: &Assignments) -> Result<(), BootEnvError> {
    if changes.is_empty() {
        return Ok(());
    }
    env.set(&changes.pairs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_what_backends_cannot_store() {
        assert!(validate(&[("a", "1"), ("b", "x y")]).is_ok());
        for name in ["", "a=b", "a b", "#x", "a\nb"] {
            assert!(matches!(
                validate(&[(name, "1")]),
                Err(BootEnvError::InvalidName(_))
            ));
        }
        assert!(matches!(
            validate(&[("a", "1\n2")]),
            Err(BootEnvError::InvalidValue { .. })
        ));
        assert!(matches!(
            validate(&[("a", "1"), ("a", "2")]),
            Err(BootEnvError::Duplicate(_))
        ));
    }

    #[test]
    fn verify_treats_empty_as_unset() {
        let mut found = BTreeMap::new();
        found.insert("a".to_owned(), "1".to_owned());
        found.insert("e".to_owned(), String::new());
        assert!(verify_applied("t", &[("a", "1"), ("e", ""), ("gone", "")], &found).is_ok());
        let err = verify_applied("fw_setenv", &[("a", "2")], &found).unwrap_err();
        assert_eq!(
            err.to_string(),
            "fw_setenv did not apply a: wanted Some(\"2\"), read back Some(\"1\")"
        );
    }

    #[test]
    fn listing_and_stderr_folding() {
        let m = parse_listing("a=1\nb=x=y\ncontinued\nc=\n");
        assert_eq!(m.get("b").map(String::as_str), Some("x=y"));
        assert_eq!(m.get("c").map(String::as_str), Some(""));
        assert_eq!(m.len(), 3);
        assert_eq!(one_line(b"one\n\n  two \n"), "one; two");
        assert_eq!(one_line(b""), "no error output");
    }
}
