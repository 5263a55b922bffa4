//! The organization's object: one SQLite-backed Durable Object per organization. It owns the organization's
//! members (and so every role check), invitations, projects, the index of its keys with their usage summaries,
//! the permission catalog, and the audit log. Nothing in it is shared with another organization.
//!
//! Each message is handled in one transaction ([`crate::sql`]): it is stored whole, or not at all. Key changes are
//! made in the key's own object; this object learns them as [`KeyEvent`]s and applies only newer revisions, so an
//! event that arrives late (or twice) never undoes a later one.

use keygate_shared::api::{
    AuditAction, AuditEvent, AuditPage, CanaryTripList, IdentityList, IdentityView, InvitationView, KeyFilter, KeyList,
    KeyView, MAX_USAGE_REPORT_ROWS, MemberView, OrganizationUsage, OrganizationUsageReport, OrganizationView,
    PermissionInfo, RoleInfo, UpdateIdentityRequest, UpdateSettingsRequest, UsageSummary,
};
use keygate_shared::authz::{Denial, KeyAction, KeyFacts, OrgAction, may_act_on_key, may_act_on_org};
use keygate_shared::key::KeyId;
use keygate_shared::keyobject::{KeyEvent, KeyIndexRow, MAX_USAGE_ORGANIZATIONS};
use keygate_shared::model::{
    HeldRole, KeyCreation, KeyIdentity, KeyState, KeyStatus, Organization, OrganizationSettings, Project, Role,
};
use keygate_shared::requestlog::{LogQuery, LoggedRequest, RequestLogPage};
use keygate_shared::time::Timestamp;
use serde::{Deserialize, Serialize};

use keygate_shared::leak::{KeyLeakList, LeakResponse};
use keygate_shared::webhook::{CreateWebhookRequest, DeliveryList, UpdateWebhookRequest, WebhookView};

use crate::params;

mod alerts;
mod canaries;
mod definitions;
mod leaks;
mod privilege;
mod webhooks;
use crate::sql::{Sql, SqlError, SqlExt, SqlValue, json_column, to_json};
pub use alerts::EXPIRY_BATCH;
pub use definitions::KeySync;
pub use webhooks::{DeliveryOutcome, DueDelivery};

/// Bounds of one organization's object (the README lists them).
pub mod limits {
    pub const MEMBERS: i64 = 1_000;
    pub const PENDING_INVITATIONS: i64 = 200;
    pub const PROJECTS: i64 = 1_000;
    pub const KEYS: i64 = 100_000;
    pub const PERMISSIONS: i64 = 1_000;
    pub const ROLES: i64 = 200;
    pub const IDENTITIES: i64 = 100_000;
    /// Keys a role change is sent to per round of the object's alarm (the next round follows at once).
    pub const SYNC_BATCH: i64 = 25;
    /// Audit rows kept per organization (the oldest go first)…
    pub const AUDIT_ROWS: i64 = 100_000;
    /// …and none older than this.
    pub const AUDIT_RETENTION_MS: i64 = 400 * 86_400_000;
    pub const AUDIT_DETAIL_CHARS: usize = 500;
    pub const PAGE: i64 = 50;
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS organization (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS members (user_id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, \
     role TEXT NOT NULL, joined_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS invitations (id TEXT PRIMARY KEY, code_hash TEXT NOT NULL UNIQUE, \
     email TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL, invited_by TEXT NOT NULL, \
     created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, state TEXT NOT NULL, user_id TEXT, \
     redeemed_at INTEGER)",
    "CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, name TEXT NOT NULL, \
     created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, owner TEXT NOT NULL, environment TEXT NOT NULL, \
     project TEXT, state TEXT NOT NULL, expires_at INTEGER, created_at INTEGER NOT NULL, \
     revision INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, row TEXT NOT NULL, last_used_at INTEGER, \
     usage_total INTEGER NOT NULL DEFAULT 0, usage_24h INTEGER NOT NULL DEFAULT 0, \
     recent_errors INTEGER NOT NULL DEFAULT 0, usage_at INTEGER)",
    "CREATE INDEX IF NOT EXISTS keys_by_created ON keys (deleted, created_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS keys_by_owner ON keys (owner, deleted, created_at DESC, id DESC)",
    // Expiries in the order the alarm announces them (`org/alerts.rs`).
    "CREATE INDEX IF NOT EXISTS keys_by_expiry ON keys (expires_at, id) WHERE expires_at IS NOT NULL",
    // When an event that is said at most so often (`key.rate_limited`) was last said of each key.
    "CREATE TABLE IF NOT EXISTS key_alerts (key_id TEXT NOT NULL, kind TEXT NOT NULL, at INTEGER NOT NULL, \
     PRIMARY KEY (key_id, kind))",
    "CREATE TABLE IF NOT EXISTS permissions (name TEXT PRIMARY KEY, keys INTEGER NOT NULL DEFAULT 0)",
    // Requests of this organization's keys by the organization each acted for: per key (as its last summary said)
    // and summed, kept up to date by the difference each summary brings.
    "CREATE TABLE IF NOT EXISTS usage_by_org (organization TEXT PRIMARY KEY, requests INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS usage_by_org_requests ON usage_by_org (requests DESC)",
    "CREATE TABLE IF NOT EXISTS key_usage_by_org (id TEXT NOT NULL, organization TEXT NOT NULL, \
     requests INTEGER NOT NULL, PRIMARY KEY (id, organization))",
    // Usage-limited keys' uses left, as of their last usage summary.
    "CREATE TABLE IF NOT EXISTS uses_left (id TEXT PRIMARY KEY, remaining INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, \
     at INTEGER NOT NULL, actor TEXT, action TEXT NOT NULL, target TEXT, target_owner TEXT, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_by_actor ON audit (actor, seq)",
    "CREATE INDEX IF NOT EXISTS audit_by_target_owner ON audit (target_owner, seq)",
    "CREATE TABLE IF NOT EXISTS signin_failures (target TEXT NOT NULL, minute INTEGER NOT NULL, \
     count INTEGER NOT NULL, PRIMARY KEY (target, minute))",
    "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS permission_descriptions (name TEXT PRIMARY KEY, description TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, \
     message TEXT NOT NULL)",
    // The request log of this organization's keys (`keygate_shared::requestlog`), newest by time then id; `seq`
    // is the order of arrival, which bounds the table in constant time.
    "CREATE TABLE IF NOT EXISTS request_log (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, at INTEGER NOT NULL, \
     key_id TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL, code TEXT, \
     latency_ms INTEGER NOT NULL, client_ip TEXT, organization TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS request_log_by_time ON request_log (at, id)",
    "CREATE INDEX IF NOT EXISTS request_log_by_key ON request_log (key_id, at, id)",
    // Roles of keys: named permission sets. `revision` is the organization's roles revision of the role's last
    // change (`settings.sync_revision` counts them); `keys` counts `role_holders`, which the key index keeps.
    "CREATE TABLE IF NOT EXISTS roles (name TEXT PRIMARY KEY, description TEXT, permissions TEXT NOT NULL, \
     revision INTEGER NOT NULL, keys INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS role_holders (role TEXT NOT NULL, key_id TEXT NOT NULL, PRIMARY KEY (role, key_id))",
    "CREATE INDEX IF NOT EXISTS role_holders_by_key ON role_holders (key_id)",
    // Identities (customers): `body` is the `KeyIdentity` keys carry; `keys` counts `identity_holders`.
    "CREATE TABLE IF NOT EXISTS identities (id TEXT PRIMARY KEY, external_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL, \
     keys INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS identity_holders (key_id TEXT PRIMARY KEY, identity TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS identity_holders_by_identity ON identity_holders (identity)",
    // Keys owed their definitions as they now are, and the sync revision to send them at (delivered by the alarm).
    "CREATE TABLE IF NOT EXISTS key_sync (key_id TEXT PRIMARY KEY, revision INTEGER NOT NULL)",
    // Webhooks (`secret` is the HMAC key the organization's receivers hold: it signs, it opens nothing here), and
    // their deliveries: owed (`pending`, due at `next_at`) or done, the newest 100 per webhook kept as its log.
    "CREATE TABLE IF NOT EXISTS webhooks (id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, \
     events TEXT NOT NULL, description TEXT, enabled INTEGER NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS webhook_deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, \
     webhook TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL, body TEXT NOT NULL, \
     state TEXT NOT NULL, attempts INTEGER NOT NULL, next_at INTEGER, last_status INTEGER, last_error TEXT, \
     created_at INTEGER NOT NULL, delivered_at INTEGER)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (state, next_at)",
    // A rotated-out signing secret that still signs beside the new one until `until` (one per webhook).
    "CREATE TABLE IF NOT EXISTS webhook_previous_secrets (webhook TEXT PRIMARY KEY, secret TEXT NOT NULL, \
     until INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_by_webhook ON webhook_deliveries (webhook, seq)",
    // When each route permission was last used by a passing request of each key (least-privilege suggestions).
    "CREATE TABLE IF NOT EXISTS permission_use (key_id TEXT NOT NULL, permission TEXT NOT NULL, \
     last_used_at INTEGER NOT NULL, requests INTEGER NOT NULL, PRIMARY KEY (key_id, permission))",
    // Leaks of keys reported to `POST /v1/leaks`.
    "CREATE TABLE IF NOT EXISTS key_leaks (seq INTEGER PRIMARY KEY AUTOINCREMENT, key_id TEXT NOT NULL, \
     at INTEGER NOT NULL, url TEXT, source TEXT, reported_as TEXT NOT NULL, revoked INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS key_leaks_by_key ON key_leaks (key_id, seq)",
    // Uses of canary keys (their request-log lines' ids), the newest 1,000.
    "CREATE TABLE IF NOT EXISTS canary_trips (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, \
     key_id TEXT NOT NULL, at INTEGER NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, client_ip TEXT, \
     user_agent TEXT, country TEXT)",
];

/// Creates the tables on an object's first use (each statement is a no-op afterwards).
pub fn migrate(db: &impl Sql) -> Result<(), SqlError> {
    SCHEMA.iter().try_for_each(|statement| db.run(statement, &[]))
}

/// A member to add: who they are and their role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMember {
    pub user: String,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// An invitation as the Worker made it: the code itself is never sent here, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvitation {
    pub id: String,
    pub code_hash: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub expires_at: Timestamp,
}

/// A message to an organization's object. `actor` is the signed-in user: every such message checks their
/// membership and role here, in the object that owns them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRequest {
    /// The organization's first message: its name and first owner. Repeating it changes nothing.
    Create {
        organization: Organization,
        owner: NewMember,
        audit: AuditEvent,
    },
    /// The actor's view of the organization, their role, and the permission catalog.
    Session {
        actor: String,
    },
    Members {
        actor: String,
    },
    Invite {
        actor: String,
        invitation: NewInvitation,
        audit_id: String,
        now: Timestamp,
    },
    Invitations {
        actor: String,
        now: Timestamp,
    },
    RevokeInvitation {
        actor: String,
        id: String,
        audit_id: String,
        now: Timestamp,
    },
    /// A new user redeems an invitation: claims it for `member.user` (or resumes the claim that user already made).
    Redeem {
        code_hash: String,
        member: NewMember,
        audit_id: String,
        now: Timestamp,
    },
    /// The Worker finished what a redemption needs (the user's object and first console token).
    Redeemed {
        code_hash: String,
    },
    /// A signed-in user accepts an invitation for themselves.
    Accept {
        code_hash: String,
        member: NewMember,
        audit_id: String,
        now: Timestamp,
    },
    RemoveMember {
        actor: String,
        user: String,
        audit_id: String,
        now: Timestamp,
    },
    Projects {
        actor: String,
    },
    CreateProject {
        actor: String,
        project: Project,
        audit_id: String,
        now: Timestamp,
    },
    RenameProject {
        actor: String,
        id: String,
        name: String,
        audit_id: String,
        now: Timestamp,
    },
    /// The permission catalog.
    Permissions {
        actor: String,
    },
    /// Requests of the organization's keys by the organization they acted for.
    Usage {
        actor: String,
    },
    /// Describes a permission (`None`: removes its description).
    DescribePermission {
        actor: String,
        name: String,
        description: Option<String>,
        audit_id: String,
        now: Timestamp,
    },
    /// The organization's roles.
    Roles {
        actor: String,
    },
    /// Defines a role or replaces its definition; every key that holds it is owed the change.
    PutRole {
        actor: String,
        role: HeldRole,
        description: Option<String>,
        audit_id: String,
        now: Timestamp,
    },
    /// Deletes a role no key holds.
    DeleteRole {
        actor: String,
        name: String,
        audit_id: String,
        now: Timestamp,
    },
    /// The runtime delivered these keys their definitions, each at the sync revision given.
    Synced {
        done: Vec<(String, i64)>,
    },
    /// A page of the organization's identities.
    Identities {
        actor: String,
        #[serde(default)]
        cursor: Option<String>,
    },
    /// One identity, by its id or its external id.
    Identity {
        actor: String,
        id: String,
    },
    CreateIdentity {
        actor: String,
        identity: KeyIdentity,
        audit_id: String,
        now: Timestamp,
    },
    /// Changes an identity; every key of it is owed the change.
    UpdateIdentity {
        actor: String,
        id: String,
        change: UpdateIdentityRequest,
        audit_id: String,
        now: Timestamp,
    },
    /// Deletes an identity no key belongs to.
    DeleteIdentity {
        actor: String,
        id: String,
        audit_id: String,
        now: Timestamp,
    },
    Webhooks {
        actor: String,
    },
    /// Adds a webhook; `secret` was generated by the Worker (and is answered once, by the Worker).
    CreateWebhook {
        actor: String,
        id: String,
        request: CreateWebhookRequest,
        secret: String,
        audit_id: String,
        now: Timestamp,
    },
    UpdateWebhook {
        actor: String,
        id: String,
        change: UpdateWebhookRequest,
        audit_id: String,
        now: Timestamp,
    },
    DeleteWebhook {
        actor: String,
        id: String,
        audit_id: String,
        now: Timestamp,
    },
    /// Replaces a webhook's signing secret with `secret` (generated by the Worker); the previous one keeps signing
    /// for `previous_ms`.
    RotateWebhookSecret {
        actor: String,
        id: String,
        secret: String,
        previous_ms: i64,
        audit_id: String,
        now: Timestamp,
    },
    /// Queues a `ping` to one webhook.
    TestWebhook {
        actor: String,
        id: String,
        event_id: String,
        now: Timestamp,
    },
    /// A webhook's delivery log.
    Deliveries {
        actor: String,
        id: String,
    },
    /// `POST /v1/leaks` found this key's secret: record the leak, and answer whether to revoke it.
    Leaked {
        key: KeyId,
        url: Option<String>,
        source: Option<String>,
        reported_as: String,
        audit_id: String,
        now: Timestamp,
    },
    /// A key's observed permission use and least-privilege suggestions, for `actor`.
    Suggestions {
        actor: String,
        key: KeyId,
        now: Timestamp,
    },
    /// A key's leaks, for `actor`.
    Leaks {
        actor: String,
        key: KeyId,
    },
    /// The newest uses of canary keys (of one key, with `key`).
    Trips {
        actor: String,
        #[serde(default)]
        key: Option<KeyId>,
    },
    /// Changes the organization's settings (owners).
    UpdateSettings {
        actor: String,
        change: UpdateSettingsRequest,
        audit_id: String,
        now: Timestamp,
    },
    /// The actor's role, before a key change is sent to the key's object; `action` is checked too. With `key`, the
    /// name of that key's owner comes back as well; with `roles`, their definitions (a role not defined here is
    /// refused).
    Authorize {
        actor: String,
        action: OrgAction,
        #[serde(default)]
        key: Option<KeyId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        roles: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<String>,
    },
    ListKeys {
        actor: String,
        filter: KeyFilter,
        cursor: Option<String>,
        now: Timestamp,
    },
    Audit {
        actor: String,
        cursor: Option<i64>,
        now: Timestamp,
    },
    /// A console sign-in that named a key of this organization failed (coalesced: once a minute per key).
    SignInFailed {
        target: String,
        detail: String,
        audit_id: String,
        now: Timestamp,
    },
    /// Lines of the request log, from the queue (a line already stored changes nothing).
    LogRequests {
        lines: Vec<LoggedRequest>,
        now: Timestamp,
    },
    /// A page of the request log: every key's for owners and admins, a member's own keys' for a member.
    RequestLog {
        actor: String,
        query: LogQuery,
        now: Timestamp,
    },
    /// Events from key objects, in order.
    KeyEvents {
        events: Vec<KeyEvent>,
    },
    /// The runtime delivered the outbox through `through`.
    Delivered {
        through: i64,
    },
    /// `KEYGATE_TEST_SEED=1` only (the Worker refuses it otherwise): `keys` synthetic keys of `actor` in the index
    /// and `audit` synthetic audit events, for scale runs. The keys have no key objects: they list, they do not pass.
    /// `age`: a key whose index row is made that many days older (its created time), for suggestions in a browser.
    Seed {
        actor: String,
        keys: u32,
        audit: u32,
        #[serde(default)]
        age: Option<(String, u32)>,
        now: Timestamp,
    },
}

