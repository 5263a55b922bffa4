//! Pieces shared by the pages: the shell (navigation, organization switcher, sign out), the modal, the show-once
//! modal, status badges, the action menu and its dialogs, and the usage chart.

use keygate_shared::api::{CreatedKey, KeyView, UpdateKeyRequest, UsagePoint};
use keygate_shared::model::{KeyStatus, Role};
use keygate_shared::time::Timestamp;
use leptos::html;
use leptos::prelude::*;

use crate::api::{self, ApiError};
use crate::logic::{self, KeyAction};
use crate::{Ctx, Page};

/// Navigation, the organization switcher, the token's expiry, sign out, and the current page (`children`).
#[component]
pub fn Shell(children: ChildrenFn) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let link = move |page: Page, label: &'static str| {
        let target = page.clone();
        let current = page.clone();
        view! {
            <a
                href=page.path()
                class:active=move || {
                    let now = ctx.page.get();
                    now == current || (current == Page::Keys && matches!(now, Page::Key(_)))
                }
                on:click=move |ev| {
                    ev.prevent_default();
                    ctx.navigate(target.clone());
                }
            >
                {label}
            </a>
        }
    };
    view! {
        <header class="topbar">
            <span class="brand">"Keygate"</span>
            <nav aria-label="Main">
                {link(Page::Keys, "API keys")}
                {link(Page::Projects, "Projects")}
                {link(Page::Identities, "Identities")}
                {link(Page::Members, "Members")}
                {link(Page::Sessions, "Sessions")}
                {link(Page::Logs, "Logs")}
                {link(Page::Audit, "Audit log")}
                {link(Page::Webhooks, "Webhooks")}
                {link(Page::Simulator, "Simulator")}
                {link(Page::Whoami, "Which project?")}
            </nav>
            <Transition fallback=|| view! { <span class="muted">"Loading…"</span> }>
                {move || {
                    ctx.session
                        .get()
                        .map(|s| match s {
                            Ok(session) => {
                                let current = session.organization.id.clone();
                                let options = session
                                    .organizations
                                    .iter()
                                    .map(|o| {
                                        let selected = o.id == current;
                                        view! {
                                            <option value=o.id.clone() selected=selected>
                                                {o.name.clone()}
                                            </option>
                                        }
                                    })
                                    .collect_view();
                                view! {
                                    <span class="who">
                                        <label class="sr-only" for="org-switcher">"Organization"</label>
                                        <select
                                            id="org-switcher"
                                            data-testid="org-switcher"
                                            on:change=move |ev| {
                                                api::set_organization(&event_target_value(&ev));
                                                ctx.changed();
                                            }
                                        >
                                            {options}
                                        </select>
                                        <span class="user" data-testid="user-name">
                                            {session.user.name.clone()}
                                            " ("
                                            {session.user.role.as_str()}
                                            ")"
                                        </span>
                                        <span class="muted" data-testid="token-expiry">
                                            {logic::token_expiry(session.token_expires_at, logic::now())}
                                        </span>
                                    </span>
                                }
                                    .into_any()
                            }
                            Err(e) => view! { <span class="error" role="alert">{e.to_string()}</span> }.into_any(),
                        })
                }}
            </Transition>
            <button class="secondary" data-testid="sign-out" on:click=move |_| ctx.sign_out()>
                "Sign out"
            </button>
        </header>
        <main class="content">{children()}</main>
    }
}

/// The organization's id, with a copy button: a key's requests name it in `Keygate-Org` to act for this
/// organization (Instill's rule: the organization named per request is the one charged).
#[component]
pub fn OrganizationId() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    move || {
        ctx.session.get().and_then(Result::ok).map(|session| {
            let id = session.organization.id.clone();
            view! {
                <p class="org-id">
                    "Organization ID "
                    <code data-testid="org-id">{id.clone()}</code>
                    " "
                    <CopyButton text=id.clone() label="Copy ID" testid="copy-org-id" />
                    <br />
                    <span class="muted">
                        "A key of a member acts for this organization when its requests send "
                        <code>{format!("Keygate-Org: {id}")}</code>
                        "."
                    </span>
                </p>
            }
        })
    }
}

