//! RFC 7512 `pkcs11:` URIs: which module, token, PIN and private key [`super::Pkcs11Key::open`]
//! should use, parsed strictly so that a typo fails loudly instead of matching the wrong key.

use std::path::PathBuf;

use zeroize::Zeroizing;

use crate::crypto::KeyError;

/// Where the user PIN comes from.
pub(super) enum PinSpec {
    /// `pin-value`: the PIN itself (percent-decoded).
    Value(Zeroizing<Vec<u8>>),
    /// `pin-source`: a file (`file:PATH`, `file://PATH` or a plain path) whose first line is
    /// the PIN.
    Source(String),
}

/// The path attributes understood here.
const PATH_ATTRIBUTES: [&str; 8] = [
    "token",
    "manufacturer",
    "serial",
    "model",
    "slot-id",
    "object",
    "id",
    "type",
];
/// The query attributes understood here.
const QUERY_ATTRIBUTES: [&str; 3] = ["pin-value", "pin-source", "module-path"];

/// The attributes of a parsed URI; `None` means "not given" (matches anything).
///
/// Deliberately not `Debug`: it may hold the PIN.
#[derive(Default)]
pub(super) struct Pkcs11Uri {
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub slot_id: Option<u64>,
    /// `object`: the CKA_LABEL of the key.
    pub object: Option<Vec<u8>>,
    /// `id`: the CKA_ID of the key (raw bytes).
    pub id: Option<Vec<u8>>,
    pub pin: Option<PinSpec>,
    pub module_path: Option<PathBuf>,
}

impl Pkcs11Uri {
    /// Parse `pkcs11:path-attributes?query-attributes`. Unknown, misplaced or repeated
    /// attributes and broken percent-encoding are errors; messages never contain the PIN.
    pub fn parse(uri: &str) -> Result<Pkcs11Uri, KeyError> {
        let rest = match uri.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("pkcs11:") => &uri[7..],
            _ => return Err(bad("it must start with \"pkcs11:\"")),
        };
        if rest.contains('#') {
            return Err(bad("\"#\" must be percent-encoded as %23"));
        }
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, query),
            None => (rest, ""),
        };
        let mut out = Pkcs11Uri::default();
        let mut seen: Vec<&str> = Vec::new();
        let path_parts = path.split(';').map(|part| (part, false));
        let query_parts = query.split('&').map(|part| (part, true));
        for (part, in_query) in path_parts.chain(query_parts) {
            if part.is_empty() {
                continue;
            }
            let Some((name, value)) = part.split_once('=') else {
                // Only a known name is echoed: a stray word might be the PIN.
                let known = PATH_ATTRIBUTES.contains(&part) || QUERY_ATTRIBUTES.contains(&part);
                let what = if known {
                    format!("attribute \"{part}\"")
                } else {
                    "an attribute".into()
                };
                return Err(bad(format!("{what} has no \"=value\"")));
            };
            if seen.contains(&name) {
                return Err(bad(format!("attribute \"{name}\" given twice")));
            }
            seen.push(name);
            out.set(name, value, in_query)?;
        }
        if seen.contains(&"pin-value") && seen.contains(&"pin-source") {
            return Err(bad("give either pin-value or pin-source, not both"));
        }
        Ok(out)
    }

    /// Store one attribute, checking that it belongs where it was found (path or query).
    fn set(&mut self, name: &str, raw: &str, in_query: bool) -> Result<(), KeyError> {
        let is_query_attribute = QUERY_ATTRIBUTES.contains(&name);
        let known = is_query_attribute || PATH_ATTRIBUTES.contains(&name);
        if known && is_query_attribute != in_query {
            let place = if in_query {
                "path (before \"?\")"
            } else {
                "query (after \"?\")"
            };
            return Err(bad(format!("attribute \"{name}\" belongs in the {place}")));
        }
        match name {
            "token" => self.token = Some(text(name, raw)?),
            "manufacturer" => self.manufacturer = Some(text(name, raw)?),
            "serial" => self.serial = Some(text(name, raw)?),
            "model" => self.model = Some(text(name, raw)?),
            "object" => self.object = Some(decode(name, raw)?),
            "id" => self.id = Some(decode(name, raw)?),
            "slot-id" => {
                let id = text(name, raw)?;
                let id = id
                    .parse()
                    .map_err(|_| bad("slot-id must be a decimal number"))?;
                self.slot_id = Some(id);
            }
            "type" => {
                let kind = text(name, raw)?;
                if kind != "private" {
                    return Err(bad(format!(
                        "type={kind} cannot sign (only type=private is accepted)"
                    )));
                }
            }
            "pin-value" => self.pin = Some(PinSpec::Value(Zeroizing::new(decode(name, raw)?))),
            "pin-source" => self.pin = Some(PinSpec::Source(text(name, raw)?)),
            "module-path" => self.module_path = Some(PathBuf::from(text(name, raw)?)),
            "module-name" => {
                return Err(bad(
                    "module-name is not supported; give module-path=/path/to/module.so instead",
                ))
            }
            "library-manufacturer"
            | "library-description"
            | "library-version"
            | "slot-description"
            | "slot-manufacturer" => {
                return Err(bad(format!("attribute \"{name}\" is not supported")))
            }
            _ => return Err(bad(format!("unknown {}", describe_name(name)))),
        }
        Ok(())
    }
}

/// The URI error.
fn bad(detail: impl ToString) -> KeyError {
    KeyError::malformed("PKCS#11 URI", detail)
}

