#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::fresh;
use crate::model::Environment;
use crate::scan::find_keys;

/// Keys are found wherever they sit (a config line, a project label, a URL, quotes), with their line and column,
/// and never with their secret; look-alikes (a wrong checksum, a truncated or extended key, a key inside a longer
/// word) are not.
#[test]
fn keys_are_found_by_their_checksum_and_look_alikes_are_not() {
    let live = fresh(Environment::Live).expose();
    let dev = fresh(Environment::Dev).expose();
    let mut wrong = live.clone().into_bytes();
    let last = wrong.len() - 1;
    wrong[last] = if wrong[last] == b'A' { b'B' } else { b'A' };
    let wrong = String::from_utf8(wrong).unwrap();
    let text = format!(
        "first line\nAPI_KEY=\"{live}\"\nurl: https://x.test/?key=acme-shop:{dev}&x=1\nfake: {wrong}\n\
         truncated {} extended {live}Z inside x{live}\n",
        &live[..live.len() - 1]
    );
    let found = find_keys(&text);
    let places: Vec<(usize, usize)> = found.iter().map(|f| (f.line, f.column)).collect();
    assert_eq!(places, [(2, 10), (3, 36)], "{found:?}");
    assert_eq!(found[0].environment, Environment::Live);
    assert_eq!(found[1].environment, Environment::Dev);
    assert_eq!(found[0].masked, format!("kg_live_{}_…", found[0].id));
    for (f, key) in found.iter().zip([&live, &dev]) {
        let secret = &key[key.len() - 38..];
        assert!(!f.masked.contains(&secret[..8]), "the secret is never shown: {}", f.masked);
    }
    assert!(find_keys("").is_empty());
    assert!(find_keys("kg_kg_kg_live_").is_empty());
}
