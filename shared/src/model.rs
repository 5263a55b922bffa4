//! The domain model: organizations, projects, users and roles, permissions, rate-limit policies, and the key record
//! with its lifecycle.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::hash::SecretHash;
use crate::key::{KeyId, is_project_slug};
use crate::time::Timestamp;

/// Where a key works. A key works only against an endpoint of its own environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Production.
    Live,
    /// Staging.
    Test,
    /// Development.
    Dev,
}

impl Environment {
    pub const ALL: [Environment; 3] = [Environment::Live, Environment::Test, Environment::Dev];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
            Self::Dev => "dev",
        }
    }

    /// The name people know it by.
    pub const fn title(self) -> &'static str {
        match self {
            Self::Live => "Production",
            Self::Test => "Staging",
            Self::Dev => "Development",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownEnvironment;

impl FromStr for Environment {
    type Err = UnknownEnvironment;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(Self::Live),
            "test" => Ok(Self::Test),
            "dev" => Ok(Self::Dev),
            _ => Err(UnknownEnvironment),
        }
    }
}

/// A member's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    /// Owners and admins see every key of the organization and may revoke or deactivate any of them.
    pub const fn manages_all_keys(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }

    /// Owners and admins invite members and create projects.
    pub const fn manages_organization(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

/// Who may create keys in an organization. Instrumental lets an organization keep key creation to its owners and
/// admins; by default every member creates keys of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyCreation {
    #[default]
    AllMembers,
    OwnersAndAdmins,
}

impl KeyCreation {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AllMembers => "all_members",
            Self::OwnersAndAdmins => "owners_and_admins",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::AllMembers, Self::OwnersAndAdmins].into_iter().find(|k| k.as_str() == text)
    }
}

/// An organization's settings (owners change them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrganizationSettings {
    #[serde(default)]
    pub key_creation: KeyCreation,
    /// What happens when one of the organization's keys is reported leaked (`POST /v1/leaks`).
    #[serde(default)]
    pub leak_response: crate::leak::LeakResponse,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Project {
    pub id: String,
    pub organization: String,
    /// `[a-z0-9-]{1,63}`: what keys may carry as their prefix label.
    pub slug: String,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Membership {
    pub organization: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub memberships: Vec<Membership>,
    pub created_at: Timestamp,
}

impl User {
    pub fn role_in(&self, organization: &str) -> Option<Role> {
        self.memberships.iter().find(|m| m.organization == organization).map(|m| m.role)
    }
}

/// A permission such as `telemetry:write`, `customers:read` or `admin:*`: two or more `:`-separated segments of
/// `[a-z0-9_.-]`, the last of which may be `*` to grant every permission under the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Permission(String);

pub const PERMISSION_MAX_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPermission;

impl fmt::Display for InvalidPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("permissions look like `resource:action` (lowercase letters, digits, `_`, `.`, `-`; `*` last)")
    }
}

impl std::error::Error for InvalidPermission {}

impl TryFrom<&str> for Permission {
    type Error = InvalidPermission;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        if s.is_empty() || s.len() > PERMISSION_MAX_LEN {
            return Err(InvalidPermission);
        }
        let segments: Vec<&str> = s.split(':').collect();
        let last = segments.len() - 1;
        let segment_ok = |(i, seg): (usize, &&str)| {
            (i == last && **seg == *"*")
                || (!seg.is_empty()
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')))
        };
        if segments.len() < 2 || segments[0] == "*" || !segments.iter().enumerate().all(segment_ok) {
            return Err(InvalidPermission);
        }
        Ok(Self(s.to_owned()))
    }
}

impl FromStr for Permission {
    type Err = InvalidPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s)
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::try_from(&*s).map_err(serde::de::Error::custom)
    }
}

impl Permission {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether holding `self` grants `required`: equal, or `self` is `prefix:*` and `required` lies under `prefix`.
    pub fn grants(&self, required: &Permission) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => required.0.starts_with(prefix),
            None => self.0 == required.0,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A per-key rate limit: at most `requests` in any window of `window_seconds`, and, when `burst` is set, at most
/// `burst` back to back (refilled at `requests / window_seconds`). See [`crate::ratelimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RateLimitPolicy {
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1_000_000)))]
    pub requests: u32,
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 86_400)))]
    pub window_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1_000_000)))]
    pub burst: Option<u32>,
    #[serde(default, skip_serializing_if = "RateLimitMode::is_leased")]
    pub mode: RateLimitMode,
}

