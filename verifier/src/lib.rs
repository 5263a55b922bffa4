//! Keygate's gateway Worker: the hot path, and nothing else (the keys' Durable Objects are the control plane's class,
//! reached over a binding across scripts). The entry point reads the clock once, sorts
//! the request by path prefix and hands it to a handler; every decision lives in `keygate-shared` and the
//! platform-free modules below.
//!
//! - `/admin/*`: handed to the control plane (a Worker of its own, `control/`) over a service binding: the gateway
//!   stays the one public address.
//! - `/v1/health`, `/v1/verify`, `/v1/whoami`: `gateway.rs`.
//! - everything else: the gateway — authenticate, then forward to `ORIGIN_URL` or echo the identity.

pub mod config;
pub mod gateway;
pub mod lease;
#[cfg(target_arch = "wasm32")]
mod runtime;
pub mod store;
pub mod usage;

#[cfg(test)]
mod tests;

#[cfg(target_arch = "wasm32")]
mod entry {
    //! The three functions `verifier/entry.mjs` calls. The hot path is synchronous: [`gate`] answers what needs no
    //! storage (and passes from the isolate cache); when a record must be read, the entry module awaits KV itself
    //! and [`gate_record`] decides. Everything else (the admin API, the console, verify, whoami, keys with a rate
    //! limit, forwarding to an origin) goes through the async [`serve`].

    use std::rc::Rc;

    use keygate_shared::api::Health;
    use keygate_shared::decision::Claim;
    use keygate_shared::model::KeyRecord;
    use keygate_shared::problem::Problem;
    use keygate_shared::time::Timestamp;
    use wasm_bindgen::prelude::*;
    use web_sys::Response;

    use keygate_shared::http::{Incoming, Reply, is_under};
    use keygate_shared::keyobject::{GatewayRequest, Report};

    use crate::config::Config;
    use crate::gateway::{self, Checked, Consult};
    use crate::runtime::{self, Context, Env, HeaderSet, WorkerStores, to_response};

    type Result<T> = std::result::Result<T, JsValue>;

    #[wasm_bindgen(start)]
    fn start() {
        // A panic reaches the log with its message; the wasm-bindgen glue then reinstantiates the module on the next
        // call (see `verifier/entry.mjs`).
        console_error_panic_hook::set_once();
        // After a panic the instance is dead: the glue builds a fresh one on the next call.
        wasm_bindgen::handler::set_on_abort(wasm_bindgen::handler::schedule_reinit);
    }

    /// The gateway's first step, with no storage read: a `Response` (a refusal of steps 1–4, or an answer from the
    /// isolate cache), a `string` (the KV key to read: pass its value to [`gate_record`]), or `undefined` (call
    /// [`serve`]).
    #[wasm_bindgen]
    pub fn gate(request: &web_sys::Request, env: &Env, ctx: Context) -> JsValue {
        let (config, incoming, claim) = match claim(request, env) {
            Ok(found) => found,
            Err(step) => return step,
        };
        let now = runtime::now();
        match runtime::cached_record(&claim.id, now, config.cache_ttl_ms) {
            Some(record) => decide(ctx, env, &config, &incoming, &claim, record, now),
            None => JsValue::from(runtime::kv_key(&claim.id)),
        }
    }

    /// The gateway's second step, with the record the entry module read from KV (`None`: no such key).
    #[wasm_bindgen]
    pub fn gate_record(request: &web_sys::Request, env: &Env, ctx: Context, record: Option<String>) -> JsValue {
        let (config, incoming, claim) = match claim(request, env) {
            Ok(found) => found,
            Err(step) => return step,
        };
        let now = runtime::now();
        let record = match record.map(|text| runtime::parse_record(&claim.id, &text)).transpose() {
            Ok(record) => record,
            // `serve` reads it again and answers 503 if it is still unreadable.
            Err(_) => return JsValue::UNDEFINED,
        };
        runtime::cache_record(claim.id, record.clone(), now, config.cache_ttl_ms);
        decide(ctx, env, &config, &incoming, &claim, record, now)
    }

