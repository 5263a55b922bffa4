//! The objects' SQL logic on its own, over an in-memory SQLite: revisions applied in order whatever order events
//! arrive in, bounded storage, and one organization's activity never reaching another's.

use keygate_shared::api::{AuditAction, AuditEvent, KeyFilter};
use keygate_shared::key::{ApiKey, KeyId};
use keygate_shared::keyobject::{KeyEvent, KeyIndexRow};
use keygate_shared::model::{Environment, HeldRole, KeyRecord, KeyState, Organization, Permission, Role};
use keygate_shared::time::Timestamp;

use super::NOW;
use crate::org::{NewMember, Org, OrgError, OrgRefusal, OrgReply, OrgRequest, limits};
use crate::sql::SqlExt;
use crate::sql::memory::MemorySql;
use crate::user::{MAX_SESSIONS, User, UserReply, UserRequest};
use keygate_shared::requestlog::{LogQuery, RequestLogPage};

fn org_db(id: &str) -> MemorySql {
    let db = MemorySql::default();
    let create = OrgRequest::Create {
        organization: Organization { id: id.into(), name: "Acme".into(), created_at: NOW },
        owner: NewMember {
            user: "usr_owner".into(),
            email: "o@example.com".into(),
            name: "O".into(),
            role: Role::Owner,
        },
        audit: event("evt_create", id),
    };
    handle(&db, create);
    db
}

fn handle(db: &MemorySql, request: OrgRequest) -> OrgReply {
    match db.transaction(|db| Org { db }.handle(request)) {
        Ok(reply) => reply,
        Err(OrgError::Refused(r)) => panic!("refused: {r:?}"),
        Err(OrgError::Sql(e)) => panic!("sql: {e}"),
    }
}

fn event(id: &str, organization: &str) -> AuditEvent {
    AuditEvent {
        id: id.into(),
        at: NOW,
        organization: organization.into(),
        actor: Some("usr_owner".into()),
        actor_name: None,
        action: AuditAction::Rename,
        target: None,
        detail: "x".repeat(2_000),
    }
}

fn row(id: KeyId, revision: u64, name: &str, permissions: &[&str]) -> KeyIndexRow {
    let key = ApiKey::generate(Environment::Live).unwrap();
    let mut record = KeyRecord::issued(&key, "org_a", "usr_owner", name.into(), vec![], NOW);
    record.id = id;
    record.permissions = permissions.iter().map(|p| Permission::try_from(*p).unwrap()).collect();
    KeyIndexRow::of(&record, revision)
}

