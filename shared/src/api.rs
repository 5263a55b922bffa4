//! Request and response types of the admin API (`/admin/v1`) and of `/v1/verify` and `/v1/whoami`, shared by the
//! Worker and the console, with the validation every mutation goes through before anything is written.

use serde::{Deserialize, Serialize};

use crate::decision::Code;
use crate::key::{KeyId, is_project_slug};
use crate::meta::KeyMeta;
use crate::model::{
    Environment, HeldRole, KeyCreation, KeyIdentity, KeyKind, KeyRecord, KeyStatus, Organization, OrganizationSettings,
    Permission, Project, RateLimitPolicy, Role, UsageLimit, User, is_role_name,
};
use crate::net::IpRange;
use crate::problem::Problem;
use crate::time::Timestamp;

/// Request bodies larger than this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const NAME_MAX_CHARS: usize = 100;
pub const MAX_PERMISSIONS: usize = 64;
/// Roles one key holds, at most.
pub const MAX_ROLES_PER_KEY: usize = 16;
pub const MAX_CUSTOMERS: usize = 256;
pub const CUSTOMER_MAX_LEN: usize = 128;
pub const MAX_GRACE_SECONDS: u32 = 7 * 86_400;

// ---------------------------------------------------------------------------------------------------------------
// Bootstrap, organizations, members

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BootstrapRequest {
    #[serde(default)]
    pub organization_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BootstrapResponse {
    /// Shown once: the first owner's console token.
    pub console_token: String,
    pub organization: Organization,
    pub user: User,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateOrganizationRequest {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrganizationView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct InviteMemberRequest {
    pub email: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MemberView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// A pending invitation, as owners and admins list it (never its code).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InvitationView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// The user id of who invited.
    pub invited_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InvitationList {
    pub invitations: Vec<InvitationView>,
}

/// `201` answer to an invitation: the one-time code, shown once, to hand to the invited person. It is no
/// credential of anyone: a new user redeems it for their own first console token, an existing user accepts it
/// while signed in with their own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InviteMemberResponse {
    pub invitation: InvitationView,
    pub code: String,
}

/// `POST /invitations/redeem` (no sign-in: the code is the credential).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RedeemInvitationRequest {
    pub code: String,
    /// The new user's name, if other than the one the invitation was made out to.
    #[serde(default)]
    pub name: Option<String>,
}

/// `201` answer to a redemption: the new user's first console token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RedeemInvitationResponse {
    pub console_token: String,
    pub session: SessionInfo,
    pub organization: OrganizationView,
    pub user: MemberView,
}

/// `POST /invitations/accept`, signed in: join another organization with the token one already has.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MemberList {
    pub members: Vec<MemberView>,
}

/// A console session: one console token of the signed-in user (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionInfo {
    /// The token's key id.
    pub id: KeyId,
    pub label: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    /// Whether this is the token of the request.
    #[serde(default)]
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// `POST /sessions`: another console token for oneself (a CLI, another browser).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    #[serde(default)]
    pub label: Option<String>,
}

/// `201` answer: the new console token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewSession {
    pub console_token: String,
    pub session: SessionInfo,
}

/// A permission of the organization's catalog: its name, what it means to people (e.g. "License Management"), and
/// how many live keys hold it. The catalog lists every permission keys hold and every one described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PermissionInfo {
    pub name: String,
    pub keys: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `GET /permissions`: the organization's permission catalog, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PermissionList {
    pub permissions: Vec<PermissionInfo>,
}

/// A role of the organization: a named set of permissions keys hold together. Changing it changes every key that
/// holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RoleInfo {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub permissions: Vec<Permission>,
    /// Keys that hold it (revoked and deactivated ones too, until they are deleted).
    pub keys: u64,
    pub updated_at: Timestamp,
}

/// `GET /roles`: the organization's roles, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RoleList {
    pub roles: Vec<RoleInfo>,
}

/// `PUT /roles/{name}`: defines a role, or replaces its definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PutRoleRequest {
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(max = 200)))]
    pub description: Option<String>,
    #[cfg_attr(feature = "schema", schemars(length(max = 64)))]
    pub permissions: Vec<String>,
}

/// An identity of the organization (a customer), as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IdentityView {
    pub id: String,
    pub external_id: String,
    pub name: String,
    #[serde(default)]
    pub meta: Option<KeyMeta>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitPolicy>,
    /// Keys that belong to it (revoked and deactivated ones too, until they are deleted).
    pub keys: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl IdentityView {
    pub fn of(identity: KeyIdentity, keys: u64, created_at: Timestamp, updated_at: Timestamp) -> Self {
        let KeyIdentity { id, external_id, name, meta, rate_limit } = identity;
        Self { id, external_id, name, meta, rate_limit, keys, created_at, updated_at }
    }
}

