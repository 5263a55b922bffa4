//! The admin API over the in-memory objects: bootstrap, invitations (the account takeover stays closed), sessions,
//! members, projects, the key lifecycle, listing, and the audit log.

use serde_json::{Value, json};

use super::{Build, Harness, check, code_of, json_of, redeem, request};

// ---------------------------------------------------------------------------------------------------------------
// Bootstrap and sign-in

#[test]
fn bootstrap_happens_once_and_needs_the_secret() {
    let h = Harness::new();
    let boot = |token: &str| h.admin(request("POST", "/admin/v1/bootstrap").bearer(token));
    check("wrong secret", &boot("nope"), 401, "NOT_FOUND");
    let owner = h.bootstrap();
    check("again", &boot("boot"), 409, "ALREADY_BOOTSTRAPPED");
    check("the owner signs in", &owner.get("session"), 200, "");
    let session = json_of(&owner.get("session"));
    assert_eq!(session["user"]["role"], "owner");
    assert_eq!(session["organization"]["id"], owner.organization.as_str());
    assert_eq!(session["organizations"].as_array().map(Vec::len), Some(1));
    assert!(session["token_expires_at"].is_string(), "{session}");
}

#[test]
fn a_bootstrap_that_stopped_half_way_resumes_with_the_same_ids() {
    let h = Harness::new();
    // The flag is reserved, then storage fails before the first token exists.
    let begin = super::block_on(crate::store::Stores::bootstrap(
        &h.memory,
        crate::bootstrap::BootstrapRequest::Begin {
            organization: "org_AAAAAAAAAAAAAA".into(),
            user: "usr_BBBBBBBBBBBBBB".into(),
        },
    ));
    assert!(begin.is_ok());
    let owner = h.bootstrap();
    assert_eq!(owner.organization, "org_AAAAAAAAAAAAAA");
    assert_eq!(owner.user, "usr_BBBBBBBBBBBBBB");
    check(
        "and only once",
        &h.admin(request("POST", "/admin/v1/bootstrap").bearer("boot")),
        409,
        "ALREADY_BOOTSTRAPPED",
    );
}

#[test]
fn bad_console_tokens_are_refused_clearly() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let token = |t: &str| h.admin(request("GET", "/admin/v1/session").bearer(t));
    check("no token", &h.admin(request("GET", "/admin/v1/session")), 401, "MISSING_CREDENTIAL");
    check("garbage", &token("nope"), 401, "INVALID_FORMAT");
    let (key, _) = owner.create_key(json!({}));
    check("an API key is no console token", &token(&key), 401, "WRONG_PROJECT");
    let forged = keygate_shared::ApiKey::generate(keygate_shared::Environment::Live).unwrap().expose();
    let calls = h.memory.calls.borrow().get("key").copied();
    check("a forged token", &token(&forged), 401, "NOT_FOUND");
    assert_eq!(h.memory.calls.borrow().get("key").copied(), calls, "a forged token reached an object");
}

#[test]
fn failed_sign_ins_are_limited_per_source_and_audited_once_a_minute() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let (key, _) = owner.create_key(json!({}));
    let wrong = super::other_secret(&owner.token);
    let from = |ip: &str| h.admin(request("GET", "/admin/v1/session").bearer(&wrong).header("cf-connecting-ip", ip));
    for _ in 0..crate::config::SIGN_IN_FAILURES_PER_MINUTE {
        check("under the limit", &from("203.0.113.7"), 401, "NOT_FOUND");
    }
    check("over the limit", &from("203.0.113.7"), 429, "TOO_MANY_FAILED_SIGN_INS");
    check("another source", &from("198.51.100.1"), 401, "NOT_FOUND");
    check("the real token still signs in", &owner.get("session"), 200, "");
    let failed = audit_actions(&owner).iter().filter(|a| *a == "sign_in_failed").count();
    assert_eq!(failed, 1, "failed sign-ins flood the audit log");
    let _ = key;
}

// ---------------------------------------------------------------------------------------------------------------
// The account takeover, step by step, stays closed

