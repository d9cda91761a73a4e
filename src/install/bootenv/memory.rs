//! A boot environment held in memory, so rules and handlers can be tested without a boot loader.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{select, validate, BootEnv, BootEnvError, Vars};

/// A boot environment in a map; it checks names and values like the real backends so a test
/// cannot pass with input a device would reject.
#[derive(Debug, Default)]
pub struct MemoryEnv {
    vars: RefCell<BTreeMap<String, String>>,
}

impl MemoryEnv {
    /// An empty environment, like a blank U-Boot environment before its defaults are applied.
    pub fn new() -> Self {
        Self::default()
    }

    /// An environment preset as a device image would ship it.
    pub fn with(vars: &[(&str, &str)]) -> Self {
        let env = Self::new();
        env.vars
            .borrow_mut()
            .extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env
    }

    /// Everything stored, for assertions and for simulations that need the whole environment.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.vars.borrow().clone()
    }
}

impl BootEnv for MemoryEnv {
    fn get(&self, names: &[&str]) -> Result<Vars, BootEnvError> {
        Ok(select(&self.vars.borrow(), names))
    }

    fn set(&self, vars: &[(&str, &str)]) -> Result<(), BootEnvError> {
        validate(vars)?;
        let mut map = self.vars.borrow_mut();
        for (k, v) in vars {
            if v.is_empty() {
                map.remove(*k);
            } else {
                map.insert((*k).to_owned(), (*v).to_owned());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_and_remove() {
        let env = MemoryEnv::with(&[("a", "1")]);
        env.set(&[("b", "2"), ("a", "")]).unwrap();
        let got = env.get(&["a", "b"]).unwrap();
        assert_eq!(got["a"], None);
        assert_eq!(got["b"].as_deref(), Some("2"));
        assert!(env.set(&[("b", "3"), ("bad name", "1")]).is_err());
        assert_eq!(env.snapshot()["b"], "2", "a rejected write changes nothing");
    }
}
