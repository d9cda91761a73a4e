//! U-Boot's environment through libubootenv's `fw_printenv`/`fw_setenv`, which know where the
//! environment lives (`fw_env.config`), its redundancy and its checksum.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::{
    parse_listing, run_tool, select, validate, verify_applied, BootEnv, BootEnvError, Vars,
};

/// U-Boot's environment via the userspace tools.
///
/// Writes go through one `fw_setenv -s -` with `name=value` lines, so all variables land in a
/// single environment write (libubootenv writes the redundant copy and flips its flag once);
/// `name value` lines would be silently ignored by libubootenv 0.3, hence the read-back.
#[derive(Debug, Clone)]
pub struct UbootEnv {
    printenv: PathBuf,
    setenv: PathBuf,
    config: Option<PathBuf>,
    defaults: Option<PathBuf>,
}

impl Default for UbootEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl UbootEnv {
    /// The tools from `PATH` with their own configuration (`/etc/fw_env.config`).
    pub fn new() -> Self {
        UbootEnv {
            printenv: PathBuf::from("fw_printenv"),
            setenv: PathBuf::from("fw_setenv"),
            config: None,
            defaults: None,
        }
    }

    /// Another `fw_env.config` (`-c`), e.g. one pointing at an environment image in a test or
    /// on a simulated device.
    pub fn with_config(mut self, config: impl Into<PathBuf>) -> Self {
        self.config = Some(config.into());
        self
    }

    /// A default environment file (`-f`, `name=value` lines) used when the stored one is blank
    /// or fails its checksum; without it libubootenv refuses to read or write a fresh image.
    pub fn with_defaults(mut self, defaults: impl Into<PathBuf>) -> Self {
        self.defaults = Some(defaults.into());
        self
    }

    /// Other tool binaries, for devices that install them under other names.
    pub fn with_tools(mut self, printenv: impl Into<PathBuf>, setenv: impl Into<PathBuf>) -> Self {
        self.printenv = printenv.into();
        self.setenv = setenv.into();
        self
    }

    fn common_args(&self) -> Vec<&OsStr> {
        let mut args = Vec::new();
        if let Some(c) = &self.config {
            args.extend([OsStr::new("-c"), c.as_os_str()]);
        }
        if let Some(d) = &self.defaults {
            args.extend([OsStr::new("-f"), d.as_os_str()]);
        }
        args
    }

    /// Everything in the environment: asking for single names cannot tell an unset variable
    /// from an empty one (`fw_printenv name` prints `name=` for both).
    fn read_all(&self) -> Result<BTreeMap<String, String>, BootEnvError> {
        let out = run_tool(&self.printenv, &self.common_args(), None)?;
        Ok(parse_listing(&out))
    }

    /// The print tool, for messages.
    pub fn printenv(&self) -> &Path {
        &self.printenv
    }
}

impl BootEnv for UbootEnv {
    fn get(&self, names: &[&str]) -> Result<Vars, BootEnvError> {
        Ok(select(&self.read_all()?, names))
    }

    fn set(&self, vars: &[(&str, &str)]) -> Result<(), BootEnvError> {
        validate(vars)?;
        // `name=` removes a variable in libubootenv's script syntax.
        let script: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let mut args = self.common_args();
        args.extend([OsStr::new("-s"), OsStr::new("-")]);
        run_tool(&self.setenv, &args, Some(script.as_bytes()))?;
        let found = self.read_all()?;
        verify_applied(&self.setenv.display().to_string(), vars, &found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::process::Command;

    /// meta-mender's U-Boot defaults for a device booting partition 2 first.
    const DEFAULTS: &str = "bootcount=0\nbootlimit=1\nupgrade_available=0\n\
                            mender_boot_part=2\nmender_boot_part_hex=2\n";
    const ENV_SIZE: usize = 0x4000;

    /// A blank (all 0xff, as erased flash) environment image, or two for a redundant one, and
    /// the `fw_env.config` and defaults file pointing at them.
    fn device(dir: &Path, redundant: bool) -> UbootEnv {
        Command::new("fw_printenv")
            .arg("-V")
            .output()
            .unwrap_or_else(|e| {
                panic!("fw_printenv: {e}; apt-get install libubootenv-tool to run this test")
            });
        let mut config = String::new();
        for n in if redundant { 1..=2 } else { 1..=1 } {
            let image = dir.join(format!("uboot-env{n}.img"));
            fs::write(&image, vec![0xffu8; ENV_SIZE]).unwrap();
            config.push_str(&format!("{} 0x0000 {ENV_SIZE:#x}\n", image.display()));
        }
        fs::write(dir.join("fw_env.config"), config).unwrap();
        fs::write(dir.join("defaults"), DEFAULTS).unwrap();
        UbootEnv::new()
            .with_config(dir.join("fw_env.config"))
            .with_defaults(dir.join("defaults"))
    }

    fn install_vars() -> [(&'static str, &'static str); 4] {
        [
            ("mender_boot_part", "3"),
            ("mender_boot_part_hex", "3"),
            ("upgrade_available", "1"),
            ("bootcount", "0"),
        ]
    }

    #[test]
    fn blank_image_reads_defaults_and_takes_a_write() {
        for redundant in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let env = device(dir.path(), redundant);
            let got = env
                .get(&["mender_boot_part", "bootlimit", "nothing"])
                .unwrap();
            assert_eq!(got["mender_boot_part"].as_deref(), Some("2"));
            assert_eq!(got["bootlimit"].as_deref(), Some("1"));
            assert_eq!(got["nothing"], None);

            env.set(&install_vars()).unwrap();
            // Without the defaults file the image must now stand on its own.
            let plain = UbootEnv::new().with_config(dir.path().join("fw_env.config"));
            let got = plain.get(&["mender_boot_part", "upgrade_available", "bootlimit"]);
            let got = got.unwrap();
            assert_eq!(got["mender_boot_part"].as_deref(), Some("3"));
            assert_eq!(got["upgrade_available"].as_deref(), Some("1"));
            assert_eq!(got["bootlimit"].as_deref(), Some("1"), "defaults kept");

            plain
                .set(&[("upgrade_available", "0"), ("bootlimit", "")])
                .unwrap();
            let got = plain.get(&["upgrade_available", "bootlimit"]).unwrap();
            assert_eq!(got["upgrade_available"].as_deref(), Some("0"));
            assert_eq!(got["bootlimit"], None);
        }
    }

    #[test]
    fn blank_image_without_defaults_fails_naming_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        device(dir.path(), false);
        let plain = UbootEnv::new().with_config(dir.path().join("fw_env.config"));
        let err = plain.get(&["bootcount"]).unwrap_err();
        assert!(err.to_string().starts_with("fw_printenv failed"), "{err}");
        let err = plain.set(&[("bootcount", "0")]).unwrap_err();
        assert!(err.to_string().starts_with("fw_setenv failed"), "{err}");
    }

    #[test]
    fn a_setenv_that_changes_nothing_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        // `true` exits 0 like libubootenv does for input it skips.
        let env = device(dir.path(), false).with_tools("fw_printenv", "true");
        let err = env.set(&install_vars()).unwrap_err();
        assert!(matches!(err, BootEnvError::NotApplied { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "true did not apply mender_boot_part: wanted Some(\"3\"), read back Some(\"2\")"
        );
    }

    #[test]
    fn missing_tool_is_a_spawn_error() {
        let env = UbootEnv::new().with_tools("fw_printenv-not-installed", "fw_setenv");
        let err = env.get(&["a"]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot run fw_printenv-not-installed: "),
            "{err}"
        );
    }
}
