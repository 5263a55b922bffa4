//! Roles (Unkey's roles): named permission sets an organization defines once and gives to many keys. A key's
//! roles grant at the gateway as its own permissions do; changing a role changes every key that holds it, within
//! the revocation bound, through the organization's object, the keys' objects and KV of a real workerd.

use keygate_e2e::{Console, Value, eventually, gateway, json, shared};

fn owner() -> &'static Console {
    Console::shared_owner()
}

/// A role name of this run (the shared Worker outlives one test).
fn role_name(what: &str) -> String {
    format!("{what}-{}", std::process::id())
}

fn roles(console: &Console) -> Vec<Value> {
    let answer = console.call("GET", "/roles", None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["roles"].as_array().cloned().unwrap_or_default()
}

fn post(key: &str, path: &str) -> u16 {
    gateway(&shared().base, "POST", path, key).status
}

#[test]
fn a_role_change_reaches_every_key_that_holds_it_at_the_gateway() {
    let name = role_name("streamer");
    let defined = owner().call(
        "PUT",
        &format!("/roles/{name}"),
        Some(&json!({"description": "Reads data", "permissions": ["data:read"]})),
    );
    assert_eq!(defined.status, 200, "{}", defined.body);
    let role = defined.json();
    assert_eq!((role["name"].as_str(), role["keys"].as_u64()), (Some(name.as_str()), Some(0)));
    assert_eq!(role["permissions"], json!(["data:read"]));

    let spec = json!({"name": "role holder", "environment": "live", "roles": [name]});
    let (first, first_id, created) = owner().create_key(&spec);
    assert_eq!(created["record"]["roles"], json!([name]));
    assert_eq!(created["record"]["permissions"], json!([]), "a role's permissions are not copied into the key's own");
    let (second, second_id, _) = owner().create_key(&spec);
    let (plain, _, _) = owner().create_key(&json!({"name": "no role", "environment": "live"}));

    // The role grants data:read and nothing else.
    let echo = gateway(&shared().base, "GET", "/data/x", &first);
    assert_eq!(echo.status, 200, "{}", echo.body);
    assert_eq!(echo.json()["permissions"], json!(["data:read"]));
    assert_eq!(echo.json()["roles"], json!([name]));
    assert_eq!(post(&first, "/streams/x"), 403);
    assert_eq!(gateway(&shared().base, "GET", "/data/x", &plain).status, 403);
    // A service using /v1/verify learns the roles and the permissions they grant in the same answer.
    let verified = owner().verify(&json!({"key": first, "permission": "data:read"}));
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!((verified.json()["valid"].as_bool(), &verified.json()["roles"]), (Some(true), &json!([name])));
    assert_eq!(verified.json()["permissions"], json!(["data:read"]));

    // Widening the role widens both keys that hold it (and only them).
    let widened = owner().call(
        "PUT",
        &format!("/roles/{name}"),
        Some(&json!({"description": "Reads and writes data", "permissions": ["data:read", "data:write"]})),
    );
    assert_eq!(widened.status, 200, "{}", widened.body);
    assert_eq!(widened.json()["keys"], 2);
    eventually("both holders may write", || post(&first, "/streams/x") == 200 && post(&second, "/streams/x") == 200);
    assert_eq!(post(&plain, "/streams/x"), 403);
    let key = owner().call("GET", &format!("/keys/{second_id}"), None).json();
    assert_eq!(key["roles"], json!([name]));

    // Narrowing it takes the permission back.
    let narrowed = owner().call("PUT", &format!("/roles/{name}"), Some(&json!({"permissions": ["data:write"]})));
    assert_eq!(narrowed.status, 200, "{}", narrowed.body);
    eventually("the holders lost data:read", || {
        gateway(&shared().base, "GET", "/data/x", &first).status == 403
            && gateway(&shared().base, "GET", "/data/x", &second).status == 403
    });

    // A role some key holds cannot be deleted; taking it from the keys frees it.
    let refused = owner().call("DELETE", &format!("/roles/{name}"), None).expect_problem(409, "ROLE_IN_USE");
    assert!(refused["detail"].as_str().unwrap_or_default().contains("2 keys"), "{refused}");
    for id in [&first_id, &second_id] {
        let edited = owner().call("PATCH", &format!("/keys/{id}"), Some(&json!({"roles": []})));
        assert_eq!(edited.status, 200, "{}", edited.body);
        assert_eq!(edited.json()["roles"], json!([]));
    }
    eventually("the keys lost the role", || post(&first, "/streams/x") == 403 && post(&second, "/streams/x") == 403);
    eventually("the role is free", || roles(owner()).iter().any(|r| r["name"] == name.as_str() && r["keys"] == 0));
    let deleted = owner().call("DELETE", &format!("/roles/{name}"), None);
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert!(!roles(owner()).iter().any(|r| r["name"] == name.as_str()));

    // The audit log says who changed the role and how.
    let audit = owner().call("GET", "/audit", None).json();
    let events: Vec<&Value> =
        audit["events"].as_array().unwrap().iter().filter(|e| e["target"] == name.as_str()).collect();
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["delete_role", "change_role", "change_role", "change_role"], "{events:?}");
    assert!(events[1]["detail"].as_str().unwrap_or_default().contains("data:write"), "{events:?}");
}

