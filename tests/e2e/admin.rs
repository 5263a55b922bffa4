//! The admin API: bootstrap, the key lifecycle story with its audit trail, ownership, organizations, validation.

use keygate_e2e::{Console, Value, bootstrap_token, gateway, json, post_json, request, shared};

#[test]
fn bootstrap_works_once() {
    let _ = Console::shared_owner();
    let again = post_json(
        &shared().url("/admin/v1/bootstrap"),
        &[("authorization", &format!("Bearer {}", bootstrap_token()))],
        &json!({}),
    );
    again.expect_problem(409, "ALREADY_BOOTSTRAPPED");
    let wrong = post_json(&shared().url("/admin/v1/bootstrap"), &[("authorization", "Bearer nope")], &json!({}));
    assert_eq!(wrong.status, 401, "{}", wrong.body);
}

#[test]
fn bad_console_tokens_are_refused_clearly() {
    let url = shared().url("/admin/v1/keys");
    let none = request("GET", &url, &[], None).expect_problem(401, "MISSING_CREDENTIAL");
    assert!(none["detail"].as_str().unwrap().contains("console token"));
    let made_up = keygate_shared::ApiKey::generate(keygate_shared::Environment::Live).unwrap().expose();
    let bad =
        request("GET", &url, &[("authorization", &format!("Bearer {made_up}"))], None).expect_problem(401, "NOT_FOUND");
    assert!(bad["detail"].as_str().unwrap().contains("console token is not valid"), "{bad}");
    // An ordinary API key is not a console token.
    let (key, _, _) =
        Console::shared_owner().create_key(&json!({"name": "api", "environment": "live", "permissions": ["admin:*"]}));
    request("GET", &url, &[("authorization", &format!("Bearer {key}"))], None).expect_problem(401, "WRONG_PROJECT");
}

fn audit_actions(console: &Console, id: &str) -> Vec<String> {
    let mut actions = console.audit_actions(id);
    actions.reverse();
    actions
}

#[test]
fn the_key_lifecycle_story() {
    let owner = Console::shared_owner();
    let base = shared().base.clone();
    owner.project("story");
    let (key, id, created) = owner.create_key(&json!({"name": "Main Website Integration", "environment": "live", "project": "story", "permissions": ["data:read"]}));
    assert_eq!(created["record"]["start"], format!("kg_live_{id}"));
    assert_eq!(created["record"]["status"], "active");
    assert!(!created["record"].to_string().contains(&key[key.len() - 38..]), "the view never holds the secret");
    assert_eq!(gateway(&base, "GET", "/data/1", &key).status, 200);
    let session = owner.call("GET", "/session", None).json();
    assert!(session["known_permissions"].as_array().unwrap().contains(&json!("data:read")), "{session}");

    // Rename.
    let renamed = owner.call("PATCH", &format!("/keys/{id}"), Some(&json!({"name": "Website"})));
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.json()["name"], "Website");

    // Revoke: refused at once; activate: accepted again.
    assert_eq!(owner.action(&id, "revoke").json()["status"], "inactive");
    gateway(&base, "GET", "/data/1", &key).expect_problem(401, "REVOKED");
    assert_eq!(owner.action(&id, "activate").json()["status"], "active");
    assert_eq!(gateway(&base, "GET", "/data/1", &key).status, 200);

    // Regenerate: same id and settings, the old secret refused at once, the new one shown once.
    let regenerated = owner.action(&id, "regenerate");
    assert_eq!(regenerated.status, 200, "{}", regenerated.body);
    let body = regenerated.json();
    let new_key = body["key"].as_str().unwrap().to_owned();
    assert_eq!(body["record"]["id"], id.as_str());
    assert_eq!(body["record"]["name"], "Website");
    assert_ne!(new_key, key);
    gateway(&base, "GET", "/data/1", &key).expect_problem(401, "NOT_FOUND");
    assert_eq!(gateway(&base, "GET", "/data/1", &new_key).status, 200);
    assert!(owner.call("GET", &format!("/keys/{id}"), None).json().get("key").is_none());

    // Deactivate is final.
    assert_eq!(owner.action(&id, "deactivate").json()["status"], "deactivated");
    owner.action(&id, "activate").expect_problem(409, "ILLEGAL_TRANSITION");
    gateway(&base, "GET", "/data/1", &new_key).expect_problem(401, "DEACTIVATED");
    // Hidden from the list unless asked for.
    let listed = |q: &str| -> Vec<Value> {
        owner.call("GET", &format!("/keys{q}"), None).json()["keys"].as_array().unwrap().clone()
    };
    assert!(!listed("").iter().any(|k| k["id"] == id.as_str()));
    assert!(listed("?include_deactivated=true").iter().any(|k| k["id"] == id.as_str()));

    // Delete.
    assert_eq!(owner.call("DELETE", &format!("/keys/{id}"), None).status, 204);
    owner.call("GET", &format!("/keys/{id}"), None).expect_problem(404, "NOT_FOUND");
    gateway(&base, "GET", "/data/1", &new_key).expect_problem(401, "NOT_FOUND");

    assert_eq!(
        audit_actions(owner, &id),
        ["create", "rename", "revoke", "activate", "regenerate", "deactivate", "delete"]
    );
}

