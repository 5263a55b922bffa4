//! Attacks found in review, each replayed against real workerd and shown to fail. Every test is named after the
//! attack it replays; the note on the security issue lists each with its status codes before and after the fix.

use std::sync::OnceLock;

use keygate_e2e::{Config, Console, Worker, gateway, json, origin, raw, request, shared};

/// A Worker that forwards to a loopback origin, so tests can see exactly which path the origin was given.
fn forwarding() -> &'static (Worker, Console) {
    static W: OnceLock<(Worker, Console)> = OnceLock::new();
    W.get_or_init(|| {
        let worker = Worker::start(Config { vars: vec![("ORIGIN_URL".into(), origin::start())], ..Config::default() });
        let console = Console::bootstrap(&worker);
        (worker, console)
    })
}

/// A key that may read `/data/*` and nothing else.
fn reader(console: &Console) -> String {
    console.create_key(&json!({"name": "reader", "environment": "live", "permissions": ["data:read"]})).0
}

/// `GET <path>` written by hand (no client-side normalization) with the key as a bearer token.
fn raw_get(base: &str, method: &str, path: &str, key: &str) -> keygate_e2e::Answer {
    raw(base, &format!("{method} {path} HTTP/1.1\r\nauthorization: Bearer {key}"), None).0
}

#[test]
fn path_tricks_cannot_reach_a_route_the_key_lacks() {
    let (worker, console) = forwarding();
    let key = reader(console);
    // Each of these is `/streams/s1` (needs data:write) in disguise; a reader is refused every time.
    for path in ["/%73treams/s1", "//streams/s1", "/data/../streams/s1", "/data/%2e%2e/streams/s1", "/./streams/s1"] {
        raw_get(&worker.base, "POST", path, &key).expect_problem(403, "INSUFFICIENT_PERMISSIONS");
        raw_get(&worker.base, "GET", path, &key).expect_problem(403, "NO_ROUTE");
    }
    // What passes is forwarded exactly as it was matched: the canonical path.
    let echo = raw_get(&worker.base, "GET", "//data/./x/../%69tems?q=1", &key);
    assert_eq!(echo.status, 200, "{}", echo.body);
    assert_eq!(echo.json()["target"], "/data/items?q=1");
}

#[test]
fn encoded_separators_and_climbing_above_the_root_are_refused() {
    let (worker, console) = forwarding();
    let key = reader(console);
    for path in ["/data/..%2Fstreams/s1", "/data/..%5cstreams", "/data/%zz", "/data/x%00"] {
        raw_get(&worker.base, "GET", path, &key).expect_problem(400, "INVALID_PATH");
    }
}

#[test]
fn head_needs_what_get_needs() {
    let (worker, console) = forwarding();
    let writer = console.create_key(&json!({"name": "writer", "environment": "live", "permissions": ["data:write"]})).0;
    // HEAD used to match no rule and pass with any key.
    let head = raw_get(&worker.base, "HEAD", "/data/x", &writer);
    assert_eq!(head.status, 403, "{head:?}");
    assert_eq!(raw_get(&worker.base, "HEAD", "/streams/s1", &writer).status, 403);
    assert_eq!(raw_get(&worker.base, "HEAD", "/data/x", &reader(console)).status, 200);
}

#[test]
fn a_path_no_route_covers_is_refused() {
    let key = reader(Console::shared_owner());
    gateway(&shared().base, "GET", "/internal/admin", &key).expect_problem(403, "NO_ROUTE");
    gateway(&shared().base, "DELETE", "/data/x", &key).expect_problem(403, "NO_ROUTE");
}

#[test]
fn a_customer_restricted_key_without_a_customer_is_refused() {
    let (worker, console) = forwarding();
    let key = console
        .create_key(&json!({"name": "c", "environment": "live", "permissions": ["data:read"], "customers": ["cus_1"]}))
        .0;
    let auth = format!("Bearer {key}");
    let url = worker.url("/data/x");
    request("GET", &url, &[("authorization", &auth)], None).expect_problem(403, "CUSTOMER_REQUIRED");
    request("GET", &url, &[("authorization", &auth), ("keygate-customer", "cus_2")], None)
        .expect_problem(403, "CUSTOMER_NOT_ALLOWED");
    let pass = request("GET", &url, &[("authorization", &auth), ("keygate-customer", "cus_1")], None);
    assert_eq!(pass.status, 200, "{}", pass.body);
    assert_eq!(pass.json()["headers"]["keygate-customer"], "cus_1", "the approved customer reaches the origin");
}

#[test]
fn a_chunked_four_mebibyte_body_is_refused_before_it_is_buffered() {
    let owner = Console::shared_owner();
    let base = &shared().base;
    let chunk = vec![b'a'; 64 * 1024];
    for (path, auth) in [("/admin/v1/keys", owner.token.as_str()), ("/v1/verify", owner.token.as_str())] {
        let mut chunks = std::iter::repeat_n(chunk.clone(), 64);
        let head = format!("POST {path} HTTP/1.1\r\nauthorization: Bearer {auth}\r\ncontent-type: application/json");
        let (answer, _sent) = raw(base, &head, Some(&mut chunks));
        answer.expect_problem(413, "PAYLOAD_TOO_LARGE");
    }
    // The Worker is still serving.
    assert_eq!(owner.call("GET", "/session", None).status, 200);
}

#[test]
fn a_cursor_at_the_edge_of_u32_is_a_validation_error_not_a_crash() {
    let owner = Console::shared_owner();
    for path in ["/keys?cursor=4294967295", "/audit?cursor=4294967295", "/keys?cursor=18446744073709551616"] {
        owner.call("GET", path, None).expect_problem(422, "VALIDATION_FAILED");
    }
    assert_eq!(owner.call("GET", "/keys", None).status, 200);
}

#[test]
fn a_key_of_another_organization_with_the_same_project_slug_is_refused() {
    let worker = Worker::start(Config::default());
    let acme = Console::bootstrap(&worker);
    acme.project("acme-shop");
    let spec = json!({"name": "p", "environment": "live", "project": "acme-shop", "permissions": ["data:read"]});
    let acme_key = acme.create_key(&spec).0;
    // Another organization (any signed-in user may start one) with a project of the same slug.
    let other = acme.call("POST", "/organizations", Some(&json!({"name": "Other"})));
    assert_eq!(other.status, 201, "{}", other.body);
    let other = Console { acting_for: Some(other.json()["id"].as_str().unwrap().to_owned()), ..acme.clone() };
    other.project("acme-shop");
    let other_key = other.create_key(&spec).0;
    let worker = worker.restart(Config {
        vars: vec![("KEYGATE_PROJECT".into(), format!("{}/acme-shop", acme.organization))],
        ..Config::default()
    });
    assert_eq!(gateway(&worker.base, "GET", "/data/x", &acme_key).status, 200);
    gateway(&worker.base, "GET", "/data/x", &other_key).expect_problem(401, "WRONG_PROJECT");
    gateway(&worker.base, "GET", "/data/x", &format!("acme-shop:{other_key}")).expect_problem(401, "WRONG_PROJECT");
}
