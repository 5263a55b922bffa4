//! The logic of a key's Durable Object, platform-free. The object owns what must be exact about one key: its
//! authoritative record (lifecycle, settings, secret hash), the rate-limit state, usage counters, the recent-errors
//! log, and the writes it still owes to others.
//!
//! Every change is applied here, in the one single-threaded object that owns the key, to the record as it is now:
//! two admins changing the same key at once are serialized, and none undoes the other (a rename racing a
//! deactivation leaves the key deactivated). Each committed change bumps the key's `revision` and is then written
//! behind, retried until it holds:
//! - to Workers KV (`kv_owed`), the gateway's read path;
//! - to the organization's object (`outbox`), as [`KeyEvent`]s carrying the key's index row and its audit event
//!   together, so the list, the audit log and the key never disagree for long, and the organization applies only
//!   newer revisions than it has.
//!
//! The runtime (`control/src/key_object.rs`, in the control plane's Worker; the gateway reaches it over a Durable
//! Object binding across scripts) persists what [`Changes`] names after each message, then delivers what is owed,
//! and sets an alarm to retry when a delivery fails.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::api::{
    AuditAction, AuditEvent, OrganizationUsage, RecentError, UpdateKeyRequest, UsagePoint, UsageReport, UsageSummary,
};
use crate::authz::{Denial, KeyAction, KeyFacts, may_act_on_key};
use crate::decision::{Access, CONSOLE_PROJECT, Claim, Code, Demand, Endpoint, decide};
use crate::hash::SecretHash;
use crate::key::KeyId;
use crate::model::{
    Environment, GraceSecret, HeldRole, KeyIdentity, KeyKind, KeyRecord, KeyState, LifecycleAction, Permission,
    RateLimitPolicy, Role, Transition, UsesLeft,
};
use crate::problem::Problem;
use crate::ratelimit::{Lease, RateDecision, RateLimitState};
use crate::time::Timestamp;

/// Recent errors kept per key: at most this many…
pub const MAX_ERRORS: usize = 100;
/// …and none older than 14 days.
pub const ERROR_RETENTION_MS: i64 = 14 * 86_400_000;
/// Events owed to the organization's object, at most. Past it, admin changes are refused (503) until the
/// organization's object has caught up, so a key can never run ahead of its audit log by more than this.
pub const MAX_OUTBOX: usize = 64;
/// A key's usage summary reaches its organization's list once usage has been quiet this long…
pub const USAGE_QUIET_MS: i64 = 2_000;
/// …or, under steady use, this long after the previous summary…
pub const USAGE_PUSH_MS: i64 = 30_000;
/// …and never more often than this: at most 12 summaries a minute per key, however it is used.
pub const USAGE_PUSH_MIN_MS: i64 = 5_000;

/// When a key's usage summary is due: after [`USAGE_QUIET_MS`] of quiet, or [`USAGE_PUSH_MS`] after the last one
/// under steady use, never sooner than [`USAGE_PUSH_MIN_MS`] after the last one; `None` when nothing changed.
pub fn usage_due(changed_at: Option<Timestamp>, pushed_at: Option<Timestamp>) -> Option<Timestamp> {
    let changed = changed_at?;
    let quiet = changed.plus_millis(USAGE_QUIET_MS);
    Some(match pushed_at {
        None => quiet,
        Some(pushed) => quiet.min(pushed.plus_millis(USAGE_PUSH_MS)).max(pushed.plus_millis(USAGE_PUSH_MIN_MS)),
    })
}
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Hourly usage is kept for 14 days (the daily chart is summed from it).
const USAGE_RETENTION_HOURS: i64 = 14 * 24;
/// Organizations a key's usage is attributed to, at most (the rest is counted under "other").
pub const MAX_USAGE_ORGANIZATIONS: usize = 64;

/// What a gateway isolate asks of a leased key's object with a request: a lease of up to `want` further admissions,
/// and the unused parts of the leases it held before, `(slot they were counted in, count)`, given back.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LeaseAsk {
    pub want: u32,
    #[serde(default)]
    pub give_back: Vec<(i64, u32)>,
}

impl LeaseAsk {
    /// Give-backs one ask carries, at most (the gateway sends at most its `MAX_OWED` and its current lease).
    pub const MAX_GIVE_BACK: usize = 8;
}

/// Who asks for an admin change, as the organization's object vouched for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user: String,
    pub role: Role,
    /// The organization the actor acts in: only its keys can be changed.
    pub organization: String,
}