/// What the organization's object refuses. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRefusal {
    /// The actor is not a member (answered like an unknown organization).
    NotMember,
    Denied {
        denial: Denial,
    },
    NotFound {
        what: String,
    },
    Conflict {
        code: String,
        detail: String,
    },
    /// An invitation that expired, was revoked, or was used.
    InvitationGone {
        code: String,
        detail: String,
    },
    Invalid {
        field: String,
        detail: String,
    },
    /// A bound of this object was reached.
    Full {
        detail: String,
    },
}

/// A message the organization owes a user's object (delivered by the runtime, retried until it holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserNotice {
    Joined { organization: OrganizationView },
    Left { organization: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgReply {
    Done,
    Refused {
        refusal: OrgRefusal,
    },
    Session {
        organization: OrganizationView,
        permissions: Vec<PermissionInfo>,
        #[serde(default)]
        settings: OrganizationSettings,
        #[serde(default)]
        roles: Vec<RoleInfo>,
    },
    Roles {
        roles: Vec<RoleInfo>,
    },
    Webhooks {
        webhooks: Vec<WebhookView>,
    },
    Webhook {
        webhook: WebhookView,
    },
    Deliveries {
        deliveries: DeliveryList,
    },
    Trips {
        trips: CanaryTripList,
    },
    /// What the organization does about a leak it just recorded (`None`: not a key of this organization).
    LeakResponse {
        response: Option<LeakResponse>,
    },
    Leaks {
        leaks: KeyLeakList,
    },
    Suggestions {
        list: keygate_shared::privilege::SuggestionList,
    },
    Settings {
        settings: OrganizationSettings,
    },
    Permissions {
        permissions: Vec<PermissionInfo>,
    },
    Usage {
        usage: OrganizationUsageReport,
    },
    RequestLog {
        page: RequestLogPage,
    },
    Members {
        members: Vec<MemberView>,
    },
    Invitation {
        invitation: InvitationView,
    },
    Invitations {
        invitations: Vec<InvitationView>,
    },
    /// An invitation was claimed (or accepted): the organization and the role the user now has.
    Joined {
        organization: OrganizationView,
        /// Set when a redemption resumes an earlier claim: the user id that claim made.
        user: String,
        invitation: String,
    },
    Projects {
        projects: Vec<Project>,
    },
    Project {
        project: Project,
    },
    Role {
        role: Role,
        #[serde(default)]
        owner_name: Option<String>,
        /// The definitions of the roles the request named.
        #[serde(default)]
        roles: Vec<HeldRole>,
        /// The definition of the identity the request named.
        #[serde(default)]
        identity: Option<KeyIdentity>,
    },
    Identities {
        list: IdentityList,
    },
    Identity {
        identity: IdentityView,
    },
    Keys {
        list: KeyList,
    },
    Audit {
        page: AuditPage,
    },
    /// Owed messages to users' objects, for the runtime to deliver: (outbox sequence, user, notice).
    Outbox {
        notices: Vec<(i64, String, UserNotice)>,
    },
}

/// A failure: either a refusal (the transaction is rolled back and the caller answers it), or storage.
#[derive(Debug)]
pub enum OrgError {
    Refused(OrgRefusal),
    Sql(SqlError),
}

impl From<SqlError> for OrgError {
    fn from(e: SqlError) -> Self {
        Self::Sql(e)
    }
}

impl From<OrgRefusal> for OrgError {
    fn from(r: OrgRefusal) -> Self {
        Self::Refused(r)
    }
}

impl From<Refusal> for OrgError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Refused(r) => Self::Refused(r),
            Refusal::Sql(e) => Self::Sql(e),
        }
    }
}

