//! Device and user tokens: compact JWS (HS256) signed with the server's secret. The signature
//! and expiry are checked here; revocation (is the auth set still accepted, does the user still
//! exist) is checked against the store by the caller.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The claims of a token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// Token id: the auth set id for devices, a fresh id for users.
    pub jti: String,
    /// Device id or user id.
    pub sub: String,
    /// Issuer: `Mender` for devices, `mender.useradm` for users.
    pub iss: String,
    /// Expiry, unix seconds.
    pub exp: i64,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Set on device tokens.
    #[serde(rename = "mender.device", default, skip_serializing_if = "is_false")]
    pub device: bool,
    /// Set on user tokens.
    #[serde(rename = "mender.user", default, skip_serializing_if = "is_false")]
    pub user: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    /// Not three base64url parts with JSON inside.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match.
    #[error("token signature is invalid")]
    BadSignature,
    /// Past its `exp`.
    #[error("token has expired")]
    Expired,
}

/// Signs and checks tokens with one secret.
#[derive(Clone)]
pub struct TokenSigner {
    key: hmac::Key,
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl TokenSigner {
    /// A signer over `secret`.
    pub fn new(secret: &[u8]) -> Self {
        TokenSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The compact JWS of `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let body = serde_json::to_vec(claims).expect("claims serialize");
        let input = format!("{}.{}", B64.encode(HEADER), B64.encode(body));
        let tag = hmac::sign(&self.key, input.as_bytes());
        format!("{input}.{}", B64.encode(tag.as_ref()))
    }

    /// The claims of `token` if its signature is ours and it has not expired at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.trim().rsplitn(2, '.');
        let sig = parts.next().ok_or(TokenError::Malformed)?;
        let input = parts.next().ok_or(TokenError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        hmac::verify(&self.key, input.as_bytes(), &sig).map_err(|_| TokenError::BadSignature)?;
        let (head, body) = input.split_once('.').ok_or(TokenError::Malformed)?;
        let head = B64.decode(head).map_err(|_| TokenError::Malformed)?;
        let head: serde_json::Value =
            serde_json::from_slice(&head).map_err(|_| TokenError::Malformed)?;
        if head.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(TokenError::Malformed);
        }
        let body = B64.decode(body).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&body).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            jti: "j".into(),
            sub: "s".into(),
            iss: "Mender".into(),
            exp,
            iat: 0,
            device: true,
            user: false,
        }
    }

    #[test]
    fn sign_verify_expire_forge() {
        let s = TokenSigner::new(b"secret");
        let t = s.sign(&claims(100));
        assert_eq!(s.verify(&t, 50).unwrap(), claims(100));
        assert_eq!(s.verify(&t, 100), Err(TokenError::Expired));
        assert_eq!(
            TokenSigner::new(b"other").verify(&t, 50),
            Err(TokenError::BadSignature)
        );
        let forged = format!("{}x", &t[..t.len() - 1]);
        assert!(s.verify(&forged, 50).is_err());
        assert_eq!(s.verify("abc", 0), Err(TokenError::Malformed));
    }
}
