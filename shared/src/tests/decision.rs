#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::{NOW, example, fresh, memberships, perms, record_for};
use crate::credential::{CredentialError, authenticate_headers};
use crate::decision::{Access, Claim, Code, Demand, Endpoint, Grant, decide, precheck};
use crate::hash::SecretHash;
use crate::key::{ApiKey, KeyParseError};
use crate::model::{Environment, GraceSecret, KeyRecord, KeyState, Permission, RateLimitPolicy};

fn live() -> Endpoint {
    Endpoint::any_project(Environment::Live)
}

/// Runs the whole pure path: headers → precheck → decide.
fn run(
    headers: &[(&str, &str)],
    record: Option<&KeyRecord>,
    endpoint: &Endpoint,
    demand: Demand<'_>,
) -> Result<Grant, Code> {
    let key = precheck(authenticate_headers(headers, &[]), endpoint)?;
    decide(&key, record, endpoint, demand, &memberships(), NOW)
}

fn bearer(key: &ApiKey) -> String {
    format!("Bearer {}", key.expose())
}

#[test]
fn order_of_checks_one_row_each() {
    let key = example();
    let good = record_for(&key);
    let auth = bearer(&key);
    let h = [("authorization", auth.as_str())];
    let read = Permission::try_from("data:read").unwrap();
    let write = Permission::try_from("data:write").unwrap();

    let revoked = KeyRecord { state: KeyState::Revoked, ..good.clone() };
    let deactivated = KeyRecord { state: KeyState::Deactivated, ..good.clone() };
    let expired = KeyRecord { expires_at: Some(NOW), ..good.clone() };
    let other_project = KeyRecord { project: Some("other".into()), ..good.clone() };
    let other_secret = KeyRecord { secret_hash: SecretHash::of(&fresh(Environment::Live)), ..good.clone() };
    let restricted = KeyRecord { customers: vec!["cus_1".into()], ..good.clone() };
    let no_project = KeyRecord { project: None, ..good.clone() };

    let e = live();
    let d = Demand::default();
    let org_a = Grant { organization: "org_a".into(), rate_limited: false };
    let cases: Vec<(&str, Result<Grant, Code>)> = vec![
        ("1 missing", run(&[], Some(&good), &e, d)),
        ("1 other auth scheme", run(&[("authorization", "Basic dXNlcjpwYXNz")], Some(&good), &e, d)),
        ("2 malformed", run(&[("x-api-key", "kg_live_nope")], Some(&good), &e, d)),
        (
            "2 bad checksum",
            run(&[("x-api-key", "kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds65")], Some(&good), &e, d),
        ),
        ("3 wrong environment", run(&h, Some(&good), &Endpoint::any_project(Environment::Test), d)),
        (
            "4 label vs endpoint",
            run(
                &h,
                Some(&good),
                &Endpoint {
                    environment: Environment::Live,
                    project: Some("other".into()),
                    organization: Some("org_a".into()),
                },
                d,
            ),
        ),
        ("5 unknown id", run(&h, None, &e, d)),
        ("5 secret mismatch", run(&h, Some(&other_secret), &e, d)),
        ("5 label vs record project", run(&h, Some(&other_project), &e, d)),
        ("5 revoked", run(&h, Some(&revoked), &e, d)),
        ("5 deactivated", run(&h, Some(&deactivated), &e, d)),
        ("5 expired", run(&h, Some(&expired), &e, d)),
        ("6 foreign organization", run(&h, Some(&good), &e, Demand { organization: Some("org_z"), ..d })),
        ("7 missing permission", run(&h, Some(&good), &e, Demand { access: Access::Permission(&write), ..d })),
        ("7 no route", run(&h, Some(&good), &e, Demand { access: Access::Unrouted, ..d })),
        ("7 customer required", run(&h, Some(&restricted), &e, d)),
        ("7 customer not allowed", run(&h, Some(&restricted), &e, Demand { customer: Some("cus_2"), ..d })),
        (
            "5 another organization's project of the same slug",
            run(
                &h,
                Some(&good),
                &Endpoint {
                    environment: Environment::Live,
                    project: Some("acme-shop".into()),
                    organization: Some("org_z".into()),
                },
                d,
            ),
        ),
        (
            "5 another organization's key for every project",
            run(
                &h,
                Some(&no_project),
                &Endpoint {
                    environment: Environment::Live,
                    project: Some("acme-shop".into()),
                    organization: Some("org_z".into()),
                },
                d,
            ),
        ),
        ("pass", run(&h, Some(&good), &e, Demand { access: Access::Permission(&read), ..d })),
        ("pass, allowed customer", run(&h, Some(&restricted), &e, Demand { customer: Some("cus_1"), ..d })),
        ("pass, key for every project", run(&h, Some(&no_project), &e, d)),
        (
            "pass, endpoint project matches",
            run(
                &h,
                Some(&good),
                &Endpoint {
                    environment: Environment::Live,
                    project: Some("acme-shop".into()),
                    organization: Some("org_a".into()),
                },
                d,
            ),
        ),
        ("pass, second organization", run(&h, Some(&good), &e, Demand { organization: Some("org_b"), ..d })),
    ];
    let expected: Vec<Result<Grant, Code>> = vec![
        Err(Code::MissingCredential),
        Err(Code::MissingCredential),
        Err(Code::InvalidFormat),
        Err(Code::InvalidFormat),
        Err(Code::WrongEnvironment),
        Err(Code::WrongProject),
        Err(Code::NotFound),
        Err(Code::NotFound),
        Err(Code::WrongProject),
        Err(Code::Revoked),
        Err(Code::Deactivated),
        Err(Code::Expired),
        Err(Code::ForbiddenOrganization),
        Err(Code::InsufficientPermissions),
        Err(Code::NoRoute),
        Err(Code::CustomerRequired),
        Err(Code::CustomerNotAllowed),
        Err(Code::WrongProject),
        Err(Code::WrongProject),
        Ok(org_a.clone()),
        Ok(org_a.clone()),
        Ok(org_a.clone()),
        Ok(org_a.clone()),
        Ok(Grant { organization: "org_b".into(), rate_limited: false }),
    ];
    for ((name, got), want) in cases.into_iter().zip(expected) {
        assert_eq!(got, want, "case {name}");
    }
}

