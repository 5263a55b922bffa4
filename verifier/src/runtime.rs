//! The platform glue: Workers KV, the two Durable Object classes, the isolate cache, and conversions between the
//! Workers types and the platform-free [`Incoming`] / [`Reply`]. No decision is made here.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use keygate_shared::api::RecentError;
use keygate_shared::credential;
use keygate_shared::key::KeyId;
use keygate_shared::model::KeyRecord;
use keygate_shared::time::Timestamp;
use serde::{Deserialize, Serialize};
use worker::{Date, DurableObject, Env, Headers, Method, Request, RequestInit, Response, State, durable_object};

use crate::config::Config;
use crate::directory::{Directory, DirectoryReply, DirectoryRequest};
use crate::gateway::{CUSTOMER_HEADER, ORG_HEADER};
use crate::keyobject::{ObjectReply, ObjectRequest, ObjectState, UsageBatch, UsageBuffer};
use crate::reply::{Incoming, Reply};
use crate::store::{RecordCache, StoreError, Stores};

pub const KV_BINDING: &str = "KEYS";
pub const KEY_OBJECTS: &str = "KEY_OBJECTS";
pub const DIRECTORY: &str = "DIRECTORY";
/// Credential and identity-selection header values longer than this are refused before any parsing (431).
pub const MAX_HEADER_VALUE: usize = 1024;

pub fn now() -> Timestamp {
    Timestamp(Date::now().as_millis() as i64)
}

fn kv_key(id: &KeyId) -> String {
    format!("key:{id}")
}

thread_local! {
    /// Key records recently read from KV, per isolate.
    static RECORDS: RefCell<RecordCache> = RefCell::new(RecordCache::default());
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
    /// Usage of keys without a rate limit, counted in this isolate and reported in batches.
    static USAGE: RefCell<UsageBuffer> = RefCell::new(UsageBuffer::default());
}

/// Counts a request of a key without a rate limit; answers a batch to report now, if one is due.
pub fn count_usage(id: KeyId, organization: &str, now: Timestamp) -> Option<UsageBatch> {
    USAGE.with(|u| u.borrow_mut().count(id, organization, now))
}

/// Batches of this isolate that are due.
pub fn due_usage(now: Timestamp) -> Vec<(KeyId, UsageBatch)> {
    USAGE.with(|u| u.borrow_mut().due(now))
}

/// The configuration, read from the environment once per isolate.
pub fn config(env: &Env) -> Result<Rc<Config>, String> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    let var =
        |name: &str| env.var(name).ok().map(|v| v.to_string()).or_else(|| env.secret(name).ok().map(|s| s.to_string()));
    let config = Rc::new(Config::from_vars(var)?);
    CONFIG.with(|c| *c.borrow_mut() = Some(Rc::clone(&config)));
    Ok(config)
}

/// [`Stores`] over the Worker's bindings.
pub struct WorkerStores {
    pub env: Env,
    pub cache_ttl_ms: i64,
    pub now: Timestamp,
}

impl Stores for WorkerStores {
    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let now = self.now.millis();
        let cached = RECORDS.with(|c| c.borrow().get(id, now, self.cache_ttl_ms));
        if let Some(record) = cached {
            return Ok(record);
        }
        let kv = self.env.kv(KV_BINDING).map_err(|e| StoreError(e.to_string()))?;
        let text = kv.get(&kv_key(id)).text().await.map_err(|e| StoreError(e.to_string()))?;
        let record = match text {
            Some(t) => Some(serde_json::from_str(&t).map_err(|e| StoreError(format!("bad record {id}: {e}")))?),
            None => None,
        };
        RECORDS.with(|c| c.borrow_mut().insert(*id, record.clone(), now, self.cache_ttl_ms));
        Ok(record)
    }

    async fn object(&self, id: &KeyId, request: &ObjectRequest) -> Result<ObjectReply, StoreError> {
        if matches!(request, ObjectRequest::Put { .. } | ObjectRequest::Delete) {
            // This isolate sees its own admin changes at once.
            RECORDS.with(|c| c.borrow_mut().invalidate(id));
        }
        let envelope = Envelope { id: *id, request: request.clone() };
        call_object(&self.env, KEY_OBJECTS, id.as_str(), &envelope).await
    }

    async fn directory(&self, request: &DirectoryRequest) -> Result<DirectoryReply, StoreError> {
        call_object(&self.env, DIRECTORY, "directory", request).await
    }
}

