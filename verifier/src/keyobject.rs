//! The logic of a key's Durable Object, platform-free: it owns what must be exact — the authoritative record
//! (revocation, regeneration), the rate-limit state, usage counters, last used, and the recent-errors log.
//!
//! The object is single-threaded; `runtime.rs` runs each message synchronously against the loaded state and then
//! persists it, so concurrent requests are admitted exactly.

use std::collections::{BTreeMap, VecDeque};

use keygate_shared::api::{RecentError, UsagePoint, UsageReport, UsageSummary};
use keygate_shared::decision::{Access, Claim, Code, Demand, Endpoint, decide};
use keygate_shared::model::{KeyRecord, Permission, RateLimitPolicy};
use keygate_shared::ratelimit::{RateDecision, RateLimitState};
use keygate_shared::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Recent errors kept per key: at most this many…
pub const MAX_ERRORS: usize = 100;
/// …and none older than 14 days.
pub const ERROR_RETENTION_MS: i64 = 14 * 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Hourly usage is kept for 14 days (the daily chart is summed from it).
const USAGE_RETENTION_HOURS: i64 = 14 * 24;

/// A message to a key's object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectRequest {
    /// Re-check a request against the authoritative record and apply the rate limit (step 8); counts usage.
    Authorize {
        claim: Claim,
        endpoint: Endpoint,
        #[serde(default)]
        permission: Option<Permission>,
        #[serde(default)]
        organization: Option<String>,
        #[serde(default)]
        customer: Option<String>,
        now: Timestamp,
    },
    /// After the fact: requests an isolate counted for a key without a rate limit, and/or an error to log.
    Report {
        now: Timestamp,
        #[serde(default)]
        usage: Option<UsageBatch>,
        #[serde(default)]
        error: Option<RecentError>,
    },
    /// Admin: store a new or changed record (the object then writes it to KV).
    Put { record: KeyRecord },
    /// Admin: forget the key (the object then deletes it from KV).
    Delete,
    /// Admin: the record, usage and recent errors.
    Snapshot { now: Timestamp },
}

/// The object's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectReply {
    Authorized {
        code: Code,
        #[serde(default)]
        organization: Option<String>,
        #[serde(default)]
        rate: Option<(RateLimitPolicy, RateDecision)>,
        /// The authoritative record, when the caller proved it holds the key.
        #[serde(default)]
        record: Option<KeyRecord>,
    },
    Done,
    Snapshot {
        record: Option<KeyRecord>,
        usage: UsageReport,
        summary: UsageSummary,
        errors: Vec<RecentError>,
    },
}

/// Usage counters: per hour (for the charts), per organization, in total, and the last use.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub total: u64,
    pub last_used_at: Option<Timestamp>,
    /// Hour index (ms / 3 600 000) → requests.
    pub hourly: BTreeMap<i64, u64>,
    /// Organization → requests made on its behalf.
    pub by_organization: BTreeMap<String, u64>,
}

impl Usage {
    pub fn count(&mut self, now: Timestamp, organization: &str) {
        self.add(&UsageBatch::one(organization, now));
    }

    /// Adds a batch of requests counted elsewhere; they are attributed to the hour of the batch's last request.
    pub fn add(&mut self, batch: &UsageBatch) {
        self.total += batch.total;
        self.last_used_at = Some(self.last_used_at.map_or(batch.last_at, |t| t.max(batch.last_at)));
        let hour = batch.last_at.millis().div_euclid(HOUR_MS);
        *self.hourly.entry(hour).or_default() += batch.total;
        for (org, n) in &batch.by_organization {
            *self.by_organization.entry(org.clone()).or_default() += n;
        }
        let oldest = hour - USAGE_RETENTION_HOURS;
        self.hourly.retain(|&h, _| h > oldest);
    }

    pub fn summary(&self, now: Timestamp, recent_errors: usize) -> UsageSummary {
        let hour = now.millis().div_euclid(HOUR_MS);
        UsageSummary {
            total: self.total,
            last_24h: self.hourly.range(hour - 23..=hour).map(|(_, n)| n).sum(),
            recent_errors: u32::try_from(recent_errors).unwrap_or(u32::MAX),
        }
    }

    /// The last 24 hours by hour and the last 14 days by (UTC) day, oldest first.
    pub fn report(&self, now: Timestamp) -> UsageReport {
        let hour = now.millis().div_euclid(HOUR_MS);
        let hourly = (hour - 23..=hour)
            .map(|h| UsagePoint { start: Timestamp(h * HOUR_MS), requests: self.hourly.get(&h).copied().unwrap_or(0) })
            .collect();
        let day = now.millis().div_euclid(DAY_MS);
        let daily = (day - 13..=day)
            .map(|d| UsagePoint {
                start: Timestamp(d * DAY_MS),
                requests: self.hourly.range(d * 24..(d + 1) * 24).map(|(_, n)| n).sum(),
            })
            .collect();
        UsageReport { hourly, daily, total: self.total, last_used_at: self.last_used_at }
    }
}

