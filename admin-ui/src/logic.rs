//! The console's logic, free of the DOM: what a badge shows, which actions a user may take on a key, how the usage
//! chart scales, what the show-once modal offers to copy. Tested natively and in Chromium.

use keygate_shared::api::{CreatedKey, KeyView, UpdateKeyRequest};
use keygate_shared::meta::KeyMeta;
use keygate_shared::model::{KeyStatus, Permission, RateLimitPolicy, Refill, RefillInterval, Role, UsageLimit};
use keygate_shared::time::Timestamp;

/// A status badge: its words and its CSS class (each status visibly distinct).
pub fn status_badge(status: KeyStatus) -> (&'static str, &'static str) {
    match status {
        KeyStatus::Active => ("Active", "badge badge-active"),
        KeyStatus::Inactive => ("Inactive", "badge badge-inactive"),
        KeyStatus::Expired => ("Expired", "badge badge-expired"),
        KeyStatus::Deactivated => ("Deactivated", "badge badge-deactivated"),
    }
}

/// Something a user can do to a key from its menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAction {
    Rename,
    Edit,
    Revoke,
    Activate,
    Deactivate,
    Regenerate,
    Delete,
}

impl KeyAction {
    pub fn label(self) -> &'static str {
        match self {
            Self::Rename => "Rename",
            Self::Edit => "Edit permissions, limit, expiry",
            Self::Revoke => "Revoke",
            Self::Activate => "Activate",
            Self::Deactivate => "Deactivate",
            Self::Regenerate => "Regenerate",
            Self::Delete => "Delete",
        }
    }

    /// The confirmation to show before acting, if the action needs one.
    pub fn confirmation(self) -> Option<&'static str> {
        match self {
            Self::Deactivate => Some("Deactivation is final: the key can never be activated again. Deactivate it?"),
            Self::Delete => Some("Delete this key for good? Its usage history goes with it."),
            Self::Regenerate => Some(
                "Regenerate this key? A new secret replaces the old one, which stops working (at once, or after the grace period you choose). Name, permissions and settings stay.",
            ),
            Self::Revoke => Some("Revoke this key? Requests with it are refused until it is activated again."),
            _ => None,
        }
    }
}

/// The actions a user may take on a key: only the owner renames, edits or regenerates; owners and admins revoke,
/// activate, deactivate and delete any key; members act on their own keys only; each only where the key's state allows.
pub fn allowed_actions(role: Role, is_owner: bool, status: KeyStatus) -> Vec<KeyAction> {
    let manages = is_owner || role.manages_all_keys();
    let live = matches!(status, KeyStatus::Active | KeyStatus::Inactive | KeyStatus::Expired);
    let mut out = Vec::new();
    if is_owner && live {
        out.extend([KeyAction::Rename, KeyAction::Edit, KeyAction::Regenerate]);
    }
    if manages {
        match status {
            KeyStatus::Active | KeyStatus::Expired => out.push(KeyAction::Revoke),
            KeyStatus::Inactive => out.push(KeyAction::Activate),
            KeyStatus::Deactivated => {}
        }
        if live {
            out.push(KeyAction::Deactivate);
        }
        if matches!(status, KeyStatus::Inactive | KeyStatus::Deactivated) {
            out.push(KeyAction::Delete);
        }
    }
    out
}

/// One bar of the usage chart, in SVG user units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub value: u64,
}

/// A "nice" axis maximum at or above `max`: 1, 2 or 5 times a power of ten (at least 1).
pub fn nice_max(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= max {
                return step.saturating_mul(m).max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Bars for `values` in a `width` × `height` chart, scaled to [`nice_max`] of the largest value.
pub fn chart_bars(values: &[u64], width: f64, height: f64) -> (u64, Vec<Bar>) {
    let top = nice_max(values.iter().copied().max().unwrap_or(0));
    let slot = if values.is_empty() { 0.0 } else { width / values.len() as f64 };
    let bars = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let h = height * v as f64 / top as f64;
            Bar { x: i as f64 * slot + slot * 0.1, y: height - h, width: slot * 0.8, height: h, value: v }
        })
        .collect();
    (top, bars)
}

/// The environment variables the snippets read the key from, as Instill's docs keep `INSTILL_API_TOKEN`: a snippet
/// pasted into a shell history, a ticket or a repository carries no secret.
pub const KEY_VARIABLE: &str = "KEYGATE_API_KEY";
pub const SECRET_VARIABLE: &str = "KEYGATE_API_SECRET";

