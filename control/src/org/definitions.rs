//! What an organization defines once for many keys: roles (named permission sets) and identities (customers whose
//! keys share a name, metadata and one rate limit). Keys hold copies of these definitions, so the gateway decides from
//! a key's record alone; this object knows which keys hold which (`role_holders`, `identity_holders`, kept from the
//! key index's events), and owes every holder a changed definition (`key_sync`, one row per key at the newest sync
//! revision; the runtime's alarm delivers them as `KeyRequest::Sync`).

use keygate_shared::api::{AuditAction, IdentityList, IdentityView, RoleInfo, UpdateIdentityRequest};
use keygate_shared::authz::OrgAction;
use keygate_shared::key::KeyId;
use keygate_shared::keyobject::IdentitySync;
use keygate_shared::model::{HeldRole, KeyIdentity, Permission};
use keygate_shared::time::Timestamp;
use serde::Deserialize;

use super::{Answer, Org, OrgRefusal, OrgReply, limits, migrate};
use crate::params;
use crate::sql::{Sql, SqlError, SqlExt, json_column, to_json};

impl<S: Sql> Org<'_, S> {
    /// The organization's roles, by name.
    pub(super) fn roles(&self) -> Result<Vec<RoleInfo>, SqlError> {
        #[derive(Deserialize)]
        struct Row {
            name: String,
            description: Option<String>,
            permissions: String,
            keys: i64,
            updated_at: i64,
        }
        let rows: Vec<Row> = self.db.all(
            "SELECT name, description, permissions, keys, updated_at FROM roles ORDER BY name LIMIT ?",
            params![limits::ROLES],
        )?;
        rows.into_iter()
            .map(|r| {
                Ok(RoleInfo {
                    name: r.name,
                    description: r.description,
                    permissions: json_column(&r.permissions)?,
                    keys: u64::try_from(r.keys).unwrap_or(0),
                    updated_at: Timestamp(r.updated_at),
                })
            })
            .collect()
    }

    /// A role's permissions and description, if the organization defines it.
    pub(super) fn role_definition(&self, name: &str) -> Result<Option<RoleDefinition>, SqlError> {
        #[derive(Deserialize)]
        struct Row {
            permissions: String,
            description: Option<String>,
        }
        let row: Option<Row> =
            self.db.first("SELECT permissions, description FROM roles WHERE name = ?", params![name])?;
        row.map(|r| Ok((json_column(&r.permissions)?, r.description))).transpose()
    }

    /// The next roles revision: every role change, and every key found holding a stale definition, takes one, so
    /// what is sent to a key later always supersedes what was sent before.
    pub(super) fn next_sync_revision(&self) -> Result<i64, SqlError> {
        self.db.run(
            "INSERT INTO settings (name, value) VALUES ('sync_revision', '1') \
             ON CONFLICT (name) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
            &[],
        )?;
        self.db.count("SELECT CAST(value AS INTEGER) AS n FROM settings WHERE name = 'sync_revision'", &[])
    }

    pub(super) fn put_role(
        &self,
        actor: &str,
        role: HeldRole,
        description: Option<String>,
        audit_id: String,
        now: Timestamp,
    ) -> Answer {
        self.allowed(actor, OrgAction::ManageRoles)?;
        let before = self.role_definition(&role.name)?;
        if before.is_none() && self.db.count("SELECT count(*) AS n FROM roles", &[])? >= limits::ROLES {
            return Err(OrgRefusal::Full { detail: "An organization has at most 200 roles.".into() }.into());
        }
        let changed_permissions = before.as_ref().is_none_or(|(p, _)| *p != role.permissions);
        if before.as_ref().is_none_or(|(p, d)| *p != role.permissions || *d != description) {
            let revision = self.next_sync_revision()?;
            // Keys may already hold a role of this name (one deleted while a key was being given it).
            self.db.run(
                "INSERT INTO roles (name, description, permissions, revision, keys, updated_at) \
                 VALUES (?, ?, ?, ?, (SELECT count(*) FROM role_holders WHERE role = ?), ?) \
                 ON CONFLICT (name) DO UPDATE SET description = excluded.description, \
                 permissions = excluded.permissions, revision = excluded.revision, updated_at = excluded.updated_at",
                params![
                    role.name.as_str(),
                    description.clone(),
                    to_json(&role.permissions),
                    revision,
                    role.name.as_str(),
                    now
                ],
            )?;
            if changed_permissions {
                // Every key that holds the role is owed its new permissions (the alarm delivers them).
                self.db.run(
                    "INSERT INTO key_sync (key_id, revision) SELECT key_id, ? FROM role_holders WHERE role = ? \
                     ON CONFLICT (key_id) DO UPDATE SET revision = excluded.revision",
                    params![revision, role.name.as_str()],
                )?;
            }
            let permissions: Vec<&str> = role.permissions.iter().map(Permission::as_str).collect();
            let verb = if before.is_none() { "defined" } else { "changed" };
            let detail = format!(
                "{verb}: {}",
                if permissions.is_empty() { "(no permissions)".into() } else { permissions.join(", ") }
            );
            let event =
                self.audit_event(audit_id, now, Some(actor), AuditAction::ChangeRole, Some(role.name.clone()), detail)?;
            self.record(&event, None)?;
        }
        let info = self.roles()?.into_iter().filter(|r| r.name == role.name).collect();
        Ok(OrgReply::Roles { roles: info })
    }

    pub(super) fn delete_role(&self, actor: &str, name: &str, audit_id: String, now: Timestamp) -> Answer {
        self.allowed(actor, OrgAction::ManageRoles)?;
        if self.role_definition(name)?.is_none() {
            return Err(OrgRefusal::NotFound { what: "role".into() }.into());
        }
        let holders = self.db.count("SELECT count(*) AS n FROM role_holders WHERE role = ?", params![name])?;
        if holders > 0 {
            let keys = if holders == 1 { "1 key holds".to_owned() } else { format!("{holders} keys hold") };
            return Err(OrgRefusal::Conflict {
                code: "ROLE_IN_USE".into(),
                detail: format!("{keys} this role (revoked and deactivated keys too): take it from them first."),
            }
            .into());
        }
        self.db.run("DELETE FROM roles WHERE name = ?", params![name])?;
        let event = self.audit_event(
            audit_id,
            now,
            Some(actor),
            AuditAction::DeleteRole,
            Some(name.to_owned()),
            name.to_owned(),
        )?;
        self.record(&event, None)?;
        Ok(OrgReply::Done)
    }

    /// Keeps `role_holders` and `identity_holders` (and their counts) for a key at a new revision, and owes the key
    /// its definitions again when one it holds is not as defined here (changed or deleted while the key was being
    /// given it).
    pub(super) fn hold(&self, id: &str, roles: &[HeldRole], identity: Option<&KeyIdentity>) -> Result<(), SqlError> {
        let stale = self.hold_roles(id, roles)? | self.hold_identity(id, identity)?;
        if stale {
            self.owe(id)?;
        }
        Ok(())
    }

    /// Marks a key owed its definitions at a new sync revision (newer than anything sent to it before).
    fn owe(&self, id: &str) -> Result<(), SqlError> {
        let revision = self.next_sync_revision()?;
        self.db.run(
            "INSERT INTO key_sync (key_id, revision) VALUES (?, ?) \
             ON CONFLICT (key_id) DO UPDATE SET revision = excluded.revision",
            params![id, revision],
        )
    }

    /// `role_holders` for a key; whether a role it holds is not as defined here.
    fn hold_roles(&self, id: &str, held: &[HeldRole]) -> Result<bool, SqlError> {
        #[derive(Deserialize)]
        struct Holder {
            role: String,
        }
        let before: Vec<Holder> = self.db.all("SELECT role FROM role_holders WHERE key_id = ?", params![id])?;
        for gone in before.iter().filter(|h| !held.iter().any(|r| r.name == h.role)) {
            self.db.run("DELETE FROM role_holders WHERE role = ? AND key_id = ?", params![gone.role.as_str(), id])?;
            self.db.run("UPDATE roles SET keys = max(keys - 1, 0) WHERE name = ?", params![gone.role.as_str()])?;
        }
        let mut stale = false;
        for role in held {
            if !before.iter().any(|h| h.role == role.name) {
                self.db
                    .run("INSERT INTO role_holders (role, key_id) VALUES (?, ?)", params![role.name.as_str(), id])?;
                self.db.run("UPDATE roles SET keys = keys + 1 WHERE name = ?", params![role.name.as_str()])?;
            }
            stale |= self.role_definition(&role.name)?.is_none_or(|(permissions, _)| permissions != role.permissions);
        }
        Ok(stale)
    }

    /// `identity_holders` for a key; whether the identity it belongs to is not as defined here.
    fn hold_identity(&self, id: &str, identity: Option<&KeyIdentity>) -> Result<bool, SqlError> {
        #[derive(Deserialize)]
        struct Holder {
            identity: String,
        }
        let before: Option<Holder> =
            self.db.first("SELECT identity FROM identity_holders WHERE key_id = ?", params![id])?;
        let now = identity.map(|i| i.id.as_str());
        if before.as_ref().map(|h| h.identity.as_str()) != now {
            if let Some(gone) = &before {
                self.db.run("DELETE FROM identity_holders WHERE key_id = ?", params![id])?;
                self.db.run(
                    "UPDATE identities SET keys = max(keys - 1, 0) WHERE id = ?",
                    params![gone.identity.as_str()],
                )?;
            }
            if let Some(joined) = now {
                self.db.run("INSERT INTO identity_holders (identity, key_id) VALUES (?, ?)", params![joined, id])?;
                self.db.run("UPDATE identities SET keys = keys + 1 WHERE id = ?", params![joined])?;
            }
        }
        match identity {
            None => Ok(false),
            Some(held) => Ok(self.identity_row(&held.id)?.is_none_or(|row| row.identity != *held)),
        }
    }

    /// Whether any key is owed its definitions.
    pub fn sync_owed(&self) -> Result<bool, SqlError> {
        migrate(self.db)?;
        Ok(self.db.count("SELECT count(*) AS n FROM (SELECT 1 FROM key_sync LIMIT 1)", &[])? > 0)
    }

    /// Keys owed their definitions, oldest revision first: each with the roles it holds (`None`: the role is gone)
    /// and the identity it belongs to, as they now are.
    pub fn key_syncs(&self) -> Result<Vec<KeySync>, SqlError> {
        migrate(self.db)?;
        #[derive(Deserialize)]
        struct Owed {
            key_id: String,
            revision: i64,
        }
        let owed: Vec<Owed> = self.db.all(
            "SELECT key_id, revision FROM key_sync ORDER BY revision, key_id LIMIT ?",
            params![limits::SYNC_BATCH],
        )?;
        #[derive(Deserialize)]
        struct Held {
            role: String,
            permissions: Option<String>,
        }
        #[derive(Deserialize)]
        struct Member {
            identity: String,
        }
        let mut out = Vec::with_capacity(owed.len());
        for o in owed {
            let Some(key) = KeyId::parse(&o.key_id) else { continue };
            let held: Vec<Held> = self.db.all(
                "SELECT h.role AS role, r.permissions AS permissions FROM role_holders h \
                 LEFT JOIN roles r ON r.name = h.role WHERE h.key_id = ?",
                params![o.key_id.as_str()],
            )?;
            let roles = held
                .into_iter()
                .map(|h| Ok((h.role, h.permissions.as_deref().map(json_column).transpose()?)))
                .collect::<Result<_, SqlError>>()?;
            let member: Option<Member> =
                self.db.first("SELECT identity FROM identity_holders WHERE key_id = ?", params![o.key_id.as_str()])?;
            let identity = match member {
                None => None,
                Some(m) => {
                    Some(IdentitySync { now: self.identity_row(&m.identity)?.map(|r| r.identity), id: m.identity })
                }
            };
            out.push(KeySync { key, revision: o.revision, roles, identity });
        }
        Ok(out)
    }

    /// An identity by its id (`idn_…`) or its external id.
    pub(super) fn identity_row(&self, id: &str) -> Result<Option<IdentityRow>, SqlError> {
        let row: Option<StoredIdentity> = self.db.first(
            "SELECT body, keys, created_at, updated_at FROM identities WHERE id = ? OR external_id = ? LIMIT 1",
            params![id, id],
        )?;
        row.map(StoredIdentity::read).transpose()
    }

    /// A page of the organization's identities, by external id.
    pub(super) fn identities(&self, actor: &str, cursor: Option<String>) -> Answer {
        self.role(actor)?;
        let rows: Vec<StoredIdentity> = self.db.all(
            "SELECT body, keys, created_at, updated_at FROM identities WHERE external_id > ? \
             ORDER BY external_id LIMIT ?",
            params![cursor.unwrap_or_default(), limits::PAGE + 1],
        )?;
        let more = rows.len() as i64 > limits::PAGE;
        let identities: Vec<IdentityView> = rows
            .into_iter()
            .take(limits::PAGE as usize)
            .map(|r| r.read().map(IdentityRow::view))
            .collect::<Result<_, SqlError>>()?;
        let next_cursor = if more { identities.last().map(|i| i.external_id.clone()) } else { None };
        Ok(OrgReply::Identities { list: IdentityList { identities, next_cursor } })
    }

    pub(super) fn identity(&self, actor: &str, id: &str) -> Answer {
        self.role(actor)?;
        let row = self.identity_row(id)?.ok_or(OrgRefusal::NotFound { what: "identity".into() })?;
        Ok(OrgReply::Identity { identity: row.view() })
    }

    pub(super) fn create_identity(
        &self,
        actor: &str,
        identity: KeyIdentity,
        audit_id: String,
        now: Timestamp,
    ) -> Answer {
        self.allowed(actor, OrgAction::ManageIdentities)?;
        if self.identity_row(&identity.external_id)?.is_some() {
            return Err(OrgRefusal::Conflict {
                code: "CONFLICT".into(),
                detail: "An identity with this external id already exists in the organization.".into(),
            }
            .into());
        }
        if self.db.count("SELECT count(*) AS n FROM identities", &[])? >= limits::IDENTITIES {
            return Err(OrgRefusal::Full { detail: "An organization has at most 100,000 identities.".into() }.into());
        }
        self.db.run(
            "INSERT INTO identities (id, external_id, body, keys, created_at, updated_at) VALUES (?, ?, ?, 0, ?, ?)",
            params![identity.id.as_str(), identity.external_id.as_str(), to_json(&identity), now, now],
        )?;
        let detail = format!("{} ({})", identity.external_id, limit_text(&identity));
        self.audit_identity(audit_id, now, actor, AuditAction::CreateIdentity, &identity.id, detail)?;
        Ok(OrgReply::Identity { identity: IdentityView::of(identity, 0, now, now) })
    }

    pub(super) fn update_identity(
        &self,
        actor: &str,
        id: &str,
        change: &UpdateIdentityRequest,
        audit_id: String,
        now: Timestamp,
    ) -> Answer {
        self.allowed(actor, OrgAction::ManageIdentities)?;
        let row = self.identity_row(id)?.ok_or(OrgRefusal::NotFound { what: "identity".into() })?;
        let next = change.apply_to(&row.identity).map_err(|p| OrgRefusal::Invalid {
            field: p.field.clone().unwrap_or_else(|| "body".into()),
            detail: p.detail,
        })?;
        if next == row.identity {
            return Ok(OrgReply::Identity { identity: row.view() });
        }
        self.db.run(
            "UPDATE identities SET body = ?, updated_at = ? WHERE id = ?",
            params![to_json(&next), now, next.id.as_str()],
        )?;
        // Every key of the identity is owed the change (the alarm delivers it).
        let revision = self.next_sync_revision()?;
        self.db.run(
            "INSERT INTO key_sync (key_id, revision) SELECT key_id, ? FROM identity_holders WHERE identity = ? \
             ON CONFLICT (key_id) DO UPDATE SET revision = excluded.revision",
            params![revision, next.id.as_str()],
        )?;
        let detail = format!("{} ({})", next.external_id, limit_text(&next));
        self.audit_identity(audit_id, now, actor, AuditAction::UpdateIdentity, &next.id, detail)?;
        Ok(OrgReply::Identity { identity: IdentityView::of(next, row.keys, row.created_at, now) })
    }

    pub(super) fn delete_identity(&self, actor: &str, id: &str, audit_id: String, now: Timestamp) -> Answer {
        self.allowed(actor, OrgAction::ManageIdentities)?;
        let row = self.identity_row(id)?.ok_or(OrgRefusal::NotFound { what: "identity".into() })?;
        let holders = self.db.count(
            "SELECT count(*) AS n FROM identity_holders WHERE identity = ?",
            params![row.identity.id.as_str()],
        )?;
        if holders > 0 {
            let keys = if holders == 1 { "1 key belongs".to_owned() } else { format!("{holders} keys belong") };
            return Err(OrgRefusal::Conflict {
                code: "IDENTITY_IN_USE".into(),
                detail: format!("{keys} to this identity (revoked and deactivated keys too): move them first."),
            }
            .into());
        }
        self.db.run("DELETE FROM identities WHERE id = ?", params![row.identity.id.as_str()])?;
        let detail = row.identity.external_id.clone();
        self.audit_identity(audit_id, now, actor, AuditAction::DeleteIdentity, &row.identity.id, detail)?;
        Ok(OrgReply::Done)
    }

    fn audit_identity(
        &self,
        audit_id: String,
        now: Timestamp,
        actor: &str,
        action: AuditAction,
        id: &str,
        detail: String,
    ) -> Result<(), SqlError> {
        let event = self.audit_event(audit_id, now, Some(actor), action, Some(id.to_owned()), detail)?;
        self.record(&event, None).map(drop)
    }
}

