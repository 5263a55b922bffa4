//! The isolate's leases: requests that asked the key's object at the same time each bring a lease back, and none of
//! the admissions the object counted for this isolate is lost.

use keygate_shared::key::KeyId;
use keygate_shared::model::RateLimitPolicy;
use keygate_shared::ratelimit::{Lease, RateDecision};

use super::NOW;
use crate::lease::{FIRST_WANT, Leases, MAX_OWED};

fn id() -> KeyId {
    KeyId::parse("0123456789ABCD").expect("an id")
}

fn admitted(remaining: u32) -> RateDecision {
    RateDecision { allowed: true, limit: 10, remaining, reset_seconds: 60, retry_after_seconds: None }
}

fn lease(count: u32, slot: i64) -> Option<Lease> {
    Some(Lease { count, slot, until: NOW.plus_millis(500) })
}

/// Admissions the isolate can make now.
fn drain(leases: &mut Leases, policy: &RateLimitPolicy) -> u32 {
    std::iter::from_fn(|| leases.take(&id(), policy, NOW)).count() as u32
}

#[test]
fn leases_brought_back_by_concurrent_asks_in_one_slot_add_up() {
    let policy = RateLimitPolicy::per(10, 60);
    let mut leases = Leases::default();
    leases.keep(id(), policy, &admitted(5), lease(4, 7));
    leases.keep(id(), policy, &admitted(2), lease(2, 7));
    leases.keep(id(), policy, &admitted(0), lease(1, 7));
    assert_eq!(drain(&mut leases, &policy), 7, "4 + 2 + 1: every admission counted for this isolate is usable");
}

#[test]
fn a_lease_replaced_by_one_of_another_slot_is_given_back_with_the_next_ask() {
    let policy = RateLimitPolicy::per(10, 60);
    let mut leases = Leases::default();
    leases.keep(id(), policy, &admitted(5), lease(4, 7));
    assert!(leases.take(&id(), &policy, NOW).is_some());
    leases.keep(id(), policy, &admitted(3), lease(2, 8));
    assert_eq!(drain(&mut leases, &policy), 2, "the newer lease is the one drawn on");
    let ask = leases.ask(&id(), &policy);
    assert_eq!(ask.give_back, vec![(7, 3)], "the 3 unused admissions of slot 7 go back");
    assert!(leases.ask(&id(), &policy).give_back.is_empty(), "and only once");
}

#[test]
fn an_admission_without_a_lease_keeps_the_lease_held() {
    let policy = RateLimitPolicy::per(10, 60);
    let mut leases = Leases::default();
    leases.keep(id(), policy, &admitted(5), lease(3, 7));
    leases.keep(id(), policy, &admitted(4), None);
    assert_eq!(drain(&mut leases, &policy), 3);
}

#[test]
fn owed_give_backs_are_bounded() {
    let policy = RateLimitPolicy::per(1000, 60);
    let mut leases = Leases::default();
    for slot in 0..(MAX_OWED as i64 + 3) {
        leases.keep(id(), policy, &admitted(500), lease(5, slot));
    }
    let ask = leases.ask(&id(), &policy);
    // The current lease's unused part, and at most MAX_OWED older ones (the newest).
    assert!(ask.give_back.len() <= MAX_OWED + 1, "{:?}", ask.give_back);
    assert!(ask.give_back.len() <= keygate_shared::keyobject::LeaseAsk::MAX_GIVE_BACK);
    assert_eq!(ask.give_back.last(), Some(&(MAX_OWED as i64 + 2, 5)));
}

#[test]
fn a_first_ask_wants_the_first_size_and_gives_nothing_back() {
    let policy = RateLimitPolicy::per(10, 60);
    let ask = Leases::default().ask(&id(), &policy);
    assert_eq!((ask.want, ask.give_back.len()), (FIRST_WANT, 0));
}

#[test]
fn a_refusal_forgets_the_lease() {
    let policy = RateLimitPolicy::per(10, 60);
    let mut leases = Leases::default();
    leases.keep(id(), policy, &admitted(5), lease(4, 7));
    leases.forget(&id());
    assert_eq!(drain(&mut leases, &policy), 0);
}
