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

#[derive(Debug, Clone)]
struct Held {
    lease: Option<Lease>,
    used: u32,
    policy: RateLimitPolicy,
    /// What the key's object said remained for everyone else when it granted the lease.
    others_remaining: u32,
    reset_seconds: u32,
    /// What to ask for next.
    want: u32,
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

    /// What to ask the key's object with this request: a lease sized to the key's recent traffic here, and the
    /// unused part of the last one given back. The last lease is forgotten (its unused part goes back with this ask).
    pub fn ask(&mut self, id: &KeyId, policy: &RateLimitPolicy) -> LeaseAsk {
        let Some(held) = self.held.get_mut(id).filter(|h| h.policy == *policy) else {
            return LeaseAsk { want: FIRST_WANT, give_back: None };
        };
        let give_back = held.lease.take().and_then(|lease| {
            let unused = lease.count.saturating_sub(held.used);
            // Used up: ask for more next time; mostly unused: ask for less.
            held.want = if unused == 0 {
                held.want.saturating_mul(2).min(MAX_LEASE_COUNT)
            } else if unused * 2 > lease.count {
                (held.want / 2).max(1)
            } else {
                held.want
            };
            (unused > 0).then_some((lease.slot, unused))
        });
        held.used = 0;
        LeaseAsk { want: held.want, give_back }
    }

    /// Keeps what the key's object granted with an admitted request (`lease: None`: nothing this time).
    pub fn keep(&mut self, id: KeyId, policy: RateLimitPolicy, decision: &RateDecision, lease: Option<Lease>) {
        if self.held.len() >= Self::MAX_KEYS && !self.held.contains_key(&id) {
            let oldest =
                self.held.iter().min_by_key(|(_, h)| h.lease.map_or(i64::MIN, |l| l.until.millis())).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.held.remove(&oldest);
            }
        }
        let want = self.held.get(&id).filter(|h| h.policy == policy).map_or(FIRST_WANT, |h| h.want);
        self.held.insert(
            id,
            Held {
                lease,
                used: 0,
                policy,
                others_remaining: decision.remaining,
                reset_seconds: decision.reset_seconds,
                want,
            },
        );
    }

    /// The key's object refused (revoked, rate limited…): hold nothing for it.
    pub fn forget(&mut self, id: &KeyId) {
        self.held.remove(id);
    }
}
