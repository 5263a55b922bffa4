//! Per-isolate usage counting for keys without a rate limit (their objects do not see their requests): counts are
//! batched per key and second and reported to the key's object after the answer.

use std::collections::BTreeMap;

use keygate_shared::keyobject::UsageBatch;
use keygate_shared::time::Timestamp;

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

#[cfg(test)]
mod tests {
    use keygate_shared::key::KeyId;
    use keygate_shared::time::Timestamp;

    use keygate_shared::keyobject::Usage;

    use super::{USAGE_FLUSH_MS, UsageBuffer};

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
