//! Leaks of the organization's keys, as `POST /v1/leaks` found them: each is kept (the newest 20 per key, 1,000 in
//! all), audited (`leaked`) and raised as `key.leaked`; the organization's setting says whether the Worker then
//! revokes the key.

use keygate_shared::api::{AuditAction, AuditEvent};
use keygate_shared::key::KeyId;
use keygate_shared::keyobject::KeyIndexRow;
use keygate_shared::leak::{KeyLeak, KeyLeakList, LEAKS_PER_KEY, LEAKS_PER_ORGANIZATION, LeakResponse, URL_MAX_CHARS};
use keygate_shared::model::KeyState;
use keygate_shared::time::Timestamp;
use serde::Deserialize;

use super::{Answer, Org, OrgReply, cut, limits};
use crate::params;
use crate::sql::{Sql, SqlExt, json_column};

impl<S: Sql> Org<'_, S> {
    pub(super) fn leaked(
        &self,
        key: KeyId,
        url: Option<String>,
        source: Option<String>,
        reported_as: &str,
        audit_id: String,
        now: Timestamp,
    ) -> Answer {
        #[derive(Deserialize)]
        struct Row {
            row: String,
        }
        let Some(row) =
            self.db.first::<Row>("SELECT row FROM keys WHERE id = ? AND deleted = 0", params![key.as_str()])?
        else {
            return Ok(OrgReply::LeakResponse { response: None });
        };
        let row: KeyIndexRow = json_column(&row.row)?;
        let response = self.settings()?.leak_response;
        let revoke = response == LeakResponse::Revoke && row.state == KeyState::Active;
        let (url, source) = (url.map(|u| cut(&u, URL_MAX_CHARS)), source.map(|s| cut(&s, 100)));
        self.db.run(
            "INSERT INTO key_leaks (key_id, at, url, source, reported_as, revoked) VALUES (?, ?, ?, ?, ?, ?)",
            params![key.as_str(), now, url.clone(), source.clone(), cut(reported_as, 100), revoke],
        )?;
        self.db.run(
            "DELETE FROM key_leaks WHERE key_id = ? AND seq <= (SELECT seq FROM key_leaks WHERE key_id = ? \
             ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            params![key.as_str(), key.as_str(), LEAKS_PER_KEY],
        )?;
        let newest = self.db.count("SELECT max(seq) AS n FROM key_leaks", &[])?;
        self.db.run("DELETE FROM key_leaks WHERE seq <= ?", params![newest - LEAKS_PER_ORGANIZATION])?;
        let mut detail = String::from("reported leaked");
        if let Some(url) = &url {
            detail.push_str(&format!(" at {url}"));
        }
        if let Some(source) = &source {
            detail.push_str(&format!(" ({source})"));
        }
        detail.push_str(if revoke { "; revoking it" } else { "; alert only" });
        let event = AuditEvent {
            id: audit_id,
            at: now,
            organization: row.organization.clone(),
            actor: None,
            actor_name: None,
            action: AuditAction::Leaked,
            target: Some(key.to_string()),
            detail: cut(&detail, limits::AUDIT_DETAIL_CHARS),
        };
        if self.record(&event, Some(&row.owner))? {
            self.raise(&event, Some(&row))?;
        }
        Ok(OrgReply::LeakResponse { response: Some(if revoke { LeakResponse::Revoke } else { LeakResponse::Alert }) })
    }

    /// A key's leaks, newest first: for any member who may see the key.
    pub(super) fn leaks(&self, actor: &str, key: KeyId) -> Answer {
        let role = self.role(actor)?;
        self.visible_key(actor, role, &key)?;
        #[derive(Deserialize)]
        struct Leak {
            at: i64,
            url: Option<String>,
            source: Option<String>,
            reported_as: String,
            revoked: i64,
        }
        let rows: Vec<Leak> = self.db.all(
            "SELECT at, url, source, reported_as, revoked FROM key_leaks WHERE key_id = ? ORDER BY seq DESC",
            params![key.as_str()],
        )?;
        let leaks = rows
            .into_iter()
            .map(|l| KeyLeak {
                key_id: key,
                at: Timestamp(l.at),
                url: l.url,
                source: l.source,
                reported_as: l.reported_as,
                revoked: l.revoked != 0,
            })
            .collect();
        Ok(OrgReply::Leaks { leaks: KeyLeakList { leaks } })
    }
}
