//! The request log's consumer: the gateway's queue messages (`keygate_shared::requestlog::LogBatch`), grouped by the
//! organization that owns each line's key and stored in that organization's object (one call per organization
//! per batch of messages, whatever the number of isolates that sent them).

use std::collections::BTreeMap;

use keygate_shared::requestlog::{LogBatch, LoggedRequest};
use keygate_shared::time::Timestamp;

use crate::org::{OrgReply, OrgRequest};
use crate::store::Stores;

/// A queue message's body as the gateway sends it; `None` for a body that is not one (it is dropped: a message that
/// can never be read must not be retried forever).
pub fn parse(body: &str) -> Option<LogBatch> {
    serde_json::from_str(body).ok()
}

/// The lines of `batches` by the organization that owns their keys.
pub fn by_organization(batches: &[LogBatch]) -> BTreeMap<String, Vec<LoggedRequest>> {
    let mut out: BTreeMap<String, Vec<LoggedRequest>> = BTreeMap::new();
    for (organization, line) in batches.iter().flat_map(|b| &b.lines) {
        out.entry(organization.clone()).or_default().push(line.clone());
    }
    out
}

/// Stores every line; answers the organizations whose object did not take theirs, and why (their messages are
/// retried: lines already stored are ignored the second time).
pub async fn store<S: Stores>(stores: &S, batches: &[LogBatch], now: Timestamp) -> BTreeMap<String, String> {
    let mut failed = BTreeMap::new();
    for (organization, lines) in by_organization(batches) {
        match stores.org(&organization, OrgRequest::LogRequests { lines, now }).await {
            Ok(Ok(OrgReply::Done)) => {}
            Ok(other) => {
                failed.insert(organization, format!("{other:?}"));
            }
            Err(e) => {
                failed.insert(organization, e.to_string());
            }
        }
    }
    failed
}
