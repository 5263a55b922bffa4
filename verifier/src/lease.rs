//! The leases a gateway isolate holds for leased rate limits (`keygate_shared::ratelimit`): admissions it may make
//! on its own until the lease ends, without asking the key's object. Platform-free; `runtime.rs` keeps one table per
//! isolate.
//!
//! How much to ask for adapts to each key's traffic in this isolate: a lease used up before it ended asks for twice
//! as much next time, one that ended mostly unused asks for half, so a quiet key holds back little of its quota and a
//! busy one rarely asks.

use std::collections::HashMap;

use keygate_shared::key::KeyId;
use keygate_shared::keyobject::LeaseAsk;
use keygate_shared::model::RateLimitPolicy;
use keygate_shared::ratelimit::{Lease, MAX_LEASE_COUNT, RateDecision};
use keygate_shared::time::Timestamp;

/// What an isolate first asks for.
pub const FIRST_WANT: u32 = 4;

/// Unused parts of replaced leases an isolate remembers per key until its next ask, at most (one per slot; past it
/// the oldest is dropped: those admissions stay unavailable until they leave the window, a bounded loss).
pub const MAX_OWED: usize = 4;

#[derive(Debug, Clone)]
struct Held {
    lease: Option<Lease>,
    used: u32,
    /// Unused admissions of leases this isolate no longer draws from, `(slot, count)`: given back with the next ask.
    owed: Vec<(i64, u32)>,
    policy: RateLimitPolicy,
    /// What the key's object said remained for everyone else when it granted the lease.
    others_remaining: u32,
    reset_seconds: u32,
    /// What to ask for next.
    want: u32,
}

impl Held {
    fn new(policy: RateLimitPolicy) -> Self {
        Self { lease: None, used: 0, owed: Vec::new(), policy, others_remaining: 0, reset_seconds: 0, want: FIRST_WANT }
    }

    /// Remembers `unused` admissions of `slot` to give back.
    fn owe(&mut self, slot: i64, unused: u32) {
        if unused == 0 {
            return;
        }
        match self.owed.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, n)) => *n = n.saturating_add(unused),
            None => {
                if self.owed.len() >= MAX_OWED {
                    self.owed.remove(0);
                }
                self.owed.push((slot, unused));
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Leases {
    held: HashMap<KeyId, Held>,
}

impl Leases {
    /// Keys remembered at most; past it, the oldest-ending lease is dropped (its admissions age out of the window).
    pub const MAX_KEYS: usize = 10_000;

    /// One admission of `id` from a live lease, if this isolate holds one for `policy`: the decision to answer with.
    pub fn take(&mut self, id: &KeyId, policy: &RateLimitPolicy, now: Timestamp) -> Option<RateDecision> {
        let held = self.held.get_mut(id).filter(|h| h.policy == *policy)?;
        let lease = held.lease.as_ref()?;
        if now >= lease.until || held.used >= lease.count {
            return None;
        }
        held.used += 1;
        let left = lease.count - held.used;
        Some(RateDecision {
            allowed: true,
            limit: policy.requests,
            remaining: held.others_remaining.saturating_add(left),
            reset_seconds: held.reset_seconds,
            retry_after_seconds: None,
        })
    }

    /// What to ask the key's object with this request: a lease sized to the key's recent traffic here, and every
    /// unused admission this isolate holds for it given back. The current lease is spent or over (that is why the
    /// request asks), so it is forgotten.
    pub fn ask(&mut self, id: &KeyId, policy: &RateLimitPolicy) -> LeaseAsk {
        let Some(held) = self.held.get_mut(id).filter(|h| h.policy == *policy) else {
            return LeaseAsk { want: FIRST_WANT, give_back: Vec::new() };
        };
        if let Some(lease) = held.lease.take() {
            let unused = lease.count.saturating_sub(held.used);
            // Used up: ask for more next time; mostly unused: ask for less.
            held.want = if unused == 0 {
                held.want.saturating_mul(2).min(MAX_LEASE_COUNT)
            } else if unused * 2 > lease.count {
                (held.want / 2).max(1)
            } else {
                held.want
            };
            held.owe(lease.slot, unused);
        }
        held.used = 0;
        LeaseAsk { want: held.want, give_back: std::mem::take(&mut held.owed) }
    }

    /// Keeps what the key's object granted with an admitted request (`lease: None`: nothing this time). Requests
    /// that asked at the same time each bring a lease back: one counted in the same slot as the lease held is
    /// merged into it, another replaces it and the unused part of the old one is owed back.
    pub fn keep(&mut self, id: KeyId, policy: RateLimitPolicy, decision: &RateDecision, lease: Option<Lease>) {
        if self.held.len() >= Self::MAX_KEYS && !self.held.contains_key(&id) {
            let oldest =
                self.held.iter().min_by_key(|(_, h)| h.lease.map_or(i64::MIN, |l| l.until.millis())).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.held.remove(&oldest);
            }
        }
        let held = self.held.entry(id).or_insert_with(|| Held::new(policy));
        if held.policy != policy {
            *held = Held::new(policy);
        }
        held.others_remaining = decision.remaining;
        held.reset_seconds = decision.reset_seconds;
        let Some(mut lease) = lease else { return };
        if let Some(old) = held.lease.take() {
            let unused = old.count.saturating_sub(held.used);
            if old.slot == lease.slot {
                lease.count = lease.count.saturating_add(unused);
                lease.until = lease.until.max(old.until);
            } else {
                held.owe(old.slot, unused);
            }
        }
        held.lease = Some(lease);
        held.used = 0;
    }

    /// The key's object refused for another reason than the limit (revoked, expired, no longer allowed…): hold
    /// nothing for it.
    pub fn forget(&mut self, id: &KeyId) {
        self.held.remove(id);
    }
}
