//! The gateway's order of checks over HTTP, one request per row.

use keygate_e2e::{Console, Value, eventually, gateway, json, post_json, request, shared};
use keygate_shared::{ApiKey, Environment};

fn owner() -> &'static Console {
    let owner = Console::shared_owner();
    owner.project("acme-shop");
    owner
}

fn key(spec: Value) -> (String, String) {
    let (key, id, _) = owner().create_key(&spec);
    (key, id)
}

fn reader() -> (String, String) {
    key(json!({"name": "reader", "environment": "live", "project": "acme-shop", "permissions": ["data:read"]}))
}

#[test]
fn missing_credential_is_401_with_a_bearer_challenge() {
    let answer = request("GET", &shared().url("/data/x"), &[], None);
    answer.expect_problem(401, "MISSING_CREDENTIAL");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer realm=\"keygate\""));
}

#[test]
fn malformed_and_bad_checksum_are_invalid_format() {
    let (good, _) = reader();
    let mut typo = good.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });
    for bad in ["kg_live_nope", "sk_live_123", typo.as_str()] {
        let answer = gateway(&shared().base, "GET", "/data/x", bad);
        answer.expect_problem(401, "INVALID_FORMAT");
        assert!(answer.header("www-authenticate").unwrap_or_default().contains("invalid_token"));
    }
}

#[test]
fn a_staging_key_fails_on_the_production_api() {
    let (test_key, _) = key(json!({"name": "staging", "environment": "test", "permissions": ["data:read"]}));
    gateway(&shared().base, "GET", "/data/x", &test_key).expect_problem(401, "WRONG_ENVIRONMENT");
}

