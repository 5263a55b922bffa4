//! The gateway over the in-memory stores: every row of the order of checks, the rate limit, storage failures,
//! revocation through the key's object, the verify and whoami APIs, and the recent-error entry.

use keygate_shared::api::RecentError;
use keygate_shared::decision::{CONSOLE_PROJECT, Endpoint};
use keygate_shared::hash::SecretHash;
use keygate_shared::key::ApiKey;
use keygate_shared::model::{Environment, KeyIdentity, KeyKind, KeyRecord, KeyState, Permission, RateLimitPolicy};
use serde_json::{Value, json};

use super::{Build, Harness, NOW, block_on, code_of, json_of, request};
use crate::gateway::{
    self, CUSTOMER_HEADER as CUSTOMER, Consult, ORG_HEADER as ORG, error_entry, gateway_demand, presented,
};
use keygate_shared::http::{Incoming, Reply};
use keygate_shared::keyobject::{Actor, KeyChange, KeyReply, KeyRequest};
use keygate_shared::model::{RateLimitMode, Role, UserOrganizations};

fn permissions(list: &[&str]) -> Vec<Permission> {
    list.iter().map(|p| Permission::try_from(*p).expect("a valid permission")).collect()
}

/// Stores a record for a fresh key of `environment` straight into KV and returns the key as the client sends it
/// (with `label` as its project label). The record: active, project `acme-shop`, organization `org_a`, owner `usr_1`
/// (also a member of `org_b`), permission `data:read`; `edit` changes it.
fn stored(h: &Harness, environment: Environment, label: Option<&str>, edit: impl FnOnce(&mut KeyRecord)) -> String {
    let mut key = ApiKey::generate(environment).expect("randomness");
    key.project_label = label.map(str::to_owned);
    let mut record = KeyRecord {
        id: key.id,
        organization: "org_a".into(),
        project: Some("acme-shop".into()),
        environment,
        name: "Main Website Integration".into(),
        owner: "usr_1".into(),
        permissions: permissions(&["data:read"]),
        customers: vec![],
        rate_limit: None,
        expires_at: None,
        state: KeyState::Active,
        kind: KeyKind::Single,
        created_at: NOW.plus_secs(-3600),
        updated_at: NOW.plus_secs(-3600),
        secret_hash: SecretHash::of(&key),
        grace: None,
        revoked_by: None,
        allowed_ips: vec![],
        own_organization_only: false,
        canary: false,
        meta: None,
        usage_limit: None,
        roles: vec![],
        identity: None,
    };
    edit(&mut record);
    let organizations = UserOrganizations { organizations: vec!["org_a".into(), "org_b".into()] };
    h.memory.users.borrow_mut().insert(record.owner.clone(), organizations);
    h.memory.put(record);
    key.expose()
}

/// What one gateway request produced: the answer (the echo for a pass) and how many KV reads it took.
#[derive(Debug)]
struct Outcome {
    reply: Reply,
    kv_reads: u32,
}

/// Runs one gateway request through `authenticate` as the Worker's entry point does, answering a pass with the echo.
fn through(h: &Harness, endpoint: &Endpoint, req: &Incoming) -> Outcome {
    let before = *h.memory.kv_reads.borrow();
    let demand = gateway_demand(req, &h.config);
    let outcome = block_on(gateway::authenticate(
        &h.memory,
        presented(req, &h.config),
        endpoint,
        demand,
        Consult::WhenRateLimited,
        h.now(),
    ));
    let reply = match outcome {
        Ok(pass) => gateway::echo(req, &pass),
        Err(refusal) => {
            // The problem body and the refusal agree on the code; a storage failure decided nothing (503).
            match refusal.code {
                Some(code) => assert_eq!(code_of(&refusal.reply), code.as_str(), "{}", refusal.reply.body),
                None => assert_eq!(code_of(&refusal.reply), "STORAGE_UNAVAILABLE", "{}", refusal.reply.body),
            }
            refusal.reply
        }
    };
    Outcome { reply, kv_reads: *h.memory.kv_reads.borrow() - before }
}

/// A gateway request with the given method, path and headers on the configured (live, any project) endpoint.
fn call(h: &Harness, method: &str, path: &str, headers: &[(&str, &str)]) -> Outcome {
    let endpoint = h.config.endpoint.clone();
    call_at(h, &endpoint, method, path, headers)
}

fn call_at(h: &Harness, endpoint: &Endpoint, method: &str, path: &str, headers: &[(&str, &str)]) -> Outcome {
    let req = headers.iter().fold(request(method, path), |req, (name, value)| req.header(name, value));
    through(h, endpoint, &req)
}

