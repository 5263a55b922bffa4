//! Finding Keygate keys in text (`keygate scan`, leak response): every `kg_<env>_<id>_<secret><check>` whose
//! checksum holds, confirmed by the same parser the gateway uses ([`crate::key::ApiKey`]), so a look-alike with a
//! wrong checksum is never reported. Linear in the text: one substring search for `kg_`, then a fixed-length check
//! at each hit.

use crate::key::{ApiKey, CHECK_LEN, ID_LEN, ISSUER_PREFIX, KeyId, SECRET_LEN};
use crate::model::Environment;

/// A key found in text. Never holds the secret: `masked` shows the public start only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Byte offset of the key's `kg_` in the text.
    pub offset: usize,
    /// 1-based line and column (in bytes) of the key.
    pub line: usize,
    pub column: usize,
    pub environment: Environment,
    pub id: KeyId,
    /// `kg_live_<id>_…`: enough to find the key in the console, useless to call with.
    pub masked: String,
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every Keygate key in `text` whose checksum holds, in order.
pub fn find_keys(text: &str) -> Vec<Found> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut line, mut line_start, mut counted_to) = (1, 0, 0);
    for (at, _) in text.match_indices(ISSUER_PREFIX) {
        // A key starts at a word boundary (a project label's `:` is one).
        if at > 0 && is_key_byte(bytes[at - 1]) {
            continue;
        }
        for environment in [Environment::Live, Environment::Test, Environment::Dev] {
            let env = environment.as_str();
            let len = ISSUER_PREFIX.len() + env.len() + 1 + ID_LEN + 1 + SECRET_LEN + CHECK_LEN;
            let Some(candidate) = text.get(at..at + len) else { continue };
            if !candidate[ISSUER_PREFIX.len()..].starts_with(env)
                || bytes.get(at + len).is_some_and(|b| is_key_byte(*b))
            {
                continue;
            }
            let Ok(key) = candidate.parse::<ApiKey>() else { continue };
            for (i, b) in bytes[counted_to..at].iter().enumerate() {
                if *b == b'\n' {
                    line += 1;
                    line_start = counted_to + i + 1;
                }
            }
            counted_to = at;
            out.push(Found {
                offset: at,
                line,
                column: at - line_start + 1,
                environment,
                id: key.id,
                masked: format!("{}_…", key.public_start()),
            });
            break;
        }
    }
    out
}
