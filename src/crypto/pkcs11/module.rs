//! Loading PKCS#11 modules: which module to use, and initialising each one once per process.
//!
//! `C_Initialize` and `C_Finalize` act on the whole process, so two keys on the same module
//! must share one initialisation, and only the last one to go away may finalise it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};

use super::describe;
use crate::crypto::KeyError;

/// The environment variable naming the module when the URI has no `module-path`.
pub(super) const MODULE_ENV: &str = "PKCS11_MODULE_PATH";

/// Pick the module: the URI's `module-path`, else `PKCS11_MODULE_PATH` (`env`, passed in so
/// the choice can be tested without touching the process environment).
pub(super) fn resolve(
    from_uri: Option<PathBuf>,
    env: Option<OsString>,
) -> Result<PathBuf, KeyError> {
    from_uri
        .filter(|path| !path.as_os_str().is_empty())
        .or_else(|| env.filter(|value| !value.is_empty()).map(PathBuf::from))
        .ok_or_else(|| {
            KeyError::Pkcs11(format!(
                "no PKCS#11 module given: add module-path=/path/to/module.so to the URI query \
                 or set {MODULE_ENV}"
            ))
        })
}

/// A module this process has loaded, shared by all keys that use it.
struct Loaded {
    path: PathBuf,
    context: Pkcs11,
    users: usize,
    /// Whether we called `C_Initialize` (and so must call `C_Finalize`); false when someone
    /// else in the process had already initialised the module.
    ours: bool,
}

static LOADED: Mutex<Vec<Loaded>> = Mutex::new(Vec::new());

fn loaded() -> MutexGuard<'static, Vec<Loaded>> {
    // The list stays consistent even if a holder panicked: every update is a single step.
    LOADED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One key's use of a loaded, initialised module; finalises the module when the last user
/// drops it.
pub(super) struct Module {
    path: PathBuf,
    context: Pkcs11,
}

impl Module {
    /// Load and initialise the module at `path`, or share it if it is already loaded.
    pub fn load(path: &Path) -> Result<Module, KeyError> {
        let cannot =
            |why: String| KeyError::Pkcs11(format!("cannot load module {}: {why}", path.display()));
        let path = std::fs::canonicalize(path).map_err(|e| cannot(e.to_string()))?;
        let mut loaded = loaded();
        if let Some(entry) = loaded.iter_mut().find(|entry| entry.path == path) {
            entry.users += 1;
            let context = entry.context.clone();
            return Ok(Module { path, context });
        }
        let context = Pkcs11::new(&path).map_err(|e| cannot(describe(&e)))?;
        let ours = match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) => true,
            Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => false,
            Err(e) => return Err(cannot(describe(&e))),
        };
        loaded.push(Loaded {
            path: path.clone(),
            context: context.clone(),
            users: 1,
            ours,
        });
        Ok(Module { path, context })
    }

    /// The module's functions.
    pub fn context(&self) -> &Pkcs11 {
        &self.context
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        let mut loaded = loaded();
        let Some(index) = loaded.iter().position(|entry| entry.path == self.path) else {
            return;
        };
        loaded[index].users -= 1;
        if loaded[index].users == 0 {
            let entry = loaded.swap_remove(index);
            if entry.ours {
                // Nothing useful can be done about a failing C_Finalize while dropping.
                let _ = entry.context.finalize();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_module_path_wins_over_the_environment() {
        let uri = Some(PathBuf::from("/a.so"));
        let env = Some(OsString::from("/b.so"));
        assert_eq!(
            resolve(uri.clone(), env.clone()).unwrap(),
            PathBuf::from("/a.so")
        );
        assert_eq!(resolve(None, env).unwrap(), PathBuf::from("/b.so"));
        assert_eq!(resolve(uri, None).unwrap(), PathBuf::from("/a.so"));
        for env in [None, Some(OsString::new())] {
            let message = resolve(None, env).unwrap_err().to_string();
            assert!(
                message.contains("module-path=") && message.contains(MODULE_ENV),
                "{message}"
            );
            assert!(
                !message.ends_with('.') && !message.contains('\n'),
                "{message}"
            );
        }
    }

    #[test]
    fn missing_module_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nothing.so");
        let Err(e) = Module::load(&path) else {
            panic!("loading a missing module succeeded");
        };
        let message = e.to_string();
        assert!(
            message.starts_with("pkcs11: cannot load module "),
            "{message}"
        );
        assert!(message.contains("nothing.so"), "{message}");
        std::fs::write(&path, "not a shared library").unwrap();
        let Err(e) = Module::load(&path) else {
            panic!("loading a text file as a module succeeded");
        };
        let message = e.to_string();
        assert!(
            message.starts_with("pkcs11: cannot load module "),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }
}