#[test]
fn a_member_cannot_take_over_the_owner_through_another_organization() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let (_, owners_key) = owner.create_key(json!({ "name": "owner's key" }));
    // 1. The owner invites Mallory as a member; she redeems it for her own token.
    let mallory = owner.invite_new("mallory@example.com", "member");
    // 2. Mallory creates an organization of her own (any signed-in user may).
    let evil = json_of(&mallory.post("organizations", json!({ "name": "evil" })))["id"].as_str().unwrap().to_owned();
    // 3. She "invites" the owner's email there: she gets an invitation code, never a token.
    let reply = mallory
        .in_org(&evil)
        .post("invitations", json!({ "email": "owner@keygate.local", "name": "x", "role": "member" }));
    check("invite in her own organization", &reply, 201, "");
    let body = json_of(&reply);
    assert!(body.get("console_token").is_none(), "an invitation hands out a token: {body}");
    let code = body["code"].as_str().unwrap().to_owned();
    // Redeeming it makes a *new* user, not the owner.
    let stranger = redeem(&h, &code);
    assert_ne!(stranger.user, owner.user);
    // 4. Neither Mallory nor that new user reaches the owner's organization or keys.
    check("mallory lists the owner's keys", &mallory.get("keys"), 200, "");
    assert_eq!(json_of(&mallory.get("keys"))["keys"], json!([]));
    check("mallory regenerates the owner's key", &mallory.act(&owners_key, "regenerate"), 404, "NOT_FOUND");
    check(
        "the stranger acts for the owner's org",
        &stranger.in_org(&owner.organization).get("keys"),
        403,
        "FORBIDDEN_ORGANIZATION",
    );
    // No answer anywhere carried a console token of the owner.
    check("the owner's key is untouched", &owner.get(&format!("keys/{owners_key}")), 200, "");
}

#[test]
fn invitations_are_single_use_expire_and_can_be_revoked() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let code = owner.invite("a@example.com", "member");
    let redeem_code =
        |code: &str| h.admin(request("POST", "/admin/v1/invitations/redeem").json(json!({ "code": code })));
    check("first use", &redeem_code(&code), 201, "");
    check("reuse", &redeem_code(&code), 410, "INVITATION_INVALID");
    let late = owner.invite("b@example.com", "member");
    h.advance_secs(7 * 86_400);
    check("expired", &redeem_code(&late), 410, "INVITATION_INVALID");
    let revoked = owner.invite("c@example.com", "admin");
    let id = json_of(&owner.get("invitations"))["invitations"][0]["id"].as_str().unwrap().to_owned();
    check("revoke", &owner.delete(&format!("invitations/{id}")), 204, "");
    check("revoked", &redeem_code(&revoked), 410, "INVITATION_INVALID");
    check("made up", &redeem_code("kginv_AAAAAAAAAAAAAA_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 410, "INVITATION_INVALID");
    check("malformed", &redeem_code("nope"), 410, "INVITATION_INVALID");
    // Guessing is limited per source, like failed sign-ins.
    for _ in 0..crate::config::SIGN_IN_FAILURES_PER_MINUTE {
        let _ = redeem_code("nope");
    }
    check("guessing", &redeem_code("nope"), 429, "TOO_MANY_FAILED_SIGN_INS");
}

#[test]
fn an_existing_user_accepts_an_invitation_with_their_own_token() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let other = json_of(&owner.post("organizations", json!({ "name": "Other" })))["id"].as_str().unwrap().to_owned();
    let alice = owner.invite_new("alice@example.com", "member");
    let code = owner.in_org(&other).invite("alice@example.com", "admin");
    check("accept", &alice.post("invitations/accept", json!({ "code": code })), 200, "");
    let session = json_of(&alice.in_org(&other).get("session"));
    assert_eq!(session["user"]["role"], "admin");
    assert_eq!(session["organizations"].as_array().map(Vec::len), Some(2));
    check("accepting again", &alice.post("invitations/accept", json!({ "code": code })), 410, "INVITATION_INVALID");
}

