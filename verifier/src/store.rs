//! Storage behind one small trait, implemented over Workers KV and Durable Objects in `runtime.rs` and in memory here
//! for native tests (the end-to-end suite exercises the real runtime).

use std::fmt;

use keygate_shared::key::KeyId;
use keygate_shared::model::KeyRecord;

use crate::directory::{DirectoryReply, DirectoryRequest};
use crate::keyobject::{ObjectReply, ObjectRequest};

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
    async fn object(&self, id: &KeyId, request: &ObjectRequest) -> Result<ObjectReply, StoreError>;
    /// A message to the directory (organizations, users, projects, the key index, the audit log).
    async fn directory(&self, request: &DirectoryRequest) -> Result<DirectoryReply, StoreError>;
}

#[cfg(test)]
pub mod memory {
    //! In-memory stores with the objects' real logic, and switches to make storage fail.

    use std::cell::RefCell;
    use std::collections::{BTreeMap, VecDeque};

    use keygate_shared::api::RecentError;

    use super::*;
    use crate::directory::Directory;
    use crate::keyobject::ObjectState;

    #[derive(Debug, Default)]
    pub struct Memory {
        pub kv: RefCell<BTreeMap<KeyId, KeyRecord>>,
        pub objects: RefCell<BTreeMap<KeyId, (ObjectState, VecDeque<RecentError>)>>,
        pub directory: RefCell<Directory>,
        pub fail_kv: RefCell<bool>,
        pub fail_objects: RefCell<bool>,
        pub kv_reads: RefCell<u32>,
    }

    impl Stores for Memory {
        async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
            *self.kv_reads.borrow_mut() += 1;
            if *self.fail_kv.borrow() {
                return Err(StoreError("kv down".into()));
            }
            Ok(self.kv.borrow().get(id).cloned())
        }

        async fn object(&self, id: &KeyId, request: &ObjectRequest) -> Result<ObjectReply, StoreError> {
            if *self.fail_objects.borrow() {
                return Err(StoreError("object down".into()));
            }
            let mut objects = self.objects.borrow_mut();
            let (state, errors) = objects.entry(*id).or_default();
            // Like the runtime: an object with no record yet loads it from KV.
            if state.record.is_none() {
                state.record = self.kv.borrow().get(id).cloned();
            }
            let (reply, changes) = state.handle(errors, request.clone());
            if changes.kv {
                match &state.record {
                    Some(r) => self.kv.borrow_mut().insert(*id, r.clone()),
                    None => self.kv.borrow_mut().remove(id),
                };
            }
            Ok(reply)
        }

        async fn directory(&self, request: &DirectoryRequest) -> Result<DirectoryReply, StoreError> {
            if *self.fail_objects.borrow() {
                return Err(StoreError("directory down".into()));
            }
            Ok(self.directory.borrow_mut().handle(request.clone()).0)
        }
    }
}

/// The per-isolate cache of key records read from KV. An entry lives `ttl_ms`: together with KV's propagation that
/// bounds how late a revocation reaches keys without a rate limit (see the README's "Revocation bound").
#[derive(Debug, Default)]
pub struct RecordCache {
    entries: std::collections::HashMap<KeyId, (i64, Option<KeyRecord>)>,
}

impl RecordCache {
    /// At most this many records are kept; when full, expired entries are dropped, then the oldest.
    pub const MAX_ENTRIES: usize = 10_000;

    /// The cached answer for `id` (a record or a known absence) if it is younger than `ttl_ms`.
    pub fn get(&self, id: &KeyId, now_ms: i64, ttl_ms: i64) -> Option<Option<KeyRecord>> {
        self.entries.get(id).filter(|(at, _)| now_ms - at < ttl_ms).map(|(_, r)| r.clone())
    }

    pub fn insert(&mut self, id: KeyId, record: Option<KeyRecord>, now_ms: i64, ttl_ms: i64) {
        if self.entries.len() >= Self::MAX_ENTRIES {
            self.entries.retain(|_, (at, _)| now_ms - *at < ttl_ms);
            if self.entries.len() >= Self::MAX_ENTRIES
                && let Some(oldest) = self.entries.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(id, (now_ms, record));
    }

    /// This isolate changed the key: forget what it read.
    pub fn invalidate(&mut self, id: &KeyId) {
        self.entries.remove(id);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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
        cache.insert(id(1), None, 1_000, 5_000);
        assert_eq!(cache.get(&id(1), 1_000, 5_000), Some(None));
        assert_eq!(cache.get(&id(1), 5_999, 5_000), Some(None));
        assert_eq!(cache.get(&id(1), 6_000, 5_000), None, "served past the TTL");
        cache.insert(id(2), None, 1_000, 5_000);
        cache.invalidate(&id(2));
        assert_eq!(cache.get(&id(2), 1_001, 5_000), None);
        assert_eq!(cache.get(&id(3), 1_000, 0), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let mut cache = RecordCache::default();
        for n in 0..RecordCache::MAX_ENTRIES + 10 {
            let key = KeyId::parse(&format!("{n:0>14}")).unwrap();
            cache.insert(key, None, n as i64, 1_000_000);
        }
        assert_eq!(cache.len(), RecordCache::MAX_ENTRIES);
    }
}