/// Naming a role the organization does not define, or a malformed one, is refused by create and edit alike and
/// changes nothing; so are malformed role definitions.
#[test]
fn an_unknown_or_malformed_role_is_refused_and_changes_nothing() {
    let missing = role_name("never-defined");
    let spec = json!({"name": "hopeful", "environment": "live", "roles": [missing]});
    let before = owner().call("GET", "/keys", None).json()["keys"].as_array().map(Vec::len);
    let refused = owner().call("POST", "/keys", Some(&spec)).expect_problem(422, "VALIDATION_FAILED");
    assert_eq!(refused["field"], "roles", "{refused}");
    assert_eq!(owner().call("GET", "/keys", None).json()["keys"].as_array().map(Vec::len), before);
    let bad = json!({"name": "hopeful", "environment": "live", "roles": ["Not A Role"]});
    assert_eq!(owner().call("POST", "/keys", Some(&bad)).expect_problem(422, "VALIDATION_FAILED")["field"], "roles[0]");
    let many: Vec<String> = (0..17).map(|n| format!("r{n}")).collect();
    let too_many = json!({"name": "hopeful", "environment": "live", "roles": many});
    owner().call("POST", "/keys", Some(&too_many)).expect_problem(422, "VALIDATION_FAILED");

    let (_, id, _) =
        owner().create_key(&json!({"name": "steady", "environment": "live", "permissions": ["data:read"]}));
    let edit = json!({"roles": [missing], "name": "renamed"});
    owner().call("PATCH", &format!("/keys/{id}"), Some(&edit)).expect_problem(422, "VALIDATION_FAILED");
    let key = owner().call("GET", &format!("/keys/{id}"), None).json();
    assert_eq!((key["name"].as_str(), &key["roles"]), (Some("steady"), &json!([])), "nothing changed: {key}");

    for (path, body) in [
        ("/roles/Not%20A%20Role".to_owned(), json!({"permissions": ["data:read"]})),
        (format!("/roles/{}", role_name("x")), json!({"permissions": ["NOT A PERMISSION"]})),
        (format!("/roles/{}", role_name("x")), json!({"permissions": ["data:read"], "keys": 5})),
        (format!("/roles/{}", role_name("x")), json!({"description": "x".repeat(201), "permissions": []})),
        (format!("/roles/{}", role_name("x")), json!({"description": "line\nbreak", "permissions": []})),
        (format!("/roles/{}", role_name("x")), json!({"description": "no permissions field"})),
    ] {
        let answer = owner().call("PUT", &path, Some(&body));
        assert!(matches!(answer.status, 400 | 422), "{path} {body}: {} {}", answer.status, answer.body);
        assert_eq!(answer.header("content-type"), Some("application/problem+json"));
    }
    assert!(!roles(owner()).iter().any(|r| r["name"] == role_name("x").as_str()), "nothing was defined");
    owner().call("DELETE", &format!("/roles/{missing}"), None).expect_problem(404, "NOT_FOUND");
}
