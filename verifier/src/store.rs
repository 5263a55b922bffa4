//! Storage behind one small trait, implemented over Workers KV and Durable Objects in `runtime.rs` and in memory here
//! for native tests (the end-to-end suite exercises the real runtime).

use std::fmt;

use keygate_shared::key::KeyId;
use keygate_shared::keyobject::{GatewayReply, GatewayRequest, LeaseAsk};
use keygate_shared::model::{KeyRecord, RateLimitPolicy, UserOrganizations};
use keygate_shared::ratelimit::{Lease, RateDecision};
use keygate_shared::time::Timestamp;

/// Storage did not answer. The handlers turn it into 503 with `Retry-After`, never into a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[allow(async_fn_in_trait)] // Workers futures are not Send, and need not be.
pub trait Stores {
    /// The key record by id from the read path (KV, through the isolate cache).
    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError>;
    /// A message to the key's Durable Object.
    async fn object(&self, id: &KeyId, request: &GatewayRequest) -> Result<GatewayReply, StoreError>;
    /// The organizations a user belongs to (KV `user:<id>`, through the isolate cache): read only when a request
    /// names another organization than its key's with `Keygate-Org`.
    async fn memberships(&self, user: &str) -> Result<UserOrganizations, StoreError>;
    /// The isolate's leases of leased rate limits (`crate::lease`); none by default.
    fn leases(&self) -> Option<&std::cell::RefCell<crate::lease::Leases>> {
        None
    }
}

/// One admission of `id` from this isolate's lease, if it holds a live one.
pub fn lease_take<S: Stores>(stores: &S, id: &KeyId, policy: &RateLimitPolicy, now: Timestamp) -> Option<RateDecision> {
    stores.leases()?.borrow_mut().take(id, policy, now)
}

/// What to ask the key's object for with this request.
pub fn lease_ask<S: Stores>(stores: &S, id: &KeyId, policy: &RateLimitPolicy) -> Option<LeaseAsk> {
    Some(stores.leases()?.borrow_mut().ask(id, policy))
}

/// Keeps what the object granted (`None`: it refused for another reason than the limit; the lease is forgotten).
pub fn lease_keep<S: Stores>(stores: &S, id: KeyId, granted: Option<(RateLimitPolicy, &RateDecision, Option<Lease>)>) {
    if let Some(leases) = stores.leases() {
        match granted {
            Some((policy, decision, lease)) => leases.borrow_mut().keep(id, policy, decision, lease),
            None => leases.borrow_mut().forget(&id),
        }
    }
}

#[cfg(test)]
pub mod memory {
    //! In-memory stores with the key objects' real logic, and switches to make storage fail.

    use std::cell::RefCell;
    use std::collections::{BTreeMap, VecDeque};

    use keygate_shared::api::RecentError;
    use keygate_shared::keyobject::{GatewayEnvelope, KeyEnvelope, KeyObjectState, KeyReply, KeyRequest};

    use super::*;

    #[derive(Debug, Default)]
    pub struct Memory {
        pub kv: RefCell<BTreeMap<KeyId, KeyRecord>>,
        pub users: RefCell<BTreeMap<String, UserOrganizations>>,
        pub objects: RefCell<BTreeMap<KeyId, (KeyObjectState, VecDeque<RecentError>)>>,
        pub fail_kv: RefCell<bool>,
        pub fail_objects: RefCell<bool>,
        pub kv_reads: RefCell<u32>,
        pub object_calls: RefCell<u32>,
        pub leases: RefCell<crate::lease::Leases>,
    }

    impl Memory {
        /// A message to the key's object, as the control plane's runtime applies it (admin changes included).
        pub fn handle(&self, id: &KeyId, request: KeyRequest) -> KeyReply {
            let mut objects = self.objects.borrow_mut();
            let (state, errors) = objects.entry(*id).or_default();
            // Like the runtime: an object with no record yet loads it from KV.
            if state.record.is_none() && state.revision == 0 {
                state.record = self.kv.borrow().get(id).cloned();
            }
            let (reply, _) = state.handle(errors, request);
            if state.kv_owed {
                match &state.record {
                    Some(r) => self.kv.borrow_mut().insert(*id, r.clone()),
                    None => self.kv.borrow_mut().remove(id),
                };
                state.kv_owed = false;
            }
            reply
        }

        /// Stores a key as the control plane would: through its object, which then writes KV.
        pub fn put(&self, record: KeyRecord) {
            let id = record.id;
            let mut objects = self.objects.borrow_mut();
            let (state, _) = objects.entry(id).or_default();
            state.record = Some(record.clone());
            state.rate = None;
            self.kv.borrow_mut().insert(id, record);
        }
    }