fn names(db: &MemorySql) -> Vec<String> {
    let list = OrgRequest::ListKeys {
        actor: "usr_owner".into(),
        filter: KeyFilter { include_deactivated: true, ..KeyFilter::default() },
        cursor: None,
        now: NOW,
    };
    match handle(db, list) {
        OrgReply::Keys { list } => list.keys.into_iter().map(|k| k.name).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn late_or_repeated_key_events_never_undo_newer_ones() {
    let db = org_db("org_a");
    let id = KeyId::parse("AAAAAAAAAAAAAA").unwrap();
    let committed = |revision, name: &str| KeyEvent::Committed { row: row(id, revision, name, &[]), audit: None };
    handle(&db, OrgRequest::KeyEvents { events: vec![committed(1, "one"), committed(3, "three")] });
    handle(&db, OrgRequest::KeyEvents { events: vec![committed(2, "two")] });
    assert_eq!(names(&db), ["three"], "revision 2 arrived late and must not win");
    let deleted =
        KeyEvent::Deleted { id, organization: "org_a".into(), owner: "usr_owner".into(), revision: 4, audit: None };
    handle(&db, OrgRequest::KeyEvents { events: vec![deleted] });
    handle(&db, OrgRequest::KeyEvents { events: vec![committed(3, "three")] });
    assert!(names(&db).is_empty(), "a deleted key came back");
}

#[test]
fn audit_events_are_stored_once_and_cut_to_size() {
    let db = org_db("org_a");
    let id = KeyId::parse("AAAAAAAAAAAAAA").unwrap();
    let with_audit = KeyEvent::Committed { row: row(id, 1, "k", &[]), audit: Some(event("evt_1", "org_a")) };
    handle(&db, OrgRequest::KeyEvents { events: vec![with_audit.clone()] });
    handle(&db, OrgRequest::KeyEvents { events: vec![with_audit] });
    let page = match handle(&db, OrgRequest::Audit { actor: "usr_owner".into(), cursor: None, now: NOW }) {
        OrgReply::Audit { page } => page,
        other => panic!("{other:?}"),
    };
    assert_eq!(page.events.iter().filter(|e| e.id == "evt_1").count(), 1, "a repeated delivery doubled the event");
    assert!(page.events.iter().all(|e| e.detail.chars().count() <= limits::AUDIT_DETAIL_CHARS));
}

#[test]
fn the_permission_catalog_counts_live_keys() {
    let db = org_db("org_a");
    let a = KeyId::parse("AAAAAAAAAAAAAA").unwrap();
    let b = KeyId::parse("BBBBBBBBBBBBBB").unwrap();
    let push = |event| {
        handle(&db, OrgRequest::KeyEvents { events: vec![event] });
    };
    push(KeyEvent::Committed { row: row(a, 1, "a", &["data:read", "data:write"]), audit: None });
    push(KeyEvent::Committed { row: row(b, 1, "b", &["data:read"]), audit: None });
    push(KeyEvent::Committed { row: row(a, 2, "a", &["data:write"]), audit: None });
    let mut deactivated = row(b, 2, "b", &["data:read"]);
    deactivated.state = KeyState::Deactivated;
    push(KeyEvent::Committed { row: deactivated, audit: None });
    let permissions = match handle(&db, OrgRequest::Session { actor: "usr_owner".into() }) {
        OrgReply::Session { permissions, .. } => permissions,
        other => panic!("{other:?}"),
    };
    let listed: Vec<(String, u64)> = permissions.into_iter().map(|p| (p.name, p.keys)).collect();
    assert_eq!(listed, vec![("data:write".to_owned(), 1)]);
}

/// Twenty thousand audit events in one organization: its log stays bounded and writable, and another
/// organization's log is untouched (they are different objects: nothing is shared to fill up).
/// The catalog lists what keys hold and what has been described, with the descriptions; a description can be
/// removed again, and the catalog keeps counting.
#[test]
fn the_permission_catalog_holds_descriptions() {
    let db = org_db("org_a");
    let a = KeyId::parse("AAAAAAAAAAAAAA").unwrap();
    handle(
        &db,
        OrgRequest::KeyEvents {
            events: vec![KeyEvent::Committed { row: row(a, 1, "a", &["data:read"]), audit: None }],
        },
    );
    let describe = |name: &str, description: Option<&str>, n: u32| {
        let request = OrgRequest::DescribePermission {
            actor: "usr_owner".into(),
            name: name.into(),
            description: description.map(str::to_owned),
            audit_id: format!("evt_describe_{n}"),
            now: NOW,
        };
        handle(&db, request);
    };
    describe("licenses:manage", Some("License Management"), 1);
    describe("data:read", Some("Read data"), 2);
    let catalog = || match handle(&db, OrgRequest::Permissions { actor: "usr_owner".into() }) {
        OrgReply::Permissions { permissions } => {
            permissions.into_iter().map(|p| (p.name, p.keys, p.description)).collect::<Vec<_>>()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        catalog(),
        vec![
            ("data:read".to_owned(), 1, Some("Read data".to_owned())),
            ("licenses:manage".to_owned(), 0, Some("License Management".to_owned())),
        ]
    );
    describe("licenses:manage", None, 3);
    assert_eq!(catalog(), vec![("data:read".to_owned(), 1, Some("Read data".to_owned()))]);
}

#[test]
fn one_organizations_audit_volume_never_touches_another() {
    let busy = org_db("org_busy");
    let quiet = org_db("org_quiet");
    let id = KeyId::parse("AAAAAAAAAAAAAA").unwrap();
    for n in 0..20_000u64 {
        let mut e = event(&format!("evt_{n}"), "org_busy");
        e.at = Timestamp(NOW.millis() + i64::try_from(n).unwrap());
        let committed = KeyEvent::Committed { row: row(id, n + 1, "k", &[]), audit: Some(e) };
        handle(&busy, OrgRequest::KeyEvents { events: vec![committed] });
    }
    let quiet_page = match handle(&quiet, OrgRequest::Audit { actor: "usr_owner".into(), cursor: None, now: NOW }) {
        OrgReply::Audit { page } => page,
        other => panic!("{other:?}"),
    };
    assert_eq!(quiet_page.events.len(), 1, "only its own creation");
    let rows = busy.conn.borrow().query_row("SELECT count(*) FROM audit", [], |r| r.get::<_, i64>(0)).unwrap();
    assert!(rows <= limits::AUDIT_ROWS + 100, "{rows}");
    // Still writable.
    handle(
        &busy,
        OrgRequest::KeyEvents {
            events: vec![KeyEvent::Committed {
                row: row(id, 30_000, "last", &[]),
                audit: Some(event("evt_last", "org_busy")),
            }],
        },
    );
    assert_eq!(names(&busy), ["last"]);
}

#[test]
fn a_user_holds_a_bounded_number_of_sessions() {
    let db = MemorySql::default();
    let user = |request| db.transaction(|db| User { db }.handle(request)).unwrap();
    let mut evicted = Vec::new();
    for n in 0..MAX_SESSIONS + 3 {
        let id = KeyId::parse(&format!("{n:0>14}")).unwrap();
        let session = keygate_shared::api::SessionInfo {
            id,
            label: format!("s{n}"),
            created_at: Timestamp(NOW.millis() + n),
            expires_at: NOW.plus_secs(86_400),
            last_used_at: None,
            current: false,
        };
        if let UserReply::Evicted { sessions } = user(UserRequest::AddSession { session }) {
            evicted.extend(sessions);
        }
    }
    assert_eq!(evicted.len(), 3, "the oldest three are handed back to be signed out");
    assert_eq!(evicted[0], KeyId::parse("00000000000000").unwrap());
}

/// Instill's per-organization usage: each key's cumulative counts by acting organization are summed across the
/// organization's keys by the difference each summary brings, so a repeated or late summary adds nothing; the
/// uses-left column follows the latest summary.
#[test]
fn usage_by_acting_organization_sums_every_keys_latest_summary_once() {
    use keygate_shared::api::{OrganizationUsage, UsageSummary};
    use std::collections::BTreeMap;
    let db = org_db("org_a");
    let (a, b) = (ApiKey::generate(Environment::Live).unwrap().id, ApiKey::generate(Environment::Live).unwrap().id);
    handle(
        &db,
        OrgRequest::KeyEvents {
            events: vec![
                KeyEvent::Committed { row: row(a, 1, "a", &[]), audit: None },
                KeyEvent::Committed { row: row(b, 1, "b", &[]), audit: None },
            ],
        },
    );
    let usage = |id: KeyId, at: i64, counts: &[(&str, u64)]| KeyEvent::Usage {
        id,
        organization: "org_a".into(),
        at: Timestamp(at),
        last_used_at: Some(Timestamp(at)),
        summary: UsageSummary { total: counts.iter().map(|(_, n)| n).sum(), ..UsageSummary::default() },
        by_organization: counts.iter().map(|(o, n)| ((*o).to_owned(), *n)).collect::<BTreeMap<_, _>>(),
    };
    handle(&db, OrgRequest::KeyEvents { events: vec![usage(a, 10, &[("org_a", 5), ("org_b", 2)])] });
    handle(&db, OrgRequest::KeyEvents { events: vec![usage(b, 11, &[("org_b", 3)])] });
    // Key a's next summary (cumulative): 3 more for org_b; then the old summary arrives again and adds nothing.
    handle(&db, OrgRequest::KeyEvents { events: vec![usage(a, 20, &[("org_a", 5), ("org_b", 5)])] });
    handle(&db, OrgRequest::KeyEvents { events: vec![usage(a, 10, &[("org_a", 5), ("org_b", 2)])] });
    let report = match handle(&db, OrgRequest::Usage { actor: "usr_owner".into() }) {
        OrgReply::Usage { usage } => usage.by_organization,
        _ => panic!("not usage"),
    };
    let org = |o: &str, n: u64| OrganizationUsage { organization: o.into(), requests: n };
    assert_eq!(report, vec![org("org_b", 8), org("org_a", 5)]);
}

fn logged(key: KeyId, n: u32, at: i64, status: u16) -> keygate_shared::requestlog::LoggedRequest {
    keygate_shared::requestlog::LoggedRequest {
        id: format!("iso-{key}-{n:x}"),
        at: Timestamp(at),
        key_id: key.to_string(),
        method: if status == 200 { "GET" } else { "POST" }.into(),
        path: format!("/data/{n}"),
        status,
        code: (status != 200).then(|| "RATE_LIMITED".to_owned()),
        latency_ms: 1,
        client_ip: Some("203.0.113.9".into()),
        organization: "org_a".into(),
        user_agent: None,
        country: None,
        permission: None,
    }
}

fn log_page(db: &MemorySql, actor: &str, pairs: &[(&str, &str)]) -> Result<RequestLogPage, OrgError> {
    let query = LogQuery::parse(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())).unwrap();
    let request = OrgRequest::RequestLog { actor: actor.into(), query, now: NOW };
    match db.transaction(|db| Org { db }.handle(request))? {
        OrgReply::RequestLog { page } => Ok(page),
        other => panic!("{other:?}"),
    }
}

/// Lines delivered twice are stored once; a key keeps its newest 1,000; nothing older than seven days is kept or
/// shown; filters and pages; a member sees only their own keys' lines, and another's key answers 404.
#[test]
fn the_request_log_is_bounded_filtered_and_shown_to_whom_it_belongs() {
    use keygate_shared::requestlog::{MAX_PER_KEY, RETENTION_MS};
    let db = org_db("org_a");
    let (mine, theirs) =
        (ApiKey::generate(Environment::Live).unwrap().id, ApiKey::generate(Environment::Live).unwrap().id);
    let mut their_row = row(theirs, 1, "theirs", &[]);
    their_row.owner = "usr_member".into();
    handle(
        &db,
        OrgRequest::KeyEvents {
            events: vec![
                KeyEvent::Committed { row: row(mine, 1, "mine", &[]), audit: None },
                KeyEvent::Committed { row: their_row, audit: None },
            ],
        },
    );
    db.run(
        "INSERT INTO members (user_id, email, name, role, joined_at) VALUES ('usr_member', 'm@example.com', 'M', 'member', 0)",
        &[],
    )
    .unwrap();
    let t0 = NOW.millis() - 60_000;
    let lines: Vec<_> =
        (0..1_010).map(|n| logged(mine, n, t0 + i64::from(n), if n % 10 == 0 { 429 } else { 200 })).collect();
    handle(&db, OrgRequest::LogRequests { lines: lines.clone(), now: NOW });
    handle(&db, OrgRequest::LogRequests { lines: lines[1_000..].to_vec(), now: NOW });
    let stale = logged(theirs, 1, NOW.millis() - RETENTION_MS - 1, 200);
    handle(&db, OrgRequest::LogRequests { lines: vec![logged(theirs, 2, t0, 200), stale], now: NOW });
    let count = |key: KeyId| {
        db.count("SELECT count(*) AS n FROM request_log WHERE key_id = ?", crate::params![key.as_str()]).unwrap()
    };
    assert_eq!(count(mine), MAX_PER_KEY, "the newest 1,000 of 1,010 (the repeated ten stored once)");
    assert_eq!(count(theirs), 1, "the line older than seven days is not kept");

    let page = log_page(&db, "usr_owner", &[("key", &mine.to_string()), ("limit", "100")]).unwrap();
    assert_eq!(page.requests.len(), 100);
    assert_eq!(page.requests[0].path, "/data/1009", "newest first");
    let cursor = page.next_cursor.expect("more pages");
    let next =
        log_page(&db, "usr_owner", &[("key", &mine.to_string()), ("limit", "100"), ("cursor", &cursor)]).unwrap();
    assert_eq!(next.requests[0].path, "/data/909");
    let limited = log_page(&db, "usr_owner", &[("status", "4xx"), ("method", "POST"), ("limit", "100")]).unwrap();
    assert_eq!(limited.requests.len(), 100);
    assert!(limited.requests.iter().all(|r| r.status == 429 && r.code.as_deref() == Some("RATE_LIMITED")));
    let by_path = log_page(&db, "usr_owner", &[("path", "/data/100")]).unwrap();
    let paths: Vec<_> = by_path.requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/data/1009",
            "/data/1008",
            "/data/1007",
            "/data/1006",
            "/data/1005",
            "/data/1004",
            "/data/1003",
            "/data/1002",
            "/data/1001",
            "/data/1000",
            "/data/100"
        ]
    );

    let member = log_page(&db, "usr_member", &[]).unwrap();
    assert_eq!(member.requests.len(), 1, "a member sees their own key's lines only");
    assert_eq!(member.requests[0].key_id, theirs.to_string());
    assert!(matches!(log_page(&db, "usr_member", &[("key", &mine.to_string())]), Err(OrgError::Refused(_))));
    assert!(matches!(log_page(&db, "usr_stranger", &[]), Err(OrgError::Refused(_))));
    assert_eq!(log_page(&db, "usr_owner", &[]).unwrap().requests.len(), 50, "owners see every key's lines");
}

