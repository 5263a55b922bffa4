//! Who may do what in an organization: the console's and the admin API's permission table, as pure functions.
//!
//! The README's table "Who may do what" is rendered from [`TABLE`] (a test keeps them equal), so the documentation
//! cannot drift from the rules. The rules follow LandingLens: only a key's owner edits it or sees a new secret for
//! it (regenerate); owners and admins list every key and may revoke or deactivate any of them (a key that leaks is
//! everybody's problem), but a key revoked by someone else comes back only by an owner's or admin's decision.

use serde::{Deserialize, Serialize};

use crate::model::{KeyCreation, OrganizationSettings, Role};

/// Something done to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAction {
    /// See the key, its usage, recent errors and request log.
    View,
    /// Rename it or change its settings.
    Edit,
    /// Replace its secret (the new secret is shown to the caller).
    Regenerate,
    Revoke,
    /// Undo a revocation.
    Activate,
    Deactivate,
    Delete,
}

/// Something done to the organization itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgAction {
    /// Create a key of one's own.
    CreateKey,
    ListMembers,
    /// Invite a member with a role below owner.
    Invite,
    /// Invite an owner.
    InviteOwner,
    /// List and revoke pending invitations.
    ManageInvitations,
    /// Remove a member who is not an owner.
    RemoveMember,
    /// Remove an owner (never the last one).
    RemoveOwner,
    ManageProjects,
    /// Describe the organization's permissions (its catalog).
    DescribePermissions,
    /// Define, change and delete the organization's roles (a change reaches every key that holds the role).
    ManageRoles,
    /// Create, change and delete the organization's identities (a change reaches every key of the identity).
    ManageIdentities,
    /// Read the audit log of everything in the organization (members read their own actions and keys).
    ReadAllAudit,
    /// See the organization's usage by the organization each request acted for.
    ViewUsage,
    /// Add, change, test and delete webhooks, and read their delivery logs.
    ManageWebhooks,
    ChangeSettings,
}

/// What the rules know about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFacts<'a> {
    pub owner: &'a str,
    /// Who revoked it, while it is revoked.
    pub revoked_by: Option<&'a str>,
}

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    /// The actor may not even see the key: answered 404, so key ids do not leak.
    Hidden,
    /// Only the key's owner may do this (403 `NOT_KEY_OWNER`).
    OwnerOnly,
    /// Only owners and admins may do this (403 `FORBIDDEN`).
    ManagersOnly,
    /// Only owners may do this (403 `FORBIDDEN`).
    OwnersOnly,
    /// Someone else revoked the key: only owners and admins may activate it again (403 `REVOKED_BY_OTHER`).
    RevokedByOther,
}

/// Whether `actor`, with `role` in the key's organization, may do `action` to the key.
pub fn may_act_on_key(role: Role, actor: &str, key: KeyFacts<'_>, action: KeyAction) -> Result<(), Denial> {
    let own = key.owner == actor;
    let manager = role.manages_all_keys();
    match action {
        // Members see their own keys; owners and admins see every key.
        _ if !own && !manager => Err(Denial::Hidden),
        KeyAction::View | KeyAction::Revoke | KeyAction::Deactivate | KeyAction::Delete => Ok(()),
        // Only the owner edits a key or sees a new secret for it.
        KeyAction::Edit | KeyAction::Regenerate if own => Ok(()),
        KeyAction::Edit | KeyAction::Regenerate => Err(Denial::OwnerOnly),
        // Undoing someone else's revocation is a manager's decision.
        KeyAction::Activate if manager || key.revoked_by.is_none_or(|by| by == actor) => Ok(()),
        KeyAction::Activate => Err(Denial::RevokedByOther),
    }
}

/// Whether `role` may do `action` in an organization with `settings`.
pub fn may_act_on_org(role: Role, action: OrgAction, settings: &OrganizationSettings) -> Result<(), Denial> {
    use OrgAction::*;
    match (action, role) {
        (CreateKey, Role::Member) if settings.key_creation == KeyCreation::OwnersAndAdmins => Err(Denial::ManagersOnly),
        (CreateKey | ListMembers, _) => Ok(()),
        (
            Invite | ManageInvitations | RemoveMember | ManageProjects | DescribePermissions | ManageRoles
            | ManageIdentities | ReadAllAudit | ViewUsage | ManageWebhooks,
            Role::Owner | Role::Admin,
        ) => Ok(()),
        (
            Invite | ManageInvitations | RemoveMember | ManageProjects | DescribePermissions | ManageRoles
            | ManageIdentities | ReadAllAudit | ViewUsage | ManageWebhooks,
            Role::Member,
        ) => Err(Denial::ManagersOnly),
        (InviteOwner | RemoveOwner | ChangeSettings, Role::Owner) => Ok(()),
        (InviteOwner | RemoveOwner | ChangeSettings, Role::Admin | Role::Member) => Err(Denial::OwnersOnly),
    }
}