#[test]
fn earlier_checks_win_over_later_ones() {
    // A revoked key with a wrong secret says NOT_FOUND, never REVOKED: the state is only told to the key's holder.
    let key = example();
    let record = KeyRecord {
        state: KeyState::Revoked,
        secret_hash: SecretHash::of(&fresh(Environment::Live)),
        ..record_for(&key)
    };
    let auth = bearer(&key);
    assert_eq!(run(&[("authorization", &auth)], Some(&record), &live(), Demand::default()), Err(Code::NotFound));
    // A wrong environment is refused before anything is looked up, even with no record.
    assert_eq!(
        run(&[("authorization", &auth)], None, &Endpoint::any_project(Environment::Dev), Demand::default()),
        Err(Code::WrongEnvironment)
    );
    // Revoked beats a missing permission.
    let revoked = KeyRecord { state: KeyState::Revoked, ..record_for(&key) };
    let write = Permission::try_from("data:write").unwrap();
    assert_eq!(
        run(
            &[("authorization", &auth)],
            Some(&revoked),
            &live(),
            Demand { access: Access::Permission(&write), ..Demand::default() }
        ),
        Err(Code::Revoked)
    );
}

#[test]
fn statuses_and_challenges() {
    let cases = [
        (Code::MissingCredential, 401, Some("Bearer realm=\"keygate\"")),
        (
            Code::InvalidFormat,
            401,
            Some("Bearer realm=\"keygate\", error=\"invalid_token\", error_description=\"INVALID_FORMAT\""),
        ),
        (Code::AmbiguousCredential, 400, Some("Bearer realm=\"keygate\", error=\"invalid_request\"")),
        (Code::IncompletePair, 400, Some("Bearer realm=\"keygate\", error=\"invalid_request\"")),
        (
            Code::WrongEnvironment,
            401,
            Some("Bearer realm=\"keygate\", error=\"invalid_token\", error_description=\"WRONG_ENVIRONMENT\""),
        ),
        (Code::Expired, 401, Some("Bearer realm=\"keygate\", error=\"invalid_token\", error_description=\"EXPIRED\"")),
        (Code::ForbiddenOrganization, 403, None),
        (
            Code::InsufficientPermissions,
            403,
            Some("Bearer realm=\"keygate\", error=\"insufficient_scope\", scope=\"data:write\""),
        ),
        (Code::CustomerNotAllowed, 403, None),
        (Code::CustomerRequired, 403, None),
        (Code::NoRoute, 403, None),
        (Code::RateLimited, 429, None),
    ];
    let write = Permission::try_from("data:write").unwrap();
    for (code, status, challenge) in cases {
        assert_eq!(code.status(), status, "{code:?}");
        assert_eq!(code.www_authenticate(Some(&write)).as_deref(), challenge, "{code:?}");
        let problem = code.problem();
        assert_eq!(problem.status, status);
        assert_eq!(problem.code, code.as_str());
        assert!(problem.type_uri.starts_with("urn:keygate:problem:"));
    }
}

