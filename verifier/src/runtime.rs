//! The platform glue of the gateway: Workers KV, calls to the keys' Durable Objects (the control plane's class, over
//! a binding across scripts), the isolate caches, the service binding to the control plane, and conversions between
//! the Workers types and the platform-free [`Incoming`] / [`Reply`]. No decision is made here.

use std::cell::RefCell;
use std::rc::Rc;

use keygate_shared::credential;
use keygate_shared::http::{Incoming, Reply};
use keygate_shared::key::KeyId;
use keygate_shared::keyobject::{GatewayEnvelope, GatewayReply, GatewayRequest, UsageBatch};
use keygate_shared::model::{KeyRecord, UserOrganizations};
use keygate_shared::requestlog::{Flush, LogBuffer, LoggedRequest};
use keygate_shared::time::Timestamp;
use wasm_bindgen::prelude::*;
use web_sys::{Headers, Response};

use crate::config::Config;
use crate::store::{IsolateCache, RecordCache, StoreError, Stores};
use crate::usage::UsageBuffer;

#[wasm_bindgen]
extern "C" {
    /// The Worker's environment: its variables, secrets and bindings.
    #[derive(Clone)]
    pub type Env;

    /// A request's execution context.
    pub type Context;
    #[wasm_bindgen(method, js_name = waitUntil)]
    fn wait_until(this: &Context, promise: &js_sys::Promise);
}

/// Keeps the request's invocation alive until `work` is done (after the answer has gone out).
pub fn wait_until(ctx: &Context, work: impl std::future::Future<Output = ()> + 'static) {
    ctx.wait_until(&wasm_bindgen_futures::future_to_promise(async move {
        work.await;
        Ok(JsValue::UNDEFINED)
    }));
}

pub const KV_BINDING: &str = "KEYS";
/// The keys' objects, in the control plane's Worker (a Durable Object binding across scripts).
pub const KEY_OBJECTS: &str = "KEY_OBJECTS";
/// The control plane's Worker (a service binding).
pub const CONTROL: &str = "CONTROL";
/// Credential and identity-selection header values longer than this are refused before any parsing (431).
pub const MAX_HEADER_VALUE: usize = 1024;

pub fn now() -> Timestamp {
    Timestamp(js_sys::Date::now() as i64)
}

/// Where KV holds a key's record.
pub fn kv_key(id: &KeyId) -> String {
    format!("key:{id}")
}

thread_local! {
    /// Key records recently read from KV, per isolate.
    static RECORDS: RefCell<RecordCache> = RefCell::new(RecordCache::default());
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
    /// Usage of keys without a rate limit, counted in this isolate and reported in batches.
    static USAGE: RefCell<UsageBuffer> = RefCell::new(UsageBuffer::default());
    /// Users' organizations recently read from KV, per isolate.
    static MEMBERSHIPS: RefCell<IsolateCache<String, UserOrganizations>> = RefCell::new(IsolateCache::default());
    /// Request-log lines of this isolate, until its batch goes to the queue (`None` until the first line).
    static LOG: RefCell<Option<LogBuffer>> = const { RefCell::new(None) };
    /// Leases of leased rate limits held by this isolate (one table for the isolate's life).
    static LEASES: &'static RefCell<crate::lease::Leases> = Box::leak(Box::new(RefCell::new(crate::lease::Leases::default())));
}

/// This isolate's leases.
pub fn leases() -> &'static RefCell<crate::lease::Leases> {
    LEASES.with(|l| *l)
}

/// The isolate cache's answer for a user's organizations, if it is younger than `ttl_ms`.
pub fn cached_memberships(user: &str, now: Timestamp, ttl_ms: i64) -> Option<UserOrganizations> {
    MEMBERSHIPS.with(|c| c.borrow().get(&user.to_owned(), now.millis(), ttl_ms))
}

/// Counts a request of a key without a rate limit; answers a batch to report now, if one is due.
pub fn count_usage(id: KeyId, organization: &str, now: Timestamp) -> Option<UsageBatch> {
    USAGE.with(|u| u.borrow_mut().count(id, organization, now))
}

