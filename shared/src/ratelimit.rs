//! Exact per-key rate limiting as a pure function over a small state value and `now`.
//!
//! The guarantee users read in `RateLimit-Policy: q=N;w=W` holds exactly: **no window of `W` seconds ever contains
//! more than `N` admitted requests**. The state is a ring of [`SLOTS`]` + 1` counters, each covering `W / SLOTS` of
//! time. A request is admitted when the counters of the current slot and the [`SLOTS`] before it sum to less than `N`;
//! that set covers the last `W` in full and at most one slot more, so the limiter never over-admits and under-admits
//! only for at most `W / SLOTS` after the oldest requests leave the window. Nothing drips in the background: the state
//! only changes when a request is checked.
//!
//! An optional `burst` adds a GCRA (token bucket) with rate `N / W` and capacity `burst`, for APIs that want requests
//! spread out rather than spent at once.
//!
//! The Durable Object of each key runs [`RateLimitState::check`] for every request of a rate-limited key; being
//! single-threaded, it admits exactly, whatever the concurrency.
//!
//! **Leases.** So that a gateway isolate need not ask the key's object on every request,
//! [`RateLimitState::check_and_lease`] also hands it a share of the current slot: admissions it may make on its own
//! until that slot ends (at most [`MAX_LEASE_MS`]). They are counted at once, in the slot they will be made in, so the
//! guarantee above still holds exactly — a leased admission is an admission counted a little early, never one left
//! uncounted. What an isolate does not use it gives back ([`RateLimitState::give_back`]); until then those admissions
//! are unavailable to others, which is the (bounded) price: at most the outstanding leases, for at most one slot plus
//! the time until the isolate's next request. Policies with a `burst` are never leased (the burst spreads requests in
//! time, which a lease would undo).

use serde::{Deserialize, Serialize};

use crate::model::RateLimitPolicy;
use crate::time::Timestamp;

/// Sub-windows per window. More slots: closer to an ideal sliding window, a larger state.
pub const SLOTS: usize = 50;
/// A lease lasts until the end of its slot, and never longer than this.
pub const MAX_LEASE_MS: i64 = 1_000;
/// Less than this left in the slot: no lease (the isolate would have to ask again at once).
pub const MIN_LEASE_MS: i64 = 20;
/// Admissions in one lease, at most.
pub const MAX_LEASE_COUNT: u32 = 1_000;

/// Admissions a gateway isolate may make on its own: counted in `slot` already, usable until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub count: u32,
    pub slot: i64,
    pub until: Timestamp,
}

/// The limiter's state for one key. Small, serializable, and tied to the policy it was built for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitState {
    /// Slot length in ms; a state built for another policy is discarded.
    slot_ms: i64,
    /// Index (time / slot_ms) of the newest slot written.
    newest: i64,
    /// Ring of `SLOTS + 1` counters; slot `i` lives at `i % (SLOTS + 1)`.
    counts: Vec<u32>,
    /// GCRA theoretical arrival time in µs, when the policy has a burst.
    #[serde(default)]
    tat_us: i64,
}

/// The answer for one request, with what the `RateLimit`, `RateLimit-Policy` and `Retry-After` headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateDecision {
    pub allowed: bool,
    /// The policy's quota (`N`).
    pub limit: u32,
    /// Requests that could still be admitted right now.
    pub remaining: u32,
    /// Seconds until the quota is whole again (every counted request has left the window).
    pub reset_seconds: u32,
    /// When refused: seconds until a request can be admitted.
    pub retry_after_seconds: Option<u32>,
}

impl RateLimitState {
    pub fn new(policy: &RateLimitPolicy) -> Self {
        Self { slot_ms: slot_ms(policy), newest: i64::MIN, counts: vec![0; SLOTS + 1], tat_us: 0 }
    }

    /// Admits or refuses one request at `now`, updating the state only when admitted.
    pub fn check(&mut self, policy: &RateLimitPolicy, now: Timestamp) -> RateDecision {
        if self.slot_ms != slot_ms(policy) || self.counts.len() != SLOTS + 1 {
            *self = Self::new(policy);
        }
        let now_ms = now.millis();
        let slot = self.advance(now_ms);
        let limit = policy.requests;
        let in_window: u64 = self.counts.iter().map(|&c| u64::from(c)).sum();

        let window_wait_ms =
            if in_window < u64::from(limit) { 0 } else { self.window_wait_ms(slot, in_window, limit, now_ms) };
        let gcra = policy.burst.map(|burst| Gcra::new(policy, burst));
        let now_us = now_ms.saturating_mul(1000);
        let gcra_wait_ms = gcra.map_or(0, |g| ceil_div(g.wait_us(self.tat_us, now_us), 1000));

        let allowed = window_wait_ms == 0 && gcra_wait_ms == 0;
        let mut counted = in_window;
        if allowed {
            let at = ring_index(slot);
            self.counts[at] = self.counts[at].saturating_add(1);
            counted += 1;
            if let Some(g) = gcra {
                self.tat_us = self.tat_us.max(now_us) + g.interval_us;
            }
        }

        let mut remaining = u64::from(limit).saturating_sub(counted);
        if let Some(g) = gcra {
            remaining = remaining.min(g.remaining(self.tat_us, now_us));
        }
        let reset_ms = self.reset_ms(slot, now_ms);
        RateDecision {
            allowed,
            limit,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_seconds: ms_to_secs_ceil(reset_ms),
            retry_after_seconds: (!allowed).then(|| ms_to_secs_ceil(window_wait_ms.max(gcra_wait_ms)).max(1)),
        }
    }

