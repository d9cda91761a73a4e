//! libpq's TLS parameters in a PostgreSQL URL. The driver's URL parser knows only
//! `sslmode=disable|prefer|require` and rejects other parameters, so [`split_url`] takes
//! `sslmode` and `sslrootcert` out of the URL (both the `postgres://` and the key=value form)
//! and hands them to [`super::pgtls::PgTls`].

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it.
    Prefer,
    /// TLS or nothing.
    Require,
    /// TLS, the chain checked.
    VerifyCa,
    /// TLS, the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(format!(
                    "invalid sslmode {s:?} (expected disable, prefer, require, verify-ca or \
                     verify-full)"
                ))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The nearest mode the driver knows (it only decides whether TLS is asked for).
    fn driver(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }
}

/// The TLS parameters taken out of a connection URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file of trusted roots, or `system` for the webpki roots.
    pub root_cert: Option<String>,
}

/// Splits `url` (`postgres://...` or key=value form) into the URL for the driver, without
/// `sslrootcert` and with `sslmode` as the driver knows it, and the TLS parameters.
/// Everything else is left as it was, for the driver to judge.
pub fn split_url(url: &str) -> Result<(String, TlsParams), String> {
    let url_form = is_url(url);
    // (key, value, original text) of each parameter.
    let pairs: Vec<(String, String, &str)> = if url_form {
        match url_parts(url).query {
            None => Vec::new(),
            Some(q) => url[q..]
                .split('&')
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), percent_decode(v), pair)
                })
                .collect(),
        }
    } else {
        // Malformed: the driver says how.
        key_values(url).unwrap_or_default()
    };
    let mut mode = None;
    let mut root_cert = None;
    for (k, v, _) in &pairs {
        match k.as_str() {
            "sslmode" => mode = Some(SslMode::parse(v)?),
            "sslrootcert" => root_cert = Some(v.clone()),
            _ => {}
        }
    }
    if mode.is_none() && root_cert.is_none() {
        return Ok((url.to_string(), TlsParams::default()));
    }
    let mode = match (mode, root_cert.as_deref()) {
        (None | Some(SslMode::VerifyFull), Some("system")) => SslMode::VerifyFull,
        (Some(m), Some("system")) => {
            return Err(format!(
                "weak sslmode {:?} may not be used with sslrootcert=system (use \"verify-full\")",
                m.name()
            ))
        }
        (m, _) => m.unwrap_or(SslMode::Prefer),
    };
    let mut kept: Vec<String> = pairs
        .iter()
        .filter(|(k, _, _)| k != "sslmode" && k != "sslrootcert")
        .map(|(_, _, raw)| raw.to_string())
        .collect();
    if mode != SslMode::Prefer {
        kept.push(format!("sslmode={}", mode.driver()));
    }
    let driver_url = if url_form {
        let q = url_parts(url).query.unwrap_or(url.len());
        let head = url[..q].strip_suffix('?').unwrap_or(&url[..q]);
        if kept.is_empty() {
            head.to_string()
        } else {
            format!("{head}?{}", kept.join("&"))
        }
    } else {
        kept.join(" ")
    };
    Ok((driver_url, TlsParams { mode, root_cert }))
}

impl Default for TlsParams {
    fn default() -> TlsParams {
        TlsParams {
            mode: SslMode::Prefer,
            root_cert: None,
        }
    }
}

fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Where the pieces of a `postgres://` URL are.
pub(crate) struct UrlParts {
    /// The byte range of `USER[:PASSWORD]`, before the `@`.
    pub creds: Option<(usize, usize)>,
    /// Where the query starts (after the `?`).
    pub query: Option<usize>,
}