/// `GET /identities`: a page of the organization's identities, by external id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct IdentityList {
    pub identities: Vec<IdentityView>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `POST /identities`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateIdentityRequest {
    /// Your own id for the customer (`cus_123`, an email): 1-128 characters of letters, digits and `_-.:@`.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_.:@-]+$")))]
    pub external_id: String,
    /// Shown in the console; the external id when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 100)))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    /// One limit for all of the identity's keys together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitPolicy>,
}

impl CreateIdentityRequest {
    /// The identity as it will be stored, under the fresh id `id`.
    pub fn validate(&self, id: String) -> Result<KeyIdentity, Problem> {
        let external_id = validate_customers(std::slice::from_ref(&self.external_id))
            .map_err(|p| Problem::invalid_field("external_id", p.detail))?
            .remove(0);
        let name = match &self.name {
            Some(name) => validate_name("name", name)?,
            None => external_id.clone(),
        };
        Ok(KeyIdentity {
            id,
            external_id,
            name,
            meta: validate_meta(self.meta.as_ref())?,
            rate_limit: validate_rate_limit(self.rate_limit)?,
        })
    }
}

/// `PATCH /identities/{id}`: what is left out stays; `null` removes `meta` or `rate_limit`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateIdentityRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, with = "double_option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<serde_json::Value>"))]
    pub meta: Option<Option<serde_json::Value>>,
    #[serde(default, with = "double_option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<RateLimitPolicy>"))]
    pub rate_limit: Option<Option<RateLimitPolicy>>,
}

impl UpdateIdentityRequest {
    /// The identity with the changes, validated; `identity` itself is untouched.
    pub fn apply_to(&self, identity: &KeyIdentity) -> Result<KeyIdentity, Problem> {
        if *self == Self::default() {
            return Err(Problem::bad_request("EMPTY_UPDATE", "Name at least one field to change."));
        }
        let mut next = identity.clone();
        if let Some(name) = &self.name {
            next.name = validate_name("name", name)?;
        }
        if let Some(meta) = &self.meta {
            next.meta = validate_meta(meta.as_ref())?;
        }
        if let Some(limit) = self.rate_limit {
            next.rate_limit = validate_rate_limit(limit)?;
        }
        Ok(next)
    }
}

impl PutRoleRequest {
    /// The role's name checked, the description trimmed (`None`: none), the permissions checked (at most 64).
    pub fn validate(&self, name: &str) -> Result<(HeldRole, Option<String>), Problem> {
        if !is_role_name(name) {
            return Err(Problem::invalid_field(
                "name",
                "a role name is 1-64 characters of a-z, 0-9, `_`, `.` and `-`, starting with a letter",
            ));
        }
        let description = validate_description(self.description.as_deref().unwrap_or_default())?;
        let permissions = validate_permissions(&self.permissions)?;
        Ok((HeldRole { name: name.to_owned(), permissions }, description))
    }
}

/// `PUT /permissions/{name}`: what a permission means (owners and admins); an empty description removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DescribePermissionRequest {
    #[cfg_attr(feature = "schema", schemars(length(max = 200)))]
    pub description: String,
}

impl DescribePermissionRequest {
    pub const MAX_CHARS: usize = 200;

    /// The permission's name checked, and the description trimmed (`None`: remove it).
    pub fn validate(&self, name: &str) -> Result<(Permission, Option<String>), Problem> {
        let permission = Permission::try_from(name).map_err(|e| Problem::invalid_field("name", e.to_string()))?;
        Ok((permission, validate_description(&self.description)?))
    }
}

