//! Webhooks: the events an organization can subscribe to, the body a receiver gets, the signature that proves
//! Keygate sent it, and the receiver's check of that signature.
//!
//! A delivery is a `POST` of a [`WebhookEvent`] as JSON with three headers:
//! - `Keygate-Webhook-Id`: the delivery's id (the same on every retry: receivers drop repeats by it);
//! - `Keygate-Event`: the event's type, such as `key.revoked`;
//! - `Keygate-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA-256 of "<t>.<body>" under the webhook's secret>`.
//!
//! A receiver recomputes the HMAC over the exact bytes it received, compares in constant time and refuses a
//! timestamp more than [`TOLERANCE_SECONDS`] away from its clock (a replayed delivery): [`verify`] does all three.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::api::AuditAction;
use crate::key::KeyId;
use crate::model::Environment;
use crate::problem::Problem;
use crate::time::Timestamp;

/// Webhooks one organization may have.
pub const MAX_WEBHOOKS: usize = 10;
/// The longest endpoint URL.
pub const URL_MAX_LEN: usize = 2_048;
/// How far a delivery's timestamp may be from the receiver's clock (seconds).
pub const TOLERANCE_SECONDS: i64 = 300;
/// Attempts of one delivery before it is marked failed: 1 s, 2 s, 4 s … then hourly, about five hours in all.
pub const MAX_ATTEMPTS: u32 = 12;
/// Deliveries kept per webhook in its log (the newest).
pub const DELIVERY_LOG: usize = 100;
/// Deliveries an organization may have waiting at once; past it the oldest waiting ones are marked failed.
pub const MAX_PENDING: usize = 1_000;
/// A delivery's answer is awaited this long.
pub const TIMEOUT_MS: u32 = 10_000;
/// The signing secret's prefix (so it is recognizable in a secrets manager or a leak).
pub const SECRET_PREFIX: &str = "whsec_";
pub const DESCRIPTION_MAX_CHARS: usize = 200;

/// What happened. Serialized as the dotted name receivers switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum EventType {
    #[serde(rename = "key.created")]
    KeyCreated,
    #[serde(rename = "key.revoked")]
    KeyRevoked,
    #[serde(rename = "key.activated")]
    KeyActivated,
    #[serde(rename = "key.regenerated")]
    KeyRegenerated,
    #[serde(rename = "key.deactivated")]
    KeyDeactivated,
    #[serde(rename = "key.deleted")]
    KeyDeleted,
    /// A key was reported leaked (`POST /v1/leaks`), and revoked if the organization says so.
    #[serde(rename = "key.leaked")]
    KeyLeaked,
    /// A key reached its expiry (announced by the organization's alarm at that moment).
    #[serde(rename = "key.expired")]
    KeyExpired,
    /// A key (or the identity it shares a limit with) used up its rate limit and was refused: at most one event per
    /// key per [`RATE_LIMIT_ALERT_MS`].
    #[serde(rename = "key.rate_limited")]
    KeyRateLimited,
    /// A usage-limited key's uses left fell to a tenth of its limit (see [`uses_alerts`]).
    #[serde(rename = "key.uses_low")]
    KeyUsesLow,
    /// A usage-limited key has no uses left: it is refused until it is refilled or given more.
    #[serde(rename = "key.uses_exhausted")]
    KeyUsesExhausted,
    /// Someone used a canary key.
    #[serde(rename = "canary.tripped")]
    CanaryTripped,
    /// "Send test event" in the console.
    #[serde(rename = "ping")]
    Ping,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        Self::KeyCreated,
        Self::KeyRevoked,
        Self::KeyActivated,
        Self::KeyRegenerated,
        Self::KeyDeactivated,
        Self::KeyDeleted,
        Self::KeyLeaked,
        Self::KeyExpired,
        Self::KeyRateLimited,
        Self::KeyUsesLow,
        Self::KeyUsesExhausted,
        Self::CanaryTripped,
        Self::Ping,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::KeyCreated => "key.created",
            Self::KeyRevoked => "key.revoked",
            Self::KeyActivated => "key.activated",
            Self::KeyRegenerated => "key.regenerated",
            Self::KeyDeactivated => "key.deactivated",
            Self::KeyDeleted => "key.deleted",
            Self::KeyLeaked => "key.leaked",
            Self::KeyExpired => "key.expired",
            Self::KeyRateLimited => "key.rate_limited",
            Self::KeyUsesLow => "key.uses_low",
            Self::KeyUsesExhausted => "key.uses_exhausted",
            Self::CanaryTripped => "canary.tripped",
            Self::Ping => "ping",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// The event an audited action raises, if any.
    pub const fn of_audit(action: AuditAction) -> Option<Self> {
        match action {
            AuditAction::Create => Some(Self::KeyCreated),
            AuditAction::Revoke => Some(Self::KeyRevoked),
            AuditAction::Activate => Some(Self::KeyActivated),
            AuditAction::Regenerate => Some(Self::KeyRegenerated),
            AuditAction::Deactivate => Some(Self::KeyDeactivated),
            AuditAction::Delete => Some(Self::KeyDeleted),
            AuditAction::Leaked => Some(Self::KeyLeaked),
            AuditAction::Expired => Some(Self::KeyExpired),
            AuditAction::CanaryTripped => Some(Self::CanaryTripped),
            _ => None,
        }
    }
}