/// An admin change to a key, applied to the record as it is when the message arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // One per admin request, travelling as JSON: a box would only add an allocation.
pub enum KeyChange {
    Revoke,
    Activate,
    Deactivate,
    /// A new secret (its hash: the plaintext never reaches the object), and how long the old one keeps working.
    Regenerate {
        secret_hash: SecretHash,
        #[serde(default)]
        grace_until: Option<Timestamp>,
    },
    /// Settings: absent fields stay as they are. `roles`: the organization's definitions of the roles
    /// `update.roles` names, as its object gave them when it authorized the change.
    Update {
        update: UpdateKeyRequest,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<HeldRole>,
        /// The organization's definition of the identity `update.identity` names.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<KeyIdentity>,
    },
}

impl KeyChange {
    fn action(&self) -> (KeyAction, LifecycleAction, AuditAction) {
        match self {
            Self::Revoke => (KeyAction::Revoke, LifecycleAction::Revoke, AuditAction::Revoke),
            Self::Activate => (KeyAction::Activate, LifecycleAction::Activate, AuditAction::Activate),
            Self::Deactivate => (KeyAction::Deactivate, LifecycleAction::Deactivate, AuditAction::Deactivate),
            Self::Regenerate { .. } => (KeyAction::Regenerate, LifecycleAction::Regenerate, AuditAction::Regenerate),
            Self::Update { update, .. } => {
                let rename_only = update.name.is_some()
                    && *update == UpdateKeyRequest { name: update.name.clone(), ..UpdateKeyRequest::default() };
                let audit = if rename_only { AuditAction::Rename } else { AuditAction::Update };
                (KeyAction::Edit, LifecycleAction::Edit, audit)
            }
        }
    }
}

/// A message to a key's object as it travels, with the id of the key it serves (the object writes KV under it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyEnvelope {
    pub id: KeyId,
    pub request: KeyRequest,
}

/// Re-check a request against the authoritative record and apply the rate limit (step 8); counts usage. Also
/// console sign-in (console tokens always consult their object).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Authorize {
    pub claim: Claim,
    pub endpoint: Endpoint,
    #[serde(default)]
    pub permission: Option<Permission>,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub customer: Option<String>,
    /// The client's address (`CF-Connecting-IP`), for keys with an IP allowlist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// The organizations the key's owner belongs to, when the request names another organization.
    #[serde(default)]
    pub memberships: Vec<String>,
    /// For leased rate limits: the lease the isolate asks for with this request.
    #[serde(default)]
    pub lease: Option<LeaseAsk>,
    pub now: Timestamp,
}

/// After the fact: requests an isolate counted for a key without a rate limit, and/or an error to log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub now: Timestamp,
    #[serde(default)]
    pub usage: Option<UsageBatch>,
    #[serde(default)]
    pub error: Option<RecentError>,
}

/// What the gateway sends a key's object: the two messages it has, in [`KeyRequest`]'s JSON (the gateway's tests go
/// through it), so the gateway carries no code to write the admin messages.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayRequest {
    Authorize(Authorize),
    Report(Report),
    Admit(Admit),
}

/// An identity's definition as it now is, for the keys that belong to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentitySync {
    pub id: String,
    #[serde(default)]
    pub now: Option<KeyIdentity>,
}

/// See [`KeyRequest::Admit`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Admit {
    pub policy: RateLimitPolicy,
    #[serde(default)]
    pub lease: Option<LeaseAsk>,
    pub now: Timestamp,
}

/// [`KeyEnvelope`] as the gateway writes it.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayEnvelope<'a> {
    pub id: KeyId,
    pub request: &'a GatewayRequest,
}

/// A message to a key's object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRequest {
    Authorize(Authorize),
    Report(Report),
    /// A new key (or console token). Refused if the object already holds a key.
    Create {
        record: KeyRecord,
        audit_id: String,
        now: Timestamp,
    },
    /// An admin change by `actor`, checked against the authoritative record.
    Change {
        actor: Actor,
        change: KeyChange,
        audit_id: String,
        now: Timestamp,
    },
    /// Forget the key (revoked or deactivated keys only).
    Delete {
        actor: Actor,
        audit_id: String,
        now: Timestamp,
    },
    /// Sign a console token out: only its own user may.
    EndSession {
        user: String,
        now: Timestamp,
    },
    /// The record, usage and recent errors, for `actor` (`None`: the console's own reads of its tokens).
    Snapshot {
        #[serde(default)]
        actor: Option<Actor>,
        now: Timestamp,
    },
    /// The runtime delivered the outbox through this sequence number.
    Delivered {
        through: u64,
    },
    /// The runtime wrote the record at this revision to KV.
    KvWritten {
        revision: u64,
    },
    /// The alarm: queue a usage summary if one is due.
    Tick {
        now: Timestamp,
    },
    /// From the organization's object: the definitions the key holds (its roles, its identity) as they now are,
    /// at the organization's sync revision `revision` (only a newer revision than the last one applied changes
    /// anything, so a late message never undoes a later one). A role the key holds takes the permissions given;
    /// `None`: the role is gone and the key drops it; a role the message does not name is left as it is. The
    /// identity is replaced if the key still belongs to it (`now: None`: it is gone, and the key leaves it).
    Sync {
        revision: u64,
        roles: Vec<(String, Option<Vec<Permission>>)>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<IdentitySync>,
    },
    /// An identity's shared rate limit: one admission (and a lease of more, for a leased policy), counted in the
    /// object named by the identity's limiter id, which holds no key.
    Admit(Admit),
}

