//! State survives a restart of `wrangler dev`: keys, revocations and rate-limit counts.

use keygate_e2e::{Config, Console, Worker, gateway, json};

#[test]
fn keys_and_limits_survive_a_restart() {
    let worker = Worker::start(Config::default());
    let console = Console::bootstrap(&worker);
    let (limited, _, _) = console.create_key(&json!({
        "name": "limited", "environment": "live", "permissions": ["data:read"],
        "rate_limit": {"requests": 2, "window_seconds": 3600}
    }));
    let (revoked, revoked_id, _) =
        console.create_key(&json!({"name": "revoked", "environment": "live", "permissions": ["data:read"]}));
    assert_eq!(console.action(&revoked_id, "revoke").status, 200);
    for _ in 0..2 {
        assert_eq!(gateway(&worker.base, "GET", "/data/x", &limited).status, 200);
    }

    let worker = worker.restart(Config::default());
    let console = Console { base: worker.base.clone(), ..console };
    gateway(&worker.base, "GET", "/data/x", &limited).expect_problem(429, "RATE_LIMITED");
    gateway(&worker.base, "GET", "/data/x", &revoked).expect_problem(401, "REVOKED");
    assert_eq!(console.call("GET", "/session", None).status, 200, "the console token survives too");
}
