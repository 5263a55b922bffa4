#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::routes::RouteTable;

#[test]
fn first_matching_rule_names_the_permission() {
    let table = RouteTable::parse("GET /data/* data:read, POST /streams/* data:write; * /admin-ish admin:x\n").unwrap();
    let cases = [
        ("GET", "/data", Some("data:read")),
        ("GET", "/data/", Some("data:read")),
        ("GET", "/data/a/b", Some("data:read")),
        ("get", "/data/a", Some("data:read")),
        ("POST", "/data/a", None),
        ("POST", "/streams/s1", Some("data:write")),
        ("DELETE", "/admin-ish", Some("admin:x")),
        ("GET", "/admin-ish/x", None),
        ("GET", "/datum", None),
        ("GET", "/", None),
    ];
    for (method, path, want) in cases {
        assert_eq!(table.permission_for(method, path).map(|p| p.as_str()), want, "{method} {path}");
    }
}

#[test]
fn inner_wildcards_match_one_segment() {
    let table = RouteTable::parse("GET /customers/*/orders customers:read").unwrap();
    assert!(table.permission_for("GET", "/customers/c1/orders").is_some());
    assert!(table.permission_for("GET", "/customers/c1/c2/orders").is_none());
}

#[test]
fn bad_rules_are_refused_with_their_text() {
    for (config, needle) in [
        ("GET /data", "expected"),
        ("GET data/* data:read", "must start with"),
        ("G3T /data data:read", "not an HTTP method"),
        ("GET /data Data", "permissions look like"),
    ] {
        let err = RouteTable::parse(config).unwrap_err();
        assert!(err.0.contains(needle), "{config}: {err}");
    }
    assert_eq!(RouteTable::parse("").unwrap(), RouteTable::default());
}
