//! Least privilege: when each route permission was last used by a passing request of each key (`permission_use`,
//! kept from the request log's lines, at most 64 permissions per key), and the suggestions made from it
//! (`keygate_shared::privilege::suggest`).

use keygate_shared::api::UsageSummary;
use keygate_shared::key::KeyId;
use keygate_shared::keyobject::KeyIndexRow;
use keygate_shared::model::Permission;
use keygate_shared::privilege::{MAX_USES_PER_KEY, PermissionUse, SuggestionList, suggest};
use keygate_shared::requestlog::LoggedRequest;
use keygate_shared::time::Timestamp;
use serde::Deserialize;

use super::{Answer, Org, OrgRefusal, OrgReply, key_view};
use crate::params;
use crate::sql::{Sql, SqlError, SqlExt, json_column};

impl<S: Sql> Org<'_, S> {
    /// A logged request that passed uses the permission its route needed.
    pub(super) fn permission_used(&self, line: &LoggedRequest) -> Result<(), SqlError> {
        let Some(permission) = line.permission.as_deref().filter(|_| line.status < 400) else { return Ok(()) };
        let key = line.key_id.as_str();
        let known = self.db.count(
            "SELECT count(*) AS n FROM permission_use WHERE key_id = ? AND permission = ?",
            params![key, permission],
        )?;
        if known == 0
            && self.db.count("SELECT count(*) AS n FROM permission_use WHERE key_id = ?", params![key])?
                >= MAX_USES_PER_KEY
        {
            return Ok(());
        }
        self.db.run(
            "INSERT INTO permission_use (key_id, permission, last_used_at, requests) VALUES (?, ?, ?, 1) \
             ON CONFLICT (key_id, permission) DO UPDATE SET requests = requests + 1, \
             last_used_at = max(last_used_at, excluded.last_used_at)",
            params![key, permission, line.at],
        )
    }

    /// The key's observed permission use and what it suggests, for a member who may see the key.
    pub(super) fn suggestions(&self, actor: &str, key: KeyId, now: Timestamp) -> Answer {
        let role = self.role(actor)?;
        #[derive(Deserialize)]
        struct Row {
            row: String,
            owner: String,
            last_used_at: Option<i64>,
            usage_total: i64,
        }
        let row: Option<Row> = self.db.first(
            "SELECT row, owner, last_used_at, usage_total FROM keys WHERE id = ? AND deleted = 0",
            params![key.as_str()],
        )?;
        let Some(row) = row.filter(|r| role.manages_all_keys() || r.owner == actor) else {
            return Err(OrgRefusal::NotFound { what: "key".into() }.into());
        };
        let index: KeyIndexRow = json_column(&row.row)?;
        let usage = UsageSummary { total: u64::try_from(row.usage_total).unwrap_or(0), ..UsageSummary::default() };
        let view = key_view(&index, now, row.last_used_at.map(Timestamp), usage);
        #[derive(Deserialize)]
        struct Use {
            permission: String,
            last_used_at: i64,
            requests: i64,
        }
        let uses: Vec<Use> = self.db.all(
            "SELECT permission, last_used_at, requests FROM permission_use WHERE key_id = ? ORDER BY permission",
            params![key.as_str()],
        )?;
        let observed: Vec<PermissionUse> = uses
            .into_iter()
            .filter_map(|u| {
                Some(PermissionUse {
                    permission: Permission::try_from(u.permission.as_str()).ok()?,
                    last_used_at: Timestamp(u.last_used_at),
                    requests: u64::try_from(u.requests).unwrap_or(0),
                })
            })
            .collect();
        let suggestions = suggest(&view, &observed, now);
        Ok(OrgReply::Suggestions { list: SuggestionList { key_id: key, suggestions, observed } })
    }
}
