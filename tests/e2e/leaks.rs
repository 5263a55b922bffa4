//! Leak reports on a real workerd: `POST /v1/leaks`, signed as GitHub's secret scanning signs its alerts, labels
//! each token; a live key is recorded by its organization (audit, `key.leaked` webhook, the key's leaks) and
//! revoked at once, or kept working when the organization chose "alert only".

use keygate_e2e::{Answer, Console, json, leaks, post_json, request, shared};
use keygate_shared::leak::token_hash;

use crate::webhooks::hooked;

fn report(body: &str) -> Answer {
    let signature = leaks::sign(body);
    let headers =
        [("github-public-key-identifier", leaks::KEY_ID), ("github-public-key-signature", signature.as_str())];
    request("POST", &format!("{}/v1/leaks", shared().base), &headers, Some(body))
}

fn passes(key: &str) -> bool {
    keygate_e2e::gateway(&shared().base, "GET", "/data/x", key).status == 200
}

#[test]
fn a_reported_live_key_is_revoked_recorded_and_raised_and_look_alikes_are_false_positives() {
    let (org, receiver, _, _) = hooked("leaks-revoke", json!(["key.leaked", "key.revoked"]));
    let (key, id, _) = org.create_key(&json!({"name": "leaked", "environment": "live", "permissions": ["data:read"]}));
    assert!(passes(&key));
    let wrong_secret = {
        let parsed: keygate_shared::key::ApiKey = key.parse().unwrap();
        parsed.with_new_secret().unwrap().expose()
    };
    let body = json!([
        {"token": key, "type": "keygate_api_key", "url": "https://github.com/acme/app/blob/main/.env", "source": "content"},
        {"token": wrong_secret, "type": "keygate_api_key", "url": "https://github.com/acme/app", "source": "commit"},
        {"token": "kg_live_not_a_key", "type": "keygate_api_key"}
    ])
    .to_string();
    let answer = report(&body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let labels = answer.json();
    assert_eq!(labels[0]["label"], "true_positive", "{labels}");
    assert_eq!(labels[0]["token_hash"], token_hash(&key).as_str());
    assert_eq!(
        (labels[1]["label"].as_str(), labels[2]["label"].as_str()),
        (Some("false_positive"), Some("false_positive"))
    );
    assert!(!answer.body.contains(&key), "the answer never carries a token back");

    // Revoked at once (the isolate that forwarded the report has no cached record of it; others within the bound).
    keygate_e2e::eventually("the leaked key stops", || !passes(&key));
    let view = org.call("GET", &format!("/keys/{id}"), None).json();
    assert_eq!(view["status"], "inactive", "{view}");
    let leaks = org.call("GET", &format!("/keys/{id}/leaks"), None).json();
    assert_eq!(leaks["leaks"][0]["url"], "https://github.com/acme/app/blob/main/.env", "{leaks}");
    assert_eq!(leaks["leaks"][0]["revoked"], true);
    keygate_e2e::eventually("key.leaked and key.revoked are posted", || {
        let got = receiver.received();
        ["key.leaked", "key.revoked"].iter().all(|t| got.iter().any(|r| r.header("keygate-event") == Some(t)))
    });
    let actions = org.audit_actions(&id);
    assert_eq!(&actions[..2], ["revoke", "leaked"], "{actions:?}");
}

#[test]
fn an_organization_that_chose_alert_only_keeps_its_leaked_key_working() {
    let org = Console::shared_owner().new_organization("leaks-alert");
    let set = org.call("PATCH", "/organization/settings", Some(&json!({"leak_response": "alert"})));
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.json()["leak_response"], "alert");
    let (key, id, _) = org.create_key(&json!({"name": "watched", "environment": "live", "permissions": ["data:read"]}));
    let body = json!([{"token": key, "type": "keygate_api_key", "url": "https://gist.github.com/x", "source": "gist"}]);
    let answer = report(&body.to_string());
    assert_eq!(answer.json()[0]["label"], "true_positive", "{}", answer.body);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(passes(&key), "alert only: the key keeps working");
    let leaks = org.call("GET", &format!("/keys/{id}/leaks"), None).json();
    assert_eq!(
        (leaks["leaks"][0]["revoked"].as_bool(), leaks["leaks"][0]["source"].as_str()),
        (Some(false), Some("gist"))
    );
}

/// Only a configured reporter may report: an unsigned report, one signed for another body or by an unknown key id,
/// or a hostile body, revokes nothing.
#[test]
fn an_unsigned_or_forged_leak_report_revokes_nothing() {
    let (key, _, _) = Console::shared_owner()
        .create_key(&json!({"name": "target", "environment": "live", "permissions": ["data:read"]}));
    let body = json!([{"token": key, "type": "keygate_api_key"}]).to_string();
    let url = format!("{}/v1/leaks", shared().base);
    post_json(&url, &[], &json!([{"token": key}])).expect_problem(401, "INVALID_SIGNATURE");
    let other = leaks::sign("[]");
    request(
        "POST",
        &url,
        &[("github-public-key-identifier", leaks::KEY_ID), ("github-public-key-signature", other.as_str())],
        Some(&body),
    )
    .expect_problem(401, "INVALID_SIGNATURE");
    let signature = leaks::sign(&body);
    request(
        "POST",
        &url,
        &[("github-public-key-identifier", "someone-else"), ("github-public-key-signature", signature.as_str())],
        Some(&body),
    )
    .expect_problem(401, "INVALID_SIGNATURE");
    for hostile in ["{\"token\": 1}", "not json", &json!(vec![json!({"token": "x"}); 101]).to_string()] {
        let refused = report(hostile);
        assert!(matches!(refused.status, 400 | 422), "{hostile}: {} {}", refused.status, refused.body);
    }
    assert!(passes(&key), "nothing was revoked");
}
