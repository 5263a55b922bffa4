#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::preview::{REDACTED, body_preview};

const KEY: &str = "acme-shop:kg_live_F854DS4QEVHXS4_0123456789abcdefABCDEF0123456789xyzXYZ";

#[test]
fn credential_fields_and_the_key_itself_are_redacted() {
    let cases = [
        (r#"{"reading": 21.5, "password": "hunter2"}"#, r#"{"reading": 21.5, "password": "[redacted]"}"#),
        (r#"{"user":{"api_key":"abc\"def","name":"x"}}"#, r#"{"user":{"api_key":"[redacted]","name":"x"}}"#),
        (r#"{"Client_Secret" : 12345, "n": 1}"#, r#"{"Client_Secret" : "[redacted]", "n": 1}"#),
        (r#"{"token": {"a": [1, 2]}, "n": 1}"#, r#"{"token": "[redacted]", "n": 1}"#),
        ("grant=x&refresh_token=abc&n=1", "grant=x&refresh_token=[redacted]&n=1"),
        ("password=hunter2", "password=[redacted]"),
        (
            r#"{"reading": 21.5, "note": "token is fine as a word"}"#,
            r#"{"reading": 21.5, "note": "token is fine as a word"}"#,
        ),
        (r#"{"secret": "cut short"#, r#"{"secret": "[redacted]""#),
        // JSON inside a JSON string, as an origin echoing the request answers it.
        (
            r#"{"body":"{\"reading\": 21.5, \"password\": \"hunter2\", \"n\": 1}"}"#,
            r#"{"body":"{\"reading\": 21.5, \"password\": \"[redacted]\", \"n\": 1}"}"#,
        ),
        (
            r#"{"a": "x", "Authorization": "Bearer abc", "b": 2}"#,
            r#"{"a": "x", "Authorization": "[redacted]", "b": 2}"#,
        ),
    ];
    for (body, want) in cases {
        assert_eq!(body_preview(body, &[], 2048), want, "{body}");
    }
    let body = format!(r#"{{"echo": "{KEY}", "n": 1}}"#);
    let preview = body_preview(&body, &[KEY], 2048);
    assert_eq!(preview, format!(r#"{{"echo": "{REDACTED}", "n": 1}}"#));
}

#[test]
fn previews_are_bounded_in_whole_characters() {
    let body = "é".repeat(5000);
    let preview = body_preview(&body, &[], 2048);
    assert_eq!(preview.chars().count(), 2048, "2,047 characters and the mark of the cut");
    assert_eq!(body_preview(&"x".repeat(2048), &[], 2048), "x".repeat(2048), "exactly the bound: not cut");
    assert!(preview.ends_with('…'));
    assert_eq!(body_preview("short", &[], 2048), "short");
    // Short strings are never taken for a credential to redact.
    assert_eq!(body_preview("a b c", &["b"], 2048), "a b c");
}
