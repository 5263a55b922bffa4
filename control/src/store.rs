//! The control plane's storage, behind one small trait: the Durable Objects (organizations', users', keys' and the
//! bootstrap flag) and KV in the Worker (`runtime.rs`), in-memory objects running the same logic over an in-memory
//! SQLite in the native tests.

use std::fmt;

use keygate_shared::key::KeyId;
use keygate_shared::keyobject::{KeyReply, KeyRequest};
use keygate_shared::model::KeyRecord;

use crate::bootstrap::{BootstrapReply, BootstrapRequest};
use crate::org::{OrgRefusal, OrgReply, OrgRequest};
use crate::user::{UserReply, UserRequest};

/// Storage did not answer. The handlers answer 503 with `Retry-After`; nothing is decided on a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An organization's answer: what it did, or why it refused (nothing changed).
pub type OrgAnswer = Result<OrgReply, OrgRefusal>;

#[allow(async_fn_in_trait)] // Workers futures are not Send, and need not be.
pub trait Stores {
    /// A key's record from KV: the cheap first look at a console token (unknown ids stop here, touching no object).
    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError>;
    async fn key(&self, id: &KeyId, request: KeyRequest) -> Result<KeyReply, StoreError>;
    async fn org(&self, organization: &str, request: OrgRequest) -> Result<OrgAnswer, StoreError>;
    async fn user(&self, user: &str, request: UserRequest) -> Result<UserReply, StoreError>;
    async fn bootstrap(&self, request: BootstrapRequest) -> Result<BootstrapReply, StoreError>;
    /// Counts a failed sign-in from `source`; `true` when the source is over its limit for the current minute.
    async fn sign_in_failed(&self, source: &str) -> bool;
}
