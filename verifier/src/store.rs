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