/// A modal dialog: focus moves into it, Escape closes it.
#[component]
pub fn Modal(title: String, on_close: Callback<()>, children: Children) -> impl IntoView {
    let dialog = NodeRef::<html::Div>::new();
    Effect::new(move |_| {
        if let Some(el) = dialog.get() {
            // Focus the first field or button inside the dialog.
            let first = el.query_selector("input, select, textarea, button.primary, button").ok().flatten();
            if let Some(first) = first.and_then(|f| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(f).ok()) {
                let _ = first.focus();
            }
        }
    });
    view! {
        <div class="overlay" on:keydown=move |ev| {
            if ev.key() == "Escape" {
                on_close.run(());
            }
        }>
            <div class="dialog" role="dialog" aria-modal="true" aria-label=title.clone() node_ref=dialog>
                <h2>{title.clone()}</h2>
                {children()}
            </div>
        </div>
    }
}

/// The full key, shown once, with a copy button, the warning, and ready-to-run snippets.
#[component]
pub fn ShowOnce() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    move || {
        ctx.shown.get().map(|created| {
            let origin = window().location().origin().unwrap_or_default();
            view! { <ShowOnceModal created=created origin=origin on_close=Callback::new(move |()| ctx.shown.set(None)) /> }
        })
    }
}

/// A button that copies `text` to the clipboard and says so.
#[component]
pub fn CopyButton(text: String, label: &'static str, testid: &'static str) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        let promise = window().navigator().clipboard().write_text(&text);
        leptos::task::spawn_local(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
        });
        copied.set(true);
    };
    view! {
        <button class="primary" data-testid=testid on:click=copy>
            {move || if copied.get() { "Copied" } else { label }}
        </button>
    }
}

/// A console token or an invitation code, shown once (`Ctx::shown_secret`).
#[component]
pub fn SecretOnce() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    move || {
        ctx.shown_secret.get().map(|shown| {
            let on_close = Callback::new(move |()| ctx.shown_secret.set(None));
            view! {
                <Modal title=shown.title.clone() on_close=on_close>
                    <p class="warning" role="alert">{shown.note.clone()}</p>
                    <pre class="secret" data-testid="shown-secret">{shown.secret.clone()}</pre>
                    <div class="row">
                        <CopyButton text=shown.secret.clone() label="Copy" testid="copy-secret" />
                        <button class="secondary" data-testid="close-secret" on:click=move |_| on_close.run(())>
                            "I have stored it"
                        </button>
                    </div>
                </Modal>
            }
        })
    }
}

#[component]
pub fn ShowOnceModal(created: CreatedKey, origin: String, on_close: Callback<()>) -> impl IntoView {
    let secret = logic::secret_text(&created);
    let to_copy = secret.clone();
    let snippets = logic::snippets(&created, &origin);
    let name = created.record().name.clone();
    view! {
        <Modal title=format!("Your new key: {name}") on_close=on_close>
            <p class="warning" role="alert">
                "Copy this key now. For your security it will not be shown again."
            </p>
            <pre class="secret" data-testid="new-key">{secret}</pre>
            <div class="row">
                <CopyButton text=to_copy label="Copy key" testid="copy-key" />
                <button class="secondary" data-testid="close-new-key" on:click=move |_| on_close.run(())>
                    "I have stored it"
                </button>
            </div>
            <h3>"Try it"</h3>
            {snippets
                .into_iter()
                .map(|(title, text)| {
                    view! {
                        <p class="muted">{title}</p>
                        <pre class="snippet">{text}</pre>
                    }
                })
                .collect_view()}
        </Modal>
    }
}

#[component]
pub fn StatusBadge(status: KeyStatus) -> impl IntoView {
    let (label, class) = logic::status_badge(status);
    view! { <span class=class data-testid="status">{label}</span> }
}

