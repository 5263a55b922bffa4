#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::NOW;
use crate::api::AuditAction;
use crate::webhook::{
    CreateWebhookRequest, EventType, SignatureError, UpdateWebhookRequest, backoff_ms, generate_secret, sign,
    validate_url, verify,
};

const BODY: &[u8] = br#"{"id":"evt_1"}"#;

/// The signature is HMAC-SHA-256 of `<t>.<body>`, hex: the vector was computed by Python's `hmac` module, so a
/// receiver in any language gets the same bytes.
#[test]
fn the_signature_is_hmac_sha256_of_the_timestamp_and_body() {
    assert_eq!(
        sign("whsec_test", NOW, BODY),
        "t=1795000000,v1=9768205fbb644a6a645cdd13f225c6791ed91580e4d16c14b9a8e73cd4ba4393"
    );
}

#[test]
fn a_receiver_accepts_its_own_deliveries_and_nothing_else() {
    let secret = generate_secret().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() == 38, "{secret}");
    let header = sign(&secret, NOW, BODY);
    assert_eq!(verify(&secret, &header, BODY, NOW), Ok(()));
    // Five minutes either way is still the same delivery; a minute more is a replay.
    assert_eq!(verify(&secret, &header, BODY, NOW.plus_secs(300)), Ok(()));
    assert_eq!(verify(&secret, &header, BODY, NOW.plus_secs(-300)), Ok(()));
    assert_eq!(verify(&secret, &header, BODY, NOW.plus_secs(301)), Err(SignatureError::OutsideWindow));
    // Another body, another secret, a moved timestamp.
    assert_eq!(verify(&secret, &header, br#"{"id":"evt_2"}"#, NOW), Err(SignatureError::Mismatch));
    assert_eq!(verify("whsec_other", &header, BODY, NOW), Err(SignatureError::Mismatch));
    let moved = header.replacen("t=1795000000", "t=1795000001", 1);
    assert_eq!(verify(&secret, &moved, BODY, NOW), Err(SignatureError::Mismatch));
    // During a secret rotation a sender may sign twice: either signature will do.
    let old = sign("whsec_old", NOW, BODY);
    let both = format!("{header},{}", old.split_once(',').unwrap().1);
    assert_eq!(verify("whsec_old", &both, BODY, NOW), Ok(()));
    assert_eq!(verify(&secret, &both, BODY, NOW), Ok(()));
    for malformed in ["", "t=1", "v1=00", "t=x,v1=00", "t=1795000000,v1=zz", "garbage", "t=1795000000,v1=abc"] {
        assert_eq!(verify(&secret, malformed, BODY, NOW), Err(SignatureError::Malformed), "{malformed}");
    }
}

#[test]
fn endpoints_are_https_or_loopback_http_without_credentials() {
    for good in [
        "https://hooks.example.com/keygate",
        "https://example.com",
        "https://example.com:8443/a?b=c",
        "http://127.0.0.1:8787/hook",
        "http://localhost:3000/",
        "http://[::1]:9000/x",
        "https://[2001:db8::1]/x",
    ] {
        assert_eq!(validate_url(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "ftp://example.com",
        "http://example.com/hook",
        "http://10.0.0.1/hook",
        "https://user:pass@example.com/",
        "https://example.com/#frag",
        "https://exa mple.com/",
        "https://example.com:0/",
        "https://example.com:99999/",
        "https://-bad.example/",
        "https:///path",
        "https://[::1/",
        "javascript:alert(1)",
    ] {
        let problem = validate_url(bad).expect_err(bad);
        assert_eq!((problem.status, problem.field.as_deref()), (422, Some("url")), "{bad}");
    }
    assert!(validate_url(&format!("https://example.com/{}", "a".repeat(2_100))).is_err());
}

#[test]
fn requests_are_validated_field_by_field() {
    let mut create = CreateWebhookRequest { url: "https://example.com/h".into(), ..Default::default() };
    assert_eq!(create.validate(), Ok(()));
    create.events = vec![EventType::KeyRevoked, EventType::KeyRevoked];
    assert_eq!(create.validate().unwrap_err().field.as_deref(), Some("events"));
    create.events = vec![EventType::KeyRevoked];
    create.description = Some("x".repeat(201));
    assert_eq!(create.validate().unwrap_err().field.as_deref(), Some("description"));
    assert_eq!(UpdateWebhookRequest::default().validate().unwrap_err().code, "EMPTY_UPDATE");
    let update = UpdateWebhookRequest { enabled: Some(false), ..Default::default() };
    assert_eq!(update.validate(), Ok(()));
    // Event names are the dotted ones; an unknown one does not parse.
    assert_eq!(serde_json::to_string(&EventType::CanaryTripped).unwrap(), "\"canary.tripped\"");
    assert!(serde_json::from_str::<EventType>("\"key.exploded\"").is_err());
    for t in EventType::ALL {
        assert_eq!(EventType::parse(t.as_str()), Some(t));
    }
}

#[test]
fn key_lifecycle_audit_actions_raise_events_and_others_do_not() {
    assert_eq!(EventType::of_audit(AuditAction::Revoke), Some(EventType::KeyRevoked));
    assert_eq!(EventType::of_audit(AuditAction::Leaked), Some(EventType::KeyLeaked));
    assert_eq!(EventType::of_audit(AuditAction::Rename), None);
    assert_eq!(EventType::of_audit(AuditAction::SignInFailed), None);
}

#[test]
fn retries_back_off_to_an_hour() {
    let waits: Vec<i64> = (1..=crate::webhook::MAX_ATTEMPTS).map(backoff_ms).collect();
    assert_eq!(&waits[..4], &[1_000, 2_000, 4_000, 8_000]);
    assert_eq!(*waits.last().unwrap(), 2_048_000);
    assert_eq!(backoff_ms(40), 3_600_000);
    assert!(waits.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn uses_alerts_fire_once_as_uses_left_cross_a_tenth_and_zero() {
    use crate::model::{Refill, RefillInterval, UsageLimit};
    use crate::webhook::{uses_alerts, uses_low_threshold};
    let hundred = UsageLimit { uses: 100, refill: None };
    assert_eq!(uses_low_threshold(&hundred), 10);
    assert_eq!(uses_low_threshold(&UsageLimit { uses: 3, refill: None }), 1, "at least one");
    let refilled = UsageLimit { uses: 5, refill: Some(Refill { amount: 1_000, interval: RefillInterval::Daily }) };
    assert_eq!(uses_low_threshold(&refilled), 100, "a tenth of what a refill gives");

    let none: Vec<EventType> = Vec::new();
    assert_eq!(uses_alerts(&hundred, None, 50), none);
    assert_eq!(uses_alerts(&hundred, Some(50), 11), none);
    assert_eq!(uses_alerts(&hundred, Some(11), 10), vec![EventType::KeyUsesLow], "falls to the threshold");
    assert_eq!(uses_alerts(&hundred, Some(10), 3), none, "already low: said once");
    assert_eq!(uses_alerts(&hundred, Some(3), 0), vec![EventType::KeyUsesExhausted]);
    assert_eq!(uses_alerts(&hundred, Some(0), 0), none, "already exhausted: said once");
    assert_eq!(
        uses_alerts(&hundred, Some(40), 0),
        vec![EventType::KeyUsesLow, EventType::KeyUsesExhausted],
        "one summary crossing both says both, low first"
    );
    assert_eq!(uses_alerts(&hundred, None, 5), vec![EventType::KeyUsesLow], "a first summary already low");
    assert_eq!(uses_alerts(&hundred, Some(0), 100), none, "a refill says nothing…");
    assert_eq!(uses_alerts(&hundred, Some(100), 9), vec![EventType::KeyUsesLow], "…and re-arms the alert");
}

#[test]
fn new_event_types_keep_their_dotted_names() {
    for (kind, name) in [
        (EventType::KeyExpired, "key.expired"),
        (EventType::KeyRateLimited, "key.rate_limited"),
        (EventType::KeyUsesLow, "key.uses_low"),
        (EventType::KeyUsesExhausted, "key.uses_exhausted"),
    ] {
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
        assert_eq!(EventType::parse(name), Some(kind));
    }
    assert_eq!(EventType::of_audit(AuditAction::Expired), Some(EventType::KeyExpired));
}
