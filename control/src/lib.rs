//! Keygate's control plane: a Worker of its own, reached only through the gateway's service binding (the gateway
//! stays the one public address and hands it `/admin/*`). It serves the admin API (`admin.rs`) and the console's
//! files, and holds the per-tenant objects:
//!
//! - `OrgObject`, one per organization (`org.rs`): members and roles, invitations, projects, the key index with
//!   usage summaries, the permission catalog, the audit log — SQLite tables, one transaction per message;
//! - `UserObject`, one per user (`user.rs`): profile, memberships, console sessions;
//! - `BootstrapObject` (`bootstrap.rs`): the one global flag;
//! - `KeyObject`, one per key (`key_object.rs` over `keygate_shared::keyobject`): the key's authoritative record,
//!   rate-limit state and usage, which the gateway calls over a Durable Object binding across scripts.
//!
//! Nothing here costs in proportion to the number of organizations: every request reads the objects of the one user
//! and the one organization (and key) it is about.

pub mod admin;
pub mod bootstrap;
pub mod config;
#[cfg(target_arch = "wasm32")]
mod key_object;
pub mod leaks;
pub mod logs;
pub mod openapi;
pub mod org;
#[cfg(target_arch = "wasm32")]
mod runtime;
pub mod sql;
pub mod store;
pub mod user;

// Native only: they run the objects' SQL on an in-memory SQLite (`rusqlite`).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

#[cfg(target_arch = "wasm32")]
mod entry {
    use std::cell::RefCell;
    use std::rc::Rc;

    use keygate_shared::http::{Incoming, Reply, canonical_path, is_under, split_url};
    use keygate_shared::problem::Problem;
    use worker::{Context, Env, MessageBatch, Request, Response, Result, event};

    use crate::config::Config;
    use crate::runtime::{self, WorkerStores};

    /// A platform-free reply as a `worker::Response`.
    fn to_response(reply: Reply) -> Result<Response> {
        Ok(Response::from(keygate_glue::to_response(reply)?))
    }

    thread_local! {
        static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
    }

    fn config(env: &Env) -> std::result::Result<Rc<Config>, String> {
        if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
            return Ok(c);
        }
        let var = |name: &str| {
            env.var(name).ok().map(|v| v.to_string()).or_else(|| env.secret(name).ok().map(|s| s.to_string()))
        };
        let config = Rc::new(Config::from_vars(var)?);
        CONFIG.with(|c| *c.borrow_mut() = Some(Rc::clone(&config)));
        Ok(config)
    }

    #[event(start)]
    fn start() {
        console_error_panic_hook::set_once();
    }

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
        let now = runtime::now();
        let config = match config(&env) {
            Ok(c) => c,
            Err(e) => {
                worker::console_error!("keygate: configuration error: {e}");
                return to_response(Reply::problem(&Problem::new(500, "MISCONFIGURED", "Misconfigured", e)));
            }
        };
        let url = req.inner().url();
        let (raw, query) = split_url(&url);
        let path = match canonical_path(raw) {
            Ok(path) => path.into_owned(),
            Err(reply) => return to_response(reply),
        };
        let leak_reports = path == "/v1/leaks";
        if !is_under(&path, "/admin/v1") && !leak_reports {
            if is_under(&path, "/admin") {
                return console(&env, &req).await;
            }
            return to_response(Reply::problem(&Problem::not_found("No such route.")));
        }
        let mut incoming =
            Incoming { method: req.method().to_string(), path, query: query.to_owned(), ..Incoming::default() };
        for name in [
            "authorization",
            "keygate-org",
            "cf-connecting-ip",
            "content-type",
            crate::leaks::IDENTIFIER_HEADER,
            crate::leaks::SIGNATURE_HEADER,
        ] {
            if let Ok(Some(value)) = req.headers().get(name) {
                if value.len() > 4096 {
                    return to_response(Reply::problem(&Problem::new(
                        431,
                        "HEADER_TOO_LARGE",
                        "Request header fields too large",
                        format!("The `{name}` header is too large."),
                    )));
                }
                incoming.headers.push((name.to_owned(), value));
            }
        }
        if !matches!(incoming.method.as_str(), "GET" | "HEAD") {
            match keygate_glue::read_body(req.inner()).await {
                Ok(body) => incoming.body = Some(body),
                Err(reply) => return to_response(reply),
            }
        }
        let stores = WorkerStores { env: env.clone() };
        if leak_reports {
            if incoming.method != "POST" {
                return to_response(Reply::problem(&Problem::new(
                    405,
                    "METHOD_NOT_ALLOWED",
                    "Method not allowed",
                    "POST leak reports here.",
                )));
            }
            return to_response(crate::admin::leak_reports(&stores, &incoming, &config, now).await);
        }
        to_response(crate::admin::route(&stores, &incoming, &config, now).await)
    }

    /// The request log's queue (`keygate-request-log`): each organization's lines go to its object; messages with
    /// lines an object did not take are retried (stored lines are ignored the second time), unreadable ones dropped.
    #[event(queue)]
    async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
        use worker::MessageExt;
        let now = runtime::now();
        let messages: Vec<_> = batch.raw_iter().collect();
        let mut parsed = Vec::with_capacity(messages.len());
        for message in &messages {
            match message.body().as_string().as_deref().and_then(crate::logs::parse) {
                Some(lines) => parsed.push(lines),
                None => {
                    worker::console_error!("keygate: unreadable request-log message {}", message.id());
                    parsed.push(keygate_shared::requestlog::LogBatch::default());
                }
            }
        }
        let stores = WorkerStores { env };
        let failed = crate::logs::store(&stores, &parsed, now).await;
        for (organization, why) in &failed {
            worker::console_error!("keygate: request log of {organization} not stored, retrying: {why}");
        }
        for (message, lines) in messages.iter().zip(&parsed) {
            if lines.lines.iter().any(|(organization, _)| failed.contains_key(organization)) {
                message.retry();
            } else {
                message.ack();
            }
        }
        Ok(())
    }

    /// The console's single-page app: files come from the assets; any other `/admin/...` path is the app's page.
    async fn console(env: &Env, req: &Request) -> Result<Response> {
        let assets = env.assets("ASSETS")?;
        let url = req.url()?;
        let mut index = url.clone();
        index.set_path("/admin/");
        index.set_query(None);
        assets.fetch(index.to_string(), None).await
    }
}
