//! Secret hashing (SHA-256) and constant-time comparison.
//!
//! Only [`SecretHash`] is ever stored. It covers `kg_<env>_<id>_<secret>`, so a stored hash is bound to its key's id
//! and environment: copying one record's hash into another record cannot make a second key valid.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::key::{ApiKey, canonical_body};

/// SHA-256 of a key's canonical body. `Debug` prints only the type name, so a stray `{:?}` leaks nothing.
#[derive(Clone, Copy)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hashes the key's canonical body (labels and checksum are not part of it).
    pub fn of(key: &ApiKey) -> Self {
        let body = canonical_body(key.environment, &key.id, &key.secret);
        Self(Sha256::digest(body.as_bytes()).into())
    }

    /// Compares in constant time: the time taken does not depend on where the hashes differ.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        out
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        fn nibble(c: u8) -> Option<u8> {
            match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            }
        }
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = (nibble(bytes[2 * i])? << 4) | nibble(bytes[2 * i + 1])?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Deliberately not `PartialEq`-derived: equality is always the constant-time [`SecretHash::matches`].
impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

impl Eq for SecretHash {}

impl serde::Serialize for SecretHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for SecretHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_hex(&s).ok_or_else(|| serde::de::Error::custom("invalid secret hash"))
    }
}

/// Compares two byte strings in constant time with respect to their contents (length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// SHA-256 of an opaque one-time token (an invitation code), as lowercase hex: what is stored and looked up in
/// place of the token. The token carries about 190 random bits, so its hash can be the lookup key itself.
pub fn token_hash(token: &str) -> String {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    SecretHash(digest).to_hex()
}
