//! Identities (Unkey's identities, Zuplo's consumers): the keys of one customer share its name, its metadata and
//! one rate limit, counted in the identity's own Durable Object by a real workerd; a changed identity reaches every
//! one of its keys.

use keygate_e2e::{Console, Value, eventually, gateway, json, shared};

fn owner() -> &'static Console {
    Console::shared_owner()
}

fn get(key: &str) -> keygate_e2e::Answer {
    gateway(&shared().base, "GET", "/data/x", key)
}

#[test]
fn the_keys_of_an_identity_share_its_name_metadata_and_one_rate_limit() {
    let external = format!("cus-shared-{}", std::process::id());
    let created = owner().call(
        "POST",
        "/identities",
        Some(&json!({
            "external_id": external, "name": "Acme Corp", "meta": {"plan": "pro"},
            "rate_limit": {"requests": 3, "window_seconds": 60}
        })),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let identity = created.json();
    let id = identity["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("idn_"), "{identity}");
    assert_eq!((identity["keys"].as_u64(), identity["name"].as_str()), (Some(0), Some("Acme Corp")));

    let spec = json!({"name": "acme robot", "environment": "live", "permissions": ["data:read"], "identity": id});
    let (first, first_id, made) = owner().create_key(&spec);
    assert_eq!(made["record"]["identity"]["external_id"], external.as_str());
    let (second, second_id, _) = owner().create_key(&spec);
    let (plain, _, _) =
        owner().create_key(&json!({"name": "no identity", "environment": "live", "permissions": ["data:read"]}));

    // One limit of 3 for both keys: a request of each, a verify of the first, then both are refused.
    let echo = get(&first);
    assert_eq!(echo.status, 200, "{}", echo.body);
    assert_eq!(echo.json()["identity"]["external_id"], external.as_str());
    assert_eq!(echo.json()["identity"]["meta"], json!({"plan": "pro"}));
    assert_eq!(get(&second).status, 200);
    let verified = owner().verify(&json!({"key": first, "permission": "data:read"}));
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.json()["valid"], true, "{}", verified.body);
    assert_eq!(verified.json()["identity"]["name"], "Acme Corp");
    for key in [&second, &first] {
        let refused = get(key);
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert_eq!(refused.json()["code"], "RATE_LIMITED");
        assert!(refused.header("retry-after").is_some());
    }
    assert_eq!(get(&plain).status, 200, "a key of no identity is not counted there");
    let listed = owner().call("GET", &format!("/identities/{external}"), None).json();
    assert_eq!(listed["keys"], 2, "{listed}");

    // Raising the shared limit and changing the metadata reach both keys.
    let changed = owner().call(
        "PATCH",
        &format!("/identities/{id}"),
        Some(&json!({"rate_limit": {"requests": 100, "window_seconds": 60}, "meta": {"plan": "enterprise"}})),
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    eventually("both keys pass again under the new limit", || get(&first).status == 200 && get(&second).status == 200);
    eventually("the new metadata is forwarded", || {
        get(&second).json()["identity"]["meta"] == json!({"plan": "enterprise"})
    });
    let key = owner().call("GET", &format!("/keys/{first_id}"), None).json();
    assert_eq!(key["identity"]["rate_limit"]["requests"], 100, "{key}");

    // An identity with keys cannot be deleted; once they leave it, it can.
    let refused = owner().call("DELETE", &format!("/identities/{id}"), None).expect_problem(409, "IDENTITY_IN_USE");
    assert!(refused["detail"].as_str().unwrap_or_default().contains("2 keys"), "{refused}");
    for key_id in [&first_id, &second_id] {
        let left = owner().call("PATCH", &format!("/keys/{key_id}"), Some(&json!({"identity": null})));
        assert_eq!(left.status, 200, "{}", left.body);
        assert_eq!(left.json()["identity"], Value::Null);
    }
    eventually("the identity has no keys", || {
        owner().call("GET", &format!("/identities/{id}"), None).json()["keys"] == 0
    });
    assert_eq!(owner().call("DELETE", &format!("/identities/{id}"), None).status, 204);
    owner().call("GET", &format!("/identities/{id}"), None).expect_problem(404, "NOT_FOUND");
    assert_eq!(owner().audit_actions(&id), ["delete_identity", "update_identity", "create_identity"]);
}

/// A key naming an identity the organization does not have, or a malformed one, is refused and nothing changes;
/// so are malformed identities and a second identity with the same external id.
#[test]
fn an_unknown_or_malformed_identity_is_refused_and_changes_nothing() {
    for identity in [json!("idn_AAAAAAAAAAAAAA"), json!("cus_123"), json!(42)] {
        let spec = json!({"name": "hopeful", "environment": "live", "identity": identity});
        let answer = owner().call("POST", "/keys", Some(&spec));
        assert!(matches!(answer.status, 400 | 422), "{identity}: {} {}", answer.status, answer.body);
    }
    let (_, key_id, _) = owner().create_key(&json!({"name": "loner", "environment": "live"}));
    let edit = json!({"identity": "idn_AAAAAAAAAAAAAA", "name": "renamed"});
    let refused =
        owner().call("PATCH", &format!("/keys/{key_id}"), Some(&edit)).expect_problem(422, "VALIDATION_FAILED");
    assert_eq!(refused["field"], "identity");
    assert_eq!(owner().call("GET", &format!("/keys/{key_id}"), None).json()["name"], "loner");

    let external = format!("cus-dup-{}", std::process::id());
    assert_eq!(owner().call("POST", "/identities", Some(&json!({"external_id": external}))).status, 201);
    owner().call("POST", "/identities", Some(&json!({"external_id": external}))).expect_problem(409, "CONFLICT");
    for body in [
        json!({"external_id": ""}),
        json!({"external_id": "has space"}),
        json!({"external_id": "x".repeat(129)}),
        json!({"external_id": "ok-1", "meta": [1, 2]}),
        json!({"external_id": "ok-2", "rate_limit": {"requests": 0, "window_seconds": 60}}),
        json!({"external_id": "ok-3", "keys": 5}),
        json!({"name": "no external id"}),
    ] {
        let answer = owner().call("POST", "/identities", Some(&body));
        assert!(matches!(answer.status, 400 | 422), "{body}: {} {}", answer.status, answer.body);
        assert_eq!(answer.header("content-type"), Some("application/problem+json"));
    }
    let page = owner().call("GET", "/identities", None).json();
    assert!(!page.to_string().contains("ok-"), "nothing was created: {page}");
    owner().call("PATCH", &format!("/identities/{external}"), Some(&json!({}))).expect_problem(400, "EMPTY_UPDATE");
    owner().call("PATCH", "/identities/cus-never", Some(&json!({"name": "x"}))).expect_problem(404, "NOT_FOUND");
}
