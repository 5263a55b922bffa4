#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::net::{IpRange, IpRangeError, allowed};

fn range(s: &str) -> IpRange {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn ranges_parse_to_their_network() {
    for (input, shown) in [
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("198.51.100.7", "198.51.100.7/32"),
        (" 0.0.0.0/0 ", "0.0.0.0/0"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:db8:1:2::7/64", "2001:db8:1:2::/64"),
        ("::1", "::1/128"),
        ("::ffff:192.0.2.1", "192.0.2.1/32"),
    ] {
        assert_eq!(range(input).to_string(), shown, "{input}");
    }
    for (input, error) in [
        ("", IpRangeError::Address),
        ("10.0.0/8", IpRangeError::Address),
        ("example.com", IpRangeError::Address),
        ("10.0.0.0/33", IpRangeError::Prefix),
        ("10.0.0.0/", IpRangeError::Prefix),
        ("10.0.0.0/+8", IpRangeError::Prefix),
        ("10.0.0.0/0008", IpRangeError::Prefix),
        ("2001:db8::/129", IpRangeError::Prefix),
    ] {
        assert_eq!(input.parse::<IpRange>(), Err(error), "{input}");
    }
}

#[test]
fn membership_by_prefix_and_family() {
    let v4 = [range("203.0.113.0/24")];
    assert!(allowed(&v4, Some("203.0.113.9")));
    assert!(allowed(&v4, Some("203.0.113.255")));
    assert!(!allowed(&v4, Some("203.0.114.1")));
    assert!(allowed(&v4, Some("::ffff:203.0.113.9")), "an IPv4-mapped client is its IPv4 address");
    assert!(!allowed(&v4, Some("2001:db8::1")));
    let v6 = [range("2001:db8::/32")];
    assert!(allowed(&v6, Some("2001:db8:ffff::1")));
    assert!(!allowed(&v6, Some("2001:db9::1")));
    assert!(!allowed(&v6, Some("203.0.113.9")));
    let everything = [range("0.0.0.0/0"), range("::/0")];
    assert!(allowed(&everything, Some("1.2.3.4")) && allowed(&everything, Some("::2")));
    assert!(allowed(&[range("198.51.100.7")], Some("198.51.100.7")));
    assert!(!allowed(&[range("198.51.100.7")], Some("198.51.100.8")));
}

#[test]
fn a_limited_key_needs_a_readable_client_address() {
    let v4 = [range("203.0.113.0/24")];
    assert!(!allowed(&v4, None));
    assert!(!allowed(&v4, Some("")));
    assert!(!allowed(&v4, Some("203.0.113.9, 10.0.0.1")));
    assert!(allowed(&[], None), "no list: every client");
}

#[test]
fn ranges_round_trip_through_json() {
    let ranges = vec![range("203.0.113.0/24"), range("2001:db8::/32")];
    let text = serde_json::to_string(&ranges).unwrap();
    assert_eq!(text, r#"["203.0.113.0/24","2001:db8::/32"]"#);
    assert_eq!(serde_json::from_str::<Vec<IpRange>>(&text).unwrap(), ranges);
    assert!(serde_json::from_str::<Vec<IpRange>>(r#"["nope"]"#).is_err());
}
