#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::decision::Access;
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
        let got = match table.access(method, path) {
            Access::Permission(p) => Some(p.as_str()),
            Access::Unrouted => None,
            Access::Open => Some("-"),
        };
        assert_eq!(got, want, "{method} {path}");
    }
}

/// With rules, a route no rule covers is refused; `-` opens a route to any valid key; `HEAD` needs what `GET` needs.
#[test]
fn routes_fail_closed_and_head_is_get() {
    let table = RouteTable::parse("GET /data/* data:read, POST /streams/* data:write, GET /status -").unwrap();
    let cases = [
        ("HEAD", "/data/a", Access::Permission(&table.rules[0].permission.clone().unwrap())),
        ("HEAD", "/streams/s1", Access::Unrouted),
        ("GET", "/status", Access::Open),
        ("HEAD", "/status", Access::Open),
        ("DELETE", "/data/a", Access::Unrouted),
        ("GET", "/elsewhere", Access::Unrouted),
    ];
    for (method, path, want) in cases {
        assert_eq!(table.access(method, path), want, "{method} {path}");
    }
    let open_rest = RouteTable::parse("POST /streams/* data:write, * /* -").unwrap();
    assert_eq!(open_rest.access("GET", "/anything/at/all"), Access::Open);
    assert_eq!(open_rest.access("GET", "/"), Access::Open);
    assert_eq!(RouteTable::default().access("DELETE", "/x"), Access::Open, "no rules: any valid key");
}

#[test]
fn inner_wildcards_match_one_segment() {
    let table = RouteTable::parse("GET /customers/*/orders customers:read").unwrap();
    assert!(matches!(table.access("GET", "/customers/c1/orders"), Access::Permission(_)));
    assert_eq!(table.access("GET", "/customers/c1/c2/orders"), Access::Unrouted);
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
