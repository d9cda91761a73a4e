//! Names in the format: member names, payload file names, artifact names and state-script
//! names, with the rules that upstream applies when writing and reading.

/// The content of the `version` member for format version 3.
pub const VERSION_3: &[u8] = br#"{"format":"mender","version":3}"#;
/// The content of the `version` member for format version 2.
pub const VERSION_2: &[u8] = br#"{"format":"mender","version":2}"#;

/// Longest artifact name or group accepted when writing (upstream 4.1.1 rule).
pub const MAX_NAME_LEN: usize = 256;

/// States for which an artifact may carry state scripts; the others (Idle, Sync, Download)
/// live on the device's root filesystem.
pub const ARTIFACT_SCRIPT_STATES: [&str; 6] = [
    "ArtifactInstall",
    "ArtifactReboot",
    "ArtifactCommit",
    "ArtifactRollback",
    "ArtifactRollbackReboot",
    "ArtifactFailure",
];

/// Checks a payload file name: ASCII letters, digits and `_ - . ,` only, as upstream requires
/// on write and on read; this also rules out path separators and `..`.
pub fn check_payload_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("invalid payload file name {name:?}"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-.,".contains(&b))
    {
        return Err(format!(
            "payload file name {name:?} contains forbidden characters; only letters, digits and \".,_-\" are allowed"
        ));
    }
    Ok(())
}

/// Checks an artifact name or group given to a writer: non-empty, no whitespace, printable,
/// at most 256 characters.
pub fn check_artifact_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(format!("whitespace is not allowed in the {what}: {name:?}"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "control characters are not allowed in the {what}: {name:?}"
        ));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!(
            "the {what} is longer than {MAX_NAME_LEN} characters"
        ));
    }
    Ok(())
}

/// Splits a state-script name `<State>_<Enter|Leave|Error>_<NN>[_<suffix>]` (state letters
/// only, two digits, a suffix without whitespace) into state, action and order.
pub fn split_script_name(name: &str) -> Option<(&str, &str, u8)> {
    let (state, rest) = name.split_once('_')?;
    if state.is_empty() || !state.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let (action, rest) = rest.split_once('_')?;
    if !matches!(action, "Enter" | "Leave" | "Error") {
        return None;
    }
    let digits = rest.get(..2)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match &rest[2..] {
        "" => {}
        suffix => {
            let text = suffix.strip_prefix('_')?;
            if text.is_empty() || text.chars().any(char::is_whitespace) {
                return None;
            }
        }
    }
    Some((state, action, digits.parse().ok()?))
}

/// A parsed state-script name such as `ArtifactInstall_Enter_01_hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptName {
    /// The state, e.g. `ArtifactInstall`.
    pub state: String,
    /// `Enter`, `Leave` or `Error`.
    pub action: String,
    /// The two-digit ordering number.
    pub order: u8,
}

/// Parses and checks a state-script base name for an artifact. Unlike upstream's unanchored
/// pattern, the whole name must match, so `x.ArtifactInstall_Enter_01` is refused rather than
/// silently never run by a device.
pub fn parse_script_name(name: &str) -> Result<ScriptName, String> {
    let (state, action, order) = split_script_name(name).ok_or_else(|| {
        format!(
            "invalid script name {name:?}: scripts must be named <STATE>_<Enter|Leave|Error>_<NN>[_<description>]"
        )
    })?;
    let state = state.to_string();
    if !ARTIFACT_SCRIPT_STATES.contains(&state.as_str()) {
        return Err(format!(
            "unsupported script state {state} in {name:?}; artifacts may carry scripts for {}",
            ARTIFACT_SCRIPT_STATES.join(", ")
        ));
    }
    Ok(ScriptName {
        state,
        action: action.to_string(),
        order,
    })
}

/// The member name of payload `index` with compression suffix `ext`, e.g. `data/0000.tar.gz`.
pub fn data_member_name(index: usize, ext: &str) -> String {
    format!("data/{index:04}.tar{ext}")
}

/// The manifest path of a payload file, e.g. `data/0000/rootfs.ext4`.
pub fn manifest_data_path(index: usize, file: &str) -> String {
    format!("data/{index:04}/{file}")
}

/// Parses `data/NNNN.tar<ext>` into the payload index and the suffix after `.tar`.
pub fn parse_data_member(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("data/")?;
    let (num, ext) = rest.split_once(".tar")?;
    if num.len() != 4 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((num.parse().ok()?, ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_names() {
        assert!(check_payload_file_name("rootfs.ext4").is_ok());
        assert!(check_payload_file_name("a,b-c_d.e").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "ä", "../x", "/abs"] {
            assert!(check_payload_file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn artifact_names() {
        assert!(check_artifact_name("artifact name", "release-1").is_ok());
        assert!(check_artifact_name("artifact name", "a b").is_err());
        assert!(check_artifact_name("artifact name", "").is_err());
        assert!(check_artifact_name("artifact name", &"x".repeat(257)).is_err());
        assert!(check_artifact_name("artifact name", &"x".repeat(256)).is_ok());
    }

    #[test]
    fn script_names() {
        let s = parse_script_name("ArtifactInstall_Enter_01_hello").unwrap();
        assert_eq!(
            (s.state.as_str(), s.action.as_str(), s.order),
            ("ArtifactInstall", "Enter", 1)
        );
        assert!(parse_script_name("ArtifactCommit_Leave_99").is_ok());
        assert!(parse_script_name("Download_Enter_01").is_err());
        assert!(parse_script_name("ArtifactInstall_Enter_1").is_err());
        assert!(parse_script_name("x.ArtifactInstall_Enter_01").is_err());
        assert!(parse_script_name("ArtifactInstall_Before_01").is_err());
    }

    #[test]
    fn data_members() {
        assert_eq!(parse_data_member("data/0000.tar.gz"), Some((0, ".gz")));
        assert_eq!(parse_data_member("data/0012.tar"), Some((12, "")));
        assert_eq!(parse_data_member("data/12.tar"), None);
        assert_eq!(parse_data_member("data"), None);
        assert_eq!(data_member_name(1, ".zst"), "data/0001.tar.zst");
    }
}
