//! The console's pages.

use keygate_shared::api::{
    CreateIdentityRequest, CreateKeyRequest, InviteMemberRequest, KeyView, PutRoleRequest, SessionInfo,
    UpdateIdentityRequest, UpdateSettingsRequest,
};
use keygate_shared::model::{Environment, KeyCreation, KeyKind, OrganizationSettings, RateLimitPolicy, Role};
use keygate_shared::time::Timestamp;
use leptos::prelude::*;

use crate::api::{self, ApiError, KeyQuery};
use crate::components::{ActionDialog, ActionMenu, Modal, OrganizationId, StatusBadge, UsageChart};
use crate::logic::{self, KeyAction, SortBy};
use crate::{Ctx, Page, ShownSecret};
use keygate_shared::leak::LeakResponse;
use keygate_shared::webhook::{CreateWebhookRequest, DeliveryState, EventType, UpdateWebhookRequest};

/// Permissions offered as checkboxes, besides those already used in the organization.
const COMMON_PERMISSIONS: [&str; 6] =
    ["data:read", "data:write", "telemetry:write", "customers:read", "licenses:manage", "keys:verify"];

fn error_view(e: ApiError) -> AnyView {
    view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any()
}

fn loading() -> impl IntoView {
    view! { <p class="muted" aria-busy="true">"Loading…"</p> }
}

#[component]
pub fn SignIn() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let token = RwSignal::new(String::new());
    let sign_in = Action::new_local(move |token: &String| {
        let token = token.trim().to_owned();
        async move { api::sign_in(&token).await.map(|_| token) }
    });
    Effect::new(move |_| {
        if let Some(Ok(token)) = sign_in.value().get() {
            api::set_token(Some(&token));
            ctx.token.set(Some(token));
        }
    });
    // Joining with an invitation: the code is exchanged for the new member's own first console token.
    let code = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let join = Action::new_local(move |(code, name): &(String, String)| {
        let (code, name) = (code.clone(), name.trim().to_owned());
        async move { api::redeem(&code, (!name.is_empty()).then_some(name)).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(joined)) = join.value().get() {
            api::set_token(Some(&joined.console_token));
            api::set_organization(&joined.organization.id);
            ctx.shown_secret.set(Some(ShownSecret {
                title: format!("Welcome to {}", joined.organization.name),
                secret: joined.console_token.clone(),
                note: format!(
                    "This is your console token: you sign in with it. Store it in your password manager now: it is \
                     not shown again. It expires on {}.",
                    logic::when(Some(joined.session.expires_at))
                ),
            }));
            ctx.token.set(Some(joined.console_token));
        }
    });
    view! {
        <main class="signin">
            <h1>"Keygate console"</h1>
            <p class="muted">"Sign in with your console token. It stays in this tab only."</p>
            <form on:submit=move |ev| {
                ev.prevent_default();
                sign_in.dispatch(token.get_untracked());
            }>
                <label for="token">"Console token"</label>
                <input
                    id="token"
                    data-testid="token-input"
                    type="password"
                    autocomplete="off"
                    autofocus=true
                    prop:value=move || token.get()
                    on:input=move |ev| token.set(event_target_value(&ev))
                />
                <button type="submit" class="primary" data-testid="sign-in" disabled=move || sign_in.pending().get()>
                    {move || if sign_in.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
                {move || {
                    sign_in
                        .value()
                        .get()
                        .and_then(Result::err)
                        .map(|e| view! { <p class="error" role="alert" data-testid="sign-in-error">{e.to_string()}</p> })
                }}
            </form>
            <h2>"Join with an invitation"</h2>
            <p class="muted">"Got an invitation code (kginv_…) from an owner or admin? Exchange it for your own console token."</p>
            <form on:submit=move |ev| {
                ev.prevent_default();
                join.dispatch((code.get_untracked(), name.get_untracked()));
            }>
                <label for="invitation-code">"Invitation code"</label>
                <input
                    id="invitation-code"
                    data-testid="invitation-code"
                    autocomplete="off"
                    prop:value=move || code.get()
                    on:input=move |ev| code.set(event_target_value(&ev))
                />
                <label for="invitation-name">"Your name (optional)"</label>
                <input
                    id="invitation-name"
                    data-testid="invitation-name"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                />
                <button type="submit" class="secondary" data-testid="join" disabled=move || join.pending().get()>
                    "Join"
                </button>
                {move || {
                    join.value()
                        .get()
                        .and_then(Result::err)
                        .map(|e| view! { <p class="error" role="alert" data-testid="join-error">{e.to_string()}</p> })
                }}
            </form>
        </main>
    }
}

#[component]
pub fn KeysPage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let query = RwSignal::new(KeyQuery::default());
    let sort = RwSignal::new((SortBy::Created, true));
    let creating = RwSignal::new(false);
    let chosen = RwSignal::new(None::<(KeyView, KeyAction)>);
    // One click: a live canary key with no permissions, shown once with where to plant it.
    let canary = Action::new_local(move |(): &()| async move {
        let name = format!("Canary {}", logic::when_exactly(Timestamp(js_sys::Date::now() as i64)));
        let request = CreateKeyRequest {
            name,
            environment: Environment::Live,
            project: None,
            permissions: vec![],
            customers: vec![],
            rate_limit: None,
            expires_at: None,
            kind: KeyKind::Single,
            allowed_ips: vec![],
            own_organization_only: false,
            canary: true,
            meta: None,
            usage_limit: None,
            roles: vec![],
            identity: None,
        };
        api::create_key(&request).await
    });
    Effect::new(move |_| {
        if let Some(Ok(created)) = canary.value().get() {
            ctx.shown_secret.set(Some(ShownSecret {
                title: format!("Your canary key: {}", created.record().name),
                secret: logic::secret_text(&created),
                note: "Plant it where only a thief would look: a .env file in a private repository, a CI variable, a \
                       backup script, a wiki page, a password manager entry named \"production API key\". It never \
                       works: any use is refused exactly like an unknown key, and recorded here (time, address, user \
                       agent, path) and sent to your webhooks as canary.tripped. It is shown once."
                    .into(),
            }));
            ctx.changed();
        }
    });
    let keys = LocalResource::new(move || {
        let q = query.get();
        ctx.refresh.track();
        async move { api::keys(&q).await }
    });
    let projects = LocalResource::new(move || {
        ctx.refresh.track();
        api::projects()
    });
    let set_filter = move |apply: fn(&mut KeyQuery, String)| {
        move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            query.update(|q| apply(q, value));
        }
    };
    view! {
        <div class="page-head">
            <h1>"API keys"</h1>
            <Show
                when=move || may_create_keys(&ctx)
                fallback=|| view! { <p class="muted" data-testid="create-key-restricted">"Only owners and admins create keys in this organization."</p> }
            >
                <button class="primary" data-testid="create-key" on:click=move |_| creating.set(true)>
                    "Create API key"
                </button>
                <button class="secondary" data-testid="create-canary" title="A trap key: any use is refused like an unknown key, recorded and alerted on" on:click=move |_| { canary.dispatch(()); }>
                    "New canary key"
                </button>
            </Show>
        </div>
        {move || canary.value().get().and_then(Result::err).map(error_view)}
        <CanaryAlert />
        <div class="filters">
            <label>
                "Project "
                <select data-testid="filter-project" on:change=set_filter(|q, v| q.project = v)>
                    <option value="">"All projects"</option>
                    {move || {
                        projects
                            .get()
                            .and_then(Result::ok)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|p| view! { <option value=p.slug.clone()>{p.name.clone()}</option> })
                            .collect_view()
                    }}
                </select>
            </label>
            <label>
                "Environment "
                <select data-testid="filter-environment" on:change=set_filter(|q, v| q.environment = v)>
                    <option value="">"All"</option>
                    <option value="live">"Production"</option>
                    <option value="test">"Staging"</option>
                    <option value="dev">"Development"</option>
                </select>
            </label>
            <label>
                "Status "
                <select data-testid="filter-status" on:change=set_filter(|q, v| q.status = v)>
                    <option value="">"All"</option>
                    <option value="active">"Active"</option>
                    <option value="inactive">"Inactive"</option>
                    <option value="expired">"Expired"</option>
                    <option value="deactivated">"Deactivated"</option>
                </select>
            </label>
            <label>
                "Kind "
                <select data-testid="filter-kind" on:change=set_filter(|q, v| q.kind = v)>
                    <option value="">"All keys"</option>
                    <option value="single">"API keys"</option>
                    <option value="pair">"Legacy key pairs"</option>
                </select>
            </label>
            <label class="check">
                <input
                    type="checkbox"
                    data-testid="show-deactivated"
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        query.update(|q| q.include_deactivated = on);
                    }
                />
                " Show deactivated keys"
            </label>
            <label>
                "Sort by "
                <select on:change=move |ev| {
                    let by = match event_target_value(&ev).as_str() {
                        "name" => (SortBy::Name, false),
                        "last_used" => (SortBy::LastUsed, true),
                        "usage" => (SortBy::Usage, true),
                        _ => (SortBy::Created, true),
                    };
                    sort.set(by);
                }>
                    <option value="created">"Newest"</option>
                    <option value="name">"Name"</option>
                    <option value="last_used">"Last used"</option>
                    <option value="usage">"Usage"</option>
                </select>
            </label>
        </div>
        <Transition fallback=loading>
            {move || {
                keys.get()
                    .map(|result| match result {
                        Err(e) => error_view(e),
                        Ok(list) if list.keys.is_empty() => {
                            view! {
                                <div class="empty" data-testid="empty-keys">
                                    <h2>"No API keys here yet"</h2>
                                    <p>
                                        "Create a key for each application, station or script that calls your API. "
                                        "Choose its environment and permissions; you will see the full key once, right after creating it."
                                    </p>
                                    <button class="primary" on:click=move |_| creating.set(true)>"Create API key"</button>
                                </div>
                            }
                                .into_any()
                        }
                        Ok(list) => {
                            let mut rows = list.keys;
                            let (by, descending) = sort.get();
                            logic::sort_keys(&mut rows, by, descending);
                            view! { <KeyTable keys=rows chosen=chosen.write_only() /> }.into_any()
                        }
                    })
            }}
        </Transition>
        {move || creating.get().then(|| view! { <CreateKeyDialog on_close=Callback::new(move |()| creating.set(false)) /> })}
        {move || {
            chosen
                .get()
                .map(|(key, action)| {
                    view! { <ActionDialog key=key action=action on_close=Callback::new(move |()| chosen.set(None)) /> }
                })
        }}
    }
}

