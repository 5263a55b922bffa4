//! The OpenAPI 3.1 document of the admin API, `/v1/verify` and `/v1/whoami`, served at `/admin/v1/openapi.json`.
//!
//! Schemas are generated from the Rust types themselves (`schemars`, through `keygate-shared`'s `schema` feature,
//! which only this generator's tests enable): answers in serde's `Serialize` contract (a field is required unless
//! serde skips it when empty; `null` only where the type is optional), request bodies in its `Deserialize` contract
//! (a field with a default may be left out; unknown fields are refused where serde refuses them); enums, formats,
//! patterns and bounds as the types say. Each operation lists its success answer and the problems it answers
//! (RFC 9457 bodies, `field` only on 422). The Worker serves the generated document as a static file
//! (`openapi.json`, so neither the generator nor schemars is in the bundle); a test fails when the file differs from
//! what the types generate (`KEYGATE_BLESS=1 cargo test -p control openapi` rewrites it). Tests also check that every
//! path in the document is a route the Worker parses and that every route is in the document, that every example
//! validates against its schema, and the end-to-end suite validates every answer it receives against the document
//! (`keygate_e2e::openapi`).

/// The document as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(all(test, not(target_arch = "wasm32")))]
pub use generator::document;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod generator {
    use keygate_shared::api::*;
    use keygate_shared::decision::Code;
    use keygate_shared::key::KeyId;
    use keygate_shared::leak::{KeyLeak, KeyLeakList, LeakLabel, LeakReport, LeakVerdict};
    use keygate_shared::meta::KeyMeta;
    use keygate_shared::model::{
        Environment, KeyCreation, KeyIdentity, KeyKind, KeyStatus, Membership, Organization, OrganizationSettings,
        Permission, Project, RateLimitPolicy, Refill, RefillInterval, Role, UsageLimit, User,
    };
    use keygate_shared::privilege::{PermissionUse, Suggestion, SuggestionKind, SuggestionList};
    use keygate_shared::problem::Problem;
    use keygate_shared::time::Timestamp;
    use keygate_shared::webhook::{
        CreateWebhookRequest, CreatedWebhook, DeliveryList, DeliveryState, DeliveryView, EventKey, EventType,
        RotateSecretRequest, RotatedSecret, UpdateWebhookRequest, WebhookEvent, WebhookList, WebhookView,
    };
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use schemars::JsonSchema;
    use schemars::generate::{Contract, SchemaGenerator, SchemaSettings};
    use serde::Serialize;
    use serde_json::{Map, Value, json};

    /// The schema generators: answers as serde writes them (`Serialize` contract: a field is required unless it is
    /// skipped when empty; `Option`s are nullable), and request bodies as serde reads them (`Deserialize`
    /// contract: a field with a default may be left out). Their definitions become `components/schemas`.
    struct Generators {
        output: SchemaGenerator,
        input: SchemaGenerator,
    }

    thread_local! {
        static GENERATORS: RefCell<Option<Generators>> = const { RefCell::new(None) };
    }

    fn generator(contract: Contract) -> SchemaGenerator {
        let mut settings = SchemaSettings::draft2020_12();
        settings.definitions_path = "/components/schemas/".into();
        settings.meta_schema = None;
        settings.contract = contract;
        SchemaGenerator::new(settings)
    }

    /// The schema of an answer's type (a `$ref` to its component), with `example` as its example.
    fn schema<T: Serialize + JsonSchema>(example: &T) -> Value {
        let schema = GENERATORS
            .with(|g| g.borrow_mut().as_mut().expect("document() sets the generators").output.subschema_for::<T>());
        with_example(schema.to_value(), example)
    }

    /// The schema of a request body's type (its components are renamed `…Input` where reading differs from
    /// writing), with `example` as its example.
    fn input<T: Serialize + JsonSchema>(example: &T) -> Value {
        let schema = GENERATORS
            .with(|g| g.borrow_mut().as_mut().expect("document() sets the generators").input.subschema_for::<T>());
        with_example(schema.to_value(), example)
    }

    fn with_example<T: Serialize>(mut schema: Value, example: &T) -> Value {
        if let (Some(fields), Ok(example)) = (schema.as_object_mut(), serde_json::to_value(example)) {
            fields.insert("examples".into(), json!([example]));
        }
        schema
    }

    /// Rewrites every `$ref` to `#/components/schemas/<from>` in `value` to `<to>`.
    fn rename_refs(value: &mut Value, renames: &BTreeMap<String, String>) {
        match value {
            Value::Object(fields) => {
                if let Some(Value::String(target)) = fields.get_mut("$ref")
                    && let Some(name) = target.strip_prefix(REFS)
                    && let Some(to) = renames.get(name)
                {
                    *target = format!("{REFS}{to}");
                }
                fields.values_mut().for_each(|v| rename_refs(v, renames));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, renames)),
            _ => {}
        }
    }

    const REFS: &str = "#/components/schemas/";

    /// The input definitions' names: each is its type's name when no answer uses the type, or when it reads as it
    /// writes (the same schema, up to the same renames inside); else `<name>Input`.
    fn input_names(output: &Map<String, Value>, input: &Map<String, Value>) -> BTreeMap<String, String> {
        // A request body's own type keeps its name; a type that answers use too is renamed unless it reads as it
        // writes.
        let mut renames: BTreeMap<String, String> = input
            .keys()
            .map(|name| (name.clone(), if output.contains_key(name) { format!("{name}Input") } else { name.clone() }))
            .collect();
        loop {
            let mut changed = false;
            for (name, schema) in input {
                if renames[name] == *name {
                    continue;
                }
                let mut renamed = schema.clone();
                rename_refs(&mut renamed, &renames);
                if output.get(name) == Some(&renamed) {
                    renames.insert(name.clone(), name.clone());
                    changed = true;
                }
            }
            if !changed {
                return renames;
            }
        }
    }

    fn ts() -> Timestamp {
        Timestamp::from_secs(1_795_000_000)
    }

    fn example_id() -> KeyId {
        KeyId::parse("F854DS4QEVHXS4").expect("a valid key id literal")
    }

    fn permission(p: &str) -> Permission {
        Permission::try_from(p).expect("a valid permission literal")
    }

    fn key_view() -> KeyView {
        KeyView {
            id: example_id(),
            start: "kg_live_F854DS4QEVHXS4".into(),
            name: "Main Website Integration".into(),
            environment: Environment::Live,
            project: Some("acme-shop".into()),
            organization: "org_7Q3M0T9ZK1XW2R".into(),
            owner: "usr_7Q3M0T9ZK1XW2R".into(),
            owner_name: Some("Olive Owner".into()),
            permissions: vec![permission("data:read")],
            customers: vec!["cus_1".into()],
            rate_limit: Some(RateLimitPolicy {
                requests: 100,
                window_seconds: 60,
                burst: Some(10),
                mode: keygate_shared::model::RateLimitMode::Leased,
            }),
            expires_at: Some(ts()),
            status: KeyStatus::Active,
            kind: KeyKind::Single,
            created_at: ts(),
            updated_at: ts(),
            last_used_at: Some(ts()),
            usage: UsageSummary { total: 1, last_24h: 1, recent_errors: 0, remaining: Some(999) },
            allowed_ips: vec!["203.0.113.0/24".parse().expect("a valid range literal")],
            own_organization_only: true,
            canary: false,
            meta: Some(meta()),
            usage_limit: Some(usage_limit()),
            roles: vec!["billing".into()],
            identity: Some(identity()),
        }
    }

    fn identity() -> KeyIdentity {
        KeyIdentity {
            id: "idn_7Q3M0T9ZK1XW2R".into(),
            external_id: "cus_123".into(),
            name: "Acme Corp".into(),
            meta: Some(meta()),
            rate_limit: Some(RateLimitPolicy::per(1000, 60)),
        }
    }

    fn webhook_view() -> WebhookView {
        WebhookView {
            id: "whk_7Q3M0T9ZK1XW2R".into(),
            url: "https://hooks.example.com/keygate".into(),
            events: vec![EventType::KeyRevoked, EventType::KeyLeaked],
            description: Some("Security alerts".into()),
            enabled: true,
            created_at: ts(),
        }
    }

    fn delivery_view() -> DeliveryView {
        DeliveryView {
            id: "whd_7Q3M0T9ZK1XW2R".into(),
            event_id: "evt_7Q3M0T9ZK1XW2R".into(),
            event_type: EventType::KeyRevoked,
            state: DeliveryState::Pending,
            attempts: 1,
            last_status: Some(500),
            last_error: Some("The receiver answered 500.".into()),
            created_at: ts(),
            next_attempt_at: Some(ts()),
            delivered_at: None,
        }
    }

    pub(super) fn webhook_event() -> WebhookEvent {
        WebhookEvent {
            id: "evt_7Q3M0T9ZK1XW2R".into(),
            kind: EventType::KeyRevoked,
            created_at: ts(),
            organization: "org_7Q3M0T9ZK1XW2R".into(),
            actor: Some("usr_7Q3M0T9ZK1XW2R".into()),
            key: Some(EventKey {
                id: example_id(),
                name: "Main Website Integration".into(),
                environment: Environment::Live,
                project: Some("acme-shop".into()),
                owner: "usr_7Q3M0T9ZK1XW2R".into(),
            }),
            detail: "revoked".into(),
        }
    }

    fn identity_view() -> IdentityView {
        IdentityView::of(identity(), 3, ts(), ts())
    }

    fn role_info() -> RoleInfo {
        RoleInfo {
            name: "billing".into(),
            description: Some("Invoices and refunds".into()),
            permissions: vec![permission("invoices:read"), permission("refunds:*")],
            keys: 2,
            updated_at: ts(),
        }
    }

    fn by_org() -> OrganizationUsage {
        OrganizationUsage { organization: "org_7Q3M0T9ZK1XW2R".into(), requests: 3 }
    }

    fn usage_limit() -> UsageLimit {
        UsageLimit { uses: 1000, refill: Some(Refill { amount: 1000, interval: RefillInterval::Monthly }) }
    }

    fn meta() -> KeyMeta {
        KeyMeta::from_value(&json!({"plan": "pro", "tenant": "acme"})).expect("a valid metadata literal")
    }

    fn user() -> User {
        User {
            id: "usr_7Q3M0T9ZK1XW2R".into(),
            email: "owner@acme.test".into(),
            name: "Olive Owner".into(),
            memberships: vec![Membership { organization: "org_7Q3M0T9ZK1XW2R".into(), role: Role::Owner }],
            created_at: ts(),
        }
    }

    fn organization() -> Organization {
        Organization { id: "org_7Q3M0T9ZK1XW2R".into(), name: "Acme".into(), created_at: ts() }
    }

    fn project() -> Project {
        Project {
            id: "prj_7Q3M0T9ZK1XW2R".into(),
            organization: "org_7Q3M0T9ZK1XW2R".into(),
            slug: "acme-shop".into(),
            name: "Acme shop".into(),
            created_at: ts(),
        }
    }

    fn member() -> MemberView {
        MemberView::of(&user(), Role::Owner)
    }

    fn org_view() -> OrganizationView {
        OrganizationView { id: "org_7Q3M0T9ZK1XW2R".into(), name: "Acme".into(), role: Role::Owner, created_at: ts() }
    }

    fn audit_event() -> AuditEvent {
        AuditEvent {
            id: "evt_7Q3M0T9ZK1XW2R".into(),
            at: ts(),
            organization: "org_7Q3M0T9ZK1XW2R".into(),
            actor: Some("usr_7Q3M0T9ZK1XW2R".into()),
            actor_name: None,
            action: AuditAction::Revoke,
            target: Some("F854DS4QEVHXS4".into()),
            detail: "Main Website Integration".into(),
        }
    }

    /// One operation: method, path template, summary, request body schema, success status and response schema.
    type Operation = (&'static str, &'static str, &'static str, Option<Value>, u16, Value);

    /// Every operation of the document.
    fn operations() -> Vec<Operation> {
        let created_single = CreatedKey::Single { key: "kg_live_F854DS4QEVHXS4_…".into(), record: key_view() };
        let created_pair =
            CreatedKey::Pair { api_key: "kg_live_F854DS4QEVHXS4".into(), api_secret: "…".into(), record: key_view() };
        let created = schema(&created_single);
        let _ = created_pair;
        let create_key = CreateKeyRequest {
            name: "Main Website Integration".into(),
            environment: Environment::Live,
            project: Some("acme-shop".into()),
            permissions: vec!["data:read".into()],
            customers: vec!["cus_1".into()],
            rate_limit: Some(RateLimitPolicy {
                requests: 100,
                window_seconds: 60,
                burst: Some(10),
                mode: keygate_shared::model::RateLimitMode::Leased,
            }),
            expires_at: Some(ts()),
            kind: KeyKind::Single,
            allowed_ips: vec!["203.0.113.0/24".into()],
            own_organization_only: true,
            canary: false,
            meta: Some(json!({"plan": "pro", "tenant": "acme"})),
            usage_limit: Some(usage_limit()),
            roles: vec!["billing".into()],
            identity: Some("idn_7Q3M0T9ZK1XW2R".into()),
        };
        let update = UpdateKeyRequest {
            name: Some("Website".into()),
            permissions: Some(vec!["data:read".into()]),
            customers: Some(vec!["cus_1".into()]),
            rate_limit: Some(Some(RateLimitPolicy::per(100, 60))),
            expires_at: Some(Some(ts())),
            allowed_ips: Some(vec!["203.0.113.0/24".into()]),
            own_organization_only: Some(true),
            meta: Some(Some(json!({"plan": "pro", "tenant": "acme"}))),
            usage_limit: Some(Some(usage_limit())),
            roles: Some(vec!["billing".into()]),
            identity: Some(Some("idn_7Q3M0T9ZK1XW2R".into())),
        };
        let usage = UsageReport {
            hourly: vec![UsagePoint { start: ts(), requests: 3 }],
            daily: vec![UsagePoint { start: ts(), requests: 3 }],
            total: 3,
            last_used_at: Some(ts()),
            by_organization: vec![by_org()],
        };
        let errors = RecentErrors {
            errors: vec![RecentError {
                at: ts(),
                method: "POST".into(),
                path: "/streams/s1".into(),
                status: 403,
                code: "INSUFFICIENT_PERMISSIONS".into(),
                request_preview: "POST /streams/s1".into(),
                response_preview: "{…}".into(),
            }],
        };
        let log_page = keygate_shared::requestlog::RequestLogPage {
            requests: vec![keygate_shared::requestlog::LoggedRequest {
                id: "7Q3M0T9ZK1XW2R-1f".into(),
                at: ts(),
                key_id: example_id().to_string(),
                method: "GET".into(),
                path: "/data/items".into(),
                status: 429,
                code: Some("RATE_LIMITED".into()),
                latency_ms: 3,
                client_ip: Some("203.0.113.9".into()),
                organization: "org_7Q3M0T9ZK1XW2R".into(),
                user_agent: None,
                country: None,
                permission: None,
            }],
            next_cursor: Some("1795000000000.7Q3M0T9ZK1XW2R-1f".into()),
        };
        let mut verify = VerifyResponse::new(Code::Valid, None);
        verify.key_id = Some(example_id());
        verify.name = Some("Main Website Integration".into());
        verify.project = Some("acme-shop".into());
        verify.environment = Some(Environment::Live);
        verify.meta = Some(meta());
        verify.remaining = Some(999);
        verify.organization = Some("org_7Q3M0T9ZK1XW2R".into());
        verify.permissions = Some(vec![permission("data:read")]);
        verify.roles = Some(vec!["billing".into()]);
        verify.identity = Some(identity());
        verify.expires_at = Some(ts());
        verify.rate_limit = Some(RateLimitStatus { limit: 100, remaining: 99, reset_seconds: 60 });
        let session_info = SessionInfo {
            id: example_id(),
            label: "laptop".into(),
            created_at: ts(),
            expires_at: ts(),
            last_used_at: Some(ts()),
            current: true,
        };
        let restricted =
            OrganizationSettings { key_creation: KeyCreation::OwnersAndAdmins, ..OrganizationSettings::default() };
        let catalog_entry =
            PermissionInfo { name: "licenses:manage".into(), keys: 2, description: Some("License Management".into()) };
        let session = SessionView {
            user: member(),
            organization: org_view(),
            organizations: vec![org_view()],
            known_permissions: vec!["data:read".into()],
            permissions: vec![PermissionInfo {
                name: "data:read".into(),
                keys: 3,
                description: Some("Read data".into()),
            }],
            token: Some(session_info.clone()),
            token_expires_at: Some(ts()),
            settings: restricted,
            roles: vec![role_info()],
        };
        let invitation = InvitationView {
            id: "inv_7Q3M0T9ZK1XW2R".into(),
            email: "a@acme.test".into(),
            name: "A".into(),
            role: Role::Member,
            invited_by: "usr_7Q3M0T9ZK1XW2R".into(),
            created_at: ts(),
            expires_at: ts(),
        };
        vec![
            (
                "post",
                "/admin/v1/bootstrap",
                "Create the first organization, its owner and a console token (empty store only; 409 afterwards).",
                Some(input(&BootstrapRequest {
                    organization_name: Some("Acme".into()),
                    email: Some("owner@acme.test".into()),
                    name: Some("Olive".into()),
                })),
                201,
                schema(&BootstrapResponse {
                    console_token: "kg_live_…".into(),
                    organization: organization(),
                    user: user(),
                }),
            ),
            ("get", "/admin/v1/openapi.json", "This document.", None, 200, json!({"type": "object"})),
            (
                "get",
                "/admin/v1/session",
                "The signed-in user, their organizations and role.",
                None,
                200,
                schema(&session),
            ),
            (
                "post",
                "/admin/v1/organizations",
                "Create an organization owned by the signed-in user.",
                Some(input(&CreateOrganizationRequest { name: "Globex".into() })),
                201,
                schema(&organization()),
            ),
            (
                "get",
                "/admin/v1/sessions",
                "The signed-in user's console sessions (tokens), the current one marked.",
                None,
                200,
                schema(&SessionList { sessions: vec![session_info.clone()] }),
            ),
            (
                "post",
                "/admin/v1/sessions",
                "Another console token for the signed-in user (a CLI, another browser), shown once.",
                Some(input(&CreateSessionRequest { label: Some("laptop".into()) })),
                201,
                schema(&NewSession { console_token: "kg_live_…".into(), session: session_info.clone() }),
            ),
            (
                "delete",
                "/admin/v1/sessions/{id}",
                "Sign a session out: `current`, or one of the user's own sessions by id. It stops at once.",
                None,
                204,
                json!({}),
            ),
            (
                "get",
                "/admin/v1/members",
                "Members of the organization.",
                None,
                200,
                schema(&MemberList { members: vec![member()] }),
            ),
            (
                "delete",
                "/admin/v1/members/{id}",
                "Remove a member (owners and admins; only owners remove owners; never the last owner), or leave. Every \
                 console token of theirs stops acting in the organization at once.",
                None,
                204,
                json!({}),
            ),
            (
                "get",
                "/admin/v1/invitations",
                "Pending invitations (owners and admins), never their codes.",
                None,
                200,
                schema(&InvitationList { invitations: vec![invitation.clone()] }),
            ),
            (
                "post",
                "/admin/v1/invitations",
                "Invite someone with a role: answers a one-time code, shown once, expiring (7 days by default).",
                Some(input(&InviteMemberRequest { email: "a@acme.test".into(), name: "A".into(), role: Role::Member })),
                201,
                schema(&InviteMemberResponse { invitation: invitation.clone(), code: "kginv_…".into() }),
            ),
            ("delete", "/admin/v1/invitations/{id}", "Revoke a pending invitation.", None, 204, json!({})),
            (
                "post",
                "/admin/v1/invitations/redeem",
                "A new user redeems an invitation code (no sign-in): answers their first console token, once.",
                Some(input(&RedeemInvitationRequest { code: "kginv_…".into(), name: Some("A".into()) })),
                201,
                schema(&RedeemInvitationResponse {
                    console_token: "kg_live_…".into(),
                    session: session_info.clone(),
                    organization: org_view(),
                    user: member(),
                }),
            ),
            (
                "post",
                "/admin/v1/invitations/accept",
                "A signed-in user accepts an invitation: their own tokens now act in that organization too.",
                Some(input(&AcceptInvitationRequest { code: "kginv_…".into() })),
                200,
                schema(&org_view()),
            ),
            (
                "get",
                "/admin/v1/projects",
                "Projects of the organization.",
                None,
                200,
                schema(&ProjectList { projects: vec![project()] }),
            ),
            (
                "post",
                "/admin/v1/projects",
                "Create a project; its slug is what keys may carry as their prefix label.",
                Some(input(&CreateProjectRequest { slug: "acme-shop".into(), name: "Acme shop".into() })),
                201,
                schema(&project()),
            ),
            (
                "patch",
                "/admin/v1/projects/{id}",
                "Rename a project.",
                Some(input(&RenameProjectRequest { name: "Shop".into() })),
                200,
                schema(&project()),
            ),
            (
                "get",
                "/admin/v1/keys",
                "Keys, newest first; filters project, environment, status, owner, include_deactivated; cursor paging.",
                None,
                200,
                schema(&KeyList { keys: vec![key_view()], next_cursor: Some("1795000000000.F854DS4QEVHXS4".into()) }),
            ),
            (
                "post",
                "/admin/v1/keys",
                "Create a key; the full key is in this answer only.",
                Some(input(&create_key)),
                201,
                created.clone(),
            ),
            ("get", "/admin/v1/keys/{id}", "One key (never its secret).", None, 200, schema(&key_view())),
            (
                "patch",
                "/admin/v1/keys/{id}",
                "Rename, or change permissions, customers, rate limit, expiry (owner only).",
                Some(input(&update)),
                200,
                schema(&key_view()),
            ),
            (
                "delete",
                "/admin/v1/keys/{id}",
                "Delete a revoked or deactivated key (409 otherwise).",
                None,
                204,
                json!({}),
            ),
            ("post", "/admin/v1/keys/{id}/revoke", "Revoke (reversible).", None, 200, schema(&key_view())),
            ("post", "/admin/v1/keys/{id}/activate", "Activate a revoked key.", None, 200, schema(&key_view())),
            ("post", "/admin/v1/keys/{id}/deactivate", "Deactivate for good.", None, 200, schema(&key_view())),
            (
                "post",
                "/admin/v1/keys/{id}/regenerate",
                "New secret, same id and settings; the old secret stops at once or after grace_seconds (owner only).",
                Some(input(&RegenerateKeyRequest { grace_seconds: Some(300) })),
                200,
                created,
            ),
            (
                "get",
                "/admin/v1/keys/{id}/errors",
                "Recent errors (at most 100, 14 days), without credentials.",
                None,
                200,
                schema(&errors),
            ),
            (
                "get",
                "/admin/v1/keys/{id}/usage",
                "Requests per hour (24 h) and per day (14 days), last used.",
                None,
                200,
                schema(&usage),
            ),
            (
                "get",
                "/admin/v1/keys/{id}/requests",
                "The key's request log, newest first (at most 1,000 lines, 7 days); the filters of /admin/v1/requests.",
                None,
                200,
                schema(&log_page),
            ),
            (
                "get",
                "/admin/v1/requests",
                "The request log of the organization's keys (a member's: their own keys'), newest first; query: key, method, status (429 or 4xx), code, path (a prefix), cursor, limit (1-100, default 50).",
                None,
                200,
                schema(&log_page),
            ),
            (
                "get",
                "/admin/v1/audit",
                "Who did what to which key, newest first; cursor paging.",
                None,
                200,
                schema(&AuditPage { events: vec![audit_event()], next_cursor: Some("50".into()) }),
            ),
            (
                "get",
                "/admin/v1/usage",
                "Requests of the organization's keys by the organization each acted for (`Keygate-Org`), most first (owners and admins).",
                None,
                200,
                schema(&OrganizationUsageReport { by_organization: vec![by_org()] }),
            ),
            (
                "get",
                "/admin/v1/permissions",
                "The organization's permission catalog: every permission keys hold and every one described (any member).",
                None,
                200,
                schema(&PermissionList { permissions: vec![catalog_entry.clone()] }),
            ),
            (
                "put",
                "/admin/v1/permissions/{id}",
                "Describe a permission, e.g. licenses:manage as \"License Management\" (owners and admins; empty: remove).",
                Some(input(&DescribePermissionRequest { description: "License Management".into() })),
                200,
                schema(&catalog_entry),
            ),
            (
                "get",
                "/admin/v1/roles",
                "The organization's roles: named permission sets keys hold, with how many keys hold each (any member).",
                None,
                200,
                schema(&RoleList { roles: vec![role_info()] }),
            ),
            (
                "put",
                "/admin/v1/roles/{id}",
                "Define a role or replace its definition (owners and admins). Every key that holds it takes the new \
                 permissions within seconds, and the gateway within its revocation bound.",
                Some(input(&PutRoleRequest {
                    description: Some("Invoices and refunds".into()),
                    permissions: vec!["invoices:read".into(), "refunds:*".into()],
                })),
                200,
                schema(&role_info()),
            ),
            (
                "delete",
                "/admin/v1/roles/{id}",
                "Delete a role (owners and admins); 409 ROLE_IN_USE while any key holds it.",
                None,
                204,
                json!({}),
            ),
            (
                "get",
                "/admin/v1/identities",
                "The organization's identities (customers whose keys share a name, metadata and one rate limit), by \
                 external id; cursor paging (any member).",
                None,
                200,
                schema(&IdentityList { identities: vec![identity_view()], next_cursor: Some("cus_123".into()) }),
            ),
            (
                "post",
                "/admin/v1/identities",
                "Create an identity (owners and admins); 409 if its external id is taken. Give it keys with \
                 `identity` on the key.",
                Some(input(&CreateIdentityRequest {
                    external_id: "cus_123".into(),
                    name: Some("Acme Corp".into()),
                    meta: Some(json!({"plan": "pro", "tenant": "acme"})),
                    rate_limit: Some(RateLimitPolicy::per(1000, 60)),
                })),
                201,
                schema(&identity_view()),
            ),
            (
                "get",
                "/admin/v1/identities/{id}",
                "One identity, by its id (idn_…) or its external id (any member).",
                None,
                200,
                schema(&identity_view()),
            ),
            (
                "patch",
                "/admin/v1/identities/{id}",
                "Change an identity's name, metadata or shared rate limit (owners and admins; null removes meta or \
                 rate_limit). Every key of it takes the change within seconds.",
                Some(input(&UpdateIdentityRequest {
                    name: Some("Acme Corporation".into()),
                    meta: Some(Some(json!({"plan": "enterprise"}))),
                    rate_limit: Some(Some(RateLimitPolicy::per(5000, 60))),
                })),
                200,
                schema(&identity_view()),
            ),
            (
                "delete",
                "/admin/v1/identities/{id}",
                "Delete an identity (owners and admins); 409 IDENTITY_IN_USE while any key belongs to it.",
                None,
                204,
                json!({}),
            ),
            (
                "get",
                "/admin/v1/webhooks",
                "The organization's webhooks, never their secrets (owners and admins).",
                None,
                200,
                schema(&WebhookList { webhooks: vec![webhook_view()] }),
            ),
            (
                "post",
                "/admin/v1/webhooks",
                "Add a webhook (owners and admins; at most 10): https, or http to a loopback address in development. \
                 The answer holds its signing secret, once. Deliveries carry Keygate-Signature: \
                 t=<unix seconds>,v1=<hex HMAC-SHA-256 of \"<t>.<body>\">; refuse a t more than 300 s away.",
                Some(input(&CreateWebhookRequest {
                    url: "https://hooks.example.com/keygate".into(),
                    events: vec![EventType::KeyRevoked, EventType::KeyLeaked, EventType::CanaryTripped],
                    description: Some("Security alerts".into()),
                })),
                201,
                schema(&CreatedWebhook { webhook: webhook_view(), secret: "whsec_…".into() }),
            ),
            (
                "patch",
                "/admin/v1/webhooks/{id}",
                "Change a webhook's URL, events, description, or disable it (owners and admins); a disabled webhook's \
                 waiting deliveries are given up.",
                Some(input(&UpdateWebhookRequest { enabled: Some(false), ..UpdateWebhookRequest::default() })),
                200,
                schema(&webhook_view()),
            ),
            (
                "delete",
                "/admin/v1/webhooks/{id}",
                "Delete a webhook and its delivery log (owners and admins).",
                None,
                204,
                json!({}),
            ),
            (
                "post",
                "/admin/v1/webhooks/{id}/test",
                "Send the webhook a `ping` event (owners and admins): queued at once, posted within seconds.",
                None,
                202,
                schema(&delivery_view()),
            ),
            (
                "post",
                "/admin/v1/webhooks/{id}/rotate-secret",
                "A new signing secret (owners and admins), answered once. The previous secret keeps signing beside \
                 it for previous_valid_seconds (default a day, at most a week; 0 stops it at once, for a leaked \
                 secret): Keygate-Signature then carries two v1= values, and a receiver holding either accepts the \
                 delivery. The body may be left out.",
                Some(input(&RotateSecretRequest { previous_valid_seconds: Some(3_600) })),
                200,
                schema(&RotatedSecret {
                    webhook: webhook_view(),
                    secret: "whsec_…".into(),
                    previous_valid_until: Some(ts()),
                }),
            ),
            (
                "get",
                "/admin/v1/webhooks/{id}/deliveries",
                "The webhook's delivery log, newest first (the last 100): state, attempts, last status or error, \
                 next attempt. Retries back off from 1 s to an hour, 12 attempts in all.",
                None,
                200,
                schema(&DeliveryList { deliveries: vec![delivery_view()] }),
            ),
            (
                "get",
                "/admin/v1/canary-trips",
                "The newest uses of canary keys (at most 100; query: key): each refused like an unknown key's, with \
                 its time, method, path, address, user agent and country where known. Members see their own keys'.",
                None,
                200,
                schema(&CanaryTripList {
                    trips: vec![CanaryTrip {
                        key_id: example_id(),
                        key_name: "AWS backup credentials (canary)".into(),
                        at: ts(),
                        method: "GET".into(),
                        path: "/v1/exports".into(),
                        client_ip: Some("203.0.113.66".into()),
                        user_agent: Some("curl/8.5.0".into()),
                        country: Some("NL".into()),
                    }],
                }),
            ),
            (
                "get",
                "/admin/v1/organization/settings",
                "The organization's settings (any member).",
                None,
                200,
                schema(&restricted),
            ),
            (
                "patch",
                "/admin/v1/organization/settings",
                "Change the organization's settings (owners): key_creation all_members or owners_and_admins.",
                Some(input(&UpdateSettingsRequest {
                    key_creation: Some(KeyCreation::OwnersAndAdmins),
                    leak_response: Some(keygate_shared::leak::LeakResponse::Alert),
                })),
                200,
                schema(&restricted),
            ),
            (
                "post",
                "/v1/verify",
                "Verify a key for a service outside the gateway (caller needs keys:verify); counts against the key's limit.",
                Some(input(&VerifyRequest {
                    key: "kg_live_…".into(),
                    permission: Some("data:read".into()),
                    customer: Some("cus_1".into()),
                    organization: Some("org_7Q3M0T9ZK1XW2R".into()),
                    client_ip: Some("203.0.113.7".into()),
                })),
                200,
                schema(&verify),
            ),
            (
                "post",
                "/v1/leaks",
                "Report leaked tokens (GitHub secret scanning's partner alerts): a JSON array of {token, type, url, \
                 source}, signed with ECDSA P-256 over the raw body (Github-Public-Key-Identifier, \
                 Github-Public-Key-Signature: base64 DER) by a key of KEYGATE_LEAK_PUBLIC_KEYS; 401 INVALID_SIGNATURE \
                 otherwise. Answers each token's label by its SHA-256; a live key is recorded by its organization \
                 and revoked at once unless the organization chose alert only.",
                Some(input(&vec![LeakReport {
                    token: "kg_live_…".into(),
                    kind: "keygate_api_key".into(),
                    url: Some("https://github.com/acme/app/blob/main/.env".into()),
                    source: Some("content".into()),
                }])),
                200,
                schema(&vec![LeakVerdict {
                    token_hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                    token_type: "keygate_api_key".into(),
                    label: LeakLabel::TruePositive,
                }]),
            ),
            (
                "get",
                "/admin/v1/keys/{id}/suggestions",
                "Least privilege, from the key's observed use (any member who may see the key): permissions unused for \
                 30 days (remove), wildcards a narrower set of used permissions covers (narrow), a key unused for 30 \
                 days (revoke); `permissions_after` is ready for PATCH /keys/{id}. `observed`: each route permission \
                 its passing requests used, and when last.",
                None,
                200,
                schema(&SuggestionList {
                    key_id: example_id(),
                    suggestions: vec![Suggestion {
                        kind: SuggestionKind::Narrow,
                        permission: Some(Permission::try_from("data:*").expect("a valid permission")),
                        replacement: vec![Permission::try_from("data:read").expect("a valid permission")],
                        permissions_after: vec![Permission::try_from("data:read").expect("a valid permission")],
                        detail: "In 30 days `data:*` was used only as data:read: narrow it.".into(),
                    }],
                    observed: vec![PermissionUse {
                        permission: Permission::try_from("data:read").expect("a valid permission"),
                        last_used_at: ts(),
                        requests: 1200,
                    }],
                }),
            ),
            (
                "get",
                "/admin/v1/keys/{id}/leaks",
                "Where the key was reported leaked (POST /v1/leaks), newest first, and whether it was revoked for it.",
                None,
                200,
                schema(&KeyLeakList {
                    leaks: vec![KeyLeak {
                        key_id: example_id(),
                        at: ts(),
                        url: Some("https://github.com/acme/app/blob/main/.env".into()),
                        source: Some("content".into()),
                        reported_as: "keygate_api_key".into(),
                        revoked: true,
                    }],
                }),
            ),
            (
                "get",
                "/v1/whoami",
                "Which key is this, and of which project.",
                None,
                200,
                schema(&WhoAmI {
                    key_id: example_id(),
                    name: "Main Website Integration".into(),
                    project: Some("acme-shop".into()),
                    environment: Environment::Live,
                    organization: "org_7Q3M0T9ZK1XW2R".into(),
                    meta: Some(meta()),
                }),
            ),
        ]
    }

    /// The whole document.
    pub fn document() -> Value {
        GENERATORS.with(|g| {
            *g.borrow_mut() =
                Some(Generators { output: generator(Contract::Serialize), input: generator(Contract::Deserialize) })
        });
        let problem = schema(&Problem::invalid_field("name", "must not be empty"));
        // What Keygate posts to a webhook (OpenAPI 3.1 `webhooks`), with the same generator as the answers.
        let event = schema(&webhook_event());
        let mut paths = Map::new();
        for (method, path, summary, request, status, response) in operations() {
            let public = matches!(path, "/admin/v1/bootstrap" | "/admin/v1/openapi.json" | "/v1/leaks");
            let mut responses = Map::new();
            let success = if status == 204 {
                json!({"description": "Done: no body"})
            } else {
                json!({"description": "Success", "content": {"application/json": {"schema": response}}})
            };
            responses.insert(status.to_string(), success);
            // The problems an operation answers: RFC 9457 bodies with a stable `code` (`field` only on 422).
            let mut problems: Vec<(u16, &str)> = vec![(503, "Storage is unavailable: retry")];
            if !public {
                problems
                    .push((401, "No credential, or one that is not valid (`MISSING_CREDENTIAL`, `INVALID_KEY`, …)"));
                problems.push((403, "Not allowed: `FORBIDDEN`, `FORBIDDEN_ORGANIZATION`, `NOT_KEY_OWNER`, …"));
            }
            if path.contains("{id}") {
                problems.push((404, "No such thing in this organization (`NOT_FOUND`)"));
            }
            if request.is_some() {
                problems.push((400, "The body is not the JSON this operation reads (`INVALID_BODY`, `EMPTY_UPDATE`)"));
                problems.push((413, "The body is over 64 KiB (`PAYLOAD_TOO_LARGE`)"));
                problems.push((422, "A field is not valid (`VALIDATION_FAILED`, with `field`)"));
            }
            if method != "get" {
                problems.push((409, "A conflict: the thing exists, is in use, or a bound was reached"));
            }
            for (status, description) in problems {
                responses.insert(
                    status.to_string(),
                    json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
                );
            }
            responses.insert(
                "default".into(),
                json!({"description": "An RFC 9457 problem with a stable `code`", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
            );
            let mut operation = json!({"summary": summary, "responses": responses});
            if path.contains("{id}") {
                operation["parameters"] =
                    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
            }
            if let Some(body) = request {
                // A few bodies may be left out altogether (the defaults apply).
                let required = !matches!(path, "/admin/v1/sessions" | "/admin/v1/keys/{id}/regenerate");
                operation["requestBody"] =
                    json!({"required": required, "content": {"application/json": {"schema": body}}});
            }
            if !public {
                operation["security"] = json!([{"bearer": []}]);
            }
            let entry = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
            entry[method] = operation;
        }
        let (output, input) = GENERATORS.with(|g| {
            let mut generators = g.borrow_mut().take().expect("set above");
            (generators.output.take_definitions(true), generators.input.take_definitions(true))
        });
        let renames = input_names(&output, &input);
        let mut schemas: Map<String, Value> = output;
        for (name, mut definition) in input {
            rename_refs(&mut definition, &renames);
            schemas.insert(renames[&name].clone(), definition);
        }
        let mut paths = Value::Object(paths);
        for methods in paths.as_object_mut().into_iter().flat_map(|p| p.values_mut()) {
            for operation in methods.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
                if let Some(body) = operation.get_mut("requestBody") {
                    rename_refs(body, &renames);
                }
            }
        }
        let _ = problem;
        let webhooks = json!({"keygate-event": {"post": {
            "summary": "An event of the organization, signed (Keygate-Signature) and retried until the receiver answers 2xx.",
            "parameters": [
                {"name": "Keygate-Webhook-Id", "in": "header", "required": true, "schema": {"type": "string"}, "description": "The delivery's id, the same on every retry."},
                {"name": "Keygate-Event", "in": "header", "required": true, "schema": {"type": "string"}},
                {"name": "Keygate-Signature", "in": "header", "required": true, "schema": {"type": "string"}, "description": "t=<unix seconds>,v1=<hex HMAC-SHA-256 of \"<t>.<body>\" under the webhook's secret>"}
            ],
            "requestBody": {"required": true, "content": {"application/json": {"schema": event}}},
            "responses": {"200": {"description": "Any 2xx ends the delivery; anything else, or no answer within 10 s, is retried."}}
        }}});
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Keygate",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "API keys at the edge: the admin API (console token as Bearer; `Keygate-Org` picks the organization), the verify API and whoami. Schemas are generated from the Rust types: an answer's fields are required unless serde leaves them out when empty, and `null` only where the type is optional."
            },
            "paths": paths,
            "webhooks": webhooks,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A Keygate key: a console token for /admin/v1, an API key elsewhere."}}
            }
        })
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::{DOCUMENT, document};
    use crate::admin::Route;

    /// The served file is exactly what the types generate.
    #[test]
    fn the_served_document_is_current() {
        let generated = serde_json::to_string(&document()).unwrap() + "\n";
        if std::env::var("KEYGATE_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/src/openapi.json"), &generated).unwrap();
            return;
        }
        assert!(
            DOCUMENT == generated,
            "control/src/openapi.json is stale: run `KEYGATE_BLESS=1 cargo test -p control openapi`"
        );
    }

    /// Every path and method in the document is a route the Workers parse, and every route is documented.
    #[test]
    fn the_document_lists_exactly_the_routes() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented = 0;
        for (path, methods) in paths {
            for method in methods.as_object().expect("methods").keys() {
                documented += 1;
                let concrete = path.replace("{id}", "F854DS4QEVHXS4");
                let known = match concrete.strip_prefix("/admin/v1") {
                    Some(rest) => Route::parse(&method.to_ascii_uppercase(), rest).is_some(),
                    None => {
                        matches!(
                            (method.as_str(), concrete.as_str()),
                            ("post", "/v1/verify" | "/v1/leaks") | ("get", "/v1/whoami")
                        )
                    }
                };
                assert!(known, "{method} {path} is documented but not routed");
            }
        }
        // The routes, one line each; a new route must be added here and to the document.
        let routes = [
            ("POST", "/bootstrap"),
            ("GET", "/openapi.json"),
            ("GET", "/session"),
            ("GET", "/sessions"),
            ("POST", "/sessions"),
            ("DELETE", "/sessions/{id}"),
            ("POST", "/organizations"),
            ("GET", "/members"),
            ("DELETE", "/members/{id}"),
            ("GET", "/invitations"),
            ("POST", "/invitations"),
            ("DELETE", "/invitations/{id}"),
            ("POST", "/invitations/redeem"),
            ("POST", "/invitations/accept"),
            ("GET", "/projects"),
            ("POST", "/projects"),
            ("PATCH", "/projects/{id}"),
            ("GET", "/keys"),
            ("POST", "/keys"),
            ("GET", "/keys/{id}"),
            ("PATCH", "/keys/{id}"),
            ("DELETE", "/keys/{id}"),
            ("POST", "/keys/{id}/revoke"),
            ("POST", "/keys/{id}/activate"),
            ("POST", "/keys/{id}/deactivate"),
            ("POST", "/keys/{id}/regenerate"),
            ("GET", "/keys/{id}/errors"),
            ("GET", "/keys/{id}/usage"),
            ("GET", "/keys/{id}/requests"),
            ("GET", "/requests"),
            ("GET", "/audit"),
            ("GET", "/organization/settings"),
            ("PATCH", "/organization/settings"),
            ("GET", "/permissions"),
            ("PUT", "/permissions/{id}"),
            ("GET", "/roles"),
            ("PUT", "/roles/{id}"),
            ("DELETE", "/roles/{id}"),
            ("GET", "/identities"),
            ("POST", "/identities"),
            ("GET", "/identities/{id}"),
            ("PATCH", "/identities/{id}"),
            ("DELETE", "/identities/{id}"),
            ("GET", "/usage"),
            ("GET", "/webhooks"),
            ("POST", "/webhooks"),
            ("PATCH", "/webhooks/{id}"),
            ("DELETE", "/webhooks/{id}"),
            ("POST", "/webhooks/{id}/test"),
            ("POST", "/webhooks/{id}/rotate-secret"),
            ("GET", "/webhooks/{id}/deliveries"),
            ("GET", "/canary-trips"),
            ("GET", "/keys/{id}/leaks"),
            ("GET", "/keys/{id}/suggestions"),
        ];
        for (method, path) in routes {
            assert!(Route::parse(method, &path.replace("{id}", "X")).is_some(), "{method} {path} is not routed");
            let entry = &paths[&format!("/admin/v1{path}")][method.to_ascii_lowercase()];
            assert!(entry.is_object(), "{method} {path} is routed but not documented");
        }
        assert_eq!(documented, routes.len() + 3, "the document has routes this list lacks");
    }

    /// A validator of `schema` (which may `$ref` the document's components).
    fn validator(doc: &serde_json::Value, schema: &serde_json::Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        root["components"] = doc["components"].clone();
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .unwrap_or_else(|e| panic!("{schema}: {e}"))
    }

    /// Every example in the document validates against its own schema (the examples are real values of the types).
    #[test]
    fn every_example_validates_against_its_schema() {
        let doc = document();
        let mut checked = 0;
        let mut stack = vec![doc["paths"].clone()];
        while let Some(value) = stack.pop() {
            match value {
                serde_json::Value::Object(fields) => {
                    if let Some(serde_json::Value::Array(examples)) = fields.get("examples")
                        && fields.contains_key("$ref")
                    {
                        let schema = serde_json::Value::Object(fields.clone());
                        let validator = validator(&doc, &schema);
                        for example in examples {
                            let errors: Vec<String> = validator.iter_errors(example).map(|e| e.to_string()).collect();
                            assert!(errors.is_empty(), "{} rejects its example: {errors:?}", fields["$ref"]);
                            checked += 1;
                        }
                    }
                    stack.extend(fields.into_iter().map(|(_, v)| v));
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        assert!(checked > 50, "only {checked} examples");
    }

    /// The document says what serde does: optional fields are not required, `null` is allowed exactly where a value
    /// may be missing, a problem's `field` is optional, request bodies accept what their defaults fill in, and the
    /// secret hash is nowhere.
    #[test]
    fn optional_and_nullable_follow_serde() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let check = |name: &str, value: serde_json::Value, valid: bool| {
            let schema = serde_json::json!({"$ref": format!("#/components/schemas/{name}")});
            assert_eq!(validator(&doc, &schema).is_valid(&value), valid, "{name}: {value}");
        };
        // A limit without burst or mode, as answers write it.
        check("RateLimitPolicy", serde_json::json!({"requests": 10, "window_seconds": 60}), true);
        check("RateLimitPolicy", serde_json::json!({"requests": 10}), false);
        // A page's cursor is null on the last page; a problem has `field` only for a validation error.
        check("AuditPage", serde_json::json!({"events": [], "next_cursor": null}), true);
        let problem = serde_json::json!({"type": "urn:keygate:problem:not-found", "title": "Not found", "status": 404, "detail": "x", "code": "NOT_FOUND"});
        check("Problem", problem.clone(), true);
        let mut without_code = problem;
        without_code.as_object_mut().unwrap().remove("code");
        check("Problem", without_code, false);
        // A verify answer's code is one of the codes.
        check("VerifyResponse", serde_json::json!({"valid": false, "code": "NOT_FOUND"}), true);
        check("VerifyResponse", serde_json::json!({"valid": false, "code": "SOMETHING_ELSE"}), false);
        // A create request may leave out everything with a default.
        check("CreateKeyRequest", serde_json::json!({"name": "k", "environment": "live"}), true);
        check("CreateKeyRequest", serde_json::json!({"name": "k", "environment": "moon"}), false);
        assert!(!doc.to_string().contains("secret_hash"));
        assert!(schemas["KeyView"]["required"].as_array().unwrap().iter().any(|f| f == "last_used_at"));
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
