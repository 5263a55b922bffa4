//! Events about keys that no one's action raises:
//! - a key reaching its expiry: the alarm announces expiries in order (`keys_by_expiry`) past a watermark kept in
//!   `settings` (`expiry_watermark`, the last announced `(expires_at, id)`), a batch at a time, so an expiry is
//!   announced once however many keys expire together, and a key whose expiry moves later is announced again then;
//! - a key refused for its rate limit: from its request-log line, at most once per key per
//!   [`RATE_LIMIT_ALERT_MS`] (`key_alerts` keeps when it was last said);
//! - a usage-limited key falling low or running out of uses: from its usage summaries, as uses left cross the
//!   thresholds of [`uses_alerts`].
//!
//! Expiry is a change of the key's state, so it is audited (`expired`) as well; the other two are webhook events
//! only (a busy key would otherwise fill the audit log).

use keygate_shared::api::{AuditAction, AuditEvent};
use keygate_shared::keyobject::KeyIndexRow;
use keygate_shared::model::KeyState;
use keygate_shared::requestlog::LoggedRequest;
use keygate_shared::time::Timestamp;
use keygate_shared::webhook::{EventType, RATE_LIMIT_ALERT_MS, uses_alerts, uses_low_threshold};
use serde::Deserialize;

use super::Org;
use crate::params;
use crate::sql::{Sql, SqlError, SqlExt, json_column};

/// Expiries announced per round of the alarm (it comes back at once for more).
pub const EXPIRY_BATCH: i64 = 50;
const WATERMARK: &str = "expiry_watermark";

