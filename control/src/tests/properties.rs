//! Property tests: arbitrary bytes in every request body and query parameter the admin API reads, and arbitrary
//! console tokens and organization headers: never a panic, every refusal a problem+json, and a refused request
//! changes nothing.

use proptest::prelude::*;

use super::{Build, Harness, assert_well_formed, request};

/// Every route that reads a body, with `{id}` replaced by a real key id and `{project}` by a real project.
const BODY_ROUTES: &[(&str, &str)] = &[
    ("POST", "/admin/v1/bootstrap"),
    ("POST", "/admin/v1/organizations"),
    ("POST", "/admin/v1/invitations"),
    ("POST", "/admin/v1/invitations/redeem"),
    ("POST", "/admin/v1/invitations/accept"),
    ("POST", "/admin/v1/sessions"),
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
        "\\{(\"(name|slug|email|role|environment|permissions|rate_limit|expires_at|grace_seconds|customers|kind|project|code|label|organization_name)\": ?(\"[^\"]{0,20}\"|-?[0-9]{1,20}|null|true|\\[\\]|\\{\\}|\\[\"[a-z:]{0,8}\"\\]),? ?){0,4}\\}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_admin_bodies_are_refused_cleanly(route in 0..BODY_ROUTES.len(), text in body()) {
        let h = Harness::new();
        let owner = h.bootstrap();
        let (_, id) = owner.create_key(serde_json::json!({}));
        assert_eq!(owner.post("projects", serde_json::json!({"slug": "p", "name": "P"})).status, 201);
        let (method, path) = BODY_ROUTES[route];
        let path = path.replace("{id}", &id).replace("{project}", "p");
        let before = h.stored();
        let reply = h.admin(request(method, &path).bearer(&owner.token).body(&text));
        assert_well_formed(&reply);
        if reply.status >= 400 {
            prop_assert!(h.stored() == before, "{} {} with {:?} refused {} but changed the store", method, path, text, reply.status);
        }
    }

    #[test]
    fn arbitrary_query_parameters_are_refused_cleanly(
        name in "(cursor|environment|status|project|owner|include_deactivated)",
        value in "[\\PC]{0,30}",
        path in "(/admin/v1/keys|/admin/v1/audit)",
    ) {
        let h = Harness::new();
        let owner = h.bootstrap();
        let query = format!("{name}={}", value.replace('&', "%26").replace('#', "%23"));
        let reply = h.admin(request("GET", &format!("{path}?{query}")).bearer(&owner.token));
        assert_well_formed(&reply);
    }

    #[test]
    fn arbitrary_tokens_and_organization_headers_are_refused_cleanly(
        token in "[\\PC]{0,120}",
        org in "[\\PC]{0,80}",
    ) {
        let h = Harness::new();
        let owner = h.bootstrap();
        let reply = h.admin(request("GET", "/admin/v1/keys").header("authorization", &token));
        assert_well_formed(&reply);
        let reply = h.admin(request("GET", "/admin/v1/keys").bearer(&owner.token).org(&org));
        assert_well_formed(&reply);
    }
}
