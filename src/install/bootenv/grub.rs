//! GRUB's boot environment as grub-mender-grubenv keeps it: two copies of an env block, each
//! with a lock block whose `editing=1` marks a copy as possibly torn. Written directly (env2
//! first, then env1), or through `grub-mender-grubenv-print`/`-set` when a device ships them.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::grubenv::{BlockError, EnvBlock};
use super::{
    parse_listing, run_tool, select, validate, verify_applied, BootEnv, BootEnvError, Vars,
};

/// Mender's GRUB tools, which own the env files when installed (they also take a lock other
/// writers on the device honour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrubTools {
    /// `grub-mender-grubenv-print`: prints `name=value` lines.
    pub print: PathBuf,
    /// `grub-mender-grubenv-set`: takes `name value` lines with `-s -`.
    pub set: PathBuf,
}

impl GrubTools {
    /// The print tool's name, as upstream's rootfs-image module looks it up.
    pub const PRINT: &'static str = "grub-mender-grubenv-print";
    /// The set tool's name.
    pub const SET: &'static str = "grub-mender-grubenv-set";

    /// Finds both tools in a `PATH`-style list; taking the list (not reading `PATH`) lets tests
    /// decide whether a device "has" them.
    pub fn find(path_list: &OsStr) -> Option<Self> {
        std::env::split_paths(path_list).find_map(|dir| {
            let print = dir.join(Self::PRINT);
            let set = dir.join(Self::SET);
            (is_executable(&print) && is_executable(&set)).then_some(GrubTools { print, set })
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[derive(Debug, Clone)]
enum Backend {
    Native(PathBuf),
    Tools(GrubTools),
}

/// GRUB's Mender environment, read and written natively or through Mender's tools.
#[derive(Debug, Clone)]
pub struct GrubEnv {
    backend: Backend,
}

/// One of the two redundant copies.
struct Copy {
    env: PathBuf,
    lock: PathBuf,
}

fn copies(dir: &Path) -> [Copy; 2] {
    [1, 2].map(|n| {
        let sub = dir.join(format!("mender_grubenv{n}"));
        Copy {
            env: sub.join("env"),
            lock: sub.join("lock"),
        }
    })
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BootEnvError + '_ {
    move |source| BootEnvError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a file in place and flushes it to the device: GRUB reads the blocks the file already
/// occupies, and the next step of the protocol must not overtake this one.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BootEnvError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.set_len(bytes.len() as u64).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn read_block(path: &Path) -> Result<EnvBlock, BootEnvError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    EnvBlock::parse(&bytes).map_err(|e| match e {
        BlockError::Invalid(reason) => BootEnvError::BadEnvBlock {
            path: path.to_owned(),
            reason,
        },
        BlockError::Full => BootEnvError::EnvBlockFull {
            path: path.to_owned(),
        },
    })
}

fn set_editing(lock: &Path, value: &str) -> Result<(), BootEnvError> {
    let mut block = read_block(lock).unwrap_or_default();
    block
        .set("editing", value)
        .map_err(|_| BootEnvError::EnvBlockFull {
            path: lock.to_owned(),
        })?;
    write_synced(lock, &block.to_bytes())
}

/// A copy is usable when its lock says it was not being edited and its block parses.
fn intact(copy: &Copy) -> Option<EnvBlock> {
    let lock = read_block(&copy.lock).ok()?;
    if lock.get("editing").as_deref() != Some("0") {
        return None;
    }
    read_block(&copy.env).ok()
}

fn write_copy(copy: &Copy, block: &EnvBlock) -> Result<(), BootEnvError> {
    set_editing(&copy.lock, "1")?;
    write_synced(&copy.env, &block.to_bytes())?;
    set_editing(&copy.lock, "0")
}

impl GrubEnv {
    /// Reads and writes the env files under `dir` itself (the directory holding
    /// `mender_grubenv1` and `mender_grubenv2`).
    pub fn native(dir: impl Into<PathBuf>) -> Self {
        GrubEnv {
            backend: Backend::Native(dir.into()),
        }
    }

    /// Goes through Mender's tools, which find the directory themselves.
    pub fn with_tools(tools: GrubTools) -> Self {
        GrubEnv {
            backend: Backend::Tools(tools),
        }
    }

    /// What upstream's rootfs-image module does: Mender's tools when `path_list` has them,
    /// else the files under `dir`.
    pub fn detect(dir: impl Into<PathBuf>, path_list: Option<&OsStr>) -> Self {
        let path_list = path_list.map(OsString::from).unwrap_or_default();
        match GrubTools::find(&path_list) {
            Some(tools) => Self::with_tools(tools),
            None => Self::native(dir),
        }
    }

    /// Creates both copies and their locks from scratch, as an image build does; tests and
    /// simulated devices start from here.
    pub fn provision(dir: &Path, vars: &[(&str, &str)]) -> Result<Self, BootEnvError> {
        validate(vars)?;
        let mut block = EnvBlock::new();
        for (k, v) in vars {
            block.set(k, v).map_err(|_| BootEnvError::EnvBlockFull {
                path: dir.to_owned(),
            })?;
        }
        for copy in copies(dir) {
            if let Some(parent) = copy.env.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            write_copy(&copy, &block)?;
        }
        Ok(Self::native(dir))
    }

    /// Takes an exclusive lock on the directory so two writers of ours never interleave their
    /// copies; released when the returned guard drops.
    fn lock_dir(dir: &Path) -> Result<Flock<File>, BootEnvError> {
        let f = File::open(dir).map_err(io_err(dir))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, errno)| BootEnvError::Io {
            path: dir.to_owned(),
            source: errno.into(),
        })
    }

