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