#[test]
fn active_keys_cannot_be_deleted() {
    let owner = Console::shared_owner();
    let (_, id, _) = owner.create_key(&json!({"name": "keep", "environment": "live", "permissions": []}));
    owner.call("DELETE", &format!("/keys/{id}"), None).expect_problem(409, "ILLEGAL_TRANSITION");
    assert_eq!(owner.call("GET", &format!("/keys/{id}"), None).status, 200);
}

#[test]
fn regeneration_can_keep_the_old_secret_for_a_grace_period() {
    let owner = Console::shared_owner();
    let base = shared().base.clone();
    let (old, id, _) =
        owner.create_key(&json!({"name": "rotating", "environment": "live", "permissions": ["data:read"]}));
    let answer = owner.call("POST", &format!("/keys/{id}/regenerate"), Some(&json!({"grace_seconds": 300})));
    let new = answer.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(gateway(&base, "GET", "/data/x", &old).status, 200, "old secret within the grace period");
    assert_eq!(gateway(&base, "GET", "/data/x", &new).status, 200);
}

#[test]
fn members_see_only_their_own_keys_and_admins_see_all() {
    let owner = Console::shared_owner();
    let alice = owner.invite(&format!("alice-{}@acme.test", std::process::id()), "member");
    let bob = owner.invite(&format!("bob-{}@acme.test", std::process::id()), "member");
    let (_, alices, _) = alice.create_key(&json!({"name": "alice's", "environment": "live", "permissions": []}));
    let ids = |c: &Console| -> Vec<String> {
        c.call("GET", "/keys", None).json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(ids(&alice).contains(&alices));
    assert!(!ids(&bob).contains(&alices), "bob must not list alice's key");
    bob.call("GET", &format!("/keys/{alices}"), None).expect_problem(404, "NOT_FOUND");
    bob.action(&alices, "revoke").expect_problem(404, "NOT_FOUND");
    // The owner lists it and may revoke it, but only alice renames it.
    assert!(ids(owner).contains(&alices));
    owner
        .call("PATCH", &format!("/keys/{alices}"), Some(&json!({"name": "mine now"})))
        .expect_problem(403, "NOT_KEY_OWNER");
    assert_eq!(owner.action(&alices, "revoke").status, 200);
    // Members cannot create projects or invite.
    alice.call("POST", "/projects", Some(&json!({"slug": "nope", "name": "nope"}))).expect_problem(403, "FORBIDDEN");
}

#[test]
fn organizations_never_see_each_other() {
    let owner = Console::shared_owner();
    let (_, acme_key, _) = owner.create_key(&json!({"name": "acme only", "environment": "live", "permissions": []}));
    let created = owner.call("POST", "/organizations", Some(&json!({"name": "Globex"})));
    assert_eq!(created.status, 201, "{}", created.body);
    let globex = created.json()["id"].as_str().unwrap().to_owned();
    let owner_at_globex = Console { acting_for: Some(globex.clone()), ..owner.clone() };
    let gina = owner_at_globex.invite(&format!("gina-{}@globex.test", std::process::id()), "owner");
    let gina = Console { acting_for: None, ..gina };
    assert_eq!(gina.call("GET", "/session", None).json()["organization"]["id"], globex.as_str());
    gina.call("GET", &format!("/keys/{acme_key}"), None).expect_problem(404, "NOT_FOUND");
    gina.action(&acme_key, "revoke").expect_problem(404, "NOT_FOUND");
    assert!(
        gina.call("GET", "/audit", None).json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["organization"] == globex.as_str())
    );
    let gina_at_acme = Console { acting_for: Some(owner.organization.clone()), ..gina.clone() };
    gina_at_acme.call("GET", "/keys", None).expect_problem(403, "FORBIDDEN_ORGANIZATION");
}

