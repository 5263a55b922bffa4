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

/// A usage limit's count refills at the start of each UTC day or month, to the refill's amount (not added to what
/// is left), and never without a refill.
#[test]
fn uses_refill_at_the_start_of_each_period() {
    use crate::model::{Refill, RefillInterval, UsageLimit, UsesLeft};
    use crate::time::Timestamp;
    let at = |s: &str| Timestamp::parse_rfc3339(s).unwrap();
    let monthly = UsageLimit { uses: 10, refill: Some(Refill { amount: 5, interval: RefillInterval::Monthly }) };
    let start = UsesLeft::start(&monthly, at("2027-01-31T23:59:59Z"));
    assert_eq!(start, UsesLeft { remaining: 10, period: Some(at("2027-01-01T00:00:00Z")) });
    let spent = UsesLeft { remaining: 0, ..start };
    assert_eq!(spent.at(&monthly, at("2027-01-31T23:59:59Z")).remaining, 0, "same month");
    assert_eq!(spent.at(&monthly, at("2027-02-01T00:00:00Z")).remaining, 5, "next month");
    assert_eq!(
        UsesLeft { remaining: 7, ..start }.at(&monthly, at("2027-03-15T00:00:00Z")).remaining,
        5,
        "reset, not added"
    );
    let daily = UsageLimit { uses: 3, refill: Some(Refill { amount: 3, interval: RefillInterval::Daily }) };
    let day = UsesLeft { remaining: 0, period: Some(at("2027-02-28T00:00:00Z")) };
    assert_eq!(day.at(&daily, at("2027-02-28T23:00:00Z")).remaining, 0);
    assert_eq!(
        day.at(&daily, at("2027-03-01T00:00:01Z")),
        UsesLeft { remaining: 3, period: Some(at("2027-03-01T00:00:00Z")) }
    );
    let once = UsageLimit { uses: 3, refill: None };
    let none_left = UsesLeft { remaining: 0, period: None };
    assert_eq!(none_left.at(&once, at("2030-01-01T00:00:00Z")).remaining, 0, "no refill, no more uses");
    assert_eq!(at("2028-02-29T13:00:00Z").month_start(), at("2028-02-01T00:00:00Z"));
    assert_eq!(at("1969-12-31T13:00:00Z").day_start(), at("1969-12-31T00:00:00Z"));
}

/// A created key's answer reads back with its metadata (raw JSON), single and pair alike.
#[test]
fn a_created_key_with_metadata_reads_back() {
    use crate::api::{CreatedKey, KeyView};
    use crate::meta::KeyMeta;
    let mut record = record_for(&fresh(Environment::Live));
    record.meta = Some(KeyMeta::from_value(&serde_json::json!({"plan": "pro"})).unwrap());
    let view = KeyView::of(&record, NOW, None, Default::default());
    for created in [
        CreatedKey::Single { key: "kg_live_x".into(), record: view.clone() },
        CreatedKey::Pair { api_key: "kg_live_x".into(), api_secret: "s".into(), record: view.clone() },
    ] {
        let text = serde_json::to_string(&created).unwrap();
        assert_eq!(serde_json::from_str::<CreatedKey>(&text).unwrap(), created, "{text}");
    }
    let neither = serde_json::json!({"record": serde_json::to_value(&view).unwrap()}).to_string();
    assert!(serde_json::from_str::<CreatedKey>(&neither).is_err());
}
