//! Finding what a `pkcs11:` URI names: the PIN, the one matching token, logging in, and the
//! one matching private key, with errors that say what was found instead.

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error, RvError};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::RawAuthPin;
use zeroize::Zeroizing;

use super::describe;
use super::uri::{encode_id, PinSpec, Pkcs11Uri};
use crate::crypto::KeyError;

/// The PIN from the URI: the value itself, or the first line of the `pin-source` file.
pub(super) fn read_pin(spec: &PinSpec) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let source = match spec {
        PinSpec::Value(pin) => return Ok(pin.clone()),
        PinSpec::Source(source) => source,
    };
    let path = source
        .strip_prefix("file://")
        .or_else(|| source.strip_prefix("file:"))
        .unwrap_or(source);
    let content = Zeroizing::new(std::fs::read(path).map_err(|e| {
        KeyError::Pkcs11(format!("cannot read the PIN from pin-source {path}: {e}"))
    })?);
    let line = content.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok(Zeroizing::new(
        line.strip_suffix(b"\r").unwrap_or(line).to_vec(),
    ))
}

/// The one initialised token the URI's token attributes match.
pub(super) fn find_token(context: &Pkcs11, uri: &Pkcs11Uri) -> Result<(Slot, TokenInfo), KeyError> {
    let failed = |e: Error| KeyError::Pkcs11(format!("cannot list tokens: {}", describe(&e)));
    let wanted = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    let mut matches = Vec::new();
    let mut labels = Vec::new();
    for slot in context.get_slots_with_initialized_token().map_err(failed)? {
        let info = context.get_token_info(slot).map_err(failed)?;
        labels.push(format!("\"{}\"", info.label()));
        if uri.slot_id.is_none_or(|id| id == slot.id())
            && wanted(&uri.token, info.label())
            && wanted(&uri.manufacturer, info.manufacturer_id())
            && wanted(&uri.serial, info.serial_number())
            && wanted(&uri.model, info.model())
        {
            matches.push((slot, info));
        }
    }
    let count = matches.len();
    match matches.pop() {
        Some(found) if count == 1 => Ok(found),
        Some(_) => Err(KeyError::Pkcs11(format!(
            "{count} tokens match the URI; add token= or serial= to pick one"
        ))),
        None if labels.is_empty() => Err(KeyError::Pkcs11(
            "the module has no initialized token".to_string(),
        )),
        None => Err(KeyError::Pkcs11(format!(
            "no token matches the URI (tokens found: {})",
            labels.join(", ")
        ))),
    }
}

/// Log the session in as the normal user, if the token needs it.
pub(super) fn login(
    session: &Session,
    info: &TokenInfo,
    pin: Option<Zeroizing<Vec<u8>>>,
) -> Result<(), KeyError> {
    let token = info.label();
    let result = match pin {
        Some(pin) => {
            session.login_with_raw(UserType::User, &RawAuthPin::new(Box::new(pin.to_vec())))
        }
        None if !info.login_required() => return Ok(()),
        // A PIN pad or biometric reader on the device asks the user itself.
        None if info.protected_authentication_path() => session.login(UserType::User, None),
        None => {
            return Err(KeyError::Pkcs11(format!(
                "token \"{token}\" needs a PIN: add pin-value= or pin-source= to the URI query"
            )))
        }
    };
    let why = match result {
        // Login is per token and process: another open key may have logged in already.
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => return Ok(()),
        Err(Error::Pkcs11(RvError::PinIncorrect, _)) => "wrong PIN".to_string(),
        Err(Error::Pkcs11(RvError::PinLocked, _)) => "the PIN is locked".to_string(),
        Err(e) => describe(&e),
    };
    Err(KeyError::Pkcs11(format!(
        "cannot log in to token \"{token}\": {why}"
    )))
}

/// The one private key the URI's `object` and `id` match.
pub(super) fn find_private_key(
    session: &Session,
    uri: &Pkcs11Uri,
    token: &str,
) -> Result<ObjectHandle, KeyError> {
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    let mut wanted = Vec::new();
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.clone()));
        wanted.push(format!("object={}", String::from_utf8_lossy(label)));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
        wanted.push(format!("id={}", encode_id(id)));
    }
    let found = session.find_objects(&template).map_err(|e| {
        KeyError::Pkcs11(format!("cannot search token \"{token}\": {}", describe(&e)))
    })?;
    let with = if wanted.is_empty() {
        String::new()
    } else {
        format!(" with {}", wanted.join(";"))
    };
    match found[..] {
        [key] => Ok(key),
        [] => {
            let hex_digits = |id: &Vec<u8>| !id.is_empty() && id.iter().all(u8::is_ascii_hexdigit);
            let hint = match &uri.id {
                Some(id) if hex_digits(id) => " (id is raw bytes: write id=%01 for the byte 0x01)",
                _ => "",
            };
            Err(KeyError::Pkcs11(format!(
                "no private key{with} in token \"{token}\"{hint}"
            )))
        }
        _ => Err(KeyError::Pkcs11(format!(
            "{} private keys{with} in token \"{token}\"; add object= or id= to pick one",
            found.len()
        ))),
    }
}