    /// Steps 1–4 of a gateway request, or what to answer instead.
    fn claim(request: &web_sys::Request, env: &Env) -> Result<(Rc<Config>, Incoming, Claim)> {
        // A configuration error is answered by `serve`.
        let config = runtime::config(env).map_err(|_| JsValue::UNDEFINED)?;
        let url = request.url();
        let raw = keygate_shared::http::split_url(&url).0;
        config.panic_if_asked(raw, crate::config::SYNC_PANIC_PATH);
        let path = keygate_shared::http::canonical_path(raw).map_err(|reply| answer(&reply, true))?;
        if !gateway::is_gateway_path(&path) {
            return Err(JsValue::UNDEFINED);
        }
        let mut incoming =
            runtime::incoming(request, &url, &config, HeaderSet::Credentials).map_err(|reply| answer(&reply, false))?;
        let demand = gateway::gateway_demand(&incoming, &config);
        let claim = gateway::check_presented(gateway::presented(&incoming, &config), &config.endpoint, demand)
            .map_err(|refusal| answer(&refusal.reply, true))?;
        // `Keygate-Org` and `Keygate-Customer` matter only from here on.
        runtime::read_headers(request, &config, HeaderSet::Selectors, &mut incoming)
            .map_err(|reply| answer(&reply, false))?;
        Ok((config, incoming, claim))
    }

    /// Steps 5–7 on the record; a pass of a key without a rate limit is answered here when there is no origin.
    fn decide(
        ctx: Context,
        env: &Env,
        config: &Config,
        incoming: &Incoming,
        claim: &Claim,
        record: Option<KeyRecord>,
        now: Timestamp,
    ) -> JsValue {
        let demand = gateway::gateway_demand(incoming, config);
        // A request naming another organization needs the owner's organizations: from the isolate cache, or `serve`
        // reads them.
        let memberships = match &record {
            Some(r) if keygate_shared::decision::needs_memberships(r, demand) => {
                match runtime::cached_memberships(&r.owner, now, config.cache_ttl_ms) {
                    Some(m) => m.organizations,
                    None => return JsValue::UNDEFINED,
                }
            }
            _ => Vec::new(),
        };
        flush_usage(&ctx, env, config.cache_ttl_ms, now);
        let checked =
            gateway::check_record(claim, record, &config.endpoint, demand, &memberships, Consult::WhenRateLimited, now);
        match checked {
            // A refusal to log with its request's body: reading the body awaits, so `serve` does it.
            Err(refusal) if refusal.key.is_some() && runtime::has_body(&incoming.method) => JsValue::UNDEFINED,
            // A canary's trip records headers this path does not read: `serve` logs it.
            Err(refusal) if refusal.tripped() => JsValue::UNDEFINED,
            Err(refusal) => {
                refused(&ctx, env, config, incoming, &refusal, "", now);
                log_refusal(&ctx, env, incoming, &refusal, now);
                answer(&refusal.reply, true)
            }
            // A key of an identity with a shared limit takes both limits' admissions in `serve`, together.
            Ok(Checked::Pass(pass)) if config.origin.is_none() && gateway::shared_limit(&pass.record).is_none() => {
                echo(&ctx, env, config, incoming, &pass, now)
            }
            // A leased rate limit with a live lease in this isolate: admitted here, with no object call.
            Ok(Checked::Consult { record, organization })
                if config.origin.is_none() && gateway::shared_limit(&record).is_none() =>
            {
                // A usage-limited key's object counts every use: never admitted from a lease.
                let leased = record.rate_limit.filter(|p| p.leased() && record.usage_limit.is_none());
                let Some(policy) = leased else { return JsValue::UNDEFINED };
                let Some(decision) = runtime::leases().borrow_mut().take(&claim.id, &policy, now) else {
                    return JsValue::UNDEFINED;
                };
                let pass = gateway::Pass::leased(record, organization, policy, decision, demand);
                echo(&ctx, env, config, incoming, &pass, now)
            }
            // The key's object (rate limit) or the origin: both await, so `serve` does them.
            Ok(_) => JsValue::UNDEFINED,
        }
    }

