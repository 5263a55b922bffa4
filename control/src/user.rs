//! A user's object: one small SQLite-backed Durable Object per user, holding who they are, the organizations they
//! belong to (for the switcher, and for the gateway's `Keygate-Org` check), and their console sessions. Sign-in and
//! the organization switcher read only this object: no scan of anything global.
//!
//! The organizations' objects are the authority on membership; they tell this object when the user joins or
//! leaves ([`crate::org::UserNotice`]). This object in turn owes Workers KV the list of its organizations
//! (`user:<id>`), which the gateway reads when a request names another organization with `Keygate-Org`; it is
//! written behind and retried until it holds, like a key's record.

use keygate_shared::api::{OrganizationView, SessionInfo};
use keygate_shared::key::KeyId;
use keygate_shared::model::{Role, UserOrganizations};
use keygate_shared::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::org::UserNotice;
use crate::params;
use crate::sql::{Sql, SqlError, SqlExt};

/// Console sessions (tokens) a user may hold at once: creating one more signs the oldest out.
pub const MAX_SESSIONS: i64 = 20;
/// Sign-in refreshes a session's "last used" at most this often.
pub const TOUCH_EVERY_MS: i64 = 60_000;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS profile (id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, \
     created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS memberships (organization TEXT PRIMARY KEY, name TEXT NOT NULL, \
     role TEXT NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sessions (key_id TEXT PRIMARY KEY, label TEXT NOT NULL, \
     created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, last_used_at INTEGER)",
    "CREATE TABLE IF NOT EXISTS kv (name TEXT PRIMARY KEY, revision INTEGER NOT NULL, written INTEGER NOT NULL)",
];

pub fn migrate(db: &impl Sql) -> Result<(), SqlError> {
    SCHEMA.iter().try_for_each(|statement| db.run(statement, &[]))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRequest {
    /// The user's first message. Repeating it changes nothing.
    Create {
        profile: Profile,
    },
    /// Who the user is, their organizations and sessions.
    Read {
        now: Timestamp,
    },
    Notice {
        notice: UserNotice,
    },
    /// A new console session. Past [`MAX_SESSIONS`], the oldest are handed back to be signed out.
    AddSession {
        session: SessionInfo,
    },
    /// Forget a session (its token is being deleted). `Done` when it was there.
    RemoveSession {
        key_id: KeyId,
    },
    /// The session was used (sign-in); stored at most once a minute.
    Touch {
        key_id: KeyId,
        at: Timestamp,
    },
    /// The runtime wrote the organizations at this revision to KV.
    KvWritten {
        revision: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserReply {
    Done,
    NotFound,
    User {
        profile: Profile,
        organizations: Vec<OrganizationView>,
        sessions: Vec<SessionInfo>,
    },
    /// Sessions beyond the bound, to sign out.
    Evicted {
        sessions: Vec<KeyId>,
    },
}

#[derive(Deserialize)]
struct ProfileRow {
    id: String,
    email: String,
    name: String,
    created_at: i64,
}

#[derive(Deserialize)]
struct MembershipRow {
    organization: String,
    name: String,
    role: String,
    created_at: i64,
}

#[derive(Deserialize)]
struct SessionRow {
    key_id: String,
    label: String,
    created_at: i64,
    expires_at: i64,
    last_used_at: Option<i64>,
}

/// A user's object, over its SQL storage.
#[derive(Debug)]
pub struct User<'a, S: Sql> {
    pub db: &'a S,
}

impl<S: Sql> User<'_, S> {
    pub fn handle(&self, request: UserRequest) -> Result<UserReply, SqlError> {
        migrate(self.db)?;
        match request {
            UserRequest::Create { profile } => {
                self.db.run(
                    "INSERT OR IGNORE INTO profile (id, email, name, created_at) VALUES (?, ?, ?, ?)",
                    params![profile.id.as_str(), profile.email.as_str(), profile.name.as_str(), profile.created_at],
                )?;
                Ok(UserReply::Done)
            }
            UserRequest::Read { now } => self.read(now),
            UserRequest::Notice { notice } => {
                match notice {
                    UserNotice::Joined { organization } => self.db.run(
                        "INSERT INTO memberships (organization, name, role, created_at) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (organization) DO UPDATE SET name = excluded.name, role = excluded.role",
                        params![
                            organization.id.as_str(),
                            organization.name.as_str(),
                            organization.role.as_str(),
                            organization.created_at
                        ],
                    )?,
                    UserNotice::Left { organization } => {
                        self.db.run("DELETE FROM memberships WHERE organization = ?", params![organization])?
                    }
                }
                self.owe_kv()?;
                Ok(UserReply::Done)
            }
            UserRequest::AddSession { session } => {
                self.db.run(
                    "INSERT OR IGNORE INTO sessions (key_id, label, created_at, expires_at) VALUES (?, ?, ?, ?)",
                    params![session.id.as_str(), session.label.as_str(), session.created_at, session.expires_at],
                )?;
                #[derive(Deserialize)]
                struct Id {
                    key_id: String,
                }
                let beyond: Vec<Id> = self.db.all(
                    "SELECT key_id FROM sessions ORDER BY created_at DESC, key_id DESC LIMIT -1 OFFSET ?",
                    params![MAX_SESSIONS],
                )?;
                for id in &beyond {
                    self.db.run("DELETE FROM sessions WHERE key_id = ?", params![id.key_id.as_str()])?;
                }
                let sessions = beyond.into_iter().filter_map(|r| KeyId::parse(&r.key_id)).collect();
                Ok(UserReply::Evicted { sessions })
            }
            UserRequest::RemoveSession { key_id } => {
                let had =
                    self.db.count("SELECT count(*) AS n FROM sessions WHERE key_id = ?", params![key_id.as_str()])?;
                self.db.run("DELETE FROM sessions WHERE key_id = ?", params![key_id.as_str()])?;
                Ok(if had > 0 { UserReply::Done } else { UserReply::NotFound })
            }
            UserRequest::Touch { key_id, at } => {
                self.db.run(
                    "UPDATE sessions SET last_used_at = ? WHERE key_id = ? AND \
                     (last_used_at IS NULL OR last_used_at <= ?)",
                    params![at, key_id.as_str(), at.millis() - TOUCH_EVERY_MS],
                )?;
                Ok(UserReply::Done)
            }
            UserRequest::KvWritten { revision } => {
                self.db.run(
                    "UPDATE kv SET written = ? WHERE name = 'organizations' AND revision = ?",
                    params![revision, revision],
                )?;
                Ok(UserReply::Done)
            }
        }
    }

    /// Marks the organizations list as owed to KV (a new revision).
    fn owe_kv(&self) -> Result<(), SqlError> {
        self.db.run(
            "INSERT INTO kv (name, revision, written) VALUES ('organizations', 1, 0) \
             ON CONFLICT (name) DO UPDATE SET revision = revision + 1",
            &[],
        )
    }

    /// What KV still needs: the user id, the organizations, and their revision.
    pub fn owed_kv(&self) -> Result<Option<(String, UserOrganizations, i64)>, SqlError> {
        migrate(self.db)?;
        #[derive(Deserialize)]
        struct Owed {
            revision: i64,
            written: i64,
        }
        let owed: Option<Owed> = self.db.first("SELECT revision, written FROM kv WHERE name = 'organizations'", &[])?;
        let Some(owed) = owed.filter(|o| o.written < o.revision) else { return Ok(None) };
        let profile: Option<ProfileRow> = self.db.first("SELECT id, email, name, created_at FROM profile", &[])?;
        let Some(profile) = profile else { return Ok(None) };
        #[derive(Deserialize)]
        struct Org {
            organization: String,
        }
        let orgs: Vec<Org> = self.db.all("SELECT organization FROM memberships ORDER BY organization", &[])?;
        let value = UserOrganizations { organizations: orgs.into_iter().map(|o| o.organization).collect() };
        Ok(Some((profile.id, value, owed.revision)))
    }

    fn read(&self, now: Timestamp) -> Result<UserReply, SqlError> {
        let profile: Option<ProfileRow> = self.db.first("SELECT id, email, name, created_at FROM profile", &[])?;
        let Some(profile) = profile else { return Ok(UserReply::NotFound) };
        let memberships: Vec<MembershipRow> = self.db.all(
            "SELECT organization, name, role, created_at FROM memberships ORDER BY created_at, organization",
            &[],
        )?;
        let organizations = memberships
            .into_iter()
            .map(|m| {
                let role = match m.role.as_str() {
                    "owner" => Role::Owner,
                    "admin" => Role::Admin,
                    _ => Role::Member,
                };
                OrganizationView { id: m.organization, name: m.name, role, created_at: Timestamp(m.created_at) }
            })
            .collect();
        // Expired sessions are forgotten as they are read.
        self.db.run("DELETE FROM sessions WHERE expires_at <= ?", params![now])?;
        let rows: Vec<SessionRow> = self.db.all(
            "SELECT key_id, label, created_at, expires_at, last_used_at FROM sessions ORDER BY created_at DESC",
            &[],
        )?;
        let sessions = rows
            .into_iter()
            .filter_map(|r| {
                let id = KeyId::parse(&r.key_id)?;
                Some(SessionInfo {
                    id,
                    label: r.label,
                    created_at: Timestamp(r.created_at),
                    expires_at: Timestamp(r.expires_at),
                    last_used_at: r.last_used_at.map(Timestamp),
                    current: false,
                })
            })
            .collect();
        let profile = Profile {
            id: profile.id,
            email: profile.email,
            name: profile.name,
            created_at: Timestamp(profile.created_at),
        };
        Ok(UserReply::User { profile, organizations, sessions })
    }
}
