//! The directory: organizations, users and their roles, projects, the index of keys, and the audit log. One Durable
//! Object holds it (strongly consistent, read-your-writes for the admin API); this is its platform-free logic.

use std::collections::VecDeque;

use keygate_shared::api::{AuditAction, AuditEvent};
use keygate_shared::key::KeyId;
use keygate_shared::model::{Membership, Organization, Project, Role, User};
use keygate_shared::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Audit events kept (newest last); older ones are dropped.
pub const MAX_AUDIT: usize = 10_000;

/// Where a key belongs, for listing and ownership checks without reading every record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyIndex {
    pub id: KeyId,
    pub organization: String,
    pub owner: String,
    pub created_at: Timestamp,
    /// Console tokens are indexed too (so members can be listed with them), but never listed as keys.
    #[serde(default)]
    pub console: bool,
    /// The key's permissions, so the console can offer those already in use.
    #[serde(default)]
    pub permissions: Vec<String>,
}

impl KeyIndex {
    pub fn of(record: &keygate_shared::model::KeyRecord, console: bool) -> Self {
        Self {
            id: record.id,
            organization: record.organization.clone(),
            owner: record.owner.clone(),
            created_at: record.created_at,
            console,
            permissions: record.permissions.iter().map(|p| p.as_str().to_owned()).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Directory {
    pub organizations: Vec<Organization>,
    pub users: Vec<User>,
    pub projects: Vec<Project>,
    pub keys: Vec<KeyIndex>,
    pub audit: VecDeque<AuditEvent>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryRequest {
    /// The whole directory (the admin handlers decide on a snapshot, then send changes).
    Read,
    /// On an empty store only: the first organization and its owner.
    Bootstrap {
        organization: Organization,
        user: User,
    },
    AddOrganization {
        organization: Organization,
        owner: String,
    },
    AddUser {
        user: User,
    },
    AddProject {
        project: Project,
    },
    RenameProject {
        id: String,
        name: String,
    },
    AddKey {
        index: KeyIndex,
    },
    RemoveKey {
        id: KeyId,
    },
    Audit {
        event: AuditEvent,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryReply {
    Snapshot {
        directory: Box<Directory>,
    },
    Done,
    /// The change conflicts with what is there (bootstrap twice, a duplicate slug or email).
    Conflict {
        detail: String,
    },
}

impl Directory {
    pub fn is_empty(&self) -> bool {
        self.organizations.is_empty()
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn organization(&self, id: &str) -> Option<&Organization> {
        self.organizations.iter().find(|o| o.id == id)
    }

    pub fn project_by_slug(&self, organization: &str, slug: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.organization == organization && p.slug == slug)
    }

    pub fn key(&self, id: &KeyId) -> Option<&KeyIndex> {
        self.keys.iter().find(|k| &k.id == id)
    }

    /// Applies one request; the flag says whether anything changed (and must be persisted).
    pub fn handle(&mut self, request: DirectoryRequest) -> (DirectoryReply, bool) {
        use DirectoryRequest::*;
        let conflict = |detail: &str| (DirectoryReply::Conflict { detail: detail.to_owned() }, false);
        match request {
            Read => (DirectoryReply::Snapshot { directory: Box::new(self.clone()) }, false),
            Bootstrap { organization, user } => {
                if !self.is_empty() {
                    return conflict("Keygate is already bootstrapped; sign in with a console token.");
                }
                self.organizations.push(organization);
                self.users.push(user);
                (DirectoryReply::Done, true)
            }
            AddOrganization { organization, owner } => {
                let Some(user) = self.users.iter_mut().find(|u| u.id == owner) else {
                    return conflict("The owner does not exist.");
                };
                user.memberships.push(Membership { organization: organization.id.clone(), role: Role::Owner });
                self.organizations.push(organization);
                (DirectoryReply::Done, true)
            }
            AddUser { user } => {
                if let Some(existing) = self.users.iter_mut().find(|u| u.email == user.email) {
                    // An existing user joins another organization.
                    let new: Vec<Membership> = user
                        .memberships
                        .into_iter()
                        .filter(|m| !existing.memberships.iter().any(|e| e.organization == m.organization))
                        .collect();
                    if new.is_empty() {
                        return conflict("This user is already a member of the organization.");
                    }
                    existing.memberships.extend(new);
                } else {
                    self.users.push(user);
                }
                (DirectoryReply::Done, true)
            }
            AddProject { project } => {
                if self.project_by_slug(&project.organization, &project.slug).is_some() {
                    return conflict("A project with this slug already exists in the organization.");
                }
                self.projects.push(project);
                (DirectoryReply::Done, true)
            }
            RenameProject { id, name } => match self.projects.iter_mut().find(|p| p.id == id) {
                Some(p) => {
                    p.name = name;
                    (DirectoryReply::Done, true)
                }
                None => conflict("No such project."),
            },
            AddKey { index } => {
                self.keys.retain(|k| k.id != index.id);
                self.keys.push(index);
                (DirectoryReply::Done, true)
            }
            RemoveKey { id } => {
                self.keys.retain(|k| k.id != id);
                (DirectoryReply::Done, true)
            }
            Audit { event } => {
                // Failed sign-ins naming the same key are kept once a minute, so nobody can flood the log with them
                // (key ids are public) and push real history out.
                let flood = event.action == AuditAction::SignInFailed
                    && self
                        .audit
                        .iter()
                        .rev()
                        .take_while(|e| e.at.millis() > event.at.millis() - 60_000)
                        .any(|e| e.action == AuditAction::SignInFailed && e.target == event.target);
                if flood {
                    return (DirectoryReply::Done, false);
                }
                self.audit.push_back(event);
                while self.audit.len() > MAX_AUDIT {
                    self.audit.pop_front();
                }
                (DirectoryReply::Done, true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use keygate_shared::api::{AuditAction, AuditEvent};
    use keygate_shared::time::Timestamp;

    use super::{Directory, DirectoryRequest};

    fn failed(at_ms: i64, target: &str) -> DirectoryRequest {
        DirectoryRequest::Audit {
            event: AuditEvent {
                id: format!("evt_{at_ms}"),
                at: Timestamp(at_ms),
                organization: "org_a".into(),
                actor: None,
                action: AuditAction::SignInFailed,
                target: Some(target.into()),
                detail: String::new(),
            },
        }
    }

    /// Failed sign-ins for one key are logged at most once a minute; other keys and later minutes still log.
    #[test]
    fn failed_sign_ins_cannot_flood_the_audit_log() {
        let mut d = Directory::default();
        for (at, target, logged) in
            [(0, "A", true), (1_000, "A", false), (59_999, "A", false), (2_000, "B", true), (61_000, "A", true)]
        {
            let (_, changed) = d.handle(failed(at, target));
            assert_eq!(changed, logged, "at {at} for {target}");
        }
        assert_eq!(d.audit.len(), 3);
    }
}