/// An attribute name for a message, quoted only if it looks like a name: a stray fragment
/// could be part of a PIN and must not be echoed.
fn describe_name(name: &str) -> String {
    let plausible = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plausible {
        format!("attribute \"{name}\"")
    } else {
        "attribute".to_string()
    }
}

/// Percent-decode a value into bytes (RFC 3986 `%XX`; every other byte stands for itself).
/// The error names the attribute but never shows the value.
fn decode(name: &str, raw: &str) -> Result<Vec<u8>, KeyError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digit = |at: usize| bytes.get(at).and_then(|&b| char::from(b).to_digit(16));
            let (Some(high), Some(low)) = (digit(i + 1), digit(i + 2)) else {
                return Err(bad(format!(
                    "bad percent-encoding in \"{name}\" (\"%\" must be followed by two hex digits)"
                )));
            };
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Percent-decode a value that must be text (labels, serials, paths).
fn text(name: &str, raw: &str) -> Result<String, KeyError> {
    String::from_utf8(decode(name, raw)?).map_err(|_| {
        bad(format!(
            "\"{name}\" is not valid UTF-8 after percent-decoding"
        ))
    })
}

/// The bytes of an `id` written back in URI form, for messages.
pub(super) fn encode_id(id: &[u8]) -> String {
    id.iter().map(|b| format!("%{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(uri: &str) -> String {
        match Pkcs11Uri::parse(uri) {
            Ok(_) => panic!("{uri} parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn full_uri_is_decoded() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=my%20token;object=artifact-key;type=private;id=%01%Ab;serial=0a1;\
             manufacturer=SoftHSM%20project;model=SoftHSM%20v2;slot-id=7\
             ?pin-value=12%2534&module-path=/usr/lib/x%2Fy.so",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("my token"));
        assert_eq!(uri.object.as_deref(), Some(&b"artifact-key"[..]));
        assert_eq!(uri.id.as_deref(), Some(&[0x01, 0xab][..]));
        assert_eq!(uri.serial.as_deref(), Some("0a1"));
        assert_eq!(uri.manufacturer.as_deref(), Some("SoftHSM project"));
        assert_eq!(uri.model.as_deref(), Some("SoftHSM v2"));
        assert_eq!(uri.slot_id, Some(7));
        assert!(matches!(&uri.pin, Some(PinSpec::Value(p)) if p.as_slice() == b"12%34"));
        assert_eq!(uri.module_path, Some(PathBuf::from("/usr/lib/x/y.so")));
        assert_eq!(encode_id(&[0x01, 0xab]), "%01%ab");

        let empty = Pkcs11Uri::parse("PKCS11:").unwrap();
        assert!(empty.token.is_none() && empty.pin.is_none() && empty.module_path.is_none());
        let source = Pkcs11Uri::parse("pkcs11:object=k;?pin-source=file:/run/pin").unwrap();
        assert!(matches!(&source.pin, Some(PinSpec::Source(s)) if s == "file:/run/pin"));
    }

    #[test]
    fn bad_uris_are_refused_with_one_line_messages() {
        let cases = [
            ("token=mender", "must start with \"pkcs11:\""),
            ("pkcs1:token=mender", "must start with \"pkcs11:\""),
            (
                "pkcs11:token=mender;colour=blue",
                "unknown attribute \"colour\"",
            ),
            (
                "pkcs11:token=a?pin-value=1&x-vendor=2",
                "unknown attribute \"x-vendor\"",
            ),
            ("pkcs11:object=%4", "bad percent-encoding in \"object\""),
            ("pkcs11:id=%zz01", "bad percent-encoding in \"id\""),
            ("pkcs11:id=%+1", "bad percent-encoding in \"id\""),
            ("pkcs11:token=%ff", "\"token\" is not valid UTF-8"),
            ("pkcs11:token=a;token=b", "\"token\" given twice"),
            ("pkcs11:token", "attribute \"token\" has no \"=value\""),
            ("pkcs11:type=cert", "type=cert cannot sign"),
            ("pkcs11:slot-id=one", "slot-id must be a decimal number"),
            ("pkcs11:pin-value=1", "\"pin-value\" belongs in the query"),
            ("pkcs11:?token=a", "\"token\" belongs in the path"),
            (
                "pkcs11:?module-name=softhsm2",
                "module-name is not supported",
            ),
            (
                "pkcs11:slot-description=x",
                "\"slot-description\" is not supported",
            ),
            ("pkcs11:object=a#b", "must be percent-encoded as %23"),
            (
                "pkcs11:?pin-value=1&pin-source=/p",
                "either pin-value or pin-source",
            ),
        ];
        for (uri, expected) in cases {
            let message = error(uri);
            assert!(
                message.starts_with("malformed PKCS#11 URI: "),
                "{uri}: {message}"
            );
            assert!(message.contains(expected), "{uri}: {message}");
            assert!(
                !message.contains('\n') && !message.ends_with('.'),
                "{message}"
            );
        }
    }

    #[test]
    fn pin_never_appears_in_errors() {
        for uri in [
            "pkcs11:?pin-value=s3cr%t",
            "pkcs11:?pin-value=s3cret&pin-value=s3cret",
            "pkcs11:?pin-value=s3cret&bogus=1",
            "pkcs11:?s3cret&pin-value=1",
            "pkcs11:?pin-value=s3cret&module-path=%",
        ] {
            let message = error(uri);
            assert!(!message.contains("s3cr"), "{uri}: {message}");
        }
    }
}