/// A key's `key.rate_limited` events are at least this far apart (a key held at its limit would raise one per
/// refused request otherwise).
pub const RATE_LIMIT_ALERT_MS: i64 = 3_600_000;

/// The uses left at or below which a usage-limited key is low: a tenth of what it gets (its refill amount when it
/// is refilled, else its uses), at least one.
pub fn uses_low_threshold(limit: &crate::model::UsageLimit) -> u64 {
    (limit.refill.map_or(limit.uses, |r| r.amount) / 10).max(1)
}

/// The events a usage summary raises, from the uses left the previous one said (`None`: no summary yet, or not
/// limited then) to `after`: `key.uses_low` when they fall to the threshold (or below) from above it,
/// `key.uses_exhausted` when they reach zero; both when one summary crosses both. A refill (uses go up) re-arms
/// them.
pub fn uses_alerts(limit: &crate::model::UsageLimit, before: Option<u64>, after: u64) -> Vec<EventType> {
    let threshold = uses_low_threshold(limit);
    let mut events = Vec::new();
    if after <= threshold && before.is_none_or(|b| b > threshold) {
        events.push(EventType::KeyUsesLow);
    }
    if after == 0 && before != Some(0) {
        events.push(EventType::KeyUsesExhausted);
    }
    events
}

/// The key an event is about, as it was when the event happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventKey {
    pub id: KeyId,
    pub name: String,
    pub environment: Environment,
    #[serde(default)]
    pub project: Option<String>,
    /// The user who owns the key.
    pub owner: String,
}

/// What a receiver gets: the body of every delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WebhookEvent {
    /// Unique per event (the audit event's id): a receiver may drop repeats by it.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub created_at: Timestamp,
    pub organization: String,
    /// The user who acted, when one did.
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub key: Option<EventKey>,
    /// What happened, in words (the audit log's detail).
    pub detail: String,
}

// ---------------------------------------------------------------------------------------------------------------
// The admin API

/// `POST /webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// `https://…`; `http://` only to a loopback address (local development).
    pub url: String,
    /// The events to send; empty or absent: every event.
    #[serde(default)]
    pub events: Vec<EventType>,
    #[serde(default)]
    pub description: Option<String>,
}

/// `PATCH /webhooks/{id}`: what is left out stays.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventType>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A disabled webhook receives nothing (events while disabled are not kept for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A webhook as the admin API shows it: never its secret, after creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    /// Empty: every event.
    pub events: Vec<EventType>,
    #[serde(default)]
    pub description: Option<String>,
    pub enabled: bool,
    pub created_at: Timestamp,
}