/// The ready-to-run snippets of the show-once modal. None of them contains the secret: the first sets the variable
/// (the user pastes the key they just copied), the others read it.
pub fn snippets(created: &CreatedKey, origin: &str) -> Vec<(&'static str, String)> {
    let (k, s) = (KEY_VARIABLE, SECRET_VARIABLE);
    match created {
        CreatedKey::Single { .. } => vec![
            ("Keep the key in an environment variable (paste the key you copied)", format!("export {k}='<your key>'")),
            ("curl with Authorization: Bearer", format!("curl {origin}/ -H \"Authorization: Bearer ${k}\"")),
            ("curl with x-api-key", format!("curl {origin}/ -H \"x-api-key: ${k}\"")),
            (
                "JavaScript (fetch)",
                format!(
                    "await fetch(\"{origin}/\", {{ headers: {{ authorization: `Bearer ${{process.env.{k}}}` }} }});"
                ),
            ),
            (
                "Python (requests)",
                format!(
                    "requests.get(\"{origin}/\", headers={{\"Authorization\": f\"Bearer {{os.environ['{k}']}}\"}})"
                ),
            ),
        ],
        CreatedKey::Pair { api_key, .. } => vec![
            (
                "Keep both halves in environment variables (paste the secret you copied)",
                format!("export {k}='{api_key}'\nexport {s}='<your secret>'"),
            ),
            ("curl with apikey + apisecret", format!("curl {origin}/ -H \"apikey: ${k}\" -H \"apisecret: ${s}\"")),
        ],
    }
}

/// What the show-once modal lets the user copy: the full key, or both halves of a pair.
pub fn secret_text(created: &CreatedKey) -> String {
    match created {
        CreatedKey::Single { key, .. } => key.clone(),
        CreatedKey::Pair { api_key, api_secret, .. } => format!("apikey: {api_key}\napisecret: {api_secret}"),
    }
}

/// "data:read, telemetry:write" shortened to fit a table cell.
pub fn permissions_summary(permissions: &[Permission]) -> String {
    match permissions.len() {
        0 => "No permissions".into(),
        1..=3 => permissions.iter().map(Permission::as_str).collect::<Vec<_>>().join(", "),
        n => format!(
            "{}, … (+{})",
            permissions[..2].iter().map(Permission::as_str).collect::<Vec<_>>().join(", "),
            n - 2
        ),
    }
}

/// An identity as a choice in a list: its name and external id.
pub fn identity_label(name: &str, external_id: &str) -> String {
    if name == external_id { external_id.to_owned() } else { format!("{name} ({external_id})") }
}

/// A key's identity as its page shows it: who, and the limit its keys share.
pub fn key_identity_text(identity: Option<&keygate_shared::model::KeyIdentity>) -> String {
    match identity {
        None => "None".into(),
        Some(i) => match &i.rate_limit {
            Some(limit) => {
                format!("{} · shared limit {}", identity_label(&i.name, &i.external_id), rate_limit_text(Some(limit)))
            }
            None => identity_label(&i.name, &i.external_id),
        },
    }
}

/// An identity's shared-limit fields as sent: empty requests is no limit; a value that is not a number is sent as
/// 0, for the API's own error to name the field.
pub fn shared_limit_field(requests: &str, window: &str) -> Option<RateLimitPolicy> {
    match requests.trim() {
        "" => None,
        r => Some(RateLimitPolicy::per(r.parse().unwrap_or(0), window.trim().parse().unwrap_or(60))),
    }
}

/// What a key may do, for the list: its permissions, then the roles it holds.
pub fn access_summary(permissions: &[Permission], roles: &[String]) -> String {
    match (permissions.is_empty(), roles.is_empty()) {
        (_, true) => permissions_summary(permissions),
        (true, false) => format!("Roles: {}", roles.join(", ")),
        (false, false) => format!("{} · roles: {}", permissions_summary(permissions), roles.join(", ")),
    }
}

/// The usage-limit fields as sent: empty uses is no limit; a refill of an empty amount refills to the uses. Text
/// that is not a number is sent as 0, for the API's own error to name the field.
pub fn usage_limit_field(uses: &str, interval: &str, amount: &str) -> Option<UsageLimit> {
    let uses = uses.trim();
    if uses.is_empty() {
        return None;
    }
    let uses: u64 = uses.parse().unwrap_or(0);
    let interval = match interval {
        "daily" => Some(RefillInterval::Daily),
        "monthly" => Some(RefillInterval::Monthly),
        _ => None,
    };
    let refill = interval.map(|interval| Refill {
        amount: match amount.trim() {
            "" => uses,
            a => a.parse().unwrap_or(0),
        },
        interval,
    });
    Some(UsageLimit { uses, refill })
}