/// However many keys send lines, the organization keeps at most its bound, the newest arrivals.
#[test]
fn an_organizations_request_log_is_bounded_in_all() {
    use keygate_shared::requestlog::MAX_PER_ORGANIZATION;
    let db = org_db("org_a");
    let keys: Vec<KeyId> = (0..120).map(|_| ApiKey::generate(Environment::Live).unwrap().id).collect();
    let t0 = NOW.millis() - 3_600_000;
    let per_batch = 1_000;
    let total = MAX_PER_ORGANIZATION as usize + 2 * per_batch;
    for start in (0..total).step_by(per_batch) {
        let lines =
            (start..start + per_batch).map(|n| logged(keys[n % keys.len()], n as u32, t0 + n as i64, 200)).collect();
        handle(&db, OrgRequest::LogRequests { lines, now: NOW });
    }
    assert_eq!(db.count("SELECT count(*) AS n FROM request_log", &[]).unwrap(), MAX_PER_ORGANIZATION);
    let oldest = db.count("SELECT min(at) AS n FROM request_log", &[]).unwrap();
    assert_eq!(oldest, t0 + 2 * per_batch as i64, "the oldest arrivals went");
}

fn perms(list: &[&str]) -> Vec<Permission> {
    list.iter().map(|p| Permission::try_from(*p).unwrap()).collect()
}

fn put_role(db: &MemorySql, name: &str, permissions: &[&str]) {
    let role = HeldRole { name: name.into(), permissions: perms(permissions) };
    let put = OrgRequest::PutRole {
        actor: "usr_owner".into(),
        role,
        description: None,
        audit_id: format!("evt_{name}_{}", permissions.len()),
        now: NOW,
    };
    handle(db, put);
}

fn holding(id: KeyId, revision: u64, roles: &[(&str, &[&str])]) -> KeyEvent {
    let mut row = row(id, revision, "k", &[]);
    row.roles = roles.iter().map(|(name, p)| HeldRole { name: (*name).into(), permissions: perms(p) }).collect();
    KeyEvent::Committed { row, audit: None }
}

/// Keys owed their definitions: (key, sync revision, roles as sent).
type Owed = Vec<(KeyId, i64, Vec<(String, Option<Vec<Permission>>)>)>;

fn owed(db: &MemorySql) -> Owed {
    db.transaction(|db| Org { db }.key_syncs()).unwrap().into_iter().map(|s| (s.key, s.revision, s.roles)).collect()
}

