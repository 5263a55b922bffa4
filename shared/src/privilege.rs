//! Least privilege: what a key's observed use says it does not need. The organization's object keeps, per key,
//! when each permission a route needed was last used by a request that passed ([`PermissionUse`], from the request
//! log); [`suggest`] turns that and the key into suggestions: permissions granted but unused for [`UNUSED_DAYS`]
//! days, a wildcard a narrower set of exact permissions would cover, and a key unused for as long.

use serde::{Deserialize, Serialize};

use crate::api::KeyView;
use crate::key::KeyId;
use crate::model::{KeyStatus, Permission};
use crate::time::Timestamp;

/// A permission, a wildcard or a key unused this long is worth a suggestion.
pub const UNUSED_DAYS: i64 = 30;
const UNUSED_MS: i64 = UNUSED_DAYS * 86_400_000;
/// Permissions whose use is kept per key (a key holds at most 64; more are routes' permissions it lacked).
pub const MAX_USES_PER_KEY: i64 = 64;

/// When a route's permission was last used by a passing request of the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PermissionUse {
    pub permission: Permission,
    pub last_used_at: Timestamp,
    pub requests: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    /// A granted permission no request used for 30 days: remove it.
    RemoveUnused,
    /// A wildcard whose use the exact permissions in `replacement` cover: narrow it to them.
    Narrow,
    /// The key made no request for 30 days: revoke it.
    RevokeUnused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Suggestion {
    pub kind: SuggestionKind,
    /// The granted permission concerned (none for `revoke_unused`).
    #[serde(default)]
    pub permission: Option<Permission>,
    /// What it becomes (`narrow`).
    #[serde(default)]
    pub replacement: Vec<Permission>,
    /// The key's permissions after the suggestion, ready for `PATCH /keys/{id}` (`permissions`).
    #[serde(default)]
    pub permissions_after: Vec<Permission>,
    pub detail: String,
}

/// `GET /keys/{id}/suggestions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SuggestionList {
    pub key_id: KeyId,
    pub suggestions: Vec<Suggestion>,
    /// What was observed: each route permission the key's passing requests used, and when last.
    pub observed: Vec<PermissionUse>,
}

/// The suggestions for `key` at `now`, from its observed uses. A key younger than 30 days gets none (there is not
/// enough to go on); inactive, expired and deactivated keys get none (they work for nobody already). Permissions
/// granted by roles are the role's business: only the key's own are suggested.
pub fn suggest(key: &KeyView, uses: &[PermissionUse], now: Timestamp) -> Vec<Suggestion> {
    let since = now.millis() - UNUSED_MS;
    if key.status != KeyStatus::Active || key.created_at.millis() > since {
        return Vec::new();
    }
    if key.last_used_at.is_none_or(|t| t.millis() < since) {
        return vec![Suggestion {
            kind: SuggestionKind::RevokeUnused,
            permission: None,
            replacement: Vec::new(),
            permissions_after: key.permissions.clone(),
            detail: match key.last_used_at {
                None => format!("Never used in the {UNUSED_DAYS} days since it was created: revoke it."),
                Some(_) => format!("No request in {UNUSED_DAYS} days: revoke it (it can be activated again)."),
            },
        }];
    }
    let recent: Vec<&PermissionUse> = uses.iter().filter(|u| u.last_used_at.millis() >= since).collect();
    let mut out = Vec::new();
    for granted in &key.permissions {
        let covered: Vec<&Permission> = recent.iter().map(|u| &u.permission).filter(|p| granted.grants(p)).collect();
        let others = || key.permissions.iter().filter(|p| *p != granted).cloned();
        if covered.is_empty() {
            out.push(Suggestion {
                kind: SuggestionKind::RemoveUnused,
                permission: Some(granted.clone()),
                replacement: Vec::new(),
                permissions_after: others().collect(),
                detail: format!("No request needed `{granted}` in {UNUSED_DAYS} days: remove it."),
            });
        } else if granted.as_str().ends_with('*') && covered.iter().all(|p| *p != granted) {
            let mut replacement: Vec<Permission> = covered.into_iter().cloned().collect();
            replacement.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            replacement.dedup();
            let mut after: Vec<Permission> = others().collect();
            for p in &replacement {
                if !after.contains(p) {
                    after.push(p.clone());
                }
            }
            let names: Vec<&str> = replacement.iter().map(Permission::as_str).collect();
            out.push(Suggestion {
                kind: SuggestionKind::Narrow,
                permission: Some(granted.clone()),
                detail: format!("In {UNUSED_DAYS} days `{granted}` was used only as {}: narrow it.", names.join(", ")),
                replacement,
                permissions_after: after,
            });
        }
    }
    out
}
