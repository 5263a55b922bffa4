//! Component tests in headless Chromium (`cargo xtask test` runs them with ChromeDriver): the pieces with logic.

use admin_ui::components::{ShowOnceModal, StatusBadge};
use admin_ui::logic::{self, KeyAction};
use keygate_shared::api::{CreatedKey, KeyView, UsageSummary};
use keygate_shared::model::{Environment, KeyKind, KeyStatus, Permission, RateLimitMode, RateLimitPolicy, Role};
use keygate_shared::{KeyId, Timestamp};
use leptos::prelude::*;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

fn view_of(status: KeyStatus) -> KeyView {
    KeyView {
        id: KeyId::parse("F854DS4QEVHXS4").unwrap(),
        start: "kg_live_F854DS4QEVHXS4".into(),
        name: "Main Website Integration".into(),
        environment: Environment::Live,
        project: None,
        organization: "org_1".into(),
        owner: "usr_1".into(),
        owner_name: Some("Olive".into()),
        permissions: vec![Permission::try_from("data:read").unwrap()],
        customers: vec![],
        rate_limit: None,
        expires_at: None,
        status,
        kind: KeyKind::Single,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        last_used_at: None,
        usage: UsageSummary::default(),
        allowed_ips: vec![],
        own_organization_only: false,
        canary: false,
        meta: None,
        usage_limit: None,
        roles: vec!["billing".into()],
        identity: None,
    }
}

/// Mounts a view into a fresh container and returns the container.
fn mount(view: impl FnOnce() -> AnyView + 'static) -> web_sys::HtmlElement {
    let document = document();
    let container: web_sys::HtmlElement = wasm_bindgen::JsCast::unchecked_into(document.create_element("div").unwrap());
    document.body().unwrap().append_child(&container).unwrap();
    let handle = leptos::mount::mount_to(container.clone(), view);
    handle.forget();
    container
}

#[wasm_bindgen_test]
async fn the_show_once_modal_shows_the_key_the_warning_and_snippets() {
    let created =
        CreatedKey::Single { key: "kg_live_F854DS4QEVHXS4_secretsecret".into(), record: view_of(KeyStatus::Active) };
    let closed = RwSignal::new(false);
    let c = created.clone();
    let root = mount(move || {
        view! { <ShowOnceModal created=c origin="http://127.0.0.1:8787".into() on_close=Callback::new(move |()| closed.set(true)) /> }
            .into_any()
    });
    leptos::task::tick().await;
    let text = root.text_content().unwrap_or_default();
    assert!(text.contains("kg_live_F854DS4QEVHXS4_secretsecret"), "{text}");
    assert!(text.contains("will not be shown again"), "{text}");
    // The snippets read the key from `KEYGATE_API_KEY`; the key itself is in the page once, in the copy box.
    assert!(text.contains("Authorization: Bearer $KEYGATE_API_KEY"), "{text}");
    assert!(text.contains("x-api-key: $KEYGATE_API_KEY"), "{text}");
    assert!(text.contains("process.env.KEYGATE_API_KEY"), "{text}");
    assert_eq!(text.matches("secretsecret").count(), 1, "{text}");
    // Focus moved into the dialog.
    let active = document().active_element().and_then(|e| e.get_attribute("data-testid"));
    assert_eq!(active.as_deref(), Some("copy-key"));
    let close: web_sys::HtmlElement =
        wasm_bindgen::JsCast::unchecked_into(root.query_selector("[data-testid=close-new-key]").unwrap().unwrap());
    close.click();
    leptos::task::tick().await;
    assert!(closed.get_untracked());
}

#[wasm_bindgen_test]
async fn a_pair_offers_both_halves() {
    let created = CreatedKey::Pair {
        api_key: "kg_live_F854DS4QEVHXS4".into(),
        api_secret: "secretcheck".into(),
        record: view_of(KeyStatus::Active),
    };
    let root = mount(move || {
        view! { <ShowOnceModal created=created origin="http://x".into() on_close=Callback::new(|()| {}) /> }.into_any()
    });
    leptos::task::tick().await;
    let text = root.text_content().unwrap_or_default();
    assert!(text.contains("apikey: kg_live_F854DS4QEVHXS4"), "{text}");
    assert!(text.contains("apisecret: secretcheck"), "{text}");
    assert!(text.contains("apisecret: $KEYGATE_API_SECRET"), "{text}");
    assert_eq!(text.matches("secretcheck").count(), 1, "{text}");
}