#[test]
fn invalid_mutations_are_refused_and_change_nothing() {
    let owner = Console::shared_owner();
    let before = owner.call("GET", "/keys?include_deactivated=true", None).json()["keys"].as_array().unwrap().len();
    let long = "x".repeat(101);
    let cases = [
        (json!({"name": "a", "environment": "prod", "permissions": []}), 422, Some("environment")),
        (json!({"name": "", "environment": "live", "permissions": []}), 422, Some("name")),
        (json!({"name": long, "environment": "live", "permissions": []}), 422, Some("name")),
        (json!({"name": "a", "environment": "live", "permissions": ["Not A Permission"]}), 422, Some("permissions[0]")),
        (
            json!({"name": "a", "environment": "live", "project": "no-such-project", "permissions": []}),
            422,
            Some("project"),
        ),
        (
            json!({"name": "a", "environment": "live", "permissions": [], "rate_limit": {"requests": 0, "window_seconds": 60}}),
            422,
            Some("rate_limit.requests"),
        ),
        (
            json!({"name": "a", "environment": "live", "permissions": [], "rate_limit": {"requests": 10, "window_seconds": 99999999}}),
            422,
            Some("rate_limit.window_seconds"),
        ),
        (
            json!({"name": "a", "environment": "live", "permissions": [], "expires_at": "2001-01-01T00:00:00Z"}),
            422,
            Some("expires_at"),
        ),
        (json!({"name": "a", "environment": "live", "permissions": [], "colour": "blue"}), 422, Some("colour")),
    ];
    for (body, status, field) in cases {
        let answer = owner.call("POST", "/keys", Some(&body));
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert_eq!(answer.header("content-type"), Some("application/problem+json"));
        assert_eq!(answer.json()["field"].as_str(), field, "{body}: {}", answer.body);
    }
    let huge = json!({"name": "a", "environment": "live", "permissions": [], "customers": vec!["c".repeat(100); 1000]});
    assert_eq!(owner.call("POST", "/keys", Some(&huge)).status, 413);
    let malformed = request(
        "POST",
        &format!("{}/admin/v1/keys", owner.base),
        &[("authorization", &format!("Bearer {}", owner.token))],
        Some("{"),
    );
    malformed.expect_problem(400, "INVALID_BODY");
    let after = owner.call("GET", "/keys?include_deactivated=true", None).json()["keys"].as_array().unwrap().len();
    assert_eq!(before, after, "a refused mutation must not create a key");
}

