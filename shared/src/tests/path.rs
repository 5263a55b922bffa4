#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::path::{PathError, is_canonical, normalize};

fn check(raw: &str, want: Result<&str, PathError>) {
    assert_eq!(normalize(raw), want.map(str::to_owned), "{raw}");
    if let Ok(canonical) = want {
        assert_eq!(normalize(canonical).as_deref(), Ok(canonical), "normalizing twice changes {canonical}");
        assert!(is_canonical(canonical), "{canonical} is canonical");
        assert_eq!(is_canonical(raw), raw == canonical, "is_canonical({raw})");
    }
}

#[test]
fn paths_have_one_canonical_form() {
    check("/", Ok("/"));
    check("/data/items", Ok("/data/items"));
    check("/data/items/", Ok("/data/items/"));
    // Unreserved characters are decoded; other escapes stay, with upper-case hex.
    check("/%73treams/s1", Ok("/streams/s1"));
    check("/data/%7Euser", Ok("/data/~user"));
    check("/data/a%20b", Ok("/data/a%20b"));
    check("/data/a%3fb", Ok("/data/a%3Fb"));
    check("/data/é", Ok("/data/%C3%A9"));
    // Dot segments, also encoded ones.
    check("/data/../streams/s1", Ok("/streams/s1"));
    check("/data/./items", Ok("/data/items"));
    check("/data/%2e%2E/streams", Ok("/streams"));
    check("/data/.%2e/streams", Ok("/streams"));
    check("/data/items/.", Ok("/data/items/"));
    check("/data/items/..", Ok("/data/"));
    // Repeated slashes.
    check("//streams/s1", Ok("/streams/s1"));
    check("/data//..//streams", Ok("/streams"));
    check("///", Ok("/"));
    // Refusals.
    check("/..", Err(PathError::AboveRoot));
    check("/data/../../streams", Err(PathError::AboveRoot));
    check("/data/%zz", Err(PathError::BadEscape));
    check("/data/%4", Err(PathError::BadEscape));
    check("/data/%", Err(PathError::BadEscape));
    check("/data/..%2Fstreams", Err(PathError::EncodedSeparator));
    check("/data/..%2fstreams", Err(PathError::EncodedSeparator));
    check("/data/..%5Cstreams", Err(PathError::EncodedSeparator));
    check("/data/a%00", Err(PathError::EncodedSeparator));
    check("/data/a\\..\\streams", Err(PathError::ControlCharacter));
    check("/data/a b", Err(PathError::ControlCharacter));
    check("data", Err(PathError::NotAbsolute));
    check("", Err(PathError::NotAbsolute));
    check(&format!("/{}", "a".repeat(3000)), Err(PathError::TooLong));
}