/// Finds the credentials and the query of a `postgres://` URL as the driver does: the query
/// starts at the first `?` after the first `@`; the credentials end at the last `@` before it
/// (the driver would stop at the first, but an unencoded `@` in a password is better hidden
/// whole in messages).
pub(crate) fn url_parts(url: &str) -> UrlParts {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let first_at = rest.find('@');
    let from = first_at.map_or(0, |a| a + 1);
    let query = rest[from..].find('?').map(|i| from + i);
    let creds = first_at.and_then(|_| rest[..query.unwrap_or(rest.len())].rfind('@'));
    UrlParts {
        creds: creds.map(|at| (start, start + at)),
        query: query.map(|q| start + q + 1),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `key=value` pairs of a libpq keyword/value string (values optionally single-quoted,
/// backslash escapes), each with its unquoted value and its original text; `None` when
/// malformed.
fn key_values(s: &str) -> Option<Vec<(String, String, &str)>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i == b.len() {
            return Some(out);
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = s[start..i].to_string();
        skip_ws(&mut i);
        if i == b.len() || b[i] != b'=' || key.is_empty() {
            return None;
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                match b.get(i)? {
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    b'\\' => {
                        value.push(*b.get(i + 1)?);
                        i += 2;
                    }
                    c => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                if b[i] == b'\\' {
                    value.push(*b.get(i + 1)?);
                    i += 2;
                } else {
                    value.push(b[i]);
                    i += 1;
                }
            }
        }
        let value = String::from_utf8(value).ok()?;
        out.push((key, value, &s[start..i]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, SslMode, Option<String>) {
        let (u, p) = split_url(url).unwrap();
        (u, p.mode, p.root_cert)
    }

    #[test]
    fn urls_without_tls_parameters_pass_unchanged() {
        for url in [
            "postgres://m:s@db:5432/mender",
            "postgresql://db/mender?connect_timeout=5&application_name=x",
            "host=db user=m password='a b' dbname=mender",
            "postgres://m:pa?ss@db/mender",
        ] {
            assert_eq!(split(url), (url.to_string(), SslMode::Prefer, None));
        }
    }

    #[test]
    fn url_form_parameters_are_taken_out() {
        assert_eq!(
            split("postgres://m:s@db/y?sslmode=verify-full&sslrootcert=/etc/ca.pem"),
            (
                "postgres://m:s@db/y?sslmode=require".into(),
                SslMode::VerifyFull,
                Some("/etc/ca.pem".into())
            )
        );
        assert_eq!(
            split("postgres://db/y?connect_timeout=3&sslmode=verify-ca&application_name=a"),
            (
                "postgres://db/y?connect_timeout=3&application_name=a&sslmode=require".into(),
                SslMode::VerifyCa,
                None
            )
        );
        assert_eq!(
            split("postgresql://db?sslrootcert=%2Ftmp%2Fa%40b%20c.pem"),
            (
                "postgresql://db".into(),
                SslMode::Prefer,
                Some("/tmp/a@b c.pem".into())
            )
        );
        assert_eq!(
            split("postgres://m:s@db/y?sslrootcert=/x/a@b.pem&sslmode=disable"),
            (
                "postgres://m:s@db/y?sslmode=disable".into(),
                SslMode::Disable,
                Some("/x/a@b.pem".into())
            )
        );
        assert_eq!(
            split("postgres://db/y?sslmode=require").0,
            "postgres://db/y?sslmode=require"
        );
        assert_eq!(split("postgres://db/y?sslmode=prefer").0, "postgres://db/y");
    }

    #[test]
    fn key_value_parameters_are_taken_out() {
        assert_eq!(
            split("host=db sslmode = verify-full user=m sslrootcert='/a b/ca.pem' dbname=y"),
            (
                "host=db user=m dbname=y sslmode=require".into(),
                SslMode::VerifyFull,
                Some("/a b/ca.pem".into())
            )
        );
        assert_eq!(
            split("host=db password='x\\'y' sslmode=disable"),
            (
                "host=db password='x\\'y' sslmode=disable".into(),
                SslMode::Disable,
                None
            )
        );
    }

    #[test]
    fn system_roots_mean_verify_full() {
        assert_eq!(
            split("postgres://db/y?sslrootcert=system"),
            (
                "postgres://db/y?sslmode=require".into(),
                SslMode::VerifyFull,
                Some("system".into())
            )
        );
        let e = split_url("host=db sslrootcert=system sslmode=require").unwrap_err();
        assert!(e.contains("weak sslmode \"require\""), "{e}");
    }

    #[test]
    fn bad_modes_are_refused() {
        let e = split_url("postgres://db/y?sslmode=verify").unwrap_err();
        assert_eq!(
            e,
            "invalid sslmode \"verify\" (expected disable, prefer, require, verify-ca or \
             verify-full)"
        );
        assert!(split_url("sslmode=allow host=db").is_err());
    }
}
