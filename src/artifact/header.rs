//! The JSON documents of the header tar: `header-info` and, per payload, `type-info` and
//! `meta-data`; parsed strictly where upstream is strict and encoded byte-for-byte as upstream.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::gojson::{push_string, push_value};

/// Longest JSON header document accepted when reading.
pub const MAX_JSON_SIZE: u64 = 1 << 20;

/// Artifact-level provides and depends from `header-info` (format v3), or their v2
/// equivalents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderInfo {
    /// One entry per payload: its type, `None` for an empty (bootstrap) payload.
    pub payload_types: Vec<Option<String>>,
    /// `artifact_provides.artifact_name`.
    pub artifact_name: String,
    /// `artifact_provides.artifact_group`.
    pub artifact_group: Option<String>,
    /// `artifact_depends.artifact_name`: the artifacts this one may be installed over.
    pub depends_artifact_name: Vec<String>,
    /// `artifact_depends.device_type`: the compatible device types.
    pub depends_device_type: Vec<String>,
    /// `artifact_depends.artifact_group`.
    pub depends_artifact_group: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayload {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvides {
    artifact_name: String,
    #[serde(default)]
    artifact_group: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDepends {
    #[serde(default)]
    artifact_name: Option<Vec<String>>,
    #[serde(default)]
    device_type: Option<Vec<String>>,
    #[serde(default)]
    artifact_group: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderInfoV3 {
    payloads: Vec<RawPayload>,
    artifact_provides: RawProvides,
    #[serde(default)]
    artifact_depends: Option<RawDepends>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeaderInfoV2 {
    artifact_name: String,
    updates: Vec<RawPayload>,
    device_types_compatible: Vec<String>,
}

impl HeaderInfo {
    /// Parses a v3 `header-info`. Unknown keys are refused (as upstream does); depends, when
    /// present, must name at least one device type.
    pub fn parse_v3(bytes: &[u8]) -> Result<Self, String> {
        let raw: RawHeaderInfoV3 =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid header-info: {e}"))?;
        let deps = raw.artifact_depends;
        if let Some(d) = &deps {
            if d.device_type.as_ref().is_none_or(|v| v.is_empty()) {
                return Err("invalid header-info: artifact_depends names no device_type".into());
            }
        }
        let deps = deps.unwrap_or_default();
        Ok(HeaderInfo {
            payload_types: raw.payloads.into_iter().map(|p| p.kind).collect(),
            artifact_name: raw.artifact_provides.artifact_name,
            artifact_group: raw
                .artifact_provides
                .artifact_group
                .filter(|g| !g.is_empty()),
            depends_artifact_name: deps.artifact_name.unwrap_or_default(),
            depends_device_type: deps.device_type.unwrap_or_default(),
            depends_artifact_group: deps.artifact_group.unwrap_or_default(),
        })
    }

    /// Parses a v2 `header-info` (`artifact_name`, `updates`, `device_types_compatible`).
    pub fn parse_v2(bytes: &[u8]) -> Result<Self, String> {
        let raw: RawHeaderInfoV2 =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid header-info: {e}"))?;
        if raw.device_types_compatible.is_empty() {
            return Err("invalid header-info: device_types_compatible is empty".into());
        }
        Ok(HeaderInfo {
            payload_types: raw.updates.into_iter().map(|p| p.kind).collect(),
            artifact_name: raw.artifact_name,
            depends_device_type: raw.device_types_compatible,
            ..Default::default()
        })
    }

    /// The v3 encoding, byte-identical to upstream's.
    pub fn to_json_v3(&self) -> String {
        let mut s = String::from("{\"payloads\":[");
        for (i, t) in self.payload_types.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str("{\"type\":");
            match t {
                Some(t) => push_string(&mut s, t),
                None => s.push_str("null"),
            }
            s.push('}');
        }
        s.push_str("],\"artifact_provides\":{\"artifact_name\":");
        push_string(&mut s, &self.artifact_name);
        if let Some(g) = self.artifact_group.as_ref().filter(|g| !g.is_empty()) {
            s.push_str(",\"artifact_group\":");
            push_string(&mut s, g);
        }
        s.push('}');
        let depends = [
            ("artifact_name", &self.depends_artifact_name),
            ("device_type", &self.depends_device_type),
            ("artifact_group", &self.depends_artifact_group),
        ];
        // No depends at all (parse_v3 accepts that) is written as no `artifact_depends`: an
        // empty object would be refused when read back.
        if depends.iter().any(|(_, list)| !list.is_empty()) {
            s.push_str(",\"artifact_depends\":{");
            let mut first = true;
            for (key, list) in depends {
                if list.is_empty() {
                    continue;
                }
                if !first {
                    s.push(',');
                }
                first = false;
                push_string(&mut s, key);
                s.push(':');
                push_str_list(&mut s, list);
            }
            s.push('}');
        }
        s.push('}');
        s
    }

    /// The v2 encoding, as upstream writes it with `-v 2`.
    pub fn to_json_v2(&self) -> String {
        let mut s = String::from("{\"artifact_name\":");
        push_string(&mut s, &self.artifact_name);
        s.push_str(",\"updates\":[");
        for (i, t) in self.payload_types.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str("{\"type\":");
            match t {
                Some(t) => push_string(&mut s, t),
                None => s.push_str("null"),
            }
            s.push('}');
        }
        s.push_str("],\"device_types_compatible\":");
        push_str_list(&mut s, &self.depends_device_type);
        s.push('}');
        s
    }
}

fn push_str_list(s: &mut String, list: &[String]) {
    s.push('[');
    for (i, x) in list.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_string(s, x);
    }
    s.push(']');
}

/// A payload's `type-info`: its type and the payload-level provides, depends and the
/// provides it clears on the device when installed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeInfo {
    /// The payload type (update module name), `None` for an empty payload.
    pub kind: Option<String>,
    /// `artifact_depends`: values are strings or lists of strings.
    pub depends: BTreeMap<String, Value>,
    /// `artifact_provides`: string values only.
    pub provides: BTreeMap<String, String>,
    /// `clears_artifact_provides`: glob patterns (`*` matches any run of characters).
    pub clears_provides: Option<Vec<String>>,
}