/// Why a change was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRefusal {
    /// No such key (or not in the actor's organization: the same answer, so ids do not leak).
    NotFound,
    /// `Create` on an object that holds a key.
    Exists,
    Denied {
        denial: Denial,
    },
    Illegal {
        from: KeyState,
        action: LifecycleAction,
    },
    Invalid {
        problem: Problem,
    },
    /// Too many writes still owed to the organization's object: retry shortly.
    Backlog,
}

/// The object's answer to `Authorize`: the request's verdict on the authoritative record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authorization {
    pub code: Code,
    #[serde(default)]
    pub organization: Option<String>,
    #[serde(default)]
    pub rate: Option<(RateLimitPolicy, RateDecision)>,
    /// The authoritative record, when the caller proved it holds the key.
    #[serde(default)]
    pub record: Option<KeyRecord>,
    /// When the key was used before this request.
    #[serde(default)]
    pub previously_used_at: Option<Timestamp>,
    /// Admissions the isolate may make on its own (leased rate limits).
    #[serde(default)]
    pub lease: Option<Lease>,
    /// A usage-limited key's uses left after this request.
    #[serde(default)]
    pub remaining: Option<u64>,
}

impl Authorization {
    /// A refusal with `code` and nothing else.
    pub fn refused(code: Code) -> Self {
        Self {
            code,
            organization: None,
            rate: None,
            record: None,
            previously_used_at: None,
            lease: None,
            remaining: None,
        }
    }
}

/// The object's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyReply {
    Authorized(Authorization),
    Done,
    /// The change is stored: the record as it now is, and its revision. `settled`: KV and the organization have it
    /// too (set by the runtime after its first delivery attempt; when `false`, the object retries until they do).
    Committed {
        record: Option<KeyRecord>,
        revision: u64,
        #[serde(default)]
        settled: bool,
        /// A usage-limited key's uses left.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remaining: Option<u64>,
    },
    Refused {
        refusal: KeyRefusal,
    },
    Snapshot {
        record: Option<KeyRecord>,
        usage: UsageReport,
        summary: UsageSummary,
        errors: Vec<RecentError>,
        revision: u64,
    },
}

/// What the gateway reads of a key object's answer: the two answers its messages (`Authorize`, `Report`) get, in
/// [`KeyReply`]'s JSON (a test keeps them equal). The gateway carries no code to read the admin answers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // One per object call, read once: a box would only add an allocation.
pub enum GatewayReply {
    Authorized(Authorization),
    Done,
}

/// A key as its organization lists it: its settings and state, never its secret hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyIndexRow {
    pub id: KeyId,
    pub organization: String,
    pub owner: String,
    pub name: String,
    pub environment: Environment,
    #[serde(default)]
    pub project: Option<String>,
    pub permissions: Vec<Permission>,
    #[serde(default)]
    pub customers: Vec<String>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitPolicy>,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    pub state: KeyState,
    pub kind: KeyKind,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default)]
    pub revoked_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ips: Vec<crate::net::IpRange>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_organization_only: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<crate::meta::KeyMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<crate::model::UsageLimit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<HeldRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<KeyIdentity>,
    pub revision: u64,
}

impl KeyIndexRow {
    pub fn of(record: &KeyRecord, revision: u64) -> Self {
        Self {
            id: record.id,
            organization: record.organization.clone(),
            owner: record.owner.clone(),
            name: record.name.clone(),
            environment: record.environment,
            project: record.project.clone(),
            permissions: record.permissions.clone(),
            customers: record.customers.clone(),
            rate_limit: record.rate_limit,
            expires_at: record.expires_at,
            state: record.state,
            kind: record.kind,
            created_at: record.created_at,
            updated_at: record.updated_at,
            revoked_by: record.revoked_by.clone(),
            allowed_ips: record.allowed_ips.clone(),
            own_organization_only: record.own_organization_only,
            canary: record.canary,
            meta: record.meta.clone(),
            usage_limit: record.usage_limit,
            roles: record.roles.clone(),
            identity: record.identity.clone(),
            revision,
        }
    }
}