/// The actions menu of a key; actions the user may not take are not offered.
#[component]
pub fn ActionMenu(key: KeyView, chosen: WriteSignal<Option<(KeyView, KeyAction)>>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    move || {
        let session = ctx.session.get().and_then(Result::ok);
        let (role, me) = session.map(|s| (s.user.role, s.user.id)).unwrap_or((Role::Member, String::new()));
        let actions = logic::allowed_actions(role, key.owner == me, key.status);
        if actions.is_empty() {
            return view! { <span class="muted">"—"</span> }.into_any();
        }
        let key = key.clone();
        view! {
            <details class="menu" data-testid="actions">
                <summary>"Actions"</summary>
                <div class="menu-items">
                    {actions
                        .into_iter()
                        .map(|action| {
                            let key = key.clone();
                            view! {
                                <button
                                    class=if matches!(action, KeyAction::Deactivate | KeyAction::Delete) { "danger" } else { "" }
                                    data-action=format!("{action:?}").to_lowercase()
                                    on:click=move |_| chosen.set(Some((key.clone(), action)))
                                >
                                    {action.label()}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
            </details>
        }
        .into_any()
    }
}

/// The dialog of one action: a confirmation, a field or a form; errors from the API next to the action.
#[component]
pub fn ActionDialog(key: KeyView, action: KeyAction, on_close: Callback<()>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let id = key.id.to_string();
    let name = RwSignal::new(key.name.clone());
    let form = logic::EditForm::of(&key);
    let permissions = RwSignal::new(form.permissions);
    let roles = RwSignal::new(form.roles);
    let identity = RwSignal::new(form.identity);
    let identities = LocalResource::new(move || async move {
        if action == KeyAction::Edit {
            api::identities(None).await.map(|l| l.identities).unwrap_or_default()
        } else {
            vec![]
        }
    });
    let customers = RwSignal::new(form.customers);
    let requests = RwSignal::new(form.requests);
    let window = RwSignal::new(form.window);
    let expiry = RwSignal::new(form.expiry);
    let ips = RwSignal::new(form.ips);
    let own_organization_only = RwSignal::new(form.own_organization_only);
    let meta = RwSignal::new(form.meta);
    let uses = RwSignal::new(form.uses);
    let refill = RwSignal::new(form.refill);
    let refill_amount = RwSignal::new(form.refill_amount);
    let grace = RwSignal::new(String::new());

    let opened = key.clone();
    let run = Action::new_local(move |(): &()| {
        let id = id.clone();
        let name = name.get_untracked();
        // Only what changed is sent: an edit keeps what the dialog does not show (a limit's burst and mode).
        let edit = logic::EditForm {
            permissions: permissions.get_untracked(),
            roles: roles.get_untracked(),
            identity: identity.get_untracked(),
            customers: customers.get_untracked(),
            requests: requests.get_untracked(),
            window: window.get_untracked(),
            expiry: expiry.get_untracked(),
            ips: ips.get_untracked(),
            own_organization_only: own_organization_only.get_untracked(),
            meta: meta.get_untracked(),
            uses: uses.get_untracked(),
            refill: refill.get_untracked(),
            refill_amount: refill_amount.get_untracked(),
        }
        .update(&opened);
        let grace = grace.get_untracked();
        async move {
            match action {
                KeyAction::Rename => api::update_key(&id, &UpdateKeyRequest { name: Some(name), ..Default::default() })
                    .await
                    .map(|_| None),
                KeyAction::Edit => match edit {
                    Some(update) => api::update_key(&id, &update).await.map(|_| None),
                    None => Ok(None),
                },
                KeyAction::Revoke => api::key_action(&id, "revoke").await.map(|_| None),
                KeyAction::Activate => api::key_action(&id, "activate").await.map(|_| None),
                KeyAction::Deactivate => api::key_action(&id, "deactivate").await.map(|_| None),
                KeyAction::Regenerate => {
                    let grace = grace.trim().parse::<u32>().ok().filter(|g| *g > 0);
                    api::regenerate(&id, grace).await.map(Some)
                }
                KeyAction::Delete => api::delete_key(&id).await.map(|()| None),
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(created)) = run.value().get() {
            ctx.changed();
            if let Some(created) = created {
                ctx.shown.set(Some(created));
            }
            if action == KeyAction::Delete {
                ctx.navigate(Page::Keys);
            }
            on_close.run(());
        }
    });
    let error = move || run.value().get().and_then(Result::err);
    let field_error = move |field: &'static str| {
        move || {
            error()
                .filter(|e: &ApiError| e.field().is_some_and(|f| f.starts_with(field)))
                .map(|e| view! { <p class="field-error" role="alert">{e.to_string()}</p> })
        }
    };
    let title = format!("{} “{}”", action.label(), key.name);
    let body = match action {
        KeyAction::Rename => view! {
            <label for="rename">"Name"</label>
            <input id="rename" data-testid="rename-input" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
            {field_error("name")}
        }
        .into_any(),
        KeyAction::Edit => view! {
            <label for="edit-permissions">"Permissions (comma separated)"</label>
            <input id="edit-permissions" prop:value=move || permissions.get() on:input=move |ev| permissions.set(event_target_value(&ev)) />
            {field_error("permissions")}
            <label for="edit-roles">"Roles (comma separated)"</label>
            <input id="edit-roles" data-testid="edit-roles" prop:value=move || roles.get() on:input=move |ev| roles.set(event_target_value(&ev)) />
            {move || {
                let defined: Vec<String> = ctx.session.get().and_then(Result::ok).map(|s| s.roles.into_iter().map(|r| r.name).collect()).unwrap_or_default();
                (!defined.is_empty()).then(|| view! { <p class="muted">{format!("Defined: {}", defined.join(", "))}</p> })
            }}
            {field_error("roles")}
            <label for="edit-identity">"Identity"</label>
            <select id="edit-identity" data-testid="edit-identity" prop:value=move || identity.get() on:change=move |ev| identity.set(event_target_value(&ev))>
                <option value="">"None"</option>
                {move || {
                    let current = identity.get_untracked();
                    identities
                        .get()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|i| view! { <option value=i.id.clone() selected=i.id == current>{logic::identity_label(&i.name, &i.external_id)}</option> })
                        .collect_view()
                }}
            </select>
            {field_error("identity")}
            <label for="edit-customers">"Customers (empty: any)"</label>
            <input id="edit-customers" prop:value=move || customers.get() on:input=move |ev| customers.set(event_target_value(&ev)) />
            {field_error("customers")}
            <label for="edit-requests">"Rate limit: requests (empty: unlimited)"</label>
            <input id="edit-requests" inputmode="numeric" prop:value=move || requests.get() on:input=move |ev| requests.set(event_target_value(&ev)) />
            <label for="edit-window">"per window of (seconds)"</label>
            <input id="edit-window" inputmode="numeric" prop:value=move || window.get() on:input=move |ev| window.set(event_target_value(&ev)) />
            {field_error("rate_limit")}
            <label for="edit-expiry">"Expires (UTC, empty: never)"</label>
            <input id="edit-expiry" type="datetime-local" prop:value=move || expiry.get() on:input=move |ev| expiry.set(event_target_value(&ev)) />
            {field_error("expires_at")}
            <label for="edit-ips">"Allowed client IPs (CIDR, comma separated; empty: anywhere)"</label>
            <input id="edit-ips" prop:value=move || ips.get() on:input=move |ev| ips.set(event_target_value(&ev)) />
            {field_error("allowed_ips")}
            <label class="check">
                <input id="edit-own-org" type="checkbox" prop:checked=move || own_organization_only.get() on:change=move |ev| own_organization_only.set(event_target_checked(&ev)) />
                " Only for its own organization"
            </label>
            <label for="edit-uses">"Usage limit: uses (empty: unlimited; a new value starts the count again)"</label>
            <input id="edit-uses" data-testid="edit-uses" inputmode="numeric" prop:value=move || uses.get() on:input=move |ev| uses.set(event_target_value(&ev)) />
            <label for="edit-refill">"Refill"</label>
            <select id="edit-refill" data-testid="edit-refill" prop:value=move || refill.get() on:change=move |ev| refill.set(event_target_value(&ev))>
                <option value="">"never"</option>
                <option value="daily">"every day"</option>
                <option value="monthly">"every month"</option>
            </select>
            <label for="edit-refill-amount">"Refill to (empty: the uses)"</label>
            <input id="edit-refill-amount" inputmode="numeric" prop:value=move || refill_amount.get() on:input=move |ev| refill_amount.set(event_target_value(&ev)) />
            {field_error("usage_limit")}
            <label for="edit-meta">"Metadata (a JSON object, up to 1 KiB; empty: none)"</label>
            <textarea id="edit-meta" data-testid="edit-meta" rows="4" prop:value=move || meta.get() on:input=move |ev| meta.set(event_target_value(&ev))></textarea>
            {field_error("meta")}
        }
        .into_any(),
        KeyAction::Regenerate => view! {
            <p>{action.confirmation().unwrap_or_default()}</p>
            <label for="grace">"Grace period for the old secret (seconds, optional)"</label>
            <input id="grace" data-testid="grace-input" inputmode="numeric" prop:value=move || grace.get() on:input=move |ev| grace.set(event_target_value(&ev)) />
            {field_error("grace_seconds")}
        }
        .into_any(),
        other => view! { <p>{other.confirmation().unwrap_or("Are you sure?")}</p> }.into_any(),
    };
    let danger = matches!(action, KeyAction::Deactivate | KeyAction::Delete | KeyAction::Revoke);
    view! {
        <Modal title=title on_close=on_close>
            <form on:submit=move |ev| {
                ev.prevent_default();
                run.dispatch(());
            }>
                {body}
                {move || error().filter(|e| e.field().is_none()).map(|e| view! { <p class="error" role="alert">{e.to_string()}</p> })}
                <div class="row">
                    <button type="submit" class=if danger { "danger" } else { "primary" } data-testid="confirm" disabled=move || run.pending().get()>
                        {move || if run.pending().get() { "Working…".to_owned() } else { action.label().to_owned() }}
                    </button>
                    <button type="button" class="secondary" on:click=move |_| on_close.run(())>"Cancel"</button>
                </div>
            </form>
        </Modal>
    }
}

/// Requests per bucket as SVG bars, scaled to a round maximum.
#[component]
pub fn UsageChart(title: &'static str, points: Vec<UsagePoint>, label: fn(Timestamp) -> String) -> impl IntoView {
    const W: f64 = 480.0;
    const H: f64 = 120.0;
    let values: Vec<u64> = points.iter().map(|p| p.requests).collect();
    let (top, bars) = logic::chart_bars(&values, W, H);
    let first = points.first().map(|p| label(p.start)).unwrap_or_default();
    let last = points.last().map(|p| label(p.start)).unwrap_or_default();
    let total: u64 = values.iter().sum();
    view! {
        <figure class="chart">
            <figcaption>{title}" — "{total}" requests"</figcaption>
            <svg viewBox=format!("0 0 {W} {}", H + 16.0) role="img" aria-label=format!("{title}: {total} requests")>
                <line x1="0" y1=H x2=W y2=H class="axis" />
                <text x="2" y="10" class="tick">{top.to_string()}</text>
                {bars
                    .into_iter()
                    .zip(points.iter().map(|p| label(p.start)).collect::<Vec<_>>())
                    .map(|(b, when)| {
                        view! {
                            <rect x=b.x y=b.y width=b.width height=b.height class="bar">
                                <title>{format!("{when}: {}", b.value)}</title>
                            </rect>
                        }
                    })
                    .collect_view()}
                <text x="0" y=H + 14.0 class="tick">{first}</text>
                <text x=W y=H + 14.0 class="tick" text-anchor="end">{last}</text>
            </svg>
        </figure>
    }
}