/// A description for people: trimmed, at most [`DescribePermissionRequest::MAX_CHARS`] characters, no control
/// characters; blank is none.
fn validate_description(text: &str) -> Result<Option<String>, Problem> {
    let description = text.trim();
    if description.chars().count() > DescribePermissionRequest::MAX_CHARS {
        return Err(Problem::invalid_field("description", "must be at most 200 characters"));
    }
    if description.chars().any(char::is_control) {
        return Err(Problem::invalid_field("description", "must not contain control characters"));
    }
    Ok((!description.is_empty()).then(|| description.to_owned()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionView {
    pub user: MemberView,
    pub organization: OrganizationView,
    pub organizations: Vec<OrganizationView>,
    /// Permissions already used in the organization, for the console's checkboxes.
    pub known_permissions: Vec<String>,
    /// The organization's permission catalog.
    #[serde(default)]
    pub permissions: Vec<PermissionInfo>,
    /// The session of the token in use.
    #[serde(default)]
    pub token: Option<SessionInfo>,
    /// When the token in use expires.
    #[serde(default)]
    pub token_expires_at: Option<Timestamp>,
    /// The organization's settings (who may create keys).
    #[serde(default)]
    pub settings: OrganizationSettings,
    /// The organization's roles, for the console's create and edit dialogs.
    #[serde(default)]
    pub roles: Vec<RoleInfo>,
}

/// `PATCH /organization/settings`: the settings to change (owners only); what is left out stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateSettingsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_creation: Option<KeyCreation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak_response: Option<crate::leak::LeakResponse>,
}

impl UpdateSettingsRequest {
    /// The settings with the change applied, or a 400 for an empty change.
    pub fn apply_to(&self, settings: OrganizationSettings) -> Result<OrganizationSettings, Problem> {
        if *self == Self::default() {
            return Err(Problem::bad_request("EMPTY_UPDATE", "Name at least one setting to change."));
        }
        Ok(OrganizationSettings {
            key_creation: self.key_creation.unwrap_or(settings.key_creation),
            leak_response: self.leak_response.unwrap_or(settings.leak_response),
        })
    }
}

impl MemberView {
    pub fn of(user: &User, role: Role) -> Self {
        Self { id: user.id.clone(), email: user.email.clone(), name: user.name.clone(), role }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Projects

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateProjectRequest {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RenameProjectRequest {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProjectList {
    pub projects: Vec<Project>,
}

// ---------------------------------------------------------------------------------------------------------------
// Keys

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 100)))]
    pub name: String,
    pub environment: Environment,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(max = 64), inner(length(max = 64))))]
    pub permissions: Vec<String>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(max = 256), inner(length(min = 1, max = 128))))]
    pub customers: Vec<String>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitPolicy>,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    pub kind: KeyKind,
    /// Client address ranges (CIDR, IPv4 or IPv6) the key may be used from; empty: anywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schema", schemars(length(max = 32)))]
    pub allowed_ips: Vec<String>,
    /// The key acts only for its own organization, never for another its owner joins.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_organization_only: bool,
    /// A canary: every use is refused exactly like an unknown key's, and recorded and alerted on (a trap to plant
    /// where a thief would look). Fixed at creation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canary: bool,
    /// A JSON object (at most 1 KiB compact) forwarded to the origin and returned by verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    /// A number of uses, optionally refilled daily or monthly (Unkey's `remaining`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<UsageLimit>,
    /// Roles of the organization (`GET /roles`) the key holds; their permissions add to `permissions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schema", schemars(length(max = 16), inner(regex(pattern = r"^[a-z][a-z0-9_.-]{0,63}$"))))]
    pub roles: Vec<String>,
    /// The id (`idn_…`) of the identity the key belongs to (`GET /identities`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^idn_[0-9A-HJKMNP-TV-Z]{14}$")))]
    pub identity: Option<String>,
}

/// A create request that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidKeySettings {
    pub name: String,
    pub permissions: Vec<Permission>,
    pub customers: Vec<String>,
    pub rate_limit: Option<RateLimitPolicy>,
    pub expires_at: Option<Timestamp>,
    pub allowed_ips: Vec<IpRange>,
    pub own_organization_only: bool,
    pub canary: bool,
    pub meta: Option<KeyMeta>,
    pub usage_limit: Option<UsageLimit>,
    /// Role names, checked for form; the organization's object checks they exist.
    pub roles: Vec<String>,
    /// An identity id, checked for form; the organization's object checks it exists.
    pub identity: Option<String>,
}

impl CreateKeyRequest {
    /// Validates every field (project existence is the caller's: it needs storage).
    pub fn validate(&self, now: Timestamp) -> Result<ValidKeySettings, Problem> {
        if let Some(project) = &self.project
            && !is_project_slug(project)
        {
            return Err(Problem::invalid_field("project", "a project slug is 1-63 characters of a-z, 0-9 and -"));
        }
        Ok(ValidKeySettings {
            name: validate_name("name", &self.name)?,
            permissions: validate_permissions(&self.permissions)?,
            customers: validate_customers(&self.customers)?,
            rate_limit: validate_rate_limit(self.rate_limit)?,
            expires_at: validate_expiry(self.expires_at, now)?,
            allowed_ips: validate_ips(&self.allowed_ips)?,
            own_organization_only: self.own_organization_only,
            canary: self.canary,
            meta: validate_meta(self.meta.as_ref())?,
            usage_limit: validate_usage_limit(self.usage_limit)?,
            roles: validate_role_names(&self.roles)?,
            identity: self.identity.as_deref().map(validate_identity_id).transpose()?,
        })
    }
}