/// What a key's object tells its organization's object, in order. (Events live in a short outbox and travel as
/// JSON: boxing the large variant would buy nothing.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum KeyEvent {
    /// The key at `row.revision`, and the audit event of the change that made it (none for the first push of a
    /// key that predates the index).
    Committed {
        row: KeyIndexRow,
        #[serde(default)]
        audit: Option<AuditEvent>,
    },
    Deleted {
        id: KeyId,
        organization: String,
        owner: String,
        revision: u64,
        #[serde(default)]
        audit: Option<AuditEvent>,
    },
    /// The key's usage summary as of `at`.
    Usage {
        id: KeyId,
        organization: String,
        at: Timestamp,
        #[serde(default)]
        last_used_at: Option<Timestamp>,
        summary: UsageSummary,
        /// Requests made on behalf of each organization (`Keygate-Org`), in total.
        #[serde(default)]
        by_organization: BTreeMap<String, u64>,
    },
}

impl KeyEvent {
    pub fn organization(&self) -> &str {
        match self {
            Self::Committed { row, .. } => &row.organization,
            Self::Deleted { organization, .. } | Self::Usage { organization, .. } => organization,
        }
    }
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
        self.total = self.total.saturating_add(batch.total);
        self.last_used_at = Some(self.last_used_at.map_or(batch.last_at, |t| t.max(batch.last_at)));
        let hour = batch.last_at.millis().div_euclid(HOUR_MS);
        let slot = self.hourly.entry(hour).or_default();
        *slot = slot.saturating_add(batch.total);
        for (org, n) in &batch.by_organization {
            let key = if self.by_organization.contains_key(org) || self.by_organization.len() < MAX_USAGE_ORGANIZATIONS
            {
                org.clone()
            } else {
                String::from("other")
            };
            let slot = self.by_organization.entry(key).or_default();
            *slot = slot.saturating_add(*n);
        }
        let oldest = hour - USAGE_RETENTION_HOURS;
        self.hourly.retain(|&h, _| h > oldest);
    }

    pub fn summary(&self, now: Timestamp, recent_errors: usize) -> UsageSummary {
        let hour = now.millis().div_euclid(HOUR_MS);
        UsageSummary {
            remaining: None,
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
        let mut by_organization: Vec<OrganizationUsage> = self
            .by_organization
            .iter()
            .map(|(organization, requests)| OrganizationUsage {
                organization: organization.clone(),
                requests: *requests,
            })
            .collect();
        by_organization.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.organization.cmp(&b.organization)));
        UsageReport { hourly, daily, total: self.total, last_used_at: self.last_used_at, by_organization }
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

/// Events owed to the organization's object, numbered in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Outbox {
    pub next_seq: u64,
    pub events: VecDeque<(u64, KeyEvent)>,
    /// Failed deliveries in a row (the runtime's backoff).
    #[serde(default)]
    pub failures: u32,
}

impl Outbox {
    fn push(&mut self, event: KeyEvent) {
        // A newer usage summary replaces one that has not gone out yet.
        if matches!(event, KeyEvent::Usage { .. }) {
            self.events.retain(|(_, e)| !matches!(e, KeyEvent::Usage { .. }));
        }
        self.next_seq += 1;
        self.events.push_back((self.next_seq, event));
    }

    /// The backoff before the next delivery attempt: 1 s, 2 s, 4 s … at most a minute.
    pub fn retry_in_ms(&self) -> i64 {
        1_000i64.saturating_mul(1i64 << self.failures.min(6)).min(60_000)
    }
}

/// Everything a key's object persists, but the errors (kept apart: they change rarely and weigh more).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyObjectState {
    pub record: Option<KeyRecord>,
    pub rate: Option<RateLimitState>,
    /// A usage-limited key's count (see [`crate::model::UsageLimit`]).
    #[serde(default)]
    pub uses: Option<UsesLeft>,
    pub usage: Usage,
    /// Bumped by every committed change (creation is revision 1; a deletion leaves the revision behind).
    #[serde(default)]
    pub revision: u64,
    /// The record (or its absence) at `revision` is not yet in KV.
    #[serde(default)]
    pub kv_owed: bool,
    #[serde(default)]
    pub outbox: Outbox,
    /// Usage changed since the organization last heard of it.
    #[serde(default)]
    pub usage_dirty: bool,
    #[serde(default)]
    pub usage_pushed_at: Option<Timestamp>,
    /// When usage last changed (while `usage_dirty`).
    #[serde(default)]
    pub usage_changed_at: Option<Timestamp>,
    /// The organization's sync revision last applied ([`KeyRequest::Sync`]).
    #[serde(default)]
    pub sync_revision: u64,
    /// In an identity's limiter object (no record): the policy `rate` counts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<RateLimitPolicy>,
}

/// What a message changed, so the runtime writes and delivers only that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Changes {
    pub state: bool,
    pub errors: bool,
}