/// The isolate cache's answer for `id`, if it is younger than `ttl_ms`.
pub fn cached_record(id: &KeyId, now: Timestamp, ttl_ms: i64) -> Option<Option<KeyRecord>> {
    RECORDS.with(|c| c.borrow().get(id, now.millis(), ttl_ms))
}

/// Remembers what KV answered for `id`.
pub fn cache_record(id: KeyId, record: Option<KeyRecord>, now: Timestamp, ttl_ms: i64) {
    if ttl_ms > 0 {
        RECORDS.with(|c| c.borrow_mut().insert(id, record, now.millis()));
    }
}

/// A record as KV stores it.
pub fn parse_record(id: &KeyId, text: &str) -> Result<KeyRecord, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError(format!("bad record {id}: {e}")))
}

/// Batches of this isolate that are due.
pub fn due_usage(now: Timestamp) -> Vec<(KeyId, UsageBatch)> {
    USAGE.with(|u| u.borrow_mut().due(now))
}

/// The request log's queue (`keygate-request-log`, consumed by the control plane).
pub const REQUEST_LOG: &str = "REQUEST_LOG";

/// Keeps a request-log line of a key of `owner`'s; the isolate's batch goes to the queue a second after its first
/// line (the invocation that made that line waits for it: `waitUntil`), or at once when it is full. A gateway with
/// no queue bound (the benchmark's Worker alone) logs nothing.
pub fn log_request(ctx: &Context, env: &Env, owner: &str, line: LoggedRequest) {
    let Ok(queue) = js::binding::<js::Queue>(env, REQUEST_LOG) else { return };
    let flush = LOG.with(|log| {
        let mut log = log.borrow_mut();
        // Line ids are this isolate's random prefix and a counter (a queue may deliver a message twice).
        let buffer =
            log.get_or_insert_with(|| LogBuffer::new(KeyId::generate().map(|id| id.to_string()).unwrap_or_default()));
        buffer.push(owner, line)
    });
    let batch = match flush {
        Flush::Pending => return,
        Flush::Now(batch) => Some(batch),
        Flush::Schedule => None,
    };
    wait_until(ctx, async move {
        let batch = match batch {
            Some(batch) => batch,
            None => {
                sleep(crate::usage::USAGE_FLUSH_MS).await;
                LOG.with(|log| log.borrow_mut().as_mut().map(LogBuffer::take).unwrap_or_default())
            }
        };
        if batch.lines.is_empty() {
            return;
        }
        let Ok(body) = serde_json::to_string(&batch) else { return };
        // A send that fails is tried again a second later, then reported (the lines are lost with this isolate's
        // invocation; the log is a record of traffic, not of state).
        for attempt in 1..=2 {
            let sent = match queue.send(&body) {
                Ok(promise) => wasm_bindgen_futures::JsFuture::from(promise).await.map(|_| ()),
                Err(e) => Err(e),
            };
            match sent {
                Ok(()) => return,
                Err(e) if attempt == 2 => {
                    let lines = batch.lines.len();
                    keygate_glue::log_error(&format!("keygate: {lines} request-log lines not queued: {e:?}"));
                }
                Err(_) => sleep(crate::usage::USAGE_FLUSH_MS).await,
            }
        }
    });
}

/// A promise that settles after `ms` (the invocation's `waitUntil` keeps it alive; no CPU is spent waiting).
async fn sleep(ms: i64) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        js::set_timeout(&resolve, i32::try_from(ms).unwrap_or(i32::MAX));
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// The configuration, read from the environment once per isolate.
pub fn config(env: &Env) -> Result<Rc<Config>, String> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    // Variables and secrets are both strings on the environment object.
    let var = |name: &str| js_sys::Reflect::get(env, &JsValue::from_str(name)).ok().and_then(|v| v.as_string());
    let config = Rc::new(Config::from_vars(var)?);
    CONFIG.with(|c| *c.borrow_mut() = Some(Rc::clone(&config)));
    Ok(config)
}