    /// [`check`](Self::check), and when the request is admitted, a lease of up to `want` further admissions in the
    /// current slot: never more than half of what remains after this request (others may be asking too), until the
    /// slot ends (at most [`MAX_LEASE_MS`] from `now`). The decision's `remaining` already excludes the lease.
    pub fn check_and_lease(
        &mut self,
        policy: &RateLimitPolicy,
        now: Timestamp,
        want: u32,
    ) -> (RateDecision, Option<Lease>) {
        let mut decision = self.check(policy, now);
        if !decision.allowed || want == 0 || policy.burst.is_some() {
            return (decision, None);
        }
        let slot = self.newest;
        let until = ((slot + 1) * self.slot_ms).min(now.millis() + MAX_LEASE_MS);
        if until - now.millis() < MIN_LEASE_MS {
            return (decision, None);
        }
        let count = want.min(decision.remaining.div_ceil(2)).min(MAX_LEASE_COUNT);
        if count == 0 {
            return (decision, None);
        }
        let at = ring_index(slot);
        self.counts[at] = self.counts[at].saturating_add(count);
        decision.remaining -= count;
        (decision, Some(Lease { count, slot, until: Timestamp(until) }))
    }

    /// Takes back `unused` admissions of a lease counted in `slot`, if that slot is still counted (afterwards they
    /// have left the window anyway).
    pub fn give_back(&mut self, policy: &RateLimitPolicy, slot: i64, unused: u32) {
        if self.slot_ms != slot_ms(policy) || self.newest == i64::MIN {
            return;
        }
        if slot > self.newest || slot < self.newest - SLOTS as i64 {
            return;
        }
        let at = ring_index(slot);
        self.counts[at] = self.counts[at].saturating_sub(unused);
    }

    /// Moves the ring forward to `now`'s slot, clearing slots that fell out. Time never goes backwards here: an
    /// earlier `now` counts in the newest slot.
    fn advance(&mut self, now_ms: i64) -> i64 {
        let slot = now_ms.div_euclid(self.slot_ms);
        if self.newest == i64::MIN || slot - self.newest > SLOTS as i64 {
            self.counts.iter_mut().for_each(|c| *c = 0);
            self.newest = slot;
        } else if slot > self.newest {
            for s in self.newest + 1..=slot {
                self.counts[ring_index(s)] = 0;
            }
            self.newest = slot;
        }
        self.newest
    }

    /// How long until the count in the window drops below `limit`: slots leave the counted set oldest first, slot `j`
    /// when the current slot passes `j + SLOTS`.
    fn window_wait_ms(&self, slot: i64, in_window: u64, limit: u32, now_ms: i64) -> i64 {
        let mut left = in_window;
        for j in slot - SLOTS as i64..=slot {
            left -= u64::from(self.counts[ring_index(j)]);
            if left < u64::from(limit) {
                return ((j + SLOTS as i64 + 1) * self.slot_ms - now_ms).max(1);
            }
        }
        ((slot + SLOTS as i64 + 1) * self.slot_ms - now_ms).max(1)
    }

    /// How long until every counted request has left: the newest non-empty slot's exit time.
    fn reset_ms(&self, slot: i64, now_ms: i64) -> i64 {
        (slot - SLOTS as i64..=slot)
            .rev()
            .find(|&j| self.counts[ring_index(j)] > 0)
            .map_or(0, |j| ((j + SLOTS as i64 + 1) * self.slot_ms - now_ms).max(0))
    }
}

#[derive(Debug, Clone, Copy)]
struct Gcra {
    interval_us: i64,
    tolerance_us: i64,
}

impl Gcra {
    fn new(policy: &RateLimitPolicy, burst: u32) -> Self {
        let window_us = i64::from(policy.window_seconds) * 1_000_000;
        // Rounded up, so the sustained rate never exceeds N per W.
        let interval_us = (window_us + i64::from(policy.requests) - 1) / i64::from(policy.requests);
        Self { interval_us, tolerance_us: interval_us * (i64::from(burst.max(1)) - 1) }
    }

    fn wait_us(&self, tat_us: i64, now_us: i64) -> i64 {
        (tat_us - self.tolerance_us - now_us).max(0)
    }

    fn remaining(&self, tat_us: i64, now_us: i64) -> u64 {
        let slack = self.tolerance_us - (tat_us.max(now_us) - now_us);
        if slack < 0 { 0 } else { u64::try_from(slack / self.interval_us + 1).unwrap_or(0) }
    }
}

fn slot_ms(policy: &RateLimitPolicy) -> i64 {
    // window_seconds * 1000 / 50: a whole number of ms for every window.
    (i64::from(policy.window_seconds.max(1)) * 1000 / SLOTS as i64).max(1)
}

fn ring_index(slot: i64) -> usize {
    slot.rem_euclid(SLOTS as i64 + 1) as usize
}

/// Division rounding up, for non-negative numerators.
fn ceil_div(n: i64, d: i64) -> i64 {
    (n + d - 1) / d
}

fn ms_to_secs_ceil(ms: i64) -> u32 {
    u32::try_from(ceil_div(ms.max(0), 1000)).unwrap_or(u32::MAX)
}

/// `RateLimit-Policy` (IETF httpapi draft): `"default";q=<requests>;w=<window>`.
pub fn policy_header(policy: &RateLimitPolicy) -> String {
    format!("\"default\";q={};w={}", policy.requests, policy.window_seconds)
}

/// `RateLimit`: `"default";r=<remaining>;t=<seconds until reset>`.
pub fn ratelimit_header(decision: &RateDecision) -> String {
    format!("\"default\";r={};t={}", decision.remaining, decision.reset_seconds)
}
