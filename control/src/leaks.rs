//! Who may report leaks: `POST /v1/leaks` is signed as GitHub's secret scanning partner program signs its alerts —
//! ECDSA P-256 with SHA-256 over the raw body, the signature base64 (ASN.1 DER) in `Github-Public-Key-Signature`
//! and the key's id in `Github-Public-Key-Identifier`. The verifying keys are configuration
//! (`KEYGATE_LEAK_PUBLIC_KEYS`): GitHub's own `public_keys` document, or any list of `{key_identifier, key}` with
//! PEM public keys, so another scanner can be trusted the same way.

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;

pub const IDENTIFIER_HEADER: &str = "github-public-key-identifier";
pub const SIGNATURE_HEADER: &str = "github-public-key-signature";

/// The keys leak reports may be signed with, by identifier.
#[derive(Debug, Clone)]
pub struct LeakKeys(Vec<(String, VerifyingKey)>);

#[derive(Deserialize)]
struct Entry {
    key_identifier: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Document {
    GitHub { public_keys: Vec<Entry> },
    List(Vec<Entry>),
}

impl LeakKeys {
    /// Parses `KEYGATE_LEAK_PUBLIC_KEYS`; a key that is not a P-256 public key in PEM is a configuration error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let document: Document = serde_json::from_str(text).map_err(|e| {
            format!("KEYGATE_LEAK_PUBLIC_KEYS must be JSON with `public_keys` (GitHub's document): {e}")
        })?;
        let entries = match document {
            Document::GitHub { public_keys } => public_keys,
            Document::List(entries) => entries,
        };
        if entries.is_empty() {
            return Err("KEYGATE_LEAK_PUBLIC_KEYS names no key".into());
        }
        entries
            .into_iter()
            .map(|e| {
                VerifyingKey::from_public_key_pem(e.key.trim()).map(|key| (e.key_identifier.clone(), key)).map_err(
                    |err| format!("KEYGATE_LEAK_PUBLIC_KEYS: key {} is not a P-256 PEM key: {err}", e.key_identifier),
                )
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `signature` (base64 DER) is the key `identifier`'s signature of `body`.
    pub fn verify(&self, identifier: &str, signature: &str, body: &[u8]) -> bool {
        let Some((_, key)) = self.0.iter().find(|(id, _)| id == identifier) else { return false };
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else { return false };
        let Ok(signature) = Signature::from_der(&der) else { return false };
        key.verify(body, &signature).is_ok()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use base64::Engine;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::DecodePrivateKey;

    use super::LeakKeys;

    pub const PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiGcEA+l4d8g9C4/h
H/MPTTdSCOmmGGrOWCwXAyh/miuhRANCAAROjyoEYxOA3xy081dClYNK0xfFGetD
TTmoMCe3X9AyVb6IaOKXTjpIMZMrOygv/KjEPJ6kxCZUt1JPJD9CVoAr
-----END PRIVATE KEY-----";
    pub const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAETo8qBGMTgN8ctPNXQpWDStMXxRnr
Q005qDAnt1/QMlW+iGjil046SDGTKzsoL/yoxDyepMQmVLdSTyQ/QlaAKw==
-----END PUBLIC KEY-----";

    fn sign(body: &[u8]) -> String {
        let key = SigningKey::from_pkcs8_pem(PRIVATE).unwrap();
        let signature: p256::ecdsa::Signature = key.sign(body);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    #[test]
    fn only_the_configured_keys_signature_of_the_exact_body_is_accepted() {
        let doc = serde_json::json!({"public_keys": [{"key_identifier": "gh-1", "key": PUBLIC, "is_current": true}]});
        let keys = LeakKeys::parse(&doc.to_string()).unwrap();
        let body =
            br#"[{"token":"kg_live_x","type":"keygate_api_key","url":"https://github.com/a/b","source":"content"}]"#;
        let signature = sign(body);
        assert!(keys.verify("gh-1", &signature, body));
        assert!(!keys.verify("gh-2", &signature, body), "another identifier");
        assert!(!keys.verify("gh-1", &signature, b"[]"), "another body");
        assert!(!keys.verify("gh-1", "bm90IGEgc2lnbmF0dXJl", body), "not a signature");
        assert!(!keys.verify("gh-1", "%%%", body), "not base64");
        // A bare list works too; anything else is a configuration error.
        let list = serde_json::json!([{"key_identifier": "k", "key": PUBLIC}]);
        assert!(LeakKeys::parse(&list.to_string()).unwrap().verify("k", &signature, body));
        assert!(LeakKeys::parse("{}").is_err());
        assert!(LeakKeys::parse(r#"{"public_keys": []}"#).is_err());
        assert!(LeakKeys::parse(r#"[{"key_identifier": "k", "key": "not pem"}]"#).is_err());
    }
}
