//! The request log (the admin page's "Logs"): every gateway request a key proved it made reaches the log through
//! the real queue between the two Workers, with its status, code, latency and client address, and can be filtered.

use keygate_e2e::{Console, Value, eventually, json, request, shared};

fn owner() -> &'static Console {
    let owner = Console::shared_owner();
    owner.project("acme-shop");
    owner
}

/// The key's log lines, newest first, once there are at least `n` (the queue delivers within seconds).
fn lines(console: &Console, path: &str, n: usize) -> Vec<Value> {
    let mut found = Vec::new();
    eventually(&format!("{n} lines at {path}"), || {
        let answer = console.call("GET", path, None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        found = answer.json()["requests"].as_array().cloned().unwrap_or_default();
        found.len() >= n
    });
    found
}

fn call(key: &str, method: &str, path: &str, ip: &str) -> u16 {
    let url = shared().url(path);
    request(method, &url, &[("authorization", &format!("Bearer {key}")), ("cf-connecting-ip", ip)], None).status
}

/// Passes, refusals after the secret matched and rate-limited requests are logged with what the client got; a
/// wrong secret for the same id is not (it did not prove the key), and no query string is kept.
#[test]
fn every_request_a_key_made_is_in_its_log_with_status_code_latency_and_client() {
    let (key, id, _) = owner().create_key(&json!({
        "name": "logged", "environment": "live", "project": "acme-shop", "permissions": ["data:read"],
        "rate_limit": {"requests": 3, "window_seconds": 60}
    }));
    assert_eq!(call(&key, "GET", "/data/a?token=hunter2", "203.0.113.7"), 200);
    assert_eq!(call(&key, "POST", "/streams/x", "203.0.113.7"), 403);
    assert_eq!(call(&key, "GET", "/data/b", "198.51.100.4"), 200);
    assert_eq!(call(&key, "GET", "/data/c", "198.51.100.4"), 200);
    assert_eq!(call(&key, "GET", "/data/d", "198.51.100.4"), 429);
    // The key's id with a made-up secret (a valid checksum): it does not prove the key.
    let mut forged = keygate_shared::ApiKey::generate(keygate_shared::Environment::Live).unwrap();
    forged.id = keygate_shared::KeyId::parse(&id).unwrap();
    let forged = forged.expose();
    assert_eq!(call(&forged, "GET", "/data/forged", "192.0.2.1"), 401);

    let log = lines(owner(), &format!("/keys/{id}/requests"), 5);
    assert_eq!(log.len(), 5, "the wrong secret is not in the key's log: {log:?}");
    let mut seen: Vec<(String, String, u64, Option<String>, String)> = log
        .iter()
        .map(|l| {
            (
                l["method"].as_str().unwrap().to_owned(),
                l["path"].as_str().unwrap().to_owned(),
                l["status"].as_u64().unwrap(),
                l["code"].as_str().map(str::to_owned),
                l["client_ip"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let row = |m: &str, p: &str, s: u64, c: Option<&str>, ip: &str| {
        (m.to_owned(), p.to_owned(), s, c.map(str::to_owned), ip.to_owned())
    };
    assert_eq!(
        seen,
        vec![
            row("GET", "/data/a", 200, None, "203.0.113.7"),
            row("GET", "/data/b", 200, None, "198.51.100.4"),
            row("GET", "/data/c", 200, None, "198.51.100.4"),
            row("GET", "/data/d", 429, Some("RATE_LIMITED"), "198.51.100.4"),
            row("POST", "/streams/x", 403, Some("INSUFFICIENT_PERMISSIONS"), "203.0.113.7"),
        ]
    );
    for line in &log {
        assert_eq!(line["key_id"], id.as_str());
        assert_eq!(line["organization"], owner().organization.as_str());
        assert!(line["latency_ms"].is_u64() && line["at"].is_string() && line["id"].is_string(), "{line}");
    }
    // RFC 3339 in UTC, to the millisecond: they sort as text.
    let ats: Vec<&str> = log.iter().map(|l| l["at"].as_str().unwrap()).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "newest first: {ats:?}");

    // Filters: a status class, a code, a method, a path prefix; and the organization's log names the key too.
    let count = |query: &str| {
        owner().call("GET", &format!("/requests?key={id}&{query}"), None).json()["requests"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(count("status=4xx"), 2);
    assert_eq!(count("code=rate_limited"), 1);
    assert_eq!(count("method=POST"), 1);
    assert_eq!(count("path=/data/"), 4);
    assert_eq!(count("status=200&limit=2"), 2);
    let page = owner().call("GET", &format!("/requests?key={id}&limit=3"), None).json();
    let cursor = page["next_cursor"].as_str().expect("a second page").to_owned();
    let rest = owner().call("GET", &format!("/requests?key={id}&limit=3&cursor={cursor}"), None).json();
    assert_eq!(rest["requests"].as_array().unwrap().len(), 2);
    assert!(rest["next_cursor"].is_null());
}

/// A bad filter is a 400 problem naming the parameter, whatever else the query says.
#[test]
fn a_bad_filter_is_a_problem_naming_it() {
    for (query, field) in
        [("status=abc", "status"), ("limit=1000", "limit"), ("cursor=nope", "cursor"), ("key=x", "key")]
    {
        let answer = owner().call("GET", &format!("/requests?{query}"), None);
        let problem = answer.expect_problem(400, "INVALID_QUERY");
        assert_eq!(problem["field"], field, "{query}");
    }
}