/// Everything a key's object persists, but the errors (kept apart: they change rarely and weigh more).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ObjectState {
    pub record: Option<KeyRecord>,
    pub rate: Option<RateLimitState>,
    pub usage: Usage,
}

/// What a message changed, so the runtime writes only that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Changes {
    pub state: bool,
    pub errors: bool,
    /// The record changed: write it to KV (or delete it there when the record is gone).
    pub kv: bool,
}

impl ObjectState {
    /// Handles one message. `errors` is the recent-errors log, newest last.
    pub fn handle(&mut self, errors: &mut VecDeque<RecentError>, request: ObjectRequest) -> (ObjectReply, Changes) {
        match request {
            ObjectRequest::Authorize { claim, endpoint, permission, organization, customer, now } => {
                let demand = Demand {
                    access: permission.as_ref().map_or(Access::Open, Access::Permission),
                    organization: organization.as_deref(),
                    customer: customer.as_deref(),
                };
                self.authorize(&claim, &endpoint, demand, now)
            }
            ObjectRequest::Report { now, usage, error } => {
                let counted = usage.is_some();
                if let Some(batch) = &usage {
                    self.usage.add(batch);
                }
                let logged = error.is_some();
                if let Some(e) = error {
                    log_error(errors, e, now);
                }
                (ObjectReply::Done, Changes { state: counted, errors: logged, kv: false })
            }
            ObjectRequest::Put { record } => {
                // A changed policy starts a fresh limiter; the same policy keeps its count.
                if record.rate_limit != self.record.as_ref().and_then(|r| r.rate_limit) {
                    self.rate = None;
                }
                self.record = Some(record);
                (ObjectReply::Done, Changes { state: true, errors: false, kv: true })
            }
            ObjectRequest::Delete => {
                *self = Self::default();
                errors.clear();
                (ObjectReply::Done, Changes { state: true, errors: true, kv: true })
            }
            ObjectRequest::Snapshot { now } => {
                prune_errors(errors, now);
                let reply = ObjectReply::Snapshot {
                    record: self.record.clone(),
                    usage: self.usage.report(now),
                    summary: self.usage.summary(now, errors.len()),
                    errors: errors.iter().rev().cloned().collect(),
                };
                (reply, Changes::default())
            }
        }
    }

    fn authorize(
        &mut self,
        claim: &Claim,
        endpoint: &Endpoint,
        demand: Demand<'_>,
        now: Timestamp,
    ) -> (ObjectReply, Changes) {
        let refused = |code| ObjectReply::Authorized { code, organization: None, rate: None, record: None };
        let grant = match decide(claim, self.record.as_ref(), endpoint, demand, now) {
            Ok(grant) => grant,
            Err(code) => return (refused(code), Changes::default()),
        };
        let Some(record) = self.record.as_ref() else { return (refused(Code::NotFound), Changes::default()) };
        let rate = record.rate_limit.map(|policy| {
            let state = self.rate.get_or_insert_with(|| RateLimitState::new(&policy));
            (policy, state.check(&policy, now))
        });
        let allowed = rate.as_ref().is_none_or(|(_, d)| d.allowed);
        let record = Some(record.clone());
        if allowed {
            self.usage.count(now, &grant.organization);
        }
        let code = if allowed { Code::Valid } else { Code::RateLimited };
        let changes = Changes { state: allowed || rate.is_some(), errors: false, kv: false };
        (ObjectReply::Authorized { code, organization: Some(grant.organization), rate, record }, changes)
    }
}

/// Requests of one key counted in an isolate and not yet reported to its object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBatch {
    pub total: u64,
    pub by_organization: BTreeMap<String, u64>,
    pub last_at: Timestamp,
}

impl UsageBatch {
    pub fn one(organization: &str, at: Timestamp) -> Self {
        Self { total: 1, by_organization: BTreeMap::from([(organization.to_owned(), 1)]), last_at: at }
    }
}

/// How often an isolate reports the usage of one key without a rate limit to its object, at most.
pub const USAGE_FLUSH_MS: i64 = 1_000;

/// Per-isolate usage counting for keys without a rate limit: a key's first request in a second is reported at once
/// (so "last used" is current), later ones are batched and reported with the first request the isolate serves once
/// the batch is a second old. One object call per key per second and isolate, instead of one per request.
#[derive(Debug, Default)]
pub struct UsageBuffer {
    pending: std::collections::HashMap<keygate_shared::key::KeyId, (i64, UsageBatch)>,
    last_report: std::collections::HashMap<keygate_shared::key::KeyId, i64>,
    oldest: Option<i64>,
}