fn role_text(role: Role) -> &'static str {
    role.as_str()
}

fn parse_role(text: &str) -> Result<Role, SqlError> {
    match text {
        "owner" => Ok(Role::Owner),
        "admin" => Ok(Role::Admin),
        "member" => Ok(Role::Member),
        other => Err(SqlError(format!("unknown role `{other}`"))),
    }
}

fn state_text(state: KeyState) -> &'static str {
    match state {
        KeyState::Active => "active",
        KeyState::Revoked => "revoked",
        KeyState::Deactivated => "deactivated",
    }
}

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[derive(Deserialize)]
struct OrgRow {
    id: String,
    name: String,
    created_at: i64,
}

#[derive(Deserialize)]
struct MemberRow {
    user_id: String,
    email: String,
    name: String,
    role: String,
}

#[derive(Deserialize)]
struct InvitationRow {
    id: String,
    email: String,
    name: String,
    role: String,
    invited_by: String,
    created_at: i64,
    expires_at: i64,
    state: String,
    user_id: Option<String>,
}

impl InvitationRow {
    fn view(&self) -> Result<InvitationView, SqlError> {
        Ok(InvitationView {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            role: parse_role(&self.role)?,
            invited_by: self.invited_by.clone(),
            created_at: Timestamp(self.created_at),
            expires_at: Timestamp(self.expires_at),
        })
    }
}

#[derive(Deserialize)]
struct ProjectRow {
    id: String,
    slug: String,
    name: String,
    created_at: i64,
}

/// The organization's object, over its SQL storage.
#[derive(Debug)]
pub struct Org<'a, S: Sql> {
    pub db: &'a S,
}