#[test]
fn members_cannot_invite_and_admins_cannot_invite_owners() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let member = owner.invite_new("m@example.com", "member");
    let admin = owner.invite_new("a@example.com", "admin");
    let invite = |c: &super::Client<'_>, role: &str| {
        c.post("invitations", json!({ "email": "x@example.com", "name": "x", "role": role }))
    };
    check("member invites", &invite(&member, "member"), 403, "FORBIDDEN");
    check("admin invites an owner", &invite(&admin, "owner"), 403, "FORBIDDEN");
    check("admin invites a member", &invite(&admin, "member"), 201, "");
    check("owner invites an owner", &invite(&owner, "owner"), 201, "");
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions and members

#[test]
fn sessions_are_listed_signed_out_and_revoked_by_their_user_only() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let second = json_of(&owner.post("sessions", json!({ "label": "laptop" })));
    let second_token = second["console_token"].as_str().unwrap().to_owned();
    let second_id = second["session"]["id"].as_str().unwrap().to_owned();
    let list = json_of(&owner.get("sessions"));
    assert_eq!(list["sessions"].as_array().map(Vec::len), Some(2));
    assert_eq!(list["sessions"].as_array().unwrap().iter().filter(|s| s["current"] == true).count(), 1);
    // Another member cannot sign the owner's session out.
    let member = owner.invite_new("m@example.com", "member");
    check("someone else's session", &member.delete(&format!("sessions/{second_id}")), 404, "NOT_FOUND");
    // The owner revokes the second session: it stops at once.
    check("revoke", &owner.delete(&format!("sessions/{second_id}")), 204, "");
    check("revoked token", &h.admin(request("GET", "/admin/v1/session").bearer(&second_token)), 401, "NOT_FOUND");
    // Signing out the current token.
    check("sign out", &member.delete("sessions/current"), 204, "");
    check("signed out", &member.get("session"), 401, "NOT_FOUND");
}

#[test]
fn console_tokens_expire() {
    let h = Harness::new();
    let owner = h.bootstrap();
    h.advance_secs(30 * 86_400);
    check("after 30 days", &owner.get("session"), 401, "EXPIRED");
}

#[test]
fn a_removed_member_is_stopped_at_once() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let member = owner.invite_new("m@example.com", "member");
    let (_, key) = member.create_key(json!({}));
    check("the member works", &member.get("keys"), 200, "");
    let members = json_of(&owner.get("members"));
    assert_eq!(members["members"].as_array().map(Vec::len), Some(2));
    let joined =
        members["members"].as_array().unwrap().iter().find(|m| m["id"] == member.user.as_str()).unwrap().clone();
    assert_eq!(joined["email"], "m@example.com", "the member is who the invitation named");
    check("a member cannot remove the owner", &member.delete(&format!("members/{}", owner.user)), 403, "FORBIDDEN");
    check("remove", &owner.delete(&format!("members/{}", member.user)), 204, "");
    check("removed: every token stops", &member.get("keys"), 403, "FORBIDDEN_ORGANIZATION");
    check("removed: keys too", &member.act(&key, "revoke"), 403, "FORBIDDEN_ORGANIZATION");
    // The gateway's view of the member's organizations (KV) no longer lists it.
    let kv = h.memory.kv.borrow().get(&format!("user:{}", member.user)).cloned().unwrap_or_default();
    assert!(!kv.contains(&owner.organization), "{kv}");
    check("the last owner stays", &owner.delete(&format!("members/{}", owner.user)), 409, "LAST_OWNER");
}

// ---------------------------------------------------------------------------------------------------------------
// Keys

