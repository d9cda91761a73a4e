//! JSON encoding that matches Go's `encoding/json`, so headers written here are byte-identical
//! to those of upstream `mender-artifact` (minified, sorted map keys, HTML-safe escaping, Go's
//! float formatting).

use serde_json::Value;

/// Appends the Go `json.Marshal` encoding of `s` (a JSON string literal) to `out`.
pub fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Formats a number as Go formats a float64: the shortest representation that round-trips,
/// in plain notation for 1e-6 <= |x| < 1e21 and exponent notation (`1e+21`, `1e-7`) outside.
pub fn push_number(out: &mut String, n: &serde_json::Number) {
    let f = match n.as_f64() {
        Some(f) => f,
        None => {
            out.push_str(&n.to_string());
            return;
        }
    };
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mant, exp)) if !exp.starts_with('-') => {
                out.push_str(mant);
                out.push_str("e+");
                out.push_str(exp);
            }
            _ => out.push_str(&s),
        }
    } else {
        out.push_str(&format!("{f}"));
    }
}

/// Encodes a JSON value exactly as Go's `json.Marshal` would encode the equivalent
/// `interface{}` value (objects with sorted keys).
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    push_value(&mut out, v);
    out
}

/// Appends the Go encoding of `v` to `out`.
pub fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => push_number(out, n),
        Value::String(s) => push_string(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, x);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, k);
                out.push(':');
                push_value(out, &m[k]);
            }
            out.push('}');
        }
    }
}

/// Go's `json.MarshalIndent(v, prefix, indent)`, used by `read` to print meta-data.
pub fn to_string_indent(v: &Value, prefix: &str, indent: &str) -> String {
    let mut out = String::new();
    push_indented(&mut out, v, prefix, indent, 0);
    out
}

fn newline(out: &mut String, prefix: &str, indent: &str, depth: usize) {
    out.push('\n');
    out.push_str(prefix);
    for _ in 0..depth {
        out.push_str(indent);
    }
}

fn push_indented(out: &mut String, v: &Value, prefix: &str, indent: &str, depth: usize) {
    match v {
        Value::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, prefix, indent, depth + 1);
                push_indented(out, x, prefix, indent, depth + 1);
            }
            newline(out, prefix, indent, depth);
            out.push(']');
        }
        Value::Object(m) if !m.is_empty() => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, prefix, indent, depth + 1);
                push_string(out, k);
                out.push_str(": ");
                push_indented(out, &m[k], prefix, indent, depth + 1);
            }
            newline(out, prefix, indent, depth);
            out.push('}');
        }
        other => push_value(out, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_go_marshal() {
        let v: Value = serde_json::from_str(
            r#"{"zkey": "last", "akey": 1, "list": ["a", "b", 3], "html": "<a&b>", "float": 3.5}"#,
        )
        .unwrap();
        assert_eq!(
            to_string(&v),
            r#"{"akey":1,"float":3.5,"html":"\u003ca\u0026b\u003e","list":["a","b",3],"zkey":"last"}"#
        );
    }

    #[test]
    fn numbers_as_go_float64() {
        let cases = [
            ("1", "1"),
            ("3.5", "3.5"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("1e21", "1e+21"),
            ("1e300", "1e+300"),
            ("-0.0", "-0"),
            ("12345678901234567890", "12345678901234567000"),
            ("100", "100"),
        ];
        for (input, want) in cases {
            let v: Value = serde_json::from_str(input).unwrap();
            assert_eq!(to_string(&v), want, "input {input}");
        }
    }

    #[test]
    fn control_characters() {
        assert_eq!(
            to_string(&json!("a\u{1}\u{8}\n\u{2028}")),
            r#""a\u0001\u0008\n\u2028""#
        );
    }

    #[test]
    fn indent_like_go() {
        let v = json!({"b": [1, "x"], "a": {}});
        assert_eq!(
            to_string_indent(&v, "\t", "  "),
            "{\n\t  \"a\": {},\n\t  \"b\": [\n\t    1,\n\t    \"x\"\n\t  ]\n\t}"
        );
    }
}
