//! Native tests of the verifier's platform-free handlers, run by `cargo test -p verifier` over the in-memory stores
//! of `store::memory`. `gateway.rs` covers the order of checks, the rate limit, storage failures, verify and whoami;
//! `admin.rs` covers the admin API. Each area has one `check`-style helper and many one-line cases.

mod entry;
mod gateway;
mod lease;
#[cfg(not(target_arch = "wasm32"))]
mod properties;

use std::cell::Cell;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use keygate_shared::decision::Demand;
use keygate_shared::time::Timestamp;
use serde_json::Value;

use crate::config::Config;
use crate::gateway::{Consult, Pass, Refusal, authenticate, presented};
use crate::store::memory::Memory;
use keygate_shared::http::{Incoming, Reply};

/// The fixed "now" of every test; tests that need time to pass move the harness's clock explicitly.
pub const NOW: Timestamp = Timestamp::from_secs(1_795_000_000);

/// Drives a handler's future to completion. With `Memory` nothing ever waits on I/O, so a future that stays pending
/// is a bug in the test setup; it fails loudly instead of spinning forever.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("a handler's future stayed pending over the in-memory stores");
}

/// The configuration of every test: the live environment, no project, the bootstrap token `boot`, and three routes.
pub fn config() -> Config {
    Config::from_vars(|name| match name {
        "KEYGATE_BOOTSTRAP_TOKEN" => Some("boot".into()),
        "KEYGATE_ROUTES" => Some("GET /data/* data:read, POST /streams/* data:write, * /open/* -".into()),
        _ => None,
    })
    .expect("the test configuration is valid")
}

/// A request to a handler; `target` may carry a query string after `?`.
pub fn request(method: &str, target: &str) -> Incoming {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Incoming { method: method.into(), path: path.into(), query: query.into(), headers: vec![], body: None }
}

/// Builder steps for [`Incoming`], so each case stays on one line.
pub trait Build: Sized {
    fn header(self, name: &str, value: &str) -> Self;
    fn body(self, text: &str) -> Self;

    fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    fn json(self, value: Value) -> Self {
        self.body(&value.to_string())
    }
}

impl Build for Incoming {
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    fn body(mut self, text: &str) -> Self {
        self.body = Some(text.to_owned());
        self
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// Asserts that an answer is a success with a JSON body (or none), or an RFC 9457 problem whose `status` is the
/// answer's status.
pub fn assert_well_formed(reply: &Reply) {
    if reply.status >= 400 {
        assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{reply:?}");
        let body = json_of(reply);
        assert_eq!(body["status"], reply.status, "{reply:?}");
        assert!(body["code"].as_str().is_some_and(|c| !c.is_empty()), "{reply:?}");
        assert!(body["detail"].as_str().is_some(), "{reply:?}");
    } else if !reply.body.is_empty() {
        let _ = json_of(reply);
    }
}

/// The JSON body of an answer (problem bodies included).
pub fn json_of(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("the body is not JSON ({e}): {:?}", reply.body))
}

/// The stable `code` of a problem body, or an empty string when the body has none.
pub fn code_of(reply: &Reply) -> String {
    json_of(reply)["code"].as_str().unwrap_or_default().to_owned()
}

/// The in-memory stores, the configuration and a clock that only moves when a test moves it.
#[derive(Debug)]
pub struct Harness {
    pub memory: Memory,
    pub config: Config,
    pub clock: Cell<Timestamp>,
}

impl Harness {
    pub fn new() -> Self {
        Self { memory: Memory::default(), config: config(), clock: Cell::new(NOW) }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.get()
    }

    pub fn set_now(&self, now: Timestamp) {
        self.clock.set(now);
    }

    /// Authenticates `key` on the gateway's endpoint for a request that needs no particular permission.
    pub fn gate(&self, key: &str) -> Result<Pass, Refusal> {
        let req = request("GET", "/anything").bearer(key);
        block_on(authenticate(
            &self.memory,
            presented(&req, &self.config),
            &self.config.endpoint,
            Demand::default(),
            Consult::WhenRateLimited,
            self.now(),
        ))
    }

    /// The code the gateway answers `key` with: `VALID` for a pass.
    pub fn gate_code(&self, key: &str) -> &'static str {
        match self.gate(key) {
            Ok(_) => "VALID",
            Err(refusal) => refusal.code.map_or("STORAGE_UNAVAILABLE", |code| code.as_str()),
        }
    }
}