fn audit_actions(client: &super::Client<'_>) -> Vec<String> {
    json_of(&client.get("audit"))["events"]
        .as_array()
        .map(|events| events.iter().map(|e| e["action"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn the_key_lifecycle_story() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let (_, id) = owner.create_key(json!({ "name": "Main", "permissions": ["data:read"] }));
    let status = |c: &super::Client<'_>| {
        json_of(&c.get(&format!("keys/{id}")))["status"].as_str().unwrap_or_default().to_owned()
    };
    check("rename", &owner.patch(&format!("keys/{id}"), json!({ "name": "Renamed" })), 200, "");
    check("revoke", &owner.act(&id, "revoke"), 200, "");
    assert_eq!(status(&owner), "inactive");
    check("revoke twice", &owner.act(&id, "revoke"), 409, "ILLEGAL_TRANSITION");
    check("activate", &owner.act(&id, "activate"), 200, "");
    check("delete an active key", &owner.delete(&format!("keys/{id}")), 409, "ILLEGAL_TRANSITION");
    check("deactivate", &owner.act(&id, "deactivate"), 200, "");
    check("activate a deactivated key", &owner.act(&id, "activate"), 409, "ILLEGAL_TRANSITION");
    check("delete", &owner.delete(&format!("keys/{id}")), 204, "");
    check("gone", &owner.get(&format!("keys/{id}")), 404, "NOT_FOUND");
    assert_eq!(
        audit_actions(&owner),
        ["delete", "deactivate", "activate", "revoke", "rename", "create", "bootstrap"].map(String::from)
    );
}

#[test]
fn a_key_revoked_by_an_admin_comes_back_only_by_a_managers_decision() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let member = owner.invite_new("m@example.com", "member");
    let admin = owner.invite_new("a@example.com", "admin");
    let (_, id) = member.create_key(json!({}));
    check("the admin revokes the member's leaked key", &admin.act(&id, "revoke"), 200, "");
    check("the member cannot undo it", &member.act(&id, "activate"), 403, "REVOKED_BY_OTHER");
    check("the owner can", &owner.act(&id, "activate"), 200, "");
    let events = json_of(&owner.get("audit"))["events"].clone();
    let activate = events.as_array().unwrap().iter().find(|e| e["action"] == "activate").unwrap().clone();
    assert_eq!(activate["actor"], owner.user.as_str());
    assert_eq!(activate["actor_name"], "Owner");
    let detail = activate["detail"].as_str().unwrap();
    assert!(detail.contains(&admin.user) && detail.contains("a@example.com"), "both names: {activate}");
    // A member's own revocation is theirs to undo.
    check("revoke own", &member.act(&id, "revoke"), 200, "");
    check("activate own", &member.act(&id, "activate"), 200, "");
}

#[test]
fn members_see_only_their_own_keys_and_admins_see_all() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let member = owner.invite_new("m@example.com", "member");
    let admin = owner.invite_new("a@example.com", "admin");
    let (_, owners) = owner.create_key(json!({}));
    let (_, members) = member.create_key(json!({}));
    let ids = |c: &super::Client<'_>| -> Vec<String> {
        json_of(&c.get("keys"))["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&member), vec![members.clone()]);
    assert_eq!(ids(&admin).len(), 2);
    check("member reads the owner's key", &member.get(&format!("keys/{owners}")), 404, "NOT_FOUND");
    check("admin reads it", &admin.get(&format!("keys/{owners}")), 200, "");
    check("admin renames it", &admin.patch(&format!("keys/{owners}"), json!({ "name": "x" })), 403, "NOT_KEY_OWNER");
    check("admin regenerates it", &admin.act(&owners, "regenerate"), 403, "NOT_KEY_OWNER");
}

#[test]
fn members_read_only_their_own_part_of_the_audit_log() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let member = owner.invite_new("m@example.com", "member");
    let admin = owner.invite_new("a@example.com", "admin");
    let (_, owners) = owner.create_key(json!({ "name": "owner's" }));
    let (_, members) = member.create_key(json!({ "name": "member's" }));
    check("admin revokes the member's key", &admin.act(&members, "revoke"), 200, "");
    check("owner renames", &owner.patch(&format!("keys/{owners}"), json!({ "name": "secret plans" })), 200, "");
    let seen = json_of(&member.get("audit"))["events"].clone();
    let text = seen.to_string();
    assert!(!text.contains("secret plans"), "a member reads others' events: {text}");
    assert!(seen.as_array().unwrap().iter().any(|e| e["action"] == "revoke"), "the revocation of their key: {text}");
    assert!(seen.as_array().unwrap().iter().any(|e| e["action"] == "create"), "their own actions: {text}");
    assert!(json_of(&owner.get("audit")).to_string().contains("secret plans"));
}

