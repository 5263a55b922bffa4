#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::time::Timestamp;

#[test]
fn rfc3339_table() {
    let cases = [
        ("1970-01-01T00:00:00Z", Some(0)),
        ("2026-11-27T16:12:02Z", Some(1_795_795_922_000)),
        ("2026-11-27T17:12:02+01:00", Some(1_795_795_922_000)),
        ("2026-11-27T16:12:02.5Z", Some(1_795_795_922_500)),
        ("2026-11-27t16:12:02.123456z", Some(1_795_795_922_123)),
        ("2024-02-29T00:00:00Z", Some(1_709_164_800_000)),
        ("2023-02-29T00:00:00Z", None),
        ("2026-13-01T00:00:00Z", None),
        ("2026-11-27T24:00:00Z", None),
        ("2026-11-27T16:12:02", None),
        ("2026-11-27", None),
        ("not a date", None),
        ("", None),
    ];
    for (input, want) in cases {
        assert_eq!(Timestamp::parse_rfc3339(input).map(Timestamp::millis), want, "{input:?}");
    }
}

#[test]
fn formats_in_utc() {
    assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00Z");
    assert_eq!(Timestamp(1_795_795_922_000).to_rfc3339(), "2026-11-27T16:12:02Z");
    assert_eq!(Timestamp(1_795_795_922_500).to_rfc3339(), "2026-11-27T16:12:02.500Z");
    for ms in [0, 1, 951_782_400_000, 1_709_164_800_000, 4_102_444_800_000] {
        assert_eq!(Timestamp::parse_rfc3339(&Timestamp(ms).to_rfc3339()), Some(Timestamp(ms)));
    }
}
