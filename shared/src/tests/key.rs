#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::{EXAMPLE, example, fresh};
use crate::key::{ApiKey, KeyId, KeyParseError, MAX_INPUT_LEN, crc32};
use crate::model::Environment;

fn check(input: &str, expected: Result<(), KeyParseError>) {
    let got = input.parse::<ApiKey>().map(|_| ());
    assert_eq!(got, expected, "input: {input:?}");
}

#[test]
fn design_example_parses_with_its_labels_and_checksum() {
    let key = example();
    assert_eq!(key.project_label.as_deref(), Some("acme-shop"));
    assert_eq!(key.label.as_deref(), Some("line-3"));
    assert_eq!(key.environment, Environment::Live);
    assert_eq!(key.id.as_str(), "F854DS4QEVHXS4");
    assert_eq!(key.secret.expose(), "gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe");
    assert_eq!(&key.check(), b"3vds64");
    assert_eq!(key.expose(), EXAMPLE);
    assert_eq!(key.public_start(), "kg_live_F854DS4QEVHXS4");
}

#[test]
fn crc32_matches_zlib() {
    assert_eq!(crc32(b""), 0);
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b"The quick brown fox jumps over the lazy dog"), 0x414F_A339);
}

#[test]
fn each_parse_error_is_distinct() {
    let body = "kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64";
    check(body, Ok(()));
    check("acme-shop:kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Ok(()));
    check(" kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64 ", Ok(()));
    check("", Err(KeyParseError::Empty));
    check("   ", Err(KeyParseError::Empty));
    check(&"a".repeat(MAX_INPUT_LEN + 1), Err(KeyParseError::TooLong));
    check(&"k".repeat(100_000), Err(KeyParseError::TooLong));
    check("sk_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Err(KeyParseError::WrongPrefix));
    check("KG_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Err(KeyParseError::WrongPrefix));
    check("kg_prod_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Err(KeyParseError::UnknownEnvironment));
    check("kg_Live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Err(KeyParseError::UnknownEnvironment));
    check("kg_nothing", Err(KeyParseError::UnknownEnvironment));
    check("kg_live", Err(KeyParseError::BadLength));
    check("kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds6", Err(KeyParseError::BadLength));
    check("kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds644", Err(KeyParseError::BadLength));
    check("kg_live_F854DS4QEVHXS4gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64_", Err(KeyParseError::BadLength));
    // `I`, `L`, `O` and `U` are not Crockford base32; lowercase is not used in ids.
    check("kg_live_F854DS4QEVHXSI_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Err(KeyParseError::BadAlphabet));
    check("kg_live_f854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Err(KeyParseError::BadAlphabet));
    check("kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtL+3vds64", Err(KeyParseError::BadAlphabet));
    check("kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLé3vds6", Err(KeyParseError::BadAlphabet));
    check("kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds65", Err(KeyParseError::BadChecksum));
    check("kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLf3vds64", Err(KeyParseError::BadChecksum));
    check("kg_test_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Err(KeyParseError::BadChecksum));
    check("Acme:kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Err(KeyParseError::BadLabel));
    check(":kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Err(KeyParseError::BadLabel));
    check("acme:line 3:kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Err(KeyParseError::BadLabel));
    check("a:b:c:kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64", Err(KeyParseError::BadLabel));
    let long_label = "a".repeat(64);
    check(
        &format!("{long_label}:kg_live_F854DS4QEVHXS4_gZB5txLjMD2hUjJdzsPI6YOFYkmIQtLe3vds64"),
        Err(KeyParseError::BadLabel),
    );
}

#[test]
fn generated_keys_round_trip_in_every_environment() {
    for env in Environment::ALL {
        let key = fresh(env);
        let text = key.expose();
        assert!(text.starts_with(&format!("kg_{env}_")), "{text}");
        let back: ApiKey = text.parse().unwrap();
        assert_eq!(back, key);
    }
}

#[test]
fn generated_keys_differ() {
    let a = fresh(Environment::Live);
    let b = fresh(Environment::Live);
    assert_ne!(a.id, b.id);
    assert_ne!(a.secret, b.secret);
}

#[test]
fn pair_form_joins_to_the_same_key() {
    let key = fresh(Environment::Test);
    let back = ApiKey::from_pair(&key.public_start(), &key.expose_pair_secret()).unwrap();
    assert_eq!(back, key);
    assert_eq!(ApiKey::from_pair(&key.public_start(), ""), Err(KeyParseError::Empty));
    assert_eq!(ApiKey::from_pair("", &key.expose_pair_secret()), Err(KeyParseError::Empty));
    assert_eq!(ApiKey::from_pair(&key.public_start(), "short"), Err(KeyParseError::BadLength));
    let other = fresh(Environment::Test);
    assert_eq!(ApiKey::from_pair(&key.public_start(), &other.expose_pair_secret()), Err(KeyParseError::BadChecksum));
}

#[test]
fn debug_never_shows_the_secret() {
    let key = example();
    let shown = format!("{key:?} {:?} {:?}", key.secret, crate::hash::SecretHash::of(&key));
    assert!(!shown.contains(key.secret.expose()), "{shown}");
    assert!(!shown.contains("3vds64"), "{shown}");
    assert!(shown.contains("F854DS4QEVHXS4"), "{shown}");
}

#[test]
fn key_ids_parse_only_crockford() {
    assert!(KeyId::parse("F854DS4QEVHXS4").is_some());
    assert!(KeyId::parse("F854DS4QEVHXS").is_none());
    assert!(KeyId::parse("F854DS4QEVHXSU").is_none());
    assert!(KeyId::parse("f854ds4qevhxs4").is_none());
}
