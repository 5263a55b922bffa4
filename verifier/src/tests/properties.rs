//! Property tests: arbitrary bytes in every header the gateway parses and in the verify API's body: never a panic,
//! and every refusal a problem+json. (The admin API's bodies are the control plane's: `control/src/tests`.)

use keygate_shared::key::ApiKey;
use keygate_shared::model::{Environment, KeyRecord, Permission};
use proptest::prelude::*;

use super::{Build, Harness, NOW, assert_well_formed, request};
use crate::gateway;

/// A body: arbitrary bytes, or JSON-looking text that reaches the field validation.
fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "\\{(\"(key|permission|customer|organization|name)\": ?(\"[^\"]{0,60}\"|-?[0-9]{1,20}|null|true|\\[\\]|\\{\\}),? ?){0,4}\\}",
    ]
}

/// A stored key holding `permissions`, as the client sends it.
fn service_key(h: &Harness, permissions: &[&str]) -> String {
    let key = ApiKey::generate(Environment::Live).expect("randomness");
    let permissions = permissions.iter().map(|p| Permission::try_from(*p).expect("a permission")).collect();
    h.memory.put(KeyRecord::issued(&key, "org_a", "usr_1", "service".into(), permissions, NOW));
    key.expose()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

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
        let service = service_key(&h, &["keys:verify"]);
        let req = request("POST", "/v1/verify").bearer(&service).body(&text);
        let reply = super::block_on(gateway::verify(&h.memory, &req, &h.config, h.now())).reply;
        assert_well_formed(&reply);
    }

    #[test]
    fn arbitrary_paths_are_canonical_or_refused_cleanly(path in "/[\\PC]{0,60}") {
        match keygate_shared::http::canonical_path(&path) {
            Ok(canonical) => prop_assert!(keygate_shared::path::is_canonical(&canonical)),
            Err(reply) => {
                assert_well_formed(&reply);
                prop_assert_eq!(reply.status, 400);
            }
        }
    }
}
