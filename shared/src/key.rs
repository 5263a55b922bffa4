//! Key format v1: `[<project>:][<label>:]kg_<env>_<id>_<secret><check>`.
//!
//! A key is parsed in a fixed order (size, labels, issuer prefix, environment, length, alphabet, checksum), so every
//! malformed input gets one exact [`KeyParseError`] and no input can make parsing panic or do unbounded work.
//! The secret part never appears in `Debug` output; the only way to see it is [`ApiKey::expose`].

use std::fmt;
use std::str::FromStr;

use crate::model::Environment;

/// The issuer prefix. Permanent: changing it would invalidate every key in the field.
pub const ISSUER_PREFIX: &str = "kg_";
/// Length of the public id in Crockford base32 characters (70 random bits).
pub const ID_LEN: usize = 14;
/// Length of the secret in base62 characters (about 190 random bits).
pub const SECRET_LEN: usize = 32;
/// Length of the checksum in base62 characters.
pub const CHECK_LEN: usize = 6;
/// Maximum length of a label (project slug or free label).
pub const LABEL_MAX: usize = 63;
/// Inputs longer than this are refused before any other work: two labels plus the longest key body.
pub const MAX_INPUT_LEN: usize = 2 * (LABEL_MAX + 1) + 8 + ID_LEN + 1 + SECRET_LEN + CHECK_LEN;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string is not a well-formed Keygate key. Each variant is a distinct, stable refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyParseError {
    /// The input was empty (or only whitespace).
    Empty,
    /// The input is longer than any valid key could be; it was not examined further.
    TooLong,
    /// A leading label is not a valid project slug or free label, or there are more than two labels.
    BadLabel,
    /// The key does not start with `kg_`.
    WrongPrefix,
    /// The environment tag is not `live`, `test` or `dev`.
    UnknownEnvironment,
    /// The part after the environment tag has the wrong length or shape.
    BadLength,
    /// A character outside the id's or the secret's alphabet.
    BadAlphabet,
    /// The checksum does not match: a typo, a truncated copy or a made-up key.
    BadChecksum,
}

impl KeyParseError {
    /// A sentence for people: what is wrong and what to do. Never repeats the input.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Empty => "The credential is empty.",
            Self::TooLong => "The credential is longer than any Keygate key.",
            Self::BadLabel => {
                "The labels before the key are malformed: use at most `project:label:` with a lowercase project slug."
            }
            Self::WrongPrefix => "This is not a Keygate key: keys start with `kg_`.",
            Self::UnknownEnvironment => "The key's environment must be `live`, `test` or `dev`.",
            Self::BadLength => "The key has the wrong length: copy the whole key as it was shown at creation.",
            Self::BadAlphabet => "The key contains characters that no Keygate key contains.",
            Self::BadChecksum => "The key's checksum does not match: it was mistyped or truncated.",
        }
    }
}

impl fmt::Display for KeyParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl std::error::Error for KeyParseError {}

/// The public part of a key: 14 Crockford base32 characters. Safe to show, log and use as a storage handle.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; ID_LEN]);

impl KeyId {
    /// Generates a random id from the operating system's (or the browser's/runtime's) random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 9];
        getrandom::fill(&mut bytes)?;
        let mut bits: u128 = 0;
        for b in bytes {
            bits = (bits << 8) | u128::from(b);
        }
        let mut id = [0u8; ID_LEN];
        for (i, slot) in id.iter_mut().enumerate() {
            *slot = CROCKFORD[((bits >> (5 * i)) & 31) as usize];
        }
        Ok(Self(id))
    }

    /// Parses a bare id (as found in URLs of the admin API).
    pub fn parse(s: &str) -> Option<Self> {
        let bytes: [u8; ID_LEN] = s.as_bytes().try_into().ok()?;
        bytes.iter().all(|b| CROCKFORD.contains(b)).then_some(Self(bytes))
    }

    pub fn as_str(&self) -> &str {
        // The bytes are always ASCII from the Crockford alphabet.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.as_str())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom("invalid key id"))
    }
}

/// The secret part of a key (32 base62 characters). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; SECRET_LEN]);