/// A key's usage limit and uses left, in words.
pub fn usage_limit_text(limit: Option<&UsageLimit>, remaining: Option<u64>) -> String {
    let Some(limit) = limit else { return "Unlimited".into() };
    let left = remaining.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let refill = match limit.refill {
        Some(Refill { amount, interval: RefillInterval::Daily }) => format!(", refilled to {amount} every day (UTC)"),
        Some(Refill { amount, interval: RefillInterval::Monthly }) => {
            format!(", refilled to {amount} every month (UTC)")
        }
        None => String::new(),
    };
    format!("{left} of {} uses left{refill}", limit.uses)
}

pub fn rate_limit_text(policy: Option<&RateLimitPolicy>) -> String {
    match policy {
        None => "Unlimited".into(),
        Some(p) => {
            let window = match p.window_seconds {
                1 => "second".to_owned(),
                60 => "minute".to_owned(),
                3600 => "hour".to_owned(),
                86_400 => "day".to_owned(),
                s => format!("{s} s"),
            };
            let burst = p.burst.map(|b| format!(", burst {b}")).unwrap_or_default();
            format!("{} / {window}{burst}", p.requests)
        }
    }
}

/// `2026-11-27 16:12 UTC`, or "Never".
pub fn when(t: Option<Timestamp>) -> String {
    match t {
        None => "Never".into(),
        Some(t) => {
            let s = t.to_rfc3339();
            format!("{} {} UTC", &s[..10], &s[11..16])
        }
    }
}

/// A time to the second, as the request log shows it.
pub fn when_exactly(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    format!("{} {} UTC", &s[..10], &s[11..19])
}

/// Who did something, as the audit log shows it: their name, else their id, else that nobody was signed in.
pub fn actor_label(name: Option<&str>, id: Option<&str>) -> String {
    match (name, id) {
        (Some(name), _) => name.to_owned(),
        (None, Some(id)) => id.to_owned(),
        (None, None) => String::from("(not signed in)"),
    }
}

/// The clock, read by the views (the logic above takes `now` as an argument).
pub fn now() -> Timestamp {
    Timestamp(js_sys::Date::now() as i64)
}

/// What the console says about the token in use: when it expires, in days (hours on its last day).
pub fn token_expiry(expires_at: Option<Timestamp>, now: Timestamp) -> String {
    let Some(at) = expires_at else { return String::new() };
    let left = at.millis() - now.millis();
    match left {
        ..=0 => "Your console token has expired".into(),
        1..=3_599_999 => "Your console token expires within the hour".into(),
        3_600_000..=86_399_999 => format!("Your console token expires in {} h", left / 3_600_000),
        _ => format!(
            "Your console token expires in {} days ({})",
            (left + 86_399_999) / 86_400_000,
            &when(Some(at))[..10]
        ),
    }
}

/// Sort orders of the keys table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Created,
    Name,
    LastUsed,
    Usage,
}

pub fn sort_keys(keys: &mut [KeyView], by: SortBy, descending: bool) {
    keys.sort_by(|a, b| {
        let order = match by {
            SortBy::Created => a.created_at.cmp(&b.created_at),
            SortBy::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            SortBy::LastUsed => a.last_used_at.cmp(&b.last_used_at),
            SortBy::Usage => a.usage.total.cmp(&b.usage.total),
        };
        if descending { order.reverse() } else { order }
    });
}