/// [`Stores`] over the Worker's bindings.
pub struct WorkerStores {
    pub env: Env,
    pub cache_ttl_ms: i64,
    pub now: Timestamp,
    /// A record the entry module has just read from KV for this request: used once, for the key it belongs to.
    pub prefetched: RefCell<Option<String>>,
}

impl WorkerStores {
    pub fn new(env: Env, cache_ttl_ms: i64, now: Timestamp) -> Self {
        Self { env, cache_ttl_ms, now, prefetched: RefCell::new(None) }
    }
}

impl Stores for WorkerStores {
    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        if let Some(record) = cached_record(id, self.now, self.cache_ttl_ms) {
            return Ok(record);
        }
        let prefetched = self.prefetched.borrow_mut().take().and_then(|t| parse_record(id, &t).ok());
        let record = match prefetched.filter(|r| r.id == *id) {
            Some(record) => Some(record),
            None => {
                let text = kv_get(&self.env, &kv_key(id)).await?;
                text.map(|t| parse_record(id, &t)).transpose()?
            }
        };
        cache_record(*id, record.clone(), self.now, self.cache_ttl_ms);
        Ok(record)
    }

    async fn object(&self, id: &KeyId, request: &GatewayRequest) -> Result<GatewayReply, StoreError> {
        let envelope = GatewayEnvelope { id: *id, request };
        call_object(&self.env, id, &envelope).await
    }

    async fn memberships(&self, user: &str) -> Result<UserOrganizations, StoreError> {
        if let Some(found) = cached_memberships(user, self.now, self.cache_ttl_ms) {
            return Ok(found);
        }
        let text = kv_get(&self.env, &format!("user:{user}")).await?;
        let found: UserOrganizations = match text {
            None => UserOrganizations::default(),
            Some(t) => serde_json::from_str(&t).map_err(|e| StoreError(format!("bad memberships of {user}: {e}")))?,
        };
        if self.cache_ttl_ms > 0 {
            MEMBERSHIPS.with(|c| c.borrow_mut().insert(user.to_owned(), found.clone(), self.now.millis()));
        }
        Ok(found)
    }

    fn leases(&self) -> Option<&RefCell<crate::lease::Leases>> {
        Some(leases())
    }
}

/// A KV value as text (`None`: no such key).
async fn kv_get(env: &Env, key: &str) -> Result<Option<String>, StoreError> {
    let err = |e: JsValue| StoreError(format!("KV: {e:?}"));
    let kv = js::binding::<js::Kv>(env, KV_BINDING).map_err(err)?;
    let value = wasm_bindgen_futures::JsFuture::from(kv.get(key).map_err(err)?).await.map_err(err)?;
    Ok(value.as_string())
}

/// One message to the key's object (in the control plane's Worker), answered as JSON.
async fn call_object(env: &Env, id: &KeyId, envelope: &GatewayEnvelope<'_>) -> Result<GatewayReply, StoreError> {
    let err = |e: JsValue| StoreError(format!("{KEY_OBJECTS}: {e:?}"));
    let body = serde_json::to_string(envelope).map_err(|e| StoreError(e.to_string()))?;
    let request = new_request("https://object.keygate/", "POST", None, Some(&JsValue::from_str(&body))).map_err(err)?;
    let namespace = js::binding::<js::Namespace>(env, KEY_OBJECTS).map_err(err)?;
    let stub = namespace.id_from_name(id.as_str()).and_then(|object| namespace.get(&object)).map_err(err)?;
    let response = js::fetched(stub.fetch(&request)).await.map_err(err)?;
    let text = match response.text() {
        Ok(promise) => wasm_bindgen_futures::JsFuture::from(promise).await.ok().and_then(|t| t.as_string()),
        Err(_) => None,
    };
    let text = text.ok_or_else(|| StoreError(format!("{KEY_OBJECTS} answered an unreadable body")))?;
    if response.status() != 200 {
        return Err(StoreError(format!("{KEY_OBJECTS} answered {}: {text}", response.status())));
    }
    serde_json::from_str(&text).map_err(|e| StoreError(format!("{KEY_OBJECTS} answered {text}: {e}")))
}