#[test]
fn a_project_label_must_match_the_keys_project() {
    let (labelled, _) = reader();
    // Keys of a project are handed out with its label (`acme-shop:kg_live_…`); the bare key works too.
    assert!(labelled.starts_with("acme-shop:kg_live_"), "{labelled}");
    let good = labelled.rsplit(':').next().unwrap().to_owned();
    assert_eq!(gateway(&shared().base, "GET", "/data/x", &good).status, 200);
    gateway(&shared().base, "GET", "/data/x", &format!("other-shop:{good}")).expect_problem(401, "WRONG_PROJECT");
    let answer = gateway(&shared().base, "GET", "/data/x", &format!("acme-shop:line-3:{good}"));
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn unknown_keys_are_not_found_without_saying_more() {
    let made_up = ApiKey::generate(Environment::Live).unwrap().expose();
    let body = gateway(&shared().base, "GET", "/data/x", &made_up).expect_problem(401, "NOT_FOUND");
    assert!(!body.to_string().contains(&made_up[8..22]), "the body must not echo the id: {body}");
}

#[test]
fn revoked_keys_are_refused_at_once() {
    let (k, id) = reader();
    assert_eq!(gateway(&shared().base, "GET", "/data/x", &k).status, 200);
    assert_eq!(owner().action(&id, "revoke").status, 200);
    gateway(&shared().base, "GET", "/data/x", &k).expect_problem(401, "REVOKED");
}

#[test]
fn expired_keys_have_their_own_code() {
    let soon = keygate_shared::Timestamp(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 + 1500,
    );
    let (k, _) = key(
        json!({"name": "short-lived", "environment": "live", "permissions": ["data:read"], "expires_at": soon.to_rfc3339()}),
    );
    assert_eq!(gateway(&shared().base, "GET", "/data/x", &k).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let answer = gateway(&shared().base, "GET", "/data/x", &k);
    answer.expect_problem(401, "EXPIRED");
}

#[test]
fn a_missing_permission_is_insufficient_scope_and_logged_without_the_key() {
    let (k, id) = reader();
    let answer = gateway(&shared().base, "POST", "/streams/s1", &k);
    answer.expect_problem(403, "INSUFFICIENT_PERMISSIONS");
    assert!(answer.header("www-authenticate").unwrap_or_default().contains("scope=\"data:write\""));
    // The refusal shows in the key's recent errors (written after the answer), never with the credential.
    let mut errors = Value::Null;
    for _ in 0..40 {
        errors = owner().call("GET", &format!("/keys/{id}/errors"), None).json();
        if errors["errors"].as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let first = &errors["errors"][0];
    assert_eq!(first["code"], "INSUFFICIENT_PERMISSIONS", "{errors}");
    assert_eq!(first["path"], "/streams/s1");
    let secret_part = &k[k.len() - 38..];
    assert!(!errors.to_string().contains(secret_part), "{errors}");
}

#[test]
fn another_organization_is_forbidden() {
    let (k, _) = reader();
    let answer = request(
        "GET",
        &shared().url("/data/x"),
        &[("authorization", &format!("Bearer {k}")), ("keygate-org", "org_SOMEONEELSE00")],
        None,
    );
    answer.expect_problem(403, "FORBIDDEN_ORGANIZATION");
    let own = request(
        "GET",
        &shared().url("/data/x"),
        &[("authorization", &format!("Bearer {k}")), ("keygate-org", &owner().organization)],
        None,
    );
    assert_eq!(own.status, 200, "{}", own.body);
}

#[test]
fn customers_outside_the_keys_list_are_refused() {
    let (k, _) = key(
        json!({"name": "one customer", "environment": "live", "permissions": ["data:read"], "customers": ["cus_1"]}),
    );
    let with = |customer: &str| {
        request(
            "GET",
            &shared().url("/data/x"),
            &[("authorization", &format!("Bearer {k}")), ("keygate-customer", customer)],
            None,
        )
    };
    with("cus_2").expect_problem(403, "CUSTOMER_NOT_ALLOWED");
    assert_eq!(with("cus_1").status, 200);
}

#[test]
fn a_pass_echoes_the_identity_when_no_origin_is_configured() {
    let (k, id) = reader();
    let answer = gateway(&shared().base, "GET", "/data/items", &k);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["key_id"], id.as_str());
    assert_eq!(body["project"], "acme-shop");
    assert_eq!(body["organization"], owner().organization.as_str());
    assert_eq!(body["permissions"], json!(["data:read"]));
    // x-api-key works the same way.
    let answer = request("GET", &shared().url("/data/items"), &[("x-api-key", &k)], None);
    assert_eq!(answer.status, 200);
}

#[test]
fn usage_and_last_used_are_counted() {
    let (k, id) = reader();
    for _ in 0..3 {
        assert_eq!(gateway(&shared().base, "GET", "/data/x", &k).status, 200);
    }
    let mut usage = Value::Null;
    for _ in 0..40 {
        usage = owner().call("GET", &format!("/keys/{id}/usage"), None).json();
        if usage["total"] == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(usage["total"], 3, "{usage}");
    assert!(usage["last_used_at"].is_string(), "{usage}");
    assert_eq!(usage["hourly"].as_array().map(Vec::len), Some(24));
    assert_eq!(usage["daily"].as_array().map(Vec::len), Some(14));
}

#[test]
fn legacy_pairs_need_both_halves() {
    let (_, _, body) = owner()
        .create_key(&json!({"name": "pair", "environment": "live", "permissions": ["data:read"], "kind": "pair"}));
    let api_key = body["api_key"].as_str().unwrap();
    let api_secret = body["api_secret"].as_str().unwrap();
    assert!(body.get("key").is_none(), "a pair is returned as two halves: {body}");
    let url = shared().url("/data/x");
    let both = request("GET", &url, &[("apikey", api_key), ("apisecret", api_secret)], None);
    assert_eq!(both.status, 200, "{}", both.body);
    request("GET", &url, &[("apikey", api_key)], None).expect_problem(400, "INCOMPLETE_PAIR");
    request("GET", &url, &[("apikey", api_key), ("apisecret", " ")], None).expect_problem(400, "INCOMPLETE_PAIR");
    request("GET", &url, &[("apisecret", api_secret)], None).expect_problem(400, "INCOMPLETE_PAIR");
}

/// LandingLens retired the secret: a whole key in `apikey` is accepted alone, and with the blank or placeholder
/// `apisecret` LandingEdge sends beside it.
#[test]
fn a_whole_key_in_apikey_needs_no_secret() {
    let (key, _) = reader();
    let url = shared().url("/data/x");
    for secret in [None, Some(""), Some("x"), Some("YOUR_APISECRET")] {
        let mut headers = vec![("apikey", key.as_str())];
        headers.extend(secret.map(|s| ("apisecret", s)));
        let answer = request("GET", &url, &headers, None);
        assert_eq!(answer.status, 200, "apisecret {secret:?}: {}", answer.body);
    }
    // A typo in the whole key is a malformed key, not half a pair.
    let mut typo = key.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });
    request("GET", &url, &[("apikey", typo.as_str())], None).expect_problem(401, "INVALID_FORMAT");
}

#[test]
fn two_different_credentials_are_an_error() {
    let (a, _) = reader();
    let (b, _) = reader();
    let answer =
        request("GET", &shared().url("/data/x"), &[("authorization", &format!("Bearer {a}")), ("x-api-key", &b)], None);
    answer.expect_problem(400, "AMBIGUOUS_CREDENTIAL");
}

#[test]
fn oversized_credential_headers_are_refused_early() {
    let huge = "k".repeat(5000);
    request("GET", &shared().url("/data/x"), &[("x-api-key", &huge)], None).expect_problem(431, "HEADER_TOO_LARGE");
}

#[test]
fn console_tokens_do_not_pass_the_gateway() {
    gateway(&shared().base, "GET", "/data/x", &owner().token).expect_problem(401, "WRONG_PROJECT");
}

/// Unkey's and Zuplo's IP allowlist: a key limited to address ranges passes only for clients in them, as Cloudflare
/// reports the client (`CF-Connecting-IP`); the verify API checks the address its caller names.
#[test]
fn a_key_limited_to_ip_ranges_passes_only_from_them() {
    let (k, id) = key(json!({
        "name": "office only", "environment": "live", "permissions": ["data:read"],
        "allowed_ips": ["203.0.113.0/24", "2001:db8::/32", "203.0.113.9"]
    }));
    let view = owner().call("GET", &format!("/keys/{id}"), None).json();
    assert_eq!(view["allowed_ips"], json!(["203.0.113.0/24", "2001:db8::/32", "203.0.113.9/32"]), "{view}");
    let from = |ip: &str| {
        request(
            "GET",
            &shared().url("/data/x"),
            &[("authorization", &format!("Bearer {k}")), ("cf-connecting-ip", ip)],
            None,
        )
    };
    assert_eq!(from("203.0.113.77").status, 200);
    assert_eq!(from("2001:db8:5::1").status, 200);
    from("198.51.100.1").expect_problem(403, "IP_NOT_ALLOWED");
    from("2001:db9::1").expect_problem(403, "IP_NOT_ALLOWED");

    // /v1/verify: the caller names its client's address.
    let (service, _) = key(json!({"name": "svc", "environment": "live", "permissions": ["keys:verify"]}));
    let verify = |body: Value| {
        keygate_e2e::send(
            "POST",
            &shared().url("/v1/verify"),
            &[("authorization", &format!("Bearer {service}"))],
            &body,
        )
        .json()
    };
    assert_eq!(verify(json!({"key": k, "client_ip": "203.0.113.1"}))["valid"], true);
    assert_eq!(verify(json!({"key": k, "client_ip": "198.51.100.1"}))["code"], "IP_NOT_ALLOWED");
    assert_eq!(verify(json!({"key": k}))["code"], "IP_NOT_ALLOWED", "no address named: refused");

    // The owner lifts the limit: every client passes again (within the revocation bound).
    let lifted = owner().call("PATCH", &format!("/keys/{id}"), Some(&json!({"allowed_ips": []})));
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    eventually("the lifted allowlist", || from("198.51.100.1").status == 200);
}

/// LandingLens's rule, per key: a key locked to its own organization never acts for another one its owner joins.
#[test]
fn a_key_locked_to_its_organization_acts_for_no_other() {
    let sister = owner().new_organization("Sister company").acting_for.expect("an organization id");
    let spec = |own: bool| json!({"name": "locked", "environment": "live", "permissions": ["data:read"], "own_organization_only": own});
    let (locked, locked_id) = key(spec(true));
    let (open, _) = key(spec(false));
    let acting_for = |k: &str, org: &str| {
        request(
            "GET",
            &shared().url("/data/x"),
            &[("authorization", &format!("Bearer {k}")), ("keygate-org", org)],
            None,
        )
    };
    assert_eq!(acting_for(&open, &sister).status, 200, "an open key acts for its owner's other organization");
    acting_for(&locked, &sister).expect_problem(403, "FORBIDDEN_ORGANIZATION");
    assert_eq!(acting_for(&locked, &owner().organization).status, 200);
    assert_eq!(gateway(&shared().base, "GET", "/data/x", &locked).status, 200);
    assert_eq!(owner().call("GET", &format!("/keys/{locked_id}"), None).json()["own_organization_only"], true);
    // Unlocked by its owner, it acts for the sister organization too.
    let unlocked = owner().call("PATCH", &format!("/keys/{locked_id}"), Some(&json!({"own_organization_only": false})));
    assert_eq!(unlocked.status, 200, "{}", unlocked.body);
    eventually("the unlocked key", || acting_for(&locked, &sister).status == 200);
}

/// Unkey's `remaining`: a key good for so many uses passes them (the gateway, verify), answers 429 `USAGE_EXCEEDED`
/// once they are spent, and is topped up or freed through PATCH. A request refused for another reason uses nothing,
/// and a spent key's 429s are not errors of the key.
#[test]
fn a_usage_limited_key_is_refused_once_its_uses_are_spent() {
    let owner = Console::shared_owner();
    let limit = json!({"uses": 3, "refill": {"amount": 3, "interval": "monthly"}});
    let (key, id, created) = owner.create_key(&json!({
        "name": "three uses", "environment": "live", "permissions": ["data:read"], "usage_limit": limit
    }));
    assert_eq!(created["record"]["usage_limit"], limit, "{created}");
    assert_eq!(created["record"]["usage"]["remaining"], 3, "{created}");
    let (service, _, _) =
        owner.create_key(&json!({"name": "verifier", "environment": "live", "permissions": ["keys:verify"]}));
    let auth = format!("Bearer {key}");
    let get = || request("GET", &shared().url("/data/items"), &[("authorization", &auth)], None);
    let verify = || {
        let url = shared().url("/v1/verify");
        post_json(&url, &[("authorization", &format!("Bearer {service}"))], &json!({"key": key})).json()
    };
    let forbidden = request("POST", &shared().url("/streams/s"), &[("authorization", &auth)], Some("{}"));
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    let first = get();
    assert_eq!((first.status, first.header("keygate-remaining")), (200, Some("2")), "{}", first.body);
    let verified = verify();
    assert_eq!((verified["valid"].clone(), verified["remaining"].clone()), (json!(true), json!(1)), "{verified}");
    assert_eq!(get().header("keygate-remaining"), Some("0"));
    let spent = get();
    spent.expect_problem(429, "USAGE_EXCEEDED");
    assert_eq!(spent.header("keygate-remaining"), Some("0"));
    let verified = verify();
    assert_eq!((verified["code"].clone(), verified["remaining"].clone()), (json!("USAGE_EXCEEDED"), json!(0)));
    assert_eq!(owner.call("GET", &format!("/keys/{id}"), None).json()["usage"]["remaining"], 0);

    // Topped up: naming the limit starts its count again.
    let topped = owner.call("PATCH", &format!("/keys/{id}"), Some(&json!({"usage_limit": {"uses": 2}})));
    assert_eq!(topped.status, 200, "{}", topped.body);
    assert_eq!(topped.json()["usage"]["remaining"], 2, "{}", topped.body);
    assert_eq!(get().header("keygate-remaining"), Some("1"));
    // Freed: no limit, no count.
    let freed = owner.call("PATCH", &format!("/keys/{id}"), Some(&json!({"usage_limit": null})));
    assert_eq!(freed.status, 200, "{}", freed.body);
    let unlimited = get();
    assert_eq!((unlimited.status, unlimited.header("keygate-remaining")), (200, None));
    let errors = owner.call("GET", &format!("/keys/{id}/errors"), None).json();
    let statuses: Vec<u64> = errors["errors"].as_array().unwrap().iter().filter_map(|e| e["status"].as_u64()).collect();
    assert!(!statuses.contains(&429), "a spent key's refusals are not its errors: {errors}");
}

/// Instill's per-organization usage: requests a key makes for another of its owner's organizations (`Keygate-Org`)
/// are counted for that organization, on the key's usage and in its organization's report (owners and admins).
#[test]
fn usage_is_reported_by_the_organization_each_request_acted_for() {
    let home = owner().new_organization("Usage home");
    let sister = owner().new_organization("Usage sister").acting_for.expect("an organization id");
    let (key, id, _) = home.create_key(&json!({"name": "both", "environment": "live", "permissions": ["data:read"]}));
    let home_id = home.acting_for.clone().expect("an organization id");
    let url = shared().url("/data/x");
    let acting =
        |org: &str| request("GET", &url, &[("authorization", &format!("Bearer {key}")), ("keygate-org", org)], None);
    // The owner's new organization reaches the gateway when the user's object has written it to KV and the isolate's
    // cached list has expired (a refusal counts no usage).
    eventually("the sister organization at the gateway", || acting(&sister).status == 200);
    for org in [&sister, &home_id] {
        let answer = acting(org);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert_eq!(gateway(&shared().base, "GET", "/data/x", &key).status, 200, "no Keygate-Org: the key's own");
    // Most first; a tie in the organizations' order.
    let mut expected = [(sister.clone(), 2), (home_id.clone(), 2)];
    expected.sort();
    let expected: Value = expected.iter().map(|(o, n)| json!({"organization": o, "requests": n})).collect();
    let mut usage = Value::Null;
    eventually("the key's usage by organization", || {
        usage = home.call("GET", &format!("/keys/{id}/usage"), None).json();
        usage["by_organization"] == expected
    });
    let mut report = Value::Null;
    eventually("the organization's usage report", || {
        report = home.call("GET", "/usage", None).json();
        report["by_organization"] == expected
    });
    assert_eq!(usage["total"], 4, "{usage} {report}");
}