    impl Stores for Memory {
        async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
            *self.kv_reads.borrow_mut() += 1;
            if *self.fail_kv.borrow() {
                return Err(StoreError("kv down".into()));
            }
            Ok(self.kv.borrow().get(id).cloned())
        }

        async fn object(&self, id: &KeyId, request: &GatewayRequest) -> Result<GatewayReply, StoreError> {
            if *self.fail_objects.borrow() {
                return Err(StoreError("object down".into()));
            }
            *self.object_calls.borrow_mut() += 1;
            // Through JSON both ways, as the runtime sends and reads them: what the gateway writes is a message the
            // object reads, and what the object answers is what the gateway can read.
            let sent =
                serde_json::to_string(&GatewayEnvelope { id: *id, request }).map_err(|e| StoreError(e.to_string()))?;
            let envelope: KeyEnvelope =
                serde_json::from_str(&sent).map_err(|e| StoreError(format!("the object cannot read {sent}: {e}")))?;
            let reply = serde_json::to_string(&self.handle(&envelope.id, envelope.request))
                .map_err(|e| StoreError(e.to_string()))?;
            serde_json::from_str(&reply).map_err(|e| StoreError(format!("the gateway cannot read {reply}: {e}")))
        }

        async fn memberships(&self, user: &str) -> Result<UserOrganizations, StoreError> {
            *self.kv_reads.borrow_mut() += 1;
            if *self.fail_kv.borrow() {
                return Err(StoreError("kv down".into()));
            }
            Ok(self.users.borrow().get(user).cloned().unwrap_or_default())
        }

        fn leases(&self) -> Option<&RefCell<crate::lease::Leases>> {
            Some(&self.leases)
        }
    }
}

/// A per-isolate cache of what KV answered (key records, and users' organizations). An entry lives `ttl_ms`:
/// together with KV's propagation that bounds how late a revocation (or a removal from an organization) reaches
/// keys without a rate limit (see the README's "Revocation bound"). Bounded; when full, the oldest entry goes, in
/// constant time (a flood of new keys costs each request the same small work, never a scan of the cache).
#[derive(Debug)]
pub struct IsolateCache<K, V> {
    entries: std::collections::HashMap<K, (i64, V)>,
    /// Keys in the order they were inserted, with the time of that insertion (stale pairs are skipped).
    order: std::collections::VecDeque<(K, i64)>,
    cap: usize,
}

impl<K, V> Default for IsolateCache<K, V> {
    fn default() -> Self {
        Self::with_cap(Self::MAX_ENTRIES)
    }
}

impl<K, V> IsolateCache<K, V> {
    /// At most this many entries are kept by default.
    pub const MAX_ENTRIES: usize = 10_000;