async fn call_object<T: Serialize, R: for<'de> Deserialize<'de>>(
    env: &Env,
    binding: &str,
    name: &str,
    message: &T,
) -> Result<R, StoreError> {
    let err = |e: worker::Error| StoreError(e.to_string());
    let stub = env.durable_object(binding).and_then(|ns| ns.id_from_name(name)?.get_stub()).map_err(err)?;
    let body = serde_json::to_string(message).map_err(|e| StoreError(e.to_string()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let request = Request::new_with_init("https://object.keygate/", &init).map_err(err)?;
    let mut response = stub.fetch_with_request(request).await.map_err(err)?;
    if response.status_code() != 200 {
        let text = response.text().await.unwrap_or_default();
        return Err(StoreError(format!("{binding} answered {}: {text}", response.status_code())));
    }
    response.json().await.map_err(err)
}

/// A message to a key's object, with the id it serves (the object writes KV under it).
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    id: KeyId,
    request: ObjectRequest,
}

/// Copies the parts of a request the handlers read: only the headers they need. `None`: a header is oversized.
pub fn incoming(req: &Request, config: &Config) -> Result<Incoming, Reply> {
    let url = req.inner().url();
    let (path, query) = crate::reply::split_url(&url);
    let mut headers = Vec::with_capacity(4);
    let names = credential::header_names(&config.extra_headers).chain([ORG_HEADER, CUSTOMER_HEADER]);
    for name in names {
        if let Ok(Some(value)) = req.headers().get(name) {
            if value.len() > MAX_HEADER_VALUE {
                return Err(Reply::problem(&keygate_shared::problem::Problem::new(
                    431,
                    "HEADER_TOO_LARGE",
                    "Request header fields too large",
                    format!("The `{name}` header is larger than any credential Keygate accepts."),
                )));
            }
            headers.push((name.to_owned(), value));
        }
    }
    Ok(Incoming { method: req.inner().method(), path: path.to_owned(), query: query.to_owned(), headers, body: None })
}

pub fn to_response(reply: Reply) -> worker::Result<Response> {
    let headers = Headers::new();
    for (k, v) in &reply.headers {
        headers.append(k, v)?;
    }
    let response = if reply.body.is_empty() { Response::empty()? } else { Response::ok(reply.body)? };
    Ok(response.with_status(reply.status).with_headers(headers))
}

/// Forwards an authenticated gateway request to the origin: same method, path, query and body; the credential
/// headers removed, identity headers set (any sent by the client are replaced).
pub async fn forward(
    req: &Request,
    origin: &str,
    config: &Config,
    identity: &[(String, String)],
) -> worker::Result<Response> {
    let url = req.url()?;
    let mut target = format!("{}{}", origin.trim_end_matches('/'), url.path());
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let headers = Headers::new();
    for (name, value) in req.headers().entries() {
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
    let mut init = RequestInit::new();
    init.with_method(req.method()).with_headers(headers);
    if !matches!(req.method(), Method::Get | Method::Head) {
        init.with_body(req.inner().body().map(Into::into));
    }
    let request = Request::new_with_init(&target, &init)?;
    worker::Fetch::Request(request).send().await
}

// -----------------------------------------------------------------------------------------------------------------
// Durable Objects

/// One per key: the exact state (see `keyobject.rs`).
#[durable_object]
#[allow(missing_debug_implementations)] // State and Env print nothing useful.
pub struct KeyObject {
    state: State,
    env: Env,
    loaded: RefCell<Option<(ObjectState, VecDeque<RecentError>)>>,
}

impl DurableObject for KeyObject {
    fn new(state: State, env: Env) -> Self {
        Self { state, env, loaded: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let Envelope { id, request } = req.json().await?;
        if self.loaded.borrow().is_none() {
            let storage = self.state.storage();
            let mut state: ObjectState =
                storage.get::<String>("state").await?.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
            let errors: VecDeque<RecentError> =
                storage.get::<String>("errors").await?.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
            if state.record.is_none() && !matches!(request, ObjectRequest::Put { .. }) {
                // A key seeded straight into KV: adopt its record.
                let kv = self.env.kv(KV_BINDING)?;
                state.record = kv.get(&kv_key(&id)).json::<KeyRecord>().await.ok().flatten();
            }
            let mut slot = self.loaded.borrow_mut();
            if slot.is_none() {
                *slot = Some((state, errors));
            }
        }
        // The decision and the state change happen with no await in between: exact under concurrency.
        let (reply, changes, state_json, errors_json, record) = {
            let mut slot = self.loaded.borrow_mut();
            let Some((state, errors)) = slot.as_mut() else { return Response::error("object not loaded", 500) };
            let (reply, changes) = state.handle(errors, request);
            let state_json = changes.state.then(|| serde_json::to_string(state)).transpose()?;
            let errors_json = changes.errors.then(|| serde_json::to_string(errors)).transpose()?;
            (reply, changes, state_json, errors_json, state.record.clone())
        };
        let storage = self.state.storage();
        if let Some(json) = state_json {
            storage.put("state", json).await?;
        }
        if let Some(json) = errors_json {
            storage.put("errors", json).await?;
        }
        if changes.kv {
            // KV after the object has committed: the read path follows the authoritative state.
            let kv = self.env.kv(KV_BINDING)?;
            match record {
                Some(r) => kv.put(&kv_key(&id), serde_json::to_string(&r)?)?.execute().await?,
                None => kv.delete(&kv_key(&id)).await?,
            }
        }
        Response::from_json(&reply)
    }
}

/// The single directory object (see `directory.rs`).
#[durable_object]
#[allow(missing_debug_implementations)] // State and Env print nothing useful.
pub struct DirectoryObject {
    state: State,
    loaded: RefCell<Option<Directory>>,
}

impl DurableObject for DirectoryObject {
    fn new(state: State, _env: Env) -> Self {
        Self { state, loaded: RefCell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let request: DirectoryRequest = req.json().await?;
        if self.loaded.borrow().is_none() {
            let stored = self.state.storage().get::<String>("directory").await?;
            let directory = stored.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
            let mut slot = self.loaded.borrow_mut();
            if slot.is_none() {
                *slot = Some(directory);
            }
        }
        let (reply, json) = {
            let mut slot = self.loaded.borrow_mut();
            let Some(directory) = slot.as_mut() else { return Response::error("directory not loaded", 500) };
            let (reply, changed) = directory.handle(request);
            (reply, changed.then(|| serde_json::to_string(directory)).transpose()?)
        };
        if let Some(json) = json {
            self.state.storage().put("directory", json).await?;
        }
        Response::from_json(&reply)
    }
}