/// Unkey's `remaining`: a key good for so many uses, optionally refilled at the start of every UTC day or month.
/// The count is kept exactly in the key's Durable Object (every request of such a key asks it); a request refused
/// for any reason uses nothing, and an exhausted key answers 429 `USAGE_EXCEEDED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UsageLimit {
    /// Uses the key has when the limit is set (a change of the limit starts the count again from here).
    pub uses: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill: Option<Refill>,
}

/// Back to `amount` uses at the start of every `interval` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Refill {
    pub amount: u64,
    pub interval: RefillInterval,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RefillInterval {
    Daily,
    Monthly,
}

impl RefillInterval {
    /// The start of the refill period `at` falls in.
    pub fn period_start(self, at: Timestamp) -> Timestamp {
        match self {
            Self::Daily => at.day_start(),
            Self::Monthly => at.month_start(),
        }
    }
}

/// A usage-limited key's count, in its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UsesLeft {
    pub remaining: u64,
    /// The refill period the count belongs to (`None`: never refilled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Timestamp>,
}

impl UsesLeft {
    /// The count of a limit just set at `now`.
    pub fn start(limit: &UsageLimit, now: Timestamp) -> Self {
        Self { remaining: limit.uses, period: limit.refill.map(|r| r.interval.period_start(now)) }
    }

    /// The count at `now`: refilled to the refill's amount when a new period has begun.
    pub fn at(self, limit: &UsageLimit, now: Timestamp) -> Self {
        match limit.refill {
            Some(refill) => {
                let period = refill.interval.period_start(now);
                if self.period.is_none_or(|p| p < period) {
                    Self { remaining: refill.amount, period: Some(period) }
                } else {
                    self
                }
            }
            None => self,
        }
    }
}

/// How the gateway applies a key's limit. Both are exact ("never more than N in any window"); they differ in what a
/// request costs and how fast a revocation or a new limit reaches every isolate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RateLimitMode {
    /// Isolates admit on their own from short leases the key's object hands out (a share of the current slot, at
    /// most a second): most requests never leave the isolate; a revocation or a new limit reaches every isolate
    /// within a lease. Policies with a `burst` are always strict.
    #[default]
    Leased,
    /// Every request asks the key's object: one object call per request; a revocation takes effect at once.
    Strict,
}

impl RateLimitMode {
    pub fn is_leased(&self) -> bool {
        *self == Self::Leased
    }
}

impl RateLimitPolicy {
    /// A policy of `requests` per `window_seconds`, leased, with no burst.
    pub const fn per(requests: u32, window_seconds: u32) -> Self {
        Self { requests, window_seconds, burst: None, mode: RateLimitMode::Leased }
    }

    /// Whether gateway isolates may admit from leases.
    pub fn leased(&self) -> bool {
        self.mode == RateLimitMode::Leased && self.burst.is_none()
    }
}

pub const RATE_LIMIT_MAX_REQUESTS: u32 = 1_000_000;
pub const RATE_LIMIT_MAX_WINDOW_SECONDS: u32 = 86_400;

impl RateLimitPolicy {
    /// Checks the policy's bounds; the error names the offending field.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.requests == 0 || self.requests > RATE_LIMIT_MAX_REQUESTS {
            return Err(("rate_limit.requests", "must be between 1 and 1000000"));
        }
        if self.window_seconds == 0 || self.window_seconds > RATE_LIMIT_MAX_WINDOW_SECONDS {
            return Err(("rate_limit.window_seconds", "must be between 1 and 86400 (one day)"));
        }
        if self.burst.is_some_and(|b| b == 0 || b > self.requests) {
            return Err(("rate_limit.burst", "must be between 1 and `requests`"));
        }
        Ok(())
    }
}

/// The stored lifecycle state. `Expired` is not a state: it is derived from `expires_at` and `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Active,
    /// Reversible: "Inactive" in the console.
    Revoked,
    /// Final: can never be activated again.
    Deactivated,
}

/// What people see: the stored state with expiry applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Inactive,
    Expired,
    Deactivated,
}

impl KeyStatus {
    pub const fn title(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
            Self::Expired => "Expired",
            Self::Deactivated => "Deactivated",
        }
    }
}

/// Something done to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum LifecycleAction {
    Revoke,
    Activate,
    Deactivate,
    Regenerate,
    Edit,
    Delete,
}