    pub fn with_cap(cap: usize) -> Self {
        Self { entries: std::collections::HashMap::new(), order: std::collections::VecDeque::new(), cap: cap.max(1) }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> IsolateCache<K, V> {
    /// The cached answer for `key` if it is younger than `ttl_ms`.
    pub fn get(&self, key: &K, now_ms: i64, ttl_ms: i64) -> Option<V> {
        self.entries.get(key).filter(|(at, _)| now_ms - at < ttl_ms).map(|(_, v)| v.clone())
    }

    pub fn insert(&mut self, key: K, value: V, now_ms: i64) {
        self.entries.insert(key.clone(), (now_ms, value));
        self.order.push_back((key, now_ms));
        while self.entries.len() > self.cap {
            let Some((oldest, at)) = self.order.pop_front() else { break };
            if self.entries.get(&oldest).is_some_and(|(t, _)| *t == at) {
                self.entries.remove(&oldest);
            }
        }
        // Keys inserted again leave stale pairs behind: drop them once they outnumber the live ones.
        if self.order.len() > 2 * self.cap {
            let entries = &self.entries;
            self.order.retain(|(k, at)| entries.get(k).is_some_and(|(t, _)| t == at));
        }
    }

    /// This isolate changed it: forget what it read.
    pub fn invalidate(&mut self, key: &K) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Key records by id, and the ids KV knows no key for, apart: a flood of forged ids (a valid checksum is cheap to
/// make) fills only the smaller cache of misses and never pushes a real key's record out. Each forged id costs at
/// most one KV read per isolate per TTL.
#[derive(Debug)]
pub struct RecordCache {
    found: IsolateCache<KeyId, KeyRecord>,
    missing: IsolateCache<KeyId, ()>,
}

impl Default for RecordCache {
    fn default() -> Self {
        Self { found: IsolateCache::default(), missing: IsolateCache::with_cap(Self::MAX_MISSING) }
    }
}

impl RecordCache {
    /// Ids remembered as unknown, at most.
    pub const MAX_MISSING: usize = 4_096;

    /// `Some(None)`: KV knew no such key when last asked.
    pub fn get(&self, id: &KeyId, now_ms: i64, ttl_ms: i64) -> Option<Option<KeyRecord>> {
        match self.found.get(id, now_ms, ttl_ms) {
            Some(record) => Some(Some(record)),
            None => self.missing.get(id, now_ms, ttl_ms).map(|()| None),
        }
    }

    pub fn insert(&mut self, id: KeyId, record: Option<KeyRecord>, now_ms: i64) {
        match record {
            Some(record) => {
                self.missing.invalidate(&id);
                self.found.insert(id, record, now_ms);
            }
            None => {
                self.found.invalidate(&id);
                self.missing.insert(id, (), now_ms);
            }
        }
    }

    pub fn invalidate(&mut self, id: &KeyId) {
        self.found.invalidate(id);
        self.missing.invalidate(id);
    }

    /// Records and misses held.
    pub fn len(&self) -> (usize, usize) {
        (self.found.len(), self.missing.len())
    }
}

#[cfg(test)]
mod cache_tests {
    use keygate_shared::key::KeyId;

    use super::RecordCache;

    fn id(n: u8) -> KeyId {
        KeyId::parse(&format!("{:0>14}", n % 10)).unwrap()
    }

    /// The revocation bound for keys without a rate limit: a cached record is served for less than the TTL, never
    /// after it, and an isolate's own change is seen at once.
    #[test]
    fn entries_expire_after_the_ttl() {
        let mut cache = RecordCache::default();
        cache.insert(id(1), None, 1_000);
        assert_eq!(cache.get(&id(1), 1_000, 5_000), Some(None));
        assert_eq!(cache.get(&id(1), 5_999, 5_000), Some(None));
        assert_eq!(cache.get(&id(1), 6_000, 5_000), None, "served past the TTL");
        cache.insert(id(2), None, 1_000);
        cache.invalidate(&id(2));
        assert_eq!(cache.get(&id(2), 1_001, 5_000), None);
        assert_eq!(cache.get(&id(3), 1_000, 0), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let mut cache = RecordCache::default();
        for n in 0..RecordCache::MAX_MISSING + 10 {
            let key = KeyId::parse(&format!("{n:0>14}")).unwrap();
            cache.insert(key, None, n as i64);
        }
        assert_eq!(cache.len(), (0, RecordCache::MAX_MISSING));
    }

    /// Forged ids with valid checksums, as many as an attacker likes: real keys' records stay cached.
    #[test]
    fn a_flood_of_forged_ids_never_evicts_a_real_keys_record() {
        let mut cache = RecordCache::default();
        let real = KeyId::parse("REA1KEY0000001").unwrap();
        cache.insert(real, Some(record(real)), 0);
        for n in 0..50_000u32 {
            let forged = KeyId::parse(&format!("F{n:0>13}")).unwrap();
            cache.insert(forged, None, 1);
        }
        assert_eq!(cache.get(&real, 2, 5_000).map(|r| r.map(|r| r.id)), Some(Some(real)));
        assert_eq!(cache.len().1, RecordCache::MAX_MISSING);
    }

    /// The oldest entry goes first, and an id inserted again counts from its newest insertion.
    #[test]
    fn the_oldest_entry_is_evicted_first() {
        let mut cache = super::IsolateCache::<u32, u32>::with_cap(3);
        for n in 0..3 {
            cache.insert(n, n, i64::from(n));
        }
        cache.insert(0, 10, 5); // 0 is now the newest
        cache.insert(7, 7, 6);
        assert_eq!(cache.get(&1, 6, 100), None, "1 was the oldest");
        assert_eq!(cache.get(&0, 6, 100), Some(10));
        assert_eq!((cache.get(&2, 6, 100), cache.get(&7, 6, 100)), (Some(2), Some(7)));
        for n in 100..10_000 {
            cache.insert(n % 5, n, i64::from(n));
        }
        assert!(cache.len() <= 3);
    }

    fn record(id: KeyId) -> keygate_shared::model::KeyRecord {
        let text = format!(
            r#"{{"id":"{id}","organization":"org_a","project":"p","environment":"live","name":"k","owner":"usr_1","owner_organizations":["org_a"],"permissions":[],"state":"active","kind":"single","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","secret_hash":"{}"}}"#,
            "0".repeat(64)
        );
        serde_json::from_str(&text).expect("a record")
    }
}