/// A `Request` made straight from its parts. The gateway talks to its bindings and the origin in the runtime's own
/// `Request`/`Response`: workers-rs's wrappers read `cf` and more on every conversion, and carry their code into
/// every cold start.
fn new_request(
    url: &str,
    method: &str,
    headers: Option<&web_sys::Headers>,
    body: Option<&JsValue>,
) -> Result<web_sys::Request, JsValue> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(headers) = headers {
        init.set_headers(headers);
    }
    if let Some(body) = body {
        init.set_body(body);
    }
    web_sys::Request::new_with_str_and_init(url, &init)
}

/// Hands a request to the control plane (the admin API and the console): same method, URL and headers, and the
/// body the gateway has already read (under its cap).
pub async fn to_control(env: &Env, req: &web_sys::Request, body: Option<&str>) -> Result<Response, JsValue> {
    let headers = Headers::new()?;
    for (name, value) in entries(&req.headers()) {
        // The body is a fresh one: its framing is the runtime's to set.
        if !matches!(name.to_ascii_lowercase().as_str(), "content-length" | "transfer-encoding") {
            headers.append(&name, &value)?;
        }
    }
    let body = body.map(JsValue::from_str);
    let forwarded = new_request(&req.url(), &req.method(), Some(&headers), body.as_ref())?;
    let control = js::binding::<js::Fetcher>(env, CONTROL)?;
    js::fetched(control.fetch(&forwarded)).await
}

/// A `Headers`' names and values.
fn entries(headers: &Headers) -> Vec<(String, String)> {
    let Ok(Some(iter)) = js_sys::try_iter(headers) else { return Vec::new() };
    iter.filter_map(|entry| {
        let pair: js_sys::Array = entry.ok()?.unchecked_into();
        Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
    })
    .collect()
}

/// Drops this isolate's cached record of a key it just saw changed.
pub fn forget_record(id: &KeyId) {
    RECORDS.with(|c| c.borrow_mut().invalidate(id));
}

/// Which headers [`incoming`] and [`read_headers`] copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderSet {
    /// The credential headers (`Authorization`, `x-api-key`, the pair, `KEYGATE_CREDENTIAL_HEADERS`).
    Credentials,
    /// `Keygate-Org` and `Keygate-Customer`: needed only once a credential is well-formed.
    Selectors,
    All,
}

/// Copies the parts of a request the handlers read: only the headers they need. `Err`: a header is oversized (431).
pub fn incoming(req: &web_sys::Request, url: &str, config: &Config, set: HeaderSet) -> Result<Incoming, Reply> {
    let (path, query) = keygate_shared::http::split_url(url);
    let path = keygate_shared::http::canonical_path(path)?.into_owned();
    let mut incoming = Incoming { method: req.method(), path, query: query.to_owned(), ..Incoming::default() };
    read_headers(req, config, set, &mut incoming)?;
    Ok(incoming)
}

/// Adds the headers of `set` to `incoming`.
pub fn read_headers(
    req: &web_sys::Request,
    config: &Config,
    set: HeaderSet,
    incoming: &mut Incoming,
) -> Result<(), Reply> {
    let all = req.headers();
    let found = js::with_names(config, |credentials, selectors| {
        let (first, then) = match set {
            HeaderSet::Credentials => (credentials, &[][..]),
            HeaderSet::Selectors => (selectors, &[][..]),
            HeaderSet::All => (credentials, selectors),
        };
        for (name, js_name) in first.iter().chain(then) {
            if let Some(value) = js::header(&all, js_name) {
                if value.len() > MAX_HEADER_VALUE {
                    return Err(name.clone());
                }
                incoming.headers.push((name.clone(), value));
            }
        }
        Ok(())
    });
    found.map_err(|name| {
        Reply::problem(&keygate_shared::problem::Problem::new(
            431,
            "HEADER_TOO_LARGE",
            "Request header fields too large",
            format!("The `{name}` header is larger than any credential Keygate accepts."),
        ))
    })
}

