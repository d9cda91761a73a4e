//! Reading key objects in a token: the key's algorithm, its public-key object, and the
//! attributes (modulus, curve, point) the public key is built from.

use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::asn1::{AnyRef, OctetStringRef};
use der::Decode;

use super::describe;
use crate::crypto::{oids, KeyAlgorithm, KeyError};

/// The algorithm of a private key, checking it is one artifacts can be signed with.
pub(super) fn key_algorithm(
    session: &Session,
    key: ObjectHandle,
) -> Result<KeyAlgorithm, KeyError> {
    let key_type = match session.get_attributes(key, &[AttributeType::KeyType]) {
        Ok(attributes) => attributes.into_iter().find_map(|a| match a {
            Attribute::KeyType(key_type) => Some(key_type),
            _ => None,
        }),
        Err(e) => {
            return Err(KeyError::Pkcs11(format!(
                "cannot read the key type: {}",
                describe(&e)
            )))
        }
    };
    // The public-key object is the fallback for tokens that hide these on the private key.
    let from_either = |attribute| match bytes(session, key, attribute)? {
        Some(value) => Ok(value),
        None => match public_key_object(session, key)? {
            Some(public) => required(session, public, attribute),
            None => Err(KeyError::Pkcs11(format!(
                "the key has no readable {attribute}"
            ))),
        },
    };
    match key_type {
        Some(KeyType::RSA) => {
            let bits = oids::bit_length(&from_either(AttributeType::Modulus)?);
            oids::check_rsa_bits(bits, oids::RSA_MAX_VERIFY_BITS, "")?;
            Ok(KeyAlgorithm::Rsa { bits })
        }
        Some(KeyType::EC) => {
            require_p256(&from_either(AttributeType::EcParams)?)?;
            Ok(KeyAlgorithm::EcdsaP256)
        }
        Some(other) => Err(KeyError::UnsupportedKey(format!(
            "PKCS#11 key type {other} (only RSA and EC P-256 keys can sign artifacts)"
        ))),
        None => Err(KeyError::Pkcs11(
            "the private key has no key type".to_string(),
        )),
    }
}

/// The public-key object belonging to a private key: same CKA_ID (narrowed by label if
/// several share it), or same label for keys without an id; `None` if there is none.
pub(super) fn public_key_object(
    session: &Session,
    key: ObjectHandle,
) -> Result<Option<ObjectHandle>, KeyError> {
    let id = bytes(session, key, AttributeType::Id)?.unwrap_or_default();
    let label = bytes(session, key, AttributeType::Label)?.unwrap_or_default();
    let mut templates = Vec::new();
    let class = Attribute::Class(ObjectClass::PUBLIC_KEY);
    if !id.is_empty() {
        templates.push(vec![class.clone(), Attribute::Id(id.clone())]);
    }
    if !label.is_empty() {
        let mut template = vec![class, Attribute::Label(label)];
        if !id.is_empty() {
            template.push(Attribute::Id(id));
        }
        templates.push(template);
    }
    for template in templates {
        let found = session.find_objects(&template).map_err(|e| {
            KeyError::Pkcs11(format!(
                "cannot search for the public key: {}",
                describe(&e)
            ))
        })?;
        match found[..] {
            [] => return Ok(None),
            [public] => return Ok(Some(public)),
            _ => continue,
        }
    }
    Err(KeyError::Pkcs11(
        "cannot tell which public-key object belongs to the private key (give them a unique id)"
            .to_string(),
    ))
}

/// A byte-valued attribute of an object, `None` if the token does not reveal it.
pub(super) fn bytes(
    session: &Session,
    object: ObjectHandle,
    attribute: AttributeType,
) -> Result<Option<Vec<u8>>, KeyError> {
    let values = session
        .get_attributes(object, &[attribute])
        .map_err(|e| KeyError::Pkcs11(format!("cannot read {attribute}: {}", describe(&e))))?;
    Ok(values.into_iter().find_map(|value| match value {
        Attribute::Id(v)
        | Attribute::Label(v)
        | Attribute::Modulus(v)
        | Attribute::PublicExponent(v)
        | Attribute::EcParams(v)
        | Attribute::EcPoint(v) => Some(v),
        _ => None,
    }))
}

/// Like [`bytes`], for attributes the public key cannot be built without.
pub(super) fn required(
    session: &Session,
    object: ObjectHandle,
    attribute: AttributeType,
) -> Result<Vec<u8>, KeyError> {
    bytes(session, object, attribute)?
        .ok_or_else(|| KeyError::Pkcs11(format!("the key has no readable {attribute}")))
}

/// Check CKA_EC_PARAMS (DER `ECParameters`) names P-256, with the usual curve messages.
pub(super) fn require_p256(params: &[u8]) -> Result<(), KeyError> {
    let params = AnyRef::from_der(params).map_err(|e| KeyError::malformed("CKA_EC_PARAMS", e))?;
    oids::require_p256(&oids::ec_curve_from_params(Some(params))?)
}

/// The uncompressed point from CKA_EC_POINT: a DER OCTET STRING around it per the standard,
/// though some tokens return the bare point.
pub(super) fn ec_point(value: &[u8]) -> Result<&[u8], KeyError> {
    if value.len() == 65 && value[0] == 0x04 {
        return Ok(value);
    }
    <&OctetStringRef>::from_der(value)
        .map(|octets| octets.as_bytes())
        .map_err(|e| KeyError::malformed("CKA_EC_POINT", e))
}
