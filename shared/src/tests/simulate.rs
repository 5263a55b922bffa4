#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::{NOW, example, record_for};
use crate::decision::Endpoint;
use crate::http::Incoming;
use crate::model::{Environment, RateLimitPolicy};
use crate::routes::RouteTable;
use crate::simulate::{Outcome, simulate};

fn run(headers: &[(&str, &str)], method: &str, path: &str, rate: bool) -> crate::simulate::Simulation {
    let key = example();
    let mut record = record_for(&key);
    if rate {
        record.rate_limit = Some(RateLimitPolicy::per(10, 60));
    }
    let req = Incoming {
        method: method.into(),
        path: path.into(),
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..Incoming::default()
    };
    let routes = RouteTable::parse("GET /data/* data:read, POST /streams/* data:write").unwrap();
    let endpoint = Endpoint { environment: Environment::Live, project: None, organization: None };
    simulate(&req, &[], &routes, &endpoint, Some(&record), &["org_a".into()], NOW)
}

fn outcomes(sim: &crate::simulate::Simulation) -> Vec<Outcome> {
    sim.steps.iter().map(|s| s.outcome).collect()
}

/// Each refusal is placed at the step that decides it, with the steps before it passed and after it not reached;
/// a pass passes every step, and a limited key's step 8 is left to the live count.
#[test]
fn the_simulation_marks_the_step_that_decides() {
    use Outcome::{Failed, Live, NotReached, Passed};
    let bearer = format!("Bearer {}", super::EXAMPLE);
    let none = run(&[], "GET", "/data/x", false);
    assert_eq!((none.status, none.code.as_str()), (401, "MISSING_CREDENTIAL"));
    assert_eq!(outcomes(&none)[..2], [Failed, NotReached]);
    assert!(none.headers.iter().any(|(k, _)| k == "www-authenticate"));

    let write = run(&[("authorization", &bearer)], "POST", "/streams/x", false);
    assert_eq!((write.status, write.code.as_str()), (403, "INSUFFICIENT_PERMISSIONS"));
    assert_eq!(
        outcomes(&write),
        [Passed, Passed, Passed, Passed, Passed, Passed, Passed, Failed, NotReached, NotReached]
    );
    assert!(write.body.contains("INSUFFICIENT_PERMISSIONS"));

    let pass = run(&[("authorization", &bearer)], "HEAD", "/data/../data/x", false);
    assert_eq!((pass.status, pass.code.as_str()), (200, "VALID"));
    assert!(outcomes(&pass).iter().all(|o| *o == Passed));
    assert!(pass.headers.contains(&("keygate-organization".into(), "org_a".into())));

    let limited = run(&[("authorization", &bearer)], "GET", "/data/x", true);
    assert_eq!(outcomes(&limited)[8], Live);
    assert!(limited.steps[8].detail.contains("10 requests per 60 s"), "{}", limited.steps[8].detail);

    let stranger = run(&[("authorization", &bearer), ("keygate-org", "org_z")], "GET", "/data/x", false);
    assert_eq!(
        (stranger.status, stranger.code.as_str(), stranger.steps[5].outcome),
        (403, "FORBIDDEN_ORGANIZATION", Failed)
    );
}