impl Secret {
    /// Generates a uniformly random secret (rejection sampling, no modulo bias).
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut out = [0u8; SECRET_LEN];
        let mut filled = 0;
        let mut pool = [0u8; 64];
        while filled < SECRET_LEN {
            getrandom::fill(&mut pool)?;
            for b in pool {
                // 248 = 4 * 62: values at or above it would bias the first characters.
                if b < 248 && filled < SECRET_LEN {
                    out[filled] = BASE62[usize::from(b % 62)];
                    filled += 1;
                }
            }
        }
        Ok(Self(out))
    }

    /// The secret's characters, for hashing and for showing once. Named so that every use is easy to find.
    pub fn expose(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A complete plaintext key: what the client presents. Holds the secret, so it has no `Display`; `Debug` redacts.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The project slug label, if the client wrote one (`acme-shop:` in front of the key).
    pub project_label: Option<String>,
    /// The free label, if any (`line-3:`). Only for people; never checked against storage.
    pub label: Option<String>,
    pub environment: Environment,
    pub id: KeyId,
    pub secret: Secret,
}

impl ApiKey {
    /// Generates a new key for `environment` with fresh random id and secret.
    pub fn generate(environment: Environment) -> Result<Self, getrandom::Error> {
        Ok(Self { project_label: None, label: None, environment, id: KeyId::generate()?, secret: Secret::generate()? })
    }

    /// A new secret for the same id and environment (regeneration).
    pub fn with_new_secret(&self) -> Result<Self, getrandom::Error> {
        Ok(Self { secret: Secret::generate()?, ..self.clone() })
    }

    /// `kg_<env>_<id>`: the public start, shown in lists and sent as `apikey` in the legacy pair form.
    pub fn public_start(&self) -> String {
        public_start(self.environment, &self.id)
    }

    /// The checksum as it is written at the end of the key.
    pub fn check(&self) -> [u8; CHECK_LEN] {
        checksum(self.environment, &self.id, &self.secret)
    }

    /// `<secret><check>`: the `apisecret` half of the legacy pair form.
    pub fn expose_pair_secret(&self) -> String {
        let check = self.check();
        let mut out = String::with_capacity(SECRET_LEN + CHECK_LEN);
        out.push_str(self.secret.expose());
        out.extend(check.iter().map(|&b| char::from(b)));
        out
    }

    /// The full key as the client should send it, labels included. The only way to render a key with its secret.
    pub fn expose(&self) -> String {
        let mut out = String::with_capacity(MAX_INPUT_LEN);
        for label in [&self.project_label, &self.label].into_iter().flatten() {
            out.push_str(label);
            out.push(':');
        }
        out.push_str(&self.public_start());
        out.push('_');
        out.push_str(&self.expose_pair_secret());
        out
    }