#[wasm_bindgen_test]
async fn status_badges_are_visibly_distinct() {
    let mut seen = Vec::new();
    for status in [KeyStatus::Active, KeyStatus::Inactive, KeyStatus::Expired, KeyStatus::Deactivated] {
        let root = mount(move || view! { <StatusBadge status=status /> }.into_any());
        leptos::task::tick().await;
        let badge = root.query_selector("[data-testid=status]").unwrap().unwrap();
        let class = badge.get_attribute("class").unwrap();
        let color = web_sys::window()
            .unwrap()
            .get_computed_style(&badge)
            .unwrap()
            .unwrap()
            .get_property_value("background-color")
            .unwrap();
        assert_eq!(badge.text_content().unwrap(), logic::status_badge(status).0);
        seen.push((class, color));
    }
    let classes: std::collections::HashSet<_> = seen.iter().map(|(c, _)| c.clone()).collect();
    assert_eq!(classes.len(), 4, "{seen:?}");
}

#[wasm_bindgen_test]
fn the_action_menu_offers_only_allowed_actions() {
    use KeyAction::*;
    let cases = [
        (Role::Member, true, KeyStatus::Active, vec![Rename, Edit, Regenerate, Revoke, Deactivate]),
        (Role::Member, true, KeyStatus::Inactive, vec![Rename, Edit, Regenerate, Activate, Deactivate, Delete]),
        (Role::Member, false, KeyStatus::Active, vec![]),
        (Role::Admin, false, KeyStatus::Active, vec![Revoke, Deactivate]),
        (Role::Owner, false, KeyStatus::Inactive, vec![Activate, Deactivate, Delete]),
        (Role::Owner, true, KeyStatus::Deactivated, vec![Delete]),
        (Role::Admin, false, KeyStatus::Expired, vec![Revoke, Deactivate]),
    ];
    for (role, owner, status, want) in cases {
        assert_eq!(logic::allowed_actions(role, owner, status), want, "{role:?} owner={owner} {status:?}");
    }
    assert!(Deactivate.confirmation().unwrap().contains("final"));
}

#[wasm_bindgen_test]
fn the_usage_chart_scales_to_a_round_maximum() {
    assert_eq!(logic::nice_max(0), 1);
    assert_eq!(logic::nice_max(7), 10);
    assert_eq!(logic::nice_max(10), 10);
    assert_eq!(logic::nice_max(11), 20);
    assert_eq!(logic::nice_max(480), 500);
    let (top, bars) = logic::chart_bars(&[0, 5, 10], 300.0, 100.0);
    assert_eq!(top, 10);
    assert_eq!(bars.len(), 3);
    assert_eq!(bars[0].height, 0.0);
    assert_eq!(bars[1].height, 50.0);
    assert_eq!(bars[2].height, 100.0);
    assert_eq!(bars[2].y, 0.0);
    assert!(bars.windows(2).all(|w| w[0].x < w[1].x));
}

#[wasm_bindgen_test]
async fn the_console_shows_sign_in_without_a_token() {
    let root = mount(|| view! { <admin_ui::App /> }.into_any());
    leptos::task::tick().await;
    let text = root.text_content().unwrap_or_default();
    assert!(text.contains("Console token"), "{text}");
}

/// The console says when the token in use expires: in days, in hours on its last day, or that it has.
#[wasm_bindgen_test]
fn token_expiry_is_said_plainly() {
    let now = Timestamp(1_795_000_000_000);
    let cases = [
        (None, ""),
        (Some(now.plus_secs(30 * 86_400)), "Your console token expires in 30 days (2026-12-18)"),
        (Some(now.plus_secs(30 * 86_400 - 60)), "Your console token expires in 30 days (2026-12-18)"),
        (Some(now.plus_secs(5 * 3_600)), "Your console token expires in 5 h"),
        (Some(now.plus_secs(60)), "Your console token expires within the hour"),
        (Some(now), "Your console token has expired"),
    ];
    for (at, want) in cases {
        assert_eq!(logic::token_expiry(at, now), want, "{at:?}");
    }
}

#[wasm_bindgen_test]
fn the_audit_log_names_its_actors() {
    assert_eq!(logic::actor_label(Some("Olive"), Some("usr_1")), "Olive");
    assert_eq!(logic::actor_label(None, Some("usr_1")), "usr_1");
    assert_eq!(logic::actor_label(None, None), "(not signed in)");
}

