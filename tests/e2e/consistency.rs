//! The control plane under concurrency and failure, against real workerd: concurrent changes to one key serialize
//! in its object and none undoes another, organizations never mix, and a failed write is retried until it holds
//! while the admin's answer says what was committed (`KEYGATE_TEST_FAULTS`, a test-only switch).

use std::time::{Duration, Instant};

use keygate_e2e::{Config, Console, Worker, gateway, json};

fn status_of(console: &Console, id: &str) -> String {
    console.call("GET", &format!("/keys/{id}"), None).json()["status"].as_str().unwrap_or_default().to_owned()
}

/// Listed status (from the organization's index, which the key's object updates behind the change).
fn listed_status(console: &Console, id: &str) -> Option<String> {
    let page = console.call("GET", "/keys?include_deactivated=true", None).json();
    page["keys"].as_array()?.iter().find(|k| k["id"] == id).map(|k| k["status"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn a_rename_racing_a_deactivation_leaves_the_key_deactivated_fifty_times_out_of_fifty() {
    let owner = Console::shared_owner();
    for round in 0..50 {
        let (_, id, _) = owner.create_key(&json!({"name": format!("race {round}"), "environment": "live"}));
        let (a, b) = (owner.clone(), owner.clone());
        let (id_a, id_b) = (id.clone(), id.clone());
        let rename = std::thread::spawn(move || {
            a.call("PATCH", &format!("/keys/{id_a}"), Some(&json!({"name": format!("renamed {round}")}))).status
        });
        let deactivate = std::thread::spawn(move || b.action(&id_b, "deactivate").status);
        let (renamed, deactivated) = (rename.join().unwrap(), deactivate.join().unwrap());
        assert_eq!(deactivated, 200, "round {round}");
        // The rename either came first (200) or found the key final (409); it never undid the deactivation.
        assert!(renamed == 200 || renamed == 409, "round {round}: rename answered {renamed}");
        assert_eq!(status_of(owner, &id), "deactivated", "round {round}");
        assert_eq!(listed_status(owner, &id).as_deref(), Some("deactivated"), "round {round}: the index disagrees");
    }
}

#[test]
fn concurrent_creates_in_two_organizations_stay_apart() {
    let worker = Worker::start(Config::default());
    let acme = Console::bootstrap(&worker);
    let other = acme.call("POST", "/organizations", Some(&json!({"name": "Other"})));
    let other = Console { acting_for: Some(other.json()["id"].as_str().unwrap().to_owned()), ..acme.clone() };
    let spawn = |console: Console, tag: &'static str| {
        std::thread::spawn(move || {
            (0..15)
                .map(|n| console.create_key(&json!({"name": format!("{tag} {n}"), "environment": "live"})).1)
                .collect::<Vec<String>>()
        })
    };
    let (a, b) = (spawn(acme.clone(), "acme"), spawn(other.clone(), "other"));
    let (mut made_a, mut made_b) = (a.join().unwrap(), b.join().unwrap());
    let listed = |c: &Console| -> Vec<String> {
        let mut ids: Vec<String> = c.call("GET", "/keys", None).json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    made_a.sort();
    made_b.sort();
    assert_eq!(listed(&acme), made_a);
    assert_eq!(listed(&other), made_b);
}

#[test]
fn a_failed_kv_write_during_a_revocation_is_retried_until_the_key_stops() {
    let worker = Worker::start(Config { vars: vec![("KEYGATE_TEST_FAULTS".into(), "kv".into())], ..Config::default() });
    let owner = Console::bootstrap(&worker);
    let (key, id, _) =
        owner.create_key(&json!({"name": "to revoke", "environment": "live", "permissions": ["data:read"]}));
    assert_eq!(gateway(&worker.base, "GET", "/data/x", &key).status, 200);
    let revoked = owner.action(&id, "revoke");
    assert_eq!(revoked.status, 200, "the revocation is committed: {}", revoked.body);
    assert_eq!(revoked.header("keygate-propagation"), Some("pending"), "and the answer says KV is still owed");
    // KV still holds the active record until the key's object retries (alarm, 1 s backoff).
    assert_eq!(gateway(&worker.base, "GET", "/data/x", &key).status, 200, "the injected failure took effect");
    let start = Instant::now();
    let mut last = 200;
    while start.elapsed() < Duration::from_secs(20) {
        last = gateway(&worker.base, "GET", "/data/x", &key).status;
        if last == 401 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(last, 401, "the key still passes 20 s after its revocation");
    eprintln!("revocation reached the gateway {} ms after a failed KV write", start.elapsed().as_millis());
    // A repeated revoke is refused (it is revoked), and the key stays refused.
    owner.action(&id, "revoke").expect_problem(409, "ILLEGAL_TRANSITION");
}

#[test]
fn regenerate_with_the_audit_write_failing_still_returns_the_secret() {
    let worker =
        Worker::start(Config { vars: vec![("KEYGATE_TEST_FAULTS".into(), "audit".into())], ..Config::default() });
    let owner = Console::bootstrap(&worker);
    let (old, id, _) =
        owner.create_key(&json!({"name": "rotating", "environment": "live", "permissions": ["data:read"]}));
    let regenerated = owner.action(&id, "regenerate");
    assert_eq!(regenerated.status, 200, "{}", regenerated.body);
    assert_eq!(regenerated.header("keygate-propagation"), Some("pending"));
    let fresh = regenerated.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(gateway(&worker.base, "GET", "/data/x", &fresh).status, 200, "the new secret works");
    assert_eq!(gateway(&worker.base, "GET", "/data/x", &old).status, 401);
    // The audit event arrives with the key object's retry.
    let start = Instant::now();
    let seen = loop {
        let audit = owner.call("GET", "/audit", None).json();
        let found = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "regenerate" && e["target"] == id.as_str());
        if found || start.elapsed() > Duration::from_secs(20) {
            break found;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(seen, "the regeneration never reached the audit log");
    eprintln!("the audit event arrived {} ms after a failed delivery", start.elapsed().as_millis());
}

/// Twenty thousand audit events in one organization (seeded straight into its object by a test build) leave another
/// organization's log untouched and every write of both working: each organization's log is its own object's.
#[test]
fn twenty_thousand_audit_events_in_one_organization_leave_another_untouched() {
    let worker = Worker::start(Config { vars: vec![("KEYGATE_TEST_SEED".into(), "1".into())], ..Config::default() });
    let busy = Console::bootstrap(&worker);
    let created = busy.call("POST", "/organizations", Some(&json!({"name": "Quiet"})));
    let quiet = Console { acting_for: Some(created.json()["id"].as_str().unwrap().to_owned()), ..busy.clone() };
    let before = quiet.call("GET", "/audit", None).body;
    let seeded = busy.call("POST", "/test/seed", Some(&json!({"audit": 20000})));
    assert_eq!(seeded.status, 204, "{}", seeded.body);
    // Writes keep working in the busy organization, and its log pages on.
    let (_, id, _) = busy.create_key(&json!({"name": "after the flood", "environment": "live"}));
    let page = busy.call("GET", "/audit", None).json();
    assert_eq!(page["events"][0]["target"], id.as_str(), "the newest event is the new key's");
    assert!(page["next_cursor"].is_string());
    // The quiet organization's log is exactly what it was, and it still takes writes.
    assert_eq!(quiet.call("GET", "/audit", None).body, before);
    let (_, quiet_key, _) = quiet.create_key(&json!({"name": "quiet", "environment": "live"}));
    assert_eq!(quiet.call("GET", "/audit", None).json()["events"][0]["target"], quiet_key.as_str());
}
