//! Keygate's Worker. The entry point reads the clock once, sorts the request by path prefix and hands it to a
//! handler; every decision lives in `keygate-shared` and the platform-free modules below.
//!
//! - `/admin/v1/*`: the admin API (`admin.rs`); `/admin/*`: the console's files (Workers assets).
//! - `/v1/health`, `/v1/verify`, `/v1/whoami`: `gateway.rs`.
//! - everything else: the gateway — authenticate, then forward to `ORIGIN_URL` or echo the identity.

pub mod admin;
pub mod config;
pub mod directory;
pub mod gateway;
pub mod keyobject;
pub mod openapi;
pub mod reply;
#[cfg(target_arch = "wasm32")]
mod runtime;
pub mod store;

#[cfg(test)]
mod tests;

#[cfg(target_arch = "wasm32")]
mod entry {
    use keygate_shared::api::{Health, MAX_BODY_BYTES};
    use keygate_shared::problem::Problem;
    use keygate_shared::time::Timestamp;
    use worker::{Context, Env, Request, Response, Result, event};

    use crate::gateway::{self, Consult};
    use crate::keyobject::ObjectRequest;
    use crate::reply::{Incoming, Reply};
    use crate::runtime::{self, WorkerStores, to_response};

    #[event(start)]
    fn start() {
        // A panic reaches the log with its message; worker-build's shim then reinitializes the module.
        console_error_panic_hook::set_once();
    }

    #[event(fetch)]
    async fn fetch(mut req: Request, env: Env, ctx: Context) -> Result<Response> {
        let now = runtime::now();
        let config = match runtime::config(&env) {
            Ok(c) => c,
            Err(e) => {
                worker::console_error!("keygate: configuration error: {e}");
                return to_response(Reply::problem(&Problem::new(500, "MISCONFIGURED", "Misconfigured", e)));
            }
        };
        let mut incoming = match runtime::incoming(&req, &config) {
            Ok(i) => i,
            Err(reply) => return to_response(reply),
        };
        let stores = WorkerStores { env: env.clone(), cache_ttl_ms: config.cache_ttl_ms, now };
        // Usage batches of this isolate that are a second old go out with whatever request comes next.
        for (id, batch) in runtime::due_usage(now) {
            report(&ctx, &env, config.cache_ttl_ms, now, id, Some(batch), None);
        }
        let path = incoming.path.clone();

        if path == "/admin/v1" || path.starts_with("/admin/v1/") {
            match read_body(&mut req, &mut incoming).await {
                Ok(()) => {}
                Err(reply) => return to_response(reply),
            }
            return to_response(crate::admin::route(&stores, &incoming, &config, now).await);
        }
        if path == "/admin" || path.starts_with("/admin/") {
            return console(&env, &req).await;
        }
        match (incoming.method.as_str(), path.as_str()) {
            ("GET", "/v1/health") => {
                let health = Health {
                    status: "ok".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    environment: config.endpoint.environment,
                };
                return to_response(Reply::json(200, &health));
            }
            ("POST", "/v1/verify") => {
                if let Err(reply) = read_body(&mut req, &mut incoming).await {
                    return to_response(reply);
                }
                return to_response(gateway::verify(&stores, &incoming, &config, now).await);
            }
            ("GET", "/v1/whoami") => return to_response(gateway::whoami(&stores, &incoming, &config, now).await),
            (_, p) if p.starts_with("/v1/") || p == "/v1" => {
                return to_response(Reply::problem(&Problem::not_found("No such Keygate route.")));
            }
            _ => {}
        }

        // The gateway.
        let demand = gateway::gateway_demand(&incoming, &config);
        let presented = gateway::presented(&incoming, &config);
        let outcome =
            gateway::authenticate(&stores, presented, &config.endpoint, demand, Consult::WhenRateLimited, now).await;
        let pass = match outcome {
            Ok(pass) => pass,
            Err(refusal) => {
                if let Some((claim, _)) = refusal.key {
                    let error = gateway::error_entry(
                        &incoming,
                        refusal.reply.status,
                        refusal.code.as_str(),
                        &refusal.reply.body,
                        now,
                    );
                    report(&ctx, &env, config.cache_ttl_ms, now, claim.id, None, Some(error));
                }
                return to_response(refusal.reply);
            }
        };
        // Keys without a rate limit are counted here and reported in batches; the object counted the others already.
        let usage =
            if pass.rate.is_none() { runtime::count_usage(pass.record.id, &pass.organization, now) } else { None };
        let (response, error) = match &config.origin {
            None => (to_response(gateway::echo(&incoming, &pass))?, None),
            Some(origin) => match runtime::forward(&req, origin, &config, &gateway::identity_headers(&pass)).await {
                Ok(mut response) => {
                    for (k, v) in pass.rate.iter().flat_map(|(p, d)| crate::reply::rate_headers(p, d)) {
                        let _ = response.headers_mut().set(&k, &v);
                    }
                    let status = response.status_code();
                    let error = (status >= 400).then(|| {
                        let preview = format!("HTTP {status} from the origin");
                        gateway::error_entry(&incoming, status, "ORIGIN_ERROR", &preview, now)
                    });
                    (response, error)
                }
                Err(e) => {
                    worker::console_error!("keygate: origin unreachable: {e}");
                    let p = Problem::new(502, "ORIGIN_UNREACHABLE", "Bad gateway", "The origin did not answer.");
                    let error = gateway::error_entry(&incoming, 502, "ORIGIN_UNREACHABLE", &p.detail, now);
                    (to_response(Reply::problem(&p))?, Some(error))
                }
            },
        };
        if usage.is_some() || error.is_some() {
            report(&ctx, &env, config.cache_ttl_ms, now, pass.record.id, usage, error);
        }
        Ok(response)
    }

    /// Tells the key's object, after the answer, about requests it did not see (usage) or an error.
    fn report(
        ctx: &Context,
        env: &worker::Env,
        cache_ttl_ms: i64,
        now: Timestamp,
        id: keygate_shared::key::KeyId,
        usage: Option<crate::keyobject::UsageBatch>,
        error: Option<keygate_shared::api::RecentError>,
    ) {
        let stores = WorkerStores { env: env.clone(), cache_ttl_ms, now };
        ctx.wait_until(async move {
            use crate::store::Stores;
            let message = ObjectRequest::Report { now, usage, error };
            if let Err(e) = stores.object(&id, &message).await {
                worker::console_error!("keygate: usage report for {id} failed: {e}");
            }
        });
    }

    async fn read_body(req: &mut Request, incoming: &mut Incoming) -> std::result::Result<(), Reply> {
        let too_large = || {
            Reply::problem(&Problem::new(
                413,
                "PAYLOAD_TOO_LARGE",
                "Payload too large",
                "Request bodies are at most 64 KiB.",
            ))
        };
        let declared = req.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(too_large());
        }
        let text = req
            .text()
            .await
            .map_err(|_| Reply::problem(&Problem::bad_request("INVALID_BODY", "The body is not UTF-8 text.")))?;
        if text.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        incoming.body = Some(text);
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