/// `PATCH /keys/{id}`. Absent fields stay as they are; `null` clears `rate_limit` and `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customers: Option<Vec<String>>,
    #[serde(default, with = "double_option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<RateLimitPolicy>"))]
    pub rate_limit: Option<Option<RateLimitPolicy>>,
    #[serde(default, with = "double_option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Timestamp>"))]
    pub expires_at: Option<Option<Timestamp>>,
    /// Replaces the IP allowlist (`[]`: anywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_ips: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_organization_only: Option<bool>,
    /// Replaces the metadata; `null` or `{}` removes it.
    #[serde(default, with = "double_option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<serde_json::Value>"))]
    pub meta: Option<Option<serde_json::Value>>,
    /// Sets the usage limit and starts its count again (tops the key up); `null` removes it.
    #[serde(default, with = "double_option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<UsageLimit>"))]
    pub usage_limit: Option<Option<UsageLimit>>,
    /// Replaces the roles the key holds (`[]`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Moves the key to an identity (`idn_…`); `null` takes it out of its identity.
    #[serde(default, with = "double_option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub identity: Option<Option<String>>,
}

impl UpdateKeyRequest {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Validates and applies the changes to a copy of `record`'s settings; `record` itself is untouched. `roles`
    /// holds the organization's definitions of the roles `self.roles` names (each must be there), `identity` its
    /// definition of the identity `self.identity` names.
    pub fn apply_to(
        &self,
        record: &KeyRecord,
        roles: &[HeldRole],
        identity: Option<&KeyIdentity>,
        now: Timestamp,
    ) -> Result<KeyRecord, Problem> {
        if self.is_empty() {
            return Err(Problem::bad_request("EMPTY_UPDATE", "Name at least one field to change."));
        }
        let mut next = record.clone();
        if let Some(name) = &self.name {
            next.name = validate_name("name", name)?;
        }
        if let Some(permissions) = &self.permissions {
            next.permissions = validate_permissions(permissions)?;
        }
        if let Some(customers) = &self.customers {
            next.customers = validate_customers(customers)?;
        }
        if let Some(rate_limit) = self.rate_limit {
            next.rate_limit = validate_rate_limit(rate_limit)?;
        }
        if let Some(expires_at) = self.expires_at {
            next.expires_at = validate_expiry(expires_at, now)?;
        }
        if let Some(ips) = &self.allowed_ips {
            next.allowed_ips = validate_ips(ips)?;
        }
        if let Some(own) = self.own_organization_only {
            next.own_organization_only = own;
        }
        if let Some(meta) = &self.meta {
            next.meta = validate_meta(meta.as_ref())?;
        }
        if let Some(limit) = self.usage_limit {
            next.usage_limit = validate_usage_limit(limit)?;
        }
        if let Some(names) = &self.roles {
            next.roles = held_roles(&validate_role_names(names)?, roles)?;
        }
        match &self.identity {
            None => {}
            Some(None) => next.identity = None,
            Some(Some(id)) => {
                let id = validate_identity_id(id)?;
                next.identity = Some(identity.filter(|i| i.id == id).cloned().ok_or_else(unknown_identity)?);
            }
        }
        next.updated_at = now;
        Ok(next)
    }
}

mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RegenerateKeyRequest {
    /// Seconds during which the previous secret keeps working (0 or absent: it stops at once).
    #[serde(default)]
    pub grace_seconds: Option<u32>,
}

impl RegenerateKeyRequest {
    pub fn validate(&self) -> Result<u32, Problem> {
        match self.grace_seconds.unwrap_or(0) {
            g if g > MAX_GRACE_SECONDS => {
                Err(Problem::invalid_field("grace_seconds", "the grace period is at most 604800 seconds (7 days)"))
            }
            g => Ok(g),
        }
    }
}

/// Usage figures shown with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UsageSummary {
    pub total: u64,
    pub last_24h: u64,
    pub recent_errors: u32,
    /// A usage-limited key's uses left (in lists, as of the key's last usage summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
}

/// A key as the admin API shows it: never the secret, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyView {
    pub id: KeyId,
    /// `kg_<env>_<id>`: enough to recognise the key, useless to call with.
    pub start: String,
    pub name: String,
    pub environment: Environment,
    pub project: Option<String>,
    pub organization: String,
    pub owner: String,
    #[serde(default)]
    pub owner_name: Option<String>,
    pub permissions: Vec<Permission>,
    pub customers: Vec<String>,
    pub rate_limit: Option<RateLimitPolicy>,
    pub expires_at: Option<Timestamp>,
    pub status: KeyStatus,
    pub kind: KeyKind,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub usage: UsageSummary,
    #[serde(default)]
    pub allowed_ips: Vec<IpRange>,
    #[serde(default)]
    pub own_organization_only: bool,
    /// A canary key: any use is refused like an unknown key's and recorded (`GET /canary-trips`).
    #[serde(default)]
    pub canary: bool,
    #[serde(default)]
    pub meta: Option<KeyMeta>,
    /// The usage limit as set; the uses left are in `usage.remaining`.
    #[serde(default)]
    pub usage_limit: Option<UsageLimit>,
    /// The organization's roles the key holds (their permissions add to `permissions`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The identity (customer) the key belongs to: its keys share its name, metadata and rate limit.
    #[serde(default)]
    pub identity: Option<KeyIdentity>,
}

