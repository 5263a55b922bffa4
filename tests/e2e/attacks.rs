//! Attacks found in review, each replayed against real workerd and shown to fail. Every test is named after the
//! attack it replays; the note on the security issue lists each with its status codes before and after the fix.

use std::sync::OnceLock;

use keygate_e2e::{Config, Console, Value, Worker, gateway, json, origin, raw, request, shared};

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
    let chunk = vec![b'a'; 64 * 1024];
    for path in ["/admin/v1/keys", "/v1/verify", "/admin/v1/invitations/redeem"] {
        let mut chunks = std::iter::repeat_n(chunk.clone(), 64);
        let head =
            format!("POST {path} HTTP/1.1\r\nauthorization: Bearer {}\r\ncontent-type: application/json", owner.token);
        let (answer, _sent) = raw(&shared().base, &head, Some(&mut chunks));
        answer.expect_problem(413, "PAYLOAD_TOO_LARGE");
    }
    // Nothing was stored, and the Workers are still serving.
    assert_eq!(owner.call("GET", "/session", None).status, 200);
}

#[test]
fn a_cursor_at_the_edge_of_u32_is_a_validation_error_not_a_crash() {
    let owner = Console::shared_owner();
    // Key cursors are `<created ms>.<id>` positions; audit cursors are row numbers that must fit 63 bits.
    for path in [
        "/keys?cursor=4294967295",
        "/keys?cursor=18446744073709551616.F854DS4QEVHXS4",
        "/audit?cursor=18446744073709551616",
        "/audit?cursor=-1",
    ] {
        owner.call("GET", path, None).expect_problem(422, "VALIDATION_FAILED");
    }
    // A position past the end is just an empty or full page, never a crash.
    assert_eq!(owner.call("GET", "/audit?cursor=4294967295", None).status, 200);
    assert_eq!(owner.call("GET", "/keys?cursor=4294967295.F854DS4QEVHXS4", None).status, 200);
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

// ---------------------------------------------------------------------------------------------------------------
// Credentials are only ever handed to their owner

/// The account takeover of the security review, step by step: a member makes an organization of her own, "invites"
/// the owner's (guessable) email there, and used to receive a console token acting as the owner.
#[test]
fn a_member_cannot_take_over_the_owner_through_an_organization_of_her_own() {
    let worker = Worker::start(Config::default());
    let owner = Console::bootstrap(&worker);
    let (_, owners_key, _) = owner.create_key(&json!({"name": "owner's", "environment": "live", "permissions": []}));
    // 1. The owner invites Mallory as a member; she redeems the code for her own token.
    let mallory = owner.invite("mallory@example.com", "member");
    // 2. Mallory creates an organization (any signed-in user may).
    let evil = mallory.call("POST", "/organizations", Some(&json!({"name": "evil"})));
    assert_eq!(evil.status, 201, "{}", evil.body);
    let in_evil = Console { acting_for: Some(evil.json()["id"].as_str().unwrap().to_owned()), ..mallory.clone() };
    // 3. She invites the owner's email there: the answer is an invitation code, never a console token.
    let invited =
        in_evil.call("POST", "/invitations", Some(&json!({"email": "owner@acme.test", "name": "x", "role": "member"})));
    assert_eq!(invited.status, 201, "{}", invited.body);
    assert!(invited.json().get("console_token").is_none(), "{}", invited.body);
    assert!(!invited.body.contains(&owner.token), "the owner's token leaked");
    // The old route that handed out tokens is gone.
    assert_eq!(
        in_evil
            .call("POST", "/members", Some(&json!({"email": "owner@acme.test", "name": "x", "role": "member"})))
            .status,
        405
    );
    // Redeeming the code makes a new user of its own, who is no one in the owner's organization.
    let stranger = Console::redeem(&worker.base, invited.json()["code"].as_str().unwrap());
    assert_ne!(stranger.user, owner.user);
    let stranger_at_acme = Console { acting_for: Some(owner.organization.clone()), ..stranger };
    stranger_at_acme.call("GET", "/keys", None).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    // 4. Mallory cannot list or regenerate the owner's key.
    assert!(!mallory.call("GET", "/keys", None).body.contains(&owners_key));
    mallory.action(&owners_key, "regenerate").expect_problem(404, "NOT_FOUND");
}

#[test]
fn a_reused_invitation_is_refused() {
    let owner = Console::shared_owner();
    let code = owner.invite_code("once@example.com", "member");
    let _first = Console::redeem(&owner.base, &code);
    let again =
        keygate_e2e::post_json(&format!("{}/admin/v1/invitations/redeem", owner.base), &[], &json!({"code": code}));
    again.expect_problem(410, "INVITATION_INVALID");
}

#[test]
fn an_expired_invitation_and_an_expired_console_token_are_refused() {
    // Invitations and console tokens that live a few seconds.
    let worker = Worker::start(Config {
        vars: vec![
            ("KEYGATE_INVITATION_DAYS".into(), "0.00004".into()),
            ("KEYGATE_CONSOLE_TOKEN_DAYS".into(), "0.0001".into()),
        ],
        ..Config::default()
    });
    let owner = Console::bootstrap(&worker);
    let code = owner.invite_code("late@example.com", "member");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let late = keygate_e2e::post_json(&worker.url("/admin/v1/invitations/redeem"), &[], &json!({"code": code}));
    let body = late.expect_problem(410, "INVITATION_INVALID");
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
    std::thread::sleep(std::time::Duration::from_secs(5));
    owner.call("GET", "/session", None).expect_problem(401, "EXPIRED");
}

#[test]
fn a_signed_out_token_and_a_revoked_session_stop_at_once() {
    let owner = Console::shared_owner();
    let member = owner.invite("signout@example.com", "member");
    let second = member.call("POST", "/sessions", Some(&json!({"label": "laptop"})));
    assert_eq!(second.status, 201, "{}", second.body);
    let laptop = Console { token: second.json()["console_token"].as_str().unwrap().to_owned(), ..member.clone() };
    let laptop_id = second.json()["session"]["id"].as_str().unwrap().to_owned();
    // Another user cannot sign the member's session out.
    owner.call("DELETE", &format!("/sessions/{laptop_id}"), None).expect_problem(404, "NOT_FOUND");
    assert_eq!(laptop.call("GET", "/session", None).status, 200);
    // The member revokes the laptop's session, then signs out here.
    assert_eq!(member.call("DELETE", &format!("/sessions/{laptop_id}"), None).status, 204);
    laptop.call("GET", "/session", None).expect_problem(401, "NOT_FOUND");
    assert_eq!(member.call("DELETE", "/sessions/current", None).status, 204);
    member.call("GET", "/keys", None).expect_problem(401, "NOT_FOUND");
}

#[test]
fn a_removed_members_tokens_stop_acting_in_the_organization_at_once() {
    let owner = Console::shared_owner();
    let member = owner.invite("removed@example.com", "member");
    let second = member.call("POST", "/sessions", Some(&json!({"label": "cli"})));
    let cli = Console { token: second.json()["console_token"].as_str().unwrap().to_owned(), ..member.clone() };
    let (key, _, _) = member.create_key(&json!({"name": "m", "environment": "live", "permissions": ["data:read"]}));
    assert_eq!(member.call("GET", "/keys", None).status, 200);
    member.call("DELETE", &format!("/members/{}", owner.user), None).expect_problem(403, "FORBIDDEN");
    assert_eq!(owner.call("DELETE", &format!("/members/{}", member.user), None).status, 204);
    member.call("GET", "/keys", None).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    cli.call("GET", "/keys", None).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    // Their key stays the organization's (an admin may revoke it); it still passes until then.
    assert_eq!(gateway(&shared().base, "GET", "/data/x", &key).status, 200);
}

#[test]
fn a_member_cannot_read_others_audit_events() {
    let owner = Console::shared_owner();
    let member = owner.invite("auditor@example.com", "member");
    let (_, owners_key, _) = owner.create_key(&json!({"name": "owner secret plans", "environment": "live"}));
    let (_, members_key, _) = member.create_key(&json!({"name": "member's own", "environment": "live"}));
    assert_eq!(owner.action(&members_key, "revoke").status, 200);
    let seen = member.call("GET", "/audit", None);
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(!seen.body.contains("owner secret plans") && !seen.body.contains(&owners_key), "{}", seen.body);
    let events = seen.json()["events"].as_array().unwrap().clone();
    assert!(events.iter().any(|e| e["action"] == "revoke" && e["target"] == members_key.as_str()), "{}", seen.body);
    assert!(events.iter().all(|e| e["actor"] == member.user.as_str() || e["target"] == members_key.as_str()));
}

#[test]
fn a_member_cannot_undo_an_admins_revocation() {
    let owner = Console::shared_owner();
    let member = owner.invite("leaky@example.com", "member");
    let (_, id, _) = member.create_key(&json!({"name": "leaked", "environment": "live"}));
    assert_eq!(owner.action(&id, "revoke").status, 200);
    member.action(&id, "activate").expect_problem(403, "REVOKED_BY_OTHER");
    assert_eq!(owner.action(&id, "activate").status, 200);
}

#[test]
fn failed_sign_ins_cannot_flood_the_audit_log() {
    let owner = Console::shared_owner();
    let (_, id, _) = owner.create_key(&json!({"name": "target", "environment": "live"}));
    // Sign-ins naming a real key id with a made-up secret, from one source.
    let mut forged = keygate_shared::ApiKey::generate(keygate_shared::Environment::Live).unwrap();
    forged.id = keygate_shared::KeyId::parse(&id).unwrap();
    let forged = forged.expose();
    let url = format!("{}/admin/v1/session", owner.base);
    // One row a minute per key: the sign-ins may straddle a minute boundary, so count the minutes they span.
    let minute = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 60;
    let first_minute = minute();
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let answer = keygate_e2e::get(
            &url,
            &[("authorization", &format!("Bearer {forged}")), ("cf-connecting-ip", "203.0.113.9")],
        );
        statuses.push(answer.status);
    }
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    let failures = owner.call("GET", "/audit", None).json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "sign_in_failed" && e["target"] == id.as_str())
        .count();
    let minutes = minute() - first_minute + 1;
    assert!(failures as u64 <= minutes, "{failures} audit rows for {minutes} minute(s) of failed sign-ins");
}

