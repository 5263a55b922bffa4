//! The organization's webhooks: its endpoints (`webhooks`), and every delivery owed or made (`webhook_deliveries`,
//! the delivery log). An event is queued for each subscribed endpoint in the same transaction as the change that
//! raised it; the runtime's alarm posts what is due ([`Org::due_deliveries`]), signed, and reports each outcome
//! ([`Org::delivery_outcomes`]): a 2xx delivers it, anything else schedules the next attempt with backoff, until
//! [`MAX_ATTEMPTS`] have failed.

use keygate_shared::api::{AuditAction, AuditEvent};
use keygate_shared::authz::OrgAction;
use keygate_shared::keyobject::KeyIndexRow;
use keygate_shared::time::Timestamp;
use keygate_shared::webhook::{
    CreateWebhookRequest, DELIVERY_LOG, DeliveryList, DeliveryState, DeliveryView, EventKey, EventType, MAX_ATTEMPTS,
    MAX_PENDING, MAX_WEBHOOKS, UpdateWebhookRequest, WebhookEvent, WebhookView, backoff_ms,
};
use serde::{Deserialize, Serialize};

use super::{Answer, Org, OrgRefusal, OrgReply, cut};
use crate::params;
use crate::sql::{Sql, SqlError, SqlExt, json_column, to_json};

fn event_key(row: &KeyIndexRow) -> EventKey {
    EventKey {
        id: row.id,
        name: row.name.clone(),
        environment: row.environment,
        project: row.project.clone(),
        owner: row.owner.clone(),
    }
}

/// Deliveries posted per round of the alarm.
const BATCH: i64 = 20;
/// The longest error text kept for an attempt.
const ERROR_CHARS: usize = 200;

/// A delivery the runtime should post now. It carries the signing secret: it never leaves the object's isolate.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: String,
    pub url: String,
    pub secret: String,
    /// The rotated-out secret, while it still signs beside `secret`.
    pub previous_secret: Option<String>,
    pub event_type: EventType,
    pub body: String,
}

/// What one attempt got: a status when the receiver answered, an error otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryOutcome {
    pub id: String,
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct WebhookRow {
    id: String,
    url: String,
    events: String,
    description: Option<String>,
    enabled: i64,
    created_at: i64,
}

impl WebhookRow {
    fn view(self) -> Result<WebhookView, SqlError> {
        Ok(WebhookView {
            id: self.id,
            url: self.url,
            events: json_column(&self.events)?,
            description: self.description,
            enabled: self.enabled != 0,
            created_at: Timestamp(self.created_at),
        })
    }
}

const WEBHOOK_COLUMNS: &str = "id, url, events, description, enabled, created_at";

