#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::fresh;
use crate::credential::{CredentialError, Presented, bearer_token, extract};
use crate::model::Environment;

fn check(headers: &[(&str, &str)], extra: &[&str], expected: Result<Presented<'_>, CredentialError>) {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    assert_eq!(extract(headers, &extra), expected, "headers: {headers:?}");
}

#[test]
fn extraction_table() {
    let k = "kg_live_AAAAAAAAAAAAAA_x";
    let other = "kg_live_BBBBBBBBBBBBBB_y";
    check(&[], &[], Err(CredentialError::Missing));
    check(&[("accept", "*/*")], &[], Err(CredentialError::Missing));
    check(&[("Authorization", &format!("Bearer {k}"))], &[], Ok(Presented::Single(k)));
    check(&[("authorization", &format!("bearer   {k} "))], &[], Ok(Presented::Single(k)));
    check(&[("authorization", "Basic dXNlcjpwYXNz")], &[], Err(CredentialError::Missing));
    check(&[("X-Api-Key", k)], &[], Ok(Presented::Single(k)));
    check(&[("authorization", &format!("Bearer {k}")), ("x-api-key", k)], &[], Ok(Presented::Single(k)));
    check(&[("authorization", &format!("Bearer {k}")), ("x-api-key", other)], &[], Err(CredentialError::Ambiguous));
    check(
        &[("apikey", "kg_live_AAAAAAAAAAAAAA"), ("apisecret", "x")],
        &[],
        Ok(Presented::Pair { api_key: "kg_live_AAAAAAAAAAAAAA", api_secret: "x" }),
    );
    check(&[("apikey", "kg_live_AAAAAAAAAAAAAA")], &[], Err(CredentialError::IncompletePair));
    check(&[("apisecret", "x")], &[], Err(CredentialError::IncompletePair));
    check(
        &[("apikey", "kg_live_AAAAAAAAAAAAAA"), ("apisecret", "x"), ("x-api-key", k)],
        &[],
        Ok(Presented::Pair { api_key: "kg_live_AAAAAAAAAAAAAA", api_secret: "x" }),
    );
    check(
        &[("apikey", "kg_live_AAAAAAAAAAAAAA"), ("apisecret", "x"), ("x-api-key", other)],
        &[],
        Err(CredentialError::Ambiguous),
    );
    // LandingLens: a whole key in `apikey` stands alone; a blank or placeholder `apisecret` beside it is ignored.
    check(&[("apikey", k)], &[], Ok(Presented::Single(k)));
    check(&[("apikey", k), ("apisecret", "")], &[], Ok(Presented::Single(k)));
    check(&[("apikey", k), ("apisecret", "x")], &[], Ok(Presented::Single(k)));
    let labelled = format!("acme-shop:{k}");
    check(&[("apikey", labelled.as_str()), ("apisecret", " ")], &[], Ok(Presented::Single(labelled.as_str())));
    check(&[("apikey", k), ("x-api-key", k)], &[], Ok(Presented::Single(k)));
    check(&[("apikey", k), ("x-api-key", other)], &[], Err(CredentialError::Ambiguous));
    // Only a pair's public half needs its secret; a blank one is none.
    check(&[("apikey", "kg_live_AAAAAAAAAAAAAA"), ("apisecret", "  ")], &[], Err(CredentialError::IncompletePair));
    check(&[("apikey", "a:b_c_d:kg_live_AAAAAAAAAAAAAA")], &[], Err(CredentialError::IncompletePair));
    check(&[("apisecret", "")], &[], Err(CredentialError::Missing));
    check(&[("instrumental-api-key", k)], &["instrumental-api-key"], Ok(Presented::Single(k)));
    check(&[("instrumental-api-key", k)], &[], Err(CredentialError::Missing));
    check(
        &[("instrumental-api-key", k), ("x-api-key", other)],
        &["instrumental-api-key"],
        Err(CredentialError::Ambiguous),
    );
}

#[test]
fn bearer_scheme_is_case_insensitive_and_strict() {
    assert_eq!(bearer_token("Bearer abc"), Some("abc"));
    assert_eq!(bearer_token("BEARER abc"), Some("abc"));
    assert_eq!(bearer_token("Bearerabc"), None);
    assert_eq!(bearer_token("Token abc"), None);
}

#[test]
fn a_real_pair_parses_to_its_key() {
    let key = fresh(Environment::Dev);
    let (api_key, api_secret) = (key.public_start(), key.expose_pair_secret());
    let headers = [("apikey", api_key.as_str()), ("apisecret", api_secret.as_str())];
    let parsed = crate::credential::authenticate_headers(&headers[..], &[]).unwrap();
    assert_eq!(parsed, key);
}