/// A platform-free reply as a runtime `Response`. Text crossing from Rust into JavaScript is decoded on every
/// crossing, so what repeats is kept as JavaScript values: the `init` of each status and header set, and the
/// whole body when `repeats` (refusals answer the same bytes to every request with the same code and route).
pub fn raw_response(reply: &Reply, repeats: bool) -> Result<web_sys::Response, wasm_bindgen::JsValue> {
    let init = js::init(reply.status, &reply.headers);
    let body = if reply.body.is_empty() {
        wasm_bindgen::JsValue::NULL
    } else if repeats {
        js::text(&reply.body)
    } else {
        wasm_bindgen::JsValue::from_str(&reply.body)
    };
    js::new_response(&body, &init)
}

/// JavaScript values made once per isolate, and the two calls that take them.
mod js {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use wasm_bindgen::prelude::*;

    use keygate_shared::credential;

    use crate::config::Config;
    use crate::gateway::{CLIENT_IP_HEADER, CUSTOMER_HEADER, ORG_HEADER};

    /// Entries kept per cache: enough for every code × route of a configuration; past it, values are made per call.
    const MAX_CACHED: usize = 512;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_name = Headers)]
        type JsHeaders;
        #[wasm_bindgen(method, js_name = get)]
        fn get(this: &JsHeaders, name: &JsValue) -> Option<String>;

        #[wasm_bindgen(js_name = Response)]
        type JsResponse;
        #[wasm_bindgen(constructor, js_class = "Response", catch)]
        fn new(body: &JsValue, init: &JsValue) -> Result<JsResponse, JsValue>;
    }

    #[wasm_bindgen]
    extern "C" {
        /// A Durable Object namespace binding.
        pub type Namespace;
        #[wasm_bindgen(method, catch, js_name = idFromName)]
        pub fn id_from_name(this: &Namespace, name: &str) -> Result<JsValue, JsValue>;
        #[wasm_bindgen(method, catch)]
        pub fn get(this: &Namespace, id: &JsValue) -> Result<Fetcher, JsValue>;

        /// Anything with `fetch(request)`: an object's stub, a service binding.
        pub type Fetcher;
        #[wasm_bindgen(method, catch)]
        pub fn fetch(this: &Fetcher, request: &web_sys::Request) -> Result<js_sys::Promise, JsValue>;

        /// A KV namespace binding.
        pub type Kv;
        #[wasm_bindgen(method, catch)]
        pub fn get(this: &Kv, key: &str) -> Result<js_sys::Promise, JsValue>;

        /// A queue producer binding.
        pub type Queue;
        #[wasm_bindgen(method, catch)]
        pub fn send(this: &Queue, body: &str) -> Result<js_sys::Promise, JsValue>;

        #[wasm_bindgen(js_name = setTimeout)]
        pub fn set_timeout(handler: &js_sys::Function, ms: i32) -> JsValue;

        /// The global `fetch` (to the origin).
        #[wasm_bindgen(catch, js_name = fetch)]
        pub fn global_fetch(request: &web_sys::Request) -> Result<js_sys::Promise, JsValue>;
    }

    /// The binding `name` of the Worker's environment.
    pub fn binding<T: JsCast>(env: &super::Env, name: &str) -> Result<T, JsValue> {
        let found = js_sys::Reflect::get(env, &JsValue::from_str(name))?;
        if found.is_undefined() {
            return Err(JsValue::from_str(&format!("no binding `{name}`")));
        }
        Ok(found.unchecked_into())
    }

    /// The `Response` a `fetch` promise settles with.
    pub async fn fetched(promise: Result<js_sys::Promise, JsValue>) -> Result<web_sys::Response, JsValue> {
        Ok(wasm_bindgen_futures::JsFuture::from(promise?).await?.unchecked_into())
    }

    /// `Headers.get` with a name that is already a JavaScript string.
    pub fn header(headers: &web_sys::Headers, name: &JsValue) -> Option<String> {
        headers.unchecked_ref::<JsHeaders>().get(name)
    }

    /// `new Response(body, init)` with values that are already JavaScript values.
    pub fn new_response(body: &JsValue, init: &JsValue) -> Result<web_sys::Response, JsValue> {
        JsResponse::new(body, init).map(JsCast::unchecked_into)
    }

    type Names = Vec<(String, JsValue)>;
    /// A response's status and headers.
    type Head = (u16, Vec<(String, String)>);

    thread_local! {
        static NAMES: RefCell<Option<(Names, Names)>> = const { RefCell::new(None) };
        static INITS: RefCell<HashMap<Head, JsValue>> = RefCell::new(HashMap::new());
        static TEXTS: RefCell<HashMap<String, JsValue>> = RefCell::new(HashMap::new());
    }

    /// The header names a request is read by, as Rust and JavaScript strings: the credential headers, and
    /// `Keygate-Org` and `Keygate-Customer`.
    pub fn with_names<R>(config: &Config, f: impl FnOnce(&[(String, JsValue)], &[(String, JsValue)]) -> R) -> R {
        let both = |names: &[&str]| names.iter().map(|n| ((*n).to_owned(), JsValue::from_str(n))).collect::<Names>();
        NAMES.with(|names| {
            if names.borrow().is_none() {
                let credentials: Vec<&str> = credential::header_names(&config.extra_headers).collect();
                *names.borrow_mut() =
                    Some((both(&credentials), both(&[ORG_HEADER, CUSTOMER_HEADER, CLIENT_IP_HEADER])));
            }
            let names = names.borrow();
            let (credentials, selectors) =
                names.as_ref().map(|(c, s)| (c.as_slice(), s.as_slice())).unwrap_or_default();
            f(credentials, selectors)
        })
    }

    /// `{ status, headers }` for `new Response`, made once per status and header set.
    pub fn init(status: u16, headers: &[(String, String)]) -> JsValue {
        let head = (status, headers.to_vec());
        remembered(
            &INITS,
            &head,
            || head.clone(),
            || {
                let init = js_sys::Object::new();
                let fields = js_sys::Object::new();
                for (k, v) in headers {
                    let _ = js_sys::Reflect::set(&fields, &JsValue::from_str(k), &JsValue::from_str(v));
                }
                let _ = js_sys::Reflect::set(&init, &JsValue::from_str("status"), &JsValue::from(status));
                let _ = js_sys::Reflect::set(&init, &JsValue::from_str("headers"), &fields);
                JsValue::from(init)
            },
        )
    }

    /// A JavaScript string of `text`, made once.
    pub fn text(text: &str) -> JsValue {
        remembered(&TEXTS, text, || text.to_owned(), || JsValue::from_str(text))
    }

    /// The value `cache` holds for `lookup`, or `make`'s, kept under `key()` while the cache has room.
    fn remembered<K, Q>(
        cache: &'static std::thread::LocalKey<RefCell<HashMap<K, JsValue>>>,
        lookup: &Q,
        key: impl FnOnce() -> K,
        make: impl FnOnce() -> JsValue,
    ) -> JsValue
    where
        K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        cache.with(|cache| {
            if let Some(value) = cache.borrow().get(lookup) {
                return value.clone();
            }
            let value = make();
            let mut cache = cache.borrow_mut();
            if cache.len() < MAX_CACHED {
                cache.insert(key(), value.clone());
            }
            value
        })
    }
}