/// Where a lifecycle action leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    To(KeyState),
    Deleted,
}

/// An action that the key's state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: KeyState,
    pub action: LifecycleAction,
}

impl IllegalTransition {
    pub fn describe(&self) -> &'static str {
        use KeyState::*;
        use LifecycleAction::*;
        match (self.from, self.action) {
            (Deactivated, Activate) => "A deactivated key can never be activated again; create a new key.",
            (Deactivated, _) => "A deactivated key is final: it can only be deleted.",
            (Active, Delete) => "Only revoked or deactivated keys can be deleted: revoke the key first.",
            (Active, Activate) => "The key is already active.",
            (Revoked, Revoke) => "The key is already revoked.",
            _ => "The key's state does not allow this action.",
        }
    }
}

impl KeyState {
    /// The lifecycle as a state machine: `active ⇄ revoked`, `active|revoked → deactivated` (final), delete only from
    /// revoked or deactivated; regenerate and edit keep the state and are refused on a deactivated key.
    pub fn apply(self, action: LifecycleAction) -> Result<Transition, IllegalTransition> {
        use KeyState::*;
        use LifecycleAction::*;
        let next = match (self, action) {
            // Revoking cuts off access but keeps the key, reversibly.
            (Active, Revoke) => Transition::To(Revoked),
            // Activating undoes a revocation.
            (Revoked, Activate) => Transition::To(Active),
            // Deactivation is final, from either live state.
            (Active | Revoked, Deactivate) => Transition::To(Deactivated),
            // A new secret or new settings keep the state.
            (Active | Revoked, Regenerate | Edit) => Transition::To(self),
            // Only keys that no longer work may be deleted.
            (Revoked | Deactivated, Delete) => Transition::Deleted,
            _ => return Err(IllegalTransition { from: self, action }),
        };
        Ok(next)
    }
}

/// Whether a key is one string or the legacy `apikey` + `apisecret` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    #[default]
    Single,
    Pair,
}

impl KeyKind {
    /// The name it is stored and filtered by (as serde writes it).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Pair => "pair",
        }
    }
}

/// The previous secret during a regeneration grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraceSecret {
    pub secret_hash: SecretHash,
    pub until: Timestamp,
}

/// A key as stored (KV, and authoritatively in its Durable Object). Holds the secret's hash, never the secret; the
/// admin API shows [`crate::api::KeyView`] instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: KeyId,
    pub organization: String,
    /// `None`: valid for every project of the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    pub environment: Environment,
    pub name: String,
    /// The user who created the key.
    pub owner: String,
    pub permissions: Vec<Permission>,
    /// Customer ids the key is restricted to; empty means any customer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    pub state: KeyState,
    #[serde(default)]
    pub kind: KeyKind,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub secret_hash: SecretHash,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<GraceSecret>,
    /// Who revoked the key, while it is revoked: activating it again is that person's, an owner's or an admin's
    /// decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    /// Client address ranges the key may be used from (`CF-Connecting-IP`); empty: anywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ips: Vec<crate::net::IpRange>,
    /// LandingLens's rule: the key acts only for its own organization, never for another one its owner joins
    /// (`Keygate-Org`). Off by default (Instill's rule).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_organization_only: bool,
    /// A canary key: the decision refuses every use exactly as it refuses an unknown key, and the gateway logs the
    /// request for its organization (a trip).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canary: bool,
    /// A small JSON object forwarded to the origin and returned by verify (Unkey's `meta`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<crate::meta::KeyMeta>,
    /// A number of uses (Unkey's `remaining`), counted in the key's object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<UsageLimit>,
    /// The organization's roles the key holds, each with the permissions it grants as the organization last said
    /// (a changed role reaches every key that holds it: see `control/src/org.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<HeldRole>,
    /// The identity (customer) the key belongs to, as its organization last defined it: its keys share its name,
    /// metadata and rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<KeyIdentity>,
}

/// An identity (Unkey's identities, Zuplo's consumers): one customer of the organization, whose keys share a name,
/// metadata and one rate limit. Keys carry it whole, so the gateway needs no lookup; the shared limit is counted in
/// one Durable Object per identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyIdentity {
    /// `idn_<14 characters>`: the identity's own id (its limiter's object is named by the part after `idn_`).
    pub id: String,
    /// The organization's own id for the customer (`cus_123`, an email): unique in the organization.
    pub external_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<crate::meta::KeyMeta>,
    /// One limit for every key of the identity together (each key's own limit applies as well).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitPolicy>,
}