#[test]
fn organizations_never_see_each_other() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let other = json_of(&owner.post("organizations", json!({ "name": "Other" })))["id"].as_str().unwrap().to_owned();
    let in_other = owner.in_org(&other);
    let (_, home_key) = owner.create_key(json!({}));
    let (_, other_key) = in_other.create_key(json!({}));
    assert_eq!(json_of(&in_other.get("keys"))["keys"].as_array().map(Vec::len), Some(1));
    check("a key of another organization", &in_other.get(&format!("keys/{home_key}")), 404, "NOT_FOUND");
    check("revoke across", &owner.act(&other_key, "revoke"), 404, "NOT_FOUND");
    check("not a member", &owner.in_org("org_ZZZZZZZZZZZZZZ").get("keys"), 403, "FORBIDDEN_ORGANIZATION");
}

#[test]
fn listing_filters_and_pages_in_the_index() {
    let h = Harness::new();
    let owner = h.bootstrap();
    check("project", &owner.post("projects", json!({ "slug": "shop", "name": "Shop" })), 201, "");
    for i in 0..120 {
        h.advance_secs(1);
        let env = if i % 3 == 0 { "test" } else { "live" };
        let project = if i % 2 == 0 { json!("shop") } else { Value::Null };
        owner.create_key(json!({ "name": format!("k{i}"), "environment": env, "project": project }));
    }
    let calls_before = h.memory.calls.borrow().get("key").copied().unwrap_or(0);
    let page = json_of(&owner.get("keys"));
    assert_eq!(page["keys"].as_array().map(Vec::len), Some(50));
    assert_eq!(page["keys"][0]["name"], "k119", "newest first");
    // One key object is called: the console token's (sign-in); none of the 120 listed keys' objects.
    assert_eq!(h.memory.calls.borrow().get("key").copied().unwrap_or(0), calls_before + 1, "listing calls key objects");
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("keys?environment=live&cursor={c}"),
            None => "keys?environment=live".into(),
        };
        let page = json_of(&owner.get(&path));
        let keys = page["keys"].as_array().unwrap();
        assert!(keys.iter().all(|k| k["environment"] == "live"));
        seen += keys.len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 80);
    let shop = json_of(&owner.get("keys?project=shop&environment=test"));
    assert_eq!(shop["keys"].as_array().map(Vec::len), Some(20));
    check("bad cursor", &owner.get("keys?cursor=4294967295"), 422, "VALIDATION_FAILED");
    check("bad status", &owner.get("keys?status=gone"), 422, "VALIDATION_FAILED");
}

#[test]
fn invalid_mutations_are_refused_and_change_nothing() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let (_, id) = owner.create_key(json!({}));
    let before = h.stored();
    let key = format!("keys/{id}");
    let regenerate = format!("keys/{id}/regenerate");
    // (case, method, path, body, status, code)
    type Case<'a> = (&'a str, &'a str, &'a str, Option<Value>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("no name", "POST", "keys", Some(json!({ "environment": "live" })), 422, "INVALID_BODY"),
        ("bad environment", "POST", "keys", Some(json!({ "name": "k", "environment": "prod" })), 422, "INVALID_BODY"),
        (
            "unknown field",
            "POST",
            "keys",
            Some(json!({ "name": "k", "environment": "live", "x": 1 })),
            422,
            "INVALID_BODY",
        ),
        (
            "unknown project",
            "POST",
            "keys",
            Some(json!({ "name": "k", "environment": "live", "project": "nope" })),
            422,
            "VALIDATION_FAILED",
        ),
        ("empty update", "PATCH", &key, Some(json!({})), 400, "EMPTY_UPDATE"),
        ("long name", "PATCH", &key, Some(json!({ "name": "x".repeat(101) })), 422, "VALIDATION_FAILED"),
        (
            "bad limit",
            "PATCH",
            &key,
            Some(json!({ "rate_limit": { "requests": 0, "window_seconds": 1 } })),
            422,
            "VALIDATION_FAILED",
        ),
        ("bad slug", "POST", "projects", Some(json!({ "slug": "No Slug", "name": "x" })), 422, "VALIDATION_FAILED"),
        (
            "bad email",
            "POST",
            "invitations",
            Some(json!({ "email": "nope", "name": "x", "role": "member" })),
            422,
            "VALIDATION_FAILED",
        ),
        ("bad grace", "POST", &regenerate, Some(json!({ "grace_seconds": 9_999_999 })), 422, "VALIDATION_FAILED"),
        ("malformed", "POST", "keys", None, 400, "INVALID_BODY"),
    ];
    for (name, method, path, body, status, code) in cases {
        check(name, &owner.send(method, path, body), status, code);
    }
    assert!(h.stored() == before, "a refused request changed the store");
}

