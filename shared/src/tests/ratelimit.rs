#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::NOW;
use crate::model::RateLimitPolicy;
use crate::ratelimit::{RateLimitState, policy_header, ratelimit_header};

#[test]
fn admits_exactly_the_quota_then_refuses_until_the_window_passes() {
    let policy = RateLimitPolicy { requests: 3, window_seconds: 10, burst: None };
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
    let policy = RateLimitPolicy { requests: 2, window_seconds: 10, burst: None };
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
    let policy = RateLimitPolicy { requests: 10, window_seconds: 10, burst: Some(2) };
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
    let small = RateLimitPolicy { requests: 1, window_seconds: 60, burst: None };
    let other = RateLimitPolicy { requests: 1, window_seconds: 30, burst: None };
    let mut state = RateLimitState::new(&small);
    assert!(state.check(&small, NOW).allowed);
    assert!(!state.check(&small, NOW).allowed);
    assert!(state.check(&other, NOW).allowed);
}

#[test]
fn headers_follow_the_ietf_draft() {
    let policy = RateLimitPolicy { requests: 100, window_seconds: 60, burst: None };
    let mut state = RateLimitState::new(&policy);
    let d = state.check(&policy, NOW);
    assert_eq!(policy_header(&policy), "\"default\";q=100;w=60");
    assert_eq!(ratelimit_header(&d), "\"default\";r=99;t=61");
}

#[test]
fn state_round_trips_through_json() {
    let policy = RateLimitPolicy { requests: 5, window_seconds: 60, burst: Some(3) };
    let mut state = RateLimitState::new(&policy);
    state.check(&policy, NOW);
    let json = serde_json::to_string(&state).unwrap();
    let back: RateLimitState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);
}
