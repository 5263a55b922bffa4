//! Property tests (native only): round trips, checksum strength, no panics, and the rate limiter's guarantee.

use proptest::prelude::*;

use crate::key::{ApiKey, KeyParseError};
use crate::model::{Environment, RateLimitPolicy};
use crate::ratelimit::RateLimitState;
use crate::time::Timestamp;

fn environment() -> impl Strategy<Value = Environment> {
    prop_oneof![Just(Environment::Live), Just(Environment::Test), Just(Environment::Dev)]
}

proptest! {
    #[test]
    fn render_then_parse_round_trips(env in environment(), project in "[a-z0-9-]{1,20}", label in "[A-Za-z0-9._-]{1,20}", labels in 0usize..3) {
        let mut key = ApiKey::generate(env).unwrap();
        if labels >= 1 { key.project_label = Some(project); }
        if labels == 2 { key.label = Some(label); }
        let text = key.expose();
        prop_assert_eq!(text.parse::<ApiKey>(), Ok(key));
    }

    #[test]
    fn any_single_character_change_is_rejected(env in environment(), pos in 0usize..61, replacement in proptest::char::range('!', '~')) {
        let key = ApiKey::generate(env).unwrap();
        let text = key.expose();
        let pos = pos % text.len();
        let original = text.as_bytes()[pos] as char;
        prop_assume!(original != replacement);
        let mut changed = text.clone();
        changed.replace_range(pos..=pos, &replacement.to_string());
        prop_assert!(changed.parse::<ApiKey>().is_err(), "accepted {changed} (from {text})");
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = text.parse::<ApiKey>();
        let _ = ApiKey::from_pair(&text, &text);
    }

    #[test]
    fn near_miss_strings_never_panic(s in "[a-z:_-]{0,8}kg_(live|test|dev|x)_[0-9A-Z]{0,16}_?[0-9A-Za-z]{0,40}") {
        match s.parse::<ApiKey>() {
            Ok(_) | Err(KeyParseError::BadChecksum | KeyParseError::BadLength | KeyParseError::BadAlphabet
                | KeyParseError::UnknownEnvironment | KeyParseError::BadLabel | KeyParseError::WrongPrefix) => {}
            Err(other) => prop_assert!(false, "unexpected {other:?} for {s}"),
        }
    }

    /// No window of `window_seconds` ever holds more than `requests` admitted requests, and with a burst, no interval
    /// of length t holds more than `burst + t / interval`.
    #[test]
    fn rate_limiter_never_over_admits(
        requests in 1u32..20,
        window_seconds in 1u32..5,
        burst in proptest::option::of(1u32..20),
        gaps in proptest::collection::vec(0i64..700, 1..400),
    ) {
        let policy = RateLimitPolicy { requests, window_seconds, burst: burst.map(|b| b.min(requests)), mode: crate::model::RateLimitMode::Leased };
        let mut state = RateLimitState::new(&policy);
        let mut now = 1_795_000_000_000i64;
        let mut admitted: Vec<i64> = Vec::new();
        for gap in gaps {
            now += gap;
            let d = state.check(&policy, Timestamp(now));
            if d.allowed { admitted.push(now); }
            prop_assert!(d.remaining <= requests);
            prop_assert_eq!(d.allowed, d.retry_after_seconds.is_none());
        }
        let window_ms = i64::from(window_seconds) * 1000;
        for (i, &start) in admitted.iter().enumerate() {
            let in_window = admitted[i..].iter().take_while(|&&t| t < start + window_ms).count();
            prop_assert!(in_window <= requests as usize, "{in_window} admitted in one window of {window_seconds}s, policy {requests}");
        }
        if let Some(b) = policy.burst {
            let interval_ms = window_ms as f64 / f64::from(requests);
            for (i, &start) in admitted.iter().enumerate() {
                for (j, &end) in admitted.iter().enumerate().skip(i) {
                    let allowed = f64::from(b) + ((end - start) as f64 / interval_ms).floor();
                    prop_assert!((j - i + 1) as f64 <= allowed + 1e-9);
                }
            }
        }
    }

    /// Refusals are honest: once `Retry-After` has passed (and nothing else was admitted), a request is admitted.
    #[test]
    fn retry_after_is_enough(requests in 1u32..10, window_seconds in 1u32..4, burst in proptest::option::of(1u32..10), n in 1usize..30) {
        let policy = RateLimitPolicy { requests, window_seconds, burst: burst.map(|b| b.min(requests)), mode: crate::model::RateLimitMode::Leased };
        let mut state = RateLimitState::new(&policy);
        let now = Timestamp(1_795_000_000_000);
        let mut last = None;
        for _ in 0..n { last = Some(state.check(&policy, now)); }
        if let Some(retry) = last.and_then(|d| d.retry_after_seconds) {
            prop_assert!(state.check(&policy, now.plus_secs(i64::from(retry))).allowed);
        }
    }
}

