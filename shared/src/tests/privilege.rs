#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::{NOW, example, perms, record_for};
use crate::api::{KeyView, UsageSummary};
use crate::model::Permission;
use crate::privilege::{PermissionUse, SuggestionKind, suggest};

const DAY: i64 = 86_400;

/// A key created `age_days` ago holding `held`, last used `last_used_days` ago.
fn key(held: &[&str], age_days: i64, last_used_days: Option<i64>) -> KeyView {
    let mut record = record_for(&example());
    record.permissions = perms(held);
    record.created_at = NOW.plus_secs(-age_days * DAY);
    KeyView::of(&record, NOW, last_used_days.map(|d| NOW.plus_secs(-d * DAY)), UsageSummary::default())
}

fn used(permission: &str, days_ago: i64) -> PermissionUse {
    PermissionUse {
        permission: Permission::try_from(permission).unwrap(),
        last_used_at: NOW.plus_secs(-days_ago * DAY),
        requests: 10,
    }
}

fn kinds(list: &[crate::privilege::Suggestion]) -> Vec<(SuggestionKind, Option<&str>)> {
    list.iter().map(|s| (s.kind, s.permission.as_ref().map(Permission::as_str))).collect()
}

/// The fake clock is `NOW`: what is 29 days old still counts as used, what is 31 days old does not.
#[test]
fn unused_permissions_and_wildcards_are_found_within_thirty_days() {
    let view = key(&["data:read", "data:write", "billing:*"], 90, Some(1));
    let uses = [used("data:read", 1), used("data:write", 31), used("billing:invoices:read", 29)];
    let out = suggest(&view, &uses, NOW);
    assert_eq!(
        kinds(&out),
        [(SuggestionKind::RemoveUnused, Some("data:write")), (SuggestionKind::Narrow, Some("billing:*"))]
    );
    let after: Vec<&str> = out[0].permissions_after.iter().map(Permission::as_str).collect();
    assert_eq!(after, ["data:read", "billing:*"]);
    assert_eq!(out[1].replacement, perms(&["billing:invoices:read"]));
    let narrowed: Vec<&str> = out[1].permissions_after.iter().map(Permission::as_str).collect();
    assert_eq!(narrowed, ["data:read", "data:write", "billing:invoices:read"]);
    // A day later the billing use is 30 days old too: the wildcard is now unused altogether.
    let later = suggest(&view, &uses, NOW.plus_secs(2 * DAY));
    assert!(kinds(&later).contains(&(SuggestionKind::RemoveUnused, Some("billing:*"))), "{later:?}");
}

#[test]
fn a_key_unused_for_thirty_days_is_to_be_revoked_and_young_or_stopped_keys_get_nothing() {
    let idle = suggest(&key(&["data:read"], 90, Some(31)), &[used("data:read", 31)], NOW);
    assert_eq!(kinds(&idle), [(SuggestionKind::RevokeUnused, None)]);
    let never = suggest(&key(&["data:read"], 45, None), &[], NOW);
    assert_eq!(kinds(&never), [(SuggestionKind::RevokeUnused, None)]);
    assert!(never[0].detail.contains("Never used"));
    assert!(suggest(&key(&["data:read"], 10, None), &[], NOW).is_empty(), "too young to judge");
    let mut revoked = key(&["data:read"], 90, Some(60));
    revoked.status = crate::model::KeyStatus::Inactive;
    assert!(suggest(&revoked, &[], NOW).is_empty(), "already stopped");
    // Exactly used: nothing to say.
    assert!(suggest(&key(&["data:read"], 90, Some(1)), &[used("data:read", 1)], NOW).is_empty());
    // A wildcard used as itself (a route that needs `data:*`) is not narrowed.
    assert!(suggest(&key(&["data:*"], 90, Some(1)), &[used("data:*", 1)], NOW).is_empty());
}