impl TypeInfo {
    /// Parses a `type-info` document; unknown keys are accepted (as upstream does).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid type-info: {e}"))?;
        let obj = v
            .as_object()
            .ok_or("invalid type-info: not a JSON object")?;
        let kind = match obj.get("type") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("invalid type-info: `type` is not a string".into()),
        };
        let mut ti = TypeInfo {
            kind,
            ..Default::default()
        };
        if let Some(p) = obj.get("artifact_provides").filter(|v| !v.is_null()) {
            let p = p
                .as_object()
                .ok_or("invalid type-info: artifact_provides is not an object")?;
            for (k, v) in p {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("invalid type-info: provide {k:?} is not a string"))?;
                ti.provides.insert(k.clone(), v.to_string());
            }
        }
        if let Some(d) = obj.get("artifact_depends").filter(|v| !v.is_null()) {
            let d = d
                .as_object()
                .ok_or("invalid type-info: artifact_depends is not an object")?;
            for (k, v) in d {
                check_depend_value(k, v)?;
                ti.depends.insert(k.clone(), v.clone());
            }
        }
        if let Some(c) = obj.get("clears_artifact_provides").filter(|v| !v.is_null()) {
            let c = c
                .as_array()
                .ok_or("invalid type-info: clears_artifact_provides is not a list")?;
            let mut list = Vec::new();
            for x in c {
                list.push(
                    x.as_str()
                        .ok_or("invalid type-info: clears_artifact_provides holds a non-string")?
                        .to_string(),
                );
            }
            ti.clears_provides = Some(list);
        }
        Ok(ti)
    }

    /// The encoding upstream writes: key order `type`, `artifact_depends`,
    /// `artifact_provides`, `clears_artifact_provides`, empty ones left out.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{\"type\":");
        match &self.kind {
            Some(t) => push_string(&mut s, t),
            None => s.push_str("null"),
        }
        if !self.depends.is_empty() {
            s.push_str(",\"artifact_depends\":");
            let m: Map<String, Value> = self.depends.clone().into_iter().collect();
            push_value(&mut s, &Value::Object(m));
        }
        if !self.provides.is_empty() {
            s.push_str(",\"artifact_provides\":");
            let m: Map<String, Value> = self
                .provides
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            push_value(&mut s, &Value::Object(m));
        }
        if let Some(c) = self.clears_provides.as_ref().filter(|c| !c.is_empty()) {
            s.push_str(",\"clears_artifact_provides\":");
            push_str_list(&mut s, c);
        }
        s.push('}');
        s
    }
}