/// How long a rotated-out secret keeps signing beside the new one, unless asked otherwise: a day.
pub const PREVIOUS_SECRET_SECONDS: u32 = 86_400;
/// …and at most: a week.
pub const PREVIOUS_SECRET_MAX_SECONDS: u32 = 7 * 86_400;

/// `POST /webhooks/{id}/rotate-secret` (the body may be empty): a new signing secret, answered once. The previous
/// secret keeps signing beside it (`Keygate-Signature` then carries two `v1=` values) for `previous_valid_seconds`,
/// so receivers switch without refusing a delivery; `0` stops it at once (a leaked secret).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// Default 86,400 (a day); at most 604,800 (a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(max = 604_800)))]
    pub previous_valid_seconds: Option<u32>,
}

impl RotateSecretRequest {
    /// How long the previous secret keeps signing, in seconds.
    pub fn previous_seconds(&self) -> Result<u32, Problem> {
        match self.previous_valid_seconds {
            None => Ok(PREVIOUS_SECRET_SECONDS),
            Some(s) if s <= PREVIOUS_SECRET_MAX_SECONDS => Ok(s),
            Some(_) => Err(Problem::invalid_field("previous_valid_seconds", "at most 604800 (a week)")),
        }
    }
}

/// `POST /webhooks/{id}/rotate-secret` answers the new secret, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RotatedSecret {
    pub webhook: WebhookView,
    /// The new `whsec_…`. Shown only now.
    pub secret: String,
    /// Until when the previous secret signs too; absent when it stopped at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<Timestamp>,
}

/// `POST /webhooks` answers the signing secret, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreatedWebhook {
    pub webhook: WebhookView,
    /// `whsec_…`: the HMAC key of `Keygate-Signature`. Shown only now.
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed (or the webhook was deleted or disabled meanwhile).
    Failed,
}

impl DeliveryState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed].into_iter().find(|s| s.as_str() == text)
    }
}

/// One delivery in a webhook's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeliveryView {
    /// `Keygate-Webhook-Id`.
    pub id: String,
    pub event_id: String,
    pub event_type: EventType,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The status the last attempt got, if the receiver answered.
    #[serde(default)]
    pub last_status: Option<u16>,
    /// Why the last attempt failed, when it did.
    #[serde(default)]
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    #[serde(default)]
    pub next_attempt_at: Option<Timestamp>,
    #[serde(default)]
    pub delivered_at: Option<Timestamp>,
}

/// `GET /webhooks/{id}/deliveries`: the newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

impl CreateWebhookRequest {
    /// Checks every field (422 naming the first at fault).
    pub fn validate(&self) -> Result<(), Problem> {
        validate_url(&self.url)?;
        validate_events(&self.events)?;
        validate_description(self.description.as_deref())
    }
}

impl UpdateWebhookRequest {
    pub fn validate(&self) -> Result<(), Problem> {
        if *self == Self::default() {
            return Err(Problem::bad_request(
                "EMPTY_UPDATE",
                "Name at least one of url, events, description, enabled.",
            ));
        }
        if let Some(url) = &self.url {
            validate_url(url)?;
        }
        if let Some(events) = &self.events {
            validate_events(events)?;
        }
        validate_description(self.description.as_deref())
    }
}

fn validate_events(events: &[EventType]) -> Result<(), Problem> {
    if events.len() > EventType::ALL.len() {
        return Err(Problem::invalid_field("events", "Name each event at most once."));
    }
    for (i, e) in events.iter().enumerate() {
        if events[..i].contains(e) {
            return Err(Problem::invalid_field("events", format!("`{}` is named twice.", e.as_str())));
        }
    }
    Ok(())
}

fn validate_description(description: Option<&str>) -> Result<(), Problem> {
    match description {
        Some(d) if d.chars().count() > DESCRIPTION_MAX_CHARS || d.chars().any(char::is_control) => {
            Err(Problem::invalid_field("description", "At most 200 characters, no control characters."))
        }
        _ => Ok(()),
    }
}

