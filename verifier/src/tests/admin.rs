//! The admin API through `admin::route` over the in-memory stores: bootstrap and sign-in, validation of key creation,
//! who may see and change which key, the key lifecycle, organizations, and the audit log.

use std::collections::BTreeMap;

use keygate_shared::key::{ApiKey, KeyId};
use keygate_shared::model::{KeyRecord, Role};
use serde_json::{Value, json};

use super::{Build, Harness, NOW, code_of, json_of, other_secret, request};
use crate::directory::Directory;
use crate::reply::Reply;

/// Asserts an answer's status and, for problems, its `code` (`""` when the answer is not a problem).
fn check(name: &str, reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{name}: body {}", reply.body);
    let got = if reply.body.is_empty() { String::new() } else { code_of(reply) };
    assert_eq!(got, code, "{name}: code");
}

/// A console user, for one-line requests: each method sends one request under `/admin/v1` and returns the answer.
#[derive(Debug, Clone)]
struct Client<'h> {
    h: &'h Harness,
    token: String,
    org: Option<String>,
}

fn client<'h>(h: &'h Harness, token: &str) -> Client<'h> {
    Client { h, token: token.to_owned(), org: None }
}

impl Client<'_> {
    /// The same user acting for another organization (`Keygate-Org`).
    fn in_org(&self, org: &str) -> Self {
        Self { org: Some(org.to_owned()), ..self.clone() }
    }

    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let mut req = request(method, &format!("/admin/v1/{path}")).bearer(&self.token);
        if let Some(org) = &self.org {
            req = req.org(org);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        self.h.admin(req)
    }

    fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None)
    }

    fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body))
    }

    fn key(&self, id: &str) -> Reply {
        self.get(&format!("keys/{id}"))
    }

    /// `POST /keys/{id}/{action}` with no body: revoke, activate, deactivate, regenerate.
    fn act(&self, id: &str, action: &str) -> Reply {
        self.send("POST", &format!("keys/{id}/{action}"), None)
    }

    fn patch(&self, id: &str, body: Value) -> Reply {
        self.send("PATCH", &format!("keys/{id}"), Some(body))
    }

    fn rename(&self, id: &str, name: &str) -> Reply {
        self.patch(id, json!({ "name": name }))
    }

    fn delete(&self, id: &str) -> Reply {
        self.send("DELETE", &format!("keys/{id}"), None)
    }

    fn invite(&self, email: &str, role: &str) -> Reply {
        self.post("members", json!({ "email": email, "name": "Someone", "role": role }))
    }

    /// The ids `GET /keys` lists, sorted.
    fn listed(&self) -> Vec<String> {
        let reply = self.get("keys");
        assert_eq!(reply.status, 200, "{}", reply.body);
        let keys = json_of(&reply)["keys"].as_array().expect("a list of keys").clone();
        sorted(keys.iter().map(|k| k["id"].as_str().expect("an id")))
    }

    /// A field of the key as this user sees it.
    fn field(&self, id: &str, field: &str) -> Value {
        json_of(&self.key(id))[field].clone()
    }
}

fn sorted<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
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

    check("wrong token on an empty store", &boot("not-the-token"), 401, "NOT_FOUND");
    assert!(h.memory.directory.borrow().is_empty(), "a refused bootstrap wrote nothing");
    assert!(h.memory.kv.borrow().is_empty(), "a refused bootstrap issued no token");

    let first = boot("boot");
    check("first bootstrap", &first, 201, "");
    let owner = client(&h, json_of(&first)["console_token"].as_str().expect("a console token"));
    let session = owner.get("session");
    check("the console token signs in", &session, 200, "");
    assert_eq!(json_of(&session)["user"]["role"], "owner");

    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("second bootstrap", boot("boot"), 409, "ALREADY_BOOTSTRAPPED"),
        ("wrong token after bootstrap", boot("nope"), 401, "NOT_FOUND"),
        ("GET bootstrap", h.admin(request("GET", "/admin/v1/bootstrap")), 405, "METHOD_NOT_ALLOWED"),
    ];
    for (name, reply, status, code) in &cases {
        check(name, reply, *status, code);
    }
    assert_eq!(h.memory.directory.borrow().organizations.len(), 1, "one organization");
    assert_eq!(h.memory.directory.borrow().users.len(), 1, "one user");
}