/// An organization of its own on the shared Worker, its owner, an admin and a member: for attacks on its settings.
fn settings_org() -> &'static (Console, Console, Console) {
    static O: OnceLock<(Console, Console, Console)> = OnceLock::new();
    O.get_or_init(|| {
        let owner = Console::shared_owner().new_organization("Settings target");
        let pid = std::process::id();
        let admin = Console { acting_for: None, ..owner.invite(&format!("st-admin-{pid}@x.test"), "admin") };
        let member = Console { acting_for: None, ..owner.invite(&format!("st-member-{pid}@x.test"), "member") };
        (owner, admin, member)
    })
}

fn settings_of(console: &Console) -> keygate_e2e::Value {
    console.call("GET", "/organization/settings", None).json()
}

#[test]
fn an_admin_or_a_member_changing_the_organizations_settings_is_refused() {
    let (owner, admin, member) = settings_org();
    let restrict = json!({"key_creation": "owners_and_admins"});
    // Disarming the revocation of leaked keys is an owner's decision too.
    let disarm = json!({"leak_response": "alert"});
    for who in [admin, member] {
        who.call("PATCH", "/organization/settings", Some(&restrict)).expect_problem(403, "FORBIDDEN");
        who.call("PATCH", "/organization/settings", Some(&disarm)).expect_problem(403, "FORBIDDEN");
    }
    assert_eq!(settings_of(owner), json!({"key_creation": "all_members", "leak_response": "revoke"}));
}