/// A role's keys are counted from the index; changing the role owes every key that holds it the new definition
/// (and no other key); a delivery acknowledged at an older revision than a later change leaves the key owed.
#[test]
fn a_changed_role_is_owed_to_every_key_that_holds_it_and_no_other() {
    let db = org_db("org_a");
    let (a, b, c) = (
        KeyId::parse("AAAAAAAAAAAAAA").unwrap(),
        KeyId::parse("BBBBBBBBBBBBBB").unwrap(),
        KeyId::parse("CCCCCCCCCCCCCC").unwrap(),
    );
    put_role(&db, "billing", &["invoices:read"]);
    put_role(&db, "support", &["tickets:read"]);
    let events = vec![
        holding(a, 1, &[("billing", &["invoices:read"])]),
        holding(b, 1, &[("billing", &["invoices:read"]), ("support", &["tickets:read"])]),
        holding(c, 1, &[("support", &["tickets:read"])]),
    ];
    handle(&db, OrgRequest::KeyEvents { events });
    assert!(owed(&db).is_empty(), "keys that hold the roles as defined are owed nothing");
    let counts = |db: &MemorySql| match handle(db, OrgRequest::Roles { actor: "usr_owner".into() }) {
        OrgReply::Roles { roles } => roles.into_iter().map(|r| (r.name, r.keys)).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(counts(&db), [("billing".to_owned(), 2), ("support".to_owned(), 2)]);

    put_role(&db, "billing", &["invoices:read", "invoices:write"]);
    let due = owed(&db);
    let keys: Vec<KeyId> = due.iter().map(|(k, _, _)| *k).collect();
    assert_eq!(keys, [a, b], "only the holders of billing");
    let wider = Some(perms(&["invoices:read", "invoices:write"]));
    assert_eq!(
        due[1].2,
        vec![("billing".to_owned(), wider.clone()), ("support".to_owned(), Some(perms(&["tickets:read"])))]
    );
    let first = due[0].1;

    // `a` is delivered; then billing changes again before `b`'s acknowledgement of the older revision arrives.
    handle(&db, OrgRequest::Synced { done: vec![(a.to_string(), first)] });
    put_role(&db, "billing", &["invoices:*"]);
    handle(&db, OrgRequest::Synced { done: vec![(b.to_string(), first)] });
    let keys: Vec<KeyId> = owed(&db).iter().map(|(k, _, _)| *k).collect();
    assert_eq!(keys, [a, b], "both still owe the newest definition");
    assert!(owed(&db).iter().all(|(_, revision, _)| *revision > first));

    // The keys take it: their index rows now match, and nothing more is owed once acknowledged.
    let due = owed(&db);
    handle(&db, OrgRequest::Synced { done: due.iter().map(|(k, r, _)| (k.to_string(), *r)).collect() });
    assert!(owed(&db).is_empty());
    // A role held by keys cannot be deleted; once no key holds it, it can.
    let delete = |name: &str| {
        db.transaction(|db| {
            Org { db }.handle(OrgRequest::DeleteRole {
                actor: "usr_owner".into(),
                name: name.into(),
                audit_id: format!("evt_del_{name}"),
                now: NOW,
            })
        })
    };
    assert!(
        matches!(delete("support"), Err(OrgError::Refused(OrgRefusal::Conflict { code, .. })) if code == "ROLE_IN_USE")
    );
    handle(
        &db,
        OrgRequest::KeyEvents { events: vec![holding(b, 2, &[("billing", &["invoices:*"])]), holding(c, 2, &[])] },
    );
    assert_eq!(counts(&db), [("billing".to_owned(), 2), ("support".to_owned(), 0)]);
    assert!(matches!(delete("support"), Ok(OrgReply::Done)));
    assert!(matches!(delete("support"), Err(OrgError::Refused(OrgRefusal::NotFound { .. }))));
}

/// A key given a role's definition that changed (or was deleted) while the change was on its way is owed the
/// definition as it now is, at a newer revision than any sent before.
#[test]
fn a_key_committed_with_a_stale_role_is_owed_the_current_one() {
    let db = org_db("org_a");
    let a = KeyId::parse("AAAAAAAAAAAAAA").unwrap();
    put_role(&db, "billing", &["invoices:read", "invoices:write"]);
    handle(
        &db,
        OrgRequest::KeyEvents { events: vec![holding(a, 1, &[("billing", &["invoices:read"]), ("gone", &["x:y"])])] },
    );
    let due = owed(&db);
    assert_eq!(due.len(), 1);
    assert_eq!(
        due[0].2,
        vec![("billing".to_owned(), Some(perms(&["invoices:read", "invoices:write"]))), ("gone".to_owned(), None)]
    );
    // Deleting the key drops what it was owed.
    let deleted =
        KeyEvent::Deleted { id: a, organization: "org_a".into(), owner: "usr_owner".into(), revision: 2, audit: None };
    handle(&db, OrgRequest::KeyEvents { events: vec![deleted] });
    assert!(owed(&db).is_empty());
}

/// An identity counts its keys from the index; changing it owes each of its keys the new definition (and no other
/// key); it cannot be deleted while a key belongs to it; its external id is unique.
#[test]
fn a_changed_identity_is_owed_to_its_keys_and_no_other() {
    use keygate_shared::api::UpdateIdentityRequest;
    use keygate_shared::model::KeyIdentity;
    let db = org_db("org_a");
    let identity = KeyIdentity {
        id: "idn_IIIIIIIIIIIIII".into(),
        external_id: "cus_1".into(),
        name: "One".into(),
        meta: None,
        rate_limit: None,
    };
    let create = |identity: KeyIdentity| {
        db.transaction(|db| {
            Org { db }.handle(OrgRequest::CreateIdentity {
                actor: "usr_owner".into(),
                identity,
                audit_id: "evt_idn".into(),
                now: NOW,
            })
        })
    };
    assert!(matches!(create(identity.clone()), Ok(OrgReply::Identity { .. })));
    let twin = KeyIdentity { id: "idn_JJJJJJJJJJJJJJ".into(), ..identity.clone() };
    assert!(
        matches!(create(twin), Err(OrgError::Refused(OrgRefusal::Conflict { .. }))),
        "an external id is unique in the organization"
    );
    let (a, b) = (KeyId::parse("AAAAAAAAAAAAAA").unwrap(), KeyId::parse("BBBBBBBBBBBBBB").unwrap());
    let mut of_identity = row(a, 1, "a", &[]);
    of_identity.identity = Some(identity.clone());
    handle(
        &db,
        OrgRequest::KeyEvents {
            events: vec![
                KeyEvent::Committed { row: of_identity, audit: None },
                KeyEvent::Committed { row: row(b, 1, "b", &[]), audit: None },
            ],
        },
    );
    assert!(owed(&db).is_empty());
    let keys = |db: &MemorySql| match handle(db, OrgRequest::Identity { actor: "usr_owner".into(), id: "cus_1".into() })
    {
        OrgReply::Identity { identity } => identity.keys,
        other => panic!("{other:?}"),
    };
    assert_eq!(keys(&db), 1, "looked up by its external id");

    let change = UpdateIdentityRequest {
        rate_limit: Some(Some(keygate_shared::model::RateLimitPolicy::per(10, 60))),
        ..Default::default()
    };
    handle(
        &db,
        OrgRequest::UpdateIdentity {
            actor: "usr_owner".into(),
            id: identity.id.clone(),
            change,
            audit_id: "evt_idn_2".into(),
            now: NOW,
        },
    );
    let due = db.transaction(|db| Org { db }.key_syncs()).unwrap();
    assert_eq!(due.len(), 1, "only the identity's key");
    assert_eq!(due[0].key, a);
    let sent = due[0].identity.clone().unwrap();
    assert_eq!(sent.now.and_then(|i| i.rate_limit).map(|p| p.requests), Some(10));

    let delete = || {
        db.transaction(|db| {
            Org { db }.handle(OrgRequest::DeleteIdentity {
                actor: "usr_owner".into(),
                id: "cus_1".into(),
                audit_id: "evt_idn_3".into(),
                now: NOW,
            })
        })
    };
    assert!(matches!(delete(), Err(OrgError::Refused(OrgRefusal::Conflict { code, .. })) if code == "IDENTITY_IN_USE"));
    handle(&db, OrgRequest::KeyEvents { events: vec![KeyEvent::Committed { row: row(a, 2, "a", &[]), audit: None }] });
    assert_eq!(keys(&db), 0);
    assert!(matches!(delete(), Ok(OrgReply::Done)));
}

mod webhooks {
    use keygate_shared::api::AuditAction;
    use keygate_shared::key::{ApiKey, KeyId};
    use keygate_shared::keyobject::KeyEvent;
    use keygate_shared::model::Environment;
    use keygate_shared::time::Timestamp;
    use keygate_shared::webhook::{
        CreateWebhookRequest, DeliveryState, DeliveryView, EventType, MAX_ATTEMPTS, UpdateWebhookRequest, WebhookEvent,
        verify,
    };

    use super::{NOW, event, handle, org_db, row};
    use crate::org::{DeliveryOutcome, Org, OrgError, OrgRefusal, OrgReply, OrgRequest};
    use crate::sql::memory::MemorySql;

    fn create(db: &MemorySql, id: &str, events: Vec<EventType>) {
        let request =
            CreateWebhookRequest { url: format!("https://hooks.example.com/{id}"), events, description: None };
        handle(
            db,
            OrgRequest::CreateWebhook {
                actor: "usr_owner".into(),
                id: id.into(),
                request,
                secret: format!("whsec_{id}"),
                audit_id: format!("evt_{id}"),
                now: NOW,
            },
        );
    }

    fn lifecycle(db: &MemorySql, key: KeyId, revision: u64, action: AuditAction, audit_id: &str) {
        let mut audit = event(audit_id, "org_a");
        audit.action = action;
        audit.detail = format!("{action:?}");
        audit.target = Some(key.to_string());
        let row = row(key, revision, "Checkout", &[]);
        handle(db, OrgRequest::KeyEvents { events: vec![KeyEvent::Committed { row, audit: Some(audit) }] });
    }

    fn log(db: &MemorySql, webhook: &str) -> Vec<DeliveryView> {
        match handle(db, OrgRequest::Deliveries { actor: "usr_owner".into(), id: webhook.into() }) {
            OrgReply::Deliveries { deliveries } => deliveries.deliveries,
            other => panic!("{other:?}"),
        }
    }

    fn due(db: &MemorySql, at: Timestamp) -> Vec<crate::org::DueDelivery> {
        db.transaction(|db| Org { db }.due_deliveries(at)).unwrap()
    }

    fn outcome(db: &MemorySql, id: &str, status: Option<u16>, at: Timestamp) -> Option<Timestamp> {
        let outcomes = vec![DeliveryOutcome { id: id.into(), status, error: None }];
        db.transaction(|db| Org { db }.delivery_outcomes(&outcomes, at)).unwrap()
    }

    /// A key's lifecycle event reaches the webhooks that subscribe to it, once however often the event is
    /// delivered; a failed attempt is retried after a second, then two; a 2xx ends it; events nobody subscribes to
    /// queue nothing.
    #[test]
    fn events_are_queued_per_subscriber_retried_with_backoff_and_delivered_once() {
        let db = org_db("org_a");
        create(&db, "whk_revokes", vec![EventType::KeyRevoked]);
        create(&db, "whk_all", vec![]);
        let key = ApiKey::generate(Environment::Live).unwrap().id;
        lifecycle(&db, key, 1, AuditAction::Create, "evt_c");
        lifecycle(&db, key, 2, AuditAction::Rename, "evt_r");
        lifecycle(&db, key, 3, AuditAction::Revoke, "evt_v");
        // The same event again (a retried delivery from the key's object): nothing more.
        lifecycle(&db, key, 3, AuditAction::Revoke, "evt_v");
        let types = |w| log(&db, w).iter().map(|d| d.event_type).collect::<Vec<_>>();
        assert_eq!(types("whk_revokes"), vec![EventType::KeyRevoked]);
        assert_eq!(types("whk_all"), vec![EventType::KeyRevoked, EventType::KeyCreated]);

        let now = due(&db, NOW);
        assert_eq!(now.len(), 3);
        let revoked = now.iter().find(|d| d.url.ends_with("whk_revokes")).unwrap();
        let body: WebhookEvent = serde_json::from_str(&revoked.body).unwrap();
        assert_eq!(
            (body.id.as_str(), body.kind, body.key.as_ref().map(|k| k.id)),
            ("evt_v", EventType::KeyRevoked, Some(key))
        );
        assert_eq!(body.key.unwrap().name, "Checkout");
        assert_eq!(revoked.secret, "whsec_whk_revokes");

        // The receiver fails once: the next attempt is a second later, not before.
        let next = outcome(&db, &revoked.id, Some(500), NOW);
        let first = &log(&db, "whk_revokes")[0];
        assert_eq!((first.state, first.attempts, first.last_status), (DeliveryState::Pending, 1, Some(500)));
        assert_eq!(first.last_error.as_deref(), Some("The receiver answered 500."));
        assert_eq!(first.next_attempt_at, Some(NOW.plus_secs(1)));
        assert_eq!(next, Some(NOW), "the other two are still due now");
        assert!(!due(&db, NOW.plus_secs(0)).iter().any(|d| d.id == revoked.id));
        assert!(due(&db, NOW.plus_secs(1)).iter().any(|d| d.id == revoked.id));
        outcome(&db, &revoked.id, None, NOW.plus_secs(1));
        assert_eq!(log(&db, "whk_revokes")[0].next_attempt_at, Some(NOW.plus_secs(3)));
        outcome(&db, &revoked.id, Some(204), NOW.plus_secs(3));
        let done = &log(&db, "whk_revokes")[0];
        assert_eq!(
            (done.state, done.attempts, done.delivered_at),
            (DeliveryState::Delivered, 3, Some(NOW.plus_secs(3)))
        );
        assert_eq!(done.next_attempt_at, None);
        // A late outcome of a delivered attempt changes nothing.
        outcome(&db, &revoked.id, Some(500), NOW.plus_secs(4));
        assert_eq!(log(&db, "whk_revokes")[0].state, DeliveryState::Delivered);
    }

    #[test]
    fn a_delivery_gives_up_after_its_last_attempt_and_a_disabled_webhook_gets_nothing() {
        let db = org_db("org_a");
        create(&db, "whk_a", vec![]);
        let ping = OrgRequest::TestWebhook {
            actor: "usr_owner".into(),
            id: "whk_a".into(),
            event_id: "evt_p".into(),
            now: NOW,
        };
        handle(&db, ping);
        let id = log(&db, "whk_a")[0].id.clone();
        let mut at = NOW;
        for _ in 0..MAX_ATTEMPTS {
            assert_eq!(due(&db, at).len(), 1);
            at = outcome(&db, &id, Some(503), at).unwrap_or(at);
        }
        let failed = &log(&db, "whk_a")[0];
        assert_eq!((failed.state, failed.attempts), (DeliveryState::Failed, MAX_ATTEMPTS));
        assert!(due(&db, at.plus_secs(86_400)).is_empty());

        let off = UpdateWebhookRequest { enabled: Some(false), ..Default::default() };
        handle(
            &db,
            OrgRequest::UpdateWebhook {
                actor: "usr_owner".into(),
                id: "whk_a".into(),
                change: off,
                audit_id: "evt_off".into(),
                now: NOW,
            },
        );
        lifecycle(&db, ApiKey::generate(Environment::Live).unwrap().id, 1, AuditAction::Revoke, "evt_x");
        assert_eq!(log(&db, "whk_a").len(), 1, "nothing queued for a disabled webhook");
    }

    /// Receivers can check what they get with the documented scheme.
    #[test]
    fn what_is_posted_verifies_with_the_webhooks_secret() {
        let db = org_db("org_a");
        create(&db, "whk_a", vec![]);
        lifecycle(&db, ApiKey::generate(Environment::Live).unwrap().id, 1, AuditAction::Create, "evt_c");
        let delivery = due(&db, NOW).remove(0);
        let header = keygate_shared::webhook::sign(&delivery.secret, NOW, delivery.body.as_bytes());
        assert_eq!(verify("whsec_whk_a", &header, delivery.body.as_bytes(), NOW), Ok(()));
    }

    /// A logged request of a canary key is a trip: kept (once, however often the queue delivers the line), audited,
    /// and raised as `canary.tripped`; an ordinary key's refusals are not trips.
    #[test]
    fn a_canary_keys_logged_request_is_a_trip_audited_and_raised_once() {
        let db = org_db("org_a");
        create(&db, "whk_a", vec![EventType::CanaryTripped]);
        let canary = ApiKey::generate(Environment::Live).unwrap().id;
        let plain = ApiKey::generate(Environment::Live).unwrap().id;
        let mut canary_row = row(canary, 1, "AWS backup (canary)", &[]);
        canary_row.canary = true;
        handle(
            &db,
            OrgRequest::KeyEvents {
                events: vec![
                    KeyEvent::Committed { row: canary_row, audit: None },
                    KeyEvent::Committed { row: row(plain, 1, "plain", &[]), audit: None },
                ],
            },
        );
        let mut line = super::logged(canary, 1, NOW.millis(), 401);
        line.code = Some("NOT_FOUND".into());
        line.user_agent = Some("curl/8.5.0".into());
        line.country = Some("NL".into());
        let mut other = super::logged(plain, 2, NOW.millis(), 401);
        other.code = Some("NOT_FOUND".into());
        for _ in 0..2 {
            handle(&db, OrgRequest::LogRequests { lines: vec![line.clone(), other.clone()], now: NOW });
        }
        let trips = match handle(&db, OrgRequest::Trips { actor: "usr_owner".into(), key: None }) {
            OrgReply::Trips { trips } => trips.trips,
            other => panic!("{other:?}"),
        };
        assert_eq!(trips.len(), 1, "{trips:?}");
        assert_eq!((trips[0].key_id, trips[0].key_name.as_str()), (canary, "AWS backup (canary)"));
        assert_eq!((trips[0].user_agent.as_deref(), trips[0].country.as_deref()), (Some("curl/8.5.0"), Some("NL")));
        let queued = log(&db, "whk_a");
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].event_type, EventType::CanaryTripped);
        let body: WebhookEvent = serde_json::from_str(&due(&db, NOW)[0].body).unwrap();
        assert_eq!(body.key.map(|k| k.id), Some(canary));
        assert!(
            body.detail.contains("POST /data/1 from 203.0.113.9 (NL)") && body.detail.contains("curl/8.5.0"),
            "{}",
            body.detail
        );
        // A stranger sees nothing; naming another key is answered as not found.
        let stranger = db.transaction(|db| Org { db }.handle(OrgRequest::Trips { actor: "usr_x".into(), key: None }));
        assert!(matches!(stranger, Err(OrgError::Refused(OrgRefusal::NotMember))));
    }

    fn announce(db: &MemorySql, at: Timestamp) -> bool {
        db.transaction(|db| Org { db }.announce_expiries(at)).unwrap()
    }

    fn next_expiry(db: &MemorySql, at: Timestamp) -> Option<Timestamp> {
        db.transaction(|db| Org { db }.next_expiry(at)).unwrap()
    }

    fn kinds(db: &MemorySql, webhook: &str) -> Vec<EventType> {
        let mut kinds: Vec<EventType> = log(db, webhook).into_iter().map(|d| d.event_type).collect();
        kinds.reverse();
        kinds
    }

    /// With a fake clock: expiries are announced when they come, in order, once each, a batch at a time; the
    /// alarm is told when the next one is due; a deactivated key's expiry says nothing; a key whose expiry moved
    /// later is announced again when that comes; the audit log keeps `expired`.
    #[test]
    fn expiries_are_announced_once_in_order_when_they_come() {
        let db = org_db("org_a");
        create(&db, "whk_a", vec![EventType::KeyExpired]);
        assert_eq!(next_expiry(&db, NOW), None, "nothing expires: no alarm");
        let at = |s: i64| NOW.plus_secs(s);
        let mut events = Vec::new();
        let mut ids = Vec::new();
        for n in 0..(crate::org::EXPIRY_BATCH + 3) {
            let id = ApiKey::generate(Environment::Live).unwrap().id;
            let mut key = row(id, 1, &format!("k{n}"), &[]);
            // Three keys expire in a minute; the rest together in an hour.
            key.expires_at = Some(if n < 3 { at(60) } else { at(3_600) });
            if n == 1 {
                key.state = keygate_shared::model::KeyState::Deactivated;
            }
            ids.push(id);
            events.push(KeyEvent::Committed { row: key, audit: None });
        }
        handle(&db, OrgRequest::KeyEvents { events });
        assert_eq!(next_expiry(&db, NOW), Some(at(60)));
        assert!(!announce(&db, at(30)), "nothing is due yet");
        assert!(log(&db, "whk_a").is_empty());
        assert!(!announce(&db, at(61)));
        assert_eq!(kinds(&db, "whk_a"), [EventType::KeyExpired; 2], "two: the deactivated key says nothing");
        assert!(!announce(&db, at(62)), "announced once");
        assert_eq!(log(&db, "whk_a").len(), 2);
        assert_eq!(next_expiry(&db, at(62)), Some(at(3_600)));
        // Fifty at once: a batch, and the alarm comes back for the rest.
        assert!(announce(&db, at(3_601)), "more are due");
        assert!(!announce(&db, at(3_601)));
        assert_eq!(log(&db, "whk_a").len(), 2 + crate::org::EXPIRY_BATCH as usize);
        assert_eq!(next_expiry(&db, at(3_601)), None);
        // Everything so far delivered; then a key whose expiry was moved a day later (revision 2) expires again then.
        loop {
            let pending = due(&db, at(3_601));
            if pending.is_empty() {
                break;
            }
            for delivery in pending {
                outcome(&db, &delivery.id, Some(204), at(3_601));
            }
        }
        let mut moved = row(ids[0], 2, "k0", &[]);
        moved.expires_at = Some(at(86_400));
        handle(&db, OrgRequest::KeyEvents { events: vec![KeyEvent::Committed { row: moved, audit: None }] });
        assert_eq!(next_expiry(&db, at(3_601)), Some(at(86_400)));
        assert!(!announce(&db, at(86_400)));
        let body: WebhookEvent = serde_json::from_str(&due(&db, at(86_400))[0].body).unwrap();
        assert_eq!((body.kind, body.key.map(|k| k.id)), (EventType::KeyExpired, Some(ids[0])));
        assert_eq!(body.created_at, at(86_400));
        let audit = match handle(
            &db,
            OrgRequest::Audit { actor: "usr_owner".into(), cursor: None, now: NOW.plus_secs(86_400) },
        ) {
            OrgReply::Audit { page } => page.events,
            other => panic!("{other:?}"),
        };
        assert_eq!(audit[0].action, AuditAction::Expired);
        assert_eq!((audit[0].target.as_deref(), audit[0].actor.as_deref()), (Some(ids[0].to_string().as_str()), None));
        assert!(audit.iter().all(|e| e.action == AuditAction::Expired), "the newest page is all expiries");
    }

    /// A key refused for its rate limit raises `key.rate_limited` once an hour at most, however many refusals
    /// (and repeats of the same line) the log brings.
    #[test]
    fn rate_limited_is_raised_at_most_hourly_per_key() {
        let db = org_db("org_a");
        create(&db, "whk_a", vec![EventType::KeyRateLimited]);
        let id = ApiKey::generate(Environment::Live).unwrap().id;
        let mut key = row(id, 1, "busy", &[]);
        key.rate_limit = Some(keygate_shared::model::RateLimitPolicy {
            requests: 10,
            window_seconds: 60,
            burst: None,
            mode: Default::default(),
        });
        handle(&db, OrgRequest::KeyEvents { events: vec![KeyEvent::Committed { row: key, audit: None }] });
        let refusals = |from: i64| (0..20).map(|n| super::logged(id, n, from + i64::from(n), 429)).collect::<Vec<_>>();
        handle(&db, OrgRequest::LogRequests { lines: refusals(NOW.millis()), now: NOW });
        handle(&db, OrgRequest::LogRequests { lines: refusals(NOW.millis()), now: NOW });
        let later = NOW.plus_secs(1_800);
        handle(&db, OrgRequest::LogRequests { lines: refusals(later.millis()), now: later });
        assert_eq!(kinds(&db, "whk_a"), [EventType::KeyRateLimited]);
        let body: WebhookEvent = serde_json::from_str(&due(&db, NOW)[0].body).unwrap();
        assert!(body.detail.contains("10 requests per 60 s"), "{}", body.detail);
        let hour_on = NOW.plus_secs(3_601);
        handle(&db, OrgRequest::LogRequests { lines: refusals(hour_on.millis()), now: hour_on });
        assert_eq!(kinds(&db, "whk_a"), [EventType::KeyRateLimited; 2], "an hour on, again");
    }

    /// Usage summaries of a usage-limited key raise `key.uses_low` as its uses left fall to a tenth of its limit
    /// and `key.uses_exhausted` at zero, once each, whatever summaries follow.
    #[test]
    fn usage_summaries_raise_uses_low_then_exhausted_once() {
        let db = org_db("org_a");
        create(&db, "whk_a", vec![EventType::KeyUsesLow, EventType::KeyUsesExhausted]);
        let id = ApiKey::generate(Environment::Live).unwrap().id;
        let mut key = row(id, 1, "metered", &[]);
        key.usage_limit = Some(keygate_shared::model::UsageLimit { uses: 20, refill: None });
        handle(&db, OrgRequest::KeyEvents { events: vec![KeyEvent::Committed { row: key, audit: None }] });
        let summary = |s: i64, remaining: u64| KeyEvent::Usage {
            id,
            organization: "org_a".into(),
            at: NOW.plus_secs(s),
            last_used_at: Some(NOW.plus_secs(s)),
            summary: keygate_shared::api::UsageSummary { remaining: Some(remaining), ..Default::default() },
            by_organization: Default::default(),
        };
        for (s, left) in [(1, 15), (2, 3), (3, 2), (4, 2), (5, 0), (6, 0)] {
            handle(&db, OrgRequest::KeyEvents { events: vec![summary(s, left)] });
        }
        assert_eq!(kinds(&db, "whk_a"), [EventType::KeyUsesLow, EventType::KeyUsesExhausted]);
        let body: WebhookEvent = serde_json::from_str(&due(&db, NOW.plus_secs(9))[0].body).unwrap();
        assert_eq!(body.detail, "2 uses left (low: 2 or fewer)");
    }

    fn rotate(
        db: &MemorySql,
        actor: &str,
        secret: &str,
        previous_ms: i64,
        at: Timestamp,
    ) -> Result<OrgReply, OrgError> {
        let rotate = OrgRequest::RotateWebhookSecret {
            actor: actor.into(),
            id: "whk_a".into(),
            secret: secret.into(),
            previous_ms,
            audit_id: format!("evt_rot_{secret}"),
            now: at,
        };
        db.transaction(|db| Org { db }.handle(rotate))
    }

    /// A rotated secret signs from then on; the previous one signs beside it for as long as asked (receivers
    /// holding either accept), then stops; `0` stops it at once; someone outside the organization cannot rotate.
    #[test]
    fn a_rotated_secret_signs_beside_the_previous_one_until_it_expires() {
        let db = org_db("org_a");
        create(&db, "whk_a", vec![]);
        let stranger = rotate(&db, "usr_stranger", "whsec_theirs", 0, NOW);
        assert!(matches!(stranger, Err(OrgError::Refused(OrgRefusal::NotMember))), "{stranger:?}");
        rotate(&db, "usr_owner", "whsec_new", 3_600_000, NOW).unwrap();
        let ping = |n: u32, at: Timestamp| {
            let ping = OrgRequest::TestWebhook {
                actor: "usr_owner".into(),
                id: "whk_a".into(),
                event_id: format!("evt_p{n}"),
                now: at,
            };
            handle(&db, ping);
            let delivery = due(&db, at).pop().unwrap();
            outcome(&db, &delivery.id, Some(200), at);
            delivery
        };
        let during = ping(1, NOW.plus_secs(60));
        assert_eq!((during.secret.as_str(), during.previous_secret.as_deref()), ("whsec_new", Some("whsec_whk_a")));
        let secrets = [during.secret.as_str(), "whsec_whk_a"];
        let header = keygate_shared::webhook::sign_with(&secrets, NOW, during.body.as_bytes());
        for held in ["whsec_new", "whsec_whk_a"] {
            assert_eq!(verify(held, &header, during.body.as_bytes(), NOW), Ok(()), "a receiver holding {held}");
        }
        assert!(verify("whsec_other", &header, during.body.as_bytes(), NOW).is_err());
        let after = ping(2, NOW.plus_secs(3_601));
        assert_eq!(after.previous_secret, None, "an hour on, only the new secret signs");
        rotate(&db, "usr_owner", "whsec_newer", 0, NOW.plus_secs(4_000)).unwrap();
        let now_only = ping(3, NOW.plus_secs(4_001));
        assert_eq!((now_only.secret.as_str(), now_only.previous_secret), ("whsec_newer", None), "0: at once");
    }

    #[test]
    fn members_cannot_see_or_change_webhooks_and_the_log_is_bounded() {
        let db = org_db("org_a");
        create(&db, "whk_a", vec![]);
        let refused = db.transaction(|db| Org { db }.handle(OrgRequest::Webhooks { actor: "usr_stranger".into() }));
        assert!(matches!(refused, Err(OrgError::Refused(OrgRefusal::NotMember))), "{refused:?}");
        for n in 0..(keygate_shared::webhook::DELIVERY_LOG + 20) {
            let ping = OrgRequest::TestWebhook {
                actor: "usr_owner".into(),
                id: "whk_a".into(),
                event_id: format!("evt_{n}"),
                now: NOW,
            };
            handle(&db, ping);
            let id = due(&db, NOW).remove(0).id;
            outcome(&db, &id, Some(200), NOW);
        }
        assert_eq!(log(&db, "whk_a").len(), keygate_shared::webhook::DELIVERY_LOG);
        for n in 0..10 {
            let request = CreateWebhookRequest { url: format!("https://h.example/{n}"), ..Default::default() };
            let create = OrgRequest::CreateWebhook {
                actor: "usr_owner".into(),
                id: format!("whk_{n}"),
                request,
                secret: "s".into(),
                audit_id: format!("evt_w{n}"),
                now: NOW,
            };
            let answer = db.transaction(|db| Org { db }.handle(create));
            assert_eq!(answer.is_ok(), n < 9, "at most ten webhooks ({n})");
        }
    }
}

