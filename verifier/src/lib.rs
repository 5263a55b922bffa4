//! Keygate's Worker. The entry point only routes; every decision lives in `keygate-shared`.

use keygate_shared::api::Health;
use keygate_shared::{Environment, Problem};
use worker::{Context, Env, Request, Response, Result, Router, event};

#[event(start)]
fn start() {
    // A panic reaches the log with its message.
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .get("/v1/health", |_, ctx| {
            let environment = ctx
                .env
                .var("KEYGATE_ENVIRONMENT")
                .ok()
                .and_then(|v| v.to_string().parse::<Environment>().ok())
                .unwrap_or(Environment::Live);
            Response::from_json(&Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into(), environment })
        })
        .or_else_any_method("/*path", |_, _| problem(&Problem::not_found("No such route.")))
        .run(req, env)
        .await
}

fn problem(p: &Problem) -> Result<Response> {
    let mut resp = Response::ok(p.to_json())?.with_status(p.status);
    resp.headers_mut().set("content-type", keygate_shared::problem::CONTENT_TYPE)?;
    Ok(resp)
}