/// One row of the README's table: what it says, and the rule it is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub what: &'static str,
    pub rule: Rule,
}

#[derive(Debug, Clone, Copy)]
pub enum Rule {
    Key(KeyAction),
    /// Activating a key that someone other than its owner revoked.
    ActivateRevokedByOther,
    Org(OrgAction),
}

/// The permission table, in the README's order.
pub const TABLE: &[Row] = &[
    Row { what: "create keys", rule: Rule::Org(OrgAction::CreateKey) },
    Row { what: "see a key, its usage, errors and log", rule: Rule::Key(KeyAction::View) },
    Row { what: "rename or edit a key", rule: Rule::Key(KeyAction::Edit) },
    Row { what: "regenerate a key (see its new secret)", rule: Rule::Key(KeyAction::Regenerate) },
    Row { what: "revoke a key", rule: Rule::Key(KeyAction::Revoke) },
    Row { what: "activate a key revoked by its owner", rule: Rule::Key(KeyAction::Activate) },
    Row { what: "activate a key someone else revoked", rule: Rule::ActivateRevokedByOther },
    Row { what: "deactivate or delete a key", rule: Rule::Key(KeyAction::Deactivate) },
    Row { what: "list members", rule: Rule::Org(OrgAction::ListMembers) },
    Row { what: "invite admins and members, manage invitations", rule: Rule::Org(OrgAction::Invite) },
    Row { what: "invite owners", rule: Rule::Org(OrgAction::InviteOwner) },
    Row { what: "remove a member or an admin", rule: Rule::Org(OrgAction::RemoveMember) },
    Row { what: "remove an owner (never the last)", rule: Rule::Org(OrgAction::RemoveOwner) },
    Row { what: "create and rename projects", rule: Rule::Org(OrgAction::ManageProjects) },
    Row { what: "describe permissions (the catalog)", rule: Rule::Org(OrgAction::DescribePermissions) },
    Row { what: "define, change and delete roles", rule: Rule::Org(OrgAction::ManageRoles) },
    Row { what: "create, change and delete identities", rule: Rule::Org(OrgAction::ManageIdentities) },
    Row { what: "read the whole audit log (members: their own)", rule: Rule::Org(OrgAction::ReadAllAudit) },
    Row { what: "see the organization's usage by acting organization", rule: Rule::Org(OrgAction::ViewUsage) },
    Row { what: "manage webhooks and read their deliveries", rule: Rule::Org(OrgAction::ManageWebhooks) },
    Row { what: "change organization settings", rule: Rule::Org(OrgAction::ChangeSettings) },
];

/// The cell of `row` for `role`: on one's own keys, and on other members' keys, for key actions.
pub fn cell(row: &Row, role: Role) -> &'static str {
    match row.rule {
        Rule::Org(action) => {
            let restricted =
                OrganizationSettings { key_creation: KeyCreation::OwnersAndAdmins, ..OrganizationSettings::default() };
            match (
                may_act_on_org(role, action, &OrganizationSettings::default()).is_ok(),
                may_act_on_org(role, action, &restricted).is_ok(),
            ) {
                (true, true) => "yes",
                (true, false) => "yes, unless the organization keeps it to owners and admins",
                (false, _) => "no",
            }
        }
        Rule::Key(_) | Rule::ActivateRevokedByOther => {
            let (action, by) = match row.rule {
                Rule::Key(action) => (action, None),
                _ => (KeyAction::Activate, Some("a third member")),
            };
            let own = may_act_on_key(role, "me", KeyFacts { owner: "me", revoked_by: by.or(Some("me")) }, action);
            let others =
                may_act_on_key(role, "me", KeyFacts { owner: "other", revoked_by: by.or(Some("other")) }, action);
            let (own, others) = (own.is_ok(), others.is_ok());
            match (own, others) {
                (true, true) => "any key",
                (true, false) => "own keys",
                (false, true) => "others' keys",
                (false, false) => "no",
            }
        }
    }
}

/// The table as Markdown, as the README shows it.
pub fn markdown_table() -> String {
    let mut out = String::from("| action | owner | admin | member |\n|---|---|---|---|\n");
    for row in TABLE {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.what,
            cell(row, Role::Owner),
            cell(row, Role::Admin),
            cell(row, Role::Member)
        ));
    }
    out
}