    /// The legacy pair form: `apikey: kg_<env>_<id>` (with labels, if any) and `apisecret: <secret><check>`.
    pub fn from_pair(api_key: &str, api_secret: &str) -> Result<Self, KeyParseError> {
        let api_key = api_key.trim();
        let api_secret = api_secret.trim();
        if api_key.is_empty() || api_secret.is_empty() {
            return Err(KeyParseError::Empty);
        }
        if api_key.len() + 1 + api_secret.len() > MAX_INPUT_LEN {
            return Err(KeyParseError::TooLong);
        }
        // The secret half must be exactly secret + check: a stray underscore or label belongs to no valid pair.
        if api_secret.len() != SECRET_LEN + CHECK_LEN {
            return Err(KeyParseError::BadLength);
        }
        let mut joined = String::with_capacity(api_key.len() + 1 + api_secret.len());
        joined.push_str(api_key);
        joined.push('_');
        joined.push_str(api_secret);
        joined.parse()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("project_label", &self.project_label)
            .field("label", &self.label)
            .field("environment", &self.environment)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl FromStr for ApiKey {
    type Err = KeyParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        // Size first, before any other work.
        if input.len() > MAX_INPUT_LEN + 2 {
            return Err(KeyParseError::TooLong);
        }
        let input = input.trim();
        if input.is_empty() {
            return Err(KeyParseError::Empty);
        }
        if input.len() > MAX_INPUT_LEN {
            return Err(KeyParseError::TooLong);
        }

        // Labels: at most two, separated by ':'; the key itself contains no ':'.
        let mut parts = input.rsplitn(4, ':');
        let body = parts.next().unwrap_or_default();
        let second = parts.next();
        let first = parts.next();
        if parts.next().is_some() {
            return Err(KeyParseError::BadLabel);
        }
        let (project_label, label) = match (first, second) {
            (Some(project), Some(label)) => (Some(project), Some(label)),
            (None, Some(project)) => (Some(project), None),
            _ => (None, None),
        };
        if project_label.is_some_and(|p| !is_project_slug(p)) || label.is_some_and(|l| !is_free_label(l)) {
            return Err(KeyParseError::BadLabel);
        }

        let rest = body.strip_prefix(ISSUER_PREFIX).ok_or(KeyParseError::WrongPrefix)?;
        let (env, rest) = match rest.split_once('_') {
            Some(split) => split,
            // `kg_live` alone is a truncated key; `kg_prod...` names no environment.
            None if rest.parse::<Environment>().is_ok() => return Err(KeyParseError::BadLength),
            None => return Err(KeyParseError::UnknownEnvironment),
        };
        let environment: Environment = env.parse().map_err(|_| KeyParseError::UnknownEnvironment)?;

        // `<id>_<secret><check>`
        let rest = rest.as_bytes();
        if rest.len() != ID_LEN + 1 + SECRET_LEN + CHECK_LEN || rest[ID_LEN] != b'_' {
            return Err(KeyParseError::BadLength);
        }
        let id_bytes = &rest[..ID_LEN];
        let secret_bytes = &rest[ID_LEN + 1..ID_LEN + 1 + SECRET_LEN];
        let check_bytes = &rest[ID_LEN + 1 + SECRET_LEN..];
        if !id_bytes.iter().all(|b| CROCKFORD.contains(b))
            || !secret_bytes.iter().chain(check_bytes).all(u8::is_ascii_alphanumeric)
        {
            return Err(KeyParseError::BadAlphabet);
        }
        let id = KeyId(id_bytes.try_into().map_err(|_| KeyParseError::BadLength)?);
        let secret = Secret(secret_bytes.try_into().map_err(|_| KeyParseError::BadLength)?);
        if checksum(environment, &id, &secret) != check_bytes {
            return Err(KeyParseError::BadChecksum);
        }
        Ok(Self {
            project_label: project_label.map(str::to_owned),
            label: label.map(str::to_owned),
            environment,
            id,
            secret,
        })
    }
}

/// `kg_<env>_<id>`.
pub fn public_start(environment: Environment, id: &KeyId) -> String {
    let mut out = String::with_capacity(8 + ID_LEN);
    out.push_str(ISSUER_PREFIX);
    out.push_str(environment.as_str());
    out.push('_');
    out.push_str(id.as_str());
    out
}

/// The text the checksum and the hash cover: `kg_<env>_<id>_<secret>` (no labels, no check).
pub(crate) fn canonical_body(environment: Environment, id: &KeyId, secret: &Secret) -> String {
    let mut out = public_start(environment, id);
    out.push('_');
    out.push_str(secret.expose());
    out
}

/// CRC-32 (IEEE, as zlib computes it) of `kg_<env>_<id>_<secret>`, in 6 base62 digits, most significant first.
pub fn checksum(environment: Environment, id: &KeyId, secret: &Secret) -> [u8; CHECK_LEN] {
    let crc = crc32(canonical_body(environment, id, secret).as_bytes());
    base62_fixed(crc)
}

fn base62_fixed(mut value: u32) -> [u8; CHECK_LEN] {
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32/ISO-HDLC (the zlib and PNG CRC).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// A project slug: `[a-z0-9-]{1,63}`.
pub fn is_project_slug(s: &str) -> bool {
    (1..=LABEL_MAX).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A free label: `[A-Za-z0-9._-]{1,63}`.
pub fn is_free_label(s: &str) -> bool {
    (1..=LABEL_MAX).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
