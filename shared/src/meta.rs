//! Key metadata (Unkey's `meta`, Zuplo's consumer metadata): a small JSON object per key that the gateway forwards
//! to the origin (`Keygate-Key-Meta`, base64url JSON) and `/v1/verify` returns, so a service learns the plan, tenant
//! or limits of a caller without a lookup of its own.
//!
//! It is kept as its compact JSON text: the gateway reads a record's metadata and writes it out again without ever
//! parsing it into values (no JSON tree code in the hot path's module). Only the control plane validates it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::problem::Problem;

/// A key's metadata, compact JSON, at most this many bytes.
pub const MAX_META_BYTES: usize = 1024;
/// The header the origin receives it in (base64url of the JSON, no padding).
pub const META_HEADER: &str = "keygate-key-meta";

/// A JSON object of at most [`MAX_META_BYTES`] bytes of compact JSON. Serialized as the object itself, from its
/// text (no second parse).
#[derive(Debug, Clone)]
pub struct KeyMeta(Box<RawValue>);

impl PartialEq for KeyMeta {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for KeyMeta {}

impl KeyMeta {
    /// Validates what a client sent: a JSON object, at most [`MAX_META_BYTES`] once compact.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, Problem> {
        if !value.is_object() {
            return Err(Problem::invalid_field("meta", "metadata is a JSON object, e.g. {\"plan\": \"pro\"}"));
        }
        let text = value.to_string();
        if text.len() > MAX_META_BYTES {
            return Err(Problem::invalid_field(
                "meta",
                format!("metadata is at most {MAX_META_BYTES} bytes of compact JSON (this is {})", text.len()),
            ));
        }
        RawValue::from_string(text).map(Self).map_err(|_| Problem::invalid_field("meta", "metadata is a JSON object"))
    }

    /// `{}` is no metadata.
    pub fn is_empty(&self) -> bool {
        self.0.get() == "{}"
    }

    /// The compact JSON text.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// What the origin receives in [`META_HEADER`].
    pub fn header_value(&self) -> String {
        base64url(self.0.get().as_bytes())
    }
}

impl Serialize for KeyMeta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for KeyMeta {
    /// Stored records and answers: taken as they are, re-checked only for being an object within the bound (so a
    /// hand-edited store cannot make the gateway forward a megabyte).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        if !raw.get().starts_with('{') || raw.get().len() > MAX_META_BYTES {
            return Err(serde::de::Error::custom("metadata is a JSON object of at most 1024 bytes"));
        }
        Ok(Self(raw))
    }
}

/// RFC 4648 §5 base64url, without padding.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        // RFC 4648 §10, padding removed; then the two characters base64url changes.
        let vectors = [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE")];
        for (plain, encoded) in vectors {
            assert_eq!(base64url(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff, 0xbf]), "-_-_");
    }

    #[test]
    fn metadata_is_an_object_of_at_most_a_kibibyte() {
        let ok = KeyMeta::from_value(&serde_json::json!({ "plan": "pro", "seats": 5 })).expect("an object");
        assert_eq!(ok.as_json(), r#"{"plan":"pro","seats":5}"#);
        assert!(!ok.is_empty());
        assert!(KeyMeta::from_value(&serde_json::json!({})).expect("empty object").is_empty());
        for bad in [serde_json::json!([1]), serde_json::json!("x"), serde_json::json!(null), serde_json::json!(3)] {
            assert_eq!(KeyMeta::from_value(&bad).expect_err("not an object").field.as_deref(), Some("meta"));
        }
        // 1,024 bytes exactly pass; one more is refused.
        let fill = |n: usize| serde_json::json!({ "a": "x".repeat(n) });
        let at_bound = 1024 - r#"{"a":""}"#.len();
        assert_eq!(KeyMeta::from_value(&fill(at_bound)).expect("at the bound").as_json().len(), 1024);
        assert!(KeyMeta::from_value(&fill(at_bound + 1)).is_err());
    }

    #[test]
    fn metadata_travels_as_the_object_itself() {
        let meta = KeyMeta::from_value(&serde_json::json!({ "tier": { "name": "gold" } })).expect("valid");
        let text = serde_json::to_string(&meta).expect("serializes");
        assert_eq!(text, r#"{"tier":{"name":"gold"}}"#);
        assert_eq!(serde_json::from_str::<KeyMeta>(&text).expect("reads back"), meta);
        assert!(serde_json::from_str::<KeyMeta>("[1]").is_err());
        assert!(serde_json::from_str::<KeyMeta>(&format!("{{\"a\":\"{}\"}}", "x".repeat(1100))).is_err());
        assert_eq!(meta.header_value(), base64url(br#"{"tier":{"name":"gold"}}"#));
    }
}
