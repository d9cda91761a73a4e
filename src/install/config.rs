//! Device configuration: the directories (with upstream's `MENDER_*_DIR` overrides),
//! `mender.conf` (fallback file first, main file over it; unknown keys ignored) and the
//! `device_type` file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

/// A configuration problem, as one line naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Where the installer keeps things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    /// `mender.conf` and the root-filesystem state scripts (`MENDER_CONF_DIR`, `/etc/mender`).
    pub conf: PathBuf,
    /// Update modules live in `<data>/modules/v3` (`MENDER_DATA_DIR`, `/usr/share/mender`).
    pub data: PathBuf,
    /// Runtime state (`MENDER_DATASTORE_DIR`, `/var/lib/mender`; `--datastore`/`--data`).
    pub datastore: PathBuf,
}

impl Dirs {
    /// Upstream's defaults, overridden by the environment.
    pub fn from_env() -> Self {
        let var = |k: &str, d: &str| PathBuf::from(std::env::var_os(k).unwrap_or_else(|| d.into()));
        Dirs {
            conf: var("MENDER_CONF_DIR", "/etc/mender"),
            data: var("MENDER_DATA_DIR", "/usr/share/mender"),
            datastore: var("MENDER_DATASTORE_DIR", "/var/lib/mender"),
        }
    }
}

/// The `mender.conf` settings that apply to standalone installs.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Public keys an artifact must verify with (any one); empty: signatures not required.
    pub verify_keys: Vec<PathBuf>,
    /// The device type file.
    pub device_type_file: Option<PathBuf>,
    /// Per state-script timeout.
    pub script_timeout: Duration,
    /// Wait after a script asked to be retried (exit 21).
    pub script_retry_interval: Duration,
    /// Total time a script may keep asking to be retried.
    pub script_retry_timeout: Duration,
    /// Per update-module call timeout.
    pub module_timeout: Duration,
    /// Extra CA certificates for HTTPS sources.
    pub server_certificate: Option<PathBuf>,
    /// Skip TLS verification (testing only).
    pub skip_verify: bool,
    /// Download retries after a dropped connection.
    pub retry_download_count: u32,
    /// Log level when `--log-level` is not given.
    pub log_level: Option<String>,
    /// Root filesystem partition A (rootfs-image updates).
    pub rootfs_part_a: Option<String>,
    /// Root filesystem partition B.
    pub rootfs_part_b: Option<String>,
    /// `RootfsReadCompareWrite` (ours): read each chunk of the passive partition first and
    /// write only chunks that differ.
    pub rootfs_read_compare_write: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            verify_keys: Vec::new(),
            device_type_file: None,
            script_timeout: Duration::from_secs(3600),
            script_retry_interval: Duration::from_secs(60),
            script_retry_timeout: Duration::from_secs(1800),
            module_timeout: Duration::from_secs(14400),
            server_certificate: None,
            skip_verify: false,
            retry_download_count: 10,
            log_level: None,
            rootfs_part_a: None,
            rootfs_part_b: None,
            rootfs_read_compare_write: false,
        }
    }
}

fn load_object(path: &Path, explicit: bool) -> Result<Option<Map<String, Value>>, ConfigError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => return Err(ConfigError(format!("{}: {e}", path.display()))),
    };
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) if explicit => Err(ConfigError(format!(
            "{}: not a JSON object",
            path.display()
        ))),
        Err(e) if explicit => Err(ConfigError(format!(
            "{}: invalid JSON: {e}",
            path.display()
        ))),
        // A broken file at a default path is ignored, as upstream does (with a warning).
        _ => {
            eprintln!(
                "warning: {}: not a valid JSON object; ignored",
                path.display()
            );
            Ok(None)
        }
    }
}

impl Config {
    /// Loads `fallback` then `main` (keys in `main` win). A missing or broken file at a
    /// default path is ignored; an explicitly given `main` must load.
    pub fn load(main: &Path, main_explicit: bool, fallback: &Path) -> Result<Config, ConfigError> {
        let mut merged = load_object(fallback, false)?.unwrap_or_default();
        if let Some(m) = load_object(main, main_explicit)? {
            merged.extend(m);
        }
        Config::from_object(&merged)
            .map_err(|e| ConfigError(format!("{}: {}", main.display(), e.0)))
    }