fn refused(refusal: KeyRefusal) -> (KeyReply, Changes) {
    (KeyReply::Refused { refusal }, Changes::default())
}

/// The audit detail of a change: what the key is called, and what changed.
fn audit_detail(before: &KeyRecord, after: &KeyRecord, change: &KeyChange) -> String {
    match change {
        KeyChange::Update { .. } if before.name != after.name => format!("{} → {}", before.name, after.name),
        KeyChange::Regenerate { grace_until: Some(until), .. } => {
            format!("{} (previous secret valid until {until})", after.name)
        }
        KeyChange::Activate => match &before.revoked_by {
            Some(by) if *by != after.owner => format!("{} (revoked by {by})", after.name),
            _ => after.name.clone(),
        },
        _ => after.name.clone(),
    }
}

impl KeyObjectState {
    /// Handles one message. `errors` is the recent-errors log, newest last.
    pub fn handle(&mut self, errors: &mut VecDeque<RecentError>, request: KeyRequest) -> (KeyReply, Changes) {
        match request {
            KeyRequest::Authorize(Authorize {
                claim,
                endpoint,
                permission,
                organization,
                customer,
                client_ip,
                memberships,
                lease,
                now,
            }) => {
                let demand = Demand {
                    access: permission.as_ref().map_or(Access::Open, Access::Permission),
                    organization: organization.as_deref(),
                    customer: customer.as_deref(),
                    client_ip: client_ip.as_deref(),
                };
                self.authorize(&claim, &endpoint, demand, &memberships, lease, now)
            }
            KeyRequest::Report(Report { now, usage, error }) => {
                let counted = usage.is_some();
                if let Some(batch) = &usage {
                    self.usage.add(batch);
                    self.usage_dirty = true;
                    self.usage_changed_at = Some(now);
                }
                let logged = error.is_some();
                if let Some(e) = error {
                    log_error(errors, e, now);
                }
                (KeyReply::Done, Changes { state: counted, errors: logged })
            }
            KeyRequest::Create { record, audit_id, now } => {
                if self.record.is_some() {
                    return refused(KeyRefusal::Exists);
                }
                if self.outbox.events.len() >= MAX_OUTBOX {
                    return refused(KeyRefusal::Backlog);
                }
                let action = if record.project.as_deref() == Some(CONSOLE_PROJECT) {
                    AuditAction::CreateConsoleToken
                } else {
                    AuditAction::Create
                };
                let audit = AuditEvent {
                    id: audit_id,
                    at: now,
                    organization: record.organization.clone(),
                    actor: Some(record.owner.clone()),
                    actor_name: None,
                    action,
                    target: Some(record.id.to_string()),
                    detail: record.name.clone(),
                };
                self.rate = None;
                self.uses = record.usage_limit.map(|limit| UsesLeft::start(&limit, now));
                self.record = Some(record);
                self.commit(Some(audit))
            }
            KeyRequest::Change { actor, change, audit_id, now } => self.change(&actor, change, audit_id, now),
            KeyRequest::Delete { actor, audit_id, now } => {
                let Some(record) = self.record.as_ref().filter(|r| r.organization == actor.organization) else {
                    return refused(KeyRefusal::NotFound);
                };
                if record.project.as_deref() == Some(CONSOLE_PROJECT) {
                    return refused(KeyRefusal::NotFound);
                }
                let facts = KeyFacts { owner: &record.owner, revoked_by: record.revoked_by.as_deref() };
                if let Err(denial) = may_act_on_key(actor.role, &actor.user, facts, KeyAction::Delete) {
                    return refused(KeyRefusal::Denied { denial });
                }
                if let Err(e) = record.state.apply(LifecycleAction::Delete) {
                    return refused(KeyRefusal::Illegal { from: e.from, action: e.action });
                }
                if self.outbox.events.len() >= MAX_OUTBOX {
                    return refused(KeyRefusal::Backlog);
                }
                let audit = AuditEvent {
                    id: audit_id,
                    at: now,
                    organization: record.organization.clone(),
                    actor: Some(actor.user.clone()),
                    actor_name: None,
                    action: AuditAction::Delete,
                    target: Some(record.id.to_string()),
                    detail: record.name.clone(),
                };
                errors.clear();
                self.delete(Some(audit))
            }
            KeyRequest::EndSession { user, now: _ } => {
                match &self.record {
                    Some(r) if r.project.as_deref() == Some(CONSOLE_PROJECT) && r.owner == user => {}
                    _ => return refused(KeyRefusal::NotFound),
                }
                errors.clear();
                self.delete(None)
            }
            KeyRequest::Snapshot { actor, now } => {
                if let (Some(actor), Some(record)) = (&actor, &self.record) {
                    let facts = KeyFacts { owner: &record.owner, revoked_by: record.revoked_by.as_deref() };
                    let hidden = record.organization != actor.organization
                        || record.project.as_deref() == Some(CONSOLE_PROJECT)
                        || may_act_on_key(actor.role, &actor.user, facts, KeyAction::View).is_err();
                    if hidden {
                        return refused(KeyRefusal::NotFound);
                    }
                }
                prune_errors(errors, now);
                let reply = KeyReply::Snapshot {
                    record: self.record.clone(),
                    usage: self.usage.report(now),
                    summary: self.summary(now, errors.len()),
                    errors: errors.iter().rev().cloned().collect(),
                    revision: self.revision,
                };
                (reply, Changes::default())
            }
            KeyRequest::Delivered { through } => {
                let before = self.outbox.events.len();
                self.outbox.events.retain(|(seq, _)| *seq > through);
                self.outbox.failures = 0;
                (KeyReply::Done, Changes { state: before != self.outbox.events.len(), errors: false })
            }
            KeyRequest::KvWritten { revision } => {
                let done = self.kv_owed && revision == self.revision;
                if done {
                    self.kv_owed = false;
                }
                (KeyReply::Done, Changes { state: done, errors: false })
            }
            KeyRequest::Tick { now } => {
                prune_errors(errors, now);
                let queued = self.queue_usage(now, errors.len());
                (KeyReply::Done, Changes { state: queued, errors: false })
            }
            KeyRequest::Sync { revision, roles, identity } => self.sync(revision, &roles, identity.as_ref()),
            KeyRequest::Admit(Admit { policy, lease, now }) => self.admit(policy, lease, now),
        }
    }

