//! Gateway mode with an origin: credentials stripped, identity headers added, bodies unchanged, origin errors logged.

use std::sync::OnceLock;

use keygate_e2e::{Config, Console, Worker, json, origin, request};

fn worker() -> &'static (Worker, Console) {
    static W: OnceLock<(Worker, Console)> = OnceLock::new();
    W.get_or_init(|| {
        let origin = origin::start();
        let worker = Worker::start(Config { vars: vec![("ORIGIN_URL".into(), origin)], ..Config::default() });
        let console = Console::bootstrap(&worker);
        (worker, console)
    })
}

#[test]
fn the_origin_gets_identity_headers_and_never_the_credential() {
    let (worker, console) = worker();
    let (key, id, _) = console
        .create_key(&json!({"name": "writer", "environment": "live", "permissions": ["data:write", "data:read"]}));
    let body = r#"{"reading": 42, "unit": "°C"}"#;
    let answer = request(
        "POST",
        &worker.url("/streams/s1?batch=7"),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("content-type", "application/json"),
            ("keygate-key-id", "SPOOFED"),
            ("x-request-id", "abc"),
        ],
        Some(body),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let echo = answer.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["target"], "/streams/s1?batch=7");
    assert_eq!(echo["body"], body, "the body reaches the origin unchanged");
    let headers = &echo["headers"];
    assert_eq!(headers["keygate-key-id"], id.as_str(), "identity replaces anything the client sent");
    assert_eq!(headers["keygate-organization"], console.organization.as_str());
    assert_eq!(headers["keygate-project"], "*");
    assert_eq!(headers["keygate-permissions"], "data:read,data:write");
    assert_eq!(headers["x-request-id"], "abc");
    assert!(headers.get("authorization").is_none(), "credential leaked: {headers}");
    assert!(!echo.to_string().contains(&key[key.len() - 38..]), "the secret reached the origin: {echo}");
}