    /// Reads the keys that apply; wrongly typed values are ignored, as upstream does.
    pub fn from_object(m: &Map<String, Value>) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        let s = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        };
        let secs = |k: &str, d: Duration| {
            m.get(k)
                .and_then(Value::as_u64)
                .filter(|&v| v > 0)
                .map_or(d, Duration::from_secs)
        };
        let one = s("ArtifactVerifyKey");
        let many: Vec<PathBuf> = m
            .get("ArtifactVerifyKeys")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        if one.is_some() && !many.is_empty() {
            return Err(ConfigError(
                "ArtifactVerifyKey and ArtifactVerifyKeys are both set; use one".into(),
            ));
        }
        c.verify_keys = one.map(PathBuf::from).into_iter().chain(many).collect();
        c.device_type_file = s("DeviceTypeFile").map(PathBuf::from);
        c.script_timeout = secs("StateScriptTimeoutSeconds", c.script_timeout);
        c.script_retry_interval = secs("StateScriptRetryIntervalSeconds", c.script_retry_interval);
        c.script_retry_timeout = secs("StateScriptRetryTimeoutSeconds", c.script_retry_timeout);
        c.module_timeout = secs("ModuleTimeoutSeconds", c.module_timeout);
        c.server_certificate = s("ServerCertificate").map(PathBuf::from);
        c.skip_verify = m
            .get("SkipVerify")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(n) = m.get("RetryDownloadCount").and_then(Value::as_u64) {
            if !(1..=10000).contains(&n) {
                return Err(ConfigError(format!(
                    "RetryDownloadCount {n} is not within 1..10000"
                )));
            }
            c.retry_download_count = n as u32;
        }
        c.log_level = s("DaemonLogLevel");
        c.rootfs_part_a = s("RootfsPartA");
        c.rootfs_part_b = s("RootfsPartB");
        c.rootfs_read_compare_write = m
            .get("RootfsReadCompareWrite")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(c)
    }
}

/// Reads the device type: one line `device_type=<value>`, an empty last line allowed,
/// anything else an error.
pub fn read_device_type(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let value = first
        .strip_prefix("device_type=")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ConfigError(format!(
                "{}: expected a line device_type=<type>",
                path.display()
            ))
        })?;
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(ConfigError(format!(
            "{}: trailing data after device_type",
            path.display()
        )));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_over_fallback_and_ignored_broken_defaults() {
        let d = tempfile::tempdir().unwrap();
        let main = d.path().join("mender.conf");
        let fb = d.path().join("fallback.conf");
        std::fs::write(
            &fb,
            r#"{"ModuleTimeoutSeconds": 5, "RootfsPartA": "/dev/a", "Unknown": 1}"#,
        )
        .unwrap();
        std::fs::write(&main, r#"{"ModuleTimeoutSeconds": 7, "ArtifactVerifyKeys": ["/k1", "/k2"], "SkipVerify": "yes"}"#).unwrap();
        let c = Config::load(&main, false, &fb).unwrap();
        assert_eq!(c.module_timeout, Duration::from_secs(7));
        assert_eq!(c.rootfs_part_a.as_deref(), Some("/dev/a"));
        assert_eq!(
            c.verify_keys,
            vec![PathBuf::from("/k1"), PathBuf::from("/k2")]
        );
        assert!(!c.skip_verify, "wrongly typed values are ignored");
        std::fs::write(&main, "{not json").unwrap();
        assert_eq!(
            Config::load(&main, false, &fb).unwrap().module_timeout,
            Duration::from_secs(5)
        );
        assert!(Config::load(&main, true, &fb).is_err());
        assert!(Config::load(&d.path().join("missing"), true, &fb).is_err());
        assert!(Config::load(&d.path().join("missing"), false, &fb).is_ok());
        std::fs::write(
            &main,
            r#"{"ArtifactVerifyKey": "/a", "ArtifactVerifyKeys": ["/b"]}"#,
        )
        .unwrap();
        assert!(Config::load(&main, false, &fb).is_err());
        std::fs::write(&main, r#"{"RetryDownloadCount": 0}"#).unwrap();
        assert!(Config::load(&main, false, &fb).is_err());
    }

    #[test]
    fn device_type_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("device_type");
        for (text, want) in [
            ("device_type=pi4\n", Some("pi4")),
            ("device_type=pi4", Some("pi4")),
            ("device_type=pi4\n\n", Some("pi4")),
            ("device_type=pi4\nextra\n", None),
            ("devicetype=pi4\n", None),
            ("device_type=\n", None),
            ("", None),
        ] {
            std::fs::write(&p, text).unwrap();
            assert_eq!(read_device_type(&p).ok().as_deref(), want, "{text:?}");
        }
    }
}
