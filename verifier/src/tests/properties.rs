//! Property tests: arbitrary bytes in every request body the admin API and the verify API read, in every header the
//! gateway parses, and in the query parameters: never a panic, every refusal a problem+json, and a refused request
//! changes nothing.

use proptest::prelude::*;

use super::{Build, Harness, assert_well_formed, request, stored_state};
use crate::gateway;

/// Every route that reads a body, with a path that reaches it once `{id}` is a real key id.
const BODY_ROUTES: &[(&str, &str)] = &[
    ("POST", "/admin/v1/bootstrap"),
    ("POST", "/admin/v1/organizations"),
    ("POST", "/admin/v1/members"),
    ("POST", "/admin/v1/projects"),
    ("PATCH", "/admin/v1/projects/{project}"),
    ("POST", "/admin/v1/keys"),
    ("PATCH", "/admin/v1/keys/{id}"),
    ("POST", "/admin/v1/keys/{id}/regenerate"),
];

/// A body: arbitrary bytes, or JSON-looking text that reaches the field validation.
fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "\\{(\"(name|slug|email|role|environment|permissions|rate_limit|expires_at|grace_seconds|customers|kind|project)\": ?(\"[^\"]{0,20}\"|-?[0-9]{1,20}|null|true|\\[\\]|\\{\\}|\\[\"[a-z:]{0,8}\"\\]),? ?){0,4}\\}",
    ]
}

fn setup() -> (Harness, String, String) {
    let h = Harness::new();
    let console = h.bootstrap();
    let key = h.create_key(&console.token, serde_json::json!({}));
    let reply = h.admin(
        request("POST", "/admin/v1/projects")
            .bearer(&console.token)
            .json(serde_json::json!({"slug": "p", "name": "P"})),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    (h, console.token, key.id)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_admin_bodies_are_refused_cleanly(route in 0..BODY_ROUTES.len(), text in body()) {
        let (h, token, id) = setup();
        let (method, path) = BODY_ROUTES[route];
        let path = path.replace("{id}", &id).replace("{project}", "p");
        let before = stored_state(&h);
        let reply = h.admin(request(method, &path).bearer(&token).body(&text));
        assert_well_formed(&reply);
        if reply.status >= 400 {
            prop_assert_eq!(stored_state(&h), before, "{} {} with {:?} refused {} but changed the store", method, path, text, reply.status);
        }
    }

    #[test]
    fn arbitrary_query_parameters_are_refused_cleanly(
        name in "(cursor|environment|status|project|owner|include_deactivated)",
        value in "[\\PC]{0,30}",
        path in "(/admin/v1/keys|/admin/v1/audit)",
    ) {
        let (h, token, _) = setup();
        let query = format!("{name}={}", value.replace('&', "%26").replace('#', "%23"));
        let reply = h.admin(request("GET", &format!("{path}?{query}")).bearer(&token));
        assert_well_formed(&reply);
    }

    #[test]
    fn arbitrary_credential_headers_never_panic_the_gateway(
        name in "(authorization|x-api-key|apikey|apisecret|keygate-org|keygate-customer)",
        value in "[\\PC]{0,120}",
        second in "(kg_live_[0-9A-Z]{14}_?[0-9A-Za-z]{0,40}|Bearer [\\PC]{0,60})",
    ) {
        let h = Harness::new();
        let req = request("GET", "/data/x").header(&name, &value).header("x-api-key", &second);
        let demand = gateway::gateway_demand(&req, &h.config);
        let outcome = super::block_on(gateway::authenticate(
            &h.memory,
            gateway::presented(&req, &h.config),
            &h.config.endpoint,
            demand,
            gateway::Consult::WhenRateLimited,
            h.now(),
        ));
        if let Err(refusal) = outcome {
            assert_well_formed(&refusal.reply);
        }
    }

    #[test]
    fn arbitrary_verify_bodies_are_answered_cleanly(text in body()) {
        let h = Harness::new();
        let console = h.bootstrap();
        let service = h.create_key(&console.token, serde_json::json!({ "permissions": ["keys:verify"] }));
        let req = request("POST", "/v1/verify").bearer(&service.key).body(&text);
        let (reply, _) = super::block_on(gateway::verify(&h.memory, &req, &h.config, h.now()));
        assert_well_formed(&reply);
    }
}
