//! The simulator agrees with the gateway: one table of requests — every code of the order of checks, every
//! credential header form, environments, projects, customers, organizations, permissions, roles, expiry — runs
//! through `keygate_shared::simulate` (what the console runs in its wasm) on each key's record as the admin API shows
//! it, and through the real gateway on workerd. Status and code must be identical: if they can ever differ, the
//! simulator is wrong.

use keygate_e2e::{Console, Value, json, request, shared};
use keygate_shared::api::{KeyView, RoleInfo};
use keygate_shared::decision::Endpoint;
use keygate_shared::hash::SecretHash;
use keygate_shared::http::Incoming;
use keygate_shared::key::ApiKey;
use keygate_shared::model::Environment;
use keygate_shared::routes::RouteTable;
use keygate_shared::simulate::{record_of, simulate};

use crate::webhooks::now;

/// The shared Worker's routes, as its wrangler.toml configures them.
fn routes() -> RouteTable {
    let text = std::fs::read_to_string(keygate_e2e::root().join("wrangler.toml")).unwrap();
    let line = text.lines().find(|l| l.starts_with("KEYGATE_ROUTES")).expect("routes configured");
    let value: String = serde_json::from_str(line.split_once('=').unwrap().1.trim()).unwrap();
    RouteTable::parse(&value).unwrap()
}

/// One row of the table: its name, the method, the path and the request's headers.
type Case<'a> = (&'a str, &'a str, &'a str, Vec<(String, String)>);

struct Made {
    key: String,
    id: String,
}

fn make(org: &Console, spec: Value) -> Made {
    let (key, id, body) = org.create_key(&spec);
    let key = if key.is_empty() {
        // A legacy pair: the test presents it as its two halves.
        format!("{}_{}", body["api_key"].as_str().unwrap(), body["api_secret"].as_str().unwrap())
    } else {
        key
    };
    Made { key, id }
}