pub use keygate_glue::to_response;

/// Bodies up to this size are kept for a recent-error preview (larger ones are not buffered for it).
pub const PREVIEW_BODY_MAX: u32 = 64 * 1024;

fn declared_length(headers: &web_sys::Headers) -> Option<u32> {
    headers.get("content-length").ok().flatten().and_then(|l| l.trim().parse::<u32>().ok())
}

/// The text of a body for a recent-error preview when its declared length is within [`PREVIEW_BODY_MAX`]; otherwise
/// a note of what was not kept. `text` reads (and consumes) the body.
pub async fn body_text(headers: &web_sys::Headers, text: impl FnOnce() -> Result<js_sys::Promise, JsValue>) -> String {
    match declared_length(headers) {
        Some(0) => String::new(),
        Some(n) if n <= PREVIEW_BODY_MAX => match text() {
            Ok(promise) => {
                wasm_bindgen_futures::JsFuture::from(promise).await.ok().and_then(|t| t.as_string()).unwrap_or_default()
            }
            Err(_) => String::new(),
        },
        Some(n) => format!("({n} bytes, not kept)"),
        None => String::from("(a body of unknown length, not kept)"),
    }
}

/// The bodies of a failed forward, for the error's previews: the request's kept copy and the origin's answer.
pub async fn failure_bodies(kept: Option<web_sys::Request>, answer: Option<web_sys::Response>) -> (String, String) {
    let request = match &kept {
        Some(copy) => body_text(&copy.headers(), || copy.text()).await,
        None => String::new(),
    };
    let answer = match &answer {
        Some(copy) => body_text(&copy.headers(), || copy.text()).await,
        None => String::new(),
    };
    (request, answer)
}

