//! The admin API through `admin::route` over the in-memory stores: bootstrap, validation of key creation, who may
//! see and change which key, the key lifecycle, organizations, and the audit log.

use std::collections::BTreeMap;

use keygate_shared::key::{ApiKey, KeyId};
use keygate_shared::model::{KeyRecord, Role};
use serde_json::{Value, json};

use super::{Build, Console, Harness, NOW, code_of, json_of, other_secret, request};
use crate::directory::Directory;
use crate::reply::Reply;

/// Asserts an answer's status and, for problems, its `code` (`""` when the answer is not a problem).
fn check(name: &str, reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{name}: body {}", reply.body);
    let got = if reply.body.is_empty() { String::new() } else { code_of(reply) };
    assert_eq!(got, code, "{name}: code");
}

fn get(token: &str, path: &str) -> crate::reply::Incoming {
    request("GET", path).bearer(token)
}

fn post(token: &str, path: &str, body: Value) -> crate::reply::Incoming {
    request("POST", path).bearer(token).json(body)
}

fn action(token: &str, id: &str, action: &str) -> crate::reply::Incoming {
    request("POST", &format!("/admin/v1/keys/{id}/{action}")).bearer(token)
}

fn key_path(id: &str) -> String {
    format!("/admin/v1/keys/{id}")
}