/// The admin page's Edit dialog: raising a key's limit keeps its burst and mode, and an edit sends only what changed
/// (an expiry with seconds, shown to the minute, is not rounded by an unrelated edit).
#[wasm_bindgen_test]
fn an_edit_keeps_what_it_does_not_change() {
    let mut key = view_of(KeyStatus::Active);
    let policy = RateLimitPolicy { requests: 100, window_seconds: 60, burst: Some(10), mode: RateLimitMode::Strict };
    key.rate_limit = Some(policy);
    key.expires_at = Timestamp::parse_rfc3339("2027-01-02T03:04:05Z");
    let opened = logic::EditForm::of(&key);
    assert_eq!(opened.update(&key), None, "nothing changed, nothing sent");

    let raised = logic::EditForm { requests: "200".into(), ..opened.clone() }.update(&key).unwrap();
    assert_eq!(raised.rate_limit, Some(Some(RateLimitPolicy { requests: 200, ..policy })));
    assert_eq!((raised.permissions, raised.customers, raised.expires_at, raised.name), (None, None, None, None));

    let cleared = logic::EditForm { requests: " ".into(), ..opened.clone() }.update(&key).unwrap();
    assert_eq!(cleared.rate_limit, Some(None));

    let permissions = logic::EditForm { permissions: "data:read, data:write".into(), ..opened.clone() };
    let permissions = permissions.update(&key).unwrap();
    assert_eq!(permissions.permissions, Some(vec!["data:read".to_owned(), "data:write".to_owned()]));
    assert_eq!(permissions.rate_limit, None);

    assert_eq!(permissions.roles, None, "the roles were not touched");

    let roles = logic::EditForm { roles: "billing, support".into(), ..opened.clone() }.update(&key).unwrap();
    assert_eq!(roles.roles, Some(vec!["billing".to_owned(), "support".to_owned()]));
    assert_eq!((roles.permissions, roles.rate_limit), (None, None));
    assert_eq!(logic::access_summary(&key.permissions, &key.roles), "data:read · roles: billing");

    let joined = logic::EditForm { identity: "idn_AAAAAAAAAAAAAA".into(), ..opened.clone() }.update(&key).unwrap();
    assert_eq!(joined.identity, Some(Some("idn_AAAAAAAAAAAAAA".to_owned())));
    assert_eq!((joined.roles, joined.permissions), (None, None));

    let expiry = logic::EditForm { expiry: "2027-02-01T00:00".into(), ..opened }.update(&key).unwrap();
    assert_eq!(expiry.expires_at, Some(Timestamp::parse_rfc3339("2027-02-01T00:00:00Z")));
}

/// Metadata in the Edit dialog: shown indented, sent only when changed, emptied to remove it, and text that is not
/// JSON sent as a string so the API's own error names the field.
#[wasm_bindgen_test]
fn metadata_is_edited_as_json_text() {
    let mut key = view_of(KeyStatus::Active);
    key.meta = Some(keygate_shared::meta::KeyMeta::from_value(&serde_json::json!({"plan": "pro"})).unwrap());
    let opened = logic::EditForm::of(&key);
    assert_eq!(opened.meta, "{\n  \"plan\": \"pro\"\n}");
    let reformatted = logic::EditForm { meta: "{\"plan\":   \"pro\"}\n".into(), ..opened.clone() };
    assert_eq!(reformatted.update(&key), None, "the same object, written differently, is no change");
    let changed = logic::EditForm { meta: r#"{"plan": "free"}"#.into(), ..opened.clone() }.update(&key).unwrap();
    assert_eq!(changed.meta, Some(Some(serde_json::json!({"plan": "free"}))));
    assert_eq!(changed.permissions, None);
    let removed = logic::EditForm { meta: "  ".into(), ..opened.clone() }.update(&key).unwrap();
    assert_eq!(removed.meta, Some(None));
    let typo = logic::EditForm { meta: "plan = pro".into(), ..opened }.update(&key).unwrap();
    assert_eq!(typo.meta, Some(Some(serde_json::json!("plan = pro"))));
}

/// The usage-limit fields: empty is no limit, a refill of no amount refills to the uses, a change is sent (and only
/// a change), and the key page's words.
#[wasm_bindgen_test]
fn usage_limits_are_edited_and_shown() {
    use keygate_shared::model::{Refill, RefillInterval, UsageLimit};
    assert_eq!(logic::usage_limit_field(" ", "daily", "5"), None);
    let monthly = UsageLimit { uses: 100, refill: Some(Refill { amount: 100, interval: RefillInterval::Monthly }) };
    assert_eq!(logic::usage_limit_field("100", "monthly", ""), Some(monthly));
    assert_eq!(logic::usage_limit_field("ten", "", "").map(|l| l.uses), Some(0), "the API names the field");
    let mut key = view_of(KeyStatus::Active);
    key.usage_limit = Some(monthly);
    key.usage.remaining = Some(40);
    assert_eq!(
        logic::usage_limit_text(key.usage_limit.as_ref(), Some(40)),
        "40 of 100 uses left, refilled to 100 every month (UTC)"
    );
    assert_eq!(logic::usage_limit_text(None, None), "Unlimited");
    let opened = logic::EditForm::of(&key);
    assert_eq!(
        (opened.uses.as_str(), opened.refill.as_str(), opened.refill_amount.as_str()),
        ("100", "monthly", "100")
    );
    assert_eq!(opened.update(&key), None);
    let daily = logic::EditForm { refill: "daily".into(), ..opened.clone() }.update(&key).unwrap();
    let refill = Some(Refill { amount: 100, interval: RefillInterval::Daily });
    assert_eq!(daily.usage_limit, Some(Some(UsageLimit { uses: 100, refill })));
    assert_eq!(daily.meta, None);
    let freed = logic::EditForm { uses: String::new(), ..opened }.update(&key).unwrap();
    assert_eq!(freed.usage_limit, Some(None));
}