impl UsageBuffer {
    /// At most this many keys are remembered; beyond it, reports go out at once.
    pub const MAX_KEYS: usize = 10_000;

    /// Counts one request; answers a batch to report now when the key has not been reported for a second.
    pub fn count(&mut self, id: keygate_shared::key::KeyId, organization: &str, now: Timestamp) -> Option<UsageBatch> {
        let at = now.millis();
        let recent = self.last_report.get(&id).is_some_and(|&t| at - t < USAGE_FLUSH_MS);
        if !recent || self.pending.len() >= Self::MAX_KEYS {
            self.last_report.insert(id, at);
            if self.last_report.len() > Self::MAX_KEYS {
                self.last_report.retain(|_, t| at - *t < USAGE_FLUSH_MS);
            }
            let mut batch = self.pending.remove(&id).map(|(_, b)| b).unwrap_or(UsageBatch {
                total: 0,
                by_organization: BTreeMap::new(),
                last_at: now,
            });
            batch.total += 1;
            *batch.by_organization.entry(organization.to_owned()).or_default() += 1;
            batch.last_at = batch.last_at.max(now);
            return Some(batch);
        }
        let (_, batch) = self
            .pending
            .entry(id)
            .or_insert_with(|| (at, UsageBatch { total: 0, by_organization: BTreeMap::new(), last_at: now }));
        batch.total += 1;
        *batch.by_organization.entry(organization.to_owned()).or_default() += 1;
        batch.last_at = batch.last_at.max(now);
        self.oldest = Some(self.oldest.map_or(at, |o| o.min(at)));
        None
    }

    /// Batches at least a second old, to report now. Costs nothing when none is due.
    pub fn due(&mut self, now: Timestamp) -> Vec<(keygate_shared::key::KeyId, UsageBatch)> {
        let at = now.millis();
        if self.oldest.is_none_or(|o| at - o < USAGE_FLUSH_MS) {
            return Vec::new();
        }
        let due: Vec<_> =
            self.pending.iter().filter(|(_, (first, _))| at - first >= USAGE_FLUSH_MS).map(|(id, _)| *id).collect();
        let mut out = Vec::with_capacity(due.len());
        for id in due {
            if let Some((_, batch)) = self.pending.remove(&id) {
                self.last_report.insert(id, at);
                out.push((id, batch));
            }
        }
        self.oldest = self.pending.values().map(|(first, _)| *first).min();
        out
    }
}

fn prune_errors(errors: &mut VecDeque<RecentError>, now: Timestamp) {
    let oldest = now.plus_millis(-ERROR_RETENTION_MS);
    while errors.front().is_some_and(|e| e.at < oldest) {
        errors.pop_front();
    }
    while errors.len() > MAX_ERRORS {
        errors.pop_front();
    }
}

fn log_error(errors: &mut VecDeque<RecentError>, error: RecentError, now: Timestamp) {
    errors.push_back(error.bounded());
    prune_errors(errors, now);
}

#[cfg(test)]
mod tests {
    use keygate_shared::key::KeyId;
    use keygate_shared::time::Timestamp;

    use super::{USAGE_FLUSH_MS, Usage, UsageBuffer};

    /// A key's first request is reported at once; a burst is batched into one report a second later; nothing is lost.
    #[test]
    fn usage_is_batched_per_key_and_second() {
        let a = KeyId::parse("AAAAAAAAAAAAAA").unwrap();
        let b = KeyId::parse("BBBBBBBBBBBBBB").unwrap();
        let mut buffer = UsageBuffer::default();
        let mut usage = Usage::default();
        let t = |ms: i64| Timestamp(1_795_000_000_000 + ms);
        let first = buffer.count(a, "org_a", t(0)).expect("the first request is reported at once");
        usage.add(&first);
        for ms in 1..=99 {
            assert!(buffer.count(a, "org_b", t(ms)).is_none(), "later requests are batched");
        }
        assert!(buffer.count(b, "org_a", t(50)).is_some(), "another key reports its first request at once");
        assert!(buffer.due(t(USAGE_FLUSH_MS - 1)).is_empty(), "not due before a second");
        let due = buffer.due(t(USAGE_FLUSH_MS + 1));
        assert_eq!(due.len(), 1);
        let (id, batch) = &due[0];
        assert_eq!(*id, a);
        assert_eq!(batch.total, 99);
        assert_eq!(batch.last_at, t(99));
        usage.add(batch);
        assert_eq!(usage.total, 100);
        assert_eq!(usage.by_organization["org_a"], 1);
        assert_eq!(usage.by_organization["org_b"], 99);
        assert_eq!(usage.last_used_at, Some(t(99)));
        assert!(buffer.due(t(5 * USAGE_FLUSH_MS)).is_empty(), "nothing left");
        assert!(buffer.count(a, "org_a", t(5 * USAGE_FLUSH_MS)).is_some(), "a quiet key reports at once again");
    }
}
