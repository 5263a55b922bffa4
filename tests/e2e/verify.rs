//! `POST /v1/verify` for services outside the gateway, and `GET /v1/whoami`.

use keygate_e2e::{Console, json, post_json, request, shared};
use keygate_shared::{ApiKey, Environment};

fn service_token(owner: &Console) -> String {
    owner.create_key(&json!({"name": "verifier service", "environment": "live", "permissions": ["keys:verify"]})).0
}

#[test]
fn verify_answers_codes_and_the_keys_details() {
    let owner = Console::shared_owner();
    owner.project("acme-shop");
    let token = service_token(owner);
    let auth = format!("Bearer {token}");
    let (key, id, _) = owner.create_key(&json!({
        "name": "customer key", "environment": "live", "project": "acme-shop", "permissions": ["telemetry:write"],
        "rate_limit": {"requests": 100, "window_seconds": 60}
    }));
    let url = shared().url("/v1/verify");
    let valid = post_json(&url, &[("authorization", &auth)], &json!({"key": key, "permission": "telemetry:write"}));
    assert_eq!(valid.status, 200, "{}", valid.body);
    let body = valid.json();
    assert_eq!(body["valid"], true);
    assert_eq!(body["code"], "VALID");
    assert_eq!(body["key_id"], id.as_str());
    assert_eq!(body["project"], "acme-shop");
    assert_eq!(body["environment"], "live");
    assert_eq!(body["permissions"], json!(["telemetry:write"]));
    assert_eq!(body["rate_limit"]["limit"], 100);
    assert_eq!(body["rate_limit"]["remaining"], 99, "verify counts against the key's limit");

    let cases = [
        (json!({"key": key, "permission": "customers:read"}), "INSUFFICIENT_PERMISSIONS"),
        (json!({"key": "kg_live_garbage"}), "INVALID_FORMAT"),
        (json!({"key": ApiKey::generate(Environment::Live).unwrap().expose()}), "NOT_FOUND"),
        (json!({"key": ApiKey::generate(Environment::Dev).unwrap().expose()}), "WRONG_ENVIRONMENT"),
        (json!({"key": key, "organization": "org_OTHER0000000"}), "FORBIDDEN_ORGANIZATION"),
    ];
    for (request_body, code) in cases {
        let answer = post_json(&url, &[("authorization", &auth)], &request_body);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let body = answer.json();
        assert_eq!(body["valid"], false);
        assert_eq!(body["code"], code, "{request_body}");
        assert!(body.get("key_id").is_none(), "no details for keys that failed: {body}");
    }
    assert_eq!(owner.action(&id, "revoke").status, 200);
    let revoked = post_json(&url, &[("authorization", &auth)], &json!({"key": key})).json();
    assert_eq!(revoked["code"], "REVOKED");
}

#[test]
fn verify_needs_a_service_token_with_keys_verify() {
    let owner = Console::shared_owner();
    let url = shared().url("/v1/verify");
    post_json(&url, &[], &json!({"key": "x"})).expect_problem(401, "MISSING_CREDENTIAL");
    let (plain, _, _) =
        owner.create_key(&json!({"name": "no verify", "environment": "live", "permissions": ["data:read"]}));
    post_json(&url, &[("authorization", &format!("Bearer {plain}"))], &json!({"key": "x"}))
        .expect_problem(403, "INSUFFICIENT_PERMISSIONS");
    let token = service_token(owner);
    let bad = request("POST", &url, &[("authorization", &format!("Bearer {token}"))], Some("{not json"));
    bad.expect_problem(400, "INVALID_BODY");
}

#[test]
fn whoami_recovers_a_keys_project() {
    let owner = Console::shared_owner();
    owner.project("acme-shop");
    let (key, id, _) = owner.create_key(
        &json!({"name": "which project?", "environment": "live", "project": "acme-shop", "permissions": []}),
    );
    let answer = request("GET", &shared().url("/v1/whoami"), &[("x-api-key", &key)], None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["key_id"], id.as_str());
    assert_eq!(body["name"], "which project?");
    assert_eq!(body["project"], "acme-shop");
    assert_eq!(body["environment"], "live");
    request("GET", &shared().url("/v1/whoami"), &[], None).expect_problem(401, "MISSING_CREDENTIAL");
}

#[test]
fn verify_and_whoami_count_in_the_keys_usage() {
    let owner = Console::shared_owner();
    let token = service_token(owner);
    let (key, id, _) =
        owner.create_key(&json!({"name": "counted", "environment": "live", "permissions": ["data:read"]}));
    let url = shared().url("/v1/verify");
    for _ in 0..2 {
        let answer = post_json(&url, &[("authorization", &format!("Bearer {token}"))], &json!({"key": key}));
        assert_eq!(answer.json()["code"], "VALID", "{}", answer.body);
    }
    assert_eq!(request("GET", &shared().url("/v1/whoami"), &[("x-api-key", &key)], None).status, 200);
    // Usage of keys without a rate limit is reported in batches, at most once a second per key.
    let mut usage = keygate_e2e::Value::Null;
    for _ in 0..40 {
        usage = owner.call("GET", &format!("/keys/{id}/usage"), None).json();
        if usage["total"] == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(usage["total"], 3, "two verifications and one whoami: {usage}");
}