    /// Applies the organization's roles as of `revision` to the record (see [`KeyRequest::Sync`]). A change is
    /// committed like any other (KV and the organization's index learn it), without an audit event of its own: the
    /// organization's log holds the role change that caused it.
    fn sync(
        &mut self,
        revision: u64,
        roles: &[(String, Option<Vec<Permission>>)],
        identity: Option<&IdentitySync>,
    ) -> (KeyReply, Changes) {
        let Some(record) = self.record.as_ref().filter(|_| revision > self.sync_revision) else {
            return (KeyReply::Done, Changes::default());
        };
        if self.outbox.events.len() >= MAX_OUTBOX {
            return refused(KeyRefusal::Backlog);
        }
        let held: Vec<HeldRole> = record
            .roles
            .iter()
            .filter_map(|role| match roles.iter().find(|(name, _)| *name == role.name) {
                None => Some(role.clone()),
                Some((_, None)) => None,
                Some((name, Some(permissions))) => {
                    Some(HeldRole { name: name.clone(), permissions: permissions.clone() })
                }
            })
            .collect();
        let identity = match (identity, &record.identity) {
            (Some(sync), Some(current)) if sync.id == current.id => sync.now.clone(),
            _ => record.identity.clone(),
        };
        self.sync_revision = revision;
        if held == record.roles && identity == record.identity {
            return (KeyReply::Done, Changes { state: true, errors: false });
        }
        let mut next = record.clone();
        next.roles = held;
        next.identity = identity;
        self.record = Some(next);
        self.commit(None)
    }

    /// One admission of an identity's shared limit (see [`KeyRequest::Admit`]). An object that holds a key never
    /// counts one. A changed policy starts a fresh count.
    fn admit(&mut self, policy: RateLimitPolicy, ask: Option<LeaseAsk>, now: Timestamp) -> (KeyReply, Changes) {
        if self.record.is_some() {
            return (KeyReply::Authorized(Authorization::refused(Code::NotFound)), Changes::default());
        }
        if self.limit != Some(policy) {
            self.limit = Some(policy);
            self.rate = None;
        }
        let state = self.rate.get_or_insert_with(|| RateLimitState::new(&policy));
        let mut want = 0;
        if let Some(ask) = ask.as_ref().filter(|_| policy.leased()) {
            for &(slot, unused) in ask.give_back.iter().take(LeaseAsk::MAX_GIVE_BACK) {
                state.give_back(&policy, slot, unused);
            }
            want = ask.want;
        }
        let (decision, lease) = state.check_and_lease(&policy, now, want);
        let mut reply = Authorization::refused(if decision.allowed { Code::Valid } else { Code::RateLimited });
        reply.rate = Some((policy, decision));
        reply.lease = lease;
        (KeyReply::Authorized(reply), Changes { state: true, errors: false })
    }

    /// A usage-limited key's count as of `now` (refilled if a new period began); `None` without a usage limit.
    fn uses_at(&self, now: Timestamp) -> Option<UsesLeft> {
        let limit = self.record.as_ref()?.usage_limit?;
        Some(self.uses.unwrap_or_else(|| UsesLeft::start(&limit, now)).at(&limit, now))
    }

