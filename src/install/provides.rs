//! What a device has installed (artifact name, group, provides), the depends check an
//! artifact must pass before anything is written, and how provides change on commit
//! (`clears_artifact_provides` globs), all as upstream's client does.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::artifact::{HeaderInfo, TypeInfo};

/// The installed software as the device knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Installed {
    /// `artifact_name`, `None` before anything was installed ("unknown").
    pub artifact_name: Option<String>,
    /// `artifact_group`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_group: Option<String>,
    /// Other provides (never `artifact_name`/`artifact_group`).
    #[serde(default)]
    pub provides: BTreeMap<String, String>,
}

impl Installed {
    /// Every provide including `artifact_name` and `artifact_group`, as `show-provides`
    /// prints them and as depends are checked against.
    pub fn all(&self) -> BTreeMap<String, String> {
        let mut m = self.provides.clone();
        if let Some(n) = &self.artifact_name {
            m.insert("artifact_name".into(), n.clone());
        }
        if let Some(g) = self.artifact_group.as_ref().filter(|g| !g.is_empty()) {
            m.insert("artifact_group".into(), g.clone());
        }
        m
    }
}

/// `*` matches any run of characters (also none); everything else is literal; the whole key
/// must match.
pub fn glob_match(pattern: &str, key: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == key;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !key.starts_with(first) || key.len() < first.len() + last.len() || !key.ends_with(last) {
        return false;
    }
    let mut rest = &key[first.len()..key.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The provides after committing an artifact that provides `new` and clears `clears`:
/// no list and no provides drops everything; provides without a list replace everything;
/// with a list, matching keys are removed, then `new` is added.
pub fn after_commit(
    old: &BTreeMap<String, String>,
    new: Option<&BTreeMap<String, String>>,
    clears: Option<&[String]>,
) -> BTreeMap<String, String> {
    match (new, clears) {
        (None, None) => BTreeMap::new(),
        (Some(n), None) => n.clone(),
        (n, Some(patterns)) => {
            let mut m: BTreeMap<String, String> = old
                .iter()
                .filter(|(k, _)| !patterns.iter().any(|p| glob_match(p, k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if let Some(n) = n {
                m.extend(n.clone());
            }
            m
        }
    }
}

/// Why an artifact may not be installed on this device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DependsError {
    /// The device type is not among the compatible ones.
    #[error("artifact is for device types [{artifact}], this device is {device}")]
    DeviceType {
        /// This device's type.
        device: String,
        /// The artifact's compatible types.
        artifact: String,
    },
    /// A depended-on provide is missing on the device.
    #[error("artifact depends on {key}, which this device does not provide")]
    Missing {
        /// The provide key.
        key: String,
    },
    /// A depended-on provide has another value.
    #[error("artifact depends on {key} being one of [{wanted}], this device has {have:?}")]
    Mismatch {
        /// The provide key.
        key: String,
        /// The accepted values.
        wanted: String,
        /// The device's value.
        have: String,
    },
}

fn check_one(
    have: &BTreeMap<String, String>,
    key: &str,
    wanted: &[String],
) -> Result<(), DependsError> {
    let v = have
        .get(key)
        .ok_or_else(|| DependsError::Missing { key: key.into() })?;
    if wanted.iter().any(|w| w == v) {
        Ok(())
    } else {
        Err(DependsError::Mismatch {
            key: key.into(),
            wanted: wanted.join(", "),
            have: v.clone(),
        })
    }
}

/// Checks the artifact's depends against the device: its type must be listed, and every
/// depended-on provide (artifact names, groups, type-info depends) must have one of the
/// listed values. Extra provides on the device do not matter.
pub fn check_depends(
    device_type: &str,
    installed: &Installed,
    header: &HeaderInfo,
    type_info_depends: &BTreeMap<String, Value>,
) -> Result<(), DependsError> {
    if !header.depends_device_type.iter().any(|d| d == device_type) {
        return Err(DependsError::DeviceType {
            device: device_type.into(),
            artifact: header.depends_device_type.join(", "),
        });
    }
    let have = installed.all();
    if !header.depends_artifact_name.is_empty() {
        check_one(&have, "artifact_name", &header.depends_artifact_name)?;
    }
    if !header.depends_artifact_group.is_empty() {
        check_one(&have, "artifact_group", &header.depends_artifact_group)?;
    }
    for (k, v) in type_info_depends {
        let wanted: Vec<String> = match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        check_one(&have, k, &wanted)?;
    }
    Ok(())
}

/// Checks the depends of payload 0 of an artifact (type-info depends included).
pub fn check_artifact(
    device_type: &str,
    installed: &Installed,
    header: &HeaderInfo,
    type_info: &TypeInfo,
) -> Result<(), DependsError> {
    check_depends(device_type, installed, header, &type_info.depends)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn globs_are_anchored_and_star_matches_any_run() {
        let table = [
            ("rootfs-image.*", "rootfs-image.version", true),
            ("rootfs-image.*", "rootfs-image.", true),
            ("rootfs-image.*", "rootfs-image", false),
            ("rootfs-image.*", "xrootfs-image.version", false),
            ("*", "anything", true),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("artifact_group", "artifact_group", true),
            ("foo*", "foo.bar", true),
        ];
        for (p, k, want) in table {
            assert_eq!(glob_match(p, k), want, "{p:?} vs {k:?}");
        }
    }

    #[test]
    fn commit_semantics() {
        let old = map(&[
            ("rootfs-image.version", "1"),
            ("rootfs-image.checksum", "x"),
            ("app.version", "3"),
        ]);
        let new = map(&[("rootfs-image.version", "2")]);
        assert_eq!(after_commit(&old, None, None), BTreeMap::new());
        assert_eq!(after_commit(&old, Some(&new), None), new);
        let clears = vec!["rootfs-image.*".to_string()];
        assert_eq!(
            after_commit(&old, Some(&new), Some(&clears)),
            map(&[("rootfs-image.version", "2"), ("app.version", "3")])
        );
        assert_eq!(after_commit(&old, None, Some(&[])), old);
    }

    #[test]
    fn depends() {
        let installed = Installed {
            artifact_name: Some("rel-1".into()),
            artifact_group: Some("prod".into()),
            provides: map(&[("rootfs-image.checksum", "abc")]),
        };
        let mut h = HeaderInfo {
            depends_device_type: vec!["pi4".into(), "pi3".into()],
            ..Default::default()
        };
        let none = BTreeMap::new();
        assert!(check_depends("pi3", &installed, &h, &none).is_ok());
        assert!(matches!(
            check_depends("x86", &installed, &h, &none),
            Err(DependsError::DeviceType { .. })
        ));
        h.depends_artifact_name = vec!["rel-0".into(), "rel-1".into()];
        h.depends_artifact_group = vec!["prod".into()];
        assert!(check_depends("pi3", &installed, &h, &none).is_ok());
        h.depends_artifact_name = vec!["rel-0".into()];
        assert!(matches!(
            check_depends("pi3", &installed, &h, &none),
            Err(DependsError::Mismatch { .. })
        ));
        h.depends_artifact_name.clear();
        let mut ti = BTreeMap::new();
        ti.insert(
            "rootfs-image.checksum".to_string(),
            Value::String("abc".into()),
        );
        assert!(check_depends("pi3", &installed, &h, &ti).is_ok());
        ti.insert("other.key".to_string(), Value::String("1".into()));
        assert_eq!(
            check_depends("pi3", &installed, &h, &ti),
            Err(DependsError::Missing {
                key: "other.key".into()
            })
        );
        let unknown = Installed::default();
        h.depends_artifact_name = vec!["rel-1".into()];
        assert!(check_depends("pi3", &unknown, &h, &none).is_err());
    }
}