#[component]
fn KeyTable(keys: Vec<KeyView>, chosen: WriteSignal<Option<(KeyView, KeyAction)>>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    view! {
        <div class="table-wrap">
            <table class="keys" data-testid="keys-table">
                <thead>
                    <tr>
                        <th>"Name"</th>
                        <th>"Key"</th>
                        <th>"Environment"</th>
                        <th>"Project"</th>
                        <th>"Permissions"</th>
                        <th>"Rate limit"</th>
                        <th>"Status"</th>
                        <th>"Created by"</th>
                        <th>"Created"</th>
                        <th>"Last used"</th>
                        <th>"Usage"</th>
                        <th><span class="sr-only">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    {keys
                        .into_iter()
                        .map(|k| {
                            let id = k.id.to_string();
                            let errors = k.usage.recent_errors;
                            let open = {
                                let id = id.clone();
                                move |ev: leptos::ev::MouseEvent| {
                                    ev.prevent_default();
                                    ctx.navigate(Page::Key(id.clone()));
                                }
                            };
                            let open_errors = open.clone();
                            view! {
                                <tr data-testid="key-row" data-key-id=id.clone()>
                                    <td>
                                        <a href=Page::Key(id.clone()).path() on:click=open>{k.name.clone()}</a>
                                        {(k.kind == KeyKind::Pair)
                                            .then(|| view! { " " <span class="badge legacy" data-testid="kind-badge" title="apikey + apisecret">"Legacy pair"</span> })}
                                        {k.canary.then(|| view! { " " <span class="badge badge-canary" data-testid="canary-badge" title="Any use is refused and alerted on">"Canary"</span> })}
                                    </td>
                                    <td><code>{k.start.clone()}</code></td>
                                    <td>{k.environment.title()}</td>
                                    <td>{k.project.clone().unwrap_or_else(|| "All projects".into())}</td>
                                    <td>{logic::access_summary(&k.permissions, &k.roles)}</td>
                                    <td>{logic::rate_limit_text(k.rate_limit.as_ref())}</td>
                                    <td><StatusBadge status=k.status /></td>
                                    <td>{k.owner_name.clone().unwrap_or_else(|| k.owner.clone())}</td>
                                    <td>{logic::when(Some(k.created_at))}</td>
                                    <td data-testid="last-used">{logic::when(k.last_used_at)}</td>
                                    <td data-testid="usage">
                                        {k.usage.total}
                                        {(errors > 0)
                                            .then(|| {
                                                view! {
                                                    <a class="errors-link" href=Page::Key(id.clone()).path() on:click=open_errors>
                                                        {format!(" · {errors} recent errors")}
                                                    </a>
                                                }
                                            })}
                                    </td>
                                    <td><ActionMenu key=k.clone() chosen=chosen /></td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn CreateKeyDialog(on_close: Callback<()>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let name = RwSignal::new(String::new());
    let environment = RwSignal::new(Environment::Live);
    let project = RwSignal::new(String::new());
    let checked = RwSignal::new(Vec::<String>::new());
    let chosen_roles = RwSignal::new(Vec::<String>::new());
    let identity = RwSignal::new(String::new());
    let identities = LocalResource::new(|| api::identities(None));
    let extra = RwSignal::new(String::new());
    let customers = RwSignal::new(String::new());
    let requests = RwSignal::new(String::new());
    let window = RwSignal::new("60".to_owned());
    let burst = RwSignal::new(String::new());
    let expiry = RwSignal::new(String::new());
    let pair = RwSignal::new(false);
    let ips = RwSignal::new(String::new());
    let own_organization_only = RwSignal::new(false);
    let meta = RwSignal::new(String::new());
    let uses = RwSignal::new(String::new());
    let refill = RwSignal::new(String::new());
    let refill_amount = RwSignal::new(String::new());
    let projects = LocalResource::new(api::projects);
    let known = move || {
        let mut all: Vec<String> = COMMON_PERMISSIONS.iter().map(|p| (*p).to_owned()).collect();
        if let Some(Ok(s)) = ctx.session.get() {
            for p in s.known_permissions {
                if !all.contains(&p) {
                    all.push(p);
                }
            }
        }
        all
    };
    let create = Action::new_local(move |request: &CreateKeyRequest| {
        let request = request.clone();
        async move { api::create_key(&request).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(created)) = create.value().get() {
            ctx.changed();
            ctx.shown.set(Some(created));
            on_close.run(());
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut permissions = checked.get_untracked();
        permissions.extend(logic::split_list(&extra.get_untracked()));
        let rate_limit = match requests.get_untracked().trim() {
            "" => None,
            r => Some(RateLimitPolicy {
                requests: r.parse().unwrap_or(0),
                window_seconds: window.get_untracked().parse().unwrap_or(0),
                burst: burst.get_untracked().trim().parse().ok(),
                mode: Default::default(),
            }),
        };
        let project = project.get_untracked();
        create.dispatch(CreateKeyRequest {
            name: name.get_untracked(),
            environment: environment.get_untracked(),
            project: (!project.is_empty()).then_some(project),
            permissions,
            customers: logic::split_list(&customers.get_untracked()),
            rate_limit,
            expires_at: logic::parse_datetime_field(&expiry.get_untracked()),
            kind: if pair.get_untracked() { KeyKind::Pair } else { KeyKind::Single },
            allowed_ips: logic::split_list(&ips.get_untracked()),
            own_organization_only: own_organization_only.get_untracked(),
            canary: false,
            meta: logic::parse_meta_field(&meta.get_untracked()),
            usage_limit: logic::usage_limit_field(
                &uses.get_untracked(),
                &refill.get_untracked(),
                &refill_amount.get_untracked(),
            ),
            roles: chosen_roles.get_untracked(),
            identity: Some(identity.get_untracked()).filter(|i| !i.is_empty()),
        });
    };
    let error = move || create.value().get().and_then(Result::err);
    let field_error = move |field: &'static str| {
        move || {
            error()
                .filter(|e| e.field().is_some_and(|f| f.starts_with(field)))
                .map(|e| view! { <p class="field-error" role="alert">{e.to_string()}</p> })
        }
    };
    view! {
        <Modal title="Create API key".to_owned() on_close=on_close>
            <form on:submit=submit data-testid="create-key-form">
                <label for="key-name">"Name"</label>
                <input
                    id="key-name"
                    data-testid="key-name"
                    placeholder="Main Website Integration"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                />
                {field_error("name")}
                <label for="key-env">"Environment"</label>
                <select
                    id="key-env"
                    data-testid="key-environment"
                    on:change=move |ev| environment.set(event_target_value(&ev).parse().unwrap_or(Environment::Live))
                >
                    <option value="live">"Production (live)"</option>
                    <option value="test">"Staging (test)"</option>
                    <option value="dev">"Development (dev)"</option>
                </select>
                {field_error("environment")}
                <label for="key-project">"Project"</label>
                <select id="key-project" data-testid="key-project" on:change=move |ev| project.set(event_target_value(&ev))>
                    <option value="">"All projects"</option>
                    {move || {
                        projects
                            .get()
                            .and_then(Result::ok)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|p| view! { <option value=p.slug.clone()>{format!("{} ({})", p.name, p.slug)}</option> })
                            .collect_view()
                    }}
                </select>
                {field_error("project")}
                <fieldset>
                    <legend>"Permissions"</legend>
                    {move || {
                        known()
                            .into_iter()
                            .map(|p| {
                                let value = p.clone();
                                view! {
                                    <label class="check">
                                        <input
                                            type="checkbox"
                                            data-permission=p.clone()
                                            on:change=move |ev| {
                                                let on = event_target_checked(&ev);
                                                let value = value.clone();
                                                checked.update(|c| {
                                                    c.retain(|x| *x != value);
                                                    if on {
                                                        c.push(value);
                                                    }
                                                });
                                            }
                                        />
                                        " "
                                        {p.clone()}
                                        {description_of(&ctx, &p).map(|d| view! { <span class="muted">{format!(" — {d}")}</span> })}
                                    </label>
                                }
                            })
                            .collect_view()
                    }}
                    <label for="key-extra">"Other permissions (comma separated)"</label>
                    <input id="key-extra" data-testid="key-extra-permissions" placeholder="reports:read" prop:value=move || extra.get() on:input=move |ev| extra.set(event_target_value(&ev)) />
                    {field_error("permissions")}
                </fieldset>
                {move || {
                    let roles = ctx.session.get().and_then(Result::ok).map(|s| s.roles).unwrap_or_default();
                    (!roles.is_empty()).then(|| view! {
                        <fieldset>
                            <legend>"Roles"</legend>
                            {roles.into_iter().map(|r| {
                                let value = r.name.clone();
                                let granted: Vec<&str> = r.permissions.iter().map(|p| p.as_str()).collect();
                                let detail = match &r.description {
                                    Some(d) => format!(" — {d} ({})", granted.join(", ")),
                                    None => format!(" — {}", granted.join(", ")),
                                };
                                view! {
                                    <label class="check">
                                        <input
                                            type="checkbox"
                                            data-role=r.name.clone()
                                            on:change=move |ev| {
                                                let on = event_target_checked(&ev);
                                                let value = value.clone();
                                                chosen_roles.update(|c| {
                                                    c.retain(|x| *x != value);
                                                    if on {
                                                        c.push(value);
                                                    }
                                                });
                                            }
                                        />
                                        " "
                                        {r.name.clone()}
                                        <span class="muted">{detail}</span>
                                    </label>
                                }
                            }).collect_view()}
                            {field_error("roles")}
                        </fieldset>
                    })
                }}
                <label for="key-identity">"Identity (its keys share its name, metadata and rate limit)"</label>
                <select id="key-identity" data-testid="key-identity" on:change=move |ev| identity.set(event_target_value(&ev))>
                    <option value="">"None"</option>
                    {move || {
                        identities
                            .get()
                            .and_then(Result::ok)
                            .map(|list| list.identities)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|i| view! { <option value=i.id.clone()>{logic::identity_label(&i.name, &i.external_id)}</option> })
                            .collect_view()
                    }}
                </select>
                {field_error("identity")}
                <label for="key-customers">"Restrict to customers (comma separated, optional)"</label>
                <input id="key-customers" prop:value=move || customers.get() on:input=move |ev| customers.set(event_target_value(&ev)) />
                {field_error("customers")}
                <fieldset>
                    <legend>"Rate limit (optional)"</legend>
                    <div class="row">
                        <input aria-label="Requests" data-testid="key-requests" inputmode="numeric" placeholder="requests" prop:value=move || requests.get() on:input=move |ev| requests.set(event_target_value(&ev)) />
                        <span>" per "</span>
                        <select aria-label="Window" on:change=move |ev| window.set(event_target_value(&ev))>
                            <option value="60">"minute"</option>
                            <option value="1">"second"</option>
                            <option value="3600">"hour"</option>
                            <option value="86400">"day"</option>
                        </select>
                        <input aria-label="Burst" inputmode="numeric" placeholder="burst (optional)" prop:value=move || burst.get() on:input=move |ev| burst.set(event_target_value(&ev)) />
                    </div>
                    {field_error("rate_limit")}
                </fieldset>
                <label for="key-expiry">"Expires (UTC, optional)"</label>
                <input id="key-expiry" type="datetime-local" prop:value=move || expiry.get() on:input=move |ev| expiry.set(event_target_value(&ev)) />
                {field_error("expires_at")}
                <label for="key-ips">"Allowed client IPs (CIDR, comma separated; empty: anywhere)"</label>
                <input id="key-ips" data-testid="key-ips" placeholder="203.0.113.0/24, 2001:db8::/32" prop:value=move || ips.get() on:input=move |ev| ips.set(event_target_value(&ev)) />
                {field_error("allowed_ips")}
                <fieldset>
                    <legend>"Usage limit (optional: the key stops with 429 USAGE_EXCEEDED once its uses are spent)"</legend>
                    <div class="row">
                        <input aria-label="Uses" data-testid="key-uses" inputmode="numeric" placeholder="uses" prop:value=move || uses.get() on:input=move |ev| uses.set(event_target_value(&ev)) />
                        <select aria-label="Refill" data-testid="key-refill" on:change=move |ev| refill.set(event_target_value(&ev))>
                            <option value="">"never refilled"</option>
                            <option value="daily">"refilled every day"</option>
                            <option value="monthly">"refilled every month"</option>
                        </select>
                        <input aria-label="Refill to" data-testid="key-refill-amount" inputmode="numeric" placeholder="refill to (default: uses)" prop:value=move || refill_amount.get() on:input=move |ev| refill_amount.set(event_target_value(&ev)) />
                    </div>
                    {field_error("usage_limit")}
                </fieldset>
                <label for="key-meta">"Metadata (a JSON object, up to 1 KiB: sent to your API as Keygate-Key-Meta, returned by verify)"</label>
                <textarea id="key-meta" data-testid="key-meta" rows="3" placeholder="{\"plan\": \"pro\"}" prop:value=move || meta.get() on:input=move |ev| meta.set(event_target_value(&ev))></textarea>
                {field_error("meta")}
                <label class="check">
                    <input type="checkbox" data-testid="key-own-org" on:change=move |ev| own_organization_only.set(event_target_checked(&ev)) />
                    " Only for this organization (never acts for another organization its owner joins)"
                </label>
                <label class="check">
                    <input type="checkbox" data-testid="key-pair" on:change=move |ev| pair.set(event_target_checked(&ev)) />
                    " Legacy pair (apikey + apisecret headers)"
                </label>
                {move || error().filter(|e| e.field().is_none()).map(error_view)}
                <div class="row">
                    <button type="submit" class="primary" data-testid="submit-key" disabled=move || create.pending().get()>
                        {move || if create.pending().get() { "Creating…" } else { "Create key" }}
                    </button>
                    <button type="button" class="secondary" on:click=move |_| on_close.run(())>"Cancel"</button>
                </div>
            </form>
        </Modal>
    }
}

fn hour_label(t: Timestamp) -> String {
    t.to_rfc3339()[11..16].to_owned()
}

fn day_label(t: Timestamp) -> String {
    t.to_rfc3339()[5..10].to_owned()
}

#[component]
pub fn KeyPage(id: String) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let chosen = RwSignal::new(None::<(KeyView, KeyAction)>);
    let key_id = id.clone();
    let key = LocalResource::new(move || {
        ctx.refresh.track();
        let id = key_id.clone();
        async move { api::key(&id).await }
    });
    let usage_id = id.clone();
    let usage = LocalResource::new(move || {
        ctx.refresh.track();
        let id = usage_id.clone();
        async move { api::usage(&id).await }
    });
    let errors_id = id.clone();
    let errors = LocalResource::new(move || {
        ctx.refresh.track();
        let id = errors_id.clone();
        async move { api::errors(&id).await }
    });
    view! {
        <p>
            <a href="/admin/" on:click=move |ev| {
                ev.prevent_default();
                ctx.navigate(Page::Keys);
            }>"← All keys"</a>
        </p>
        <Transition fallback=loading>
            {move || {
                key.get()
                    .map(|r| match r {
                        Err(e) => error_view(e),
                        Ok(k) => {
                            view! {
                                <div class="page-head">
                                    <h1 data-testid="key-title">{k.name.clone()}</h1>
                                    <StatusBadge status=k.status />
                                    {k.canary.then(|| view! { <span class="badge badge-canary" data-testid="canary-badge">"Canary"</span> })}
                                    <ActionMenu key=k.clone() chosen=chosen.write_only() />
                                </div>
                                {k.canary.then(|| view! { <CanaryTrips id=k.id.to_string() /> })}
                                <KeyLeaks id=k.id.to_string() />
                                <Suggestions id=k.id.to_string() />
                                <dl class="details">
                                    <dt>"Key"</dt>
                                    <dd><code>{k.start.clone()}"_…"</code></dd>
                                    <dt>"Environment"</dt>
                                    <dd>{k.environment.title()}</dd>
                                    <dt>"Project"</dt>
                                    <dd>{k.project.clone().unwrap_or_else(|| "All projects".into())}</dd>
                                    <dt>"Permissions"</dt>
                                    <dd data-testid="key-permissions">
                                        {if k.permissions.is_empty() {
                                            "No permissions".to_owned()
                                        } else {
                                            k.permissions
                                                .iter()
                                                .map(|p| match description_of(&ctx, p.as_str()) {
                                                    Some(d) => format!("{p} ({d})"),
                                                    None => p.as_str().to_owned(),
                                                })
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        }}
                                    </dd>
                                    <dt>"Identity"</dt>
                                    <dd data-testid="key-identity">{logic::key_identity_text(k.identity.as_ref())}</dd>
                                    <dt>"Roles"</dt>
                                    <dd data-testid="key-roles">{if k.roles.is_empty() { "No roles".to_owned() } else { k.roles.join(", ") }}</dd>
                                    <dt>"Customers"</dt>
                                    <dd>{if k.customers.is_empty() { "Any".to_owned() } else { k.customers.join(", ") }}</dd>
                                    <dt>"Rate limit"</dt>
                                    <dd>{logic::rate_limit_text(k.rate_limit.as_ref())}</dd>
                                    <dt>"Client IPs"</dt>
                                    <dd data-testid="key-ips">{logic::ranges_text(&k.allowed_ips)}</dd>
                                    <dt>"Usage limit"</dt>
                                    <dd data-testid="key-uses">{logic::usage_limit_text(k.usage_limit.as_ref(), k.usage.remaining)}</dd>
                                    <dt>"Metadata"</dt>
                                    <dd>
                                        {match logic::meta_text(k.meta.as_ref()) {
                                            t if t.is_empty() => view! { <span data-testid="key-meta-none">"None"</span> }.into_any(),
                                            t => view! { <pre class="meta" data-testid="key-meta">{t}</pre> }.into_any(),
                                        }}
                                    </dd>
                                    <dt>"Organizations"</dt>
                                    <dd data-testid="key-orgs">
                                        {if k.own_organization_only { "Its own only" } else { "Its own, and any its owner joins (Keygate-Org)" }}
                                    </dd>
                                    <dt>"Expires"</dt>
                                    <dd>{if k.expires_at.is_some() { logic::when(k.expires_at) } else { "Never".into() }}</dd>
                                    <dt>"Created"</dt>
                                    <dd>{logic::when(Some(k.created_at))}" by "{k.owner_name.clone().unwrap_or_default()}</dd>
                                    <dt>"Last used"</dt>
                                    <dd data-testid="key-last-used">{logic::when(k.last_used_at)}</dd>
                                    <dt>"Requests"</dt>
                                    <dd data-testid="key-usage">{k.usage.total}" in total, "{k.usage.last_24h}" in the last 24 hours"</dd>
                                </dl>
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
        <h2>"Usage"</h2>
        <Transition fallback=loading>
            {move || {
                usage.get()
                    .map(|r| match r {
                        Err(e) => error_view(e),
                        Ok(u) => {
                            view! {
                                <div class="charts">
                                    <UsageChart title="Requests per hour, last 24 hours" points=u.hourly label=hour_label />
                                    <UsageChart title="Requests per day, last 14 days" points=u.daily label=day_label />
                                </div>
                                <ByOrganization rows=u.by_organization testid="key-usage-by-org" />
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
        <h2>"Recent errors"</h2>
        <Transition fallback=loading>
            {move || {
                errors.get()
                    .map(|r| match r {
                        Err(e) => error_view(e),
                        Ok(list) if list.errors.is_empty() => {
                            view! { <p class="muted" data-testid="no-errors">"No recent errors. Refused requests and origin errors of the last 14 days appear here."</p> }.into_any()
                        }
                        Ok(list) => {
                            view! {
                                <div class="table-wrap">
                                    <table data-testid="errors-table">
                                        <thead>
                                            <tr><th>"When"</th><th>"Request"</th><th>"Status"</th><th>"Code"</th><th>"Response"</th></tr>
                                        </thead>
                                        <tbody>
                                            {list.errors
                                                .into_iter()
                                                .map(|e| {
                                                    view! {
                                                        <tr>
                                                            <td>{logic::when(Some(e.at))}</td>
                                                            <td><pre class="preview">{e.request_preview}</pre></td>
                                                            <td>{e.status}</td>
                                                            <td><code>{e.code}</code></td>
                                                            <td><pre class="preview">{e.response_preview}</pre></td>
                                                        </tr>
                                                    }
                                                })
                                                .collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
        <h2>"Requests"</h2>
        <RequestLog key=id.clone() />
        {move || {
            chosen
                .get()
                .map(|(key, action)| {
                    view! { <ActionDialog key=key action=action on_close=Callback::new(move |()| chosen.set(None)) /> }
                })
        }}
    }
}

/// The admin page's "Logs": the organization's request log (a member's: their own keys').
#[component]
pub fn LogsPage() -> impl IntoView {
    view! {
        <h1>"Logs"</h1>
        <p class="muted">"Every request made with a key of this organization in the last 7 days (at most 1,000 per key), newest first: passes, refusals and origin errors. Requests with an unknown key or a wrong secret are not a key's and are not listed."</p>
        <RequestLog />
    }
}

/// A request log with its filters: one key's (`key`), or every key the viewer may see.
#[component]
fn RequestLog(#[prop(optional, into)] key: Option<String>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let one_key = key.is_some();
    let (status, code, method, path, key_input) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let fixed = key.clone();
    let applied = RwSignal::new(api::LogFilter { key: key.unwrap_or_default(), ..api::LogFilter::default() });
    let cursor = RwSignal::new(None::<String>);
    let reload = RwSignal::new(0u32);
    let page = LocalResource::new(move || {
        ctx.refresh.track();
        reload.track();
        let (filter, cursor) = (applied.get(), cursor.get());
        async move { api::requests(&filter, cursor.as_deref()).await }
    });
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        cursor.set(None);
        applied.set(api::LogFilter {
            key: fixed.clone().unwrap_or_else(|| key_input.get()),
            status: status.get(),
            code: code.get(),
            method: method.get(),
            path: path.get(),
        });
    };
    let input = move |label: &'static str, testid: &'static str, hint: &'static str, value: RwSignal<String>| {
        view! {
            <label>
                {label}
                <input data-testid=testid placeholder=hint prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev)) />
            </label>
        }
    };
    view! {
        <form class="filters" data-testid="log-filters" on:submit=apply>
            {input("Status", "log-status", "4xx or 429", status)}
            {input("Code", "log-code", "RATE_LIMITED", code)}
            {input("Method", "log-method", "GET", method)}
            {input("Path starts with", "log-path", "/data/", path)}
            {(!one_key).then(|| input("Key id", "log-key", "7Q3M0T9ZK1XW2R", key_input))}
            <button type="submit" data-testid="log-apply">"Filter"</button>
            <button type="button" class="secondary" data-testid="log-refresh" on:click=move |_| {
                cursor.set(None);
                reload.update(|n| *n += 1);
            }>"Refresh"</button>
        </form>
        <Transition fallback=loading>
            {move || page.get().map(|r| match r {
                Err(e) => error_view(e),
                Ok(p) if p.requests.is_empty() => view! {
                    <p class="empty" data-testid="log-empty">"No requests match. Requests appear here within seconds of being made."</p>
                }.into_any(),
                Ok(p) => {
                    let next = p.next_cursor.clone();
                    view! {
                        <div class="table-wrap">
                            <table data-testid="log-table">
                                <thead><tr>
                                    <th>"When"</th>
                                    {(!one_key).then(|| view! { <th>"Key"</th> })}
                                    <th>"Request"</th><th>"Status"</th><th>"Code"</th><th>"Latency"</th><th>"Client"</th><th>"Acting for"</th>
                                </tr></thead>
                                <tbody>
                                    {p.requests.into_iter().map(|l| {
                                        let page = Page::Key(l.key_id.clone());
                                        let failed = if l.status >= 400 { "failed" } else { "" };
                                        let open = move |ev: leptos::ev::MouseEvent| {
                                            ev.prevent_default();
                                            ctx.navigate(page.clone());
                                        };
                                        view! {
                                            <tr data-testid="log-line" class=failed>
                                                <td>{logic::when_exactly(l.at)}</td>
                                                {(!one_key).then(|| view! { <td><a href=Page::Key(l.key_id.clone()).path() on:click=open><code>{l.key_id.clone()}</code></a></td> })}
                                                <td><code>{format!("{} {}", l.method, l.path)}</code></td>
                                                <td data-testid="log-status-cell">{l.status}</td>
                                                <td><code>{l.code.unwrap_or_default()}</code></td>
                                                <td>{format!("{} ms", l.latency_ms)}</td>
                                                <td>{l.client_ip.unwrap_or_default()}</td>
                                                <td><code>{l.organization}</code></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        {next.map(|n| view! { <button class="secondary" data-testid="log-older" on:click=move |_| cursor.set(Some(n.clone()))>"Older requests"</button> })}
                    }.into_any()
                }
            })}
        </Transition>
    }
}

fn is_manager(ctx: &Ctx) -> bool {
    ctx.session.get().and_then(Result::ok).is_some_and(|s| s.user.role.manages_organization())
}

/// Whether the signed-in user may create keys here (the organization may keep it to owners and admins).
fn may_create_keys(ctx: &Ctx) -> bool {
    ctx.session.get().and_then(Result::ok).is_none_or(|s| {
        keygate_shared::authz::may_act_on_org(s.user.role, keygate_shared::authz::OrgAction::CreateKey, &s.settings)
            .is_ok()
    })
}

/// Who may create keys: every member, or owners and admins only (Instrumental's setting). Owners change it.
#[component]
fn KeyCreationSetting() -> impl IntoView {
    view! {
        <SettingSelect
            label="Who may create keys "
            testid="key-creation"
            options=vec![
                (KeyCreation::AllMembers.as_str(), "Every member"),
                (KeyCreation::OwnersAndAdmins.as_str(), "Owners and admins only"),
            ]
            current=|s| s.key_creation.as_str()
            change=|v| KeyCreation::parse(v).map(|c| UpdateSettingsRequest { key_creation: Some(c), leak_response: None })
        />
    }
}

/// What a leak report of one of the organization's keys does: revoke it at once, or alert only. Owners change it.
#[component]
fn LeakResponseSetting() -> impl IntoView {
    view! {
        <SettingSelect
            label="When a key is reported leaked "
            testid="leak-response"
            options=vec![
                (LeakResponse::Revoke.as_str(), "Revoke it at once"),
                (LeakResponse::Alert.as_str(), "Alert only (audit log and webhooks)"),
            ]
            current=|s| s.leak_response.as_str()
            change=|v| LeakResponse::parse(v).map(|r| UpdateSettingsRequest { key_creation: None, leak_response: Some(r) })
        />
    }
}

/// One of the organization's settings as a select: owners change it (`change` makes the request for a chosen
/// value); everyone else sees it.
#[component]
fn SettingSelect(
    label: &'static str,
    testid: &'static str,
    options: Vec<(&'static str, &'static str)>,
    current: fn(&OrganizationSettings) -> &'static str,
    change: fn(&str) -> Option<UpdateSettingsRequest>,
) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let save = Action::new_local(move |request: &UpdateSettingsRequest| {
        let request = *request;
        async move { api::update_settings(&request).await }
    });
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(_))) {
            ctx.changed();
        }
    });
    move || {
        let options = options.clone();
        ctx.session.get().and_then(Result::ok).map(|session| {
            let chosen = current(&session.settings);
            let owner = session.user.role == Role::Owner;
            view! {
                <p class="setting">
                    <label for=testid>{label}</label>
                    <select
                        id=testid
                        data-testid=testid
                        disabled=!owner
                        on:change=move |ev| {
                            if let Some(request) = change(&event_target_value(&ev)) {
                                save.dispatch(request);
                            }
                        }
                    >
                        {options.into_iter().map(|(value, text)| view! { <option value=value selected=chosen == value>{text}</option> }).collect_view()}
                    </select>
                    {(!owner).then(|| view! { <span class="muted">" (owners change this)"</span> })}
                    {move || save.value().get().and_then(Result::err).map(|e| view! { <span class="error" role="alert">{e.to_string()}</span> })}
                </p>
            }
        })
    }
}

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let projects = LocalResource::new(move || {
        ctx.refresh.track();
        api::projects()
    });
    let slug = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let create = Action::new_local(move |(slug, name): &(String, String)| {
        let (slug, name) = (slug.clone(), name.clone());
        async move { api::create_project(&slug, &name).await }
    });
    let rename = Action::new_local(move |(id, name): &(String, String)| {
        let (id, name) = (id.clone(), name.clone());
        async move { api::rename_project(&id, &name).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            slug.set(String::new());
            name.set(String::new());
            ctx.changed();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = rename.value().get() {
            ctx.changed();
        }
    });
    view! {
        <h1>"Projects"</h1>
        <p class="muted">"A key may carry its project's slug in front of it (acme-shop:kg_live_…), so people can tell keys apart."</p>
        <Show when=move || is_manager(&ctx)>
            <form class="inline-form" on:submit=move |ev| {
                ev.prevent_default();
                create.dispatch((slug.get_untracked(), name.get_untracked()));
            }>
                <input aria-label="Slug" data-testid="project-slug" placeholder="acme-shop" prop:value=move || slug.get() on:input=move |ev| slug.set(event_target_value(&ev)) />
                <input aria-label="Name" data-testid="project-name" placeholder="Acme shop" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                <button type="submit" class="primary" data-testid="create-project" disabled=move || create.pending().get()>"Create project"</button>
            </form>
            {move || create.value().get().and_then(Result::err).map(error_view)}
            {move || rename.value().get().and_then(Result::err).map(error_view)}
        </Show>
        <Transition fallback=loading>
            {move || {
                projects.get()
                    .map(|r| match r {
                        Err(e) => error_view(e),
                        Ok(list) if list.is_empty() => view! { <p class="empty">"No projects yet. Create one to scope keys to it."</p> }.into_any(),
                        Ok(list) => view! {
                            <table data-testid="projects-table">
                                <thead><tr><th>"Name"</th><th>"Slug"</th><th>"Created"</th><th></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|p| {
                                        let new_name = RwSignal::new(p.name.clone());
                                        let id = p.id.clone();
                                        view! {
                                            <tr>
                                                <td>{p.name.clone()}</td>
                                                <td><code>{p.slug.clone()}</code></td>
                                                <td>{logic::when(Some(p.created_at))}</td>
                                                <td>
                                                    <Show when=move || is_manager(&ctx)>
                                                        <form class="inline-form" on:submit={
                                                            let id = id.clone();
                                                            move |ev| {
                                                                ev.prevent_default();
                                                                rename.dispatch((id.clone(), new_name.get_untracked()));
                                                            }
                                                        }>
                                                            <input aria-label="New name" prop:value=move || new_name.get() on:input=move |ev| new_name.set(event_target_value(&ev)) />
                                                            <button type="submit" class="secondary" disabled=move || rename.pending().get()>"Rename"</button>
                                                        </form>
                                                    </Show>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    })
            }}
        </Transition>
        <PermissionCatalog />
        <RoleCatalog />
    }
}

/// What a permission of the catalog means, when the organization described it.
fn description_of(ctx: &Ctx, name: &str) -> Option<String> {
    let session = ctx.session.get_untracked().and_then(Result::ok)?;
    session.permissions.into_iter().find(|p| p.name == name).and_then(|p| p.description)
}

/// The organization's permission catalog (Instrumental's "License Management" and its kin): every permission keys
/// hold and every one described; owners and admins describe them.
#[component]
fn PermissionCatalog() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let describe = Action::new_local(move |(name, text): &(String, String)| {
        let (name, text) = (name.clone(), text.clone());
        async move { api::describe_permission(&name, &text).await }
    });
    Effect::new(move |_| {
        if matches!(describe.value().get(), Some(Ok(_))) {
            name.set(String::new());
            description.set(String::new());
            ctx.changed();
        }
    });
    view! {
        <h2>"Permissions"</h2>
        <p class="muted">"What each permission means, shown where keys are created and on each key. Keys may hold permissions the catalog does not describe."</p>
        <Show when=move || is_manager(&ctx)>
            <form class="inline-form" on:submit=move |ev| {
                ev.prevent_default();
                describe.dispatch((name.get_untracked(), description.get_untracked()));
            }>
                <input aria-label="Permission" data-testid="describe-name" placeholder="licenses:manage" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                <input aria-label="Description" data-testid="describe-text" placeholder="License Management" prop:value=move || description.get() on:input=move |ev| description.set(event_target_value(&ev)) />
                <button type="submit" class="secondary" data-testid="describe-save" disabled=move || describe.pending().get()>"Describe"</button>
            </form>
            {move || describe.value().get().and_then(Result::err).map(error_view)}
        </Show>
        {move || {
            ctx.session.get().and_then(Result::ok).map(|session| {
                if session.permissions.is_empty() {
                    return view! { <p class="empty">"No permissions yet."</p> }.into_any();
                }
                view! {
                    <table data-testid="permission-catalog">
                        <thead><tr><th>"Permission"</th><th>"Description"</th><th>"Live keys"</th></tr></thead>
                        <tbody>
                            {session.permissions.into_iter().map(|p| view! {
                                <tr data-testid="permission-row" data-permission=p.name.clone()>
                                    <td><code>{p.name.clone()}</code></td>
                                    <td>{p.description.clone().unwrap_or_default()}</td>
                                    <td>{p.keys}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            })
        }}
    }
}

/// The organization's identities (Unkey's identities, Zuplo's consumers): customers whose keys share a name,
/// metadata and one rate limit. Any member reads them; owners and admins create, change and delete them.
#[component]
pub fn IdentitiesPage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let version = RwSignal::new(0u32);
    let list = LocalResource::new(move || {
        version.get();
        api::identities(None)
    });
    // The form creates an identity, or changes the one chosen with its row's Edit button.
    let editing = RwSignal::new(None::<String>);
    let external_id = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let requests = RwSignal::new(String::new());
    let window = RwSignal::new("60".to_owned());
    let meta = RwSignal::new(String::new());
    let save = Action::new_local(move |(): &()| {
        let limit = logic::shared_limit_field(&requests.get_untracked(), &window.get_untracked());
        let meta = logic::parse_meta_field(&meta.get_untracked());
        let (id, external, name) = (editing.get_untracked(), external_id.get_untracked(), name.get_untracked());
        async move {
            match id {
                Some(id) => {
                    let change = UpdateIdentityRequest { name: Some(name), meta: Some(meta), rate_limit: Some(limit) };
                    api::update_identity(&id, &change).await
                }
                None => {
                    let request = CreateIdentityRequest {
                        external_id: external,
                        name: (!name.trim().is_empty()).then_some(name),
                        meta,
                        rate_limit: limit,
                    };
                    api::create_identity(&request).await
                }
            }
        }
    });
    let delete = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move { api::delete_identity(&id).await }
    });
    let reset = move || {
        editing.set(None);
        external_id.set(String::new());
        name.set(String::new());
        requests.set(String::new());
        window.set("60".to_owned());
        meta.set(String::new());
    };
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(_))) {
            reset();
            version.update(|v| *v += 1);
        }
    });
    Effect::new(move |_| {
        if matches!(delete.value().get(), Some(Ok(()))) {
            version.update(|v| *v += 1);
        }
    });
    view! {
        <div class="page-head"><h1>"Identities"</h1></div>
        <p class="muted">"An identity is one of your customers: its keys share its name, its metadata (sent to your origin as Keygate-Identity-Meta) and one rate limit for all of them together."</p>
        <Show when=move || is_manager(&ctx)>
            <form class="inline-form" data-testid="identity-form" on:submit=move |ev| {
                ev.prevent_default();
                save.dispatch(());
            }>
                <input aria-label="External id" data-testid="identity-external-id" placeholder="cus_123" prop:value=move || external_id.get() prop:disabled=move || editing.get().is_some() on:input=move |ev| external_id.set(event_target_value(&ev)) />
                <input aria-label="Name" data-testid="identity-name" placeholder="Acme Corp" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                <input aria-label="Shared limit: requests" data-testid="identity-requests" inputmode="numeric" placeholder="requests (empty: none)" prop:value=move || requests.get() on:input=move |ev| requests.set(event_target_value(&ev)) />
                <select aria-label="per" data-testid="identity-window" prop:value=move || window.get() on:change=move |ev| window.set(event_target_value(&ev))>
                    <option value="60">"per minute"</option>
                    <option value="1">"per second"</option>
                    <option value="3600">"per hour"</option>
                    <option value="86400">"per day"</option>
                </select>
                <input aria-label="Metadata (JSON object)" data-testid="identity-meta" placeholder="{\"plan\": \"pro\"}" prop:value=move || meta.get() on:input=move |ev| meta.set(event_target_value(&ev)) />
                <button type="submit" class="primary" data-testid="identity-save" disabled=move || save.pending().get()>
                    {move || if editing.get().is_some() { "Save identity" } else { "Create identity" }}
                </button>
                <Show when=move || editing.get().is_some()>
                    <button type="button" class="secondary" on:click=move |_| reset()>"Cancel"</button>
                </Show>
            </form>
            {move || save.value().get().and_then(Result::err).map(error_view)}
            {move || delete.value().get().and_then(Result::err).map(error_view)}
        </Show>
        <Transition fallback=loading>
            {move || {
                list.get().map(|r| match r {
                    Err(e) => error_view(e),
                    Ok(list) if list.identities.is_empty() => view! { <p class="empty" data-testid="identities-empty">"No identities yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table data-testid="identity-table">
                            <thead><tr><th>"External id"</th><th>"Name"</th><th>"Shared limit"</th><th>"Metadata"</th><th>"Keys"</th><th></th></tr></thead>
                            <tbody>
                                {list.identities.into_iter().map(|i| {
                                    let chosen = i.clone();
                                    let gone = i.id.clone();
                                    view! {
                                        <tr data-testid="identity-row" data-identity=i.external_id.clone()>
                                            <td><code>{i.external_id.clone()}</code></td>
                                            <td>{i.name.clone()}</td>
                                            <td data-testid="identity-limit">{logic::rate_limit_text(i.rate_limit.as_ref())}</td>
                                            <td><code>{i.meta.as_ref().map(|m| m.as_json().to_owned()).unwrap_or_default()}</code></td>
                                            <td data-testid="identity-keys">{i.keys}</td>
                                            <td>
                                                <Show when=move || is_manager(&ctx)>
                                                    <button type="button" class="secondary" data-testid="identity-edit" on:click={
                                                        let chosen = chosen.clone();
                                                        move |_| {
                                                            editing.set(Some(chosen.id.clone()));
                                                            external_id.set(chosen.external_id.clone());
                                                            name.set(chosen.name.clone());
                                                            requests.set(chosen.rate_limit.map(|p| p.requests.to_string()).unwrap_or_default());
                                                            window.set(chosen.rate_limit.map_or(60, |p| p.window_seconds).to_string());
                                                            meta.set(logic::meta_text(chosen.meta.as_ref()));
                                                        }
                                                    }>"Edit"</button>
                                                    <button type="button" class="danger" data-testid="identity-delete" on:click={
                                                        let gone = gone.clone();
                                                        move |_| {
                                                            delete.dispatch(gone.clone());
                                                        }
                                                    }>"Delete"</button>
                                                </Show>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })
            }}
        </Transition>
    }
}

/// The organization's roles (Unkey's roles): named permission sets keys hold; owners and admins define, change and
/// delete them, and a change reaches every key that holds the role.
#[component]
fn RoleCatalog() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let permissions = RwSignal::new(String::new());
    let save = Action::new_local(move |(name, description, permissions): &(String, String, String)| {
        let name = name.clone();
        let request =
            PutRoleRequest { description: Some(description.clone()), permissions: logic::split_list(permissions) };
        async move { api::put_role(&name, &request).await }
    });
    let delete = Action::new_local(move |name: &String| {
        let name = name.clone();
        async move { api::delete_role(&name).await }
    });
    Effect::new(move |_| {
        if matches!(save.value().get(), Some(Ok(_))) {
            name.set(String::new());
            description.set(String::new());
            permissions.set(String::new());
            ctx.changed();
        }
    });
    Effect::new(move |_| {
        if matches!(delete.value().get(), Some(Ok(()))) {
            ctx.changed();
        }
    });
    view! {
        <h2>"Roles"</h2>
        <p class="muted">"A role is a named set of permissions keys hold together. Changing a role changes every key that holds it, within seconds."</p>
        <Show when=move || is_manager(&ctx)>
            <form class="inline-form" data-testid="role-form" on:submit=move |ev| {
                ev.prevent_default();
                save.dispatch((name.get_untracked(), description.get_untracked(), permissions.get_untracked()));
            }>
                <input aria-label="Role" data-testid="role-name" placeholder="billing" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                <input aria-label="Description" data-testid="role-description" placeholder="Invoices and refunds" prop:value=move || description.get() on:input=move |ev| description.set(event_target_value(&ev)) />
                <input aria-label="Permissions (comma separated)" data-testid="role-permissions" placeholder="invoices:read, refunds:*" prop:value=move || permissions.get() on:input=move |ev| permissions.set(event_target_value(&ev)) />
                <button type="submit" class="secondary" data-testid="role-save" disabled=move || save.pending().get()>"Save role"</button>
            </form>
            {move || save.value().get().and_then(Result::err).map(error_view)}
            {move || delete.value().get().and_then(Result::err).map(error_view)}
        </Show>
        {move || {
            ctx.session.get().and_then(Result::ok).map(|session| {
                if session.roles.is_empty() {
                    return view! { <p class="empty" data-testid="roles-empty">"No roles yet."</p> }.into_any();
                }
                view! {
                    <table data-testid="role-catalog">
                        <thead><tr><th>"Role"</th><th>"Description"</th><th>"Permissions"</th><th>"Keys"</th><th></th></tr></thead>
                        <tbody>
                            {session.roles.into_iter().map(|r| {
                                let granted = r.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
                                let (edit_name, edit_description, edit_permissions) =
                                    (r.name.clone(), r.description.clone().unwrap_or_default(), granted.clone());
                                let gone = r.name.clone();
                                view! {
                                    <tr data-testid="role-row" data-role=r.name.clone()>
                                        <td><code>{r.name.clone()}</code></td>
                                        <td>{r.description.clone().unwrap_or_default()}</td>
                                        <td data-testid="role-granted">{granted}</td>
                                        <td data-testid="role-keys">{r.keys}</td>
                                        <td>
                                            <Show when=move || is_manager(&ctx)>
                                                <button type="button" class="secondary" data-testid="role-edit" on:click={
                                                    let (n, d, p) = (edit_name.clone(), edit_description.clone(), edit_permissions.clone());
                                                    move |_| {
                                                        name.set(n.clone());
                                                        description.set(d.clone());
                                                        permissions.set(p.clone());
                                                    }
                                                }>"Edit"</button>
                                                <button type="button" class="danger" data-testid="role-delete" on:click={
                                                    let gone = gone.clone();
                                                    move |_| {
                                                        delete.dispatch(gone.clone());
                                                    }
                                                }>"Delete"</button>
                                            </Show>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            })
        }}
    }
}

#[component]
pub fn MembersPage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let members = LocalResource::new(move || {
        ctx.refresh.track();
        api::members()
    });
    let invitations = LocalResource::new(move || {
        ctx.refresh.track();
        async move { if is_manager(&ctx) { api::invitations().await.map(Some) } else { Ok(None) } }
    });
    let email = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Member);
    let invite = Action::new_local(move |request: &InviteMemberRequest| {
        let request = request.clone();
        async move { api::invite(&request).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(invited)) = invite.value().get() {
            let origin = window().location().origin().unwrap_or_default();
            ctx.shown_secret.set(Some(ShownSecret {
                title: format!("Invitation for {}", invited.invitation.email),
                secret: invited.code.clone(),
                note: format!(
                    "Hand this code to {} safely: it is shown once, works once, and expires on {}. They open \
                     {origin}/admin/ and choose \"Join with an invitation\" (or, already signed in, paste it on \
                     their Sessions page).",
                    invited.invitation.email,
                    logic::when(Some(invited.invitation.expires_at))
                ),
            }));
            email.set(String::new());
            name.set(String::new());
            ctx.changed();
        }
    });
    let revoke = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move { api::revoke_invitation(&id).await }
    });
    let remove = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move { api::remove_member(&id).await }
    });
    Effect::new(move |_| {
        if matches!(revoke.value().get(), Some(Ok(()))) || matches!(remove.value().get(), Some(Ok(()))) {
            ctx.changed();
        }
    });
    let me = move || ctx.session.get().and_then(Result::ok).map(|s| s.user.id).unwrap_or_default();
    view! {
        <h1>"Members"</h1>
        <OrganizationId />
        <KeyCreationSetting />
        <LeakResponseSetting />
        <Show when=move || is_manager(&ctx)>
            <OrganizationUsagePanel />
        </Show>
        <Show when=move || is_manager(&ctx)>
            <p class="muted">"Invite someone: they get a one-time code (never a token of anyone) and join with it."</p>
            <form class="inline-form" on:submit=move |ev| {
                ev.prevent_default();
                invite.dispatch(InviteMemberRequest { email: email.get_untracked(), name: name.get_untracked(), role: role.get_untracked() });
            }>
                <input aria-label="Email" data-testid="member-email" type="email" placeholder="name@example.com" prop:value=move || email.get() on:input=move |ev| email.set(event_target_value(&ev)) />
                <input aria-label="Name" data-testid="member-name" placeholder="Name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                <select aria-label="Role" data-testid="member-role" on:change=move |ev| role.set(match event_target_value(&ev).as_str() { "admin" => Role::Admin, "owner" => Role::Owner, _ => Role::Member })>
                    <option value="member">"Member"</option>
                    <option value="admin">"Admin"</option>
                    <option value="owner">"Owner"</option>
                </select>
                <button type="submit" class="primary" data-testid="invite" disabled=move || invite.pending().get()>"Invite"</button>
            </form>
            {move || invite.value().get().and_then(Result::err).map(error_view)}
            {move || revoke.value().get().and_then(Result::err).map(error_view)}
        </Show>
        {move || remove.value().get().and_then(Result::err).map(error_view)}
        <details class="help" data-testid="who-may">
            <summary>"Who may do what"</summary>
            <table>
                <thead><tr><th>"Action"</th><th>"Owner"</th><th>"Admin"</th><th>"Member"</th></tr></thead>
                <tbody>
                    {keygate_shared::authz::TABLE.iter().map(|row| view! {
                        <tr>
                            <td>{row.what}</td>
                            <td>{keygate_shared::authz::cell(row, Role::Owner)}</td>
                            <td>{keygate_shared::authz::cell(row, Role::Admin)}</td>
                            <td>{keygate_shared::authz::cell(row, Role::Member)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </details>
        <Transition fallback=loading>
            {move || members.get().map(|r| match r {
                Err(e) => error_view(e),
                Ok(list) => view! {
                    <table data-testid="members-table">
                        <thead><tr><th>"Name"</th><th>"Email"</th><th>"Role"</th><th></th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|m| {
                                let id = m.id.clone();
                                let mine = m.id == me();
                                let can_remove = mine || (is_manager(&ctx) && (m.role != Role::Owner || ctx.session.get().and_then(Result::ok).is_some_and(|s| s.user.role == Role::Owner)));
                                let email = m.email.clone();
                                view! {
                                    <tr data-testid="member-row">
                                        <td>{m.name}</td>
                                        <td>{m.email}</td>
                                        <td>{m.role.as_str()}</td>
                                        <td>
                                            <Show when=move || can_remove>
                                                <button
                                                    class="danger"
                                                    data-testid="remove-member"
                                                    disabled=move || remove.pending().get()
                                                    on:click={
                                                        let id = id.clone();
                                                        let email = email.clone();
                                                        move |_| {
                                                            let question = if mine {
                                                                String::from("Leave this organization? Your console tokens stop acting in it at once.")
                                                            } else {
                                                                format!("Remove {email}? Every console token of theirs stops acting in this organization at once; their keys stay, and an admin may revoke them.")
                                                            };
                                                            if window().confirm_with_message(&question).unwrap_or(false) {
                                                                remove.dispatch(id.clone());
                                                            }
                                                        }
                                                    }
                                                >
                                                    {if mine { "Leave" } else { "Remove" }}
                                                </button>
                                            </Show>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
        <Transition fallback=loading>
            {move || invitations.get().map(|r| match r {
                Err(e) => error_view(e),
                Ok(None) => ().into_any(),
                Ok(Some(list)) if list.is_empty() => view! { <p class="empty">"No pending invitations."</p> }.into_any(),
                Ok(Some(list)) => view! {
                    <h2>"Pending invitations"</h2>
                    <table data-testid="invitations-table">
                        <thead><tr><th>"Email"</th><th>"Role"</th><th>"Expires"</th><th></th></tr></thead>
                        <tbody>
                            {list.into_iter().map(|i| {
                                let id = i.id.clone();
                                view! {
                                    <tr>
                                        <td>{i.email}</td>
                                        <td>{i.role.as_str()}</td>
                                        <td>{logic::when(Some(i.expires_at))}</td>
                                        <td><button class="secondary" data-testid="revoke-invitation" on:click=move |_| { revoke.dispatch(id.clone()); }>"Revoke"</button></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
    }
}

/// The signed-in user's console sessions: each is one console token. Sign this one out, revoke the others, make a
/// new one (for a CLI or another browser), or join another organization with an invitation code.
#[component]
pub fn SessionsPage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let sessions = LocalResource::new(move || {
        ctx.refresh.track();
        api::sessions()
    });
    let revoke = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move { api::end_session(&id).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = revoke.value().get() {
            ctx.changed();
        }
    });
    let label = RwSignal::new(String::from("CLI"));
    let create = Action::new_local(move |label: &String| {
        let label = label.clone();
        async move { api::create_session(&label).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(created)) = create.value().get() {
            ctx.shown_secret.set(Some(ShownSecret {
                title: format!("New console token: {}", created.session.label),
                secret: created.console_token.clone(),
                note: format!(
                    "Copy it now: it is not shown again. It signs in as you until {}, or until you revoke it here.",
                    logic::when(Some(created.session.expires_at))
                ),
            }));
            ctx.changed();
        }
    });
    let code = RwSignal::new(String::new());
    let accept = Action::new_local(move |code: &String| {
        let code = code.clone();
        async move { api::accept(&code).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = accept.value().get() {
            code.set(String::new());
            ctx.changed();
        }
    });
    let row = move |s: SessionInfo| {
        let id = s.id.to_string();
        let current = s.current;
        view! {
            <tr data-testid="session-row">
                <td>{s.label.clone()} {current.then(|| view! { <span class="badge active" data-testid="current-session">" this console"</span> })}</td>
                <td>{logic::when(Some(s.created_at))}</td>
                <td>{logic::when(s.last_used_at)}</td>
                <td>{logic::when(Some(s.expires_at))}</td>
                <td>
                    {if current {
                        view! { <button class="secondary" data-testid="sign-out-here" on:click=move |_| ctx.sign_out()>"Sign out"</button> }.into_any()
                    } else {
                        view! { <button class="danger" data-testid="revoke-session" on:click=move |_| { revoke.dispatch(id.clone()); }>"Revoke"</button> }.into_any()
                    }}
                </td>
            </tr>
        }
    };
    view! {
        <h1>"Sessions"</h1>
        <p class="muted">"Each session is one of your console tokens. Revoking one signs it out at once, wherever it is used."</p>
        {move || revoke.value().get().and_then(Result::err).map(error_view)}
        <Transition fallback=loading>
            {move || sessions.get().map(|r| match r {
                Err(e) => error_view(e),
                Ok(list) => view! {
                    <table data-testid="sessions-table">
                        <thead><tr><th>"Label"</th><th>"Created"</th><th>"Last used"</th><th>"Expires"</th><th></th></tr></thead>
                        <tbody>{list.into_iter().map(row).collect_view()}</tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
        <h2>"New console token"</h2>
        <form class="inline-form" on:submit=move |ev| {
            ev.prevent_default();
            create.dispatch(label.get_untracked());
        }>
            <input aria-label="Label" data-testid="session-label" prop:value=move || label.get() on:input=move |ev| label.set(event_target_value(&ev)) />
            <button type="submit" class="primary" data-testid="create-session" disabled=move || create.pending().get()>"Create token"</button>
        </form>
        {move || create.value().get().and_then(Result::err).map(error_view)}
        <h2>"Join another organization"</h2>
        <form class="inline-form" on:submit=move |ev| {
            ev.prevent_default();
            accept.dispatch(code.get_untracked());
        }>
            <input aria-label="Invitation code" data-testid="accept-code" placeholder="kginv_…" prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev)) />
            <button type="submit" class="secondary" data-testid="accept" disabled=move || accept.pending().get()>"Join"</button>
        </form>
        {move || accept.value().get().map(|r| match r {
            Err(e) => error_view(e),
            Ok(org) => view! { <p class="notice" data-testid="accepted">{format!("You are now {} of {}: pick it in the organization switcher.", org.role.as_str(), org.name)}</p> }.into_any(),
        })}
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let cursor = RwSignal::new(None::<String>);
    let page = LocalResource::new(move || {
        ctx.refresh.track();
        let c = cursor.get();
        async move { api::audit(c.as_deref()).await }
    });
    view! {
        <h1>"Audit log"</h1>
        <Transition fallback=loading>
            {move || page.get().map(|r| match r {
                Err(e) => error_view(e),
                Ok(p) if p.events.is_empty() => view! { <p class="empty">"Nothing has happened yet."</p> }.into_any(),
                Ok(p) => {
                    let next = p.next_cursor.clone();
                    view! {
                        <table data-testid="audit-table">
                            <thead><tr><th>"When"</th><th>"Who"</th><th>"Action"</th><th>"Target"</th><th>"Detail"</th></tr></thead>
                            <tbody>
                                {p.events.into_iter().map(|e| view! {
                                    <tr>
                                        <td>{logic::when(Some(e.at))}</td>
                                        <td>{logic::actor_label(e.actor_name.as_deref(), e.actor.as_deref())}</td>
                                        <td>{e.action.as_str().replace('_', " ")}</td>
                                        <td><code>{e.target.unwrap_or_default()}</code></td>
                                        <td>{e.detail}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        {next.map(|n| view! { <button class="secondary" on:click=move |_| cursor.set(Some(n.clone()))>"Older events"</button> })}
                    }.into_any()
                }
            })}
        </Transition>
    }
}

#[component]
pub fn WhoamiPage() -> impl IntoView {
    let key = RwSignal::new(String::new());
    let lookup = Action::new_local(move |key: &String| {
        let key = key.clone();
        async move { api::whoami(&key).await }
    });
    view! {
        <h1>"Which project is this key?"</h1>
        <p class="muted">"Paste a key to see its project, name and environment. The key is sent to Keygate only."</p>
        <form class="inline-form" on:submit=move |ev| {
            ev.prevent_default();
            lookup.dispatch(key.get_untracked());
        }>
            <input aria-label="API key" data-testid="whoami-key" type="password" autocomplete="off" placeholder="kg_live_…" prop:value=move || key.get() on:input=move |ev| key.set(event_target_value(&ev)) />
            <button type="submit" class="primary" data-testid="whoami-submit" disabled=move || lookup.pending().get()>"Look up"</button>
        </form>
        {move || lookup.value().get().map(|r| match r {
            Err(e) => error_view(e),
            Ok(w) => view! {
                <dl class="details" data-testid="whoami-result">
                    <dt>"Project"</dt><dd data-testid="whoami-project">{w.project.unwrap_or_else(|| "All projects".into())}</dd>
                    <dt>"Key"</dt><dd>{w.name}" ("<code>{w.key_id.to_string()}</code>")"</dd>
                    <dt>"Environment"</dt><dd>{w.environment.title()}</dd>
                </dl>
            }.into_any(),
        })}
    }
}

/// Requests by the organization they acted for (`Keygate-Org`): Instill charges the organization a request names.
#[component]
fn ByOrganization(rows: Vec<keygate_shared::api::OrganizationUsage>, testid: &'static str) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted" data-testid=testid>"No requests yet."</p> }.into_any();
    }
    view! {
        <table data-testid=testid>
            <caption>"Requests by acting organization (Keygate-Org; the key's own when none is named)"</caption>
            <thead><tr><th>"Organization"</th><th>"Requests"</th></tr></thead>
            <tbody>
                {rows
                    .into_iter()
                    .map(|r| view! { <tr><td><code>{r.organization}</code></td><td>{r.requests.to_string()}</td></tr> })
                    .collect::<Vec<_>>()}
            </tbody>
        </table>
    }
    .into_any()
}

/// The organization's usage by acting organization (owners and admins).
#[component]
fn OrganizationUsagePanel() -> impl IntoView {
    let usage = LocalResource::new(api::organization_usage);
    view! {
        <h2>"Usage by organization"</h2>
        <Transition fallback=loading>
            {move || {
                usage.get().map(|r| match r {
                    Err(e) => error_view(e),
                    Ok(u) => view! { <ByOrganization rows=u.by_organization testid="org-usage" /> }.into_any(),
                })
            }}
        </Transition>
    }
}

/// The organization's webhooks (owners and admins): where key events are posted, signed; "Send test event"; each
/// webhook's delivery log. The signing secret is shown once, when the webhook is added.
#[component]
pub fn WebhooksPage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let version = RwSignal::new(0u32);
    let list = LocalResource::new(move || {
        version.get();
        api::webhooks()
    });
    let url = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let events = RwSignal::new(Vec::<EventType>::new());
    let create = Action::new_local(move |(): &()| {
        let request = CreateWebhookRequest {
            url: url.get_untracked().trim().to_owned(),
            events: events.get_untracked(),
            description: Some(description.get_untracked()).filter(|d| !d.trim().is_empty()),
        };
        async move { api::create_webhook(&request).await }
    });
    // (id, what): "test", "enable", "disable", "delete".
    let act = Action::new_local(move |(id, what): &(String, &'static str)| {
        let (id, what) = (id.clone(), *what);
        async move {
            match what {
                "test" => api::test_webhook(&id).await.map(|_| ()),
                "delete" => api::delete_webhook(&id).await,
                _ => {
                    let change = UpdateWebhookRequest { enabled: Some(what == "enable"), ..Default::default() };
                    api::update_webhook(&id, &change).await.map(|_| ())
                }
            }
        }
    });
    let rotate = Action::new_local(move |id: &String| {
        let id = id.clone();
        async move { api::rotate_webhook_secret(&id).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(rotated)) = rotate.value().get() {
            let until = rotated.previous_valid_until.map(|t| logic::when(Some(t))).unwrap_or_default();
            ctx.shown_secret.set(Some(ShownSecret {
                title: format!("New signing secret for {}", rotated.webhook.url),
                secret: rotated.secret.clone(),
                note: format!(
                    "Until {until} deliveries are signed with both this secret and the previous one (two v1= values \
                     in Keygate-Signature), so your receiver keeps accepting them while you switch it over. Copy it \
                     now: it is not shown again."
                ),
            }));
        }
    });
    let shown_log = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(Ok(created)) = create.value().get() {
            ctx.shown_secret.set(Some(ShownSecret {
                title: format!("Signing secret for {}", created.webhook.url),
                secret: created.secret.clone(),
                note: "Your receiver checks every delivery with it: Keygate-Signature is t=<unix seconds>,v1=<hex \
                       HMAC-SHA-256 of \"<t>.<body>\" with this secret>; refuse a t more than 5 minutes old. Copy it \
                       now: it is not shown again."
                    .into(),
            }));
            url.set(String::new());
            description.set(String::new());
            events.set(Vec::new());
            version.update(|v| *v += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = act.value().get() {
            version.update(|v| *v += 1);
        }
    });
    view! {
        <div class="page-head"><h1>"Webhooks"</h1></div>
        <p class="muted">"Keygate posts your organization's key events — created, revoked, regenerated, expired, rate limited, low on uses, leaked, a canary tripped — to your endpoints as signed JSON, and retries a failed delivery with backoff for about five hours."</p>
        <Show when=move || is_manager(&ctx) fallback=|| view! { <p class="empty">"Only owners and admins manage webhooks."</p> }>
            <form class="stack-form" data-testid="webhook-form" on:submit=move |ev| {
                ev.prevent_default();
                create.dispatch(());
            }>
                <label>"Endpoint URL"
                    <input data-testid="webhook-url" type="url" required placeholder="https://hooks.example.com/keygate" prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev)) />
                </label>
                <label>"Description"
                    <input data-testid="webhook-description" placeholder="Security alerts" prop:value=move || description.get() on:input=move |ev| description.set(event_target_value(&ev)) />
                </label>
                <fieldset>
                    <legend>"Events (none checked: every event)"</legend>
                    {EventType::ALL.into_iter().filter(|e| *e != EventType::Ping).map(|e| view! {
                        <label class="check">
                            <input type="checkbox" data-event=e.as_str()
                                prop:checked=move || events.get().contains(&e)
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    events.update(|list| {
                                        list.retain(|x| *x != e);
                                        if on {
                                            list.push(e);
                                        }
                                    });
                                } />
                            " " <code>{e.as_str()}</code>
                        </label>
                    }).collect_view()}
                </fieldset>
                <button type="submit" class="primary" data-testid="webhook-add" disabled=move || create.pending().get()>"Add webhook"</button>
            </form>
            {move || create.value().get().and_then(Result::err).map(error_view)}
            {move || act.value().get().and_then(Result::err).map(error_view)}
            {move || rotate.value().get().and_then(Result::err).map(error_view)}
            <Transition fallback=loading>
                {move || list.get().map(|r| match r {
                    Err(e) => error_view(e),
                    Ok(list) if list.webhooks.is_empty() => view! { <p class="empty" data-testid="webhooks-empty">"No webhooks yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table data-testid="webhook-table">
                            <thead><tr><th>"Endpoint"</th><th>"Events"</th><th>"State"</th><th></th></tr></thead>
                            <tbody>
                                {list.webhooks.into_iter().map(|w| {
                                    let events = if w.events.is_empty() {
                                        "every event".to_owned()
                                    } else {
                                        w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
                                    };
                                    let (id, enabled) = (w.id.clone(), w.enabled);
                                    let (test, toggle, delete, log) = (id.clone(), id.clone(), id.clone(), id.clone());
                                    let rotated = id.clone();
                                    view! {
                                        <tr data-testid="webhook-row" data-webhook=w.id.clone()>
                                            <td><code>{w.url.clone()}</code><div class="muted">{w.description.clone().unwrap_or_default()}</div></td>
                                            <td>{events}</td>
                                            <td>{if enabled {
                                                view! { <span class="badge badge-active">"Enabled"</span> }
                                            } else {
                                                view! { <span class="badge badge-inactive">"Disabled"</span> }
                                            }}</td>
                                            <td class="actions">
                                                <button type="button" class="secondary" data-testid="webhook-test" disabled=!enabled on:click=move |_| { act.dispatch((test.clone(), "test")); }>"Send test event"</button>
                                                <button type="button" class="secondary" data-testid="webhook-log" on:click=move |_| shown_log.set(Some(log.clone()))>"Deliveries"</button>
                                                <button type="button" class="secondary" data-testid="webhook-rotate" on:click=move |_| { rotate.dispatch(rotated.clone()); }>"Rotate secret"</button>
                                                <button type="button" class="secondary" data-testid="webhook-toggle" on:click=move |_| { act.dispatch((toggle.clone(), if enabled { "disable" } else { "enable" })); }>{if enabled { "Disable" } else { "Enable" }}</button>
                                                <button type="button" class="danger" data-testid="webhook-delete" on:click=move |_| { act.dispatch((delete.clone(), "delete")); }>"Delete"</button>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
            {move || shown_log.get().map(|id| view! { <DeliveryLog id=id version=version /> })}
        </Show>
    }
}

/// A webhook's delivery log, newest first.
#[component]
fn DeliveryLog(id: String, version: RwSignal<u32>) -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let id = StoredValue::new(id);
    let log = LocalResource::new(move || {
        version.get();
        reload.get();
        let id = id.get_value();
        async move { api::deliveries(&id).await }
    });
    view! {
        <section data-testid="delivery-log">
            <div class="page-head">
                <h2>"Deliveries"</h2>
                <button type="button" class="secondary" data-testid="delivery-refresh" on:click=move |_| reload.update(|n| *n += 1)>"Refresh"</button>
            </div>
            <Transition fallback=loading>
                {move || log.get().map(|r| match r {
                    Err(e) => error_view(e),
                    Ok(list) if list.deliveries.is_empty() => view! { <p class="empty">"Nothing sent yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table>
                            <thead><tr><th>"Event"</th><th>"State"</th><th>"Attempts"</th><th>"Last answer"</th><th>"Created"</th><th>"Next attempt"</th></tr></thead>
                            <tbody>
                                {list.deliveries.into_iter().map(|d| {
                                    let (label, class) = match d.state {
                                        DeliveryState::Delivered => ("Delivered", "badge badge-active"),
                                        DeliveryState::Pending => ("Retrying", "badge badge-inactive"),
                                        DeliveryState::Failed => ("Failed", "badge badge-deactivated"),
                                    };
                                    let answer = match (d.last_status, d.last_error.clone()) {
                                        (_, Some(error)) => error,
                                        (Some(status), None) => status.to_string(),
                                        (None, None) => "—".to_owned(),
                                    };
                                    view! {
                                        <tr data-testid="delivery-row" data-event=d.event_type.as_str() data-state=d.state.as_str()>
                                            <td><code>{d.event_type.as_str()}</code></td>
                                            <td><span class=class>{label}</span></td>
                                            <td data-testid="delivery-attempts">{d.attempts}</td>
                                            <td>{answer}</td>
                                            <td>{logic::when(Some(d.created_at))}</td>
                                            <td>{d.next_attempt_at.map(|t| logic::when(Some(t))).unwrap_or_else(|| "—".into())}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// The alert of the keys page: canary keys used in the last 7 days, the newest three.
#[component]
fn CanaryAlert() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let trips = LocalResource::new(move || {
        ctx.refresh.track();
        api::canary_trips(None)
    });
    move || {
        let week_ago = Timestamp(js_sys::Date::now() as i64 - 7 * 86_400_000);
        let recent: Vec<_> = trips
            .get()
            .and_then(Result::ok)
            .map(|list| list.trips.into_iter().filter(|t| t.at.millis() >= week_ago.millis()).take(3).collect())
            .unwrap_or_default();
        (!recent.is_empty()).then(|| {
            view! {
                <div class="error canary-alert" role="alert" data-testid="canary-alert">
                    <strong>"A canary key was used: someone has a copy of it."</strong>
                    <ul>
                        {recent.into_iter().map(|t| {
                            let id = t.key_id.to_string();
                            let open = move |ev: leptos::ev::MouseEvent| {
                                ev.prevent_default();
                                ctx.navigate(Page::Key(id.clone()));
                            };
                            view! {
                                <li data-testid="canary-trip">
                                    <a href=Page::Key(t.key_id.to_string()).path() on:click=open>{t.key_name.clone()}</a>
                                    {format!(" — {} {} from {}, {}", t.method, t.path, t.client_ip.clone().unwrap_or_else(|| "an unknown address".into()), logic::when(Some(t.at)))}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </div>
            }
        })
    }
}

/// A canary key's trips, newest first.
#[component]
fn CanaryTrips(id: String) -> impl IntoView {
    let trips = LocalResource::new(move || {
        let id = id.clone();
        async move { api::canary_trips(Some(&id)).await }
    });
    view! {
        <section data-testid="canary-trips">
            <p class="muted">"A canary key never works: any use is refused exactly like an unknown key's and recorded below, and sent to your webhooks as canary.tripped. Plant it where only someone who should not have it would find it."</p>
            <Transition fallback=loading>
                {move || trips.get().map(|r| match r {
                    Err(e) => error_view(e),
                    Ok(list) if list.trips.is_empty() => view! { <p class="empty" data-testid="canary-untouched">"Not used yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table>
                            <thead><tr><th>"When"</th><th>"Request"</th><th>"Address"</th><th>"Country"</th><th>"User agent"</th></tr></thead>
                            <tbody>
                                {list.trips.into_iter().map(|t| view! {
                                    <tr data-testid="canary-trip-row">
                                        <td>{logic::when(Some(t.at))}</td>
                                        <td><code>{format!("{} {}", t.method, t.path)}</code></td>
                                        <td>{t.client_ip.unwrap_or_default()}</td>
                                        <td>{t.country.unwrap_or_default()}</td>
                                        <td data-testid="canary-trip-agent">{t.user_agent.unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// Where the key was reported leaked (`POST /v1/leaks`), if it ever was.
#[component]
fn KeyLeaks(id: String) -> impl IntoView {
    let leaks = LocalResource::new(move || {
        let id = id.clone();
        async move { api::key_leaks(&id).await }
    });
    move || {
        let list = leaks.get().and_then(Result::ok).map(|l| l.leaks).unwrap_or_default();
        (!list.is_empty()).then(|| {
            view! {
                <section class="error" role="alert" data-testid="key-leaks">
                    <strong>"This key was reported leaked."</strong>
                    <ul>
                        {list.into_iter().map(|l| view! {
                            <li data-testid="key-leak">
                                {format!("{}: ", logic::when(Some(l.at)))}
                                <code>{l.url.clone().unwrap_or_else(|| "an unnamed place".into())}</code>
                                {format!(" ({}{})", l.source.clone().unwrap_or_else(|| l.reported_as.clone()), if l.revoked { "; revoked for it" } else { "; alert only" })}
                            </li>
                        }).collect_view()}
                    </ul>
                </section>
            }
        })
    }
}

/// "What would this request get?": the gateway's order of checks on one request, computed here by
/// `keygate_shared::simulate` (the gateway's own decision, compiled into this page's wasm) on the key's current
/// record and the gateway's configuration (`/v1/health`). A pasted key never leaves the browser: only its public id
/// is looked up.
#[component]
pub fn SimulatorPage() -> impl IntoView {
    use keygate_shared::key::ApiKey;
    use keygate_shared::simulate::{Outcome, Simulation, record_of, simulate};

    let ctx = expect_context::<Ctx>();
    let keys = LocalResource::new(move || async move { api::keys(&KeyQuery::default()).await });
    let picked = RwSignal::new(String::new());
    let pasted = RwSignal::new(String::new());
    let method = RwSignal::new("GET".to_owned());
    let path = RwSignal::new("/data/items".to_owned());
    let header_form = RwSignal::new("authorization".to_owned());
    let org = RwSignal::new(String::new());
    let customer = RwSignal::new(String::new());
    let client_ip = RwSignal::new(String::new());
    let run = Action::new_local(move |(): &()| {
        let (picked, pasted) = (picked.get_untracked(), pasted.get_untracked().trim().to_owned());
        let (method, path, form) = (method.get_untracked(), path.get_untracked(), header_form.get_untracked());
        let extras = [
            ("keygate-org", org.get_untracked()),
            ("keygate-customer", customer.get_untracked()),
            ("cf-connecting-ip", client_ip.get_untracked()),
        ];
        let session = ctx.session.get_untracked().and_then(Result::ok);
        async move {
            let health = api::health().await?;
            let endpoint = keygate_shared::decision::Endpoint {
                environment: health.environment,
                project: health.project.clone(),
                organization: health.organization.clone(),
            };
            let routes = keygate_shared::routes::RouteTable::parse(&health.routes).unwrap_or_default();
            // The credential: the pasted key, or one with the picked key's id (the simulation assumes its secret).
            let (credential, id) = if pasted.is_empty() {
                let view = api::key(&picked).await?;
                let mut key = ApiKey::generate(view.environment).map_err(|e| ApiError::Network(e.to_string()))?;
                key.id = view.id;
                key.project_label = None;
                (key.expose(), Some(view.id))
            } else {
                let id = pasted.parse::<ApiKey>().ok().map(|k| k.id);
                (pasted.clone(), id)
            };
            let record = match id {
                None => None,
                Some(id) => match api::key(&id.to_string()).await {
                    Ok(view) => {
                        let presented = credential.parse::<ApiKey>().map_err(|e| ApiError::Network(e.to_string()))?;
                        let roles = session.as_ref().map(|s| s.roles.clone()).unwrap_or_default();
                        Some((record_of(&view, &roles, keygate_shared::hash::SecretHash::of(&presented)), view.owner))
                    }
                    Err(ApiError::Problem(p)) if p.status == 404 => None,
                    Err(e) => return Err(e),
                },
            };
            let memberships: Vec<String> = match (&record, &session) {
                (Some((_, owner)), Some(s)) if *owner == s.user.id => {
                    s.organizations.iter().map(|o| o.id.clone()).collect()
                }
                (Some((r, _)), _) => vec![r.organization.clone()],
                _ => Vec::new(),
            };
            let mut headers = vec![match form.as_str() {
                "authorization" => ("authorization".to_owned(), format!("Bearer {credential}")),
                other => (other.to_owned(), credential.clone()),
            }];
            headers.extend(
                extras
                    .into_iter()
                    .filter(|(_, v)| !v.trim().is_empty())
                    .map(|(k, v)| (k.to_owned(), v.trim().to_owned())),
            );
            let incoming = keygate_shared::http::Incoming { method, path, headers, ..Default::default() };
            let now = Timestamp(js_sys::Date::now() as i64);
            let simulation: Simulation = simulate(
                &incoming,
                &health.credential_headers,
                &routes,
                &endpoint,
                record.as_ref().map(|(r, _)| r),
                &memberships,
                now,
            );
            Ok::<_, ApiError>(simulation)
        }
    });
    view! {
        <div class="page-head"><h1>"What would this request get?"</h1></div>
        <p class="muted">"The gateway's own order of checks, run here in your browser on the key's current record and the gateway's configuration. A pasted key stays in this page: only its public id is looked up, and its secret is assumed right (only its hash is stored, and never sent to the console). Rate and usage limits depend on live counts: they are shown as policies."</p>
        <form class="stack-form" data-testid="simulator-form" on:submit=move |ev| {
            ev.prevent_default();
            run.dispatch(());
        }>
            <label>"Key "
                <select data-testid="sim-key" on:change=move |ev| picked.set(event_target_value(&ev))>
                    <option value="">"Choose a key…"</option>
                    {move || keys.get().and_then(Result::ok).map(|list| list.keys.into_iter().map(|k| view! {
                        <option value=k.id.to_string()>{format!("{} ({})", k.name, k.start)}</option>
                    }).collect_view())}
                </select>
            </label>
            <label>"…or paste one "
                <input data-testid="sim-paste" type="password" autocomplete="off" placeholder="kg_live_…" prop:value=move || pasted.get() on:input=move |ev| pasted.set(event_target_value(&ev)) />
            </label>
            <div class="row">
                <select aria-label="Method" data-testid="sim-method" prop:value=move || method.get() on:change=move |ev| method.set(event_target_value(&ev))>
                    {["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].into_iter().map(|m| view! { <option value=m>{m}</option> }).collect_view()}
                </select>
                <input aria-label="Path" data-testid="sim-path" prop:value=move || path.get() on:input=move |ev| path.set(event_target_value(&ev)) />
                <select aria-label="Sent in" data-testid="sim-header" prop:value=move || header_form.get() on:change=move |ev| header_form.set(event_target_value(&ev))>
                    <option value="authorization">"Authorization: Bearer"</option>
                    <option value="x-api-key">"x-api-key"</option>
                    <option value="apikey">"apikey"</option>
                </select>
            </div>
            <div class="row">
                <input aria-label="Keygate-Org" data-testid="sim-org" placeholder="Keygate-Org (optional)" prop:value=move || org.get() on:input=move |ev| org.set(event_target_value(&ev)) />
                <input aria-label="Keygate-Customer" data-testid="sim-customer" placeholder="Keygate-Customer (optional)" prop:value=move || customer.get() on:input=move |ev| customer.set(event_target_value(&ev)) />
                <input aria-label="Client address" data-testid="sim-ip" placeholder="CF-Connecting-IP (optional)" prop:value=move || client_ip.get() on:input=move |ev| client_ip.set(event_target_value(&ev)) />
            </div>
            <button type="submit" class="primary" data-testid="sim-run" disabled=move || run.pending().get()>"Simulate"</button>
        </form>
        {move || run.value().get().map(|r| match r {
            Err(e) => error_view(e),
            Ok(sim) => view! {
                <section data-testid="sim-result">
                    <h2 data-testid="sim-verdict">{format!("{} {}", sim.status, sim.code)}</h2>
                    <table>
                        <thead><tr><th>"#"</th><th>"Check"</th><th>"Outcome"</th><th>"Why"</th></tr></thead>
                        <tbody>
                            {sim.steps.into_iter().map(|s| {
                                let (label, class) = match s.outcome {
                                    Outcome::Passed => ("passed", "badge badge-active"),
                                    Outcome::Failed => ("refused here", "badge badge-refused"),
                                    Outcome::NotReached => ("not reached", "badge badge-expired"),
                                    Outcome::Live => ("live count", "badge badge-inactive"),
                                };
                                view! {
                                    <tr data-testid="sim-step" data-outcome=label>
                                        <td>{s.number}</td>
                                        <td>{s.check}</td>
                                        <td><span class=class>{label}</span></td>
                                        <td>{s.detail}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                    <h3>"Headers"</h3>
                    <pre data-testid="sim-headers">{sim.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n")}</pre>
                    {(!sim.body.is_empty()).then(|| view! { <pre data-testid="sim-body">{sim.body.clone()}</pre> })}
                </section>
            }.into_any(),
        })}
    }
}

/// Least privilege: what the key's observed use suggests it does not need, each with its one-click fix (narrow or
/// remove a permission: the owner's edit; revoke an unused key), and the permissions its requests used.
#[component]
fn Suggestions(id: String) -> impl IntoView {
    use keygate_shared::privilege::{Suggestion, SuggestionKind};
    let ctx = expect_context::<Ctx>();
    let id = StoredValue::new(id);
    let list = LocalResource::new(move || {
        ctx.refresh.track();
        let id = id.get_value();
        async move { api::suggestions(&id).await }
    });
    let apply = Action::new_local(move |s: &Suggestion| {
        let (id, s) = (id.get_value(), s.clone());
        async move {
            match s.kind {
                SuggestionKind::RevokeUnused => api::key_action(&id, "revoke").await.map(|_| ()),
                SuggestionKind::RemoveUnused | SuggestionKind::Narrow => {
                    let permissions = s.permissions_after.iter().map(|p| p.as_str().to_owned()).collect();
                    let change =
                        keygate_shared::api::UpdateKeyRequest { permissions: Some(permissions), ..Default::default() };
                    api::update_key(&id, &change).await.map(|_| ())
                }
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = apply.value().get() {
            ctx.changed();
        }
    });
    move || {
        list.get().and_then(Result::ok).map(|list| {
            let observed = if list.observed.is_empty() {
                "No passing request needed a permission yet.".to_owned()
            } else {
                list.observed
                    .iter()
                    .map(|u| {
                        let plural = if u.requests == 1 { "" } else { "s" };
                        format!("{} ({} request{plural}, last {})", u.permission, u.requests, logic::when(Some(u.last_used_at)))
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            view! {
                <section data-testid="suggestions">
                    <h3>"Least privilege"</h3>
                    <p class="muted" data-testid="observed-permissions">{format!("Used by its requests: {observed}")}</p>
                    {if list.suggestions.is_empty() {
                        view! { <p class="muted" data-testid="no-suggestions">"Nothing to narrow: suggestions come from 30 days of use."</p> }.into_any()
                    } else {
                        view! {
                            <ul>
                                {list.suggestions.into_iter().map(|s| {
                                    let label = match s.kind {
                                        SuggestionKind::RemoveUnused => "Remove it",
                                        SuggestionKind::Narrow => "Narrow it",
                                        SuggestionKind::RevokeUnused => "Revoke the key",
                                    };
                                    let chosen = s.clone();
                                    view! {
                                        <li data-testid="suggestion">
                                            {s.detail.clone()} " "
                                            <button type="button" class="secondary" data-testid="apply-suggestion" on:click=move |_| { apply.dispatch(chosen.clone()); }>{label}</button>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                    {move || apply.value().get().and_then(Result::err).map(error_view)}
                </section>
            }
        })
    }
}