    /// The key's usage summary, with a usage-limited key's uses left as of `now`.
    pub fn summary(&self, now: Timestamp, recent_errors: usize) -> UsageSummary {
        UsageSummary { remaining: self.uses_at(now).map(|u| u.remaining), ..self.usage.summary(now, recent_errors) }
    }

    /// Queues a usage summary for the organization when usage changed and the last one is old enough.
    pub fn queue_usage(&mut self, now: Timestamp, recent_errors: usize) -> bool {
        let Some(record) = &self.record else { return false };
        let due = usage_due(self.usage_changed_at, self.usage_pushed_at).is_some_and(|at| now >= at);
        if !self.usage_dirty || !due || record.project.as_deref() == Some(CONSOLE_PROJECT) {
            return false;
        }
        self.outbox.push(KeyEvent::Usage {
            id: record.id,
            organization: record.organization.clone(),
            at: now,
            last_used_at: self.usage.last_used_at,
            summary: self.summary(now, recent_errors),
            by_organization: self.usage.by_organization.clone(),
        });
        self.usage_dirty = false;
        self.usage_pushed_at = Some(now);
        true
    }

    /// Whether everything committed is in KV and at the organization's object.
    pub fn settled(&self) -> bool {
        !self.kv_owed && !self.outbox.events.iter().any(|(_, e)| !matches!(e, KeyEvent::Usage { .. }))
    }