impl<S: Sql> Org<'_, S> {
    /// Handles one message; the caller runs it in one transaction and rolls back on `Err`.
    pub fn handle(&self, request: OrgRequest) -> Result<OrgReply, OrgError> {
        migrate(self.db)?;
        let reply: Result<OrgReply, Refusal> = match request {
            OrgRequest::Create { organization, owner, audit } => self.create(&organization, &owner, audit),
            OrgRequest::Session { actor } => self.session(&actor),
            OrgRequest::Members { actor } => self.members(&actor),
            OrgRequest::Invite { actor, invitation, audit_id, now } => self.invite(&actor, invitation, audit_id, now),
            OrgRequest::Invitations { actor, now } => self.invitations(&actor, now),
            OrgRequest::RevokeInvitation { actor, id, audit_id, now } => {
                self.revoke_invitation(&actor, &id, audit_id, now)
            }
            OrgRequest::Redeem { code_hash, member, audit_id, now } => {
                self.join(&code_hash, member, audit_id, now, Join::Claim)
            }
            OrgRequest::Redeemed { code_hash } => {
                self.db.run(
                    "UPDATE invitations SET state = 'redeemed' WHERE code_hash = ? AND state = 'claimed'",
                    params![code_hash],
                )?;
                Ok(OrgReply::Done)
            }
            OrgRequest::Accept { code_hash, member, audit_id, now } => {
                self.join(&code_hash, member, audit_id, now, Join::Accept)
            }
            OrgRequest::RemoveMember { actor, user, audit_id, now } => self.remove_member(&actor, &user, audit_id, now),
            OrgRequest::Projects { actor } => {
                self.role(&actor)?;
                Ok(OrgReply::Projects { projects: self.projects()? })
            }
            OrgRequest::CreateProject { actor, project, audit_id, now } => {
                self.create_project(&actor, project, audit_id, now)
            }
            OrgRequest::RenameProject { actor, id, name, audit_id, now } => {
                self.rename_project(&actor, &id, &name, audit_id, now)
            }
            OrgRequest::Permissions { actor } => {
                self.role(&actor)?;
                Ok(OrgReply::Permissions { permissions: self.catalog()? })
            }
            OrgRequest::Usage { actor } => {
                self.allowed(&actor, OrgAction::ViewUsage)?;
                let by_organization: Vec<OrganizationUsage> = self.db.all(
                    "SELECT organization, requests FROM usage_by_org ORDER BY requests DESC, organization LIMIT ?",
                    params![MAX_USAGE_REPORT_ROWS as i64],
                )?;
                Ok(OrgReply::Usage { usage: OrganizationUsageReport { by_organization } })
            }
            OrgRequest::DescribePermission { actor, name, description, audit_id, now } => {
                self.describe_permission(&actor, &name, description, audit_id, now)
            }
            OrgRequest::UpdateSettings { actor, change, audit_id, now } => {
                self.update_settings(&actor, change, audit_id, now)
            }
            OrgRequest::Roles { actor } => {
                self.role(&actor)?;
                Ok(OrgReply::Roles { roles: self.roles()? })
            }
            OrgRequest::PutRole { actor, role, description, audit_id, now } => {
                self.put_role(&actor, role, description, audit_id, now)
            }
            OrgRequest::DeleteRole { actor, name, audit_id, now } => self.delete_role(&actor, &name, audit_id, now),
            OrgRequest::Synced { done } => {
                for (key, revision) in done {
                    self.db.run(
                        "DELETE FROM key_sync WHERE key_id = ? AND revision <= ?",
                        params![key.as_str(), revision],
                    )?;
                }
                Ok(OrgReply::Done)
            }
            OrgRequest::Identities { actor, cursor } => self.identities(&actor, cursor),
            OrgRequest::Identity { actor, id } => self.identity(&actor, &id),
            OrgRequest::CreateIdentity { actor, identity, audit_id, now } => {
                self.create_identity(&actor, identity, audit_id, now)
            }
            OrgRequest::UpdateIdentity { actor, id, change, audit_id, now } => {
                self.update_identity(&actor, &id, &change, audit_id, now)
            }
            OrgRequest::DeleteIdentity { actor, id, audit_id, now } => self.delete_identity(&actor, &id, audit_id, now),
            OrgRequest::Webhooks { actor } => self.webhooks(&actor),
            OrgRequest::CreateWebhook { actor, id, request, secret, audit_id, now } => {
                self.create_webhook(&actor, &id, &request, &secret, audit_id, now)
            }
            OrgRequest::UpdateWebhook { actor, id, change, audit_id, now } => {
                self.update_webhook(&actor, &id, &change, audit_id, now)
            }
            OrgRequest::DeleteWebhook { actor, id, audit_id, now } => self.delete_webhook(&actor, &id, audit_id, now),
            OrgRequest::TestWebhook { actor, id, event_id, now } => self.test_webhook(&actor, &id, event_id, now),
            OrgRequest::RotateWebhookSecret { actor, id, secret, previous_ms, audit_id, now } => {
                self.rotate_webhook_secret(&actor, &id, &secret, previous_ms, audit_id, now)
            }
            OrgRequest::Deliveries { actor, id } => self.deliveries(&actor, &id),
            OrgRequest::Trips { actor, key } => self.trips(&actor, key),
            OrgRequest::Leaked { key, url, source, reported_as, audit_id, now } => {
                self.leaked(key, url, source, &reported_as, audit_id, now)
            }
            OrgRequest::Leaks { actor, key } => self.leaks(&actor, key),
            OrgRequest::Suggestions { actor, key, now } => self.suggestions(&actor, key, now),
            OrgRequest::Authorize { actor, action, key, roles, identity } => {
                let role = self.allowed(&actor, action)?;
                let owner_name = match key {
                    None => None,
                    Some(id) => {
                        #[derive(Deserialize)]
                        struct Name {
                            name: Option<String>,
                        }
                        let name: Option<Name> = self.db.first(
                            "SELECT m.name AS name FROM keys k LEFT JOIN members m ON m.user_id = k.owner \
                             WHERE k.id = ?",
                            params![id.as_str()],
                        )?;
                        name.and_then(|n| n.name)
                    }
                };
                let mut defined = Vec::with_capacity(roles.len());
                for name in &roles {
                    match self.role_definition(name)? {
                        Some((permissions, _)) => defined.push(HeldRole { name: name.clone(), permissions }),
                        None => {
                            return Err(OrgError::Refused(OrgRefusal::Invalid {
                                field: "roles".into(),
                                detail: format!("no role `{name}` in this organization (see GET /roles)"),
                            }));
                        }
                    }
                }
                let identity = match identity {
                    None => None,
                    Some(id) => match self.identity_row(&id)?.filter(|row| row.identity.id == id) {
                        Some(row) => Some(row.identity),
                        None => {
                            return Err(OrgError::Refused(OrgRefusal::Invalid {
                                field: "identity".into(),
                                detail: "no such identity in this organization (see GET /identities)".into(),
                            }));
                        }
                    },
                };
                Ok(OrgReply::Role { role, owner_name, roles: defined, identity })
            }
            OrgRequest::ListKeys { actor, filter, cursor, now } => self.list_keys(&actor, &filter, cursor, now),
            OrgRequest::Audit { actor, cursor, now } => self.audit(&actor, cursor, now),
            OrgRequest::SignInFailed { target, detail, audit_id, now } => {
                self.sign_in_failed(&target, &detail, audit_id, now)
            }
            OrgRequest::LogRequests { lines, now } => self.log_requests(&lines, now),
            OrgRequest::RequestLog { actor, query, now } => self.request_log(&actor, &query, now),
            OrgRequest::KeyEvents { events } => {
                for event in events {
                    self.key_event(event)?;
                }
                Ok(OrgReply::Done)
            }
            OrgRequest::Delivered { through } => {
                self.db.run("DELETE FROM outbox WHERE seq <= ?", params![through])?;
                Ok(OrgReply::Done)
            }
            OrgRequest::Seed { actor, keys, audit, age, now } => {
                let seeded = self.seed(&actor, keys, audit, now)?;
                if let Some((key, days)) = age {
                    self.age_key(&key, days)?;
                }
                Ok(seeded)
            }
        };
        Ok(reply?)
    }

    /// Messages owed to users' objects, oldest first.
    pub fn outbox(&self) -> Result<Vec<(i64, String, UserNotice)>, SqlError> {
        migrate(self.db)?;
        #[derive(Deserialize)]
        struct Row {
            seq: i64,
            user_id: String,
            message: String,
        }
        let rows: Vec<Row> = self.db.all("SELECT seq, user_id, message FROM outbox ORDER BY seq LIMIT 50", &[])?;
        rows.into_iter().map(|r| Ok((r.seq, r.user_id, json_column(&r.message)?))).collect()
    }

    fn organization(&self) -> Result<Option<Organization>, SqlError> {
        let row: Option<OrgRow> = self.db.first("SELECT id, name, created_at FROM organization", &[])?;
        Ok(row.map(|r| Organization { id: r.id, name: r.name, created_at: Timestamp(r.created_at) }))
    }

    /// The actor's role; not a member (or no organization at all) is a refusal.
    fn role(&self, actor: &str) -> Result<Role, Refusal> {
        let row: Option<MemberRow> =
            self.db.first("SELECT user_id, email, name, role FROM members WHERE user_id = ?", params![actor])?;
        match row {
            Some(row) => Ok(parse_role(&row.role)?),
            None => Err(Refusal::Refused(OrgRefusal::NotMember)),
        }
    }

    fn allowed(&self, actor: &str, action: OrgAction) -> Result<Role, Refusal> {
        let role = self.role(actor)?;
        self.may(role, action)?;
        Ok(role)
    }

    /// `keygate_shared::authz`'s rule for `role` and `action`, with this organization's settings.
    fn may(&self, role: Role, action: OrgAction) -> Result<(), Refusal> {
        may_act_on_org(role, action, &self.settings()?).map_err(|denial| OrgRefusal::Denied { denial }.into())
    }

    fn settings(&self) -> Result<OrganizationSettings, SqlError> {
        #[derive(Deserialize)]
        struct Row {
            value: String,
        }
        let setting = |name: &str| -> Result<Option<String>, SqlError> {
            let row: Option<Row> = self.db.first("SELECT value FROM settings WHERE name = ?", params![name])?;
            Ok(row.map(|r| r.value))
        };
        let unreadable = |name: &str, value: &str| SqlError(format!("unreadable setting {name}: {value}"));
        let key_creation = match setting("key_creation")? {
            None => KeyCreation::default(),
            Some(v) => KeyCreation::parse(&v).ok_or_else(|| unreadable("key_creation", &v))?,
        };
        let leak_response = match setting("leak_response")? {
            None => LeakResponse::default(),
            Some(v) => LeakResponse::parse(&v).ok_or_else(|| unreadable("leak_response", &v))?,
        };
        Ok(OrganizationSettings { key_creation, leak_response })
    }

    fn update_settings(&self, actor: &str, change: UpdateSettingsRequest, audit_id: String, now: Timestamp) -> Answer {
        self.allowed(actor, OrgAction::ChangeSettings)?;
        let before = self.settings()?;
        let after = change
            .apply_to(before)
            .map_err(|p| OrgRefusal::Invalid { field: String::from("key_creation"), detail: p.detail })?;
        let mut changed = Vec::new();
        for (name, old, new) in [
            ("key_creation", before.key_creation.as_str(), after.key_creation.as_str()),
            ("leak_response", before.leak_response.as_str(), after.leak_response.as_str()),
        ] {
            if old != new {
                self.db.run(
                    "INSERT INTO settings (name, value) VALUES (?, ?) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![name, new],
                )?;
                changed.push(format!("{}: {old} → {new}", name.replace('_', " ")));
            }
        }
        if !changed.is_empty() {
            let detail = changed.join("; ");
            let event = self.audit_event(audit_id, now, Some(actor), AuditAction::ChangeSettings, None, detail)?;
            self.record(&event, None)?;
        }
        Ok(OrgReply::Settings { settings: after })
    }

    fn view(&self, role: Role) -> Result<OrganizationView, Refusal> {
        let org = self.organization()?.ok_or(OrgRefusal::NotMember)?;
        Ok(OrganizationView { id: org.id, name: org.name, role, created_at: org.created_at })
    }

    /// `detail` with each member's user id (`usr_…`) it mentions followed by their name, so an event such as "activated
    /// (revoked by usr_…)" names both people.
    fn with_names(&self, detail: &str) -> Result<String, SqlError> {
        let mut out = String::with_capacity(detail.len());
        let mut rest = detail;
        while let Some(at) = rest.find("usr_") {
            let (before, from) = rest.split_at(at);
            out.push_str(before);
            let id_len = 4 + from[4..].bytes().take_while(u8::is_ascii_alphanumeric).count();
            let id = &from[..id_len];
            out.push_str(id);
            #[derive(Deserialize)]
            struct Name {
                name: String,
            }
            if let Some(member) = self.db.first::<Name>("SELECT name FROM members WHERE user_id = ?", params![id])? {
                out.push_str(&format!(" ({})", member.name));
            }
            rest = &from[id_len..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Appends an audit row; `target_owner` lets members read events about their own keys. Answers whether the
    /// event is new (a repeated delivery of an event already recorded changes nothing).
    fn record(&self, event: &AuditEvent, target_owner: Option<&str>) -> Result<bool, SqlError> {
        if self.db.count("SELECT count(*) AS n FROM audit WHERE id = ?", params![event.id.as_str()])? > 0 {
            return Ok(false);
        }
        self.db.run(
            "INSERT OR IGNORE INTO audit (id, at, actor, action, target, target_owner, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            params![
                event.id.as_str(),
                event.at,
                event.actor.clone(),
                event.action.as_str(),
                event.target.clone(),
                target_owner,
                cut(&self.with_names(&event.detail)?, limits::AUDIT_DETAIL_CHARS)
            ],
        )?;
        // Retention, by count and by age, amortized over a hundred inserts.
        let seq = self.db.count("SELECT seq AS n FROM audit WHERE id = ?", params![event.id.as_str()])?;
        if seq % 100 == 0 {
            self.db.run("DELETE FROM audit WHERE seq <= ?", params![seq - limits::AUDIT_ROWS])?;
            self.db.run("DELETE FROM audit WHERE at < ?", params![event.at.millis() - limits::AUDIT_RETENTION_MS])?;
            self.db.run("DELETE FROM signin_failures WHERE minute < ?", params![event.at.millis() / 60_000 - 60])?;
        }
        Ok(true)
    }

    fn audit_event(
        &self,
        id: String,
        now: Timestamp,
        actor: Option<&str>,
        action: AuditAction,
        target: Option<String>,
        detail: String,
    ) -> Result<AuditEvent, SqlError> {
        let organization = self.organization()?.map(|o| o.id).unwrap_or_default();
        Ok(AuditEvent {
            id,
            at: now,
            organization,
            actor: actor.map(str::to_owned),
            actor_name: None,
            action,
            target,
            detail,
        })
    }

    fn notify(&self, user: &str, notice: &UserNotice) -> Result<(), SqlError> {
        self.db.run("INSERT INTO outbox (user_id, message) VALUES (?, ?)", params![user, to_json(notice)])
    }

    fn create(&self, organization: &Organization, owner: &NewMember, audit: AuditEvent) -> Result<OrgReply, Refusal> {
        if let Some(existing) = self.organization()? {
            if existing.id != organization.id {
                return Err(SqlError(String::from("an object holds another organization")).into());
            }
            return Ok(OrgReply::Done);
        }
        self.db.run(
            "INSERT INTO organization (id, name, created_at) VALUES (?, ?, ?)",
            params![organization.id.as_str(), organization.name.as_str(), organization.created_at],
        )?;
        self.add_member(owner, organization.created_at)?;
        self.record(&audit, None)?;
        let view = OrganizationView {
            id: organization.id.clone(),
            name: organization.name.clone(),
            role: owner.role,
            created_at: organization.created_at,
        };
        self.notify(&owner.user, &UserNotice::Joined { organization: view })?;
        Ok(OrgReply::Done)
    }

    fn add_member(&self, member: &NewMember, now: Timestamp) -> Result<(), Refusal> {
        if self.db.count("SELECT count(*) AS n FROM members", &[])? >= limits::MEMBERS {
            return Err(OrgRefusal::Full { detail: "An organization has at most 1,000 members.".into() }.into());
        }
        self.db.run(
            "INSERT INTO members (user_id, email, name, role, joined_at) VALUES (?, ?, ?, ?, ?)",
            params![member.user.as_str(), member.email.as_str(), member.name.as_str(), role_text(member.role), now],
        )?;
        Ok(())
    }

    fn session(&self, actor: &str) -> Result<OrgReply, Refusal> {
        let role = self.role(actor)?;
        Ok(OrgReply::Session {
            organization: self.view(role)?,
            permissions: self.catalog()?,
            settings: self.settings()?,
            roles: self.roles()?,
        })
    }

    /// The permission catalog: every permission live keys hold and every one described, by name (bounded).
    fn catalog(&self) -> Result<Vec<PermissionInfo>, SqlError> {
        #[derive(Deserialize)]
        struct P {
            name: String,
            keys: i64,
            description: Option<String>,
        }
        let rows: Vec<P> = self.db.all(
            "SELECT name, max(keys) AS keys, max(description) AS description FROM ( \
               SELECT name, keys, NULL AS description FROM permissions WHERE keys > 0 \
               UNION ALL SELECT name, 0 AS keys, description FROM permission_descriptions) \
             GROUP BY name ORDER BY name LIMIT 2000",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .map(|p| PermissionInfo {
                name: p.name,
                keys: u64::try_from(p.keys).unwrap_or(0),
                description: p.description,
            })
            .collect())
    }

    fn describe_permission(
        &self,
        actor: &str,
        name: &str,
        description: Option<String>,
        audit_id: String,
        now: Timestamp,
    ) -> Answer {
        self.allowed(actor, OrgAction::DescribePermissions)?;
        match &description {
            Some(text) => {
                let known =
                    self.db.count("SELECT count(*) AS n FROM permission_descriptions WHERE name = ?", params![name])?;
                if known == 0
                    && self.db.count("SELECT count(*) AS n FROM permission_descriptions", &[])? >= limits::PERMISSIONS
                {
                    return Err(OrgRefusal::Full {
                        detail: "An organization describes at most 1,000 permissions.".into(),
                    }
                    .into());
                }
                self.db.run(
                    "INSERT INTO permission_descriptions (name, description) VALUES (?, ?) \
                     ON CONFLICT (name) DO UPDATE SET description = excluded.description",
                    params![name, text.as_str()],
                )?;
            }
            None => {
                self.db.run("DELETE FROM permission_descriptions WHERE name = ?", params![name])?;
            }
        }
        let detail = format!("{name}: {}", description.as_deref().unwrap_or("(no description)"));
        let event = self.audit_event(
            audit_id,
            now,
            Some(actor),
            AuditAction::DescribePermission,
            Some(name.to_owned()),
            detail,
        )?;
        self.record(&event, None)?;
        let info = self.catalog()?.into_iter().find(|p| p.name == name);
        let info = info.unwrap_or(PermissionInfo { name: name.to_owned(), keys: 0, description: None });
        Ok(OrgReply::Permissions { permissions: vec![info] })
    }

    fn members(&self, actor: &str) -> Result<OrgReply, Refusal> {
        self.allowed(actor, OrgAction::ListMembers)?;
        let rows: Vec<MemberRow> =
            self.db.all("SELECT user_id, email, name, role FROM members ORDER BY joined_at, user_id", &[])?;
        let members = rows
            .into_iter()
            .map(|r| Ok(MemberView { id: r.user_id, email: r.email, name: r.name, role: parse_role(&r.role)? }))
            .collect::<Result<_, SqlError>>()?;
        Ok(OrgReply::Members { members })
    }

    fn invite(&self, actor: &str, invitation: NewInvitation, audit_id: String, now: Timestamp) -> Answer {
        let action = if invitation.role == Role::Owner { OrgAction::InviteOwner } else { OrgAction::Invite };
        self.allowed(actor, action)?;
        let pending = self
            .db
            .count("SELECT count(*) AS n FROM invitations WHERE state = 'pending' AND expires_at > ?", params![now])?;
        if pending >= limits::PENDING_INVITATIONS {
            return Err(OrgRefusal::Full {
                detail: "An organization has at most 200 pending invitations: revoke some first.".into(),
            }
            .into());
        }
        self.db.run(
            "INSERT INTO invitations (id, code_hash, email, name, role, invited_by, created_at, expires_at, state) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
            params![
                invitation.id.as_str(),
                invitation.code_hash.as_str(),
                invitation.email.as_str(),
                invitation.name.as_str(),
                role_text(invitation.role),
                actor,
                now,
                invitation.expires_at
            ],
        )?;
        let detail = format!("{} as {}", invitation.email, invitation.role.as_str());
        let event = self.audit_event(
            audit_id,
            now,
            Some(actor),
            AuditAction::InviteMember,
            Some(invitation.id.clone()),
            detail,
        )?;
        self.record(&event, None)?;
        let view = InvitationView {
            id: invitation.id,
            email: invitation.email,
            name: invitation.name,
            role: invitation.role,
            invited_by: actor.to_owned(),
            created_at: now,
            expires_at: invitation.expires_at,
        };
        Ok(OrgReply::Invitation { invitation: view })
    }

    fn invitations(&self, actor: &str, now: Timestamp) -> Answer {
        self.allowed(actor, OrgAction::ManageInvitations)?;
        let rows: Vec<InvitationRow> = self.db.all(
            "SELECT id, email, name, role, invited_by, created_at, expires_at, state, user_id FROM invitations \
             WHERE state = 'pending' AND expires_at > ? ORDER BY created_at DESC LIMIT 200",
            params![now],
        )?;
        let invitations = rows.iter().map(InvitationRow::view).collect::<Result<_, _>>()?;
        Ok(OrgReply::Invitations { invitations })
    }

    fn revoke_invitation(&self, actor: &str, id: &str, audit_id: String, now: Timestamp) -> Answer {
        self.allowed(actor, OrgAction::ManageInvitations)?;
        let row: Option<InvitationRow> = self.db.first(
            "SELECT id, email, name, role, invited_by, created_at, expires_at, state, user_id FROM invitations \
             WHERE id = ? AND state = 'pending'",
            params![id],
        )?;
        let Some(row) = row else { return Err(OrgRefusal::NotFound { what: "invitation".into() }.into()) };
        self.db.run("UPDATE invitations SET state = 'revoked' WHERE id = ?", params![id])?;
        let event = self.audit_event(
            audit_id,
            now,
            Some(actor),
            AuditAction::RevokeInvitation,
            Some(row.id.clone()),
            row.email.clone(),
        )?;
        self.record(&event, None)?;
        Ok(OrgReply::Done)
    }

    fn join(&self, code_hash: &str, member: NewMember, audit_id: String, now: Timestamp, how: Join) -> Answer {
        let gone = |detail: &str| {
            Refusal::Refused(OrgRefusal::InvitationGone { code: "INVITATION_INVALID".into(), detail: detail.into() })
        };
        let row: Option<InvitationRow> = self.db.first(
            "SELECT id, email, name, role, invited_by, created_at, expires_at, state, user_id FROM invitations \
             WHERE code_hash = ?",
            params![code_hash],
        )?;
        // An unknown code and a code of another organization look the same.
        let Some(row) = row else { return Err(gone("This invitation code is not valid.")) };
        let role = parse_role(&row.role)?;
        let organization = self.view(role)?;
        match (row.state.as_str(), how) {
            // A redemption that stopped half way resumes for the user it created, so it can be retried.
            ("claimed", Join::Claim) => {
                let user = row.user_id.clone().unwrap_or_default();
                return Ok(OrgReply::Joined { organization, user, invitation: row.id });
            }
            ("pending", _) => {}
            ("revoked", _) => return Err(gone("This invitation was revoked; ask for a new one.")),
            _ => return Err(gone("This invitation has been used already; ask for a new one.")),
        }
        if now.millis() >= row.expires_at {
            return Err(gone("This invitation has expired; ask for a new one."));
        }
        let existing =
            self.db.count("SELECT count(*) AS n FROM members WHERE user_id = ?", params![member.user.as_str()])?;
        if existing > 0 {
            return Err(OrgRefusal::Conflict {
                code: "ALREADY_MEMBER".into(),
                detail: "You are already a member of this organization.".into(),
            }
            .into());
        }
        // A new user is who the invitation was made out to (under the name they chose, if any).
        let member = match how {
            Join::Claim => NewMember {
                email: row.email.clone(),
                name: if member.name.is_empty() { row.name.clone() } else { member.name },
                role,
                ..member
            },
            Join::Accept => NewMember { role, ..member },
        };
        self.add_member(&member, now)?;
        let state = match how {
            Join::Claim => "claimed",
            Join::Accept => "redeemed",
        };
        self.db.run(
            "UPDATE invitations SET state = ?, user_id = ?, redeemed_at = ? WHERE id = ?",
            params![state, member.user.as_str(), now, row.id.as_str()],
        )?;
        let detail = format!("{} joined as {}", member.email, role.as_str());
        let event = self.audit_event(
            audit_id,
            now,
            Some(&member.user),
            AuditAction::JoinOrganization,
            Some(row.id.clone()),
            detail,
        )?;
        self.record(&event, None)?;
        self.notify(&member.user, &UserNotice::Joined { organization: organization.clone() })?;
        Ok(OrgReply::Joined { organization, user: member.user, invitation: row.id })
    }

    fn remove_member(&self, actor: &str, user: &str, audit_id: String, now: Timestamp) -> Answer {
        let actor_role = self.role(actor)?;
        let row: Option<MemberRow> =
            self.db.first("SELECT user_id, email, name, role FROM members WHERE user_id = ?", params![user])?;
        let Some(row) = row else { return Err(OrgRefusal::NotFound { what: "member".into() }.into()) };
        let role = parse_role(&row.role)?;
        // Anyone may leave; removing someone else takes a manager (an owner, for another owner).
        if actor != user {
            let action = if role == Role::Owner { OrgAction::RemoveOwner } else { OrgAction::RemoveMember };
            self.may(actor_role, action)?;
        }
        if role == Role::Owner && self.db.count("SELECT count(*) AS n FROM members WHERE role = 'owner'", &[])? <= 1 {
            return Err(OrgRefusal::Conflict {
                code: "LAST_OWNER".into(),
                detail: "An organization keeps at least one owner: make someone else owner first.".into(),
            }
            .into());
        }
        self.db.run("DELETE FROM members WHERE user_id = ?", params![user])?;
        let detail = format!("{} ({})", row.email, role.as_str());
        let event =
            self.audit_event(audit_id, now, Some(actor), AuditAction::RemoveMember, Some(user.to_owned()), detail)?;
        self.record(&event, Some(user))?;
        let organization = self.organization()?.map(|o| o.id).unwrap_or_default();
        self.notify(user, &UserNotice::Left { organization })?;
        Ok(OrgReply::Done)
    }

    fn projects(&self) -> Result<Vec<Project>, SqlError> {
        let organization = self.organization()?.map(|o| o.id).unwrap_or_default();
        let rows: Vec<ProjectRow> =
            self.db.all("SELECT id, slug, name, created_at FROM projects ORDER BY created_at, slug", &[])?;
        Ok(rows
            .into_iter()
            .map(|r| Project {
                id: r.id,
                organization: organization.clone(),
                slug: r.slug,
                name: r.name,
                created_at: Timestamp(r.created_at),
            })
            .collect())
    }

    fn create_project(&self, actor: &str, project: Project, audit_id: String, now: Timestamp) -> Answer {
        self.allowed(actor, OrgAction::ManageProjects)?;
        if self.db.count("SELECT count(*) AS n FROM projects WHERE slug = ?", params![project.slug.as_str()])? > 0 {
            return Err(OrgRefusal::Conflict {
                code: "CONFLICT".into(),
                detail: "A project with this slug already exists in the organization.".into(),
            }
            .into());
        }
        if self.db.count("SELECT count(*) AS n FROM projects", &[])? >= limits::PROJECTS {
            return Err(OrgRefusal::Full { detail: "An organization has at most 1,000 projects.".into() }.into());
        }
        self.db.run(
            "INSERT INTO projects (id, slug, name, created_at) VALUES (?, ?, ?, ?)",
            params![project.id.as_str(), project.slug.as_str(), project.name.as_str(), project.created_at],
        )?;
        let event = self.audit_event(
            audit_id,
            now,
            Some(actor),
            AuditAction::CreateProject,
            Some(project.slug.clone()),
            project.name.clone(),
        )?;
        self.record(&event, None)?;
        let organization = self.organization()?.map(|o| o.id).unwrap_or_default();
        Ok(OrgReply::Project { project: Project { organization, ..project } })
    }

    fn rename_project(&self, actor: &str, id: &str, name: &str, audit_id: String, now: Timestamp) -> Answer {
        self.allowed(actor, OrgAction::ManageProjects)?;
        let Some(mut project) = self.projects()?.into_iter().find(|p| p.id == id || p.slug == id) else {
            return Err(OrgRefusal::NotFound { what: "project".into() }.into());
        };
        self.db.run("UPDATE projects SET name = ? WHERE id = ?", params![name, project.id.as_str()])?;
        let detail = format!("{} → {name}", project.name);
        let event = self.audit_event(
            audit_id,
            now,
            Some(actor),
            AuditAction::RenameProject,
            Some(project.slug.clone()),
            detail,
        )?;
        self.record(&event, None)?;
        project.name = name.to_owned();
        Ok(OrgReply::Project { project })
    }

    /// One page of keys, filtered and sorted in SQL (newest first), from the index alone.
    fn list_keys(&self, actor: &str, filter: &KeyFilter, cursor: Option<String>, now: Timestamp) -> Answer {
        let role = self.role(actor)?;
        let mut sql = String::from(
            "SELECT k.row AS row, k.last_used_at AS last_used_at, k.usage_total AS usage_total, \
             k.usage_24h AS usage_24h, k.recent_errors AS recent_errors, m.name AS owner_name, \
             u.remaining AS remaining FROM keys k LEFT JOIN members m ON m.user_id = k.owner \
             LEFT JOIN uses_left u ON u.id = k.id WHERE k.deleted = 0",
        );
        let mut args: Vec<SqlValue> = Vec::new();
        let mut and = |clause: &str, values: Vec<SqlValue>| {
            sql.push_str(" AND ");
            sql.push_str(clause);
            args.extend(values);
        };
        if !role.manages_all_keys() {
            and("k.owner = ?", vec![actor.into()]);
        }
        if let Some(owner) = &filter.owner {
            and("k.owner = ?", vec![owner.into()]);
        }
        if let Some(project) = &filter.project {
            and("k.project = ?", vec![project.into()]);
        }
        if let Some(environment) = filter.environment {
            and("k.environment = ?", vec![environment.as_str().into()]);
        }
        if let Some(kind) = filter.kind {
            and("json_extract(k.row, '$.kind') = ?", vec![kind.as_str().into()]);
        }
        match filter.status {
            Some(KeyStatus::Active) => {
                and("k.state = 'active' AND (k.expires_at IS NULL OR k.expires_at > ?)", vec![now.into()])
            }
            Some(KeyStatus::Expired) => {
                and("k.state = 'active' AND k.expires_at IS NOT NULL AND k.expires_at <= ?", vec![now.into()])
            }
            Some(KeyStatus::Inactive) => and("k.state = 'revoked'", vec![]),
            Some(KeyStatus::Deactivated) => and("k.state = 'deactivated'", vec![]),
            None if !filter.include_deactivated => and("k.state != 'deactivated'", vec![]),
            None => {}
        }
        if let Some(cursor) = &cursor {
            let (at, id) = parse_cursor(cursor).ok_or_else(|| OrgRefusal::Invalid {
                field: "cursor".into(),
                detail: "use the next_cursor of a page".into(),
            })?;
            and("(k.created_at < ? OR (k.created_at = ? AND k.id < ?))", vec![at.into(), at.into(), id.into()]);
        }
        sql.push_str(" ORDER BY k.created_at DESC, k.id DESC LIMIT ?");
        args.push((limits::PAGE + 1).into());
        #[derive(Deserialize)]
        struct Listed {
            row: String,
            last_used_at: Option<i64>,
            usage_total: i64,
            usage_24h: i64,
            recent_errors: i64,
            owner_name: Option<String>,
            remaining: Option<i64>,
        }
        let mut rows: Vec<Listed> = self.db.all(&sql, &args)?;
        let more = rows.len() as i64 > limits::PAGE;
        rows.truncate(limits::PAGE as usize);
        let mut keys = Vec::with_capacity(rows.len());
        for listed in rows {
            let row: KeyIndexRow = json_column(&listed.row)?;
            let usage = UsageSummary {
                total: u64::try_from(listed.usage_total).unwrap_or(0),
                last_24h: u64::try_from(listed.usage_24h).unwrap_or(0),
                recent_errors: u32::try_from(listed.recent_errors).unwrap_or(0),
                remaining: listed.remaining.map(|n| u64::try_from(n).unwrap_or(0)),
            };
            let mut view = key_view(&row, now, listed.last_used_at.map(Timestamp), usage);
            view.owner_name = listed.owner_name;
            keys.push(view);
        }
        let next_cursor = more.then(|| keys.last().map(|k| format!("{}.{}", k.created_at.millis(), k.id))).flatten();
        Ok(OrgReply::Keys { list: KeyList { keys, next_cursor } })
    }

    fn audit(&self, actor: &str, cursor: Option<i64>, _now: Timestamp) -> Answer {
        let role = self.role(actor)?;
        let everything = may_act_on_org(role, OrgAction::ReadAllAudit, &self.settings()?).is_ok();
        let before = cursor.unwrap_or(i64::MAX);
        #[derive(Deserialize)]
        struct Row {
            seq: i64,
            id: String,
            at: i64,
            actor: Option<String>,
            actor_name: Option<String>,
            action: String,
            target: Option<String>,
            detail: String,
        }
        let columns = "SELECT a.seq AS seq, a.id AS id, a.at AS at, a.actor AS actor, m.name AS actor_name, \
                       a.action AS action, a.target AS target, a.detail AS detail \
                       FROM audit a LEFT JOIN members m ON m.user_id = a.actor";
        let limit = limits::PAGE + 1;
        let rows: Vec<Row> = if everything {
            self.db.all(&format!("{columns} WHERE a.seq < ? ORDER BY a.seq DESC LIMIT ?"), params![before, limit])?
        } else {
            // A member reads what they did and what was done to their keys.
            self.db.all(
                &format!(
                    "{columns} WHERE a.seq < ? AND (a.actor = ? OR a.target_owner = ?) ORDER BY a.seq DESC LIMIT ?"
                ),
                params![before, actor, actor, limit],
            )?
        };
        let organization = self.organization()?.map(|o| o.id).unwrap_or_default();
        let more = rows.len() as i64 > limits::PAGE;
        let mut events = Vec::new();
        let mut last = None;
        for row in rows.into_iter().take(limits::PAGE as usize) {
            last = Some(row.seq);
            events.push(AuditEvent {
                id: row.id,
                at: Timestamp(row.at),
                organization: organization.clone(),
                actor: row.actor,
                actor_name: row.actor_name,
                action: AuditAction::parse(&row.action).ok_or_else(|| SqlError(format!("action `{}`", row.action)))?,
                target: row.target,
                detail: row.detail,
            });
        }
        let next_cursor = if more { last.map(|seq| seq.to_string()) } else { None };
        Ok(OrgReply::Audit { page: AuditPage { events, next_cursor } })
    }

    /// Stores lines of the request log, then keeps the bounds: per key (for the keys in this batch), in all (by
    /// order of arrival, in constant time), and in age.
    fn log_requests(&self, lines: &[LoggedRequest], now: Timestamp) -> Answer {
        use keygate_shared::requestlog::{MAX_PER_KEY, MAX_PER_ORGANIZATION, RETENTION_MS};
        if self.organization()?.is_none() {
            return Ok(OrgReply::Done);
        }
        let mut keys = std::collections::BTreeSet::new();
        for line in lines {
            let line = line.clone().bounded();
            if line.at.millis() < now.millis() - RETENTION_MS {
                continue;
            }
            self.db.run(
                "INSERT OR IGNORE INTO request_log (id, at, key_id, method, path, status, code, latency_ms, client_ip, \
                 organization) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    line.id.as_str(),
                    line.at,
                    line.key_id.as_str(),
                    line.method.as_str(),
                    line.path.as_str(),
                    u32::from(line.status),
                    line.code.clone(),
                    line.latency_ms,
                    line.client_ip.clone(),
                    line.organization.as_str()
                ],
            )?;
            match line.code.as_deref() {
                Some("NOT_FOUND") => self.trip(&line)?,
                Some("RATE_LIMITED") => self.rate_limited(&line)?,
                _ => {}
            }
            self.permission_used(&line)?;
            keys.insert(line.key_id);
        }
        #[derive(Deserialize)]
        struct Edge {
            at: i64,
            id: String,
        }
        for key in keys {
            // The newest line past the key's bound, if there is one: it and everything older go.
            let edge: Option<Edge> = self.db.first(
                "SELECT at, id FROM request_log WHERE key_id = ? ORDER BY at DESC, id DESC LIMIT 1 OFFSET ?",
                params![key.as_str(), MAX_PER_KEY],
            )?;
            if let Some(edge) = edge {
                self.db.run(
                    "DELETE FROM request_log WHERE key_id = ? AND (at, id) <= (?, ?)",
                    params![key.as_str(), edge.at, edge.id],
                )?;
            }
        }
        let newest = self.db.count("SELECT max(seq) AS n FROM request_log", &[])?;
        self.db.run("DELETE FROM request_log WHERE seq <= ?", params![newest - MAX_PER_ORGANIZATION])?;
        self.db.run("DELETE FROM request_log WHERE at < ?", params![now.millis() - RETENTION_MS])?;
        Ok(OrgReply::Done)
    }

    /// A page of the request log. A member sees their own keys' lines; naming a key they may not see is 404.
    /// Refuses, as not found, a live key of the index that `actor` (with `role`) may not see: the key rule's
    /// `View` (owners and admins see every key, a member their own).
    fn visible_key(&self, actor: &str, role: Role, key: &KeyId) -> Result<(), Refusal> {
        #[derive(Deserialize)]
        struct Owner {
            owner: String,
        }
        let owner: Option<Owner> =
            self.db.first("SELECT owner FROM keys WHERE id = ? AND deleted = 0", params![key.as_str()])?;
        let facts = owner.as_ref().map(|o| KeyFacts { owner: &o.owner, revoked_by: None });
        if facts.is_none_or(|facts| may_act_on_key(role, actor, facts, KeyAction::View).is_err()) {
            return Err(OrgRefusal::NotFound { what: "key".into() }.into());
        }
        Ok(())
    }

    fn request_log(&self, actor: &str, query: &LogQuery, now: Timestamp) -> Answer {
        use keygate_shared::requestlog::{Cursor, RETENTION_MS};
        let role = self.role(actor)?;
        let mut sql = String::from(
            "SELECT id, at, key_id, method, path, status, code, latency_ms, client_ip, organization \
             FROM request_log WHERE at >= ?",
        );
        let mut args: Vec<SqlValue> = vec![(now.millis() - RETENTION_MS).into()];
        if let Some(key) = &query.key {
            #[derive(Deserialize)]
            struct Owner {
                owner: String,
            }
            let owner: Option<Owner> = self.db.first("SELECT owner FROM keys WHERE id = ?", params![key.as_str()])?;
            let facts = owner.as_ref().map(|o| KeyFacts { owner: &o.owner, revoked_by: None });
            if facts.is_none_or(|facts| may_act_on_key(role, actor, facts, KeyAction::View).is_err()) {
                return Err(OrgRefusal::NotFound { what: "key".into() }.into());
            }
            sql.push_str(" AND key_id = ?");
            args.push(key.into());
        } else if !role.manages_all_keys() {
            sql.push_str(" AND key_id IN (SELECT id FROM keys WHERE owner = ?)");
            args.push(actor.into());
        }
        if let Some(method) = &query.method {
            sql.push_str(" AND method = ?");
            args.push(method.into());
        }
        if let Some(status) = query.status {
            let (low, high) = status.range();
            sql.push_str(" AND status BETWEEN ? AND ?");
            args.push(u32::from(low).into());
            args.push(u32::from(high).into());
        }
        if let Some(code) = &query.code {
            sql.push_str(" AND code = ?");
            args.push(code.into());
        }
        if let Some(path) = &query.path {
            // A prefix match on the bytes (`LIKE` would read `%` and `_` in the prefix as wildcards).
            sql.push_str(" AND substr(path, 1, length(?)) = ?");
            args.push(path.into());
            args.push(path.into());
        }
        if let Some(Cursor { at, id }) = &query.cursor {
            sql.push_str(" AND (at, id) < (?, ?)");
            args.push((*at).into());
            args.push(id.into());
        }
        sql.push_str(" ORDER BY at DESC, id DESC LIMIT ?");
        args.push(i64::try_from(query.limit + 1).unwrap_or(i64::MAX).into());
        #[derive(Deserialize)]
        struct Row {
            id: String,
            at: i64,
            key_id: String,
            method: String,
            path: String,
            status: i64,
            code: Option<String>,
            latency_ms: i64,
            client_ip: Option<String>,
            organization: String,
        }
        let rows: Vec<Row> = self.db.all(&sql, &args)?;
        let more = rows.len() > query.limit;
        let requests: Vec<LoggedRequest> = rows
            .into_iter()
            .take(query.limit)
            .map(|r| LoggedRequest {
                id: r.id,
                at: Timestamp(r.at),
                key_id: r.key_id,
                method: r.method,
                path: r.path,
                status: u16::try_from(r.status).unwrap_or(0),
                code: r.code,
                latency_ms: u32::try_from(r.latency_ms).unwrap_or(u32::MAX),
                client_ip: r.client_ip,
                organization: r.organization,
                user_agent: None,
                country: None,
                permission: None,
            })
            .collect();
        let next_cursor = if more { requests.last().map(Cursor::of) } else { None };
        Ok(OrgReply::RequestLog { page: RequestLogPage { requests, next_cursor } })
    }

    fn sign_in_failed(&self, target: &str, detail: &str, audit_id: String, now: Timestamp) -> Answer {
        if self.organization()?.is_none() {
            return Ok(OrgReply::Done);
        }
        let minute = now.millis() / 60_000;
        let seen = self
            .db
            .count("SELECT count AS n FROM signin_failures WHERE target = ? AND minute = ?", params![target, minute])?;
        self.db.run(
            "INSERT INTO signin_failures (target, minute, count) VALUES (?, ?, 1) \
             ON CONFLICT (target, minute) DO UPDATE SET count = count + 1",
            params![target, minute],
        )?;
        // Key ids are public: anyone can make sign-ins fail for any key. One row a minute per key, whatever comes.
        if seen == 0 {
            let event = self.audit_event(
                audit_id,
                now,
                None,
                AuditAction::SignInFailed,
                Some(target.to_owned()),
                cut(detail, limits::AUDIT_DETAIL_CHARS),
            )?;
            self.record(&event, None)?;
        }
        Ok(OrgReply::Done)
    }

    fn key_event(&self, event: KeyEvent) -> Result<(), Refusal> {
        match event {
            KeyEvent::Committed { row, audit } => {
                #[derive(Deserialize)]
                struct Current {
                    revision: i64,
                    row: String,
                }
                let current: Option<Current> =
                    self.db.first("SELECT revision, row FROM keys WHERE id = ?", params![row.id.as_str()])?;
                let revision = i64::try_from(row.revision).unwrap_or(i64::MAX);
                if current.as_ref().is_some_and(|c| c.revision >= revision) {
                    // Late or repeated: a newer revision is already here. Its audit event still counts once.
                    if let Some(audit) = &audit
                        && self.record(audit, Some(&row.owner))?
                    {
                        self.raise(audit, Some(&row))?;
                    }
                    return Ok(());
                }
                if current.is_none() && self.db.count("SELECT count(*) AS n FROM keys", &[])? >= limits::KEYS {
                    return Err(OrgRefusal::Full { detail: "An organization has at most 100,000 keys.".into() }.into());
                }
                let old: Vec<String> = match &current {
                    Some(c) => {
                        let old: KeyIndexRow = json_column(&c.row)?;
                        old.permissions.iter().map(|p| p.as_str().to_owned()).collect()
                    }
                    None => Vec::new(),
                };
                let new: Vec<String> = if row.state == KeyState::Deactivated {
                    Vec::new()
                } else {
                    row.permissions.iter().map(|p| p.as_str().to_owned()).collect()
                };
                self.adjust_permissions(&old, &new)?;
                self.hold(row.id.as_str(), &row.roles, row.identity.as_ref())?;
                self.db.run(
                    "INSERT INTO keys (id, owner, environment, project, state, expires_at, created_at, revision, \
                     deleted, row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO UPDATE SET \
                     owner = excluded.owner, environment = excluded.environment, project = excluded.project, \
                     state = excluded.state, expires_at = excluded.expires_at, revision = excluded.revision, \
                     deleted = 0, row = excluded.row",
                    params![
                        row.id.as_str(),
                        row.owner.as_str(),
                        row.environment.as_str(),
                        row.project.clone(),
                        state_text(row.state),
                        row.expires_at,
                        row.created_at,
                        revision,
                        to_json(&row)
                    ],
                )?;
                if let Some(audit) = &audit
                    && self.record(audit, Some(&row.owner))?
                {
                    self.raise(audit, Some(&row))?;
                }
            }
            KeyEvent::Deleted { id, owner, revision, audit, .. } => {
                #[derive(Deserialize)]
                struct Current {
                    revision: i64,
                    row: String,
                    deleted: i64,
                }
                let revision = i64::try_from(revision).unwrap_or(i64::MAX);
                let current: Option<Current> =
                    self.db.first("SELECT revision, row, deleted FROM keys WHERE id = ?", params![id.as_str()])?;
                let last_row: Option<KeyIndexRow> = current.as_ref().map(|c| json_column(&c.row)).transpose()?;
                if let Some(current) = current.filter(|c| c.revision < revision) {
                    if current.deleted == 0 {
                        let old: KeyIndexRow = json_column(&current.row)?;
                        let old: Vec<String> = old.permissions.iter().map(|p| p.as_str().to_owned()).collect();
                        self.adjust_permissions(&old, &[])?;
                    }
                    self.hold(id.as_str(), &[], None)?;
                    self.db.run("DELETE FROM key_sync WHERE key_id = ?", params![id.as_str()])?;
                    self.db.run("DELETE FROM permission_use WHERE key_id = ?", params![id.as_str()])?;
                    self.db.run("DELETE FROM key_alerts WHERE key_id = ?", params![id.as_str()])?;
                    // A tombstone keeps the revision, so an older event arriving later cannot bring the key back.
                    self.db.run(
                        "UPDATE keys SET deleted = 1, revision = ?, state = 'deactivated' WHERE id = ?",
                        params![revision, id.as_str()],
                    )?;
                }
                if let Some(audit) = &audit
                    && self.record(audit, Some(&owner))?
                {
                    self.raise(audit, last_row.as_ref())?;
                }
            }
            KeyEvent::Usage { id, at, last_used_at, summary, by_organization, .. } => {
                #[derive(Deserialize)]
                struct Previous {
                    usage_at: Option<i64>,
                    row: String,
                }
                let previous: Option<Previous> =
                    self.db.first("SELECT usage_at, row FROM keys WHERE id = ?", params![id.as_str()])?;
                let Some(previous) = previous else { return Ok(()) };
                if previous.usage_at.is_some_and(|t| t >= at.millis()) {
                    return Ok(());
                }
                #[derive(Deserialize)]
                struct Left {
                    remaining: i64,
                }
                let left_before: Option<Left> =
                    self.db.first("SELECT remaining FROM uses_left WHERE id = ?", params![id.as_str()])?;
                self.db.run(
                    "UPDATE keys SET last_used_at = ?, usage_total = ?, usage_24h = ?, recent_errors = ?, \
                     usage_at = ? WHERE id = ?",
                    params![
                        last_used_at,
                        i64::try_from(summary.total).unwrap_or(i64::MAX),
                        i64::try_from(summary.last_24h).unwrap_or(i64::MAX),
                        i64::from(summary.recent_errors),
                        at,
                        id.as_str()
                    ],
                )?;
                match summary.remaining {
                    Some(n) => {
                        self.db.run(
                            "INSERT OR REPLACE INTO uses_left (id, remaining) VALUES (?, ?)",
                            params![id.as_str(), i64::try_from(n).unwrap_or(i64::MAX)],
                        )?;
                        let before = left_before.map(|l| u64::try_from(l.remaining).unwrap_or(0));
                        self.uses_changed(&json_column(&previous.row)?, before, n, at)?;
                    }
                    None => self.db.run("DELETE FROM uses_left WHERE id = ?", params![id.as_str()])?,
                }
                #[derive(Deserialize)]
                struct Counted {
                    requests: i64,
                }
                // At most the key's 64 organizations (and "other"): a usage summary costs no more.
                for (organization, requests) in by_organization.iter().take(MAX_USAGE_ORGANIZATIONS + 1) {
                    let total = i64::try_from(*requests).unwrap_or(i64::MAX);
                    let before: Option<Counted> = self.db.first(
                        "SELECT requests FROM key_usage_by_org WHERE id = ? AND organization = ?",
                        params![id.as_str(), organization.as_str()],
                    )?;
                    let added = total - before.map_or(0, |c| c.requests);
                    if added <= 0 {
                        continue;
                    }
                    self.db.run(
                        "INSERT OR REPLACE INTO key_usage_by_org (id, organization, requests) VALUES (?, ?, ?)",
                        params![id.as_str(), organization.as_str(), total],
                    )?;
                    self.db.run(
                        "INSERT INTO usage_by_org (organization, requests) VALUES (?, ?) \
                         ON CONFLICT (organization) DO UPDATE SET requests = requests + excluded.requests",
                        params![organization.as_str(), added],
                    )?;
                }
            }
        }
        Ok(())
    }

    fn seed(&self, actor: &str, count: u32, audit: u32, now: Timestamp) -> Answer {
        self.allowed(actor, OrgAction::ChangeSettings)?;
        let organization = self.organization()?.map(|o| o.id).unwrap_or_default();
        for n in 0..audit {
            let id = format!("evt_seed{n}_{}", now.millis());
            let event = self.audit_event(id, now, Some(actor), AuditAction::Rename, None, format!("seeded {n}"))?;
            self.record(&event, None)?;
        }
        for n in 0..count {
            let key = keygate_shared::key::ApiKey::generate(keygate_shared::model::Environment::Live)
                .map_err(|e| SqlError(e.to_string()))?;
            let mut record = keygate_shared::model::KeyRecord::issued(
                &key,
                &organization,
                actor,
                format!("seeded {n}"),
                vec![],
                Timestamp(now.millis() - i64::from(count - n)),
            );
            record.permissions =
                keygate_shared::api::validate_permissions(&["data:read".to_owned()]).map_err(|p| SqlError(p.detail))?;
            self.key_event(KeyEvent::Committed { row: KeyIndexRow::of(&record, 1), audit: None })?;
        }
        Ok(OrgReply::Done)
    }

    /// Test seeding: the key's index row says it was created `days` earlier (until its next change).
    fn age_key(&self, id: &str, days: u32) -> Result<(), SqlError> {
        #[derive(Deserialize)]
        struct Row {
            row: String,
        }
        let Some(stored) = self.db.first::<Row>("SELECT row FROM keys WHERE id = ?", params![id])? else {
            return Ok(());
        };
        let mut row: KeyIndexRow = json_column(&stored.row)?;
        row.created_at = Timestamp(row.created_at.millis() - i64::from(days) * 86_400_000);
        self.db.run("UPDATE keys SET created_at = ?, row = ? WHERE id = ?", params![row.created_at, to_json(&row), id])
    }

    /// Keeps the permission catalog's counts: how many live keys hold each permission.
    fn adjust_permissions(&self, old: &[String], new: &[String]) -> Result<(), SqlError> {
        for gone in old.iter().filter(|p| !new.contains(p)) {
            self.db.run("UPDATE permissions SET keys = max(keys - 1, 0) WHERE name = ?", params![gone.as_str()])?;
        }
        for added in new.iter().filter(|p| !old.contains(p)) {
            let known =
                self.db.count("SELECT count(*) AS n FROM permissions WHERE name = ?", params![added.as_str()])?;
            if known == 0 && self.db.count("SELECT count(*) AS n FROM permissions", &[])? >= limits::PERMISSIONS {
                continue;
            }
            self.db.run(
                "INSERT INTO permissions (name, keys) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET keys = keys + 1",
                params![added.as_str()],
            )?;
        }
        Ok(())
    }
}

