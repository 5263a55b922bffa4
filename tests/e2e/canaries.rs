//! Canary keys on a real workerd: a use is refused exactly as an unknown key's, and is recorded (path, address,
//! user agent), audited, shown by `GET /canary-trips` and posted to the organization's webhooks.

use keygate_e2e::{eventually, json, request, shared};
use keygate_shared::webhook::verify;

use crate::webhooks::{hooked, now};

#[test]
fn a_canary_key_is_refused_like_an_unknown_key_and_its_use_is_recorded_and_raised() {
    let (org, receiver, _, secret) = hooked("canaries", json!(["canary.tripped"]));
    let created =
        org.call("POST", "/keys", Some(&json!({"name": "AWS backup (canary)", "environment": "live", "canary": true})));
    assert_eq!(created.status, 201, "{}", created.body);
    let body = created.json();
    let (canary, id) = (body["key"].as_str().unwrap().to_owned(), body["record"]["id"].as_str().unwrap().to_owned());
    assert_eq!(body["record"]["canary"], true);

    let unknown = keygate_shared::key::ApiKey::generate(keygate_shared::model::Environment::Live).unwrap().expose();
    let call = |key: &str| {
        let auth = format!("Bearer {key}");
        request(
            "GET",
            &format!("{}/exports/all", shared().base),
            &[("authorization", auth.as_str()), ("user-agent", "thief-tool/2.1")],
            None,
        )
    };
    let (tripped, refused) = (call(&canary), call(&unknown));
    assert_eq!((tripped.status, refused.status), (401, 401));
    assert_eq!(tripped.body, refused.body, "the same problem body as an unknown key");
    assert_eq!(tripped.header("www-authenticate"), refused.header("www-authenticate"));
    assert_eq!(tripped.header("content-type"), refused.header("content-type"));

    eventually("the trip is recorded", || {
        let trips = org.call("GET", &format!("/canary-trips?key={id}"), None).json();
        trips["trips"].as_array().is_some_and(|t| !t.is_empty())
    });
    let trips = org.call("GET", "/canary-trips", None).json();
    let trip = &trips["trips"][0];
    assert_eq!(trip["key_id"], id.as_str(), "{trips}");
    assert_eq!((trip["method"].as_str(), trip["path"].as_str()), (Some("GET"), Some("/exports/all")));
    assert_eq!(trip["user_agent"], "thief-tool/2.1");
    assert_eq!(trip["key_name"], "AWS backup (canary)");

    eventually("canary.tripped reaches the webhook", || {
        receiver.received().iter().any(|r| r.header("keygate-event") == Some("canary.tripped"))
    });
    let delivery =
        receiver.received().into_iter().find(|r| r.header("keygate-event") == Some("canary.tripped")).unwrap();
    assert_eq!(verify(&secret, delivery.header("keygate-signature").unwrap(), &delivery.body, now()), Ok(()));
    let event = delivery.json();
    assert_eq!(event["key"]["id"], id.as_str());
    assert!(event["detail"].as_str().unwrap().contains("/exports/all"), "{event}");
    let actions = org.audit_actions(&id);
    assert!(actions.iter().any(|a| a == "canary_tripped"), "{actions:?}");
}

/// A canary checked through the verify API or whoami is a trip too: the verify API answers it as `NOT_FOUND`, like
/// an unknown key, and the trip records the client address the caller named.
#[test]
fn a_canary_checked_through_verify_or_whoami_is_recorded_too() {
    let org = keygate_e2e::Console::shared_owner().new_organization("canaries-verified");
    let created = org.call("POST", "/keys", Some(&json!({"name": "planted", "environment": "live", "canary": true})));
    assert_eq!(created.status, 201, "{}", created.body);
    let body = created.json();
    let (canary, id) = (body["key"].as_str().unwrap().to_owned(), body["record"]["id"].as_str().unwrap().to_owned());
    let (service, _, _) =
        org.create_key(&json!({"name": "verifier", "environment": "live", "permissions": ["keys:verify"]}));
    let unknown = keygate_shared::key::ApiKey::generate(keygate_shared::model::Environment::Live).unwrap().expose();
    let verified = |key: &str| {
        let auth = format!("Bearer {service}");
        let body = json!({"key": key, "client_ip": "198.51.100.7"}).to_string();
        request("POST", &format!("{}/v1/verify", shared().base), &[("authorization", auth.as_str())], Some(&body))
    };
    let (tripped, refused) = (verified(&canary), verified(&unknown));
    assert_eq!((tripped.status, refused.status), (200, 200));
    assert_eq!(tripped.json()["code"], "NOT_FOUND");
    assert_eq!(tripped.body, refused.body, "the same answer as an unknown key");
    let whoami = |key: &str| {
        let auth = format!("Bearer {key}");
        request("GET", &format!("{}/v1/whoami", shared().base), &[("authorization", auth.as_str())], None)
    };
    let (tripped, refused) = (whoami(&canary), whoami(&unknown));
    assert_eq!((tripped.status, tripped.body), (refused.status, refused.body));

    eventually("both trips are recorded", || {
        let trips = org.call("GET", &format!("/canary-trips?key={id}"), None).json();
        trips["trips"].as_array().is_some_and(|t| t.len() == 2)
    });
    let trips = org.call("GET", &format!("/canary-trips?key={id}"), None).json();
    let paths: Vec<(&str, &str)> = trips["trips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["path"].as_str().unwrap(), t["client_ip"].as_str().unwrap_or("")))
        .collect();
    assert!(paths.contains(&("/v1/verify", "198.51.100.7")), "{trips}");
    assert!(paths.iter().any(|(p, _)| *p == "/v1/whoami"), "{trips}");
}
