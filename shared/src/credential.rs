//! Credential extraction from request headers.
//!
//! Credentials are read from `Authorization: Bearer <key>`, then `x-api-key`, then the legacy `apikey` + `apisecret`
//! pair, then any header names a deployment configures. Two different credentials in one request, or half a pair, are
//! refused rather than guessed at.
//!
//! As LandingLens does since it retired the secret, a whole key sent as `apikey` needs no `apisecret`: LandingEdge
//! sends that header blank, or (before v2.5.5) with a placeholder of at least one character, and both are ignored.
//! Only a pair's public half (`kg_<env>_<id>`) needs its secret.

use crate::key::{ApiKey, KeyParseError, MAX_INPUT_LEN};

/// Read access to request headers by lowercase name.
pub trait Headers {
    fn get(&self, lowercase_name: &str) -> Option<&str>;
}

/// Header pairs as collected by the caller; names compared case-insensitively.
impl<N: AsRef<str>, V: AsRef<str>> Headers for [(N, V)] {
    fn get(&self, lowercase_name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| n.as_ref().eq_ignore_ascii_case(lowercase_name)).map(|(_, v)| v.as_ref())
    }
}

impl<N: AsRef<str>, V: AsRef<str>> Headers for Vec<(N, V)> {
    fn get(&self, lowercase_name: &str) -> Option<&str> {
        Headers::get(self.as_slice(), lowercase_name)
    }
}

/// The header names Keygate reads credentials from, in order.
pub const AUTHORIZATION: &str = "authorization";
pub const X_API_KEY: &str = "x-api-key";
pub const API_KEY: &str = "apikey";
pub const API_SECRET: &str = "apisecret";

/// Why no usable credential could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// No credential header at all.
    Missing,
    /// Two different credentials in one request.
    Ambiguous,
    /// `apikey` without `apisecret`, or the other way round.
    IncompletePair,
    /// A credential was found but is not a well-formed key.
    Malformed(KeyParseError),
}

/// A credential as presented, before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    Single(&'a str),
    Pair { api_key: &'a str, api_secret: &'a str },
}

impl Presented<'_> {
    pub fn parse(&self) -> Result<ApiKey, KeyParseError> {
        match *self {
            Presented::Single(s) => s.parse(),
            Presented::Pair { api_key, api_secret } => ApiKey::from_pair(api_key, api_secret),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive). Other schemes are not Keygate's.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Every header name the extraction reads, for callers that copy only the headers they need.
pub fn header_names(extra: &[String]) -> impl Iterator<Item = &str> {
    [AUTHORIZATION, X_API_KEY, API_KEY, API_SECRET].into_iter().chain(extra.iter().map(String::as_str))
}

/// Finds the one credential of a request, or says why there is none.
pub fn extract<'h, H: Headers + ?Sized>(headers: &'h H, extra: &[String]) -> Result<Presented<'h>, CredentialError> {
    let bearer = headers.get(AUTHORIZATION).and_then(bearer_token);
    let singles = bearer
        .into_iter()
        .chain(headers.get(X_API_KEY))
        .chain(extra.iter().filter_map(|name| headers.get(name)))
        .map(str::trim);

    let api_key = headers.get(API_KEY).map(str::trim);
    let whole_api_key = api_key.filter(|k| is_whole_key(k));
    let singles = singles.chain(whole_api_key);
    // A blank `apisecret` is no secret at all (LandingEdge sends it so).
    let api_secret = headers.get(API_SECRET).map(str::trim).filter(|s| !s.is_empty());
    let pair = match (api_key, api_secret) {
        // A whole key: whatever `apisecret` holds (blank, a placeholder) is not part of the credential.
        (Some(_), _) if whole_api_key.is_some() => None,
        (Some(api_key), Some(api_secret)) => Some((api_key, api_secret)),
        (None, None) => None,
        _ => return Err(CredentialError::IncompletePair),
    };

    let mut found: Option<&str> = None;
    for single in singles {
        match found {
            None => found = Some(single),
            Some(seen) if seen == single => {}
            Some(_) => return Err(CredentialError::Ambiguous),
        }
    }
    match (found, pair) {
        (None, None) => Err(CredentialError::Missing),
        (Some(single), None) => Ok(Presented::Single(single)),
        (None, Some((api_key, api_secret))) => Ok(Presented::Pair { api_key, api_secret }),
        // The same key sent both ways is one credential; anything else is two.
        (Some(single), Some((api_key, api_secret))) => {
            let same = single.len() == api_key.len() + 1 + api_secret.len()
                && single.starts_with(api_key)
                && single.ends_with(api_secret)
                && single.as_bytes()[api_key.len()] == b'_';
            if same { Ok(Presented::Pair { api_key, api_secret }) } else { Err(CredentialError::Ambiguous) }
        }
    }
}

/// Whether an `apikey` value has the shape of a whole key (`[labels:]kg_<env>_<id>_<secret><check>`) rather than a
/// pair's public half (`[labels:]kg_<env>_<id>`): the secret's alphabet has no `_`, so the body's third `_` tells.
/// Shape only: parsing still checks everything, so a whole key with a typo is refused as malformed, not as half a pair.
fn is_whole_key(api_key: &str) -> bool {
    let body = api_key.rsplit(':').next().unwrap_or(api_key);
    body.starts_with(crate::key::ISSUER_PREFIX) && body.bytes().filter(|&b| b == b'_').count() >= 3
}

/// Extracts and parses in one step: the pure first two checks of every request.
pub fn authenticate_headers<H: Headers + ?Sized>(headers: &H, extra: &[String]) -> Result<ApiKey, CredentialError> {
    let presented = extract(headers, extra)?;
    presented.parse().map_err(CredentialError::Malformed)
}

/// Whether a header value is too large to be any credential Keygate reads (refused before parsing).
pub fn oversized(value: &str) -> bool {
    value.len() > MAX_INPUT_LEN + "Bearer ".len() + 16
}