#[test]
fn the_simulator_and_the_gateway_agree_on_every_case_of_the_table() {
    let org = Console::shared_owner().new_organization("simulator");
    let org_id = org.acting_for.clone().unwrap();
    org.project("sim-shop");
    assert_eq!(
        org.call("PUT", "/roles/sim-reader", Some(&json!({"permissions": ["data:read"]}))).status,
        200,
        "a role"
    );
    let live = |extra: Value| {
        let mut spec = json!({"name": "sim", "environment": "live", "permissions": ["data:read"]});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    let read = make(&org, live(json!({})));
    let write = make(&org, live(json!({"permissions": ["data:write"]})));
    let wild = make(&org, live(json!({"permissions": ["data:*"]})));
    let none = make(&org, live(json!({"permissions": []})));
    let customers = make(&org, live(json!({"customers": ["cus_1"]})));
    let own = make(&org, live(json!({"own_organization_only": true})));
    let ips = make(&org, live(json!({"allowed_ips": ["203.0.113.0/24"]})));
    let pair = make(&org, live(json!({"kind": "pair"})));
    let project = make(&org, live(json!({"project": "sim-shop"})));
    let role = make(&org, live(json!({"permissions": [], "roles": ["sim-reader"]})));
    let canary = make(&org, live(json!({"canary": true})));
    let limited = make(&org, live(json!({"rate_limit": {"requests": 100, "window_seconds": 60}})));
    let staging = make(&org, live(json!({"environment": "test"})));
    let dev = make(&org, live(json!({"environment": "dev"})));
    let revoked = make(&org, live(json!({})));
    assert_eq!(org.action(&revoked.id, "revoke").status, 200);
    let deactivated = make(&org, live(json!({})));
    assert_eq!(org.action(&deactivated.id, "deactivate").status, 200);
    let expires = keygate_shared::time::Timestamp(now().millis() + 2_000).to_rfc3339();
    let expired = make(&org, live(json!({"expires_at": expires})));
    std::thread::sleep(std::time::Duration::from_millis(2_500));

    let unknown = ApiKey::generate(Environment::Live).unwrap().expose();
    let wrong_secret = read.key.parse::<ApiKey>().unwrap().with_new_secret().unwrap().expose();
    let bad_checksum = {
        let mut k = read.key.clone();
        let last = k.pop().unwrap();
        k.push(if last == 'A' { 'B' } else { 'A' });
        k
    };
    let (pair_id, pair_secret) = {
        let parsed: ApiKey = pair.key.parse().unwrap();
        (format!("kg_live_{}", parsed.id), parsed.expose_pair_secret())
    };
    let bearer = |k: &str| vec![("authorization".to_owned(), format!("Bearer {k}"))];
    let with = |mut h: Vec<(String, String)>, name: &str, value: &str| {
        h.push((name.to_owned(), value.to_owned()));
        h
    };
    let member_org = Console::shared_owner().organization.clone();
    let stranger_org = "org_AAAAAAAAAAAAAA".to_owned();

    // (case, method, path, headers)
    let cases: Vec<Case<'_>> = vec![
        ("no credential", "GET", "/data/x", vec![]),
        ("malformed", "GET", "/data/x", bearer("kg_live_nope")),
        ("bad checksum", "GET", "/data/x", bearer(&bad_checksum)),
        ("two credentials", "GET", "/data/x", with(bearer(&read.key), "x-api-key", &write.key)),
        ("half a pair", "GET", "/data/x", vec![("apikey".into(), pair_id.clone())]),
        ("a staging key on live", "GET", "/data/x", bearer(&staging.key)),
        ("a dev key on live", "GET", "/data/x", bearer(&dev.key)),
        ("unknown id", "GET", "/data/x", bearer(&unknown)),
        ("wrong secret", "GET", "/data/x", bearer(&wrong_secret)),
        ("revoked", "GET", "/data/x", bearer(&revoked.key)),
        ("deactivated", "GET", "/data/x", bearer(&deactivated.key)),
        ("expired", "GET", "/data/x", bearer(&expired.key)),
        ("canary", "GET", "/data/x", bearer(&canary.key)),
        ("pass: bearer", "GET", "/data/x", bearer(&read.key)),
        ("pass: x-api-key", "GET", "/data/x", vec![("x-api-key".into(), read.key.clone())]),
        ("pass: apikey alone", "GET", "/data/x", vec![("apikey".into(), read.key.clone())]),
        (
            "pass: a legacy pair",
            "GET",
            "/data/x",
            vec![("apikey".into(), pair_id.clone()), ("apisecret".into(), pair_secret.clone())],
        ),
        ("HEAD needs what GET needs", "HEAD", "/data/x", bearer(&read.key)),
        ("a percent-encoded path", "GET", "/data/%78", bearer(&read.key)),
        ("missing permission", "GET", "/data/x", bearer(&write.key)),
        ("write with data:write", "POST", "/streams/s", bearer(&write.key)),
        ("write with data:read only", "POST", "/streams/s", bearer(&read.key)),
        ("a wildcard permission", "POST", "/streams/s", bearer(&wild.key)),
        ("no permissions at all", "GET", "/data/x", bearer(&none.key)),
        ("a route no rule covers", "GET", "/elsewhere", bearer(&read.key)),
        ("a permission from a role", "GET", "/data/x", bearer(&role.key)),
        ("customer required", "GET", "/data/x", bearer(&customers.key)),
        ("an allowed customer", "GET", "/data/x", with(bearer(&customers.key), "keygate-customer", "cus_1")),
        ("another customer", "GET", "/data/x", with(bearer(&customers.key), "keygate-customer", "cus_2")),
        ("Keygate-Org: its own", "GET", "/data/x", with(bearer(&read.key), "keygate-org", &org_id)),
        (
            "Keygate-Org: one its owner belongs to",
            "GET",
            "/data/x",
            with(bearer(&read.key), "keygate-org", &member_org),
        ),
        ("Keygate-Org: a stranger", "GET", "/data/x", with(bearer(&read.key), "keygate-org", &stranger_org)),
        ("own organization only", "GET", "/data/x", with(bearer(&own.key), "keygate-org", &member_org)),
        ("an allowed address", "GET", "/data/x", with(bearer(&ips.key), "cf-connecting-ip", "203.0.113.9")),
        ("another address", "GET", "/data/x", with(bearer(&ips.key), "cf-connecting-ip", "198.51.100.1")),
        ("the project's label", "GET", "/data/x", bearer(&format!("sim-shop:{}", project.key))),
        ("another project's label", "GET", "/data/x", bearer(&format!("other-shop:{}", project.key))),
        ("a free label", "GET", "/data/x", bearer(&format!("sim-shop:line-3:{}", project.key))),
        ("rate limited, requests left", "GET", "/data/x", bearer(&limited.key)),
    ];
    assert!(cases.len() >= 30);

    let roles: Vec<RoleInfo> = serde_json::from_value(org.call("GET", "/roles", None).json()["roles"].clone()).unwrap();
    let session = Console { acting_for: None, ..org.clone() }.call("GET", "/session", None).json();
    let memberships: Vec<String> =
        session["organizations"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect();
    assert!(memberships.contains(&member_org) && memberships.contains(&org_id));
    let endpoint = Endpoint { environment: Environment::Live, project: None, organization: None };
    let table = routes();
    let all = [
        &read,
        &write,
        &wild,
        &none,
        &customers,
        &own,
        &ips,
        &pair,
        &project,
        &role,
        &canary,
        &limited,
        &staging,
        &dev,
        &revoked,
        &deactivated,
        &expired,
    ];
    let mut disagreements = Vec::new();
    for (case, method, path, headers) in &cases {
        let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let answer = request(method, &format!("{}{path}", shared().base), &refs, None);
        let gateway_code = if answer.status == 200 {
            "VALID".to_owned()
        } else {
            answer.json()["code"].as_str().unwrap_or("(no code)").to_owned()
        };
        // The record of the presented key's id, as the console would fetch it.
        let incoming = Incoming {
            method: (*method).to_owned(),
            path: (*path).to_owned(),
            headers: headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect(),
            ..Incoming::default()
        };
        let presented = keygate_shared::credential::authenticate_headers(&incoming.headers, &[]).ok();
        let record = presented.as_ref().and_then(|p| {
            let made = all.iter().find(|m| m.id == p.id.to_string())?;
            let view: KeyView =
                serde_json::from_value(org.call("GET", &format!("/keys/{}", made.id), None).json()).ok()?;
            let real: ApiKey = made.key.parse().ok()?;
            Some(record_of(&view, &roles, SecretHash::of(&real)))
        });
        let simulated = simulate(&incoming, &[], &table, &endpoint, record.as_ref(), &memberships, now());
        if (simulated.status, simulated.code.as_str()) != (answer.status, gateway_code.as_str()) {
            disagreements.push(format!(
                "{case}: simulator {} {}, gateway {} {gateway_code}",
                simulated.status, simulated.code, answer.status
            ));
        }
    }
    assert!(disagreements.is_empty(), "the simulator disagrees with the gateway:\n{}", disagreements.join("\n"));
    println!("{} cases agree", cases.len());
}
