//! Table-driven tests of the core. They run natively (`cargo test`) and as wasm under node
//! (`cargo test --target wasm32-unknown-unknown`), except the property tests, which are native only.

mod authz;
mod credential;
mod decision;
mod key;
mod keyobject;
mod model;
mod net;
mod path;
mod preview;
mod privilege;
mod ratelimit;
mod requestlog;
mod routes;
mod scan;
mod simulate;
mod time;
mod webhook;

#[cfg(not(target_arch = "wasm32"))]
mod properties;

use crate::hash::SecretHash;
use crate::key::ApiKey;
use crate::model::{Environment, KeyKind, KeyRecord, KeyState, Permission};
use crate::time::Timestamp;

/// The example key of DESIGN.md, whose checksum `3vds64` is known to be right.
pub const EXAMPLE: &str = "acme-shop:line-3:kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64";

pub const NOW: Timestamp = Timestamp::from_secs(1_795_000_000);

pub fn perms(list: &[&str]) -> Vec<Permission> {
    list.iter().map(|p| Permission::try_from(*p).unwrap()).collect()
}

/// A stored record for `key`: active, organization `org_a` (its owner is also in `org_b`: [`memberships`]).
pub fn record_for(key: &ApiKey) -> KeyRecord {
    KeyRecord {
        id: key.id,
        organization: "org_a".into(),
        project: Some("acme-shop".into()),
        environment: key.environment,
        name: "Main Website Integration".into(),
        owner: "usr_1".into(),
        permissions: perms(&["data:read", "telemetry:write"]),
        customers: vec![],
        rate_limit: None,
        expires_at: None,
        state: KeyState::Active,
        kind: KeyKind::Single,
        created_at: NOW.plus_secs(-3600),
        updated_at: NOW.plus_secs(-3600),
        secret_hash: SecretHash::of(key),
        grace: None,
        revoked_by: None,
        allowed_ips: vec![],
        own_organization_only: false,
        canary: false,
        meta: None,
        usage_limit: None,
        roles: vec![],
        identity: None,
    }
}

/// The organizations the owner of [`record_for`]'s keys belongs to.
pub fn memberships() -> Vec<String> {
    vec!["org_a".into(), "org_b".into()]
}

pub fn example() -> ApiKey {
    EXAMPLE.parse().unwrap()
}

pub fn fresh(env: Environment) -> ApiKey {
    ApiKey::generate(env).unwrap()
}