impl KeyView {
    pub fn of(record: &KeyRecord, now: Timestamp, last_used_at: Option<Timestamp>, usage: UsageSummary) -> Self {
        Self {
            id: record.id,
            start: record.public_start(),
            name: record.name.clone(),
            environment: record.environment,
            project: record.project.clone(),
            organization: record.organization.clone(),
            owner: record.owner.clone(),
            owner_name: None,
            permissions: record.permissions.clone(),
            customers: record.customers.clone(),
            rate_limit: record.rate_limit,
            expires_at: record.expires_at,
            status: record.status(now),
            kind: record.kind,
            created_at: record.created_at,
            updated_at: record.updated_at,
            last_used_at,
            usage,
            allowed_ips: record.allowed_ips.clone(),
            own_organization_only: record.own_organization_only,
            canary: record.canary,
            meta: record.meta.clone(),
            usage_limit: record.usage_limit,
            roles: record.role_names(),
            identity: record.identity.clone(),
        }
    }
}

/// A use of a canary key: refused like an unknown key's, recorded for its organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CanaryTrip {
    pub key_id: KeyId,
    pub key_name: String,
    pub at: Timestamp,
    pub method: String,
    /// The canonical path, without the query string.
    pub path: String,
    /// `CF-Connecting-IP`.
    #[serde(default)]
    pub client_ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    /// `CF-IPCountry`, where Cloudflare knows it.
    #[serde(default)]
    pub country: Option<String>,
}

/// `GET /canary-trips`: the newest first (at most 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CanaryTripList {
    pub trips: Vec<CanaryTrip>,
}

/// `201` answer to creating (or regenerating) a key: the full key, exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum CreatedKey {
    Pair { api_key: String, api_secret: String, record: KeyView },
    Single { key: String, record: KeyView },
}

/// Read by its fields rather than as an untagged enum: serde's untagged enums buffer the value first, and a key's
/// metadata (raw JSON) can only be read straight from serde_json's parser.
impl<'de> Deserialize<'de> for CreatedKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(default)]
            key: Option<String>,
            #[serde(default)]
            api_key: Option<String>,
            #[serde(default)]
            api_secret: Option<String>,
            record: KeyView,
        }
        let f = Fields::deserialize(d)?;
        match (f.key, f.api_key, f.api_secret) {
            (Some(key), None, None) => Ok(Self::Single { key, record: f.record }),
            (None, Some(api_key), Some(api_secret)) => Ok(Self::Pair { api_key, api_secret, record: f.record }),
            _ => Err(serde::de::Error::custom("a created key has `key`, or `api_key` and `api_secret`")),
        }
    }
}

impl CreatedKey {
    pub fn record(&self) -> &KeyView {
        match self {
            Self::Single { record, .. } | Self::Pair { record, .. } => record,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyList {
    pub keys: Vec<KeyView>,
    pub next_cursor: Option<String>,
}

/// Filters of `GET /keys`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyFilter {
    pub project: Option<String>,
    pub environment: Option<Environment>,
    pub status: Option<KeyStatus>,
    pub owner: Option<String>,
    #[serde(default)]
    pub include_deactivated: bool,
    /// Single keys, or LandingLens's legacy key pairs.
    #[serde(default)]
    pub kind: Option<KeyKind>,
}

/// One refused or failed request of a key (Instrumental's "recent errors").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecentError {
    pub at: Timestamp,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub code: String,
    /// The request line and the headers that are safe to show; never the credential.
    pub request_preview: String,
    pub response_preview: String,
}

impl RecentError {
    pub const MAX_METHOD: usize = 16;
    pub const MAX_PATH: usize = 256;
    pub const MAX_CODE: usize = 64;
    pub const MAX_REQUEST_PREVIEW: usize = 2048;
    pub const MAX_RESPONSE_PREVIEW: usize = 2048;

    /// The entry with the values of credential-named fields redacted from both previews (the key's object does this
    /// before it stores an entry: [`crate::preview`]).
    pub fn redacted(mut self) -> Self {
        self.request_preview = crate::preview::redact_fields(&self.request_preview);
        self.response_preview = crate::preview::redact_fields(&self.response_preview);
        self
    }

