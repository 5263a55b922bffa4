#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::{NOW, fresh, record_for};
use crate::model::{
    Environment, IllegalTransition, KeyRecord, KeyState, KeyStatus, LifecycleAction, Permission, RateLimitPolicy, Role,
    Transition,
};

#[test]
fn lifecycle_table() {
    use KeyState::*;
    use LifecycleAction::*;
    let cases = [
        (Active, Revoke, Ok(Transition::To(Revoked))),
        (Active, Activate, Err(())),
        (Active, Deactivate, Ok(Transition::To(Deactivated))),
        (Active, Regenerate, Ok(Transition::To(Active))),
        (Active, Edit, Ok(Transition::To(Active))),
        (Active, Delete, Err(())),
        (Revoked, Revoke, Err(())),
        (Revoked, Activate, Ok(Transition::To(Active))),
        (Revoked, Deactivate, Ok(Transition::To(Deactivated))),
        (Revoked, Regenerate, Ok(Transition::To(Revoked))),
        (Revoked, Edit, Ok(Transition::To(Revoked))),
        (Revoked, Delete, Ok(Transition::Deleted)),
        (Deactivated, Revoke, Err(())),
        (Deactivated, Activate, Err(())),
        (Deactivated, Deactivate, Err(())),
        (Deactivated, Regenerate, Err(())),
        (Deactivated, Edit, Err(())),
        (Deactivated, Delete, Ok(Transition::Deleted)),
    ];
    for (from, action, expected) in cases {
        let got = from.apply(action);
        let want = expected.map_err(|()| IllegalTransition { from, action });
        assert_eq!(got, want, "{from:?} + {action:?}");
    }
    let err = Deactivated.apply(Activate).unwrap_err();
    assert!(err.describe().contains("never"));
    assert!(Active.apply(Delete).unwrap_err().describe().contains("revoke"));
}

#[test]
fn status_is_derived_from_state_and_expiry() {
    let key = fresh(Environment::Live);
    let base = record_for(&key);
    let cases = [
        (KeyState::Active, None, KeyStatus::Active),
        (KeyState::Active, Some(NOW.plus_secs(1)), KeyStatus::Active),
        (KeyState::Active, Some(NOW), KeyStatus::Expired),
        (KeyState::Revoked, Some(NOW), KeyStatus::Inactive),
        (KeyState::Deactivated, None, KeyStatus::Deactivated),
    ];
    for (state, expires_at, status) in cases {
        let r = KeyRecord { state, expires_at, ..base.clone() };
        assert_eq!(r.status(NOW), status, "{state:?} {expires_at:?}");
    }
}

#[test]
fn permission_syntax() {
    let cases = [
        ("data:read", true),
        ("telemetry:write", true),
        ("admin:*", true),
        ("admin:keys:write", true),
        ("customers.v2:read-all", true),
        ("data", false),
        ("", false),
        ("*", false),
        ("*:read", false),
        ("data:", false),
        ("Data:read", false),
        ("data:*:read", false),
        ("data read", false),
    ];
    for (input, ok) in cases {
        assert_eq!(Permission::try_from(input).is_ok(), ok, "{input:?}");
    }
    assert!(Permission::try_from("a:".repeat(40).trim_end_matches(':')).is_err());
}

#[test]
fn permission_grants() {
    let p = |s: &str| Permission::try_from(s).unwrap();
    assert!(p("data:read").grants(&p("data:read")));
    assert!(!p("data:read").grants(&p("data:write")));
    assert!(p("data:*").grants(&p("data:write")));
    assert!(p("admin:*").grants(&p("admin:keys:write")));
    assert!(!p("admin:*").grants(&p("administrator:x")));
}

#[test]
fn rate_limit_policy_bounds() {
    let policy = |requests, window_seconds, burst| RateLimitPolicy {
        requests,
        window_seconds,
        burst,
        mode: crate::model::RateLimitMode::Leased,
    };
    assert_eq!(policy(100, 60, None).validate(), Ok(()));
    assert_eq!(policy(100, 60, Some(10)).validate(), Ok(()));
    assert_eq!(policy(0, 60, None).validate().unwrap_err().0, "rate_limit.requests");
    assert_eq!(policy(2_000_000, 60, None).validate().unwrap_err().0, "rate_limit.requests");
    assert_eq!(policy(10, 0, None).validate().unwrap_err().0, "rate_limit.window_seconds");
    assert_eq!(policy(10, 86_401, None).validate().unwrap_err().0, "rate_limit.window_seconds");
    assert_eq!(policy(10, 60, Some(0)).validate().unwrap_err().0, "rate_limit.burst");
    assert_eq!(policy(10, 60, Some(11)).validate().unwrap_err().0, "rate_limit.burst");
}

#[test]
fn roles() {
    assert!(Role::Owner.manages_all_keys());
    assert!(Role::Admin.manages_all_keys());
    assert!(!Role::Member.manages_all_keys());
}

#[test]
fn records_round_trip_through_json_without_secrets() {
    let key = fresh(Environment::Live);
    let record = record_for(&key);
    let json = serde_json::to_string(&record).unwrap();
    assert!(!json.contains(key.secret.expose()));
    let back: KeyRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, record);
    assert!(back.secret_matches(&crate::hash::SecretHash::of(&key), NOW));
}

#[test]
fn audit_action_names_are_serdes() {
    for action in crate::api::AuditAction::ALL {
        let json = serde_json::to_value(action).unwrap();
        assert_eq!(json, action.as_str(), "{action:?}");
        assert_eq!(crate::api::AuditAction::parse(action.as_str()), Some(action));
    }
}
