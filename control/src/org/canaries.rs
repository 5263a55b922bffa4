//! Canary keys' trips. The gateway refuses a canary exactly as it refuses an unknown key and logs the request like
//! any request of a key that proved itself; when such a line reaches this object ([`Org::trip`]), the key's index
//! row says it is a canary: the trip is kept (`canary_trips`, the newest 1,000), audited, and raised as the
//! `canary.tripped` webhook event.

use keygate_shared::api::{AuditAction, AuditEvent, CanaryTrip, CanaryTripList};
use keygate_shared::key::KeyId;
use keygate_shared::keyobject::KeyIndexRow;
use keygate_shared::requestlog::LoggedRequest;
use keygate_shared::time::Timestamp;
use serde::Deserialize;

use super::{Answer, Org, OrgReply, limits};
use crate::params;
use crate::sql::{Sql, SqlError, SqlExt, json_column};

/// Trips kept per organization (the oldest go first).
pub const TRIPS: i64 = 1_000;
/// Trips one page shows.
const PAGE: i64 = 100;

impl<S: Sql> Org<'_, S> {
    /// A logged line of a key of this organization: if the key is a canary, a trip.
    pub(super) fn trip(&self, line: &LoggedRequest) -> Result<(), SqlError> {
        let Some(row) = self.live_row(line.key_id.as_str())?.filter(|row| row.canary) else {
            return Ok(());
        };
        let known = self.db.count("SELECT count(*) AS n FROM canary_trips WHERE id = ?", params![line.id.as_str()])?;
        if known > 0 {
            return Ok(());
        }
        self.db.run(
            "INSERT INTO canary_trips (id, key_id, at, method, path, client_ip, user_agent, country) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                line.id.as_str(),
                line.key_id.as_str(),
                line.at,
                line.method.as_str(),
                line.path.as_str(),
                line.client_ip.clone(),
                line.user_agent.clone(),
                line.country.clone()
            ],
        )?;
        let newest = self.db.count("SELECT max(seq) AS n FROM canary_trips", &[])?;
        self.db.run("DELETE FROM canary_trips WHERE seq <= ?", params![newest - TRIPS])?;
        let mut detail = format!("canary used: {} {}", line.method, line.path);
        if let Some(ip) = &line.client_ip {
            detail.push_str(&format!(" from {ip}"));
        }
        if let Some(country) = &line.country {
            detail.push_str(&format!(" ({country})"));
        }
        if let Some(agent) = &line.user_agent {
            detail.push_str(&format!(", user agent {agent}"));
        }
        let event = AuditEvent {
            id: format!("evt_trip_{}", line.id),
            at: line.at,
            organization: row.organization.clone(),
            actor: None,
            actor_name: None,
            action: AuditAction::CanaryTripped,
            target: Some(row.id.to_string()),
            detail: super::cut(&detail, limits::AUDIT_DETAIL_CHARS),
        };
        if self.record(&event, Some(&row.owner))? {
            self.raise(&event, Some(&row))?;
        }
        Ok(())
    }

    /// The newest trips (of one key with `key`): every key's for owners and admins, a member's own keys' for a
    /// member.
    pub(super) fn trips(&self, actor: &str, key: Option<KeyId>) -> Answer {
        let role = self.role(actor)?;
        let everyone = role.manages_all_keys();
        if let Some(id) = &key {
            self.visible_key(actor, role, id)?;
        }
        #[derive(Deserialize)]
        struct Row {
            key_id: String,
            row: String,
            at: i64,
            method: String,
            path: String,
            client_ip: Option<String>,
            user_agent: Option<String>,
            country: Option<String>,
        }
        let rows: Vec<Row> = self.db.all(
            "SELECT t.key_id AS key_id, k.row AS row, t.at AS at, t.method AS method, t.path AS path, \
             t.client_ip AS client_ip, t.user_agent AS user_agent, t.country AS country \
             FROM canary_trips t JOIN keys k ON k.id = t.key_id \
             WHERE (? IS NULL OR t.key_id = ?) AND (? OR k.owner = ?) ORDER BY t.seq DESC LIMIT ?",
            params![key.map(|k| k.to_string()), key.map(|k| k.to_string()), everyone, actor, PAGE],
        )?;
        let trips = rows
            .into_iter()
            .map(|r| {
                let row: KeyIndexRow = json_column(&r.row)?;
                let _ = r.key_id;
                Ok(CanaryTrip {
                    key_id: row.id,
                    key_name: row.name,
                    at: Timestamp(r.at),
                    method: r.method,
                    path: r.path,
                    client_ip: r.client_ip,
                    user_agent: r.user_agent,
                    country: r.country,
                })
            })
            .collect::<Result<_, SqlError>>()?;
        Ok(OrgReply::Trips { trips: CanaryTripList { trips } })
    }
}
