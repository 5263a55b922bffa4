//! `verifier/entry.mjs` holds the little the entry module must know without Rust: the body of the 500 it answers
//! when a call into Rust throws (a panic), and the names of the three exports it calls.

use crate::gateway::is_gateway_path;

const ENTRY: &str = include_str!("../../entry.mjs");

#[test]
fn the_entry_modules_500_is_the_internal_problem() {
    let start = ENTRY.find("const INTERNAL =").expect("INTERNAL in entry.mjs");
    let end = start + ENTRY[start..].find("';").expect("end of INTERNAL") + 1;
    // The string literal's pieces, joined.
    let text: String = ENTRY[start..end].split('\'').skip(1).step_by(2).collect();
    assert_eq!(text, keygate_shared::problem::Problem::internal().to_json());
}

#[test]
fn the_entry_module_calls_the_exports_that_exist() {
    let lib = include_str!("../lib.rs");
    assert!(ENTRY.contains(r#"import { gate, gate_record, serve } from "./build/index.js";"#));
    for name in ["gate", "gate_record", "serve"] {
        assert!(lib.contains(&format!("pub fn {name}(")) || lib.contains(&format!("pub async fn {name}(")), "{name}");
    }
}

#[test]
fn gateway_paths_are_everything_but_admin_and_v1() {
    for path in ["/", "/data/items", "/administrator", "/v10/x", "/v1x", "/__keygate/panic"] {
        assert!(is_gateway_path(path), "{path}");
    }
    for path in ["/admin", "/admin/", "/admin/v1/keys", "/v1", "/v1/health", "/v1/__panic"] {
        assert!(!is_gateway_path(path), "{path}");
    }
}