#[test]
fn problem_bodies_never_hold_the_key() {
    let key = example();
    for code in [Code::NotFound, Code::Revoked, Code::InvalidFormat, Code::WrongProject] {
        let body = code.problem().to_json();
        assert!(!body.contains(key.id.as_str()), "{body}");
        assert!(!body.contains(key.secret.expose()), "{body}");
    }
}

#[test]
fn grace_secret_works_until_its_end() {
    let old = fresh(Environment::Live);
    let new = old.with_new_secret().unwrap();
    let mut record = record_for(&new);
    record.grace = Some(GraceSecret { secret_hash: SecretHash::of(&old), until: NOW.plus_secs(60) });
    let e = live();
    let d = Demand::default();
    assert!(decide(&Claim::of(&old), Some(&record), &e, d, &[], NOW).is_ok());
    assert!(decide(&Claim::of(&new), Some(&record), &e, d, &[], NOW).is_ok());
    assert_eq!(decide(&Claim::of(&old), Some(&record), &e, d, &[], NOW.plus_secs(60)), Err(Code::NotFound));
}

#[test]
fn wildcard_permissions_grant_under_their_prefix() {
    let key = fresh(Environment::Live);
    let record = KeyRecord { permissions: perms(&["admin:*"]), ..record_for(&key) };
    let keys_write = Permission::try_from("admin:keys:write").unwrap();
    let data_read = Permission::try_from("data:read").unwrap();
    let e = live();
    let grant = |p| {
        decide(
            &Claim::of(&key),
            Some(&record),
            &e,
            Demand { access: Access::Permission(p), ..Demand::default() },
            &[],
            NOW,
        )
    };
    assert!(grant(&keys_write).is_ok());
    assert_eq!(grant(&data_read), Err(Code::InsufficientPermissions));
}

#[test]
fn a_roles_permissions_grant_as_the_keys_own_do() {
    let key = fresh(Environment::Live);
    let role = crate::model::HeldRole { name: "billing".into(), permissions: perms(&["invoices:*"]) };
    let record = KeyRecord { permissions: perms(&["data:read"]), roles: vec![role], ..record_for(&key) };
    let invoices = Permission::try_from("invoices:write").unwrap();
    let data_read = Permission::try_from("data:read").unwrap();
    let refunds = Permission::try_from("refunds:write").unwrap();
    let e = live();
    let grant = |record: &KeyRecord, p| {
        decide(
            &Claim::of(&key),
            Some(record),
            &e,
            Demand { access: Access::Permission(p), ..Demand::default() },
            &[],
            NOW,
        )
        .map(|_| ())
    };
    assert_eq!(grant(&record, &invoices), Ok(()));
    assert_eq!(grant(&record, &data_read), Ok(()));
    assert_eq!(grant(&record, &refunds), Err(Code::InsufficientPermissions));
    // Without the role, only the key's own permissions remain.
    let plain = KeyRecord { roles: vec![], ..record.clone() };
    assert_eq!(grant(&plain, &invoices), Err(Code::InsufficientPermissions));
    let listed: Vec<&str> = record.effective_permissions().map(Permission::as_str).collect();
    assert_eq!(listed, ["data:read", "invoices:*"]);
}

#[test]
fn rate_limited_keys_are_flagged_for_their_object() {
    let key = fresh(Environment::Live);
    let record = KeyRecord { rate_limit: Some(RateLimitPolicy::per(5, 60)), ..record_for(&key) };
    let grant = decide(&Claim::of(&key), Some(&record), &live(), Demand::default(), &[], NOW).unwrap();
    assert!(grant.rate_limited);
}