/// How an invitation is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// By a new user, in steps (claim, then `Redeemed`), so a failure half way can be retried.
    Claim,
    /// By a signed-in user, in one step.
    Accept,
}

type Answer = Result<OrgReply, Refusal>;

/// Internal: a refusal or a storage error, with `?` from either.
#[derive(Debug)]
enum Refusal {
    Refused(OrgRefusal),
    Sql(SqlError),
}

impl From<SqlError> for Refusal {
    fn from(e: SqlError) -> Self {
        Self::Sql(e)
    }
}

impl From<OrgRefusal> for Refusal {
    fn from(r: OrgRefusal) -> Self {
        Self::Refused(r)
    }
}

/// A key as the admin API shows it, from its index row.
pub fn key_view(row: &KeyIndexRow, now: Timestamp, last_used_at: Option<Timestamp>, usage: UsageSummary) -> KeyView {
    let status = match row.state {
        KeyState::Deactivated => KeyStatus::Deactivated,
        KeyState::Revoked => KeyStatus::Inactive,
        KeyState::Active if row.expires_at.is_some_and(|at| now >= at) => KeyStatus::Expired,
        KeyState::Active => KeyStatus::Active,
    };
    KeyView {
        id: row.id,
        start: keygate_shared::key::public_start(row.environment, &row.id),
        name: row.name.clone(),
        environment: row.environment,
        project: row.project.clone(),
        organization: row.organization.clone(),
        owner: row.owner.clone(),
        owner_name: None,
        permissions: row.permissions.clone(),
        customers: row.customers.clone(),
        rate_limit: row.rate_limit,
        expires_at: row.expires_at,
        status,
        kind: row.kind,
        created_at: row.created_at,
        updated_at: row.updated_at,
        last_used_at,
        usage,
        allowed_ips: row.allowed_ips.clone(),
        own_organization_only: row.own_organization_only,
        canary: row.canary,
        meta: row.meta.clone(),
        usage_limit: row.usage_limit,
        roles: row.roles.iter().map(|r| r.name.clone()).collect(),
        identity: row.identity.clone(),
    }
}

/// A key list cursor: `<created_at ms>.<key id>` of the last key of the previous page.
fn parse_cursor(cursor: &str) -> Option<(i64, String)> {
    let (at, id) = cursor.split_once('.')?;
    let at = at.parse::<i64>().ok()?;
    keygate_shared::key::KeyId::parse(id).map(|id| (at, id.to_string()))
}
