//! Which permission a gateway route needs, from configuration: `METHOD /path/pattern permission` rules, first match
//! wins (Instrumental's read and write keys: `GET /data/* data:read`, `POST /streams/* data:write`).
//!
//! Patterns are exact paths, or paths whose segments may be `*` (any one segment) and whose last segment may be `*`
//! to match the rest of the path too (`/data/*` matches `/data`, `/data/a` and `/data/a/b`). The method `*` matches
//! every method. A request no rule matches needs a valid key and no particular permission.

use std::fmt;

use crate::model::Permission;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    /// Uppercase method, or `*`.
    pub method: String,
    pub pattern: String,
    pub permission: Permission,
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
    /// Parses rules separated by `,`, `;` or newlines, each `METHOD /pattern permission`.
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
            let permission =
                Permission::try_from(permission).map_err(|e| RouteConfigError(format!("route rule `{raw}`: {e}")))?;
            rules.push(RouteRule { method, pattern: pattern.to_owned(), permission });
        }
        Ok(Self { rules })
    }

    /// The permission `method path` needs, if a rule matches.
    pub fn permission_for(&self, method: &str, path: &str) -> Option<&Permission> {
        self.rules
            .iter()
            .find(|r| (r.method == "*" || r.method.eq_ignore_ascii_case(method)) && path_matches(&r.pattern, path))
            .map(|r| &r.permission)
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