/// Splits free text ("a, b\nc") into trimmed, non-empty items.
pub fn split_list(text: &str) -> Vec<String> {
    text.split([',', '\n', ' ']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The Edit dialog's fields, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditForm {
    pub permissions: String,
    /// The roles the key holds, comma separated.
    pub roles: String,
    /// The id of the identity the key belongs to (empty: none).
    pub identity: String,
    pub customers: String,
    pub requests: String,
    pub window: String,
    pub expiry: String,
    pub ips: String,
    pub own_organization_only: bool,
    pub meta: String,
    /// The usage limit's uses, refill interval (`""`, `daily`, `monthly`) and refill amount.
    pub uses: String,
    pub refill: String,
    pub refill_amount: String,
}

impl EditForm {
    /// The fields as the dialog opens on `key`.
    pub fn of(key: &KeyView) -> Self {
        Self {
            permissions: key.permissions.iter().map(Permission::as_str).collect::<Vec<_>>().join(", "),
            roles: key.roles.join(", "),
            identity: key.identity.as_ref().map(|i| i.id.clone()).unwrap_or_default(),
            customers: key.customers.join(", "),
            requests: key.rate_limit.map(|p| p.requests.to_string()).unwrap_or_default(),
            window: key.rate_limit.map(|p| p.window_seconds.to_string()).unwrap_or_else(|| "60".into()),
            expiry: expiry_field(key.expires_at),
            ips: key.allowed_ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            own_organization_only: key.own_organization_only,
            meta: meta_text(key.meta.as_ref()),
            uses: key.usage_limit.map(|l| l.uses.to_string()).unwrap_or_default(),
            refill: match key.usage_limit.and_then(|l| l.refill).map(|r| r.interval) {
                Some(RefillInterval::Daily) => "daily".into(),
                Some(RefillInterval::Monthly) => "monthly".into(),
                None => String::new(),
            },
            refill_amount: key.usage_limit.and_then(|l| l.refill).map(|r| r.amount.to_string()).unwrap_or_default(),
        }
    }

    /// The update that names only what the user changed, so an edit keeps what it does not touch: a limit's
    /// `burst` and `mode` (the dialog does not show them), an expiry's seconds (the field shows minutes), the order
    /// of permissions. `None`: nothing changed.
    pub fn update(&self, key: &KeyView) -> Option<UpdateKeyRequest> {
        let before = Self::of(key);
        let mut update = UpdateKeyRequest::default();
        let permissions = split_list(&self.permissions);
        if permissions != split_list(&before.permissions) {
            update.permissions = Some(permissions);
        }
        let roles = split_list(&self.roles);
        if roles != split_list(&before.roles) {
            update.roles = Some(roles);
        }
        if self.identity.trim() != before.identity.trim() {
            update.identity = Some(Some(self.identity.trim().to_owned()).filter(|i| !i.is_empty()));
        }
        let customers = split_list(&self.customers);
        if customers != split_list(&before.customers) {
            update.customers = Some(customers);
        }
        let (requests, window) = (self.requests.trim(), self.window.trim());
        if (requests, window) != (before.requests.trim(), before.window.trim()) {
            update.rate_limit = Some(match requests {
                "" => None,
                // A value that is not a number is sent as 0, for the API's own error to name the field.
                r => Some(RateLimitPolicy {
                    requests: r.parse().unwrap_or(0),
                    window_seconds: window.parse().unwrap_or(0),
                    ..key.rate_limit.unwrap_or(RateLimitPolicy::per(0, 0))
                }),
            });
        }
        if self.expiry.trim() != before.expiry.trim() {
            update.expires_at = Some(parse_datetime_field(&self.expiry));
        }
        let ips = split_list(&self.ips);
        if ips != split_list(&before.ips) {
            update.allowed_ips = Some(ips);
        }
        if self.own_organization_only != before.own_organization_only {
            update.own_organization_only = Some(self.own_organization_only);
        }
        let meta = parse_meta_field(&self.meta);
        if meta != parse_meta_field(&before.meta) {
            update.meta = Some(meta);
        }
        let limit = usage_limit_field(&self.uses, &self.refill, &self.refill_amount);
        if limit != usage_limit_field(&before.uses, &before.refill, &before.refill_amount) {
            update.usage_limit = Some(limit);
        }
        (!update.is_empty()).then_some(update)
    }
}

/// A key's metadata as the console shows and edits it: indented JSON, or empty.
pub fn meta_text(meta: Option<&KeyMeta>) -> String {
    meta.and_then(|m| serde_json::from_str::<serde_json::Value>(m.as_json()).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_default()
}

/// The metadata field as sent: empty is none; text that is not JSON is sent as a string, for the API's own error
/// to name the field.
pub fn parse_meta_field(text: &str) -> Option<serde_json::Value> {
    match text.trim() {
        "" => None,
        t => Some(serde_json::from_str(t).unwrap_or_else(|_| serde_json::Value::String(t.to_owned()))),
    }
}

/// A `datetime-local` field's value (UTC, minutes) for a time.
pub fn expiry_field(at: Option<Timestamp>) -> String {
    at.map(|t| t.to_rfc3339()[..16].to_owned()).unwrap_or_default()
}

/// A `datetime-local` field's value (UTC) as a time; empty: none.
pub fn parse_datetime_field(value: &str) -> Option<Timestamp> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    let full = if v.len() == 16 { format!("{v}:00Z") } else { format!("{v}Z") };
    Timestamp::parse_rfc3339(&full)
}

/// An IP allowlist as the key page shows it.
pub fn ranges_text(ranges: &[keygate_shared::net::IpRange]) -> String {
    if ranges.is_empty() {
        return "Anywhere".into();
    }
    ranges.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}