/// An identity's shared limit, for the audit log.
fn limit_text(identity: &KeyIdentity) -> String {
    match identity.rate_limit {
        Some(p) => format!("{} requests per {} s shared", p.requests, p.window_seconds),
        None => "no shared limit".into(),
    }
}

/// An identity's row as SQL answers it.
#[derive(Deserialize)]
struct StoredIdentity {
    body: String,
    keys: i64,
    created_at: i64,
    updated_at: i64,
}

impl StoredIdentity {
    fn read(self) -> Result<IdentityRow, SqlError> {
        Ok(IdentityRow {
            identity: json_column(&self.body)?,
            keys: u64::try_from(self.keys).unwrap_or(0),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

/// An identity as stored, with its count of keys.
#[derive(Debug, Clone)]
pub(super) struct IdentityRow {
    pub identity: KeyIdentity,
    pub keys: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl IdentityRow {
    fn view(self) -> IdentityView {
        IdentityView::of(self.identity, self.keys, self.created_at, self.updated_at)
    }
}

/// A role's permissions and description.
pub(super) type RoleDefinition = (Vec<Permission>, Option<String>);

/// A key owed its definitions as they now are: what the runtime sends its object (`KeyRequest::Sync`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySync {
    pub key: KeyId,
    pub revision: i64,
    pub roles: Vec<(String, Option<Vec<Permission>>)>,
    pub identity: Option<IdentitySync>,
}