#[test]
fn credential_errors_map_to_codes() {
    assert_eq!(Code::from(CredentialError::Missing), Code::MissingCredential);
    assert_eq!(Code::from(CredentialError::Ambiguous), Code::AmbiguousCredential);
    assert_eq!(Code::from(CredentialError::IncompletePair), Code::IncompletePair);
    assert_eq!(Code::from(CredentialError::Malformed(KeyParseError::BadChecksum)), Code::InvalidFormat);
}

/// LandingLens's rule, per key: a key locked to its own organization never acts for another one its owner joins,
/// and needs no membership lookup to say so.
#[test]
fn a_key_locked_to_its_organization_acts_for_no_other() {
    let key = example();
    let open = record_for(&key);
    let locked = KeyRecord { own_organization_only: true, ..open.clone() };
    let auth = bearer(&key);
    let h = [("authorization", auth.as_str())];
    let elsewhere = Demand { organization: Some("org_b"), ..Demand::default() };
    let own = Demand { organization: Some("org_a"), ..Demand::default() };
    assert!(crate::decision::needs_memberships(&open, elsewhere));
    assert!(!crate::decision::needs_memberships(&locked, elsewhere));
    assert_eq!(run(&h, Some(&open), &live(), elsewhere).map(|g| g.organization), Ok("org_b".into()));
    assert_eq!(run(&h, Some(&locked), &live(), elsewhere), Err(Code::ForbiddenOrganization));
    assert_eq!(run(&h, Some(&locked), &live(), own).map(|g| g.organization), Ok("org_a".into()));
    assert_eq!(run(&h, Some(&locked), &live(), Demand::default()).map(|g| g.organization), Ok("org_a".into()));
}

/// A key with an IP allowlist passes only from an address in it, as Cloudflare reports the client.
#[test]
fn an_ip_allowlist_admits_only_its_ranges() {
    let key = example();
    let ranges = crate::api::validate_ips(&["203.0.113.0/24".into(), "2001:db8::/32".into()]).unwrap();
    let limited = KeyRecord { allowed_ips: ranges, ..record_for(&key) };
    let auth = bearer(&key);
    let h = [("authorization", auth.as_str())];
    let from = |ip: Option<&'static str>| Demand { client_ip: ip, ..Demand::default() };
    for ip in ["203.0.113.7", "2001:db8::42", "::ffff:203.0.113.8"] {
        assert!(run(&h, Some(&limited), &live(), from(Some(ip))).is_ok(), "{ip}");
    }
    for ip in [Some("198.51.100.1"), Some("2001:db9::1"), Some("garbage"), None] {
        assert_eq!(run(&h, Some(&limited), &live(), from(ip)), Err(Code::IpNotAllowed), "{ip:?}");
    }
    assert_eq!(Code::IpNotAllowed.status(), 403);
    // The lifecycle comes first: a revoked key is revoked wherever the request comes from.
    let revoked = KeyRecord { state: KeyState::Revoked, ..limited };
    assert_eq!(run(&h, Some(&revoked), &live(), from(Some("198.51.100.1"))), Err(Code::Revoked));
}

/// Every refusal code of the decision is a problem code the OpenAPI document lists (`problem::CODES`).
#[test]
fn every_refusal_code_is_a_listed_problem_code() {
    use Code::*;
    let refusals = [
        MissingCredential,
        AmbiguousCredential,
        IncompletePair,
        InvalidFormat,
        WrongEnvironment,
        WrongProject,
        NotFound,
        Revoked,
        Deactivated,
        Expired,
        ForbiddenOrganization,
        InsufficientPermissions,
        NoRoute,
        CustomerRequired,
        CustomerNotAllowed,
        IpNotAllowed,
        RateLimited,
        UsageExceeded,
    ];
    // Exhaustive: a new variant does not compile until it is sorted here, and so listed above.
    let is_refusal = |code: Code| match code {
        Valid => false,
        MissingCredential
        | AmbiguousCredential
        | IncompletePair
        | InvalidFormat
        | WrongEnvironment
        | WrongProject
        | NotFound
        | Revoked
        | Deactivated
        | Expired
        | ForbiddenOrganization
        | InsufficientPermissions
        | NoRoute
        | CustomerRequired
        | CustomerNotAllowed
        | IpNotAllowed
        | RateLimited
        | UsageExceeded => true,
    };
    for code in refusals {
        assert!(is_refusal(code));
        assert!(crate::problem::CODES.contains(&code.as_str()), "{}", code.as_str());
    }
    assert!(!crate::problem::CODES.contains(&Valid.as_str()));
}
