//! Keygate's console: a client-side Leptos app served by the Worker under `/admin/`.
//!
//! `main.rs` only mounts [`App`], which holds the page switch; pages live in `pages.rs`, shared pieces in
//! `components.rs` (which never names a page), every HTTP call in `api.rs`, and the DOM-free logic (badges, allowed
//! actions, chart scaling, snippets) in `logic.rs`.

pub mod api;
pub mod components;
pub mod logic;
pub mod pages;

use keygate_shared::api::{CreatedKey, SessionView};
use leptos::prelude::*;

use crate::api::ApiError;

/// The console's pages, each with its own path under `/admin/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    Keys,
    Key(String),
    Projects,
    Members,
    Sessions,
    Audit,
    Logs,
    Identities,
    Webhooks,
    Simulator,
    Whoami,
}

impl Page {
    pub fn from_path(path: &str) -> Page {
        let rest = path.trim_start_matches("/admin").trim_matches('/');
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            ["keys", id] if !id.is_empty() => Page::Key((*id).to_owned()),
            ["projects"] => Page::Projects,
            ["members"] => Page::Members,
            ["sessions"] => Page::Sessions,
            ["audit"] => Page::Audit,
            ["logs"] => Page::Logs,
            ["identities"] => Page::Identities,
            ["webhooks"] => Page::Webhooks,
            ["simulator"] => Page::Simulator,
            ["whoami"] => Page::Whoami,
            _ => Page::Keys,
        }
    }

    pub fn path(&self) -> String {
        match self {
            Page::Keys => "/admin/".into(),
            Page::Key(id) => format!("/admin/keys/{id}"),
            Page::Projects => "/admin/projects".into(),
            Page::Members => "/admin/members".into(),
            Page::Sessions => "/admin/sessions".into(),
            Page::Audit => "/admin/audit".into(),
            Page::Logs => "/admin/logs".into(),
            Page::Identities => "/admin/identities".into(),
            Page::Webhooks => "/admin/webhooks".into(),
            Page::Simulator => "/admin/simulator".into(),
            Page::Whoami => "/admin/whoami".into(),
        }
    }

    fn current() -> Page {
        let path = window().location().pathname().unwrap_or_default();
        Page::from_path(&path)
    }
}

/// What every page shares.
#[derive(Clone, Copy)]
#[allow(missing_debug_implementations)] // LocalResource has no Debug.
pub struct Ctx {
    pub token: RwSignal<Option<String>>,
    pub page: RwSignal<Page>,
    pub session: LocalResource<Result<SessionView, ApiError>>,
    /// Bumped after every change, so lists reload.
    pub refresh: RwSignal<u32>,
    /// A key to show once (after creation or regeneration).
    pub shown: RwSignal<Option<CreatedKey>>,
    /// A console token or invitation code to show once.
    pub shown_secret: RwSignal<Option<ShownSecret>>,
}

/// A secret the console shows once: a console token (after joining, or a new session) or an invitation code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownSecret {
    pub title: String,
    pub secret: String,
    /// What to do with it.
    pub note: String,
}

impl Ctx {
    pub fn navigate(&self, page: Page) {
        if let Ok(history) = window().history() {
            let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&page.path()));
        }
        self.page.set(page);
    }

    pub fn changed(&self) {
        self.refresh.update(|n| *n += 1);
    }

    /// Signs this console's token out at Keygate (it stops working everywhere at once), then forgets it.
    pub fn sign_out(&self) {
        let token = self.token;
        leptos::task::spawn_local(async move {
            // Forgotten even if Keygate did not answer: the tab must not stay signed in.
            let _ = api::end_session("current").await;
            api::set_token(None);
            token.set(None);
        });
    }
}

#[component]
pub fn App() -> impl IntoView {
    let token = RwSignal::new(api::token());
    let page = RwSignal::new(Page::current());
    let refresh = RwSignal::new(0u32);
    let session = LocalResource::new(move || {
        let signed_in = token.get().is_some();
        refresh.track();
        async move { if signed_in { api::session().await } else { Err(ApiError::Network("not signed in".into())) } }
    });
    let ctx = Ctx { token, page, session, refresh, shown: RwSignal::new(None), shown_secret: RwSignal::new(None) };
    provide_context(ctx);
    let listener = window_event_listener(leptos::ev::popstate, move |_| page.set(Page::current()));
    on_cleanup(move || listener.remove());

    view! {
        <Show when=move || token.get().is_some() fallback=|| view! { <pages::SignIn /> }>
            <components::Shell>
                {move || match page.get() {
                    Page::Keys => view! { <pages::KeysPage /> }.into_any(),
                    Page::Key(id) => view! { <pages::KeyPage id=id /> }.into_any(),
                    Page::Projects => view! { <pages::ProjectsPage /> }.into_any(),
                    Page::Members => view! { <pages::MembersPage /> }.into_any(),
                    Page::Sessions => view! { <pages::SessionsPage /> }.into_any(),
                    Page::Audit => view! { <pages::AuditPage /> }.into_any(),
                    Page::Logs => view! { <pages::LogsPage /> }.into_any(),
                    Page::Identities => view! { <pages::IdentitiesPage /> }.into_any(),
                    Page::Webhooks => view! { <pages::WebhooksPage /> }.into_any(),
                    Page::Simulator => view! { <pages::SimulatorPage /> }.into_any(),
                    Page::Whoami => view! { <pages::WhoamiPage /> }.into_any(),
                }}
            </components::Shell>
        </Show>
        <components::ShowOnce />
        <components::SecretOnce />
    }
}