impl<S: Sql> Org<'_, S> {
    fn webhook_row(&self, id: &str) -> Result<Option<WebhookRow>, SqlError> {
        self.db.first(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?"), params![id])
    }

    pub(super) fn webhooks(&self, actor: &str) -> Answer {
        self.allowed(actor, OrgAction::ManageWebhooks)?;
        let rows: Vec<WebhookRow> =
            self.db.all(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"), &[])?;
        let webhooks = rows.into_iter().map(WebhookRow::view).collect::<Result<_, _>>()?;
        Ok(OrgReply::Webhooks { webhooks })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_webhook(
        &self,
        actor: &str,
        id: &str,
        request: &CreateWebhookRequest,
        secret: &str,
        audit_id: String,
        now: Timestamp,
    ) -> Answer {
        self.allowed(actor, OrgAction::ManageWebhooks)?;
        if self.db.count("SELECT count(*) AS n FROM webhooks", &[])? >= MAX_WEBHOOKS as i64 {
            return Err(OrgRefusal::Full { detail: "An organization has at most 10 webhooks.".into() }.into());
        }
        self.db.run(
            "INSERT INTO webhooks (id, url, secret, events, description, enabled, created_at) VALUES (?, ?, ?, ?, ?, 1, ?)",
            params![id, request.url.as_str(), secret, to_json(&request.events), request.description.clone(), now],
        )?;
        self.audit_webhook(audit_id, now, actor, AuditAction::CreateWebhook, id, &request.url)?;
        let row = self.webhook_row(id)?.ok_or_else(|| SqlError("the webhook just stored is gone".into()))?;
        Ok(OrgReply::Webhook { webhook: row.view()? })
    }

    pub(super) fn update_webhook(
        &self,
        actor: &str,
        id: &str,
        change: &UpdateWebhookRequest,
        audit_id: String,
        now: Timestamp,
    ) -> Answer {
        self.allowed(actor, OrgAction::ManageWebhooks)?;
        let row = self.webhook_row(id)?.ok_or(OrgRefusal::NotFound { what: "webhook".into() })?;
        let mut view = row.view()?;
        if let Some(url) = &change.url {
            view.url.clone_from(url);
        }
        if let Some(events) = &change.events {
            view.events.clone_from(events);
        }
        if let Some(description) = &change.description {
            view.description = Some(description.clone()).filter(|d| !d.is_empty());
        }
        if let Some(enabled) = change.enabled {
            view.enabled = enabled;
        }
        self.db.run(
            "UPDATE webhooks SET url = ?, events = ?, description = ?, enabled = ? WHERE id = ?",
            params![view.url.as_str(), to_json(&view.events), view.description.clone(), view.enabled, id],
        )?;
        if !view.enabled {
            self.give_up(id, "The webhook was disabled.")?;
        }
        self.audit_webhook(audit_id, now, actor, AuditAction::UpdateWebhook, id, &view.url)?;
        Ok(OrgReply::Webhook { webhook: view })
    }

    pub(super) fn delete_webhook(&self, actor: &str, id: &str, audit_id: String, now: Timestamp) -> Answer {
        self.allowed(actor, OrgAction::ManageWebhooks)?;
        let row = self.webhook_row(id)?.ok_or(OrgRefusal::NotFound { what: "webhook".into() })?;
        self.db.run("DELETE FROM webhook_deliveries WHERE webhook = ?", params![id])?;
        self.db.run("DELETE FROM webhook_previous_secrets WHERE webhook = ?", params![id])?;
        self.db.run("DELETE FROM webhooks WHERE id = ?", params![id])?;
        self.audit_webhook(audit_id, now, actor, AuditAction::DeleteWebhook, id, &row.url)?;
        Ok(OrgReply::Done)
    }

    /// A new signing secret; the previous one signs beside it until `now + previous_ms` (0: not at all). One
    /// previous secret at a time: rotating again drops the older one.
    pub(super) fn rotate_webhook_secret(
        &self,
        actor: &str,
        id: &str,
        secret: &str,
        previous_ms: i64,
        audit_id: String,
        now: Timestamp,
    ) -> Answer {
        #[derive(Deserialize)]
        struct Current {
            secret: String,
        }
        self.allowed(actor, OrgAction::ManageWebhooks)?;
        let row = self.webhook_row(id)?.ok_or(OrgRefusal::NotFound { what: "webhook".into() })?;
        let current: Current = self
            .db
            .first("SELECT secret FROM webhooks WHERE id = ?", params![id])?
            .ok_or_else(|| SqlError("the webhook's secret is gone".into()))?;
        let detail = if previous_ms > 0 {
            let until = now.plus_millis(previous_ms);
            self.db.run(
                "INSERT INTO webhook_previous_secrets (webhook, secret, until) VALUES (?, ?, ?) \
                 ON CONFLICT (webhook) DO UPDATE SET secret = excluded.secret, until = excluded.until",
                params![id, current.secret, until],
            )?;
            format!(
                "rotated the signing secret of {}; the previous one signs too until {}",
                row.url,
                until.to_rfc3339()
            )
        } else {
            self.db.run("DELETE FROM webhook_previous_secrets WHERE webhook = ?", params![id])?;
            format!("rotated the signing secret of {}; the previous one stopped at once", row.url)
        };
        self.db.run("UPDATE webhooks SET secret = ? WHERE id = ?", params![secret, id])?;
        self.audit_webhook(audit_id, now, actor, AuditAction::UpdateWebhook, id, &detail)?;
        Ok(OrgReply::Webhook { webhook: row.view()? })
    }

    /// "Send test event": a `ping` to this webhook alone (even when it does not subscribe to pings).
    pub(super) fn test_webhook(&self, actor: &str, id: &str, event_id: String, now: Timestamp) -> Answer {
        self.allowed(actor, OrgAction::ManageWebhooks)?;
        let row = self.webhook_row(id)?.ok_or(OrgRefusal::NotFound { what: "webhook".into() })?;
        if row.enabled == 0 {
            return Err(OrgRefusal::Conflict {
                code: "CONFLICT".into(),
                detail: "The webhook is disabled: enable it to send it a test event.".into(),
            }
            .into());
        }
        let organization = self.organization()?.map(|o| o.id).unwrap_or_default();
        let event = WebhookEvent {
            id: event_id,
            kind: EventType::Ping,
            created_at: now,
            organization,
            actor: Some(actor.to_owned()),
            key: None,
            detail: "A test event, sent from the console or POST /webhooks/{id}/test.".into(),
        };
        let delivery = self.queue(id, &event)?;
        Ok(OrgReply::Deliveries { deliveries: DeliveryList { deliveries: vec![delivery] } })
    }

    /// A webhook's delivery log, newest first.
    pub(super) fn deliveries(&self, actor: &str, id: &str) -> Answer {
        self.allowed(actor, OrgAction::ManageWebhooks)?;
        self.webhook_row(id)?.ok_or(OrgRefusal::NotFound { what: "webhook".into() })?;
        let rows: Vec<DeliveryRow> = self.db.all(
            &format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook = ? ORDER BY seq DESC LIMIT ?"),
            params![id, DELIVERY_LOG as i64],
        )?;
        let deliveries = rows.into_iter().map(DeliveryRow::view).collect::<Result<_, _>>()?;
        Ok(OrgReply::Deliveries { deliveries: DeliveryList { deliveries } })
    }

    fn audit_webhook(
        &self,
        audit_id: String,
        now: Timestamp,
        actor: &str,
        action: AuditAction,
        id: &str,
        url: &str,
    ) -> Result<(), SqlError> {
        let event = self.audit_event(audit_id, now, Some(actor), action, Some(id.to_owned()), cut(url, 200))?;
        self.record(&event, None)?;
        Ok(())
    }

    /// Queues the webhook event an audited change raises, for every enabled webhook that subscribes to it. Called
    /// once per audit event (a repeated event was already queued).
    pub(super) fn raise(&self, audit: &AuditEvent, key: Option<&KeyIndexRow>) -> Result<(), SqlError> {
        let Some(kind) = EventType::of_audit(audit.action) else { return Ok(()) };
        self.fan_out(&WebhookEvent {
            id: audit.id.clone(),
            kind,
            created_at: audit.at,
            organization: audit.organization.clone(),
            actor: audit.actor.clone(),
            key: key.map(event_key),
            detail: audit.detail.clone(),
        })
    }

    /// Queues an event about `key` that the audit log does not keep (rate limited, uses low or exhausted): `id` is
    /// the event's, the same for the same occurrence.
    pub(super) fn raise_about(
        &self,
        kind: EventType,
        id: String,
        at: Timestamp,
        key: &KeyIndexRow,
        detail: String,
    ) -> Result<(), SqlError> {
        self.fan_out(&WebhookEvent {
            id,
            kind,
            created_at: at,
            organization: key.organization.clone(),
            actor: None,
            key: Some(event_key(key)),
            detail,
        })
    }

    /// Queues `event` for every enabled webhook subscribed to its type.
    fn fan_out(&self, event: &WebhookEvent) -> Result<(), SqlError> {
        #[derive(Deserialize)]
        struct Subscriber {
            id: String,
            events: String,
        }
        let kind = event.kind;
        let subscribers: Vec<Subscriber> =
            self.db.all("SELECT id, events FROM webhooks WHERE enabled = 1 ORDER BY id", &[])?;
        for subscriber in subscribers {
            let events: Vec<EventType> = json_column(&subscriber.events)?;
            if events.is_empty() || events.contains(&kind) {
                self.queue(&subscriber.id, event)?;
            }
        }
        Ok(())
    }

    /// Stores a delivery of `event` to `webhook`, due now; keeps the log and the waiting deliveries bounded.
    fn queue(&self, webhook: &str, event: &WebhookEvent) -> Result<DeliveryView, SqlError> {
        let id = keygate_shared::model::new_id("whd").map_err(|e| SqlError(e.to_string()))?;
        self.db.run(
            "INSERT INTO webhook_deliveries (id, webhook, event_id, event_type, body, state, attempts, next_at, \
             created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            params![
                id.as_str(),
                webhook,
                event.id.as_str(),
                event.kind.as_str(),
                to_json(event),
                event.created_at,
                event.created_at
            ],
        )?;
        // The log keeps the newest deliveries of each webhook…
        self.db.run(
            "DELETE FROM webhook_deliveries WHERE webhook = ? AND state != 'pending' AND seq <= \
             (SELECT seq FROM webhook_deliveries WHERE webhook = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            params![webhook, webhook, DELIVERY_LOG as i64],
        )?;
        // …and at most so many wait at once: past that, the oldest waiting are given up.
        let pending = self.db.count("SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'pending'", &[])?;
        if pending > MAX_PENDING as i64 {
            self.db.run(
                "UPDATE webhook_deliveries SET state = 'failed', next_at = NULL, last_error = ? WHERE seq IN \
                 (SELECT seq FROM webhook_deliveries WHERE state = 'pending' ORDER BY seq LIMIT ?)",
                params!["Dropped: more than 1,000 deliveries were waiting.", pending - MAX_PENDING as i64],
            )?;
        }
        Ok(DeliveryView {
            id,
            event_id: event.id.clone(),
            event_type: event.kind,
            state: DeliveryState::Pending,
            attempts: 0,
            last_status: None,
            last_error: None,
            created_at: event.created_at,
            next_attempt_at: Some(event.created_at),
            delivered_at: None,
        })
    }

    /// Gives up the waiting deliveries of a webhook (disabled).
    fn give_up(&self, webhook: &str, why: &str) -> Result<(), SqlError> {
        self.db.run(
            "UPDATE webhook_deliveries SET state = 'failed', next_at = NULL, last_error = ? \
             WHERE webhook = ? AND state = 'pending'",
            params![why, webhook],
        )
    }

    /// The deliveries due at `now` (a batch), with what they need to be posted.
    pub fn due_deliveries(&self, now: Timestamp) -> Result<Vec<DueDelivery>, SqlError> {
        super::migrate(self.db)?;
        #[derive(Deserialize)]
        struct Row {
            id: String,
            url: String,
            secret: String,
            previous_secret: Option<String>,
            event_type: String,
            body: String,
        }
        let rows: Vec<Row> = self.db.all(
            "SELECT d.id AS id, w.url AS url, w.secret AS secret, p.secret AS previous_secret, \
             d.event_type AS event_type, d.body AS body \
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook \
             LEFT JOIN webhook_previous_secrets p ON p.webhook = w.id AND p.until > ? \
             WHERE d.state = 'pending' AND d.next_at <= ? ORDER BY d.next_at, d.seq LIMIT ?",
            params![now, now, BATCH],
        )?;
        rows.into_iter()
            .map(|r| {
                let event_type = EventType::parse(&r.event_type)
                    .ok_or_else(|| SqlError(format!("unknown event type {}", r.event_type)))?;
                Ok(DueDelivery {
                    id: r.id,
                    url: r.url,
                    secret: r.secret,
                    previous_secret: r.previous_secret,
                    event_type,
                    body: r.body,
                })
            })
            .collect()
    }

    /// Records what each attempt got, and answers when the next delivery is due (if any is waiting).
    pub fn delivery_outcomes(
        &self,
        outcomes: &[DeliveryOutcome],
        now: Timestamp,
    ) -> Result<Option<Timestamp>, SqlError> {
        super::migrate(self.db)?;
        for outcome in outcomes {
            #[derive(Deserialize)]
            struct Attempts {
                attempts: i64,
            }
            let Some(row) = self.db.first::<Attempts>(
                "SELECT attempts FROM webhook_deliveries WHERE id = ? AND state = 'pending'",
                params![outcome.id.as_str()],
            )?
            else {
                continue;
            };
            let attempts = row.attempts + 1;
            let status = outcome.status.map(i64::from);
            let error = outcome.error.as_deref().map(|e| cut(e, ERROR_CHARS));
            if outcome.status.is_some_and(|s| (200..300).contains(&s)) {
                self.db.run(
                    "UPDATE webhook_deliveries SET state = 'delivered', attempts = ?, last_status = ?, \
                     last_error = NULL, next_at = NULL, delivered_at = ? WHERE id = ?",
                    params![attempts, status, now, outcome.id.as_str()],
                )?;
            } else {
                let error = error.or_else(|| status.map(|s| format!("The receiver answered {s}.")));
                let attempts_u32 = u32::try_from(attempts).unwrap_or(u32::MAX);
                let (state, next_at) = if attempts_u32 >= MAX_ATTEMPTS {
                    ("failed", None)
                } else {
                    ("pending", Some(now.millis() + backoff_ms(attempts_u32)))
                };
                self.db.run(
                    "UPDATE webhook_deliveries SET state = ?, attempts = ?, last_status = ?, last_error = ?, \
                     next_at = ? WHERE id = ?",
                    params![state, attempts, status, error, next_at, outcome.id.as_str()],
                )?;
            }
        }
        self.next_delivery()
    }

    /// When the next waiting delivery is due.
    pub fn next_delivery(&self) -> Result<Option<Timestamp>, SqlError> {
        super::migrate(self.db)?;
        #[derive(Deserialize)]
        struct Next {
            next_at: Option<i64>,
        }
        let next: Option<Next> =
            self.db.first("SELECT min(next_at) AS next_at FROM webhook_deliveries WHERE state = 'pending'", &[])?;
        Ok(next.and_then(|n| n.next_at).map(Timestamp))
    }
}

const DELIVERY_COLUMNS: &str =
    "id, event_id, event_type, state, attempts, last_status, last_error, created_at, next_at, delivered_at";

#[derive(Deserialize)]
struct DeliveryRow {
    id: String,
    event_id: String,
    event_type: String,
    state: String,
    attempts: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    next_at: Option<i64>,
    delivered_at: Option<i64>,
}

impl DeliveryRow {
    fn view(self) -> Result<DeliveryView, SqlError> {
        Ok(DeliveryView {
            id: self.id,
            event_id: self.event_id,
            event_type: EventType::parse(&self.event_type)
                .ok_or_else(|| SqlError(format!("unknown event type {}", self.event_type)))?,
            state: DeliveryState::parse(&self.state)
                .ok_or_else(|| SqlError(format!("unknown state {}", self.state)))?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.last_error,
            created_at: Timestamp(self.created_at),
            next_attempt_at: self.next_at.map(Timestamp),
            delivered_at: self.delivered_at.map(Timestamp),
        })
    }
}
