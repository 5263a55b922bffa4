//! Platform-free requests and answers, so both Workers' handlers run natively in `cargo test`; each Worker's
//! `runtime.rs` converts them from and to the Workers types. No I/O here.

use serde::Serialize;

use crate::credential::Headers;
use crate::decision::Code;
use crate::model::{Permission, RateLimitPolicy};
use crate::problem::{CONTENT_TYPE as PROBLEM_JSON, Problem};
use crate::ratelimit::{RateDecision, policy_header, ratelimit_header};

/// The parts of a request the handlers read. Only the headers they need are copied in.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// A query parameter's (percent-decoded) value.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| decode(v))
    }
}

/// The path and query of an absolute URL as the runtime gives it (`https://host/a/b?x=1#f` → `/a/b`, `x=1`), without
/// a full URL parse on the hot path. Both stay percent-encoded, as the `url` crate's `path()` and `query()` are.
pub fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let from_path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    let without_fragment = from_path.split('#').next().unwrap_or("/");
    match without_fragment.split_once('?') {
        Some((path, query)) => (path, query),
        None => (without_fragment, ""),
    }
}

/// The canonical form of a request path (`keygate_shared::path`): what is routed, matched and forwarded. A path
/// with no canonical form is answered 400 `INVALID_PATH`.
pub fn canonical_path(raw: &str) -> Result<std::borrow::Cow<'_, str>, Reply> {
    if crate::path::is_canonical(raw) {
        return Ok(std::borrow::Cow::Borrowed(raw));
    }
    crate::path::normalize(raw)
        .map(std::borrow::Cow::Owned)
        .map_err(|e| Reply::problem(&Problem::bad_request("INVALID_PATH", e.describe())))
}

/// Whether `path` is `prefix` or below it (`/admin` and `/admin/keys`, not `/administrator`).
pub fn is_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer: status, headers and a text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        let body = serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"));
        Self { status, headers: vec![("content-type".into(), "application/json".into())], body }
    }

    /// An answer with no body (`204 No Content`).
    pub fn empty(status: u16) -> Self {
        Self { status, headers: vec![], body: String::new() }
    }

    pub fn problem(problem: &Problem) -> Self {
        Self {
            status: problem.status,
            headers: vec![("content-type".into(), PROBLEM_JSON.into())],
            body: problem.to_json(),
        }
    }

    /// A refusal of the order of checks: problem+json, the stable code, and its `WWW-Authenticate` challenge.
    pub fn refusal(code: Code, required: Option<&Permission>) -> Self {
        let mut reply = Self::problem(&code.problem());
        if let Some(challenge) = code.www_authenticate(required) {
            reply.headers.push(("www-authenticate".into(), challenge));
        }
        reply
    }

    /// Storage failed: never a pass.
    pub fn unavailable() -> Self {
        Self::problem(&Problem::unavailable("Keygate's storage did not answer; nothing was decided. Retry shortly."))
            .with_header("retry-after", "1")
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Adds `RateLimit-Policy` and `RateLimit`, and `Retry-After` when refused.
    pub fn with_rate(mut self, rate: Option<&(RateLimitPolicy, RateDecision)>) -> Self {
        if let Some((policy, decision)) = rate {
            self.headers.extend(rate_headers(policy, decision));
        }
        self
    }
}

/// The IETF `RateLimit-Policy` / `RateLimit` headers, and `Retry-After` on a refusal.
pub fn rate_headers(policy: &RateLimitPolicy, decision: &RateDecision) -> Vec<(String, String)> {
    let mut out =
        vec![("ratelimit-policy".into(), policy_header(policy)), ("ratelimit".into(), ratelimit_header(decision))];
    if let Some(retry) = decision.retry_after_seconds {
        out.push(("retry-after".into(), retry.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_path_and_query() {
        let cases = [
            ("https://example.com/data/items?x=1&y=2", ("/data/items", "x=1&y=2")),
            ("http://127.0.0.1:8787/", ("/", "")),
            ("http://127.0.0.1:8787", ("/", "")),
            ("https://h/a%20b/c?q=%2F#frag", ("/a%20b/c", "q=%2F")),
            ("https://h/a#frag?not-a-query", ("/a", "")),
            ("https://h/admin/v1/keys?", ("/admin/v1/keys", "")),
        ];
        for (url, want) in cases {
            assert_eq!(split_url(url), want, "{url}");
        }
    }
}