    /// A pass answered with the identity echo (no origin), counted in the isolate's usage batch.
    fn echo(
        ctx: &Context,
        env: &Env,
        config: &Config,
        incoming: &Incoming,
        pass: &gateway::Pass,
        now: Timestamp,
    ) -> JsValue {
        if let Some(request) = pass.uncounted() {
            count(ctx, env, config.cache_ttl_ms, now, &request);
        }
        let used = config.routes.access(&incoming.method, &incoming.path).permission();
        log(ctx, env, incoming, pass.subject(), 200, None, used, now);
        answer(&echo_reply(config, incoming, pass), false)
    }

    /// A request of a key that proved itself goes to the key's request log (`started`: when it arrived); a pass
    /// names the permission its route needed (`used`), for the key's least-privilege suggestions.
    #[allow(clippy::too_many_arguments)]
    fn log(
        ctx: &Context,
        env: &Env,
        incoming: &Incoming,
        subject: Option<gateway::Subject>,
        status: u16,
        code: Option<&str>,
        used: Option<&keygate_shared::model::Permission>,
        started: Timestamp,
    ) {
        if let Some(subject) = subject {
            let mut line = gateway::log_line(incoming, &subject, status, code, started, runtime::now());
            line.permission = used.map(ToString::to_string);
            runtime::log_request(ctx, env, &subject.owner, line);
        }
    }

    fn log_refusal(ctx: &Context, env: &Env, incoming: &Incoming, refusal: &gateway::Refusal, started: Timestamp) {
        let code = refusal.code.map(keygate_shared::Code::as_str);
        log(ctx, env, incoming, refusal.logged.clone(), refusal.reply.status, code, None, started);
    }

    /// A canary key's trip: its log line, with the caller's user agent and country (where Cloudflare knows it).
    fn trip(
        ctx: &Context,
        env: &Env,
        req: &web_sys::Request,
        incoming: &Incoming,
        refusal: &gateway::Refusal,
        started: Timestamp,
    ) {
        if let Some(subject) = &refusal.logged {
            let line =
                gateway::log_line(incoming, subject, refusal.reply.status, Some("NOT_FOUND"), started, runtime::now());
            log_trip(ctx, env, req, gateway::Trip { owner: subject.owner.clone(), line });
        }
    }

    fn log_trip(ctx: &Context, env: &Env, req: &web_sys::Request, trip: gateway::Trip) {
        let headers = req.headers();
        let mut line = trip.line;
        line.user_agent = headers.get("user-agent").ok().flatten();
        line.country = headers.get("cf-ipcountry").ok().flatten();
        runtime::log_request(ctx, env, &trip.owner, line);
    }

    /// `verify`'s and `whoami`'s answer, after counting what the keys' objects did not and logging a canary's trip.
    fn settle(
        ctx: &Context,
        env: &Env,
        config: &Config,
        req: &web_sys::Request,
        answered: gateway::Answered,
        now: Timestamp,
    ) -> Result<Response> {
        for request in answered.uncounted {
            count(ctx, env, config.cache_ttl_ms, now, &request);
        }
        if let Some(trip) = answered.trip {
            log_trip(ctx, env, req, trip);
        }
        to_response(answered.reply)
    }

    /// The identity echo of a pass (it carries the rate-limit headers), and the trace header when asked.
    fn echo_reply(config: &Config, incoming: &Incoming, pass: &gateway::Pass) -> Reply {
        let mut reply = gateway::echo(incoming, pass);
        reply.headers.extend(trace_header(config, pass));
        reply
    }

    /// `KEYGATE_TEST_TRACE=1` (tests only): who admitted a rate-limited pass, the isolate's lease or the key's object.
    fn trace_header(config: &Config, pass: &gateway::Pass) -> Option<(String, String)> {
        let by = if pass.counted { "object" } else { "lease" };
        (config.test_trace && pass.rate.is_some()).then(|| (crate::config::TRACE_HEADER.to_owned(), by.to_owned()))
    }

    /// `repeats`: the same bytes answer many requests (refusals), so the body is kept as a JavaScript string.
    fn answer(reply: &Reply, repeats: bool) -> JsValue {
        runtime::raw_response(reply, repeats).map_or(JsValue::UNDEFINED, JsValue::from)
    }

    /// Counts a request its key's object did not see; the isolate's batch for the key goes out when it is due.
    fn count(ctx: &Context, env: &Env, cache_ttl_ms: i64, now: Timestamp, request: &gateway::Uncounted) {
        if let Some(batch) = runtime::count_usage(request.id, &request.organization, now) {
            report(ctx, env, cache_ttl_ms, now, request.id, Some(batch), None);
        }
    }