#[test]
fn regenerate_returns_the_secret_even_when_the_audit_write_fails() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let (old, id) = owner.create_key(json!({}));
    h.memory.faults.key_events.set(true);
    let reply = owner.act(&id, "regenerate");
    check("regenerate", &reply, 200, "");
    assert_eq!(reply.header("keygate-propagation"), Some("pending"));
    let fresh = json_of(&reply)["key"].as_str().unwrap().to_owned();
    assert_ne!(fresh, old);
    // The key's object holds the event until the organization takes it.
    assert!(!audit_actions(&owner).contains(&"regenerate".to_owned()));
    h.memory.faults.key_events.set(false);
    h.memory.flush_key(&keygate_shared::key::KeyId::parse(&id).unwrap());
    assert!(audit_actions(&owner).contains(&"regenerate".to_owned()), "the audit event arrived late, but arrived");
}

#[test]
fn a_failed_kv_write_is_owed_until_it_holds() {
    let h = Harness::new();
    let owner = h.bootstrap();
    let (_, id) = owner.create_key(json!({}));
    let key_id = keygate_shared::key::KeyId::parse(&id).unwrap();
    h.memory.faults.kv.set(true);
    let revoked = owner.act(&id, "revoke");
    check("revoke commits", &revoked, 200, "");
    assert_eq!(revoked.header("keygate-propagation"), Some("pending"), "the answer says KV is still owed");
    assert_eq!(revoked.header("keygate-revision"), Some("2"));
    let in_kv = || h.memory.kv.borrow().get(&format!("key:{id}")).cloned().unwrap_or_default();
    assert!(in_kv().contains("\"active\""), "KV still has the old record while the write fails");
    assert!(h.memory.keys.borrow()[&key_id].0.kv_owed, "the object knows it owes KV");
    // A retried revoke is refused (it is revoked), but the owed write is retried and lands.
    h.memory.faults.kv.set(false);
    check("revoke again", &owner.act(&id, "revoke"), 409, "ILLEGAL_TRANSITION");
    h.memory.flush_key(&key_id);
    assert!(in_kv().contains("\"revoked\""), "{}", in_kv());
    assert!(!h.memory.keys.borrow()[&key_id].0.kv_owed);
}

#[test]
fn a_storage_failure_changes_nothing_and_says_so() {
    let h = Harness::new();
    let owner = h.bootstrap();
    h.memory.faults.objects.set(true);
    let reply = owner.get("keys");
    check("down", &reply, 503, "STORAGE_UNAVAILABLE");
    assert_eq!(reply.header("retry-after"), Some("1"));
    h.memory.faults.objects.set(false);
    check("back", &owner.get("keys"), 200, "");
    let _ = code_of(&reply);
}

#[test]
fn seeding_exists_only_in_test_builds_and_only_for_owners() {
    let mut h = Harness::new();
    let owner = h.bootstrap();
    check("no switch", &owner.post("test/seed", json!({ "keys": 5 })), 404, "NOT_FOUND");
    let (token, user, organization) = (owner.token.clone(), owner.user.clone(), owner.organization.clone());
    h.config.test_seed = true;
    let owner = super::Client { h: &h, token, user, organization, acting_for: None };
    let member = owner.invite_new("m@example.com", "member");
    check("a member", &member.post("test/seed", json!({ "keys": 5 })), 403, "FORBIDDEN");
    check("seed", &owner.post("test/seed", json!({ "keys": 120, "audit": 60 })), 204, "");
    assert!(json_of(&owner.get("audit"))["next_cursor"].is_string());
    let page = json_of(&owner.get("keys"));
    assert_eq!(page["keys"].as_array().map(Vec::len), Some(50));
    assert!(page["next_cursor"].is_string());
}