/// Whether a request of `method` may carry a body worth previewing.
pub fn has_body(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// A copy of a request whose small body a recent-error entry may read later (the runtime tees the stream); a body
/// over [`PREVIEW_BODY_MAX`], or of unknown length, is not copied.
pub fn keep_for_preview(req: &web_sys::Request) -> Option<web_sys::Request> {
    let small = declared_length(&req.headers()).is_some_and(|n| n > 0 && n <= PREVIEW_BODY_MAX);
    (has_body(&req.method()) && small).then(|| req.clone().ok()).flatten()
}

/// Forwards an authenticated gateway request to the origin: same method, the canonical path that was matched
/// against the route rules, the query and the body; the credential headers removed, identity headers set (any sent
/// by the client are replaced).
pub async fn forward(
    req: &web_sys::Request,
    incoming: &Incoming,
    origin: &str,
    config: &Config,
    identity: &[(String, String)],
    answer_headers: &[(String, String)],
) -> Result<Response, JsValue> {
    let mut target = format!("{}{}", origin.trim_end_matches('/'), incoming.path);
    if !incoming.query.is_empty() {
        target.push('?');
        target.push_str(&incoming.query);
    }
    let headers = Headers::new()?;
    for (name, value) in entries(&req.headers()) {
        let lower = name.to_ascii_lowercase();
        // Authorization stays when it is not ours (another scheme, for the origin); other credential headers and
        // client-sent identity headers go.
        let ours = if lower == credential::AUTHORIZATION {
            credential::bearer_token(&value).is_some()
        } else {
            credential::header_names(&config.extra_headers).any(|h| h == lower) || lower.starts_with("keygate-")
        };
        if !ours {
            headers.append(&name, &value)?;
        }
    }
    for (name, value) in identity {
        headers.set(name, value)?;
    }
    let method = req.method();
    let body = (!matches!(method.as_str(), "GET" | "HEAD")).then(|| req.body()).flatten();
    let request = new_request(&target, &method, Some(&headers), body.map(JsValue::from).as_ref())?;
    let fetched = js::fetched(js::global_fetch(&request)).await?;
    if answer_headers.is_empty() {
        return Ok(fetched);
    }
    // The origin's headers are immutable: the answer is a copy with the gateway's headers added (same body stream).
    let headers = web_sys::Headers::new_with_headers(&fetched.headers())?;
    for (name, value) in answer_headers {
        headers.set(name, value)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(fetched.status());
    init.set_status_text(&fetched.status_text());
    init.set_headers(&headers);
    let body = fetched.body();
    Response::new_with_opt_readable_stream_and_init(body.as_ref(), &init)
}