    /// Usage batches of this isolate that are a second old go out with the next request that reaches a record.
    fn flush_usage(ctx: &Context, env: &Env, cache_ttl_ms: i64, now: Timestamp) {
        for (id, batch) in runtime::due_usage(now) {
            report(ctx, env, cache_ttl_ms, now, id, Some(batch), None);
        }
    }

    /// A refusal of a request that proved it holds the key goes to the key's recent errors.
    fn refused(
        ctx: &Context,
        env: &Env,
        config: &Config,
        incoming: &Incoming,
        refusal: &gateway::Refusal,
        request_body: &str,
        now: Timestamp,
    ) {
        if let (Some((claim, _)), Some(code)) = (&refusal.key, refusal.code) {
            let status = refusal.reply.status;
            let error = gateway::error_entry(incoming, status, code.as_str(), request_body, &refusal.reply.body, now);
            report(ctx, env, config.cache_ttl_ms, now, claim.id, None, Some(error));
        }
    }

    /// Every request the synchronous steps did not answer. `prefetched`: the KV value the entry module has just
    /// read for this request's key, so it is not read twice.
    #[wasm_bindgen]
    pub async fn serve(
        request: web_sys::Request,
        env: Env,
        ctx: Context,
        prefetched: Option<String>,
    ) -> Result<Response> {
        match fetch(request, env, ctx, prefetched).await {
            Ok(response) => Ok(response),
            Err(e) => {
                keygate_glue::log_error(&format!("keygate: {e:?}"));
                to_response(Reply::problem(&Problem::internal()))
            }
        }
    }