/// The request log's passing lines tell the organization which route permissions each key used, and when last;
/// refusals do not count. With a fake clock 40 days on, an unused grant is suggested for removal and a wildcard for
/// narrowing.
#[test]
fn passing_requests_record_permission_use_and_old_grants_are_suggested_away() {
    use keygate_shared::privilege::SuggestionKind;
    let db = org_db("org_a");
    let id = ApiKey::generate(Environment::Live).unwrap().id;
    let mut key_row = row(id, 1, "wide", &["data:read", "data:write", "billing:*"]);
    key_row.created_at = NOW;
    handle(&db, OrgRequest::KeyEvents { events: vec![KeyEvent::Committed { row: key_row, audit: None }] });
    let line = |n: u32, status: u16, permission: &str| {
        let mut l = logged(id, n, NOW.millis() + i64::from(n), status);
        l.permission = Some(permission.into());
        l
    };
    let lines = vec![line(1, 200, "data:read"), line(2, 200, "billing:invoices:read"), line(3, 403, "data:write")];
    handle(&db, OrgRequest::LogRequests { lines, now: NOW });
    // The key was used today (as the usage summary says).
    let usage = KeyEvent::Usage {
        id,
        organization: "org_a".into(),
        at: NOW,
        last_used_at: Some(NOW),
        summary: keygate_shared::api::UsageSummary { total: 3, ..Default::default() },
        by_organization: Default::default(),
    };
    handle(&db, OrgRequest::KeyEvents { events: vec![usage] });
    let ask = |at: Timestamp| match handle(&db, OrgRequest::Suggestions { actor: "usr_owner".into(), key: id, now: at })
    {
        OrgReply::Suggestions { list } => list,
        other => panic!("{other:?}"),
    };
    let today = ask(NOW);
    let observed: Vec<&str> = today.observed.iter().map(|u| u.permission.as_str()).collect();
    assert_eq!(observed, ["billing:invoices:read", "data:read"], "a refused request uses nothing");
    assert!(today.suggestions.is_empty(), "a key younger than 30 days gets no suggestion");
    // Forty days on, with a use of data:read yesterday and nothing else since.
    let later = NOW.plus_secs(40 * 86_400);
    let lines = vec![{
        let mut l = logged(id, 9, later.millis() - 86_400_000, 200);
        l.permission = Some("data:read".into());
        l
    }];
    handle(&db, OrgRequest::LogRequests { lines, now: later });
    let usage = KeyEvent::Usage {
        id,
        organization: "org_a".into(),
        at: later,
        last_used_at: Some(Timestamp(later.millis() - 86_400_000)),
        summary: keygate_shared::api::UsageSummary { total: 4, ..Default::default() },
        by_organization: Default::default(),
    };
    handle(&db, OrgRequest::KeyEvents { events: vec![usage] });
    let kinds: Vec<(SuggestionKind, Option<String>)> =
        ask(later).suggestions.into_iter().map(|s| (s.kind, s.permission.map(|p| p.as_str().to_owned()))).collect();
    assert_eq!(
        kinds,
        [
            (SuggestionKind::RemoveUnused, Some("data:write".into())),
            (SuggestionKind::RemoveUnused, Some("billing:*".into()))
        ]
    );
    // Another member cannot read another's key's suggestions (answered as unknown).
    let stranger =
        db.transaction(|db| Org { db }.handle(OrgRequest::Suggestions { actor: "usr_x".into(), key: id, now: NOW }));
    assert!(matches!(stranger, Err(OrgError::Refused(OrgRefusal::NotMember))));
}