/// The ids listed by `GET /admin/v1/keys` for `token`, sorted.
fn listed(h: &Harness, token: &str) -> Vec<String> {
    let reply = h.admin(get(token, "/admin/v1/keys"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut ids: Vec<String> = json_of(&reply)["keys"]
        .as_array()
        .expect("a list of keys")
        .iter()
        .map(|k| k["id"].as_str().expect("an id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    ids.sort();
    ids
}

/// Everything a refused mutation must leave as it was: the KV records and the directory (keys, audit, members).
fn store(h: &Harness) -> (BTreeMap<KeyId, KeyRecord>, Directory) {
    (h.memory.kv.borrow().clone(), h.memory.directory.borrow().clone())
}

// ---------------------------------------------------------------------------------------------------------------
// Bootstrap and sign-in

#[test]
fn bootstrap_happens_once() {
    let h = Harness::new();
    let boot = |token: &str| h.admin(request("POST", "/admin/v1/bootstrap").bearer(token));

    let wrong = boot("not-the-token");
    check("wrong token on an empty store", &wrong, 401, "NOT_FOUND");
    assert!(h.memory.directory.borrow().is_empty(), "a refused bootstrap wrote nothing");
    assert!(h.memory.kv.borrow().is_empty());

    let first = boot("boot");
    check("first bootstrap", &first, 201, "");
    let token = json_of(&first)["console_token"].as_str().expect("a console token").to_owned();
    let session = h.admin(get(&token, "/admin/v1/session"));
    check("the console token signs in", &session, 200, "");
    assert_eq!(json_of(&session)["user"]["role"], "owner");

    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("second bootstrap", boot("boot"), 409, "ALREADY_BOOTSTRAPPED"),
        ("wrong token after bootstrap", boot("nope"), 401, "NOT_FOUND"),
        ("GET bootstrap", h.admin(get("boot", "/admin/v1/bootstrap")), 405, "METHOD_NOT_ALLOWED"),
    ];
    for (name, reply, status, code) in &cases {
        check(name, reply, *status, code);
    }
    assert_eq!(h.memory.directory.borrow().organizations.len(), 1);
    assert_eq!(h.memory.directory.borrow().users.len(), 1);
}

#[test]
fn sign_in_refusals() {
    let h = Harness::new();
    let console = h.bootstrap();
    let gateway_key = h.create_key(&console.token, json!({})).key;
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("no credential", h.admin(request("GET", "/admin/v1/session")), 401, "MISSING_CREDENTIAL"),
        ("malformed", h.admin(get("kg_live_nope", "/admin/v1/session")), 401, "INVALID_FORMAT"),
        ("wrong secret", h.admin(get(&other_secret(&console.token), "/admin/v1/session")), 401, "NOT_FOUND"),
        ("a gateway key", h.admin(get(&gateway_key, "/admin/v1/session")), 401, "WRONG_PROJECT"),
        (
            "foreign organization",
            h.admin(get(&console.token, "/admin/v1/session").org("org_z")),
            403,
            "FORBIDDEN_ORGANIZATION",
        ),
        ("unknown route", h.admin(get(&console.token, "/admin/v1/nothing")), 404, "NOT_FOUND"),
    ];
    for (name, reply, status, code) in &cases {
        check(name, reply, *status, code);
    }
}

#[test]
fn failed_console_sign_in_is_audited() {
    let h = Harness::new();
    let console = h.bootstrap();
    let id = console.token.parse::<ApiKey>().expect("a key").id.to_string();
    let refused = h.admin(get(&other_secret(&console.token), "/admin/v1/session"));
    check("wrong secret", &refused, 401, "NOT_FOUND");

    let audit = json_of(&h.admin(get(&console.token, "/admin/v1/audit")));
    let newest = &audit["events"][0];
    assert_eq!(newest["action"], "sign_in_failed", "{audit}");
    assert_eq!(newest["actor"], Value::Null);
    assert_eq!(newest["target"], id);
    assert_eq!(newest["organization"], console.organization);
    assert!(newest["detail"].as_str().unwrap_or("").contains("NOT_FOUND"), "{newest}");
}

// ---------------------------------------------------------------------------------------------------------------
// Creating keys

#[test]
fn create_key_validation_names_the_field_and_changes_nothing() {
    let h = Harness::new();
    let console = h.bootstrap();
    let long_name = "n".repeat(101);
    let past = NOW.plus_secs(-1).to_rfc3339();
    let rate = |r: Value| json!({ "name": "k", "environment": "live", "rate_limit": r }).to_string();
    let cases: Vec<(&str, String, u16, &str, Option<&str>)> = vec![
        // (case, body, status, code, field)
        (
            "unknown environment",
            r#"{"name":"k","environment":"prod"}"#.into(),
            422,
            "INVALID_BODY",
            Some("environment"),
        ),
        ("empty name", r#"{"name":"  ","environment":"live"}"#.into(), 422, "VALIDATION_FAILED", Some("name")),
        (
            "name of 101 characters",
            json!({ "name": long_name, "environment": "live" }).to_string(),
            422,
            "VALIDATION_FAILED",
            Some("name"),
        ),
        (
            "bad permission",
            r#"{"name":"k","environment":"live","permissions":["Data Read"]}"#.into(),
            422,
            "VALIDATION_FAILED",
            Some("permissions[0]"),
        ),
        (
            "second permission bad",
            r#"{"name":"k","environment":"live","permissions":["data:read","x"]}"#.into(),
            422,
            "VALIDATION_FAILED",
            Some("permissions[1]"),
        ),
        (
            "unknown project",
            r#"{"name":"k","environment":"live","project":"nope"}"#.into(),
            422,
            "VALIDATION_FAILED",
            Some("project"),
        ),
        (
            "project not a slug",
            r#"{"name":"k","environment":"live","project":"Not A Slug"}"#.into(),
            422,
            "VALIDATION_FAILED",
            Some("project"),
        ),
        (
            "bad customer",
            r#"{"name":"k","environment":"live","customers":["a b"]}"#.into(),
            422,
            "VALIDATION_FAILED",
            Some("customers[0]"),
        ),
        (
            "zero requests",
            rate(json!({ "requests": 0, "window_seconds": 60 })),
            422,
            "VALIDATION_FAILED",
            Some("rate_limit.requests"),
        ),
        (
            "window over a day",
            rate(json!({ "requests": 10, "window_seconds": 100_000 })),
            422,
            "VALIDATION_FAILED",
            Some("rate_limit.window_seconds"),
        ),
        (
            "burst over requests",
            rate(json!({ "requests": 10, "window_seconds": 60, "burst": 11 })),
            422,
            "VALIDATION_FAILED",
            Some("rate_limit.burst"),
        ),
        (
            "expiry in the past",
            json!({ "name": "k", "environment": "live", "expires_at": past }).to_string(),
            422,
            "VALIDATION_FAILED",
            Some("expires_at"),
        ),
        (
            "expiry not a date",
            r#"{"name":"k","environment":"live","expires_at":"tomorrow"}"#.into(),
            422,
            "INVALID_BODY",
            Some("expires_at"),
        ),
        (
            "unknown field",
            r#"{"name":"k","environment":"live","colour":"red"}"#.into(),
            422,
            "INVALID_BODY",
            Some("colour"),
        ),
        (
            "unknown field in rate_limit",
            rate(json!({ "requests": 1, "window_seconds": 1, "x": 1 })),
            422,
            "INVALID_BODY",
            Some("rate_limit.x"),
        ),
        ("malformed JSON", r#"{"name":"k","#.into(), 400, "INVALID_BODY", None),
        ("empty body", String::new(), 400, "INVALID_BODY", None),
    ];
    let before = store(&h);
    for (name, body, status, code, field) in cases {
        let reply = h.admin(request("POST", "/admin/v1/keys").bearer(&console.token).body(&body));
        check(name, &reply, status, code);
        assert_eq!(json_of(&reply)["field"].as_str(), field, "{name}: field; body {}", reply.body);
        let after = store(&h);
        assert_eq!(after.0.len(), before.0.len(), "{name}: KV records");
        assert_eq!(after.1.keys.len(), before.1.keys.len(), "{name}: indexed keys");
        assert!(after == before, "{name}: the store changed");
    }
}

#[test]
fn create_key_answers_the_key_once_and_it_works() {
    let h = Harness::new();
    let console = h.bootstrap();
    let project = h.admin(post(&console.token, "/admin/v1/projects", json!({ "slug": "acme-shop", "name": "Acme" })));
    check("create project", &project, 201, "");
    let created = h.create_key(&console.token, json!({ "project": "acme-shop", "permissions": ["data:read"] }));
    let id = created.key.parse::<ApiKey>().expect("a key").id;
    assert_eq!(created.id, id.to_string());
    // Only the hash is stored: the secret appears nowhere in the record.
    let record = h.memory.kv.borrow().get(&id).cloned().expect("a record in KV");
    let secret = created.key.parse::<ApiKey>().expect("a key").secret.expose().to_owned();
    assert!(!serde_json::to_string(&record).expect("a record serializes").contains(&secret));
    assert_eq!(record.owner, console.user);
    assert_eq!(record.project.as_deref(), Some("acme-shop"));
    assert_eq!(h.gate_code(&created.key), "VALID");
    // The view never shows the secret either.
    let view = h.admin(get(&console.token, &key_path(&created.id)));
    check("get key", &view, 200, "");
    assert!(!view.body.contains(&secret));
    assert_eq!(json_of(&view)["status"], "active");
}

// ---------------------------------------------------------------------------------------------------------------
// Who may do what

/// An organization with an owner, an admin and two members, each with one key.
struct Team {
    owner: Console,
    admin: String,
    alice: String,
    bob: String,
    owner_key: String,
    admin_key: String,
    alice_key: String,
    bob_key: String,
}

fn team(h: &Harness) -> Team {
    let owner = h.bootstrap();
    let admin = h.invite(&owner.token, None, "admin@example.com", Role::Admin);
    let alice = h.invite(&owner.token, None, "alice@example.com", Role::Member);
    let bob = h.invite(&admin, None, "bob@example.com", Role::Member);
    let owner_key = h.create_key(&owner.token, json!({ "name": "owner's" })).id;
    let admin_key = h.create_key(&admin, json!({ "name": "admin's" })).id;
    let alice_key = h.create_key(&alice, json!({ "name": "alice's" })).id;
    let bob_key = h.create_key(&bob, json!({ "name": "bob's" })).id;
    Team { owner, admin, alice, bob, owner_key, admin_key, alice_key, bob_key }
}

#[test]
fn members_see_their_own_keys_managers_see_all() {
    let h = Harness::new();
    let t = team(&h);
    let all = sorted(&[&t.owner_key, &t.admin_key, &t.alice_key, &t.bob_key]);
    let cases: Vec<(&str, Vec<String>, Vec<String>)> = vec![
        ("alice", listed(&h, &t.alice), sorted(&[&t.alice_key])),
        ("bob", listed(&h, &t.bob), sorted(&[&t.bob_key])),
        ("admin", listed(&h, &t.admin), all.clone()),
        ("owner", listed(&h, &t.owner.token), all),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn ownership_rules() {
    let h = Harness::new();
    let t = team(&h);
    let rename = |token: &str, id: &str| {
        h.admin(request("PATCH", &key_path(id)).bearer(token).json(json!({ "name": "renamed" })))
    };
    let invite = |token: &str| {
        h.admin(post(token, "/admin/v1/members", json!({ "email": "x@example.com", "name": "X", "role": "member" })))
    };
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("member reads another member's key", h.admin(get(&t.alice, &key_path(&t.bob_key))), 404, "NOT_FOUND"),
        ("member reads a manager's key", h.admin(get(&t.alice, &key_path(&t.owner_key))), 404, "NOT_FOUND"),
        ("member revokes another member's key", h.admin(action(&t.alice, &t.bob_key, "revoke")), 404, "NOT_FOUND"),
        (
            "member reads another member's errors",
            h.admin(get(&t.alice, &format!("{}/errors", key_path(&t.bob_key)))),
            404,
            "NOT_FOUND",
        ),
        ("member reads own key", h.admin(get(&t.alice, &key_path(&t.alice_key))), 200, ""),
        ("owner reads a member's key", h.admin(get(&t.owner.token, &key_path(&t.bob_key))), 200, ""),
        ("owner renames a member's key", rename(&t.owner.token, &t.alice_key), 403, "NOT_KEY_OWNER"),
        ("admin renames a member's key", rename(&t.admin, &t.bob_key), 403, "NOT_KEY_OWNER"),
        (
            "owner regenerates a member's key",
            h.admin(action(&t.owner.token, &t.alice_key, "regenerate")),
            403,
            "NOT_KEY_OWNER",
        ),
        ("member renames another member's key", rename(&t.alice, &t.bob_key), 404, "NOT_FOUND"),
        ("member renames own key", rename(&t.alice, &t.alice_key), 200, ""),
        ("owner revokes a member's key", h.admin(action(&t.owner.token, &t.alice_key, "revoke")), 200, ""),
        ("admin revokes a member's key", h.admin(action(&t.admin, &t.bob_key, "revoke")), 200, ""),
        ("admin revokes the owner's key", h.admin(action(&t.admin, &t.owner_key, "revoke")), 200, ""),
        (
            "member creates a project",
            h.admin(post(&t.alice, "/admin/v1/projects", json!({ "slug": "p", "name": "P" }))),
            403,
            "FORBIDDEN",
        ),
        ("member invites", invite(&t.bob), 403, "FORBIDDEN"),
        ("admin invites", invite(&t.admin), 201, ""),
        (
            "admin invites an owner",
            h.admin(post(
                &t.admin,
                "/admin/v1/members",
                json!({ "email": "o@example.com", "name": "O", "role": "owner" }),
            )),
            422,
            "VALIDATION_FAILED",
        ),
        ("unknown key id", h.admin(get(&t.owner.token, &key_path("00000000000000"))), 404, "NOT_FOUND"),
        ("not a key id", h.admin(get(&t.owner.token, &key_path("nope"))), 404, "NOT_FOUND"),
    ];
    for (name, reply, status, code) in &cases {
        check(name, reply, *status, code);
    }
    // The refused changes changed nothing; the allowed ones took effect.
    let name_of = |id: &str| json_of(&h.admin(get(&t.owner.token, &key_path(id))))["name"].clone();
    let status_of = |id: &str| json_of(&h.admin(get(&t.owner.token, &key_path(id))))["status"].clone();
    assert_eq!(name_of(&t.bob_key), "bob's");
    assert_eq!(name_of(&t.alice_key), "renamed");
    assert_eq!(status_of(&t.alice_key), "inactive");
    assert_eq!(status_of(&t.bob_key), "inactive");
    assert_eq!(status_of(&t.owner_key), "inactive");
    assert_eq!(status_of(&t.admin_key), "active");
}

// ---------------------------------------------------------------------------------------------------------------
// The lifecycle

#[test]
fn lifecycle_revoke_activate_regenerate_deactivate_delete() {
    let h = Harness::new();
    let console = h.bootstrap();
    let created = h.create_key(&console.token, json!({}));
    let tok = console.token.as_str();
    let id = created.id.as_str();
    let status = |reply: &Reply| json_of(reply)["status"].as_str().unwrap_or("").to_owned();

    let revoked = h.admin(action(tok, id, "revoke"));
    check("revoke", &revoked, 200, "");
    assert_eq!(status(&revoked), "inactive");
    assert_eq!(h.gate_code(&created.key), "REVOKED");
    check("revoke twice", &h.admin(action(tok, id, "revoke")), 409, "ILLEGAL_TRANSITION");

    let activated = h.admin(action(tok, id, "activate"));
    check("activate", &activated, 200, "");
    assert_eq!(status(&activated), "active");
    assert_eq!(h.gate_code(&created.key), "VALID");

    let regenerated = h.admin(action(tok, id, "regenerate"));
    check("regenerate", &regenerated, 200, "");
    let fresh = json_of(&regenerated)["key"].as_str().expect("the new key").to_owned();
    assert_ne!(fresh, created.key);
    assert_eq!(fresh.parse::<ApiKey>().expect("a key").id.to_string(), created.id, "same id, new secret");
    assert_eq!(h.gate_code(&created.key), "NOT_FOUND", "the old secret is refused");
    assert_eq!(h.gate_code(&fresh), "VALID", "the new secret passes");

    let deactivated = h.admin(action(tok, id, "deactivate"));
    check("deactivate", &deactivated, 200, "");
    assert_eq!(status(&deactivated), "deactivated");
    assert_eq!(h.gate_code(&fresh), "DEACTIVATED");
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("activate a deactivated key", h.admin(action(tok, id, "activate")), 409, "ILLEGAL_TRANSITION"),
        ("regenerate a deactivated key", h.admin(action(tok, id, "regenerate")), 409, "ILLEGAL_TRANSITION"),
        (
            "rename a deactivated key",
            h.admin(request("PATCH", &key_path(id)).bearer(tok).json(json!({ "name": "x" }))),
            409,
            "ILLEGAL_TRANSITION",
        ),
        ("unknown action", h.admin(action(tok, id, "explode")), 404, "NOT_FOUND"),
    ];
    for (name, reply, want, code) in &cases {
        check(name, reply, *want, code);
    }
    assert_eq!(h.gate_code(&fresh), "DEACTIVATED", "refused transitions changed nothing");

    let deleted = h.admin(request("DELETE", &key_path(id)).bearer(tok));
    check("delete", &deleted, 204, "");
    check("get after delete", &h.admin(get(tok, &key_path(id))), 404, "NOT_FOUND");
    let key_id = KeyId::parse(id).expect("an id");
    assert!(!h.memory.kv.borrow().contains_key(&key_id), "the record left KV");
    assert!(h.memory.directory.borrow().key(&key_id).is_none(), "the key left the index");
    assert_eq!(h.gate_code(&fresh), "NOT_FOUND");
    assert!(listed(&h, tok).is_empty());
}

#[test]
fn delete_only_keys_that_no_longer_work() {
    let h = Harness::new();
    let console = h.bootstrap();
    let created = h.create_key(&console.token, json!({}));
    let delete = || h.admin(request("DELETE", &key_path(&created.id)).bearer(&console.token));
    check("delete an active key", &delete(), 409, "ILLEGAL_TRANSITION");
    assert_eq!(h.gate_code(&created.key), "VALID", "the key still works");
    check("revoke", &h.admin(action(&console.token, &created.id, "revoke")), 200, "");
    check("delete a revoked key", &delete(), 204, "");
    check("delete twice", &delete(), 404, "NOT_FOUND");
}

#[test]
fn regenerate_with_grace_keeps_the_old_secret_until_the_grace_ends() {
    let h = Harness::new();
    let console = h.bootstrap();
    let created = h.create_key(&console.token, json!({}));
    let regenerate = |grace: Value| {
        h.admin(
            request("POST", &format!("/admin/v1/keys/{}/regenerate", created.id)).bearer(&console.token).json(grace),
        )
    };
    check("grace over a week", &regenerate(json!({ "grace_seconds": 604_801 })), 422, "VALIDATION_FAILED");
    check("unknown field", &regenerate(json!({ "grace": 60 })), 422, "INVALID_BODY");
    assert_eq!(h.gate_code(&created.key), "VALID", "refused regenerations kept the secret");

    let reply = regenerate(json!({ "grace_seconds": 60 }));
    check("regenerate with grace", &reply, 200, "");
    let fresh = json_of(&reply)["key"].as_str().expect("the new key").to_owned();
    let cases: Vec<(i64, &str, &str)> = vec![
        // (seconds after regenerating, old key's code, new key's code)
        (0, "VALID", "VALID"),
        (59, "VALID", "VALID"),
        (60, "NOT_FOUND", "VALID"),
        (3600, "NOT_FOUND", "VALID"),
    ];
    for (after, old, new) in cases {
        h.set_now(NOW.plus_secs(after));
        assert_eq!(h.gate_code(&created.key), old, "old key {after} s after");
        assert_eq!(h.gate_code(&fresh), new, "new key {after} s after");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Organizations

#[test]
fn another_organizations_user_gets_404_for_keys() {
    let h = Harness::new();
    let console = h.bootstrap();
    let key = h.create_key(&console.token, json!({}));

    let org = h.admin(post(&console.token, "/admin/v1/organizations", json!({ "name": "Second" })));
    check("create organization", &org, 201, "");
    let second = json_of(&org)["id"].as_str().expect("an organization id").to_owned();
    let eve = h.invite(&console.token, Some(&second), "eve@example.com", Role::Owner);

    let session = json_of(&h.admin(get(&eve, "/admin/v1/session")));
    assert_eq!(session["organization"]["id"], second, "eve acts for the second organization");
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("read", h.admin(get(&eve, &key_path(&key.id))), 404, "NOT_FOUND"),
        ("revoke", h.admin(action(&eve, &key.id, "revoke")), 404, "NOT_FOUND"),
        ("delete", h.admin(request("DELETE", &key_path(&key.id)).bearer(&eve)), 404, "NOT_FOUND"),
        ("usage", h.admin(get(&eve, &format!("{}/usage", key_path(&key.id)))), 404, "NOT_FOUND"),
        (
            "act for the first organization",
            h.admin(get(&eve, "/admin/v1/keys").org(&console.organization)),
            403,
            "FORBIDDEN_ORGANIZATION",
        ),
    ];
    for (name, reply, status, code) in &cases {
        check(name, reply, *status, code);
    }
    assert!(listed(&h, &eve).is_empty(), "eve lists no key of the first organization");
    assert_eq!(h.gate_code(&key.key), "VALID", "the key was not touched");
}

#[test]
fn organization_creator_acts_in_the_new_organization() {
    let h = Harness::new();
    let console = h.bootstrap();
    let org = h.admin(post(&console.token, "/admin/v1/organizations", json!({ "name": "Second" })));
    check("create organization", &org, 201, "");
    let second = json_of(&org)["id"].as_str().expect("an organization id").to_owned();
    let session = h.admin(get(&console.token, "/admin/v1/session").org(&second));
    check("session in the new organization", &session, 200, "");
    assert_eq!(json_of(&session)["organization"]["id"], second);
}

// ---------------------------------------------------------------------------------------------------------------
// The audit log

#[test]
fn audit_log_lists_the_actions_newest_first() {
    let h = Harness::new();
    let console = h.bootstrap();
    let tok = console.token.as_str();
    check("project", &h.admin(post(tok, "/admin/v1/projects", json!({ "slug": "shop", "name": "Shop" }))), 201, "");
    h.invite(tok, None, "m@example.com", Role::Member);
    let created = h.create_key(tok, json!({ "project": "shop" }));
    let id = created.id.as_str();
    check("rename", &h.admin(request("PATCH", &key_path(id)).bearer(tok).json(json!({ "name": "renamed" }))), 200, "");
    check(
        "update",
        &h.admin(request("PATCH", &key_path(id)).bearer(tok).json(json!({ "permissions": ["a:b"] }))),
        200,
        "",
    );
    for step in ["revoke", "activate", "regenerate", "deactivate"] {
        check(step, &h.admin(action(tok, id, step)), 200, "");
    }
    check("delete", &h.admin(request("DELETE", &key_path(id)).bearer(tok)), 204, "");
    // A refused request is not an action.
    check("refused", &h.admin(action(tok, id, "revoke")), 404, "NOT_FOUND");

    let page = json_of(&h.admin(get(tok, "/admin/v1/audit")));
    let events = page["events"].as_array().expect("events");
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap_or("")).collect();
    assert_eq!(
        actions,
        [
            "delete",
            "deactivate",
            "regenerate",
            "activate",
            "revoke",
            "update",
            "rename",
            "create",
            "invite_member",
            "create_project",
            "bootstrap",
        ]
    );
    for event in &events[..8] {
        assert_eq!(event["target"], id, "{event}");
        assert_eq!(event["actor"], console.user.as_str(), "{event}");
        assert_eq!(event["organization"], console.organization.as_str(), "{event}");
    }
    assert_eq!(events[6]["detail"], "k → renamed");
    assert_eq!(page["next_cursor"], Value::Null);
}