/// The expected answer of one row.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A refusal: its status and the problem body's `code`.
    Refused(u16, &'static str),
    /// A pass: the echo names the organization the request acts for.
    Pass(&'static str),
}

fn check(name: &str, outcome: &Outcome, expect: Expect, kv_reads: u32) {
    let body = json_of(&outcome.reply);
    match expect {
        Expect::Refused(status, code) => {
            assert_eq!(outcome.reply.status, status, "{name}: status; body {body}");
            assert_eq!(body["code"], code, "{name}: code");
            assert_eq!(outcome.reply.header("content-type"), Some("application/problem+json"), "{name}");
        }
        Expect::Pass(organization) => {
            assert_eq!(outcome.reply.status, 200, "{name}: status; body {body}");
            assert_eq!(body["authenticated"], true, "{name}");
            assert_eq!(body["organization"], organization, "{name}: organization");
        }
    }
    assert_eq!(outcome.kv_reads, kv_reads, "{name}: KV reads");
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// The key with its last checksum character changed: well-formed, but the checksum no longer matches.
fn bad_checksum(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    let last = chars.last_mut().expect("a key is not empty");
    *last = if *last == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

#[test]
fn order_of_checks_one_row_each() {
    use Expect::{Pass, Refused};
    let h = Harness::new();
    let live = h.config.endpoint.clone();
    let acme = Endpoint {
        environment: Environment::Live,
        project: Some("acme-shop".into()),
        organization: Some("org_a".into()),
    };
    let other_acme = Endpoint { organization: Some("org_z".into()), ..acme.clone() };

    let good = stored(&h, Environment::Live, None, |_| {});
    let labelled_other = stored(&h, Environment::Live, Some("other"), |_| {});
    let staging = stored(&h, Environment::Test, None, |_| {});
    let unknown = ApiKey::generate(Environment::Live).expect("randomness").expose();
    let mismatch = stored(&h, Environment::Live, None, |r| {
        r.secret_hash = SecretHash::of(&ApiKey::generate(r.environment).unwrap())
    });
    let revoked = stored(&h, Environment::Live, None, |r| r.state = KeyState::Revoked);
    let deactivated = stored(&h, Environment::Live, None, |r| r.state = KeyState::Deactivated);
    let expired = stored(&h, Environment::Live, None, |r| r.expires_at = Some(NOW));
    let restricted = stored(&h, Environment::Live, None, |r| r.customers = vec!["cus_1".into()]);
    let console = stored(&h, Environment::Live, None, |r| r.project = Some(CONSOLE_PROJECT.into()));

    // `get` sends GET /data/x (needs data:read) with the key as a bearer token and extra headers; `at` sends it to
    // another endpoint; `post` sends POST /streams/s (needs data:write).
    let get = |key: &str, extra: &[(&str, &str)]| {
        let auth = bearer(key);
        let headers: Vec<(&str, &str)> =
            [("authorization", auth.as_str())].into_iter().chain(extra.iter().copied()).collect();
        call(&h, "GET", "/data/x", &headers)
    };
    let at =
        |endpoint: &Endpoint, key: &str| call_at(&h, endpoint, "GET", "/data/x", &[("authorization", &bearer(key))]);
    let post = |key: &str| call(&h, "POST", "/streams/s", &[("authorization", &bearer(key))]);
    let delete = |key: &str, path: &str| call(&h, "DELETE", path, &[("authorization", &bearer(key))]);
    let cases: Vec<(&str, Outcome, Expect, u32)> = vec![
        ("1 missing credential", call(&h, "GET", "/data/x", &[]), Refused(401, "MISSING_CREDENTIAL"), 0),
        ("2 malformed", get("kg_live_nope", &[]), Refused(401, "INVALID_FORMAT"), 0),
        ("2 bad checksum", get(&bad_checksum(&good), &[]), Refused(401, "INVALID_FORMAT"), 0),
        ("3 wrong environment", get(&staging, &[]), Refused(401, "WRONG_ENVIRONMENT"), 0),
        ("4 label vs endpoint project", at(&acme, &labelled_other), Refused(401, "WRONG_PROJECT"), 0),
        ("5 unknown id", get(&unknown, &[]), Refused(401, "NOT_FOUND"), 1),
        ("5 secret mismatch", get(&mismatch, &[]), Refused(401, "NOT_FOUND"), 1),
        ("5 record project vs label", at(&live, &labelled_other), Refused(401, "WRONG_PROJECT"), 1),
        ("5 revoked", get(&revoked, &[]), Refused(401, "REVOKED"), 1),
        ("5 deactivated", get(&deactivated, &[]), Refused(401, "DEACTIVATED"), 1),
        ("5 expired", get(&expired, &[]), Refused(401, "EXPIRED"), 1),
        ("6 foreign organization", get(&good, &[(ORG, "org_z")]), Refused(403, "FORBIDDEN_ORGANIZATION"), 2),
        ("7 missing permission", post(&good), Refused(403, "INSUFFICIENT_PERMISSIONS"), 1),
        ("7 no route covers it", delete(&good, "/other"), Refused(403, "NO_ROUTE"), 1),
        ("7 customer required", get(&restricted, &[]), Refused(403, "CUSTOMER_REQUIRED"), 1),
        ("7 customer not allowed", get(&restricted, &[(CUSTOMER, "cus_2")]), Refused(403, "CUSTOMER_NOT_ALLOWED"), 1),
        ("5 same slug, another organization", at(&other_acme, &good), Refused(401, "WRONG_PROJECT"), 1),
        ("console token on the gateway", get(&console, &[]), Refused(401, "WRONG_PROJECT"), 1),
        ("pass", get(&good, &[]), Pass("org_a"), 1),
        ("pass, x-api-key", call(&h, "GET", "/data/x", &[("x-api-key", &good)]), Pass("org_a"), 1),
        ("pass, owner's second organization", get(&good, &[(ORG, "org_b")]), Pass("org_b"), 2),
        ("pass, the key's own organization named", get(&good, &[(ORG, "org_a")]), Pass("org_a"), 1),
        ("pass, allowed customer", get(&restricted, &[(CUSTOMER, "cus_1")]), Pass("org_a"), 1),
        ("pass, endpoint of the key's project", at(&acme, &good), Pass("org_a"), 1),
        ("pass, route needing no permission", delete(&good, "/open/x"), Pass("org_a"), 1),
    ];
    for (name, outcome, expect, kv_reads) in &cases {
        check(name, outcome, *expect, *kv_reads);
    }
}

#[test]
fn refusals_carry_their_challenge() {
    let h = Harness::new();
    let good = stored(&h, Environment::Live, None, |_| {});
    let revoked = stored(&h, Environment::Live, None, |r| r.state = KeyState::Revoked);
    let challenge = |method: &str, path: &str, headers: &[(&str, &str)]| {
        call(&h, method, path, headers).reply.header("www-authenticate").map(str::to_owned)
    };
    let (good, revoked) = (bearer(&good), bearer(&revoked));
    let scope = "Bearer realm=\"keygate\", error=\"insufficient_scope\", scope=\"data:write\"";
    let invalid = "Bearer realm=\"keygate\", error=\"invalid_token\", error_description=\"REVOKED\"";
    let cases: Vec<(&str, Option<String>, Option<&str>)> = vec![
        ("missing credential", challenge("GET", "/data/x", &[]), Some("Bearer realm=\"keygate\"")),
        ("missing permission", challenge("POST", "/streams/s", &[("authorization", &good)]), Some(scope)),
        ("revoked", challenge("GET", "/data/x", &[("authorization", &revoked)]), Some(invalid)),
        ("foreign organization", challenge("GET", "/d", &[("authorization", &good), (ORG, "org_z")]), None),
        ("pass", challenge("GET", "/data/x", &[("authorization", &good)]), None),
    ];
    for (name, got, want) in cases {
        assert_eq!(got.as_deref(), want, "{name}");
    }
}

/// A key limited to 3 requests a minute.
fn limited(h: &Harness) -> String {
    stored(h, Environment::Live, None, |r| {
        r.rate_limit = Some(RateLimitPolicy::per(3, 60));
    })
}

/// The same, strict: every request asks the key's object.
fn strict(h: &Harness) -> String {
    stored(h, Environment::Live, None, |r| {
        r.rate_limit = Some(RateLimitPolicy { mode: RateLimitMode::Strict, ..RateLimitPolicy::per(3, 60) });
    })
}

#[test]
fn rate_limit_admits_exactly_the_quota_then_429_until_the_window_passes() {
    let h = Harness::new();
    let key = limited(&h);
    let auth = bearer(&key);
    let get = || call(&h, "GET", "/data/x", &[("authorization", &auth)]);

    // Three requests pass, each telling how many remain.
    for remaining in [2, 1, 0] {
        let outcome = get();
        check("within the limit", &outcome, Expect::Pass("org_a"), 1);
        assert_eq!(outcome.reply.header("ratelimit-policy"), Some("\"default\";q=3;w=60"));
        let ratelimit = outcome.reply.header("ratelimit").expect("a RateLimit header");
        assert!(ratelimit.starts_with(&format!("\"default\";r={remaining};t=")), "{ratelimit}");
        assert_eq!(outcome.reply.header("retry-after"), None);
    }

    // The fourth is refused with every rate-limit header.
    let refused = get();
    check("over the limit", &refused, Expect::Refused(429, "RATE_LIMITED"), 1);
    assert_eq!(refused.reply.header("ratelimit-policy"), Some("\"default\";q=3;w=60"));
    assert!(refused.reply.header("ratelimit").expect("a RateLimit header").starts_with("\"default\";r=0;t="));
    let retry: i64 = refused.reply.header("retry-after").expect("a Retry-After header").parse().expect("seconds");
    assert!((1..=62).contains(&retry), "Retry-After {retry}");

    // Still refused a second before the window ends, admitted once Retry-After has passed.
    h.set_now(NOW.plus_secs(retry - 1));
    check("before Retry-After", &get(), Expect::Refused(429, "RATE_LIMITED"), 1);
    h.set_now(NOW.plus_secs(retry));
    check("after Retry-After", &get(), Expect::Pass("org_a"), 1);
}

/// Two keys of one identity share its limit, counted in the identity's own object, in both modes; a key of no
/// identity is not counted there; each key's own limit still applies; the headers show the tighter limit.
#[test]
fn the_keys_of_an_identity_share_its_rate_limit() {
    for mode in [RateLimitMode::Leased, RateLimitMode::Strict] {
        let h = Harness::new();
        let identity = KeyIdentity {
            id: KeyIdentity::new_id().unwrap(),
            external_id: "cus_1".into(),
            name: "Customer one".into(),
            meta: None,
            rate_limit: Some(RateLimitPolicy { mode, ..RateLimitPolicy::per(4, 60) }),
        };
        let of_identity = |own: Option<RateLimitPolicy>| {
            let identity = identity.clone();
            stored(&h, Environment::Live, None, move |r| {
                r.identity = Some(identity);
                r.rate_limit = own;
            })
        };
        let (first, second) = (bearer(&of_identity(None)), bearer(&of_identity(Some(RateLimitPolicy::per(100, 60)))));
        let plain = bearer(&stored(&h, Environment::Live, None, |_| {}));
        let get = |auth: &str| call(&h, "GET", "/data/x", &[("authorization", auth)]);
        for auth in [&first, &second, &first, &second] {
            check("within the shared limit", &get(auth), Expect::Pass("org_a"), 1);
        }
        for auth in [&first, &second] {
            let refused = get(auth);
            check(&format!("over the shared limit ({mode:?})"), &refused, Expect::Refused(429, "RATE_LIMITED"), 1);
            assert_eq!(refused.reply.header("ratelimit-policy"), Some("\"default\";q=4;w=60"), "the identity's limit");
            assert!(refused.reply.header("retry-after").is_some());
        }
        check("a key of no identity is not counted there", &get(&plain), Expect::Pass("org_a"), 1);
        h.set_now(NOW.plus_secs(61));
        let again = get(&second);
        check("a new window", &again, Expect::Pass("org_a"), 1);
        assert_eq!(again.reply.header("ratelimit-policy"), Some("\"default\";q=4;w=60"), "the tighter of the two");
    }
}

#[test]
fn storage_failures_answer_503_and_never_pass() {
    let h = Harness::new();
    let plain = stored(&h, Environment::Live, None, |_| {});
    let rate_limited = limited(&h);
    let cases: Vec<(&str, &str, bool, bool)> = vec![
        // (case, key, KV fails, objects fail)
        ("KV down, plain key", &plain, true, false),
        ("KV down, rate-limited key", &rate_limited, true, false),
        ("object down, rate-limited key", &rate_limited, false, true),
        ("both down", &plain, true, true),
    ];
    for (name, key, fail_kv, fail_objects) in cases {
        *h.memory.fail_kv.borrow_mut() = fail_kv;
        *h.memory.fail_objects.borrow_mut() = fail_objects;
        let outcome = call(&h, "GET", "/data/x", &[("authorization", &bearer(key))]);
        assert_eq!(outcome.reply.status, 503, "{name}: {}", outcome.reply.body);
        assert_eq!(code_of(&outcome.reply), "STORAGE_UNAVAILABLE", "{name}");
        assert_eq!(outcome.reply.header("content-type"), Some("application/problem+json"), "{name}");
        assert_eq!(outcome.reply.header("retry-after"), Some("1"), "{name}");
    }
    // Once storage answers again, the same keys pass.
    *h.memory.fail_kv.borrow_mut() = false;
    *h.memory.fail_objects.borrow_mut() = false;
    for key in [&plain, &rate_limited] {
        let back = call(&h, "GET", "/data/x", &[("authorization", &bearer(key))]);
        check("storage back", &back, Expect::Pass("org_a"), 1);
    }
}

#[test]
fn revocation_through_the_key_object_is_seen_at_once_for_a_strict_rate_limited_key() {
    let h = Harness::new();
    let key = stored(&h, Environment::Live, None, |r| {
        r.rate_limit = Some(RateLimitPolicy { mode: RateLimitMode::Strict, ..RateLimitPolicy::per(100, 60) });
    });
    assert_eq!(h.gate_code(&key), "VALID");
    let id = key.parse::<ApiKey>().expect("a key").id;
    let stale = h.memory.kv.borrow().get(&id).cloned().expect("the record in KV");
    let actor = Actor { user: "usr_1".into(), role: Role::Owner, organization: "org_a".into() };
    let revoke = KeyRequest::Change { actor, change: KeyChange::Revoke, audit_id: "evt_1".into(), now: NOW };
    assert!(matches!(h.memory.handle(&id, revoke), KeyReply::Committed { .. }), "the object revokes it");
    // KV (or an isolate's cache) still holds the active record; the key's object is authoritative.
    h.memory.kv.borrow_mut().insert(id, stale);
    assert_eq!(h.gate_code(&key), "REVOKED");
}

/// A leased rate limit: the isolate admits on its own until its lease ends (at most a second, the end of the
/// limiter's slot); a revocation is seen at the next renewal.
#[test]
fn revocation_of_a_leased_key_reaches_the_isolate_within_its_lease() {
    let h = Harness::new();
    let key = stored(&h, Environment::Live, None, |r| r.rate_limit = Some(RateLimitPolicy::per(100, 60)));
    let id = key.parse::<ApiKey>().expect("a key").id;
    assert_eq!(h.gate_code(&key), "VALID", "asks the object, and gets a lease");
    let calls = *h.memory.object_calls.borrow();
    assert_eq!(h.gate_code(&key), "VALID");
    assert_eq!(*h.memory.object_calls.borrow(), calls, "admitted from the lease, with no object call");
    let stale = h.memory.kv.borrow().get(&id).cloned().expect("the record in KV");
    let actor = Actor { user: "usr_1".into(), role: Role::Owner, organization: "org_a".into() };
    let revoke = KeyRequest::Change { actor, change: KeyChange::Revoke, audit_id: "evt_1".into(), now: NOW };
    assert!(matches!(h.memory.handle(&id, revoke), KeyReply::Committed { .. }), "the object revokes it");
    // The isolate's cache still holds the active record (KV itself has the revocation).
    h.memory.kv.borrow_mut().insert(id, stale);
    // Still within the lease: admitted.
    assert_eq!(h.gate_code(&key), "VALID");
    // A second later every lease has ended: the renewal asks the object, which refuses.
    h.set_now(NOW.plus_millis(keygate_shared::ratelimit::MAX_LEASE_MS));
    assert_eq!(h.gate_code(&key), "REVOKED");
}

/// Removing the owner from an organization reaches the gateway through KV (`user:<id>`): their keys stop acting for
/// it.
#[test]
fn a_key_stops_acting_for_an_organization_its_owner_left() {
    let h = Harness::new();
    let key = stored(&h, Environment::Live, None, |_| {});
    let auth = bearer(&key);
    check(
        "member of org_b",
        &call(&h, "GET", "/data/x", &[("authorization", &auth), (ORG, "org_b")]),
        Expect::Pass("org_b"),
        2,
    );
    h.memory.users.borrow_mut().insert("usr_1".into(), UserOrganizations { organizations: vec!["org_a".into()] });
    let left = call(&h, "GET", "/data/x", &[("authorization", &auth), (ORG, "org_b")]);
    check("left org_b", &left, Expect::Refused(403, "FORBIDDEN_ORGANIZATION"), 2);
}

// ---------------------------------------------------------------------------------------------------------------
// Verify and whoami

/// A service key holding `keys:verify`, for the verify API's caller.
fn verifier_key(h: &Harness) -> String {
    stored(h, Environment::Live, None, |r| {
        r.project = None;
        r.permissions = permissions(&["keys:verify"]);
    })
}

fn verify(h: &Harness, caller: Option<&str>, body: Value) -> Reply {
    verify_counting(h, caller, body).0
}

fn verify_counting(h: &Harness, caller: Option<&str>, body: Value) -> (Reply, Vec<gateway::Uncounted>) {
    let mut req = request("POST", "/v1/verify").json(body);
    if let Some(caller) = caller {
        req = req.bearer(caller);
    }
    let answered = block_on(gateway::verify(&h.memory, &req, &h.config, h.now()));
    (answered.reply, answered.uncounted)
}

fn whoami(h: &Harness, key: Option<&str>) -> (Reply, Option<gateway::Uncounted>) {
    let mut req = request("GET", "/v1/whoami");
    if let Some(key) = key {
        req = req.bearer(key);
    }
    let answered = block_on(gateway::whoami(&h.memory, &req, &h.config, h.now()));
    (answered.reply, answered.uncounted.into_iter().next())
}

/// Verify and whoami say which requests the keys' objects did not count, so the Worker counts them in the usage
/// batches like gateway passes: keys without a rate limit, never a refused key, never one whose object counted.
#[test]
fn verify_and_whoami_answer_the_requests_left_to_count() {
    let h = Harness::new();
    let caller = verifier_key(&h);
    let good = stored(&h, Environment::Live, None, |_| {});
    let revoked = stored(&h, Environment::Live, None, |r| r.state = KeyState::Revoked);
    // Strict: its object sees (and counts) every request; a leased key's admissions from a lease are uncounted.
    let rate_limited = strict(&h);
    let id = |key: &str| key.parse::<ApiKey>().expect("a key").id;
    let ids = |list: Vec<gateway::Uncounted>| list.into_iter().map(|u| (u.id, u.organization)).collect::<Vec<_>>();
    let org = String::from("org_a");

    let (reply, uncounted) = verify_counting(&h, Some(&caller), json!({ "key": good }));
    assert_eq!(code_of(&reply), "VALID");
    assert_eq!(ids(uncounted), [(id(&caller), org.clone()), (id(&good), org.clone())]);
    let (_, uncounted) = verify_counting(&h, Some(&caller), json!({ "key": revoked }));
    assert_eq!(ids(uncounted), [(id(&caller), org.clone())], "a refused key is not counted");
    let (_, uncounted) = verify_counting(&h, Some(&caller), json!({ "key": rate_limited }));
    assert_eq!(ids(uncounted), [(id(&caller), org.clone())], "the object counted the rate-limited key");
    let (_, uncounted) = verify_counting(&h, Some(&good), json!({ "key": good }));
    assert!(uncounted.is_empty(), "a caller without keys:verify is refused, and nothing is counted");

    assert_eq!(whoami(&h, Some(&good)).1.map(|u| u.id), Some(id(&good)));
    assert_eq!(whoami(&h, Some(&rate_limited)).1, None);
    assert_eq!(whoami(&h, None).1, None);
}

#[test]
fn verify_answers_valid_and_the_refusal_codes() {
    let h = Harness::new();
    let caller = verifier_key(&h);
    let good = stored(&h, Environment::Live, None, |_| {});
    let revoked = stored(&h, Environment::Live, None, |r| r.state = KeyState::Revoked);
    let unknown = ApiKey::generate(Environment::Live).expect("randomness").expose();
    let v = |body: Value| verify(&h, Some(&caller), body);
    let cases: Vec<(&str, Reply, bool, &str)> = vec![
        ("valid", v(json!({ "key": good })), true, "VALID"),
        ("valid with permission", v(json!({ "key": good, "permission": "data:read" })), true, "VALID"),
        ("no data:write", v(json!({ "key": good, "permission": "data:write" })), false, "INSUFFICIENT_PERMISSIONS"),
        ("malformed", v(json!({ "key": "kg_live_nope" })), false, "INVALID_FORMAT"),
        ("bad checksum", v(json!({ "key": bad_checksum(&good) })), false, "INVALID_FORMAT"),
        ("unknown", v(json!({ "key": unknown })), false, "NOT_FOUND"),
        ("revoked", v(json!({ "key": revoked })), false, "REVOKED"),
        ("foreign organization", v(json!({ "key": good, "organization": "org_z" })), false, "FORBIDDEN_ORGANIZATION"),
    ];
    for (name, reply, valid, code) in &cases {
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        let body = json_of(reply);
        assert_eq!(body["valid"], *valid, "{name}");
        assert_eq!(body["code"], *code, "{name}");
        // Only a valid key is described; a refusal says nothing about the key.
        assert_eq!(body.get("key_id").is_some(), *valid, "{name}: {body}");
    }
    let body = json_of(&cases[0].1);
    let id = good.parse::<ApiKey>().expect("a key").id.to_string();
    assert_eq!(body["key_id"], id);
    assert_eq!(body["organization"], "org_a");
    assert_eq!(body["project"], "acme-shop");
    assert_eq!(body["permissions"], json!(["data:read"]));
}

#[test]
fn verify_requires_a_caller_holding_keys_verify() {
    let h = Harness::new();
    let good = stored(&h, Environment::Live, None, |_| {});
    let caller = verifier_key(&h);
    let body = json!({ "key": good });
    let by_caller = |body: Value| verify(&h, Some(&caller), body);
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("no caller", verify(&h, None, body.clone()), 401, "MISSING_CREDENTIAL"),
        ("caller without keys:verify", verify(&h, Some(&good), body.clone()), 403, "INSUFFICIENT_PERMISSIONS"),
        ("caller with keys:verify", by_caller(body.clone()), 200, "VALID"),
        ("malformed body", by_caller(json!({ "token": good })), 400, "INVALID_BODY"),
        ("invalid permission", by_caller(json!({ "key": good, "permission": "Nope" })), 422, "VALIDATION_FAILED"),
    ];
    for (name, reply, status, code) in &cases {
        assert_eq!(reply.status, *status, "{name}: {}", reply.body);
        assert_eq!(code_of(reply), *code, "{name}");
    }
    assert_eq!(
        cases[1].1.header("www-authenticate"),
        Some("Bearer realm=\"keygate\", error=\"insufficient_scope\", scope=\"keys:verify\"")
    );
}

#[test]
fn verify_counts_against_the_verified_keys_rate_limit() {
    let h = Harness::new();
    let caller = verifier_key(&h);
    let key = limited(&h);
    let codes: Vec<String> = (0..4)
        .map(|_| json_of(&verify(&h, Some(&caller), json!({ "key": key })))["code"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(codes, ["VALID", "VALID", "VALID", "RATE_LIMITED"]);
    // The limit is the key's, wherever it is spent: the gateway refuses it now too.
    let outcome = call(&h, "GET", "/data/x", &[("authorization", &bearer(&key))]);
    check("gateway after verify", &outcome, Expect::Refused(429, "RATE_LIMITED"), 1);

    // A verified key's answer carries its rate-limit status.
    let h = Harness::new();
    let caller = verifier_key(&h);
    let key = limited(&h);
    let body = json_of(&verify(&h, Some(&caller), json!({ "key": key })));
    assert_eq!(body["rate_limit"]["limit"], 3);
    assert_eq!(body["rate_limit"]["remaining"], 2);
}

#[test]
fn verify_answers_503_when_storage_fails() {
    let h = Harness::new();
    let caller = verifier_key(&h);
    let key = limited(&h);
    *h.memory.fail_objects.borrow_mut() = true;
    let reply = verify(&h, Some(&caller), json!({ "key": key }));
    assert_eq!((reply.status, code_of(&reply).as_str()), (503, "STORAGE_UNAVAILABLE"));
    assert_eq!(reply.header("retry-after"), Some("1"));
}

#[test]
fn whoami_names_the_key() {
    let h = Harness::new();
    let key = stored(&h, Environment::Live, None, |_| {});
    let id = key.parse::<ApiKey>().expect("a key").id.to_string();
    let (reply, _) = whoami(&h, Some(&key));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        json_of(&reply),
        json!({
            "key_id": id,
            "name": "Main Website Integration",
            "project": "acme-shop",
            "environment": "live",
            "organization": "org_a",
        })
    );
    // Without a key, whoami is refused like any gateway request.
    let (refused, _) = whoami(&h, None);
    assert_eq!((refused.status, code_of(&refused).as_str()), (401, "MISSING_CREDENTIAL"));
}

#[test]
fn error_entry_never_contains_the_credential() {
    let key = ApiKey::generate(Environment::Live).expect("randomness");
    let full = key.expose();
    let req = request("POST", "/streams/s")
        .bearer(&full)
        .header("x-api-key", &full)
        .header("apikey", &key.public_start())
        .header("apisecret", &key.expose_pair_secret())
        .header("keygate-org", "org_b")
        .header("keygate-customer", "cus_1");
    let preview = "x".repeat(3000);
    // A body that repeats the key and carries a password: kept to be sent again, with both redacted.
    let body = format!(r#"{{"reading": 21.5, "password": "hunter2", "echo": "{full}"}}"#);
    let entry = error_entry(&req, 403, "INSUFFICIENT_PERMISSIONS", &body, &preview, NOW);
    let text = serde_json::to_string(&entry).expect("an entry serializes");
    for secret in [full.as_str(), key.secret.expose(), &key.expose_pair_secret()] {
        assert!(!text.contains(secret), "the entry leaks the credential: {text}");
    }
    // Credential-named fields: redacted by the key's object before it stores the entry.
    let entry = entry.redacted();
    assert_eq!(
        entry.request_preview,
        "POST /streams/s\nkeygate-org: org_b\nkeygate-customer: cus_1\n\n\
         {\"reading\": 21.5, \"password\": \"[redacted]\", \"echo\": \"[redacted]\"}"
    );
    assert_eq!((entry.method.as_str(), entry.path.as_str(), entry.status), ("POST", "/streams/s", 403));
    assert_eq!(entry.code, "INSUFFICIENT_PERMISSIONS");
    assert_eq!(entry.response_preview.chars().count(), RecentError::MAX_RESPONSE_PREVIEW);
}

/// Every field of an entry is bounded, the request preview as a whole (not only per header).
#[test]
fn error_entries_are_bounded_as_a_whole() {
    let long = "é".repeat(1000);
    let req = request("GET", &format!("/data/{}", "p".repeat(3000)))
        .header("keygate-org", &long)
        .header("keygate-customer", &long);
    let entry = error_entry(&req, 403, &"C".repeat(500), &long.repeat(5), &long.repeat(5), NOW);
    assert!(entry.path.chars().count() <= RecentError::MAX_PATH);
    assert!(entry.code.chars().count() <= RecentError::MAX_CODE);
    assert!(entry.request_preview.chars().count() <= RecentError::MAX_REQUEST_PREVIEW);
    assert!(entry.response_preview.chars().count() <= RecentError::MAX_RESPONSE_PREVIEW);
    assert!(serde_json::to_string(&entry).expect("serializes").len() < 16 * 1024);
}

#[test]
fn the_gateway_knows_which_admin_requests_change_a_key() {
    let id = "F854DS4QEVHXS4";
    let cases = [
        ("POST", format!("/admin/v1/keys/{id}/revoke"), true),
        ("POST", format!("/admin/v1/keys/{id}/regenerate"), true),
        ("PATCH", format!("/admin/v1/keys/{id}"), true),
        ("DELETE", format!("/admin/v1/keys/{id}"), true),
        ("GET", format!("/admin/v1/keys/{id}"), false),
        ("GET", format!("/admin/v1/keys/{id}/usage"), false),
        ("POST", String::from("/admin/v1/keys"), false),
        ("POST", String::from("/admin/v1/keys/nope/revoke"), false),
    ];
    for (method, path, changes) in cases {
        assert_eq!(gateway::changed_key(method, &path).is_some(), changes, "{method} {path}");
    }
}

/// Steps 1–8 for a gateway request with this `Authorization` header, at the harness's time.
fn authenticate(h: &Harness, auth: &str, method: &str, path: &str) -> Result<gateway::Pass, gateway::Refusal> {
    let req = request(method, path).header("authorization", auth);
    let demand = gateway_demand(&req, &h.config);
    let presented = presented(&req, &h.config);
    let endpoint = h.config.endpoint.clone();
    block_on(gateway::authenticate(&h.memory, presented, &endpoint, demand, Consult::WhenRateLimited, h.now()))
}

/// Instrumental keeps only the failures of requests that were authenticated and not rate limited: a 429 is not an
/// error of the key, a missing permission is (leased and strict alike).
#[test]
fn rate_limited_refusals_are_not_logged_as_errors() {
    for strict_mode in [false, true] {
        let h = Harness::new();
        let key = if strict_mode { strict(&h) } else { limited(&h) };
        let auth = bearer(&key);
        let attempt = |method: &str, path: &str| authenticate(&h, &auth, method, path);
        for _ in 0..3 {
            assert!(attempt("GET", "/data/x").is_ok());
        }
        let limited = attempt("GET", "/data/x").expect_err("over the limit");
        assert_eq!(limited.code, Some(keygate_shared::Code::RateLimited));
        assert!(limited.key.is_none(), "strict {strict_mode}: a 429 is not logged");
        let forbidden = attempt("POST", "/streams/s").expect_err("no data:write");
        assert_eq!(forbidden.code, Some(keygate_shared::Code::InsufficientPermissions));
        assert!(forbidden.key.is_some(), "strict {strict_mode}: a missing permission is logged");
    }
}

/// Unkey's `remaining`: a key good for 3 uses passes 3 times (every use asks the key's object, with or without a
/// leased rate limit), then answers 429 `USAGE_EXCEEDED` (not logged as an error of the key); a request refused for
/// another reason uses nothing; a daily refill starts again at midnight UTC.
#[test]
fn a_usage_limited_key_passes_its_uses_then_429_until_its_refill() {
    use keygate_shared::Code;
    use keygate_shared::model::{Refill, RefillInterval, UsageLimit};
    for rate_limit in [None, Some(RateLimitPolicy::per(100, 60))] {
        let h = Harness::new();
        let key = stored(&h, Environment::Live, None, |r| {
            r.rate_limit = rate_limit;
            let refill = Refill { amount: 2, interval: RefillInterval::Daily };
            r.usage_limit = Some(UsageLimit { uses: 3, refill: Some(refill) });
        });
        let auth = bearer(&key);
        let attempt = |method: &str, path: &str| authenticate(&h, &auth, method, path);
        let forbidden = attempt("POST", "/streams/s").expect_err("no data:write");
        assert_eq!(forbidden.code, Some(Code::InsufficientPermissions));
        for left in [2, 1, 0] {
            let pass = attempt("GET", "/data/x").expect("a use left");
            assert_eq!(pass.remaining, Some(left), "rate limit {rate_limit:?}");
            assert!(pass.counted, "the key's object counted it");
        }
        let spent = attempt("GET", "/data/x").expect_err("no use left");
        assert_eq!(spent.code, Some(Code::UsageExceeded));
        assert_eq!(spent.reply.status, 429);
        assert!(spent.key.is_none(), "a spent key's 429 is not an error of the key");
        assert!(spent.reply.headers.contains(&("keygate-remaining".to_owned(), "0".to_owned())));
        h.set_now(h.now().day_start().plus_millis(86_400_000));
        assert_eq!(attempt("GET", "/data/x").expect("refilled").remaining, Some(1), "refilled to 2, one used");
    }
}

/// The request log takes every request of a key that proved itself — passes, refusals after the secret matched and
/// 429s alike — under the key's organization, with the organization it acted for; a wrong secret, an unknown key
/// and a console token give no line. The line never holds the query string.
#[test]
fn the_request_log_takes_what_a_key_proved_it_did_and_nothing_else() {
    use keygate_shared::Code;
    let h = Harness::new();
    let key = limited(&h);
    let auth = bearer(&key);
    let attempt = |auth: &str, method: &str, path: &str| authenticate(&h, auth, method, path);
    let pass = attempt(&auth, "GET", "/data/x").expect("a pass");
    let subject = pass.subject().expect("a pass is logged");
    assert_eq!((subject.id, subject.owner.as_str(), subject.acting.as_str()), (pass.record.id, "org_a", "org_a"));
    let forbidden = attempt(&auth, "POST", "/streams/s").expect_err("no data:write");
    assert_eq!(forbidden.logged.as_ref().map(|s| s.id), Some(pass.record.id));
    for _ in 0..3 {
        let _ = attempt(&auth, "GET", "/data/x");
    }
    let limited = attempt(&auth, "GET", "/data/x").expect_err("over the limit");
    assert_eq!(limited.code, Some(Code::RateLimited));
    assert!(limited.key.is_none() && limited.logged.is_some(), "a 429 is logged, though not as an error");

    let mut forged: ApiKey = key.parse().unwrap();
    forged.secret = ApiKey::generate(Environment::Live).unwrap().secret;
    let wrong = attempt(&bearer(&forged.expose()), "GET", "/data/x").expect_err("a wrong secret");
    assert_eq!(wrong.code, Some(Code::NotFound));
    assert!(wrong.logged.is_none(), "a wrong secret proves nothing");
    let unknown = attempt(&bearer(&ApiKey::generate(Environment::Live).unwrap().expose()), "GET", "/data/x");
    assert!(unknown.expect_err("unknown").logged.is_none());
    let console =
        stored(&h, Environment::Live, None, |r| r.project = Some(keygate_shared::decision::CONSOLE_PROJECT.into()));
    let token = attempt(&bearer(&console), "GET", "/data/x").expect_err("a console token");
    assert!(token.logged.is_none(), "console tokens are not keys of the lists");

    let req = request("GET", "/data/x?token=hunter2").header("cf-connecting-ip", "203.0.113.9");
    let line = gateway::log_line(&req, &subject, 200, None, h.now(), h.now().plus_millis(12));
    assert_eq!((line.path.as_str(), line.latency_ms, line.client_ip.as_deref()), ("/data/x", 12, Some("203.0.113.9")));
    assert!(!serde_json::to_string(&line).unwrap().contains("hunter2"));
}

/// A canary key is refused with the very answer an unknown key gets (status, headers and body), whatever else the
/// request says; only the gateway knows it was a trip (it logs the request for the key's organization). A wrong
/// secret for the canary's id is an ordinary unknown key, not a trip.
#[test]
fn a_canary_is_refused_exactly_like_an_unknown_key_and_its_use_is_logged() {
    let h = Harness::new();
    let canary = stored(&h, Environment::Live, None, |r| r.canary = true);
    let unknown = ApiKey::generate(Environment::Live).expect("randomness").expose();
    let forged = {
        let mut key: ApiKey = canary.parse().unwrap();
        key = key.with_new_secret().unwrap();
        key.expose()
    };
    let run = |key: &str, extra: &[(&str, &str)]| {
        let auth = bearer(key);
        let mut req = request("GET", "/data/x").header("authorization", &auth);
        for (name, value) in extra {
            req = req.header(name, value);
        }
        let demand = gateway_demand(&req, &h.config);
        block_on(gateway::authenticate(
            &h.memory,
            presented(&req, &h.config),
            &h.config.endpoint,
            demand,
            Consult::WhenRateLimited,
            h.now(),
        ))
    };
    let unknown_refusal = run(&unknown, &[]).expect_err("unknown");
    assert!(!unknown_refusal.tripped());
    for extra in [&[][..], &[("keygate-org", "org_b")][..], &[("keygate-customer", "cus_9")][..]] {
        let refusal = run(&canary, extra).expect_err("a canary never passes");
        assert_eq!(refusal.reply, unknown_refusal.reply, "indistinguishable from an unknown key ({extra:?})");
        assert!(refusal.tripped(), "{extra:?}");
        assert_eq!(refusal.logged.as_ref().map(|s| s.owner.as_str()), Some("org_a"));
        assert!(refusal.key.is_none(), "a trip is not one of the key's recent errors");
    }
    let forged_refusal = run(&forged, &[]).expect_err("forged");
    assert!(!forged_refusal.tripped(), "a wrong secret proves nothing");
    assert_eq!(forged_refusal.reply, unknown_refusal.reply);
}

/// `verify` and `whoami` answer a canary like an unknown key too, and hand the runtime its trip to log: for
/// `verify`, with the client address the caller names; a forged secret for a canary's id is no trip.
#[test]
fn verify_and_whoami_of_a_canary_answer_unknown_and_owe_its_trip() {
    let h = Harness::new();
    let caller = verifier_key(&h);
    let canary = stored(&h, Environment::Live, None, |r| r.canary = true);
    let unknown = ApiKey::generate(Environment::Live).expect("randomness").expose();
    let forged = canary.parse::<ApiKey>().unwrap().with_new_secret().unwrap().expose();
    let verified = |key: &str| {
        let req = request("POST", "/v1/verify")
            .bearer(&caller)
            .json(json!({"key": key, "client_ip": "198.51.100.7"}))
            .header("cf-connecting-ip", "10.0.0.1");
        block_on(gateway::verify(&h.memory, &req, &h.config, h.now()))
    };
    let asked = |key: &str| {
        let req = request("GET", "/v1/whoami").bearer(key).header("cf-connecting-ip", "203.0.113.9");
        block_on(gateway::whoami(&h.memory, &req, &h.config, h.now()))
    };
    let (canary_verified, unknown_verified) = (verified(&canary), verified(&unknown));
    assert_eq!(canary_verified.reply, unknown_verified.reply, "indistinguishable");
    let trip = canary_verified.trip.expect("a trip");
    assert_eq!(trip.owner, "org_a");
    assert_eq!(trip.line.key_id, canary.parse::<ApiKey>().unwrap().id.to_string());
    assert_eq!(
        (trip.line.method.as_str(), trip.line.path.as_str(), trip.line.code.as_deref()),
        ("POST", "/v1/verify", Some("NOT_FOUND"))
    );
    assert_eq!(trip.line.client_ip.as_deref(), Some("198.51.100.7"), "the client the caller names");
    assert!(unknown_verified.trip.is_none() && verified(&forged).trip.is_none());

    let (canary_asked, unknown_asked) = (asked(&canary), asked(&unknown));
    assert_eq!(canary_asked.reply, unknown_asked.reply, "indistinguishable");
    let trip = canary_asked.trip.expect("a trip");
    assert_eq!((trip.line.path.as_str(), trip.line.client_ip.as_deref()), ("/v1/whoami", Some("203.0.113.9")));
    assert!(unknown_asked.trip.is_none() && asked(&forged).trip.is_none());
}
