//! Signature encodings: the base64 text stored in artifacts, and ECDSA's two binary forms
//! (raw `r||s` as Mender writes it, ASN.1 DER as OpenSSL and HSMs write it).

use base64::Engine as _;

use super::VerifyError;

/// Encode a raw signature as stored in an artifact: standard base64 with padding, no newlines,
/// so signatures are written exactly as other Mender tools expect.
pub fn encode_signature(raw: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Decode a signature as stored in an artifact, so both our files and ones from other tools
/// (which may wrap lines or end with a newline) are read.
///
/// CR and LF anywhere and whitespace around the text are ignored; anything else that is not
/// standard padded base64 (including URL-safe characters and inner spaces) is refused with a
/// message naming the offending character and its position.
pub fn decode_signature(text: &[u8]) -> Result<Vec<u8>, VerifyError> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Err(VerifyError::Empty);
    };
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .unwrap_or(start)
        + 1;
    let mut clean = Vec::with_capacity(end - start);
    for (i, &b) in text.iter().enumerate().take(end).skip(start) {
        match b {
            b'\r' | b'\n' => {}
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => clean.push(b),
            _ => {
                let shown = if b.is_ascii_graphic() || b == b' ' {
                    format!("'{}'", b as char)
                } else {
                    format!("byte 0x{b:02x}")
                };
                let hint = if b == b'-' || b == b'_' {
                    " (URL-safe base64 is not accepted)"
                } else {
                    ""
                };
                return Err(VerifyError::Base64(format!(
                    "invalid character {shown} at position {i}{hint}"
                )));
            }
        }
    }
    base64::engine::general_purpose::STANDARD
        .decode(&clean)
        .map_err(|e| VerifyError::Base64(describe_base64_error(e)))
}

fn describe_base64_error(e: base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(at, b'=') => {
            format!("misplaced padding '=' at position {at} (after removing line breaks)")
        }
        base64::DecodeError::InvalidByte(at, b) => {
            format!("invalid byte 0x{b:02x} at position {at}")
        }
        base64::DecodeError::InvalidLength(_) => {
            "invalid length (truncated signature?)".to_string()
        }
        base64::DecodeError::InvalidLastSymbol(at, _) => {
            format!("non-canonical final character at position {at} (after removing line breaks)")
        }
        base64::DecodeError::InvalidPadding => "missing or invalid '=' padding".to_string(),
    }
}

/// Convert an ASN.1 DER ECDSA signature (`SEQUENCE { r INTEGER, s INTEGER }`) for P-256 into
/// the raw 64-byte `r||s` form, so signatures from OpenSSL or a PKCS#11 token can be stored or
/// checked in Mender's form. Strict DER: minimal lengths, no trailing data, positive non-zero
/// integers of at most 32 bytes.
pub fn ecdsa_der_to_raw(der: &[u8]) -> Result<[u8; 64], VerifyError> {
    let bad = |why: &str| VerifyError::MalformedEcdsa(why.to_string());
    let (tag, body, rest) = der_element(der).ok_or_else(|| bad("not a DER SEQUENCE"))?;
    if tag != 0x30 {
        return Err(bad("not a DER SEQUENCE"));
    }
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the signature"));
    }
    let mut raw = [0u8; 64];
    let mut body = body;
    for (half, name) in raw.chunks_exact_mut(32).zip(["r", "s"]) {
        let (tag, value, rest) =
            der_element(body).ok_or_else(|| bad(&format!("missing or truncated {name}")))?;
        if tag != 0x02 {
            return Err(bad(&format!("{name} is not an INTEGER")));
        }
        let digits = match value {
            [] => return Err(bad(&format!("{name} is empty"))),
            [first, ..] if first & 0x80 != 0 => return Err(bad(&format!("{name} is negative"))),
            [0, next, ..] if next & 0x80 == 0 => {
                return Err(bad(&format!("{name} has a non-minimal encoding")))
            }
            [0, digits @ ..] if !digits.is_empty() => digits,
            digits => digits,
        };
        if digits.len() > 32 {
            return Err(bad(&format!("{name} is longer than 32 bytes")));
        }
        if digits.iter().all(|&b| b == 0) {
            return Err(bad(&format!("{name} is zero")));
        }
        half[32 - digits.len()..].copy_from_slice(digits);
        body = rest;
    }
    if !body.is_empty() {
        return Err(bad("extra data after r and s"));
    }
    Ok(raw)
}