fn check_depend_value(key: &str, v: &Value) -> Result<(), String> {
    let ok = match v {
        Value::String(_) => true,
        Value::Array(a) => a.iter().all(Value::is_string),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid type-info: depend {key:?} is neither a string nor a list of strings"
        ))
    }
}

/// Parses a `meta-data` document: empty, or a JSON object.
pub fn parse_meta_data(bytes: &[u8]) -> Result<Option<Map<String, Value>>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err("invalid meta-data: the top level is not a JSON object".into()),
        Err(e) => Err(format!("invalid meta-data: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE_HI: &str = r#"{"payloads":[{"type":"my-module"}],"artifact_provides":{"artifact_name":"module-1.0","artifact_group":"group-new"},"artifact_depends":{"artifact_name":["prev-release-1","prev-release-2"],"device_type":["devA","devB"],"artifact_group":["group-old"]}}"#;
    const MODULE_TI: &str = r#"{"type":"my-module","artifact_depends":{"dep.key":"dep-value"},"artifact_provides":{"foo":"bar","my-module.config":"abc","rootfs-image.my-module.version":"module-1.0"},"clears_artifact_provides":["foo*","rootfs-image.my-module.*"]}"#;

    #[test]
    fn header_info_round_trip_is_byte_identical() {
        let hi = HeaderInfo::parse_v3(MODULE_HI.as_bytes()).unwrap();
        assert_eq!(hi.to_json_v3(), MODULE_HI);
        let boot = r#"{"payloads":[{"type":null}],"artifact_provides":{"artifact_name":"b"},"artifact_depends":{"device_type":["d"]}}"#;
        assert_eq!(
            HeaderInfo::parse_v3(boot.as_bytes()).unwrap().to_json_v3(),
            boot
        );
    }

    /// Found by the `header_json` fuzz target: without depends, the printed header-info had
    /// an empty `artifact_depends` that parse_v3 refuses.
    #[test]
    fn header_info_without_depends_round_trips() {
        let text = r#"{"payloads":[{"type":"m"}],"artifact_provides":{"artifact_name":"a"}}"#;
        let hi = HeaderInfo::parse_v3(text.as_bytes()).unwrap();
        assert_eq!(hi.to_json_v3(), text);
    }

    #[test]
    fn header_info_is_strict() {
        assert!(HeaderInfo::parse_v3(
            br#"{"payloads":[],"artifact_provides":{"artifact_name":"a"},"extra":1}"#
        )
        .is_err());
        assert!(HeaderInfo::parse_v3(
            br#"{"payloads":[],"artifact_provides":{"artifact_name":"a"},"artifact_depends":{}}"#
        )
        .is_err());
        assert!(HeaderInfo::parse_v3(
            br#"{"payloads":[],"artifact_provides":{"artifact_name":"a"}}"#
        )
        .is_ok());
    }

    #[test]
    fn type_info_round_trip_is_byte_identical() {
        let ti = TypeInfo::parse(MODULE_TI.as_bytes()).unwrap();
        assert_eq!(ti.to_json(), MODULE_TI);
        assert_eq!(
            TypeInfo::parse(br#"{"type":null}"#).unwrap().to_json(),
            r#"{"type":null}"#
        );
        assert!(TypeInfo::parse(br#"{"type":"x","artifact_provides":{"a":1}}"#).is_err());
        assert!(TypeInfo::parse(br#"{"type":"x","artifact_depends":{"a":[1]}}"#).is_err());
        assert!(TypeInfo::parse(br#"{"type":"x","unknown":{"a":[1]}}"#).is_ok());
    }

    #[test]
    fn v2_header_info() {
        let text = r#"{"artifact_name":"release-v2","updates":[{"type":"rootfs-image"}],"device_types_compatible":["qemux86-64","other-dev"]}"#;
        let hi = HeaderInfo::parse_v2(text.as_bytes()).unwrap();
        assert_eq!(hi.to_json_v2(), text);
    }

    #[test]
    fn meta_data() {
        assert!(parse_meta_data(b"").unwrap().is_none());
        assert!(parse_meta_data(b"[1]").is_err());
        assert!(parse_meta_data(b"{\"a\":1}").unwrap().is_some());
    }
}