    /// The entry with every field cut to its bound (whole characters), so one entry never weighs more than about
    /// 4.5 KB whatever the request held.
    pub fn bounded(mut self) -> Self {
        fn cut(s: &mut String, max: usize) {
            if let Some((at, _)) = s.char_indices().nth(max) {
                s.truncate(at);
            }
        }
        cut(&mut self.method, Self::MAX_METHOD);
        cut(&mut self.path, Self::MAX_PATH);
        cut(&mut self.code, Self::MAX_CODE);
        cut(&mut self.request_preview, Self::MAX_REQUEST_PREVIEW);
        cut(&mut self.response_preview, Self::MAX_RESPONSE_PREVIEW);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecentErrors {
    pub errors: Vec<RecentError>,
}

/// A bucket of a usage series: its start and the requests counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UsagePoint {
    pub start: Timestamp,
    pub requests: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UsageReport {
    /// The last 24 hours, one point per hour, oldest first.
    pub hourly: Vec<UsagePoint>,
    /// The last 14 days, one point per day, oldest first.
    pub daily: Vec<UsagePoint>,
    pub total: u64,
    pub last_used_at: Option<Timestamp>,
    /// Requests by the organization they acted for (`Keygate-Org`; the key's own when none was named), most first.
    #[serde(default)]
    pub by_organization: Vec<OrganizationUsage>,
}

/// Requests made on behalf of one organization (Instill charges the organization a request names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrganizationUsage {
    pub organization: String,
    pub requests: u64,
}

/// `GET /admin/v1/usage`: what the organization's keys did, by the organization each request acted for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OrganizationUsageReport {
    pub by_organization: Vec<OrganizationUsage>,
}

/// Organizations an organization's usage report lists, at most (the rest are summed under [`OTHER_ORGANIZATIONS`]).
pub const MAX_USAGE_REPORT_ROWS: usize = 100;
/// Where a key's usage for organizations past its bound is counted.
pub const OTHER_ORGANIZATIONS: &str = "other";

// ---------------------------------------------------------------------------------------------------------------
// Audit

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Bootstrap,
    CreateOrganization,
    InviteMember,
    CreateProject,
    RenameProject,
    Create,
    Rename,
    Update,
    Revoke,
    Activate,
    Deactivate,
    Regenerate,
    Delete,
    SignInFailed,
    CreateConsoleToken,
    RevokeInvitation,
    JoinOrganization,
    RemoveMember,
    ChangeSettings,
    DescribePermission,
    /// A role was defined or its definition changed.
    ChangeRole,
    DeleteRole,
    CreateIdentity,
    UpdateIdentity,
    DeleteIdentity,
    /// A webhook was added, changed or removed.
    CreateWebhook,
    UpdateWebhook,
    DeleteWebhook,
    /// A key was reported leaked (and revoked when the organization says so).
    Leaked,
    /// Someone used a canary key.
    CanaryTripped,
    /// A key reached its expiry.
    Expired,
}

impl AuditAction {
    pub const ALL: [AuditAction; 31] = [
        Self::Bootstrap,
        Self::CreateOrganization,
        Self::InviteMember,
        Self::CreateProject,
        Self::RenameProject,
        Self::Create,
        Self::Rename,
        Self::Update,
        Self::Revoke,
        Self::Activate,
        Self::Deactivate,
        Self::Regenerate,
        Self::Delete,
        Self::SignInFailed,
        Self::CreateConsoleToken,
        Self::RevokeInvitation,
        Self::JoinOrganization,
        Self::RemoveMember,
        Self::ChangeSettings,
        Self::DescribePermission,
        Self::ChangeRole,
        Self::DeleteRole,
        Self::CreateIdentity,
        Self::UpdateIdentity,
        Self::DeleteIdentity,
        Self::CreateWebhook,
        Self::UpdateWebhook,
        Self::DeleteWebhook,
        Self::Leaked,
        Self::CanaryTripped,
        Self::Expired,
    ];