impl KeyIdentity {
    pub const PREFIX: &'static str = "idn_";

    /// The id its shared limit is counted under (the key objects' namespace: identity and key ids are random
    /// 70-bit ids alike).
    pub fn limiter(&self) -> Option<crate::key::KeyId> {
        self.id.strip_prefix(Self::PREFIX).and_then(crate::key::KeyId::parse)
    }

    /// A fresh identity id.
    pub fn new_id() -> Result<String, getrandom::Error> {
        Ok(format!("{}{}", Self::PREFIX, crate::key::KeyId::generate()?))
    }
}

/// A role of keys (Unkey's roles): a named set of permissions an organization defines once and gives to many keys.
/// A key holds it by name, with the permissions it grants, so the gateway checks a key from its record alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HeldRole {
    pub name: String,
    pub permissions: Vec<Permission>,
}

/// Whether `s` can name a role: 1-64 characters of `a-z`, `0-9`, `_`, `.` and `-`, starting with a letter.
pub fn is_role_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
}

impl KeyRecord {
    /// The record of a key just issued to `owner` in `organization`: active, a single key, valid for every project,
    /// with no customer restriction, rate limit or expiry; set those with struct update syntax.
    pub fn issued(
        key: &crate::key::ApiKey,
        organization: &str,
        owner: &str,
        name: String,
        permissions: Vec<Permission>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: key.id,
            organization: organization.to_owned(),
            project: None,
            environment: key.environment,
            name,
            owner: owner.to_owned(),
            permissions,
            customers: vec![],
            rate_limit: None,
            expires_at: None,
            state: KeyState::Active,
            kind: KeyKind::Single,
            created_at: now,
            updated_at: now,
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

    pub fn status(&self, now: Timestamp) -> KeyStatus {
        match self.state {
            KeyState::Deactivated => KeyStatus::Deactivated,
            KeyState::Revoked => KeyStatus::Inactive,
            KeyState::Active if self.is_expired(now) => KeyStatus::Expired,
            KeyState::Active => KeyStatus::Active,
        }
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Whether `hash` is this key's current secret, or its previous one within the grace period. Constant time.
    pub fn secret_matches(&self, hash: &SecretHash, now: Timestamp) -> bool {
        let current = self.secret_hash.matches(hash);
        let previous = self.grace.is_some_and(|g| now < g.until && g.secret_hash.matches(hash));
        current | previous
    }

    /// Whether the key's own permissions or one of its roles grant `required`.
    pub fn has_permission(&self, required: &Permission) -> bool {
        let from_roles = self.roles.iter().flat_map(|r| r.permissions.iter());
        self.permissions.iter().chain(from_roles).any(|p| p.grants(required))
    }

    /// The key's own permissions, then its roles', each once.
    pub fn effective_permissions(&self) -> impl Iterator<Item = &Permission> {
        let from_roles = self.roles.iter().flat_map(|r| r.permissions.iter());
        let mut seen: Vec<&Permission> = Vec::new();
        self.permissions.iter().chain(from_roles).filter(move |p| {
            let new = !seen.contains(p);
            if new {
                seen.push(p);
            }
            new
        })
    }

    /// The names of the roles the key holds.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.name.clone()).collect()
    }

    pub fn allows_customer(&self, customer: &str) -> bool {
        self.customers.is_empty() || self.customers.iter().any(|c| c == customer)
    }

    pub fn public_start(&self) -> String {
        crate::key::public_start(self.environment, &self.id)
    }
}

/// The organizations a user belongs to, as Workers KV holds them (`user:<id>`) for the gateway: a request naming
/// another organization with `Keygate-Org` passes only if the key's owner is a member of it. Written behind by the
/// user's object whenever the user joins or leaves an organization.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserOrganizations {
    pub organizations: Vec<String>,
}

/// Validates a project slug for the admin API.
pub fn valid_slug(s: &str) -> bool {
    is_project_slug(s)
}

/// A fresh random identifier such as `org_7Q3M0T9ZK1XW2R`, for organizations, users, projects and audit events.
pub fn new_id(prefix: &str) -> Result<String, getrandom::Error> {
    let id = KeyId::generate()?;
    Ok(format!("{prefix}_{id}"))
}