    /// Restores a torn copy from the intact one, as GRUB and Mender's tools do before use, and
    /// returns both blocks.
    fn repair(dir: &Path) -> Result<[EnvBlock; 2], BootEnvError> {
        let [c1, c2] = copies(dir);
        match (intact(&c1), intact(&c2)) {
            (Some(b1), Some(b2)) => Ok([b1, b2]),
            (Some(b1), None) => {
                write_copy(&c2, &b1)?;
                Ok([b1.clone(), b1])
            }
            (None, Some(b2)) => {
                write_copy(&c1, &b2)?;
                Ok([b2.clone(), b2])
            }
            (None, None) => Err(BootEnvError::BothCopiesTorn {
                dir: dir.to_owned(),
            }),
        }
    }

    fn native_set(dir: &Path, vars: &[(&str, &str)]) -> Result<(), BootEnvError> {
        let _guard = Self::lock_dir(dir)?;
        let blocks = Self::repair(dir)?;
        let cs = copies(dir);
        // Edit both in memory first, so a full block fails before anything is written.
        let mut edited = Vec::with_capacity(2);
        for (mut block, copy) in blocks.into_iter().zip(&cs) {
            for (k, v) in vars {
                if v.is_empty() {
                    block.unset(k);
                } else {
                    block.set(k, v).map_err(|_| BootEnvError::EnvBlockFull {
                        path: copy.env.clone(),
                    })?;
                }
            }
            edited.push(block);
        }
        write_copy(&cs[1], &edited[1])?;
        write_copy(&cs[0], &edited[0])?;
        for copy in cs.iter().rev() {
            let found = read_block(&copy.env)?.vars();
            verify_applied(&copy.env.display().to_string(), vars, &found)?;
        }
        Ok(())
    }

    fn tools_get(tools: &GrubTools) -> Result<BTreeMap<String, String>, BootEnvError> {
        Ok(parse_listing(&run_tool(&tools.print, &[], None)?))
    }
}

impl BootEnv for GrubEnv {
    fn get(&self, names: &[&str]) -> Result<Vars, BootEnvError> {
        let all = match &self.backend {
            Backend::Native(dir) => {
                let _guard = Self::lock_dir(dir)?;
                let [b1, _] = Self::repair(dir)?;
                b1.vars()
            }
            Backend::Tools(tools) => Self::tools_get(tools)?,
        };
        Ok(select(&all, names))
    }

    fn set(&self, vars: &[(&str, &str)]) -> Result<(), BootEnvError> {
        validate(vars)?;
        match &self.backend {
            Backend::Native(dir) => Self::native_set(dir, vars),
            Backend::Tools(tools) => {
                // The set tool's script syntax is `name value`; a bare name clears the value.
                let mut script = String::new();
                for (k, v) in vars {
                    script.push_str(k);
                    if !v.is_empty() {
                        script.push(' ');
                        script.push_str(v);
                    }
                    script.push('\n');
                }
                let args = [OsStr::new("-s"), OsStr::new("-")];
                run_tool(&tools.set, &args, Some(script.as_bytes()))?;
                let found = Self::tools_get(tools)?;
                verify_applied(&tools.set.display().to_string(), vars, &found)
            }
        }
    }
}

#[cfg(test)]
#[path = "grub_tests.rs"]
mod tests;