proptest! {
    /// Any path: no panic; a canonical form is canonical, stable, and the only thing `is_canonical` accepts as is.
    #[test]
    fn paths_normalize_once_and_for_all(raw in "(/|[a-zA-Z0-9]|%[0-9a-fA-F]{2}|%|\\.|\\.\\.|~|\\\\| ){0,40}") {
        match crate::path::normalize(&raw) {
            Ok(canonical) => {
                prop_assert!(crate::path::is_canonical(&canonical), "{canonical} from {raw}");
                prop_assert_eq!(crate::path::normalize(&canonical), Ok(canonical.clone()));
                prop_assert!(!canonical.split('/').any(|s| s == "." || s == ".."));
                prop_assert!(!canonical.contains("//"));
            }
            Err(_) => prop_assert!(!crate::path::is_canonical(&raw)),
        }
        if crate::path::is_canonical(&raw) {
            prop_assert_eq!(crate::path::normalize(&raw), Ok(raw.clone()));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_path_normalizer(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = crate::path::normalize(&text);
        let _ = crate::path::is_canonical(&text);
    }
}

proptest! {
    /// Isolates admitting on their own from leases: however requests are spread over isolates and time, and whatever
    /// each asks for, no window of `window_seconds` ever holds more than `requests` admissions actually made.
    #[test]
    fn leased_admissions_never_over_admit(
        requests in 1u32..40,
        window_seconds in 1u32..4,
        isolates in 1usize..4,
        steps in proptest::collection::vec((0usize..4, 0i64..120, 0u32..12), 1..600),
    ) {
        use crate::ratelimit::Lease;
        let policy = RateLimitPolicy::per(requests, window_seconds);
        let mut object = RateLimitState::new(&policy);
        // Per isolate: the lease it holds and how much of it it used.
        let mut held: Vec<Option<(Lease, u32)>> = vec![None; isolates];
        let mut now = 1_795_000_000_000i64;
        let mut admitted: Vec<i64> = Vec::new();
        for (isolate, gap, want) in steps {
            now += gap;
            let isolate = isolate % isolates;
            if let Some((lease, used)) = held[isolate].as_mut()
                && now < lease.until.millis()
                && *used < lease.count
            {
                *used += 1;
                admitted.push(now);
                continue;
            }
            if let Some((lease, used)) = held[isolate].take() {
                object.give_back(&policy, lease.slot, lease.count - used);
            }
            let (decision, lease) = object.check_and_lease(&policy, Timestamp(now), want);
            if decision.allowed {
                admitted.push(now);
            }
            if let Some(lease) = lease {
                prop_assert!(lease.until.millis() <= now + crate::ratelimit::MAX_LEASE_MS);
                held[isolate] = Some((lease, 0));
            }
        }
        let window_ms = i64::from(window_seconds) * 1000;
        for (i, &start) in admitted.iter().enumerate() {
            let in_window = admitted[i..].iter().take_while(|&&t| t < start + window_ms).count();
            prop_assert!(in_window <= requests as usize, "{in_window} admitted in one window, policy {requests}/{window_seconds}s");
        }
    }
}

proptest! {
    /// The gateway's own address parser reads exactly what `std`'s does: every address `std` writes, and any
    /// near-miss string the same way (both accept it with the same value, or both refuse it).
    #[test]
    fn the_address_parser_agrees_with_std_on_addresses(v4 in any::<u32>(), v6 in any::<u128>(), zeros in 0u8..8) {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        // Runs of zero groups, so that `::` appears in every position.
        let v6 = v6 & !(0xffff_u128 << (16 * u32::from(zeros))) & !(0xffff_u128 << (16 * u32::from((zeros + 1) % 8)));
        for ip in [IpAddr::V4(Ipv4Addr::from(v4)), IpAddr::V6(Ipv6Addr::from(v6)), IpAddr::V6(Ipv4Addr::from(v4).to_ipv6_mapped())] {
            let text = ip.to_string();
            prop_assert_eq!(crate::net::parse_addr(&text), Some(crate::net::Addr::from(ip)), "{}", text);
        }
    }

    #[test]
    fn the_address_parser_agrees_with_std_on_near_misses(s in "[0-9a-fA-F:.]{0,44}") {
        let ours = crate::net::parse_addr(&s);
        let theirs = s.parse::<std::net::IpAddr>().ok().map(crate::net::Addr::from);
        prop_assert_eq!(ours, theirs, "{}", s);
    }
}