#[test]
fn sign_in_refusals() {
    let h = Harness::new();
    let console = h.bootstrap();
    let owner = client(&h, &console.token);
    let gateway_key = h.create_key(&console.token, json!({})).key;
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("no credential", h.admin(request("GET", "/admin/v1/session")), 401, "MISSING_CREDENTIAL"),
        ("malformed", client(&h, "kg_live_nope").get("session"), 401, "INVALID_FORMAT"),
        ("wrong secret", client(&h, &other_secret(&console.token)).get("session"), 401, "NOT_FOUND"),
        ("a gateway key", client(&h, &gateway_key).get("session"), 401, "WRONG_PROJECT"),
        ("foreign organization", owner.in_org("org_z").get("session"), 403, "FORBIDDEN_ORGANIZATION"),
        ("unknown route", owner.get("nothing"), 404, "NOT_FOUND"),
        ("signed in", owner.get("session"), 200, ""),
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
    check("wrong secret", &client(&h, &other_secret(&console.token)).get("session"), 401, "NOT_FOUND");

    let audit = json_of(&client(&h, &console.token).get("audit"));
    let newest = &audit["events"][0];
    assert_eq!(newest["action"], "sign_in_failed", "{audit}");
    assert_eq!(newest["actor"], Value::Null);
    assert_eq!(newest["target"], id);
    assert_eq!(newest["organization"], console.organization);
    assert!(newest["detail"].as_str().unwrap_or("").contains("NOT_FOUND"), "{newest}");
}

// ---------------------------------------------------------------------------------------------------------------
// Creating keys

/// A refusal of a field's value (`validate`), of the body's shape (serde), and of JSON that does not parse.
const VALIDATION: (u16, &str) = (422, "VALIDATION_FAILED");
const SHAPE: (u16, &str) = (422, "INVALID_BODY");
const MALFORMED: (u16, &str) = (400, "INVALID_BODY");

