//! The pure path of one request, natively: parse + checksum, SHA-256, decision, and a rate-limit step.
//! Run with `cargo bench -p keygate-shared`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keygate_shared::credential::authenticate_headers;
use keygate_shared::decision::{Access, Claim, Demand, Endpoint, decide, precheck};
use keygate_shared::model::{KeyKind, KeyRecord, KeyState, Permission, RateLimitPolicy};
use keygate_shared::ratelimit::RateLimitState;
use keygate_shared::{ApiKey, Environment, SecretHash, Timestamp};

fn record(key: &ApiKey) -> KeyRecord {
    KeyRecord {
        id: key.id,
        organization: "org_a".into(),
        project: Some("acme-shop".into()),
        environment: key.environment,
        name: "bench".into(),
        owner: "usr_1".into(),
        permissions: vec![Permission::try_from("data:read").unwrap()],
        customers: vec![],
        rate_limit: None,
        expires_at: None,
        state: KeyState::Active,
        kind: KeyKind::Single,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        secret_hash: SecretHash::of(key),
        grace: None,
        revoked_by: None,
        allowed_ips: vec![],
        own_organization_only: false,
        canary: false,
        meta: None,
        usage_limit: None,
        roles: vec![],
        identity: None,
    }
}

fn benches(c: &mut Criterion) {
    let key = ApiKey::generate(Environment::Live).unwrap();
    let text = key.expose();
    let header = format!("Bearer {text}");
    let headers = [("authorization", header.as_str())];
    let stored = record(&key);
    let endpoint = Endpoint::any_project(Environment::Live);
    let read = Permission::try_from("data:read").unwrap();
    let now = Timestamp(1_795_000_000_000);

    c.bench_function("parse+checksum", |b| b.iter(|| black_box(&text).parse::<ApiKey>().unwrap()));
    c.bench_function("sha256", |b| b.iter(|| SecretHash::of(black_box(&key))));
    c.bench_function("decision", |b| {
        let claim = Claim::of(&key);
        b.iter(|| {
            decide(
                black_box(&claim),
                Some(&stored),
                &endpoint,
                Demand { access: Access::Permission(&read), ..Demand::default() },
                &[],
                now,
            )
            .unwrap()
        })
    });
    c.bench_function("pure_path (headers+parse+checksum+sha256+decision)", |b| {
        b.iter(|| {
            let claim = precheck(authenticate_headers(&black_box(headers)[..], &[]), &endpoint).unwrap();
            decide(
                &claim,
                Some(&stored),
                &endpoint,
                Demand { access: Access::Permission(&read), ..Demand::default() },
                &[],
                now,
            )
            .unwrap()
        })
    });
    c.bench_function("path: canonical check (hot path)", |b| {
        b.iter(|| keygate_shared::path::is_canonical(black_box("/data/items/2026/readings")))
    });
    c.bench_function("path: normalize a disguised path", |b| {
        b.iter(|| keygate_shared::path::normalize(black_box("//data/./x/../%69tems/2026")).unwrap())
    });
    let policy = RateLimitPolicy::per(1_000_000, 60);
    let mut state = RateLimitState::new(&policy);
    let mut t = now.millis();
    c.bench_function("rate-limit step", |b| {
        b.iter(|| {
            t += 1;
            state.check(&policy, Timestamp(t))
        })
    });
}

criterion_group!(pure, benches);
criterion_main!(pure);