    /// When the runtime should next wake the object: a failed delivery to retry, or a usage summary to send.
    pub fn next_wake(&self, now: Timestamp) -> Option<Timestamp> {
        let retry =
            (!self.outbox.events.is_empty() || self.kv_owed).then(|| now.plus_millis(self.outbox.retry_in_ms()));
        let usage = if self.usage_dirty { usage_due(self.usage_changed_at, self.usage_pushed_at) } else { None };
        match (retry, usage) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn commit(&mut self, audit: Option<AuditEvent>) -> (KeyReply, Changes) {
        // Uses left as of the change (refilled if a new period began).
        let at = audit.as_ref().map(|a| a.at);
        self.revision += 1;
        self.kv_owed = true;
        if let Some(record) = &self.record
            && record.project.as_deref() != Some(CONSOLE_PROJECT)
        {
            self.outbox.push(KeyEvent::Committed { row: KeyIndexRow::of(record, self.revision), audit });
        }
        let left = match at {
            Some(now) => self.uses_at(now),
            None => self.uses.filter(|_| self.record.as_ref().is_some_and(|r| r.usage_limit.is_some())),
        };
        let remaining = left.map(|u| u.remaining);
        let reply =
            KeyReply::Committed { record: self.record.clone(), revision: self.revision, settled: false, remaining };
        (reply, Changes { state: true, errors: false })
    }

    fn delete(&mut self, audit: Option<AuditEvent>) -> (KeyReply, Changes) {
        let Some(record) = self.record.take() else { return refused(KeyRefusal::NotFound) };
        self.revision += 1;
        self.kv_owed = true;
        self.rate = None;
        self.usage = Usage::default();
        self.usage_dirty = false;
        self.outbox.events.retain(|(_, e)| !matches!(e, KeyEvent::Usage { .. }));
        if record.project.as_deref() != Some(CONSOLE_PROJECT) {
            self.outbox.push(KeyEvent::Deleted {
                id: record.id,
                organization: record.organization.clone(),
                owner: record.owner.clone(),
                revision: self.revision,
                audit,
            });
        }
        let reply = KeyReply::Committed { record: None, revision: self.revision, settled: false, remaining: None };
        (reply, Changes { state: true, errors: true })
    }

    fn change(&mut self, actor: &Actor, change: KeyChange, audit_id: String, now: Timestamp) -> (KeyReply, Changes) {
        let Some(record) = self.record.as_ref().filter(|r| r.organization == actor.organization) else {
            return refused(KeyRefusal::NotFound);
        };
        // Console tokens change only through sessions.
        if record.project.as_deref() == Some(CONSOLE_PROJECT) {
            return refused(KeyRefusal::NotFound);
        }
        let (key_action, lifecycle, audit_action) = change.action();
        let facts = KeyFacts { owner: &record.owner, revoked_by: record.revoked_by.as_deref() };
        if let Err(denial) = may_act_on_key(actor.role, &actor.user, facts, key_action) {
            return refused(KeyRefusal::Denied { denial });
        }
        let state = match record.state.apply(lifecycle) {
            Ok(Transition::To(state)) => state,
            Ok(Transition::Deleted) => return refused(KeyRefusal::NotFound),
            Err(e) => return refused(KeyRefusal::Illegal { from: e.from, action: e.action }),
        };
        if self.outbox.events.len() >= MAX_OUTBOX {
            return refused(KeyRefusal::Backlog);
        }
        let mut next = match &change {
            KeyChange::Update { update, roles, identity } => {
                match update.apply_to(record, roles, identity.as_ref(), now) {
                    Ok(next) => next,
                    Err(problem) => return refused(KeyRefusal::Invalid { problem }),
                }
            }
            _ => record.clone(),
        };
        next.state = state;
        next.updated_at = now;
        match &change {
            KeyChange::Revoke => next.revoked_by = Some(actor.user.clone()),
            KeyChange::Activate | KeyChange::Deactivate => next.revoked_by = None,
            KeyChange::Regenerate { secret_hash, grace_until } => {
                next.grace = grace_until.map(|until| GraceSecret { secret_hash: next.secret_hash, until });
                next.secret_hash = *secret_hash;
            }
            KeyChange::Update { .. } => {}
        }
        // A changed policy starts a fresh limiter; the same policy keeps its count.
        if next.rate_limit != record.rate_limit {
            self.rate = None;
        }
        // Naming a usage limit (even the same one) starts its count again: that is how uses are topped up.
        if let KeyChange::Update { update, .. } = &change
            && update.usage_limit.is_some()
        {
            self.uses = next.usage_limit.map(|limit| UsesLeft::start(&limit, now));
            // The organization's list shows the new count with the next usage summary.
            self.usage_dirty = true;
            self.usage_changed_at = Some(now);
        }
        let audit = AuditEvent {
            id: audit_id,
            at: now,
            organization: next.organization.clone(),
            actor: Some(actor.user.clone()),
            actor_name: None,
            action: audit_action,
            target: Some(next.id.to_string()),
            detail: audit_detail(record, &next, &change),
        };
        self.record = Some(next);
        self.commit(Some(audit))
    }

    fn authorize(
        &mut self,
        claim: &Claim,
        endpoint: &Endpoint,
        demand: Demand<'_>,
        memberships: &[String],
        ask: Option<LeaseAsk>,
        now: Timestamp,
    ) -> (KeyReply, Changes) {
        let previously_used_at = self.usage.last_used_at;
        let refused = |code| KeyReply::Authorized(Authorization::refused(code));
        // What an isolate did not use of its last lease stops counting, whatever this request gets.
        let mut changed = false;
        if let (Some(ask), Some(policy), Some(state)) =
            (ask.as_ref(), self.record.as_ref().and_then(|r| r.rate_limit), self.rate.as_mut())
        {
            for &(slot, unused) in ask.give_back.iter().take(LeaseAsk::MAX_GIVE_BACK) {
                state.give_back(&policy, slot, unused);
                changed = true;
            }
        }
        let grant = match decide(claim, self.record.as_ref(), endpoint, demand, memberships, now) {
            Ok(grant) => grant,
            Err(code) => return (refused(code), Changes { state: changed, errors: false }),
        };
        let Some(record) = self.record.as_ref() else { return (refused(Code::NotFound), Changes::default()) };
        // Uses left (refilled when a new period began): checked before the rate limit, spent only on a pass.
        let uses = self.uses_at(now);
        if let Some(left) = uses.filter(|u| u.remaining == 0) {
            changed |= self.uses != Some(left);
            self.uses = Some(left);
            let mut exhausted = Authorization::refused(Code::UsageExceeded);
            exhausted.remaining = Some(0);
            return (KeyReply::Authorized(exhausted), Changes { state: changed, errors: false });
        }
        // A usage-limited key is never leased: every use is counted here.
        let want = match (record.rate_limit, &ask) {
            (Some(policy), Some(ask)) if policy.leased() && uses.is_none() => ask.want,
            _ => 0,
        };
        let mut lease = None;
        let rate = record.rate_limit.map(|policy| {
            let state = self.rate.get_or_insert_with(|| RateLimitState::new(&policy));
            let (decision, granted) = state.check_and_lease(&policy, now, want);
            lease = granted;
            (policy, decision)
        });
        let allowed = rate.as_ref().is_none_or(|(_, d)| d.allowed);
        let record = Some(record.clone());
        let mut remaining = None;
        if allowed {
            self.usage.count(now, &grant.organization);
            self.usage_dirty = true;
            self.usage_changed_at = Some(now);
            if let Some(mut left) = uses {
                left.remaining -= 1;
                remaining = Some(left.remaining);
                self.uses = Some(left);
            }
        }
        let code = if allowed { Code::Valid } else { Code::RateLimited };
        let changes = Changes { state: allowed || rate.is_some() || changed, errors: false };
        let reply = KeyReply::Authorized(Authorization {
            code,
            organization: Some(grant.organization),
            rate,
            record,
            previously_used_at,
            lease,
            remaining,
        });
        (reply, changes)
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
    errors.push_back(error.redacted().bounded());
    prune_errors(errors, now);
}