#[test]
fn create_key_validation_names_the_field_and_changes_nothing() {
    let h = Harness::new();
    let console = h.bootstrap();
    // A valid body with `extra` merged in.
    let with = |extra: Value| {
        let mut body = json!({ "name": "k", "environment": "live" });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body.to_string()
    };
    let rate = |requests: u32, window_seconds: u32, burst: Option<u32>| {
        with(json!({ "rate_limit": { "requests": requests, "window_seconds": window_seconds, "burst": burst } }))
    };
    let past = NOW.plus_secs(-1).to_rfc3339();
    // (case, body, status and code, field)
    type Case = (&'static str, String, (u16, &'static str), Option<&'static str>);
    let cases: Vec<Case> = vec![
        ("unknown environment", with(json!({ "environment": "prod" })), SHAPE, Some("environment")),
        ("empty name", with(json!({ "name": "  " })), VALIDATION, Some("name")),
        ("name of 101 characters", with(json!({ "name": "n".repeat(101) })), VALIDATION, Some("name")),
        ("bad permission", with(json!({ "permissions": ["Data Read"] })), VALIDATION, Some("permissions[0]")),
        ("bad second permission", with(json!({ "permissions": ["a:b", "x"] })), VALIDATION, Some("permissions[1]")),
        ("unknown project", with(json!({ "project": "nope" })), VALIDATION, Some("project")),
        ("project not a slug", with(json!({ "project": "Not A Slug" })), VALIDATION, Some("project")),
        ("bad customer", with(json!({ "customers": ["a b"] })), VALIDATION, Some("customers[0]")),
        ("zero requests", rate(0, 60, None), VALIDATION, Some("rate_limit.requests")),
        ("window over a day", rate(9, 100_000, None), VALIDATION, Some("rate_limit.window_seconds")),
        ("burst over requests", rate(9, 60, Some(10)), VALIDATION, Some("rate_limit.burst")),
        ("expiry in the past", with(json!({ "expires_at": past })), VALIDATION, Some("expires_at")),
        ("expiry now", with(json!({ "expires_at": NOW.to_rfc3339() })), VALIDATION, Some("expires_at")),
        ("expiry not a date", with(json!({ "expires_at": "tomorrow" })), SHAPE, Some("expires_at")),
        ("unknown field", with(json!({ "colour": "red" })), SHAPE, Some("colour")),
        ("unknown field in rate_limit", with(json!({ "rate_limit": { "x": 1 } })), SHAPE, Some("rate_limit.x")),
        ("malformed JSON", r#"{"name":"k","#.into(), MALFORMED, None),
        ("empty body", String::new(), MALFORMED, None),
    ];
    let before = store(&h);
    for (name, body, (status, code), field) in cases {
        let reply = h.admin(request("POST", "/admin/v1/keys").bearer(&console.token).body(&body));
        check(name, &reply, status, code);
        assert_eq!(json_of(&reply)["field"].as_str(), field, "{name}: field; body {}", reply.body);
        let after = store(&h);
        assert_eq!(after.0.len(), before.0.len(), "{name}: KV records");
        assert_eq!(after.1.keys.len(), before.1.keys.len(), "{name}: indexed keys");
        assert!(after == before, "{name}: the store changed");
    }
    // The same store accepts a valid body, so the refusals above were the fields' doing.
    check("valid", &h.admin(request("POST", "/admin/v1/keys").bearer(&console.token).body(&with(json!({})))), 201, "");
    assert_eq!(store(&h).0.len(), before.0.len() + 1);
}

#[test]
fn create_key_answers_the_key_once_and_it_works() {
    let h = Harness::new();
    let console = h.bootstrap();
    let owner = client(&h, &console.token);
    check("create project", &owner.post("projects", json!({ "slug": "acme-shop", "name": "Acme" })), 201, "");
    let created = h.create_key(&console.token, json!({ "project": "acme-shop", "permissions": ["data:read"] }));
    let key: ApiKey = created.key.parse().expect("a key");
    assert_eq!(created.id, key.id.to_string());
    // Only the hash is stored: the secret appears nowhere in the record.
    let record = h.memory.kv.borrow().get(&key.id).cloned().expect("a record in KV");
    let secret = key.secret.expose();
    assert!(!serde_json::to_string(&record).expect("a record serializes").contains(secret));
    assert_eq!(record.owner, console.user);
    assert_eq!(record.project.as_deref(), Some("acme-shop"));
    assert_eq!(h.gate_code(&created.key), "VALID");
    // The view never shows the secret either.
    let view = owner.key(&created.id);
    check("get key", &view, 200, "");
    assert!(!view.body.contains(secret));
    assert_eq!(json_of(&view)["status"], "active");
}

// ---------------------------------------------------------------------------------------------------------------
// Who may do what

/// An organization with an owner, an admin and two members, each with one key.
struct Team<'h> {
    owner: Client<'h>,
    admin: Client<'h>,
    alice: Client<'h>,
    bob: Client<'h>,
    owner_key: String,
    admin_key: String,
    alice_key: String,
    bob_key: String,
}

fn team(h: &Harness) -> Team<'_> {
    let owner = h.bootstrap().token;
    let admin = h.invite(&owner, None, "admin@example.com", Role::Admin);
    let alice = h.invite(&owner, None, "alice@example.com", Role::Member);
    let bob = h.invite(&admin, None, "bob@example.com", Role::Member);
    let key = |token: &str, name: &str| h.create_key(token, json!({ "name": name })).id;
    Team {
        owner_key: key(&owner, "owner's"),
        admin_key: key(&admin, "admin's"),
        alice_key: key(&alice, "alice's"),
        bob_key: key(&bob, "bob's"),
        owner: client(h, &owner),
        admin: client(h, &admin),
        alice: client(h, &alice),
        bob: client(h, &bob),
    }
}