    async fn fetch(req: web_sys::Request, env: Env, ctx: Context, prefetched: Option<String>) -> Result<Response> {
        let now = runtime::now();
        let config = match runtime::config(&env) {
            Ok(c) => c,
            Err(e) => {
                keygate_glue::log_error(&format!("keygate: configuration error: {e}"));
                return to_response(Reply::problem(&Problem::new(500, "MISCONFIGURED", "Misconfigured", e)));
            }
        };
        let url = req.url();
        let mut incoming = match runtime::incoming(&req, &url, &config, HeaderSet::All) {
            Ok(i) => i,
            Err(reply) => return to_response(reply),
        };
        let stores = WorkerStores::new(env.clone(), config.cache_ttl_ms, now);
        *stores.prefetched.borrow_mut() = prefetched;
        flush_usage(&ctx, &env, config.cache_ttl_ms, now);
        let path = incoming.path.clone();
        config.panic_if_asked(&path, crate::config::ASYNC_PANIC_PATH);

        // The console, the admin API and leak reports are the control plane's: handed over with the body read here
        // under the same cap (a chunked upload past it is refused before anything is buffered or forwarded).
        if is_under(&path, "/admin") || path == "/v1/leaks" {
            if !matches!(incoming.method.as_str(), "GET" | "HEAD")
                && let Err(reply) = read_body(&req, &mut incoming).await
            {
                return to_response(reply);
            }
            let response = runtime::to_control(&env, &req, incoming.body.as_deref()).await?;
            // This isolate sees its own admin changes to a key at once (others within the isolate cache's TTL).
            if response.status() < 300
                && let Some(id) = gateway::changed_key(&incoming.method, &path)
            {
                runtime::forget_record(&id);
            }
            return Ok(response);
        }
        match (incoming.method.as_str(), path.as_str()) {
            ("GET", "/v1/health") => {
                let health = Health {
                    status: "ok".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    environment: config.endpoint.environment,
                    project: config.endpoint.project.clone(),
                    organization: config.endpoint.organization.clone(),
                    routes: config.routes_text.clone(),
                    credential_headers: config.extra_headers.clone(),
                };
                return to_response(Reply::json(200, &health));
            }
            ("POST", "/v1/verify") => {
                if let Err(reply) = read_body(&req, &mut incoming).await {
                    return to_response(reply);
                }
                let answered = gateway::verify(&stores, &incoming, &config, now).await;
                return settle(&ctx, &env, &config, &req, answered, now);
            }
            ("GET", "/v1/whoami") => {
                let answered = gateway::whoami(&stores, &incoming, &config, now).await;
                return settle(&ctx, &env, &config, &req, answered, now);
            }
            (_, p) if is_under(p, "/v1") => {
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
                // The body of a request that proved it holds the key is kept (bounded, redacted) with the error.
                let body = if refusal.key.is_some() && req.body().is_some() {
                    runtime::body_text(&req.headers(), || req.text()).await
                } else {
                    String::new()
                };
                refused(&ctx, &env, &config, &incoming, &refusal, &body, now);
                if refusal.tripped() {
                    trip(&ctx, &env, &req, &incoming, &refusal, now);
                } else {
                    log_refusal(&ctx, &env, &incoming, &refusal, now);
                }
                return to_response(refusal.reply);
            }
        };
        // Keys without a rate limit are counted here and reported in batches; the object counted the others already.
        let usage = pass.uncounted().and_then(|request| runtime::count_usage(request.id, &request.organization, now));
        let (response, error) = match &config.origin {
            None => (to_response(echo_reply(&config, &incoming, &pass))?, None),
            Some(origin) => {
                let identity = gateway::identity_headers(&pass);
                // The origin's answer, with the key's rate-limit headers added.
                let rate = pass.rate.iter().flat_map(|(p, d)| keygate_shared::http::rate_headers(p, d));
                let added: Vec<(String, String)> =
                    rate.chain(trace_header(&config, &pass)).chain(pass.remaining_header()).collect();
                // A copy of a small request body, read only if the origin fails (for the error's preview).
                let kept = runtime::keep_for_preview(&req);
                let (response, failure) = match runtime::forward(&req, &incoming, origin, &config, &identity, &added)
                    .await
                {
                    Ok(response) if response.status() >= 400 => {
                        let copy = response.clone().ok();
                        let failure = (response.status(), "ORIGIN_ERROR", copy);
                        (response, Some(failure))
                    }
                    Ok(response) => (response, None),
                    Err(e) => {
                        keygate_glue::log_error(&format!("keygate: origin unreachable: {e:?}"));
                        let p = Problem::new(502, "ORIGIN_UNREACHABLE", "Bad gateway", "The origin did not answer.");
                        (to_response(Reply::problem(&p))?, Some((502, "ORIGIN_UNREACHABLE", None)))
                    }
                };
                let error = match failure {
                    Some((status, code, copy)) => {
                        let (body, answer) = runtime::failure_bodies(kept, copy).await;
                        let answer = format!("HTTP {status} from the origin\n\n{answer}");
                        Some(gateway::error_entry(&incoming, status, code, &body, &answer, now))
                    }
                    None => None,
                };
                (response, error)
            }
        };
        let status = response.status();
        let used = config.routes.access(&incoming.method, &incoming.path).permission();
        log(&ctx, &env, &incoming, pass.subject(), status, error.as_ref().map(|e| e.code.as_str()), used, now);
        if usage.is_some() || error.is_some() {
            report(&ctx, &env, config.cache_ttl_ms, now, pass.record.id, usage, error);
        }
        Ok(response)
    }

    /// Tells the key's object, after the answer, about requests it did not see (usage) or an error.
    fn report(
        ctx: &Context,
        env: &Env,
        cache_ttl_ms: i64,
        now: Timestamp,
        id: keygate_shared::key::KeyId,
        usage: Option<keygate_shared::keyobject::UsageBatch>,
        error: Option<keygate_shared::api::RecentError>,
    ) {
        let stores = WorkerStores::new(env.clone(), cache_ttl_ms, now);
        runtime::wait_until(ctx, async move {
            use crate::store::Stores;
            let message = GatewayRequest::Report(Report { now, usage, error });
            if let Err(e) = stores.object(&id, &message).await {
                keygate_glue::log_error(&format!("keygate: usage report for {id} failed: {e}"));
            }
        });
    }

    /// The body, read under the cap whatever its framing (see `keygate_glue::read_body`).
    async fn read_body(req: &web_sys::Request, incoming: &mut Incoming) -> std::result::Result<(), Reply> {
        incoming.body = Some(keygate_glue::read_body(req).await?);
        Ok(())
    }
}