#[test]
fn origin_errors_are_passed_through_and_logged() {
    let (worker, console) = worker();
    let (key, id, _) =
        console.create_key(&json!({"name": "x-api-key user", "environment": "live", "permissions": ["data:read"]}));
    let answer = request("GET", &worker.url("/data/fail/now"), &[("x-api-key", &key)], None);
    assert_eq!(answer.status, 500);
    let mut errors = json!(null);
    for _ in 0..40 {
        errors = console.call("GET", &format!("/keys/{id}/errors"), None).json();
        if errors["errors"].as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(errors["errors"][0]["status"], 500, "{errors}");
    assert_eq!(errors["errors"][0]["code"], "ORIGIN_ERROR");
    // The request log has it too, with the time the origin took.
    let mut lines = Vec::new();
    keygate_e2e::eventually("the request-log line", || {
        lines = console.call("GET", &format!("/keys/{id}/requests"), None).json()["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        !lines.is_empty()
    });
    assert_eq!(lines[0]["status"], 500);
    assert_eq!(lines[0]["code"], "ORIGIN_ERROR");
    assert_eq!(lines[0]["path"], "/data/fail/now");
    assert!(lines[0]["latency_ms"].is_u64());
}

/// A forwarded answer is the origin's, plus the key's rate-limit headers (the origin's own headers are immutable in
/// the runtime: the gateway answers with a copy).
#[test]
fn a_rate_limited_keys_forwarded_answer_carries_its_rate_limit_headers() {
    let (worker, console) = worker();
    let (key, _, _) = console.create_key(&json!({
        "name": "limited writer", "environment": "live", "permissions": ["data:read"],
        "rate_limit": {"requests": 50, "window_seconds": 60}
    }));
    for _ in 0..3 {
        let answer = request("GET", &worker.url("/data/items"), &[("authorization", &format!("Bearer {key}"))], None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("ratelimit-policy"), Some("\"default\";q=50;w=60"), "{:?}", answer.headers);
        assert!(answer.header("ratelimit").is_some_and(|v| v.starts_with("\"default\";r=")), "{:?}", answer.headers);
        assert_eq!(answer.json()["target"], "/data/items", "the origin's body");
    }
}

fn errors_of(console: &Console, id: &str, at_least: usize) -> keygate_e2e::Value {
    let mut errors = json!(null);
    for _ in 0..50 {
        errors = console.call("GET", &format!("/keys/{id}/errors"), None).json();
        if errors["errors"].as_array().is_some_and(|e| e.len() >= at_least) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    errors
}

/// Instrumental's recent errors: a failed request of the key is kept with a preview of its body and of the origin's
/// answer, so the data can be looked at and sent again, with the credential and credential-named fields redacted;
/// rate-limited requests are not errors of the key.
#[test]
fn recent_errors_keep_redacted_previews_of_both_bodies_and_no_429s() {
    let (worker, console) = worker();
    let (key, id, _) = console.create_key(&json!({
        "name": "telemetry", "environment": "live", "permissions": ["data:read", "data:write"],
        "rate_limit": {"requests": 2, "window_seconds": 60, "mode": "strict"}
    }));
    let body = format!(r#"{{"reading": 21.5, "password": "hunter2", "echo": "{key}"}}"#);
    let headers = [("x-api-key", key.as_str()), ("content-type", "application/json")];
    let failed = request("POST", &worker.url("/streams/fail?token=abc123"), &headers, Some(&body));
    assert_eq!(failed.status, 500, "{}", failed.body);
    // A refusal of the key's own request keeps its body too.
    let refused = request("DELETE", &worker.url("/streams/s1"), &headers, Some(&body));
    assert_eq!(refused.status, 403, "{}", refused.body);
    // The limit: the failure counted, one more passes, the next is refused and is not an error of the key.
    let get = || request("GET", &worker.url("/data/items"), &[("x-api-key", key.as_str())], None);
    assert_eq!(get().status, 200);
    let limited = get();
    assert_eq!(limited.status, 429, "{}", limited.body);

    let errors = errors_of(console, &id, 2);
    let entries = errors["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 2, "the 429 is not logged: {errors}");
    let text = errors.to_string();
    for secret in [&key[key.len() - 38..], "hunter2", "abc123"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let origin_error = entries.iter().find(|e| e["code"] == "ORIGIN_ERROR").expect("the origin's failure");
    let request_preview = origin_error["request_preview"].as_str().unwrap_or_default();
    assert!(request_preview.starts_with("POST /streams/fail?token=[redacted]"), "{request_preview}");
    assert!(request_preview.contains(r#""reading": 21.5, "password": "[redacted]""#), "{request_preview}");
    let response_preview = origin_error["response_preview"].as_str().unwrap_or_default();
    assert!(response_preview.starts_with("HTTP 500 from the origin"), "{response_preview}");
    assert!(response_preview.contains(r#""method":"POST""#), "the origin's own answer: {response_preview}");
    let refusal = entries.iter().find(|e| e["code"] == "NO_ROUTE" || e["code"] == "INSUFFICIENT_PERMISSIONS");
    let refusal = refusal.expect("the refusal");
    assert!(refusal["request_preview"].as_str().unwrap_or_default().contains("21.5"), "{refusal}");
}

/// Key metadata (Unkey's `meta`): set at creation, forwarded to the origin as base64url JSON (a client cannot forge
/// it), returned by verify and whoami, replaced and removed through PATCH.
#[test]
fn key_metadata_reaches_the_origin_verify_and_whoami() {
    use keygate_shared::meta::base64url;
    let (worker, console) = worker();
    let meta = json!({"plan": "pro", "seats": 5, "tier": {"name": "gold", "since": "2026-01-01"}});
    let (key, id, created) = console.create_key(&json!({
        "name": "metered", "environment": "live", "permissions": ["data:read", "keys:verify"], "meta": meta
    }));
    assert_eq!(created["record"]["meta"], meta, "{created}");
    let auth = format!("Bearer {key}");
    let forwarded = |spoof: &str| {
        let answer =
            request("GET", &worker.url("/data/items"), &[("authorization", &auth), ("keygate-key-meta", spoof)], None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()["headers"]["keygate-key-meta"].clone()
    };
    // Compact JSON, keys sorted: what the API stored.
    assert_eq!(forwarded("e30"), base64url(meta.to_string().as_bytes()).as_str(), "the client's header is replaced");
    let verify = keygate_e2e::post_json(&worker.url("/v1/verify"), &[("authorization", &auth)], &json!({"key": key}));
    assert_eq!(verify.json()["meta"], meta, "{}", verify.body);
    let whoami = request("GET", &worker.url("/v1/whoami"), &[("authorization", &auth)], None);
    assert_eq!(whoami.json()["meta"], meta, "{}", whoami.body);

    let replaced = json!({"plan": "free"});
    let answer = console.call("PATCH", &format!("/keys/{id}"), Some(&json!({"meta": replaced})));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["meta"], replaced);
    assert_eq!(forwarded(""), base64url(br#"{"plan":"free"}"#).as_str());
    assert_eq!(console.call("GET", &format!("/keys/{id}"), None).json()["meta"], replaced);

    let answer = console.call("PATCH", &format!("/keys/{id}"), Some(&json!({"meta": null})));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["meta"], json!(null));
    assert_eq!(forwarded("e30"), json!(null), "no metadata, no header (and never the client's)");
    let verify = keygate_e2e::post_json(&worker.url("/v1/verify"), &[("authorization", &auth)], &json!({"key": key}));
    assert!(verify.json().get("meta").is_none(), "{}", verify.body);
}

/// A key's roles and identity reach the origin as Keygate-Roles, Keygate-Permissions (its own and its roles'),
/// Keygate-Identity and Keygate-Identity-Meta; a client's own headers of those names never do.
#[test]
fn the_origin_gets_the_keys_roles_and_identity_and_never_spoofed_ones() {
    let (worker, console) = worker();
    let role = format!("fwd-writer-{}", std::process::id());
    let defined = console.call("PUT", &format!("/roles/{role}"), Some(&json!({"permissions": ["data:write"]})));
    assert_eq!(defined.status, 200, "{}", defined.body);
    let made = console.call(
        "POST",
        "/identities",
        Some(&json!({"external_id": format!("cus-fwd-{}", std::process::id()), "meta": {"tier": "gold"}})),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let identity = made.json();
    let (key, _, _) = console.create_key(&json!({
        "name": "role and identity", "environment": "live", "permissions": ["data:read"], "roles": [role],
        "identity": identity["id"]
    }));
    let answer = request(
        "POST",
        &worker.url("/streams/s2"),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("keygate-identity", "cus-someone-else"),
            ("keygate-roles", "admin"),
            ("keygate-identity-meta", "eyJ0aWVyIjoicGxhdGludW0ifQ"),
        ],
        None,
    );
    assert_eq!(answer.status, 200, "the role grants data:write: {}", answer.body);
    let headers = &answer.json()["headers"];
    assert_eq!(headers["keygate-permissions"], "data:read,data:write");
    assert_eq!(headers["keygate-roles"], role.as_str());
    assert_eq!(headers["keygate-identity"], identity["external_id"]);
    // base64url of {"tier":"gold"}
    assert_eq!(headers["keygate-identity-meta"], "eyJ0aWVyIjoiZ29sZCJ9");
}