impl<S: Sql> Org<'_, S> {
    /// The last announced expiry; the first call starts watching at `now` (an organization's keys that expired
    /// before there was anyone to tell are not announced late).
    fn expiry_watermark(&self, now: Timestamp) -> Result<(i64, String), SqlError> {
        #[derive(Deserialize)]
        struct Row {
            value: String,
        }
        let row: Option<Row> = self.db.first("SELECT value FROM settings WHERE name = ?", params![WATERMARK])?;
        if let Some(row) = row
            && let Some((at, id)) = row.value.split_once(' ')
            && let Ok(at) = at.parse()
        {
            return Ok((at, id.to_owned()));
        }
        self.set_expiry_watermark(now.millis(), "")?;
        Ok((now.millis(), String::new()))
    }

    fn set_expiry_watermark(&self, at: i64, id: &str) -> Result<(), SqlError> {
        self.db.run(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![WATERMARK, format!("{at} {id}")],
        )
    }

    /// When the next expiry is due to be announced, if a key of this organization is set to expire.
    pub fn next_expiry(&self, now: Timestamp) -> Result<Option<Timestamp>, SqlError> {
        if self.organization()?.is_none() {
            return Ok(None);
        }
        let (at, id) = self.expiry_watermark(now)?;
        #[derive(Deserialize)]
        struct Row {
            expires_at: i64,
        }
        let next: Option<Row> = self.db.first(
            "SELECT expires_at FROM keys WHERE expires_at IS NOT NULL AND (expires_at, id) > (?, ?) \
             AND deleted = 0 ORDER BY expires_at, id LIMIT 1",
            params![at, id],
        )?;
        Ok(next.map(|r| Timestamp(r.expires_at)))
    }

    /// Announces up to [`EXPIRY_BATCH`] expiries due by `now` (audit `expired`, webhook `key.expired`); answers
    /// whether more are due.
    pub fn announce_expiries(&self, now: Timestamp) -> Result<bool, SqlError> {
        if self.organization()?.is_none() {
            return Ok(false);
        }
        let (at, id) = self.expiry_watermark(now)?;
        #[derive(Deserialize)]
        struct Row {
            id: String,
            expires_at: i64,
            row: String,
        }
        let due: Vec<Row> = self.db.all(
            "SELECT id, expires_at, row FROM keys WHERE expires_at IS NOT NULL AND (expires_at, id) > (?, ?) \
             AND expires_at <= ? AND deleted = 0 ORDER BY expires_at, id LIMIT ?",
            params![at, id, now.millis(), EXPIRY_BATCH],
        )?;
        let Some(last) = due.last() else { return Ok(false) };
        self.set_expiry_watermark(last.expires_at, &last.id)?;
        let more = due.len() as i64 == EXPIRY_BATCH;
        for due in due {
            let row: KeyIndexRow = json_column(&due.row)?;
            // A deactivated key is over already: its expiry changes nothing.
            if row.state == KeyState::Deactivated {
                continue;
            }
            let expired_at = Timestamp(due.expires_at);
            let event = AuditEvent {
                id: format!("evt_exp_{}_{}", due.id, due.expires_at),
                at: expired_at,
                organization: row.organization.clone(),
                actor: None,
                actor_name: None,
                action: AuditAction::Expired,
                target: Some(due.id.clone()),
                detail: format!("expired at {}", expired_at.to_rfc3339()),
            };
            if self.record(&event, Some(&row.owner))? {
                self.raise(&event, Some(&row))?;
            }
        }
        Ok(more)
    }

    /// A logged line of a key of this organization refused for its rate limit: `key.rate_limited`, unless one
    /// was raised for the key within the last [`RATE_LIMIT_ALERT_MS`].
    pub(super) fn rate_limited(&self, line: &LoggedRequest) -> Result<(), SqlError> {
        let Some(row) = self.live_row(line.key_id.as_str())? else { return Ok(()) };
        let said = self.db.count(
            "SELECT at AS n FROM key_alerts WHERE key_id = ? AND kind = ?",
            params![line.key_id.as_str(), EventType::KeyRateLimited.as_str()],
        )?;
        if said != 0 && line.at.millis() < said + RATE_LIMIT_ALERT_MS {
            return Ok(());
        }
        self.db.run(
            "INSERT INTO key_alerts (key_id, kind, at) VALUES (?, ?, ?) \
             ON CONFLICT (key_id, kind) DO UPDATE SET at = excluded.at",
            params![line.key_id.as_str(), EventType::KeyRateLimited.as_str(), line.at],
        )?;
        let limit = match &row.rate_limit {
            Some(policy) => format!("its limit of {} requests per {} s", policy.requests, policy.window_seconds),
            None => String::from("its identity's shared limit"),
        };
        let detail = format!("refused for {limit}: {} {}", line.method, line.path);
        self.raise_about(EventType::KeyRateLimited, format!("evt_rl_{}", line.id), line.at, &row, detail)
    }

    /// A usage summary of `row`'s key saying `after` uses are left, where the previous one said `before`.
    pub(super) fn uses_changed(
        &self,
        row: &KeyIndexRow,
        before: Option<u64>,
        after: u64,
        at: Timestamp,
    ) -> Result<(), SqlError> {
        let Some(limit) = &row.usage_limit else { return Ok(()) };
        for kind in uses_alerts(limit, before, after) {
            let detail = match kind {
                EventType::KeyUsesExhausted => String::from("no uses left: the key is refused until it gets more"),
                _ => format!("{after} uses left (low: {} or fewer)", uses_low_threshold(limit)),
            };
            let id = format!("evt_{}_{}_{}", kind.as_str().replace('.', "_"), row.id, at.millis());
            self.raise_about(kind, id, at, row, detail)?;
        }
        Ok(())
    }

    /// The index row of a key of this organization that is not deleted.
    pub(super) fn live_row(&self, id: &str) -> Result<Option<KeyIndexRow>, SqlError> {
        #[derive(Deserialize)]
        struct Row {
            row: String,
        }
        let row: Option<Row> = self.db.first("SELECT row FROM keys WHERE id = ? AND deleted = 0", params![id])?;
        row.map(|r| json_column(&r.row)).transpose()
    }
}