/// Split one DER element off the front of `data`: (tag, contents, remaining bytes). Only
/// single-byte tags and definite, minimally encoded lengths up to two bytes are accepted.
fn der_element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (first as usize, rest),
        0x81 => {
            let (&b, rest) = rest.split_first()?;
            if b < 0x80 {
                return None;
            }
            (b as usize, rest)
        }
        0x82 => {
            let (bytes, rest) = rest.split_at_checked(2)?;
            let len = u16::from_be_bytes([bytes[0], bytes[1]]) as usize;
            if len < 0x100 {
                return None;
            }
            (len, rest)
        }
        _ => return None,
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// Convert a raw 64-byte P-256 `r||s` signature into ASN.1 DER, so our signatures can be checked
/// by tools that expect DER (e.g. `openssl dgst -verify`).
pub fn ecdsa_raw_to_der(raw: &[u8; 64]) -> Vec<u8> {
    let mut body = Vec::with_capacity(70);
    for half in raw.chunks_exact(32) {
        let first_nonzero = half.iter().position(|&b| b != 0).unwrap_or(31);
        let digits = &half[first_nonzero..];
        let pad = digits[0] & 0x80 != 0;
        body.push(0x02);
        body.push((digits.len() + usize::from(pad)) as u8);
        if pad {
            body.push(0);
        }
        body.extend_from_slice(digits);
    }
    let mut der = Vec::with_capacity(body.len() + 2);
    der.push(0x30);
    der.push(body.len() as u8);
    der.extend_from_slice(&body);
    der
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_tolerated_whitespace() {
        let raw: Vec<u8> = (0u8..=255).collect();
        let text = encode_signature(&raw);
        assert!(!text.contains('\n') && text.ends_with('='));
        assert_eq!(decode_signature(text.as_bytes()).unwrap(), raw);
        let wrapped: String = text
            .as_bytes()
            .chunks(64)
            .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
            .collect();
        let padded = format!("  \t{wrapped}\n\n ");
        assert_eq!(decode_signature(padded.as_bytes()).unwrap(), raw);
        assert_eq!(encode_signature(b"ab"), "YWI=");
    }

    #[test]
    fn base64_errors_are_specific() {
        let e = decode_signature(b"YW I=").unwrap_err().to_string();
        assert_eq!(
            e,
            "signature is not valid base64: invalid character ' ' at position 2"
        );
        let e = decode_signature(b"YW-_").unwrap_err().to_string();
        assert!(
            e.contains("'-' at position 2") && e.contains("URL-safe"),
            "{e}"
        );
        let e = decode_signature(b"YWI").unwrap_err().to_string();
        assert!(e.ends_with("missing or invalid '=' padding"), "{e}");
        let e = decode_signature(b"YWJjZ").unwrap_err().to_string();
        assert!(e.ends_with("invalid length (truncated signature?)"), "{e}");
        let e = decode_signature(b"Y=WI").unwrap_err().to_string();
        assert!(e.contains("padding"), "{e}");
        let e = decode_signature(b"YW\xffI=").unwrap_err().to_string();
        assert!(e.contains("byte 0xff at position 2"), "{e}");
        assert!(matches!(
            decode_signature(b" \r\n"),
            Err(VerifyError::Empty)
        ));
        assert!(matches!(decode_signature(b""), Err(VerifyError::Empty)));
    }

    #[test]
    fn ecdsa_raw_der_round_trip() {
        let mut raw = [0u8; 64];
        raw[0] = 0x80; // r needs a leading zero in DER
        raw[31] = 1;
        raw[63] = 7; // s is a single byte
        let der = ecdsa_raw_to_der(&raw);
        let mut expected = vec![0x30, 0x26, 0x02, 0x21, 0x00, 0x80];
        expected.extend([0u8; 30]);
        expected.push(1);
        expected.extend([0x02, 0x01, 0x07]);
        assert_eq!(der, expected);
        assert_eq!(ecdsa_der_to_raw(&der).unwrap(), raw);
        for seed in 0u8..50 {
            let mut raw = [0u8; 64];
            for (i, b) in raw.iter_mut().enumerate() {
                *b = seed
                    .wrapping_mul(31)
                    .wrapping_add(i as u8)
                    .rotate_left(seed as u32 % 8);
            }
            raw[0] = seed; // sometimes zero, sometimes high bit set
            raw[32] = seed.wrapping_mul(5);
            let der = ecdsa_raw_to_der(&raw);
            assert!((8..=72).contains(&der.len()));
            assert_eq!(ecdsa_der_to_raw(&der).unwrap(), raw, "seed {seed}");
        }
    }

    #[test]
    fn ecdsa_der_strictness() {
        let good = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02];
        let raw = ecdsa_der_to_raw(&good).unwrap();
        assert_eq!((raw[31], raw[63]), (1, 2));
        let cases: &[(&[u8], &str)] = &[
            (
                &[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02],
                "not a DER SEQUENCE",
            ),
            (
                &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x00],
                "trailing bytes",
            ),
            (
                &[0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02],
                "not a DER SEQUENCE",
            ),
            (
                &[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x02],
                "r is negative",
            ),
            (
                &[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x02],
                "non-minimal",
            ),
            (
                &[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x02],
                "r is zero",
            ),
            (&[0x30, 0x05, 0x02, 0x01, 0x01, 0x02, 0x00], "s is empty"),
            (&[0x30, 0x03, 0x02, 0x01, 0x01], "missing or truncated s"),
            (
                &[0x30, 0x06, 0x04, 0x01, 0x01, 0x02, 0x01, 0x02],
                "r is not an INTEGER",
            ),
            (
                &[0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02],
                "not a DER SEQUENCE",
            ),
            (&[], "not a DER SEQUENCE"),
        ];
        for (der, want) in cases {
            let e = ecdsa_der_to_raw(der).unwrap_err().to_string();
            assert!(e.starts_with("malformed ECDSA signature: "), "{e}");
            assert!(e.contains(want), "{der:02x?}: {e} (wanted {want})");
        }
        let mut long = vec![0x30, 0x26, 0x02, 0x21, 0x01];
        long.extend([0u8; 32]);
        long.extend([0x02, 0x01, 0x07]);
        let e = ecdsa_der_to_raw(&long).unwrap_err().to_string();
        assert!(e.contains("longer than 32 bytes"), "{e}");
        let mut extra = good.to_vec();
        extra[1] = 0x09;
        extra.extend([0x02, 0x01, 0x03]);
        let e = ecdsa_der_to_raw(&extra).unwrap_err().to_string();
        assert!(e.contains("extra data"), "{e}");
    }
}