/// An endpoint Keygate may post to: `https://host[:port][/path]`, or `http://` to a loopback host (`localhost`,
/// `127.0.0.0/8`, `[::1]`) for local development. No credentials in the URL, no fragment.
pub fn validate_url(url: &str) -> Result<(), Problem> {
    let bad = |detail: &str| Err(Problem::invalid_field("url", detail.to_owned()));
    if url.len() > URL_MAX_LEN {
        return bad("At most 2,048 characters.");
    }
    if url.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return bad("Spaces, control and non-ASCII characters must be percent-encoded.");
    }
    let (secure, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return bad("Use an https:// URL.");
    };
    if url.contains('#') {
        return bad("A webhook URL has no fragment.");
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.contains('@') {
        return bad("Credentials do not belong in the URL: verify `Keygate-Signature` instead.");
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, port)) if port.is_empty() || port.starts_with(':') => host,
            _ => return bad("The host is not a valid address."),
        },
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    let port = authority.strip_prefix(&format!("[{host}]")).unwrap_or(&authority[host.len()..]);
    if let Some(port) = port.strip_prefix(':') {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return bad("The port is not a number from 1 to 65535.");
        }
    } else if !port.is_empty() {
        return bad("The host is not a valid address.");
    }
    let is_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let is_v6 = authority.starts_with('[') && crate::net::parse_addr(host).is_some();
    if !is_name && !is_v6 {
        return bad("The host is not a valid name or address.");
    }
    let loopback = host.eq_ignore_ascii_case("localhost") || host == "::1" || is_loopback_v4(host);
    if !secure && !loopback {
        return bad("Use an https:// URL (http:// is accepted only for a loopback address, in development).");
    }
    Ok(())
}

fn is_loopback_v4(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4 && parts[0] == "127" && parts.iter().all(|p| p.parse::<u8>().is_ok())
}

/// A new signing secret: `whsec_` and 32 base62 characters (about 190 random bits).
pub fn generate_secret() -> Result<String, getrandom::Error> {
    Ok(format!("{SECRET_PREFIX}{}", crate::key::Secret::generate()?.expose()))
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Keygate-Signature` value of `body` sent at `now`.
pub fn sign(secret: &str, now: Timestamp, body: &[u8]) -> String {
    sign_with(&[secret], now, body)
}

/// `Keygate-Signature` under several secrets (a rotation's new and previous): one `v1=` per secret, so a receiver
/// holding either accepts the delivery.
pub fn sign_with(secrets: &[&str], now: Timestamp, body: &[u8]) -> String {
    let t = now.millis().div_euclid(1_000);
    let mut header = format!("t={t}");
    for secret in secrets {
        header.push_str(",v1=");
        for b in mac(secret, t, body).finalize().into_bytes() {
            header.push_str(&format!("{b:02x}"));
        }
    }
    header
}

/// Why a delivery was not accepted by [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// The header is not `t=…,v1=…`.
    Malformed,
    /// The timestamp is more than [`TOLERANCE_SECONDS`] from `now`: a replay, or a clock far off.
    OutsideWindow,
    /// No `v1` signature matches the body under this secret.
    Mismatch,
}

/// The receiver's check of a delivery: the header's timestamp within [`TOLERANCE_SECONDS`] of `now`, and one of its
/// `v1` signatures equal (constant time) to the HMAC of `<t>.<body>` under `secret`. Several `v1` entries are
/// accepted, so a secret can be rotated without a gap.
pub fn verify(secret: &str, header: &str, body: &[u8], now: Timestamp) -> Result<(), SignatureError> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => signatures.push(decode_hex(v).ok_or(SignatureError::Malformed)?),
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now.millis().div_euclid(1_000) - t).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::OutsideWindow);
    }
    let expected = mac(secret, t, body);
    if signatures.iter().any(|s| expected.clone().verify_slice(s).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The wait before attempt `attempt + 1` of a delivery that failed `attempt` times: 1 s, 2 s, 4 s … at most an hour.
pub fn backoff_ms(attempt: u32) -> i64 {
    1_000i64.saturating_mul(1i64 << attempt.saturating_sub(1).min(12)).min(3_600_000)
}