#[test]
fn the_openapi_document_parses_and_lists_every_route() {
    let answer = request("GET", &shared().url("/admin/v1/openapi.json"), &[], None);
    assert_eq!(answer.status, 200);
    let doc = answer.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/admin/v1/bootstrap", "post"),
        ("/admin/v1/keys", "get"),
        ("/admin/v1/keys", "post"),
        ("/admin/v1/keys/{id}", "patch"),
        ("/admin/v1/keys/{id}", "delete"),
        ("/admin/v1/keys/{id}/revoke", "post"),
        ("/admin/v1/keys/{id}/activate", "post"),
        ("/admin/v1/keys/{id}/deactivate", "post"),
        ("/admin/v1/keys/{id}/regenerate", "post"),
        ("/admin/v1/keys/{id}/errors", "get"),
        ("/admin/v1/keys/{id}/usage", "get"),
        ("/admin/v1/projects", "post"),
        ("/admin/v1/members", "get"),
        ("/admin/v1/members/{id}", "delete"),
        ("/admin/v1/invitations", "post"),
        ("/admin/v1/invitations/redeem", "post"),
        ("/admin/v1/sessions", "get"),
        ("/admin/v1/organizations", "post"),
        ("/admin/v1/audit", "get"),
        ("/v1/verify", "post"),
        ("/v1/whoami", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    // The served document is the one every answer of the suite is checked against.
    assert_eq!(answer.body.trim_end(), include_str!("../../control/src/openapi.json").trim_end());
}

/// The check every answer of this suite passes through (`keygate_e2e::openapi::conforms`) refuses answers the
/// document does not allow: a wrong type, a missing required field, a `null` where none may be, a problem without
/// its code. (It would pass anything if it checked nothing.)
#[test]
fn the_openapi_check_refuses_answers_the_document_does_not_allow() {
    use keygate_e2e::{Answer, openapi};
    let json = vec![("content-type".to_owned(), "application/json".to_owned())];
    let problem = vec![("content-type".to_owned(), "application/problem+json".to_owned())];
    let check = |method: &str, path: &str, status: u16, headers: &Vec<(String, String)>, body: &str| {
        let answer = Answer { status, headers: headers.clone(), body: body.to_owned() };
        let url = format!("http://127.0.0.1:1{path}");
        std::panic::catch_unwind(|| openapi::conforms(method, &url, &answer)).is_ok()
    };
    assert!(check("GET", "/admin/v1/keys", 200, &json, r#"{"keys": [], "next_cursor": null}"#));
    assert!(!check("GET", "/admin/v1/keys", 200, &json, r#"{"keys": 5, "next_cursor": null}"#));
    assert!(!check("GET", "/admin/v1/audit", 200, &json, r#"{"next_cursor": null}"#));
    assert!(!check("GET", "/admin/v1/roles", 200, &json, r#"{"roles": [{"name": null}]}"#));
    let found = r#"{"type": "urn:keygate:problem:not-found", "title": "Not found", "status": 404, "detail": "x", "code": "NOT_FOUND"}"#;
    assert!(check("GET", "/admin/v1/keys/F854DS4QEVHXS4", 404, &problem, found));
    assert!(!check("GET", "/admin/v1/keys/F854DS4QEVHXS4", 404, &problem, r#"{"title": "Not found", "status": 404}"#));
    assert!(!check("GET", "/admin/v1/keys/F854DS4QEVHXS4", 404, &json, found), "a problem is problem+json");
    assert!(
        check("GET", "/data/anything", 200, &json, "not JSON at all"),
        "the gateway's own paths are not the document's"
    );
}

/// Instrumental's setting: an organization keeps key creation to its owners and admins. Only an owner changes it,
/// the change is audited, and the keys members already hold keep working.
#[test]
fn key_creation_can_be_kept_to_owners_and_admins() {
    // An organization of its own, so no other test's members are affected.
    let owner = Console::shared_owner().new_organization("Initech");
    let pid = std::process::id();
    let admin = Console { acting_for: None, ..owner.invite(&format!("ada-{pid}@initech.test"), "admin") };
    let member = Console { acting_for: None, ..owner.invite(&format!("mo-{pid}@initech.test"), "member") };
    let spec = json!({"name": "mine", "environment": "live", "permissions": ["data:read"]});
    let (held, _, _) = member.create_key(&spec);

    let settings = |key_creation: &str| json!({"key_creation": key_creation, "leak_response": "revoke"});
    assert_eq!(member.call("GET", "/organization/settings", None).json(), settings("all_members"));
    let restrict = json!({"key_creation": "owners_and_admins"});
    let changed = owner.call("PATCH", "/organization/settings", Some(&restrict));
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.json(), settings("owners_and_admins"), "what is left out stays");
    assert_eq!(member.call("GET", "/session", None).json()["settings"], settings("owners_and_admins"));

    member.call("POST", "/keys", Some(&spec)).expect_problem(403, "FORBIDDEN");
    assert_eq!(admin.call("POST", "/keys", Some(&spec)).status, 201);
    assert_eq!(owner.call("POST", "/keys", Some(&spec)).status, 201);
    assert_eq!(gateway(&owner.base, "GET", "/data/x", &held).status, 200, "a key already held keeps working");
    let events = owner.call("GET", "/audit", None).json();
    let change = events["events"].as_array().unwrap().iter().find(|e| e["action"] == "change_settings").cloned();
    assert!(
        change.as_ref().is_some_and(|e| e["detail"].as_str().unwrap_or_default().contains("owners_and_admins")),
        "{events}"
    );

    let open = json!({"key_creation": "all_members"});
    assert_eq!(owner.call("PATCH", "/organization/settings", Some(&open)).json(), settings("all_members"));
    assert_eq!(member.call("POST", "/keys", Some(&spec)).status, 201);
}

/// LandingLens shows legacy key pairs apart: the list filters by kind, and every key says which it is.
#[test]
fn legacy_key_pairs_are_listed_apart() {
    let owner = Console::shared_owner();
    let spec =
        |kind: &str| json!({"name": format!("{kind} kind"), "environment": "live", "permissions": [], "kind": kind});
    let (_, pair, _) = owner.create_key(&spec("pair"));
    let (_, single, _) = owner.create_key(&spec("single"));
    let listed = |query: &str| -> Vec<Value> {
        owner.call("GET", &format!("/keys{query}"), None).json()["keys"].as_array().cloned().unwrap_or_default()
    };
    let ids = |keys: &[Value]| keys.iter().map(|k| k["id"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>();
    let pairs = listed("?kind=pair");
    assert!(ids(&pairs).contains(&pair) && !ids(&pairs).contains(&single), "{pairs:?}");
    assert!(pairs.iter().all(|k| k["kind"] == "pair"), "{pairs:?}");
    let singles = listed("?kind=single");
    assert!(ids(&singles).contains(&single) && !ids(&singles).contains(&pair));
    assert!(singles.iter().all(|k| k["kind"] == "single"));
    let answer = owner.call("GET", "/keys?kind=legacy", None);
    assert!(matches!(answer.status, 400 | 422), "{}", answer.body);
    assert_eq!(answer.json()["field"], "kind");
}

/// The admin page's permission catalog: owners and admins describe a permission ("License Management"), every member
/// reads the catalog (and the session carries it), and it lists what keys hold with how many.
#[test]
fn the_permission_catalog_names_what_permissions_mean() {
    let owner = Console::shared_owner().new_organization("Catalog test");
    let admin =
        Console { acting_for: None, ..owner.invite(&format!("cat-admin-{}@x.test", std::process::id()), "admin") };
    let member =
        Console { acting_for: None, ..owner.invite(&format!("cat-member-{}@x.test", std::process::id()), "member") };
    member.create_key(&json!({"name": "reader", "environment": "live", "permissions": ["data:read"]}));
    let described =
        admin.call("PUT", "/permissions/licenses:manage", Some(&json!({"description": "  License Management "})));
    assert_eq!(described.status, 200, "{}", described.body);
    assert_eq!(described.json(), json!({"name": "licenses:manage", "keys": 0, "description": "License Management"}));
    let catalog = member.call("GET", "/permissions", None).json();
    let entries = catalog["permissions"].as_array().cloned().unwrap_or_default();
    assert!(entries.contains(&json!({"name": "data:read", "keys": 1})), "{catalog}");
    assert!(entries.contains(&json!({"name": "licenses:manage", "keys": 0, "description": "License Management"})));
    let session = member.call("GET", "/session", None).json();
    assert!(
        session["permissions"].as_array().is_some_and(|p| p.iter().any(|p| p["description"] == "License Management"))
    );
    // An empty description removes it; the audit log says who described what.
    assert_eq!(owner.call("PUT", "/permissions/licenses:manage", Some(&json!({"description": ""}))).status, 200);
    let entries = member.call("GET", "/permissions", None).json()["permissions"].clone();
    assert!(!entries.to_string().contains("licenses:manage"), "{entries}");
    let audit = owner.call("GET", "/audit", None).json();
    assert!(audit.to_string().contains("describe_permission"), "{audit}");
}
