//! Which permission a gateway route needs, from configuration: `METHOD /path/pattern permission` rules, first match
//! wins (Instrumental's read and write keys: `GET /data/* data:read`, `POST /streams/* data:write`).
//!
//! Patterns are exact paths, or paths whose segments may be `*` (any one segment) and whose last segment may be `*`
//! to match the rest of the path too (`/data/*` matches `/data`, `/data/a` and `/data/a/b`). The method `*` matches
//! every method, and a `GET` rule covers `HEAD` too (a `HEAD` answers what a `GET` would, without the body). The
//! permission `-` means "any valid key".
//!
//! Fail closed: once any rule is configured, a request that no rule covers is refused (`403 NO_ROUTE`); end the
//! table with `* /* -` to let every other route through with any valid key. With no rules at all, every route
//! needs only a valid key. Rules match the canonical path ([`crate::path::normalize`]), which is also what is
//! forwarded.

use std::fmt;

use crate::decision::Access;
use crate::model::Permission;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    /// Uppercase method, or `*`.
    pub method: String,
    pub pattern: String,
    /// `None`: the rule's permission is `-`, any valid key.
    pub permission: Option<Permission>,
}

impl RouteRule {
    fn covers(&self, method: &str, path: &str) -> bool {
        let method_matches = self.method == "*"
            || self.method.eq_ignore_ascii_case(method)
            || (self.method == "GET" && method.eq_ignore_ascii_case("HEAD"));
        method_matches && path_matches(&self.pattern, path)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteTable {
    pub rules: Vec<RouteRule>,
}

/// A rule that could not be read; the message names the rule and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfigError(pub String);

impl fmt::Display for RouteConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RouteConfigError {}

impl RouteTable {
    /// Parses rules separated by `,`, `;` or newlines, each `METHOD /pattern permission` (or `-`).
    pub fn parse(config: &str) -> Result<Self, RouteConfigError> {
        let mut rules = Vec::new();
        for raw in config.split([',', ';', '\n']).map(str::trim).filter(|r| !r.is_empty()) {
            let parts: Vec<&str> = raw.split_whitespace().collect();
            let [method, pattern, permission] = parts[..] else {
                return Err(RouteConfigError(format!("route rule `{raw}`: expected `METHOD /path permission`")));
            };
            let method = method.to_ascii_uppercase();
            if method != "*" && !method.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(RouteConfigError(format!("route rule `{raw}`: `{method}` is not an HTTP method")));
            }
            if !pattern.starts_with('/') {
                return Err(RouteConfigError(format!("route rule `{raw}`: the path must start with `/`")));
            }
            let permission = match permission {
                "-" => None,
                p => Some(Permission::try_from(p).map_err(|e| RouteConfigError(format!("route rule `{raw}`: {e}")))?),
            };
            rules.push(RouteRule { method, pattern: pattern.to_owned(), permission });
        }
        Ok(Self { rules })
    }

    /// What `method path` needs: the first rule that covers it decides; with rules configured and none covering
    /// it, [`Access::Unrouted`]. `path` must be canonical ([`crate::path::normalize`]).
    pub fn access(&self, method: &str, path: &str) -> Access<'_> {
        if self.rules.is_empty() {
            return Access::Open;
        }
        match self.rules.iter().find(|r| r.covers(method, path)) {
            Some(RouteRule { permission: Some(p), .. }) => Access::Permission(p),
            Some(RouteRule { permission: None, .. }) => Access::Open,
            None => Access::Unrouted,
        }
    }
}

fn path_matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.trim_end_matches('/').split('/');
    let mut have = path.trim_end_matches('/').split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            // A trailing `*` matches the rest, including nothing.
            (Some("*"), _) if want.clone().next().is_none() => return true,
            (Some("*"), Some(_)) => {}
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}
