//! Leak reports: `POST /v1/leaks` takes reports of leaked keys in the shape GitHub's secret scanning partner
//! program sends (a JSON array of `{token, type, url, source}`, signed with ECDSA P-256 by a key the deployment
//! configures), and answers for each token whether it was a live key, by its hash (a reporter is never sent a
//! secret back). The organization of a live key decides what follows: revoke it at once (the default) or alert only.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::key::KeyId;
use crate::time::Timestamp;

/// Reports one request may carry.
pub const MAX_REPORTS: usize = 100;
/// Leaks kept per key (the newest), and per organization.
pub const LEAKS_PER_KEY: i64 = 20;
pub const LEAKS_PER_ORGANIZATION: i64 = 1_000;
/// The longest URL or source kept.
pub const URL_MAX_CHARS: usize = 500;

/// One reported token (GitHub's alert body; unknown fields are ignored, as GitHub may add some).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LeakReport {
    pub token: String,
    /// The reporter's name for the token's kind (GitHub: the pattern's name).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Where it was found.
    #[serde(default)]
    pub url: Option<String>,
    /// `content`, `commit`, `issue`, … (GitHub's source).
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LeakLabel {
    /// A live Keygate key (its organization revokes it or is alerted).
    TruePositive,
    /// Not a key Keygate knows (a look-alike, a wrong secret, a deleted key).
    FalsePositive,
}

/// The answer for one report, in GitHub's feedback shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LeakVerdict {
    /// Hex SHA-256 of the reported token.
    pub token_hash: String,
    pub token_type: String,
    pub label: LeakLabel,
}

/// What an organization does when one of its keys is reported leaked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum LeakResponse {
    /// Revoke the key at once (GitHub's, PyPI's and Cloudflare's own practice for their tokens).
    #[default]
    Revoke,
    /// Keep it working; record, audit and raise `key.leaked` only.
    Alert,
}

impl LeakResponse {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Revoke => "revoke",
            Self::Alert => "alert",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Revoke, Self::Alert].into_iter().find(|r| r.as_str() == text)
    }
}

/// A leak of a key, as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyLeak {
    pub key_id: KeyId,
    pub at: Timestamp,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    /// The reporter's name for the token's kind.
    pub reported_as: String,
    /// Whether the key was revoked because of it.
    pub revoked: bool,
}

/// `GET /keys/{id}/leaks`: the newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyLeakList {
    pub leaks: Vec<KeyLeak>,
}

/// Hex SHA-256 of a reported token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
