//! Exact rate limits under concurrency, with the IETF headers.

use keygate_e2e::{Console, gateway, json, shared};

#[test]
fn fifty_concurrent_requests_admit_exactly_the_quota() {
    let owner = Console::shared_owner();
    let (key, _, _) = owner.create_key(&json!({
        "name": "limited", "environment": "live", "permissions": ["data:read"],
        "rate_limit": {"requests": 10, "window_seconds": 60}
    }));
    let base = shared().base.clone();
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let (base, key) = (base.clone(), key.clone());
            std::thread::spawn(move || gateway(&base, "GET", "/data/x", &key))
        })
        .collect();
    let answers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let limited: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!((ok, limited.len()), (10, 40), "statuses: {:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    for a in &limited {
        a.expect_problem(429, "RATE_LIMITED");
        let retry: u32 = a.header("retry-after").expect("Retry-After").parse().unwrap();
        // At most the window plus one of its 50 slots (1.2 s here), rounded up.
        assert!((1..=62).contains(&retry), "Retry-After {retry}");
        assert_eq!(a.header("ratelimit-policy"), Some("\"default\";q=10;w=60"));
        assert!(a.header("ratelimit").unwrap().starts_with("\"default\";r=0;"));
    }
    for a in answers.iter().filter(|a| a.status == 200) {
        assert!(a.header("ratelimit").is_some(), "every answer for a limited key carries RateLimit");
    }
}