#[test]
fn another_organizations_owner_changing_its_settings_is_refused() {
    let (owner, _, _) = settings_org();
    // An owner of another organization (the shared one) names this one in `Keygate-Org`.
    let stranger = Console::shared_owner().invite(&format!("stranger-{}@x.test", std::process::id()), "owner");
    let stranger = Console { acting_for: owner.acting_for.clone(), ..stranger };
    let restrict = json!({"key_creation": "owners_and_admins"});
    stranger.call("PATCH", "/organization/settings", Some(&restrict)).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    stranger.call("GET", "/organization/settings", None).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    let url = format!("{}/admin/v1/organization/settings", owner.base);
    request("PATCH", &url, &[("content-type", "application/json")], Some(r#"{"key_creation":"owners_and_admins"}"#))
        .expect_problem(401, "MISSING_CREDENTIAL");
    assert_eq!(settings_of(owner), json!({"key_creation": "all_members", "leak_response": "revoke"}));
}

#[test]
fn a_hostile_settings_body_changes_nothing() {
    let (owner, _, _) = settings_org();
    for body in [
        r#"{}"#,
        r#"{"key_creation":"everyone"}"#,
        r#"{"key_creation":"owners_and_admins","role":"owner"}"#,
        r#"{"key_creation":null,"x":1}"#,
        r#"{"leak_response":"never"}"#,
        r#"{"leak_response":"alert","auto_revoke":false}"#,
        r#"not json"#,
        r#"[]"#,
    ] {
        let url = format!("{}/admin/v1/organization/settings", owner.base);
        let auth = format!("Bearer {}", owner.token);
        let org = owner.acting_for.clone().unwrap();
        let headers =
            [("authorization", auth.as_str()), ("keygate-org", org.as_str()), ("content-type", "application/json")];
        let answer = request("PATCH", &url, &headers, Some(body));
        // 400: not a change at all (or not JSON); 422: JSON naming what no setting accepts.
        assert!(matches!(answer.status, 400 | 422), "{body}: {} {}", answer.status, answer.body);
        assert_eq!(answer.header("content-type"), Some("application/problem+json"), "{body}");
    }
    assert_eq!(settings_of(owner), json!({"key_creation": "all_members", "leak_response": "revoke"}));
}

#[test]
fn a_hostile_ip_allowlist_is_refused_and_changes_nothing() {
    let owner = Console::shared_owner();
    let (_, id, _) = owner.create_key(&json!({"name": "ips", "environment": "live", "permissions": ["data:read"]}));
    let too_many: Vec<String> = (0..33).map(|i| format!("10.0.{i}.0/24")).collect();
    for ips in [
        json!(["10.0.0.0/33"]),
        json!(["example.com"]),
        json!(["10.0.0.0/8,10.1.0.0/16"]),
        json!(too_many),
        json!("10.0.0.0/8"),
        json!([7]),
    ] {
        let create = json!({"name": "ips", "environment": "live", "permissions": [], "allowed_ips": ips});
        let answer = owner.call("POST", "/keys", Some(&create));
        assert!(matches!(answer.status, 400 | 422), "create {ips}: {} {}", answer.status, answer.body);
        let answer = owner.call("PATCH", &format!("/keys/{id}"), Some(&json!({"allowed_ips": ips})));
        assert!(matches!(answer.status, 400 | 422), "update {ips}: {} {}", answer.status, answer.body);
    }
    let view = owner.call("GET", &format!("/keys/{id}"), None).json();
    assert_eq!(view["allowed_ips"], json!([]), "{view}");
}

#[test]
fn a_member_rewriting_the_permission_catalog_is_refused() {
    let (owner, _, member) = settings_org();
    let description = json!({"description": "Anything goes"});
    member.call("PUT", "/permissions/data:read", Some(&description)).expect_problem(403, "FORBIDDEN");
    let url = format!("{}/admin/v1/permissions/data:read", owner.base);
    request("PUT", &url, &[("content-type", "application/json")], Some(r#"{"description":"x"}"#))
        .expect_problem(401, "MISSING_CREDENTIAL");
    // Hostile names and bodies: refused, nothing described.
    for (path, body) in [
        ("/permissions/NOT%20A%20PERMISSION", json!({"description": "x"})),
        ("/permissions/data:read", json!({"description": "x".repeat(201)})),
        ("/permissions/data:read", json!({"description": "line\nbreak"})),
        ("/permissions/data:read", json!({"description": "x", "keys": 1000})),
        ("/permissions/data:read", json!({"text": "x"})),
    ] {
        let answer = owner.call("PUT", path, Some(&body));
        assert!(matches!(answer.status, 400 | 404 | 422), "{path} {body}: {} {}", answer.status, answer.body);
    }
    let catalog = owner.call("GET", "/permissions", None).json();
    assert!(!catalog.to_string().contains("description"), "nothing was described: {catalog}");
}

/// Metadata is a bounded JSON object: anything else, or more than 1 KiB, is refused by create and PATCH alike and
/// changes nothing.
#[test]
fn a_hostile_metadata_body_is_refused_and_changes_nothing() {
    let owner = Console::shared_owner();
    let meta = json!({"plan": "pro"});
    let (_, id, _) =
        owner.create_key(&json!({"name": "meta", "environment": "live", "permissions": ["data:read"], "meta": meta}));
    for bad in [
        json!([1, 2]),
        json!("{\"plan\": \"free\"}"),
        json!(42),
        json!(true),
        json!({"big": "x".repeat(1020)}),
        serde_json::Value::Object((0..100).map(|i| (format!("field{i}"), json!(i))).collect()),
    ] {
        let create = json!({"name": "meta", "environment": "live", "permissions": [], "meta": bad});
        let answer = owner.call("POST", "/keys", Some(&create));
        assert_eq!(answer.status, 422, "create {bad}: {}", answer.body);
        assert_eq!(answer.json()["field"], "meta", "{}", answer.body);
        let answer = owner.call("PATCH", &format!("/keys/{id}"), Some(&json!({"meta": bad})));
        assert_eq!(answer.status, 422, "update {bad}: {}", answer.body);
    }
    assert_eq!(owner.call("GET", &format!("/keys/{id}"), None).json()["meta"], meta);
}

/// A usage limit is 1 to 10^12 uses with a daily or monthly refill of 1 to 10^12: anything else is refused by create
/// and PATCH alike and changes nothing; a member cannot top up a key that is not theirs.
#[test]
fn a_hostile_usage_limit_is_refused_and_a_member_cannot_top_up_anothers_key() {
    let (owner, _, member) = settings_org();
    let (key, id, _) = owner.create_key(&json!({
        "name": "uses", "environment": "live", "permissions": ["data:read"], "usage_limit": {"uses": 1}
    }));
    for bad in [
        json!({"uses": 0}),
        json!({"uses": -1}),
        json!({"uses": "10"}),
        json!({"uses": 1_000_000_000_001u64}),
        json!({"uses": 5, "refill": {"amount": 0, "interval": "daily"}}),
        json!({"uses": 5, "refill": {"amount": 5, "interval": "weekly"}}),
        json!({"uses": 5, "refill": {"amount": 5}}),
        json!({"uses": 5, "remaining": 1_000_000}),
    ] {
        let create = json!({"name": "uses", "environment": "live", "permissions": [], "usage_limit": bad});
        let answer = owner.call("POST", "/keys", Some(&create));
        assert!(matches!(answer.status, 400 | 422), "create {bad}: {} {}", answer.status, answer.body);
        let answer = owner.call("PATCH", &format!("/keys/{id}"), Some(&json!({"usage_limit": bad})));
        assert!(matches!(answer.status, 400 | 422), "update {bad}: {} {}", answer.status, answer.body);
    }
    let answer = member.call("PATCH", &format!("/keys/{id}"), Some(&json!({"usage_limit": {"uses": 1000}})));
    assert!(
        matches!(answer.status, 403 | 404),
        "a member topping up the owner's key: {} {}",
        answer.status,
        answer.body
    );
    let view = owner.call("GET", &format!("/keys/{id}"), None).json();
    assert_eq!((view["usage_limit"].clone(), view["usage"]["remaining"].clone()), (json!({"uses": 1}), json!(1)));
    // The one use is still there, and then none.
    let base = keygate_e2e::shared().base.clone();
    assert_eq!(keygate_e2e::gateway(&base, "GET", "/data/x", &key).status, 200);
    keygate_e2e::gateway(&base, "GET", "/data/x", &key).expect_problem(429, "USAGE_EXCEEDED");
}

/// The organization's usage report is for its owners and admins: a member, another organization's owner and an
/// anonymous client are refused.
#[test]
fn a_member_or_a_stranger_reading_the_organizations_usage_is_refused() {
    let (owner, admin, member) = settings_org();
    assert_eq!(owner.call("GET", "/usage", None).status, 200);
    assert_eq!(admin.call("GET", "/usage", None).status, 200);
    member.call("GET", "/usage", None).expect_problem(403, "FORBIDDEN");
    // An owner of another organization (the shared one) names this one in `Keygate-Org`.
    let stranger = Console::shared_owner().invite(&format!("usage-stranger-{}@x.test", std::process::id()), "owner");
    let peeking = Console { acting_for: owner.acting_for.clone(), ..stranger };
    peeking.call("GET", "/usage", None).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    request("GET", &format!("{}/admin/v1/usage", owner.base), &[], None).expect_problem(401, "MISSING_CREDENTIAL");
}

/// The request log shows a member only their own keys' lines; another member's key, a key of another organization
/// and an anonymous caller get nothing (404 for a key id the caller may not see, so ids do not leak).
#[test]
fn a_member_or_a_stranger_reading_anothers_request_log_is_refused() {
    let owner = Console::shared_owner();
    let member = owner.invite("log-reader@acme.test", "member");
    let spec = json!({"name": "logged", "environment": "live", "permissions": ["data:read"]});
    let (owners_key, owners_id, _) = owner.create_key(&spec);
    let (members_key, members_id, _) = member.create_key(&spec);
    assert_eq!(gateway(&shared().base, "GET", "/data/owner", &owners_key).status, 200);
    assert_eq!(gateway(&shared().base, "GET", "/data/member", &members_key).status, 200);
    keygate_e2e::eventually("the member's line", || {
        member.call("GET", "/requests", None).json()["requests"].as_array().is_some_and(|l| !l.is_empty())
    });
    keygate_e2e::eventually("the owner's line", || {
        owner.call("GET", &format!("/keys/{owners_id}/requests"), None).json()["requests"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    });
    let seen = member.call("GET", "/requests?limit=100", None).json();
    let ids: Vec<&str> = seen["requests"].as_array().unwrap().iter().map(|l| l["key_id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| *id == members_id), "a member sees only their own keys' lines: {ids:?}");
    member.call("GET", &format!("/keys/{owners_id}/requests"), None).expect_problem(404, "NOT_FOUND");
    member.call("GET", &format!("/requests?key={owners_id}"), None).expect_problem(404, "NOT_FOUND");
    let elsewhere = member.new_organization("Member's own");
    elsewhere.call("GET", &format!("/keys/{owners_id}/requests"), None).expect_problem(404, "NOT_FOUND");
    let theirs = elsewhere.call("GET", "/requests", None).json();
    assert_eq!(theirs["requests"].as_array().map(Vec::len), Some(0), "another organization's log is its own");
    request("GET", &shared().url("/admin/v1/requests"), &[], None).expect_problem(401, "MISSING_CREDENTIAL");
}

/// Roles widen every key that holds them, so defining one is an owner's or admin's act: a member, an anonymous
/// client and another organization's owner are refused, and a role of one organization means nothing in another.
#[test]
fn a_member_or_a_stranger_rewriting_the_organizations_roles_is_refused() {
    let (owner, admin, member) = settings_org();
    let name = format!("guarded-{}", std::process::id());
    let path = format!("/roles/{name}");
    let narrow = json!({"permissions": ["data:read"]});
    assert_eq!(owner.call("PUT", &path, Some(&narrow)).status, 200);
    let admin_here = Console { acting_for: owner.acting_for.clone(), ..admin.clone() };
    let member_here = Console { acting_for: owner.acting_for.clone(), ..member.clone() };
    let wide = json!({"permissions": ["data:*", "admin:*"]});
    member_here.call("PUT", &path, Some(&wide)).expect_problem(403, "FORBIDDEN");
    member_here.call("PUT", &format!("/roles/{name}-2"), Some(&wide)).expect_problem(403, "FORBIDDEN");
    member_here.call("DELETE", &path, None).expect_problem(403, "FORBIDDEN");
    let url = format!("{}/admin/v1{path}", owner.base);
    request("PUT", &url, &[("content-type", "application/json")], Some(r#"{"permissions":["data:*"]}"#))
        .expect_problem(401, "MISSING_CREDENTIAL");
    let stranger = Console::shared_owner().invite(&format!("roles-stranger-{}@x.test", std::process::id()), "owner");
    let peeking = Console { acting_for: owner.acting_for.clone(), ..stranger.clone() };
    peeking.call("PUT", &path, Some(&wide)).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    peeking.call("GET", "/roles", None).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    // The stranger's own organization does not know the role: a key cannot borrow it.
    let borrowing = json!({"name": "borrower", "environment": "live", "roles": [name]});
    let refused = stranger.call("POST", "/keys", Some(&borrowing)).expect_problem(422, "VALIDATION_FAILED");
    assert_eq!(refused["field"], "roles");
    // An admin may; the member's attempts changed nothing.
    assert_eq!(admin_here.call("PUT", &path, Some(&json!({"permissions": ["data:read", "data:write"]}))).status, 200);
    let listed = owner.call("GET", "/roles", None).json();
    let role = listed["roles"].as_array().unwrap().iter().find(|r| r["name"] == name.as_str()).cloned().unwrap();
    assert_eq!(role["permissions"], json!(["data:read", "data:write"]));
    assert!(!listed.to_string().contains(&format!("{name}-2")));
}

/// An identity's shared limit and metadata reach every one of its keys, so managing identities is an owner's or
/// admin's act; another organization's owner can neither read nor change them, nor put a key of theirs in one.
#[test]
fn a_member_or_a_stranger_changing_an_identity_is_refused() {
    let (owner, _, member) = settings_org();
    let external = format!("cus-guarded-{}", std::process::id());
    let created = owner.call("POST", "/identities", Some(&json!({"external_id": external})));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let member_here = Console { acting_for: owner.acting_for.clone(), ..member.clone() };
    let lifted = json!({"rate_limit": null, "meta": {"plan": "free-forever"}});
    member_here.call("PATCH", &format!("/identities/{id}"), Some(&lifted)).expect_problem(403, "FORBIDDEN");
    member_here.call("DELETE", &format!("/identities/{id}"), None).expect_problem(403, "FORBIDDEN");
    member_here
        .call("POST", "/identities", Some(&json!({"external_id": "cus-member"})))
        .expect_problem(403, "FORBIDDEN");
    let stranger = Console::shared_owner().invite(&format!("idn-stranger-{}@x.test", std::process::id()), "owner");
    let peeking = Console { acting_for: owner.acting_for.clone(), ..stranger.clone() };
    peeking.call("GET", "/identities", None).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    peeking.call("PATCH", &format!("/identities/{id}"), Some(&lifted)).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    // The stranger's own organization does not have the identity: a key of theirs cannot join it (and so cannot
    // spend its shared limit or read its metadata).
    let joining = json!({"name": "intruder", "environment": "live", "identity": id});
    let refused = stranger.call("POST", "/keys", Some(&joining)).expect_problem(422, "VALIDATION_FAILED");
    assert_eq!(refused["field"], "identity");
    let kept = owner.call("GET", &format!("/identities/{id}"), None).json();
    assert_eq!((kept["meta"].clone(), kept["keys"].as_u64()), (Value::Null, Some(0)), "{kept}");
}

/// Webhooks send an organization's events to a URL: a member or another organization's owner redirecting them
/// (or reading the delivery log) would watch every key change. Hostile bodies — a plain-http or private address,
/// credentials in the URL, an unknown event, an unknown field — are refused and change nothing.
#[test]
fn a_member_or_a_stranger_redirecting_the_organizations_webhooks_is_refused() {
    let (owner, _, member) = settings_org();
    let created = owner.call("POST", "/webhooks", Some(&json!({"url": "https://hooks.example.com/acme"})));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["webhook"]["id"].as_str().unwrap().to_owned();
    let steal = json!({"url": "https://attacker.example/steal"});
    let member_here = Console { acting_for: owner.acting_for.clone(), ..member.clone() };
    member_here.call("GET", "/webhooks", None).expect_problem(403, "FORBIDDEN");
    member_here.call("POST", "/webhooks", Some(&steal)).expect_problem(403, "FORBIDDEN");
    member_here.call("PATCH", &format!("/webhooks/{id}"), Some(&steal)).expect_problem(403, "FORBIDDEN");
    member_here.call("GET", &format!("/webhooks/{id}/deliveries"), None).expect_problem(403, "FORBIDDEN");
    member_here.call("DELETE", &format!("/webhooks/{id}"), None).expect_problem(403, "FORBIDDEN");
    // Another organization's owner: not a member here; in their own organization the id does not exist.
    let stranger = Console::shared_owner().invite(&format!("whk-stranger-{}@x.test", std::process::id()), "owner");
    let peeking = Console { acting_for: owner.acting_for.clone(), ..stranger.clone() };
    peeking.call("GET", "/webhooks", None).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    stranger.call("PATCH", &format!("/webhooks/{id}"), Some(&steal)).expect_problem(404, "NOT_FOUND");
    stranger.call("POST", &format!("/webhooks/{id}/test"), None).expect_problem(404, "NOT_FOUND");
    keygate_e2e::request("GET", &format!("{}/admin/v1/webhooks", owner.base), &[], None)
        .expect_problem(401, "MISSING_CREDENTIAL");

    for (body, field) in [
        (json!({"url": "http://hooks.example.com/x"}), Some("url")),
        (json!({"url": "http://10.0.0.1/x"}), Some("url")),
        (json!({"url": "https://user:pw@hooks.example.com/x"}), Some("url")),
        (json!({"url": "file:///etc/passwd"}), Some("url")),
        (json!({"url": "https://hooks.example.com/x", "events": ["key.revoked", "key.revoked"]}), Some("events")),
        (json!({"url": "https://hooks.example.com/x", "description": "x".repeat(201)}), Some("description")),
        (json!({"url": "https://hooks.example.com/x", "events": ["key.exploded"]}), None),
        (json!({"url": "https://hooks.example.com/x", "secret": "whsec_mine"}), None),
    ] {
        let refused = owner.call("POST", "/webhooks", Some(&body));
        assert!(matches!(refused.status, 400 | 422), "{body}: {} {}", refused.status, refused.body);
        if let Some(field) = field {
            assert_eq!(refused.json()["field"], field, "{body}");
        }
        let patched = owner.call("PATCH", &format!("/webhooks/{id}"), Some(&body));
        assert!(matches!(patched.status, 400 | 422), "{body}: {} {}", patched.status, patched.body);
    }
    let listed = owner.call("GET", "/webhooks", None).json();
    let hooks = listed["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1, "{listed}");
    assert_eq!(hooks[0]["url"], "https://hooks.example.com/acme");
}

/// A canary is a trap: whoever finds it must not be able to disarm it, learn that it is one, or read where it was
/// used. Making it an ordinary key is refused (the flag is fixed at creation); a member who does not own it and
/// another organization's owner cannot read its trips.
#[test]
fn a_canary_cannot_be_disarmed_and_its_trips_are_not_readable_by_others() {
    let (owner, _, member) = settings_org();
    let created = owner.call("POST", "/keys", Some(&json!({"name": "trap", "environment": "live", "canary": true})));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["record"]["id"].as_str().unwrap().to_owned();
    let disarm = owner.call("PATCH", &format!("/keys/{id}"), Some(&json!({"canary": false})));
    assert_eq!((disarm.status, disarm.json()["field"].as_str()), (422, Some("canary")), "{}", disarm.body);
    assert_eq!(owner.call("GET", &format!("/keys/{id}"), None).json()["canary"], true);
    let member_here = Console { acting_for: owner.acting_for.clone(), ..member.clone() };
    member_here.call("GET", &format!("/canary-trips?key={id}"), None).expect_problem(404, "NOT_FOUND");
    let stranger = Console::shared_owner().invite(&format!("canary-stranger-{}@x.test", std::process::id()), "owner");
    stranger.call("GET", &format!("/canary-trips?key={id}"), None).expect_problem(404, "NOT_FOUND");
    let peeking = Console { acting_for: owner.acting_for.clone(), ..stranger.clone() };
    peeking.call("GET", "/canary-trips", None).expect_problem(403, "FORBIDDEN_ORGANIZATION");
}

/// Rotating a webhook's secret answers the new one: a member or another organization's owner who could rotate it
/// would hold the key that makes forged deliveries look genuine to the organization's receivers. Hostile bodies
/// change nothing.
#[test]
fn a_member_or_a_stranger_taking_a_webhooks_signing_secret_is_refused() {
    let (owner, _, member) = settings_org();
    let created = owner.call("POST", "/webhooks", Some(&json!({"url": "https://hooks.example.com/rotated"})));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["webhook"]["id"].as_str().unwrap().to_owned();
    let path = format!("/webhooks/{id}/rotate-secret");
    let member_here = Console { acting_for: owner.acting_for.clone(), ..member.clone() };
    member_here.call("POST", &path, None).expect_problem(403, "FORBIDDEN");
    let stranger = Console::shared_owner().invite(&format!("rot-stranger-{}@x.test", std::process::id()), "owner");
    stranger.call("POST", &path, None).expect_problem(404, "NOT_FOUND");
    Console { acting_for: owner.acting_for.clone(), ..stranger.clone() }
        .call("POST", &path, None)
        .expect_problem(403, "FORBIDDEN_ORGANIZATION");
    keygate_e2e::request("POST", &format!("{}/admin/v1{path}", owner.base), &[], None)
        .expect_problem(401, "MISSING_CREDENTIAL");
    for (body, field) in [
        (json!({"previous_valid_seconds": 604_801}), Some("previous_valid_seconds")),
        (json!({"previous_valid_seconds": -1}), Some("previous_valid_seconds")),
        (json!({"previous_valid_seconds": "a day"}), Some("previous_valid_seconds")),
        (json!({"previous_valid_seconds": 60, "secret": "whsec_mine"}), None),
        (json!([]), None),
    ] {
        let refused = owner.call("POST", &path, Some(&body));
        assert!(matches!(refused.status, 400 | 422), "{body}: {} {}", refused.status, refused.body);
        assert_eq!(refused.header("content-type"), Some("application/problem+json"), "{body}");
        if let Some(field) = field {
            assert_eq!(refused.json()["field"], field, "{body}");
        }
    }
    // Nothing above rotated it: the audit log has the creation only.
    assert_eq!(owner.audit_actions(&id), ["create_webhook"]);
}

/// serde reads a struct from a JSON array as readily as from an object (`[]`: every field left out, `[x]`: the first
/// field). The admin API takes objects only, so an array never passes for an empty change.
#[test]
fn an_array_body_is_not_read_as_an_object() {
    let owner = Console::shared_owner();
    let (_, id, _) = owner.create_key(&json!({"name": "arrays", "environment": "live"}));
    for (method, path, body) in [
        ("POST", "/keys".to_owned(), json!(["arrays", "live"])),
        ("PATCH", format!("/keys/{id}"), json!(["renamed"])),
        ("PATCH", "/organization/settings".to_owned(), json!([])),
        ("POST", "/projects".to_owned(), json!(["slug", "Name"])),
    ] {
        let refused = owner.call(method, &path, Some(&body));
        refused.expect_problem(400, "INVALID_BODY");
    }
    assert_eq!(owner.call("GET", &format!("/keys/{id}"), None).json()["name"], "arrays", "nothing changed");
}
