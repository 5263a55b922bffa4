//! Exact rate limits under concurrency, with the IETF headers.

use keygate_e2e::{ADMITTED_BY, Console, gateway, json, shared};

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

/// Four connections as fast as they can on a 100-per-10-s key, leased (the default): exactly 100 admitted in the
/// window, however the isolate spends its leases.
#[test]
fn four_connections_on_a_leased_100_per_10_s_key_admit_exactly_100() {
    let owner = Console::shared_owner();
    let (key, _, _) = owner.create_key(&json!({
        "name": "leased", "environment": "live", "permissions": ["data:read"],
        "rate_limit": {"requests": 100, "window_seconds": 10}
    }));
    let base = shared().base.clone();
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (base, key) = (base.clone(), key.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while start.elapsed() < std::time::Duration::from_secs(4) {
                    let answer = gateway(&base, "GET", "/data/x", &key);
                    seen.push((answer.status, answer.header(ADMITTED_BY).map(str::to_owned)));
                }
                seen
            })
        })
        .collect();
    let seen: Vec<(u16, Option<String>)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let statuses: Vec<u16> = seen.iter().map(|(s, _)| *s).collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    let by = |who: &str| seen.iter().filter(|(s, by)| *s == 200 && by.as_deref() == Some(who)).count();
    let (by_lease, by_object) = (by("lease"), by("object"));
    eprintln!(
        "4 connections, 4 s, 100 per 10 s: {} requests, {ok} admitted ({by_lease} from the isolate's leases, \
         {by_object} by the key's object), {limited} refused",
        statuses.len()
    );
    assert_eq!(ok + limited, statuses.len(), "only 200 and 429: {statuses:?}");
    assert_eq!(ok, 100, "exactly the quota in one window");
    assert_eq!(by_lease + by_object, ok, "every pass says who admitted it");
    assert!(by_lease > by_object, "most admissions never leave the isolate: {by_lease} leased, {by_object} not");
}

/// `"mode": "strict"`: every request asks the key's object, none is admitted from a lease.
#[test]
fn a_strict_key_asks_its_object_for_every_request() {
    let owner = Console::shared_owner();
    let (key, _, _) = owner.create_key(&json!({
        "name": "strict", "environment": "live", "permissions": ["data:read"],
        "rate_limit": {"requests": 1000, "window_seconds": 60, "mode": "strict"}
    }));
    let base = shared().base.clone();
    for i in 0..20 {
        let answer = gateway(&base, "GET", "/data/x", &key);
        assert_eq!(answer.status, 200, "request {i}");
        assert_eq!(answer.header(ADMITTED_BY), Some("object"), "request {i}");
    }
}

/// A leased key revoked while four connections use it: it stops within the stated bound (a lease, at most a second;
/// at once in the isolate that forwarded the revocation).
#[test]
fn a_leased_key_revoked_under_load_stops_within_a_lease() {
    let owner = Console::shared_owner();
    let (key, id, _) = owner.create_key(&json!({
        "name": "revoked under load", "environment": "live", "permissions": ["data:read"],
        "rate_limit": {"requests": 100000, "window_seconds": 60}
    }));
    let base = shared().base.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (base, key, stop) = (base.clone(), key.clone(), stop.clone());
            std::thread::spawn(move || {
                // (time since start, status) of every request.
                let start = std::time::Instant::now();
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    seen.push((start.elapsed(), gateway(&base, "GET", "/data/x", &key).status));
                }
                (start, seen)
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let revoked_at = std::time::Instant::now();
    assert_eq!(owner.action(&id, "revoke").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut last_pass_after_revoke = std::time::Duration::ZERO;
    let mut total = 0;
    for h in handles {
        let (start, seen) = h.join().unwrap();
        total += seen.len();
        for (at, status) in seen {
            if status == 200 && start + at > revoked_at {
                last_pass_after_revoke = last_pass_after_revoke.max(start + at - revoked_at);
            }
        }
    }
    eprintln!(
        "{total} requests; the last pass came {} ms after the revocation was sent",
        last_pass_after_revoke.as_millis()
    );
    assert!(last_pass_after_revoke < std::time::Duration::from_millis(1500), "passed {last_pass_after_revoke:?} after");
}
