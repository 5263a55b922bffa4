//! A Rust panic never leaves the isolate broken: the request that panicked gets a 500 (problem+json when the panic
//! is in the synchronous gateway step), the log says why, and the next requests are answered by a fresh instance,
//! keys included. `KEYGATE_TEST_PANICS=1` makes two paths panic (see `verifier/src/config.rs`).

use keygate_e2e::{Config, Console, Worker, gateway, get, json};

fn panicking_worker() -> Worker {
    Worker::start(Config { vars: vec![("KEYGATE_TEST_PANICS".into(), "1".into())], ..Config::default() })
}

#[test]
fn a_panic_answers_500_and_the_next_requests_are_served() {
    let worker = panicking_worker();
    let console = Console::bootstrap(&worker);
    let (key, _, _) =
        console.create_key(&json!({"name": "after", "environment": "live", "permissions": ["data:read"]}));
    assert_eq!(gateway(&worker.base, "GET", "/data/x", &key).status, 200);

    for round in 0..3 {
        // In the synchronous step: the entry module answers the failed request itself.
        let answer = get(&worker.url("/__keygate/panic"), &[]);
        let body = answer.expect_problem(500, "INTERNAL");
        assert!(!body["detail"].as_str().unwrap_or_default().is_empty(), "round {round}: {body}");
        assert_eq!(gateway(&worker.base, "GET", "/data/x", &key).status, 200, "round {round}: the key still passes");
        assert_eq!(get(&worker.url("/v1/health"), &[]).status, 200, "round {round}");

        // In the async handler: the request fails, and the next ones are served.
        let answer = get(&worker.url("/v1/__panic"), &[]);
        assert!(answer.status >= 500, "round {round}: {} {}", answer.status, answer.body);
        gateway(&worker.base, "GET", "/data/x", "kg_live_nope").expect_problem(401, "INVALID_FORMAT");
        assert_eq!(gateway(&worker.base, "GET", "/data/x", &key).status, 200, "round {round}: the key still passes");
        assert_eq!(console.call("GET", "/session", None).status, 200, "round {round}: the console still works");
    }
    // wrangler dev writes the log as workerd hands it lines: wait for it rather than read it once.
    keygate_e2e::eventually("the panic message reaches the log", || {
        std::fs::read_to_string(worker.state.with_extension("log"))
            .is_ok_and(|log| log.contains("deliberate panic on /__keygate/panic"))
    });
}

#[test]
fn without_the_switch_the_panic_paths_are_ordinary() {
    let worker = keygate_e2e::shared();
    get(&worker.url("/__keygate/panic"), &[]).expect_problem(401, "MISSING_CREDENTIAL");
    get(&worker.url("/v1/__panic"), &[]).expect_problem(404, "NOT_FOUND");
}