#[test]
fn members_see_their_own_keys_managers_see_all() {
    let h = Harness::new();
    let t = team(&h);
    let all = sorted([t.owner_key.as_str(), &t.admin_key, &t.alice_key, &t.bob_key]);
    let cases: Vec<(&str, Vec<String>, Vec<String>)> = vec![
        ("alice", t.alice.listed(), sorted([t.alice_key.as_str()])),
        ("bob", t.bob.listed(), sorted([t.bob_key.as_str()])),
        ("admin", t.admin.listed(), all.clone()),
        ("owner", t.owner.listed(), all),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn ownership_rules() {
    let h = Harness::new();
    let t = team(&h);
    let (a, b) = (&t.alice_key, &t.bob_key);
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("member reads another member's key", t.alice.key(b), 404, "NOT_FOUND"),
        ("member reads a manager's key", t.alice.key(&t.owner_key), 404, "NOT_FOUND"),
        ("member revokes another member's key", t.alice.act(b, "revoke"), 404, "NOT_FOUND"),
        ("member deletes another member's key", t.alice.delete(b), 404, "NOT_FOUND"),
        ("member reads another member's errors", t.alice.get(&format!("keys/{b}/errors")), 404, "NOT_FOUND"),
        ("member renames another member's key", t.alice.rename(b, "mine"), 404, "NOT_FOUND"),
        ("member reads own key", t.alice.key(a), 200, ""),
        ("owner reads a member's key", t.owner.key(b), 200, ""),
        ("owner renames a member's key", t.owner.rename(a, "owner's now"), 403, "NOT_KEY_OWNER"),
        ("admin renames a member's key", t.admin.rename(b, "admin's now"), 403, "NOT_KEY_OWNER"),
        ("owner regenerates a member's key", t.owner.act(a, "regenerate"), 403, "NOT_KEY_OWNER"),
        ("admin regenerates the owner's key", t.admin.act(&t.owner_key, "regenerate"), 403, "NOT_KEY_OWNER"),
        ("member renames own key", t.alice.rename(a, "renamed"), 200, ""),
        ("owner revokes a member's key", t.owner.act(a, "revoke"), 200, ""),
        ("admin revokes a member's key", t.admin.act(b, "revoke"), 200, ""),
        ("admin revokes the owner's key", t.admin.act(&t.owner_key, "revoke"), 200, ""),
        ("member creates a project", t.alice.post("projects", json!({ "slug": "p", "name": "P" })), 403, "FORBIDDEN"),
        ("member invites", t.bob.invite("x@example.com", "member"), 403, "FORBIDDEN"),
        ("admin invites an owner", t.admin.invite("o@example.com", "owner"), 422, "VALIDATION_FAILED"),
        ("admin invites a member", t.admin.invite("x@example.com", "member"), 201, ""),
        ("admin creates a project", t.admin.post("projects", json!({ "slug": "p", "name": "P" })), 201, ""),
        ("unknown key id", t.owner.key("00000000000000"), 404, "NOT_FOUND"),
        ("not a key id", t.owner.key("nope"), 404, "NOT_FOUND"),
    ];
    for (name, reply, status, code) in &cases {
        check(name, reply, *status, code);
    }
    // The refused changes changed nothing; the allowed ones took effect.
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        // (key, field, value as the owner sees it)
        ("alice's key", a, "name", "renamed"),
        ("bob's key", b, "name", "bob's"),
        ("owner's key", &t.owner_key, "name", "owner's"),
        ("alice's key", a, "status", "inactive"),
        ("bob's key", b, "status", "inactive"),
        ("owner's key", &t.owner_key, "status", "inactive"),
        ("admin's key", &t.admin_key, "status", "active"),
    ];
    for (name, id, field, want) in cases {
        assert_eq!(t.owner.field(id, field), want, "{name}: {field}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The lifecycle

#[test]
fn lifecycle_revoke_activate_regenerate_deactivate_delete() {
    let h = Harness::new();
    let owner = client(&h, &h.bootstrap().token);
    let created = h.create_key(&owner.token, json!({}));
    let id = created.id.as_str();
    let status = |reply: &Reply| json_of(reply)["status"].as_str().unwrap_or("").to_owned();

    let revoked = owner.act(id, "revoke");
    check("revoke", &revoked, 200, "");
    assert_eq!(status(&revoked), "inactive");
    assert_eq!(h.gate_code(&created.key), "REVOKED");
    check("revoke twice", &owner.act(id, "revoke"), 409, "ILLEGAL_TRANSITION");

    let activated = owner.act(id, "activate");
    check("activate", &activated, 200, "");
    assert_eq!(status(&activated), "active");
    assert_eq!(h.gate_code(&created.key), "VALID");

    let regenerated = owner.act(id, "regenerate");
    check("regenerate", &regenerated, 200, "");
    let fresh = json_of(&regenerated)["key"].as_str().expect("the new key").to_owned();
    assert_ne!(fresh, created.key);
    assert_eq!(fresh.parse::<ApiKey>().expect("a key").id.to_string(), created.id, "same id, new secret");
    assert_eq!(h.gate_code(&created.key), "NOT_FOUND", "the old secret is refused");
    assert_eq!(h.gate_code(&fresh), "VALID", "the new secret passes");

    let deactivated = owner.act(id, "deactivate");
    check("deactivate", &deactivated, 200, "");
    assert_eq!(status(&deactivated), "deactivated");
    assert_eq!(h.gate_code(&fresh), "DEACTIVATED");
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("activate a deactivated key", owner.act(id, "activate"), 409, "ILLEGAL_TRANSITION"),
        ("regenerate a deactivated key", owner.act(id, "regenerate"), 409, "ILLEGAL_TRANSITION"),
        ("revoke a deactivated key", owner.act(id, "revoke"), 409, "ILLEGAL_TRANSITION"),
        ("rename a deactivated key", owner.rename(id, "x"), 409, "ILLEGAL_TRANSITION"),
        ("unknown action", owner.act(id, "explode"), 404, "NOT_FOUND"),
    ];
    for (name, reply, want, code) in &cases {
        check(name, reply, *want, code);
    }
    assert_eq!(h.gate_code(&fresh), "DEACTIVATED", "refused transitions changed nothing");

    check("delete", &owner.delete(id), 204, "");
    check("get after delete", &owner.key(id), 404, "NOT_FOUND");
    let key_id = KeyId::parse(id).expect("an id");
    assert!(!h.memory.kv.borrow().contains_key(&key_id), "the record left KV");
    assert!(h.memory.directory.borrow().key(&key_id).is_none(), "the key left the index");
    assert_eq!(h.gate_code(&fresh), "NOT_FOUND");
    assert!(owner.listed().is_empty());
}

#[test]
fn delete_only_keys_that_no_longer_work() {
    let h = Harness::new();
    let owner = client(&h, &h.bootstrap().token);
    let created = h.create_key(&owner.token, json!({}));
    check("delete an active key", &owner.delete(&created.id), 409, "ILLEGAL_TRANSITION");
    assert_eq!(h.gate_code(&created.key), "VALID", "the key still works");
    check("revoke", &owner.act(&created.id, "revoke"), 200, "");
    check("delete a revoked key", &owner.delete(&created.id), 204, "");
    check("delete twice", &owner.delete(&created.id), 404, "NOT_FOUND");
}

#[test]
fn regenerate_with_grace_keeps_the_old_secret_until_the_grace_ends() {
    let h = Harness::new();
    let owner = client(&h, &h.bootstrap().token);
    let created = h.create_key(&owner.token, json!({}));
    let regenerate = |body: Value| owner.post(&format!("keys/{}/regenerate", created.id), body);
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

/// Creates an organization as `owner` and returns its id.
fn organization(owner: &Client<'_>, name: &str) -> String {
    let reply = owner.post("organizations", json!({ "name": name }));
    check("create organization", &reply, 201, "");
    json_of(&reply)["id"].as_str().expect("an organization id").to_owned()
}

#[test]
fn another_organizations_user_gets_404_for_keys() {
    let h = Harness::new();
    let console = h.bootstrap();
    let owner = client(&h, &console.token);
    let key = h.create_key(&console.token, json!({}));
    let second = organization(&owner, "Second");
    let eve = client(&h, &h.invite(&console.token, Some(&second), "eve@example.com", Role::Owner));

    assert_eq!(json_of(&eve.get("session"))["organization"]["id"], second, "eve acts for the second organization");
    let (id, first) = (key.id.as_str(), &console.organization);
    let cases: Vec<(&str, Reply, u16, &str)> = vec![
        ("read", eve.key(id), 404, "NOT_FOUND"),
        ("revoke", eve.act(id, "revoke"), 404, "NOT_FOUND"),
        ("rename", eve.rename(id, "eve's"), 404, "NOT_FOUND"),
        ("delete", eve.delete(id), 404, "NOT_FOUND"),
        ("usage", eve.get(&format!("keys/{id}/usage")), 404, "NOT_FOUND"),
        ("act for the first organization", eve.in_org(first).get("keys"), 403, "FORBIDDEN_ORGANIZATION"),
    ];
    for (name, reply, status, code) in &cases {
        check(name, reply, *status, code);
    }
    assert!(eve.listed().is_empty(), "eve lists no key of the first organization");
    assert_eq!(h.gate_code(&key.key), "VALID", "the key was not touched");
    assert_eq!(owner.field(id, "name"), "k");
}

#[test]
fn organization_creator_acts_in_the_new_organization() {
    let h = Harness::new();
    let owner = client(&h, &h.bootstrap().token);
    let second = organization(&owner, "Second");
    let session = owner.in_org(&second).get("session");
    check("session in the new organization", &session, 200, "");
    assert_eq!(json_of(&session)["organization"]["id"], second);
    assert_eq!(json_of(&session)["user"]["role"], "owner");
    // Keys are created in the organization the request acts for.
    let created = owner.in_org(&second).post("keys", json!({ "name": "second's", "environment": "live" }));
    check("create in the new organization", &created, 201, "");
    assert_eq!(json_of(&created)["record"]["organization"], second);
    assert!(owner.listed().is_empty(), "the first organization lists no key of the second");
}

// ---------------------------------------------------------------------------------------------------------------
// The audit log

#[test]
fn audit_log_lists_the_actions_newest_first() {
    let h = Harness::new();
    let console = h.bootstrap();
    let owner = client(&h, &console.token);
    check("project", &owner.post("projects", json!({ "slug": "shop", "name": "Shop" })), 201, "");
    check("invite", &owner.invite("m@example.com", "member"), 201, "");
    let created = h.create_key(&console.token, json!({ "project": "shop" }));
    let id = created.id.as_str();
    check("rename", &owner.rename(id, "renamed"), 200, "");
    check("update", &owner.patch(id, json!({ "permissions": ["a:b"] })), 200, "");
    for step in ["revoke", "activate", "regenerate", "deactivate"] {
        check(step, &owner.act(id, step), 200, "");
    }
    check("delete", &owner.delete(id), 204, "");
    // Refused requests are not actions.
    check("refused", &owner.act(id, "revoke"), 404, "NOT_FOUND");
    check("refused", &owner.post("keys", json!({ "name": "", "environment": "live" })), 422, "VALIDATION_FAILED");

    let page = json_of(&owner.get("audit"));
    let events = page["events"].as_array().expect("events");
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap_or("")).collect();
    let expected = [
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
    ];
    assert_eq!(actions, expected);
    for event in &events[..8] {
        assert_eq!(event["target"], id, "{event}");
        assert_eq!(event["actor"], console.user.as_str(), "{event}");
        assert_eq!(event["organization"], console.organization.as_str(), "{event}");
    }
    assert_eq!(events[6]["detail"], "k → renamed");
    assert_eq!(page["next_cursor"], Value::Null);
}

// ---------------------------------------------------------------------------------------------------------------
// Usage and recent errors

#[test]
fn usage_and_recent_errors_reach_the_console() {
    use keygate_shared::decision::Demand;

    use crate::gateway::{Consult, authenticate, error_entry, presented};
    use crate::keyobject::ObjectRequest;
    use crate::store::Stores;

    let h = Harness::new();
    let console = h.bootstrap();
    let owner = client(&h, &console.token);
    let created = h.create_key(&console.token, json!({ "rate_limit": { "requests": 10, "window_seconds": 60 } }));
    // A rate-limited key is counted by its object as it is admitted.
    for _ in 0..2 {
        assert_eq!(h.gate_code(&created.key), "VALID");
    }
    let usage = json_of(&owner.get(&format!("keys/{}/usage", created.id)));
    assert_eq!(usage["total"], 2, "{usage}");
    assert_eq!(usage["last_used_at"], NOW.to_rfc3339());
    assert_eq!(owner.field(&created.id, "usage")["total"], 2);

    // A refusal of the key holder's own request is logged on the key, as the Worker's entry point does after answering.
    let req = request("GET", "/data/x").bearer(&created.key).org("org_elsewhere");
    let demand = Demand { organization: Some("org_elsewhere"), ..Demand::default() };
    let presented = presented(&req, &h.config);
    let refusal =
        super::block_on(authenticate(&h.memory, presented, &h.config.endpoint, demand, Consult::WhenRateLimited, NOW))
            .expect_err("a foreign organization is refused");
    let (claim, _organization) = refusal.key.clone().expect("the holder proved the key: the refusal names it");
    let code = refusal.code.expect("a decided refusal").as_str();
    let error = error_entry(&req, refusal.reply.status, code, &refusal.reply.body, NOW);
    let report = ObjectRequest::Report { now: NOW, usage: None, error: Some(error) };
    super::block_on(h.memory.object(&claim.id, &report)).expect("the object answers");

    let errors = owner.get(&format!("keys/{}/errors", created.id));
    check("errors", &errors, 200, "");
    let listed = json_of(&errors)["errors"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["code"], "FORBIDDEN_ORGANIZATION");
    assert_eq!(listed[0]["status"], 403);
    assert!(!errors.body.contains(&created.key), "the recent errors never show the credential");
    assert_eq!(owner.field(&created.id, "usage")["recent_errors"], 1);
}

#[test]
fn only_refusals_of_the_key_holder_name_the_key() {
    use keygate_shared::decision::{Access, Demand};
    use keygate_shared::model::Permission;

    use crate::gateway::{Consult, authenticate, presented};

    let h = Harness::new();
    let console = h.bootstrap();
    let limited = h.create_key(&console.token, json!({ "rate_limit": { "requests": 1, "window_seconds": 60 } })).key;
    let restricted = h.create_key(&console.token, json!({ "customers": ["cus_1"] })).key;
    let revoked = h.create_key(&console.token, json!({}));
    check("revoke", &client(&h, &console.token).act(&revoked.id, "revoke"), 200, "");
    let write = Permission::try_from("data:write").expect("a permission");
    let named = |key: &str, demand: Demand<'_>| {
        let req = request("GET", "/x").bearer(key);
        let outcome = super::block_on(authenticate(
            &h.memory,
            presented(&req, &h.config),
            &h.config.endpoint,
            demand,
            Consult::WhenRateLimited,
            NOW,
        ));
        outcome.map(|_| ()).map_err(|r| (r.code.map_or("STORAGE_UNAVAILABLE", |c| c.as_str()), r.key.is_some()))
    };
    let d = Demand::default();
    let foreign = Demand { organization: Some("org_z"), ..d };
    let scope = Demand { access: Access::Permission(&write), ..d };
    let customer = Demand { customer: Some("cus_2"), ..d };
    // A pass, or the refusal's code and whether the refusal names the key.
    type Named = Result<(), (&'static str, bool)>;
    let cases: Vec<(&str, Named, Named)> = vec![
        ("pass", named(&limited, d), Ok(())),
        ("rate limited", named(&limited, d), Err(("RATE_LIMITED", true))),
        ("foreign organization", named(&restricted, foreign), Err(("FORBIDDEN_ORGANIZATION", true))),
        ("missing permission", named(&restricted, scope), Err(("INSUFFICIENT_PERMISSIONS", true))),
        ("customer not allowed", named(&restricted, customer), Err(("CUSTOMER_NOT_ALLOWED", true))),
        ("customer required", named(&restricted, d), Err(("CUSTOMER_REQUIRED", true))),
        ("revoked", named(&revoked.key, d), Err(("REVOKED", false))),
        ("wrong secret", named(&other_secret(&restricted), d), Err(("NOT_FOUND", false))),
        ("malformed", named("kg_live_nope", d), Err(("INVALID_FORMAT", false))),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, want, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Defects found while writing these tests, fixed since.

#[test]
fn create_key_names_a_missing_required_field() {
    let h = Harness::new();
    let owner = client(&h, &h.bootstrap().token);
    let before = store(&h);
    let reply = owner.post("keys", json!({ "name": "k" }));
    check("missing environment", &reply, 422, "INVALID_BODY");
    assert_eq!(json_of(&reply)["field"], "environment", "{}", reply.body);
    assert!(store(&h) == before, "the store changed");
}

#[test]
fn a_repeated_prefix_is_no_admin_route() {
    let h = Harness::new();
    let console = h.bootstrap();
    let reply = h.admin(request("GET", "/admin/v1/admin/v1/session").bearer(&console.token));
    check("repeated prefix", &reply, 404, "NOT_FOUND");
}
