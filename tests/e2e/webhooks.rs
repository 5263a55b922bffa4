//! Webhooks: a real workerd posts an organization's events to a loopback receiver, signed, and retries a delivery
//! the receiver failed (an injected 500) until it holds; the delivery log says what happened.

use keygate_e2e::receiver::{Received, Receiver};
use keygate_e2e::{Console, Value, eventually, json};
use keygate_shared::time::Timestamp;
use keygate_shared::webhook::verify;

pub fn now() -> Timestamp {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    Timestamp(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// A fresh organization of the shared owner (so no other test's events reach its webhooks) with a webhook to a new
/// receiver: (console acting for it, receiver, webhook id, secret).
pub fn hooked(name: &str, events: Value) -> (Console, Receiver, String, String) {
    let org = Console::shared_owner().new_organization(name);
    let receiver = Receiver::start();
    let created = org.call(
        "POST",
        "/webhooks",
        Some(&json!({"url": format!("{}/hooks/{name}", receiver.url), "events": events, "description": name})),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let body = created.json();
    let secret = body["secret"].as_str().expect("the secret, once").to_owned();
    let id = body["webhook"]["id"].as_str().expect("an id").to_owned();
    assert!(secret.starts_with("whsec_") && id.starts_with("whk_"), "{body}");
    (org, receiver, id, secret)
}

fn of_type<'a>(received: &'a [Received], kind: &str) -> Vec<&'a Received> {
    received.iter().filter(|r| r.header("keygate-event") == Some(kind)).collect()
}

#[test]
fn key_events_are_posted_signed_and_a_failed_delivery_is_retried_until_it_holds() {
    let (org, receiver, webhook, secret) = hooked("hooks-lifecycle", json!([]));
    // The receiver's first answer is a 500: the first delivery must be tried again.
    receiver.fail_next(1);
    let (_, key_id, _) = org.create_key(&json!({"name": "hooked key", "environment": "live"}));
    assert_eq!(org.action(&key_id, "revoke").status, 200);

    eventually("key.created and key.revoked are delivered", || {
        let got = receiver.received();
        of_type(&got, "key.created").iter().any(|r| r.answered == 200)
            && of_type(&got, "key.revoked").iter().any(|r| r.answered == 200)
    });
    let got = receiver.received();
    let created = of_type(&got, "key.created");
    assert_eq!(created.len(), 2, "one failed attempt, one retry: {created:?}");
    assert_eq!(created[0].answered, 500);
    assert_eq!(
        created[0].header("keygate-webhook-id"),
        created[1].header("keygate-webhook-id"),
        "a retry is the same delivery"
    );
    for delivery in &got {
        assert_eq!(delivery.target, "/hooks/hooks-lifecycle");
        assert_eq!(delivery.header("content-type"), Some("application/json"));
        let signature = delivery.header("keygate-signature").expect("a signature");
        assert_eq!(verify(&secret, signature, &delivery.body, now()), Ok(()), "{signature}");
        assert!(verify("whsec_not_the_secret", signature, &delivery.body, now()).is_err());
        let event = delivery.json();
        assert_eq!(event["organization"], org.acting_for.clone().unwrap().as_str(), "{event}");
        assert_eq!(event["key"]["id"], key_id.as_str(), "{event}");
        assert_eq!(event["key"]["name"], "hooked key", "{event}");
        assert_eq!(event["type"], delivery.header("keygate-event").unwrap());
        assert!(!String::from_utf8_lossy(&delivery.body).contains("whsec_"), "the secret is never sent");
    }

    // The log: newest first; the created event took two attempts.
    let log = org.call("GET", &format!("/webhooks/{webhook}/deliveries"), None).json();
    let deliveries = log["deliveries"].as_array().unwrap();
    let created_log = deliveries.iter().find(|d| d["event_type"] == "key.created").expect("logged");
    assert_eq!((created_log["state"].as_str(), created_log["attempts"].as_u64()), (Some("delivered"), Some(2)));
    assert_eq!(created_log["last_status"], 200);
    assert_eq!(created_log["id"], created[0].header("keygate-webhook-id").unwrap());
    // The secret is shown once: never in the list.
    let listed = org.call("GET", "/webhooks", None);
    assert_eq!(listed.status, 200);
    assert!(!listed.body.contains(&secret) && !listed.body.contains("whsec_"), "{}", listed.body);
}

#[test]
fn a_test_event_is_sent_on_demand_and_only_subscribed_events_arrive() {
    let (org, receiver, webhook, secret) = hooked("hooks-filtered", json!(["key.revoked"]));
    let sent = org.call("POST", &format!("/webhooks/{webhook}/test"), None);
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert_eq!(sent.json()["event_type"], "ping");
    eventually("the ping arrives", || !of_type(&receiver.received(), "ping").is_empty());
    let ping = of_type(&receiver.received(), "ping")[0].clone();
    assert_eq!(verify(&secret, ping.header("keygate-signature").unwrap(), &ping.body, now()), Ok(()));

    let (_, key_id, _) = org.create_key(&json!({"name": "filtered", "environment": "live"}));
    assert_eq!(org.action(&key_id, "revoke").status, 200);
    eventually("key.revoked arrives", || !of_type(&receiver.received(), "key.revoked").is_empty());
    assert!(of_type(&receiver.received(), "key.created").is_empty(), "not subscribed to key.created");

    // Disabled: nothing more, and a test event is refused.
    let off = org.call("PATCH", &format!("/webhooks/{webhook}"), Some(&json!({"enabled": false})));
    assert_eq!((off.status, off.json()["enabled"].as_bool()), (200, Some(false)), "{}", off.body);
    org.call("POST", &format!("/webhooks/{webhook}/test"), None).expect_problem(409, "CONFLICT");
    let before = receiver.received().len();
    assert_eq!(org.action(&key_id, "activate").status, 200);
    assert_eq!(org.action(&key_id, "revoke").status, 200);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(receiver.received().len(), before, "a disabled webhook gets nothing");

    assert_eq!(org.call("DELETE", &format!("/webhooks/{webhook}"), None).status, 204);
    org.call("GET", &format!("/webhooks/{webhook}/deliveries"), None).expect_problem(404, "NOT_FOUND");
    assert_eq!(org.audit_actions(&webhook), ["delete_webhook", "update_webhook", "create_webhook"]);
}

/// Events that wait on the request log's queue or a key's usage summary (a couple of seconds each in `wrangler dev`)
/// get 30 s.
fn within_30s(what: &str, check: impl FnMut() -> bool) {
    keygate_e2e::eventually_within(what, 30, check);
}

/// Events no one's action raises: a key reaching its expiry (announced by the organization's alarm when it comes),
/// a key refused for its rate limit (from the request log, once), a usage-limited key low on uses and out of them
/// (from its usage summaries).
#[test]
fn expiry_rate_limit_and_uses_left_raise_their_events() {
    let (org, receiver, _, secret) =
        hooked("hooks-alerts", json!(["key.expired", "key.rate_limited", "key.uses_low", "key.uses_exhausted"]));
    let base = &keygate_e2e::shared().base;
    let soon = Timestamp(now().millis() + 3_000);
    let (_, expiring, _) = org.create_key(&json!({
        "name": "expiring", "environment": "live", "permissions": ["data:read"], "expires_at": soon.to_rfc3339()
    }));
    let (limited_key, limited, _) = org.create_key(&json!({
        "name": "limited", "environment": "live", "permissions": ["data:read"],
        "rate_limit": {"requests": 1, "window_seconds": 60, "mode": "strict"}
    }));
    let (metered_key, metered, _) = org.create_key(&json!({
        "name": "metered", "environment": "live", "permissions": ["data:read"], "usage_limit": {"uses": 3}
    }));
    assert_eq!(keygate_e2e::gateway(base, "GET", "/data/x", &limited_key).status, 200);
    keygate_e2e::gateway(base, "GET", "/data/x", &limited_key).expect_problem(429, "RATE_LIMITED");
    keygate_e2e::gateway(base, "GET", "/data/x", &limited_key).expect_problem(429, "RATE_LIMITED");
    for _ in 0..2 {
        assert_eq!(keygate_e2e::gateway(base, "GET", "/data/x", &metered_key).status, 200);
    }
    within_30s("key.uses_low (one use of three left)", || !of_type(&receiver.received(), "key.uses_low").is_empty());
    assert!(of_type(&receiver.received(), "key.uses_exhausted").is_empty(), "one use is still left");
    assert_eq!(keygate_e2e::gateway(base, "GET", "/data/x", &metered_key).status, 200);
    within_30s("key.uses_exhausted", || !of_type(&receiver.received(), "key.uses_exhausted").is_empty());
    within_30s("key.rate_limited", || !of_type(&receiver.received(), "key.rate_limited").is_empty());
    within_30s("key.expired", || !of_type(&receiver.received(), "key.expired").is_empty());

    let got = receiver.received();
    for (kind, key) in [
        ("key.expired", &expiring),
        ("key.rate_limited", &limited),
        ("key.uses_low", &metered),
        ("key.uses_exhausted", &metered),
    ] {
        let events = of_type(&got, kind);
        assert_eq!(events.len(), 1, "{kind} once: {events:?}");
        let delivery = events[0];
        assert_eq!(verify(&secret, delivery.header("keygate-signature").unwrap(), &delivery.body, now()), Ok(()));
        let event = delivery.json();
        assert_eq!((event["type"].as_str(), event["key"]["id"].as_str()), (Some(kind), Some(key.as_str())), "{event}");
        assert!(event["actor"].is_null(), "no one acted: {event}");
    }
    let expired = of_type(&got, "key.expired")[0].json();
    let at = Timestamp::parse_rfc3339(expired["created_at"].as_str().unwrap()).unwrap();
    assert!(at >= soon, "announced when it came, not before: {expired}");
    assert!(of_type(&got, "key.rate_limited")[0].json()["detail"].as_str().unwrap().contains("1 requests per 60 s"));
    // The expiry is in the audit log; the others are not (a busy key would fill it).
    assert_eq!(org.audit_actions(&expiring)[0], "expired");
    assert!(!org.audit_actions(&limited).iter().any(|a| a != "create"));
}

/// A rotated secret: shown once; deliveries are signed with it and, for the grace period asked for, with the
/// previous one too (a receiver holding either accepts); `0` retires the previous one at once.
#[test]
fn a_rotated_secret_signs_beside_the_previous_one_for_its_grace_period() {
    let (org, receiver, webhook, first) = hooked("hooks-rotated", json!(["ping"]));
    let rotated = org.call("POST", &format!("/webhooks/{webhook}/rotate-secret"), None);
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let body = rotated.json();
    let second = body["secret"].as_str().expect("the new secret, once").to_owned();
    assert!(second.starts_with("whsec_") && second != first);
    let until = Timestamp::parse_rfc3339(body["previous_valid_until"].as_str().unwrap()).unwrap();
    assert!((until.millis() - now().millis() - 86_400_000).abs() < 60_000, "a day by default: {body}");

    let ping = |n: usize| {
        assert_eq!(org.call("POST", &format!("/webhooks/{webhook}/test"), None).status, 202);
        eventually("the ping arrives", || of_type(&receiver.received(), "ping").len() == n);
        of_type(&receiver.received(), "ping")[n - 1].clone()
    };
    let during = ping(1);
    let header = during.header("keygate-signature").unwrap();
    assert_eq!(header.matches("v1=").count(), 2, "{header}");
    for held in [&first, &second] {
        assert_eq!(verify(held, header, &during.body, now()), Ok(()), "a receiver holding either secret");
    }

    let retired =
        org.call("POST", &format!("/webhooks/{webhook}/rotate-secret"), Some(&json!({"previous_valid_seconds": 0})));
    assert_eq!(retired.status, 200, "{}", retired.body);
    assert!(retired.json().get("previous_valid_until").is_none(), "{}", retired.body);
    let third = retired.json()["secret"].as_str().unwrap().to_owned();
    let after = ping(2);
    let header = after.header("keygate-signature").unwrap();
    assert_eq!(verify(&third, header, &after.body, now()), Ok(()));
    for old in [&first, &second] {
        assert!(verify(old, header, &after.body, now()).is_err(), "a retired secret signs nothing");
    }
    let listed = org.call("GET", "/webhooks", None);
    assert!(!listed.body.contains("whsec_"), "never listed: {}", listed.body);
    assert_eq!(org.audit_actions(&webhook)[..2], ["update_webhook", "update_webhook"]);
}
