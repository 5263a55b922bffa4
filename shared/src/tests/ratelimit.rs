#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::NOW;
use crate::model::RateLimitPolicy;
use crate::ratelimit::{RateLimitState, policy_header, ratelimit_header};

#[test]
fn admits_exactly_the_quota_then_refuses_until_the_window_passes() {
    let policy = RateLimitPolicy::per(3, 10);
    let mut state = RateLimitState::new(&policy);
    let remaining: Vec<u32> = (0..3).map(|_| state.check(&policy, NOW).remaining).collect();
    assert_eq!(remaining, [2, 1, 0]);
    let refused = state.check(&policy, NOW);
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_seconds, Some(11));
    assert_eq!(refused.reset_seconds, 11);
    // Still refused just before the first requests leave the window (one slot = 200 ms late at most).
    assert!(!state.check(&policy, NOW.plus_millis(10_000)).allowed);
    let later = state.check(&policy, NOW.plus_millis(10_200));
    assert!(later.allowed);
    assert_eq!(later.remaining, 2);
}

#[test]
fn requests_spread_over_the_window_free_up_one_by_one() {
    let policy = RateLimitPolicy::per(2, 10);
    let mut state = RateLimitState::new(&policy);
    assert!(state.check(&policy, NOW).allowed);
    assert!(state.check(&policy, NOW.plus_secs(5)).allowed);
    let refused = state.check(&policy, NOW.plus_secs(6));
    assert_eq!(refused.retry_after_seconds, Some(5));
    assert!(state.check(&policy, NOW.plus_millis(10_200)).allowed);
    assert!(!state.check(&policy, NOW.plus_millis(10_300)).allowed);
}

#[test]
fn burst_spreads_requests_at_the_sustained_rate() {
    let policy =
        RateLimitPolicy { requests: 10, window_seconds: 10, burst: Some(2), mode: crate::model::RateLimitMode::Leased };
    let mut state = RateLimitState::new(&policy);
    assert!(state.check(&policy, NOW).allowed);
    assert!(state.check(&policy, NOW).allowed);
    let refused = state.check(&policy, NOW);
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_seconds, Some(1));
    assert!(state.check(&policy, NOW.plus_secs(1)).allowed);
}

#[test]
fn a_new_policy_starts_a_new_state() {
    let small = RateLimitPolicy::per(1, 60);
    let other = RateLimitPolicy::per(1, 30);
    let mut state = RateLimitState::new(&small);
    assert!(state.check(&small, NOW).allowed);
    assert!(!state.check(&small, NOW).allowed);
    assert!(state.check(&other, NOW).allowed);
}

#[test]
fn headers_follow_the_ietf_draft() {
    let policy = RateLimitPolicy::per(100, 60);
    let mut state = RateLimitState::new(&policy);
    let d = state.check(&policy, NOW);
    assert_eq!(policy_header(&policy), "\"default\";q=100;w=60");
    assert_eq!(ratelimit_header(&d), "\"default\";r=99;t=61");
}

#[test]
fn state_round_trips_through_json() {
    let policy =
        RateLimitPolicy { requests: 5, window_seconds: 60, burst: Some(3), mode: crate::model::RateLimitMode::Leased };
    let mut state = RateLimitState::new(&policy);
    state.check(&policy, NOW);
    let json = serde_json::to_string(&state).unwrap();
    let back: RateLimitState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);
}

#[test]
fn a_lease_shares_the_current_slot_and_is_given_back() {
    use crate::ratelimit::{MAX_LEASE_MS, RateLimitState};
    let policy = RateLimitPolicy::per(100, 10);
    let mut state = RateLimitState::new(&policy);
    let now = crate::time::Timestamp(1_795_000_000_000);
    let (decision, lease) = state.check_and_lease(&policy, now, 30);
    let lease = lease.expect("a lease");
    assert!(decision.allowed);
    assert_eq!(lease.count, 30);
    assert_eq!(decision.remaining, 100 - 1 - 30, "the lease is counted at once");
    // Slots are 200 ms for a 10 s window: the lease ends with its slot.
    assert!(lease.until.millis() <= now.millis() + MAX_LEASE_MS);
    assert_eq!(lease.until.millis() % 200, 0);
    // Never more than half of what remains.
    let (_, second) = state.check_and_lease(&policy, now, 1_000);
    assert_eq!(second.expect("a second lease").count, (100 - 31 - 1_u32).div_ceil(2));
    // Unused admissions come back.
    let before = state.check(&policy, now).remaining;
    state.give_back(&policy, lease.slot, 30);
    assert_eq!(state.check(&policy, now).remaining, before - 1 + 30);
    // Bursty policies are not leased.
    let bursty = RateLimitPolicy { burst: Some(5), ..policy };
    let mut state = RateLimitState::new(&bursty);
    assert_eq!(state.check_and_lease(&bursty, now, 10).1, None);
}