    /// The name it is stored and shown by (as serde writes it).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bootstrap => "bootstrap",
            Self::CreateOrganization => "create_organization",
            Self::InviteMember => "invite_member",
            Self::CreateProject => "create_project",
            Self::RenameProject => "rename_project",
            Self::Create => "create",
            Self::Rename => "rename",
            Self::Update => "update",
            Self::Revoke => "revoke",
            Self::Activate => "activate",
            Self::Deactivate => "deactivate",
            Self::Regenerate => "regenerate",
            Self::Delete => "delete",
            Self::SignInFailed => "sign_in_failed",
            Self::CreateConsoleToken => "create_console_token",
            Self::RevokeInvitation => "revoke_invitation",
            Self::JoinOrganization => "join_organization",
            Self::RemoveMember => "remove_member",
            Self::ChangeSettings => "change_settings",
            Self::DescribePermission => "describe_permission",
            Self::ChangeRole => "change_role",
            Self::DeleteRole => "delete_role",
            Self::CreateIdentity => "create_identity",
            Self::UpdateIdentity => "update_identity",
            Self::DeleteIdentity => "delete_identity",
            Self::CreateWebhook => "create_webhook",
            Self::UpdateWebhook => "update_webhook",
            Self::DeleteWebhook => "delete_webhook",
            Self::Leaked => "leaked",
            Self::CanaryTripped => "canary_tripped",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEvent {
    pub id: String,
    pub at: Timestamp,
    pub organization: String,
    /// The acting user's id, or `None` for failed sign-ins.
    pub actor: Option<String>,
    /// The acting user's name, when they are (still) a member, as the audit log lists it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    pub action: AuditAction,
    /// The key, project or member acted on.
    pub target: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------------
// Verify and whoami

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub key: String,
    #[serde(default)]
    pub permission: Option<String>,
    #[serde(default)]
    pub customer: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    /// The address of the client that presented the key, for keys with an IP allowlist (a key limited to
    /// addresses is refused with `IP_NOT_ALLOWED` when it is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RateLimitStatus {
    pub limit: u32,
    pub remaining: u32,
    pub reset_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VerifyResponse {
    pub valid: bool,
    pub code: Code,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<KeyId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<Permission>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitStatus>,
    /// The key's metadata, when it has some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<KeyMeta>,
    /// A usage-limited key's uses left after this request (0 with `USAGE_EXCEEDED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// The roles the key holds, when it holds some (their permissions are in `permissions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// The identity the key belongs to, with its metadata and shared limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<KeyIdentity>,
}

impl VerifyResponse {
    /// An answer about a key the caller proved it holds (or `record: None`: nothing is said about the key).
    pub fn new(code: Code, record: Option<&KeyRecord>) -> Self {
        let mut out = Self {
            valid: code == Code::Valid,
            code,
            key_id: None,
            name: None,
            project: None,
            environment: None,
            organization: None,
            permissions: None,
            expires_at: None,
            rate_limit: None,
            meta: None,
            remaining: (code == Code::UsageExceeded).then_some(0),
            roles: None,
            identity: None,
        };
        if let Some(r) = record {
            out.key_id = Some(r.id);
            out.name = Some(r.name.clone());
            out.project = r.project.clone();
            out.environment = Some(r.environment);
            out.organization = Some(r.organization.clone());
            out.permissions = Some(r.effective_permissions().cloned().collect());
            out.roles = (!r.roles.is_empty()).then(|| r.role_names());
            out.identity = r.identity.clone();
            out.expires_at = r.expires_at;
            out.meta = r.meta.clone();
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WhoAmI {
    pub key_id: KeyId,
    pub name: String,
    pub project: Option<String>,
    pub environment: Environment,
    pub organization: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<KeyMeta>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    pub status: String,
    pub version: String,
    pub environment: Environment,
    /// The one project this endpoint serves (`KEYGATE_PROJECT`), and its organization.
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub organization: Option<String>,
    /// `KEYGATE_ROUTES`: which permission each route needs (the console's simulator applies them).
    #[serde(default)]
    pub routes: String,
    /// `KEYGATE_CREDENTIAL_HEADERS`: extra header names a key may be sent in.
    #[serde(default)]
    pub credential_headers: Vec<String>,
}

// ---------------------------------------------------------------------------------------------------------------
// Validation helpers: each names the field at fault.

pub fn validate_name(field: &str, name: &str) -> Result<String, Problem> {
    let trimmed = name.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err(Problem::invalid_field(field, "must not be empty"));
    }
    if chars > NAME_MAX_CHARS {
        return Err(Problem::invalid_field(field, "must be at most 100 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Problem::invalid_field(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

pub fn validate_permissions(raw: &[String]) -> Result<Vec<Permission>, Problem> {
    if raw.len() > MAX_PERMISSIONS {
        return Err(Problem::invalid_field("permissions", "at most 64 permissions per key"));
    }
    let mut out: Vec<Permission> = Vec::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        let permission = Permission::try_from(p.as_str())
            .map_err(|e| Problem::invalid_field(&format!("permissions[{i}]"), e.to_string()))?;
        if !out.contains(&permission) {
            out.push(permission);
        }
    }
    out.sort();
    Ok(out)
}

/// An identity id as sent: `idn_` and 14 characters of a key id.
pub fn validate_identity_id(id: &str) -> Result<String, Problem> {
    let well_formed = id.strip_prefix(KeyIdentity::PREFIX).and_then(KeyId::parse).is_some();
    if !well_formed {
        return Err(Problem::invalid_field("identity", "an identity id looks like idn_ and 14 characters"));
    }
    Ok(id.to_owned())
}

/// The refusal for an identity the organization does not have.
pub fn unknown_identity() -> Problem {
    Problem::invalid_field("identity", "no such identity in this organization (see GET /identities)")
}

/// Role names as sent: at most [`MAX_ROLES_PER_KEY`], each well formed; duplicates collapse, order is kept.
pub fn validate_role_names(raw: &[String]) -> Result<Vec<String>, Problem> {
    if raw.len() > MAX_ROLES_PER_KEY {
        return Err(Problem::invalid_field("roles", "at most 16 roles per key"));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, name) in raw.iter().enumerate() {
        if !is_role_name(name) {
            return Err(Problem::invalid_field(
                &format!("roles[{i}]"),
                "a role name is 1-64 characters of a-z, 0-9, `_`, `.` and `-`, starting with a letter",
            ));
        }
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    Ok(out)
}

/// The roles `names` with their definitions from `defined`; a name the organization does not define is refused.
pub fn held_roles(names: &[String], defined: &[HeldRole]) -> Result<Vec<HeldRole>, Problem> {
    names
        .iter()
        .map(|name| {
            defined.iter().find(|r| &r.name == name).cloned().ok_or_else(|| {
                Problem::invalid_field("roles", format!("no role `{name}` in this organization (see GET /roles)"))
            })
        })
        .collect()
}

/// Metadata as sent: an object within the bound; `{}` (or no object) is none.
fn validate_meta(meta: Option<&serde_json::Value>) -> Result<Option<KeyMeta>, Problem> {
    match meta {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => KeyMeta::from_value(value).map(|m| (!m.is_empty()).then_some(m)),
    }
}

/// An IP allowlist: at most [`crate::net::MAX_RANGES`] ranges, each CIDR or one address, IPv4 or IPv6; duplicates
/// collapse.
pub fn validate_ips(raw: &[String]) -> Result<Vec<IpRange>, Problem> {
    if raw.len() > crate::net::MAX_RANGES {
        return Err(Problem::invalid_field("allowed_ips", "at most 32 address ranges"));
    }
    let mut out: Vec<IpRange> = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        let range = text.parse::<IpRange>().map_err(|e| {
            Problem::invalid_field(
                &format!("allowed_ips[{i}]"),
                format!("{e}: use e.g. 203.0.113.0/24 or 2001:db8::/32"),
            )
        })?;
        if !out.contains(&range) {
            out.push(range);
        }
    }
    Ok(out)
}

pub fn validate_customers(raw: &[String]) -> Result<Vec<String>, Problem> {
    if raw.len() > MAX_CUSTOMERS {
        return Err(Problem::invalid_field("customers", "at most 256 customers per key"));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, c) in raw.iter().enumerate() {
        let c = c.trim();
        let ok = !c.is_empty()
            && c.len() <= CUSTOMER_MAX_LEN
            && c.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@'));
        if !ok {
            return Err(Problem::invalid_field(
                &format!("customers[{i}]"),
                "customer ids are 1-128 characters of letters, digits and _-.:@",
            ));
        }
        if !out.iter().any(|o| o == c) {
            out.push(c.to_owned());
        }
    }
    Ok(out)
}

pub fn validate_rate_limit(policy: Option<RateLimitPolicy>) -> Result<Option<RateLimitPolicy>, Problem> {
    if let Some(p) = &policy {
        p.validate().map_err(|(field, detail)| Problem::invalid_field(field, detail))?;
    }
    Ok(policy)
}

/// Uses (and a refill's amount) are 1 to this many.
pub const MAX_USES: u64 = 1_000_000_000_000;

pub fn validate_usage_limit(limit: Option<UsageLimit>) -> Result<Option<UsageLimit>, Problem> {
    if let Some(l) = &limit {
        if !(1..=MAX_USES).contains(&l.uses) {
            return Err(Problem::invalid_field("usage_limit.uses", "uses are 1 to 1,000,000,000,000"));
        }
        if l.refill.is_some_and(|r| !(1..=MAX_USES).contains(&r.amount)) {
            return Err(Problem::invalid_field("usage_limit.refill.amount", "a refill is 1 to 1,000,000,000,000 uses"));
        }
    }
    Ok(limit)
}

pub fn validate_expiry(expires_at: Option<Timestamp>, now: Timestamp) -> Result<Option<Timestamp>, Problem> {
    match expires_at {
        Some(at) if at <= now => Err(Problem::invalid_field("expires_at", "must be in the future")),
        other => Ok(other),
    }
}

pub fn validate_email(email: &str) -> Result<String, Problem> {
    let e = email.trim();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(e.to_ascii_lowercase()) } else { Err(Problem::invalid_field("email", "must be an email address")) }
}
